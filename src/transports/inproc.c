/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fault.h"

/* inproc://NAME: every verb inside one context, with no server process and
 * no sockets. A call becomes a request on the server that serves
 * inproc://NAME in the same context; a stream links two core streams head
 * to tail; topics live in the context's hub named inproc://NAME, which a
 * served inproc endpoint shares. The core does the rest (deferral, flow
 * control, queues), so this file only connects the two sides. Endpoints
 * are scoped to their context, as ZeroMQ scopes inproc to its context.
 *
 * An endpoint may carry a fault profile (fault.c, docs/faults.md; the
 * core reads the fault-* options of URIs): the hooks below ask it what
 * each call, publish and stream suffers, and hold back what it delays.
 * Without a profile nothing changes. This is richer than the client-side
 * wrapper the other backends get (fault_wrap.c): it acts on the server
 * side too (duplicate handler runs, stream data). */

extern const struct svc__transport svc__transport_inproc;

struct inproc_conn {
  struct svc__fault fault;
};

/* What an object's tp points at: for calls and streams the peer side
 * (request, stream), or one of our own records while a fault holds it. */
enum {
  INPROC_TP_PEER = 0,
  INPROC_TP_HELD = 1,  /* A struct inproc_held (delayed or reordered). */
  INPROC_TP_DOOMED = 2 /* A struct inproc_doomed (stream disconnected). */
};

/* An operation a fault holds back: a call to dispatch, an event to publish
 * or a stream to open, when its item is released. */
struct inproc_held {
  struct svc__fault_item item;
  struct svc__conn *conn;
  struct svc__hub *hub;
  void *op; /* struct svc_call_s, svc__pub or svc_stream_s. */
  int dup;
};

/* A stream whose connection a fault dropped while it was sending: its
 * reset is reported on a later turn, outside the core's send loop. */
struct inproc_doomed {
  struct svc__task task;
  struct svc_stream_s *s;
};

struct svc__fault *svc__inproc_fault(struct svc__conn *conn) {
  if (conn->ops != &svc__transport_inproc)
    return NULL;
  return &((struct inproc_conn *)conn->tp)->fault;
}

static struct svc__fault *inproc_fault(struct svc__conn *conn) {
  return &((struct inproc_conn *)conn->tp)->fault;
}

static struct inproc_held *inproc_held_new(struct svc__conn *conn, void *op,
                                           void (*release)(
                                               struct svc__fault_item *it)) {
  struct inproc_held *h = svc__calloc(1, sizeof(*h));

  if (h != NULL) {
    h->conn = conn;
    h->op = op;
    h->item.release = release;
  }
  return h;
}

/* Holds h for delay_ms, or until the next publish (reorder). 0, or
 * SVC_ENOMEM (h is then freed and the caller goes on at once). */
static int inproc_held_start(struct inproc_held *h, uint64_t delay_ms) {
  struct svc__fault *f = inproc_fault(h->conn);

  if (delay_ms == 0) {
    svc__fault_hold(f, &h->item);
    return 0;
  }
  if (svc__fault_delay(f, &h->item, delay_ms) == 0)
    return 0;
  svc__free(h);
  return SVC_ENOMEM;
}

static void inproc_held_cancel(struct inproc_held *h) {
  svc__fault_cancel(&h->item);
  svc__free(h);
}

static struct svc_server_s *inproc_find_server(svc_ctx_t *ctx,
                                               const char *endpoint) {
  struct svc__list *pos;

  svc__list_foreach(pos, &ctx->servers) {
    struct svc_server_s *srv =
        svc__container_of(pos, struct svc_server_s, link);
    if (!srv->closing && srv->ops == &svc__transport_inproc &&
        strcmp(srv->endpoint, endpoint) == 0)
      return srv;
  }
  return NULL;
}

static int inproc_init(struct svc__conn *conn) {
  svc__fault_init(inproc_fault(conn), conn->ctx);
  /* inproc://NAME needs a name: it is the only thing that finds the peer. */
  if (conn->url->host[0] == '\0')
    return SVC_EINVAL;
  svc__conn_state(conn, SVC_CONN_CONNECTED, 0); /* Nothing to connect. */
  return 0;
}

static void inproc_close(struct svc__conn *conn) {
  /* Every call, publish and stream was aborted first, releasing what the
   * faults held. */
  svc__fault_fini(inproc_fault(conn));
  svc__conn_closed(conn);
}

/* ---- Calls. */

