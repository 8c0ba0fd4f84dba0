/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fault.h"

/* Events: svc_publish(), svc_subscribe(), the bounded per-subscription
 * event queue every transport feeds, and the rules for publishing into a
 * topic hub (QoS 0 drops and counts when a queue is full; QoS >= 1 waits,
 * in order, within a bound). */

#define SUB_DEFAULT_QUEUE 1024

/* ---- Publishing. */

/* Publishes come and go at the rate of events: a context keeps up to
 * PUB_SPARES freed ones (chained through conn) for the next. */
#define PUB_SPARES 1024

static void pub_free(struct svc__pub *pub) {
  svc_ctx_t *ctx = pub->ctx;

  svc_msg_free(pub->msg); /* pub->topic lives in the message. */
  if (ctx->npub_spares < PUB_SPARES && !ctx->closed) {
    pub->conn = (struct svc__conn *)ctx->pub_spares;
    ctx->pub_spares = pub;
    ctx->npub_spares++;
    return;
  }
  svc__free(pub);
}

void svc__pubs_free_spares(svc_ctx_t *ctx) {
  struct svc__pub *pub;

  while ((pub = ctx->pub_spares) != NULL) {
    ctx->pub_spares = (struct svc__pub *)pub->conn;
    svc__free(pub);
  }
  ctx->npub_spares = 0;
}

static void pub_log(struct svc__pub *pub) {
  svc_trace_t t;
  int traced = pub->msg != NULL && svc_msg_trace(pub->msg, &t) == 0;

  svc__log(pub->ctx, pub->status != 0 ? SVC_LOG_WARN : SVC_LOG_DEBUG,
           "publish", pub->metrics != NULL ? pub->metrics->m.endpoint : "",
           pub->topic, SVC_STATUS_OK, pub->status, 0, traced ? &t : NULL,
           "publish %s%s", pub->status != 0 ? "failed: " : "done",
           pub->status != 0 ? svc_strerror(pub->status) : "");
}

svc_drop_reason_t svc__drop_reason(int err) {
  switch (err) {
  case 0:
    return SVC_DROP_NONE;
  case SVC_ENOBUFS:
  case SVC_EAGAIN:
    return SVC_DROP_OVERFLOW;
  case SVC_ECONNRESET:
  case SVC_ECONNREFUSED:
  case SVC_ENOTCONN:
  case SVC_EPIPE:
  case SVC_EOF:
    return SVC_DROP_DISCONNECT;
  case SVC_ETIMEDOUT:
    return SVC_DROP_DEADLINE;
  case SVC_ECANCELED:
  case SVC_ECLOSING:
    return SVC_DROP_CLOSED;
  default:
    return err < 0 && err > -4096 && err != SVC_EPROTO && err != SVC_EINVAL &&
                   err != SVC_EMSGSIZE && err != SVC_ENOTSUP
               ? SVC_DROP_DISCONNECT /* Other system errors: the socket. */
               : SVC_DROP_REFUSED;
  }
}

const char *svc_drop_reason_name(svc_drop_reason_t reason) {
  static const char *const names[] = {"none",   "overflow", "disconnect",
                                      "deadline", "closed", "refused"};
  return (unsigned)reason < SVC_DROP_COUNT ? names[reason] : "unknown";
}

static void pub_report(struct svc__pub *pub) {
  svc_delivery_t d;

  memset(&d, 0, sizeof(d));
  d.topic = pub->topic;
  if (pub->status != 0) {
    d.state = SVC_DELIVERY_DROPPED;
    d.reason = svc__drop_reason(pub->status);
    d.err = pub->status;
  } else if (pub->hub != NULL) {
    d.state = SVC_DELIVERY_QUEUED;
    d.receivers = pub->receivers;
    d.refused = pub->refused;
  } else {
    /* A publish a fault lost was, as far as its sender can tell, written. */
    d.state = (pub->qos > 0 || pub->acked) && !pub->fw_lost
                  ? SVC_DELIVERY_ACKED
                  : SVC_DELIVERY_WRITTEN;
  }
  SVC__USER_CB(pub->ctx, pub->report_cb(pub->ctx, &d, pub->arg));
}

