/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svc_bench: libsvccomm on workloads W1..W8 of WORKLOADS.md, in the
 * roles the reference peers take, so that bench/run.sh can measure both in
 * one invocation and quote ratios.
 *
 *   svc_bench server W URI [--quick]       serves URI, prints
 *                                          "READY <endpoint>", runs until
 *                                          SIGTERM/SIGINT
 *   svc_bench client W ENDPOINT [--quick]  runs W against ENDPOINT, prints
 *                                          the JSON lines
 *   svc_bench local W URI [--quick]        both in one process on one loop
 *                                          (the only way to run inproc://)
 *
 * --quick divides the counts by about 100 (W7: 16 MiB), for smoke tests.
 *
 * The server is the same for every workload: route "echo" answers 64 bytes
 * (W1, W2); "GET hello" answers "Hello, world!" (W5: wrk against an http://
 * server; W6 calls it in local mode, and nginx's /hello as a client); route
 * "start" makes it publish "COUNT TOPIC" into its own hub
 * (W3, W4), so the client decides when publishing starts (after every
 * subscription is active) and how much; stream route "bench/w7" discards a
 * stream and answers its byte count. */

#include <svccomm.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

enum { ROLE_SERVER, ROLE_CLIENT, ROLE_LOCAL };

/* W1, W2, W7 fail when nothing moves for this long (W3 and W4 give up
 * after BENCH_IDLE_NS instead, with what they received). */
#define STALL_NS 10000000000ull
#define WATCHDOG_MS 200
/* How long closing the contexts may take before we call it a hang. */
#define CLOSE_GUARD_MS 5000
/* QoS 1 publishes the W3/W4 publisher keeps outstanding. The context's
 * default max_pending_publishes is 1024; a larger window would only meet
 * SVC_EAGAIN sooner. */
#define PUB_WINDOW 1024

/* Workload sizes, after --quick. */
static struct {
  uint64_t w1_warmup;
  uint64_t w1_rounds;
  uint64_t w2_warmup_ms;
  uint64_t w2_measure_ms;
  uint64_t w3_msgs;
  uint64_t w4_msgs;
  uint64_t w6_requests;
  uint64_t w7_bytes;
  uint64_t w8_msgs;
} sizes;
/* W8's QoS (--qos N): part of the system name, as for the peers. */
static int bench_qos;
/* --trace MODE: the contexts' trace mode (default: the library's). */
static svc_ctx_opts_t ctx_opts;

static uv_loop_t loop;
static int role;
static int wl;
static char system_name[64];
static int exit_code;

/* Bodies go out from these buffers without a copy (svc_msg_new_take() with
 * no free function): the library only reads a body, so every message in
 * flight can share one buffer, and the bench times the library rather than
 * malloc and memcpy. */
static uint8_t req_body[BENCH_MSG_SIZE];
static uint8_t reply_body[BENCH_MSG_SIZE];
static uint8_t event_body[BENCH_MSG_SIZE];
static uint8_t chunk_body[BENCH_W7_CHUNK];

static uv_signal_t sig_int;
static uv_signal_t sig_term;
static uv_timer_t watchdog;
static uv_timer_t phase_timer;
static uv_timer_t pub_retry;
static uv_timer_t close_guard;
static int shutting_down;
static int ctx_open; /* Contexts whose close has not finished. */

static void shutdown_all(void);

/* ------------------------------------------------------------------------ */
/* Server                                                                   */

static svc_ctx_t *srv_ctx;
static svc_server_t *srv;

/* The W3/W4 publisher: one run at a time. */
static struct {
  char topic[128];
  uint64_t count;
  uint64_t left;        /* Messages not yet handed to the library. */
  unsigned outstanding; /* Publishes whose callback has not run. */
  uint64_t failed;
  uint64_t eagain; /* Refusals seen: how often the backlog was full. */
  uint64_t t_start;
  int active;
} pub;

static void echo_handler(svc_request_t *req, void *arg) {
  (void)arg;
  /* The library owns the reply in every case, NULL included. */
  svc_request_reply(req, SVC_STATUS_OK,
                    svc_msg_new_take(reply_body, sizeof(reply_body), NULL));
}

/* W5: the 13-byte body nginx's "return 200" gives. */
static void hello_handler(svc_request_t *req, void *arg) {
  static const char hello[] = "Hello, world!";

  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK,
                    svc_msg_new_take((void *)hello, sizeof(hello) - 1, NULL));
}

static void pub_refill(void);

static void pub_done(svc_ctx_t *ctx, int status, void *arg) {
  (void)ctx;
  (void)arg;
  pub.outstanding--;
  if (status != 0 && !shutting_down && pub.failed++ == 0)
    fprintf(stderr, "svc_bench: publish failed: %s\n", svc_strerror(status));
  pub_refill();
}

static void pub_retry_fired(uv_timer_t *t) {
  (void)t;
  pub_refill();
}

/* Keeps PUB_WINDOW publishes outstanding, so that the pace is set by the
 * library's QoS 1 backpressure (a publish completes once every subscriber
 * has room for it) and not by us. */
static void pub_refill(void) {
  static const svc_pub_opts_t qos1 = {.qos = 1};
  svc_msg_t *msg;
  int rc;

  while (pub.active && !shutting_down && pub.left > 0 &&
         pub.outstanding < PUB_WINDOW) {
    msg = svc_msg_new_take(event_body, sizeof(event_body), NULL);
    if (msg == NULL) {
      fprintf(stderr, "svc_bench: out of memory\n");
      pub.left = 0;
      break;
    }
    rc = svc_server_publish(srv, pub.topic, msg, &qos1, pub_done, NULL);
    if (rc == SVC_EAGAIN) {
      svc_msg_free(msg);
      pub.eagain++;
      /* Too many publishes wait in the library: a completing one calls us
       * again. With none of ours outstanding nothing would, so poll. */
      if (pub.outstanding == 0)
        uv_timer_start(&pub_retry, pub_retry_fired, 1, 0);
      return;
    }
    if (rc != 0) {
      svc_msg_free(msg);
      fprintf(stderr, "svc_bench: svc_server_publish: %s\n", svc_strerror(rc));
      pub.left = 0;
      break;
    }
    pub.left--;
    pub.outstanding++;
  }
  if (pub.active && pub.left == 0 && pub.outstanding == 0) {
    /* Server-side figures, on stderr: they help read the client's. */
    pub.active = 0;
    fprintf(stderr,
            "svc_bench: published %llu events on %s in %.3f s (%llu failed, "
            "SVC_EAGAIN %llu times)\n",
            (unsigned long long)pub.count, pub.topic,
            bench_secs(bench_now_ns() - pub.t_start),
            (unsigned long long)pub.failed, (unsigned long long)pub.eagain);
  }
}

/* Body "COUNT TOPIC": publish COUNT 64-byte events on TOPIC. */
static void start_handler(svc_request_t *req, void *arg) {
  char text[160];
  char topic[sizeof(pub.topic)];
  unsigned long long count;
  size_t len;
  const void *body = svc_msg_body(svc_request_msg(req), &len);

  (void)arg;
  if (len >= sizeof(text)) {
    svc_request_reply(req, SVC_STATUS_INVALID_ARGUMENT, NULL);
    return;
  }
  memcpy(text, body, len);
  text[len] = '\0';
  if (sscanf(text, "%llu %127s", &count, topic) != 2 || count == 0) {
    svc_request_reply(req, SVC_STATUS_INVALID_ARGUMENT,
                      svc_msg_new_str("want COUNT TOPIC"));
    return;
  }
  if (pub.active) {
    svc_request_reply(req, SVC_STATUS_FAILED_PRECONDITION,
                      svc_msg_new_str("already publishing"));
    return;
  }
  memcpy(pub.topic, topic, sizeof(pub.topic));
  pub.count = count;
  pub.left = count;
  pub.failed = 0;
  pub.eagain = 0;
  pub.t_start = bench_now_ns();
  pub.active = 1;
  svc_request_reply(req, SVC_STATUS_OK, NULL);
  pub_refill();
}

/* W7 server side: count, discard, answer the count on the peer's end. */
static void sink_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)s;
  *(uint64_t *)arg += svc_msg_len(msg);
}

