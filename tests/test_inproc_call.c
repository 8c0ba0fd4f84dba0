/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* svc_call() and svc_call_sync() over inproc://: replies, routing,
 * deadlines, cancellation, retries, overload, metrics and close. */
#include "harness.h"

TestSuite(inproc_call, .timeout = 20);

struct result {
  int calls;
  svc_status_t status;
  int err;
  unsigned attempts;
  char body[256];
  char header[64];
  int in_svc_call;
};

static int in_svc_call;

static void record_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;
  const char *h;

  r->calls++;
  r->status = status;
  r->err = svc_call_errno(call);
  r->attempts = svc_call_attempts(call);
  r->in_svc_call = in_svc_call;
  if (reply != NULL) {
    size_t len;
    const void *b = svc_msg_body(reply, &len);
    if (len >= sizeof(r->body))
      len = sizeof(r->body) - 1;
    memcpy(r->body, b, len);
    r->body[len] = '\0';
    h = svc_msg_header_get(reply, "x-echo");
    if (h != NULL)
      snprintf(r->header, sizeof(r->header), "%s", h);
  }
}

static int call_now(svc_ctx_t *ctx, const char *uri, const char *body,
                    const svc_call_opts_t *opts, struct result *r) {
  int rc;

  in_svc_call = 1;
  rc = svc_call(ctx, uri, body ? svc_msg_new_str(body) : NULL, opts,
                record_cb, r, NULL);
  in_svc_call = 0;
  return rc;
}

/* Echoes the body and the x-echo header back. */
static void echo_handler(svc_request_t *req, void *arg) {
  const svc_msg_t *m = svc_request_msg(req);
  size_t len;
  const void *b = svc_msg_body(m, &len);
  svc_msg_t *reply = svc_msg_new(b, len);
  const char *h = svc_msg_header_get(m, "x-echo");

  (void)arg;
  cr_assert_eq(in_svc_call, 0, "handler ran inside svc_call()");
  if (h != NULL)
    svc_msg_header_add(reply, "x-echo", h);
  svc_request_reply(req, SVC_STATUS_OK, reply);
}

static svc_server_t *serve_echo(svc_ctx_t *ctx, const char *uri) {
  svc_server_t *srv;
  cr_assert_eq(svc_serve(ctx, uri, NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "echo", echo_handler, NULL), 0);
  return srv;
}

Test(inproc_call, reply_arrives_once_and_never_inside_svc_call) {
  struct harness h;
  struct result r = {0};
  svc_msg_t *req;

  harness_start(&h);
  serve_echo(h.ctx, "inproc://svc");
  req = svc_msg_new_str("hello");
  svc_msg_header_add(req, "x-echo", "42");
  in_svc_call = 1;
  cr_assert_eq(svc_call(h.ctx, "inproc://svc/echo", req, NULL, record_cb, &r,
                        NULL), 0);
  in_svc_call = 0;
  cr_assert_eq(r.calls, 0);
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.in_svc_call, 0);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_eq(r.err, 0);
  cr_assert_str_eq(r.body, "hello");
  cr_assert_str_eq(r.header, "42");
  harness_finish(&h);
}

Test(inproc_call, no_server_is_unavailable_with_econnrefused) {
  struct harness h;
  struct result r = {0};

  harness_start(&h);
  cr_assert_eq(call_now(h.ctx, "inproc://nobody/x", "a", NULL, &r), 0);
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(r.err, SVC_ECONNREFUSED);
  harness_finish(&h);
}

Test(inproc_call, unknown_route_is_not_found_and_wrong_method_unimplemented) {
  struct harness h;
  struct result r1 = {0}, r2 = {0}, r3 = {0};
  svc_server_t *srv;
  svc_call_opts_t get = {.method = "GET"};
  svc_call_opts_t del = {.method = "DELETE"};

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, "GET", "items", echo_handler, NULL), 0);
  call_now(h.ctx, "inproc://svc/missing", NULL, &get, &r1);
  call_now(h.ctx, "inproc://svc/items", NULL, &del, &r2);
  call_now(h.ctx, "inproc://svc/items", "x", &get, &r3);
  harness_run(&h);
  cr_assert_eq(r1.status, SVC_STATUS_NOT_FOUND);
  cr_assert_eq(r1.err, SVC_ESTATUS);
  cr_assert_eq(r2.status, SVC_STATUS_UNIMPLEMENTED);
  cr_assert_eq(r3.status, SVC_STATUS_OK);
  cr_assert_str_eq(r3.body, "x");
  harness_finish(&h);
}