static void pub_done_task(struct svc__task *t) {
  struct svc__pub *pub = svc__container_of(t, struct svc__pub, done_task);
  svc_ctx_t *ctx = pub->ctx;

  /* Nothing is dropped without a count: whatever the caller asked for. */
  if (pub->status != 0 && pub->metrics != NULL)
    pub->metrics->m.pubs_dropped[svc__drop_reason(pub->status)]++;
  if (svc__log_wants(ctx, pub->status != 0 ? SVC_LOG_WARN : SVC_LOG_DEBUG))
    pub_log(pub);
  if (pub->report_cb != NULL)
    pub_report(pub);
  else if (pub->cb != NULL)
    SVC__USER_CB(ctx, pub->cb(ctx, pub->status, pub->arg));
  pub_free(pub);
}

void svc__pub_done(struct svc__pub *pub, int status) {
  /* Off whichever list held it (sent or waiting); a no-op for neither. */
  svc__list_remove(&pub->link);
  pub->status = status;
  svc__defer(pub->ctx, &pub->done_task);
}

/* ---- Publisher watermark. Transports say when their bounded publish
 * queue is full and how deep it is as it drains; the core keeps the state
 * on the conn and hands each change to the context's callback through
 * conn_state.c's queue of notes. */

void svc__pub_queue_full(struct svc__conn *conn, size_t depth) {
  if (conn->pub_full)
    return;
  conn->pub_full = 1;
  conn->pub_full_told = svc__conn_note_watermark(conn, depth, 1);
}

void svc__pub_queue_level(struct svc__conn *conn, size_t depth,
                          size_t bound) {
  if (!conn->pub_full || depth > bound / 2)
    return;
  conn->pub_full = 0;
  /* A low without the high it ends would mean nothing to the producer. */
  if (conn->pub_full_told)
    svc__conn_note_watermark(conn, depth, 0);
  conn->pub_full_told = 0;
}

void svc_ctx_set_pub_watermark(svc_ctx_t *ctx, svc_pub_watermark_cb cb,
                               void *arg) {
  if (ctx == NULL)
    return;
  ctx->pub_wm_cb = cb;
  ctx->pub_wm_arg = arg;
}

/* A publish of msg, whose topic is already set: pub->topic points into
 * the message, which the publish owns, so the topic is not copied again. */
static struct svc__pub *svc__pub_new(svc_ctx_t *ctx, svc_msg_t *msg,
                                     const svc_pub_opts_t *opts, svc_pub_cb cb,
                                     void *arg) {
  struct svc__pub *pub = ctx->pub_spares;

  if (pub != NULL) {
    ctx->pub_spares = (struct svc__pub *)pub->conn;
    ctx->npub_spares--;
  } else if ((pub = svc__malloc(sizeof(*pub))) == NULL) {
    return NULL;
  }
  /* Field by field: cheaper than clearing the whole struct. */
  pub->conn = NULL;
  pub->hub = NULL;
  pub->metrics = NULL;
  pub->status = 0;
  pub->tp = NULL;
  pub->tp_id = 0;
  pub->fw = NULL;
  pub->fw_lost = 0;
  pub->topic = (char *)svc_msg_topic(msg);
  pub->ctx = ctx;
  pub->msg = msg;
  pub->qos = opts != NULL ? opts->qos : 0;
  pub->retain = opts != NULL ? opts->retain : 0;
  pub->cb = cb;
  pub->report_cb = NULL;
  pub->arg = arg;
  pub->acked = 0;
  pub->receivers = 0;
  pub->refused = 0;
  svc__list_init(&pub->link);
  svc__task_init(&pub->done_task, pub_done_task);
  return pub;
}

struct svc__pub *svc__pub_copy(const struct svc__pub *pub) {
  svc_pub_opts_t opts = {.qos = pub->qos, .retain = pub->retain};
  struct svc__pub *copy =
      svc__pub_new(pub->ctx, svc__msg_ref(pub->msg), &opts, NULL, NULL);

  if (copy == NULL) {
    svc_msg_free(pub->msg);
    return NULL;
  }
  copy->conn = pub->conn;
  copy->metrics = pub->metrics;
  svc__list_insert_tail(&pub->ctx->pubs_sent, &copy->link);
  return copy;
}