/* Hands call to the server of the endpoint. An orphan is a copy whose
 * reply is dropped: a duplicate, or a request whose connection dropped
 * after it was sent. */
static int inproc_dispatch(struct svc__conn *conn, struct svc_call_s *call,
                           int orphan) {
  struct svc_server_s *srv = inproc_find_server(conn->ctx, conn->endpoint);
  struct svc_request_s *req;

  if (srv == NULL)
    return SVC_ECONNREFUSED;
  /* The request shares the call's message: both only read it, and a retry
   * needs it intact. */
  req = svc__request_new(srv, call->method, call->url->path_raw,
                         svc__msg_ref(call->req), call->deadline);
  if (req == NULL)
    return SVC_ENOMEM;
  if (!orphan) {
    req->tp = call;
    call->tp = req;
    call->tp_id = INPROC_TP_PEER;
  }
  svc__server_dispatch(srv, req);
  return 0;
}

/* Dispatches call and, for a duplicate, a copy right behind it (the call
 * stays valid: its completion is deferred). */
static int inproc_dispatch_dup(struct svc__conn *conn,
                               struct svc_call_s *call, int dup) {
  int rc = inproc_dispatch(conn, call, 0);

  if (rc == 0 && dup)
    (void)inproc_dispatch(conn, call, 1);
  return rc;
}

static void inproc_call_release(struct svc__fault_item *it) {
  struct inproc_held *h = svc__container_of(it, struct inproc_held, item);
  struct svc_call_s *call = h->op;
  int rc;

  call->tp = NULL;
  call->tp_id = INPROC_TP_PEER;
  rc = inproc_dispatch_dup(h->conn, call, h->dup);
  svc__free(h);
  if (rc != 0)
    svc__call_attempt_done(call, svc_status_from_err(rc), rc, NULL);
}

static int inproc_call(struct svc__conn *conn, struct svc_call_s *call) {
  struct svc__fault_plan plan;
  struct inproc_held *h;

  call->tp = NULL;
  if (!svc__fault_plan(inproc_fault(conn), SVC__FAULT_CALL, &plan))
    return inproc_dispatch(conn, call, 0);
  if (plan.disconnect) {
    if (plan.after)
      (void)inproc_dispatch(conn, call, 1);
    return SVC_ECONNRESET;
  }
  if (plan.lose)
    return 0; /* Never answered: the caller's deadline decides. */
  if (plan.delay_ms > 0 &&
      (h = inproc_held_new(conn, call, inproc_call_release)) != NULL) {
    h->dup = plan.dup;
    if (inproc_held_start(h, plan.delay_ms) == 0) {
      call->tp = h;
      call->tp_id = INPROC_TP_HELD;
      return 0;
    }
  }
  return inproc_dispatch_dup(conn, call, plan.dup);
}

static void inproc_call_abort(struct svc__conn *conn,
                              struct svc_call_s *call) {
  struct svc_request_s *req = call->tp;

  if (req != NULL && call->tp_id == INPROC_TP_HELD) {
    inproc_held_cancel(call->tp);
  } else if (req != NULL) {
    req->tp = NULL;
    svc__request_cancel(req);
  }
  call->tp = NULL;
  call->tp_id = INPROC_TP_PEER;
}

static void inproc_reply(struct svc_request_s *req, svc_status_t status,
                         svc_msg_t *msg) {
  struct svc_call_s *call = req->tp;

  req->tp = NULL;
  if (call == NULL) {
    svc_msg_free(msg);
    return;
  }
  call->tp = NULL;
  svc__call_attempt_done(call, status,
                         status == SVC_STATUS_OK ? 0 : SVC_ESTATUS, msg);
}

/* ---- Events. */

/* Publishes into the hub, twice for a duplicate (the copy as QoS 0: a
 * full queue drops it and counts the drop). */
static int inproc_deliver(struct svc__hub *hub, struct svc__pub *pub,
                          int dup) {
  int rc = svc__hub_publish_op(hub, pub);

  /* pub stays valid: its completion is deferred. */
  if (rc == 0 && dup)
    svc__hub_publish(hub, pub->topic, pub->msg, 0);
  return rc;
}

static void inproc_pub_release(struct svc__fault_item *it) {
  struct inproc_held *h = svc__container_of(it, struct inproc_held, item);
  struct svc__pub *pub = h->op;
  struct svc__hub *hub = h->hub;
  int dup = h->dup;
  int rc;

  pub->tp = NULL;
  svc__free(h);
  rc = inproc_deliver(hub, pub, dup);
  if (rc != 0)
    svc__pub_done(pub, rc);
}

