/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Fault injection on the client side of the network backends (the core's
 * wrapper, src/fault_wrap.c), against real tcp://, unix:// and http://
 * servers over loopback: the same seed gives the same faults; loss,
 * duplication, reordering, delay and disconnects do what docs/faults.md
 * says and are counted; fault-* options never reach the backend; a close
 * with held work is clean. Client and server share one context and loop,
 * talking through the kernel. */
#include <stdio.h>
#include <unistd.h>

#include "fault_events.h"

TestSuite(fault_net, .timeout = 30);

/* ---- Servers: tcp and http on an ephemeral port, unix on a file. */

struct server {
  svc_server_t *srv;
  uv_loop_t *loop;
  int handled;         /* Requests the work route ran. */
  uint64_t handled_ms; /* Loop time of the first. */
  int accepted;        /* Streams accepted. */
  uint64_t accepted_ms;
  svc_request_t *parked[8]; /* Requests the park route holds. */
  int nparked;
};

static void work_handler(svc_request_t *req, void *arg) {
  struct server *s = arg;
  size_t len;
  const void *b = svc_msg_body(svc_request_msg(req), &len);

  if (s->handled++ == 0)
    s->handled_ms = uv_now(s->loop);
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new(b, len));
}

/* Holds the request unanswered (park_release() answers). */
static void park_handler(svc_request_t *req, void *arg) {
  struct server *s = arg;

  cr_assert_lt(s->nparked, 8);
  s->parked[s->nparked++] = req;
}

/* Answers the parked requests (which the caller may have cancelled). */
static void park_release(struct server *s) {
  int i;

  for (i = 0; i < s->nparked; i++)
    svc_request_reply(s->parked[i], SVC_STATUS_OK, NULL);
  s->nparked = 0;
}

/* Answers with the request's path as the server got it. */
static void path_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str(svc_request_path(req)));
}

static void srv_on_end(svc_stream_t *st, void *arg) {
  (void)arg;
  svc_stream_end(st);
}

static void accept_cb(svc_server_t *srv, svc_stream_t *st, void *arg) {
  struct server *s = arg;
  svc_stream_cbs_t cbs = {.on_end = srv_on_end};

  (void)srv;
  if (s->accepted++ == 0)
    s->accepted_ms = uv_now(s->loop);
  cr_assert_eq(svc_stream_accept(st, NULL, &cbs, NULL), 0);
}

static void serve(struct harness *h, const char *scheme, struct server *s) {
  static char path[128];
  const char *uri = "tcp://127.0.0.1:0";

  memset(s, 0, sizeof(*s));
  s->loop = &h->loop;
  if (strcmp(scheme, "http") == 0) {
    uri = "http://127.0.0.1:0";
  } else if (strcmp(scheme, "unix") == 0) {
    snprintf(path, sizeof(path), "unix:///tmp/svc-fault-net-%d.sock",
             (int)getpid());
    unlink(path + 7);
    uri = path;
  }
  cr_assert_eq(svc_serve(h->ctx, uri, NULL, &s->srv), 0);
  cr_assert_eq(svc_server_route(s->srv, NULL, "work", work_handler, s), 0);
  cr_assert_eq(svc_server_route(s->srv, NULL, "path", path_handler, s), 0);
  cr_assert_eq(svc_server_route(s->srv, NULL, "park", park_handler, s), 0);
  cr_assert_eq(svc_server_stream_route(s->srv, "pipe", accept_cb, s), 0);
}

/* URI of path on the endpoint s serves. */
static const char *at(const struct server *s, const char *path) {
  static char buf[4][512];
  static int i;
  char *b = buf[i++ % 4];

  snprintf(b, 512, "%s/%s", svc_server_endpoint(s->srv), path);
  return b;
}

static const char *endpoint(const struct server *s) {
  return svc_server_endpoint(s->srv);
}

/* ---- Events. */

