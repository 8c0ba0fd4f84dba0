/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* The http:// client (libcurl on the context's loop) over real loopback
 * sockets: against libsvccomm's own HTTP server in the same loop, and
 * against scripted peers that play foreign, broken, silent or dying
 * servers. */
#include <stdio.h>
#include <unistd.h>

#include "harness.h"
#include "http_script.h"

static const char *at(svc_server_t *srv, const char *path) {
  static char buf[4][512];
  static int i;
  char *b = buf[i++ % 4];

  snprintf(b, 512, "%s/%s", svc_server_endpoint(srv), path);
  return b;
}

static const char *peer_at(const struct script_peer *p, const char *path) {
  static char buf[2][256];
  static int i;
  char *b = buf[i++ % 2];

  snprintf(b, 256, "http://127.0.0.1:%d/%s", p->port, path);
  return b;
}

/* ---- Handlers. */

/* Answers with the method, the body, an x-echo header and the content
 * type, so that a test sees what crossed the wire both ways. */
static void echo_handler(svc_request_t *req, void *arg) {
  const svc_msg_t *m = svc_request_msg(req);
  size_t len;
  const char *b = svc_msg_body(m, &len);
  char text[512];
  svc_msg_t *reply;
  const char *h = svc_msg_header_get(m, "x-echo");

  (void)arg;
  snprintf(text, sizeof(text), "%s %s [%.*s]", svc_request_method(req),
           svc_request_path(req), (int)len, b);
  reply = svc_msg_new_str(text);
  if (h != NULL)
    svc_msg_header_add(reply, "x-echo", h);
  if (svc_msg_content_type(m) != NULL)
    svc_msg_set_content_type(reply, svc_msg_content_type(m));
  svc_request_reply(req, SVC_STATUS_OK, reply);
}

static void status_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, (svc_status_t)atoi(svc_request_param(req, "code")),
                    svc_msg_new_str("details"));
}

static void timeout_handler(svc_request_t *req, void *arg) {
  char text[32];
  uint64_t left = svc_request_remaining_ms(req);

  (void)arg;
  snprintf(text, sizeof(text), "%s", left == UINT64_MAX ? "none"
                                     : left > 0 && left <= 5000 ? "bounded"
                                                                : "wrong");
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str(text));
}

/* Answers {n} bytes: 'a' to 'z' over and over. */
static void bytes_handler(svc_request_t *req, void *arg) {
  size_t n = (size_t)strtoul(svc_request_param(req, "n"), NULL, 10);
  char *b = malloc(n + 1);
  size_t i;

  (void)arg;
  for (i = 0; i < n; i++)
    b[i] = (char)('a' + i % 26);
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_take(b, n, free));
}

static svc_server_t *serve(struct harness *h) {
  svc_server_t *srv;

  cr_assert_eq(svc_serve(h->ctx, "http://127.0.0.1:0", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "echo/{rest...}", echo_handler,
                                NULL), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "status/{code}", status_handler,
                                NULL), 0);
  cr_assert_eq(svc_server_route(srv, "GET", "timeout", timeout_handler,
                                NULL), 0);
  cr_assert_eq(svc_server_route(srv, "GET", "bytes/{n}", bytes_handler, NULL),
               0);
  return srv;
}

static int call(struct harness *h, const char *uri, svc_msg_t *req,
                const svc_call_opts_t *opts, svc_msg_t **reply) {
  int st = svc_call_sync(h->ctx, uri, req, opts, reply);

  cr_assert_geq(st, 0, "svc_call_sync(%s): %s", uri, svc_err_name(st));
  return st;
}

/* ---- Calls against our own server. */

/* Short methods, paths and bodies are kept without an allocation of their
 * own; longer ones are not, and both must arrive whole. */
Test(http_client, methods_paths_and_bodies_of_every_size_round_trip) {
  static const size_t sizes[] = {0,    1,    127,  128,   129,
                                 1023, 1024, 1025, 70000, 300000};
  struct harness h;
  svc_server_t *srv;
  svc_msg_t *reply = NULL;
  svc_call_opts_t opts = {0};
  char path[200];
  char want[300];
  size_t i;
  size_t j;

  harness_start(&h);
  srv = serve(&h);
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    const char *b;
    size_t len;

    snprintf(path, sizeof(path), "bytes/%zu", sizes[i]);
    cr_assert_eq(call(&h, at(srv, path), NULL, NULL, &reply), 0);
    b = svc_msg_body(reply, &len);
    cr_assert_eq(len, sizes[i]);
    for (j = 0; j < len; j++)
      cr_assert_eq(b[j], (char)('a' + j % 26), "byte %zu of %zu", j, len);
    svc_msg_free(reply);
  }
  /* A path longer than a request keeps inline. */
  memset(path, 0, sizeof(path));
  memcpy(path, "echo/", 5);
  memset(path + 5, 'p', 120);
  opts.method = "PROPPATCH";
  j = (size_t)call(&h, at(srv, path), svc_msg_new_str("x"), &opts, &reply);
  cr_assert_eq(j, 0, "%s: %s", svc_status_name((svc_status_t)j),
               reply != NULL ? (const char *)svc_msg_body(reply, NULL) : "");
  snprintf(want, sizeof(want), "%s %s [x]", opts.method, path);
  cr_assert(body_is(reply, want), "%s",
            (const char *)svc_msg_body(reply, NULL));
  svc_msg_free(reply);
  harness_finish(&h);
}

