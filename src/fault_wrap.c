/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fault.h"

/* Fault injection on the client side of every backend but inproc://: a
 * wrapper between the core's verbs and the transport's operations. The core
 * calls it instead of tp->call, tp->publish and tp->stream_open when the
 * conn was ever given a profile (conn->fw), so backends know nothing of it.
 * It can only act on what the client sends and on the outcomes the
 * transport reports: a loss is a request or event never handed to the
 * transport, a duplicate is a second one handed over right behind the
 * first, a delay or reorder holds the operation back before the transport
 * sees it, and a disconnect fails it as a dropped connection would, before
 * it is sent or (calls) by throwing its reply away. The decisions are
 * fault.c's, drawn exactly as for inproc://; docs/faults.md says where the
 * effects differ from inproc's. */

/* What the wrapper did with a call's current attempt (call->fw_state). */
enum {
  FWRAP_SENT = 0,  /* Handed to the transport as it is, or not yet begun. */
  FWRAP_LOST = 1,  /* Lost: nobody has it; its deadline ends it. */
  FWRAP_HELD = 2,  /* Delayed: call->fw is its struct fwrap_held. */
  FWRAP_AFTER = 3, /* Handed over; its outcome becomes a reset. */
  FWRAP_COPY = 4   /* A duplicate: call->fw is its struct fwrap_copy. */
};

struct svc__fwrap {
  struct svc__fault fault;
  struct svc__list copies; /* struct fwrap_copy.link, in flight */
  size_t ncopies;
};

/* A call, publish or stream open held back by a delay or a reorder. */
struct fwrap_held {
  struct svc__fault_item item;
  struct svc__conn *conn;
  void *op; /* struct svc_call_s, svc__pub or svc_stream_s. */
  int dup;
};

/* A duplicate request: a call of the wrapper's own, which the transport
 * carries like any other and whose reply is thrown away. It has copies of
 * what transports read (URL, method, message, deadline), since the call it
 * copies may end first. */
struct fwrap_copy {
  struct svc_call_s call;
  struct svc__list link;
  struct svc__timer timer; /* The original's deadline. */
  struct svc__fwrap *w;
};

struct svc__fault *svc__fwrap_fault(struct svc__conn *conn) {
  struct svc__fwrap *w = conn->fw;

  if (w == NULL) {
    w = svc__calloc(1, sizeof(*w));
    if (w == NULL)
      return NULL;
    svc__fault_init(&w->fault, conn->ctx);
    svc__list_init(&w->copies);
    conn->fw = w;
  }
  return &w->fault;
}

void svc__fwrap_free(struct svc__conn *conn) {
  struct svc__fwrap *w = conn->fw;

  if (w == NULL)
    return;
  assert(svc__list_empty(&w->copies));
  svc__fault_fini(&w->fault);
  svc__free(w);
  conn->fw = NULL;
}

/* Holds op as plan says (delay, else reorder). NULL when out of memory:
 * the caller then goes on at once, as inproc does. */
static struct fwrap_held *
fwrap_hold(struct svc__conn *conn, void *op, const struct svc__fault_plan *plan,
           void (*release)(struct svc__fault_item *)) {
  struct svc__fault *f = &conn->fw->fault;
  struct fwrap_held *h = svc__calloc(1, sizeof(*h));

  if (h == NULL)
    return NULL;
  h->conn = conn;
  h->op = op;
  h->dup = plan->dup;
  h->item.release = release;
  if (plan->delay_ms == 0) {
    svc__fault_hold(f, &h->item);
    return h;
  }
  if (svc__fault_delay(f, &h->item, plan->delay_ms) == 0)
    return h;
  svc__free(h);
  return NULL;
}

static void fwrap_unhold(struct fwrap_held *h) {
  svc__fault_cancel(&h->item);
  svc__free(h);
}

/* ---- Calls. */

static void fwrap_copy_free(struct fwrap_copy *c) {
  svc__timer_stop(c->call.ctx, &c->timer);
  svc__list_remove(&c->link);
  c->w->ncopies--;
  svc_msg_free(c->call.req);
  svc__url_free(c->call.url);
  svc__free(c->call.method);
  svc__free(c);
}

static void fwrap_copy_deadline(struct svc__timer *t) {
  struct fwrap_copy *c = svc__container_of(t, struct fwrap_copy, timer);

  c->call.conn->ops->call_abort(c->call.conn, &c->call);
  fwrap_copy_free(c);
}

/* Hands the transport a duplicate of call, which it has just accepted. A
 * duplicate that cannot go (out of memory, max_held duplicates already in
 * flight) is not counted as one. */
