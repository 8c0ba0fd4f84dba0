/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp.h"

#include <stdio.h>
#include <stdlib.h>

/* The client side of tcp:// and unix://: one svc__conn per endpoint, and
 * under it one wire (connection) at a time, plus wires draining after a
 * GOAWAY. Work waits in one list while there is no ready wire and goes out
 * in order once there is; subscriptions are kept apart because every new
 * wire must carry them again. Connecting is lazy; a failed connect backs
 * off exponentially with jitter, and while backing off new calls, streams
 * and publishes fail fast with the last connect error (subscriptions wait,
 * and are the reason to keep reconnecting). Publishes also wait, still
 * unencoded, while the wire's output is over max_outbound: bytes handed to
 * the wire cannot be taken back, but a waiting publish can still be
 * refused or dropped by the overflow policy (max_pending_publishes of them
 * at most), and goes out in order once the output drains. */

enum tc_state { TC_IDLE, TC_CONNECTING, TC_READY, TC_BACKOFF };
enum tc_kind { TC_CALL, TC_STREAM, TC_SUB, TC_PUB };

struct tc_link;

/* One call, stream, subscription or publish of this conn. */
struct tc_op {
  struct svc__list link; /* c->waiting or c->subs */
  enum tc_kind kind;
  void *obj;
  struct tc_link *on; /* The wire it went out on; NULL while waiting. */
  uint32_t id;
  int acked; /* SUB: the first SUBACK came. */
  /* SUB: the length of a filter that names one topic, which the server
   * may then leave out of its events (SVC__FEATURE_BARE_EVENTS); 0 for a
   * filter with wildcards or $share. */
  size_t name_len;
};

/* The client's state of one wire. */
struct tc_link {
  struct tcpc *c;
  struct svc__wire *w;
  struct svc__list link; /* c->links */
  struct svc__idmap ids;
  uint32_t last_id;
  size_t open;       /* Ids counting against the peer's max_streams. */
  uint64_t ready_ms; /* When it became ready (0: never). */
  int draining;      /* Replaced (GOAWAY, ids exhausted): closes once
                      * nothing is open on it. */
  /* A QoS >= 1 event that found its subscription full: reading stops
   * until the application makes room. */
  struct tc_op *parked_op;
  svc_msg_t *parked_msg;
  int parked_qos;
};

struct tcpc {
  struct svc__conn *conn;
  struct svc__tcp_opts opts;
  int is_pipe;
  enum tc_state state;
  struct tc_link *cur;      /* Connecting or ready. */
  struct svc__list links;   /* Every live tc_link. */
  struct svc__list waiting; /* tc_op not yet sent: calls, streams, pubs. */
  struct svc__list subs;    /* tc_op of every live subscription. */
  size_t npubs_waiting;
  uint64_t backoff_ms;
  struct svc__timer timer;
  int last_err;
  int closing;
};

#define TC(conn) ((struct tcpc *)(conn)->tp)

static void tc_connect(struct tcpc *c);
static void tc_pump(struct tcpc *c);
static void tc_goaway(struct tcpc *c, struct tc_link *l, uint32_t last_id);

/* ---- Ops. */

static struct tc_op *tc_op_new(enum tc_kind kind, void *obj) {
  struct tc_op *op = svc__calloc(1, sizeof(*op));

  if (op != NULL) {
    op->kind = kind;
    op->obj = obj;
    svc__list_init(&op->link);
  }
  return op;
}

/* Closes op's id on its wire (nothing more will be sent or accepted). */
static void tc_op_unlink(struct tc_op *op) {
  struct tc_link *l = op->on;

  if (l != NULL) {
    svc__idmap_del(&l->ids, op->id);
    op->on = NULL;
    op->id = 0;
    if (--l->open == 0 && l->draining)
      svc__wire_close(l->w, SVC_ECONNRESET, 1);
  }
}

static void tc_op_free(struct tcpc *c, struct tc_op *op) {
  tc_op_unlink(op);
  if (op->kind == TC_PUB && !svc__list_empty(&op->link)) {
    c->npubs_waiting--;
    svc__pub_queue_level(c->conn, c->npubs_waiting,
                         c->conn->ctx->opts.max_pending_publishes);
  }
  svc__list_remove(&op->link);
  svc__free(op);
}

