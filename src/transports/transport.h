/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TRANSPORT_H
#define SVC_TRANSPORT_H

/* The contract between the core and a backend. A backend is one table of
 * operations (struct svc__transport) registered by URI scheme in
 * src/transport.c; the core knows nothing else about it, and a backend
 * touches the core only through the objects and svc__ functions below.
 *
 * Rules that hold for every operation:
 * - Everything runs on the loop thread. Nothing blocks.
 * - Transports never call user callbacks. They report through the svc__*
 *   functions in this file; the core defers every user callback to a later
 *   loop turn, so a transport may report from anywhere, including from
 *   inside the operation that started the work.
 * - An optional member left NULL makes the core answer SVC_ENOTSUP (or
 *   UNIMPLEMENTED for calls), so transports never check for that.
 * - Every object has a void *tp slot and a uint64_t tp_id for the
 *   transport's own bookkeeping.
 */

struct svc__conn;
struct svc__pub;
struct svc__fwrap;

/* ---- Client side: one conn per endpoint (scheme://authority) per context,
 * created on first use, closed when the context closes. */
struct svc__conn {
  struct svc__list link; /* ctx->conns */
  svc_ctx_t *ctx;
  const struct svc__transport *ops;
  struct svc__url *url;  /* The URL that created it; owned by the core. */
  char *endpoint;
  struct svc__metrics *metrics; /* Client-role record of this endpoint. */
  int closing;
  svc_conn_state_t state; /* Last reported; 0 before any. */
  /* Publisher watermark (pubsub.c): the publish queue filled up and has
   * not drained to half since; the callback was told so; the full queue
   * was the context's inproc one (svc__hub_publish_op()). */
  int pub_full;
  int pub_full_told;
  int pub_full_hub;
  /* Core only: the client-side fault wrapper (fault_wrap.c), set once the
   * endpoint was given a fault profile; never on inproc://. */
  struct svc__fwrap *fw;
  void *tp; /* conn_size bytes, zeroed, for the transport. */
};

/* svc__conn_state() reports a change of the conn's state (and the error
 * behind BACKOFF or CLOSED); the same state again is ignored. */
void svc__conn_state(struct svc__conn *conn, svc_conn_state_t state, int err);

/* svc__conn_closed() ends the asynchronous close of a conn started with
 * tp->close(); the core frees the conn. Exactly once per conn. */
void svc__conn_closed(struct svc__conn *conn);

/* ---- Calls. */
struct svc_call_s {
  struct svc__list link; /* ctx->calls */
  svc_ctx_t *ctx;
  struct svc__conn *conn;
  struct svc__url *url;  /* Owned; url->path is the route. */
  svc_msg_t *req;        /* Owned by the core for the whole call (retries
                          * resend it); transports take svc__msg_ref(). */
  char *method;          /* Never NULL: opts.method or "CALL"/"GET"/"POST"
                          * as the transport's default_method chooses;
                          * method_buf when it fits (one malloc less per
                          * call). */
  char method_buf[16];
  int method_given;      /* The caller set opts.method. */
  int idempotent;
  svc_retry_t retry;
  uint64_t deadline;     /* Loop time in ms, or 0 for none. */
  uint64_t start_us;
  unsigned attempts;
  svc_call_cb cb;
  void *arg;

  struct svc__timer deadline_timer;
  struct svc__timer backoff_timer;
  struct svc__task done_task;
  int in_attempt;  /* The transport holds the call (tp->call returned 0). */
  int decided;     /* Outcome fixed; completion queued. */
  int delivering;  /* Inside the user callback. */
  svc_status_t status;
  int err;
  svc_msg_t *reply;
  svc_trace_t trace;  /* The call's span, when traced. */
  int traced;
  struct svc__policy *policy; /* The endpoint's, or NULL. */
  struct svc__list plink;     /* The policy's waiting calls. */
  int queued;    /* Waiting for a concurrency slot. */
  int admitted;  /* The current attempt holds a slot. */
  int probe;     /* It is a half-open breaker's probe. */
  /* Core only: what the fault wrapper did with the current attempt
   * (fault_wrap.c), and its record. 0 when it left it to the transport. */
  int fw_state;
  void *fw;