static void fwrap_copy_send(struct svc__fwrap *w, struct svc_call_s *call) {
  struct svc__conn *conn = call->conn;
  struct fwrap_copy *c = NULL;

  w->fault.stats.duplicated--;
  if (w->ncopies >= w->fault.cfg.max_held) {
    w->fault.stats.overflowed++;
    return;
  }
  c = svc__calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  c->w = w;
  c->call.ctx = call->ctx;
  c->call.conn = conn;
  c->call.url = svc__url_dup(call->url);
  c->call.method = svc__strdup(call->method);
  c->call.req = svc__msg_ref(call->req);
  c->call.method_given = call->method_given;
  c->call.idempotent = call->idempotent;
  c->call.retry = call->retry;
  c->call.deadline = call->deadline;
  c->call.start_us = call->start_us;
  c->call.attempts = call->attempts;
  c->call.trace = call->trace;
  c->call.traced = call->traced;
  c->call.in_attempt = 1;
  c->call.fw_state = FWRAP_COPY;
  c->call.fw = c;
  svc__list_init(&c->call.link);
  svc__list_init(&c->call.plink);
  svc__timer_init(&c->call.deadline_timer, NULL);
  svc__timer_init(&c->call.backoff_timer, NULL);
  svc__timer_init(&c->timer, fwrap_copy_deadline);
  svc__list_insert_tail(&w->copies, &c->link);
  w->ncopies++;
  if (c->call.url == NULL || c->call.method == NULL ||
      (call->deadline != 0 &&
       svc__timer_start(call->ctx, &c->timer, svc__call_remaining_ms(call)) !=
           0) ||
      conn->ops->call(conn, &c->call) != 0) {
    /* The transport did not take it (nor report it). */
    fwrap_copy_free(c);
    return;
  }
  w->fault.stats.duplicated++;
}

/* Hands call to the transport and, for a duplicate, a copy right behind
 * it (call stays valid: its completion is deferred). */
static int fwrap_call_send(struct svc_call_s *call, int dup) {
  struct svc__conn *conn = call->conn;
  int rc = conn->ops->call(conn, call);

  if (rc == 0 && dup)
    fwrap_copy_send(conn->fw, call);
  return rc;
}

static void fwrap_call_release(struct svc__fault_item *it) {
  struct fwrap_held *h = svc__container_of(it, struct fwrap_held, item);
  struct svc_call_s *call = h->op;
  int dup = h->dup;
  int rc;

  svc__free(h);
  call->fw_state = FWRAP_SENT;
  call->fw = NULL;
  rc = fwrap_call_send(call, dup);
  if (rc != 0)
    svc__call_attempt_done(call, svc_status_from_err(rc), rc, NULL);
}

int svc__fwrap_call(struct svc_call_s *call) {
  struct svc__conn *conn = call->conn;
  struct svc__fault_plan plan;
  struct fwrap_held *h;
  int rc;

  call->fw_state = FWRAP_SENT;
  call->fw = NULL;
  if (!svc__fault_plan(&conn->fw->fault, SVC__FAULT_CALL, &plan))
    return conn->ops->call(conn, call);
  if (plan.disconnect) {
    if (!plan.after)
      return SVC_ECONNRESET; /* Never sent. */
    /* Sent; the connection drops before the reply comes back. */
    call->fw_state = FWRAP_AFTER;
    rc = conn->ops->call(conn, call);
    if (rc != 0)
      call->fw_state = FWRAP_SENT;
    return rc;
  }
  if (plan.lose) {
    call->fw_state = FWRAP_LOST; /* Never answered: the deadline decides. */
    return 0;
  }
  if (plan.delay_ms > 0 &&
      (h = fwrap_hold(conn, call, &plan, fwrap_call_release)) != NULL) {
    call->fw_state = FWRAP_HELD;
    call->fw = h;
    return 0;
  }
  return fwrap_call_send(call, plan.dup);
}

void svc__fwrap_call_abort(struct svc_call_s *call) {
  if (call->fw_state == FWRAP_HELD)
    fwrap_unhold(call->fw);
  else if (call->fw_state != FWRAP_LOST)
    call->conn->ops->call_abort(call->conn, call);
  call->fw_state = FWRAP_SENT;
  call->fw = NULL;
}

int svc__fwrap_call_done(struct svc_call_s *call, svc_status_t *status,
                         int *err, svc_msg_t **reply) {
  int state = call->fw_state;

  if (state == FWRAP_COPY) {
    svc_msg_free(*reply);
    fwrap_copy_free(call->fw);
    return 1;
  }
  call->fw_state = FWRAP_SENT;
  /* The request went out; whatever the peer answered is lost with the
   * connection. A local failure (it may never have been sent) stays. */
  if (state == FWRAP_AFTER && (*err == 0 || *err == SVC_ESTATUS)) {
    svc_msg_free(*reply);
    *reply = NULL;
    *status = SVC_STATUS_UNAVAILABLE;
    *err = SVC_ECONNRESET;
  }
  return 0;
}