Test(http_client, methods_bodies_headers_content_type) {
  struct harness h;
  svc_server_t *srv;
  svc_msg_t *reply = NULL;
  svc_msg_t *req;
  svc_call_opts_t opts = {0};
  const char *methods[] = {"PUT", "DELETE", "PATCH"};
  size_t i;

  harness_start(&h);
  srv = serve(&h);

  /* No method and no body: GET. */
  cr_assert_eq(call(&h, at(srv, "echo/a?x=1"), NULL, NULL, &reply), 0);
  cr_assert(body_is(reply, "GET echo/a?x=1 []"), "%s",
            (const char *)svc_msg_body(reply, NULL));
  svc_msg_free(reply);

  /* A body: POST, with headers and content type both ways. */
  req = svc_msg_new_str("{\"n\":1}");
  svc_msg_header_add(req, "x-echo", "hello there");
  svc_msg_set_content_type(req, "application/json");
  cr_assert_eq(call(&h, at(srv, "echo/b"), req, NULL, &reply), 0);
  cr_assert(body_is(reply, "POST echo/b [{\"n\":1}]"));
  cr_assert_str_eq(svc_msg_header_get(reply, "x-echo"), "hello there");
  cr_assert_str_eq(svc_msg_content_type(reply), "application/json");
  svc_msg_free(reply);

  for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
    char want[64];

    opts.method = methods[i];
    cr_assert_eq(call(&h, at(srv, "echo/c"), svc_msg_new_str("x"), &opts,
                      &reply), 0);
    snprintf(want, sizeof(want), "%s echo/c [x]", methods[i]);
    cr_assert(body_is(reply, want), "%s", (const char *)svc_msg_body(reply, NULL));
    svc_msg_free(reply);
  }

  /* HEAD: the status and headers, no body. */
  opts.method = "HEAD";
  cr_assert_eq(call(&h, at(srv, "echo/d"), NULL, &opts, &reply), 0);
  cr_assert_eq(svc_msg_len(reply), 0);
  svc_msg_free(reply);

  /* Options that are ours never reach the server. */
  cr_assert_eq(call(&h, at(srv, "echo/e?a=1&svc-connect-timeout-ms=500&b=2"),
                    NULL, NULL, &reply), 0);
  cr_assert(body_is(reply, "GET echo/e?a=1&b=2 []"), "%s",
            (const char *)svc_msg_body(reply, NULL));
  svc_msg_free(reply);
  harness_finish(&h);
}

Test(http_client, every_status_round_trips) {
  struct harness h;
  svc_server_t *srv;
  int st;

  harness_start(&h);
  srv = serve(&h);
  for (st = 0; st < SVC_STATUS_COUNT; st++) {
    char path[32];
    svc_msg_t *reply = NULL;

    snprintf(path, sizeof(path), "status/%d", st);
    cr_assert_eq(call(&h, at(srv, path), NULL, NULL, &reply), st,
                 "status %s", svc_status_name(st));
    cr_assert(body_is(reply, "details"));
    svc_msg_free(reply);
  }
  /* The core's own answers: no route, wrong method. */
  cr_assert_eq(call(&h, at(srv, "nowhere"), NULL, NULL, NULL),
               SVC_STATUS_NOT_FOUND);
  {
    svc_call_opts_t o = {0};

    o.method = "DELETE";
    cr_assert_eq(call(&h, at(srv, "timeout"), NULL, &o, NULL),
                 SVC_STATUS_UNIMPLEMENTED);
  }
  harness_finish(&h);
}

Test(http_client, deadline_travels_to_the_handler) {
  struct harness h;
  svc_server_t *srv;
  svc_msg_t *reply = NULL;
  svc_call_opts_t opts = {0};

  harness_start(&h);
  srv = serve(&h);
  opts.timeout_ms = 3000;
  cr_assert_eq(call(&h, at(srv, "timeout"), NULL, &opts, &reply), 0);
  cr_assert(body_is(reply, "bounded"), "%s",
            (const char *)svc_msg_body(reply, NULL));
  svc_msg_free(reply);
  harness_finish(&h);
}

struct many {
  int done;
  int ok;
};

static void many_cb(svc_call_t *c, svc_status_t st, const svc_msg_t *reply,
                    void *arg) {
  struct many *m = arg;

  (void)c;
  m->done++;
  if (st == SVC_STATUS_OK && reply != NULL && svc_msg_len(reply) > 0)
    m->ok++;
}

Test(http_client, many_concurrent_calls) {
  struct harness h;
  svc_server_t *srv;
  struct many m = {0, 0};
  int i;
  const int n = 300;

  harness_start(&h);
  srv = serve(&h);
  for (i = 0; i < n; i++) {
    char path[32];

    snprintf(path, sizeof(path), "echo/%d", i);
    cr_assert_eq(svc_call(h.ctx, at(srv, path), svc_msg_new_str("x"), NULL,
                          many_cb, &m, NULL), 0);
  }
  while (m.done < n)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(m.ok, n);
  harness_finish(&h);
}

struct outcome {
  int done;
  svc_status_t status;
  int err;
};

static void outcome_cb(svc_call_t *c, svc_status_t st, const svc_msg_t *r,
                       void *arg) {
  struct outcome *o = arg;

  (void)r;
  o->done = 1;
  o->status = st;
  o->err = svc_call_errno(c);
}

/* ---- Against scripted peers. */

Test(http_client, foreign_server_status_codes_map) {
  struct harness h;
  struct script_peer p = {0};
  static const struct {
    const char *resp;
    svc_status_t want;
  } cases[] = {
    {"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
     SVC_STATUS_NOT_FOUND},
    {"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
     SVC_STATUS_UNAVAILABLE},
    {"HTTP/1.1 429 Slow down\r\nContent-Length: 0\r\n\r\n",
     SVC_STATUS_RESOURCE_EXHAUSTED},
    {"HTTP/1.1 401 Who\r\nContent-Length: 0\r\n\r\n",
     SVC_STATUS_UNAUTHENTICATED},
    {"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", SVC_STATUS_OK},
    /* Our header wins over the code. */
    {"HTTP/1.1 500 X\r\nSvc-Status: DATA_LOSS\r\nContent-Length: 0\r\n\r\n",
     SVC_STATUS_DATA_LOSS},
  };
  size_t i;

  harness_start(&h);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    p.resp[i] = cases[i].resp;
  p.nscript = (int)i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    p.close_after[i] = 1;
  script_start(&p);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    svc_call_opts_t o = {0};
    int st;

    o.timeout_ms = 3000;
    st = call(&h, peer_at(&p, "x"), NULL, &o, NULL);
    cr_assert_eq(st, cases[i].want, "case %zu: %s", i, svc_status_name(st));
  }
  script_stop(&p);
  harness_finish(&h);
}

Test(http_client, keep_alive_reuses_one_connection) {
  struct harness h;
  struct script_peer p = {0};
  int i;

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  p.nscript = 1;
  script_start(&p);
  for (i = 0; i < 5; i++) {
    svc_msg_t *reply = NULL;

    cr_assert_eq(call(&h, peer_at(&p, "k"), NULL, NULL, &reply), 0);
    cr_assert(body_is(reply, "hi"));
    svc_msg_free(reply);
  }
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nconns, 1, "%d connections for 5 calls", p.nconns);
  cr_assert_eq(p.nreqs, 5);
  /* Request framing as sent: a GET, our timeout header absent without a
   * deadline... */
  cr_assert(strncmp(p.heads[0], "GET /k HTTP/1.1\r\n", 17) == 0, "%s",
            p.heads[0]);
}

