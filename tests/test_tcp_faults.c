/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* tcp:// when things go wrong: malformed input from a peer, a server that
 * dies or stops answering, reconnects and resubscriptions, graceful
 * shutdown, slow readers and the limits that protect the server. */
#include "tcp_peer.h"

struct result {
  int calls;
  svc_status_t status;
  int err;
  char body[64];
};

static void record_cb(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct result *r = arg;
  r->calls++;
  r->status = status;
  r->err = svc_call_errno(call);
  if (reply != NULL)
    snprintf(r->body, sizeof(r->body), "%.*s", (int)svc_msg_len(reply),
             (const char *)svc_msg_body(reply, NULL));
}

static void echo_handler(svc_request_t *req, void *arg) {
  size_t len;
  const void *b = svc_msg_body(svc_request_msg(req), &len);
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new(b, len));
}

static svc_request_t *parked[8];
static int nparked;
static void park_handler(svc_request_t *req, void *arg) {
  (void)arg;
  parked[nparked++] = req;
}

static svc_server_t *serve(struct harness *h, const char *uri) {
  svc_server_t *srv;
  nparked = 0;
  cr_assert_eq(svc_serve(h->ctx, uri, NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "echo", echo_handler, NULL), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "park", park_handler, NULL), 0);
  return srv;
}

static const char *at(svc_server_t *srv, const char *path) {
  static char buf[4][256];
  static int i;
  char *b = buf[i++ % 4];
  snprintf(b, 256, "%s/%s", svc_server_endpoint(srv), path);
  return b;
}

static void flag_cb(void *arg) {
  *(int *)arg = 1;
}

static void wait_ms(struct harness *h, uint64_t ms) {
  int done = 0;
  run_later(&h->loop, ms, flag_cb, &done);
  harness_run_until(h, &done);
}

/* ---- Malformed input: the offender gets GOAWAY(PROTOCOL) and is cut
 * off; everyone else is still served. */

enum bad {
  BAD_GARBAGE,
  BAD_NOT_HELLO_FIRST,
  BAD_TRUNCATED,
  BAD_OVERSIZED,
  BAD_TOO_MANY_HEADERS,
  BAD_UNKNOWN_TYPE,
  BAD_ID_NOT_OWNED,
  BAD_ID_REUSED,
  BAD_BLOCK_OVERRUN,
  BAD_COUNT
};