/* Subscribes q to topic "ev" of s and waits until the server has it. */
static void subscribe_seq(struct harness *h, const struct server *s,
                          struct seq *q) {
  svc_sub_opts_t o = {.max_queue = 8 * NEVENTS, .on_ready = seq_ready};

  memset(q, 0, sizeof(*q));
  q->loop = &h->loop;
  cr_assert_eq(svc_subscribe(h->ctx, at(s, "ev"), &o, seq_cb, q, NULL), 0);
  RUN_UNTIL(h, q->ready);
}

/* How many events the subscriber gets for n publishes through faults. */
static int expected_events(svc_ctx_t *ctx, const struct server *s, int n) {
  svc_fault_stats_t st;

  if (svc_fault_stats(ctx, endpoint(s), &st) != 0)
    return n;
  return n - (int)st.lost + (int)st.duplicated;
}

/* Publishes NEVENTS numbered events to a fresh server of scheme through
 * the fault options in query ("" for none) and records the ids the
 * subscriber receives. All at once when the backend keeps the order of
 * publishes (one connection); else one at a time, each once delivered:
 * http:// publishes travel on parallel connections, which could reorder
 * them by themselves. */
static void run_sequence(const char *scheme, const char *query,
                         int one_at_a_time, struct seq *q,
                         svc_fault_stats_t *st) {
  struct harness h;
  struct server s;
  struct pubs p = {0};
  char uri[512];
  int i;

  harness_start(&h);
  serve(&h, scheme, &s);
  subscribe_seq(&h, &s, q);
  snprintf(uri, sizeof(uri), "%s%s", at(&s, "ev"), query);
  for (i = 0; i < NEVENTS; i++) {
    cr_assert_eq(publish_n(h.ctx, uri, i, 0, &p), 0);
    if (one_at_a_time) {
      RUN_UNTIL(&h, p.calls == i + 1);
      RUN_UNTIL(&h, q->n >= expected_events(h.ctx, &s, i + 1));
    }
  }
  RUN_UNTIL(&h, p.calls == NEVENTS);
  RUN_UNTIL(&h, q->n >= expected_events(h.ctx, &s, NEVENTS));
  cr_assert_eq(p.ok, NEVENTS, "a loss looks like success to the sender");
  cr_assert_eq(p.inside, 0);
  memset(st, 0, sizeof(*st));
  if (query[0] != '\0') {
    cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), st), 0);
    cr_assert_eq(st->held, 0);
    cr_assert_eq(st->ops, NEVENTS);
  } else {
    cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), st), SVC_ENOENT);
  }
  cr_assert_eq(q->n, NEVENTS - (int)st->lost + (int)st->duplicated);
  harness_finish(&h);
  cr_assert_eq(q->finals, 1);
}

static int seq_equal(const struct seq *a, const struct seq *b) {
  return a->n == b->n && memcmp(a->ids, b->ids, sizeof(int) * a->n) == 0;
}

static int seq_in_order(const struct seq *a) {
  int i;

  for (i = 1; i < a->n; i++)
    if (a->ids[i] < a->ids[i - 1])
      return 0;
  return 1;
}

static void same_seed_same_sequence(const char *scheme, int one_at_a_time) {
  static const char faults[] =
      "?fault-seed=42&fault-loss=0.1&fault-dup=0.05&fault-reorder=0.2";
  static struct seq a, b, none;
  svc_fault_stats_t sa, sb, sn;
  int i;

  run_sequence(scheme, faults, one_at_a_time, &a, &sa);
  run_sequence(scheme, faults, one_at_a_time, &b, &sb);
  run_sequence(scheme, "", one_at_a_time, &none, &sn);
  /* The faults really happened. */
  cr_assert_gt(sa.lost, 0);
  cr_assert_gt(sa.duplicated, 0);
  cr_assert_gt(sa.reordered, 0);
  /* Same seed, same sequence; without faults, every event once, in
   * order. */
  cr_assert(seq_equal(&a, &b), "seed 42 gave two different sequences");
  cr_assert_eq(memcmp(&sa, &sb, sizeof(sa)), 0);
  cr_assert_eq(none.n, NEVENTS);
  for (i = 0; i < NEVENTS; i++)
    cr_assert_eq(none.ids[i], i);
  cr_assert(!seq_equal(&a, &none), "the faults changed nothing");
  if (!one_at_a_time)
    cr_assert(!seq_in_order(&a), "reordering left the events in order");
}

