/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Every verb of tcp:// and unix:// over real loopback sockets: client and
 * server in one context and one loop, talking through the kernel. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"

/* ---- Endpoints: tcp on an ephemeral port, unix on a per-process file. */

static char sock_path[128];

static const char *serve_uri(int is_unix) {
  if (!is_unix)
    return "tcp://127.0.0.1:0";
  snprintf(sock_path, sizeof(sock_path), "unix:///tmp/svc-test-%d.sock",
           (int)getpid());
  unlink(sock_path + 7);
  return sock_path;
}

/* URI for path on the endpoint srv serves: svc_server_endpoint() is made
 * to have a route appended (unix:// included). */
static const char *at(svc_server_t *srv, const char *path) {
  static char buf[4][256];
  static int i;
  char *b = buf[i++ % 4];

  snprintf(b, 256, "%s/%s", svc_server_endpoint(srv), path);
  return b;
}

struct result {
  int calls;
  svc_status_t status;
  int err;
  char body[256];
  char header[64];
};

static void record_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;
  r->calls++;
  r->status = status;
  r->err = svc_call_errno(call);
  if (reply != NULL) {
    size_t len;
    const char *b = svc_msg_body(reply, &len);
    const char *h = svc_msg_header_get(reply, "x-echo");
    snprintf(r->body, sizeof(r->body), "%.*s", (int)len, b);
    if (h != NULL)
      snprintf(r->header, sizeof(r->header), "%s", h);
  }
}

static void echo_handler(svc_request_t *req, void *arg) {
  const svc_msg_t *m = svc_request_msg(req);
  size_t len;
  const void *b = svc_msg_body(m, &len);
  svc_msg_t *reply = svc_msg_new(b, len);
  const char *h = svc_msg_header_get(m, "x-echo");
  (void)arg;
  if (h != NULL)
    svc_msg_header_add(reply, "x-echo", h);
  if (svc_msg_content_type(m) != NULL)
    svc_msg_set_content_type(reply, svc_msg_content_type(m));
  svc_request_reply(req, SVC_STATUS_OK, reply);
}

static void status_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, (svc_status_t)atoi(svc_request_param(req, "code")),
                    svc_msg_new_str(svc_request_method(req)));
}

static svc_server_t *serve(struct harness *h, int is_unix) {
  svc_server_t *srv;
  cr_assert_eq(svc_serve(h->ctx, serve_uri(is_unix), NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "echo", echo_handler, NULL), 0);
  cr_assert_eq(
      svc_server_route(srv, NULL, "status/{code}", status_handler, NULL), 0);
  return srv;
}

static void call_echo(int is_unix) {
  struct harness h;
  struct result r = {0}, r2 = {0}, r3 = {0};
  svc_server_t *srv;
  svc_msg_t *req;
  svc_call_opts_t opts = {.method = "PUT", .timeout_ms = 5000};

  harness_start(&h);
  srv = serve(&h, is_unix);
  cr_assert_str_neq(svc_server_endpoint(srv), "tcp://127.0.0.1:0");
  if (is_unix) {
    char want[160];
    snprintf(want, sizeof(want), "unix://%%2Ftmp%%2Fsvc-test-%d.sock",
             (int)getpid());
    cr_assert_str_eq(svc_server_endpoint(srv), want);
  }
  req = svc_msg_new_str("hello");
  svc_msg_header_add(req, "x-echo", "42");
  svc_msg_set_content_type(req, "text/plain");
  cr_assert_eq(svc_call(h.ctx, at(srv, "echo"), req, NULL, record_cb, &r, NULL),
               0);
  cr_assert_eq(
      svc_call(h.ctx, at(srv, "status/5"), NULL, &opts, record_cb, &r2, NULL),
      0);
  cr_assert_eq(svc_call(h.ctx, at(srv, "nothing/here"), NULL, NULL, record_cb,
                        &r3, NULL),
               0);
  cr_assert_eq(r.calls, 0);
  while (!r.calls || !r2.calls || !r3.calls)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_eq(r.err, 0);
  cr_assert_str_eq(r.body, "hello");
  cr_assert_str_eq(r.header, "42");
  cr_assert_eq(r2.status, SVC_STATUS_NOT_FOUND);
  cr_assert_eq(r2.err, SVC_ESTATUS);
  cr_assert_str_eq(r2.body, "PUT");
  cr_assert_eq(r3.status, SVC_STATUS_NOT_FOUND);
  harness_finish(&h);
}