static void build_bad(struct rawbuf *r, enum bad kind) {
  static const char *const req[] = {":method", "CALL", ":path", "echo", NULL};
  int i;

  if (kind == BAD_GARBAGE) {
    rb_bytes(r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    return;
  }
  if (kind == BAD_NOT_HELLO_FIRST) {
    rb_block(r, 0x02, 0, 1, req, "x");
    return;
  }
  rb_hello(r);
  switch (kind) {
  case BAD_TRUNCATED:
    /* Half a frame, then the peer closes (raw_close after writing). */
    rb_header(r, 0x02, 0, 1, 100);
    rb_u32(r, 10);
    break;
  case BAD_OVERSIZED:
    rb_header(r, 0x02, 0, 1, 0x7fffffff);
    break;
  case BAD_TOO_MANY_HEADERS: {
    static const char *many[2 * 300 + 5];
    int n = 0;
    many[n++] = ":method";
    many[n++] = "CALL";
    many[n++] = ":path";
    many[n++] = "echo";
    for (i = 0; i < 300; i++) {
      many[n++] = "x-h";
      many[n++] = "v";
    }
    many[n] = NULL;
    rb_block(r, 0x02, 0, 1, many, NULL);
    break;
  }
  case BAD_UNKNOWN_TYPE:
    rb_header(r, 0x7e, 0, 1, 0);
    break;
  case BAD_ID_NOT_OWNED:
    rb_header(r, 0x07, 0, 5, 4); /* DATA on a stream never opened. */
    rb_u32(r, 0);
    break;
  case BAD_ID_REUSED:
    rb_block(r, 0x02, 0, 3, req, "a");
    rb_block(r, 0x02, 0, 3, req, "b");
    break;
  case BAD_BLOCK_OVERRUN:
    rb_header(r, 0x02, 0, 1, 8);
    rb_u32(r, 100); /* A block longer than the payload. */
    rb_u32(r, 0);
    break;
  default:
    break;
  }
}

Test(tcp_faults, malformed_input_closes_only_the_offender) {
  struct harness h;
  svc_server_t *srv;
  int kind;

  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0");
  for (kind = 0; kind < BAD_COUNT; kind++) {
    struct raw_peer *p = calloc(1, sizeof(*p));
    struct result r = {0};
    long off;
    build_bad(&p->out, (enum bad)kind);
    raw_start(&h.loop, p, endpoint_port(svc_server_endpoint(srv)), 1);
    if (kind == BAD_TRUNCATED) {
      while (!p->connected)
        uv_run(&h.loop, UV_RUN_ONCE);
      wait_ms(&h, 20);
      uv_shutdown_t *sd = calloc(1, sizeof(*sd));
      uv_shutdown(sd, (uv_stream_t *)&p->tcp, NULL);
      while (!p->eof)
        uv_run(&h.loop, UV_RUN_ONCE);
      free(sd);
    } else {
      harness_run_until(&h, &p->eof);
      off = raw_find(p, 0x13);
      cr_assert(off >= 0, "case %d: no GOAWAY", kind);
      cr_assert_eq(raw_u32(p, (size_t)off + 16), 1u,
                   "case %d: GOAWAY code is not PROTOCOL", kind);
      /* The server answered HELLO first (except to HTTP garbage, which
       * it still answered with its own HELLO on connect). */
      cr_assert_eq(p->in[1], 0x01, "case %d", kind);
    }
    harness_run_until(&h, &p->closed);
    free(p);
    /* Everyone else is still served. */
    cr_assert_eq(svc_call(h.ctx, at(srv, "echo"), svc_msg_new_str("ok"), NULL,
                          record_cb, &r, NULL),
                 0);
    harness_run_until(&h, &r.calls);
    cr_assert_eq(r.status, SVC_STATUS_OK, "case %d", kind);
    cr_assert_str_eq(r.body, "ok");
  }
  harness_finish(&h);
}

/* ---- A server that dies or hangs. */

Test(tcp_faults, server_killed_mid_call_fails_the_call) {
  struct harness h;
  struct result r = {0}, r2 = {0};
  int port;
  pid_t pid = spawn_server(0, &port);
  char uri[64];

  harness_start(&h);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/park", port);
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, record_cb, &r, NULL), 0);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/echo", port);
  cr_assert_eq(
      svc_call(h.ctx, uri, svc_msg_new_str("e"), NULL, record_cb, &r2, NULL),
      0);
  harness_run_until(&h, &r2.calls);
  cr_assert_eq(r2.status, SVC_STATUS_OK);
  kill_server(pid);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  cr_assert(r.err == SVC_ECONNRESET || r.err == SVC_EOF, "err %s",
            svc_err_name(r.err));
  harness_finish(&h);
}

Test(tcp_faults, keepalive_detects_a_hung_server) {
  struct harness h;
  struct result r = {0};
  int port;
  pid_t pid = spawn_server(0, &port);
  char uri[96];

  harness_start(&h);
  /* Connected and answering first, so that only keepalive can notice. */
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/echo?keepalive_ms=100",
           port);
  cr_assert_eq(svc_call(h.ctx, uri, svc_msg_new_str("e"), NULL, record_cb,
                        &r, NULL),
               0);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  memset(&r, 0, sizeof(r));
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/park", port);
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, record_cb, &r, NULL), 0);
  wait_ms(&h, 50);
  /* Stopped, not dead: the kernel keeps the socket open, only the
   * protocol's pings notice. */
  kill(pid, SIGSTOP);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(r.err, SVC_ETIMEDOUT);
  kill_server(pid);
  harness_finish(&h);
}

