/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_H
#define SVCCOMM_H

/* libsvccomm: one API for the three ways services talk.
 *
 *   svc_call()                  request/response, with deadlines, retries
 *                               and cancellation (svc_call_sync() blocks);
 *   svc_stream()                bidirectional, ordered, flow-controlled;
 *   svc_publish()/subscribe()   events on MQTT-style topics;
 *   svc_serve()                 the serving side of all three.
 *
 * The backend is chosen by the URI scheme: inproc:// (in-process, always
 * built), tcp://, unix://, http:// and mqtt:// when built in. The authority
 * names the endpoint and the path names the route, stream or topic:
 *
 *   inproc://users/get          route "get" on endpoint "users"
 *   inproc://bus/orders/placed  topic "orders/placed" on endpoint "bus"
 *   inproc://bus/orders/#       a subscription pattern ('#' is not a
 *                               fragment delimiter in libsvccomm URIs)
 *
 * Threads: everything runs on the context's libuv loop thread, and no
 * function is thread-safe unless its comment says so (svc_ctx_post() is the
 * way in from other threads). No user callback ever runs inside the call
 * that started the work; a function that takes a callback either returns a
 * negative error and never calls it, or returns 0 and calls it exactly once
 * (subscriptions and streams: once per item, then once more with a final
 * status).
 *
 * Ownership: see svccomm/msg.h for messages. Strings passed in are copied.
 * Handles given to callbacks are valid until the final callback returns.
 */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "svccomm/cloudevents.h"
#include "svccomm/common.h"
#include "svccomm/dedup.h"
#include "svccomm/errno.h"
#include "svccomm/fault.h"
#include "svccomm/metrics.h"
#include "svccomm/msg.h"
#include "svccomm/policy.h"
#include "svccomm/status.h"
#include "svccomm/trace.h"
#include "svccomm/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_ctx_s svc_ctx_t;
typedef struct svc_call_s svc_call_t;
typedef struct svc_stream_s svc_stream_t;
typedef struct svc_sub_s svc_sub_t;
typedef struct svc_server_s svc_server_t;
typedef struct svc_request_s svc_request_t;

/* svc_version() returns SVC_VERSION_HEX of the library actually linked, and
 * svc_version_string() "0.1.0". Since 0.1. */
SVC_EXTERN unsigned svc_version(void);
SVC_EXTERN const char *svc_version_string(void);

/* svc_strerror() describes a negative error code; svc_err_name() gives its
 * name ("SVC_ETIMEDOUT"). Both understand libuv codes, never return NULL and
 * never allocate; an unknown code gets one fixed string. Since 0.1. */
SVC_EXTERN const char *svc_strerror(int err);
SVC_EXTERN const char *svc_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Context                                                                  */

/* Context options. Zero means the default; svc_ctx_init() copies them, and
 * new fields are only ever added at the end. */
typedef struct svc_ctx_opts_s {
  /* Deadline for calls whose options give none, in ms. Default 0: none. */
  uint64_t default_timeout_ms;
  /* Requests waiting for an inproc handler before RESOURCE_EXHAUSTED.
   * Default 1024. */
  size_t max_pending_requests;
  /* QoS >= 1 publishes waiting for room in subscriber queues before
   * svc_publish() returns SVC_EAGAIN. Default 1024. */
  size_t max_pending_publishes;
  /* Retained messages kept per hub. Default 10000. */
  size_t max_retained;
  /* Seed for retry jitter; 0 seeds from the clock. Fixed seeds make runs
   * reproducible. */
  uint64_t seed;
  /* Posts (svc_ctx_post()) waiting for the loop thread before further
   * posts get SVC_EAGAIN. Default 65536. */
  size_t max_posts;
  /* Trace context (svccomm/trace.h): SVC_TRACE_ALL (default: every call,
   * stream and publish continues a trace or starts one), SVC_TRACE_CALLS
   * (start for calls and streams only), SVC_TRACE_CONTINUE (start none) or
   * SVC_TRACE_OFF. Since 0.2. */
  int trace;
} svc_ctx_opts_t;

typedef void (*svc_ctx_close_cb)(svc_ctx_t *ctx, void *arg);
typedef void (*svc_post_cb)(svc_ctx_t *ctx, int status, void *arg);

