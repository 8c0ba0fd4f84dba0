/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* The client side of mqtt:// and mqtts://: one paho client per conn,
 * created and connected on first use.
 *
 * Connecting: the first connect of a client is ours to watch. When it
 * fails, everything waiting on it fails with SVC_ECONNREFUSED: calls,
 * streams and subscriptions, and publishes too unless persist_dir makes
 * them durable (the client is destroyed, which makes paho fail every
 * publish it buffered). Servers and durable publishes keep the conn
 * retrying with backoff; otherwise the next operation tries again. Once a
 * client has been connected, paho reconnects by itself with backoff
 * (automaticReconnect): publishes are buffered meanwhile (max_buffered,
 * then SVC_ENOBUFS), calls and streams in flight end UNAVAILABLE, and
 * every subscription is sent again on each reconnect (a clean session has
 * forgotten them; a persistent one just confirms them). */

static uint64_t mq_id_counter;
static uv_mutex_t mq_id_lock;
static uv_once_t mq_id_once = UV_ONCE_INIT;

static void mq_id_init(void) {
  uv_mutex_init(&mq_id_lock);
}

int svc__mq_v5(const struct mqc *c) {
  return c->opts.version == 5;
}

int svc__mq_err(int rc) {
  switch (rc) {
  case MQTTASYNC_SUCCESS:
    return 0;
  case MQTTASYNC_MAX_BUFFERED_MESSAGES:
  case MQTTASYNC_MAX_MESSAGES_INFLIGHT:
  case MQTTASYNC_NO_MORE_MSGIDS:
    return SVC_ENOBUFS;
  case MQTTASYNC_DISCONNECTED:
    return SVC_ENOTCONN;
  case MQTTASYNC_BAD_UTF8_STRING:
  case MQTTASYNC_NULL_PARAMETER:
  case MQTTASYNC_BAD_STRUCTURE:
  case MQTTASYNC_BAD_QOS:
  case MQTTASYNC_BAD_MQTT_OPTION:
  case MQTTASYNC_TOPICNAME_TRUNCATED:
    return SVC_EINVAL;
  case MQTTASYNC_SSL_NOT_SUPPORTED:
  case MQTTASYNC_BAD_PROTOCOL:
  case MQTTASYNC_WRONG_MQTT_VERSION:
    return SVC_ENOTSUP;
  case MQTTASYNC_OPERATION_INCOMPLETE:
    return SVC_ECANCELED;
  default:
    return SVC_EPROTO;
  }
}

/* ---- Operation records. */

struct mq_rec *svc__mq_rec_new(struct mqc *c, enum mq_rec_kind kind,
                               void *obj) {
  struct mq_rec *rec = svc__calloc(1, sizeof(*rec));

  if (rec == NULL)
    return NULL;
  rec->c = c;
  rec->kind = kind;
  rec->obj = obj;
  svc__list_init(&rec->qlink);
  svc__list_insert_tail(&c->recs, &rec->link);
  return rec;
}

void svc__mq_rec_free(struct mq_rec *rec) {
  if (rec->queued) {
    svc__list_remove(&rec->qlink);
    rec->c->npubq--;
  }
  svc__list_remove(&rec->link);
  svc__free(rec);
}

/* ---- Publishing. */

int svc__mq_send(struct mqc *c, const char *topic, const svc_msg_t *msg,
                 int qos, int retain, MQTTProperties *extra,
                 struct mq_rec *rec) {
  MQTTAsync_message m = MQTTAsync_message_initializer;
  MQTTAsync_responseOptions ro;
  struct svc__mq_view view;
  size_t len = 0;
  const void *body = msg != NULL ? svc_msg_body(msg, &len) : "";
  struct mq_rec *own = NULL;
  int v5 = svc__mq_v5(c);
  int rc;

  if (len > 268435455u)
    return SVC_EMSGSIZE;
  if (rec == NULL && qos > 0) {
    own = rec = svc__mq_rec_new(c, MQ_REC_SEND, NULL);
    if (own == NULL)
      return SVC_ENOMEM;
  }
  m.payload = (void *)body;
  m.payloadlen = (int)len;
  m.qos = qos;
  m.retained = retain;
  if (v5) {
    rc = svc__mq_view_init(&view, msg, extra);
    if (rc != 0) {
      if (own != NULL)
        svc__mq_rec_free(own);
      return rc;
    }
    m.properties = view.props;
  }
  /* Response options always: without them paho 1.3.12 drops every v5
   * property of the message (integration notes, B.4). paho copies the
   * properties before it returns. */
  svc__mq_response_opts(c, rec, &ro);
  rc = svc__mq_err(MQTTAsync_sendMessage(c->cli, topic, &m, &ro));
  if (v5)
    svc__mq_view_free(&view);
  if (rc != 0 && own != NULL)
    svc__mq_rec_free(own);
  return rc;
}

/* Hands pub to paho with message id seq; rec (NULL for QoS 0) gets the
 * outcome. 0 or an error. */
static int mq_pub_send(struct mqc *c, struct svc__pub *pub, int qos,
                       uint64_t seq, struct mq_rec *rec) {
  MQTTProperties extra = MQTTProperties_initializer;
  MQTTProperty id_prop;
  char id[160];
  int n;

  /* Only what may arrive twice needs an id to be recognised by: QoS 0
   * is at most once, and the property costs on both sides. */
  if (svc__mq_v5(c) && qos > 0) {
    n = snprintf(id, sizeof(id), "%s-%llu", c->client_id,
                 (unsigned long long)seq);
    svc__mq_prop_user(&id_prop, "svc-id", 6, id,
                      n < (int)sizeof(id) ? (size_t)n : sizeof(id) - 1);
    extra.count = extra.max_count = 1;
    extra.array = &id_prop;
  }
  return svc__mq_send(c, pub->topic, pub->msg, qos, pub->retain, &extra, rec);
}