Test(fault_net, same_seed_gives_same_delivery_sequence_tcp) {
  same_seed_same_sequence("tcp", 0);
}

#ifdef SVC_TEST_HTTP
Test(fault_net, same_seed_gives_same_delivery_sequence_http) {
  same_seed_same_sequence("http", 1);
}
#endif

struct report {
  int calls;
  svc_delivery_state_t state;
  int err;
};

static void report_cb(svc_ctx_t *ctx, const svc_delivery_t *d, void *arg) {
  struct report *r = arg;

  (void)ctx;
  r->calls++;
  r->state = d->state;
  r->err = d->err;
}

/* Loss: told 0 (written, never acknowledged), counted; disconnect:
 * ECONNRESET; dup: delivered twice. None of the lost or disconnected
 * events ever arrives. */
static void publish_faults(const char *scheme) {
  struct harness h;
  struct server s;
  static struct seq q;
  struct pubs p = {0};
  struct report r0 = {0}, r1 = {0};
  svc_pub_opts_t qos1 = {.qos = 1};
  svc_fault_stats_t st;
  svc_metrics_t m;
  char uri[512];

  harness_start(&h);
  serve(&h, scheme, &s);
  subscribe_seq(&h, &s, &q);
  snprintf(uri, sizeof(uri), "%s?fault-seed=1&fault-loss=1", at(&s, "ev"));
  cr_assert_eq(svc_publish_report(h.ctx, uri, svc_msg_new_str("100"), NULL,
                                  report_cb, &r0),
               0);
  cr_assert_eq(svc_publish_report(h.ctx, uri, svc_msg_new_str("101"), &qos1,
                                  report_cb, &r1),
               0);
  cr_assert_eq(r0.calls, 0);
  RUN_UNTIL(&h, r0.calls == 1 && r1.calls == 1);
  cr_assert_eq(r0.state, SVC_DELIVERY_WRITTEN);
  cr_assert_eq(r0.err, 0);
  cr_assert_eq(r1.state, SVC_DELIVERY_WRITTEN,
               "a lost QoS 1 publish was "
               "reported acknowledged");
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.ops, 2);
  cr_assert_eq(st.lost, 2);
  cr_assert_eq(svc_metrics_get(h.ctx, endpoint(&s), SVC_ROLE_CLIENT, &m), 0);
  cr_assert_eq(m.dropped, 2);

  snprintf(uri, sizeof(uri), "%s?fault-seed=1&fault-disconnect=1",
           at(&s, "ev"));
  cr_assert_eq(publish_n(h.ctx, uri, 102, 0, &p), 0);
  RUN_UNTIL(&h, p.calls == 1);
  cr_assert_eq(p.reset, 1, "a disconnected publish reports ECONNRESET");
  cr_assert_eq(p.inside, 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.disconnects, 1);

  snprintf(uri, sizeof(uri), "%s?fault-seed=1&fault-dup=1", at(&s, "ev"));
  cr_assert_eq(publish_n(h.ctx, uri, 103, 1, &p), 0);
  RUN_UNTIL(&h, p.calls == 2 && q.n == 2);
  cr_assert_eq(p.ok, 1, "one callback for a duplicated publish");
  cr_assert_eq(q.ids[0], 103);
  cr_assert_eq(q.ids[1], 103);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.duplicated, 1);

  /* Without a profile the next event goes through, alone. */
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), NULL), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), SVC_ENOENT);
  cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), 104, 1, &p), 0);
  RUN_UNTIL(&h, p.calls == 3 && q.n == 3);
  cr_assert_eq(q.ids[2], 104);
  cr_assert_eq(p.calls, 3);
  harness_finish(&h);
  cr_assert_eq(q.n, 3);
}