Test(tcp_verbs, call_echo_status_and_not_found_tcp) {
  call_echo(0);
}
Test(tcp_verbs, call_echo_status_and_not_found_unix) {
  call_echo(1);
}

/* ---- Out-of-order replies: the handler holds requests and answers the
 * last first; each reply still reaches its own caller. */

#define HELD 16
static svc_request_t *held[HELD];
static int nheld;

static void hold_handler(svc_request_t *req, void *arg) {
  (void)arg;
  held[nheld++] = req;
  if (nheld == HELD) {
    int i;
    for (i = HELD - 1; i >= 0; i--) {
      const svc_msg_t *m = svc_request_msg(held[i]);
      size_t len;
      const void *b = svc_msg_body(m, &len);
      svc_request_reply(held[i], SVC_STATUS_OK, svc_msg_new(b, len));
    }
  }
}

Test(tcp_verbs, replies_in_any_order_reach_their_callers) {
  struct harness h;
  struct result r[HELD];
  svc_server_t *srv;
  int i;
  int done = 0;

  memset(r, 0, sizeof(r));
  nheld = 0;
  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_server_route(srv, NULL, "hold", hold_handler, NULL), 0);
  for (i = 0; i < HELD; i++) {
    char body[16];
    snprintf(body, sizeof(body), "m%d", i);
    cr_assert_eq(svc_call(h.ctx, at(srv, "hold"), svc_msg_new_str(body), NULL,
                          record_cb, &r[i], NULL),
                 0);
  }
  while (!done) {
    uv_run(&h.loop, UV_RUN_ONCE);
    for (done = 1, i = 0; i < HELD; i++)
      done &= r[i].calls == 1;
  }
  for (i = 0; i < HELD; i++) {
    char body[16];
    snprintf(body, sizeof(body), "m%d", i);
    cr_assert_eq(r[i].status, SVC_STATUS_OK);
    cr_assert_str_eq(r[i].body, body);
  }
  harness_finish(&h);
}

/* ---- Deadlines and cancellation: a handler that never answers. */

static svc_request_t *parked;
static void park_handler(svc_request_t *req, void *arg) {
  (void)arg;
  parked = req;
}

static void cancelled_cb(svc_call_t *call, svc_status_t status,
                         const svc_msg_t *reply, void *arg) {
  record_cb(call, status, reply, arg);
}


Test(tcp_verbs, deadline_expires_and_server_sees_cancel) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;
  svc_call_opts_t opts = {.timeout_ms = 1000};
  uint64_t left;

  parked = NULL;
  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_server_route(srv, NULL, "park", park_handler, NULL), 0);
  cr_assert_eq(
      svc_call(h.ctx, at(srv, "park"), NULL, &opts, cancelled_cb, &r, NULL), 0);
  while (parked == NULL)
    uv_run(&h.loop, UV_RUN_ONCE);
  /* The caller's remaining time travelled with the request. */
  left = svc_request_remaining_ms(parked);
  cr_assert(left > 0 && left <= 1000, "remaining %llu",
            (unsigned long long)left);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_DEADLINE_EXCEEDED);
  /* The CANCEL frame (or the request's own deadline) reaches the handler;
   * the watchdog bounds the wait. */
  while (!svc_request_cancelled(parked))
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(svc_request_reply(parked, SVC_STATUS_OK, NULL), SVC_ECANCELED);
  harness_finish(&h);
}

Test(tcp_verbs, cancel_reaches_the_server) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;
  svc_call_t *call;

  parked = NULL;
  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_server_route(srv, NULL, "park", park_handler, NULL), 0);
  cr_assert_eq(
      svc_call(h.ctx, at(srv, "park"), NULL, NULL, cancelled_cb, &r, &call), 0);
  while (parked == NULL)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_not(svc_request_cancelled(parked));
  svc_call_cancel(call);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_CANCELLED);
  /* Only the CANCEL frame can tell the handler: there is no deadline. */
  while (!svc_request_cancelled(parked))
    uv_run(&h.loop, UV_RUN_ONCE);
  svc_request_reply(parked, SVC_STATUS_OK, NULL);
  harness_finish(&h);
}

