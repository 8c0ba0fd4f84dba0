/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* A publisher's own bounded queues: tcp:// publishes that wait, unencoded,
 * while the connection's output is over max_outbound and go out in order
 * once it drains; each overflow= policy when max_pending_publishes already
 * wait; the publisher watermark (svc_ctx_set_pub_watermark()) on tcp://
 * and inproc://. The tcp peer is played by hand: it sends HELLO, reads
 * only when told to, and records the bodies of the PUBLISH frames it got,
 * in order. */
#include "harness.h"

#include <stdio.h>
#include <sys/socket.h>

TestSuite(pub_overflow, .timeout = 20);

/* ---- A hand-played server. */

#define PEER_MAX_PUBS 64

struct peer {
  uv_tcp_t listener;
  uv_tcp_t conn;
  int port;
  int accepted;
  int reading;
  int conn_closed;
  int listener_closed;
  /* The frame being read: its header, then the first bytes of its
   * payload (the header block and the start of the body). */
  unsigned char head[12];
  size_t head_len;
  unsigned char pay[256];
  size_t pay_len;
  uint32_t left; /* Payload bytes of the current frame still to come. */
  int npubs;
  char bodies[PEER_MAX_PUBS][16];
  unsigned char buf[65536];
};

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

/* The body of a PUBLISH up to its first ':' (or whole, when short). */
static void peer_frame_done(struct peer *p) {
  uint32_t block;
  size_t off;
  size_t n = 0;
  char *out;

  if (p->head[1] != 0x0e || p->pay_len < 4)
    return;
  cr_assert_lt(p->npubs, PEER_MAX_PUBS);
  out = p->bodies[p->npubs++];
  block = get_u32(p->pay);
  for (off = 4 + block; off < p->pay_len && p->pay[off] != ':' && n < 15; off++)
    out[n++] = (char)p->pay[off];
  out[n] = '\0';
}

static void peer_feed(struct peer *p, const unsigned char *b, size_t n) {
  while (n > 0) {
    if (p->head_len < 12) {
      size_t k = 12 - p->head_len < n ? 12 - p->head_len : n;
      memcpy(p->head + p->head_len, b, k);
      p->head_len += k;
      b += k;
      n -= k;
      if (p->head_len == 12) {
        p->left = get_u32(p->head + 8);
        p->pay_len = 0;
      }
    } else {
      size_t k = p->left < n ? p->left : n;
      size_t keep = sizeof(p->pay) - p->pay_len;
      memcpy(p->pay + p->pay_len, b, keep < k ? keep : k);
      p->pay_len += keep < k ? keep : k;
      p->left -= (uint32_t)k;
      b += k;
      n -= k;
    }
    if (p->head_len == 12 && p->left == 0) {
      peer_frame_done(p);
      p->head_len = 0;
    }
  }
}

static void peer_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  struct peer *p = h->data;
  (void)size;
  *buf = uv_buf_init((char *)p->buf, sizeof(p->buf));
}

static void peer_conn_closed(uv_handle_t *h) {
  ((struct peer *)h->data)->conn_closed = 1;
}

static void peer_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct peer *p = s->data;
  if (n > 0)
    peer_feed(p, (const unsigned char *)buf->base, (size_t)n);
  else if (n < 0 && !uv_is_closing((uv_handle_t *)&p->conn))
    uv_close((uv_handle_t *)&p->conn, peer_conn_closed);
}

static void peer_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

/* HELLO: max_frame 16 MiB, max_header_block 64 KiB, max_headers 256,
 * max_streams 1024 (docs/protocol.md). */
static void peer_hello(struct peer *p) {
  static const unsigned char hello[] = {
      1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16,       /* header */
      1, 0,    0, 0, 0, 1, 0, 0, 0, 0, 1, 0,  0, 0, /* limits */
      4, 0};
  uv_write_t *w = malloc(sizeof(*w));
  uv_buf_t b = uv_buf_init((char *)hello, sizeof(hello));

  cr_assert_eq(uv_write(w, (uv_stream_t *)&p->conn, &b, 1, peer_written), 0);
}

static void peer_set_reading(struct peer *p, int on) {
  p->reading = on;
  if (!p->accepted)
    return;
  if (on)
    uv_read_start((uv_stream_t *)&p->conn, peer_alloc, peer_read);
  else
    uv_read_stop((uv_stream_t *)&p->conn);
}

