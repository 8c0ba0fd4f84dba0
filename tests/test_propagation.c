/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Trace context and deadlines across inproc://, tcp://, unix:// and
 * http:// (mqtt:// is in test_propagation_mqtt.c), the trace modes, the
 * continuation of a trace through handlers and subscribers, the
 * traceparent parser, and the logging hook. */
#include <unistd.h>

#include "propagation.h"

TestSuite(propagation, .timeout = 30);

static svc_server_t *serve_on(struct harness *h, const char *uri) {
  svc_server_t *srv;

  cr_assert_eq(svc_serve(h->ctx, uri, NULL, &srv), 0, "svc_serve(%s)", uri);
  prop_routes(srv);
  return srv;
}

static const char *unix_uri(void) {
  static char buf[128];

  snprintf(buf, sizeof(buf), "unix:///tmp/svc-prop-%d.sock", (int)getpid());
  unlink(buf + 7);
  return buf;
}

#define BACKEND_TESTS(name, uri_expr)                \
  Test(propagation, trace_##name) {                  \
    struct harness h;                                \
    harness_start(&h);                               \
    prop_check_trace(&h, serve_on(&h, uri_expr));    \
    harness_finish(&h);                              \
  }                                                  \
  Test(propagation, event_trace_##name) {            \
    struct harness h;                                \
    harness_start(&h);                               \
    prop_check_event_trace(&h, svc_server_endpoint(serve_on(&h, uri_expr))); \
    harness_finish(&h);                              \
  }                                                  \
  Test(propagation, deadline_##name) {               \
    struct harness h;                                \
    harness_start(&h);                               \
    prop_check_deadline(&h, serve_on(&h, uri_expr)); \
    harness_finish(&h);                              \
  }

BACKEND_TESTS(inproc, "inproc://prop")
BACKEND_TESTS(tcp, "tcp://127.0.0.1:0")
BACKEND_TESTS(unix, unix_uri())
#ifdef SVC_TEST_HTTP
BACKEND_TESTS(http, "http://127.0.0.1:0")
#endif

/* ---- The parser. */

Test(propagation, traceparent_parse_and_format) {
  static const char *const bad[] = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
  };
  svc_trace_t t;
  char out[SVC_TRACEPARENT_LEN + 1];
  char id[33];
  size_t i;

  cr_assert_eq(svc_trace_parse(PROP_TRACEPARENT, &t), 0);
  svc_trace_format(&t, out);
  cr_assert_str_eq(out, PROP_TRACEPARENT);
  svc_trace_id_hex(&t, id);
  cr_assert_str_eq(id, "4bf92f3577b34da6a3ce929d0e0e4736");
  cr_assert_eq(t.flags, 1);
  /* A later version may append fields; they are ignored. */
  cr_assert_eq(svc_trace_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-"
                               "00f067aa0ba902b7-00-future",
                               &t),
               0);
  cr_assert_eq(t.flags, 0);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(svc_trace_parse(bad[i], &t), SVC_EINVAL, "accepted \"%s\"",
                 bad[i]);
}

Test(propagation, msg_trace_absent_or_malformed) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_trace_t t;

  cr_assert_eq(svc_msg_trace(m, &t), SVC_ENOENT);
  svc_msg_header_add(m, "Traceparent", "nonsense");
  cr_assert_eq(svc_msg_trace(m, &t), SVC_EINVAL);
  cr_assert_eq(svc_trace_parse(PROP_TRACEPARENT, &t), 0);
  cr_assert_eq(svc_msg_set_trace(m, &t), 0);
  cr_assert_eq(svc_msg_header_count(m), 1, "the old header was not replaced");
  cr_assert_str_eq(svc_msg_header_get(m, "traceparent"), PROP_TRACEPARENT);
  svc_msg_free(m);
}

/* ---- Modes and continuation, on inproc://. */

struct flow {
  int calls;
  int events;
  int event_traced;
  svc_trace_t event_trace;
  int cur_ok;
  svc_trace_t cur_trace;
  int inner_traced;
  svc_trace_t inner_trace;
  svc_status_t status;
};

static struct flow flow;
static svc_ctx_t *flow_ctx;