Test(tcp_verbs, nobody_listening_is_unavailable) {
  struct harness h;
  struct result r = {0};
  svc_server_t *srv;
  char uri[128];

  harness_start(&h);
  /* Learn a free port, then stop listening on it. */
  srv = serve(&h, 0);
  snprintf(uri, sizeof(uri), "%s/echo", svc_server_endpoint(srv));
  svc_server_close(srv, NULL, NULL);
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, record_cb, &r, NULL), 0);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(r.err, SVC_ECONNREFUSED);
  harness_finish(&h);
}

Test(tcp_verbs, bad_uris_are_refused) {
  struct harness h;
  svc_server_t *srv;
  struct result r = {0};

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1", NULL, &srv), SVC_EINVAL);
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1:0?bogus=1", NULL, &srv),
               SVC_EINVAL);
  cr_assert_eq(svc_serve(h.ctx, "tcp://localhost:0", NULL, &srv), SVC_EINVAL);
  cr_assert_eq(
      svc_call(h.ctx, "tcp://127.0.0.1/x", NULL, NULL, record_cb, &r, NULL),
      SVC_EINVAL);
  cr_assert_eq(svc_call(h.ctx, "tcp://127.0.0.1:1/x?keepalive_ms=x", NULL, NULL,
                        record_cb, &r, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_call(h.ctx, "tcp://127.0.0.1:2/x?overflow=sometimes", NULL,
                        NULL, record_cb, &r, NULL),
               SVC_EINVAL);
  cr_assert_eq(
      svc_call(h.ctx, "unix://relative/x", NULL, NULL, record_cb, &r, NULL),
      SVC_EINVAL);
  cr_assert_eq(r.calls, 0);
  harness_finish(&h);
}

/* ---- Events through the server's hub. */

struct events {
  int n;
  int ready;
  char last[128];
  char topic[128];
  int ended;
};

static void event_cb(svc_sub_t *sub, int status, const svc_msg_t *msg,
                     void *arg) {
  struct events *e = arg;
  (void)sub;
  if (msg == NULL) {
    e->ended = status == 0 ? 1 : status;
    return;
  }
  e->n++;
  snprintf(e->topic, sizeof(e->topic), "%s", svc_msg_topic(msg));
  snprintf(e->last, sizeof(e->last), "%.*s", (int)svc_msg_len(msg),
           (const char *)svc_msg_body(msg, NULL));
}

static void ready_cb(svc_sub_t *sub, void *arg) {
  struct events *e = arg;
  (void)sub;
  e->ready = 1;
}

struct pubres {
  int n;
  int status;
};
static void pub_cb(svc_ctx_t *ctx, int status, void *arg) {
  struct pubres *p = arg;
  (void)ctx;
  p->n++;
  p->status = status;
}

static void pubsub(int is_unix) {
  struct harness h;
  svc_server_t *srv;
  struct events a = {0}, b = {0}, c = {0}, d = {0};
  struct pubres p1 = {0}, p2 = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = ready_cb};
  svc_pub_opts_t q1 = {.qos = 1};
  svc_pub_opts_t retain = {.qos = 1, .retain = 1};
  svc_sub_t *sa, *sb, *sc, *sd;

  harness_start(&h);
  srv = serve(&h, is_unix);
  /* A retained message is there before anyone subscribes. */
  cr_assert_eq(svc_server_publish(srv, "orders/last", svc_msg_new_str("r"),
                                  &retain, NULL, NULL),
               0);
  cr_assert_eq(
      svc_subscribe(h.ctx, at(srv, "orders/+"), &so, event_cb, &a, &sa), 0);
  cr_assert_eq(
      svc_subscribe(h.ctx, at(srv, "orders/#"), &so, event_cb, &b, &sb), 0);
  cr_assert_eq(
      svc_subscribe(h.ctx, at(srv, "payments/#"), &so, event_cb, &c, &sc), 0);
  /* A filter naming one topic: its events come bare, without the topic. */
  cr_assert_eq(
      svc_subscribe(h.ctx, at(srv, "orders/placed"), &so, event_cb, &d, &sd),
      0);
  while (!a.ready || !b.ready || !c.ready || !d.ready || a.n < 1 || b.n < 1)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_str_eq(a.last, "r");
  cr_assert_str_eq(a.topic, "orders/last");
  /* A client's publish and the server's own both reach every match. */
  cr_assert_eq(svc_publish(h.ctx, at(srv, "orders/placed"),
                           svc_msg_new_str("o1"), &q1, pub_cb, &p1),
               0);
  harness_run_until(&h, &p1.n);
  cr_assert_eq(p1.status, 0);
  cr_assert_eq(svc_server_publish(srv, "orders/eu/placed",
                                  svc_msg_new_str("o2"), &q1, pub_cb, &p2),
               0);
  while (a.n < 2 || b.n < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(a.n, 2); /* '+' is one level: not orders/eu/placed. */
  cr_assert_str_eq(a.last, "o1");
  cr_assert_str_eq(b.last, "o2");
  cr_assert_str_eq(b.topic, "orders/eu/placed");
  cr_assert_eq(c.n, 0);
  cr_assert_eq(d.n, 1);
  cr_assert_str_eq(d.last, "o1");
  cr_assert_str_eq(d.topic, "orders/placed");
  svc_unsubscribe(sa);
  svc_unsubscribe(sb);
  svc_unsubscribe(sc);
  svc_unsubscribe(sd);
  harness_finish(&h);
}