static void peer_accept(uv_stream_t *l, int status) {
  struct peer *p = l->data;

  cr_assert_eq(status, 0);
  cr_assert_eq(p->accepted, 0, "one connection only");
  uv_tcp_init(l->loop, &p->conn);
  p->conn.data = p;
  cr_assert_eq(uv_accept(l, (uv_stream_t *)&p->conn), 0);
  p->accepted = 1;
  peer_hello(p);
  peer_set_reading(p, p->reading);
}

/* Listens on 127.0.0.1, port 0. A small receive buffer (inherited by the
 * accepted socket) fills soon when the peer does not read. */
static void peer_start(uv_loop_t *loop, struct peer *p, int reading) {
  struct sockaddr_in sa;
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  int rcvbuf = 65536;
  uv_os_fd_t fd;

  memset(p, 0, sizeof(*p));
  p->reading = reading;
  uv_tcp_init(loop, &p->listener);
  p->listener.data = p;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  cr_assert_eq(uv_tcp_bind(&p->listener, (struct sockaddr *)&sa, 0), 0);
  cr_assert_eq(uv_fileno((uv_handle_t *)&p->listener, &fd), 0);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  cr_assert_eq(uv_listen((uv_stream_t *)&p->listener, 4, peer_accept), 0);
  uv_tcp_getsockname(&p->listener, (struct sockaddr *)&bound, &len);
  p->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

static void peer_listener_closed(uv_handle_t *h) {
  ((struct peer *)h->data)->listener_closed = 1;
}

static void peer_stop(struct harness *h, struct peer *p) {
  if (p->accepted && !uv_is_closing((uv_handle_t *)&p->conn))
    uv_close((uv_handle_t *)&p->conn, peer_conn_closed);
  uv_close((uv_handle_t *)&p->listener, peer_listener_closed);
  harness_run_until(h, &p->listener_closed);
  if (p->accepted)
    harness_run_until(h, &p->conn_closed);
}

/* ---- The publisher's side. */

struct report {
  int n;
  svc_delivery_t d;
};

static void on_report(svc_ctx_t *ctx, const svc_delivery_t *d, void *arg) {
  struct report *r = arg;
  (void)ctx;
  r->n++;
  r->d = *d;
}

struct marks {
  int n;
  int high[8];
  size_t depth[8];
  char endpoint[8][64];
};

static void on_mark(svc_ctx_t *ctx, const char *endpoint, size_t depth,
                    int high, void *arg) {
  struct marks *m = arg;
  (void)ctx;
  if (m->n < 8) {
    m->high[m->n] = high;
    m->depth[m->n] = depth;
    snprintf(m->endpoint[m->n], sizeof(m->endpoint[0]), "%s", endpoint);
  }
  m->n++;
}

static void flag_cb(void *arg) {
  *(int *)arg = 1;
}

static void wait_ms(struct harness *h, uint64_t ms) {
  int done = 0;
  run_later(&h->loop, ms, flag_cb, &done);
  harness_run_until(h, &done);
}

static void run_until_n(struct harness *h, const int *n, int want) {
  uv_ref((uv_handle_t *)&h->watchdog);
  while (*n < want)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_unref((uv_handle_t *)&h->watchdog);
}

/* A message whose body starts with "<tag>:" followed by pad bytes. */
static svc_msg_t *tagged(const char *tag, size_t pad) {
  size_t n = strlen(tag) + 1 + pad;
  char *b = malloc(n);
  svc_msg_t *m;

  memcpy(b, tag, strlen(tag));
  b[strlen(tag)] = ':';
  memset(b + strlen(tag) + 1, 'x', pad);
  m = svc_msg_new(b, n);
  free(b);
  cr_assert_not_null(m);
  return m;
}

static uint64_t dropped(struct harness *h, const char *uri,
                        svc_drop_reason_t reason) {
  svc_metrics_t m;
  cr_assert_eq(svc_metrics_get(h->ctx, uri, SVC_ROLE_CLIENT, &m), 0);
  return m.pubs_dropped[reason];
}

/* ---- Publishes wait while the output is over max_outbound. */

Test(pub_overflow, publishes_wait_for_a_slow_peer_and_arrive_in_order) {
  enum { N = 16, BODY = 1 << 20 };
  struct harness h;
  struct peer *p = malloc(sizeof(*p));
  static struct report r[N];
  char uri[128];
  char tag[16];
  int written = 0;
  int i;

  memset(r, 0, sizeof(r));
  harness_start(&h);
  peer_start(&h.loop, p, 0); /* Never reads until told. */
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/t?max_outbound=65536",
           p->port);
  /* 16 MiB for a peer that does not read: far more than the socket
   * buffers and max_outbound hold, and nothing is refused. */
  for (i = 0; i < N; i++) {
    snprintf(tag, sizeof(tag), "%d", i);
    cr_assert_eq(svc_publish_report(h.ctx, uri, tagged(tag, BODY), NULL,
                                    on_report, &r[i]),
                 0, "publish %d refused", i);
  }
  wait_ms(&h, 300);
  for (i = 0; i < N; i++)
    written += r[i].n;
  cr_assert_lt(written, N, "all %d written to a peer that reads nothing",
               written);
  cr_assert_gt(written, 0, "the connection was never made");
  /* The peer reads: the rest go out, in publishing order. */
  peer_set_reading(p, 1);
  run_until_n(&h, &r[N - 1].n, 1);
  for (i = 0; i < N; i++) {
    cr_assert_eq(r[i].n, 1, "publish %d", i);
    cr_assert_eq(r[i].d.state, SVC_DELIVERY_WRITTEN, "publish %d", i);
  }
  run_until_n(&h, &p->npubs, N);
  for (i = 0; i < N; i++) {
    snprintf(tag, sizeof(tag), "%d", i);
    cr_assert_str_eq(p->bodies[i], tag, "frame %d out of order", i);
  }
  cr_assert_eq(dropped(&h, uri, SVC_DROP_OVERFLOW), 0);
  peer_stop(&h, p);
  free(p);
  harness_finish(&h);
}