static void tc_unpark(struct tc_link *l) {
  svc_msg_free(l->parked_msg);
  l->parked_msg = NULL;
  l->parked_op = NULL;
}

/* Ends op with err because it can no longer be sent or answered. */
static void tc_op_fail(struct tcpc *c, struct tc_op *op, int err) {
  switch (op->kind) {
  case TC_CALL: {
    struct svc_call_s *call = op->obj;
    call->tp = NULL;
    tc_op_free(c, op);
    svc__call_attempt_done(call, SVC_STATUS_UNAVAILABLE, err, NULL);
    break;
  }
  case TC_STREAM: {
    struct svc_stream_s *s = op->obj;
    s->tp = NULL;
    tc_op_free(c, op);
    svc__stream_on_reset(s, err);
    break;
  }
  case TC_PUB: {
    struct svc__pub *pub = op->obj;
    pub->tp = NULL;
    tc_op_free(c, op);
    svc__pub_done(pub, err);
    break;
  }
  case TC_SUB:
    /* Subscriptions outlive connections: sent again on the next one. */
    tc_op_unlink(op);
    break;
  }
}

/* ---- Sending. */

/* Encodes op's opening frame on the current (ready) wire and, unless it is
 * a QoS 0 publish, gives it the next id. 0, SVC_ENOTCONN when the wire's
 * ids are used up, or the encoder's error (SVC_EMSGSIZE). */
static int tc_send(struct tcpc *c, struct tc_op *op) {
  struct tc_link *l = c->cur;
  struct svc__frame_field f[3];
  char num[24];
  size_t n = 0;
  uint32_t id;
  uint8_t type;
  uint8_t flags = 0;
  const svc_msg_t *msg = NULL;
  int body = 0;
  int opens = 1;
  int rc;

  if (l->last_id >= SVC__FRAME_MAX_ID)
    return SVC_ENOTCONN; /* Out of ids: the wire is replaced below. */
  id = l->last_id + 1;
  switch (op->kind) {
  case TC_CALL: {
    struct svc_call_s *call = op->obj;
    uint64_t left = svc__call_remaining_ms(call);
    type = SVC__F_REQUEST;
    f[n++] = SVC__FIELD(":method", call->method, strlen(call->method));
    f[n++] =
        SVC__FIELD(":path", call->url->path_raw, strlen(call->url->path_raw));
    if (left != UINT64_MAX) {
      snprintf(num, sizeof(num), "%llu", (unsigned long long)left);
      f[n++] = SVC__FIELD(":timeout", num, strlen(num));
    }
    msg = call->req;
    body = 1;
    break;
  }
  case TC_STREAM: {
    struct svc_stream_s *s = op->obj;
    type = SVC__F_STREAM_OPEN;
    snprintf(num, sizeof(num), "%llu", (unsigned long long)s->window);
    f[n++] = SVC__FIELD(":path", s->path, strlen(s->path));
    f[n++] = SVC__FIELD(":window", num, strlen(num));
    msg = s->open_headers;
    break;
  }
  case TC_SUB: {
    struct svc_sub_s *sub = op->obj;
    type = SVC__F_SUBSCRIBE;
    flags = (uint8_t)sub->opts.qos;
    f[n++] = SVC__FIELD(":filter", sub->filter, strlen(sub->filter));
    break;
  }
  case TC_PUB:
  default: {
    struct svc__pub *pub = op->obj;
    type = SVC__F_PUBLISH;
    flags = (uint8_t)(pub->qos | (pub->retain ? SVC__FRAME_RETAIN : 0));
    f[n++] = SVC__FIELD(":topic", pub->topic, strlen(pub->topic));
    msg = pub->msg;
    body = 1;
    opens = pub->qos > 0;
    break;
  }
  }
  rc = svc__wire_send_block(l->w, type, flags, opens ? id : 0, f, n, msg, body);
  if (rc != 0)
    return rc;
  if (!opens)
    return 0;
  l->last_id = id;
  rc = svc__idmap_put(&l->ids, id, op);
  if (rc != 0) {
    svc__wire_close(l->w, SVC_ENOMEM, 0);
    return rc;
  }
  op->on = l;
  op->id = id;
  l->open++;
  return 0;
}

/* Nonzero when there is a ready wire, with a free id under the peer's
 * max_streams if the frame opens one. */
