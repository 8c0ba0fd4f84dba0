/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Fault injection on the client side of mqtt:// (the core's wrapper,
 * src/fault_wrap.c) against a real mosquitto started per test: the same
 * seed gives the same delivery sequence through the broker, lost and
 * duplicated publishes, and calls through served routes that are lost,
 * duplicated and disconnected. */
#include "mosquitto.h"

#include "fault_events.h"

static struct broker b;

static void setup(void) {
  cr_assert_eq(broker_start(&b), 0, "mosquitto did not start");
}

static void teardown(void) {
  broker_cleanup(&b);
}

TestSuite(fault_mqtt, .init = setup, .fini = teardown, .timeout = 30);

static const char *endpoint(void) {
  return broker_uri(&b, "");
}

/* ---- Events. */

static void subscribe_seq(struct harness *h, const char *topic, struct seq *q) {
  svc_sub_opts_t o = {.max_queue = 8 * NEVENTS, .on_ready = seq_ready};

  memset(q, 0, sizeof(*q));
  cr_assert_eq(
      svc_subscribe(h->ctx, broker_uri(&b, topic), &o, seq_cb, q, NULL), 0);
  RUN_UNTIL(h, q->ready);
}

/* NEVENTS numbered events through the broker with the fault options in
 * query ("" for none), all at once: one client, one topic, QoS 0, so the
 * broker keeps their order. */
static void run_sequence(const char *query, struct seq *q,
                         svc_fault_stats_t *st) {
  struct harness h;
  struct pubs p = {0};
  char uri[512];
  int i;

  harness_start(&h);
  subscribe_seq(&h, "fq/ev", q);
  snprintf(uri, sizeof(uri), "%s%s", broker_uri(&b, "fq/ev"), query);
  for (i = 0; i < NEVENTS; i++)
    cr_assert_eq(publish_n(h.ctx, uri, i, 0, &p), 0);
  RUN_UNTIL(&h, p.calls == NEVENTS);
  cr_assert_eq(p.ok, NEVENTS);
  memset(st, 0, sizeof(*st));
  if (query[0] != '\0')
    cr_assert_eq(svc_fault_stats(h.ctx, endpoint(), st), 0);
  RUN_UNTIL(&h, q->n == NEVENTS - (int)st->lost + (int)st->duplicated);
  cr_assert_eq(st->held, 0);
  harness_finish(&h);
  cr_assert_eq(q->n, NEVENTS - (int)st->lost + (int)st->duplicated);
}

Test(fault_mqtt, same_seed_gives_same_delivery_sequence) {
  static const char faults[] =
      "?fault-seed=42&fault-loss=0.1&fault-dup=0.05&fault-reorder=0.2";
  static struct seq a, c, none;
  svc_fault_stats_t sa, sc, sn;
  int i, in_order = 1;

  run_sequence(faults, &a, &sa);
  run_sequence(faults, &c, &sc);
  run_sequence("", &none, &sn);
  cr_assert_gt(sa.lost, 0);
  cr_assert_gt(sa.duplicated, 0);
  cr_assert_gt(sa.reordered, 0);
  cr_assert_eq(a.n, c.n);
  cr_assert_eq(memcmp(a.ids, c.ids, sizeof(int) * a.n), 0,
               "seed 42 gave two different sequences");
  cr_assert_eq(memcmp(&sa, &sc, sizeof(sa)), 0);
  cr_assert_eq(none.n, NEVENTS);
  for (i = 0; i < NEVENTS; i++)
    cr_assert_eq(none.ids[i], i);
  for (i = 1; i < a.n; i++)
    in_order &= a.ids[i] >= a.ids[i - 1];
  cr_assert(!in_order, "reordering left the events in order");
}

struct report {
  int calls;
  svc_delivery_state_t state;
};

static void report_cb(svc_ctx_t *ctx, const svc_delivery_t *d, void *arg) {
  struct report *r = arg;

  (void)ctx;
  r->calls++;
  r->state = d->state;
}