/* How many QoS >= 1 publishes paho may hold: the broker's Receive
 * Maximum less a few for requests, replies and stream frames, which share
 * paho's window; unlimited when the broker sets none. Before the first
 * CONNACK the window is unknown: publishes wait here, unless persist_dir
 * asks for paho's durable buffer. */
static unsigned mq_window(const struct mqc *c) {
  unsigned rm = c->receive_max;

  if (rm == 0)
    return c->opts.persist_dir != NULL ? UINT32_MAX : 0;
  /* Offline, publishes wait here, where the overflow policy can drop the
   * oldest with a report (paho drops without one, integration notes B.6),
   * unless persist_dir wants them in paho's durable buffer. */
  if (c->state != MQ_UP && c->opts.persist_dir == NULL)
    return 0;
  if (rm >= 65535)
    return UINT32_MAX;
  return rm > 8 ? rm - 4 : rm > 1 ? rm - 1 : 1;
}

/* Hands a queued or new QoS >= 1 publish to paho. 0 or an error. */
static int mq_pub_hand(struct mqc *c, struct mq_rec *rec) {
  int rc = mq_pub_send(c, rec->obj, rec->qos, rec->seq, rec);

  if (rc == 0) {
    c->outstanding++;
    ((struct svc__pub *)rec->obj)->tp = rec;
  }
  return rc;
}

/* QoS >= 1 publishes the connection holds unacknowledged, in its own
 * buffer or in paho's: the depth the publisher watermark sees. */
static size_t mq_depth(const struct mqc *c) {
  return c->npubq + c->outstanding;
}

static void mq_level(struct mqc *c) {
  svc__pub_queue_level(c->conn, mq_depth(c), (size_t)c->opts.max_buffered);
}

/* The offline buffer (ours or paho's) is full for pub: refused (FAIL_NEW,
 * WAIT: the caller keeps it), or accepted and dropped (DROP_NEWEST:
 * reported and counted, overflow). */
static int mq_overflow(struct mqc *c, struct svc__pub *pub) {
  svc__pub_queue_full(c->conn, mq_depth(c));
  if (c->opts.overflow != SVC_OVERFLOW_DROP_NEWEST)
    return SVC_ENOBUFS;
  svc__pub_done(pub, SVC_ENOBUFS);
  return 0;
}

/* Moves waiting publishes to paho while the window allows. */
static void mq_pump(struct mqc *c) {
  struct svc__list *pos;
  unsigned window = mq_window(c);

  while (c->outstanding < window && c->cli != NULL &&
         (pos = svc__list_head(&c->pubq)) != NULL) {
    struct mq_rec *rec = svc__container_of(pos, struct mq_rec, qlink);
    struct svc__pub *pub = rec->obj;
    int rc;
    svc__list_remove(pos);
    c->npubq--;
    rec->queued = 0;
    rc = mq_pub_hand(c, rec);
    if (rc != 0) {
      svc__mq_rec_free(rec);
      pub->tp = NULL;
      svc__pub_done(pub, rc);
    }
  }
  mq_level(c);
}

/* Fails the publishes still waiting here (first connect failed). */
static void mq_pubq_fail(struct mqc *c, int err) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&c->pubq)) != NULL) {
    struct mq_rec *rec = svc__container_of(pos, struct mq_rec, qlink);
    struct svc__pub *pub = rec->obj;
    svc__mq_rec_free(rec);
    pub->tp = NULL;
    svc__pub_done(pub, err);
  }
  mq_level(c);
}

/* Headers a 3.1.1 publish would lose. A trace context is not among them:
 * tracing is best effort, and a trace continued from a subscriber's
 * callback must not make its publish fail. */
static size_t mq_v3_headers(const svc_msg_t *msg) {
  const char *name;
  size_t n = 0;
  size_t i;

  for (i = 0; svc__msg_raw_header_at(msg, i, &name, NULL) == 0; i++)
    if (strcasecmp(name, "traceparent") != 0 &&
        strcasecmp(name, "tracestate") != 0)
      n++;
  return n;
}

static int mq_publish(struct svc__conn *conn, struct svc__pub *pub) {
  struct mqc *c = MQC(conn);
  struct mq_rec *rec;
  int qos = pub->qos > 0 ? pub->qos : c->opts.qos;
  uint64_t seq;
  int rc;

  if (!svc__mq_v5(c) && (mq_v3_headers(pub->msg) > 0 ||
                          svc_msg_content_type(pub->msg) != NULL))
    return SVC_ENOTSUP; /* MQTT 3.1.1 has nowhere to put them. */
  rc = svc__mq_start(c);
  if (rc != 0)
    return rc;
  seq = ++c->msg_seq;
  rec = svc__mq_rec_new(c, MQ_REC_PUB, pub);
  if (rec == NULL)
    return SVC_ENOMEM;
  rec->seq = seq;
  rec->qos = qos;
  if (qos == 0) {
    /* Nothing acknowledges QoS 0: it is done when paho has written it
     * (its onSuccess). Completing at the hand-off instead would let a
     * fast publisher fill paho's command list, which paho walks on every
     * add: measured, a third of the rate. */
    rc = mq_pub_send(c, pub, 0, seq, rec);
    if (rc != 0)
      svc__mq_rec_free(rec);
    else
      pub->tp = rec;
    return rc;
  }
  if (svc__list_empty(&c->pubq) && c->outstanding < mq_window(c)) {
    rc = mq_pub_hand(c, rec);
    if (rc != 0)
      svc__mq_rec_free(rec);
    /* paho's buffer is full (persist_dir keeps it there offline). */
    if (rc == SVC_ENOBUFS)
      return mq_overflow(c, pub);
    return rc;
  }
  if (c->npubq >= (size_t)c->opts.max_buffered) {
    struct svc__list *head = svc__list_head(&c->pubq);
    struct mq_rec *oldest;
    struct svc__pub *opub;

    if (c->opts.overflow != SVC_OVERFLOW_DROP_OLDEST || head == NULL) {
      svc__mq_rec_free(rec);
      return mq_overflow(c, pub);
    }
    /* The oldest waiting publish makes room: it ends dropped, reported
     * and counted (overflow). */
    svc__pub_queue_full(c->conn, mq_depth(c));
    oldest = svc__container_of(head, struct mq_rec, qlink);
    opub = oldest->obj;
    svc__mq_rec_free(oldest);
    opub->tp = NULL;
    svc__pub_done(opub, SVC_ENOBUFS);
  }
  rec->queued = 1;
  svc__list_insert_tail(&c->pubq, &rec->qlink);
  c->npubq++;
  pub->tp = rec;
  return 0;
}

