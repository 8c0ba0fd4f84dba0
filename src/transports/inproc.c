/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* inproc://NAME: every verb inside one context, with no server process and
 * no sockets. A call becomes a request on the server that serves
 * inproc://NAME in the same context; a stream links two core streams head
 * to tail; topics live in the context's hub named inproc://NAME, which a
 * served inproc endpoint shares. The core does the rest (deferral, flow
 * control, queues), so this file only connects the two sides. Endpoints
 * are scoped to their context, as ZeroMQ scopes inproc to its context. */

extern const struct svc__transport svc__transport_inproc;

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
  /* inproc://NAME needs a name: it is the only thing that finds the peer. */
  return conn->url->host[0] == '\0' ? SVC_EINVAL : 0;
}

static void inproc_close(struct svc__conn *conn) {
  svc__conn_closed(conn);
}

/* ---- Calls. */

static int inproc_call(struct svc__conn *conn, struct svc_call_s *call) {
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
  req->tp = call;
  call->tp = req;
  svc__server_dispatch(srv, req);
  return 0;
}

static void inproc_call_abort(struct svc__conn *conn,
                              struct svc_call_s *call) {
  struct svc_request_s *req = call->tp;

  if (req != NULL) {
    req->tp = NULL;
    svc__request_cancel(req);
  }
  call->tp = NULL;
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

static int inproc_publish(struct svc__conn *conn, struct svc__pub *pub) {
  struct svc__hub *hub = svc__ctx_hub(conn->ctx, conn->endpoint, 1);

  if (hub == NULL)
    return SVC_ENOMEM;
  return svc__hub_publish_op(hub, pub);
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

/* ---- Streams: s->tp points at the other side while both live. */

static int inproc_stream_open(struct svc__conn *conn,
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

static void inproc_stream_accept(struct svc_stream_s *s) {
  if (s->tp != NULL)
    svc__stream_on_open(s->tp, s->window);
}

static void inproc_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  if (s->tp != NULL)
    svc__stream_on_data(s->tp, msg);
  else
    svc_msg_free(msg);
}

static void inproc_stream_send_end(struct svc_stream_s *s) {
  if (s->tp != NULL)
    svc__stream_on_end(s->tp);
}

static void inproc_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  if (s->tp != NULL)
    svc__stream_on_credit(s->tp, bytes);
}

static void inproc_stream_unlink(struct svc_stream_s *s) {
  struct svc_stream_s *peer = s->tp;

  s->tp = NULL;
  if (peer != NULL)
    peer->tp = NULL;
}

static void inproc_stream_send_reset(struct svc_stream_s *s) {
  struct svc_stream_s *peer = s->tp;

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
  .conn_size = 0,
  .server_size = 0,
  .init = inproc_init,
  .close = inproc_close,
  .call = inproc_call,
  .call_abort = inproc_call_abort,
  .publish = inproc_publish,
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