Test(fault_net, publish_loss_disconnect_and_dup_tcp) {
  publish_faults("tcp");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, publish_loss_disconnect_and_dup_http) {
  publish_faults("http");
}
#endif

Test(fault_net, reorder_holds_an_event_behind_the_next_one) {
  struct harness h;
  struct server s;
  static struct seq q;
  struct pubs p = {0};
  svc_fault_opts_t o = {.seed = 1, .reorder = 1.0};
  svc_fault_stats_t st;

  harness_start(&h);
  serve(&h, "tcp", &s);
  subscribe_seq(&h, &s, &q);
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), 0, 0, &p), 0);
  o.reorder = 0;
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), 1, 0, &p), 0);
  RUN_UNTIL(&h, q.n == 2 && p.calls == 2);
  cr_assert_eq(q.ids[0], 1);
  cr_assert_eq(q.ids[1], 0);
  cr_assert_eq(p.ok, 2);
  /* Nothing waits for a next publish that never comes. */
  o.reorder = 1.0;
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), 2, 1, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.reordered, 1);
  cr_assert_eq(st.held, 1);
  RUN_UNTIL(&h, q.n == 3 && p.calls == 3);
  cr_assert_eq(q.ids[2], 2);
  cr_assert_eq(p.ok, 3);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.held, 0);
  harness_finish(&h);
}

/* ---- Calls. */

struct result {
  int calls;
  int ok;
  int reset; /* UNAVAILABLE with SVC_ECONNRESET. */
  svc_status_t status;
  int err;
  unsigned attempts;
  int bad_body;
  uv_loop_t *loop;
  uint64_t done_ms;
};

static void result_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;

  r->calls++;
  r->ok += status == SVC_STATUS_OK;
  r->reset += status == SVC_STATUS_UNAVAILABLE &&
              svc_call_errno(call) == SVC_ECONNRESET;
  r->status = status;
  r->err = svc_call_errno(call);
  r->attempts += svc_call_attempts(call);
  if (status == SVC_STATUS_OK && !body_is(reply, "req"))
    r->bad_body++;
  if (r->loop != NULL)
    r->done_ms = uv_now(r->loop);
}

static void call(struct harness *h, const char *uri, const svc_call_opts_t *o,
                 struct result *r) {
  cr_assert_eq(
      svc_call(h->ctx, uri, svc_msg_new_str("req"), o, result_cb, r, NULL), 0);
}

static void lost_call(const char *scheme) {
  struct harness h;
  struct server s;
  struct result r = {0}, after = {0};
  svc_call_opts_t o = {.timeout_ms = 200};
  svc_fault_stats_t st;
  uint64_t t0;

  harness_start(&h);
  serve(&h, scheme, &s);
  r.loop = &h.loop;
  uv_update_time(&h.loop);
  t0 = uv_now(&h.loop);
  call(&h, at(&s, "work?fault-loss=1"), &o, &r);
  RUN_UNTIL(&h, r.calls == 1);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  cr_assert_eq(r.err, SVC_ETIMEDOUT);
  cr_assert_geq(r.done_ms - t0, 200);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.lost, 1);
  /* It never reached the server: the next call is the first it sees. */
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), NULL), 0);
  call(&h, at(&s, "work"), &o, &after);
  RUN_UNTIL(&h, after.calls == 1);
  cr_assert_eq(after.ok, 1);
  cr_assert_eq(s.handled, 1);
  harness_finish(&h);
}

Test(fault_net, lost_call_meets_its_deadline_tcp) {
  lost_call("tcp");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, lost_call_meets_its_deadline_http) {
  lost_call("http");
}
#endif

/* Every attempt disconnected: UNAVAILABLE with SVC_ECONNRESET; about half
 * of them after the server handled the request (its reply is lost). */