/* paho failed a QoS >= 1 publish without a broker's refusal (the
 * connection went while it was being written): it goes to paho again,
 * with the same message id, a bounded number of times. 1 when resent. */
static int mq_pub_resend(struct mqc *c, struct mq_rec *rec) {
  struct svc__pub *pub = rec->obj;
  struct mq_rec *again;

  if (c->destroy_err != 0 || c->state == MQ_CLOSING || c->cli == NULL ||
      rec->resends >= 3 || rec->qos == 0)
    return 0; /* QoS 0 is at most once: never sent again. */
  again = svc__mq_rec_new(c, MQ_REC_PUB, pub);
  if (again == NULL)
    return 0;
  again->seq = rec->seq;
  again->qos = rec->qos;
  again->resends = rec->resends + 1;
  if (mq_pub_hand(c, again) != 0) {
    svc__mq_rec_free(again);
    return 0;
  }
  return 1;
}

/* A QoS >= 1 publish paho held when the connection was lost goes out again
 * once it is back, however paho reports it: paho 1.3.11/1.3.12 can finish
 * a write cut short by the outage on the next connection, from memory it
 * has freed (paho.mqtt.c #1592, #1153), and the broker's PUBACK for that
 * garbled PUBLISH then completes the publish. Seen: a message published at
 * a broker restart was acknowledged ("no matching subscribers": its topic
 * was garbage) and never delivered, to our subscriber or any other. Going
 * out again from the front of the queue costs a duplicate, which QoS 1
 * allows and svc-id lets consumers drop. 1 when queued again. */
static int mq_pub_requeue(struct mqc *c, struct mq_rec *rec) {
  struct svc__pub *pub = rec->obj;
  struct mq_rec *again;

  if (c->destroy_err != 0 || c->state == MQ_CLOSING || c->cli == NULL ||
      rec->resends >= 5)
    return 0;
  again = svc__mq_rec_new(c, MQ_REC_PUB, pub);
  if (again == NULL)
    return 0;
  again->seq = rec->seq;
  again->qos = rec->qos;
  again->resends = rec->resends + 1;
  again->queued = 1;
  /* Before the first waiting publish: it was published before them. */
  svc__list_insert_tail(c->pubq.next, &again->qlink);
  c->npubq++;
  pub->tp = again;
  return 1;
}

static void mq_publish_abort(struct svc__conn *conn, struct svc__pub *pub) {
  struct mq_rec *rec = pub->tp;

  (void)conn;
  if (rec != NULL && rec->queued)
    svc__mq_rec_free(rec); /* Never given to paho. */
  else if (rec != NULL)
    rec->obj = NULL; /* Freed when paho reports it. */
  pub->tp = NULL;
}

/* ---- MQTT subscriptions. */

static void mq_msub_send(struct mqc *c, struct mq_msub *m) {
  MQTTAsync_responseOptions ro;
  MQTTProperty prop;
  struct mq_rec *rec;
  int rc;

  if (c->state != MQ_UP)
    return;
  if (m->rec != NULL) {
    m->rec->obj = NULL;
    m->rec = NULL;
  }
  rec = svc__mq_rec_new(c, MQ_REC_SUB, m);
  if (rec == NULL)
    return; /* Sent again on the next reconnect. */
  svc__mq_response_opts(c, rec, &ro);
  if (svc__mq_v5(c)) {
    ro.subscribeOptions.noLocal =
        m->kind == MQ_MSUB_USER && c->opts.no_local ? 1 : 0;
    /* Retained messages once per subscription, not on every reconnect. */
    ro.subscribeOptions.retainHandling = m->acked ? 1 : 0;
    memset(&prop, 0, sizeof(prop));
    prop.identifier = MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER;
    prop.value.integer4 = m->subid;
    MQTTProperties_add(&ro.properties, &prop);
  }
  m->acked = 0;
  rc = MQTTAsync_subscribe(c->cli, m->filter, m->qos, &ro);
  MQTTProperties_free(&ro.properties);
  if (rc != MQTTASYNC_SUCCESS)
    svc__mq_rec_free(rec);
  else
    m->rec = rec;
}

struct mq_msub *svc__mq_msub_add(struct mqc *c, enum mq_msub_kind kind,
                                 const char *filter, int qos) {
  struct mq_msub *m = svc__calloc(1, sizeof(*m));

  if (m == NULL || (m->filter = svc__strdup(filter)) == NULL) {
    svc__free(m);
    return NULL;
  }
  m->kind = kind;
  m->qos = qos;
  /* Subscription identifiers run 1 .. 268435455. */
  m->subid = c->next_subid = c->next_subid % 268435455u + 1;
  svc__list_init(&m->subs);
  svc__list_insert_tail(&c->msubs, &m->link);
  mq_msub_send(c, m);
  return m;
}

void svc__mq_msub_remove(struct mqc *c, struct mq_msub *m) {
  MQTTAsync_responseOptions ro;

  if (m->rec != NULL)
    m->rec->obj = NULL;
  /* An application's svc_unsubscribe() tells the broker. The context
   * closing does not: a persistent session must keep its subscriptions
   * in the broker, which holds their events until this client returns
   * (a clean session ends with the disconnect anyway). */
  if (c->state == MQ_UP && c->cli != NULL && !c->conn->ctx->closing) {
    svc__mq_response_opts(c, NULL, &ro);
    MQTTAsync_unsubscribe(c->cli, m->filter, &ro);
  }
  svc__list_remove(&m->link);
  svc__free(m->filter);
  svc__free(m);
}

