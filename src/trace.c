/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* W3C trace context on messages, the context's current trace while a
 * callback runs, and the logging hook. The rules are in trace.h; what is
 * here is their mechanics. Ids come from a generator of the context's own,
 * seeded from the OS once: trace ids must not repeat across processes,
 * and the retry jitter's generator may run from a fixed seed. */

static const char hexdig[] = "0123456789abcdef";

/* W3C: lower-case hex only. A table: servers parse one per request. */
static int8_t hexval[256];
static uv_once_t hexval_once = UV_ONCE_INIT;

static void hexval_init(void) {
  int i;

  for (i = 0; i < 256; i++)
    hexval[i] = -1;
  for (i = 0; i < 16; i++)
    hexval[(unsigned char)hexdig[i]] = (int8_t)i;
}

static int hex_byte(const char *s, uint8_t *out) {
  int hi = hexval[(unsigned char)s[0]];
  int lo = hexval[(unsigned char)s[1]];

  if ((hi | lo) < 0)
    return -1;
  *out = (uint8_t)(hi << 4 | lo);
  return 0;
}

static int hex_bytes(const char *s, uint8_t *out, size_t n) {
  size_t i;
  uint8_t any = 0;

  for (i = 0; i < n; i++) {
    if (hex_byte(s + 2 * i, &out[i]) != 0)
      return -1;
    any |= out[i];
  }
  return any != 0 ? 0 : -1; /* All zeros is invalid. */
}

int svc_trace_parse(const char *s, svc_trace_t *out) {
  uint8_t version;
  size_t len;

  if (s == NULL || out == NULL)
    return SVC_EINVAL;
  uv_once(&hexval_once, hexval_init);
  len = strlen(s);
  if (len < SVC_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' ||
      s[52] != '-' || hex_byte(s, &version) != 0 || version == 0xff)
    return SVC_EINVAL;
  /* Version 00 is exactly 55 characters; later versions may append
   * "-..." fields, which a version 00 parser ignores. */
  if ((version == 0 && len != SVC_TRACEPARENT_LEN) ||
      (len > SVC_TRACEPARENT_LEN && s[SVC_TRACEPARENT_LEN] != '-'))
    return SVC_EINVAL;
  if (hex_bytes(s + 3, out->trace_id, 16) != 0 ||
      hex_bytes(s + 36, out->span_id, 8) != 0 ||
      hex_byte(s + 53, &out->flags) != 0)
    return SVC_EINVAL;
  return 0;
}

static char *put_hex(char *p, const uint8_t *b, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    *p++ = hexdig[b[i] >> 4];
    *p++ = hexdig[b[i] & 15];
  }
  return p;
}

void svc_trace_format(const svc_trace_t *t, char *out) {
  char *p = out;

  *p++ = '0';
  *p++ = '0';
  *p++ = '-';
  p = put_hex(p, t->trace_id, 16);
  *p++ = '-';
  p = put_hex(p, t->span_id, 8);
  *p++ = '-';
  p = put_hex(p, &t->flags, 1);
  *p = '\0';
}

void svc_trace_id_hex(const svc_trace_t *t, char *out) {
  *put_hex(out, t->trace_id, 16) = '\0';
}

/* svc_msg_trace() and svc_msg_set_trace() are in msg.c: the message keeps
 * its trace in binary. */

static void fill_random(svc_ctx_t *ctx, uint8_t *b, size_t n);

/* Reads a current trace still in its message (state 3). */
static void trace_cur_load(svc_ctx_t *ctx) {
  if (ctx->trace_has_cur == 3)
    ctx->trace_has_cur =
        svc_msg_trace(ctx->trace_msg, &ctx->trace_cur) == 0 ? 2 : 0;
}

int svc_ctx_trace(const svc_ctx_t *cctx, svc_trace_t *out) {
  svc_ctx_t *ctx = (svc_ctx_t *)cctx; /* Its own span is drawn lazily. */

  if (ctx == NULL || out == NULL)
    return SVC_EINVAL;
  trace_cur_load(ctx);
  if (!ctx->trace_has_cur)
    return SVC_ENOENT;
  if (ctx->trace_has_cur == 2) {
    fill_random(ctx, ctx->trace_cur.span_id, sizeof(ctx->trace_cur.span_id));
    ctx->trace_has_cur = 1;
  }
  *out = ctx->trace_cur;
  return 0;
}

/* ---- Ids. */