static void param_handler(svc_request_t *req, void *arg) {
  char buf[128];
  snprintf(buf, sizeof(buf), "%s:%s:%s", (const char *)arg,
           svc_request_param(req, "id") ? svc_request_param(req, "id") : "-",
           svc_request_method(req));
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str(buf));
}

/* Methods and paths of any valid length reach the handler whole: short
 * ones live inside the call and the request, longer ones do not. */
Test(inproc_call, long_methods_and_paths_arrive_whole) {
  struct harness h;
  struct result r1 = {0}, r2 = {0};
  svc_server_t *srv;
  svc_call_opts_t longm = {.method = "A-METHOD-OF-THIRTY-TWO-BYTES-XYZ"};
  char uri[256];
  char want[256];

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://long", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "/users/{id}", param_handler,
                                "p"), 0);
  call_now(h.ctx, "inproc://long/users/7", NULL, &longm, &r1);
  snprintf(uri, sizeof(uri), "inproc://long/users/%060d", 42);
  call_now(h.ctx, uri, NULL, &longm, &r2);
  harness_run(&h);
  cr_assert_eq(r1.status, SVC_STATUS_OK);
  cr_assert_str_eq(r1.body, "p:7:A-METHOD-OF-THIRTY-TWO-BYTES-XYZ");
  cr_assert_eq(r2.status, SVC_STATUS_OK);
  snprintf(want, sizeof(want), "p:%060d:%s", 42, longm.method);
  cr_assert_str_eq(r2.body, want);
  harness_finish(&h);
}

Test(inproc_call, path_parameters_and_literal_routes_win) {
  struct harness h;
  struct result r1 = {0}, r2 = {0}, r3 = {0};
  svc_server_t *srv;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://users", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "/users/{id}", param_handler,
                                "param"), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "users/me", param_handler,
                                "literal"), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "users/{other}", param_handler,
                                "dup"), SVC_EEXIST);
  call_now(h.ctx, "inproc://users/users/42", NULL, NULL, &r1);
  call_now(h.ctx, "inproc://users/users/me", NULL, NULL, &r2);
  /* Decoded once: "%2525" is "%25" to the handler, and "%2F" stays inside
   * its segment instead of splitting the path. */
  call_now(h.ctx, "inproc://users/users/a%2525%2Fb", NULL, NULL, &r3);
  harness_run(&h);
  cr_assert_str_eq(r1.body, "param:42:CALL");
  cr_assert_str_eq(r2.body, "literal:-:CALL");
  cr_assert_str_eq(r3.body, "param:a%25/b:CALL");
  harness_finish(&h);
}

/* ---- Deferred replies and deadlines. */

static svc_request_t *held[64];
static int nheld;

static void hold_handler(svc_request_t *req, void *arg) {
  (void)arg;
  held[nheld++] = req;
}

static void reply_held(void *arg) {
  int i;
  for (i = 0; i < nheld; i++)
    svc_request_reply(held[i], SVC_STATUS_OK, svc_msg_new_str((char *)arg));
  nheld = 0;
}

Test(inproc_call, handler_can_reply_later) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;

  harness_start(&h);
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  call_now(h.ctx, "inproc://svc/slow", NULL, NULL, &r);
  run_later(&h.loop, 30, reply_held, "late");
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.body, "late");
  harness_finish(&h);
}

static int late_reply_rc = 1;
static int late_cancelled = -1;
static uint64_t seen_remaining;

static void remaining_handler(svc_request_t *req, void *arg) {
  (void)arg;
  seen_remaining = svc_request_remaining_ms(req);
  held[nheld++] = req;
}

static void reply_after_deadline(void *arg) {
  (void)arg;
  cr_assert_eq(nheld, 1, "the handler never got the request");
  late_cancelled = svc_request_cancelled(held[0]);
  late_reply_rc = svc_request_reply(held[0], SVC_STATUS_OK, NULL);
  nheld = 0;
}

Test(inproc_call, deadline_exceeded_and_late_reply_dropped) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;
  svc_call_opts_t opts = {.timeout_ms = 200};

  harness_start(&h);
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", remaining_handler, NULL);
  call_now(h.ctx, "inproc://svc/slow", NULL, &opts, &r);
  run_later(&h.loop, 400, reply_after_deadline, NULL);
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  cr_assert_eq(r.err, SVC_ETIMEDOUT);
  cr_assert(seen_remaining > 0 && seen_remaining <= 200,
            "handler saw %llu ms left", (unsigned long long)seen_remaining);
  cr_assert_eq(late_cancelled, 1);
  cr_assert_eq(late_reply_rc, SVC_ECANCELED);
  harness_finish(&h);
}