/* ---- Reconnect and resubscribe after the server restarts. */

struct events {
  int n;
  int ready;
};
static void event_cb(svc_sub_t *sub, int status, const svc_msg_t *msg,
                     void *arg) {
  struct events *e = arg;
  (void)sub;
  (void)status;
  if (msg != NULL)
    e->n++;
}
static void ready_cb(svc_sub_t *sub, void *arg) {
  ((struct events *)arg)->ready = 1;
  (void)sub;
}

Test(tcp_faults, reconnects_and_resubscribes_after_a_restart) {
  struct harness h;
  struct events e = {0};
  struct result r = {0}, r2 = {0};
  svc_sub_opts_t so = {.on_ready = ready_cb};
  svc_sub_t *sub;
  int port;
  int port2;
  pid_t pid = spawn_server(0, &port);
  char uri[128];
  int seen;

  harness_start(&h);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/ticks?reconnect_ms=20", port);
  cr_assert_eq(svc_subscribe(h.ctx, uri, &so, event_cb, &e, &sub), 0);
  while (e.n < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  kill_server(pid);
  /* While it is down, a call fails fast instead of hanging. */
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/echo", port);
  wait_ms(&h, 30);
  cr_assert_eq(
      svc_call(h.ctx, uri, svc_msg_new_str("x"), NULL, record_cb, &r, NULL), 0);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_UNAVAILABLE);
  /* The same port comes back; the subscription follows by itself. */
  pid = spawn_server(port, &port2);
  cr_assert_eq(port2, port);
  seen = e.n;
  while (e.n < seen + 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(
      svc_call(h.ctx, uri, svc_msg_new_str("y"), NULL, record_cb, &r2, NULL),
      0);
  harness_run_until(&h, &r2.calls);
  cr_assert_eq(r2.status, SVC_STATUS_OK);
  cr_assert_str_eq(r2.body, "y");
  svc_unsubscribe(sub);
  kill_server(pid);
  harness_finish(&h);
}

/* ---- Graceful shutdown: GOAWAY, finish what is in flight, then close. */

static void srv_closed_cb(svc_server_t *srv, void *arg) {
  (void)srv;
  *(int *)arg = 1;
}

Test(tcp_faults, goaway_finishes_in_flight_requests) {
  struct harness h;
  svc_server_t *srv;
  struct result r = {0}, r2 = {0};
  int closed = 0;
  char uri[128];

  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0");
  snprintf(uri, sizeof(uri), "%s", at(srv, "echo"));
  cr_assert_eq(svc_call(h.ctx, at(srv, "park"), svc_msg_new_str("p"), NULL,
                        record_cb, &r, NULL),
               0);
  while (nparked < 1)
    uv_run(&h.loop, UV_RUN_ONCE);
  svc_server_close(srv, srv_closed_cb, &closed);
  wait_ms(&h, 20);
  /* New work finds nobody listening... */
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, record_cb, &r2, NULL), 0);
  harness_run_until(&h, &r2.calls);
  cr_assert_eq(r2.status, SVC_STATUS_UNAVAILABLE);
  /* ...while the request in flight still gets its answer. */
  cr_assert_eq(closed, 0);
  cr_assert_eq(
      svc_request_reply(parked[0], SVC_STATUS_OK, svc_msg_new_str("late")), 0);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  cr_assert_str_eq(r.body, "late");
  harness_run_until(&h, &closed);
  harness_finish(&h);
}

/* ---- Negotiated limits: the client keeps to the server's max_streams. */

