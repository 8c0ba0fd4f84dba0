/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Every verb of mqtt:// against a real mosquitto started per test:
 * publish at each QoS with retain, headers and content type, wildcard,
 * shared and no-local subscriptions, calls through served routes with
 * deadlines, and streams with end and reset. */
#include "mosquitto.h"

#include <dirent.h>

#include "harness.h"

static struct broker b;

static void setup(void) {
  cr_assert_eq(broker_start(&b), 0, "mosquitto did not start");
}

static void teardown(void) {
  broker_cleanup(&b);
}

TestSuite(mqtt_verbs, .init = setup, .fini = teardown, .timeout = 30);

/* ---- Events. */

struct events {
  int n;
  int ready;
  int final;
  int final_status;
  char body[32][64];
  char topic[32][64];
  char header[64];
  char ctype[64];
  char id[128];
};

static void on_ready(svc_sub_t *sub, void *arg) {
  struct events *e = arg;
  (void)sub;
  e->ready++;
}

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct events *e = arg;
  (void)sub;
  if (ev == NULL) {
    e->final++;
    e->final_status = status;
    return;
  }
  if (e->n < 32) {
    size_t len;
    const char *body = svc_msg_body(ev, &len);
    snprintf(e->body[e->n], 64, "%.*s", (int)len, body);
    snprintf(e->topic[e->n], 64, "%s", svc_msg_topic(ev));
  }
  if (svc_msg_header_get(ev, "x-h") != NULL)
    snprintf(e->header, sizeof(e->header), "%s",
             svc_msg_header_get(ev, "x-h"));
  if (svc_msg_content_type(ev) != NULL)
    snprintf(e->ctype, sizeof(e->ctype), "%s", svc_msg_content_type(ev));
  if (svc_msg_header_get(ev, "svc-id") != NULL)
    snprintf(e->id, sizeof(e->id), "%s", svc_msg_header_get(ev, "svc-id"));
  e->n++;
}

struct pubs {
  int done;
  int ok;
  int last;
};

static void on_pub(svc_ctx_t *ctx, int status, void *arg) {
  struct pubs *p = arg;
  (void)ctx;
  p->done++;
  if (status == 0)
    p->ok++;
  p->last = status;
}

static void run_until_n(struct harness *h, const int *n, int want) {
  while (*n < want)
    uv_run(&h->loop, UV_RUN_ONCE);
}

/* Runs the loop for about ms (the context has live work meanwhile). */
static void run_for(struct harness *h, uint64_t ms) {
  uint64_t end;

  uv_update_time(&h->loop);
  end = uv_now(&h->loop) + ms;
  while (uv_now(&h->loop) < end) {
    uv_run(&h->loop, UV_RUN_NOWAIT);
    broker_sleep_ms(2);
    uv_update_time(&h->loop);
  }
}

Test(mqtt_verbs, publish_each_qos_with_headers_and_retain) {
  struct harness h;
  struct events e = {0}, e2 = {0};
  struct pubs p = {0};
  svc_sub_opts_t so = {.qos = 2, .on_ready = on_ready};
  svc_pub_opts_t po;
  svc_msg_t *m;
  int q;

  harness_start(&h);
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "pq/#"), &so, on_event, &e,
                             NULL),
               0);
  run_until_n(&h, &e.ready, 1);
  for (q = 0; q <= 2; q++) {
    char body[8];
    snprintf(body, sizeof(body), "q%d", q);
    m = svc_msg_new_str(body);
    svc_msg_header_add(m, "x-h", "hv");
    svc_msg_set_content_type(m, "text/plain");
    po = (svc_pub_opts_t){.qos = q};
    cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "pq/a"), m, &po, on_pub, &p),
                 0);
  }
  run_until_n(&h, &p.done, 3);
  cr_assert_eq(p.ok, 3);
  run_until_n(&h, &e.n, 3);
  cr_assert_str_eq(e.body[0], "q0");
  cr_assert_str_eq(e.body[1], "q1");
  cr_assert_str_eq(e.body[2], "q2");
  cr_assert_str_eq(e.topic[2], "pq/a");
  cr_assert_str_eq(e.header, "hv");
  cr_assert_str_eq(e.ctype, "text/plain");
  cr_assert(strncmp(e.id, "svc-", 4) == 0, "svc-id was %s", e.id);

  /* Retained: a later subscription gets it first. */
  po = (svc_pub_opts_t){.qos = 1, .retain = 1};
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "pq/kept"),
                           svc_msg_new_str("old news"), &po, on_pub, &p),
               0);
  run_until_n(&h, &p.done, 4);
  cr_assert_eq(p.last, 0);
  so.qos = 1;
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "pq/kept"), &so, on_event,
                             &e2, NULL),
               0);
  run_until_n(&h, &e2.n, 1);
  cr_assert_str_eq(e2.body[0], "old news");
  harness_finish(&h);
  cr_assert_eq(e.final, 1);
  cr_assert_eq(e.final_status, SVC_ECANCELED);
  cr_assert_eq(e2.final, 1);
}