static int pub_opts_valid(const svc_pub_opts_t *opts) {
  return opts == NULL || (opts->qos >= 0 && opts->qos <= 2);
}

/* Starts a publish of msg (NULL: empty) on topic through start(). On error
 * the caller keeps msg. */
static int publish_start(svc_ctx_t *ctx, const char *topic, svc_msg_t *msg,
                         const svc_pub_opts_t *opts, svc_pub_cb cb,
                         svc_delivery_cb report_cb, void *arg,
                         struct svc__conn *conn, struct svc__hub *hub,
                         struct svc__metrics *metrics) {
  struct svc__pub *pub = NULL;
  svc_msg_t *body = msg;
  size_t topic_len;
  int rc;

  /* svc__topic_check_name(), with the length kept for the copy below:
   * publishing is hot, and this runs on every event. */
  if (topic == NULL || !pub_opts_valid(opts))
    return SVC_EINVAL;
  /* One pass: topics are short, and three library calls cost more. */
  for (topic_len = 0; topic[topic_len] != '\0'; topic_len++)
    if (topic[topic_len] == '+' || topic[topic_len] == '#' ||
        topic_len == SVC__TOPIC_MAX)
      return SVC_EINVAL;
  if (topic_len == 0)
    return SVC_EINVAL;
  if (conn != NULL && conn->ops->publish == NULL)
    return SVC_ENOTSUP;
  if (body == NULL && (body = svc_msg_new(NULL, 0)) == NULL)
    return SVC_ENOMEM;
  /* Events continue a trace they carry or the callback's; they start one
   * only in SVC_TRACE_ALL (an untraced event costs three tests here). */
  if ((ctx->trace_has_cur || ctx->opts.trace == SVC_TRACE_ALL ||
       svc__msg_has_headers(body)) &&
      svc__trace_stamp(ctx, body, ctx->opts.trace == SVC_TRACE_ALL, NULL) <
          0) {
    rc = SVC_ENOMEM;
    goto fail;
  }
  if (svc__msg_set_topic_n(body, topic, topic_len) != 0 ||
      (pub = svc__pub_new(ctx, body, opts, cb, arg)) == NULL) {
    rc = SVC_ENOMEM;
    goto fail;
  }
  pub->conn = conn;
  pub->metrics = metrics;
  pub->report_cb = report_cb;
  if (conn != NULL) {
    /* Listed before the call: the transport may finish it from inside. */
    svc__list_insert_tail(&ctx->pubs_sent, &pub->link);
    rc = conn->fw != NULL ? svc__fwrap_publish(conn, pub)
                          : conn->ops->publish(conn, pub);
    if (rc != 0)
      svc__list_remove(&pub->link);
  } else {
    rc = svc__hub_publish_op(hub, pub);
  }
  if (rc != 0)
    goto fail;
  metrics->m.msgs_out++;
  metrics->m.bytes_out += svc_msg_len(body);
  return 0;

fail:
  if (body != msg)
    svc_msg_free(body);
  if (pub != NULL) {
    pub->msg = NULL;
    pub_free(pub);
  }
  return rc;
}

static int publish_uri(svc_ctx_t *ctx, const char *uri, svc_msg_t *msg,
                       const svc_pub_opts_t *opts, svc_pub_cb cb,
                       svc_delivery_cb report_cb, void *arg) {
  struct svc__url *url;
  struct svc__conn *conn;
  int rc;

  if (ctx == NULL || uri == NULL)
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  rc = svc__verb_target(ctx, uri, &url, &conn);
  if (rc != 0)
    return rc;
  rc = publish_start(ctx, url->path, msg, opts, cb, report_cb, arg, conn,
                     NULL, conn->metrics);
  svc__url_free(url);
  return rc;
}

int svc_publish(svc_ctx_t *ctx, const char *uri, svc_msg_t *msg,
                const svc_pub_opts_t *opts, svc_pub_cb cb, void *arg) {
  return publish_uri(ctx, uri, msg, opts, cb, NULL, arg);
}