/* svc_ctx_init() creates a context on loop, or on a loop the context owns
 * when loop is NULL (drive it with svc_ctx_run()). opts may be NULL. The
 * calling thread becomes the loop thread. Returns 0 and stores the context in
 * *out, or SVC_ENOMEM / a libuv error. When SIGPIPE still has its default
 * disposition it is set to ignored: socket backends write with write(2),
 * and a peer that went away must be an error, not the end of the process
 * (a handler the application installed is left alone). Since 0.1. */
SVC_EXTERN int svc_ctx_init(uv_loop_t *loop, const svc_ctx_opts_t *opts,
                            svc_ctx_t **out);

/* svc_ctx_loop() returns the loop the context runs on. Since 0.1. */
SVC_EXTERN uv_loop_t *svc_ctx_loop(const svc_ctx_t *ctx);

/* svc_ctx_run() runs the context's loop like uv_run() and returns what
 * uv_run() returned. Prefer it to uv_run() on the context's loop: while it
 * runs, svc_call_sync() knows it would deadlock and says so. For a context
 * with its own loop, the svc_ctx_run() that sees the close finish releases
 * the loop; the context must not be used after that. Since 0.1. */
SVC_EXTERN int svc_ctx_run(svc_ctx_t *ctx, uv_run_mode mode);

/* svc_ctx_close() closes the context and everything made from it. Calls in
 * flight complete with SVC_STATUS_CANCELLED; subscriptions, streams and
 * posts end with SVC_ECANCELED; servers stop; every such callback fires
 * exactly once, on later loop turns. Then cb (may be NULL) runs once: the
 * last moment the context and every handle made from it are valid. May be
 * called from inside any svc callback. NULL is a no-op; closing twice is a
 * programming error. Since 0.1. */
SVC_EXTERN void svc_ctx_close(svc_ctx_t *ctx, svc_ctx_close_cb cb, void *arg);

/* svc_ctx_post() is thread-safe: it runs fn(ctx, 0, arg) on the loop thread
 * on a later loop turn, in posting order. If the context closes first, fn
 * runs with SVC_ECANCELED instead (still on the loop thread) so arg can be
 * released. Returns 0, SVC_EAGAIN when max_posts posts are already waiting
 * (a stalled loop does not grow memory without bound), SVC_ECLOSING once
 * close has begun, or SVC_ENOMEM; fn never runs after an error. Like a
 * uv_async_t, a pending post does not keep the loop alive: an application
 * that expects posts keeps its loop running (a server, a timer, ...).
 * Since 0.1. */
SVC_EXTERN int svc_ctx_post(svc_ctx_t *ctx, svc_post_cb fn, void *arg);

/* Connection state of a client endpoint: every backend reports it. A
 * connection is made on first use of an endpoint (CONNECTING), is up
 * (CONNECTED), lost or refused and waiting to try again (BACKOFF), or down
 * with nothing retrying it until the next verb (CLOSED). inproc:// is
 * CONNECTED from its first use; http:// reports CONNECTED once an answer
 * came and CLOSED when a connection could not be made (libcurl keeps its
 * own pool and does not back off). Since 0.2. */
typedef enum {
  SVC_CONN_CONNECTING = 1,
  SVC_CONN_CONNECTED = 2,
  SVC_CONN_BACKOFF = 3,
  SVC_CONN_CLOSED = 4
} svc_conn_state_t;

/* err is the error behind BACKOFF or CLOSED, else 0; endpoint is valid
 * while the callback runs. */
typedef void (*svc_conn_state_cb)(svc_ctx_t *ctx, const char *endpoint,
                                  svc_conn_state_t state, int err, void *arg);

/* svc_ctx_set_conn_cb() calls cb (NULL: none) on a later loop turn for
 * every change of state of the context's connections, in order; not once
 * svc_ctx_close() has begun. Since 0.2. */
SVC_EXTERN void svc_ctx_set_conn_cb(svc_ctx_t *ctx, svc_conn_state_cb cb,
                                    void *arg);

/* svc_conn_state() returns the state (svc_conn_state_t, > 0) of the
 * connection to uri's endpoint, or SVC_ENOENT when the context has none
 * (no verb used it yet), SVC_EINVAL for a bad URI. Since 0.2. */
SVC_EXTERN int svc_conn_state(svc_ctx_t *ctx, const char *uri);

/* svc_conn_state_name(): "connecting", "connected", "backing off",
 * "closed". Since 0.2. */
SVC_EXTERN const char *svc_conn_state_name(svc_conn_state_t state);