static int inproc_publish(struct svc__conn *conn, struct svc__pub *pub) {
  struct svc__hub *hub = svc__ctx_hub(conn->ctx, conn->endpoint, 1);
  struct svc__fault *f = inproc_fault(conn);
  struct svc__fault_plan plan;
  struct inproc_held *h;
  int rc;

  if (hub == NULL)
    return SVC_ENOMEM;
  if (!svc__fault_plan(f, SVC__FAULT_PUBLISH, &plan))
    return svc__hub_publish_op(hub, pub);
  if (plan.disconnect) {
    svc__pub_done(pub, SVC_ECONNRESET);
    return 0;
  }
  if (plan.lose) {
    /* Invisible to the publisher, as on a network; counted all the same. */
    conn->metrics->m.dropped++;
    pub->hub = hub; /* Reported as queued by nobody. */
    svc__pub_done(pub, 0);
    return 0;
  }
  if ((plan.delay_ms > 0 || plan.reorder) &&
      (h = inproc_held_new(conn, pub, inproc_pub_release)) != NULL) {
    h->hub = hub;
    h->dup = plan.dup;
    if (inproc_held_start(h, plan.delay_ms) == 0) {
      pub->tp = h;
      return 0;
    }
  }
  rc = inproc_deliver(hub, pub, plan.dup);
  /* What was held back for reordering goes out behind this one. */
  if (rc == 0)
    svc__fault_release_held(f);
  return rc;
}

static void inproc_publish_abort(struct svc__conn *conn,
                                 struct svc__pub *pub) {
  if (pub->tp != NULL)
    inproc_held_cancel(pub->tp);
  pub->tp = NULL;
}

static int inproc_subscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct svc__hub *hub = svc__ctx_hub(conn->ctx, conn->endpoint, 1);
  int rc;

  if (hub == NULL)
    return SVC_ENOMEM;
  rc = svc__sub_attach_hub(sub, hub);
  if (rc == 0)
    svc__sub_ready(sub);
  return rc;
}

static void inproc_unsubscribe(struct svc__conn *conn,
                               struct svc_sub_s *sub) {
  svc__sub_detach_hub(sub);
}

/* ---- Streams: s->tp points at the other side while both live (tp_id
 * INPROC_TP_PEER), or at a delayed open or a pending reset. */

static struct svc_stream_s *inproc_peer(const struct svc_stream_s *s) {
  return s->tp_id == INPROC_TP_PEER ? s->tp : NULL;
}

/* Forgets whatever s->tp points at. */
static void inproc_stream_unlink(struct svc_stream_s *s) {
  struct svc_stream_s *peer = inproc_peer(s);

  if (s->tp_id == INPROC_TP_HELD) {
    inproc_held_cancel(s->tp);
  } else if (s->tp_id == INPROC_TP_DOOMED) {
    struct inproc_doomed *d = s->tp;
    svc__undefer(s->ctx, &d->task);
    svc__free(d);
  } else if (peer != NULL) {
    peer->tp = NULL;
  }
  s->tp = NULL;
  s->tp_id = INPROC_TP_PEER;
}

static int inproc_stream_open_now(struct svc__conn *conn,
                                  struct svc_stream_s *s) {
  struct svc_server_s *srv = inproc_find_server(conn->ctx, conn->endpoint);
  struct svc_stream_s *peer;

  if (srv == NULL) {
    /* Reported like a refused TCP connect: through on_close. */
    svc__stream_on_reset(s, SVC_ECONNREFUSED);
    return 0;
  }
  peer = svc__stream_incoming(srv, s->path, s->open_headers, s->window);
  if (peer == NULL)
    return SVC_ENOMEM;
  peer->tp = s;
  s->tp = peer;
  return 0;
}

static void inproc_stream_release_open(struct svc__fault_item *it) {
  struct inproc_held *h = svc__container_of(it, struct inproc_held, item);
  struct svc_stream_s *s = h->op;
  struct svc__conn *conn = h->conn;
  int rc;

  svc__free(h);
  s->tp = NULL;
  s->tp_id = INPROC_TP_PEER;
  rc = inproc_stream_open_now(conn, s);
  if (rc != 0)
    svc__stream_on_reset(s, rc);
}