static void flow_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                       void *arg) {
  (void)sub;
  (void)status;
  (void)arg;
  if (ev == NULL)
    return;
  flow.events++;
  flow.event_traced = svc_msg_trace(ev, &flow.event_trace) == 0;
  if (flow.event_traced) {
    svc_trace_t again;
    /* The subscriber's current trace: the event's, with a span id of its
     * own that stays the same while the callback runs. */
    flow.cur_ok = svc_ctx_trace(flow_ctx, &flow.cur_trace) == 0 &&
                  svc_ctx_trace(flow_ctx, &again) == 0 &&
                  memcmp(&again, &flow.cur_trace, sizeof(again)) == 0;
  }
}

static void flow_inner(svc_request_t *req, void *arg) {
  (void)arg;
  flow.inner_traced =
      svc_msg_trace(svc_request_msg(req), &flow.inner_trace) == 0;
  svc_request_reply(req, SVC_STATUS_OK, NULL);
}

static void flow_inner_done(svc_call_t *call, svc_status_t status,
                            const svc_msg_t *reply, void *arg) {
  (void)call;
  (void)reply;
  svc_request_reply(arg, status, svc_msg_new_str("outer"));
}

/* Calls inner and publishes an event, both without touching the trace:
 * they continue the request's by themselves. */
static void flow_outer(svc_request_t *req, void *arg) {
  (void)arg;
  cr_assert_eq(
      svc_publish(flow_ctx, "inproc://flow/audit", NULL, NULL, NULL, NULL), 0);
  cr_assert_eq(svc_call(flow_ctx, "inproc://flow/inner", NULL, NULL,
                        flow_inner_done, req, NULL),
               0);
}

static void flow_done(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  (void)call;
  (void)reply;
  (void)arg;
  flow.calls++;
  flow.status = status;
}

static void flow_setup(struct harness *h, int mode) {
  svc_ctx_opts_t o = {.trace = mode};
  svc_server_t *srv;

  memset(&flow, 0, sizeof(flow));
  harness_start_opts(h, &o);
  flow_ctx = h->ctx;
  cr_assert_eq(svc_serve(h->ctx, "inproc://flow", NULL, &srv), 0);
  svc_server_route(srv, NULL, "outer", flow_outer, NULL);
  svc_server_route(srv, NULL, "inner", flow_inner, NULL);
  cr_assert_eq(
      svc_subscribe(h->ctx, "inproc://flow/#", NULL, flow_event, NULL, NULL),
      0);
}

Test(propagation, handler_continues_the_trace_in_calls_and_events) {
  struct harness h;
  svc_msg_t *req = svc_msg_new(NULL, 0);
  svc_trace_t set;

  flow_setup(&h, SVC_TRACE_CONTINUE);
  svc_trace_parse(PROP_TRACEPARENT, &set);
  svc_msg_set_trace(req, &set);
  cr_assert_eq(
      svc_call(h.ctx, "inproc://flow/outer", req, NULL, flow_done, NULL, NULL),
      0);
  while (!flow.calls || !flow.events)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(flow.status, SVC_STATUS_OK);
  cr_assert(flow.inner_traced && flow.event_traced);
  cr_assert_eq(memcmp(flow.inner_trace.trace_id, set.trace_id, 16), 0,
               "the nested call started a trace of its own");
  cr_assert_eq(memcmp(flow.event_trace.trace_id, set.trace_id, 16), 0,
               "the event published by the handler lost the trace");
  cr_assert_neq(memcmp(flow.inner_trace.span_id, flow.event_trace.span_id, 8),
                0);
  cr_assert(flow.cur_ok, "the subscriber's current trace was unstable");
  cr_assert_eq(memcmp(flow.cur_trace.trace_id, set.trace_id, 16), 0);
  cr_assert_neq(memcmp(flow.cur_trace.span_id, flow.event_trace.span_id, 8), 0,
                "the subscriber has no span of its own");
  harness_finish(&h);
}

/* ---- A subscriber that publishes: the event's trace goes on. */

static struct relay {
  int ready;
  int relayed;
  int out;
  int cur_rc;        /* svc_ctx_trace() inside the relaying subscriber */
  int out_traced;
  svc_trace_t out_trace;
  char out_uri[320];
} relay;

static void relay_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  (void)arg;
  relay.ready++;
}

/* Republishes without touching the trace, and only then asks for the
 * current one: the publish must not depend on the trace having been read
 * (a subscriber's trace stays in its message until asked for). */