static int tc_ready_for(struct tcpc *c, int opens) {
  return c->state == TC_READY && c->cur != NULL &&
         (!opens || c->cur->open < c->cur->w->peer.max_streams);
}

/* Result of trying to send op from the waiting list. */
static void tc_send_failed(struct tcpc *c, struct tc_op *op, int rc) {
  if (op->kind == TC_CALL) {
    struct svc_call_s *call = op->obj;
    call->tp = NULL;
    tc_op_free(c, op);
    svc__call_attempt_done(call,
                           rc == SVC_EMSGSIZE ? SVC_STATUS_RESOURCE_EXHAUSTED
                                              : SVC_STATUS_UNAVAILABLE,
                           rc, NULL);
  } else if (op->kind == TC_SUB) {
    struct svc_sub_s *sub = op->obj;
    sub->tp = NULL;
    tc_op_free(c, op);
    svc__sub_failed(sub, rc);
  } else {
    tc_op_fail(c, op, rc);
  }
}

/* The current wire ran out of ids (2^31 opened): say goodbye, let what is
 * open on it finish, and carry on with a new one. */
static void tc_retire(struct tcpc *c) {
  struct tc_link *l = c->cur;

  svc__wire_send_goaway(l->w, l->last_id, SVC__FC_NO_ERROR, "ids exhausted");
  l->draining = 1;
  c->cur = NULL;
  c->state = TC_IDLE;
  if (l->open == 0)
    svc__wire_close(l->w, SVC_ECONNRESET, 1);
  tc_connect(c);
}

/* Nonzero when the current wire's output is over max_outbound: publishes
 * then wait here, unencoded, until tc_on_drain. */
static int tc_out_full(const struct tcpc *c) {
  return c->cur != NULL && c->cur->w->out_bytes >= c->opts.wire.max_outbound;
}

static void tc_pump_ops(struct tcpc *c) {
  struct svc__list *pos;
  struct svc__list *tmp;
  struct tc_op *op;
  int rc;

  if (c->state != TC_READY)
    return;
  /* Subscriptions first: events published meanwhile should reach them. */
  svc__list_foreach_safe(pos, tmp, &c->subs) {
    op = svc__container_of(pos, struct tc_op, link);
    if (op->on != NULL)
      continue;
    if (!tc_ready_for(c, 1))
      return;
    rc = tc_send(c, op);
    if (rc == SVC_ENOTCONN && c->state == TC_READY) {
      tc_retire(c);
      return;
    }
    if (rc != 0)
      tc_send_failed(c, op, rc);
  }
  while ((pos = svc__list_head(&c->waiting)) != NULL) {
    op = svc__container_of(pos, struct tc_op, link);
    if (!tc_ready_for(c, op->kind != TC_PUB ||
                             ((struct svc__pub *)op->obj)->qos > 0))
      return;
    /* What waits behind it waits too, so that nothing overtakes it. */
    if (op->kind == TC_PUB && tc_out_full(c))
      return;
    svc__list_remove(&op->link);
    if (op->kind == TC_PUB)
      c->npubs_waiting--;
    rc = tc_send(c, op);
    if (rc == SVC_ENOTCONN && c->state == TC_READY) {
      /* Ids ran out: put it back in front and move to a fresh wire. */
      svc__list_insert_tail(c->waiting.next, &op->link);
      if (op->kind == TC_PUB)
        c->npubs_waiting++;
      tc_retire(c);
      return;
    }
    if (rc != 0) {
      tc_send_failed(c, op, rc);
      continue;
    }
    if (op->kind == TC_PUB && op->on == NULL) {
      /* QoS 0: done once it is queued for the socket. */
      struct svc__pub *pub = op->obj;
      pub->tp = NULL;
      tc_op_free(c, op);
      svc__pub_done(pub, 0);
    }
  }
}

static void tc_pump(struct tcpc *c) {
  tc_pump_ops(c);
  svc__pub_queue_level(c->conn, c->npubs_waiting,
                       c->conn->ctx->opts.max_pending_publishes);
}

/* Queues op behind the work already waiting, connecting if needed, or
 * refuses it while backing off. */