/* svc_ctx_set_data()/svc_ctx_get_data(): one pointer for the application. */
SVC_EXTERN void svc_ctx_set_data(svc_ctx_t *ctx, void *data);
SVC_EXTERN void *svc_ctx_get_data(const svc_ctx_t *ctx);

/* ------------------------------------------------------------------------ */
/* Calls (request/response)                                                 */

/* Retry policy. Attempts after the first are made only when the call is
 * marked idempotent, the status is in retry_on, and the next attempt would
 * start before the call's deadline. Backoff before attempt n+1 is
 * min(max_backoff_ms, initial_backoff_ms * multiplier^(n-1)), scaled by a
 * random factor in [1 - jitter, 1 + jitter]. */
typedef struct svc_retry_s {
  unsigned max_attempts;       /* Including the first. 0 or 1: no retries. */
  uint64_t initial_backoff_ms; /* Default 50. */
  uint64_t max_backoff_ms;     /* Default 2000. */
  double multiplier;           /* Default 2.0. */
  double jitter;               /* 0 .. 1; default 0.2. Negative: none. */
  uint32_t retry_on;           /* Bit (1u << status) per retryable status;
                                * 0 means SVC_RETRY_DEFAULT. */
} svc_retry_t;

#define SVC_RETRY_ON(status) (1u << (status))
#define SVC_RETRY_DEFAULT SVC_RETRY_ON(SVC_STATUS_UNAVAILABLE)

/* Call options; zero means the default, and svc_call() copies them. */
typedef struct svc_call_opts_s {
  /* Deadline for the whole call, retries included, in ms from the start.
   * 0: the context's default_timeout_ms. */
  uint64_t timeout_ms;
  /* Request method for transports that have one (HTTP): NULL means GET
   * without a body, POST with one. Other transports carry it as the
   * request's method and routes may match on it. */
  const char *method;
  /* Only idempotent calls are ever retried. */
  int idempotent;
  svc_retry_t retry;
  /* Headers added to the request, after the message's own. */
  const char *const *headers; /* Pairs: name0, value0, name1, value1, ... */
  size_t nheaders;            /* Number of pairs. */
} svc_call_opts_t;

/* svc_call_cb runs exactly once per started call, on the loop thread:
 * with the reply, or a failure mapped to a status. reply (may be NULL on
 * failure; a failed peer reply may carry details in it) is valid until the
 * callback returns; so is call. Since 0.1. */
typedef void (*svc_call_cb)(svc_call_t *call, svc_status_t status,
                            const svc_msg_t *reply, void *arg);

/* svc_call() sends req to uri and calls cb with the outcome. opts may be
 * NULL; req may be NULL for an empty request. On 0 the library owns req and,
 * when handle is not NULL, stores in *handle a handle valid until cb
 * returns. Errors (cb never runs; the caller keeps req): SVC_EINVAL (bad URI
 * or options), SVC_ESCHEME (no such backend), SVC_ECLOSING, SVC_ENOMEM. A
 * backend that cannot call completes with SVC_STATUS_UNIMPLEMENTED.
 * Since 0.1. */
SVC_EXTERN int svc_call(svc_ctx_t *ctx, const char *uri, svc_msg_t *req,
                        const svc_call_opts_t *opts, svc_call_cb cb,
                        void *arg, svc_call_t **handle);

/* svc_call_cancel() cancels a call in flight: its callback runs with
 * SVC_STATUS_CANCELLED on a later loop turn (never inside this function),
 * unless the outcome was already decided, in which case that outcome is
 * delivered. Calling it from the call's own callback is a no-op.
 * Since 0.1. */
SVC_EXTERN void svc_call_cancel(svc_call_t *call);

/* svc_call_errno() returns, inside the callback, the negative error behind a
 * non-OK status that was decided locally (SVC_ETIMEDOUT, SVC_ECONNREFUSED,
 * ...), or SVC_ESTATUS when the peer answered with that status, or 0 on OK.
 * Since 0.1. */
SVC_EXTERN int svc_call_errno(const svc_call_t *call);

/* svc_call_attempts() returns how many attempts the call made (1 without
 * retries). Since 0.1. */
SVC_EXTERN unsigned svc_call_attempts(const svc_call_t *call);

/* svc_call_sync() makes a call and runs the loop until it completes. It
 * returns the call's status (>= 0) and, when reply is not NULL, stores the
 * reply in *reply (owned by the caller, may be NULL; free it with
 * svc_msg_free()). On a negative return the call was not made: the errors of
 * svc_call(), or SVC_EINLOOP when called from inside a loop callback or
 * svc_ctx_run(), where waiting would deadlock. req is consumed when the
 * return is >= 0, as with svc_call(). Only the loop thread may call it.
 * Since 0.1. */
