/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_HARNESS_H
#define SVC_TEST_HARNESS_H

/* One loop and one context per test, a watchdog that fails a stuck test
 * before Criterion's timeout would (so it still cleans up), and a finish
 * step that closes the context and checks nothing leaked on the loop. */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "svccomm.h"

struct harness {
  uv_loop_t loop;
  svc_ctx_t *ctx;
  uv_timer_t watchdog;
  int close_cbs;
};

static void harness_watchdog_cb(uv_timer_t *t) {
  (void)t;
  cr_assert_fail("watchdog: the loop did not finish in time");
}

static void harness_close_cb(svc_ctx_t *ctx, void *arg) {
  struct harness *h = arg;
  (void)ctx;
  h->close_cbs++;
}

static inline void harness_start_opts(struct harness *h,
                                      const svc_ctx_opts_t *opts) {
  memset(h, 0, sizeof(*h));
  cr_assert_eq(uv_loop_init(&h->loop), 0);
  cr_assert_eq(svc_ctx_init(&h->loop, opts, &h->ctx), 0);
  cr_assert_eq(uv_timer_init(&h->loop, &h->watchdog), 0);
  uv_timer_start(&h->watchdog, harness_watchdog_cb, 8000, 0);
  uv_unref((uv_handle_t *)&h->watchdog);
}

static inline void harness_start(struct harness *h) {
  harness_start_opts(h, NULL);
}

/* Runs the loop until it has nothing left to do. */
static inline void harness_run(struct harness *h) {
  svc_ctx_run(h->ctx, UV_RUN_DEFAULT);
}

/* Runs the loop until *flag becomes nonzero (servers keep a loop alive, so
 * network tests wait for their outcome instead of for an idle loop). The
 * watchdog keeps the loop alive meanwhile: a wait that nothing will end
 * then fails at the watchdog instead of spinning until Criterion's
 * timeout. */
static inline void harness_run_until(struct harness *h, const int *flag) {
  uv_ref((uv_handle_t *)&h->watchdog);
  while (!*flag)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_unref((uv_handle_t *)&h->watchdog);
}

/* Closes the context, runs the loop dry and checks that the close callback
 * ran once and no handle was left on the loop. */
static inline void harness_finish(struct harness *h) {
  svc_ctx_close(h->ctx, harness_close_cb, h);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  cr_assert_eq(h->close_cbs, 1, "close callback ran %d times", h->close_cbs);
  uv_close((uv_handle_t *)&h->watchdog, NULL);
  uv_run(&h->loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h->loop), 0, "a handle leaked on the loop");
}

/* A one-shot timer that calls fn(arg) after ms, then closes itself. */
struct later {
  uv_timer_t timer;
  void (*fn)(void *arg);
  void *arg;
};

static void later_closed(uv_handle_t *h) {
  free(h->data);
}

static void later_fire(uv_timer_t *t) {
  struct later *l = t->data;
  l->fn(l->arg);
  uv_close((uv_handle_t *)&l->timer, later_closed);
}

static inline void run_later(uv_loop_t *loop, uint64_t ms,
                             void (*fn)(void *arg), void *arg) {
  struct later *l = calloc(1, sizeof(*l));
  cr_assert_not_null(l);
  l->fn = fn;
  l->arg = arg;
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_update_time(loop);
  uv_timer_start(&l->timer, later_fire, ms, 0);
}

/* Nonzero when m's body is exactly the string s. */
static inline int body_is(const svc_msg_t *m, const char *s) {
  size_t len;
  const void *b;

  if (m == NULL)
    return 0;
  b = svc_msg_body(m, &len);
  return len == strlen(s) && memcmp(b, s, len) == 0;
}

#endif /* SVC_TEST_HARNESS_H */