/* A server may drop a kept-alive connection just as the next request goes
 * out on it. The reset shows up as POLLERR on the socket; the call must go
 * to a fresh connection (libcurl's own retry), not fail as unavailable.
 * Regression: POLLERR used to reach curl as CURL_CSELECT_ERR, which fails
 * the transfer with "select/poll returned error" and no retry; the status
 * mapping test failed with it about once in a hundred runs. */
Test(http_client, a_kept_alive_connection_reset_under_a_call_is_retried) {
  struct harness h;
  struct script_peer p = {0};
  int i;

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  p.reset_after[0] = 1;
  p.resp[1] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye";
  p.nscript = 2;
  script_start(&p);
  for (i = 0; i < 2; i++) {
    svc_msg_t *reply = NULL;
    svc_call_opts_t o = {0};

    o.timeout_ms = 3000;
    cr_assert_eq(call(&h, peer_at(&p, "k"), NULL, &o, &reply), 0,
                 "call %d failed", i);
    cr_assert(body_is(reply, i == 0 ? "hi" : "bye"));
    svc_msg_free(reply);
  }
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nconns, 2);
  cr_assert_eq(p.nreqs, 3, "the second call went out twice");
}

Test(http_client, request_head_carries_deadline_and_headers) {
  struct harness h;
  struct script_peer p = {0};
  svc_call_opts_t o = {0};
  const char *hdrs[] = {"X-Trace", "abc"};
  svc_msg_t *req;

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  p.nscript = 1;
  script_start(&p);
  o.timeout_ms = 2000;
  o.headers = hdrs;
  o.nheaders = 1;
  req = svc_msg_new_str("body");
  svc_msg_set_content_type(req, "text/plain");
  cr_assert_eq(call(&h, peer_at(&p, "d"), req, &o, NULL), 0);
  harness_finish(&h);
  script_stop(&p);
  cr_assert(strncmp(p.heads[0], "POST /d HTTP/1.1\r\n", 18) == 0, "%s",
            p.heads[0]);
  cr_assert_not_null(script_find(p.heads[0], "\r\nSvc-Timeout: "));
  cr_assert_not_null(script_find(p.heads[0], "\r\nX-Trace: abc\r\n"));
  cr_assert_not_null(script_find(p.heads[0], "\r\nContent-Type: text/plain\r\n"));
  cr_assert_not_null(script_find(p.heads[0], "\r\nContent-Length: 4\r\n"));
  /* We know the length: no 100-continue round trip. */
  cr_assert_null(script_find(p.heads[0], "\r\nExpect:"));
}

Test(http_client, silent_server_hits_the_deadline) {
  struct harness h;
  struct script_peer p = {0};
  svc_call_opts_t o = {0};
  uint64_t t0;
  uint64_t took;

  harness_start(&h);
  p.resp[0] = NULL; /* Never answers. */
  p.nscript = 1;
  script_start(&p);
  o.timeout_ms = 300;
  t0 = uv_hrtime();
  cr_assert_eq(call(&h, peer_at(&p, "slow"), NULL, &o, NULL),
               SVC_STATUS_DEADLINE_EXCEEDED);
  took = (uv_hrtime() - t0) / 1000000;
  cr_assert(took >= 250 && took < 3000, "took %llu ms",
            (unsigned long long)took);
  harness_finish(&h);
  script_stop(&p);
}

Test(http_client, server_closing_mid_response_fails_the_call) {
  struct harness h;
  struct script_peer p = {0};
  struct outcome out = {0, 0, 0};

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b";
  p.close_after[0] = 1;
  p.nscript = 1;
  script_start(&p);
  cr_assert_eq(svc_call(h.ctx, peer_at(&p, "cut"), NULL, NULL, outcome_cb,
                        &out, NULL), 0);
  harness_run_until(&h, &out.done);
  cr_assert_eq(out.status, SVC_STATUS_UNAVAILABLE, "%s",
               svc_status_name(out.status));
  cr_assert_eq(out.err, SVC_ECONNRESET, "%s", svc_err_name(out.err));
  harness_finish(&h);
  script_stop(&p);
}

Test(http_client, refused_connection_is_unavailable) {
  struct harness h;
  struct script_peer p = {0};
  struct outcome out = {0, 0, 0};
  char uri[64];

  harness_start(&h);
  /* A port that was just free: bind, learn it, close. */
  p.resp[0] = "";
  p.nscript = 1;
  script_start(&p);
  script_stop(&p);
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/x", p.port);
  cr_assert_eq(svc_call(h.ctx, uri, NULL, NULL, outcome_cb, &out, NULL), 0);
  harness_run_until(&h, &out.done);
  cr_assert_eq(out.status, SVC_STATUS_UNAVAILABLE);
  cr_assert_eq(out.err, SVC_ECONNREFUSED, "%s", svc_err_name(out.err));
  harness_finish(&h);
}

Test(http_client, idempotent_call_is_retried_on_another_connection) {
  struct harness h;
  struct script_peer p = {0};
  svc_call_opts_t o = {0};
  svc_msg_t *reply = NULL;

  harness_start(&h);
  /* The first connection dies without an answer; the second answers. */
  p.resp[0] = "";
  p.close_after[0] = 1;
  p.resp[1] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain";
  p.nscript = 2;
  script_start(&p);
  o.idempotent = 1;
  o.retry.max_attempts = 3;
  o.retry.initial_backoff_ms = 10;
  o.timeout_ms = 3000;
  cr_assert_eq(call(&h, peer_at(&p, "r"), NULL, &o, &reply), 0);
  cr_assert(body_is(reply, "again"));
  svc_msg_free(reply);
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nconns, 2);
}