SVC_EXTERN int svc_call_sync(svc_ctx_t *ctx, const char *uri, svc_msg_t *req,
                             const svc_call_opts_t *opts, svc_msg_t **reply);

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */

/* Stream callbacks. Every member may be NULL. on_close is the final
 * callback: it runs exactly once, after which the stream is freed. */
typedef struct svc_stream_cbs_s {
  /* A message from the peer, in order. Valid until the callback returns.
   * Not called while the stream is paused. */
  void (*on_data)(svc_stream_t *s, const svc_msg_t *msg, void *arg);
  /* The peer ended its side (no more on_data). */
  void (*on_end)(svc_stream_t *s, void *arg);
  /* The send queue has drained below half its limit after a write returned
   * SVC_EAGAIN: writing may resume. */
  void (*on_writable)(svc_stream_t *s, void *arg);
  /* The stream is over: status 0 when both sides ended and every write was
   * delivered; SVC_ECONNRESET when the peer reset it; SVC_ECANCELED when
   * this side reset it or the context closed; or a transport error such as
   * SVC_ECONNREFUSED. */
  void (*on_close)(svc_stream_t *s, int status, void *arg);
} svc_stream_cbs_t;

/* Stream options; zero means the default. */
typedef struct svc_stream_opts_s {
  /* Receive window in bytes: how much the peer may send before this side
   * consumes it. Default 1 MiB. The peer cannot grow our memory past it. */
  size_t window;
  /* Send queue limit in bytes: svc_stream_write() returns SVC_EAGAIN while
   * this much is queued. Default: 256 KiB. */
  size_t send_buffer;
  /* Headers sent with the open (the server reads them with
   * svc_stream_header()). Pairs, as in svc_call_opts_t. */
  const char *const *headers;
  size_t nheaders;
} svc_stream_opts_t;

typedef void (*svc_write_cb)(svc_stream_t *s, int status, void *arg);

/* svc_stream() opens a stream to uri. opts may be NULL. On 0 stores the
 * stream in *out; writes may start at once (they queue until the peer
 * accepts). Failure to reach the peer arrives as on_close with an error.
 * Returns SVC_EINVAL, SVC_ESCHEME, SVC_ECLOSING or SVC_ENOMEM otherwise;
 * a backend without streams returns SVC_ENOTSUP. Since 0.1. */
SVC_EXTERN int svc_stream(svc_ctx_t *ctx, const char *uri,
                          const svc_stream_opts_t *opts,
                          const svc_stream_cbs_t *cbs, void *arg,
                          svc_stream_t **out);

/* svc_stream_write() queues msg. Returns 0 (the library owns msg; cb, which
 * may be NULL, runs once when msg was handed to the peer within its window,
 * or with SVC_ECANCELED/SVC_ECONNRESET if the stream closed first),
 * SVC_EAGAIN when the send queue is at its limit (wait for on_writable),
 * SVC_EPIPE after svc_stream_end(), or SVC_ECLOSING. On error the caller
 * keeps msg. Since 0.1. */
SVC_EXTERN int svc_stream_write(svc_stream_t *s, svc_msg_t *msg,
                                svc_write_cb cb, void *arg);

/* svc_stream_end() half-closes: no more writes; the peer gets on_end after
 * everything queued. Returns 0, SVC_EPIPE if already ended, SVC_ECLOSING.
 * Since 0.1. */
SVC_EXTERN int svc_stream_end(svc_stream_t *s);

/* svc_stream_pause() stops on_data; incoming data then waits within this
 * side's window and the peer's writes back up to it. svc_stream_resume()
 * delivers what waited, on a later loop turn. Since 0.1. */
SVC_EXTERN void svc_stream_pause(svc_stream_t *s);
SVC_EXTERN void svc_stream_resume(svc_stream_t *s);

/* svc_stream_reset() aborts both directions at once: queued writes end with
 * SVC_ECANCELED, on_close runs with SVC_ECANCELED here and SVC_ECONNRESET at
 * the peer. Safe to call more than once and from any stream callback.
 * Since 0.1. */
SVC_EXTERN void svc_stream_reset(svc_stream_t *s);

/* svc_stream_queued_bytes() returns the bytes waiting in the send queue.
 * Since 0.1. */