Test(tcp_verbs, pubsub_wildcards_retained_and_server_publish_tcp) {
  pubsub(0);
}
Test(tcp_verbs, pubsub_wildcards_retained_and_server_publish_unix) {
  pubsub(1);
}

/* ---- Streams: echo with flow control in both directions. */

static void echo_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  size_t len;
  const void *b = svc_msg_body(msg, &len);
  (void)arg;
  svc_stream_write(s, svc_msg_new(b, len), NULL, NULL);
}
static void echo_on_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}
static void echo_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {.on_data = echo_on_data, .on_end = echo_on_end};
  svc_stream_opts_t so = {.window = 4096};
  (void)srv;
  (void)arg;
  cr_assert_str_eq(svc_stream_header(s, "x-who"), "me");
  svc_stream_accept(s, &so, &cbs, NULL);
}

struct sres {
  size_t bytes;
  int ended;
  int closed;
  int status;
  size_t sent;
  svc_stream_t *s;
};

static void c_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct sres *r = arg;
  (void)s;
  r->bytes += svc_msg_len(msg);
}
static void c_on_end(svc_stream_t *s, void *arg) {
  struct sres *r = arg;
  (void)s;
  r->ended = 1;
}
static void c_on_close(svc_stream_t *s, int status, void *arg) {
  struct sres *r = arg;
  (void)s;
  r->closed = 1;
  r->status = status;
}
static void c_pump(svc_stream_t *s, void *arg);
static void c_on_writable(svc_stream_t *s, void *arg) {
  c_pump(s, arg);
}

#define CHUNK 1000
#define TOTAL (400 * CHUNK)
static void c_pump(svc_stream_t *s, void *arg) {
  struct sres *r = arg;
  static char buf[CHUNK];
  while (r->sent < TOTAL) {
    svc_msg_t *m = svc_msg_new(buf, CHUNK);
    int rc = svc_stream_write(s, m, NULL, NULL);
    if (rc == SVC_EAGAIN) {
      svc_msg_free(m);
      return;
    }
    cr_assert_eq(rc, 0);
    r->sent += CHUNK;
  }
  svc_stream_end(s);
}

static void stream_echo(int is_unix) {
  struct harness h;
  svc_server_t *srv;
  struct sres r = {0};
  svc_stream_cbs_t cbs = {.on_data = c_on_data,
                          .on_end = c_on_end,
                          .on_writable = c_on_writable,
                          .on_close = c_on_close};
  const char *hdrs[] = {"x-who", "me"};
  svc_stream_opts_t so = {
      .window = 8192, .send_buffer = 16384, .headers = hdrs, .nheaders = 1};

  harness_start(&h);
  srv = serve(&h, is_unix);
  cr_assert_eq(svc_server_stream_route(srv, "echo", echo_accept, NULL), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "echo"), &so, &cbs, &r, &r.s), 0);
  c_pump(r.s, &r);
  harness_run_until(&h, &r.closed);
  cr_assert_eq(r.status, 0);
  cr_assert(r.ended);
  cr_assert_eq(r.bytes, TOTAL);
  harness_finish(&h);
}