Test(inproc_call, context_default_timeout_applies) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;
  svc_ctx_opts_t copts = {.default_timeout_ms = 40};

  harness_start_opts(&h, &copts);
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  call_now(h.ctx, "inproc://svc/slow", NULL, NULL, &r);
  harness_run(&h);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  reply_held("ignored");
  harness_finish(&h);
}

/* ---- Cancellation. */

Test(inproc_call, cancel_completes_once_with_cancelled) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;
  svc_call_t *call;

  harness_start(&h);
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  cr_assert_eq(svc_call(h.ctx, "inproc://svc/slow", NULL, NULL, record_cb,
                        &r, &call), 0);
  svc_call_cancel(call);
  svc_call_cancel(call);
  cr_assert_eq(r.calls, 0, "cancel ran the callback synchronously");
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_CANCELLED);
  cr_assert_eq(r.err, SVC_ECANCELED);
  /* The request never reached the handler: it was withdrawn first. */
  cr_assert_eq(nheld, 0);
  harness_finish(&h);
}

static void cancel_in_cb(svc_call_t *call, svc_status_t status,
                         const svc_msg_t *reply, void *arg) {
  svc_call_cancel(call); /* A no-op from inside its own callback. */
  record_cb(call, status, reply, arg);
}

Test(inproc_call, cancel_from_own_callback_is_noop) {
  struct harness h;
  struct result r = {0};

  harness_start(&h);
  serve_echo(h.ctx, "inproc://svc");
  cr_assert_eq(svc_call(h.ctx, "inproc://svc/echo", svc_msg_new_str("z"),
                        NULL, cancel_in_cb, &r, NULL), 0);
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  harness_finish(&h);
}

/* ---- Retries. */

static int flaky_failures;
static int flaky_seen;

static void flaky_handler(svc_request_t *req, void *arg) {
  svc_status_t fail = (svc_status_t)(intptr_t)arg;
  flaky_seen++;
  if (flaky_seen <= flaky_failures)
    svc_request_reply(req, fail, svc_msg_new_str("down"));
  else
    svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str("up"));
}

static void serve_flaky(svc_ctx_t *ctx, int failures, svc_status_t fail) {
  svc_server_t *srv;
  flaky_failures = failures;
  flaky_seen = 0;
  cr_assert_eq(svc_serve(ctx, "inproc://flaky", NULL, &srv), 0);
  svc_server_route(srv, NULL, "op", flaky_handler, (void *)(intptr_t)fail);
}

Test(inproc_call, idempotent_call_is_retried_until_success) {
  struct harness h;
  struct result r = {0};
  svc_call_opts_t opts = {.idempotent = 1,
                          .retry = {.max_attempts = 4,
                                    .initial_backoff_ms = 5}};
  svc_metrics_t m;

  harness_start(&h);
  serve_flaky(h.ctx, 2, SVC_STATUS_UNAVAILABLE);
  call_now(h.ctx, "inproc://flaky/op", NULL, &opts, &r);
  harness_run(&h);
  cr_assert_eq(r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.body, "up");
  cr_assert_eq(r.attempts, 3);
  cr_assert_eq(flaky_seen, 3);
  cr_assert_eq(svc_metrics_get(h.ctx, "inproc://flaky", SVC_ROLE_CLIENT, &m),
               0);
  cr_assert_eq(m.retries, 2);
  cr_assert_eq(m.calls, 1);
  harness_finish(&h);
}

Test(inproc_call, non_idempotent_call_is_never_retried) {
  struct harness h;
  struct result r = {0};
  svc_call_opts_t opts = {.retry = {.max_attempts = 4,
                                    .initial_backoff_ms = 5}};

  harness_start(&h);
  serve_flaky(h.ctx, 2, SVC_STATUS_UNAVAILABLE);
  call_now(h.ctx, "inproc://flaky/op", NULL, &opts, &r);
  harness_run(&h);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_str_eq(r.body, "down");
  cr_assert_eq(r.attempts, 1);
  cr_assert_eq(flaky_seen, 1);
  harness_finish(&h);
}