SVC_EXTERN size_t svc_stream_queued_bytes(const svc_stream_t *s);

/* On an accepted stream: the path it was opened on (percent-encoding
 * kept), a path parameter of the matching pattern ({name}, decoded), and a
 * header sent with the open. NULL when absent. Valid while the stream is.
 * Since 0.1. */
SVC_EXTERN const char *svc_stream_path(const svc_stream_t *s);
SVC_EXTERN const char *svc_stream_param(const svc_stream_t *s,
                                        const char *name);
SVC_EXTERN const char *svc_stream_header(const svc_stream_t *s,
                                         const char *name);

SVC_EXTERN void svc_stream_set_data(svc_stream_t *s, void *data);
SVC_EXTERN void *svc_stream_get_data(const svc_stream_t *s);

/* ------------------------------------------------------------------------ */
/* Events                                                                   */

/* Publish options; zero means the default. */
typedef struct svc_pub_opts_s {
  /* 0: at most once; dropped (and counted) when a subscriber's queue is
   * full. 1 or 2: never dropped by a full queue; the publish waits for room
   * and completes when every matching subscriber has queued it (inproc) or
   * the broker or server acknowledged it (remote transports). */
  int qos;
  /* Keep as the topic's retained message: every later matching subscriber
   * receives it first. An empty body clears the topic's retained message. */
  int retain;
} svc_pub_opts_t;

typedef void (*svc_pub_cb)(svc_ctx_t *ctx, int status, void *arg);

/* svc_publish() publishes msg (may be NULL for an empty event) on the topic
 * that uri's path names ("inproc://bus/orders/placed"). No wildcards. On 0
 * the library owns msg and cb (may be NULL) runs once with 0 or a negative
 * error. Errors (cb never runs; caller keeps msg): SVC_EINVAL (bad URI or
 * topic), SVC_ESCHEME, SVC_EAGAIN (too many publishes waiting; retry after
 * an earlier one completes, or when svc_ctx_set_pub_watermark()'s callback
 * says low), SVC_ENOBUFS (a retained publish on a new topic when
 * max_retained topics are kept; a full mqtt:// offline buffer),
 * SVC_ECLOSING, SVC_ENOMEM, SVC_ENOTSUP.
 * Since 0.1. */
SVC_EXTERN int svc_publish(svc_ctx_t *ctx, const char *uri, svc_msg_t *msg,
                           const svc_pub_opts_t *opts, svc_pub_cb cb,
                           void *arg);

/* How a publish ended, for svc_publish_report(). Since 0.2. */
typedef enum {
  /* In the queues of the local subscribers that matched (inproc://, or a
   * publish into a served hub): receivers of them; refused more had a
   * full queue and dropped it (QoS 0; counted in their metrics). */
  SVC_DELIVERY_QUEUED = 1,
  /* QoS 0 to a remote peer: handed to the connection, which writes it;
   * nothing will acknowledge it. */
  SVC_DELIVERY_WRITTEN = 2,
  /* Acknowledged by the server or broker (QoS >= 1; HTTP's answer). */
  SVC_DELIVERY_ACKED = 3,
  /* Not delivered; reason says why, err gives the error. */
  SVC_DELIVERY_DROPPED = 4
} svc_delivery_state_t;

typedef enum {
  SVC_DROP_NONE = 0,
  SVC_DROP_OVERFLOW = 1,   /* A bounded queue was full. */
  SVC_DROP_DISCONNECT = 2, /* No connection, or it went first. */
  SVC_DROP_DEADLINE = 3,   /* It timed out. */
  SVC_DROP_CLOSED = 4,     /* The context closed first. */
  SVC_DROP_REFUSED = 5,    /* The peer refused it, or it cannot be sent. */
  SVC_DROP_COUNT = 6
} svc_drop_reason_t;

typedef struct svc_delivery_s {
  svc_delivery_state_t state;
  svc_drop_reason_t reason; /* SVC_DROP_NONE unless dropped. */
  int err;                  /* 0, or the error behind a drop. */
  const char *topic;        /* Valid while the callback runs. */
  size_t receivers;         /* SVC_DELIVERY_QUEUED only. */
  size_t refused;           /* SVC_DELIVERY_QUEUED only. */
} svc_delivery_t;

typedef void (*svc_delivery_cb)(svc_ctx_t *ctx, const svc_delivery_t *d,
                                void *arg);