Test(tcp_verbs, stream_echo_with_small_windows_tcp) {
  stream_echo(0);
}
Test(tcp_verbs, stream_echo_with_small_windows_unix) {
  stream_echo(1);
}

Test(tcp_verbs, stream_without_route_is_refused) {
  struct harness h;
  svc_server_t *srv;
  struct sres r = {0};
  svc_stream_cbs_t cbs = {.on_close = c_on_close};

  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "nowhere"), NULL, &cbs, &r, &r.s), 0);
  harness_run_until(&h, &r.closed);
  cr_assert_eq(r.status, SVC_ECONNREFUSED);
  harness_finish(&h);
}

/* ---- Flow control with a slow reader: a paused acceptor stops the
 * writer at its window plus the writer's send buffer; nothing piles up. */

static svc_stream_t *slow_side;
static size_t slow_got;

static void slow_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)s;
  (void)arg;
  slow_got += svc_msg_len(msg);
}
static void slow_on_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}
static void slow_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {.on_data = slow_on_data, .on_end = slow_on_end};
  svc_stream_opts_t so = {.window = 8192};
  (void)srv;
  (void)arg;
  slow_side = s;
  svc_stream_accept(s, &so, &cbs, NULL);
  svc_stream_pause(s);
}

static void wait_flag(void *arg) {
  *(int *)arg = 1;
}

Test(tcp_verbs, slow_reader_holds_the_writer_back) {
  struct harness h;
  svc_server_t *srv;
  struct sres r = {0};
  svc_stream_cbs_t cbs = {.on_data = c_on_data,
                          .on_end = c_on_end,
                          .on_writable = c_on_writable,
                          .on_close = c_on_close};
  svc_stream_opts_t so = {.send_buffer = 16384};
  int later = 0;

  slow_side = NULL;
  slow_got = 0;
  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_server_stream_route(srv, "slow", slow_accept, NULL), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "slow"), &so, &cbs, &r, &r.s), 0);
  c_pump(r.s, &r);
  while (slow_side == NULL)
    uv_run(&h.loop, UV_RUN_ONCE);
  run_later(&h.loop, 200, wait_flag, &later);
  harness_run_until(&h, &later);
  cr_assert_eq(slow_got, 0);
  /* Sent at most the reader's window plus what the writer may queue. */
  cr_assert(r.sent <= 8192 + 16384 + CHUNK, "sent %zu while paused", r.sent);
  cr_assert(svc_stream_queued_bytes(r.s) <= 16384 + CHUNK);
  svc_stream_resume(slow_side);
  harness_run_until(&h, &r.closed);
  cr_assert_eq(r.status, 0);
  cr_assert_eq(slow_got, TOTAL);
  harness_finish(&h);
}

/* ---- Large bodies: read straight into their message, byte for byte. */

struct bigres {
  int calls;
  svc_status_t status;
  size_t len;
  int same;
};
static unsigned char *big_body;
#define BIG_LEN (3u * 1024 * 1024 + 7)

static void big_cb(svc_call_t *call, svc_status_t status,
                   const svc_msg_t *reply, void *arg) {
  struct bigres *r = arg;
  (void)call;
  r->calls++;
  r->status = status;
  if (reply != NULL) {
    size_t len;
    const void *b = svc_msg_body(reply, &len);
    r->len = len;
    r->same = len == BIG_LEN && memcmp(b, big_body, len) == 0;
  }
}

Test(tcp_verbs, large_bodies_arrive_intact) {
  struct harness h;
  svc_server_t *srv;
  struct bigres r[3];
  size_t i;

  memset(r, 0, sizeof(r));
  big_body = malloc(BIG_LEN);
  for (i = 0; i < BIG_LEN; i++)
    big_body[i] = (unsigned char)(i * 2654435761u >> 13);
  harness_start(&h);
  srv = serve(&h, 0);
  /* Three at once, so large frames interleave with each other's pieces. */
  for (i = 0; i < 3; i++)
    cr_assert_eq(svc_call(h.ctx, at(srv, "echo"),
                          svc_msg_new(big_body, BIG_LEN), NULL, big_cb, &r[i],
                          NULL),
                 0);
  while (!r[0].calls || !r[1].calls || !r[2].calls)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(r[i].status, SVC_STATUS_OK);
    cr_assert(r[i].same, "reply %zu differs (len %zu)", i, r[i].len);
  }
  harness_finish(&h);
  free(big_body);
}