static void relay_in(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  svc_trace_t cur;

  (void)sub;
  (void)status;
  (void)arg;
  if (ev == NULL)
    return;
  cr_assert_eq(svc_publish(flow_ctx, relay.out_uri, svc_msg_new_str("out"),
                           NULL, NULL, NULL),
               0);
  relay.cur_rc = svc_ctx_trace(flow_ctx, &cur);
  relay.relayed++;
}

static void relay_out(svc_sub_t *sub, int status, const svc_msg_t *ev,
                      void *arg) {
  (void)sub;
  (void)status;
  (void)arg;
  if (ev == NULL)
    return;
  relay.out_traced = svc_msg_trace(ev, &relay.out_trace) == 0;
  relay.out++;
}

/* Subscribes base/in (republishing to base/out) and base/out, publishes
 * ev to base/in and waits for the relayed event. */
static void relay_run(struct harness *h, const char *base, svc_msg_t *ev) {
  char uri[320];
  svc_sub_opts_t so = {.on_ready = relay_ready};

  memset(&relay, 0, sizeof(relay));
  flow_ctx = h->ctx;
  snprintf(relay.out_uri, sizeof(relay.out_uri), "%s/out", base);
  snprintf(uri, sizeof(uri), "%s/in", base);
  cr_assert_eq(svc_subscribe(h->ctx, uri, &so, relay_in, NULL, NULL), 0);
  cr_assert_eq(
      svc_subscribe(h->ctx, relay.out_uri, &so, relay_out, NULL, NULL), 0);
  while (relay.ready < 2)
    uv_run(&h->loop, UV_RUN_ONCE);
  cr_assert_eq(svc_publish(h->ctx, uri, ev, NULL, NULL, NULL), 0);
  harness_run_until(h, &relay.out);
}

Test(propagation, a_subscriber_continues_the_event_trace_in_what_it_publishes) {
  static const char *const uris[] = {"inproc://relay", "tcp://127.0.0.1:0"};
  size_t i;

  for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
    struct harness h;
    svc_ctx_opts_t o = {.trace = SVC_TRACE_CONTINUE};
    svc_server_t *srv;
    svc_msg_t *ev = svc_msg_new_str("in");
    svc_trace_t set;

    harness_start_opts(&h, &o);
    cr_assert_eq(svc_serve(h.ctx, uris[i], NULL, &srv), 0);
    cr_assert_eq(svc_trace_parse(PROP_TRACEPARENT, &set), 0);
    cr_assert_eq(svc_msg_set_trace(ev, &set), 0);
    relay_run(&h, svc_server_endpoint(srv), ev);
    cr_assert(relay.out_traced, "%s: the relayed event has no trace",
              uris[i]);
    cr_assert_eq(memcmp(relay.out_trace.trace_id, set.trace_id, 16), 0,
                 "%s: the relayed event started a trace of its own", uris[i]);
    cr_assert_neq(memcmp(relay.out_trace.span_id, set.span_id, 8), 0,
                  "%s: the relay has no span of its own", uris[i]);
    cr_assert_eq(relay.cur_rc, 0, "%s", uris[i]);
    harness_finish(&h);
  }
}

/* An event whose traceparent is malformed gives its subscriber no current
 * trace, and in SVC_TRACE_CONTINUE what it publishes carries none. */
Test(propagation, a_malformed_event_trace_is_no_current_trace) {
  struct harness h;
  svc_ctx_opts_t o = {.trace = SVC_TRACE_CONTINUE};
  svc_server_t *srv;
  svc_msg_t *ev = svc_msg_new_str("in");

  harness_start_opts(&h, &o);
  cr_assert_eq(svc_serve(h.ctx, "inproc://relay", NULL, &srv), 0);
  cr_assert_eq(svc_msg_header_add(ev, "traceparent", "00-nonsense-01"), 0);
  relay_run(&h, svc_server_endpoint(srv), ev);
  cr_assert_eq(relay.cur_rc, SVC_ENOENT, "%s", svc_strerror(relay.cur_rc));
  cr_assert(!relay.out_traced, "a trace came from nowhere");
  harness_finish(&h);
}