/* svc_publish_report() is svc_publish() with a callback that says how the
 * publish ended: queued, written, acknowledged or dropped with a reason.
 * It runs exactly once when the function returned 0, like svc_publish()'s.
 * Whichever function published it, a dropped publish is counted by reason
 * in the endpoint's metrics (pubs_dropped). Since 0.2. */
SVC_EXTERN int svc_publish_report(svc_ctx_t *ctx, const char *uri,
                                  svc_msg_t *msg, const svc_pub_opts_t *opts,
                                  svc_delivery_cb cb, void *arg);

typedef void (*svc_stream_report_cb)(svc_stream_t *s, const svc_delivery_t *d,
                                     void *arg);

/* svc_stream_write_report() is svc_stream_write() whose callback says how
 * the write ended: SVC_DELIVERY_ACKED once the peer's application has
 * consumed it (the credit it returned covers it, or both sides ended
 * cleanly), or SVC_DELIVERY_DROPPED with a reason when the stream ended
 * first (err as svc_stream_write()'s callback would get). Every dropped
 * stream write is counted (writes_dropped), whichever function wrote it.
 * Since 0.2. */
SVC_EXTERN int svc_stream_write_report(svc_stream_t *s, svc_msg_t *msg,
                                       svc_stream_report_cb cb, void *arg);

/* svc_drop_reason_name() returns "overflow", "disconnect", "deadline",
 * "closed", "refused" or "none". Since 0.2. */
SVC_EXTERN const char *svc_drop_reason_name(svc_drop_reason_t reason);

/* A publisher's bounded queue filled up (high 1) or drained to half of its
 * bound again (high 0). endpoint ("tcp://10.0.0.7:7000") is valid while
 * the callback runs; depth is how many publishes waited then. */
typedef void (*svc_pub_watermark_cb)(svc_ctx_t *ctx, const char *endpoint,
                                     size_t depth, int high, void *arg);

/* svc_ctx_set_pub_watermark() calls cb (NULL: none) when the queue of
 * publishes waiting in a client endpoint becomes full (high 1: a publish
 * was refused, was dropped, or made another one drop; whatever the
 * overflow policy), and again, once per high, when it has drained to half
 * of its bound (high 0). The queues are tcp:// and unix:// publishes
 * waiting for the connection or for its output to drain, mqtt:// QoS >= 1
 * publishes held unsent, and inproc:// QoS >= 1 publishes waiting for
 * room (docs/resilience.md). cb runs on the loop thread, on a later loop
 * turn, never from inside svc_publish(); in order per endpoint; not once
 * svc_ctx_close() has begun. A producer that was refused waits for the
 * high 0 before publishing again. Since 0.2. */
SVC_EXTERN void svc_ctx_set_pub_watermark(svc_ctx_t *ctx,
                                          svc_pub_watermark_cb cb, void *arg);

/* svc_event_cb runs once per event with status 0 (event valid until it
 * returns; svc_msg_topic() gives its topic), then exactly once more with
 * event NULL and a final status: SVC_ECANCELED after svc_unsubscribe() or
 * context close, or a transport error. sub is valid until that final call
 * returns. Since 0.1. */
typedef void (*svc_event_cb)(svc_sub_t *sub, int status,
                             const svc_msg_t *event, void *arg);

/* Subscribe options; zero means the default. */
typedef struct svc_sub_opts_s {
  /* Highest QoS wanted (remote transports). Default 0. */
  int qos;
  /* Events waiting for delivery before QoS 0 events are dropped (and
   * counted) and QoS >= 1 publishers wait. Default 1024. */
  size_t max_queue;
  /* Runs once, on a later loop turn, when the subscription is active (the
   * server or broker confirmed it). May be NULL. */
  void (*on_ready)(svc_sub_t *sub, void *arg);
  /* What a full queue does (svccomm/policy.h). SVC_OVERFLOW_DEFAULT:
   * QoS 0 events are dropped and counted, QoS >= 1 producers wait (an
   * inproc publisher's publish completes later; a remote server or broker
   * connection stops being read). SVC_OVERFLOW_WAIT: the same.
   * SVC_OVERFLOW_DROP_NEWEST and SVC_OVERFLOW_FAIL_NEW: every event that
   * finds the queue full is dropped and counted, at any QoS, and nothing
   * waits. SVC_OVERFLOW_DROP_OLDEST: the oldest queued event makes room
   * (dropped and counted), at any QoS. Since 0.2. */
  svc_overflow_t overflow;
  /* Runs, on a later loop turn, when the queue fills up (high 1) and when
   * it has drained to half again (high 0), with its depth then: the
   * watermark by which a consumer tells its own producers to wait. May be
   * NULL. Since 0.2. */
  void (*on_watermark)(svc_sub_t *sub, size_t depth, int high, void *arg);
} svc_sub_opts_t;

