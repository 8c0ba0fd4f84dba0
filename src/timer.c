/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* One uv_timer_t per context drives a binary min-heap of svc__timer, so a
 * call's deadline or backoff needs no uv handle of its own: ops can then be
 * freed at once instead of waiting for a handle's close callback. */

static void timer_cb(uv_timer_t *handle);

int svc__timers_init(svc_ctx_t *ctx) {
  int rc = uv_timer_init(ctx->loop, &ctx->timer);
  if (rc == 0)
    ctx->timer.data = ctx;
  return rc;
}

void svc__timers_close(svc_ctx_t *ctx) {
  uv_timer_stop(&ctx->timer);
}

void svc__timer_init(struct svc__timer *t, void (*fn)(struct svc__timer *t)) {
  t->due = 0;
  t->heap_index = SIZE_MAX;
  t->fn = fn;
}

static int timer_less(const struct svc__timer *a, const struct svc__timer *b) {
  return a->due < b->due;
}

static void heap_set(svc_ctx_t *ctx, size_t i, struct svc__timer *t) {
  ctx->heap[i] = t;
  t->heap_index = i;
}

static void heap_up(svc_ctx_t *ctx, size_t i) {
  struct svc__timer *t = ctx->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!timer_less(t, ctx->heap[parent]))
      break;
    heap_set(ctx, i, ctx->heap[parent]);
    i = parent;
  }
  heap_set(ctx, i, t);
}

static void heap_down(svc_ctx_t *ctx, size_t i) {
  struct svc__timer *t = ctx->heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= ctx->heap_len)
      break;
    if (child + 1 < ctx->heap_len &&
        timer_less(ctx->heap[child + 1], ctx->heap[child]))
      child++;
    if (!timer_less(ctx->heap[child], t))
      break;
    heap_set(ctx, i, ctx->heap[child]);
    i = child;
  }
  heap_set(ctx, i, t);
}

static void heap_remove(svc_ctx_t *ctx, size_t i) {
  struct svc__timer *last;

  ctx->heap[i]->heap_index = SIZE_MAX;
  last = ctx->heap[--ctx->heap_len];
  if (i == ctx->heap_len)
    return;
  heap_set(ctx, i, last);
  heap_up(ctx, i);
  heap_down(ctx, last->heap_index);
}

/* Re-arms the uv timer for the earliest due entry. */
static void timers_rearm(svc_ctx_t *ctx) {
  uint64_t now;

  if (ctx->heap_len == 0) {
    uv_timer_stop(&ctx->timer);
    return;
  }
  now = uv_now(ctx->loop);
  /* XXX(libuv 1.44): a 0 ms timer started from a timer callback runs again
   * in the same pass; 1 ms keeps the loop turning (curl's multi-uv does the
   * same). */
  uv_timer_start(&ctx->timer, timer_cb,
                 ctx->heap[0]->due > now ? ctx->heap[0]->due - now : 1, 0);
}

int svc__timer_start(svc_ctx_t *ctx, struct svc__timer *t, uint64_t ms) {
  struct svc__timer **heap;
  size_t cap;

  if (svc__timer_active(t))
    heap_remove(ctx, t->heap_index);
  if (ctx->heap_len == ctx->heap_cap) {
    cap = ctx->heap_cap ? ctx->heap_cap * 2 : 16;
    heap = svc__realloc(ctx->heap, cap * sizeof(*heap));
    if (heap == NULL)
      return SVC_ENOMEM;
    ctx->heap = heap;
    ctx->heap_cap = cap;
  }
  /* The loop's clock is cached at the start of each turn, which may be long
   * ago when the application did work before calling us; a deadline must
   * count from now. */
  uv_update_time(ctx->loop);
  /* At least 1 ms, so a timer re-armed from its own callback waits for the
   * next loop turn instead of firing again in this one. */
  t->due = uv_now(ctx->loop) + (ms > 0 ? ms : 1);
  heap_set(ctx, ctx->heap_len++, t);
  heap_up(ctx, t->heap_index);
  if (ctx->heap[0] == t)
    timers_rearm(ctx);
  return 0;
}

void svc__timer_stop(svc_ctx_t *ctx, struct svc__timer *t) {
  int was_first;

  if (!svc__timer_active(t))
    return;
  was_first = t->heap_index == 0;
  heap_remove(ctx, t->heap_index);
  if (was_first)
    timers_rearm(ctx);
}

static void timer_cb(uv_timer_t *handle) {
  svc_ctx_t *ctx = handle->data;
  uint64_t now = uv_now(ctx->loop);
  struct svc__timer *t;

  while (ctx->heap_len > 0 && ctx->heap[0]->due <= now) {
    t = ctx->heap[0];
    heap_remove(ctx, 0);
    t->fn(t);
  }
  timers_rearm(ctx);
}