int svc_publish_report(svc_ctx_t *ctx, const char *uri, svc_msg_t *msg,
                       const svc_pub_opts_t *opts, svc_delivery_cb cb,
                       void *arg) {
  return publish_uri(ctx, uri, msg, opts, NULL, cb, arg);
}

int svc_server_publish(svc_server_t *srv, const char *topic, svc_msg_t *msg,
                       const svc_pub_opts_t *opts, svc_pub_cb cb, void *arg) {
  if (srv == NULL || topic == NULL)
    return SVC_EINVAL;
  if (srv->closing || srv->ctx->closing)
    return SVC_ECLOSING;
  return publish_start(srv->ctx, topic, msg, opts, cb, NULL, arg, NULL,
                       srv->hub,
                       srv->metrics);
}

/* A publish that finds no room moves to the waiting list (off the sent
 * list, for one an inproc transport started). */
static void pub_wait(struct svc__pub *pub) {
  svc__list_remove(&pub->link);
  svc__list_insert_tail(&pub->ctx->pubs, &pub->link);
  pub->ctx->npubs_waiting++;
  svc__hub_waiting_add(pub->hub, 1);
}

/* The context's inproc queue is full: the publisher of pub hears of it
 * (svc_server_publish() and relays from network servers have no conn to
 * tell). */
static void pub_hub_full(struct svc__pub *pub) {
  struct svc__conn *conn = pub->conn;

  if (conn == NULL)
    return;
  if (!conn->pub_full_hub) {
    conn->pub_full_hub = 1;
    pub->ctx->npubs_full_hub++;
  }
  svc__pub_queue_full(conn, pub->ctx->npubs_waiting);
}

/* The inproc queue is shared by the context's endpoints, so at half of its
 * bound every endpoint that found it full hears that it drained. */
static void pub_hub_level(svc_ctx_t *ctx) {
  size_t bound = ctx->opts.max_pending_publishes;
  struct svc__list *pos;

  if (ctx->npubs_full_hub == 0 || ctx->npubs_waiting > bound / 2)
    return;
  svc__list_foreach(pos, &ctx->conns) {
    struct svc__conn *conn = svc__container_of(pos, struct svc__conn, link);
    if (conn->pub_full_hub) {
      conn->pub_full_hub = 0;
      ctx->npubs_full_hub--;
      svc__pub_queue_level(conn, ctx->npubs_waiting, bound);
    }
  }
}

static void pub_unwait(struct svc__pub *pub) {
  svc__list_remove(&pub->link);
  pub->ctx->npubs_waiting--;
  svc__hub_waiting_add(pub->hub, -1);
  pub_hub_level(pub->ctx);
}

/* A hub publish went out to n sinks (some may have been full). */
static void pub_hub_done(struct svc__pub *pub, int n) {
  pub->receivers = n > 0 ? (size_t)n : 0;
  pub->refused = svc__hub_last_refused(pub->hub);
  svc__pub_done(pub, 0);
}

int svc__hub_publish_op(struct svc__hub *hub, struct svc__pub *pub) {
  svc_ctx_t *ctx = pub->ctx;
  int rc;

  pub->hub = hub;
  if (pub->qos > 0 && ctx->npubs_waiting >= ctx->opts.max_pending_publishes) {
    pub_hub_full(pub);
    return SVC_EAGAIN;
  }
  if (pub->retain) {
    rc = svc__hub_retain(hub, pub->topic, pub->msg);
    if (rc != 0)
      return rc;
  }
  if (pub->qos == 0) {
    /* At most once: full queues drop and count, the publisher never waits.
     * QoS 0 may therefore overtake QoS 1 events waiting for room. */
    pub_hub_done(pub, svc__hub_publish(hub, pub->topic, pub->msg, 0));
    return 0;
  }
  /* Keep QoS >= 1 events in publishing order: behind any that wait. */
  if (svc__hub_waiting(hub) > 0 ||
      (rc = svc__hub_publish(hub, pub->topic, pub->msg, pub->qos)) ==
          SVC_EAGAIN) {
    pub_wait(pub);
    return 0;
  }
  pub_hub_done(pub, rc);
  return 0;
}

/* Retries waiting publishes in order; a hub whose head still finds no room
 * keeps the rest of its publishes waiting behind it. */