/* svc_subscribe() subscribes to the pattern that uri's path names, MQTT
 * syntax: '/'-separated levels, '+' matches one level, a final '#' matches
 * the rest (including the parent), topics beginning with '$' are not matched
 * by a leading wildcard, and "$share/GROUP/pattern" shares the events among
 * the subscribers of GROUP (each event to one of them). Returns 0 and the
 * handle in *out (may be NULL), or SVC_EINVAL, SVC_ESCHEME, SVC_ECLOSING,
 * SVC_ENOMEM, SVC_ENOTSUP. Since 0.1. */
SVC_EXTERN int svc_subscribe(svc_ctx_t *ctx, const char *uri,
                             const svc_sub_opts_t *opts, svc_event_cb cb,
                             void *arg, svc_sub_t **out);

/* svc_unsubscribe() ends a subscription: no more events; the final callback
 * runs with SVC_ECANCELED on a later loop turn. Calling it again is a no-op.
 * Since 0.1. */
SVC_EXTERN void svc_unsubscribe(svc_sub_t *sub);

/* svc_sub_dropped() returns how many events this subscription lost to a full
 * queue. Since 0.1. */
SVC_EXTERN uint64_t svc_sub_dropped(const svc_sub_t *sub);

/* ------------------------------------------------------------------------ */
/* Serving                                                                  */

/* Serve options; zero means the default. */
typedef struct svc_serve_opts_s {
  /* Requests waiting for a handler's reply before new ones are answered
   * RESOURCE_EXHAUSTED. Default: the context's max_pending_requests. */
  size_t max_pending_requests;
} svc_serve_opts_t;

typedef void (*svc_handler_cb)(svc_request_t *req, void *arg);
typedef void (*svc_accept_cb)(svc_server_t *srv, svc_stream_t *s, void *arg);
typedef void (*svc_server_close_cb)(svc_server_t *srv, void *arg);

/* svc_serve() starts serving uri ("inproc://users", "tcp://127.0.0.1:7000").
 * The path must be empty or "/", except on mqtt://, where it is the topic
 * prefix served ("mqtt://broker/svc/users", docs/mqtt.md). A served endpoint answers calls through its
 * routes, accepts streams through its stream routes, and is a publish/
 * subscribe hub for its topics. Returns 0 and the server in *out, or
 * SVC_EINVAL, SVC_ESCHEME, SVC_EEXIST (already served in this context),
 * SVC_ENOTSUP, a libuv error from binding, SVC_ECLOSING or SVC_ENOMEM.
 * Since 0.1. */
SVC_EXTERN int svc_serve(svc_ctx_t *ctx, const char *uri,
                         const svc_serve_opts_t *opts, svc_server_t **out);

/* svc_server_endpoint() returns the endpoint srv serves as a URI that a
 * client can append "/route" or "/topic" to: with the port the system chose
 * when the URI asked for port 0 ("tcp://127.0.0.1:41234"), and for unix://
 * with the socket path percent-encoded ("unix://%2Ftmp%2Fs.sock"). Valid
 * while srv is. Since 0.2. */
SVC_EXTERN const char *svc_server_endpoint(const svc_server_t *srv);

/* svc_server_route() routes calls whose method is method (NULL: any) and
 * whose path matches pattern to cb. A pattern is a path whose segments may
 * be parameters: "users/{id}" or "/users/{id}" (a leading '/' is ignored);
 * "{name...}" as the last segment takes the rest of the path. Literal
 * segments win over parameters, whatever the order of registration. Calls
 * no route matches are answered NOT_FOUND; calls matching a path but no
 * method UNIMPLEMENTED (HTTP: 405 with Allow). Returns 0, SVC_EINVAL,
 * SVC_EEXIST (same method and pattern) or SVC_ENOMEM. Since 0.1. */
SVC_EXTERN int svc_server_route(svc_server_t *srv, const char *method,
                                const char *pattern, svc_handler_cb cb,
                                void *arg);

/* svc_server_stream_route() hands streams opened on a path matching pattern
 * to cb, which must call svc_stream_accept() or svc_stream_reset() (now or
 * later). Streams no route matches are reset. Returns as
 * svc_server_route(). Since 0.1. */
