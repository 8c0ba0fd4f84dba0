/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* How publishes end (svc_publish_report()): queued by local subscribers
 * (with those whose full queue dropped it), written, acknowledged, or
 * dropped with a reason, and every drop counted in the metrics. */
#include "harness.h"

TestSuite(delivery, .timeout = 30);

struct report {
  int n;
  svc_delivery_t d;
  char topic[64];
};

static void report_cb(svc_ctx_t *ctx, const svc_delivery_t *d, void *arg) {
  struct report *r = arg;
  (void)ctx;
  r->n++;
  r->d = *d;
  snprintf(r->topic, sizeof(r->topic), "%s", d->topic ? d->topic : "");
}

static void ignore_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                         void *arg) {
  (void)sub;
  (void)status;
  (void)ev;
  (void)arg;
}

static struct report publish(struct harness *h, const char *uri, int qos) {
  struct report r = {0};
  svc_pub_opts_t o = {.qos = qos};

  cr_assert_eq(
      svc_publish_report(h->ctx, uri, svc_msg_new_str("x"), &o, report_cb, &r),
      0);
  cr_assert_eq(r.n, 0, "the report ran inside svc_publish_report()");
  harness_run_until(h, &r.n);
  cr_assert_eq(r.n, 1);
  return r;
}

Test(delivery, inproc_reports_who_queued_it_and_who_was_full) {
  struct harness h;
  svc_sub_opts_t small = {.max_queue = 1};
  struct report r;

  harness_start(&h);
  r = publish(&h, "inproc://d/t", 0);
  cr_assert_eq(r.d.state, SVC_DELIVERY_QUEUED);
  cr_assert_eq(r.d.receivers, 0, "nobody subscribed");
  cr_assert_str_eq(r.topic, "t");
  svc_subscribe(h.ctx, "inproc://d/#", NULL, ignore_event, NULL, NULL);
  svc_subscribe(h.ctx, "inproc://d/t", &small, ignore_event, NULL, NULL);
  /* Both queues take the first; the small one is full for the second,
   * published before any delivery ran. */
  svc_publish(h.ctx, "inproc://d/t", NULL, NULL, NULL, NULL);
  r = publish(&h, "inproc://d/t", 0);
  cr_assert_eq(r.d.state, SVC_DELIVERY_QUEUED);
  cr_assert_eq(r.d.receivers, 1);
  cr_assert_eq(r.d.refused, 1);
  cr_assert_eq(r.d.reason, SVC_DROP_NONE);
  harness_finish(&h);
}

Test(delivery, tcp_qos0_is_written_and_qos1_acknowledged) {
  struct harness h;
  svc_server_t *srv;
  char uri[128];

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1:0", NULL, &srv), 0);
  snprintf(uri, sizeof(uri), "%s/t", svc_server_endpoint(srv));
  cr_assert_eq(publish(&h, uri, 0).d.state, SVC_DELIVERY_WRITTEN);
  cr_assert_eq(publish(&h, uri, 1).d.state, SVC_DELIVERY_ACKED);
  harness_finish(&h);
}

#ifdef SVC_TEST_HTTP
Test(delivery, http_publish_is_acknowledged_by_the_answer) {
  struct harness h;
  svc_server_t *srv;
  char uri[128];

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0", NULL, &srv), 0);
  snprintf(uri, sizeof(uri), "%s/topics/t", svc_server_endpoint(srv));
  cr_assert_eq(publish(&h, uri, 0).d.state, SVC_DELIVERY_ACKED);
  harness_finish(&h);
}
#endif

Test(delivery, unreachable_peer_drops_with_disconnect_and_counts_it) {
  struct harness h;
  struct report r;
  svc_metrics_t m;
  int rc;

  harness_start(&h);
  r = publish(&h, "tcp://127.0.0.1:1/t", 1);
  cr_assert_eq(r.d.state, SVC_DELIVERY_DROPPED);
  cr_assert_eq(r.d.reason, SVC_DROP_DISCONNECT, "reason %s (%s)",
               svc_drop_reason_name(r.d.reason), svc_strerror(r.d.err));
  cr_assert_lt(r.d.err, 0);
  cr_assert_eq(svc_metrics_get(h.ctx, "tcp://127.0.0.1:1", SVC_ROLE_CLIENT, &m),
               0);
  cr_assert_eq(m.pubs_dropped[SVC_DROP_DISCONNECT], 1);
  cr_assert_eq(m.pubs_dropped[SVC_DROP_OVERFLOW], 0);
  {
    svc_msg_t *text = svc_metrics_prometheus(h.ctx);
    size_t len;
    const char *body = svc_msg_body(text, &len);
    cr_assert_not_null(
        strstr(body, "svccomm_publishes_dropped_total{endpoint=\"tcp://"
                     "127.0.0.1:1\",role=\"client\",reason=\"disconnect\"} 1"),
        "%.*s", (int)len, body);
    svc_msg_free(text);
  }
  /* While the client backs off, a publish is refused at once: not
   * accepted, so no callback and nothing dropped. */
  rc = svc_publish_report(h.ctx, "tcp://127.0.0.1:1/t", NULL, NULL, report_cb,
                          &r);
  cr_assert_lt(rc, 0);
  harness_finish(&h);
}

