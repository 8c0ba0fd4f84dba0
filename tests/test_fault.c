/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Fault injection on inproc://: the same seed gives the same faults; loss,
 * duplication, delay, reordering and disconnects do what they say and are
 * counted; bad options are refused; a close with held work is clean. */
#include "fault_events.h"

#include <math.h>
#include <stdio.h>

TestSuite(fault, .timeout = 30);


/* ---- Events. */

static void subscribe_seq(svc_ctx_t *ctx, const char *uri, struct seq *q) {
  svc_sub_opts_t o = {.max_queue = 8 * NEVENTS, .on_ready = seq_ready};
  cr_assert_eq(svc_subscribe(ctx, uri, &o, seq_cb, q, NULL), 0);
}

/* Publishes NEVENTS numbered events through faults with seed and records
 * the ids the subscriber receives, in a fresh context. */
static void run_sequence(uint64_t seed, struct seq *q, svc_fault_stats_t *st) {
  struct harness h;
  struct pubs p = {0};
  char uri[256];
  int i;

  memset(q, 0, sizeof(*q));
  snprintf(uri, sizeof(uri),
           "inproc://bus/ev?fault-seed=%llu&fault-loss=0.1&fault-dup=0.05"
           "&fault-reorder=0.2",
           (unsigned long long)seed);
  harness_start(&h);
  subscribe_seq(h.ctx, "inproc://bus/ev", q);
  harness_run(&h);
  cr_assert_eq(q->ready, 1);
  for (i = 0; i < NEVENTS; i++)
    cr_assert_eq(publish_n(h.ctx, uri, i, 0, &p), 0);
  harness_run(&h);
  cr_assert_eq(p.calls, NEVENTS, "every publish completes once");
  cr_assert_eq(p.ok, NEVENTS, "a loss looks like success to the sender");
  cr_assert_eq(p.inside, 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", st), 0);
  cr_assert_eq(st->held, 0);
  harness_finish(&h);
  cr_assert_eq(q->finals, 1);
}

static int seq_equal(const struct seq *a, const struct seq *b) {
  return a->n == b->n && memcmp(a->ids, b->ids, sizeof(int) * a->n) == 0;
}

Test(fault, same_seed_gives_same_delivery_sequence) {
  static struct seq a, b, c;
  svc_fault_stats_t sa, sb, sc;
  int i, in_order = 1;

  run_sequence(42, &a, &sa);
  run_sequence(42, &b, &sb);
  run_sequence(43, &c, &sc);
  /* The faults really happened. */
  cr_assert_gt(sa.lost, 0);
  cr_assert_gt(sa.duplicated, 0);
  cr_assert_gt(sa.reordered, 0);
  cr_assert_eq(a.n, NEVENTS - (int)sa.lost + (int)sa.duplicated);
  for (i = 1; i < a.n; i++)
    in_order &= a.ids[i] >= a.ids[i - 1];
  cr_assert(!in_order, "reordering left the events in order");
  /* Same seed, same sequence; another seed, another one. */
  cr_assert(seq_equal(&a, &b), "seed 42 gave two different sequences");
  cr_assert_eq(memcmp(&sa, &sb, sizeof(sa)), 0);
  cr_assert(!seq_equal(&a, &c), "seeds 42 and 43 gave the same sequence");
}

Test(fault, loss_drops_about_the_fraction_and_counts_every_drop) {
  struct harness h;
  static struct seq q;
  struct pubs p = {0};
  svc_fault_stats_t st;
  svc_metrics_t m;
  int i;

  memset(&q, 0, sizeof(q));
  harness_start(&h);
  subscribe_seq(h.ctx, "inproc://bus/ev", &q);
  for (i = 0; i < NEVENTS * 2; i++)
    cr_assert_eq(publish_n(h.ctx,
                           "inproc://bus/ev?fault-seed=7&fault-loss=0.25", i, 0,
                           &p),
                 0);
  harness_run(&h);
  cr_assert_eq(p.ok, NEVENTS * 2);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", &st), 0);
  cr_assert_eq(st.ops, NEVENTS * 2);
  /* 25 % of 400: 100 expected; the bounds are many sigmas wide. */
  cr_assert(st.lost >= 60 && st.lost <= 140, "lost %llu of 400",
            (unsigned long long)st.lost);
  cr_assert_eq((uint64_t)q.n + st.lost, NEVENTS * 2, "a drop went uncounted");
  cr_assert_eq(svc_metrics_get(h.ctx, "inproc://bus", SVC_ROLE_CLIENT, &m), 0);
  cr_assert_eq(m.dropped, st.lost);
  harness_finish(&h);
}

Test(fault, reorder_holds_an_event_behind_the_next_one) {
  struct harness h;
  static struct seq q;
  struct pubs p = {0};
  svc_fault_opts_t o = {.seed = 1, .reorder = 1.0};
  svc_fault_stats_t st;

  memset(&q, 0, sizeof(q));
  harness_start(&h);
  subscribe_seq(h.ctx, "inproc://bus/ev", &q);
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://bus", &o), 0);
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev", 0, 0, &p), 0);
  o.reorder = 0;
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://bus", &o), 0);
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev", 1, 0, &p), 0);
  harness_run(&h);
  cr_assert_eq(q.n, 2);
  cr_assert_eq(q.ids[0], 1);
  cr_assert_eq(q.ids[1], 0);
  cr_assert_eq(p.ok, 2);
  /* Nothing waits for a next publish that never comes. */
  o.reorder = 1.0;
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://bus", &o), 0);
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev", 2, 1, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", &st), 0);
  cr_assert_eq(st.reordered, 1);
  cr_assert_eq(st.held, 1);
  harness_run(&h);
  cr_assert_eq(q.n, 3);
  cr_assert_eq(q.ids[2], 2);
  cr_assert_eq(p.ok, 3);
  harness_finish(&h);
}