SVC_EXTERN int svc_server_stream_route(svc_server_t *srv, const char *pattern,
                                       svc_accept_cb cb, void *arg);

/* svc_stream_accept() accepts an incoming stream and sets its callbacks.
 * opts may be NULL (only window and send_buffer are used). Returns 0,
 * SVC_EINVAL if already accepted, or SVC_ECLOSING. Since 0.1. */
SVC_EXTERN int svc_stream_accept(svc_stream_t *s,
                                 const svc_stream_opts_t *opts,
                                 const svc_stream_cbs_t *cbs, void *arg);

/* svc_server_publish() publishes to this server's own hub, as a client's
 * publish to the same topic would. As svc_publish(). Since 0.1. */
SVC_EXTERN int svc_server_publish(svc_server_t *srv, const char *topic,
                                  svc_msg_t *msg, const svc_pub_opts_t *opts,
                                  svc_pub_cb cb, void *arg);

/* svc_server_close() stops serving: new calls are refused with
 * UNAVAILABLE, streams are reset, and cb (may be NULL) runs once when done.
 * Requests already handed to handlers stay valid until replied (replies are
 * then dropped). Since 0.1. */
SVC_EXTERN void svc_server_close(svc_server_t *srv, svc_server_close_cb cb,
                                 void *arg);

/* The request a handler receives. Valid until svc_request_reply(). */

/* svc_request_msg() returns the request message (never NULL; owned by the
 * request). svc_request_method() the method (the HTTP method, or the call's
 * method option, or "CALL"), svc_request_path() the path as sent, without a
 * leading '/' and with its percent-encoding kept, svc_request_param() a
 * path parameter of the matching route, percent-decoded, or NULL.
 * Since 0.1. */
SVC_EXTERN const svc_msg_t *svc_request_msg(const svc_request_t *req);
SVC_EXTERN const char *svc_request_method(const svc_request_t *req);
SVC_EXTERN const char *svc_request_path(const svc_request_t *req);
SVC_EXTERN const char *svc_request_param(const svc_request_t *req,
                                         const char *name);

/* svc_request_remaining_ms() returns the time left before the caller's
 * deadline, 0 once it has passed, or UINT64_MAX when the call has none.
 * Since 0.1. */
SVC_EXTERN uint64_t svc_request_remaining_ms(const svc_request_t *req);

/* svc_request_cancelled() returns nonzero once the caller has gone away
 * (cancelled, deadline passed, disconnected): a reply would be dropped.
 * Since 0.1. */
SVC_EXTERN int svc_request_cancelled(const svc_request_t *req);

/* svc_request_reply() answers the request, now or from any later loop
 * turn, and releases it. msg may be NULL. The library owns msg in every
 * case. Returns 0, or SVC_ECANCELED when the caller has gone away (the
 * reply was dropped; the request is released all the same). Since 0.1. */
SVC_EXTERN int svc_request_reply(svc_request_t *req, svc_status_t status,
                                 svc_msg_t *msg);

SVC_EXTERN void svc_request_set_data(svc_request_t *req, void *data);
SVC_EXTERN void *svc_request_get_data(const svc_request_t *req);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */

/* svc_metrics_get() copies the counters of the endpoint named by uri
 * (scheme and authority; any path is ignored) for role into *out. Returns
 * 0, SVC_EINVAL, or SVC_ENOENT when that endpoint has not been used.
 * Since 0.1. */
SVC_EXTERN int svc_metrics_get(svc_ctx_t *ctx, const char *uri,
                               svc_role_t role, svc_metrics_t *out);

/* svc_metrics_foreach() calls fn once per endpoint record, in creation
 * order, with a snapshot valid during the call. Since 0.1. */
SVC_EXTERN void svc_metrics_foreach(svc_ctx_t *ctx,
                                    void (*fn)(const svc_metrics_t *m,
                                               void *arg),
                                    void *arg);

/* svc_metrics_prometheus() renders every metrics record of ctx in the
 * Prometheus text exposition format (version 0.0.4), with the stable names
 * of docs/metrics.md, as a new message with its content type set: a
 * handler can reply with it as is ("GET /metrics"), a program can print or
 * write its body. The caller owns it. NULL when out of memory. Since 0.2. */
SVC_EXTERN svc_msg_t *svc_metrics_prometheus(svc_ctx_t *ctx);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_H */