/* ---- The overflow policies. max_outbound=1 keeps the output over its
 * bound from the first frame until the socket has taken it, so in one
 * loop turn the first publish is written and the next ones wait: with
 * max_pending_publishes = 2, a fourth finds the queue full. */

struct burst {
  struct harness h;
  struct peer peer;
  struct marks marks;
  struct report warm;
  struct report r[4];
  char uri[160];
  char endpoint[64];
  int rc[4];
};

static void burst_start(struct burst *b, const char *query) {
  svc_ctx_opts_t co = {.max_pending_publishes = 2};
  int i;

  memset(b, 0, sizeof(*b));
  harness_start_opts(&b->h, &co);
  peer_start(&b->h.loop, &b->peer, 1);
  snprintf(b->uri, sizeof(b->uri), "tcp://127.0.0.1:%d/t?max_outbound=1%s",
           b->peer.port, query);
  snprintf(b->endpoint, sizeof(b->endpoint), "tcp://127.0.0.1:%d",
           b->peer.port);
  svc_ctx_set_pub_watermark(b->h.ctx, on_mark, &b->marks);
  /* Connected, and the first write done with. */
  cr_assert_eq(svc_publish_report(b->h.ctx, b->uri, tagged("w", 0), NULL,
                                  on_report, &b->warm),
               0);
  run_until_n(&b->h, &b->peer.npubs, 1);
  wait_ms(&b->h, 20);
  /* One loop turn: the first goes out, two wait, the fourth overflows. */
  for (i = 0; i < 4; i++) {
    char tag[4];
    svc_msg_t *m;
    snprintf(tag, sizeof(tag), "%d", i);
    m = tagged(tag, 0);
    b->rc[i] =
        svc_publish_report(b->h.ctx, b->uri, m, NULL, on_report, &b->r[i]);
    if (b->rc[i] != 0)
      svc_msg_free(m); /* Refused: the caller still owns it. */
  }
  cr_assert_eq(b->r[3].n, 0, "a report ran inside svc_publish_report()");
  cr_assert_eq(b->marks.n, 0, "the watermark ran inside svc_publish()");
  for (i = 0; i < 3; i++)
    cr_assert_eq(b->rc[i], 0, "publish %d refused (%s)", i,
                 svc_err_name(b->rc[i]));
}