static void pubs_retry_task(struct svc__task *t) {
  svc_ctx_t *ctx = svc__container_of(t, svc_ctx_t, pubs_task);
  struct svc__hub *blocked[16];
  size_t nblocked = 0;
  size_t i;
  struct svc__list *pos;
  struct svc__list *tmp;
  struct svc__pub *pub;
  int n;

  svc__list_foreach_safe(pos, tmp, &ctx->pubs) {
    pub = svc__container_of(pos, struct svc__pub, link);
    for (i = 0; i < nblocked && blocked[i] != pub->hub; i++)
      ;
    if (i < nblocked)
      continue;
    if ((n = svc__hub_publish(pub->hub, pub->topic, pub->msg, pub->qos)) ==
        SVC_EAGAIN) {
      if (nblocked == sizeof(blocked) / sizeof(blocked[0]))
        break;
      blocked[nblocked++] = pub->hub;
      continue;
    }
    pub_unwait(pub);
    pub_hub_done(pub, n);
  }
}

void svc__hub_room(svc_ctx_t *ctx, struct svc__hub *hub) {
  (void)hub;
  if (!svc__list_empty(&ctx->pubs)) {
    if (ctx->pubs_task.fn == NULL)
      svc__task_init(&ctx->pubs_task, pubs_retry_task);
    svc__defer(ctx, &ctx->pubs_task);
  }
}

void svc__pubs_abort_all(svc_ctx_t *ctx) {
  struct svc__list *pos;
  struct svc__pub *pub;

  while ((pos = svc__list_head(&ctx->pubs)) != NULL) {
    pub = svc__container_of(pos, struct svc__pub, link);
    pub_unwait(pub);
    svc__pub_done(pub, SVC_ECANCELED);
  }
  svc__undefer(ctx, &ctx->pubs_task);
  /* Publishes a remote transport still holds (awaiting an acknowledgement)
   * are withdrawn and end cancelled. */
  while ((pos = svc__list_head(&ctx->pubs_sent)) != NULL) {
    pub = svc__container_of(pos, struct svc__pub, link);
    if (pub->fw != NULL)
      svc__fwrap_publish_abort(pub);
    else if (pub->conn->ops->publish_abort != NULL)
      pub->conn->ops->publish_abort(pub->conn, pub);
    svc__pub_done(pub, SVC_ECANCELED);
  }
}

/* ---- Subscriptions. */

static void sub_drop_queue(struct svc_sub_s *sub) {
  while (sub->q_len > 0) {
    svc_msg_free(sub->queue[sub->q_head]);
    sub->q_head = (sub->q_head + 1) % sub->opts.max_queue;
    sub->q_len--;
    sub->metrics->m.queue_depth--;
  }
}

static void sub_free(struct svc_sub_s *sub) {
  svc__undefer(sub->ctx, &sub->task);
  sub_drop_queue(sub);
  svc__list_remove(&sub->link);
  svc__free(sub->queue);
  svc__free(sub->filter);
  svc__free(sub);
}