/* ---- Calls. */

struct result {
  int calls;
  int ok;
  svc_status_t status;
  int err;
  unsigned attempts;
  uint64_t done_ns;
};

static void result_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;

  (void)reply;
  r->calls++;
  r->ok += status == SVC_STATUS_OK;
  r->status = status;
  r->err = svc_call_errno(call);
  r->attempts += svc_call_attempts(call);
  r->done_ns = uv_hrtime();
}

static void count_handler(svc_request_t *req, void *arg) {
  (*(int *)arg)++;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str("ok"));
}

static void serve_count(svc_ctx_t *ctx, int *count) {
  svc_server_t *srv;
  cr_assert_eq(svc_serve(ctx, "inproc://svc", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "work", count_handler, count), 0);
}

Test(fault, dup_runs_the_handler_twice_for_some_calls) {
  struct harness h;
  struct result r = {0};
  svc_fault_stats_t st;
  int handled = 0;
  int i;

  harness_start(&h);
  serve_count(h.ctx, &handled);
  for (i = 0; i < 50; i++)
    cr_assert_eq(svc_call(h.ctx, "inproc://svc/work?fault-seed=3&fault-dup=0.3",
                          NULL, NULL, result_cb, &r, NULL),
                 0);
  harness_run(&h);
  cr_assert_eq(r.calls, 50);
  cr_assert_eq(r.ok, 50, "the duplicate's reply must be ignored");
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://svc", &st), 0);
  cr_assert_gt(st.duplicated, 0);
  cr_assert_eq(handled, 50 + (int)st.duplicated);
  harness_finish(&h);
}