static void sink_end(svc_stream_t *s, void *arg) {
  char text[32];
  int n = snprintf(text, sizeof(text), "%llu",
                   (unsigned long long)*(uint64_t *)arg);
  svc_msg_t *msg = svc_msg_new(text, (size_t)n);

  if (msg == NULL || svc_stream_write(s, msg, NULL, NULL) != 0) {
    svc_msg_free(msg);
    svc_stream_reset(s);
    return;
  }
  svc_stream_end(s);
}

static void sink_close(svc_stream_t *s, int status, void *arg) {
  (void)s;
  if (status != 0 && !shutting_down)
    fprintf(stderr, "svc_bench: server stream closed: %s\n",
            svc_strerror(status));
  free(arg);
}

static void stream_accept(svc_server_t *server, svc_stream_t *s, void *arg) {
  static const svc_stream_cbs_t cbs = {
      .on_data = sink_data, .on_end = sink_end, .on_close = sink_close};
  uint64_t *count = calloc(1, sizeof(*count));

  (void)server;
  (void)arg;
  /* Default window and send buffer: what an application gets. */
  if (count == NULL || svc_stream_accept(s, NULL, &cbs, count) != 0) {
    free(count);
    svc_stream_reset(s);
  }
}

static int server_start(const char *uri) {
  int rc;

  rc = svc_ctx_init(&loop, &ctx_opts, &srv_ctx);
  if (rc != 0) {
    fprintf(stderr, "svc_bench: svc_ctx_init: %s\n", svc_strerror(rc));
    return rc;
  }
  ctx_open++;
  rc = svc_serve(srv_ctx, uri, NULL, &srv);
  if (rc != 0) {
    fprintf(stderr, "svc_bench: svc_serve(%s): %s\n", uri, svc_strerror(rc));
    srv = NULL;
    return rc;
  }
  if ((rc = svc_server_route(srv, NULL, "echo", echo_handler, NULL)) != 0 ||
      (rc = svc_server_route(srv, "GET", "hello", hello_handler, NULL)) != 0 ||
      (rc = svc_server_route(srv, NULL, "start", start_handler, NULL)) != 0 ||
      (rc = svc_server_stream_route(srv, "bench/w7", stream_accept, NULL)) !=
          0) {
    fprintf(stderr, "svc_bench: route: %s\n", svc_strerror(rc));
    return rc;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Client                                                                   */

static char endpoint[256];
/* In local mode on inproc:// the client must use the server's context:
 * inproc endpoints do not reach across contexts. */
static int share_ctx;
static svc_ctx_t *cli_ctx[BENCH_W4_SUBS];
static int ncli_ctx;
static int finished;
static uint64_t last_progress;
static uint64_t t_begin;
static uint64_t t_end;
static bench_lat_t lat;

static void client_finish(int ok);

static void client_fail(const char *what, int err) {
  if (err != 0)
    fprintf(stderr, "svc_bench: W%d: %s: %s\n", wl, what, svc_strerror(err));
  else
    fprintf(stderr, "svc_bench: W%d: %s\n", wl, what);
  client_finish(0);
}

static void call_fail(const char *what, svc_status_t status,
                      const svc_call_t *call) {
  fprintf(stderr, "svc_bench: W%d: %s: %s (%s)\n", wl, what,
          svc_status_name(status), svc_strerror(svc_call_errno(call)));
  client_finish(0);
}

static svc_ctx_t *client_ctx_new(void) {
  svc_ctx_t *ctx;
  int rc;

  if (share_ctx)
    return srv_ctx;
  rc = svc_ctx_init(&loop, &ctx_opts, &ctx);
  if (rc != 0) {
    client_fail("svc_ctx_init", rc);
    return NULL;
  }
  cli_ctx[ncli_ctx++] = ctx;
  ctx_open++;
  return ctx;
}

/* Routes are appended to the endpoint as svc_server_endpoint() gives it:
 * "tcp://127.0.0.1:41234/echo", "unix://%2Ftmp%2Fx.sock/echo". Returns 0,
 * or -1 when it does not fit. */
static int set_endpoint(const char *ep) {
  size_t n = strlen(ep);

  while (n > 0 && ep[n - 1] == '/')
    n--;
  if (n >= sizeof(endpoint))
    return -1;
  memcpy(endpoint, ep, n);
  endpoint[n] = '\0';
  return 0;
}

static int make_uri(char *buf, size_t size, const char *path) {
  /* A query on the endpoint ("mqtt://host:1883?version=3") stays last. */
  const char *query = strchr(endpoint, '?');
  int elen = query != NULL ? (int)(query - endpoint) : (int)strlen(endpoint);
  int n = snprintf(buf, size, "%.*s/%s%s", elen, endpoint, path,
                   query != NULL ? query : "");

  return n > 0 && (size_t)n < size ? 0 : SVC_EINVAL;
}

/* W1 and W2 want an OK reply of 64 bytes; anything else ends the run. */
static int echo_reply_ok(const svc_call_t *call, svc_status_t status,
                         const svc_msg_t *reply) {
  if (status != SVC_STATUS_OK) {
    call_fail("call", status, call);
    return 0;
  }
  if (reply == NULL || svc_msg_len(reply) != BENCH_MSG_SIZE) {
    client_fail("reply is not 64 bytes", 0);
    return 0;
  }
  return 1;
}

/* ---- W1: strictly sequential calls, each one started from the previous
 * one's callback. */

static struct {
  svc_ctx_t *ctx;
  char uri[300];
  uint64_t sent_at;
  uint64_t round;
} w1;

static void w1_send(void);

static void w1_done(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  uint64_t t = bench_now_ns();

  (void)arg;
  if (finished)
    return;
  if (!echo_reply_ok(call, status, reply))
    return;
  last_progress = t;
  w1.round++;
  if (w1.round > sizes.w1_warmup)
    bench_lat_add(&lat, t - w1.sent_at);
  if (w1.round == sizes.w1_warmup)
    t_begin = t;
  if (w1.round == sizes.w1_warmup + sizes.w1_rounds) {
    t_end = t;
    client_finish(1);
    return;
  }
  w1_send();
}

static void w1_send(void) {
  svc_msg_t *msg;
  int rc;

  w1.sent_at = bench_now_ns();
  msg = svc_msg_new_take(req_body, sizeof(req_body), NULL);
  if (msg == NULL) {
    client_fail("out of memory", 0);
    return;
  }
  rc = svc_call(w1.ctx, w1.uri, msg, NULL, w1_done, NULL, NULL);
  if (rc != 0) {
    svc_msg_free(msg);
    client_fail("svc_call", rc);
  }
}

static void w1_start(void) {
  if ((w1.ctx = client_ctx_new()) == NULL)
    return;
  if (make_uri(w1.uri, sizeof(w1.uri), "echo") != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  if (bench_lat_reserve(&lat, (size_t)sizes.w1_rounds) != 0) {
    client_fail("out of memory", 0);
    return;
  }
  w1_send();
}

/* ---- W2: BENCH_W2_INFLIGHT calls in flight on one endpoint; each
 * completion starts the next call in its slot. */

static struct {
  svc_ctx_t *ctx;
  char uri[300];
  uint64_t sent_at[BENCH_W2_INFLIGHT];
  int phase; /* 0 warm-up, 1 measuring, 2 draining. */
  unsigned inflight;
  uint64_t counted;
} w2;

static void w2_send(size_t slot);

static void w2_done(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  uint64_t t = bench_now_ns();
  size_t slot = (size_t)((uint64_t *)arg - w2.sent_at);

  w2.inflight--;
  if (finished)
    return;
  if (!echo_reply_ok(call, status, reply))
    return;
  last_progress = t;
  if (w2.phase == 1) {
    bench_lat_add(&lat, t - w2.sent_at[slot]);
    w2.counted++;
  }
  if (w2.phase < 2)
    w2_send(slot);
  else if (w2.inflight == 0)
    client_finish(1);
}

static void w2_send(size_t slot) {
  svc_msg_t *msg;
  int rc;

  w2.sent_at[slot] = bench_now_ns();
  msg = svc_msg_new_take(req_body, sizeof(req_body), NULL);
  if (msg == NULL) {
    client_fail("out of memory", 0);
    return;
  }
  rc = svc_call(w2.ctx, w2.uri, msg, NULL, w2_done, &w2.sent_at[slot], NULL);
  if (rc != 0) {
    svc_msg_free(msg);
    client_fail("svc_call", rc);
    return;
  }
  w2.inflight++;
}

static void w2_phase_fired(uv_timer_t *t) {
  uint64_t now = bench_now_ns();

  if (++w2.phase == 1) {
    t_begin = now;
    return;
  }
  t_end = now;
  uv_timer_stop(t);
  /* Calls still in flight finish uncounted; we end when they are back. */
  if (w2.inflight == 0)
    client_finish(1);
}

static void w2_start(void) {
  size_t i;

  if ((w2.ctx = client_ctx_new()) == NULL)
    return;
  if (make_uri(w2.uri, sizeof(w2.uri), "echo") != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  /* Room for 1M round trips in 3 s before the first reallocation. */
  if (bench_lat_reserve(&lat, sizes.w2_measure_ms * 350) != 0) {
    client_fail("out of memory", 0);
    return;
  }
  uv_timer_start(&phase_timer, w2_phase_fired, sizes.w2_warmup_ms,
                 sizes.w2_measure_ms);
  for (i = 0; i < BENCH_W2_INFLIGHT && !finished; i++)
    w2_send(i);
}

/* ---- W6: BENCH_W6_REQUESTS calls of GET hello, BENCH_W6_INFLIGHT in
 * flight; each completion starts the next request in its slot until all
 * have been started. */

static struct {
  svc_ctx_t *ctx;
  char uri[300];
  uint64_t sent_at[BENCH_W6_INFLIGHT];
  uint64_t started;
  uint64_t done;
} w6;

static void w6_send(size_t slot);

static void w6_done(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  uint64_t t = bench_now_ns();
  size_t slot = (size_t)((uint64_t *)arg - w6.sent_at);

  if (finished)
    return;
  if (status != SVC_STATUS_OK) {
    call_fail("GET hello", status, call);
    return;
  }
  if (reply == NULL || svc_msg_len(reply) == 0) {
    client_fail("empty reply", 0);
    return;
  }
  last_progress = t;
  bench_lat_add(&lat, t - w6.sent_at[slot]);
  if (++w6.done == sizes.w6_requests) {
    t_end = t;
    client_finish(1);
    return;
  }
  if (w6.started < sizes.w6_requests)
    w6_send(slot);
}

static void w6_send(size_t slot) {
  svc_call_opts_t opts = {0};
  int rc;

  opts.method = "GET";
  w6.sent_at[slot] = bench_now_ns();
  rc = svc_call(w6.ctx, w6.uri, NULL, &opts, w6_done, &w6.sent_at[slot],
                NULL);
  if (rc != 0) {
    client_fail("svc_call", rc);
    return;
  }
  w6.started++;
}

static void w6_start(void) {
  size_t i;

  if ((w6.ctx = client_ctx_new()) == NULL)
    return;
  if (make_uri(w6.uri, sizeof(w6.uri), "hello") != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  if (bench_lat_reserve(&lat, (size_t)sizes.w6_requests) != 0) {
    client_fail("out of memory", 0);
    return;
  }
  t_begin = bench_now_ns();
  for (i = 0; i < BENCH_W6_INFLIGHT && w6.started < sizes.w6_requests &&
              !finished;
       i++)
    w6_send(i);
}

/* ---- W3, W4: subscribers in this process, each on its own context (a
 * context keeps one connection per endpoint, so eight contexts make eight
 * connections); once all are active, one call tells the server to start
 * publishing. */

static struct w34_sub {
  svc_ctx_t *ctx;
  svc_sub_t *sub;
  uint64_t received;
  int ready;
} subs[BENCH_W4_SUBS];

static struct {
  int nsubs;
  int nready;
  uint64_t per_sub; /* Messages the server publishes. */
  uint64_t expected;
  uint64_t received;
  uint64_t t_first;
  uint64_t t_last;
  uint64_t t_prev; /* Stamp of the previous loop turn. */
  uint64_t seen;   /* received at that stamp. */
  char topic[32];
} w34;
static uv_prepare_t w34_batch;

static void start_done(svc_call_t *call, svc_status_t status,
                       const svc_msg_t *reply, void *arg) {
  (void)reply;
  (void)arg;
  if (finished)
    return;
  if (status != SVC_STATUS_OK) {
    call_fail("start call", status, call);
    return;
  }
  last_progress = bench_now_ns();
}

static void w34_send_start(void) {
  char uri[300];
  char text[64];
  svc_msg_t *msg;
  int rc;

  if (make_uri(uri, sizeof(uri), "start") != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  snprintf(text, sizeof(text), "%llu %s", (unsigned long long)w34.per_sub,
           w34.topic);
  if ((msg = svc_msg_new_str(text)) == NULL) {
    client_fail("out of memory", 0);
    return;
  }
  rc = svc_call(subs[0].ctx, uri, msg, NULL, start_done, NULL, NULL);
  if (rc != 0) {
    svc_msg_free(msg);
    client_fail("svc_call start", rc);
  }
}

static void on_sub_ready(svc_sub_t *sub, void *arg) {
  struct w34_sub *s = arg;

  (void)sub;
  if (finished || s->ready)
    return;
  s->ready = 1;
  last_progress = bench_now_ns();
  if (++w34.nready == w34.nsubs)
    w34_send_start();
}

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *event,
                     void *arg) {
  struct w34_sub *s = arg;
  uint64_t t;

  (void)sub;
  if (event == NULL) {
    /* The final callback: ours come from closing the context. */
    s->sub = NULL;
    if (!finished)
      client_fail("subscription ended", status);
    return;
  }
  if (finished)
    return;
  /* Clock reads are per batch (w34_batch_cb), as the peers time theirs:
   * one per event would cost more than the event. */
  s->received++;
  if (++w34.received == w34.expected) {
    t = bench_now_ns();
    if (w34.t_first == 0)
      w34.t_first = t;
    w34.t_last = t;
    client_finish(1);
  }
}

/* Runs once per loop turn after the events of the turn were delivered: the
 * first turn that brought events started at the previous turn's stamp. */
static void w34_batch_cb(uv_prepare_t *h) {
  uint64_t t = bench_now_ns();

  (void)h;
  if (w34.received != w34.seen) {
    if (w34.t_first == 0)
      w34.t_first = w34.t_prev;
    w34.t_last = t;
    w34.seen = w34.received;
    last_progress = t;
  }
  w34.t_prev = t;
}

static void w34_start(void) {
  svc_sub_opts_t opts;
  char uri[300];
  int i;
  int rc;

  w34.nsubs = wl == 3 ? 1 : BENCH_W4_SUBS;
  w34.per_sub = wl == 3 ? sizes.w3_msgs : sizes.w4_msgs;
  w34.expected = w34.per_sub * (uint64_t)w34.nsubs;
  snprintf(w34.topic, sizeof(w34.topic), "bench/w%d", wl);
  if (make_uri(uri, sizeof(uri), w34.topic) != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  memset(&opts, 0, sizeof(opts));
  /* QoS 1 end to end: nothing may be dropped, the publisher waits. */
  opts.qos = 1;
  opts.on_ready = on_sub_ready;
  uv_prepare_start(&w34_batch, w34_batch_cb);
  for (i = 0; i < w34.nsubs; i++) {
    if ((subs[i].ctx = client_ctx_new()) == NULL)
      return;
    rc = svc_subscribe(subs[i].ctx, uri, &opts, on_event, &subs[i],
                       &subs[i].sub);
    if (rc != 0) {
      client_fail("svc_subscribe", rc);
      return;
    }
  }
}

/* ---- W7: one stream, 1 GiB in 64 KiB writes, flow control honoured. */

static struct {
  svc_stream_t *s;
  svc_msg_t *pending; /* Refused with SVC_EAGAIN: sent again first. */
  uint64_t queued;
  int ended;
  int answered;
  uint64_t count; /* The server's answer. */
} w7;

static void w7_pump(void) {
  svc_msg_t *msg;
  int rc;

  while (!finished && w7.queued < sizes.w7_bytes) {
    msg = w7.pending;
    w7.pending = NULL;
    if (msg == NULL && (msg = svc_msg_new_take(chunk_body, sizeof(chunk_body),
                                               NULL)) == NULL) {
      client_fail("out of memory", 0);
      return;
    }
    rc = svc_stream_write(w7.s, msg, NULL, NULL);
    if (rc == SVC_EAGAIN) {
      w7.pending = msg; /* on_writable calls us again. */
      return;
    }
    if (rc != 0) {
      svc_msg_free(msg);
      client_fail("svc_stream_write", rc);
      return;
    }
    w7.queued += sizeof(chunk_body);
  }
  if (!finished && !w7.ended) {
    w7.ended = 1;
    rc = svc_stream_end(w7.s);
    if (rc != 0)
      client_fail("svc_stream_end", rc);
  }
}

static void w7_writable(svc_stream_t *s, void *arg) {
  (void)s;
  (void)arg;
  last_progress = bench_now_ns();
  w7_pump();
}

static void w7_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  char text[32];
  size_t len;
  const void *body = svc_msg_body(msg, &len);

  (void)s;
  (void)arg;
  t_end = bench_now_ns();
  last_progress = t_end;
  if (w7.answered || len == 0 || len >= sizeof(text)) {
    client_fail("unexpected data from the server", 0);
    return;
  }
  memcpy(text, body, len);
  text[len] = '\0';
  w7.count = strtoull(text, NULL, 10);
  w7.answered = 1;
}

static void w7_close(svc_stream_t *s, int status, void *arg) {
  (void)s;
  (void)arg;
  w7.s = NULL;
  svc_msg_free(w7.pending);
  w7.pending = NULL;
  if (finished)
    return;
  if (status != 0) {
    client_fail("stream closed", status);
    return;
  }
  if (!w7.answered) {
    client_fail("stream closed without the byte count", 0);
    return;
  }
  if (w7.count != sizes.w7_bytes) {
    fprintf(stderr, "svc_bench: W7: server counted %llu bytes, sent %llu\n",
            (unsigned long long)w7.count, (unsigned long long)sizes.w7_bytes);
    client_finish(0);
    return;
  }
  client_finish(1);
}

static void w7_start(void) {
  static const svc_stream_cbs_t cbs = {
      .on_data = w7_data, .on_writable = w7_writable, .on_close = w7_close};
  svc_ctx_t *ctx;
  char uri[300];
  int rc;

  if ((ctx = client_ctx_new()) == NULL)
    return;
  if (make_uri(uri, sizeof(uri), "bench/w7") != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  /* The clock runs from the open (the connect, on a fresh context) to the
   * server's answer, as in the raw-libuv peer. */
  t_begin = bench_now_ns();
  rc = svc_stream(ctx, uri, NULL, &cbs, NULL, &w7.s);
  if (rc != 0) {
    client_fail("svc_stream", rc);
    return;
  }
  w7_pump();
}

/* ---- W8: MQTT through a broker, in two shapes, at the QoS of --qos (the
 * peers' mosquitto+paho@qosN). The endpoint is the broker; a subscriber and
 * a publisher, each a context (a client connection) of its own, share this
 * process's loop.
 * - W3 shape: the publisher sends sizes.w8_msgs 64-byte messages with at
 *   most BENCH_W8_WINDOW unfinished; the subscriber counts them
 *   (msgs_per_s from its first to its last message, lost).
 * - W1 shape: an echo on the subscriber's context republishes each request
 *   on the reply topic through a context of its own; the publisher's
 *   context sends warm-up plus counted strictly sequential round trips and
 *   a fourth context receives the replies (p50_us, p99_us).
 *
 * Two processes, as the peer runs them: "server W8 mqtt://broker" is the
 * subscriber and the echo (pinned beside the broker by run.sh, like the
 * peer's subscriber), "client W8 mqtt://broker" the publisher and the
 * pinger; the subscriber side reports msgs_per_s and lost when the flood
 * is over and then tells the client, on a control topic, to start the
 * round trips. Each process has paho's two threads of its own. "local W8"
 * runs both sides in one process.
 *
 * Each connection only publishes or only subscribes, as the peer's clients
 * do. A connection that does both makes a default mosquitto (Nagle on, its
 * set_tcp_nodelay is off) write a PUBACK and then a PUBLISH to one socket
 * per round trip, and the PUBLISH waits for our delayed ACK: 20 to 40 ms
 * per round trip instead of about 0.1 ms (docs/mqtt.md). */

#define BENCH_W8_WINDOW 256

enum { W8_BOTH, W8_SUBS, W8_PUBS };

static struct {
  int side;            /* W8_BOTH (local), W8_SUBS (server), W8_PUBS. */
  char ctl_uri[320];   /* The subscriber side's "flood over". */
  svc_ctx_t *pub_ctx;  /* Publishes the flood and the requests. */
  svc_ctx_t *sub_ctx;  /* Subscribes to the flood and the requests. */
  svc_ctx_t *echo_ctx; /* Publishes the replies. */
  svc_ctx_t *rep_ctx;  /* Subscribes to the replies. */
  int qos;
  int phase; /* 0 flood, 1 ping-pong. */
  char data_uri[320];
  char req_uri[320];
  char rep_uri[320];
  uint64_t sent;
  uint64_t inflight;
  uint64_t received;
  uint64_t t_first;
  uint64_t t_last;
  int ready;
  uint64_t round;
  uint64_t sent_at;
  double msgs_per_s;
  uint64_t lost;
} w8;

static void w8_flood(void);
static void w8_ping(void);
static void w8_ping_start(void);

static void w8_flood_done(svc_ctx_t *ctx, int status, void *arg) {
  (void)ctx;
  (void)arg;
  w8.inflight--;
  /* The publisher's progress: in two processes it sees no deliveries. */
  last_progress = bench_now_ns();
  if (finished)
    return;
  if (status != 0) {
    client_fail("publish", status);
    return;
  }
  w8_flood();
}

static void w8_retry(uv_timer_t *t) {
  (void)t;
  w8_flood();
}

/* Keeps BENCH_W8_WINDOW publishes unfinished until all are sent. */
static void w8_flood(void) {
  svc_pub_opts_t po = {0};

  po.qos = w8.qos;
  while (!finished && w8.sent < sizes.w8_msgs &&
         w8.inflight < BENCH_W8_WINDOW) {
    svc_msg_t *m = svc_msg_new_take(event_body, sizeof(event_body), NULL);
    int rc;

    if (m == NULL) {
      client_fail("out of memory", 0);
      return;
    }
    rc = svc_publish(w8.pub_ctx, w8.data_uri, m, &po, w8_flood_done, NULL);
    if (rc == SVC_ENOBUFS || rc == SVC_EAGAIN) {
      /* Full: the next completion refills, or, with none to come (QoS 0
       * publishes finish when paho takes them, before its buffer
       * drains), a retry 1 ms later. */
      svc_msg_free(m);
      if (w8.inflight == 0)
        uv_timer_start(&pub_retry, w8_retry, 1, 0);
      return;
    }
    if (rc != 0) {
      svc_msg_free(m);
      client_fail("svc_publish", rc);
      return;
    }
    w8.sent++;
    w8.inflight++;
  }
}

static void w8_flood_over(void) {
  uint64_t t = w8.t_last > w8.t_first ? w8.t_last - w8.t_first : 1;
  svc_pub_opts_t po = {.qos = 1};
  int rc;

  w8.msgs_per_s = (double)w8.received / bench_secs(t);
  w8.lost = sizes.w8_msgs - w8.received;
  w8.phase = 1;
  last_progress = bench_now_ns();
  if (w8.side == W8_BOTH) {
    w8_ping_start();
    return;
  }
  /* The subscriber side: its figures now, then the go for the pinger. */
  bench_emit(8, system_name, "msgs_per_s", w8.msgs_per_s);
  bench_emit(8, system_name, "lost", (double)w8.lost);
  fflush(stdout);
  rc = svc_publish(w8.echo_ctx, w8.ctl_uri, NULL, &po, NULL, NULL);
  if (rc != 0)
    fprintf(stderr, "svc_bench: W8: control publish: %s\n", svc_strerror(rc));
}

/* The pinger side: the subscriber has counted the flood. */
static void w8_on_ctl(svc_sub_t *sub, int status, const svc_msg_t *ev,
                      void *arg) {
  (void)sub;
  (void)status;
  (void)arg;
  if (ev == NULL || finished || w8.phase != 0)
    return;
  w8.phase = 1;
  last_progress = bench_now_ns();
  w8_ping_start();
}

static void w8_on_data(svc_sub_t *sub, int status, const svc_msg_t *ev,
                       void *arg) {
  uint64_t t = bench_now_ns();

  (void)sub;
  (void)arg;
  if (ev == NULL) {
    if (!finished && !shutting_down)
      client_fail("subscription ended", status);
    return;
  }
  if (finished || w8.phase != 0)
    return;
  if (w8.received++ == 0)
    w8.t_first = t;
  w8.t_last = t;
  last_progress = t;
  if (w8.received == sizes.w8_msgs)
    w8_flood_over();
}

/* The echo: each request goes back on the reply topic. */
static void w8_on_req(svc_sub_t *sub, int status, const svc_msg_t *ev,
                      void *arg) {
  svc_pub_opts_t po = {0};
  svc_msg_t *m;
  int rc;

  (void)sub;
  (void)arg;
  if (ev == NULL || finished)
    return;
  (void)status;
  po.qos = w8.qos;
  m = svc_msg_new_take(reply_body, sizeof(reply_body), NULL);
  rc = m != NULL ? svc_publish(w8.echo_ctx, w8.rep_uri, m, &po, NULL, NULL)
                 : SVC_ENOMEM;
  if (rc != 0) {
    svc_msg_free(m);
    client_fail("echo publish", rc);
  }
}

static void w8_on_rep(svc_sub_t *sub, int status, const svc_msg_t *ev,
                      void *arg) {
  uint64_t t = bench_now_ns();

  (void)sub;
  (void)arg;
  (void)status;
  if (ev == NULL || finished)
    return;
  last_progress = t;
  w8.round++;
  if (w8.round > sizes.w1_warmup)
    bench_lat_add(&lat, t - w8.sent_at);
  if (w8.round == sizes.w1_warmup + sizes.w1_rounds) {
    client_finish(1);
    return;
  }
  w8_ping();
}

static void w8_ping(void) {
  svc_pub_opts_t po = {0};
  svc_msg_t *m = svc_msg_new_take(req_body, sizeof(req_body), NULL);
  int rc;

  po.qos = w8.qos;
  w8.sent_at = bench_now_ns();
  rc = m != NULL ? svc_publish(w8.pub_ctx, w8.req_uri, m, &po, NULL, NULL)
                 : SVC_ENOMEM;
  if (rc != 0) {
    svc_msg_free(m);
    client_fail("ping publish", rc);
  }
}

static void w8_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  (void)arg;
  /* Subscriptions: data (flood) and req (echo) on the subscriber side;
   * rep and ctl on the pinger side; three when one process has both. */
  ++w8.ready;
  if (w8.side == W8_SUBS && w8.ready == 2) {
    printf("READY %s\n", endpoint);
    fflush(stdout);
  } else if ((w8.side == W8_PUBS && w8.ready == 2) ||
             (w8.side == W8_BOTH && w8.ready == 3)) {
    last_progress = bench_now_ns();
    w8_flood();
  }
}

static void w8_ping_start(void) {
  if (bench_lat_reserve(&lat, (size_t)sizes.w1_rounds) != 0) {
    client_fail("out of memory", 0);
    return;
  }
  w8_ping();
}

static void w8_start(void) {
  svc_sub_opts_t so = {0};
  char uri[400];
  int rc;

  w8.side = role == ROLE_SERVER ? W8_SUBS
            : role == ROLE_CLIENT ? W8_PUBS
                                  : W8_BOTH;
  if (w8.side != W8_PUBS && ((w8.sub_ctx = client_ctx_new()) == NULL ||
                             (w8.echo_ctx = client_ctx_new()) == NULL))
    return;
  if (w8.side != W8_SUBS && ((w8.pub_ctx = client_ctx_new()) == NULL ||
                             (w8.rep_ctx = client_ctx_new()) == NULL))
    return;
  w8.qos = bench_qos;
  if (make_uri(w8.data_uri, sizeof(w8.data_uri), "bench/w8/data") != 0 ||
      make_uri(w8.req_uri, sizeof(w8.req_uri), "bench/w8/req") != 0 ||
      make_uri(w8.rep_uri, sizeof(w8.rep_uri), "bench/w8/rep") != 0 ||
      make_uri(w8.ctl_uri, sizeof(w8.ctl_uri), "bench/w8/ctl") != 0) {
    client_fail("endpoint too long", 0);
    return;
  }
  so.qos = w8.qos;
  so.on_ready = w8_ready;
  /* A queue as deep as the publisher's window and then some: the flood
   * must not be dropped by our own queue at QoS 0. */
  so.max_queue = 65536;
  snprintf(uri, sizeof(uri), "%s", w8.data_uri);
  rc = 0;
  if (w8.side != W8_PUBS) {
    rc = svc_subscribe(w8.sub_ctx, uri, &so, w8_on_data, NULL, NULL);
    if (rc == 0)
      rc = svc_subscribe(w8.sub_ctx, w8.req_uri, &so, w8_on_req, NULL, NULL);
  }
  if (rc == 0 && w8.side != W8_SUBS)
    rc = svc_subscribe(w8.rep_ctx, w8.rep_uri, &so, w8_on_rep, NULL, NULL);
  if (rc == 0 && w8.side == W8_PUBS) {
    svc_sub_opts_t co = {.qos = 1, .on_ready = w8_ready};
    rc = svc_subscribe(w8.rep_ctx, w8.ctl_uri, &co, w8_on_ctl, NULL, NULL);
  }
  if (rc != 0)
    client_fail("svc_subscribe", rc);
}

/* ---- Common client plumbing. */

static void report(void) {
  const char *sys = system_name;
  double secs;

  switch (wl) {
  case 1:
    bench_lat_sort(&lat);
    bench_emit(1, sys, "p50_us", bench_pct_us(&lat, 50));
    bench_emit(1, sys, "p99_us", bench_pct_us(&lat, 99));
    bench_emit(1, sys, "p999_us", bench_pct_us(&lat, 99.9));
    bench_emit(1, sys, "rps",
               (double)sizes.w1_rounds / bench_secs(t_end - t_begin));
    break;
  case 2:
    bench_emit(2, sys, "rps", (double)w2.counted / bench_secs(t_end - t_begin));
    bench_lat_sort(&lat);
    bench_emit(2, sys, "p99_us", bench_pct_us(&lat, 99));
    break;
  case 3:
  case 4:
    /* First to last event; one event alone would divide by zero. */
    secs = bench_secs(w34.t_last > w34.t_first ? w34.t_last - w34.t_first : 1);
    bench_emit(wl, sys, wl == 3 ? "msgs_per_s" : "deliveries_per_s",
               (double)w34.received / secs);
    bench_emit(wl, sys, "lost", (double)w34.expected - (double)w34.received);
    break;
  case 6:
    bench_emit(6, sys, "rps",
               (double)sizes.w6_requests / bench_secs(t_end - t_begin));
    bench_lat_sort(&lat);
    bench_emit(6, sys, "p50_us", bench_pct_us(&lat, 50));
    bench_emit(6, sys, "p99_us", bench_pct_us(&lat, 99));
    break;
  case 8:
    if (w8.side == W8_BOTH) { /* Else the subscriber side said these. */
      bench_emit(8, sys, "msgs_per_s", w8.msgs_per_s);
      bench_emit(8, sys, "lost", (double)w8.lost);
    }
    bench_lat_sort(&lat);
    bench_emit(8, sys, "p50_us", bench_pct_us(&lat, 50));
    bench_emit(8, sys, "p99_us", bench_pct_us(&lat, 99));
    break;
  case 7:
    bench_emit(7, sys, "MiB_per_s",
               (double)(sizes.w7_bytes >> 20) / bench_secs(t_end - t_begin));
    /* In local mode this is the whole process, server included. */
    bench_emit(7, sys, "peak_rss_mib", bench_peak_rss_mib());
    break;
  }
}

/* Prints the figures (ok) or marks the run failed, then closes everything.
 * The figures go out before the close, so that a hang in closing still
 * leaves them on stdout (and a non-zero exit from the close guard). */
static void client_finish(int ok) {
  if (finished)
    return;
  finished = 1;
  if (ok)
    report();
  else
    exit_code = 1;
  shutdown_all();
}

static void watchdog_fired(uv_timer_t *t) {
  uint64_t idle = bench_now_ns() - last_progress;

  (void)t;
  if (finished)
    return;
  if (wl == 3 || wl == 4) {
    if (idle < BENCH_IDLE_NS)
      return;
    fprintf(stderr,
            "svc_bench: W%d: no event for 2 s, giving up after %llu of "
            "%llu\n",
            wl, (unsigned long long)w34.received,
            (unsigned long long)w34.expected);
    client_finish(w34.received > 0);
    return;
  }
  /* W8 at QoS 0 may lose messages (the broker drops what a slow
   * subscriber cannot take): like W3, the count ends 2 s after the last
   * one, with what arrived. */
  if (wl == 8 && w8.phase == 0 && w8.received > 0 &&
      idle >= BENCH_IDLE_NS &&
      (w8.side == W8_SUBS || (w8.side == W8_BOTH && w8.sent == sizes.w8_msgs))) {
    w8_flood_over();
    return;
  }
  /* The subscriber side waits for as long as the run lasts: the pinger's
   * watchdog judges progress. */
  if (wl == 8 && w8.side == W8_SUBS)
    return;
  if (idle >= STALL_NS) {
    if (wl == 8)
      fprintf(stderr,
              "svc_bench: W8: phase %d, %d of 3 subscriptions ready, %llu "
              "sent, %llu unfinished, %llu received, %llu round trips\n",
              w8.phase, w8.ready, (unsigned long long)w8.sent,
              (unsigned long long)w8.inflight,
              (unsigned long long)w8.received, (unsigned long long)w8.round);
    client_fail("no progress for 10 s", 0);
  }
}

static void client_start(void) {
  last_progress = bench_now_ns();
  uv_timer_start(&watchdog, watchdog_fired, WATCHDOG_MS, WATCHDOG_MS);
  switch (wl) {
  case 1:
    w1_start();
    break;
  case 2:
    w2_start();
    break;
  case 3:
  case 4:
    w34_start();
    break;
  case 6:
    w6_start();
    break;
  case 7:
    w7_start();
    break;
  case 8:
    w8_start();
    break;
  }
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                 */

/* The last of our handles, closed once every context has closed. The signal
 * watchers live until then because timeout(1) delivers its SIGTERM twice
 * (to the child and to its process group): with the watchers gone, the
 * second one would kill us halfway through closing. */
static void close_last_handles(void) {
  uv_close((uv_handle_t *)&close_guard, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_term, NULL);
}

static void ctx_closed(svc_ctx_t *ctx, void *arg) {
  (void)ctx;
  (void)arg;
  if (--ctx_open == 0)
    close_last_handles();
}

static void server_closed(svc_server_t *server, void *arg) {
  (void)server;
  (void)arg;
  srv = NULL;
  svc_ctx_close(srv_ctx, ctx_closed, NULL);
}

static void close_guard_fired(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "svc_bench: %d context(s) still closing after %d ms\n",
          ctx_open, CLOSE_GUARD_MS);
  exit(3);
}

/* Stops everything: our handles, the client contexts, then the server and
 * its context once the server has stopped. The loop ends when all of it
 * has closed. */
static void shutdown_all(void) {
  int i;

  if (shutting_down)
    return;
  shutting_down = 1;
  uv_close((uv_handle_t *)&watchdog, NULL);
  uv_close((uv_handle_t *)&phase_timer, NULL);
  uv_close((uv_handle_t *)&pub_retry, NULL);
  uv_close((uv_handle_t *)&w34_batch, NULL);
  for (i = 0; i < ncli_ctx; i++)
    svc_ctx_close(cli_ctx[i], ctx_closed, NULL);
  if (srv != NULL)
    svc_server_close(srv, server_closed, NULL);
  else if (srv_ctx != NULL)
    svc_ctx_close(srv_ctx, ctx_closed, NULL);
  if (ctx_open == 0) {
    close_last_handles();
    return;
  }
  /* From here on the contexts' own handles decide when the loop ends;
   * ours only catch a close that never finishes. */
  uv_unref((uv_handle_t *)&sig_int);
  uv_unref((uv_handle_t *)&sig_term);
  uv_timer_start(&close_guard, close_guard_fired, CLOSE_GUARD_MS, 0);
  uv_unref((uv_handle_t *)&close_guard);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)h;
  if (shutting_down)
    return; /* Already closing; the close guard covers a hang. */
  fprintf(stderr, "svc_bench: %s, closing\n",
          signum == SIGINT ? "SIGINT" : "SIGTERM");
  /* Being stopped is how a server ends; a client stopped early has no
   * figures to give. */
  if (role != ROLE_SERVER && !finished) {
    finished = 1;
    exit_code = 1;
  }
  shutdown_all();
}

/* Starts the measuring side against endpoint ep. */
static void start_against(const char *ep) {
  if (set_endpoint(ep) != 0) {
    fprintf(stderr, "svc_bench: endpoint too long\n");
    exit_code = 2;
    finished = 1;
    shutdown_all();
    return;
  }
  client_start();
}

static void print_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "svc_bench:   %s handle %p%s\n", uv_handle_type_name(h->type),
          (void *)h, uv_is_closing(h) ? " (closing)" : "");
}

static void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s server W URI [--quick] [--trace MODE]\n"
          "       %s client W ENDPOINT [--quick] [--qos N] [--trace MODE]\n"
          "       %s local W URI [--quick] [--trace MODE]\n"
          "W is one of W1 W2 W3 W4 W6 W7 (W5: server only, http://; W8: "
          "against an mqtt://\nbroker at --qos N: server = subscriber and "
          "echo, client = publisher and\npinger, local = both);\nURI e.g. "
          "tcp://127.0.0.1:0, http://127.0.0.1:0 or inproc://bench;\n"
          "MODE (the contexts' trace mode) is all (the default), "
          "calls, continue or off\n",
          argv0, argv0, argv0);
  exit(2);
}

