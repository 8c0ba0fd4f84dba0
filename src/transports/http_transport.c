/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http.h"

/* The http:// and https:// operations tables. A stream belongs to the
 * client side when this process opened it and to the server side when it
 * was accepted (s->server is set), so the stream operations the core calls
 * for both sides are routed here. */

static void hx_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  if (s->server != NULL)
    svc__https_stream_send(s, msg);
  else
    svc__httpc_stream_send(s, msg);
}

static void hx_stream_send_end(struct svc_stream_s *s) {
  if (s->server != NULL)
    svc__https_stream_send_end(s);
  else
    svc__httpc_stream_send_end(s);
}

static void hx_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  if (s->server != NULL)
    svc__https_stream_send_credit(s, bytes);
  else
    svc__httpc_stream_send_credit(s, bytes);
}

static void hx_stream_send_reset(struct svc_stream_s *s) {
  if (s->server != NULL)
    svc__https_stream_send_reset(s);
  else
    svc__httpc_stream_send_reset(s);
}

static void hx_stream_release(struct svc_stream_s *s) {
  if (s->server != NULL)
    svc__https_stream_release(s);
  else
    svc__httpc_stream_release(s);
}

/* The client's conn_size must be a constant here, so the client state is
 * allocated by the client code and conn->tp holds a pointer to it. */
#define HTTP_CLIENT_OPS                                                     \
  .default_method = NULL, .conn_size = sizeof(void *),                     \
  .init = svc__httpc_init, .close = svc__httpc_close,                      \
  .call = svc__httpc_call, .call_abort = svc__httpc_call_abort,            \
  .publish = svc__httpc_publish,                                           \
  .publish_abort = svc__httpc_publish_abort,                               \
  .subscribe = svc__httpc_subscribe, .unsubscribe = svc__httpc_unsubscribe, \
  .sub_room = svc__httpc_sub_room, .stream_open = svc__httpc_stream_open,  \
  .stream_send = hx_stream_send, .stream_send_end = hx_stream_send_end,    \
  .stream_send_credit = hx_stream_send_credit,                             \
  .stream_send_reset = hx_stream_send_reset,                               \
  .stream_release = hx_stream_release

const struct svc__transport svc__transport_http = {
  .scheme = "http",
  HTTP_CLIENT_OPS,
  .server_size = sizeof(void *),
  .serve = svc__https_serve,
  .serve_close = svc__https_serve_close,
  .reply = svc__https_reply,
  .stream_accept = svc__https_stream_accept,
};

/* https:// is a client of libcurl's TLS; the server speaks plain HTTP (put
 * a TLS terminator in front of it), so serving https:// is SVC_ENOTSUP. */
const struct svc__transport svc__transport_https = {
  .scheme = "https",
  HTTP_CLIENT_OPS,
};