void svc__fwrap_abort_copies(svc_ctx_t *ctx) {
  struct svc__list *pos;
  struct svc__list *head;
  struct svc__conn *conn;
  struct fwrap_copy *c;

  svc__list_foreach(pos, &ctx->conns) {
    conn = svc__container_of(pos, struct svc__conn, link);
    if (conn->fw == NULL)
      continue;
    while ((head = svc__list_head(&conn->fw->copies)) != NULL) {
      c = svc__container_of(head, struct fwrap_copy, link);
      conn->ops->call_abort(conn, &c->call);
      fwrap_copy_free(c);
    }
  }
}

/* ---- Publishes. */

/* Hands pub to the transport and, for a duplicate, a copy right behind it
 * (pub stays valid: its completion is deferred). The copy has no callback;
 * one the transport refuses is counted as a dropped publish, not as a
 * duplicate. */
static int fwrap_pub_send(struct svc__conn *conn, struct svc__pub *pub,
                          int dup) {
  struct svc__pub *copy;
  int rc = conn->ops->publish(conn, pub);
  int crc = SVC_ENOMEM;

  if (rc == 0 && dup) {
    copy = svc__pub_copy(pub);
    if (copy != NULL && (crc = conn->ops->publish(conn, copy)) != 0)
      svc__pub_done(copy, crc);
    if (crc != 0)
      conn->fw->fault.stats.duplicated--;
  }
  return rc;
}

static void fwrap_pub_release(struct svc__fault_item *it) {
  struct fwrap_held *h = svc__container_of(it, struct fwrap_held, item);
  struct svc__pub *pub = h->op;
  struct svc__conn *conn = h->conn;
  int dup = h->dup;
  int rc;

  svc__free(h);
  pub->fw = NULL;
  rc = fwrap_pub_send(conn, pub, dup);
  if (rc != 0)
    svc__pub_done(pub, rc);
}

int svc__fwrap_publish(struct svc__conn *conn, struct svc__pub *pub) {
  struct svc__fault *f = &conn->fw->fault;
  struct svc__fault_plan plan;
  struct fwrap_held *h;
  int rc;

  if (!svc__fault_plan(f, SVC__FAULT_PUBLISH, &plan))
    return conn->ops->publish(conn, pub);
  if (plan.disconnect) {
    svc__pub_done(pub, SVC_ECONNRESET);
    return 0;
  }
  if (plan.lose) {
    /* Invisible to the publisher, as on a network; counted all the same. */
    conn->metrics->m.dropped++;
    pub->fw_lost = 1;
    svc__pub_done(pub, 0);
    return 0;
  }
  if ((plan.delay_ms > 0 || plan.reorder) &&
      (h = fwrap_hold(conn, pub, &plan, fwrap_pub_release)) != NULL) {
    pub->fw = h;
    return 0;
  }
  rc = fwrap_pub_send(conn, pub, plan.dup);
  /* What was held back for reordering goes out behind this one. */
  if (rc == 0)
    svc__fault_release_held(f);
  return rc;
}

void svc__fwrap_publish_abort(struct svc__pub *pub) {
  fwrap_unhold(pub->fw);
  pub->fw = NULL;
}

/* ---- Stream opens (stream data suffers no faults here). */

static void fwrap_stream_release(struct svc__fault_item *it) {
  struct fwrap_held *h = svc__container_of(it, struct fwrap_held, item);
  struct svc_stream_s *s = h->op;
  struct svc__conn *conn = h->conn;
  int rc;

  svc__free(h);
  s->fw = NULL;
  rc = conn->ops->stream_open(conn, s);
  if (rc != 0)
    svc__stream_on_reset(s, rc);
}

int svc__fwrap_stream_open(struct svc__conn *conn, struct svc_stream_s *s) {
  struct svc__fault_plan plan;
  struct fwrap_held *h;

  if (!svc__fault_plan(&conn->fw->fault, SVC__FAULT_STREAM_OPEN, &plan))
    return conn->ops->stream_open(conn, s);
  if (plan.disconnect) {
    /* Reported like a refused connect: through on_close. */
    svc__stream_on_reset(s, SVC_ECONNRESET);
    return 0;
  }
  if (plan.delay_ms > 0 &&
      (h = fwrap_hold(conn, s, &plan, fwrap_stream_release)) != NULL) {
    s->fw = h;
    return 0;
  }
  return conn->ops->stream_open(conn, s);
}

void svc__fwrap_stream_cancel(struct svc_stream_s *s) {
  fwrap_unhold(s->fw);
  s->fw = NULL;
}