/* ---- Fan-out over several connections: one event encoded once for all
 * subscribers must reach each with its own subscription, intact. */

struct fan {
  int n;
  int bad;
  int ready;
};
static void fan_event(svc_sub_t *sub, int status, const svc_msg_t *msg,
                      void *arg) {
  struct fan *f = arg;
  char want[32];
  (void)sub;
  (void)status;
  if (msg == NULL)
    return;
  snprintf(want, sizeof(want), "event-%d", f->n);
  if (!body_is(msg, want) || strcmp(svc_msg_topic(msg), "fan/out") != 0 ||
      svc_msg_header_get(msg, "x-n") == NULL)
    f->bad++;
  f->n++;
}
static void fan_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ((struct fan *)arg)->ready = 1;
}

Test(tcp_verbs, fan_out_to_many_connections) {
  struct harness h;
  svc_server_t *srv;
  svc_ctx_t *ctx[3];
  struct fan f[4];
  svc_sub_opts_t so = {.qos = 1, .on_ready = fan_ready};
  svc_pub_opts_t q1 = {.qos = 1};
  int i;
  int done = 0;

  memset(f, 0, sizeof(f));
  harness_start(&h);
  srv = serve(&h, 0);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(svc_ctx_init(&h.loop, NULL, &ctx[i]), 0);
    so.on_ready = fan_ready;
    cr_assert_eq(
        svc_subscribe(ctx[i], at(srv, "fan/#"), &so, fan_event, &f[i], NULL),
        0);
  }
  /* A fourth, QoS 0, on the first connection: other flags, own bytes. */
  so.qos = 0;
  cr_assert_eq(
      svc_subscribe(ctx[0], at(srv, "fan/out"), &so, fan_event, &f[3], NULL),
      0);
  while (!f[0].ready || !f[1].ready || !f[2].ready || !f[3].ready)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 0; i < 100; i++) {
    char body[32];
    char n[16];
    svc_msg_t *m;
    snprintf(body, sizeof(body), "event-%d", i);
    snprintf(n, sizeof(n), "%d", i);
    m = svc_msg_new_str(body);
    svc_msg_header_add(m, "x-n", n);
    cr_assert_eq(svc_server_publish(srv, "fan/out", m, &q1, NULL, NULL), 0);
  }
  while (!done) {
    uv_run(&h.loop, UV_RUN_ONCE);
    done = f[0].n == 100 && f[1].n == 100 && f[2].n == 100 && f[3].n == 100;
  }
  for (i = 0; i < 4; i++)
    cr_assert_eq(f[i].bad, 0, "subscriber %d got %d wrong events", i, f[i].bad);
  for (i = 0; i < 3; i++)
    svc_ctx_close(ctx[i], NULL, NULL);
  harness_finish(&h);
}

/* ---- Events reach the application at the end of each socket read, inside
 * libuv's read loop (tcp_wire.c): a subscriber that unsubscribes or closes
 * its context there stops the delivery at once, and the rest of the read's
 * events are freed, not delivered. */

struct stopper {
  int n;
  int ready;
  int finals;
  svc_ctx_t *close_ctx; /* NULL: unsubscribe instead. */
};

static void stopper_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ((struct stopper *)arg)->ready = 1;
}

static void stopper_cb(svc_sub_t *sub, int status, const svc_msg_t *msg,
                       void *arg) {
  struct stopper *s = arg;
  (void)status;
  if (msg == NULL) {
    s->finals++;
    return;
  }
  if (++s->n != 10)
    return;
  if (s->close_ctx != NULL)
    svc_ctx_close(s->close_ctx, NULL, NULL);
  else
    svc_unsubscribe(sub);
}