Test(propagation, modes_decide_which_verbs_start_a_trace) {
  struct harness h;
  int mode;

  for (mode = SVC_TRACE_ALL; mode <= SVC_TRACE_OFF; mode++) {
    flow_setup(&h, mode);
    cr_assert_eq(svc_call(h.ctx, "inproc://flow/inner", NULL, NULL, flow_done,
                          NULL, NULL),
                 0);
    cr_assert_eq(
        svc_publish(h.ctx, "inproc://flow/plain", NULL, NULL, NULL, NULL), 0);
    while (!flow.calls || !flow.events)
      uv_run(&h.loop, UV_RUN_ONCE);
    cr_assert_eq(flow.inner_traced,
                 mode == SVC_TRACE_CALLS || mode == SVC_TRACE_ALL, "mode %d",
                 mode);
    cr_assert_eq(flow.event_traced, mode == SVC_TRACE_ALL, "mode %d", mode);
    harness_finish(&h);
  }
}

Test(propagation, mode_off_leaves_the_traceparent_alone) {
  struct harness h;
  svc_msg_t *req = svc_msg_new(NULL, 0);
  svc_trace_t set;

  flow_setup(&h, SVC_TRACE_OFF);
  svc_trace_parse(PROP_TRACEPARENT, &set);
  svc_msg_set_trace(req, &set);
  cr_assert_eq(
      svc_call(h.ctx, "inproc://flow/inner", req, NULL, flow_done, NULL, NULL),
      0);
  harness_run_until(&h, &flow.calls);
  cr_assert(flow.inner_traced);
  cr_assert_eq(memcmp(&flow.inner_trace, &set, sizeof(set)), 0,
               "the span changed with tracing off");
  harness_finish(&h);
}

Test(propagation, bad_trace_mode_is_refused) {
  svc_ctx_opts_t o = {.trace = 7};
  svc_ctx_t *ctx;

  cr_assert_eq(svc_ctx_init(NULL, &o, &ctx), SVC_EINVAL);
}

/* ---- The logging hook. */

struct logged {
  int n;
  int warn_calls;
  int debug_calls;
  int serves;
  char endpoint[64];
  char target[64];
  char trace_id[33];
  svc_status_t status;
  uint64_t latency_us;
};

static void log_hook(const svc_log_record_t *rec, void *arg) {
  struct logged *l = arg;

  l->n++;
  if (strcmp(rec->verb, "serve") == 0)
    l->serves++;
  if (strcmp(rec->verb, "call") != 0)
    return;
  if (rec->level == SVC_LOG_DEBUG) {
    l->debug_calls++;
    return;
  }
  cr_assert_eq(rec->level, SVC_LOG_WARN);
  l->warn_calls++;
  snprintf(l->endpoint, sizeof(l->endpoint), "%s", rec->endpoint);
  snprintf(l->target, sizeof(l->target), "%s", rec->target);
  snprintf(l->trace_id, sizeof(l->trace_id), "%s",
           rec->trace_id != NULL ? rec->trace_id : "");
  l->status = rec->status;
  l->latency_us = rec->latency_us;
  cr_assert(strstr(rec->message, "NOT_FOUND") != NULL, "message: %s",
            rec->message);
}