/* What the peer got after the warm-up, as "0,1,2". */
static void burst_expect(struct burst *b, const char *want) {
  char got[64] = "";
  int i;

  for (i = 1; i < b->peer.npubs; i++) {
    if (i > 1)
      strcat(got, ",");
    strcat(got, b->peer.bodies[i]);
  }
  cr_assert_str_eq(got, want);
}

/* The watermark said high (the queue held 2) and then low. */
static void burst_marks(struct burst *b) {
  run_until_n(&b->h, &b->marks.n, 2);
  cr_assert_eq(b->marks.high[0], 1);
  cr_assert_eq(b->marks.depth[0], 2);
  cr_assert_str_eq(b->marks.endpoint[0], b->endpoint);
  cr_assert_eq(b->marks.high[1], 0);
  cr_assert_leq(b->marks.depth[1], 1);
}

static void burst_finish(struct burst *b) {
  wait_ms(&b->h, 20);
  cr_assert_eq(b->marks.n, 2, "watermark told %d times", b->marks.n);
  peer_stop(&b->h, &b->peer);
  harness_finish(&b->h);
}

static void fail_new_case(const char *query) {
  struct burst *b = malloc(sizeof(*b));
  int i;

  burst_start(b, query);
  cr_assert_eq(b->rc[3], SVC_EAGAIN, "%s: %s", query, svc_err_name(b->rc[3]));
  run_until_n(&b->h, &b->r[2].n, 1);
  for (i = 0; i < 3; i++)
    cr_assert_eq(b->r[i].d.state, SVC_DELIVERY_WRITTEN, "publish %d", i);
  run_until_n(&b->h, &b->peer.npubs, 4);
  burst_expect(b, "0,1,2");
  burst_marks(b);
  cr_assert_eq(dropped(&b->h, b->uri, SVC_DROP_OVERFLOW), 0,
               "a refused publish was counted");
  burst_finish(b);
  free(b);
}

Test(pub_overflow, fail_new_refuses_with_eagain_and_keeps_the_rest) {
  fail_new_case("");
  fail_new_case("&overflow=fail_new");
}

Test(pub_overflow, drop_oldest_drops_the_oldest_waiting_one) {
  struct burst *b = malloc(sizeof(*b));

  burst_start(b, "&overflow=drop_oldest");
  cr_assert_eq(b->rc[3], 0);
  run_until_n(&b->h, &b->r[3].n, 1);
  cr_assert_eq(b->r[1].n, 1);
  cr_assert_eq(b->r[1].d.state, SVC_DELIVERY_DROPPED);
  cr_assert_eq(b->r[1].d.reason, SVC_DROP_OVERFLOW);
  cr_assert_eq(b->r[1].d.err, SVC_ENOBUFS);
  cr_assert_eq(b->r[0].d.state, SVC_DELIVERY_WRITTEN);
  cr_assert_eq(b->r[2].d.state, SVC_DELIVERY_WRITTEN);
  cr_assert_eq(b->r[3].d.state, SVC_DELIVERY_WRITTEN);
  run_until_n(&b->h, &b->peer.npubs, 4);
  burst_expect(b, "0,2,3");
  burst_marks(b);
  cr_assert_eq(dropped(&b->h, b->uri, SVC_DROP_OVERFLOW), 1);
  burst_finish(b);
  free(b);
}

Test(pub_overflow, drop_newest_accepts_and_reports_the_new_one_dropped) {
  struct burst *b = malloc(sizeof(*b));

  burst_start(b, "&overflow=drop_newest");
  cr_assert_eq(b->rc[3], 0, "drop_newest accepts the publish");
  run_until_n(&b->h, &b->r[3].n, 1);
  cr_assert_eq(b->r[3].d.state, SVC_DELIVERY_DROPPED);
  cr_assert_eq(b->r[3].d.reason, SVC_DROP_OVERFLOW);
  cr_assert_eq(b->r[3].d.err, SVC_ENOBUFS);
  run_until_n(&b->h, &b->r[2].n, 1);
  cr_assert_eq(b->r[1].d.state, SVC_DELIVERY_WRITTEN);
  cr_assert_eq(b->r[2].d.state, SVC_DELIVERY_WRITTEN);
  run_until_n(&b->h, &b->peer.npubs, 4);
  burst_expect(b, "0,1,2");
  burst_marks(b);
  cr_assert_eq(dropped(&b->h, b->uri, SVC_DROP_OVERFLOW), 1);
  burst_finish(b);
  free(b);
}