/* More headers than a publish's properties hold inline (16), with a
 * content type, a trace and, at QoS 1, the message id: every one arrives,
 * in order, and the trace is the publisher's. */
static svc_msg_t *many_got;

static void keep_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                       void *arg) {
  (void)sub;
  (void)status;
  (void)arg;
  if (ev != NULL && many_got == NULL)
    many_got = svc_msg_dup(ev);
}

static void many_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ++*(int *)arg;
}

Test(mqtt_verbs, many_headers_content_type_and_trace_arrive_in_order) {
  struct harness h;
  svc_sub_opts_t so = {.qos = 1, .on_ready = many_ready};
  svc_pub_opts_t po = {.qos = 1};
  svc_msg_t *m = svc_msg_new_str("many");
  svc_trace_t sent;
  svc_trace_t got;
  int ready = 0;
  int i;

  harness_start(&h);
  many_got = NULL;
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "many/#"), &so,
                             keep_event, &ready, NULL),
               0);
  run_until_n(&h, &ready, 1);
  for (i = 0; i < 20; i++) {
    char name[16];
    char value[16];
    snprintf(name, sizeof(name), "x-h%02d", i);
    snprintf(value, sizeof(value), "v%d", i);
    cr_assert_eq(svc_msg_header_add(m, name, value), 0);
  }
  cr_assert_eq(svc_msg_set_content_type(m, "application/x-many"), 0);
  cr_assert_eq(svc_trace_parse("00-0af7651916cd43dd8448eb211c80319c-"
                               "b7ad6b7169203331-01",
                               &sent),
               0);
  cr_assert_eq(svc_msg_set_trace(m, &sent), 0);
  cr_assert_eq(
      svc_publish(h.ctx, broker_uri(&b, "many/a"), m, &po, NULL, NULL), 0);
  while (many_got == NULL)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 0; i < 20; i++) {
    const char *name;
    const char *value;
    char want[16];
    cr_assert_eq(svc_msg_header_at(many_got, (size_t)i, &name, &value), 0,
                 "header %d missing", i);
    snprintf(want, sizeof(want), "x-h%02d", i);
    cr_assert_str_eq(name, want);
    snprintf(want, sizeof(want), "v%d", i);
    cr_assert_str_eq(value, want);
  }
  cr_assert_str_eq(svc_msg_content_type(many_got), "application/x-many");
  cr_assert_not_null(svc_msg_header_get(many_got, "svc-id"));
  cr_assert_eq(svc_msg_trace(many_got, &got), 0);
  cr_assert_eq(memcmp(got.trace_id, sent.trace_id, 16), 0,
               "the trace was lost on the way");
  svc_msg_free(many_got);
  harness_finish(&h);
}

/* A received message is copied off paho's thread into one block: bodies
 * with zero bytes, empty bodies, empty and long property values must come
 * through it byte for byte. */