static int tc_submit(struct tcpc *c, struct tc_op *op) {
  if (c->state == TC_BACKOFF)
    return c->last_err != 0 ? c->last_err : SVC_ECONNREFUSED;
  svc__list_insert_tail(&c->waiting, &op->link);
  if (op->kind == TC_PUB)
    c->npubs_waiting++;
  if (c->state == TC_IDLE)
    tc_connect(c);
  else
    tc_pump(c);
  return 0;
}

/* ---- Receiving. */

static int tc_on_frame(struct svc__wire *w, struct svc__frame *f,
                       const char **why) {
  struct tc_link *l = w->owner;
  struct tcpc *c = l->c;
  struct tc_op *op;
  int rc;

  if (f->type == SVC__F_GOAWAY) {
    tc_goaway(c, l, f->value);
    return 0;
  }
  if (f->id > l->last_id) {
    *why = "frame for an id the client never opened";
    return SVC_EPROTO;
  }
  op = svc__idmap_get(&l->ids, f->id);
  switch (f->type) {
  case SVC__F_RESPONSE:
    if (op == NULL)
      return 0; /* Cancelled: crossed on the wire. */
    if (op->kind != TC_CALL)
      break;
    {
      struct svc_call_s *call = op->obj;
      svc_msg_t *reply = f->msg;
      f->msg = NULL;
      call->tp = NULL;
      tc_op_free(c, op);
      svc__call_attempt_done(call, (svc_status_t)f->status,
                             f->status == SVC_STATUS_OK ? 0 : SVC_ESTATUS,
                             reply);
      tc_pump(c);
    }
    return 0;
  case SVC__F_STREAM_ACCEPT:
  case SVC__F_DATA:
  case SVC__F_END:
  case SVC__F_RESET:
  case SVC__F_CREDIT:
    if (op == NULL)
      return 0;
    if (op->kind != TC_STREAM)
      break;
    return svc__tcp_stream_frame(op->obj, f, why);
  case SVC__F_SUBACK:
    if (op == NULL)
      return 0;
    if (op->kind != TC_SUB)
      break;
    {
      struct svc_sub_s *sub = op->obj;
      if (f->code != SVC__FC_NO_ERROR) {
        sub->tp = NULL;
        tc_op_free(c, op);
        svc__sub_failed(sub, svc__frame_code_err(f->code));
        tc_pump(c);
      } else if (!op->acked) {
        op->acked = 1;
        svc__sub_ready(sub);
      }
    }
    return 0;
  case SVC__F_EVENT:
    if (op == NULL)
      return 0; /* Unsubscribed: crossed on the wire. */
    if (op->kind != TC_SUB)
      break;
    {
      struct svc_sub_s *sub = op->obj;
      int qos = f->flags & SVC__FRAME_QOS_MASK;
      if (f->topic.p != NULL)
        rc = svc__msg_set_topic_n(f->msg, f->topic.p, f->topic.len);
      else if (op->name_len > 0)
        rc = svc__msg_set_topic_n(f->msg, sub->filter, op->name_len);
      else {
        *why = "EVENT without :topic on a wildcard subscription";
        return SVC_EPROTO;
      }
      if (rc != 0)
        return SVC_ENOMEM;
      if (qos > 0 && !svc__sub_has_room(sub)) {
        /* Keep it, stop reading, and go on when the application has
         * consumed some (tc_sub_room). */
        l->parked_op = op;
        l->parked_msg = f->msg;
        l->parked_qos = qos;
        f->msg = NULL;
        svc__wire_pause(w, SVC__WIRE_PAUSE_OWNER);
        return 0;
      }
      svc__sub_event(sub, svc_msg_topic(f->msg), f->msg, qos);
      if (qos > 0 && !svc__sub_has_room(sub))
        svc__wire_pause(w, SVC__WIRE_PAUSE_OWNER);
    }
    return 0;
  case SVC__F_PUBACK:
    if (op == NULL)
      return 0;
    if (op->kind != TC_PUB)
      break;
    {
      struct svc__pub *pub = op->obj;
      pub->tp = NULL;
      tc_op_free(c, op);
      svc__pub_done(pub, svc__frame_code_err(f->code));
      tc_pump(c);
    }
    return 0;
  default:
    *why = "frame type a server does not send";
    return SVC_EPROTO;
  }
  *why = "frame type does not match what the id is";
  return SVC_EPROTO;
}