Test(http_client, bad_client_options_are_refused) {
  struct harness h;
  struct script_peer p = {0};
  svc_msg_t *req = svc_msg_new_str("x");
  char uri[128];
  int rc;

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  p.nscript = 1;
  script_start(&p);
  /* On the URI that sets the endpoint up... */
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/x?svc-nonsense=1", p.port);
  rc = svc_call_sync(h.ctx, uri, req, NULL, NULL);
  cr_assert_eq(rc, SVC_EINVAL, "%s", svc_err_name(rc));
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/x?svc-max-body=big",
           p.port);
  rc = svc_call_sync(h.ctx, uri, req, NULL, NULL);
  cr_assert_eq(rc, SVC_EINVAL, "%s", svc_err_name(rc));
  /* ... and on a later one, once the endpoint works. */
  cr_assert_eq(call(&h, peer_at(&p, "x"), NULL, NULL, NULL), 0);
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/x?svc-insecure=2", p.port);
  {
    struct outcome out = {0, 0, 0};

    cr_assert_eq(svc_call(h.ctx, uri, req, NULL, outcome_cb, &out, NULL), 0);
    harness_run_until(&h, &out.done);
    cr_assert_eq(out.status, SVC_STATUS_INVALID_ARGUMENT, "%s %s",
                 svc_status_name(out.status), svc_err_name(out.err));
    cr_assert_eq(out.err, SVC_EINVAL);
  }
  harness_finish(&h);
  script_stop(&p);
}

Test(http_client, oversized_reply_is_refused_whole) {
  struct harness h;
  struct script_peer p = {0};
  struct outcome out = {0, 0, 0};
  static char resp[512];

  harness_start(&h);
  snprintf(resp, sizeof(resp),
           "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n%0300d", 7);
  p.resp[0] = resp;
  p.nscript = 1;
  script_start(&p);
  cr_assert_eq(svc_call(h.ctx, peer_at(&p, "big?svc-max-body=100"), NULL,
                        NULL, outcome_cb, &out, NULL), 0);
  harness_run_until(&h, &out.done);
  cr_assert_eq(out.status, SVC_STATUS_RESOURCE_EXHAUSTED, "%s",
               svc_status_name(out.status));
  cr_assert_eq(out.err, SVC_EMSGSIZE);
  harness_finish(&h);
  script_stop(&p);
}

/* ---- Events: publish is a POST to the hub, subscribe reads SSE. */

struct events {
  int n;
  int ready;
  int final;
  int final_status;
  char topics[8][64];
  char bodies[8][64];
  size_t lens[8];
  char hdr[64];
  char ctype[64];
};

static void on_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ((struct events *)arg)->ready = 1;
}

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct events *e = arg;

  (void)sub;
  if (ev == NULL) {
    e->final = 1;
    e->final_status = status;
    return;
  }
  if (e->n < 8) {
    size_t len;
    const char *b = svc_msg_body(ev, &len);
    const char *x = svc_msg_header_get(ev, "x-kind");

    snprintf(e->topics[e->n], 64, "%s", svc_msg_topic(ev));
    e->lens[e->n] = len;
    memcpy(e->bodies[e->n], b, len < 63 ? len : 63);
    if (x != NULL)
      snprintf(e->hdr, sizeof(e->hdr), "%s", x);
    if (svc_msg_content_type(ev) != NULL)
      snprintf(e->ctype, sizeof(e->ctype), "%s", svc_msg_content_type(ev));
  }
  e->n++;
}

struct pubres {
  int done;
  int status;
};

static void pub_cb(svc_ctx_t *ctx, int status, void *arg) {
  struct pubres *p = arg;

  (void)ctx;
  p->done = 1;
  p->status = status;
}

Test(http_client, publish_and_sse_subscribe_through_our_server) {
  struct harness h;
  svc_server_t *srv;
  struct events remote = {0};
  struct pubres pr = {0, 0};
  svc_sub_opts_t so = {0};
  svc_pub_opts_t po = {0};
  svc_msg_t *m;
  static const char bin[5] = {'a', '\0', '\r', '\n', 'z'};

  harness_start(&h);
  srv = serve(&h);
  so.on_ready = on_ready;
  /* A subscriber over SSE. */
  cr_assert_eq(svc_subscribe(h.ctx, at(srv, "orders/#"), &so, on_event,
                             &remote, NULL), 0);
  harness_run_until(&h, &remote.ready);

  /* A client publish (POST) with a header and a content type. */
  m = svc_msg_new_str("line one\nline two");
  svc_msg_header_add(m, "x-kind", "text");
  svc_msg_set_content_type(m, "text/plain");
  po.qos = 1;
  cr_assert_eq(svc_publish(h.ctx, at(srv, "orders/placed"), m, &po, pub_cb,
                           &pr), 0);
  harness_run_until(&h, &pr.done);
  cr_assert_eq(pr.status, 0, "%s", svc_err_name(pr.status));

  /* The serving process publishes a binary body. */
  cr_assert_eq(svc_server_publish(srv, "orders/paid", svc_msg_new(bin, 5),
                                  NULL, NULL, NULL), 0);
  while (remote.n < 2)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_str_eq(remote.topics[0], "orders/placed");
  cr_assert_eq(remote.lens[0], 17);
  cr_assert(memcmp(remote.bodies[0], "line one\nline two", 17) == 0);
  cr_assert_str_eq(remote.hdr, "text");
  cr_assert_str_eq(remote.ctype, "text/plain");
  cr_assert_str_eq(remote.topics[1], "orders/paid");
  cr_assert_eq(remote.lens[1], 5);
  cr_assert(memcmp(remote.bodies[1], bin, 5) == 0);
  harness_finish(&h);
}

Test(http_client, publish_refusals_are_errors) {
  struct harness h;
  struct script_peer p = {0};
  struct pubres pr = {0, 0};
  char uri[128];

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 429 Too Many\r\nContent-Length: 0\r\n\r\n";
  p.nscript = 1;
  script_start(&p);
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/a/b", p.port);
  cr_assert_eq(svc_publish(h.ctx, uri, svc_msg_new_str("x"), NULL, pub_cb,
                           &pr), 0);
  harness_run_until(&h, &pr.done);
  cr_assert_eq(pr.status, SVC_EAGAIN, "%s", svc_err_name(pr.status));
  harness_finish(&h);
  script_stop(&p);
  cr_assert(strncmp(p.heads[0], "POST /topics/a/b HTTP/1.1\r\n", 27) == 0,
            "%s", p.heads[0]);
}