static void mq_held_free(struct mqc *c, struct mq_held *h) {
  svc__list_remove(&h->link);
  c->nheld--;
  svc_msg_free(h->msg);
  svc__free(h);
}

static void mq_held_drop_sub(struct mqc *c, struct svc_sub_s *sub) {
  struct svc__list *pos;
  struct svc__list *tmp;

  svc__list_foreach_safe(pos, tmp, &c->held) {
    struct mq_held *h = svc__container_of(pos, struct mq_held, link);
    if (h->sub == sub)
      mq_held_free(c, h);
  }
}

static int mq_sub_has_held(struct mqc *c, struct svc_sub_s *sub) {
  struct svc__list *pos;

  if (c->nheld == 0)
    return 0;
  svc__list_foreach(pos, &c->held) {
    if (svc__container_of(pos, struct mq_held, link)->sub == sub)
      return 1;
  }
  return 0;
}

static int mq_subscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct mqc *c = MQC(conn);
  struct svc__list *pos;
  struct mq_msub *m = NULL;
  struct mq_subref *ref;
  int qos = sub->opts.qos > 0 ? sub->opts.qos : c->opts.qos;
  int rc;

  rc = svc__mq_start(c);
  if (rc != 0)
    return rc;
  ref = svc__calloc(1, sizeof(*ref));
  if (ref == NULL)
    return SVC_ENOMEM;
  /* One MQTT subscription per filter: a second SUBSCRIBE to the same
   * filter would replace the first, not add to it. */
  svc__list_foreach(pos, &c->msubs) {
    struct mq_msub *o = svc__container_of(pos, struct mq_msub, link);
    if (o->kind == MQ_MSUB_USER && strcmp(o->filter, sub->filter) == 0) {
      m = o;
      break;
    }
  }
  if (m == NULL) {
    m = svc__mq_msub_add(c, MQ_MSUB_USER, sub->filter, qos);
    if (m == NULL) {
      svc__free(ref);
      return SVC_ENOMEM;
    }
  } else if (qos > m->qos) {
    m->qos = qos;
    mq_msub_send(c, m);
  } else if (m->acked) {
    svc__sub_ready(sub);
  }
  ref->sub = sub;
  ref->msub = m;
  svc__list_insert_tail(&m->subs, &ref->link);
  sub->tp = ref;
  return 0;
}

static void mq_subref_free(struct mqc *c, struct mq_subref *ref) {
  struct mq_msub *m = ref->msub;

  ref->sub->tp = NULL;
  mq_held_drop_sub(c, ref->sub);
  svc__list_remove(&ref->link);
  svc__free(ref);
  if (svc__list_empty(&m->subs))
    svc__mq_msub_remove(c, m);
}

static void mq_unsubscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  if (sub->tp != NULL)
    mq_subref_free(MQC(conn), sub->tp);
}

/* Held events go to their subscription, in order, while it has room. */
static void mq_sub_room(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct mqc *c = MQC(conn);
  struct svc__list *pos;
  struct svc__list *tmp;

  svc__list_foreach_safe(pos, tmp, &c->held) {
    struct mq_held *h = svc__container_of(pos, struct mq_held, link);
    if (h->sub != sub)
      continue;
    if (!svc__sub_has_room(sub))
      break;
    svc__sub_event(sub, svc_msg_topic(h->msg), h->msg, h->qos);
    mq_held_free(c, h);
  }
}

/* Fails every subscription of the application with err (first connect
 * failed, or the broker refused the filter). */
static void mq_msub_fail(struct mqc *c, struct mq_msub *m, int err) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&m->subs)) != NULL) {
    struct mq_subref *ref = svc__container_of(pos, struct mq_subref, link);
    struct svc_sub_s *sub = ref->sub;
    int last = pos->next == &m->subs;
    mq_subref_free(c, ref); /* Frees m with the last one. */
    svc__sub_failed(sub, err);
    if (last)
      break;
  }
}

static void mq_user_subs_fail(struct mqc *c, int err) {
  struct svc__list *pos;
  struct svc__list *tmp;

  svc__list_foreach_safe(pos, tmp, &c->msubs) {
    struct mq_msub *m = svc__container_of(pos, struct mq_msub, link);
    if (m->kind == MQ_MSUB_USER)
      mq_msub_fail(c, m, err); /* Frees m. */
  }
}

static void mq_on_suback(struct mqc *c, struct mq_rec *rec, int ok,
                         int code) {
  struct mq_msub *m = rec->obj;
  struct svc__list *pos;

  if (m == NULL)
    return;
  m->rec = NULL;
  if (!ok) {
    /* A refusal by the broker fails the subscription; a local failure
     * (the connection went) is retried on the next reconnect. */
    if (code < 0x80 || c->state != MQ_UP)
      return;
    if (m->kind == MQ_MSUB_USER)
      mq_msub_fail(c, m, SVC_EPROTO);
    else if (m->kind == MQ_MSUB_REPLY)
      svc__mq_requests_fail(c, SVC_EPROTO);
    return;
  }
  m->acked = 1;
  if (m->kind == MQ_MSUB_REPLY) {
    svc__mq_requests_ready(c);
    return;
  }
  if (m->kind == MQ_MSUB_USER) {
    svc__list_foreach(pos, &m->subs) {
      struct svc_sub_s *sub =
          svc__container_of(pos, struct mq_subref, link)->sub;
      if (!sub->ready)
        svc__sub_ready(sub);
    }
  }
}

/* ---- Incoming messages. */