Test(mqtt_verbs, empty_and_binary_values_arrive_intact) {
  struct harness h;
  svc_sub_opts_t so = {.qos = 1, .on_ready = many_ready};
  svc_pub_opts_t po = {.qos = 1};
  unsigned char body[300];
  char long_value[1001];
  const char *value;
  const void *got;
  size_t len;
  int ready = 0;
  svc_msg_t *m;
  size_t i;

  for (i = 0; i < sizeof(body); i++)
    body[i] = (unsigned char)(i % 7 == 0 ? 0 : i);
  memset(long_value, 'L', sizeof(long_value) - 1);
  long_value[sizeof(long_value) - 1] = '\0';
  harness_start(&h);
  many_got = NULL;
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "bin/#"), &so,
                             keep_event, &ready, NULL),
               0);
  run_until_n(&h, &ready, 1);
  m = svc_msg_new(body, sizeof(body));
  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "x-empty", ""), 0);
  cr_assert_eq(svc_msg_header_add(m, "x-long", long_value), 0);
  cr_assert_eq(
      svc_publish(h.ctx, broker_uri(&b, "bin/a"), m, &po, NULL, NULL), 0);
  while (many_got == NULL)
    uv_run(&h.loop, UV_RUN_ONCE);
  got = svc_msg_body(many_got, &len);
  cr_assert_eq(len, sizeof(body));
  cr_assert_eq(memcmp(got, body, sizeof(body)), 0, "the body changed");
  value = svc_msg_header_get(many_got, "x-empty");
  cr_assert_not_null(value);
  cr_assert_str_eq(value, "");
  value = svc_msg_header_get(many_got, "x-long");
  cr_assert_not_null(value);
  cr_assert_str_eq(value, long_value);
  svc_msg_free(many_got);
  many_got = NULL;
  /* No body and no header of its own at all. */
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "bin/b"), NULL, &po, NULL,
                           NULL),
               0);
  while (many_got == NULL)
    uv_run(&h.loop, UV_RUN_ONCE);
  (void)svc_msg_body(many_got, &len);
  cr_assert_eq(len, 0);
  cr_assert_str_eq(svc_msg_topic(many_got), "bin/b");
  svc_msg_free(many_got);
  harness_finish(&h);
}

Test(mqtt_verbs, wildcards_plus_and_hash) {
  struct harness h;
  struct events plus = {0}, hash = {0};
  struct pubs p = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};
  svc_pub_opts_t po = {.qos = 1};
  int ready = 0;

  harness_start(&h);
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "wc/+/c"), &so, on_event,
                             &plus, NULL),
               0);
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "wc/#"), &so, on_event,
                             &hash, NULL),
               0);
  while (plus.ready + hash.ready < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  (void)ready;
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "wc/b/c"),
                           svc_msg_new_str("1"), &po, on_pub, &p),
               0);
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "wc/x"), svc_msg_new_str("2"),
                           &po, on_pub, &p),
               0);
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "wc/b/d/c"),
                           svc_msg_new_str("3"), &po, on_pub, &p),
               0);
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "other/b/c"),
                           svc_msg_new_str("4"), &po, on_pub, &p),
               0);
  run_until_n(&h, &p.done, 4);
  run_until_n(&h, &hash.n, 3);
  run_for(&h, 100);
  cr_assert_eq(plus.n, 1);
  cr_assert_str_eq(plus.body[0], "1");
  cr_assert_eq(hash.n, 3);
  cr_assert_str_eq(hash.body[0], "1");
  cr_assert_str_eq(hash.body[1], "2");
  cr_assert_str_eq(hash.body[2], "3");
  harness_finish(&h);
}

static void ctx_closed(svc_ctx_t *ctx, void *arg) {
  (void)ctx;
  (*(int *)arg)++;
}

