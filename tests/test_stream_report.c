/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* svc_stream_write_report(): a write ends ACKED only once the peer's
 * application has consumed it, DROPPED with a reason when the stream ends
 * first, and every dropped write is counted; on inproc:// and tcp://. */
#include "harness.h"

TestSuite(stream_report, .timeout = 30);

struct reports {
  int n;
  int acked;
  int dropped;
  svc_drop_reason_t reason;
  int err;
};

static void on_report(svc_stream_t *s, const svc_delivery_t *d, void *arg) {
  struct reports *r = arg;
  (void)s;
  r->n++;
  if (d->state == SVC_DELIVERY_ACKED)
    r->acked++;
  if (d->state == SVC_DELIVERY_DROPPED) {
    r->dropped++;
    r->reason = d->reason;
    r->err = d->err;
  }
}

/* The server side: accepts paused, so nothing is consumed until told. */
static svc_stream_t *accepted;
static int server_got;
static int server_closed;

static void srv_data(svc_stream_t *s, const svc_msg_t *m, void *arg) {
  (void)s;
  (void)m;
  (void)arg;
  server_got++;
}

static void srv_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}

static void srv_close(svc_stream_t *s, int status, void *arg) {
  (void)s;
  (void)status;
  (void)arg;
  server_closed = 1;
  accepted = NULL;
}

static void on_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {srv_data, srv_end, NULL, srv_close};
  (void)srv;
  (void)arg;
  cr_assert_eq(svc_stream_accept(s, NULL, &cbs, NULL), 0);
  svc_stream_pause(s);
  accepted = s;
}

static int client_closed;
static int client_status;

static void cli_close(svc_stream_t *s, int status, void *arg) {
  (void)s;
  (void)arg;
  client_closed = 1;
  client_status = status;
}

static void set_flag(void *arg) {
  *(int *)arg = 1;
}

static void wait_ms(struct harness *h, uint64_t ms) {
  int fired = 0;

  run_later(&h->loop, ms, set_flag, &fired);
  harness_run_until(h, &fired);
}

static svc_stream_t *open_stream(struct harness *h, const char *serve_uri,
                                 char *ep, size_t eplen) {
  svc_server_t *srv;
  svc_stream_cbs_t cbs = {NULL, NULL, NULL, cli_close};
  svc_stream_t *s;
  char uri[160];

  accepted = NULL;
  server_got = 0;
  server_closed = 0;
  client_closed = 0;
  client_status = -1;
  cr_assert_eq(svc_serve(h->ctx, serve_uri, NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "s", on_accept, NULL), 0);
  snprintf(ep, eplen, "%s", svc_server_endpoint(srv));
  snprintf(uri, sizeof(uri), "%s/s", ep);
  cr_assert_eq(svc_stream(h->ctx, uri, NULL, &cbs, NULL, &s), 0);
  return s;
}

/* Opens a stream, writes three reported messages and waits until the
 * server has accepted it (paused). */
static svc_stream_t *open_and_write3(struct harness *h, const char *serve_uri,
                                     char *ep, size_t eplen,
                                     struct reports *r) {
  svc_stream_t *s = open_stream(h, serve_uri, ep, eplen);
  int i;

  for (i = 0; i < 3; i++)
    cr_assert_eq(svc_stream_write_report(s, svc_msg_new_str("x"), on_report, r),
                 0);
  while (accepted == NULL)
    uv_run(&h->loop, UV_RUN_ONCE);
  return s;
}

static void acked_only_when_consumed(const char *serve_uri) {
  struct harness h;
  struct reports r = {0};
  svc_metrics_t m;
  svc_stream_t *s;
  char ep[128];

  harness_start(&h);
  s = open_and_write3(&h, serve_uri, ep, sizeof(ep), &r);
  /* Sent within the window, but the peer has read nothing yet. */
  wait_ms(&h, 100);
  cr_assert_eq(r.n, 0, "reported before the peer consumed anything");
  svc_stream_resume(accepted);
  while (r.n < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(r.acked, 3);
  cr_assert_eq(server_got, 3);
  /* A clean end acknowledges what was still in flight. */
  cr_assert_eq(svc_stream_write_report(s, svc_msg_new_str("y"), on_report, &r),
               0);
  cr_assert_eq(svc_stream_end(s), 0);
  harness_run_until(&h, &client_closed);
  cr_assert_eq(client_status, 0);
  cr_assert_eq(r.acked, 4);
  cr_assert_eq(svc_metrics_get(h.ctx, ep, SVC_ROLE_CLIENT, &m), 0);
  cr_assert_eq(m.writes_dropped, 0);
  harness_finish(&h);
}

static void dropped_when_the_peer_resets(const char *serve_uri) {
  struct harness h;
  struct reports r = {0};
  svc_metrics_t m;
  char ep[128];

  harness_start(&h);
  open_and_write3(&h, serve_uri, ep, sizeof(ep), &r);
  wait_ms(&h, 50);
  svc_stream_reset(accepted);
  harness_run_until(&h, &client_closed);
  while (r.n < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(r.dropped, 3, "%d acked, %d dropped", r.acked, r.dropped);
  cr_assert_eq(r.reason, SVC_DROP_DISCONNECT);
  cr_assert_eq(r.err, SVC_ECONNRESET);
  cr_assert_eq(svc_metrics_get(h.ctx, ep, SVC_ROLE_CLIENT, &m), 0);
  cr_assert_eq(m.writes_dropped, 3);
  harness_finish(&h);
}

Test(stream_report, inproc_acked_only_when_consumed) {
  acked_only_when_consumed("inproc://sr");
}

Test(stream_report, tcp_acked_only_when_consumed) {
  acked_only_when_consumed("tcp://127.0.0.1:0");
}

Test(stream_report, inproc_dropped_when_the_peer_resets) {
  dropped_when_the_peer_resets("inproc://sr");
}

Test(stream_report, tcp_dropped_when_the_peer_resets) {
  dropped_when_the_peer_resets("tcp://127.0.0.1:0");
}
