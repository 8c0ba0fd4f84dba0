/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Call policies: the circuit breaker (opens, fails fast, half-opens,
 * closes), retries that honour it, the concurrency limit with its bounded
 * queue and overflow policies, the policy deadline, the policy file, and
 * the breaker in the metrics. Mostly on inproc://, one dead tcp:// peer. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

TestSuite(policy, .timeout = 30);

#define EP "inproc://pol"

static int healthy;
static int handled;
static svc_request_t *parked[8];
static int nparked;

static void flaky_handler(svc_request_t *req, void *arg) {
  (void)arg;
  handled++;
  svc_request_reply(req, healthy ? SVC_STATUS_OK : SVC_STATUS_UNAVAILABLE,
                    NULL);
}

static void missing_handler(svc_request_t *req, void *arg) {
  (void)arg;
  handled++;
  svc_request_reply(req, SVC_STATUS_NOT_FOUND, NULL);
}

/* Keeps the request: the test answers it later. */
static void park_handler(svc_request_t *req, void *arg) {
  (void)arg;
  handled++;
  cr_assert_lt(nparked, 8);
  parked[nparked++] = req;
}

struct outcome {
  int done;
  svc_status_t status;
  int err;
  unsigned attempts;
};

static void outcome_cb(svc_call_t *call, svc_status_t status,
                       const svc_msg_t *reply, void *arg) {
  struct outcome *o = arg;
  (void)reply;
  o->done = 1;
  o->status = status;
  o->err = svc_call_errno(call);
  o->attempts = svc_call_attempts(call);
}

static void setup_server(struct harness *h) {
  svc_server_t *srv;

  healthy = 0;
  handled = 0;
  nparked = 0;
  harness_start(h);
  cr_assert_eq(svc_serve(h->ctx, EP, NULL, &srv), 0);
  svc_server_route(srv, NULL, "flaky", flaky_handler, NULL);
  svc_server_route(srv, NULL, "missing", missing_handler, NULL);
  svc_server_route(srv, NULL, "park", park_handler, NULL);
}

static struct outcome call_once(struct harness *h, const char *path) {
  struct outcome o = {0};
  char uri[64];

  snprintf(uri, sizeof(uri), EP "/%s", path);
  cr_assert_eq(svc_call(h->ctx, uri, NULL, NULL, outcome_cb, &o, NULL), 0);
  harness_run_until(h, &o.done);
  return o;
}

static void set_flag(void *arg) {
  *(int *)arg = 1;
}

static void sleep_loop(struct harness *h, uint64_t ms) {
  int fired = 0;

  run_later(&h->loop, ms, set_flag, &fired);
  harness_run_until(h, &fired);
}

static svc_metrics_t metrics(struct harness *h) {
  svc_metrics_t m;

  cr_assert_eq(svc_metrics_get(h->ctx, EP, SVC_ROLE_CLIENT, &m), 0);
  return m;
}

Test(policy, breaker_opens_fails_fast_half_opens_and_closes) {
  struct harness h;
  svc_policy_t p = {.breaker_failures = 3, .breaker_cooldown_ms = 200};
  struct outcome o;
  int i;

  setup_server(&h);
  cr_assert_eq(svc_policy_set(h.ctx, EP, &p), 0);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_CLOSED);
  /* Client errors do not count. */
  for (i = 0; i < 5; i++)
    cr_assert_eq(call_once(&h, "missing").status, SVC_STATUS_NOT_FOUND);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_CLOSED);
  for (i = 0; i < 3; i++) {
    o = call_once(&h, "flaky");
    cr_assert_eq(o.status, SVC_STATUS_UNAVAILABLE);
    cr_assert_eq(o.err, SVC_ESTATUS);
  }
  cr_assert_eq(handled, 8);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_OPEN);
  /* Open: fails fast, the server never sees it. */
  o = call_once(&h, "flaky");
  cr_assert_eq(o.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(o.err, SVC_EBREAKER);
  cr_assert_eq(handled, 8);
  cr_assert_eq(metrics(&h).breaker_state, SVC_BREAKER_OPEN);
  cr_assert_eq(metrics(&h).breaker_opens, 1);
  cr_assert_eq(metrics(&h).calls_rejected, 1);

  /* After the cool-down, one probe; it fails: open again. */
  sleep_loop(&h, 250);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_HALF_OPEN);
  o = call_once(&h, "flaky");
  cr_assert_eq(o.err, SVC_ESTATUS, "the probe did not reach the server");
  cr_assert_eq(handled, 9);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_OPEN);
  cr_assert_eq(metrics(&h).breaker_opens, 2);

  /* The endpoint recovers; the next probe closes the breaker. */
  sleep_loop(&h, 250);
  healthy = 1;
  cr_assert_eq(call_once(&h, "flaky").status, SVC_STATUS_OK);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_CLOSED);
  cr_assert_eq(call_once(&h, "flaky").status, SVC_STATUS_OK);
  cr_assert_eq(handled, 11);
  harness_finish(&h);
}