/* Whether message msg on topic is for m. On v5 by the subscription
 * identifiers it carries: an identifier names one MQTT subscription, and
 * every msub with that subscription's filter shares it (a later SUBSCRIBE
 * to the same filter replaced the earlier one at the broker, identifier
 * included). On 3.1.1 by matching the topic. */
static int mq_msub_matches(struct mqc *c, const struct mq_msub *m,
                           const char *topic, const MQTTAsync_message *msg,
                           int have_ids) {
  const char *group;
  size_t glen;
  const char *filter = m->filter;
  struct svc__list *pos;
  int i;

  if (have_ids) {
    for (i = 0; i < msg->properties.count; i++) {
      const MQTTProperty *p = &msg->properties.array[i];
      if (p->identifier != MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER)
        continue;
      if (p->value.integer4 == m->subid)
        return 1;
      svc__list_foreach(pos, &c->msubs) {
        const struct mq_msub *o =
            svc__container_of(pos, struct mq_msub, link);
        if (o->subid == p->value.integer4 && strcmp(o->filter, m->filter) == 0)
          return 1;
      }
    }
    return 0;
  }
  if (svc__topic_split_share(filter, &group, &glen, &filter) == 0)
    filter = m->filter;
  return svc__topic_match(filter, topic);
}

static void mq_deliver(struct mqc *c, struct svc_sub_s *sub, svc_msg_t *msg,
                       const char *topic, int qos) {
  struct mq_held *h;

  /* MQTT has acknowledged a QoS >= 1 event already (paho cannot hold the
   * acknowledgement back), so a full queue must not drop it: it waits
   * here, bounded by max_held, beyond which it is dropped and counted. */
  if (qos > 0 && c->nheld < c->opts.max_held &&
      (!svc__sub_has_room(sub) || mq_sub_has_held(c, sub))) {
    h = svc__calloc(1, sizeof(*h));
    if (h != NULL && svc_msg_topic(msg) == NULL &&
        svc__msg_set_topic(msg, topic) != 0) {
      svc__free(h);
      h = NULL;
    }
    if (h != NULL) {
      h->sub = sub;
      h->msg = svc__msg_ref(msg);
      h->qos = qos;
      svc__list_insert_tail(&c->held, &h->link);
      c->nheld++;
      return;
    }
  }
  svc__sub_event(sub, topic, msg, qos);
}

static void mq_on_message(struct mqc *c, const char *topic,
                          MQTTAsync_message *m) {
  struct svc__list *pos;
  struct svc__list *tmp;
  svc_msg_t *msg = NULL;
  int have_ids = svc__mq_v5(c) && MQTTProperties_hasProperty(
                           &m->properties,
                           MQTTPROPERTY_CODE_SUBSCRIPTION_IDENTIFIER);
  int served = 0;

  if (c->reply_topic != NULL && strcmp(topic, c->reply_topic) == 0) {
    svc__mq_on_reply(c, m);
    return;
  }
  svc__list_foreach_safe(pos, tmp, &c->msubs) {
    struct mq_msub *ms = svc__container_of(pos, struct mq_msub, link);
    struct svc__list *spos;
    struct svc__list *stmp;

    if (ms->kind == MQ_MSUB_REPLY ||
        !mq_msub_matches(c, ms, topic, m, have_ids))
      continue;
    if (ms->kind == MQ_MSUB_SERVER) {
      if (!served) {
        served = 1;
        svc__mq_on_request(ms->srv->tp, topic, m);
      }
      continue;
    }
    if (msg == NULL && (msg = svc__mq_msg_to_svc(m)) == NULL)
      return;
    svc__list_foreach_safe(spos, stmp, &ms->subs) {
      struct mq_subref *ref = svc__container_of(spos, struct mq_subref, link);
      mq_deliver(c, ref->sub, msg, topic, m->qos);
    }
  }
  svc_msg_free(msg);
}

/* ---- Connecting. */

static void mq_retry_fired(struct svc__timer *t);

static void mq_connect(struct mqc *c) {
  MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
  MQTTAsync_connectOptions co3 = MQTTAsync_connectOptions_initializer;
  MQTTAsync_connectOptions *co = svc__mq_v5(c) ? &co5 : &co3;
  MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
  MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
  MQTTProperties props = MQTTProperties_initializer;
  MQTTProperty prop;
  const struct svc__url *url = c->conn->url;
  int rc;

  co->keepAliveInterval = c->opts.keepalive;
  if (svc__mq_v5(c))
    co->cleanstart = c->opts.clean_start;
  else
    co->cleansession = c->opts.clean_start;
  co->connectTimeout = (int)((c->opts.connect_timeout_ms + 999) / 1000);
  co->automaticReconnect = 1;
  co->minRetryInterval = c->opts.reconnect_min_s;
  co->maxRetryInterval = c->opts.reconnect_max_s;
  co->username = url->user;
  co->password = url->password;
  if (c->opts.will_topic != NULL) {
    will.topicName = c->opts.will_topic;
    will.payload.data =
        c->opts.will_payload != NULL ? c->opts.will_payload : "";
    will.payload.len = (int)strlen(will.payload.data);
    will.qos = c->opts.will_qos;
    will.retained = c->opts.will_retain;
    co->will = &will;
  }
  if (c->tls) {
    ssl.trustStore = c->opts.ca;
    ssl.keyStore = c->opts.cert;
    ssl.privateKey = c->opts.key;
    ssl.enableServerCertAuth = c->opts.insecure ? 0 : 1;
    ssl.verify = c->opts.insecure ? 0 : 1;
    co->ssl = &ssl;
  }
  if (svc__mq_v5(c) && c->opts.session_expiry > 0) {
    memset(&prop, 0, sizeof(prop));
    prop.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
    prop.value.integer4 = c->opts.session_expiry;
    MQTTProperties_add(&props, &prop);
    co->connectProperties = &props;
  }
  svc__mq_connect_callbacks(c, co);
  rc = MQTTAsync_connect(c->cli, co);
  MQTTProperties_free(&props);
  if (rc != MQTTASYNC_SUCCESS) {
    /* Reported like a failed attempt, from the queue's next turn. */
    struct mq_ev ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = MQ_EV_CONNECT_FAIL;
    ev.code = rc;
    svc__mq_handle(c, &ev);
  }
}