static void stop_mid_read(int close_ctx) {
  struct harness h;
  svc_server_t *srv;
  svc_ctx_t *client;
  struct stopper s = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = stopper_ready};
  svc_pub_opts_t q1 = {.qos = 1};
  int i;

  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &client), 0);
  s.close_ctx = close_ctx ? client : NULL;
  cr_assert_eq(
      svc_subscribe(client, at(srv, "flood/x"), &so, stopper_cb, &s, NULL), 0);
  harness_run_until(&h, &s.ready);
  /* Published in one turn: one gathered write, read in one go. */
  for (i = 0; i < 500; i++)
    cr_assert_eq(svc_server_publish(srv, "flood/x", svc_msg_new_str("event"),
                                    &q1, NULL, NULL),
                 0);
  harness_run_until(&h, &s.finals);
  for (i = 0; i < 20; i++)
    uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(s.n, 10);
  cr_assert_eq(s.finals, 1);
  if (!close_ctx)
    svc_ctx_close(client, NULL, NULL);
  harness_finish(&h);
}

Test(tcp_verbs, unsubscribe_in_the_middle_of_a_read) {
  stop_mid_read(0);
}

Test(tcp_verbs, context_closed_in_the_middle_of_a_read) {
  stop_mid_read(1);
}

/* ---- Many calls at once: more than the server's max_streams (1024 by
 * default) wait in the client and all complete, each with its own reply. */

#define MANY 3000
static int many_done;
static int many_bad;

static void many_cb(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  char want[16];
  (void)call;
  snprintf(want, sizeof(want), "%d", (int)(intptr_t)arg);
  if (status != SVC_STATUS_OK || !body_is(reply, want))
    many_bad++;
  many_done++;
}

Test(tcp_verbs, thousands_of_concurrent_calls) {
  struct harness h;
  svc_server_t *srv;
  int i;

  many_done = many_bad = 0;
  harness_start(&h);
  srv = serve(&h, 0);
  for (i = 0; i < MANY; i++) {
    char body[16];
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(svc_call(h.ctx, at(srv, "echo"), svc_msg_new_str(body), NULL,
                          many_cb, (void *)(intptr_t)i, NULL),
                 0);
  }
  while (many_done < MANY)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(many_bad, 0);
  harness_finish(&h);
}

/* ---- Closing a context with calls, a stream and a subscription open on a
 * connection: everything ends (CANCELLED / a final callback), the server
 * sees the request cancelled, and nothing is left on the loop. */

Test(tcp_verbs, context_close_with_work_in_flight) {
  struct harness h;
  svc_server_t *srv;
  svc_ctx_t *client;
  struct result r = {0};
  struct events e = {0};
  struct sres sr = {0};
  svc_sub_opts_t so = {.on_ready = ready_cb};
  svc_stream_cbs_t cbs = {.on_close = c_on_close};

  parked = NULL;
  harness_start(&h);
  srv = serve(&h, 0);
  cr_assert_eq(svc_server_route(srv, NULL, "park", park_handler, NULL), 0);
  cr_assert_eq(svc_server_stream_route(srv, "echo", echo_accept, NULL), 0);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &client), 0);
  cr_assert_eq(
      svc_call(client, at(srv, "park"), NULL, NULL, cancelled_cb, &r, NULL),
      0);
  cr_assert_eq(svc_subscribe(client, at(srv, "a/#"), &so, event_cb, &e, NULL),
               0);
  while (parked == NULL || !e.ready)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(svc_stream(client, at(srv, "nowhere"), NULL, &cbs, &sr, &sr.s),
               0);
  svc_ctx_close(client, NULL, NULL);
  while (!r.calls || !e.ended || !sr.closed)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(r.status, SVC_STATUS_CANCELLED);
  while (!svc_request_cancelled(parked))
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(svc_request_reply(parked, SVC_STATUS_OK, NULL), SVC_ECANCELED);
  harness_finish(&h);
}

/* ---- Gathered writes: frames queued in one loop turn leave in one write,
 * not one system call per frame. Counted with the kernel's per-process
 * write-call counter (/proc/self/io, syscw). */

static long long write_calls(void) {
  FILE *f = fopen("/proc/self/io", "r");
  char key[32];
  long long v;
  long long found = -1;

  if (f == NULL)
    return -1;
  while (fscanf(f, "%31[^:]: %lld\n", key, &v) == 2)
    if (strcmp(key, "syscw") == 0)
      found = v;
  fclose(f);
  return found;
}

