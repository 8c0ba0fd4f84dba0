/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Connection state on inproc://, tcp:// and http:// (mqtt:// is in
 * test_mqtt_faults.c): the callback sees each change in order, on a later
 * loop turn, and svc_conn_state() and the metrics agree with it. */
#include "harness.h"

TestSuite(conn_state, .timeout = 30);

struct states {
  int n;
  svc_conn_state_t seen[16];
  int err[16];
  char endpoint[128];
};

static void on_state(svc_ctx_t *ctx, const char *endpoint,
                     svc_conn_state_t state, int err, void *arg) {
  struct states *st = arg;
  (void)ctx;
  if (st->n < 16) {
    st->seen[st->n] = state;
    st->err[st->n] = err;
  }
  st->n++;
  snprintf(st->endpoint, sizeof(st->endpoint), "%s", endpoint);
}

struct done {
  int n;
  svc_status_t status;
};

static void on_done(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  struct done *d = arg;
  (void)call;
  (void)reply;
  d->n++;
  d->status = status;
}

static void ok_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, NULL);
}

/* A call to base/ok; returns the states seen by the time it completed. */
static void call_ok(struct harness *h, const char *base, struct states *st,
                    struct done *d) {
  char uri[160];

  snprintf(uri, sizeof(uri), "%s/ok", base);
  svc_ctx_set_conn_cb(h->ctx, on_state, st);
  cr_assert_eq(svc_call(h->ctx, uri, NULL, NULL, on_done, d, NULL), 0);
  cr_assert_eq(st->n, 0, "the callback ran inside svc_call()");
  harness_run_until(h, &d->n);
  uv_run(&h->loop, UV_RUN_NOWAIT);
}

static svc_server_t *serve(struct harness *h, const char *uri) {
  svc_server_t *srv;

  cr_assert_eq(svc_serve(h->ctx, uri, NULL, &srv), 0);
  svc_server_route(srv, NULL, "ok", ok_handler, NULL);
  return srv;
}

Test(conn_state, inproc_is_connected_from_first_use) {
  struct harness h;
  struct states st = {0};
  struct done d = {0};
  svc_metrics_t m;

  harness_start(&h);
  cr_assert_eq(svc_conn_state(h.ctx, "inproc://cs"), SVC_ENOENT);
  serve(&h, "inproc://cs");
  call_ok(&h, "inproc://cs", &st, &d);
  cr_assert_eq(st.n, 1);
  cr_assert_eq(st.seen[0], SVC_CONN_CONNECTED);
  cr_assert_str_eq(st.endpoint, "inproc://cs");
  cr_assert_eq(svc_conn_state(h.ctx, "inproc://cs/anything"),
               SVC_CONN_CONNECTED);
  svc_metrics_get(h.ctx, "inproc://cs", SVC_ROLE_CLIENT, &m);
  cr_assert_eq(m.conn_state, SVC_CONN_CONNECTED);
  harness_finish(&h);
}

Test(conn_state, tcp_connects_and_backs_off_from_a_dead_peer) {
  struct harness h;
  struct states st = {0};
  struct done d = {0};
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0");
  call_ok(&h, svc_server_endpoint(srv), &st, &d);
  cr_assert_eq(d.status, SVC_STATUS_OK);
  cr_assert_eq(st.n, 2);
  cr_assert_eq(st.seen[0], SVC_CONN_CONNECTING);
  cr_assert_eq(st.seen[1], SVC_CONN_CONNECTED);
  cr_assert_eq(svc_conn_state(h.ctx, svc_server_endpoint(srv)),
               SVC_CONN_CONNECTED);

  memset(&st, 0, sizeof(st));
  memset(&d, 0, sizeof(d));
  call_ok(&h, "tcp://127.0.0.1:1", &st, &d);
  cr_assert_eq(d.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(st.n, 2);
  cr_assert_eq(st.seen[0], SVC_CONN_CONNECTING);
  cr_assert_eq(st.seen[1], SVC_CONN_BACKOFF);
  cr_assert_eq(st.err[1], SVC_ECONNREFUSED);
  cr_assert_str_eq(st.endpoint, "tcp://127.0.0.1:1");
  harness_finish(&h);
}

#ifdef SVC_TEST_HTTP
Test(conn_state, http_is_connected_after_an_answer_and_closed_when_refused) {
  struct harness h;
  struct states st = {0};
  struct done d = {0};
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h, "http://127.0.0.1:0");
  call_ok(&h, svc_server_endpoint(srv), &st, &d);
  cr_assert_eq(d.status, SVC_STATUS_OK);
  cr_assert_eq(st.n, 2);
  cr_assert_eq(st.seen[0], SVC_CONN_CONNECTING);
  cr_assert_eq(st.seen[1], SVC_CONN_CONNECTED);

  memset(&st, 0, sizeof(st));
  memset(&d, 0, sizeof(d));
  call_ok(&h, "http://127.0.0.1:1", &st, &d);
  cr_assert_eq(d.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(st.n, 2);
  cr_assert_eq(st.seen[1], SVC_CONN_CLOSED);
  cr_assert_eq(st.err[1], SVC_ECONNREFUSED);
  harness_finish(&h);
}
#endif

Test(conn_state, names) {
  cr_assert_str_eq(svc_conn_state_name(SVC_CONN_BACKOFF), "backing off");
  cr_assert_str_eq(svc_conn_state_name((svc_conn_state_t)9), "unknown");
}