  void *tp;
  uint64_t tp_id;
};

/* svc__call_attempt_done() reports the outcome of the attempt started by
 * tp->call(): status, the local error behind it (0 on OK, SVC_ESTATUS when
 * the peer chose the status) and the reply (ownership passes to the core;
 * may be NULL). Exactly once per successful tp->call() unless the core
 * aborted the attempt first. The core retries or completes. */
void svc__call_attempt_done(struct svc_call_s *call, svc_status_t status,
                            int err, svc_msg_t *reply);

/* Remaining ms before call's deadline: UINT64_MAX for none, 0 if passed. */
uint64_t svc__call_remaining_ms(const struct svc_call_s *call);

/* ---- Publishing. */
struct svc__pub {
  struct svc__list link; /* ctx->pubs_sent while a transport holds it,
                          * ctx->pubs while waiting for room in a hub. */
  svc_ctx_t *ctx;
  struct svc__conn *conn; /* NULL for svc_server_publish(). */
  struct svc__hub *hub;   /* Set for hub publishes. */
  struct svc__metrics *metrics;
  char *topic;
  svc_msg_t *msg;         /* Owned by the core. */
  int qos;
  int retain;
  svc_pub_cb cb;
  svc_delivery_cb report_cb; /* Instead of cb (svc_publish_report()). */
  void *arg;
  int status;
  int acked;       /* Set by a transport whose peer answered a QoS 0. */
  size_t receivers; /* Hub publishes: sinks that queued it ... */
  size_t refused;   /* ... and sinks whose full queue dropped it. */
  struct svc__task done_task;
  /* Core only: the fault wrapper holds it back (its record), or lost it
   * (fault_wrap.c). */
  void *fw;
  int fw_lost;
  void *tp;
  uint64_t tp_id;
};

/* svc__pub_done() reports the end of a publish started by tp->publish():
 * 0 or a negative error. Exactly once, unless aborted first. */
void svc__pub_done(struct svc__pub *pub, int status);

/* The publisher watermark of a transport's bounded publish queue
 * (svc_ctx_set_pub_watermark()). svc__pub_queue_full(): the queue is full
 * and a publish was refused, dropped, or made another drop; depth is how
 * many wait. Reported once until svc__pub_queue_level() sees depth at or
 * under half of bound; call that whenever the queue shrinks (it costs a
 * test while the queue is not marked full). Both only queue the report:
 * the callback runs on a later loop turn, so they may be called from
 * anywhere, tp->publish included. */
void svc__pub_queue_full(struct svc__conn *conn, size_t depth);
void svc__pub_queue_level(struct svc__conn *conn, size_t depth, size_t bound);

/* svc__hub_publish_op() publishes pub into hub with the core's rules:
 * QoS 0 goes out at once (full queues drop and count); QoS >= 1 waits in
 * order until every matching subscriber has room, bounded by
 * max_pending_publishes (then SVC_EAGAIN, nothing queued). Retain is
 * applied. Returns 0 (svc__pub_done() follows) or a negative error. Used by
 * inproc publishes, svc_server_publish() and network servers relaying a
 * client's publish. */
int svc__hub_publish_op(struct svc__hub *hub, struct svc__pub *pub);
/* svc__hub_room() tells the core that a sink of hub may have room again, so
 * that waiting QoS >= 1 publishes are retried (on a later loop turn). */
void svc__hub_room(svc_ctx_t *ctx, struct svc__hub *hub);

/* ---- Subscriptions. The core keeps the event queue; transports feed it. */
struct svc_sub_s {
  struct svc__list link; /* ctx->subs */
  svc_ctx_t *ctx;
  struct svc__conn *conn;
  struct svc__metrics *metrics;
  char *filter;          /* Validated MQTT filter (may carry $share). */
  svc_sub_opts_t opts;
  svc_event_cb cb;
  void *arg;
  struct svc__hub_sink sink; /* For hub-based transports. */
  struct svc__hub *hub;