Test(http_client, sse_reconnects_with_last_event_id) {
  struct harness h;
  struct script_peer p = {0};
  struct events ev = {0};
  svc_sub_opts_t so = {0};
  svc_sub_t *sub;
  char uri[128];

  harness_start(&h);
  /* The first stream gives two events and dies; the second, opened again
   * by the client, must say where it stopped and gets the third. */
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
              "Content-Length: 200\r\n\r\n"
              ": hello\n\nretry: 50\nid: 1\nevent: t/a\ndata: one\n\n"
              "id: 2\r\nevent: t/b\r\ndata: two\r\ndata: lines\r\n\r\n";
  p.close_after[0] = 1;
  p.resp[1] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
              "Transfer-Encoding: chunked\r\n\r\n"
              "1e\r\nid: 3\nevent: t/c\ndata: three\n\n\r\n";
  p.nscript = 2;
  script_start(&p);
  so.on_ready = on_ready;
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/t/#", p.port);
  cr_assert_eq(svc_subscribe(h.ctx, uri, &so, on_event, &ev, &sub), 0);
  while (ev.n < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_str_eq(ev.topics[0], "t/a");
  cr_assert_str_eq(ev.bodies[0], "one");
  cr_assert_str_eq(ev.topics[1], "t/b");
  cr_assert_str_eq(ev.bodies[1], "two\nlines");
  cr_assert_str_eq(ev.topics[2], "t/c");
  cr_assert_str_eq(ev.bodies[2], "three");
  svc_unsubscribe(sub);
  harness_run_until(&h, &ev.final);
  cr_assert_eq(ev.final_status, SVC_ECANCELED);
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nconns, 2);
  cr_assert(strncmp(p.heads[0], "GET /topics/t/%23 HTTP/1.1\r\n", 28) == 0,
            "%s", p.heads[0]);
  cr_assert_not_null(script_find(p.heads[0], "\r\nAccept: text/event-stream"));
  cr_assert_null(script_find(p.heads[0], "Last-Event-ID"));
  cr_assert_not_null(script_find(p.heads[1], "\r\nLast-Event-ID: 2\r\n"),
                     "%s", p.heads[1]);
}

Test(http_client, sse_refusal_ends_the_subscription) {
  struct harness h;
  struct script_peer p = {0};
  struct events ev = {0};
  char uri[128];

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!";
  p.nscript = 1;
  script_start(&p);
  snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/t", p.port);
  cr_assert_eq(svc_subscribe(h.ctx, uri, NULL, on_event, &ev, NULL), 0);
  harness_run_until(&h, &ev.final);
  cr_assert_eq(ev.final_status, SVC_ENOTSUP, "%s",
               svc_err_name(ev.final_status));
  cr_assert_eq(ev.n, 0);
  harness_finish(&h);
  script_stop(&p);
}

/* ---- Streams: a chunked upload answered by a chunked download. */

struct echo_stream {
  size_t got;
  int ended;
  int closed;
  int status;
};

static void srv_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)arg;
  svc_stream_write(s, svc_msg_dup(msg), NULL, NULL);
}

static void srv_on_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}

static void srv_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {0};

  (void)srv;
  (void)arg;
  cbs.on_data = srv_on_data;
  cbs.on_end = srv_on_end;
  svc_stream_accept(s, NULL, &cbs, NULL);
}

static void cli_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct echo_stream *e = arg;

  (void)s;
  e->got += svc_msg_len(msg);
}

static void cli_on_end(svc_stream_t *s, void *arg) {
  (void)s;
  ((struct echo_stream *)arg)->ended = 1;
}

static void cli_on_close(svc_stream_t *s, int status, void *arg) {
  struct echo_stream *e = arg;

  (void)s;
  e->closed = 1;
  e->status = status;
}

Test(http_client, stream_echo_round_trip) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  svc_stream_cbs_t cbs = {0};
  struct echo_stream e = {0, 0, 0, 0};
  char chunk[1000];
  int i;

  harness_start(&h);
  srv = serve(&h);
  cr_assert_eq(svc_server_stream_route(srv, "pipe", srv_accept, NULL), 0);
  cbs.on_data = cli_on_data;
  cbs.on_end = cli_on_end;
  cbs.on_close = cli_on_close;
  memset(chunk, 'q', sizeof(chunk));
  cr_assert_eq(svc_stream(h.ctx, at(srv, "pipe"), NULL, &cbs, &e, &s), 0);
  for (i = 0; i < 100; i++)
    cr_assert_eq(svc_stream_write(s, svc_msg_new(chunk, sizeof(chunk)), NULL,
                                  NULL), 0);
  cr_assert_eq(svc_stream_end(s), 0);
  harness_run_until(&h, &e.closed);
  cr_assert_eq(e.status, 0, "%s", svc_err_name(e.status));
  cr_assert(e.ended);
  cr_assert_eq(e.got, 100 * sizeof(chunk));
  harness_finish(&h);
}

Test(http_client, stream_to_unrouted_path_is_reset) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  svc_stream_cbs_t cbs = {0};
  struct echo_stream e = {0, 0, 0, 0};

  harness_start(&h);
  srv = serve(&h);
  cbs.on_close = cli_on_close;
  cr_assert_eq(svc_stream(h.ctx, at(srv, "nope"), NULL, &cbs, &e, &s), 0);
  harness_run_until(&h, &e.closed);
  cr_assert_eq(e.status, SVC_ECONNRESET, "%s", svc_err_name(e.status));
  harness_finish(&h);
}

/* ---- Stream flow control: a paused reader holds the server's writer. */

#define PUSH_TOTAL (32u << 20)
#define PUSH_CHUNK (32u << 10)

struct push {
  svc_stream_t *srv_stream;
  size_t written;
  int writer_blocked;
  size_t got;
  int closed;
  int status;
};

static void push_fill(svc_stream_t *s, struct push *p) {
  static char chunk[PUSH_CHUNK];

  while (p->written < PUSH_TOTAL) {
    svc_msg_t *m = svc_msg_new(chunk, sizeof(chunk));
    int rc = svc_stream_write(s, m, NULL, NULL);

    if (rc == SVC_EAGAIN) {
      svc_msg_free(m);
      p->writer_blocked = 1;
      return;
    }
    cr_assert_eq(rc, 0, "%s", svc_err_name(rc));
    p->written += sizeof(chunk);
  }
  svc_stream_end(s);
}

static void push_writable(svc_stream_t *s, void *arg) {
  push_fill(s, arg);
}

static void push_srv_end(svc_stream_t *s, void *arg) {
  (void)s;
  (void)arg;
}

static void push_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  struct push *p = arg;
  svc_stream_cbs_t cbs = {0};

  (void)srv;
  cbs.on_writable = push_writable;
  cbs.on_end = push_srv_end;
  cr_assert_eq(svc_stream_accept(s, NULL, &cbs, p), 0);
  p->srv_stream = s;
  push_fill(s, p);
}