static void close_now(void *arg) {
  (void)arg;
}

Test(delivery, a_waiting_publish_dropped_by_close_says_closed) {
  struct harness h;
  svc_sub_opts_t small = {.max_queue = 1};
  svc_pub_opts_t q1 = {.qos = 1};
  struct report r = {0};

  harness_start(&h);
  svc_subscribe(h.ctx, "inproc://d/t", &small, ignore_event, NULL, NULL);
  svc_publish(h.ctx, "inproc://d/t", NULL, &q1, NULL, NULL);
  /* The queue is full: this one waits for room, and the close comes
   * first. */
  cr_assert_eq(
      svc_publish_report(h.ctx, "inproc://d/t", NULL, &q1, report_cb, &r), 0);
  run_later(&h.loop, 0, close_now, NULL);
  svc_ctx_close(h.ctx, NULL, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(r.n, 1);
  cr_assert_eq(r.d.state, SVC_DELIVERY_DROPPED);
  cr_assert_eq(r.d.reason, SVC_DROP_CLOSED);
  cr_assert_eq(r.d.err, SVC_ECANCELED);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0);
}

Test(delivery, reason_names) {
  cr_assert_str_eq(svc_drop_reason_name(SVC_DROP_OVERFLOW), "overflow");
  cr_assert_str_eq(svc_drop_reason_name(SVC_DROP_DISCONNECT), "disconnect");
  cr_assert_str_eq(svc_drop_reason_name(SVC_DROP_DEADLINE), "deadline");
  cr_assert_str_eq(svc_drop_reason_name(SVC_DROP_CLOSED), "closed");
  cr_assert_str_eq(svc_drop_reason_name(SVC_DROP_REFUSED), "refused");
  cr_assert_str_eq(svc_drop_reason_name((svc_drop_reason_t)42), "unknown");
}

/* ---- overflow=drop_oldest on a connection's waiting publishes. */

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listener that never accepts: the kernel completes the TCP handshake,
 * the protocol's HELLO never comes, and publishes wait for the
 * connection. Returns the fd; *port gets its port. */
static int silent_listener(int *port) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  cr_assert_geq(fd, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  cr_assert_eq(listen(fd, 4), 0);
  cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

Test(delivery, tcp_drop_oldest_reports_the_publishes_it_dropped) {
  struct harness h;
  svc_ctx_opts_t co = {.max_pending_publishes = 2};
  struct report r[4] = {{0}};
  struct report s[3] = {{0}}; /* Alive until the contexts have closed. */
  svc_pub_opts_t q1 = {.qos = 1};
  svc_ctx_t *ctx2;
  char uri[128];
  int port;
  int fd = silent_listener(&port);
  int i;

  harness_start_opts(&h, &co);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/t?overflow=drop_oldest", port);
  for (i = 0; i < 4; i++)
    cr_assert_eq(svc_publish_report(h.ctx, uri, NULL, &q1, report_cb, &r[i]), 0,
                 "publish %d refused", i);
  harness_run_until(&h, &r[1].n);
  cr_assert_eq(r[0].d.state, SVC_DELIVERY_DROPPED);
  cr_assert_eq(r[0].d.reason, SVC_DROP_OVERFLOW);
  cr_assert_eq(r[1].d.reason, SVC_DROP_OVERFLOW);
  cr_assert_eq(r[2].n + r[3].n, 0, "the newest were not kept");
  /* The default refuses the new one instead. */
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/t", port);
  cr_assert_eq(svc_ctx_init(&h.loop, &co, &ctx2), 0);
  cr_assert_eq(svc_publish_report(ctx2, uri, NULL, &q1, report_cb, &s[0]), 0);
  cr_assert_eq(svc_publish_report(ctx2, uri, NULL, &q1, report_cb, &s[1]), 0);
  cr_assert_eq(svc_publish_report(ctx2, uri, NULL, &q1, report_cb, &s[2]),
               SVC_EAGAIN);
  svc_ctx_close(ctx2, NULL, NULL);
  harness_finish(&h);
  close(fd);
}