  svc_msg_t **queue;     /* Ring of opts.max_queue events. */
  size_t q_head;
  size_t q_len;
  uint64_t dropped;
  struct svc__task task;
  int ready;             /* tp reported svc__sub_ready(). */
  int ready_delivered;
  int ended;             /* No more events will be queued. */
  int final_status;
  int final_delivered;
  int delivering;
  int above;             /* Queue reached full; not yet back to half. */
  int wm_told;           /* The last watermark the callback was given. */

  void *tp;
  uint64_t tp_id;
};

/* svc__sub_ready() reports that the subscription is active. Once. */
void svc__sub_ready(struct svc_sub_s *sub);
/* svc__sub_event() queues one event for delivery (msg is borrowed; the core
 * takes a reference and sets the topic on it when it has none). Returns 0,
 * or SVC_ENOBUFS when the queue is full (the event is dropped and counted,
 * as QoS 0 allows; transports with acknowledgements check
 * svc__sub_has_room() first and hold the acknowledgement back). */
int svc__sub_event(struct svc_sub_s *sub, const char *topic, svc_msg_t *msg,
                   int qos);
int svc__sub_has_room(const struct svc_sub_s *sub);
/* svc__sub_attach_hub() subscribes sub to hub under sub->filter and
 * queues the matching retained messages: how a hub-based transport
 * (inproc) subscribes. svc__sub_detach_hub() undoes it. */
int svc__sub_attach_hub(struct svc_sub_s *sub, struct svc__hub *hub);
void svc__sub_detach_hub(struct svc_sub_s *sub);
/* svc__sub_failed() ends the subscription with a transport error; the
 * transport forgets sub (tp->unsubscribe is not called). */
void svc__sub_failed(struct svc_sub_s *sub, int err);

/* ---- Streams. Flow control lives in the core: each side has a receive
 * window (bytes of svc__msg_cost()), the sender spends credit and the
 * receiver returns it as the application consumes. Transports carry the
 * frames: open (with the opener's window), accept (with the acceptor's
 * window), data, end, credit, reset. */
struct svc_stream_s {
  struct svc__list link; /* ctx->streams */
  svc_ctx_t *ctx;
  struct svc__conn *conn;       /* Opening side. */
  struct svc_server_s *server;  /* Accepting side. */
  struct svc__metrics *metrics;
  char *path;
  char **params;
  svc_msg_t *open_headers;      /* Headers sent or received with the open. */
  svc_stream_cbs_t cbs;
  void *arg;
  void *data;

  size_t window;        /* Our receive window. */
  size_t send_buffer;   /* Our send queue limit. */
  size_t peer_window;   /* The peer's receive window. */
  size_t credit;        /* Bytes we may still send. */
  size_t unacked;       /* Bytes consumed here, credit not yet returned. */
  struct svc__list sndq;    /* struct svc__write.link */
  size_t sndq_bytes;
  struct svc__list rcvq;    /* struct svc__write.link (incoming data) */
  size_t rcvq_bytes;
  struct svc__list done_writes; /* Writes whose callbacks are due. */
  struct svc__list unacked_writes; /* Sent, waiting for the peer to consume
                                    * them (svc_stream_write_report()). */
  uint64_t sent_total;  /* Cost of everything sent ... */
  uint64_t acked_total; /* ... and credit the peer returned for it. */

  unsigned accepted : 1;    /* Accepting side: svc_stream_accept() done. */
  unsigned open : 1;        /* Both sides know each other's window. */
  unsigned paused : 1;
  unsigned local_ended : 1; /* svc_stream_end() called. */
  unsigned end_sent : 1;
  unsigned remote_ended : 1;
  unsigned end_delivered : 1;
  unsigned want_writable : 1;
  unsigned finished : 1;    /* on_close queued. */
  unsigned tp_done : 1;     /* Transport has forgotten the stream. */
  unsigned routed : 1;      /* Accepting side: handed to a stream route. */
  int close_status;
  struct svc__task task;
  /* Core only: the fault wrapper holds the open back (its record). */
  void *fw;

  void *tp;
  uint64_t tp_id;
};

