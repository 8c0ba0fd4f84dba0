/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_HTTP_H
#define SVC_HTTP_H

/* http:// and https://, split by job: http_client*.c (libcurl on the
 * context's loop: calls, publishes, SSE subscriptions, client streams),
 * http_server*.c (our HTTP/1.1 server on libuv and http-parser: routes,
 * the hub over HTTP, accepted streams), http_transport.c (the operations
 * tables, and stream operations dispatched to the side that owns the
 * stream). docs/http.md is the contract between the two sides. */

#include "internal.h"
#include "transports/transport.h"

/* Headers of our own, understood by both sides (docs/http.md). */
#define SVC__HTTP_H_STATUS "Svc-Status"   /* Exact status name of a reply. */
#define SVC__HTTP_H_TIMEOUT "Svc-Timeout" /* Caller's remaining ms. */
#define SVC__HTTP_H_QOS "Svc-QoS"         /* Publish QoS (0..2). */
#define SVC__HTTP_H_RETAIN "Svc-Retain"   /* Publish retain (0/1). */
#define SVC__HTTP_H_STREAM "Svc-Stream"   /* "1": the request opens a stream. */
#define SVC__HTTP_H_WINDOW "Svc-Window"   /* Sender's stream receive window. */
#define SVC__HTTP_H_CODE "Svc-Http-Code"  /* An OK reply's 2xx code. */
#define SVC__HTTP_TOPICS_PREFIX "/topics/"

/* ---- Client side (http_client*.c). */
struct svc__httpc; /* The conn's state (conn->tp), one per endpoint. */
int svc__httpc_init(struct svc__conn *conn);
void svc__httpc_close(struct svc__conn *conn);
int svc__httpc_call(struct svc__conn *conn, struct svc_call_s *call);
void svc__httpc_call_abort(struct svc__conn *conn, struct svc_call_s *call);
int svc__httpc_publish(struct svc__conn *conn, struct svc__pub *pub);
void svc__httpc_publish_abort(struct svc__conn *conn, struct svc__pub *pub);
int svc__httpc_subscribe(struct svc__conn *conn, struct svc_sub_s *sub);
void svc__httpc_unsubscribe(struct svc__conn *conn, struct svc_sub_s *sub);
void svc__httpc_sub_room(struct svc__conn *conn, struct svc_sub_s *sub);
int svc__httpc_stream_open(struct svc__conn *conn, struct svc_stream_s *s);
void svc__httpc_stream_send(struct svc_stream_s *s, svc_msg_t *msg);
void svc__httpc_stream_send_end(struct svc_stream_s *s);
void svc__httpc_stream_send_credit(struct svc_stream_s *s, size_t bytes);
void svc__httpc_stream_send_reset(struct svc_stream_s *s);
void svc__httpc_stream_release(struct svc_stream_s *s);

/* ---- Server side (http_server*.c). srv->tp holds a pointer to the
 * server's state, which the server code allocates itself. */
int svc__https_serve(struct svc_server_s *srv);
void svc__https_serve_close(struct svc_server_s *srv);
void svc__https_reply(struct svc_request_s *req, svc_status_t status,
                      svc_msg_t *msg);
void svc__https_stream_accept(struct svc_stream_s *s);
void svc__https_stream_send(struct svc_stream_s *s, svc_msg_t *msg);
void svc__https_stream_send_end(struct svc_stream_s *s);
void svc__https_stream_send_credit(struct svc_stream_s *s, size_t bytes);
void svc__https_stream_send_reset(struct svc_stream_s *s);
void svc__https_stream_release(struct svc_stream_s *s);

#endif /* SVC_HTTP_H */