static void disconnected_calls(const char *scheme) {
  struct harness h;
  struct server s;
  struct result r = {0};
  svc_fault_stats_t st;
  int i;

  harness_start(&h);
  serve(&h, scheme, &s);
  for (i = 0; i < 20; i++)
    call(&h, at(&s, "work?fault-seed=1&fault-disconnect=1"), NULL, &r);
  RUN_UNTIL(&h, r.calls == 20);
  cr_assert_eq(r.reset, 20);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.disconnects, 20);
  cr_assert_eq(st.ops, 20);
  cr_assert(s.handled > 0 && s.handled < 20,
            "%d requests of 20 reached the server", s.handled);
  harness_finish(&h);
}

Test(fault_net, disconnect_fails_calls_unavailable_econnreset_tcp) {
  disconnected_calls("tcp");
}

Test(fault_net, disconnect_fails_calls_unavailable_econnreset_unix) {
  disconnected_calls("unix");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, disconnect_fails_calls_unavailable_econnreset_http) {
  disconnected_calls("http");
}
#endif

static void retried_calls(const char *scheme) {
  struct harness h;
  struct server s;
  struct result r = {0};
  svc_call_opts_t retry = {.idempotent = 1,
                           .timeout_ms = 5000,
                           .retry = {.max_attempts = 20,
                                     .initial_backoff_ms = 1,
                                     .max_backoff_ms = 2}};
  svc_fault_stats_t st;
  int i;

  harness_start(&h);
  serve(&h, scheme, &s);
  for (i = 0; i < 20; i++)
    call(&h, at(&s, "work?fault-seed=9&fault-disconnect=0.5"), &retry, &r);
  RUN_UNTIL(&h, r.calls == 20);
  cr_assert_eq(r.ok, 20, "idempotent calls with retries must get through");
  cr_assert_eq(r.bad_body, 0);
  cr_assert_gt(r.attempts, 20, "no attempt was disconnected");
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.disconnects, r.attempts - 20);
  cr_assert_geq(s.handled, 20);
  harness_finish(&h);
}

Test(fault_net, retried_idempotent_calls_get_through_tcp) {
  retried_calls("tcp");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, retried_idempotent_calls_get_through_http) {
  retried_calls("http");
}
#endif

static void dup_calls(const char *scheme) {
  struct harness h;
  struct server s;
  struct result r = {0};
  svc_fault_stats_t st;
  int i;

  harness_start(&h);
  serve(&h, scheme, &s);
  for (i = 0; i < 50; i++)
    call(&h, at(&s, "work?fault-seed=3&fault-dup=0.3"), NULL, &r);
  RUN_UNTIL(&h, r.calls == 50);
  cr_assert_eq(r.ok, 50);
  cr_assert_eq(r.bad_body, 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_gt(st.duplicated, 0);
  cr_assert_lt(st.duplicated, 50);
  /* The copies' replies may still be on their way: wait for the server. */
  RUN_UNTIL(&h, s.handled == 50 + (int)st.duplicated);
  cr_assert_eq(r.calls, 50, "the duplicate's reply must be thrown away");
  harness_finish(&h);
  cr_assert_eq(s.handled, 50 + (int)st.duplicated);
  cr_assert_eq(r.calls, 50);
}

Test(fault_net, dup_sends_some_requests_twice_tcp) {
  dup_calls("tcp");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, dup_sends_some_requests_twice_http) {
  dup_calls("http");
}
#endif

/* A duplicate nobody answers ends at the deadline of the call it copies,
 * like that call. */
Test(fault_net, unanswered_duplicate_ends_at_the_deadline) {
  struct harness h;
  struct server s;
  struct result r = {0}, after = {0};
  svc_call_opts_t o = {.timeout_ms = 100};

  harness_start(&h);
  serve(&h, "tcp", &s);
  call(&h, at(&s, "park?fault-dup=1"), &o, &r);
  RUN_UNTIL(&h, r.calls == 1 && s.nparked == 2);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  /* Both requests are cancelled at the deadline (the copy by its own
   * timer): the server is told about each. */
  RUN_UNTIL(&h, svc_request_cancelled(s.parked[0]) &&
                    svc_request_cancelled(s.parked[1]));
  park_release(&s);
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), NULL), 0);
  call(&h, at(&s, "work"), NULL, &after);
  RUN_UNTIL(&h, after.calls == 1);
  cr_assert_eq(after.ok, 1);
  cr_assert_eq(r.calls, 1);
  harness_finish(&h);
}