static void tc_sub_room(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct tc_op *op = sub->tp;
  struct tc_link *l;

  if (op == NULL || op->on == NULL)
    return;
  l = op->on;
  if (l->parked_op != NULL) {
    struct svc_sub_s *psub = l->parked_op->obj;
    if (!svc__sub_has_room(psub))
      return;
    svc__sub_event(psub, svc_msg_topic(l->parked_msg), l->parked_msg,
                   l->parked_qos);
    tc_unpark(l);
  }
  if (svc__sub_has_room(sub))
    svc__wire_resume(l->w, SVC__WIRE_PAUSE_OWNER);
}

/* GOAWAY from the server: the ids above last_id were never seen, so they
 * go out again on a new wire; the rest finish on this one. */
static void tc_goaway(struct tcpc *c, struct tc_link *l, uint32_t last_id) {
  struct svc__list redo;
  struct svc__list *pos;
  struct svc__list *tmp;
  struct tc_op *op;
  size_t i;
  struct tc_op **ops;
  size_t n = 0;

  if (c->cur == l) {
    c->cur = NULL;
    c->state = TC_IDLE;
  }
  svc__list_init(&redo);
  ops = svc__calloc(l->ids.len + 1, sizeof(*ops));
  if (ops == NULL) {
    svc__wire_close(l->w, SVC_ENOMEM, 0);
    return;
  }
  for (i = 0; i < l->ids.cap; i++) {
    if (l->ids.keys[i] != 0 &&
        (l->ids.keys[i] > last_id ||
         ((struct tc_op *)l->ids.vals[i])->kind == TC_SUB))
      ops[n++] = l->ids.vals[i];
  }
  /* Oldest first, ahead of work that waited already. */
  for (i = 1; i < n; i++) {
    struct tc_op *t = ops[i];
    size_t j = i;
    while (j > 0 && ops[j - 1]->id > t->id) {
      ops[j] = ops[j - 1];
      j--;
    }
    ops[j] = t;
  }
  for (i = 0; i < n; i++) {
    op = ops[i];
    tc_op_unlink(op);
    if (op->kind == TC_SUB)
      continue; /* Stays in c->subs, unsent. */
    svc__list_insert_tail(&redo, &op->link);
    if (op->kind == TC_PUB)
      c->npubs_waiting++;
  }
  svc__free(ops);
  /* redo goes before what was waiting. */
  svc__list_foreach_safe(pos, tmp, &c->waiting) {
    svc__list_remove(pos);
    svc__list_insert_tail(&redo, pos);
  }
  svc__list_foreach_safe(pos, tmp, &redo) {
    svc__list_remove(pos);
    svc__list_insert_tail(&c->waiting, pos);
  }
  if (l->parked_op != NULL && l->parked_op->on == NULL)
    tc_unpark(l);
  /* Only now: closing it earlier would fail the ops moved above. */
  l->draining = 1;
  if (l->open == 0)
    svc__wire_close(l->w, SVC_ECONNRESET, 1);
  if (!c->closing &&
      (!svc__list_empty(&c->waiting) || !svc__list_empty(&c->subs)))
    tc_connect(c);
}

/* ---- Connection life. */

static void tc_on_ready(struct svc__wire *w) {
  struct tc_link *l = w->owner;
  struct tcpc *c = l->c;

  if (c->cur != l)
    return;
  c->state = TC_READY;
  c->last_err = 0;
  svc__conn_state(c->conn, SVC_CONN_CONNECTED, 0);
  l->ready_ms = svc__now_ms(c->conn->ctx);
  tc_pump(c);
}

/* The wire's output fell under max_outbound: the publishes that waited
 * for it go out. */
static void tc_on_drain(struct svc__wire *w) {
  struct tc_link *l = w->owner;

  if (l->c->cur == l && !l->c->closing)
    tc_pump(l->c);
}

static void tc_backoff_cb(struct svc__timer *t) {
  struct tcpc *c = svc__container_of(t, struct tcpc, timer);

  if (c->state != TC_BACKOFF || c->closing)
    return;
  c->state = TC_IDLE;
  if (!svc__list_empty(&c->subs) || !svc__list_empty(&c->waiting))
    tc_connect(c);
}