Test(fault, delay_delays_calls_events_and_stream_opens) {
  struct harness h;
  struct result r = {0};
  static struct seq q;
  struct pubs p = {0};
  svc_fault_stats_t st;
  uint64_t t0;
  int handled = 0;

  memset(&q, 0, sizeof(q));
  harness_start(&h);
  serve_count(h.ctx, &handled);
  subscribe_seq(h.ctx, "inproc://svc/ev", &q);
  harness_run(&h);
  uv_update_time(&h.loop); /* Delays count from the loop's time. */
  t0 = uv_hrtime();
  cr_assert_eq(svc_call(h.ctx, "inproc://svc/work?fault-delay-ms=40-60", NULL,
                        NULL, result_cb, &r, NULL),
               0);
  cr_assert_eq(publish_n(h.ctx, "inproc://svc/ev", 1, 0, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://svc", &st), 0);
  cr_assert_eq(st.delayed, 2);
  cr_assert_eq(st.held, 2);
  harness_run(&h);
  cr_assert_eq(r.ok, 1);
  cr_assert_eq(q.n, 1);
  cr_assert_eq(p.ok, 1);
  /* Only a lower bound: a loaded machine may be slower, never faster. */
  /* 39: libuv's loop time is whole milliseconds (see below). */
  cr_assert_geq(r.done_ns - t0, 39 * 1000000ull, "call took %llu ns",
                (unsigned long long)(r.done_ns - t0));
  cr_assert_geq(uv_hrtime() - t0, 39 * 1000000ull);
  harness_finish(&h);
}

Test(fault, disconnect_fails_calls_unavailable_and_retries_recover) {
  struct harness h;
  struct result r1 = {0}, r2 = {0};
  svc_call_opts_t retry = {.idempotent = 1,
                           .timeout_ms = 5000,
                           .retry = {.max_attempts = 20,
                                     .initial_backoff_ms = 1,
                                     .max_backoff_ms = 2}};
  svc_fault_stats_t st;
  int handled = 0;
  int i;

  harness_start(&h);
  serve_count(h.ctx, &handled);
  cr_assert_eq(svc_call(h.ctx, "inproc://svc/work?fault-disconnect=1", NULL,
                        NULL, result_cb, &r1, NULL),
               0);
  harness_run(&h);
  cr_assert_eq(r1.calls, 1);
  cr_assert_eq(r1.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(r1.err, SVC_ECONNRESET);
  for (i = 0; i < 20; i++)
    cr_assert_eq(svc_call(h.ctx,
                          "inproc://svc/work?fault-seed=9&fault-disconnect=0.5",
                          NULL, &retry, result_cb, &r2, NULL),
                 0);
  harness_run(&h);
  cr_assert_eq(r2.calls, 20);
  cr_assert_eq(r2.ok, 20, "idempotent calls with retries must get through");
  cr_assert_gt(r2.attempts, 20, "no attempt was disconnected");
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://svc", &st), 0);
  cr_assert_eq(st.disconnects, r2.attempts - 20);
  harness_finish(&h);
}

Test(fault, lost_call_meets_its_deadline) {
  struct harness h;
  struct result r = {0};
  svc_call_opts_t o = {.timeout_ms = 30};
  int handled = 0;

  harness_start(&h);
  serve_count(h.ctx, &handled);
  cr_assert_eq(svc_call(h.ctx, "inproc://svc/work?fault-loss=1", NULL, &o,
                        result_cb, &r, NULL),
               0);
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  cr_assert_eq(handled, 0);
  harness_finish(&h);
}

/* ---- Streams. */

struct side {
  int data[64];
  int n;
  int closes;
  int close_status;
  int accepted;
  uint64_t accepted_ns;
};

static void side_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct side *d = arg;
  size_t len;
  const char *b = svc_msg_body(msg, &len);
  char buf[16];

  (void)s;
  memcpy(buf, b, len < 15 ? len : 15);
  buf[len < 15 ? len : 15] = '\0';
  if (d->n < 64)
    d->data[d->n++] = atoi(buf);
}

static void side_close(svc_stream_t *s, int status, void *arg) {
  struct side *d = arg;
  (void)s;
  d->closes++;
  d->close_status = status;
}

static const svc_stream_cbs_t side_cbs = {.on_data = side_data,
                                          .on_close = side_close};

static void accept_cb(svc_server_t *srv, svc_stream_t *s, void *arg) {
  struct side *d = arg;
  (void)srv;
  d->accepted++;
  d->accepted_ns = uv_hrtime();
  cr_assert_eq(svc_stream_accept(s, NULL, &side_cbs, d), 0);
}

static svc_server_t *serve_streams(svc_ctx_t *ctx, struct side *server) {
  svc_server_t *srv;
  cr_assert_eq(svc_serve(ctx, "inproc://st", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "pipe", accept_cb, server), 0);
  return srv;
}

Test(fault, stream_open_is_delayed_and_disconnect_resets_both_sides) {
  struct harness h;
  struct side server = {0}, client = {0}, refused = {0};
  svc_fault_opts_t o = {.seed = 5, .delay_min_ms = 40, .delay_max_ms = 40};
  svc_stream_t *s;
  uint64_t t0;
  char body[16];
  int i;

  harness_start(&h);
  serve_streams(h.ctx, &server);
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://st", &o), 0);
  /* The delay counts from the loop's time, which is only as fresh as its
   * last update: refresh it, so that t0 and the delay start together
   * (under ASan the setup above takes tens of ms). */
  uv_update_time(&h.loop);
  t0 = uv_hrtime();
  cr_assert_eq(
      svc_stream(h.ctx, "inproc://st/pipe", NULL, &side_cbs, &client, &s), 0);
  /* Writes wait for the open; then the connection drops under them. */
  o = (svc_fault_opts_t){.seed = 11, .disconnect = 0.2};
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://st", &o), 0);
  for (i = 0; i < 40; i++) {
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(svc_stream_write(s, svc_msg_new_str(body), NULL, NULL), 0);
  }
  harness_run(&h);
  cr_assert_eq(server.accepted, 1);
  /* libuv counts loop time in whole milliseconds: a 40 ms timer may fire
   * up to 1 ms short of 40 ms by a nanosecond clock. */
  cr_assert_geq(server.accepted_ns - t0, 39 * 1000000ull,
                "opened after %llu ns",
                (unsigned long long)(server.accepted_ns - t0));
  cr_assert_eq(client.closes, 1);
  cr_assert_eq(client.close_status, SVC_ECONNRESET);
  cr_assert_eq(server.closes, 1);
  cr_assert_eq(server.close_status, SVC_ECONNRESET);
  /* What got through is a prefix, in order: streams are never reordered,
   * duplicated or thinned. */
  cr_assert_lt(server.n, 40);
  for (i = 0; i < server.n; i++)
    cr_assert_eq(server.data[i], i);
  /* A disconnect at the open is reported like a refused connect. */
  o = (svc_fault_opts_t){.disconnect = 1.0};
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://st", &o), 0);
  cr_assert_eq(
      svc_stream(h.ctx, "inproc://st/pipe", NULL, &side_cbs, &refused, &s), 0);
  harness_run(&h);
  cr_assert_eq(refused.closes, 1);
  cr_assert_eq(refused.close_status, SVC_ECONNRESET);
  cr_assert_eq(server.accepted, 1);
  harness_finish(&h);
}

/* ---- Options. */

Test(fault, bad_fault_options_give_einval) {
  static const char *const bad[] = {
      "fault-bogus=1",    "fault-loss=1.5",     "fault-loss=0.1234567",
      "fault-loss=-0.1",  "fault-loss",         "fault-delay-ms=20-5",
      "fault-delay-ms=x", "fault-seed=abc",     "fault-dup=",
      "fault-max-held=0", "fault-reorder=1.01", "fault-loss=0.1&fault-x=1",
  };
  struct harness h;
  struct result r = {0};
  svc_fault_opts_t o = {0};
  svc_stream_t *s = NULL;
  char uri[256];
  size_t i;
  int handled = 0;

  harness_start(&h);
  serve_count(h.ctx, &handled);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    snprintf(uri, sizeof(uri), "inproc://svc/work?%s", bad[i]);
    cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, never_cb, NULL, NULL),
                 SVC_EINVAL, "%s", bad[i]);
    cr_assert_eq(svc_publish(h.ctx, uri, NULL, NULL, NULL, NULL), SVC_EINVAL,
                 "%s", bad[i]);
    cr_assert_eq(svc_subscribe(h.ctx, uri, NULL, never_event, NULL, NULL),
                 SVC_EINVAL, "%s", bad[i]);
    cr_assert_eq(svc_stream(h.ctx, uri, NULL, NULL, NULL, &s), SVC_EINVAL, "%s",
                 bad[i]);
  }
  /* On a fresh endpoint too (the URI that creates the connection). */
  cr_assert_eq(svc_call(h.ctx, "inproc://fresh/x?fault-nope=1", NULL, NULL,
                        never_cb, NULL, NULL),
               SVC_EINVAL);
  o.loss = 1.5;
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://svc", &o), SVC_EINVAL);
  o.loss = NAN;
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://svc", &o), SVC_EINVAL);
  o = (svc_fault_opts_t){.delay_min_ms = 10, .delay_max_ms = 5};
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://svc", &o), SVC_EINVAL);
  o = (svc_fault_opts_t){0};
  cr_assert_eq(svc_fault_set(h.ctx, "nosuch://svc", &o), SVC_ESCHEME);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://svc", &(svc_fault_stats_t){0}),
               SVC_ENOENT);
  /* Other query names stay the application's business; valid options
   * work. */
  cr_assert_eq(svc_call(h.ctx,
                        "inproc://svc/work?x=1&fault-loss=0&fault-delay=0.5",
                        NULL, NULL, result_cb, &r, NULL),
               0);
  harness_run(&h);
  cr_assert_eq(r.ok, 1);
  cr_assert_eq(handled, 1);
  harness_finish(&h);
}

