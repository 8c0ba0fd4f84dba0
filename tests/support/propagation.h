/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_PROPAGATION_H
#define SVC_TEST_PROPAGATION_H

/* What travels with a call on every backend: the W3C trace context (to the
 * handler and back on the reply) and the caller's remaining deadline,
 * reduced by the time already spent. The backend's test file serves an
 * endpoint and runs these checks against it. */

#include <stdio.h>

#include "harness.h"

/* Trace id 4bf92f3577b34da6a3ce929d0e0e4736, span 00f067aa0ba902b7. */
#define PROP_TRACEPARENT \
  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

struct prop_seen {
  int calls;
  int handled;
  svc_status_t status;
  int req_traced;          /* The request carried a traceparent. */
  svc_trace_t req_trace;   /* As the handler read it. */
  svc_trace_t handler_ctx; /* svc_ctx_trace() inside the handler. */
  int reply_traced;
  svc_trace_t reply_trace;
  int cb_ctx_traced; /* svc_ctx_trace() inside the call's callback. */
  svc_trace_t cb_ctx;
  uint64_t remaining[4]; /* svc_request_remaining_ms() per attempt. */
  int attempts_seen;
};

static struct prop_seen prop;
static svc_ctx_t *prop_ctx;

static void prop_trace_handler(svc_request_t *req, void *arg) {
  (void)arg;
  prop.handled++;
  prop.req_traced = svc_msg_trace(svc_request_msg(req), &prop.req_trace) == 0;
  cr_expect_eq(svc_ctx_trace(prop_ctx, &prop.handler_ctx), 0,
               "no current trace inside the handler");
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str("traced"));
}

/* Fails its first attempt as an unavailable server would; records the
 * time left that every attempt brought with it. */
static void prop_flaky_handler(svc_request_t *req, void *arg) {
  (void)arg;
  if (prop.attempts_seen < 4)
    prop.remaining[prop.attempts_seen] = svc_request_remaining_ms(req);
  prop.attempts_seen++;
  svc_request_reply(
      req, prop.attempts_seen == 1 ? SVC_STATUS_UNAVAILABLE : SVC_STATUS_OK,
      svc_msg_new_str("flaky"));
}

static void prop_call_cb(svc_call_t *call, svc_status_t status,
                         const svc_msg_t *reply, void *arg) {
  (void)call;
  (void)arg;
  prop.calls++;
  prop.status = status;
  prop.reply_traced =
      reply != NULL && svc_msg_trace(reply, &prop.reply_trace) == 0;
  prop.cb_ctx_traced = svc_ctx_trace(prop_ctx, &prop.cb_ctx) == 0;
}

static void prop_routes(svc_server_t *srv) {
  cr_assert_eq(svc_server_route(srv, NULL, "traced", prop_trace_handler, NULL),
               0);
  cr_assert_eq(svc_server_route(srv, NULL, "flaky", prop_flaky_handler, NULL),
               0);
}

static const char *prop_at(svc_server_t *srv, const char *path) {
  static char buf[2][320];
  static int i;
  char *b = buf[i++ % 2];

  snprintf(b, 320, "%s/%s", svc_server_endpoint(srv), path);
  return b;
}

/* A trace set on the request reaches the handler (same trace id, the
 * caller's span as parent), is current inside the handler with a span of
 * its own, comes back on the reply as the handler's span, and is current
 * again inside the call's callback. */
static void prop_check_trace(struct harness *h, svc_server_t *srv) {
  svc_trace_t set;
  svc_msg_t *req = svc_msg_new_str("hi");
  svc_call_opts_t o = {.timeout_ms = 5000};

  memset(&prop, 0, sizeof(prop));
  prop_ctx = h->ctx;
  cr_assert_eq(svc_trace_parse(PROP_TRACEPARENT, &set), 0);
  cr_assert_eq(svc_msg_set_trace(req, &set), 0);
  cr_assert_eq(svc_call(h->ctx, prop_at(srv, "traced"), req, &o, prop_call_cb,
                        NULL, NULL),
               0);
  harness_run_until(h, &prop.calls);
  cr_assert_eq(prop.status, SVC_STATUS_OK);
  cr_assert_eq(prop.handled, 1);
  cr_assert(prop.req_traced, "the request arrived without a traceparent");
  cr_assert_eq(memcmp(prop.req_trace.trace_id, set.trace_id, 16), 0,
               "the handler saw another trace id");
  cr_assert_neq(memcmp(prop.req_trace.span_id, set.span_id, 8), 0,
                "the call did not start a span of its own");
  cr_assert_eq(prop.req_trace.flags, 1);
  cr_assert_eq(memcmp(prop.handler_ctx.trace_id, set.trace_id, 16), 0);
  cr_assert_neq(memcmp(prop.handler_ctx.span_id, prop.req_trace.span_id, 8), 0,
                "the handler's span is the caller's");
  cr_assert(prop.reply_traced, "the reply came back without a traceparent");
  cr_assert_eq(memcmp(prop.reply_trace.trace_id, set.trace_id, 16), 0);
  cr_assert_eq(memcmp(prop.reply_trace.span_id, prop.handler_ctx.span_id, 8), 0,
               "the reply does not name the handler's span");
  cr_assert(prop.cb_ctx_traced);
  cr_assert_eq(memcmp(prop.cb_ctx.trace_id, set.trace_id, 16), 0);
}