/* ---- Delays (calls, events and stream opens) and stream disconnects. */

struct side {
  int closes;
  int close_status;
};

static void side_close(svc_stream_t *st, int status, void *arg) {
  struct side *d = arg;

  (void)st;
  d->closes++;
  d->close_status = status;
}

static void delays(const char *scheme) {
  struct harness h;
  struct server s;
  static struct seq q;
  struct pubs p = {0};
  struct result r = {0};
  struct side client = {0};
  svc_stream_cbs_t cbs = {.on_close = side_close};
  svc_fault_opts_t o = {.seed = 1, .delay_min_ms = 100, .delay_max_ms = 100};
  svc_fault_stats_t st;
  svc_stream_t *strm;
  uint64_t t0;

  harness_start(&h);
  serve(&h, scheme, &s);
  subscribe_seq(&h, &s, &q);
  p.loop = r.loop = &h.loop;
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  /* Delays count from the loop's time, which is only as fresh as its last
   * update: refresh it, so that t0 and the delays start together. */
  uv_update_time(&h.loop);
  t0 = uv_now(&h.loop);
  call(&h, at(&s, "work"), NULL, &r);
  cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), 7, 0, &p), 0);
  cr_assert_eq(svc_stream(h.ctx, at(&s, "pipe"), NULL, &cbs, &client, &strm),
               0);
  /* Writes and the end wait for the open. */
  cr_assert_eq(svc_stream_write(strm, svc_msg_new_str("w"), NULL, NULL), 0);
  cr_assert_eq(svc_stream_end(strm), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.delayed, 3);
  cr_assert_eq(st.held, 3);
  RUN_UNTIL(&h, r.calls == 1 && p.calls == 1 && q.n == 1 && client.closes);
  cr_assert_eq(r.ok, 1);
  cr_assert_eq(p.ok, 1);
  cr_assert_eq(q.ids[0], 7);
  cr_assert_eq(client.close_status, 0, "%s", svc_err_name(client.close_status));
  cr_assert_eq(s.handled, 1);
  cr_assert_eq(s.accepted, 1);
  /* Only lower bounds: a loaded machine may be slower, never faster. The
   * delays are timers on the same millisecond loop clock; 1 ms of slack
   * all the same. */
  cr_assert_geq(s.handled_ms - t0, 99, "handled after %llu ms",
                (unsigned long long)(s.handled_ms - t0));
  cr_assert_geq(r.done_ms - t0, 99);
  cr_assert_geq(p.done_ms - t0, 99, "publish done after %llu ms",
                (unsigned long long)(p.done_ms - t0));
  cr_assert_geq(q.first_ms - t0, 99);
  cr_assert_geq(s.accepted_ms - t0, 99, "accepted after %llu ms",
                (unsigned long long)(s.accepted_ms - t0));
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.held, 0);
  harness_finish(&h);
}

Test(fault_net, delay_delays_calls_events_and_stream_opens_tcp) {
  delays("tcp");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, delay_delays_calls_events_and_stream_opens_http) {
  delays("http");
}
#endif

static void stream_disconnect(const char *scheme) {
  struct harness h;
  struct server s;
  struct side refused = {0}, fine = {0};
  svc_stream_cbs_t cbs = {.on_close = side_close};
  svc_fault_stats_t st;
  svc_stream_t *strm;

  harness_start(&h);
  serve(&h, scheme, &s);
  cr_assert_eq(svc_stream(h.ctx, at(&s, "pipe?fault-disconnect=1"), NULL, &cbs,
                          &refused, &strm),
               0);
  RUN_UNTIL(&h, refused.closes == 1);
  cr_assert_eq(refused.close_status, SVC_ECONNRESET);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.disconnects, 1);
  /* The next open goes through, and is the first the server sees. */
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), NULL), 0);
  cbs.on_close = side_close;
  cr_assert_eq(svc_stream(h.ctx, at(&s, "pipe"), NULL, &cbs, &fine, &strm), 0);
  cr_assert_eq(svc_stream_end(strm), 0);
  RUN_UNTIL(&h, fine.closes == 1);
  cr_assert_eq(fine.close_status, 0);
  cr_assert_eq(s.accepted, 1);
  cr_assert_eq(refused.closes, 1);
  harness_finish(&h);
}

