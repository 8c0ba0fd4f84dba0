/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* A subscriber's queue under a producer that outruns it, with each
 * overflow policy: what is kept, what is dropped and counted, who waits,
 * the watermark callback, and memory that stays bounded. */
#include "harness.h"

TestSuite(overflow, .timeout = 30);

struct seen {
  int ready;
  int n;
  int bodies[64];
  int finals;
  int wm_calls;
  int wm_high[8];
  size_t wm_depth[8];
  int events_before_high; /* Events delivered when "high" was told. */
};

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct seen *s = arg;
  size_t len;
  const char *b;

  (void)sub;
  (void)status;
  if (ev == NULL) {
    s->finals++;
    return;
  }
  b = svc_msg_body(ev, &len);
  if (s->n < 64)
    s->bodies[s->n] = atoi(b);
  s->n++;
}

static void on_watermark(svc_sub_t *sub, size_t depth, int high, void *arg) {
  struct seen *s = arg;
  (void)sub;
  if (s->wm_calls < 8) {
    s->wm_high[s->wm_calls] = high;
    s->wm_depth[s->wm_calls] = depth;
  }
  if (high)
    s->events_before_high = s->n;
  s->wm_calls++;
}

static int pub(struct harness *h, int i, int qos, int *done) {
  char body[16];
  svc_pub_opts_t o = {.qos = qos};

  snprintf(body, sizeof(body), "%d", i);
  return svc_publish(h->ctx, "inproc://o/t", svc_msg_new_str(body), &o, NULL,
                     done);
}

static void count_done(svc_ctx_t *ctx, int status, void *arg) {
  (void)ctx;
  cr_assert_eq(status, 0);
  ++*(int *)arg;
}

static int pub_counted(struct harness *h, int i, int qos, int *done) {
  char body[16];
  svc_pub_opts_t o = {.qos = qos};

  snprintf(body, sizeof(body), "%d", i);
  return svc_publish(h->ctx, "inproc://o/t", svc_msg_new_str(body), &o,
                     count_done, done);
}

static svc_sub_t *sub_with(struct harness *h, size_t max, svc_overflow_t ov,
                           struct seen *s) {
  svc_sub_opts_t o = {.max_queue = max, .overflow = ov};
  svc_sub_t *sub;

  o.on_watermark = on_watermark;
  cr_assert_eq(svc_subscribe(h->ctx, "inproc://o/t", &o, on_event, s, &sub), 0);
  return sub;
}

Test(overflow, drop_oldest_keeps_the_newest_at_any_qos) {
  struct harness h;
  struct seen s = {0};
  svc_sub_t *sub;
  int done = 0;
  int i;

  harness_start(&h);
  sub = sub_with(&h, 3, SVC_OVERFLOW_DROP_OLDEST, &s);
  for (i = 1; i <= 5; i++)
    cr_assert_eq(pub_counted(&h, i, i % 2, &done), 0);
  while (s.n < 3 || done < 5)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(s.n, 3);
  cr_assert_eq(s.bodies[0], 3);
  cr_assert_eq(s.bodies[2], 5);
  cr_assert_eq(svc_sub_dropped(sub), 2);
  harness_finish(&h);
}