Test(mqtt_verbs, shared_subscription_splits_events) {
  struct harness h;
  svc_ctx_t *c1, *c2;
  struct events e1 = {0}, e2 = {0};
  struct pubs p = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};
  svc_pub_opts_t po = {.qos = 1};
  int closed = 0;
  int i;

  harness_start(&h);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &c1), 0);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &c2), 0);
  /* Two clients (one per context) in group g. */
  cr_assert_eq(svc_subscribe(c1, broker_uri(&b, "$share/g/sh/#"), &so,
                             on_event, &e1, NULL),
               0);
  cr_assert_eq(svc_subscribe(c2, broker_uri(&b, "$share/g/sh/#"), &so,
                             on_event, &e2, NULL),
               0);
  while (e1.ready + e2.ready < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 0; i < 20; i++) {
    char body[8];
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "sh/x"),
                             svc_msg_new_str(body), &po, on_pub, &p),
                 0);
  }
  run_until_n(&h, &p.done, 20);
  while (e1.n + e2.n < 20)
    uv_run(&h.loop, UV_RUN_ONCE);
  run_for(&h, 100);
  /* Each event went to exactly one member, and both had a share. */
  cr_assert_eq(e1.n + e2.n, 20);
  cr_assert_gt(e1.n, 0);
  cr_assert_gt(e2.n, 0);
  svc_ctx_close(c1, ctx_closed, &closed);
  svc_ctx_close(c2, ctx_closed, &closed);
  run_until_n(&h, &closed, 2);
  harness_finish(&h);
}

Test(mqtt_verbs, no_local_skips_own_publishes) {
  struct harness h;
  svc_ctx_t *other;
  struct events mine = {0}, theirs = {0};
  struct pubs p = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};
  svc_pub_opts_t po = {.qos = 1};
  char uri[256];
  int closed = 0;

  harness_start(&h);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &other), 0);
  snprintf(uri, sizeof(uri), "mqtt://127.0.0.1:%d/nl/#?no_local=1", b.port);
  cr_assert_eq(svc_subscribe(h.ctx, uri, &so, on_event, &mine, NULL), 0);
  cr_assert_eq(svc_subscribe(other, broker_uri(&b, "nl/#"), &so, on_event,
                             &theirs, NULL),
               0);
  while (mine.ready + theirs.ready < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "nl/x"),
                           svc_msg_new_str("from me"), &po, on_pub, &p),
               0);
  cr_assert_eq(svc_publish(other, broker_uri(&b, "nl/y"),
                           svc_msg_new_str("from them"), &po, on_pub, &p),
               0);
  run_until_n(&h, &theirs.n, 2);
  run_until_n(&h, &mine.n, 1);
  run_for(&h, 150);
  cr_assert_eq(mine.n, 1);
  cr_assert_str_eq(mine.body[0], "from them");
  cr_assert_eq(theirs.n, 2);
  svc_ctx_close(other, ctx_closed, &closed);
  run_until_n(&h, &closed, 1);
  harness_finish(&h);
}

/* ---- Calls. */

struct result {
  int calls;
  svc_status_t status;
  int err;
  char body[128];
  char header[64];
  uint64_t ms;
};

static void record_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;
  r->calls++;
  r->status = status;
  r->err = svc_call_errno(call);
  if (reply != NULL) {
    size_t len;
    const char *body = svc_msg_body(reply, &len);
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, body);
    if (svc_msg_header_get(reply, "x-echo") != NULL)
      snprintf(r->header, sizeof(r->header), "%s",
               svc_msg_header_get(reply, "x-echo"));
  }
}

static void echo_handler(svc_request_t *req, void *arg) {
  const svc_msg_t *m = svc_request_msg(req);
  size_t len;
  const void *body = svc_msg_body(m, &len);
  svc_msg_t *reply = svc_msg_new(body, len);
  char extra[64];
  (void)arg;
  if (svc_msg_header_get(m, "x-echo") != NULL)
    svc_msg_header_add(reply, "x-echo", svc_msg_header_get(m, "x-echo"));
  snprintf(extra, sizeof(extra), "%s %s %d", svc_request_method(req),
           svc_request_path(req),
           svc_request_remaining_ms(req) != UINT64_MAX);
  svc_msg_header_add(reply, "x-info", extra);
  svc_request_reply(req, SVC_STATUS_OK, reply);
}

static void status_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, (svc_status_t)atoi(svc_request_param(req, "code")),
                    svc_msg_new_str(svc_request_method(req)));
}

static const char *at(svc_server_t *srv, const char *path) {
  static char buf[4][300];
  static int i;
  char *s = buf[i++ % 4];
  snprintf(s, 300, "%s/%s", svc_server_endpoint(srv), path);
  return s;
}