Test(fault_net, stream_open_disconnect_is_econnreset_tcp) {
  stream_disconnect("tcp");
}

#ifdef SVC_TEST_HTTP
Test(fault_net, stream_open_disconnect_is_econnreset_http) {
  stream_disconnect("http");
}
#endif

/* ---- Options and the API. */

/* The URI that creates the connection carries backend options and
 * fault-* options: the backend sees only its own. Bad fault-* options are
 * refused before anything starts. */
static void options(const char *scheme, const char *backend_opt) {
  struct harness h;
  struct server s;
  struct result r = {0};
  svc_fault_opts_t o = {.seed = 4, .loss = 1.0};
  svc_fault_stats_t st;
  svc_stream_t *strm = NULL;
  char uri[512];

  harness_start(&h);
  serve(&h, scheme, &s);
  snprintf(uri, sizeof(uri), "%s?fault-bogus=1", at(&s, "work"));
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, never_cb, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_publish(h.ctx, uri, NULL, NULL, NULL, NULL), SVC_EINVAL);
  cr_assert_eq(svc_subscribe(h.ctx, uri, NULL, never_event, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_stream(h.ctx, uri, NULL, NULL, NULL, &strm), SVC_EINVAL);
  snprintf(uri, sizeof(uri), "%s?fault-loss=2", at(&s, "work"));
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, never_cb, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), SVC_ENOENT);

  snprintf(uri, sizeof(uri), "%s?%s&fault-seed=5&fault-loss=0", at(&s, "work"),
           backend_opt);
  call(&h, uri, NULL, &r);
  RUN_UNTIL(&h, r.calls == 1);
  cr_assert_eq(r.ok, 1, "%s", svc_status_name(r.status));
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.ops, 1);

  /* In code, on the endpoint; any path and query are ignored. */
  snprintf(uri, sizeof(uri), "%s?x=1", at(&s, "any/path"));
  cr_assert_eq(svc_fault_set(h.ctx, uri, &o), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, uri, &st), 0);
  cr_assert_eq(st.ops, 0);
  o.loss = 1.5;
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), SVC_EINVAL);
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), NULL), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), SVC_ENOENT);
  harness_finish(&h);
}

Test(fault_net, fault_options_never_reach_the_backend_tcp) {
  options("tcp", "keepalive_ms=1000");
}

#ifdef SVC_TEST_HTTP
struct body {
  int calls;
  svc_status_t status;
  char text[256];
};

static void body_cb(svc_call_t *c, svc_status_t status, const svc_msg_t *reply,
                    void *arg) {
  struct body *b = arg;
  size_t len = 0;
  const char *t = reply != NULL ? svc_msg_body(reply, &len) : "";

  (void)c;
  b->calls++;
  b->status = status;
  snprintf(b->text, sizeof(b->text), "%.*s", (int)len, t);
}

Test(fault_net, fault_options_never_reach_the_backend_http) {
  struct harness h;
  struct server s;
  struct body b = {0};

  options("http", "svc-connect-timeout-ms=2000");
  /* The http server gets the query without the fault-* pairs. */
  harness_start(&h);
  serve(&h, "http", &s);
  cr_assert_eq(svc_call(h.ctx, at(&s, "path?x=1&fault-seed=5&y=2"), NULL, NULL,
                        body_cb, &b, NULL),
               0);
  RUN_UNTIL(&h, b.calls == 1);
  cr_assert_eq(b.status, SVC_STATUS_OK);
  cr_assert_str_eq(b.text, "path?x=1&y=2");
  harness_finish(&h);
}
#endif

/* ---- Bounds and close. */