static void tc_backoff(struct tcpc *c) {
  double jitter = 0.8 + 0.4 * svc__rand_unit(c->conn->ctx);
  uint64_t delay = (uint64_t)((double)c->backoff_ms * jitter);

  c->state = TC_BACKOFF;
  svc__conn_state(c->conn, SVC_CONN_BACKOFF, c->last_err);
  svc__timer_start(c->conn->ctx, &c->timer, delay > 0 ? delay : 1);
  c->backoff_ms = c->backoff_ms * 2 > c->opts.reconnect_max_ms
                      ? c->opts.reconnect_max_ms
                      : c->backoff_ms * 2;
}

static void tc_on_down(struct svc__wire *w, int err) {
  struct tc_link *l = w->owner;
  struct tcpc *c = l->c;
  uint32_t id;
  struct tc_op *op;
  int was_cur = c->cur == l;
  int was_ready = l->ready_ms != 0;
  uint64_t lived = was_ready ? svc__now_ms(c->conn->ctx) - l->ready_ms : 0;
  int fail = err != 0 ? err : SVC_ECONNRESET;

  tc_unpark(l);
  if (was_cur) {
    c->cur = NULL;
    c->state = TC_IDLE;
    c->last_err = fail;
  }
  while ((op = svc__idmap_pop(&l->ids, &id)) != NULL) {
    op->on = NULL;
    op->id = 0;
    l->open--;
    tc_op_fail(c, op, fail == SVC_EOF ? SVC_ECONNRESET : fail);
  }
  if (!was_cur || c->closing)
    return;
  if (!was_ready) {
    /* The connect failed: what waited for it fails too. */
    struct svc__list *pos;
    while ((pos = svc__list_head(&c->waiting)) != NULL)
      tc_op_fail(c, svc__container_of(pos, struct tc_op, link), fail);
    tc_backoff(c);
    return;
  }
  if (svc__list_empty(&c->subs) && svc__list_empty(&c->waiting)) {
    svc__conn_state(c->conn, SVC_CONN_CLOSED, fail);
    return; /* Lazily reconnected by the next verb. */
  }
  if (lived >= 1000) {
    c->backoff_ms = c->opts.reconnect_ms;
    tc_connect(c);
  } else {
    tc_backoff(c);
  }
}

static void tc_on_closed(struct svc__wire *w) {
  struct tc_link *l = w->owner;
  struct tcpc *c = l->c;

  svc__list_remove(&l->link);
  svc__idmap_free(&l->ids);
  svc__free(l);
  if (c->closing && svc__list_empty(&c->links))
    svc__conn_closed(c->conn);
}

static const struct svc__wire_cbs tc_wire_cbs = {
    .on_frame = tc_on_frame,
    .on_ready = tc_on_ready,
    .on_drain = tc_on_drain,
    .on_down = tc_on_down,
    .on_closed = tc_on_closed,
};

static void tc_connect(struct tcpc *c) {
  struct svc__conn *conn = c->conn;
  struct tc_link *l;
  int rc;

  if (c->closing || c->state == TC_CONNECTING || c->state == TC_READY)
    return;
  l = svc__calloc(1, sizeof(*l));
  if (l == NULL) {
    c->last_err = SVC_ENOMEM;
    tc_backoff(c);
    return;
  }
  l->c = c;
  l->w = svc__wire_new(conn->ctx, c->is_pipe, &c->opts.wire, &tc_wire_cbs, l);
  if (l->w == NULL) {
    svc__free(l);
    c->last_err = SVC_ENOMEM;
    tc_backoff(c);
    return;
  }
  svc__list_insert_tail(&c->links, &l->link);
  c->cur = l;
  c->state = TC_CONNECTING;
  svc__conn_state(conn, SVC_CONN_CONNECTING, 0);
  rc = svc__wire_connect(l->w, conn->url->host, conn->url->port,
                         conn->url->host);
  if (rc != 0)
    svc__wire_close(l->w, rc, 0); /* on_down backs off. */
}

/* ---- Operations table: client verbs. */