Test(mqtt_verbs, call_through_served_routes) {
  struct harness h;
  svc_server_t *srv;
  struct result r = {0}, r2 = {0}, r3 = {0};
  svc_call_opts_t opts = {.method = "PUT", .timeout_ms = 5000};
  svc_msg_t *req;
  char want[128];

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/users"), NULL, &srv), 0);
  snprintf(want, sizeof(want), "mqtt://127.0.0.1:%d/svc/users", b.port);
  cr_assert_str_eq(svc_server_endpoint(srv), want);
  cr_assert_eq(svc_server_route(srv, NULL, "get", echo_handler, NULL), 0);
  cr_assert_eq(
      svc_server_route(srv, NULL, "status/{code}", status_handler, NULL), 0);
  {
    svc_server_t *again;
    cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/users"), NULL, &again),
                 SVC_EEXIST);
  }
  req = svc_msg_new_str("hello");
  svc_msg_header_add(req, "x-echo", "42");
  cr_assert_eq(svc_call(h.ctx, at(srv, "get"), req, NULL, record_cb, &r, NULL),
               0);
  cr_assert_eq(svc_call(h.ctx, at(srv, "status/5"), NULL, &opts, record_cb,
                        &r2, NULL),
               0);
  cr_assert_eq(svc_call(h.ctx, at(srv, "nothing/here"), NULL, NULL, record_cb,
                        &r3, NULL),
               0);
  while (!r.calls || !r2.calls || !r3.calls)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.body, "hello");
  cr_assert_str_eq(r.header, "42");
  cr_assert_eq(r2.status, 5);
  cr_assert_eq(r2.err, SVC_ESTATUS);
  cr_assert_str_eq(r2.body, "PUT");
  cr_assert_eq(r3.status, SVC_STATUS_NOT_FOUND);
  harness_finish(&h);
}

static void info_cb(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  record_cb(call, status, reply, arg);
  if (reply != NULL && svc_msg_header_get(reply, "x-info") != NULL)
    snprintf(((struct result *)arg)->header, 64, "%s",
             svc_msg_header_get(reply, "x-info"));
}

Test(mqtt_verbs, call_carries_method_path_and_deadline) {
  struct harness h;
  svc_server_t *srv;
  struct result r = {0};
  svc_call_opts_t opts = {.method = "POST", .timeout_ms = 4000};

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/info"), NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, "POST", "a/{x}", echo_handler, NULL), 0);
  cr_assert_eq(svc_call(h.ctx, at(srv, "a/b"), svc_msg_new_str("x"), &opts,
                        info_cb, &r, NULL),
               0);
  run_until_n(&h, &r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.header, "POST a/b 1");
  harness_finish(&h);
}

Test(mqtt_verbs, call_nobody_answers_hits_deadline) {
  struct harness h;
  struct result r = {0};
  svc_call_opts_t opts = {.timeout_ms = 300};
  uint64_t t0;

  harness_start(&h);
  t0 = uv_hrtime();
  cr_assert_eq(svc_call(h.ctx, broker_uri(&b, "nobody/home"), NULL, &opts,
                        record_cb, &r, NULL),
               0);
  run_until_n(&h, &r.calls, 1);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  cr_assert_lt((uv_hrtime() - t0) / 1000000, 2000);
  harness_finish(&h);
}

/* ---- Streams. */

struct sside {
  int data;
  int ends;
  int closes;
  int close_status;
  char got[256];
};

static void s_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct sside *x = arg;
  size_t len;
  const char *body = svc_msg_body(msg, &len);
  x->data++;
  strncat(x->got, body, len < 32 ? len : 32);
  strcat(x->got, ";");
  /* The server side echoes. */
  if (svc_stream_get_data(s) != NULL)
    svc_stream_write(s, svc_msg_dup(msg), NULL, NULL);
}

static void s_on_end(svc_stream_t *s, void *arg) {
  struct sside *x = arg;
  x->ends++;
  if (svc_stream_get_data(s) != NULL)
    svc_stream_end(s);
}

static void s_on_close(svc_stream_t *s, int status, void *arg) {
  struct sside *x = arg;
  (void)s;
  x->closes++;
  x->close_status = status;
}