Test(fault_net, max_held_bounds_what_is_held_back) {
  struct harness h;
  struct server s;
  static struct seq q;
  struct pubs p = {0};
  svc_fault_opts_t o = {
      .seed = 1, .delay_min_ms = 5000, .delay_max_ms = 5000, .max_held = 2};
  svc_fault_stats_t st;
  int i;

  harness_start(&h);
  serve(&h, "tcp", &s);
  subscribe_seq(&h, &s, &q);
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  for (i = 0; i < 5; i++)
    cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), i, 0, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.delayed, 2);
  cr_assert_eq(st.overflowed, 3);
  cr_assert_eq(st.held, 2);
  /* Past the bound they go through at once, unfaulted. */
  RUN_UNTIL(&h, q.n == 3 && p.calls == 3);
  cr_assert_eq(q.ids[0], 2);
  cr_assert_eq(q.ids[2], 4);
  svc_ctx_close(h.ctx, harness_close_cb, &h);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(h.close_cbs, 1);
  cr_assert_eq(p.calls, 5);
  cr_assert_eq(p.cancelled, 2);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0, "a handle leaked on the loop");
}

static void never_data(svc_stream_t *st, const svc_msg_t *msg, void *arg) {
  (void)st;
  (void)msg;
  (void)arg;
  cr_assert_fail("data on a stream whose open was still delayed");
}

Test(fault_net, close_with_held_work_is_clean) {
  struct harness h;
  struct server s;
  static struct seq q;
  struct pubs p = {0};
  struct result r = {0}, dups = {0};
  struct side client = {0};
  svc_stream_cbs_t cbs = {.on_data = never_data, .on_close = side_close};
  svc_fault_opts_t o = {.seed = 2, .delay_min_ms = 5000, .delay_max_ms = 6000};
  svc_fault_stats_t st;
  svc_stream_t *strm;
  int i;

  harness_start(&h);
  serve(&h, "tcp", &s);
  subscribe_seq(&h, &s, &q);
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  for (i = 0; i < 10; i++) {
    cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), i, i % 2, &p), 0);
    call(&h, at(&s, "work"), NULL, &r);
  }
  cr_assert_eq(svc_stream(h.ctx, at(&s, "pipe"), NULL, &cbs, &client, &strm),
               0);
  cr_assert_eq(svc_stream_write(strm, svc_msg_new_str("w"), NULL, NULL), 0);
  /* A few loop turns with everything delayed. */
  for (i = 0; i < 3; i++)
    uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(p.calls, 0);
  cr_assert_eq(r.calls, 0);
  /* Events held for reordering (until the next turn), and duplicated
   * requests in flight. */
  o = (svc_fault_opts_t){.reorder = 1.0};
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  for (i = 10; i < 15; i++)
    cr_assert_eq(publish_n(h.ctx, at(&s, "ev"), i, 1, &p), 0);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.held, 26);
  o = (svc_fault_opts_t){.dup = 1.0};
  cr_assert_eq(svc_fault_set(h.ctx, endpoint(&s), &o), 0);
  for (i = 0; i < 3; i++)
    call(&h, at(&s, "work"), NULL, &dups);
  cr_assert_eq(svc_fault_stats(h.ctx, endpoint(&s), &st), 0);
  cr_assert_eq(st.duplicated, 3);
  svc_ctx_close(h.ctx, harness_close_cb, &h);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(h.close_cbs, 1);
  cr_assert_eq(p.calls, 15);
  cr_assert_eq(p.cancelled, 15);
  cr_assert_eq(r.calls, 10);
  cr_assert_eq(r.status, SVC_STATUS_CANCELLED);
  cr_assert_eq(dups.calls, 3);
  cr_assert_eq(dups.status, SVC_STATUS_CANCELLED);
  cr_assert_eq(q.n, 0);
  cr_assert_eq(q.finals, 1);
  cr_assert_eq(client.closes, 1);
  cr_assert_eq(client.close_status, SVC_ECANCELED);
  cr_assert_eq(s.accepted, 0);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0, "a handle leaked on the loop");
}