/* The whole program. svccomm's bench command compiles this file with
 * SVC_BENCH_NO_MAIN and calls it (src/cli/bench.c). */
int svc_bench_main(int argc, char **argv);

int svc_bench_main(int argc, char **argv) {
  const char *pos[3];
  const char *uri;
  const char *sep;
  int npos = 0;
  int quick = 0;
  int i;
  int rc;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--qos") == 0 && i + 1 < argc &&
             argv[i + 1][0] >= '0' && argv[i + 1][0] <= '2' &&
             argv[i + 1][1] == '\0')
      bench_qos = argv[++i][0] - '0';
    else if (strcmp(argv[i], "--trace") == 0 && i + 1 < argc) {
      i++;
      if (strcmp(argv[i], "off") == 0)
        ctx_opts.trace = SVC_TRACE_OFF;
      else if (strcmp(argv[i], "calls") == 0)
        ctx_opts.trace = SVC_TRACE_CALLS;
      else if (strcmp(argv[i], "continue") == 0)
        ctx_opts.trace = SVC_TRACE_CONTINUE;
      else if (strcmp(argv[i], "all") != 0)
        usage(argv[0]);
    }
    else if (npos < 3)
      pos[npos++] = argv[i];
    else
      usage(argv[0]);
  }
  if (npos != 3)
    usage(argv[0]);
  if (strcmp(pos[0], "server") == 0)
    role = ROLE_SERVER;
  else if (strcmp(pos[0], "client") == 0)
    role = ROLE_CLIENT;
  else if (strcmp(pos[0], "local") == 0)
    role = ROLE_LOCAL;
  else
    usage(argv[0]);
  wl = bench_workload_id(pos[1]);
  /* W5 has no client of ours (wrk is the client): "server W5 URI"; W8's
   * server is the broker: "client W8 mqtt://broker". */
  if (wl < 1 || wl > 8 || (wl == 5 && role != ROLE_SERVER))
    usage(argv[0]);
  uri = pos[2];
  sep = strstr(uri, "://");
  if (sep == NULL || sep == uri ||
      (size_t)(sep - uri) + sizeof("svccomm-") > sizeof(system_name)) {
    fprintf(stderr, "svc_bench: not a URI: %s\n", uri);
    return 2;
  }
  snprintf(system_name, sizeof(system_name), "svccomm-%.*s", (int)(sep - uri),
           uri);
  /* "svccomm-mqtt@qos1", compared with the peers' @qos1; MQTT 3.1.1 (the
   * protocol the paho peer speaks) is "svccomm-mqtt311@qos1". */
  if (wl == 8)
    snprintf(system_name + strlen(system_name),
             sizeof(system_name) - strlen(system_name), "%s@qos%d",
             strstr(uri, "version=3") != NULL ? "311" : "", bench_qos);
  share_ctx = role == ROLE_LOCAL && strcmp(system_name, "svccomm-inproc") == 0;

  /* --quick: about a hundredth of the work, for smoke tests. */
  sizes.w1_warmup = quick ? BENCH_W1_WARMUP / 100 : BENCH_W1_WARMUP;
  sizes.w1_rounds = quick ? BENCH_W1_ROUNDS / 100 : BENCH_W1_ROUNDS;
  sizes.w2_warmup_ms = quick ? BENCH_W2_WARMUP_MS / 100 : BENCH_W2_WARMUP_MS;
  sizes.w2_measure_ms = quick ? BENCH_W2_MEASURE_MS / 100 : BENCH_W2_MEASURE_MS;
  sizes.w3_msgs = quick ? BENCH_W3_MSGS / 100 : BENCH_W3_MSGS;
  sizes.w4_msgs = quick ? BENCH_W4_MSGS / 100 : BENCH_W4_MSGS;
  sizes.w6_requests = quick ? BENCH_W6_REQUESTS / 100 : BENCH_W6_REQUESTS;
  sizes.w7_bytes = quick ? 16u << 20 : BENCH_W7_BYTES;
  sizes.w8_msgs = quick ? BENCH_W3_MSGS / 100 : BENCH_W3_MSGS;

  memset(req_body, 'q', sizeof(req_body));
  memset(reply_body, 'r', sizeof(reply_body));
  memset(event_body, 'e', sizeof(event_body));
  memset(chunk_body, 'c', sizeof(chunk_body));

  rc = uv_loop_init(&loop);
  if (rc != 0) {
    fprintf(stderr, "svc_bench: uv_loop_init: %s\n", uv_strerror(rc));
    return 1;
  }
  /* The signal watchers stay referenced: they keep the loop running until
   * the workload is over or we are stopped. */
  uv_signal_init(&loop, &sig_int);
  uv_signal_init(&loop, &sig_term);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_timer_init(&loop, &watchdog);
  uv_timer_init(&loop, &phase_timer);
  uv_timer_init(&loop, &pub_retry);
  uv_timer_init(&loop, &close_guard);
  uv_prepare_init(&loop, &w34_batch);

  if (wl == 8) {
    /* No server of ours: the broker is the endpoint for both sides. */
    start_against(uri);
  } else if (role == ROLE_SERVER || role == ROLE_LOCAL) {
    if (server_start(uri) != 0) {
      exit_code = 1;
      finished = 1;
      shutdown_all();
    } else if (role == ROLE_SERVER) {
      printf("READY %s\n", svc_server_endpoint(srv));
      fflush(stdout);
    }
  }
  if (wl != 8 && role != ROLE_SERVER && !shutting_down)
    start_against(role == ROLE_LOCAL ? svc_server_endpoint(srv) : uri);

  /* Several contexts share this loop, so it is run directly: no
   * svc_call_sync() is ever made, which is what svc_ctx_run() guards. */
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&loop);
  if (rc != 0) {
    fprintf(stderr, "svc_bench: handles left open on the loop:\n");
    uv_walk(&loop, print_handle, NULL);
    if (exit_code == 0)
      exit_code = 3;
  }
  bench_lat_free(&lat);
  return exit_code;
}

#ifndef SVC_BENCH_NO_MAIN
int main(int argc, char **argv) {
  return svc_bench_main(argc, argv);
}
#endif