Test(inproc_call, status_outside_retry_on_is_not_retried) {
  struct harness h;
  struct result r = {0}, r2 = {0};
  svc_call_opts_t opts = {.idempotent = 1,
                          .retry = {.max_attempts = 4,
                                    .initial_backoff_ms = 5}};

  harness_start(&h);
  serve_flaky(h.ctx, 1, SVC_STATUS_NOT_FOUND);
  call_now(h.ctx, "inproc://flaky/op", NULL, &opts, &r);
  harness_run(&h);
  cr_assert_eq(r.status, SVC_STATUS_NOT_FOUND);
  cr_assert_eq(r.attempts, 1);
  /* The same failure is retried once the caller lists it. */
  flaky_seen = 0;
  opts.retry.retry_on = SVC_RETRY_ON(SVC_STATUS_NOT_FOUND);
  call_now(h.ctx, "inproc://flaky/op", NULL, &opts, &r2);
  harness_run(&h);
  cr_assert_eq(r2.status, SVC_STATUS_OK);
  cr_assert_eq(r2.attempts, 2);
  harness_finish(&h);
}

Test(inproc_call, no_retry_starts_past_the_deadline) {
  struct harness h;
  struct result r = {0};
  svc_call_opts_t opts = {.idempotent = 1,
                          .timeout_ms = 100,
                          .retry = {.max_attempts = 10,
                                    .initial_backoff_ms = 400,
                                    .jitter = -1}};

  harness_start(&h);
  serve_flaky(h.ctx, 5, SVC_STATUS_UNAVAILABLE);
  call_now(h.ctx, "inproc://flaky/op", NULL, &opts, &r);
  harness_run(&h);
  /* The backoff would end after the deadline: the caller gets the real
   * failure at once instead of waiting for DEADLINE_EXCEEDED. */
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(r.attempts, 1);
  harness_finish(&h);
}

Test(inproc_call, backoff_grows_exponentially) {
  struct harness h;
  struct result r = {0};
  svc_call_opts_t opts = {.idempotent = 1,
                          .retry = {.max_attempts = 4,
                                    .initial_backoff_ms = 20,
                                    .multiplier = 2.0,
                                    .jitter = -1}};
  uint64_t start;

  harness_start(&h);
  serve_flaky(h.ctx, 3, SVC_STATUS_UNAVAILABLE);
  uv_update_time(&h.loop);
  start = uv_now(&h.loop);
  call_now(h.ctx, "inproc://flaky/op", NULL, &opts, &r);
  harness_run(&h);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_eq(r.attempts, 4);
  /* 20 + 40 + 80 ms of backoff at the least. */
  cr_assert(uv_now(&h.loop) - start >= 140, "took %llu ms",
            (unsigned long long)(uv_now(&h.loop) - start));
  harness_finish(&h);
}

/* ---- Input errors leave the message with the caller. */