static void sub_task(struct svc__task *t) {
  struct svc_sub_s *sub = svc__container_of(t, struct svc_sub_s, task);
  svc_ctx_t *ctx = sub->ctx;
  size_t n;
  svc_msg_t *msg;

  sub->delivering = 1;
  if (sub->ready && !sub->ready_delivered && !sub->ended) {
    sub->ready_delivered = 1;
    if (sub->opts.on_ready != NULL)
      SVC__USER_CB(ctx, sub->opts.on_ready(sub, sub->arg));
  }
  if (sub->above && !sub->wm_told && !sub->ended) {
    sub->wm_told = 1;
    if (sub->opts.on_watermark != NULL)
      SVC__USER_CB(ctx, sub->opts.on_watermark(sub, sub->q_len, 1, sub->arg));
  }
  /* Deliver what was queued when this turn began: events that arrive
   * meanwhile wait for the next turn, so a busy topic cannot starve I/O. */
  for (n = sub->q_len; n > 0 && sub->q_len > 0; n--) {
    msg = sub->queue[sub->q_head];
    sub->q_head = (sub->q_head + 1) % sub->opts.max_queue;
    sub->q_len--;
    sub->metrics->m.queue_depth--;
    sub->metrics->m.msgs_in++;
    sub->metrics->m.bytes_in += svc_msg_len(msg);
    if (svc__msg_has_headers(msg)) {
      struct svc__trace_scope sc;
      svc__trace_enter_msg(ctx, msg, &sc);
      SVC__USER_CB(ctx, sub->cb(sub, 0, msg, sub->arg));
      svc__trace_leave(ctx, &sc);
    } else {
      SVC__USER_CB(ctx, sub->cb(sub, 0, msg, sub->arg));
    }
    svc_msg_free(msg);
  }
  if (sub->above && sub->q_len <= sub->opts.max_queue / 2) {
    sub->above = 0;
    if (sub->wm_told && !sub->ended) {
      sub->wm_told = 0;
      if (sub->opts.on_watermark != NULL)
        SVC__USER_CB(ctx,
                     sub->opts.on_watermark(sub, sub->q_len, 0, sub->arg));
    }
  }
  sub->delivering = 0;
  if (sub->hub != NULL)
    svc__hub_room(ctx, sub->hub);
  else if (!sub->ended && sub->conn->ops->sub_room != NULL)
    sub->conn->ops->sub_room(sub->conn, sub);
  if (sub->q_len > 0) {
    svc__defer(ctx, &sub->task);
  } else if (sub->ended) {
    if (sub->final_status != SVC_ECANCELED)
      svc__log(ctx, SVC_LOG_WARN, "subscribe", sub->metrics->m.endpoint,
               sub->filter, SVC_STATUS_OK, sub->final_status, 0, NULL,
               "subscription ended: %s", svc_strerror(sub->final_status));
    SVC__USER_CB(ctx, sub->cb(sub, sub->final_status, NULL, sub->arg));
    sub_free(sub);
  }
}

int svc_subscribe(svc_ctx_t *ctx, const char *uri, const svc_sub_opts_t *opts,
                  svc_event_cb cb, void *arg, svc_sub_t **out) {
  struct svc__url *url;
  struct svc__conn *conn;
  struct svc_sub_s *sub;
  int rc;

  if (ctx == NULL || uri == NULL || cb == NULL ||
      (opts != NULL && (opts->qos < 0 || opts->qos > 2 ||
                        opts->overflow < SVC_OVERFLOW_DEFAULT ||
                        opts->overflow > SVC_OVERFLOW_WAIT)))
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  rc = svc__verb_target(ctx, uri, &url, &conn);
  if (rc != 0)
    return rc;
  if (svc__topic_check_filter(url->path) != 0) {
    svc__url_free(url);
    return SVC_EINVAL;
  }
  if (conn->ops->subscribe == NULL) {
    svc__url_free(url);
    return SVC_ENOTSUP;
  }
  sub = svc__calloc(1, sizeof(*sub));
  if (sub == NULL) {
    svc__url_free(url);
    return SVC_ENOMEM;
  }
  if (opts != NULL)
    sub->opts = *opts;
  if (sub->opts.max_queue == 0)
    sub->opts.max_queue = SUB_DEFAULT_QUEUE;
  sub->ctx = ctx;
  sub->conn = conn;
  sub->metrics = conn->metrics;
  sub->cb = cb;
  sub->arg = arg;
  sub->filter = svc__strdup(url->path); /* url may be shared. */
  svc__url_free(url);
  sub->queue = svc__calloc(sub->opts.max_queue, sizeof(*sub->queue));
  svc__list_init(&sub->link);
  svc__task_init(&sub->task, sub_task);
  if (sub->filter == NULL || sub->queue == NULL) {
    sub_free(sub);
    return SVC_ENOMEM;
  }
  svc__list_insert_tail(&ctx->subs, &sub->link);
  rc = conn->ops->subscribe(conn, sub);
  if (rc != 0) {
    sub_free(sub);
    return rc;
  }
  if (out != NULL)
    *out = sub;
  return 0;
}

void svc__sub_ready(struct svc_sub_s *sub) {
  sub->ready = 1;
  svc__defer(sub->ctx, &sub->task);
}