static uint64_t trace_next(svc_ctx_t *ctx) {
  /* splitmix64: every seed gives a full-period sequence. */
  uint64_t z = (ctx->trace_rng += 0x9E3779B97F4A7C15ULL);

  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void svc__trace_seed(svc_ctx_t *ctx) {
  uint64_t seed = 0;
  struct timespec ts;

  if (uv_random(NULL, NULL, &seed, sizeof(seed), 0, NULL) != 0 || seed == 0) {
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
           (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)ctx;
  }
  ctx->trace_rng = seed;
}

/* n random bytes, n a multiple of 8, not all zero (an all-zero id is
 * invalid): a zero first word is drawn again. */
static void fill_random(svc_ctx_t *ctx, uint8_t *b, size_t n) {
  uint64_t r;
  size_t i;

  while ((r = trace_next(ctx)) == 0)
    ;
  memcpy(b, &r, sizeof(r));
  for (i = sizeof(r); i < n; i += sizeof(r)) {
    r = trace_next(ctx);
    memcpy(b + i, &r, sizeof(r));
  }
}

void svc__trace_child(svc_ctx_t *ctx, const svc_trace_t *parent,
                      svc_trace_t *out) {
  if (parent != NULL) {
    memcpy(out->trace_id, parent->trace_id, sizeof(out->trace_id));
    out->flags = parent->flags;
  } else {
    fill_random(ctx, out->trace_id, sizeof(out->trace_id));
    out->flags = 1; /* Sampled: record it. */
  }
  fill_random(ctx, out->span_id, sizeof(out->span_id));
}

int svc__trace_stamp(svc_ctx_t *ctx, svc_msg_t *msg, int create,
                     svc_trace_t *out) {
  svc_trace_t parent;
  svc_trace_t t;
  int rc;

  if (ctx->opts.trace == SVC_TRACE_OFF)
    return 0;
  if (svc_msg_trace(msg, &parent) == 0) {
    svc__trace_child(ctx, &parent, &t);
  } else {
    trace_cur_load(ctx);
    if (ctx->trace_has_cur)
      svc__trace_child(ctx, &ctx->trace_cur, &t);
    else if (create)
      svc__trace_child(ctx, NULL, &t);
    else
      return 0;
  }
  rc = svc__msg_put_trace(msg, &t);
  if (rc != 0)
    return rc;
  if (out != NULL)
    *out = t;
  return 1;
}

/* Scopes save the current trace only when there is one: callbacks run
 * from the loop (every event) have none to save. */
static void scope_save(svc_ctx_t *ctx, struct svc__trace_scope *sc) {
  sc->had = ctx->trace_has_cur;
  if (sc->had) {
    sc->saved = ctx->trace_cur;
    sc->saved_msg = ctx->trace_msg;
  }
}

void svc__trace_enter(svc_ctx_t *ctx, const svc_trace_t *t,
                      struct svc__trace_scope *sc) {
  scope_save(ctx, sc);
  if (t != NULL)
    ctx->trace_cur = *t;
  ctx->trace_has_cur = t != NULL;
}

void svc__trace_enter_msg(svc_ctx_t *ctx, const svc_msg_t *msg,
                          struct svc__trace_scope *sc) {
  scope_save(ctx, sc);
  /* The message's trace, read when first asked for (3), then with its
   * span id; a span of its own is drawn when read (2). The message
   * outlives the scope. */
  ctx->trace_msg = msg;
  ctx->trace_has_cur = msg != NULL ? 3 : 0;
}

void svc__trace_leave(svc_ctx_t *ctx, const struct svc__trace_scope *sc) {
  ctx->trace_has_cur = sc->had;
  if (sc->had) {
    ctx->trace_cur = sc->saved;
    ctx->trace_msg = sc->saved_msg;
  }
}

/* ---- Logging. */

void svc_ctx_set_log(svc_ctx_t *ctx, svc_log_level_t max_level, svc_log_cb cb,
                     void *arg) {
  if (ctx == NULL)
    return;
  ctx->log_cb = cb;
  ctx->log_arg = arg;
  ctx->log_level = cb != NULL ? (int)max_level : 0;
}

const char *svc_log_level_name(svc_log_level_t level) {
  switch (level) {
  case SVC_LOG_ERROR:
    return "error";
  case SVC_LOG_WARN:
    return "warn";
  case SVC_LOG_INFO:
    return "info";
  case SVC_LOG_DEBUG:
    return "debug";
  }
  return "unknown";
}

void svc__log(svc_ctx_t *ctx, svc_log_level_t level, const char *verb,
              const char *endpoint, const char *target, svc_status_t status,
              int err, uint64_t latency_us, const svc_trace_t *trace,
              const char *fmt, ...) {
  svc_log_record_t rec;
  char tid[33];
  char text[256];
  va_list ap;

  if (!svc__log_wants(ctx, level))
    return;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  memset(&rec, 0, sizeof(rec));
  rec.level = level;
  rec.verb = verb;
  rec.endpoint = endpoint;
  rec.target = target;
  rec.status = status;
  rec.err = err;
  rec.latency_us = latency_us;
  if (trace != NULL) {
    svc_trace_id_hex(trace, tid);
    rec.trace_id = tid;
  }
  rec.message = text;
  SVC__USER_CB(ctx, ctx->log_cb(&rec, ctx->log_arg));
}
