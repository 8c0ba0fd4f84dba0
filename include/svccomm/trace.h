/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_TRACE_H
#define SVCCOMM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "svccomm/common.h"
#include "svccomm/msg.h"
#include "svccomm/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_ctx_s svc_ctx_t;

/* ---- W3C trace context (docs/tracing.md).
 *
 * A trace context travels as the message header "traceparent"
 * ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", W3C Trace
 * Context level 1), which every backend carries: an HTTP header on
 * http://, a user property on mqtt:// v5, the binary :trace field of the
 * frame's header block on tcp:// and unix:// (docs/protocol.md). Every
 * call, stream and publish continues a trace or, by default, starts one:
 *
 * - svc_call() and svc_stream(): the request (or the open's headers)
 *   continues the traceparent the message already carries, else the
 *   context's current trace (below), else starts a new trace (modes
 *   SVC_TRACE_ALL, the default, and SVC_TRACE_CALLS). Each continuation gets a new span
 *   id; the trace id and flags are kept.
 * - svc_publish(): the same, except that a new trace is started only in
 *   mode SVC_TRACE_ALL.
 * - Serving: while a handler, a stream accept callback, a subscriber's
 *   event callback or a call's completion callback runs, the trace of the
 *   message it was given is the context's current trace (with a span id of
 *   its own), so calls and publishes made from inside continue it without
 *   any code. A reply carries the server's span of the request's trace
 *   back to the caller.
 *
 * A message keeps its trace in binary until its headers are read as text,
 * so starting and forwarding one costs little: on tcp:// over loopback, 64
 * small calls in flight lose about a tenth of their rate against
 * SVC_TRACE_CONTINUE (bench: svc_bench local W2 URI --trace continue).
 *
 * A handler that replies later, from another callback, continues the trace
 * by copying it: svc_msg_set_trace(msg, &t) with t read from the request
 * by svc_msg_trace(). */
typedef struct svc_trace_s {
  uint8_t trace_id[16];
  uint8_t span_id[8]; /* The W3C parent id: the span that sent it. */
  uint8_t flags;      /* Bit 0: sampled. */
} svc_trace_t;

/* Trace modes (svc_ctx_opts_t.trace). */
#define SVC_TRACE_ALL 0      /* Default: continue, else start, everywhere. */
#define SVC_TRACE_CALLS 1    /* Start for calls and streams only. */
#define SVC_TRACE_CONTINUE 2 /* Continue traces, start none. */
#define SVC_TRACE_OFF 3      /* Leave every traceparent as it is. */

/* Length of a traceparent value, without its NUL. */
#define SVC_TRACEPARENT_LEN 55

/* svc_trace_parse() reads a traceparent value. Version 00 must be exactly
 * 55 characters; a higher version may carry more after the flags, which is
 * ignored, as the W3C rules say. All-zero ids, version ff and upper-case
 * hex are invalid. Returns 0 or SVC_EINVAL. Since 0.2. */
SVC_EXTERN int svc_trace_parse(const char *traceparent, svc_trace_t *out);

/* svc_trace_format() writes t as a version 00 traceparent into out (at
 * least SVC_TRACEPARENT_LEN + 1 bytes), NUL-terminated. Since 0.2. */
SVC_EXTERN void svc_trace_format(const svc_trace_t *t, char *out);

/* svc_trace_id_hex() writes t's trace id as 32 lower-case hex digits and a
 * NUL into out (33 bytes). Since 0.2. */
SVC_EXTERN void svc_trace_id_hex(const svc_trace_t *t, char *out);

/* svc_msg_trace() reads msg's "traceparent" header into *out. Returns 0,
 * SVC_ENOENT when msg carries none, or SVC_EINVAL when it is malformed.
 * Since 0.2. */
SVC_EXTERN int svc_msg_trace(const svc_msg_t *msg, svc_trace_t *out);

/* svc_msg_set_trace() sets msg's "traceparent" header to t (replacing any),
 * for example to continue a trace that arrived by other means. The header
 * functions of svccomm/msg.h show it like any other header. 0, or
 * SVC_EINVAL (an all-zero trace or parent id). Since 0.2. */
SVC_EXTERN int svc_msg_set_trace(svc_msg_t *msg, const svc_trace_t *t);

/* svc_ctx_trace() stores the context's current trace (see above) in *out:
 * 0, or SVC_ENOENT outside a traced callback. Since 0.2. */
SVC_EXTERN int svc_ctx_trace(const svc_ctx_t *ctx, svc_trace_t *out);

/* ---- The logging hook.
 *
 * The library reports what it did as structured records: each finished
 * call (verb "call"), each answered request ("serve"), each failed or, at
 * SVC_LOG_DEBUG, each finished publish ("publish"), each subscription that
 * ended with an error ("subscribe"), each stream that closed with an error
 * ("stream"), and circuit breaker changes ("breaker"). Failures are
 * SVC_LOG_WARN, breaker changes SVC_LOG_INFO or SVC_LOG_WARN, successes
 * SVC_LOG_DEBUG. Records are built only when a hook wants their level. */
typedef enum {
  SVC_LOG_ERROR = 1,
  SVC_LOG_WARN = 2,
  SVC_LOG_INFO = 3,
  SVC_LOG_DEBUG = 4
} svc_log_level_t;

typedef struct svc_log_record_s {
  svc_log_level_t level;
  const char *verb;     /* "call", "serve", "publish", ... */
  const char *endpoint; /* "tcp://127.0.0.1:7000" */
  const char *target;   /* Route path or topic; may be NULL. */
  svc_status_t status;  /* Calls and requests; OK otherwise. */
  int err;              /* 0, or the negative error behind a failure. */
  uint64_t latency_us;  /* Start to end, 0 when not timed. */
  const char *trace_id; /* 32 hex digits, or NULL without a trace. */
  const char *message;  /* Human-readable summary. */
} svc_log_record_t;

/* Every pointer in rec is valid only while the hook runs. */
typedef void (*svc_log_cb)(const svc_log_record_t *rec, void *arg);

/* svc_ctx_set_log() sends the records at max_level and more severe ones
 * to cb on the loop thread (cb NULL turns logging off). The hook must not
 * close the context. Since 0.2. */
SVC_EXTERN void svc_ctx_set_log(svc_ctx_t *ctx, svc_log_level_t max_level,
                                svc_log_cb cb, void *arg);

/* svc_log_level_name() returns "error", "warn", "info" or "debug".
 * Since 0.2. */
SVC_EXTERN const char *svc_log_level_name(svc_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_TRACE_H */