Test(fault_mqtt, lost_duplicated_and_disconnected_publishes) {
  struct harness h;
  static struct seq q;
  struct pubs p = {0};
  struct report r = {0};
  svc_pub_opts_t qos1 = {.qos = 1};
  svc_fault_stats_t st;
  svc_metrics_t m;
  char uri[512];

  harness_start(&h);
  subscribe_seq(&h, "fq/x", &q);
  snprintf(uri, sizeof(uri), "%s?fault-loss=1", broker_uri(&b, "fq/x"));
  cr_assert_eq(svc_publish_report(h.ctx, uri, svc_msg_new_str("1"), &qos1,
                                  report_cb, &r),
               0);
  RUN_UNTIL(&h, r.calls == 1);
  cr_assert_eq(r.state, SVC_DELIVERY_WRITTEN);
  cr_assert_eq(svc_metrics_get(h.ctx, endpoint(), SVC_ROLE_CLIENT, &m), 0);
  cr_assert_eq(m.dropped, 1);
  snprintf(uri, sizeof(uri), "%s?fault-disconnect=1", broker_uri(&b, "fq/x"));
  cr_assert_eq(publish_n(h.ctx, uri, 2, 0, &p), 0);
  RUN_UNTIL(&h, p.calls == 1);
  cr_assert_eq(p.reset, 1);
  snprintf(uri, sizeof(uri), "%s?fault-dup=1", broker_uri(&b, "fq/x"));
  cr_assert_eq(publish_n(h.ctx, uri, 3, 0, &p), 0);
  RUN_UNTIL(&h, p.calls == 2 && q.n == 2);
  cr_assert_eq(q.ids[0], 3);
  cr_assert_eq(q.ids[1], 3);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(), &st), 0);
  cr_assert_eq(st.duplicated, 1);
  /* Without a profile, the next one alone. */
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(), NULL), 0);
  cr_assert_eq(publish_n(h.ctx, broker_uri(&b, "fq/x"), 4, 0, &p), 0);
  RUN_UNTIL(&h, p.calls == 3 && q.n == 3);
  cr_assert_eq(q.ids[2], 4);
  harness_finish(&h);
  cr_assert_eq(q.n, 3);
}

/* ---- Calls through served routes. */

struct result {
  int calls;
  int ok;
  int reset;
  svc_status_t status;
};

static void result_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;

  (void)reply;
  r->calls++;
  r->ok += status == SVC_STATUS_OK;
  r->reset += status == SVC_STATUS_UNAVAILABLE &&
              svc_call_errno(call) == SVC_ECONNRESET;
  r->status = status;
}

static void count_handler(svc_request_t *req, void *arg) {
  (*(int *)arg)++;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str("ok"));
}

static svc_server_t *serve(struct harness *h, int *handled) {
  svc_server_t *srv;

  cr_assert_eq(svc_serve(h->ctx, broker_uri(&b, "fsvc"), NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "work", count_handler, handled), 0);
  return srv;
}

static const char *at(svc_server_t *srv, const char *path) {
  static char buf[4][512];
  static int i;
  char *s = buf[i++ % 4];

  snprintf(s, 512, "%s/%s", svc_server_endpoint(srv), path);
  return s;
}

Test(fault_mqtt, calls_are_lost_duplicated_and_disconnected) {
  struct harness h;
  struct result lost = {0}, dup = {0}, reset = {0};
  svc_call_opts_t o = {.timeout_ms = 3000};
  svc_call_opts_t short_deadline = {.timeout_ms = 200};
  svc_fault_stats_t st;
  svc_server_t *srv;
  int handled = 0;
  int i;

  harness_start(&h);
  srv = serve(&h, &handled);
  /* Lost: nobody answers, the deadline does. */
  cr_assert_eq(svc_call(h.ctx, at(srv, "work?fault-loss=1"), NULL,
                        &short_deadline, result_cb, &lost, NULL),
               0);
  RUN_UNTIL(&h, lost.calls == 1);
  cr_assert_eq(lost.status, SVC_STATUS_DEADLINE_EXCEEDED);
  cr_assert_eq(handled, 0);
  /* Duplicated: the handler runs twice, the caller hears once. */
  for (i = 0; i < 10; i++)
    cr_assert_eq(svc_call(h.ctx, at(srv, "work?fault-seed=3&fault-dup=0.5"),
                          NULL, &o, result_cb, &dup, NULL),
                 0);
  RUN_UNTIL(&h, dup.calls == 10);
  cr_assert_eq(dup.ok, 10);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(), &st), 0);
  cr_assert_gt(st.duplicated, 0);
  RUN_UNTIL(&h, handled == 10 + (int)st.duplicated);
  /* Disconnected, before or after the handler ran. */
  handled = 0;
  for (i = 0; i < 10; i++)
    cr_assert_eq(svc_call(h.ctx,
                          at(srv, "work?fault-seed=1&fault-disconnect=1"), NULL,
                          &o, result_cb, &reset, NULL),
                 0);
  RUN_UNTIL(&h, reset.calls == 10);
  cr_assert_eq(reset.reset, 10);
  cr_assert(handled > 0 && handled < 10, "%d handled", handled);
  cr_assert_eq(dup.calls, 10);
  harness_finish(&h);
}