static struct sside server_side;

static void on_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {s_on_data, s_on_end, NULL, s_on_close};
  (void)srv;
  (void)arg;
  cr_assert_str_eq(svc_stream_header(s, "x-open"), "yes");
  svc_stream_set_data(s, &server_side);
  cr_assert_eq(svc_stream_accept(s, NULL, &cbs, &server_side), 0);
}

Test(mqtt_verbs, stream_round_trip_with_end) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  struct sside cl = {0};
  svc_stream_cbs_t cbs = {s_on_data, s_on_end, NULL, s_on_close};
  const char *hdr[] = {"x-open", "yes"};
  svc_stream_opts_t so = {.headers = hdr, .nheaders = 1};
  int i;

  harness_start(&h);
  memset(&server_side, 0, sizeof(server_side));
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/st"), NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "echo", on_accept, NULL), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "echo"), &so, &cbs, &cl, &s), 0);
  for (i = 0; i < 5; i++) {
    char body[8];
    snprintf(body, sizeof(body), "m%d", i);
    cr_assert_eq(svc_stream_write(s, svc_msg_new_str(body), NULL, NULL), 0);
  }
  cr_assert_eq(svc_stream_end(s), 0);
  run_until_n(&h, &cl.closes, 1);
  run_until_n(&h, &server_side.closes, 1);
  cr_assert_eq(cl.close_status, 0);
  cr_assert_eq(server_side.close_status, 0);
  cr_assert_str_eq(server_side.got, "m0;m1;m2;m3;m4;");
  cr_assert_str_eq(cl.got, "m0;m1;m2;m3;m4;");
  cr_assert_eq(cl.ends, 1);
  cr_assert_eq(server_side.ends, 1);
  harness_finish(&h);
}

static void reset_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  s_on_data(s, msg, arg);
  svc_stream_reset(s);
}

Test(mqtt_verbs, stream_reset_reaches_the_peer) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  struct sside cl = {0};
  svc_stream_cbs_t cbs = {reset_on_data, NULL, NULL, s_on_close};
  const char *hdr[] = {"x-open", "yes"};
  svc_stream_opts_t so = {.headers = hdr, .nheaders = 1};

  harness_start(&h);
  memset(&server_side, 0, sizeof(server_side));
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/rs"), NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "echo", on_accept, NULL), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "echo"), &so, &cbs, &cl, &s), 0);
  cr_assert_eq(svc_stream_write(s, svc_msg_new_str("ping"), NULL, NULL), 0);
  /* The echo comes back; the client resets on it. */
  run_until_n(&h, &cl.closes, 1);
  run_until_n(&h, &server_side.closes, 1);
  cr_assert_eq(cl.close_status, SVC_ECANCELED);
  cr_assert_eq(server_side.close_status, SVC_ECONNRESET);
  harness_finish(&h);
}

Test(mqtt_verbs, stream_to_unrouted_path_is_reset) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  struct sside cl = {0};
  svc_stream_cbs_t cbs = {s_on_data, NULL, NULL, s_on_close};

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/nr"), NULL, &srv), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "none"), NULL, &cbs, &cl, &s), 0);
  run_until_n(&h, &cl.closes, 1);
  cr_assert_eq(cl.close_status, SVC_ECONNRESET);
  harness_finish(&h);
}

struct bulk {
  int got;
  int closes;
  int close_status;
  int in_order;
};

static void bulk_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct bulk *x = arg;
  size_t len;
  const char *body = svc_msg_body(msg, &len);
  (void)s;
  if (len != 100 || atoi(body) != x->got)
    x->in_order = 0;
  x->got++;
}

static void bulk_on_close(svc_stream_t *s, int status, void *arg) {
  struct bulk *x = arg;
  (void)s;
  x->closes++;
  x->close_status = status;
}

static struct bulk bulk_server;

static void bulk_on_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}

static void bulk_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  /* A small window: the writer needs credit many times over. */
  svc_stream_opts_t o = {.window = 1000};
  svc_stream_cbs_t cbs = {bulk_on_data, bulk_on_end, NULL, bulk_on_close};
  (void)srv;
  (void)arg;
  cr_assert_eq(svc_stream_accept(s, &o, &cbs, &bulk_server), 0);
}