Test(tcp_verbs, one_write_per_loop_turn) {
  struct harness h;
  svc_server_t *srv;
  struct result warm = {0};
  long long before;
  long long used;
  int i;

  harness_start(&h);
  srv = serve(&h, 0);
  /* Connected first: the handshake's own writes are not counted. */
  cr_assert_eq(svc_call(h.ctx, at(srv, "echo"), svc_msg_new_str("w"), NULL,
                        record_cb, &warm, NULL),
               0);
  harness_run_until(&h, &warm.calls);
  before = write_calls();
  if (before < 0)
    cr_skip_test("no /proc/self/io here");
  many_done = many_bad = 0;
  for (i = 0; i < 200; i++) {
    char body[16];
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(svc_call(h.ctx, at(srv, "echo"), svc_msg_new_str(body), NULL,
                          many_cb, (void *)(intptr_t)i, NULL),
                 0);
  }
  while (many_done < 200)
    uv_run(&h.loop, UV_RUN_ONCE);
  used = write_calls() - before;
  cr_assert_eq(many_bad, 0);
  /* 200 requests and 200 replies: a handful of writes, not 400. */
  cr_assert(used <= 20, "%lld write calls for 400 frames", used);
  harness_finish(&h);
}

/* ---- Bulk stream data: a batch of large bodies is written once it holds
 * 256 KiB, before the loop turn ends, while more is queued behind it (the
 * whole 2 MiB reach the wire in one turn here). The bytes arrive whole and
 * in order, the last writes included. */

#define BULK_CHUNK (64 * 1024)
#define BULK_CHUNKS 32

struct bulk {
  size_t got;
  int bad;
  int ended;
  int closed;
  int status;
};

static unsigned char bulk_byte(size_t at) {
  return (unsigned char)(at % 251);
}

static void bulk_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct bulk *b = arg;
  size_t len;
  const unsigned char *p = svc_msg_body(msg, &len);
  size_t i;

  (void)s;
  for (i = 0; i < len; i++)
    if (p[i] != bulk_byte(b->got + i))
      b->bad++;
  b->got += len;
}
static void bulk_on_end(svc_stream_t *s, void *arg) {
  ((struct bulk *)arg)->ended = 1;
  svc_stream_end(s);
}
static void bulk_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {.on_data = bulk_on_data, .on_end = bulk_on_end};
  /* Room for everything at once: the whole 2 MiB reach the wire in one
   * turn, when the stream opens. */
  svc_stream_opts_t so = {.window = 4u << 20};

  (void)srv;
  svc_stream_accept(s, &so, &cbs, arg);
}
static void bulk_on_close(svc_stream_t *s, int status, void *arg) {
  struct bulk *b = arg;
  (void)s;
  b->closed = 1;
  b->status = status;
}

static void bulk_stream(int is_unix) {
  struct harness h;
  svc_server_t *srv;
  struct bulk got = {0};
  struct bulk sent = {0};
  svc_stream_cbs_t cbs = {.on_close = bulk_on_close};
  svc_stream_opts_t so = {.send_buffer = 4u << 20};
  svc_stream_t *s;
  unsigned char *chunk = malloc(BULK_CHUNK);
  size_t i;
  size_t j;

  harness_start(&h);
  srv = serve(&h, is_unix);
  cr_assert_eq(svc_server_stream_route(srv, "bulk", bulk_accept, &got), 0);
  cr_assert_eq(svc_stream(h.ctx, at(srv, "bulk"), &so, &cbs, &sent, &s), 0);
  for (i = 0; i < BULK_CHUNKS; i++) {
    for (j = 0; j < BULK_CHUNK; j++)
      chunk[j] = bulk_byte(i * BULK_CHUNK + j);
    cr_assert_eq(svc_stream_write(s, svc_msg_new(chunk, BULK_CHUNK), NULL,
                                  NULL),
                 0, "write %zu", i);
  }
  cr_assert_eq(svc_stream_end(s), 0);
  harness_run_until(&h, &sent.closed);
  cr_assert_eq(sent.status, 0);
  cr_assert(got.ended);
  cr_assert_eq(got.got, (size_t)BULK_CHUNK * BULK_CHUNKS);
  cr_assert_eq(got.bad, 0);
  harness_finish(&h);
  free(chunk);
}

Test(tcp_verbs, bulk_stream_data_arrives_whole_tcp) {
  bulk_stream(0);
}
Test(tcp_verbs, bulk_stream_data_arrives_whole_unix) {
  bulk_stream(1);
}