static int tc_init(struct svc__conn *conn) {
  struct tcpc *c = TC(conn);
  int rc;

  c->conn = conn;
  svc__list_init(&c->links);
  svc__list_init(&c->waiting);
  svc__list_init(&c->subs);
  svc__timer_init(&c->timer, tc_backoff_cb);
  c->is_pipe = strcmp(conn->url->scheme, "unix") == 0;
  rc = svc__tcp_opts_parse(conn->url->query, &c->opts);
  if (rc != 0)
    return rc;
  c->backoff_ms = c->opts.reconnect_ms;
  if (c->is_pipe)
    return conn->url->host[0] == '/' ? 0 : SVC_EINVAL;
  return conn->url->host[0] != '\0' && conn->url->port > 0 ? 0 : SVC_EINVAL;
}

static void tc_close(struct svc__conn *conn) {
  struct tcpc *c = TC(conn);
  struct svc__list *pos;
  struct svc__list *tmp;

  c->closing = 1;
  if (c->conn == NULL) {
    /* init never ran far enough to own anything. */
    svc__conn_closed(conn);
    return;
  }
  svc__timer_stop(conn->ctx, &c->timer);
  while ((pos = svc__list_head(&c->waiting)) != NULL)
    tc_op_fail(c, svc__container_of(pos, struct tc_op, link), SVC_ECANCELED);
  if (svc__list_empty(&c->links)) {
    svc__conn_closed(conn);
    return;
  }
  svc__list_foreach_safe(pos, tmp, &c->links) {
    struct tc_link *l = svc__container_of(pos, struct tc_link, link);
    svc__wire_send_goaway(l->w, 0, SVC__FC_NO_ERROR, "client closing");
    svc__wire_close(l->w, SVC_ECANCELED, 1);
  }
}

static int tc_call(struct svc__conn *conn, struct svc_call_s *call) {
  struct tcpc *c = TC(conn);
  struct tc_op *op = tc_op_new(TC_CALL, call);
  int rc;

  if (op == NULL)
    return SVC_ENOMEM;
  call->tp = op;
  rc = tc_submit(c, op);
  if (rc != 0) {
    call->tp = NULL;
    svc__free(op);
  }
  return rc;
}

static void tc_call_abort(struct svc__conn *conn, struct svc_call_s *call) {
  struct tcpc *c = TC(conn);
  struct tc_op *op = call->tp;

  if (op == NULL)
    return;
  if (op->on != NULL)
    svc__wire_send_fixed(op->on->w, SVC__F_CANCEL, 0, op->id, NULL, 0);
  call->tp = NULL;
  tc_op_free(c, op);
  tc_pump(c);
}

/* Fails the oldest waiting publish with SVC_ENOBUFS (dropped, overflow).
 * 1 when there was one. */
static int tc_drop_oldest_pub(struct tcpc *c) {
  struct svc__list *pos;

  svc__list_foreach(pos, &c->waiting) {
    struct tc_op *op = svc__container_of(pos, struct tc_op, link);
    if (op->kind == TC_PUB) {
      struct svc__pub *pub = op->obj;
      /* Off the list here: the new one takes its place at once, so the
       * queue never drained (tc_op_free() would tell the watermark). */
      svc__list_remove(&op->link);
      c->npubs_waiting--;
      pub->tp = NULL;
      tc_op_free(c, op);
      svc__pub_done(pub, SVC_ENOBUFS);
      return 1;
    }
  }
  return 0;
}

static int tc_publish(struct svc__conn *conn, struct svc__pub *pub) {
  struct tcpc *c = TC(conn);
  struct tc_op *op;
  int rc;

  /* Refused while backing off, before the policy could drop anything. */
  if (c->state == TC_BACKOFF)
    return c->last_err != 0 ? c->last_err : SVC_ECONNREFUSED;
  /* Bounded. Refused (FAIL_NEW, WAIT), the caller keeps the message and
   * may retry once the watermark says low; a drop ends dropped, reported
   * and counted (overflow). What the wire already took stays. */
  if (c->npubs_waiting >= conn->ctx->opts.max_pending_publishes) {
    size_t depth = c->npubs_waiting;
    if (c->opts.overflow == SVC_OVERFLOW_DROP_OLDEST &&
        tc_drop_oldest_pub(c)) {
      svc__pub_queue_full(conn, depth); /* After the drop: still full. */
    } else if (c->opts.overflow == SVC_OVERFLOW_DROP_NEWEST) {
      svc__pub_queue_full(conn, depth);
      svc__pub_done(pub, SVC_ENOBUFS);
      return 0;
    } else {
      svc__pub_queue_full(conn, depth);
      return SVC_EAGAIN;
    }
  }
  op = tc_op_new(TC_PUB, pub);
  if (op == NULL)
    return SVC_ENOMEM;
  pub->tp = op;
  rc = tc_submit(c, op);
  if (rc != 0) {
    pub->tp = NULL;
    svc__free(op);
  }
  return rc;
}