Test(tcp_faults, client_respects_max_streams) {
  struct harness h;
  svc_server_t *srv;
  struct result r[5];
  int i;
  int done;

  memset(r, 0, sizeof(r));
  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0?max_streams=2");
  for (i = 0; i < 5; i++)
    cr_assert_eq(
        svc_call(h.ctx, at(srv, "park"), NULL, NULL, record_cb, &r[i], NULL),
        0);
  while (nparked < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  wait_ms(&h, 50);
  cr_assert_eq(nparked, 2);
  while (nparked < 5) {
    int n = nparked;
    for (i = 0; i < n; i++)
      if (parked[i] != NULL) {
        svc_request_reply(parked[i], SVC_STATUS_OK, NULL);
        parked[i] = NULL;
      }
    wait_ms(&h, 20);
  }
  for (i = 0; i < nparked; i++)
    if (parked[i] != NULL)
      svc_request_reply(parked[i], SVC_STATUS_OK, NULL);
  do {
    uv_run(&h.loop, UV_RUN_ONCE);
    for (done = 1, i = 0; i < 5; i++)
      done &= r[i].calls == 1;
  } while (!done);
  for (i = 0; i < 5; i++)
    cr_assert_eq(r[i].status, SVC_STATUS_OK);
  harness_finish(&h);
}

/* ---- A slow subscriber cannot grow the server's memory. */

static void pub_cb(svc_ctx_t *ctx, int status, void *arg) {
  int *n = arg;
  (void)ctx;
  cr_assert_eq(status, 0);
  (*n)++;
}

/* Reads until the SUBACK is in, then never again: a subscriber that has
 * stopped reading. */
static void raw_until_suback(struct harness *h, struct raw_peer *p) {
  while (raw_find(p, 0x0c) < 0)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_read_stop((uv_stream_t *)&p->tcp);
}

Test(tcp_faults, slow_qos0_subscriber_drops_and_counts) {
  struct harness h;
  svc_server_t *srv;
  struct raw_peer *p = calloc(1, sizeof(*p));
  static const char *const sub[] = {":filter", "bulk/#", NULL};
  char body[1024];
  svc_metrics_t m;
  int i;

  memset(body, 'x', sizeof(body) - 1);
  body[sizeof(body) - 1] = '\0';
  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0?max_outbound=65536");
  rb_hello(&p->out);
  rb_block(&p->out, 0x0b, 0, 1, sub, NULL);
  /* A subscriber that never reads. */
  raw_start(&h.loop, p, endpoint_port(svc_server_endpoint(srv)), 1);
  raw_until_suback(&h, p);
  for (i = 0; i < 20000; i++) {
    cr_assert_eq(svc_server_publish(srv, "bulk/x", svc_msg_new_str(body), NULL,
                                    NULL, NULL),
                 0);
    if (i % 500 == 0)
      uv_run(&h.loop, UV_RUN_NOWAIT);
  }
  wait_ms(&h, 50);
  cr_assert_eq(
      svc_metrics_get(h.ctx, svc_server_endpoint(srv), SVC_ROLE_SERVER, &m), 0);
  /* 20 MB were published; the kernel buffers and 64 KiB of ours took a
   * small part, the rest was dropped and counted. */
  cr_assert(m.dropped > 10000, "dropped %llu", (unsigned long long)m.dropped);
  raw_close(p);
  harness_run_until(&h, &p->closed);
  free(p);
  harness_finish(&h);
}

Test(tcp_faults, slow_qos1_subscriber_paces_the_publisher) {
  struct harness h;
  svc_server_t *srv;
  struct raw_peer *p = calloc(1, sizeof(*p));
  static const char *const sub[] = {":filter", "bulk/#", NULL};
  static char body[32768];
  svc_pub_opts_t q1 = {.qos = 1};
  int acked = 0;
  int sent = 0;
  int i;

  memset(body, 'x', sizeof(body) - 1);
  body[sizeof(body) - 1] = '\0';
  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0?max_outbound=65536");
  rb_hello(&p->out);
  rb_block(&p->out, 0x0b, 1, 1, sub, NULL); /* QoS 1, never reads. */
  raw_start(&h.loop, p, endpoint_port(svc_server_endpoint(srv)), 1);
  raw_until_suback(&h, p);
  /* Up to 2000 x 32 KiB QoS 1 publishes from a client (the client's own
   * bound stops it at 1024, 32 MiB): far more than loopback's socket
   * buffers (a few MiB each way, autotuned: 4 KiB bodies, 4 MiB in all,
   * could fit in them) and our 64 KiB can hold for the stalled
   * subscriber. */
  for (i = 0; i < 2000; i++) {
    svc_msg_t *m = svc_msg_new_str(body);
    int rc = svc_publish(h.ctx, at(srv, "bulk/y"), m, &q1, pub_cb, &acked);
    if (rc == SVC_EAGAIN) {
      svc_msg_free(m); /* The client's own bound: the caller keeps it. */
      break;
    }
    cr_assert_eq(rc, 0);
    sent++;
  }
  wait_ms(&h, 300);
  cr_assert(acked < sent, "all %d acknowledged to a stalled subscriber", sent);
  /* The subscriber goes away: everything waiting completes. */
  raw_close(p);
  while (acked < sent)
    uv_run(&h.loop, UV_RUN_ONCE);
  harness_run_until(&h, &p->closed);
  free(p);
  harness_finish(&h);
}

/* ---- A client that sends requests but never reads the answers is no
 * longer read once its answers fill max_outbound: the server's memory
 * stays bounded and everyone else is served. */

struct flood {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  struct rawbuf chunk;
  uint32_t next_id;
  int chunks;
  int closed;
};

static void flood_fill(struct flood *f) {
  static const char *const req[] = {":method", "CALL", ":path", "echo", NULL};
  static char body[1001];
  memset(body, 'b', 1000);
  f->chunk.n = 0;
  if (f->next_id == 1)
    rb_hello(&f->chunk);
  while (f->chunk.n + 1100 < sizeof(f->chunk.b))
    rb_block(&f->chunk, 0x02, 0, f->next_id++, req, body);
}

static void flood_write(struct flood *f);
static void flood_written(uv_write_t *w, int status) {
  struct flood *f = w->data;
  if (status == 0 && ++f->chunks < 2000)
    flood_write(f);
}
static void flood_write(struct flood *f) {
  uv_buf_t b;
  flood_fill(f);
  b = uv_buf_init((char *)f->chunk.b, (unsigned)f->chunk.n);
  f->wreq.data = f;
  uv_write(&f->wreq, (uv_stream_t *)&f->tcp, &b, 1, flood_written);
}
static void flood_connected(uv_connect_t *c, int status) {
  cr_assert_eq(status, 0);
  flood_write(c->data);
}
static void flood_closed(uv_handle_t *h) {
  ((struct flood *)h->data)->closed = 1;
}

Test(tcp_faults, client_that_never_reads_is_throttled) {
  struct harness h;
  svc_server_t *srv;
  struct flood *f = calloc(1, sizeof(*f));
  struct sockaddr_in sa;
  struct result r = {0};
  svc_metrics_t m1, m2;

  harness_start(&h);
  srv = serve(&h, "tcp://127.0.0.1:0?max_outbound=65536");
  f->next_id = 1;
  uv_ip4_addr("127.0.0.1", endpoint_port(svc_server_endpoint(srv)), &sa);
  uv_tcp_init(&h.loop, &f->tcp);
  f->tcp.data = f;
  f->creq.data = f;
  uv_tcp_connect(&f->creq, &f->tcp, (struct sockaddr *)&sa, flood_connected);
  wait_ms(&h, 300);
  cr_assert_eq(
      svc_metrics_get(h.ctx, svc_server_endpoint(srv), SVC_ROLE_SERVER, &m1),
      0);
  wait_ms(&h, 200);
  cr_assert_eq(
      svc_metrics_get(h.ctx, svc_server_endpoint(srv), SVC_ROLE_SERVER, &m2),
      0);
  /* It stopped: 2000 chunks of ~60 requests were offered, the server took
   * only what socket buffers and 64 KiB of answers allow. */
  cr_assert(f->chunks < 2000, "every chunk was written");
  cr_assert_eq(m1.calls, m2.calls, "still reading: %llu then %llu",
               (unsigned long long)m1.calls, (unsigned long long)m2.calls);
  cr_assert(m2.calls > 0);
  /* Everyone else is served meanwhile. */
  cr_assert_eq(svc_call(h.ctx, at(srv, "echo"), svc_msg_new_str("hi"), NULL,
                        record_cb, &r, NULL),
               0);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  uv_close((uv_handle_t *)&f->tcp, flood_closed);
  harness_run_until(&h, &f->closed);
  free(f);
  harness_finish(&h);
}

/* ---- An idempotent call with a retry policy survives a server restart:
 * the attempt on the dropped connection fails UNAVAILABLE and the core
 * tries again on a new connection. */

struct restart {
  pid_t pid;
  int port;
};
static void restart_server(void *arg) {
  struct restart *r = arg;
  int port;
  r->pid = spawn_server(r->port, &port);
  cr_assert_eq(port, r->port);
}

Test(tcp_faults, idempotent_call_is_retried_across_a_restart) {
  struct harness h;
  struct result r = {0};
  struct restart rs;
  svc_call_opts_t opts = {.idempotent = 1,
                          .timeout_ms = 5000,
                          .retry = {.max_attempts = 20,
                                    .initial_backoff_ms = 20,
                                    .max_backoff_ms = 50}};
  char uri[128];
  int restarted = 0;

  rs.pid = spawn_server(0, &rs.port);
  harness_start(&h);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/echo?reconnect_ms=10",
           rs.port);
  /* Connected and working first. */
  cr_assert_eq(
      svc_call(h.ctx, uri, svc_msg_new_str("a"), &opts, record_cb, &r, NULL),
      0);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_OK);
  kill_server(rs.pid);
  memset(&r, 0, sizeof(r));
  cr_assert_eq(
      svc_call(h.ctx, uri, svc_msg_new_str("b"), &opts, record_cb, &r, NULL),
      0);
  run_later(&h.loop, 150, restart_server, &rs);
  run_later(&h.loop, 160, flag_cb, &restarted);
  harness_run_until(&h, &r.calls);
  cr_assert_eq(r.status, SVC_STATUS_OK, "status %s err %s",
               svc_status_name(r.status), svc_err_name(r.err));
  cr_assert_str_eq(r.body, "b");
  harness_run_until(&h, &restarted);
  kill_server(rs.pid);
  harness_finish(&h);
}