Test(propagation, log_hook_gets_structured_records_at_its_level) {
  struct harness h;
  struct logged l = {0};
  svc_msg_t *req = svc_msg_new(NULL, 0);
  svc_trace_t set;

  flow_setup(&h, SVC_TRACE_CONTINUE);
  svc_ctx_set_log(h.ctx, SVC_LOG_WARN, log_hook, &l);
  svc_trace_parse(PROP_TRACEPARENT, &set);
  svc_msg_set_trace(req, &set);
  svc_call(h.ctx, "inproc://flow/missing", req, NULL, flow_done, NULL, NULL);
  svc_call(h.ctx, "inproc://flow/inner", NULL, NULL, flow_done, NULL, NULL);
  while (flow.calls < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(l.warn_calls, 1);
  cr_assert_eq(l.debug_calls, 0, "a debug record passed a warn filter");
  cr_assert_str_eq(l.endpoint, "inproc://flow");
  cr_assert_str_eq(l.target, "missing");
  cr_assert_str_eq(l.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  cr_assert_eq(l.status, SVC_STATUS_NOT_FOUND);
  cr_assert_eq(l.serves, 1, "the server's NOT_FOUND answer was not logged");

  /* At debug, successes are reported too. */
  memset(&l, 0, sizeof(l));
  svc_ctx_set_log(h.ctx, SVC_LOG_DEBUG, log_hook, &l);
  svc_call(h.ctx, "inproc://flow/inner", NULL, NULL, flow_done, NULL, NULL);
  while (flow.calls < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(l.debug_calls, 1);
  cr_assert_eq(l.serves, 1);

  /* Off. */
  memset(&l, 0, sizeof(l));
  svc_ctx_set_log(h.ctx, SVC_LOG_DEBUG, NULL, NULL);
  svc_call(h.ctx, "inproc://flow/missing", NULL, NULL, flow_done, NULL, NULL);
  while (flow.calls < 4)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(l.n, 0);
  cr_assert_str_eq(svc_log_level_name(SVC_LOG_WARN), "warn");
  harness_finish(&h);
}

/* ---- The default: every call, stream and publish starts a trace. */

static struct {
  int calls, streams, events;
  int call_traced, stream_traced, event_traced;
} dflt;

static void dflt_handler(svc_request_t *req, void *arg) {
  svc_trace_t t;
  (void)arg;
  dflt.call_traced = svc_msg_trace(svc_request_msg(req), &t) == 0;
  svc_request_reply(req, SVC_STATUS_OK, NULL);
}

static void dflt_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_trace_t t;
  const char *tp = svc_stream_header(s, "traceparent");
  (void)srv;
  (void)arg;
  dflt.stream_traced = tp != NULL && svc_trace_parse(tp, &t) == 0;
  dflt.streams = 1;
  svc_stream_reset(s);
}

static void dflt_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                       void *arg) {
  svc_trace_t t;
  (void)sub;
  (void)status;
  (void)arg;
  if (ev == NULL)
    return;
  dflt.event_traced = svc_msg_trace(ev, &t) == 0;
  dflt.events = 1;
}

static void dflt_done(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  (void)call;
  (void)status;
  (void)reply;
  (void)arg;
  dflt.calls = 1;
}

static void dflt_closed(svc_stream_t *s, int status, void *arg) {
  (void)s;
  (void)status;
  (void)arg;
}

Test(propagation, the_default_starts_a_trace_for_calls_streams_and_events) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_cbs_t cbs = {.on_close = dflt_closed};
  svc_pub_opts_t po = {.qos = 1};
  svc_stream_t *st;
  char uri[320];

  memset(&dflt, 0, sizeof(dflt));
  harness_start(&h); /* Default options. */
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1:0", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "c", dflt_handler, NULL), 0);
  cr_assert_eq(svc_server_stream_route(srv, "s", dflt_accept, NULL), 0);
  snprintf(uri, sizeof(uri), "%s/e", svc_server_endpoint(srv));
  cr_assert_eq(svc_subscribe(h.ctx, uri, NULL, dflt_event, NULL, NULL), 0);
  cr_assert_eq(svc_publish(h.ctx, uri, NULL, &po, NULL, NULL), 0);
  snprintf(uri, sizeof(uri), "%s/c", svc_server_endpoint(srv));
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, dflt_done, NULL, NULL), 0);
  snprintf(uri, sizeof(uri), "%s/s", svc_server_endpoint(srv));
  cr_assert_eq(svc_stream(h.ctx, uri, NULL, &cbs, NULL, &st), 0);
  harness_run_until(&h, &dflt.calls);
  harness_run_until(&h, &dflt.streams);
  harness_run_until(&h, &dflt.events);
  cr_assert(dflt.call_traced, "the call started no trace");
  cr_assert(dflt.stream_traced, "the stream started no trace");
  cr_assert(dflt.event_traced, "the publish started no trace");
  harness_finish(&h);
}

#ifdef SVC_TEST_HTTP
/* A GET with no header and no body: the trace goes out without a header
 * list of its own (http_client.c), and still arrives. */
Test(propagation, the_default_starts_a_trace_for_a_bare_http_get) {
  struct harness h;
  svc_server_t *srv;
  svc_call_opts_t o = {.method = "GET"};
  char uri[320];

  memset(&dflt, 0, sizeof(dflt));
  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, "GET", "c", dflt_handler, NULL), 0);
  snprintf(uri, sizeof(uri), "%s/c", svc_server_endpoint(srv));
  cr_assert_eq(svc_call(h.ctx, uri, NULL, &o, dflt_done, NULL, NULL), 0);
  harness_run_until(&h, &dflt.calls);
  cr_assert(dflt.call_traced, "the GET arrived without a traceparent");
  harness_finish(&h);
}
#endif