static int mq_create(struct mqc *c) {
  MQTTAsync_createOptions o5 = MQTTAsync_createOptions_initializer5;
  MQTTAsync_createOptions o3 = MQTTAsync_createOptions_initializer;
  MQTTAsync_createOptions *o = svc__mq_v5(c) ? &o5 : &o3;
  int rc;

  o->sendWhileDisconnected = 1;
  o->allowDisconnectedSendAtAnyTime = 1;
  /* paho counts this limit while connected too: it is the bound on
   * publishes paho holds unsent, offline buffer included. */
  o->maxBufferedMessages = c->opts.max_buffered;
  o->deleteOldestMessages = 0;
  o->restoreMessages = 1;
  if (!svc__mq_v5(c))
    o->MQTTVersion = MQTTVERSION_3_1_1;
  rc = MQTTAsync_createWithOptions(
      &c->cli, c->server_uri, c->client_id,
      c->opts.persist_dir != NULL ? MQTTCLIENT_PERSISTENCE_DEFAULT
                                  : MQTTCLIENT_PERSISTENCE_NONE,
      c->opts.persist_dir, o);
  if (rc != MQTTASYNC_SUCCESS) {
    c->cli = NULL;
    return svc__mq_err(rc);
  }
  rc = svc__mq_set_callbacks(c);
  if (rc != MQTTASYNC_SUCCESS) {
    MQTTAsync_destroy(&c->cli);
    c->cli = NULL;
    return svc__mq_err(rc);
  }
  uv_ref((uv_handle_t *)&c->wake);
  return 0;
}

/* Destroys the client; paho fails what it still holds, synchronously, and
 * those reports are handled now with err. */
static void mq_destroy(struct mqc *c, int err) {
  if (c->cli == NULL)
    return;
  c->destroy_err = err;
  MQTTAsync_destroy(&c->cli);
  c->cli = NULL;
  uv_unref((uv_handle_t *)&c->wake);
  svc__mq_drain(c);
  c->destroy_err = 0;
}

int svc__mq_start(struct mqc *c) {
  int rc;

  if (c->state == MQ_CLOSING)
    return SVC_ECLOSING;
  if (c->cli == NULL) {
    rc = mq_create(c);
    if (rc != 0)
      return rc;
  }
  if (c->state == MQ_IDLE) {
    c->state = MQ_CONNECTING;
    svc__conn_state(c->conn, SVC_CONN_CONNECTING, 0);
    mq_connect(c);
  }
  return 0;
}

static int mq_keeps_retrying(struct mqc *c) {
  return c->opts.persist_dir != NULL || !svc__list_empty(&c->servers);
}

static void mq_connect_failed(struct mqc *c, int err) {
  if (c->state != MQ_CONNECTING)
    return; /* paho retries reconnects itself. */
  c->last_err = err;
  c->state = MQ_RETRY; /* Nothing below may start a new attempt. */
  svc__conn_state(c->conn,
                  mq_keeps_retrying(c) ? SVC_CONN_BACKOFF : SVC_CONN_CLOSED,
                  err);
  mq_user_subs_fail(c, err);
  mq_pubq_fail(c, err);
  svc__mq_requests_fail(c, err);
  svc__mq_streams_fail(c, err);
  if (c->opts.persist_dir == NULL)
    mq_destroy(c, err);
  if (mq_keeps_retrying(c)) {
    if (c->backoff_s == 0)
      c->backoff_s = c->opts.reconnect_min_s;
    svc__timer_start(c->ctx, &c->timer, (uint64_t)c->backoff_s * 1000);
    c->backoff_s = c->backoff_s * 2 > c->opts.reconnect_max_s
                       ? c->opts.reconnect_max_s
                       : c->backoff_s * 2;
  } else {
    c->state = MQ_IDLE;
  }
}

static void mq_retry_fired(struct svc__timer *t) {
  struct mqc *c = svc__container_of(t, struct mqc, timer);

  if (c->state != MQ_RETRY)
    return;
  if (c->cli == NULL && mq_create(c) != 0) {
    c->state = MQ_CONNECTING;
    mq_connect_failed(c, SVC_ENOMEM);
    return;
  }
  c->state = MQ_CONNECTING;
  svc__conn_state(c->conn, SVC_CONN_CONNECTING, 0);
  mq_connect(c);
}

/* XXX(paho): 1.3.12 never sets TCP_NODELAY on its sockets, so every
 * small PUBLISH written right after a PUBACK waits for the broker's
 * delayed ACK: about 40 ms per exchange, 88 ms per call (measured). The
 * socket is not exposed, so after each connect the TCP sockets of this
 * process whose peer port is the broker's get TCP_NODELAY; on any other
 * socket to that port the option is harmless. */
static void mq_nodelay(struct mqc *c) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int port = c->conn->url->port >= 0 ? c->conn->url->port
             : c->tls                ? 8883
                                     : 1883;

  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = atoi(e->d_name);
    int type = 0;
    socklen_t tlen = sizeof(type);
    int one = 1;
    int peer_port;

    if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d))
      continue;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 ||
        type != SOCK_STREAM ||
        getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
      continue;
    if (ss.ss_family == AF_INET)
      peer_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      peer_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    else
      continue;
    if (peer_port == port)
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  closedir(d);
}