Test(policy, half_open_lets_only_the_probes_through) {
  struct harness h;
  svc_policy_t p = {.breaker_failures = 1, .breaker_cooldown_ms = 100};
  struct outcome a = {0}, b = {0};

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  call_once(&h, "flaky");
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_OPEN);
  sleep_loop(&h, 150);
  /* The probe parks at the server; a second call meanwhile fails fast. */
  cr_assert_eq(svc_call(h.ctx, EP "/park", NULL, NULL, outcome_cb, &a, NULL),
               0);
  cr_assert_eq(svc_call(h.ctx, EP "/park", NULL, NULL, outcome_cb, &b, NULL),
               0);
  harness_run_until(&h, &b.done);
  cr_assert_eq(b.err, SVC_EBREAKER);
  cr_assert_eq(nparked, 1);
  svc_request_reply(parked[0], SVC_STATUS_OK, NULL);
  harness_run_until(&h, &a.done);
  cr_assert_eq(a.status, SVC_STATUS_OK);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_CLOSED);
  harness_finish(&h);
}

Test(policy, error_rate_over_the_window_opens_it) {
  struct harness h;
  svc_policy_t p = {.breaker_error_rate = 0.5, .breaker_window = 10};
  int i;

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  /* Alternating: never two failures in a row, half of them failed. */
  for (i = 0; i < 9; i++) {
    healthy = i % 2;
    call_once(&h, "flaky");
    cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_CLOSED,
                 "opened after %d attempts", i + 1);
  }
  healthy = 1;
  call_once(&h, "flaky");
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_BREAKER_OPEN,
               "5 of 10 failed and it stayed closed");
  harness_finish(&h);
}