Test(pub_overflow, wait_refuses_until_the_watermark_says_low) {
  struct burst *b = malloc(sizeof(*b));
  struct report again = {0};

  burst_start(b, "&overflow=wait");
  cr_assert_eq(b->rc[3], SVC_EAGAIN);
  run_until_n(&b->h, &b->marks.n, 1);
  cr_assert_eq(b->marks.high[0], 1);
  burst_marks(b);
  /* Low: the producer goes on, and nothing was lost. */
  cr_assert_eq(svc_publish_report(b->h.ctx, b->uri, tagged("3", 0), NULL,
                                  on_report, &again),
               0);
  run_until_n(&b->h, &again.n, 1);
  cr_assert_eq(again.d.state, SVC_DELIVERY_WRITTEN);
  run_until_n(&b->h, &b->peer.npubs, 5);
  burst_expect(b, "0,1,2,3");
  cr_assert_eq(dropped(&b->h, b->uri, SVC_DROP_OVERFLOW), 0);
  burst_finish(b);
  free(b);
}

Test(pub_overflow, every_policy_name_is_taken_and_others_are_einval) {
  static const char *const names[] = {"fail_new", "drop_oldest", "drop_newest",
                                      "wait"};
  struct harness h;
  svc_msg_t *m = svc_msg_new_str("x");
  char uri[128];
  size_t i;

  harness_start(&h);
  /* One endpoint each: options are read when the connection is made.
   * Nothing listens there; the publishes end dropped (disconnect). */
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/t?overflow=%s", (int)i + 1,
             names[i]);
    cr_assert_eq(svc_publish(h.ctx, uri, NULL, NULL, NULL, NULL), 0, "%s",
                 names[i]);
  }
  cr_assert_eq(svc_publish(h.ctx, "tcp://127.0.0.1:5/t?overflow=sometimes", m,
                           NULL, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(
      svc_publish(h.ctx, "tcp://127.0.0.1:6/t?overflow=", m, NULL, NULL, NULL),
      SVC_EINVAL);
  svc_msg_free(m);
  harness_finish(&h);
}

/* ---- inproc://: QoS 1 publishes wait for room in a subscriber's queue,
 * max_pending_publishes of them; the next is refused and the watermark
 * says so, then says low once the subscriber has drained them. */

static void ignore_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                         void *arg) {
  (void)sub;
  (void)status;
  (void)ev;
  ++*(int *)arg;
}

Test(pub_overflow, inproc_refuses_and_tells_the_watermark) {
  struct harness h;
  svc_ctx_opts_t co = {.max_pending_publishes = 2};
  svc_sub_opts_t so = {.qos = 1, .max_queue = 1};
  svc_pub_opts_t q1 = {.qos = 1};
  struct marks marks = {0};
  int events = 0;
  svc_msg_t *m;
  int i;

  harness_start_opts(&h, &co);
  svc_ctx_set_pub_watermark(h.ctx, on_mark, &marks);
  cr_assert_eq(
      svc_subscribe(h.ctx, "inproc://o/t", &so, ignore_event, &events, NULL),
      0);
  /* The first fills the subscriber's queue, two wait, the fourth is
   * refused. */
  for (i = 0; i < 3; i++)
    cr_assert_eq(svc_publish(h.ctx, "inproc://o/t", NULL, &q1, NULL, NULL), 0);
  m = svc_msg_new_str("x");
  cr_assert_eq(svc_publish(h.ctx, "inproc://o/t", m, &q1, NULL, NULL),
               SVC_EAGAIN);
  svc_msg_free(m);
  cr_assert_eq(marks.n, 0, "the watermark ran inside svc_publish()");
  run_until_n(&h, &events, 3);
  run_until_n(&h, &marks.n, 2);
  cr_assert_eq(marks.high[0], 1);
  cr_assert_eq(marks.depth[0], 2);
  cr_assert_str_eq(marks.endpoint[0], "inproc://o");
  cr_assert_eq(marks.high[1], 0);
  cr_assert_leq(marks.depth[1], 1);
  cr_assert_eq(svc_publish(h.ctx, "inproc://o/t", NULL, &q1, NULL, NULL), 0);
  harness_finish(&h);
  cr_assert_eq(marks.n, 2);
}