static void push_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)s;
  ((struct push *)arg)->got += svc_msg_len(msg);
}

static void push_close(svc_stream_t *s, int status, void *arg) {
  struct push *p = arg;

  (void)s;
  p->closed = 1;
  p->status = status;
}

static void stop_loop(void *arg) {
  *(int *)arg = 1;
}

Test(http_client, paused_stream_reader_holds_the_writer) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  svc_stream_cbs_t cbs = {0};
  svc_stream_opts_t so = {0};
  struct push p;
  int waited = 0;

  memset(&p, 0, sizeof(p));
  harness_start(&h);
  srv = serve(&h);
  cr_assert_eq(svc_server_stream_route(srv, "push", push_accept, &p), 0);
  cbs.on_data = push_data;
  cbs.on_close = push_close;
  so.window = 128u << 10;
  cr_assert_eq(svc_stream(h.ctx, at(srv, "push"), &so, &cbs, &p, &s), 0);
  /* This side sends nothing: its half ends at once. */
  cr_assert_eq(svc_stream_end(s), 0);
  svc_stream_pause(s);
  run_later(&h.loop, 500, stop_loop, &waited);
  harness_run_until(&h, &waited);
  /* Paused: nothing delivered, and the writer was held back by the window,
   * the send buffer and the kernel's socket buffers (a few MiB on
   * loopback), far from the 32 MiB it wanted to write. */
  cr_assert_eq(p.got, 0);
  cr_assert(p.writer_blocked, "the server's writer never blocked");
  cr_assert_lt(p.written, 16u << 20, "%zu written", p.written);
  svc_stream_resume(s);
  harness_run_until(&h, &p.closed);
  cr_assert_eq(p.status, 0, "%s", svc_err_name(p.status));
  cr_assert_eq(p.got, PUSH_TOTAL);
  harness_finish(&h);
}

/* ---- A server that goes away mid-stream. */

static void hold_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {0};

  (void)srv;
  (void)arg;
  cr_assert_eq(svc_stream_accept(s, NULL, &cbs, NULL), 0);
}

static void close_server(void *arg) {
  svc_server_close(arg, NULL, NULL);
}

Test(http_client, server_closing_resets_open_streams) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  svc_stream_cbs_t cbs = {0};
  struct echo_stream e = {0, 0, 0, 0};

  harness_start(&h);
  srv = serve(&h);
  cr_assert_eq(svc_server_stream_route(srv, "hold", hold_accept, NULL), 0);
  cbs.on_close = cli_on_close;
  cr_assert_eq(svc_stream(h.ctx, at(srv, "hold"), NULL, &cbs, &e, &s), 0);
  cr_assert_eq(svc_stream_write(s, svc_msg_new_str("x"), NULL, NULL), 0);
  run_later(&h.loop, 200, close_server, srv);
  harness_run_until(&h, &e.closed);
  cr_assert_eq(e.status, SVC_ECONNRESET, "%s", svc_err_name(e.status));
  harness_finish(&h);
}

/* Each SSE subscription holds a connection of its own for its lifetime:
 * several to one endpoint must all come up (and not wait for each other). */
Test(http_client, several_subscriptions_to_one_endpoint) {
  struct harness h;
  svc_server_t *srv;
  struct events ev[4];
  svc_sub_opts_t so = {0};
  const char *filters[4] = {"a/+", "a/b", "#", "c"};
  int i;
  int ready = 0;

  memset(ev, 0, sizeof(ev));
  harness_start(&h);
  srv = serve(&h);
  so.on_ready = on_ready;
  for (i = 0; i < 4; i++)
    cr_assert_eq(svc_subscribe(h.ctx, at(srv, filters[i]), &so, on_event,
                               &ev[i], NULL), 0);
  while (ready < 4) {
    uv_run(&h.loop, UV_RUN_ONCE);
    for (ready = 0, i = 0; i < 4; i++)
      ready += ev[i].ready;
  }
  cr_assert_eq(svc_server_publish(srv, "a/b", svc_msg_new_str("x"), NULL,
                                  NULL, NULL), 0);
  while (ev[0].n + ev[1].n + ev[2].n < 3)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(ev[3].n, 0);
  harness_finish(&h);
}

/* ---- https:// through libcurl's TLS, against openssl s_server with a
 * certificate made for the test (its subjectAltName is 127.0.0.1). */

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

struct tls_peer {
  char dir[64];
  pid_t pid;
  int port;
};

/* Runs argv quietly and returns its exit status. */
static int run_wait(char *const argv[]) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int st = 0;
  int rc;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return -1;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void tls_start(struct tls_peer *t) {
  char cert[96];
  char key[96];
  char san[] = "subjectAltName=IP:127.0.0.1";
  int fds[2];
  posix_spawn_file_actions_t fa;
  FILE *out;
  char line[256];

  snprintf(t->dir, sizeof(t->dir), "/tmp/svc-tls-XXXXXX");
  cr_assert_not_null(mkdtemp(t->dir));
  snprintf(cert, sizeof(cert), "%s/c.pem", t->dir);
  snprintf(key, sizeof(key), "%s/k.pem", t->dir);
  {
    char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=svc-test",
                    "-addext", san, NULL};
    cr_assert_eq(run_wait(argv), 0, "openssl req failed");
  }
  cr_assert_eq(pipe(fds), 0);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  {
    char *argv[] = {"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert",
                    cert, "-key", key, "-www", NULL};
    cr_assert_eq(posix_spawnp(&t->pid, "openssl", &fa, NULL, argv, environ), 0);
  }
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  out = fdopen(fds[0], "r");
  cr_assert_not_null(out);
  t->port = 0;
  while (t->port == 0 && fgets(line, sizeof(line), out) != NULL) {
    const char *c = strrchr(line, ':');

    if (strncmp(line, "ACCEPT ", 7) == 0 && c != NULL)
      t->port = atoi(c + 1);
  }
  fclose(out); /* s_server writes little more; a closed pipe only loses it. */
  cr_assert_gt(t->port, 0, "openssl s_server did not start");
}

static void tls_stop(struct tls_peer *t) {
  char cmd[128];

  kill(t->pid, SIGTERM);
  waitpid(t->pid, NULL, 0);
  snprintf(cmd, sizeof(cmd), "%s/c.pem", t->dir);
  unlink(cmd);
  snprintf(cmd, sizeof(cmd), "%s/k.pem", t->dir);
  unlink(cmd);
  rmdir(t->dir);
}