/* Reports from the transport about a stream. */
void svc__stream_on_open(struct svc_stream_s *s, size_t peer_window);
void svc__stream_on_data(struct svc_stream_s *s, svc_msg_t *msg); /* takes */
void svc__stream_on_end(struct svc_stream_s *s);
void svc__stream_on_credit(struct svc_stream_s *s, size_t bytes);
/* The stream failed or the peer reset it; the transport forgets s. */
void svc__stream_on_reset(struct svc_stream_s *s, int err);

/* svc__stream_incoming() creates the accepting side of a stream opened by a
 * peer on path with the opener's window and open headers (borrowed), and
 * routes it through srv's stream routes (on a later loop turn). Returns the
 * stream for the transport to keep, or NULL when out of memory. */
struct svc_stream_s *svc__stream_incoming(struct svc_server_s *srv,
                                          const char *path,
                                          const svc_msg_t *open_headers,
                                          size_t peer_window);

/* ---- Serving. */
struct svc__route;

struct svc_server_s {
  struct svc__list link; /* ctx->servers */
  svc_ctx_t *ctx;
  const struct svc__transport *ops;
  struct svc__url *url;
  char *endpoint;
  svc_serve_opts_t opts;
  struct svc__list routes;        /* struct svc__route.link */
  struct svc__list stream_routes; /* struct svc__route.link */
  struct svc__list requests;      /* struct svc_request_s.link, unreplied */
  size_t npending;
  struct svc__hub *hub;
  struct svc__metrics *metrics;   /* Server-role record. */
  int closing;
  int closed;   /* The transport finished serve_close. */
  int released; /* Close callback ran; freed with its last request. */
  svc_server_close_cb close_cb;
  void *close_arg;
  struct svc__task close_task;
  char *base_uri; /* What svc_server_endpoint() returns, when it differs
                   * from endpoint (unix://: the joinable form). */
  void *tp; /* server_size bytes, zeroed. */
};

struct svc_request_s {
  struct svc__list link; /* srv->requests */
  struct svc_server_s *server;
  svc_msg_t *msg;
  char *method; /* In strs when they fit, else allocated. */
  char *path;
  char strs[64];
  char **params;
  uint64_t deadline; /* Loop ms, 0 for none. */
  uint64_t start_us;
  void *data;
  int cancelled;
  svc_trace_t trace; /* The server's span of the caller's trace. */
  int traced;
  struct svc__task task;
  void *tp;
  uint64_t tp_id;
};

/* svc__request_new() creates a request for srv (msg is taken, may be NULL;
 * method and path are copied; path without a leading '/'). NULL when out of
 * memory (msg is then freed). */
struct svc_request_s *svc__request_new(struct svc_server_s *srv,
                                       const char *method, const char *path,
                                       svc_msg_t *msg, uint64_t deadline);
/* svc__server_dispatch() hands req to its route's handler on a later loop
 * turn, or answers it NOT_FOUND/UNIMPLEMENTED (through tp->reply), or
 * RESOURCE_EXHAUSTED past max_pending_requests. */
void svc__server_dispatch(struct svc_server_s *srv, struct svc_request_s *req);
/* svc__request_cancel(): the caller has gone away. A later reply is dropped
 * and tp->reply is not called for it. */
void svc__request_cancel(struct svc_request_s *req);
/* svc__server_allowed_methods() writes the methods that have a route for
 * path as "GET, POST" (for 405 Allow) into buf. */
void svc__server_allowed_methods(struct svc_server_s *srv, const char *path,
                                 char *buf, size_t size);
/* svc__server_set_endpoint() renames srv once serve has bound it, so that
 * a URI asking for port 0 reports the port the system chose (the hub and
 * metrics follow). 0 or SVC_ENOMEM. */
int svc__server_set_endpoint(struct svc_server_s *srv, const char *endpoint);
/* svc__server_closed() ends tp->serve_close(); exactly once. */
void svc__server_closed(struct svc_server_s *srv);

/* ---- The operations table. */
struct svc__transport {
  const char *scheme;
  /* The method a call gets when the caller sets none: "CALL", or NULL to
   * choose "GET" without a body and "POST" with one (HTTP). */
  const char *default_method;
  size_t conn_size;   /* Bytes of per-conn state the core allocates. */
  size_t server_size; /* Bytes of per-server state the core allocates. */