/* Events: one published with a trace arrives in that trace (a new span),
 * one published with none arrives in a trace the publish started (the
 * default mode), and the subscriber's current trace is the event's. */
static struct {
  int ready;
  int n;
  int both;
  svc_trace_t got[2];
  int traced[2];
  int cur_ok[2];
} prop_ev;

static void prop_ev_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  (void)arg;
  prop_ev.ready = 1;
}

static void prop_ev_cb(svc_sub_t *sub, int status, const svc_msg_t *ev,
                       void *arg) {
  svc_trace_t cur;
  (void)sub;
  (void)status;
  (void)arg;
  if (ev == NULL || prop_ev.n >= 2)
    return;
  prop_ev.traced[prop_ev.n] = svc_msg_trace(ev, &prop_ev.got[prop_ev.n]) == 0;
  prop_ev.cur_ok[prop_ev.n] =
      svc_ctx_trace(prop_ctx, &cur) == 0 &&
      memcmp(cur.trace_id, prop_ev.got[prop_ev.n].trace_id, 16) == 0;
  prop_ev.both = ++prop_ev.n == 2;
}

/* base: the URI events go to, without a trailing '/'. */
static void prop_check_event_trace(struct harness *h, const char *base) {
  char uri[320];
  svc_sub_opts_t so = {.on_ready = prop_ev_ready};
  svc_pub_opts_t po = {.qos = 1};
  svc_trace_t set;
  svc_msg_t *ev = svc_msg_new_str("one");
  svc_sub_t *sub;

  memset(&prop_ev, 0, sizeof(prop_ev));
  prop_ctx = h->ctx;
  snprintf(uri, sizeof(uri), "%s/ev/#", base);
  cr_assert_eq(svc_subscribe(h->ctx, uri, &so, prop_ev_cb, NULL, &sub), 0);
  harness_run_until(h, &prop_ev.ready);
  cr_assert_eq(svc_trace_parse(PROP_TRACEPARENT, &set), 0);
  cr_assert_eq(svc_msg_set_trace(ev, &set), 0);
  snprintf(uri, sizeof(uri), "%s/ev/a", base);
  cr_assert_eq(svc_publish(h->ctx, uri, ev, &po, NULL, NULL), 0);
  snprintf(uri, sizeof(uri), "%s/ev/b", base);
  cr_assert_eq(
      svc_publish(h->ctx, uri, svc_msg_new_str("two"), &po, NULL, NULL), 0);
  harness_run_until(h, &prop_ev.both);
  cr_assert(prop_ev.traced[0] && prop_ev.traced[1],
            "an event arrived without a traceparent");
  cr_assert_eq(memcmp(prop_ev.got[0].trace_id, set.trace_id, 16), 0,
               "the event lost its trace");
  cr_assert_neq(memcmp(prop_ev.got[0].span_id, set.span_id, 8), 0,
                "the publish did not start a span of its own");
  cr_assert_neq(memcmp(prop_ev.got[1].trace_id, set.trace_id, 16), 0,
                "the second publish reused the first one's trace");
  cr_assert(prop_ev.cur_ok[0] && prop_ev.cur_ok[1],
            "the subscriber's current trace is not the event's");
  svc_unsubscribe(sub);
}

/* A call that waits 400 ms between its attempts arrives the second time
 * with that much less of its deadline left. */
static void prop_check_deadline(struct harness *h, svc_server_t *srv) {
  svc_call_opts_t o = {.timeout_ms = 3000, .idempotent = 1};

  memset(&prop, 0, sizeof(prop));
  prop_ctx = h->ctx;
  o.retry.max_attempts = 2;
  o.retry.initial_backoff_ms = 400;
  o.retry.jitter = -1; /* Exactly 400 ms. */
  cr_assert_eq(svc_call(h->ctx, prop_at(srv, "flaky"), NULL, &o, prop_call_cb,
                        NULL, NULL),
               0);
  harness_run_until(h, &prop.calls);
  cr_assert_eq(prop.status, SVC_STATUS_OK);
  cr_assert_eq(prop.attempts_seen, 2);
  cr_assert(prop.remaining[0] > 0 && prop.remaining[0] <= 3000,
            "first attempt: %llu ms left",
            (unsigned long long)prop.remaining[0]);
  cr_assert(prop.remaining[1] > 0 && prop.remaining[1] <= 2600,
            "second attempt: %llu ms left, not reduced by the 400 ms spent",
            (unsigned long long)prop.remaining[1]);
}

#endif /* SVC_TEST_PROPAGATION_H */