Test(inproc_call, bad_input_returns_error_and_caller_keeps_message) {
  struct harness h;
  struct result r = {0};
  svc_msg_t *m = svc_msg_new_str("mine");
  svc_call_opts_t bad_method = {.method = "GE T"};
  const char *bad_hdr[] = {"bad name", "v"};
  svc_call_opts_t bad_headers = {.headers = bad_hdr, .nheaders = 1};

  harness_start(&h);
  cr_assert_eq(svc_call(h.ctx, "not a uri", m, NULL, record_cb, &r, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_call(h.ctx, "gopher://x/y", m, NULL, record_cb, &r, NULL),
               SVC_ESCHEME);
  cr_assert_eq(svc_call(h.ctx, "inproc://x/y", m, NULL, NULL, &r, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_call(h.ctx, "inproc://x/y", m, &bad_method, record_cb, &r,
                        NULL), SVC_EINVAL);
  cr_assert_neq(svc_call(h.ctx, "inproc://x/y", m, &bad_headers, record_cb,
                         &r, NULL), 0);
  cr_assert_eq(svc_call(h.ctx, "inproc:///y", m, NULL, record_cb, &r, NULL),
               SVC_EINVAL);
  /* Still ours and unchanged. */
  cr_assert(body_is(m, "mine"));
  cr_assert_eq(svc_msg_header_count(m), 0);
  svc_msg_free(m);
  harness_run(&h);
  cr_assert_eq(r.calls, 0);
  harness_finish(&h);
}

Test(inproc_call, option_headers_reach_the_handler) {
  struct harness h;
  struct result r = {0};
  const char *hdrs[] = {"x-echo", "from-opts"};
  svc_call_opts_t opts = {.headers = hdrs, .nheaders = 1};

  harness_start(&h);
  serve_echo(h.ctx, "inproc://svc");
  call_now(h.ctx, "inproc://svc/echo", "b", &opts, &r);
  harness_run(&h);
  cr_assert_str_eq(r.header, "from-opts");
  harness_finish(&h);
}

/* ---- Overload. */

Test(inproc_call, requests_past_the_server_limit_are_resource_exhausted) {
  struct harness h;
  struct result r[5];
  svc_server_t *srv;
  svc_serve_opts_t sopts = {.max_pending_requests = 2};
  int i, ok = 0, exhausted = 0;

  harness_start(&h);
  memset(r, 0, sizeof(r));
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", &sopts, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  for (i = 0; i < 5; i++)
    call_now(h.ctx, "inproc://svc/slow", NULL, NULL, &r[i]);
  /* The loop stops once the handler holds two and three were refused. */
  harness_run(&h);
  cr_assert_eq(nheld, 2);
  reply_held("done");
  harness_run(&h);
  for (i = 0; i < 5; i++) {
    cr_assert_eq(r[i].calls, 1);
    ok += r[i].status == SVC_STATUS_OK;
    exhausted += r[i].status == SVC_STATUS_RESOURCE_EXHAUSTED;
  }
  cr_assert_eq(ok, 2);
  cr_assert_eq(exhausted, 3);
  harness_finish(&h);
}

/* ---- Blocking calls. */

static int sync_rc_in_cb = 1;

static void sync_inside_cb(svc_call_t *call, svc_status_t status,
                           const svc_msg_t *reply, void *arg) {
  svc_msg_t *out = NULL;
  (void)call;
  (void)status;
  (void)reply;
  sync_rc_in_cb = svc_call_sync(arg, "inproc://svc/echo", NULL, NULL, &out);
  cr_assert_null(out);
}

Test(inproc_call, call_sync_returns_reply_and_refuses_inside_loop) {
  struct harness h;
  svc_msg_t *reply = NULL;
  int rc;

  harness_start(&h);
  serve_echo(h.ctx, "inproc://svc");
  rc = svc_call_sync(h.ctx, "inproc://svc/echo", svc_msg_new_str("login"),
                     NULL, &reply);
  cr_assert_eq(rc, SVC_STATUS_OK);
  cr_assert(body_is(reply, "login"));
  svc_msg_free(reply);

  rc = svc_call_sync(h.ctx, "inproc://nobody/x", NULL, NULL, &reply);
  cr_assert_eq(rc, SVC_STATUS_UNAVAILABLE);

  cr_assert_eq(svc_call(h.ctx, "inproc://svc/echo", NULL, NULL,
                        sync_inside_cb, h.ctx, NULL), 0);
  harness_run(&h);
  cr_assert_eq(sync_rc_in_cb, SVC_EINLOOP);
  harness_finish(&h);
}

Test(inproc_call, call_sync_does_not_hang_when_nothing_can_reply) {
  struct harness h;
  svc_server_t *srv;
  int rc;

  harness_start(&h);
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  rc = svc_call_sync(h.ctx, "inproc://svc/slow", NULL, NULL, NULL);
  cr_assert_eq(rc, SVC_STATUS_CANCELLED);
  reply_held("x");
  harness_finish(&h);
}

Test(inproc_call, call_sync_honours_deadline) {
  struct harness h;
  svc_server_t *srv;
  svc_call_opts_t opts = {.timeout_ms = 30};
  int rc;

  harness_start(&h);
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  rc = svc_call_sync(h.ctx, "inproc://svc/slow", NULL, &opts, NULL);
  cr_assert_eq(rc, SVC_STATUS_DEADLINE_EXCEEDED);
  reply_held("x");
  harness_finish(&h);
}

/* ---- Metrics. */

Test(inproc_call, metrics_count_calls_statuses_bytes_and_latency) {
  struct harness h;
  struct result r[10];
  svc_metrics_t cm, sm;
  int i;

  harness_start(&h);
  memset(r, 0, sizeof(r));
  serve_echo(h.ctx, "inproc://svc");
  for (i = 0; i < 8; i++)
    call_now(h.ctx, "inproc://svc/echo", "12345", NULL, &r[i]);
  call_now(h.ctx, "inproc://svc/nope", NULL, NULL, &r[8]);
  harness_run(&h);
  cr_assert_eq(svc_metrics_get(h.ctx, "inproc://svc/anything",
                               SVC_ROLE_CLIENT, &cm), 0);
  cr_assert_str_eq(cm.endpoint, "inproc://svc");
  cr_assert_eq(cm.calls, 9);
  cr_assert_eq(cm.calls_by_status[SVC_STATUS_OK], 8);
  cr_assert_eq(cm.calls_by_status[SVC_STATUS_NOT_FOUND], 1);
  cr_assert_eq(cm.errors, 1);
  cr_assert_eq(cm.in_flight, 0);
  cr_assert_eq(cm.bytes_out, 40);
  cr_assert_eq(cm.latency_us.count, 9);
  cr_assert(svc_hist_percentile(&cm.latency_us, 0.5) > 0);
  cr_assert_eq(svc_metrics_get(h.ctx, "inproc://svc", SVC_ROLE_SERVER, &sm),
               0);
  cr_assert_eq(sm.calls, 9);
  cr_assert_eq(sm.calls_by_status[SVC_STATUS_OK], 8);
  cr_assert_eq(sm.in_flight, 0);
  cr_assert_eq(svc_metrics_get(h.ctx, "inproc://other", SVC_ROLE_CLIENT, &cm),
               SVC_ENOENT);
  harness_finish(&h);
}

/* ---- Close. */

Test(inproc_call, context_close_cancels_every_call_once) {
  struct harness h;
  struct result r[4];
  svc_server_t *srv;
  int i;

  harness_start(&h);
  memset(r, 0, sizeof(r));
  nheld = 0;
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), 0);
  svc_server_route(srv, NULL, "slow", hold_handler, NULL);
  for (i = 0; i < 4; i++)
    call_now(h.ctx, "inproc://svc/slow", NULL, NULL, &r[i]);
  /* Let the handler take them, then close with all four pending. */
  uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(nheld, 4);
  harness_finish(&h);
  for (i = 0; i < 4; i++) {
    cr_assert_eq(r[i].calls, 1);
    cr_assert_eq(r[i].status, SVC_STATUS_CANCELLED);
  }
  /* The held requests were released with the context. */
  nheld = 0;
}