  /* Required. init is called once per conn, right after allocation, and
   * may fail with a negative error (the core then calls close, which must
   * cope with a half-initialised conn). close starts an asynchronous close
   * that never blocks and ends in exactly one svc__conn_closed(conn); every
   * call, publish, subscription and stream of the conn has been aborted
   * through the ops below before close is called. */
  int (*init)(struct svc__conn *conn);
  void (*close)(struct svc__conn *conn);

  /* Calls: start one attempt of call (the core handles deadlines and
   * retries). Returns 0 and later reports svc__call_attempt_done(), or a
   * negative error the core treats as the attempt's outcome. call_abort
   * withdraws an attempt in progress; afterwards the transport must not
   * touch call. Both or neither. */
  int (*call)(struct svc__conn *conn, struct svc_call_s *call);
  void (*call_abort)(struct svc__conn *conn, struct svc_call_s *call);

  /* Publishing: 0 and later svc__pub_done(), or a negative error that
   * svc_publish() returns to its caller (who keeps the message).
   * publish_abort withdraws a publish not yet done (context close). */
  int (*publish)(struct svc__conn *conn, struct svc__pub *pub);
  void (*publish_abort)(struct svc__conn *conn, struct svc__pub *pub);

  /* Subscriptions: 0 and later svc__sub_ready() (or svc__sub_failed()),
   * feeding events with svc__sub_event(). unsubscribe is synchronous for
   * the core: afterwards the transport must not touch sub. */
  int (*subscribe)(struct svc__conn *conn, struct svc_sub_s *sub);
  void (*unsubscribe)(struct svc__conn *conn, struct svc_sub_s *sub);
  /* Optional: the application consumed events of sub, so its queue has
   * room again (a transport that stopped reading for a full queue resumes
   * here). */
  void (*sub_room)(struct svc__conn *conn, struct svc_sub_s *sub);

  /* Streams, opening side: 0 and later svc__stream_on_open() (or
   * svc__stream_on_reset()). Accepting side: stream_accept tells the
   * opener our window. Both sides: send data (msg reference passes to the
   * transport; the core stays within credit), end, credit, and reset
   * (after which the transport forgets s). stream_release tells the
   * transport the core is done with a stream that closed cleanly. */
  int (*stream_open)(struct svc__conn *conn, struct svc_stream_s *s);
  void (*stream_accept)(struct svc_stream_s *s);
  void (*stream_send)(struct svc_stream_s *s, svc_msg_t *msg);
  void (*stream_send_end)(struct svc_stream_s *s);
  void (*stream_send_credit)(struct svc_stream_s *s, size_t bytes);
  void (*stream_send_reset)(struct svc_stream_s *s);
  void (*stream_release)(struct svc_stream_s *s);

  /* Serving: serve binds and starts accepting (0 or a negative error, in
   * which case serve_close is not called). serve_close stops accepting,
   * aborts the server's connections and ends in exactly one
   * svc__server_closed(). reply sends a request's answer (status and msg,
   * whose reference passes to the transport; msg may be NULL); the core
   * calls it at most once per request and never for a cancelled one. */
  int (*serve)(struct svc_server_s *srv);
  void (*serve_close)(struct svc_server_s *srv);
  void (*reply)(struct svc_request_s *req, svc_status_t status,
                svc_msg_t *msg);

  /* Nonzero when svc_serve() URIs of this scheme may carry a path, which
   * then names what is served under the endpoint (mqtt://: the topic
   * prefix "mqtt://broker/svc/users"); otherwise the path must be empty
   * or "/". */
  int serve_takes_path;

  /* Optional: called with the URI of every client verb that uses conn
   * (after init, for the verb that created it) and of svc_fault_set(). A
   * negative error fails the verb before it starts: svc_call() and the
   * others return it. The core has taken the fault-* options out of
   * url->query before (fault.c), for every backend. */
  int (*conn_use)(struct svc__conn *conn, const struct svc__url *url);
};

/* svc__transport_find() returns the backend for scheme, or NULL. */
const struct svc__transport *svc__transport_find(const char *scheme);

#endif /* SVC_TRANSPORT_H */