static int inproc_stream_open(struct svc__conn *conn,
                              struct svc_stream_s *s) {
  struct svc__fault_plan plan;
  struct inproc_held *h;

  if (!svc__fault_plan(inproc_fault(conn), SVC__FAULT_STREAM_OPEN, &plan))
    return inproc_stream_open_now(conn, s);
  if (plan.disconnect) {
    svc__stream_on_reset(s, SVC_ECONNRESET);
    return 0;
  }
  if (plan.delay_ms > 0 &&
      (h = inproc_held_new(conn, s, inproc_stream_release_open)) != NULL &&
      inproc_held_start(h, plan.delay_ms) == 0) {
    s->tp = h;
    s->tp_id = INPROC_TP_HELD;
    return 0;
  }
  return inproc_stream_open_now(conn, s);
}

static void inproc_doomed_task(struct svc__task *t) {
  struct inproc_doomed *d = svc__container_of(t, struct inproc_doomed, task);
  struct svc_stream_s *s = d->s;

  s->tp = NULL;
  s->tp_id = INPROC_TP_PEER;
  svc__free(d);
  svc__stream_on_reset(s, SVC_ECONNRESET);
}

/* A fault drops the connection under a stream while s sends: the peer is
 * reset now, s on a later turn (the core is inside its send loop). Returns
 * nonzero when it did. */
static int inproc_stream_disconnect(struct svc_stream_s *s,
                                    struct svc_stream_s *peer) {
  struct svc_stream_s *opener = s->conn != NULL ? s : peer;
  struct svc__fault_plan plan;
  struct inproc_doomed *d;

  if (!svc__fault_plan(inproc_fault(opener->conn), SVC__FAULT_STREAM_DATA,
                       &plan) ||
      !plan.disconnect || (d = svc__calloc(1, sizeof(*d))) == NULL)
    return 0;
  inproc_stream_unlink(s);
  d->s = s;
  svc__task_init(&d->task, inproc_doomed_task);
  s->tp = d;
  s->tp_id = INPROC_TP_DOOMED;
  svc__defer(s->ctx, &d->task);
  svc__stream_on_reset(peer, SVC_ECONNRESET);
  return 1;
}

static void inproc_stream_accept(struct svc_stream_s *s) {
  if (inproc_peer(s) != NULL)
    svc__stream_on_open(s->tp, s->window);
}

static void inproc_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  struct svc_stream_s *peer = inproc_peer(s);

  /* The message is lost with the connection; its write completed, as a
   * socket write would have. */
  if (peer != NULL && !inproc_stream_disconnect(s, peer))
    svc__stream_on_data(peer, msg);
  else
    svc_msg_free(msg);
}

static void inproc_stream_send_end(struct svc_stream_s *s) {
  if (inproc_peer(s) != NULL)
    svc__stream_on_end(s->tp);
}

static void inproc_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  if (inproc_peer(s) != NULL)
    svc__stream_on_credit(s->tp, bytes);
}

static void inproc_stream_send_reset(struct svc_stream_s *s) {
  struct svc_stream_s *peer = inproc_peer(s);

  inproc_stream_unlink(s);
  if (peer != NULL)
    svc__stream_on_reset(peer, SVC_ECONNRESET);
}

static void inproc_stream_release(struct svc_stream_s *s) {
  inproc_stream_unlink(s);
}

/* ---- Serving: the server list of the context is the registry. */

static int inproc_serve(struct svc_server_s *srv) {
  return srv->url->host[0] == '\0' ? SVC_EINVAL : 0;
}

static void inproc_serve_close(struct svc_server_s *srv) {
  svc__server_closed(srv);
}

const struct svc__transport svc__transport_inproc = {
  .scheme = "inproc",
  .default_method = "CALL",
  .conn_size = sizeof(struct inproc_conn),
  .server_size = 0,
  .init = inproc_init,
  .close = inproc_close,
  .call = inproc_call,
  .call_abort = inproc_call_abort,
  .publish = inproc_publish,
  .publish_abort = inproc_publish_abort,
  .subscribe = inproc_subscribe,
  .unsubscribe = inproc_unsubscribe,
  .stream_open = inproc_stream_open,
  .stream_accept = inproc_stream_accept,
  .stream_send = inproc_stream_send,
  .stream_send_end = inproc_stream_send_end,
  .stream_send_credit = inproc_stream_send_credit,
  .stream_send_reset = inproc_stream_send_reset,
  .stream_release = inproc_stream_release,
  .serve = inproc_serve,
  .serve_close = inproc_serve_close,
  .reply = inproc_reply,
};