/* ---- GOAWAY from the server's side of the wire: requests above last_id
 * were never handled, so the client sends them again on a new
 * connection. A hand-written server: the first connection answers id 1
 * only, after GOAWAY(last_id 1); the second answers everything. */

struct fake_conn {
  uv_tcp_t tcp;
  struct fake_srv *srv;
  int nth;
  unsigned char in[65536];
  size_t inlen;
  int answered_upto;
};

struct fake_srv {
  uv_tcp_t listener;
  int conns;
  int handled_on_second;
  int closed;
};

static void fake_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void fake_write(struct fake_conn *c, struct rawbuf *b) {
  uv_write_t *w = malloc(sizeof(*w) + b->n);
  uv_buf_t buf;
  memcpy((char *)(w + 1), b->b, b->n);
  buf = uv_buf_init((char *)(w + 1), (unsigned)b->n);
  uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, fake_written);
}

static void fake_conn_closed(uv_handle_t *h) {
  free(h->data);
}

static void fake_answer(struct fake_conn *c, uint32_t id) {
  static const char *const ok[] = {":status", "0", NULL};
  struct rawbuf *b = calloc(1, sizeof(*b));
  rb_block(b, 0x03, 0, id, ok, "done");
  fake_write(c, b);
  free(b);
}

/* Parses the client's frames: REQUEST ids. */
static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct fake_conn *c = s->data;
  size_t off = 0;
  (void)buf;
  if (n < 0) {
    uv_close((uv_handle_t *)&c->tcp, fake_conn_closed);
    return;
  }
  c->inlen += (size_t)n;
  while (off + 12 <= c->inlen) {
    uint32_t len = (uint32_t)c->in[off + 8] << 24 |
                   (uint32_t)c->in[off + 9] << 16 |
                   (uint32_t)c->in[off + 10] << 8 | c->in[off + 11];
    uint32_t id = (uint32_t)c->in[off + 4] << 24 |
                  (uint32_t)c->in[off + 5] << 16 |
                  (uint32_t)c->in[off + 6] << 8 | c->in[off + 7];
    if (off + 12 + len > c->inlen)
      break;
    if (c->in[off + 1] == 0x02) {
      if (c->nth == 1 && id == 3) {
        /* Three requests are in: handle the first only. */
        struct rawbuf *b = calloc(1, sizeof(*b));
        rb_header(b, 0x13, 0, 0, 8);
        rb_u32(b, 1);
        rb_u32(b, 0);
        fake_write(c, b);
        free(b);
        fake_answer(c, 1);
      } else if (c->nth == 2) {
        fake_answer(c, id);
        c->srv->handled_on_second++;
      }
    }
    off += 12 + len;
  }
  memmove(c->in, c->in + off, c->inlen - off);
  c->inlen -= off;
}