/* Policies that drop never make a producer wait. */
static int sub_drops(const struct svc_sub_s *sub) {
  return sub->opts.overflow == SVC_OVERFLOW_DROP_OLDEST ||
         sub->opts.overflow == SVC_OVERFLOW_DROP_NEWEST ||
         sub->opts.overflow == SVC_OVERFLOW_FAIL_NEW;
}

int svc__sub_has_room(const struct svc_sub_s *sub) {
  return !sub->ended && (sub->q_len < sub->opts.max_queue || sub_drops(sub));
}

static void sub_count_drop(struct svc_sub_s *sub) {
  sub->dropped++;
  sub->metrics->m.dropped++;
}

int svc__sub_event(struct svc_sub_s *sub, const char *topic, svc_msg_t *msg,
                   int qos) {
  (void)qos;
  if (sub->ended)
    return SVC_ECANCELED;
  /* One message object serves every subscriber; the topic is set once. */
  if (svc_msg_topic(msg) == NULL && svc__msg_set_topic(msg, topic) != 0)
    return SVC_ENOMEM;
  if (sub->q_len == sub->opts.max_queue) {
    if (sub->opts.overflow != SVC_OVERFLOW_DROP_OLDEST) {
      sub_count_drop(sub);
      return SVC_ENOBUFS;
    }
    svc_msg_free(sub->queue[sub->q_head]);
    sub->q_head = (sub->q_head + 1) % sub->opts.max_queue;
    sub->q_len--;
    sub->metrics->m.queue_depth--;
    sub_count_drop(sub);
  }
  sub->queue[(sub->q_head + sub->q_len) % sub->opts.max_queue] =
      svc__msg_ref(msg);
  sub->q_len++;
  sub->metrics->m.queue_depth++;
  if (sub->q_len == sub->opts.max_queue)
    sub->above = 1; /* Told from the delivery task, never from here. */
  if (!sub->delivering)
    svc__defer(sub->ctx, &sub->task);
  return 0;
}

void svc__sub_failed(struct svc_sub_s *sub, int err) {
  if (sub->ended)
    return;
  sub->ended = 1;
  sub->final_status = err;
  sub->hub = NULL;
  svc__defer(sub->ctx, &sub->task);
}

void svc_unsubscribe(svc_sub_t *sub) {
  if (sub == NULL || sub->ended)
    return;
  sub->ended = 1;
  sub->final_status = SVC_ECANCELED;
  sub->conn->ops->unsubscribe(sub->conn, sub);
  /* Events not yet delivered are dropped: the caller asked for no more. */
  sub_drop_queue(sub);
  svc__defer(sub->ctx, &sub->task);
}

uint64_t svc_sub_dropped(const svc_sub_t *sub) {
  return sub->dropped;
}

void svc__subs_abort_all(svc_ctx_t *ctx) {
  struct svc__list *pos;

  svc__list_foreach(pos, &ctx->subs) {
    svc_unsubscribe(svc__container_of(pos, struct svc_sub_s, link));
  }
}

/* ---- Subscriptions served from a hub in this process. */

static int sub_sink_deliver(struct svc__hub_sink *sink, const char *topic,
                            svc_msg_t *msg, int qos) {
  struct svc_sub_s *sub = svc__container_of(sink, struct svc_sub_s, sink);
  return svc__sub_event(sub, topic, msg, qos);
}

static int sub_sink_has_room(struct svc__hub_sink *sink) {
  return svc__sub_has_room(svc__container_of(sink, struct svc_sub_s, sink));
}

static void sub_retained(const char *topic, svc_msg_t *msg, void *arg) {
  svc__sub_event(arg, topic, msg, 1);
}

int svc__sub_attach_hub(struct svc_sub_s *sub, struct svc__hub *hub) {
  int rc;

  sub->sink.deliver = sub_sink_deliver;
  sub->sink.has_room = sub_sink_has_room;
  rc = svc__hub_add(hub, sub->filter, &sub->sink);
  if (rc != 0)
    return rc;
  sub->hub = hub;
  svc__hub_retained_foreach(hub, sub->filter, sub_retained, sub);
  return 0;
}

void svc__sub_detach_hub(struct svc_sub_s *sub) {
  if (sub->hub != NULL) {
    svc__hub_remove(sub->hub, &sub->sink);
    sub->hub = NULL;
  }
}