Test(mqtt_verbs, stream_flow_control_with_small_window) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  struct bulk cl = {0};
  svc_stream_cbs_t cbs = {NULL, NULL, NULL, bulk_on_close};
  svc_stream_opts_t so = {.send_buffer = 1 << 20};
  int i;

  harness_start(&h);
  memset(&bulk_server, 0, sizeof(bulk_server));
  bulk_server.in_order = 1;
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/bulk"), NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "in", bulk_accept, NULL), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "in"), &so, &cbs, &cl, &s), 0);
  for (i = 0; i < 300; i++) {
    char body[100];
    memset(body, 'x', sizeof(body));
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(svc_stream_write(s, svc_msg_new(body, sizeof(body)), NULL,
                                  NULL),
                 0);
  }
  cr_assert_eq(svc_stream_end(s), 0);
  run_until_n(&h, &cl.closes, 1);
  run_until_n(&h, &bulk_server.closes, 1);
  cr_assert_eq(cl.close_status, 0);
  cr_assert_eq(bulk_server.got, 300);
  cr_assert_eq(bulk_server.in_order, 1);
  harness_finish(&h);
}

Test(mqtt_verbs, subscription_sharing_the_served_filter) {
  struct harness h;
  svc_server_t *srv;
  struct events e = {0};
  struct result r = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/ov"), NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "get", echo_handler, NULL), 0);
  /* The same MQTT filter as the server's own subscription: both see the
   * request (one MQTT subscription at the broker serves both). */
  cr_assert_eq(svc_subscribe(h.ctx, broker_uri(&b, "svc/ov/#"), &so,
                             on_event, &e, NULL),
               0);
  run_until_n(&h, &e.ready, 1);
  cr_assert_eq(svc_call(h.ctx, at(srv, "get"), svc_msg_new_str("both"), NULL,
                        record_cb, &r, NULL),
               0);
  run_until_n(&h, &r.calls, 1);
  run_until_n(&h, &e.n, 1);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.body, "both");
  cr_assert_str_eq(e.body[0], "both");
  cr_assert_str_eq(e.topic[0], "svc/ov/get");
  harness_finish(&h);
}

/* A stream the transport fails while a write is being sent (paho refuses
 * the frame: its buffer of max_buffered=1 is full) still calls that
 * write's callback, and every other one, exactly once. */
struct wcount {
  int cbs;
  int errors;
};

static void count_write(svc_stream_t *s, int status, void *arg) {
  struct wcount *w = arg;
  (void)s;
  w->cbs++;
  if (status != 0)
    w->errors++;
}

Test(mqtt_verbs, every_write_reports_when_the_transport_fails_mid_send) {
  struct harness h;
  svc_ctx_t *cctx;
  svc_server_t *srv;
  svc_stream_t *s;
  struct bulk cl = {0};
  struct wcount w = {0};
  svc_stream_cbs_t cbs = {NULL, NULL, NULL, bulk_on_close};
  svc_stream_opts_t so = {.send_buffer = 1 << 20};
  char uri[300];
  int accepted = 0;
  int i;

  harness_start(&h);
  memset(&bulk_server, 0, sizeof(bulk_server));
  cr_assert_eq(svc_serve(h.ctx, broker_uri(&b, "svc/mid"), NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "in", bulk_accept, NULL), 0);
  /* The writer is a context of its own, so its connection gets the small
   * paho buffer. */
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &cctx), 0);
  snprintf(uri, sizeof(uri), "%s?max_buffered=1", at(srv, "in"));
  cr_assert_eq(svc_stream(cctx, uri, &so, &cbs, &cl, &s), 0);
  for (i = 0; i < 200; i++) {
    if (svc_stream_write(s, svc_msg_new_str("0123456789"), count_write, &w) ==
        0)
      accepted++;
  }
  run_until_n(&h, &cl.closes, 1);
  while (w.cbs < accepted && cl.close_status == 0)
    uv_run(&h.loop, UV_RUN_ONCE);
  uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(w.cbs, accepted, "%d writes accepted, %d callbacks (%s)",
               accepted, w.cbs, svc_strerror(cl.close_status));
  svc_ctx_close(cctx, NULL, NULL);
  harness_finish(&h);
}