Test(http_client, https_verifies_the_server) {
  struct harness h;
  struct tls_peer t;
  svc_msg_t *reply = NULL;
  svc_call_opts_t o = {0};
  char uri[256];

  signal(SIGPIPE, SIG_IGN); /* s_server's pipe, closed above. */
  tls_start(&t);
  harness_start(&h);
  o.timeout_ms = 5000;
  snprintf(uri, sizeof(uri), "https://127.0.0.1:%d/?svc-cainfo=%s/c.pem",
           t.port, t.dir);
  cr_assert_eq(call(&h, uri, NULL, &o, &reply), 0);
  cr_assert_gt(svc_msg_len(reply), 0);
  svc_msg_free(reply);
  harness_finish(&h);
  tls_stop(&t);
}

Test(http_client, https_refuses_an_unknown_certificate) {
  struct harness h;
  struct tls_peer t;
  struct outcome out = {0, 0, 0};
  svc_call_opts_t o = {0};
  char uri[128];

  signal(SIGPIPE, SIG_IGN);
  tls_start(&t);
  harness_start(&h);
  o.timeout_ms = 5000;
  snprintf(uri, sizeof(uri), "https://127.0.0.1:%d/", t.port);
  cr_assert_eq(svc_call(h.ctx, uri, NULL, &o, outcome_cb, &out, NULL), 0);
  harness_run_until(&h, &out.done);
  cr_assert_eq(out.status, SVC_STATUS_UNAVAILABLE, "%s",
               svc_status_name(out.status));
  cr_assert_eq(out.err, SVC_EPROTO, "%s", svc_err_name(out.err));
  harness_finish(&h);
  /* svc-insecure=1 skips the checks (a new context: options belong to the
   * endpoint's first URI). */
  harness_start(&h);
  snprintf(uri, sizeof(uri), "https://127.0.0.1:%d/?svc-insecure=1", t.port);
  cr_assert_eq(call(&h, uri, NULL, &o, NULL), 0);
  harness_finish(&h);
  tls_stop(&t);
}

/* ---- The server ends its side first: the client learns it at once (the
 * end trailer) and may still send; the stream then closes cleanly. */

struct first {
  size_t srv_got;
  int srv_ended;
};

static void first_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)s;
  ((struct first *)arg)->srv_got += svc_msg_len(msg);
}

static void first_end(svc_stream_t *s, void *arg) {
  (void)s;
  ((struct first *)arg)->srv_ended = 1;
}

static void first_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_cbs_t cbs = {0};

  (void)srv;
  cbs.on_data = first_data;
  cbs.on_end = first_end;
  cr_assert_eq(svc_stream_accept(s, NULL, &cbs, arg), 0);
  cr_assert_eq(svc_stream_write(s, svc_msg_new_str("bye"), NULL, NULL), 0);
  cr_assert_eq(svc_stream_end(s), 0);
}

Test(http_client, server_may_end_first) {
  struct harness h;
  svc_server_t *srv;
  svc_stream_t *s;
  svc_stream_cbs_t cbs = {0};
  struct echo_stream e = {0, 0, 0, 0};
  struct first f = {0, 0};
  int i;

  harness_start(&h);
  srv = serve(&h);
  cr_assert_eq(svc_server_stream_route(srv, "first", first_accept, &f), 0);
  cbs.on_data = cli_on_data;
  cbs.on_end = cli_on_end;
  cbs.on_close = cli_on_close;
  cr_assert_eq(svc_stream(h.ctx, at(srv, "first"), NULL, &cbs, &e, &s), 0);
  harness_run_until(&h, &e.ended);
  cr_assert_eq(e.got, 3);
  cr_assert_eq(e.closed, 0, "closed before this side ended");
  for (i = 0; i < 3; i++)
    cr_assert_eq(svc_stream_write(s, svc_msg_new_str("late"), NULL, NULL), 0);
  cr_assert_eq(svc_stream_end(s), 0);
  harness_run_until(&h, &e.closed);
  cr_assert_eq(e.status, 0, "%s", svc_err_name(e.status));
  while (!f.srv_ended)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(f.srv_got, 12);
  harness_finish(&h);
}

/* Headers the message never had do not appear: no libcurl defaults
 * (Accept, a form Content-Type, Expect) on a request, bodiless or not. */
Test(http_client, no_made_up_request_headers) {
  struct harness h;
  struct script_peer p = {0};
  svc_call_opts_t o = {0};
  int i;

  harness_start(&h);
  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  p.nscript = 1;
  script_start(&p);
  o.method = "POST";
  cr_assert_eq(call(&h, peer_at(&p, "a"), NULL, &o, NULL), 0);
  cr_assert_eq(call(&h, peer_at(&p, "b"), NULL, NULL, NULL), 0);
  cr_assert_eq(call(&h, peer_at(&p, "c"), svc_msg_new_str("x"), NULL, NULL),
               0);
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nreqs, 3);
  cr_assert(strncmp(p.heads[0], "POST /a HTTP/1.1\r\n", 18) == 0);
  cr_assert(strncmp(p.heads[1], "GET /b HTTP/1.1\r\n", 17) == 0);
  for (i = 0; i < 3; i++) {
    cr_assert_null(script_find(p.heads[i], "\r\nAccept:"), "%s", p.heads[i]);
    cr_assert_null(script_find(p.heads[i], "\r\nContent-Type:"), "%s",
                   p.heads[i]);
    cr_assert_null(script_find(p.heads[i], "\r\nExpect:"), "%s", p.heads[i]);
  }
}

/* A call's transfer is kept for the next one with what the last request
 * set undone: each request goes out with its own method and body, whatever
 * went out before it on the same handle, to the same URL or another. */