Test(inproc_call, closed_server_refuses_new_calls) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv = serve_echo((harness_start(&h), h.ctx), "inproc://svc");

  svc_server_close(srv, NULL, NULL);
  call_now(h.ctx, "inproc://svc/echo", "x", NULL, &r);
  harness_run(&h);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  /* The endpoint can be served again. */
  serve_echo(h.ctx, "inproc://svc");
  memset(&r, 0, sizeof(r));
  call_now(h.ctx, "inproc://svc/echo", "again", NULL, &r);
  harness_run(&h);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.body, "again");
  harness_finish(&h);
}

Test(inproc_call, serving_twice_is_eexist_and_calls_after_close_fail) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;

  harness_start(&h);
  serve_echo(h.ctx, "inproc://svc");
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc", NULL, &srv), SVC_EEXIST);
  cr_assert_eq(svc_serve(h.ctx, "inproc://svc/path", NULL, &srv), SVC_EINVAL);
  svc_ctx_close(h.ctx, harness_close_cb, &h);
  cr_assert_eq(call_now(h.ctx, "inproc://svc/echo", NULL, NULL, &r),
               SVC_ECLOSING);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(h.close_cbs, 1);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0);
}

/* Calls to more URIs than a context keeps parsed, round after round: each
 * reaches its own path, from a kept parse or a new one. */
Test(inproc_call, many_uris_in_turn_reach_their_paths) {
  struct harness h;
  struct result r[3][6];
  svc_server_t *srv;
  char uri[64];
  char want[32];
  int round;
  int i;

  memset(r, 0, sizeof(r));
  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://turn", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "/users/{id}", param_handler,
                                "p"), 0);
  for (round = 0; round < 3; round++) {
    for (i = 0; i < 6; i++) {
      snprintf(uri, sizeof(uri), "inproc://turn/users/%d", i);
      cr_assert_eq(call_now(h.ctx, uri, NULL, NULL, &r[round][i]), 0);
    }
    harness_run(&h);
  }
  for (round = 0; round < 3; round++) {
    for (i = 0; i < 6; i++) {
      snprintf(want, sizeof(want), "p:%d:CALL", i);
      cr_assert_eq(r[round][i].status, SVC_STATUS_OK);
      cr_assert_str_eq(r[round][i].body, want);
    }
  }
  harness_finish(&h);
}