Test(overflow, drop_newest_never_makes_a_qos1_publisher_wait) {
  struct harness h;
  struct seen s = {0};
  svc_sub_t *sub;
  int done = 0;
  int i;

  harness_start(&h);
  sub = sub_with(&h, 2, SVC_OVERFLOW_DROP_NEWEST, &s);
  for (i = 1; i <= 4; i++)
    cr_assert_eq(pub_counted(&h, i, 1, &done), 0);
  /* All four complete; the two that found the queue full were dropped,
   * not held for later. */
  while (done < 4 || s.n < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(s.n, 2);
  cr_assert_eq(s.bodies[0], 1);
  cr_assert_eq(s.bodies[1], 2);
  cr_assert_eq(svc_sub_dropped(sub), 2);
  harness_finish(&h);
}

Test(overflow, default_makes_a_qos1_publisher_wait_and_drops_qos0) {
  struct harness h;
  struct seen s = {0};
  svc_sub_t *sub;
  int done = 0;
  int i;

  harness_start(&h);
  sub = sub_with(&h, 2, SVC_OVERFLOW_DEFAULT, &s);
  for (i = 1; i <= 3; i++)
    cr_assert_eq(pub_counted(&h, i, 1, &done), 0);
  cr_assert_eq(pub(&h, 99, 0, NULL), 0); /* Full: dropped. */
  while (s.n < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  harness_run_until(&h, &done);
  while (done < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(s.bodies[2], 3, "the waiting QoS 1 event was lost");
  cr_assert_eq(svc_sub_dropped(sub), 1);
  harness_finish(&h);
}

Test(overflow, watermark_says_full_before_delivery_and_half_after) {
  struct harness h;
  struct seen s = {0};
  int i;

  harness_start(&h);
  sub_with(&h, 4, SVC_OVERFLOW_DEFAULT, &s);
  for (i = 1; i <= 4; i++)
    cr_assert_eq(pub(&h, i, 0, NULL), 0);
  cr_assert_eq(s.wm_calls, 0, "told inside svc_publish()");
  while (s.n < 4)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(s.wm_calls, 2);
  cr_assert_eq(s.wm_high[0], 1);
  cr_assert_eq(s.wm_depth[0], 4);
  cr_assert_eq(s.events_before_high, 0);
  cr_assert_eq(s.wm_high[1], 0);
  cr_assert_leq(s.wm_depth[1], 2);
  /* Below the high mark: no more calls. */
  pub(&h, 5, 0, NULL);
  while (s.n < 5)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(s.wm_calls, 2);
  harness_finish(&h);
}

/* A producer that never yields to the consumer: the queue, and with it
 * memory, stays at its bound whatever the policy; every event is either
 * delivered or counted as dropped. */
Test(overflow, memory_stays_bounded_under_a_runaway_producer) {
  static const svc_overflow_t policies[] = {
      SVC_OVERFLOW_DEFAULT, SVC_OVERFLOW_DROP_OLDEST, SVC_OVERFLOW_DROP_NEWEST,
      SVC_OVERFLOW_FAIL_NEW};
  size_t p;

  for (p = 0; p < sizeof(policies) / sizeof(policies[0]); p++) {
    struct harness h;
    struct seen s = {0};
    svc_sub_t *sub;
    svc_metrics_t m;
    int i;

    harness_start(&h);
    sub = sub_with(&h, 16, policies[p], &s);
    for (i = 0; i < 20000; i++) {
      cr_assert_eq(pub(&h, i, 0, NULL), 0);
      if (i % 1000 == 0) {
        cr_assert_eq(svc_metrics_get(h.ctx, "inproc://o", SVC_ROLE_CLIENT, &m),
                     0);
        cr_assert_leq(m.queue_depth, 16, "policy %d", (int)policies[p]);
      }
    }
    while (s.n < 16)
      uv_run(&h.loop, UV_RUN_ONCE);
    cr_assert_eq((uint64_t)s.n + svc_sub_dropped(sub), 20000,
                 "policy %d: %d delivered, %llu dropped", (int)policies[p], s.n,
                 (unsigned long long)svc_sub_dropped(sub));
    if (policies[p] == SVC_OVERFLOW_DROP_OLDEST)
      cr_assert_eq(s.bodies[15], 19999, "the newest was not kept");
    else
      cr_assert_eq(s.bodies[15], 15, "the oldest were not kept");
    harness_finish(&h);
  }
}

Test(overflow, bad_policy_is_refused) {
  struct harness h;
  svc_sub_opts_t o = {.overflow = (svc_overflow_t)9};

  harness_start(&h);
  cr_assert_eq(svc_subscribe(h.ctx, "inproc://o/t", &o, on_event, NULL, NULL),
               SVC_EINVAL);
  harness_finish(&h);
}