static void mq_connected(struct mqc *c, int value) {
  struct svc__list *pos;

  /* paho reports a connect twice, in either order: the connect's
   * onSuccess (with the CONNACK's Receive Maximum) and the connected
   * callback (without). */
  if (value > 0)
    c->receive_max = (unsigned)value;
  if (c->state == MQ_UP || c->state == MQ_CLOSING)
    return;
  mq_nodelay(c);
  c->state = MQ_UP;
  svc__conn_state(c->conn, SVC_CONN_CONNECTED, 0);
  c->ever_up = 1;
  c->backoff_s = 0;
  if (c->receive_max == 0)
    c->receive_max = 65535; /* Not reported yet: the protocol's default. */
  svc__list_foreach(pos, &c->msubs) {
    mq_msub_send(c, svc__container_of(pos, struct mq_msub, link));
  }
  mq_pump(c);
}

static void mq_lost(struct mqc *c) {
  struct svc__list *pos;

  if (c->state != MQ_UP)
    return;
  c->state = MQ_DOWN;
  /* paho reconnects by itself, with backoff. */
  svc__conn_state(c->conn, SVC_CONN_BACKOFF, SVC_ECONNRESET);
  svc__list_foreach(pos, &c->msubs) {
    svc__container_of(pos, struct mq_msub, link)->acked = 0;
  }
  /* What paho holds now crossed the outage: sent again once it is back
   * (mq_pub_requeue()). */
  svc__list_foreach(pos, &c->recs) {
    struct mq_rec *rec = svc__container_of(pos, struct mq_rec, link);
    if (rec->kind == MQ_REC_PUB && !rec->queued && rec->qos > 0 &&
        rec->obj != NULL)
      rec->crossed = 1;
  }
  svc__mq_requests_fail(c, SVC_ECONNRESET);
  svc__mq_streams_fail(c, SVC_ECONNRESET);
}

static void mq_close_finish(struct mqc *c);
static void mq_close_disconnect(struct mqc *c);

static void mq_op_done(struct mqc *c, struct mq_ev *ev) {
  struct mq_rec *rec = ev->rec;
  int ok = ev->type == MQ_EV_OP_OK && ev->code < 0x80;
  int err;

  if (!ok)
    err = c->destroy_err != 0 ? c->destroy_err
          : ev->type == MQ_EV_OP_OK || ev->value >= 0x80
              ? SVC_EPROTO
              : svc__mq_err(ev->code);
  else
    err = 0;
  switch (rec->kind) {
  case MQ_REC_PUB:
    if (rec->qos > 0)
      c->outstanding--; /* QoS 0 takes no place in the window. */
    if (rec->obj != NULL) {
      struct svc__pub *pub = rec->obj;
      int refused = !ok && (ev->type == MQ_EV_OP_OK || ev->value >= 0x80);
      pub->tp = NULL;
      if (rec->crossed && !refused && mq_pub_requeue(c, rec))
        break;
      if (ok || refused || !mq_pub_resend(c, rec))
        svc__pub_done(pub, err);
    }
    break;
  case MQ_REC_SUB:
    mq_on_suback(c, rec, ok,
                 ev->type == MQ_EV_OP_OK ? ev->code : ev->value);
    break;
  case MQ_REC_REQ:
    /* A request the broker refused fails its call now (UNAVAILABLE);
     * a delivered one waits for its reply. */
    if (rec->obj != NULL) {
      struct svc_call_s *call = rec->obj;
      call->tp = NULL;
      if (!ok) {
        svc__idmap_del(&c->calls, rec->id);
        svc__call_attempt_done(call, SVC_STATUS_UNAVAILABLE, err, NULL);
      }
    }
    break;
  case MQ_REC_UNSUB:
  case MQ_REC_SEND:
    break;
  }
  svc__mq_rec_free(rec);
  if (c->state == MQ_CLOSING) {
    if (c->draining && svc__list_empty(&c->recs))
      mq_close_disconnect(c);
    return;
  }
  if (!svc__list_empty(&c->pubq))
    mq_pump(c);
  else
    mq_level(c);
}

void svc__mq_handle(struct mqc *c, struct mq_ev *ev) {
  switch (ev->type) {
  case MQ_EV_CONNECTED:
    mq_connected(c, ev->value);
    break;
  case MQ_EV_CONNECT_FAIL:
    mq_connect_failed(c, SVC_ECONNREFUSED);
    break;
  case MQ_EV_LOST:
    if (c->state == MQ_CLOSING && c->draining)
      mq_close_finish(c); /* Nothing more can be acknowledged. */
    else
      mq_lost(c);
    break;
  case MQ_EV_MSG:
    if (c->state != MQ_CLOSING)
      mq_on_message(c, ev->topic, ev->msg);
    break;
  case MQ_EV_OP_OK:
  case MQ_EV_OP_FAIL:
    mq_op_done(c, ev);
    break;
  case MQ_EV_DISCONNECTED:
    if (c->state == MQ_CLOSING && c->cli != NULL)
      mq_close_finish(c);
    break;
  }
}

/* ---- Lifecycle. */

static char *mq_server_uri(const struct svc__url *url, int tls) {
  char buf[600];
  int port = url->port >= 0 ? url->port : tls ? 8883 : 1883;

  if (strlen(url->host) > 512)
    return NULL;
  snprintf(buf, sizeof(buf), url->host_is_ipv6 ? "%s://[%s]:%d" : "%s://%s:%d",
           tls ? "ssl" : "tcp", url->host, port);
  return svc__strdup(buf);
}

static char *mq_client_id(void) {
  char host[64];
  char buf[128];
  uint64_t n;

  if (gethostname(host, sizeof(host)) != 0)
    strcpy(host, "host");
  host[sizeof(host) - 1] = '\0';
  uv_once(&mq_id_once, mq_id_init);
  uv_mutex_lock(&mq_id_lock);
  n = ++mq_id_counter;
  uv_mutex_unlock(&mq_id_lock);
  snprintf(buf, sizeof(buf), "svc-%s-%d-%llu", host, (int)getpid(),
           (unsigned long long)n);
  return svc__strdup(buf);
}