Test(policy, retries_stop_at_an_open_breaker) {
  struct harness h;
  svc_policy_t p = {.breaker_failures = 2, .breaker_cooldown_ms = 60000};
  svc_call_opts_t co = {.idempotent = 1};
  struct outcome o = {0};

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  co.retry.max_attempts = 5;
  co.retry.initial_backoff_ms = 5;
  cr_assert_eq(svc_call(h.ctx, EP "/flaky", NULL, &co, outcome_cb, &o, NULL),
               0);
  harness_run_until(&h, &o.done);
  cr_assert_eq(o.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(o.err, SVC_EBREAKER);
  cr_assert_eq(handled, 2, "retries went on past the open breaker");
  cr_assert_eq(o.attempts, 3);
  harness_finish(&h);
}

Test(policy, concurrency_limit_queues_in_order_and_bounds_the_queue) {
  struct harness h;
  svc_policy_t p = {.max_in_flight = 2, .max_queued = 2};
  struct outcome o[5] = {{0}};
  int i;

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  for (i = 0; i < 5; i++)
    cr_assert_eq(
        svc_call(h.ctx, EP "/park", NULL, NULL, outcome_cb, &o[i], NULL), 0);
  harness_run_until(&h, &o[4].done);
  cr_assert_eq(o[4].status, SVC_STATUS_RESOURCE_EXHAUSTED);
  cr_assert_eq(o[4].err, SVC_ENOBUFS);
  cr_assert_eq(nparked, 2, "the limit let %d through", nparked);
  cr_assert_eq(metrics(&h).calls_waiting, 2);
  cr_assert_eq(metrics(&h).calls_rejected, 1);
  /* A reply frees a slot: the oldest waiting call goes. */
  svc_request_reply(parked[0], SVC_STATUS_OK, NULL);
  while (nparked < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert(o[0].done && !o[2].done && !o[3].done);
  cr_assert_eq(metrics(&h).calls_waiting, 1);
  for (i = 1; i < 4; i++) {
    while (nparked <= i)
      uv_run(&h.loop, UV_RUN_ONCE);
    svc_request_reply(parked[i], SVC_STATUS_OK, NULL);
  }
  harness_run_until(&h, &o[3].done);
  for (i = 0; i < 4; i++)
    cr_assert_eq(o[i].status, SVC_STATUS_OK, "call %d", i);
  cr_assert_eq(metrics(&h).calls_waiting, 0);
  harness_finish(&h);
}

Test(policy, drop_oldest_fails_the_longest_waiting_call) {
  struct harness h;
  svc_policy_t p = {.max_in_flight = 1,
                    .max_queued = 1,
                    .overflow = SVC_OVERFLOW_DROP_OLDEST};
  struct outcome o[3] = {{0}};
  int i;

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  for (i = 0; i < 3; i++)
    svc_call(h.ctx, EP "/park", NULL, NULL, outcome_cb, &o[i], NULL);
  harness_run_until(&h, &o[1].done);
  cr_assert_eq(o[1].status, SVC_STATUS_RESOURCE_EXHAUSTED);
  cr_assert(!o[2].done);
  svc_request_reply(parked[0], SVC_STATUS_OK, NULL);
  while (nparked < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  svc_request_reply(parked[1], SVC_STATUS_OK, NULL);
  harness_run_until(&h, &o[2].done);
  cr_assert_eq(o[2].status, SVC_STATUS_OK);
  harness_finish(&h);
}

Test(policy, a_waiting_call_meets_its_deadline_and_leaves_the_queue) {
  struct harness h;
  svc_policy_t p = {.max_in_flight = 1, .max_queued = 4, .timeout_ms = 100};
  svc_call_opts_t short_wait = {.timeout_ms = 30};
  struct outcome a = {0}, b = {0};

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  /* a takes the only slot with the policy's deadline (it gives none); b
   * waits with a shorter one of its own, so its deadline comes first
   * however late the loop runs. With equal deadlines a slot freed by a's
   * could start b a millisecond before b's own timer (a regression of
   * this test on a loaded CI machine). */
  svc_call(h.ctx, EP "/park", NULL, NULL, outcome_cb, &a, NULL);
  svc_call(h.ctx, EP "/park", NULL, &short_wait, outcome_cb, &b, NULL);
  harness_run_until(&h, &b.done);
  cr_assert_eq(b.status, SVC_STATUS_DEADLINE_EXCEEDED);
  cr_assert_eq(nparked, 1);
  cr_assert_eq(metrics(&h).calls_waiting, 0);
  cr_assert_leq(svc_request_remaining_ms(parked[0]), 100);
  harness_run_until(&h, &a.done);
  cr_assert_eq(a.status, SVC_STATUS_DEADLINE_EXCEEDED);
  harness_finish(&h);
}

Test(policy, dead_tcp_peer_trips_the_breaker) {
  struct harness h;
  svc_policy_t p = {.breaker_failures = 2};
  struct outcome o[3] = {{0}};
  int i;

  harness_start(&h);
  /* Port 1 on loopback: nothing listens, the connection is refused. */
  svc_policy_set(h.ctx, "tcp://127.0.0.1:1", &p);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(svc_call(h.ctx, "tcp://127.0.0.1:1/x", NULL, NULL, outcome_cb,
                          &o[i], NULL),
                 0);
    harness_run_until(&h, &o[i].done);
    cr_assert_eq(o[i].status, SVC_STATUS_UNAVAILABLE);
  }
  cr_assert_neq(o[1].err, SVC_EBREAKER);
  cr_assert_eq(o[2].err, SVC_EBREAKER);
  harness_finish(&h);
}

Test(policy, prometheus_text_shows_the_breaker) {
  struct harness h;
  svc_policy_t p = {.breaker_failures = 1};
  svc_msg_t *text;
  size_t len;
  const char *body;

  setup_server(&h);
  svc_policy_set(h.ctx, EP, &p);
  call_once(&h, "flaky");
  text = svc_metrics_prometheus(h.ctx);
  cr_assert_not_null(text);
  body = svc_msg_body(text, &len);
  cr_assert_not_null(strstr(body, "svccomm_breaker_state{endpoint=\"" EP
                                  "\",role=\"client\"} 1"),
                     "%.*s", (int)len, body);
  cr_assert_not_null(strstr(body, "svccomm_breaker_opens_total"));
  svc_msg_free(text);
  harness_finish(&h);
}

/* ---- The policy file. */

static const char *write_file(const char *text) {
  static char path[64];
  FILE *f;

  snprintf(path, sizeof(path), "/tmp/svc-policy-%d.conf", (int)getpid());
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

Test(policy, file_sets_every_section) {
  struct harness h;
  svc_policy_t p;
  int line = -1;

  harness_start(&h);
  cr_assert_eq(svc_policy_load(h.ctx,
                               write_file("# operators edit this\n"
                                          "[tcp://10.0.0.7:7000]\n"
                                          "timeout_ms = 500\n"
                                          "  max_in_flight=64  \n"
                                          "max_queued = 256\n"
                                          "overflow = drop_oldest\n"
                                          "\n"
                                          "; another\n"
                                          "[inproc://users]\n"
                                          "breaker_failures = 5\n"
                                          "breaker_error_rate = 0.25\n"
                                          "breaker_window = 40\n"
                                          "breaker_cooldown_ms = 2000\n"
                                          "breaker_probes = 3\n"
                                          "[inproc://users/orders/+]\n"
                                          "timeout_ms = 250\n"),
                               &line),
               3);
  cr_assert_eq(line, 0);
  cr_assert_eq(svc_policy_get(h.ctx, "tcp://10.0.0.7:7000", &p), 0);
  cr_assert_eq(p.timeout_ms, 500);
  cr_assert_eq(p.max_in_flight, 64);
  cr_assert_eq(p.max_queued, 256);
  cr_assert_eq(p.overflow, SVC_OVERFLOW_DROP_OLDEST);
  cr_assert_eq(p.breaker_cooldown_ms, 5000, "default not filled in");
  cr_assert_eq(svc_policy_get(h.ctx, "inproc://users", &p), 0);
  cr_assert_eq(p.breaker_failures, 5);
  cr_assert(p.breaker_error_rate > 0.24 && p.breaker_error_rate < 0.26);
  cr_assert_eq(p.breaker_window, 40);
  cr_assert_eq(p.breaker_cooldown_ms, 2000);
  cr_assert_eq(p.breaker_probes, 3);
  cr_assert_eq(svc_policy_get(h.ctx, "inproc://users/orders/+", &p), 0);
  cr_assert_eq(p.timeout_ms, 250);
  cr_assert_eq(p.breaker_failures, 0, "the route's policy is its own");
  cr_assert_eq(svc_policy_get(h.ctx, "inproc://other", &p), SVC_ENOENT);
  unlink(write_file(""));
  harness_finish(&h);
}

Test(policy, bad_file_names_the_line_and_sets_nothing) {
  static const struct {
    const char *text;
    int line;
  } bad[] = {
      {"[inproc://a]\ntimeout_ms = 5\ntimeuot_ms = 5\n", 3},
      {"timeout_ms = 5\n", 1},
      {"[inproc://a]\nbreaker_error_rate = 1.5\n", 2},
      {"[inproc://a]\nmax_in_flight = -1\n", 2},
      {"[inproc://a]\noverflow = sometimes\n", 2},
      {"[inproc://a]\nbreaker_window = 5000\n", 2},
      {"[not a uri]\n", 1},
      {"[inproc://a]\njust words\n", 2},
      {"[inproc://a]\ntimeout_ms = 5\n[inproc://a/x/#/y]\n", 3},
      {"[inproc://a/$share/g/x]\n", 1},
  };
  struct harness h;
  svc_policy_t p = {0};
  size_t i;
  int line;

  harness_start(&h);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    line = -1;
    cr_assert_eq(svc_policy_load(h.ctx, write_file(bad[i].text), &line),
                 SVC_EINVAL, "case %zu accepted", i);
    cr_assert_eq(line, bad[i].line, "case %zu: line %d", i, line);
    cr_assert_eq(svc_policy_get(h.ctx, "inproc://a", &p), SVC_ENOENT,
                 "case %zu set a policy", i);
  }
  unlink(write_file(""));
  cr_assert_eq(svc_policy_load(h.ctx, "/nonexistent/policy.conf", NULL),
               SVC_ENOENT);
  {
    svc_policy_t bad_rate = {.breaker_error_rate = 2};
    cr_assert_eq(svc_policy_set(h.ctx, "inproc://a", &bad_rate), SVC_EINVAL);
    cr_assert_eq(svc_policy_set(h.ctx, "nonsense", &p), SVC_EINVAL);
  }
  harness_finish(&h);
}

/* ---- Policies per route or topic. */

static uint64_t seen_remaining[4];

static void remaining_handler(svc_request_t *req, void *arg) {
  seen_remaining[(intptr_t)arg] = svc_request_remaining_ms(req);
  svc_request_reply(req, SVC_STATUS_OK, NULL);
}

Test(policy, a_route_policy_has_a_breaker_of_its_own) {
  struct harness h;
  svc_policy_t p = {.breaker_failures = 2, .breaker_cooldown_ms = 60000};
  struct outcome o;

  setup_server(&h);
  cr_assert_eq(svc_policy_set(h.ctx, EP "/flaky", &p), 0);
  cr_assert_eq(svc_breaker_state(h.ctx, EP), SVC_ENOENT);
  cr_assert_eq(call_once(&h, "flaky").err, SVC_ESTATUS);
  cr_assert_eq(call_once(&h, "flaky").err, SVC_ESTATUS);
  cr_assert_eq(svc_breaker_state(h.ctx, EP "/flaky"), SVC_BREAKER_OPEN);
  o = call_once(&h, "flaky");
  cr_assert_eq(o.err, SVC_EBREAKER);
  cr_assert_eq(handled, 2);
  /* Other routes of the endpoint go on. */
  o = call_once(&h, "missing");
  cr_assert_eq(o.status, SVC_STATUS_NOT_FOUND);
  cr_assert_eq(handled, 3);
  /* The endpoint's gauge shows its most open breaker. */
  cr_assert_eq(metrics(&h).breaker_state, SVC_BREAKER_OPEN);
  cr_assert_eq(metrics(&h).calls_rejected, 1);
  harness_finish(&h);
}

Test(policy, the_most_specific_filter_decides) {
  static const struct {
    const char *uri;
    uint64_t timeout_ms;
  } pols[] = {
      {EP, 9000},            /* The endpoint: what nothing else matches. */
      {EP "/#", 7000},       /* Every path: beats the endpoint. */
      {EP "/a/+", 5000},     /* One literal level. */
      {EP "/a/b", 2000},     /* Exact. */
  };
  static const struct {
    const char *path;
    uint64_t max, min;
  } calls[] = {{"a/b", 2000, 1500}, {"a/c", 5000, 4500}, {"d", 7000, 6500}};
  struct harness h;
  svc_server_t *srv;
  size_t i;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, EP, NULL, &srv), 0);
  for (i = 0; i < 3; i++)
    svc_server_route(srv, NULL, calls[i].path, remaining_handler,
                     (void *)(intptr_t)i);
  /* Set in the reverse of their specificity: the order must not matter. */
  for (i = 4; i-- > 0;) {
    svc_policy_t p = {.timeout_ms = pols[i].timeout_ms};
    cr_assert_eq(svc_policy_set(h.ctx, pols[i].uri, &p), 0);
  }
  for (i = 0; i < 3; i++) {
    struct outcome o = call_once(&h, calls[i].path);
    cr_assert_eq(o.status, SVC_STATUS_OK);
    cr_assert(seen_remaining[i] <= calls[i].max &&
                  seen_remaining[i] >= calls[i].min,
              "%s: %llu ms left", calls[i].path,
              (unsigned long long)seen_remaining[i]);
  }
  harness_finish(&h);
}