static void tc_publish_abort(struct svc__conn *conn, struct svc__pub *pub) {
  if (pub->tp != NULL) {
    tc_op_free(TC(conn), pub->tp);
    pub->tp = NULL;
  }
}

static int tc_subscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct tcpc *c = TC(conn);
  struct tc_op *op = tc_op_new(TC_SUB, sub);

  if (op == NULL)
    return SVC_ENOMEM;
  if (svc__topic_is_name(sub->filter))
    op->name_len = strlen(sub->filter);
  sub->tp = op;
  svc__list_insert_tail(&c->subs, &op->link);
  if (c->state == TC_IDLE)
    tc_connect(c);
  else
    tc_pump(c);
  return 0;
}

static void tc_unsubscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct tcpc *c = TC(conn);
  struct tc_op *op = sub->tp;
  struct tc_link *l;

  if (op == NULL)
    return;
  l = op->on;
  if (l != NULL) {
    svc__wire_send_fixed(l->w, SVC__F_UNSUBSCRIBE, 0, op->id, NULL, 0);
    if (l->parked_op == op) {
      tc_unpark(l);
      svc__wire_resume(l->w, SVC__WIRE_PAUSE_OWNER);
    }
  }
  sub->tp = NULL;
  tc_op_free(c, op);
}

/* ---- Streams, opening side. */

static int tc_stream_open(struct svc__conn *conn, struct svc_stream_s *s) {
  struct tcpc *c = TC(conn);
  struct tc_op *op = tc_op_new(TC_STREAM, s);
  int rc;

  if (op == NULL)
    return SVC_ENOMEM;
  s->tp = op;
  rc = tc_submit(c, op);
  if (rc != 0) {
    /* Reported like a refused connect: through on_close. */
    s->tp = NULL;
    svc__free(op);
    svc__stream_on_reset(s, rc);
  }
  return 0;
}

/* The wire and id a client stream is on, or NULL. */
struct svc__wire *svc__tcpc_stream_wire(struct svc_stream_s *s, uint32_t *id) {
  struct tc_op *op = s->tp;

  if (op == NULL || op->on == NULL)
    return NULL;
  *id = op->id;
  return op->on->w;
}

void svc__tcpc_stream_forget(struct svc_stream_s *s) {
  struct tc_op *op = s->tp;

  if (op != NULL) {
    s->tp = NULL;
    tc_op_free(TC(s->conn), op);
    tc_pump(TC(s->conn));
  }
}

/* tcp:// and unix:// differ only in the socket: one table each, from one
 * list of operations. */
#define TCP_TRANSPORT(name)                                                 \
  {                                                                         \
    .scheme = name, .default_method = "CALL",                               \
    .conn_size = sizeof(struct tcpc), .server_size = SVC__TCPS_SIZE,        \
    .init = tc_init, .close = tc_close, .call = tc_call,                    \
    .call_abort = tc_call_abort, .publish = tc_publish,                     \
    .publish_abort = tc_publish_abort, .subscribe = tc_subscribe,           \
    .unsubscribe = tc_unsubscribe, .sub_room = tc_sub_room,                 \
    .stream_open = tc_stream_open, .stream_accept = svc__tcp_stream_accept, \
    .stream_send = svc__tcp_stream_send,                                    \
    .stream_send_end = svc__tcp_stream_send_end,                            \
    .stream_send_credit = svc__tcp_stream_send_credit,                      \
    .stream_send_reset = svc__tcp_stream_send_reset,                        \
    .stream_release = svc__tcp_stream_release, .serve = svc__tcps_serve,    \
    .serve_close = svc__tcps_serve_close, .reply = svc__tcps_reply,         \
  }

const struct svc__transport svc__transport_tcp = TCP_TRANSPORT("tcp");

/* unix:///path/to.sock: the same protocol over a Unix domain socket. */
const struct svc__transport svc__transport_unix = TCP_TRANSPORT("unix");