static int mq_init(struct svc__conn *conn) {
  struct mqc *c = MQC(conn);
  const struct svc__url *url = conn->url;
  int rc;

  c->conn = conn;
  c->ctx = conn->ctx;
  c->tls = strcmp(conn->ops->scheme, "mqtts") == 0;
  svc__list_init(&c->recs);
  svc__list_init(&c->msubs);
  svc__list_init(&c->held);
  svc__list_init(&c->pubq);
  svc__list_init(&c->waiting);
  svc__list_init(&c->servers);
  svc__timer_init(&c->timer, mq_retry_fired);
  c->state = MQ_IDLE;
  if (url->host[0] == '\0')
    return SVC_EINVAL;
  rc = svc__mqtt_opts_parse(url->query, c->tls, &c->opts);
  if (rc != 0)
    return rc;
  c->server_uri = mq_server_uri(url, c->tls);
  c->client_id = c->opts.client_id != NULL ? svc__strdup(c->opts.client_id)
                                           : mq_client_id();
  if (c->server_uri == NULL || c->client_id == NULL)
    return SVC_ENOMEM;
  return svc__mq_queue_init(c);
}

static void mq_freed(struct mqc *c) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&c->recs)) != NULL)
    svc__mq_rec_free(svc__container_of(pos, struct mq_rec, link));
  while ((pos = svc__list_head(&c->held)) != NULL)
    mq_held_free(c, svc__container_of(pos, struct mq_held, link));
  while ((pos = svc__list_head(&c->msubs)) != NULL) {
    struct mq_msub *m = svc__container_of(pos, struct mq_msub, link);
    svc__list_remove(pos);
    svc__free(m->filter);
    svc__free(m);
  }
  svc__idmap_free(&c->calls);
  svc__idmap_free(&c->streams);
  svc__mqtt_opts_free(&c->opts);
  svc__free(c->server_uri);
  svc__free(c->client_id);
  svc__free(c->reply_topic);
  svc__conn_closed(c->conn);
}

static void mq_close_finish(struct mqc *c) {
  c->draining = 0;
  svc__timer_stop(c->ctx, &c->timer);
  mq_destroy(c, SVC_ECANCELED);
  svc__mq_queue_close(c, mq_freed);
}

static void mq_close_timeout(struct svc__timer *t) {
  mq_close_finish(svc__container_of(t, struct mqc, timer));
}

/* Sends the DISCONNECT now (the will is not published) and finishes when
 * paho reports it; a timer bounds the wait if paho never answers. */
static void mq_close_disconnect(struct mqc *c) {
  MQTTAsync_disconnectOptions d5 = MQTTAsync_disconnectOptions_initializer5;
  MQTTAsync_disconnectOptions d3 = MQTTAsync_disconnectOptions_initializer;
  MQTTAsync_disconnectOptions *d = svc__mq_v5(c) ? &d5 : &d3;

  c->draining = 0;
  svc__timer_stop(c->ctx, &c->timer);
  d->timeout = 0;
  svc__mq_disconnect_callbacks(c, d);
  if (MQTTAsync_disconnect(c->cli, d) != MQTTASYNC_SUCCESS) {
    mq_close_finish(c);
    return;
  }
  svc__timer_init(&c->timer, mq_close_timeout);
  svc__timer_start(c->ctx, &c->timer, 1000);
}

static void mq_close_drain_timeout(struct svc__timer *t) {
  mq_close_disconnect(svc__container_of(t, struct mqc, timer));
}

/* In-flight QoS >= 1 work (every record paho holds) gets up to
 * disconnect_ms to be acknowledged, counted here rather than by paho's
 * disconnect timeout: paho 1.3.12 looks at that only on its 3 s
 * housekeeping tick, so a close with a PUBACK outstanding took seconds
 * even when the PUBACK came a millisecond later. */
static void mq_close(struct svc__conn *conn) {
  struct mqc *c = MQC(conn);
  int was_up = c->state == MQ_UP;

  c->state = MQ_CLOSING;
  if (c->ctx != NULL)
    svc__timer_stop(c->ctx, &c->timer);
  /* Everything of the application was aborted by the core; what is left
   * is the library's own state. */
  svc__mq_requests_fail(c, SVC_ECANCELED);
  if (c->cli == NULL || !was_up) {
    mq_close_finish(c);
    return;
  }
  if (svc__list_empty(&c->recs) || c->opts.disconnect_ms == 0) {
    mq_close_disconnect(c);
    return;
  }
  c->draining = 1;
  svc__timer_init(&c->timer, mq_close_drain_timeout);
  svc__timer_start(c->ctx, &c->timer, c->opts.disconnect_ms);
}

#define MQ_TRANSPORT(name, sch)                          \
  const struct svc__transport name = {                   \
    .scheme = sch,                                       \
    .default_method = "CALL",                            \
    .conn_size = sizeof(struct mqc),                     \
    .server_size = sizeof(struct mqs),                   \
    .init = mq_init,                                     \
    .close = mq_close,                                   \
    .call = svc__mq_call,                                \
    .call_abort = svc__mq_call_abort,                    \
    .publish = mq_publish,                               \
    .publish_abort = mq_publish_abort,                   \
    .subscribe = mq_subscribe,                           \
    .unsubscribe = mq_unsubscribe,                       \
    .sub_room = mq_sub_room,                             \
    .stream_open = svc__mq_stream_open,                  \
    .stream_accept = svc__mq_stream_accept,              \
    .stream_send = svc__mq_stream_send,                  \
    .stream_send_end = svc__mq_stream_send_end,          \
    .stream_send_credit = svc__mq_stream_send_credit,    \
    .stream_send_reset = svc__mq_stream_send_reset,      \
    .stream_release = svc__mq_stream_release,            \
    .serve = svc__mq_serve,                              \
    .serve_close = svc__mq_serve_close,                  \
    .reply = svc__mq_reply,                              \
    .serve_takes_path = 1,                               \
  }

MQ_TRANSPORT(svc__transport_mqtt, "mqtt");
MQ_TRANSPORT(svc__transport_mqtts, "mqtts");