Test(http_client, kept_transfers_forget_the_last_request) {
  static const struct {
    const char *method;
    const char *body;
    const char *path;
    const char *want; /* NULL: HEAD, no body back. */
  } seq[] = {
      {"POST", "one", "echo/a", "POST echo/a [one]"},
      {NULL, NULL, "echo/a", "GET echo/a []"},
      {"HEAD", NULL, "echo/a", NULL},
      {NULL, NULL, "echo/a", "GET echo/a []"},
      {"PUT", "two", "echo/b", "PUT echo/b [two]"},
      {NULL, "three", "echo/b", "POST echo/b [three]"},
      {NULL, NULL, "echo/a", "GET echo/a []"},
      {"DELETE", NULL, "echo/b", "DELETE echo/b []"},
      {NULL, NULL, "echo/b", "GET echo/b []"},
      {"HEAD", NULL, "echo/b", NULL},
      {"PATCH", "four", "echo/a", "PATCH echo/a [four]"},
  };
  struct harness h;
  svc_server_t *srv;
  svc_msg_t *reply = NULL;
  svc_call_opts_t o = {0};
  size_t i;

  harness_start(&h);
  srv = serve(&h);
  for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
    o.method = seq[i].method;
    cr_assert_eq(call(&h, at(srv, seq[i].path),
                      seq[i].body != NULL ? svc_msg_new_str(seq[i].body)
                                          : NULL,
                      &o, &reply),
                 0, "request %zu", i);
    if (seq[i].want != NULL)
      cr_assert(body_is(reply, seq[i].want), "request %zu: %s", i,
                (const char *)svc_msg_body(reply, NULL));
    else
      cr_assert_eq(svc_msg_len(reply), 0, "request %zu", i);
    svc_msg_free(reply);
  }
  harness_finish(&h);
}

/* Starts p answering every request with resp. */
static void answer_with(struct script_peer *p, const char *resp) {
  p->resp[0] = resp;
  p->nscript = 1;
  script_start(p);
}

/* Every response header reaches the reply, a name as long as a message
 * allows included; only "ce-" attributes are percent-decoded. */
Test(http_client, response_headers_arrive_whole) {
  static char resp[1024];
  char name[256];
  struct harness h;
  struct script_peer p = {0};
  svc_msg_t *reply = NULL;

  memset(name, 'n', sizeof(name) - 1);
  name[0] = 'X';
  name[1] = '-';
  name[sizeof(name) - 1] = '\0';
  snprintf(resp, sizeof(resp),
           "HTTP/1.1 200 OK\r\n%s: long\r\nX-Pct: a%%20b\r\n"
           "ce-subject: a%%20b\r\nContent-Type: text/x-a\r\n"
           "Svc-Status: NOT_FOUND\r\nContent-Length: 2\r\n\r\nhi",
           name);
  harness_start(&h);
  answer_with(&p, resp);
  cr_assert_eq(call(&h, peer_at(&p, "h"), NULL, NULL, &reply),
               SVC_STATUS_NOT_FOUND);
  cr_assert_str_eq(svc_msg_header_get(reply, name), "long");
  cr_assert_str_eq(svc_msg_header_get(reply, "x-pct"), "a%20b");
  cr_assert_str_eq(svc_msg_header_get(reply, "ce-subject"), "a b");
  cr_assert_str_eq(svc_msg_content_type(reply), "text/x-a");
  /* Framing and status headers are HTTP's, not the message's. */
  cr_assert_null(svc_msg_header_get(reply, "content-length"));
  cr_assert_null(svc_msg_header_get(reply, "svc-status"));
  cr_assert(body_is(reply, "hi"));
  svc_msg_free(reply);
  harness_finish(&h);
  script_stop(&p);
}

/* A header name longer than a message can hold fails the call as too
 * large, like too many headers: no reply with a header missing. */
Test(http_client, response_header_name_over_the_limit_is_refused) {
  static char resp[1024];
  char name[257];
  struct harness h;
  struct script_peer p = {0};

  memset(name, 'n', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  snprintf(resp, sizeof(resp),
           "HTTP/1.1 200 OK\r\n%s: long\r\nContent-Length: 0\r\n\r\n",
           name);
  harness_start(&h);
  answer_with(&p, resp);
  cr_assert_eq(call(&h, peer_at(&p, "h"), NULL, NULL, NULL),
               SVC_STATUS_RESOURCE_EXHAUSTED);
  harness_finish(&h);
  script_stop(&p);
}

static void clear_proxy_env(void) {
  static const char *const names[] = {
      "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
      "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};
  size_t i;

  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    unsetenv(names[i]);
}

/* The proxy variables hold as libcurl reads them (they are looked up once
 * per endpoint, not on every call). Criterion runs each test in a process
 * of its own, so the environment changes stay here. */
Test(http_client, proxy_from_the_environment) {
  struct harness h;
  struct script_peer p = {0};
  svc_msg_t *reply = NULL;
  char proxy[64];

  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  p.nscript = 1;
  script_start(&p);
  clear_proxy_env();
  snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", p.port);
  setenv("http_proxy", proxy, 1);
  harness_start(&h);
  /* Nothing listens on port 9: only the proxy can answer. */
  cr_assert_eq(call(&h, "http://127.0.0.1:9/via", NULL, NULL, &reply), 0);
  cr_assert(body_is(reply, "ok"));
  svc_msg_free(reply);
  cr_assert_eq(call(&h, "http://127.0.0.1:9/again", NULL, NULL, NULL), 0);
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nreqs, 2);
  cr_assert(strncmp(p.heads[0], "GET http://127.0.0.1:9/via HTTP/1.1\r\n",
                    37) == 0,
            "%s", p.heads[0]);
}

Test(http_client, no_proxy_and_upper_case_http_proxy_go_direct) {
  struct harness h;
  struct script_peer p = {0};

  p.resp[0] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  p.nscript = 1;
  script_start(&p);
  clear_proxy_env();
  /* Proxies nobody listens on. */
  setenv("http_proxy", "http://127.0.0.1:9", 1);
  setenv("no_proxy", "127.0.0.1", 1);
  harness_start(&h);
  cr_assert_eq(call(&h, peer_at(&p, "direct"), NULL, NULL, NULL), 0);
  harness_finish(&h);
  /* HTTP_PROXY is not read for http:// ("httpoxy"), as libcurl does. */
  clear_proxy_env();
  setenv("HTTP_PROXY", "http://127.0.0.1:9", 1);
  harness_start(&h);
  cr_assert_eq(call(&h, peer_at(&p, "upper"), NULL, NULL, NULL), 0);
  harness_finish(&h);
  script_stop(&p);
  cr_assert_eq(p.nreqs, 2);
  cr_assert(strncmp(p.heads[0], "GET /direct HTTP/1.1\r\n", 22) == 0, "%s",
            p.heads[0]);
  cr_assert(strncmp(p.heads[1], "GET /upper HTTP/1.1\r\n", 21) == 0, "%s",
            p.heads[1]);
}