static void fake_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  struct fake_conn *c = h->data;
  (void)s;
  b->base = (char *)c->in + c->inlen;
  b->len = sizeof(c->in) - c->inlen;
}

static void fake_accept(uv_stream_t *l, int status) {
  struct fake_srv *srv = l->data;
  struct fake_conn *c = calloc(1, sizeof(*c));
  struct rawbuf *b = calloc(1, sizeof(*b));
  cr_assert_eq(status, 0);
  c->srv = srv;
  c->nth = ++srv->conns;
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  cr_assert_eq(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
  rb_hello(b);
  fake_write(c, b);
  free(b);
  uv_read_start((uv_stream_t *)&c->tcp, fake_alloc, fake_read);
}

static void fake_srv_closed(uv_handle_t *h) {
  ((struct fake_srv *)h->data)->closed = 1;
}

Test(tcp_faults, requests_after_goaway_last_id_are_sent_again) {
  struct harness h;
  struct fake_srv srv = {0};
  struct sockaddr_in sa;
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  struct result r[3];
  char uri[64];
  int i;

  memset(r, 0, sizeof(r));
  harness_start(&h);
  uv_tcp_init(&h.loop, &srv.listener);
  srv.listener.data = &srv;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  cr_assert_eq(uv_tcp_bind(&srv.listener, (struct sockaddr *)&sa, 0), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&srv.listener, 8, fake_accept), 0);
  uv_tcp_getsockname(&srv.listener, (struct sockaddr *)&bound, &len);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/x",
           ntohs(((struct sockaddr_in *)&bound)->sin_port));
  for (i = 0; i < 3; i++)
    cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, record_cb, &r[i], NULL), 0);
  while (!r[0].calls || !r[1].calls || !r[2].calls)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(r[i].status, SVC_STATUS_OK, "call %d: %s", i,
                 svc_status_name(r[i].status));
    cr_assert_str_eq(r[i].body, "done");
  }
  cr_assert_eq(srv.conns, 2);
  cr_assert_eq(srv.handled_on_second, 2);
  uv_close((uv_handle_t *)&srv.listener, fake_srv_closed);
  harness_finish(&h);
}