/* ---- paho's threads hand events to the loop through a wake-up the loop
 * polls (mqtt_loop.c). A burst arrives whole at every client however the
 * wake-ups coalesce, and a closed client leaves no descriptor open. */

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  cr_assert_not_null(d);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

static void count_closed(svc_ctx_t *ctx, void *arg) {
  (void)ctx;
  ++*(int *)arg;
}

/* One client that subscribes, is served a message and closes: paho's
 * process-wide state is then set up, and the descriptors it keeps for
 * itself are open before the count is taken. */
static void one_client_cycle(struct harness *h) {
  svc_ctx_t *ctx;
  struct events e = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};
  svc_pub_opts_t q1 = {.qos = 1};
  int closed = 0;

  cr_assert_eq(svc_ctx_init(&h->loop, NULL, &ctx), 0);
  cr_assert_eq(svc_subscribe(ctx, broker_uri(&b, "warm/x"), &so, on_event, &e,
                             NULL),
               0);
  run_until_n(h, &e.ready, 1);
  cr_assert_eq(svc_publish(ctx, broker_uri(&b, "warm/x"),
                           svc_msg_new_str("w"), &q1, NULL, NULL),
               0);
  run_until_n(h, &e.n, 1);
  svc_ctx_close(ctx, count_closed, &closed);
  run_until_n(h, &closed, 1);
}

#define BURST_CLIENTS 8
#define BURST_EVENTS 400

Test(mqtt_verbs, bursts_arrive_whole_and_closed_clients_leave_no_descriptor) {
  struct harness h;
  svc_ctx_t *ctx[BURST_CLIENTS];
  struct events e[BURST_CLIENTS];
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};
  svc_pub_opts_t q1 = {.qos = 1};
  struct pubs p = {0};
  int before;
  int closed = 0;
  int ready = 0;
  int i;

  harness_start(&h);
  one_client_cycle(&h);
  /* The publisher's connection stays open throughout. */
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "burst/x"),
                           svc_msg_new_str("first"), &q1, on_pub, &p),
               0);
  run_until_n(&h, &p.done, 1);
  p.done = p.ok = 0;
  before = open_fds();
  memset(e, 0, sizeof(e));
  for (i = 0; i < BURST_CLIENTS; i++) {
    cr_assert_eq(svc_ctx_init(&h.loop, NULL, &ctx[i]), 0);
    cr_assert_eq(svc_subscribe(ctx[i], broker_uri(&b, "burst/#"), &so,
                               on_event, &e[i], NULL),
                 0);
  }
  while (ready < BURST_CLIENTS) {
    uv_run(&h.loop, UV_RUN_ONCE);
    for (ready = 0, i = 0; i < BURST_CLIENTS; i++)
      ready += e[i].ready;
  }
  /* All in one loop turn: paho's threads deliver them while the loop is
   * busy, so one wake-up stands for many events. */
  for (i = 0; i < BURST_EVENTS; i++)
    cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "burst/x"),
                             svc_msg_new_str("e"), &q1, on_pub, &p),
                 0);
  run_until_n(&h, &p.done, BURST_EVENTS);
  cr_assert_eq(p.ok, BURST_EVENTS);
  for (i = 0; i < BURST_CLIENTS; i++)
    run_until_n(&h, &e[i].n, BURST_EVENTS);
  for (i = 0; i < BURST_CLIENTS; i++)
    svc_ctx_close(ctx[i], count_closed, &closed);
  run_until_n(&h, &closed, BURST_CLIENTS);
  for (i = 0; i < BURST_CLIENTS; i++) {
    cr_assert_eq(e[i].n, BURST_EVENTS, "client %d got %d events", i, e[i].n);
    cr_assert_eq(e[i].final, 1);
  }
  cr_assert_eq(open_fds(), before);
  harness_finish(&h);
}