/* ---- Close. */

static void never_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)s;
  (void)msg;
  (void)arg;
  cr_assert_fail("data on a stream whose open was still delayed");
}

Test(fault, close_with_delayed_work_pending_is_clean) {
  struct harness h;
  static struct seq q;
  struct pubs p = {0};
  struct result r = {0};
  struct side server = {0}, client = {0};
  svc_stream_cbs_t cbs = {.on_data = never_data, .on_close = side_close};
  svc_fault_opts_t o = {.seed = 2, .delay_min_ms = 5000, .delay_max_ms = 6000};
  svc_fault_stats_t st;
  svc_stream_t *s;
  int handled = 0;
  int i;

  memset(&q, 0, sizeof(q));
  harness_start(&h);
  serve_count(h.ctx, &handled);
  serve_streams(h.ctx, &server);
  subscribe_seq(h.ctx, "inproc://svc/ev", &q);
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://svc", &o), 0);
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://st", &o), 0);
  for (i = 0; i < 10; i++) {
    cr_assert_eq(publish_n(h.ctx, "inproc://svc/ev", i, i % 2, &p), 0);
    cr_assert_eq(svc_call(h.ctx, "inproc://svc/work", svc_msg_new_str("x"),
                          NULL, result_cb, &r, NULL),
                 0);
  }
  cr_assert_eq(svc_stream(h.ctx, "inproc://st/pipe", NULL, &cbs, &client, &s),
               0);
  cr_assert_eq(svc_stream_write(s, svc_msg_new_str("w"), NULL, NULL), 0);
  /* A few loop turns with everything delayed. */
  for (i = 0; i < 3; i++)
    uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(p.calls, 0);
  /* And events held for reordering (until the next turn). */
  o = (svc_fault_opts_t){.reorder = 1.0};
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://svc", &o), 0);
  for (i = 10; i < 15; i++)
    cr_assert_eq(publish_n(h.ctx, "inproc://svc/ev", i, 1, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://svc", &st), 0);
  cr_assert_eq(st.held, 25);
  svc_ctx_close(h.ctx, harness_close_cb, &h);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(h.close_cbs, 1);
  cr_assert_eq(p.calls, 15);
  cr_assert_eq(p.cancelled, 15);
  cr_assert_eq(r.calls, 10);
  cr_assert_eq(r.status, SVC_STATUS_CANCELLED);
  cr_assert_eq(r.ok, 0);
  cr_assert_eq(handled, 0);
  cr_assert_eq(q.n, 0);
  cr_assert_eq(q.finals, 1);
  cr_assert_eq(client.closes, 1);
  cr_assert_eq(client.close_status, SVC_ECANCELED);
  cr_assert_eq(server.accepted, 0);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0, "a handle leaked on the loop");
}

/* ---- The API in code. */

Test(fault, profile_set_in_code_counts_and_can_be_removed) {
  struct harness h;
  static struct seq q;
  struct pubs p = {0};
  svc_fault_opts_t o = {.seed = 77, .disconnect = 1.0};
  svc_fault_stats_t st;

  memset(&q, 0, sizeof(q));
  harness_start(&h);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", &st), SVC_ENOENT);
  subscribe_seq(h.ctx, "inproc://bus/ev", &q);
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://bus/any/path?x=1", &o), 0);
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev", 1, 0, &p), 0);
  harness_run(&h);
  cr_assert_eq(p.reset, 1, "a disconnected publish reports ECONNRESET");
  cr_assert_eq(q.n, 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", &st), 0);
  cr_assert_eq(st.ops, 1);
  cr_assert_eq(st.disconnects, 1);
  /* The same URI options again do not reset the profile; new ones do. */
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev?fault-seed=1", 2, 0, &p), 0);
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev?fault-seed=1", 3, 0, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", &st), 0);
  cr_assert_eq(st.ops, 2);
  cr_assert_eq(st.disconnects, 0);
  cr_assert_eq(svc_fault_set(h.ctx, "inproc://bus", NULL), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, "inproc://bus", &st), SVC_ENOENT);
  cr_assert_eq(publish_n(h.ctx, "inproc://bus/ev", 4, 0, &p), 0);
  harness_run(&h);
  cr_assert_eq(q.n, 3);
  cr_assert_eq(p.ok, 3);
  harness_finish(&h);
}
