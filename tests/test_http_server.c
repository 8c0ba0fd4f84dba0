/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* The http:// server against raw sockets (exact bytes) and the real curl
 * tool: verbs, routes, status mapping, headers, keep-alive, pipelining,
 * chunked bodies, 100-continue, HTTP/1.0, limits and timeouts, the hub
 * over HTTP (publish and SSE), streams, and many connections. White-box
 * only to watch the server's hub and memory from inside. */
#include "internal.h"
#include "transports/http_server.h"

#include <stdio.h>

#include "http_raw.h"

TestSuite(http_server, .timeout = 20);

/* ---- Fixtures. */

static void echo_handler(svc_request_t *req, void *arg) {
  const svc_msg_t *in = svc_request_msg(req);
  size_t len;
  const void *b = svc_msg_body(in, &len);
  svc_msg_t *out = svc_msg_new(b, len);
  char tag[64];
  (void)arg;
  snprintf(tag, sizeof(tag), "%s %s", svc_request_method(req),
           svc_request_path(req));
  svc_msg_header_add(out, "X-Seen", tag);
  if (svc_msg_content_type(in) != NULL)
    svc_msg_set_content_type(out, svc_msg_content_type(in));
  svc_request_reply(req, SVC_STATUS_OK, out);
}

static void user_handler(svc_request_t *req, void *arg) {
  char b[128];
  (void)arg;
  snprintf(b, sizeof(b), "%s user %s", svc_request_method(req),
           svc_request_param(req, "id"));
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str(b));
}

/* Replies the status named by {code} (a number). */
static void status_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, (svc_status_t)atoi(svc_request_param(req, "code")),
                    svc_msg_new_str("s"));
}

/* Answers with what it saw: a header, the content type, the deadline. */
static void inspect_handler(svc_request_t *req, void *arg) {
  const svc_msg_t *in = svc_request_msg(req);
  const char *x = svc_msg_header_get(in, "X-Thing");
  const char *ct = svc_msg_content_type(in);
  uint64_t rem = svc_request_remaining_ms(req);
  char b[256];
  svc_msg_t *out;
  (void)arg;
  snprintf(b, sizeof(b), "x=%s ct=%s timeout=%s conn=%s te=%s", x ? x : "-",
           ct ? ct : "-",
           rem == UINT64_MAX ? "none"
                             : (rem > 0 && rem <= 5000 ? "set" : "bad"),
           svc_msg_header_get(in, "Connection") ? "kept" : "-",
           svc_msg_header_get(in, "Svc-Timeout") ? "kept" : "-");
  out = svc_msg_new_str(b);
  svc_msg_header_add(out, "X-Answer", "42");
  svc_msg_set_content_type(out, "text/x-test");
  svc_request_reply(req, SVC_STATUS_OK, out);
}

static svc_request_t *parked[16];
static int nparked;
static void park_handler(svc_request_t *req, void *arg) {
  (void)arg;
  parked[nparked++] = req;
}

static int parked_n;
static int parked_reached(void *arg) {
  (void)arg;
  return nparked >= parked_n;
}

/* Waits until n requests reached the park handler. */
static int wait_parked(struct harness *h, int n) {
  parked_n = n;
  return hwait(&h->loop, parked_reached, NULL, 3000);
}

/* OK with another success code, as an asynchronous API answers. */
static void accepted_handler(svc_request_t *req, void *arg) {
  svc_msg_t *m = svc_msg_new_str("queued");

  (void)arg;
  svc_msg_header_add(m, "Svc-Http-Code", "202");
  svc_request_reply(req, SVC_STATUS_OK, m);
}

static svc_server_t *serve_q(struct harness *h, const char *query) {
  svc_server_t *srv;
  char uri[512];

  snprintf(uri, sizeof(uri), "http://127.0.0.1:0%s%s", query ? "?" : "",
           query ? query : "");
  nparked = 0;
  cr_assert_eq(svc_serve(h->ctx, uri, NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "echo", echo_handler, NULL), 0);
  cr_assert_eq(svc_server_route(srv, "GET", "users/{id}", user_handler, NULL),
               0);
  cr_assert_eq(svc_server_route(srv, "PUT", "users/{id}", user_handler, NULL),
               0);
  cr_assert_eq(
      svc_server_route(srv, NULL, "status/{code}", status_handler, NULL), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "inspect", inspect_handler, NULL),
               0);
  cr_assert_eq(svc_server_route(srv, NULL, "park", park_handler, NULL), 0);
  cr_assert_eq(
      svc_server_route(srv, NULL, "accepted", accepted_handler, NULL), 0);
  return srv;
}

/* For tests of the exact SSE framing: events start no trace, so they carry
 * no traceparent line (tracing over http:// is test_propagation's). */
static void harness_start_untraced(struct harness *h) {
  svc_ctx_opts_t o = {.trace = SVC_TRACE_CONTINUE};
  harness_start_opts(h, &o);
}

static svc_server_t *serve(struct harness *h) {
  return serve_q(h, NULL);
}

static int port_of(svc_server_t *srv) {
  const char *ep = svc_server_endpoint(srv);
  const char *colon = strrchr(ep, ':');
  cr_assert_not_null(colon);
  return atoi(colon + 1);
}

static void open_raw(struct harness *h, svc_server_t *srv, struct hraw *p) {
  hraw_start(&h->loop, p, port_of(srv));
}

/* Sends req on a new connection and waits for the answer to end (the
 * server closes, or the text "until" arrives). */
static void exchange(struct harness *h, svc_server_t *srv, struct hraw *p,
                     const char *req, const char *until) {
  open_raw(h, srv, p);
  hraw_send(p, req);
  if (until != NULL)
    cr_assert(hraw_wait(&h->loop, p, until), "no \"%s\" in: %s", until, p->buf);
  else
    cr_assert(hraw_wait_eof(&h->loop, p, 3000), "not closed: %s", p->buf);
}

static int raw_closed(void *arg) {
  return ((struct hraw *)arg)->closed;
}

/* Closes p and waits until it can be used again. */
static void drop(struct harness *h, struct hraw *p) {
  hraw_close(p);
  cr_assert(hwait(&h->loop, raw_closed, p, 1000));
}

static void finish(struct harness *h, struct hraw *p) {
  if (p != NULL)
    hraw_close(p);
  harness_finish(h);
}

/* ---- Calls. */

Test(http_server, serves_a_free_port_and_reports_it) {
  struct harness h;
  svc_server_t *srv;
  svc_server_t *bad;

  harness_start(&h);
  srv = serve(&h);
  cr_assert_gt(port_of(srv), 0);
  cr_assert_eq(strncmp(svc_server_endpoint(srv), "http://127.0.0.1:", 17), 0);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0?no_such=1", NULL, &bad),
               SVC_EINVAL);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0?max_body=x", NULL, &bad),
               SVC_EINVAL);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0?topics=a", NULL, &bad),
               SVC_EINVAL);
  finish(&h, NULL);
}

Test(http_server, get_exact_bytes) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  const char *want = "HTTP/1.1 200 OK\r\n"
                     "Content-Length: 13\r\n"
                     "\r\n"
                     "GET user 7%20";

  harness_start(&h);
  srv = serve(&h);
  exchange(&h, srv, &p, "GET /users/7%2520 HTTP/1.1\r\nHost: x\r\n\r\n",
           "user");
  cr_assert(hraw_wait(&h.loop, &p, "7%20"));
  cr_assert_str_eq(p.buf, want);
  finish(&h, &p);
}

Test(http_server, every_verb_and_path_params) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &p);
  hraw_send(&p, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                "PUT /users/9 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                "DELETE /echo?x=1 HTTP/1.1\r\n\r\n"
                "HEAD /users/5 HTTP/1.1\r\n\r\n"
                "GET /users/5 HTTP/1.1\r\n\r\n");
  cr_assert(hraw_wait_n(&h.loop, &p, "HTTP/1.1 200 OK", 5, 3000), "%s", p.buf);
  cr_assert(hraw_wait(&h.loop, &p, "GET user 5"));
  cr_assert_not_null(strstr(p.buf, "X-Seen: POST echo\r\n"));
  cr_assert_not_null(strstr(p.buf, "abc"));
  cr_assert_not_null(strstr(p.buf, "PUT user 9"));
  cr_assert_not_null(strstr(p.buf, "X-Seen: DELETE echo?x=1\r\n"));
  /* HEAD: GET's length, no body (the next answer follows at once). */
  cr_assert_not_null(strstr(p.buf, "Content-Length: 10\r\n\r\nHTTP/1.1 200 OK"),
                     "%s", p.buf);
  finish(&h, &p);
}

Test(http_server, not_found_and_method_not_allowed) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &p);
  hraw_send(&p,
            "GET /nothing HTTP/1.1\r\n\r\nDELETE /users/1 HTTP/1.1\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "HTTP/1.1 405 Method Not Allowed\r\n"), "%s",
            p.buf);
  cr_assert(hraw_wait(&h.loop, &p, "method not allowed"));
  cr_assert_eq(
      strncmp(p.buf, "HTTP/1.1 404 Not Found\r\nSvc-Status: NOT_FOUND\r\n", 47),
      0, "%s", p.buf);
  cr_assert_not_null(strstr(p.buf, "Svc-Status: UNIMPLEMENTED\r\n"
                                   "Allow: GET, PUT\r\n"),
                     "%s", p.buf);
  finish(&h, &p);
}

Test(http_server, every_status_maps_to_its_code) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  char req[8192] = "";
  char want[128];
  int s;

  harness_start(&h);
  srv = serve(&h);
  for (s = 0; s < SVC_STATUS_COUNT; s++) {
    char one[64];
    snprintf(one, sizeof(one), "GET /status/%d HTTP/1.1\r\n\r\n", s);
    strcat(req, one);
  }
  open_raw(&h, srv, &p);
  hraw_send(&p, req);
  cr_assert(hraw_wait_n(&h.loop, &p, "\r\n\r\ns", SVC_STATUS_COUNT, 3000), "%s",
            p.buf);
  {
    const char *q = p.buf;
    for (s = 0; s < SVC_STATUS_COUNT; s++) {
      int code = svc_status_to_http(s);
      snprintf(want, sizeof(want), "HTTP/1.1 %d ", code);
      q = strstr(q, want);
      cr_assert_not_null(q, "status %d: no %s", s, want);
      if (s != SVC_STATUS_OK) {
        snprintf(want, sizeof(want), "Svc-Status: %s\r\n", svc_status_name(s));
        cr_assert_eq(strncmp(strchr(q, '\n') + 1, want, strlen(want)), 0,
                     "status %d", s);
      }
      q++;
    }
  }
  cr_assert_eq(hraw_count(&p, "Svc-Status: "), SVC_STATUS_COUNT - 1);
  finish(&h, &p);
}

static void reply_parked(void *arg) {
  (void)arg;
  svc_request_reply(parked[0], SVC_STATUS_OK, svc_msg_new_str("later"));
}

Test(http_server, deferred_reply) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &p);
  hraw_send(&p, "GET /park HTTP/1.1\r\n\r\n");
  cr_assert(wait_parked(&h, 1));
  hsleep(&h.loop, 50);
  cr_assert_eq(p.n, 0, "answered before the handler replied");
  run_later(&h.loop, 50, reply_parked, NULL);
  cr_assert(hraw_wait(&h.loop, &p, "later"));
  cr_assert_eq(strncmp(p.buf, "HTTP/1.1 200 OK\r\n", 17), 0);
  finish(&h, &p);
}

Test(http_server, headers_content_type_and_timeout_both_ways) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  exchange(&h, srv, &p,
           "POST /inspect HTTP/1.1\r\nX-Thing: hello world\r\n"
           "Content-Type: application/json\r\nSvc-Timeout: 5000\r\n"
           "Connection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
           "te=");
  cr_assert(hraw_wait(&h.loop, &p, "te=-"), "%s", p.buf);
  cr_assert_not_null(strstr(p.buf, "x=hello world ct=application/json "
                                   "timeout=set conn=- te=-"),
                     "%s", p.buf);
  cr_assert_not_null(strstr(p.buf, "\r\nX-Answer: 42\r\n"));
  cr_assert_not_null(strstr(p.buf, "\r\nContent-Type: text/x-test\r\n"));
  drop(&h, &p);
  exchange(&h, srv, &p, "GET /inspect HTTP/1.1\r\n\r\n", "te=");
  cr_assert(hraw_wait(&h.loop, &p, "te=-"), "%s", p.buf);
  cr_assert_not_null(strstr(p.buf, "x=- ct=- timeout=none"), "%s", p.buf);
  drop(&h, &p);
  exchange(&h, srv, &p, "GET /inspect HTTP/1.1\r\nSvc-Timeout: soon\r\n\r\n",
           NULL);
  cr_assert_eq(strncmp(p.buf, "HTTP/1.1 400 ", 13), 0, "%s", p.buf);
  finish(&h, &p);
}

Test(http_server, keep_alive_and_pipelining_in_order) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  const char *a;
  const char *b;
  const char *c;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &p);
  hraw_send(&p, "GET /users/1 HTTP/1.1\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "GET user 1"));
  hraw_send(&p, "GET /users/2 HTTP/1.1\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "GET user 2"));
  cr_assert_eq(p.eof, 0);
  /* Three in one write: the first waits for its handler, the others are
   * answered at once but must come after it. */
  p.n = 0;
  p.buf[0] = '\0';
  hraw_send(&p, "GET /park HTTP/1.1\r\n\r\nGET /users/3 HTTP/1.1\r\n\r\n"
                "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nlast");
  cr_assert(wait_parked(&h, 1));
  hsleep(&h.loop, 100);
  cr_assert_eq(p.n, 0, "answered out of order: %s", p.buf);
  svc_request_reply(parked[0], SVC_STATUS_OK, svc_msg_new_str("first"));
  cr_assert(hraw_wait(&h.loop, &p, "last"));
  a = strstr(p.buf, "first");
  b = strstr(p.buf, "GET user 3");
  c = strstr(p.buf, "last");
  cr_assert(a != NULL && b != NULL && c != NULL && a < b && b < c, "%s", p.buf);
  finish(&h, &p);
}

Test(http_server, max_pipeline_stops_reading_ahead) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  char req[2048] = "";
  int i;

  harness_start(&h);
  srv = serve_q(&h, "max_pipeline=2");
  for (i = 0; i < 5; i++)
    strcat(req, "GET /park HTTP/1.1\r\nHost: h\r\n\r\n");
  open_raw(&h, srv, &p);
  hraw_send(&p, req);
  cr_assert(wait_parked(&h, 2));
  hsleep(&h.loop, 100);
  cr_assert_eq(nparked, 2, "read %d ahead", nparked);
  /* Host is the target's authority, not a message header. */
  cr_assert_null(svc_msg_header_get(svc_request_msg(parked[0]), "Host"));
  svc_request_reply(parked[0], SVC_STATUS_OK, svc_msg_new_str("r0"));
  cr_assert(hraw_wait(&h.loop, &p, "r0"));
  cr_assert(wait_parked(&h, 3));
  for (i = 1; i < 5; i++) {
    char want[8];
    snprintf(want, sizeof(want), "r%d", i);
    cr_assert(wait_parked(&h, i + 2 > 5 ? 5 : i + 2));
    cr_assert_eq(nparked, i + 2 > 5 ? 5 : i + 2);
    svc_request_reply(parked[i], SVC_STATUS_OK, svc_msg_new_str(want));
    cr_assert(hraw_wait(&h.loop, &p, want));
  }
  cr_assert_eq(hraw_count(&p, "HTTP/1.1 200"), 5);
  finish(&h, &p);
}

Test(http_server, chunked_request_body) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &p);
  hraw_send(&p, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n");
  hsleep(&h.loop, 50);
  hraw_send(&p, "6\r\n world\r\n0\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "hello world"), "%s", p.buf);
  cr_assert_not_null(strstr(p.buf, "Content-Length: 11\r\n"));
  finish(&h, &p);
}

Test(http_server, expect_100_continue) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve_q(&h, "max_body=100");
  open_raw(&h, srv, &p);
  hraw_send(&p, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                "Content-Length: 5\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "HTTP/1.1 100 Continue\r\n\r\n"));
  cr_assert_eq(strcmp(p.buf, "HTTP/1.1 100 Continue\r\n\r\n"), 0);
  hraw_send(&p, "12345");
  cr_assert(hraw_wait(&h.loop, &p, "12345"));
  /* Behind an unanswered request, the 100 waits for that answer. */
  p.n = 0;
  p.buf[0] = '\0';
  hraw_send(&p, "GET /park HTTP/1.1\r\n\r\nPOST /echo HTTP/1.1\r\n"
                "Expect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  cr_assert(wait_parked(&h, 1));
  hsleep(&h.loop, 50);
  cr_assert_eq(p.n, 0, "%s", p.buf);
  svc_request_reply(parked[0], SVC_STATUS_OK, svc_msg_new_str("parked"));
  cr_assert(hraw_wait(&h.loop, &p, "100 Continue\r\n\r\n"), "%s", p.buf);
  cr_assert_lt(strstr(p.buf, "parked"), strstr(p.buf, "100 Continue"));
  hraw_send(&p, "abc");
  cr_assert(hraw_wait(&h.loop, &p, "abc"), "%s", p.buf);
  drop(&h, &p);
  /* Too big: 413 instead of 100, and the body is never read. */
  exchange(&h, srv, &p,
           "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
           "Content-Length: 101\r\n\r\n",
           NULL);
  cr_assert_eq(strncmp(p.buf, "HTTP/1.1 413 ", 13), 0, "%s", p.buf);
  cr_assert_null(strstr(p.buf, "100 Continue"));
  drop(&h, &p);
  exchange(&h, srv, &p,
           "POST /echo HTTP/1.1\r\nExpect: something\r\n"
           "Content-Length: 1\r\n\r\n",
           NULL);
  cr_assert_eq(strncmp(p.buf, "HTTP/1.1 417 ", 13), 0, "%s", p.buf);
  finish(&h, &p);
}

Test(http_server, connection_close_and_http10) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  exchange(&h, srv, &p,
           "GET /users/1 HTTP/1.1\r\nConnection: close\r\n\r\n"
           "GET /users/2 HTTP/1.1\r\n\r\n",
           NULL);
  cr_assert_not_null(strstr(p.buf, "Connection: close\r\n"));
  cr_assert_eq(hraw_count(&p, "HTTP/1.1 "), 1, "%s", p.buf);
  drop(&h, &p);
  exchange(&h, srv, &p, "GET /users/3 HTTP/1.0\r\n\r\n", NULL);
  cr_assert_not_null(strstr(p.buf, "GET user 3"));
  cr_assert_not_null(strstr(p.buf, "Connection: close\r\n"));
  drop(&h, &p);
  open_raw(&h, srv, &p);
  hraw_send(&p, "GET /users/4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "GET user 4"));
  cr_assert_not_null(strstr(p.buf, "Connection: keep-alive\r\n"));
  hraw_send(&p, "GET /users/5 HTTP/1.0\r\n\r\n");
  cr_assert(hraw_wait_eof(&h.loop, &p, 3000));
  cr_assert_not_null(strstr(p.buf, "GET user 5"));
  finish(&h, &p);
}

/* ---- Limits and timeouts. */

static void expect_refused(struct harness *h, svc_server_t *srv,
                           const char *req, const char *status_line,
                           const char *svc_status) {
  struct hraw p;
  char want[128];

  exchange(h, srv, &p, req, NULL);
  cr_assert_eq(strncmp(p.buf, status_line, strlen(status_line)), 0,
               "want %s got: %s", status_line, p.buf);
  snprintf(want, sizeof(want), "Svc-Status: %s\r\n", svc_status);
  cr_assert_not_null(strstr(p.buf, want), "%s", p.buf);
  cr_assert_not_null(strstr(p.buf, "Connection: close\r\n"));
  cr_assert_not_null(strstr(p.buf, "text/plain"));
  drop(h, &p);
}

Test(http_server, limits_answer_431_413_414_400) {
  struct harness h;
  svc_server_t *srv;
  static char big[4096];
  char req[8192];
  int i;

  harness_start(&h);
  srv = serve_q(&h, "max_header_bytes=1024&max_headers=5&max_url=100&"
                    "max_body=10");
  memset(big, 'a', 2000);
  big[2000] = '\0';
  snprintf(req, sizeof(req), "GET /echo HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
  expect_refused(&h, srv, req, "HTTP/1.1 431 ", "RESOURCE_EXHAUSTED");
  strcpy(req, "GET /echo HTTP/1.1\r\n");
  for (i = 0; i < 6; i++)
    sprintf(req + strlen(req), "X-H%d: v\r\n", i);
  strcat(req, "\r\n");
  expect_refused(&h, srv, req, "HTTP/1.1 431 ", "RESOURCE_EXHAUSTED");
  expect_refused(&h, srv,
                 "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\n"
                 "01234567890",
                 "HTTP/1.1 413 ", "RESOURCE_EXHAUSTED");
  expect_refused(&h, srv,
                 "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n",
                 "HTTP/1.1 413 ", "RESOURCE_EXHAUSTED");
  memset(big, 'u', 101);
  big[101] = '\0';
  snprintf(req, sizeof(req), "GET /%s HTTP/1.1\r\n\r\n", big);
  expect_refused(&h, srv, req, "HTTP/1.1 414 ", "INVALID_ARGUMENT");
  expect_refused(&h, srv, "GET /echo HTTP/1.1\r\nBad Header\r\n\r\n",
                 "HTTP/1.1 400 ", "INVALID_ARGUMENT");
  expect_refused(&h, srv,
                 "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                 "HTTP/1.1 400 ", "INVALID_ARGUMENT");
  expect_refused(&h, srv, "GET echo HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ",
                 "INVALID_ARGUMENT");
  expect_refused(&h, srv, "\x01\x02garbage\r\n\r\n", "HTTP/1.1 400 ",
                 "INVALID_ARGUMENT");
  finish(&h, NULL);
}

Test(http_server, slowloris_stalled_body_and_idle_timeouts) {
  struct harness h;
  struct hraw a;
  struct hraw b;
  struct hraw c;
  struct hraw d;
  svc_server_t *srv;
  int i;

  harness_start(&h);
  srv = serve_q(&h, "header_timeout_ms=200&body_timeout_ms=200&"
                    "idle_timeout_ms=300");
  open_raw(&h, srv, &a);
  open_raw(&h, srv, &b);
  open_raw(&h, srv, &c);
  open_raw(&h, srv, &d);
  /* a: headers a few bytes at a time, never finishing. */
  hraw_send(&a, "GET /echo HTTP/1.1\r\n");
  hraw_send(&b, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\n12");
  hraw_send(&c, "GET /users/1 HTTP/1.1\r\n\r\n");
  hsleep(&h.loop, 100);
  hraw_send(&a, "X-A: 1\r\n");
  hraw_send(&d, "GET /users/1 HTTP/1.1\r\n\r\n"); /* d stays busy. */
  /* Trickling does not buy time: header_timeout_ms counts from the first
   * byte. */
  for (i = 0; i < 40 && !a.eof; i++) {
    hraw_send(&a, "X-B: 2\r\n");
    hsleep(&h.loop, 50);
  }
  cr_assert(a.eof, "headers trickled past header_timeout_ms");
  cr_assert(hraw_wait_eof(&h.loop, &a, 2000));
  cr_assert(hraw_wait_eof(&h.loop, &b, 2000));
  cr_assert_eq(strncmp(a.buf, "HTTP/1.1 408 ", 13), 0, "%s", a.buf);
  cr_assert_not_null(strstr(a.buf, "Svc-Status: DEADLINE_EXCEEDED\r\n"));
  cr_assert_eq(strncmp(b.buf, "HTTP/1.1 408 ", 13), 0, "%s", b.buf);
  /* c: answered, then idle: closed without a word. */
  cr_assert(hraw_wait_eof(&h.loop, &c, 2000));
  cr_assert_eq(hraw_count(&c, "HTTP/1.1 "), 1, "%s", c.buf);
  cr_assert_eq(hraw_count(&d, "HTTP/1.1 200"), 1, "%s", d.buf);
  drop(&h, &a);
  drop(&h, &b);
  drop(&h, &c);
  finish(&h, &d);
}

Test(http_server, max_conns_refuses_with_503) {
  struct harness h;
  struct hraw a;
  struct hraw b;
  struct hraw c;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve_q(&h, "max_conns=2");
  open_raw(&h, srv, &a);
  open_raw(&h, srv, &b);
  hraw_send(&a, "GET /users/1 HTTP/1.1\r\n\r\n");
  hraw_send(&b, "GET /users/2 HTTP/1.1\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &a, "user 1"));
  cr_assert(hraw_wait(&h.loop, &b, "user 2"));
  exchange(&h, srv, &c, "GET /users/3 HTTP/1.1\r\n\r\n", NULL);
  cr_assert_eq(strncmp(c.buf,
                       "HTTP/1.1 503 Service Unavailable\r\n"
                       "Svc-Status: UNAVAILABLE\r\n",
                       59),
               0, "%s", c.buf);
  cr_assert_not_null(strstr(c.buf, "Connection: close\r\n"));
  drop(&h, &c);
  /* A served connection going frees its place. */
  drop(&h, &b);
  hsleep(&h.loop, 50);
  exchange(&h, srv, &c, "GET /users/4 HTTP/1.1\r\n\r\n", "user 4");
  drop(&h, &c);
  finish(&h, &a);
}

/* ---- Connections coming and going. */

Test(http_server, client_gone_mid_request_cancels_and_others_go_on) {
  struct harness h;
  struct hraw a;
  struct hraw b;
  struct hraw c;
  svc_server_t *srv;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &a);
  open_raw(&h, srv, &b);
  hraw_send(&a, "GET /park HTTP/1.1\r\n\r\n");
  hraw_send(&b, "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nhalf");
  cr_assert(wait_parked(&h, 1));
  hsleep(&h.loop, 50);
  drop(&h, &a);
  drop(&h, &b);
  hsleep(&h.loop, 200);
  cr_assert(svc_request_cancelled(parked[0]));
  cr_assert_eq(svc_request_reply(parked[0], SVC_STATUS_OK, NULL),
               SVC_ECANCELED);
  exchange(&h, srv, &c, "GET /users/8 HTTP/1.1\r\n\r\n", "user 8");
  finish(&h, &c);
}

static void srv_closed(svc_server_t *srv, void *arg) {
  (void)srv;
  (*(int *)arg)++;
}

Test(http_server, serve_close_with_connections_open) {
  struct harness h;
  struct hraw a;
  struct hraw b;
  svc_server_t *srv;
  int closed = 0;

  harness_start(&h);
  srv = serve(&h);
  open_raw(&h, srv, &a);
  open_raw(&h, srv, &b);
  hraw_send(&a, "GET /park HTTP/1.1\r\n\r\n");
  hraw_send(&b, "GET /users/1 HTTP/1.1\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &b, "user 1"));
  hsleep(&h.loop, 50);
  svc_server_close(srv, srv_closed, &closed);
  cr_assert(hraw_wait_eof(&h.loop, &a, 2000));
  cr_assert(hraw_wait_eof(&h.loop, &b, 2000));
  hsleep(&h.loop, 50);
  cr_assert_eq(closed, 1);
  drop(&h, &a);
  finish(&h, &b);
}

#define MANY 100

Test(http_server, many_concurrent_connections) {
  struct harness h;
  static struct hraw p[MANY];
  svc_server_t *srv;
  char req[128];
  int i;

  harness_start(&h);
  srv = serve(&h);
  for (i = 0; i < MANY; i++) {
    open_raw(&h, srv, &p[i]);
    snprintf(req, sizeof(req), "GET /users/%d HTTP/1.1\r\n\r\n", i);
    hraw_send(&p[i], req);
  }
  for (i = 0; i < MANY; i++) {
    snprintf(req, sizeof(req), "GET user %d", i);
    cr_assert(hraw_wait(&h.loop, &p[i], req), "connection %d: %s", i, p[i].buf);
  }
  for (i = 1; i < MANY; i++)
    drop(&h, &p[i]);
  finish(&h, &p[0]);
}

/* ---- The real curl. */

Test(http_server, curl_verbs_headers_and_status) {
  struct harness h;
  svc_server_t *srv;
  char url[256];
  char *out;
  int st;

  harness_start(&h);
  srv = serve(&h);
  snprintf(url, sizeof(url), "%s/users/42", svc_server_endpoint(srv));
  {
    const char *args[] = {url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "GET user 42");
    free(out);
  }
  {
    const char *args[] = {"-X", "PUT", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_str_eq(out, "PUT user 42");
    free(out);
  }
  {
    const char *args[] = {"-I", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 0);
    cr_assert_not_null(strstr(out, "HTTP/1.1 200 OK"), "%s", out);
    cr_assert_not_null(strstr(out, "Content-Length: 11"), "%s", out);
    free(out);
  }
  snprintf(url, sizeof(url), "%s/echo", svc_server_endpoint(srv));
  {
    const char *args[] = {"-X", "DELETE", "-i", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_not_null(strstr(out, "X-Seen: DELETE echo"), "%s", out);
    free(out);
  }
  {
    const char *args[] = {"-d", "posted", "-H", "Content-Type: text/x-a",
                          "-i", url,      NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_not_null(strstr(out, "X-Seen: POST echo"), "%s", out);
    cr_assert_not_null(strstr(out, "Content-Type: text/x-a"), "%s", out);
    cr_assert_not_null(strstr(out, "\r\n\r\nposted"), "%s", out);
    free(out);
  }
  snprintf(url, sizeof(url), "%s/accepted", svc_server_endpoint(srv));
  {
    /* An OK reply may choose another 2xx code; the header that asks for it
     * is not sent on. */
    const char *args[] = {"-i", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_not_null(strstr(out, "HTTP/1.1 202 Accepted\r\n"), "%s", out);
    cr_assert_null(strstr(out, "Svc-Http-Code"), "%s", out);
    cr_assert_not_null(strstr(out, "\r\n\r\nqueued"), "%s", out);
    free(out);
  }
  snprintf(url, sizeof(url), "%s/status/5", svc_server_endpoint(srv));
  {
    const char *args[] = {"-i", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_not_null(strstr(out, "HTTP/1.1 404"), "%s", out);
    cr_assert_not_null(strstr(out, "Svc-Status: NOT_FOUND"), "%s", out);
    free(out);
  }
  {
    /* Two URLs, one connection: curl reuses it. */
    char url2[256];
    const char *args[] = {"-w", "%{num_connects}", url, url, NULL};
    snprintf(url2, sizeof(url2), "%s", url);
    args[3] = url2;
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 0);
    /* Each answer then how many connects it took: 1, then 0 (reused). */
    cr_assert_str_eq(out, "s1s0", "%s", out);
    free(out);
  }
  finish(&h, NULL);
}

Test(http_server, curl_big_body_with_expect_100) {
  struct harness h;
  svc_server_t *srv;
  char url[256];
  char path[] = "/tmp/svc_http_body_XXXXXX";
  char data[300];
  char *out;
  FILE *f;
  int fd;
  int st;
  int i;

  harness_start(&h);
  srv = serve(&h);
  fd = mkstemp(path);
  cr_assert_geq(fd, 0);
  f = fdopen(fd, "wb");
  for (i = 0; i < 2 * 1024 * 1024 / 16; i++)
    fputs("0123456789abcde\n", f);
  fclose(f);
  snprintf(url, sizeof(url), "%s/echo", svc_server_endpoint(srv));
  snprintf(data, sizeof(data), "@%s", path);
  {
    const char *args[] = {"--data-binary",
                          data,
                          "-H",
                          "Expect: 100-continue",
                          "--expect100-timeout",
                          "5",
                          "-w",
                          "%{size_download}",
                          "-o",
                          "/dev/null",
                          url,
                          NULL};
    uint64_t t0;
    uv_update_time(&h.loop);
    t0 = uv_now(&h.loop);
    out = hcurl_run(&h.loop, args, &st);
    uv_update_time(&h.loop);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "2097152");
    /* 100 Continue came at once: curl did not sit out its 5 s wait. */
    cr_assert_lt(uv_now(&h.loop) - t0, 4000);
    free(out);
  }
  unlink(path);
  finish(&h, NULL);
}

/* ---- The hub over HTTP. */

struct sink_rec {
  struct svc__hub_sink sink;
  int n;
  char topic[64];
  char body[64];
  char header[64];
  char ct[64];
  int qos;
};

static int rec_deliver(struct svc__hub_sink *sink, const char *topic,
                       svc_msg_t *msg, int qos) {
  struct sink_rec *r = (struct sink_rec *)sink;
  const char *x = svc_msg_header_get(msg, "X-K");
  const char *ct = svc_msg_content_type(msg);
  r->n++;
  r->qos = qos;
  snprintf(r->topic, sizeof(r->topic), "%s", topic);
  snprintf(r->body, sizeof(r->body), "%.*s", (int)svc_msg_len(msg),
           (const char *)svc_msg_body(msg, NULL));
  snprintf(r->header, sizeof(r->header), "%s", x ? x : "-");
  snprintf(r->ct, sizeof(r->ct), "%s", ct ? ct : "-");
  return 0;
}

static int rec_room(struct svc__hub_sink *sink) {
  (void)sink;
  return 1;
}

Test(http_server, post_publishes_into_the_servers_hub) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  struct sink_rec r;

  harness_start(&h);
  srv = serve(&h);
  memset(&r, 0, sizeof(r));
  r.sink.deliver = rec_deliver;
  r.sink.has_room = rec_room;
  cr_assert_eq(svc__hub_add(srv->hub, "news/#", &r.sink), 0);
  open_raw(&h, srv, &p);
  hraw_send(&p, "POST /topics/news/a%20b HTTP/1.1\r\nX-K: v1\r\n"
                "Content-Type: text/plain\r\nSvc-QoS: 1\r\n"
                "Content-Length: 5\r\n\r\nhello");
  cr_assert(hraw_wait(&h.loop, &p, "HTTP/1.1 204 No Content\r\n\r\n"), "%s",
            p.buf);
  cr_assert_str_eq(p.buf, "HTTP/1.1 204 No Content\r\n\r\n");
  cr_assert_eq(r.n, 1);
  cr_assert_str_eq(r.topic, "news/a b");
  cr_assert_str_eq(r.body, "hello");
  cr_assert_str_eq(r.header, "v1");
  cr_assert_str_eq(r.ct, "text/plain");
  cr_assert_eq(r.qos, 1);
  hraw_send(&p, "POST /topics/news/q?qos=2&retain=1 HTTP/1.1\r\n"
                "Content-Length: 1\r\n\r\nq");
  cr_assert(hraw_wait_n(&h.loop, &p, "204", 2, 3000));
  cr_assert_eq(r.n, 2);
  cr_assert_eq(r.qos, 2);
  cr_assert_eq(svc__hub_retained_count(srv->hub), 1);
  /* Not a topic name: 400, and the connection ends. */
  hraw_send(&p, "POST /topics/news/%23 HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  cr_assert(hraw_wait_eof(&h.loop, &p, 3000));
  cr_assert_not_null(strstr(p.buf, "HTTP/1.1 400 "), "%s", p.buf);
  cr_assert_eq(r.n, 2);
  svc__hub_remove(srv->hub, &r.sink);
  finish(&h, &p);
}

static const char sse_head[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";

/* The exact chunk that carries event text. */
static void chunk_of(char *out, size_t size, const char *event) {
  snprintf(out, size, "%zx\r\n%s\r\n", strlen(event), event);
}

static void sse_open(struct harness *h, svc_server_t *srv, struct hraw *p,
                     const char *filter, const char *last_id) {
  char req[512];
  snprintf(req, sizeof(req),
           "GET /topics/%s HTTP/1.1\r\nAccept: text/event-stream\r\n%s%s%s\r\n",
           filter, last_id ? "Last-Event-ID: " : "", last_id ? last_id : "",
           last_id ? "\r\n" : "");
  open_raw(h, srv, p);
  hraw_send(p, req);
  cr_assert(hraw_wait(&h->loop, p, "chunked\r\n\r\n"), "%s", p->buf);
  cr_assert_eq(strncmp(p->buf, sse_head, strlen(sse_head)), 0, "%s", p->buf);
}

static void publish_raw(struct harness *h, svc_server_t *srv, const char *topic,
                        const char *extra, const void *body, size_t len) {
  struct hraw p;
  char req[1024];
  int n = snprintf(req, sizeof(req),
                   "POST /topics/%s HTTP/1.1\r\n%sContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   topic, extra, len);
  memcpy(req + n, body, len);
  open_raw(h, srv, &p);
  hraw_send_n(&p, req, (size_t)n + len);
  cr_assert(hraw_wait_eof(&h->loop, &p, 3000));
  cr_assert_eq(strncmp(p.buf, "HTTP/1.1 204 ", 13), 0, "%s", p.buf);
  drop(h, &p);
}

Test(http_server, sse_exact_events_base64_and_server_publish) {
  struct harness h;
  struct hraw s;
  svc_server_t *srv;
  char want[512];
  static const unsigned char bin[] = {0, 1, 2, 0xff, 'a'};

  harness_start_untraced(&h);
  srv = serve(&h);
  sse_open(&h, srv, &s, "news%2F%23", NULL);
  publish_raw(&h, srv, "news/x", "X-K: v\r\nContent-Type: text/plain\r\n",
              "hello\n\nworld\n", 13);
  chunk_of(want, sizeof(want),
           "id: 1\nevent: news/x\nsvc-header: X-K: v\n"
           "svc-content-type: text/plain\n"
           "data: hello\ndata:\ndata: world\ndata:\n\n");
  cr_assert(hraw_wait(&h.loop, &s, want), "want %s got %s", want, s.buf);
  publish_raw(&h, srv, "other", "", "no", 2); /* Not for this filter. */
  publish_raw(&h, srv, "news/bin", "", bin, sizeof(bin));
  chunk_of(want, sizeof(want),
           "id: 3\nevent: news/bin\nsvc-encoding: base64\ndata: AAEC/2E=\n\n");
  cr_assert(hraw_wait(&h.loop, &s, want), "want %s got %s", want, s.buf);
  publish_raw(&h, srv, "news/empty", "", "", 0);
  chunk_of(want, sizeof(want), "id: 4\nevent: news/empty\ndata:\n\n");
  cr_assert(hraw_wait(&h.loop, &s, want), "want %s got %s", want, s.buf);
  cr_assert_eq(svc_server_publish(srv, "news/srv", svc_msg_new_str("from srv"),
                                  NULL, NULL, NULL),
               0);
  chunk_of(want, sizeof(want), "id: 5\nevent: news/srv\ndata: from srv\n\n");
  cr_assert(hraw_wait(&h.loop, &s, want), "want %s got %s", want, s.buf);
  cr_assert_null(strstr(s.buf, "event: other"));
  finish(&h, &s);
}

Test(http_server, sse_last_event_id_replays_what_was_missed) {
  struct harness h;
  struct hraw s;
  svc_server_t *srv;
  char want[256];
  int i;

  harness_start_untraced(&h);
  srv = serve_q(&h, "sse_history=3&sse_ping_ms=50");
  for (i = 1; i <= 5; i++) {
    char body[8];
    snprintf(body, sizeof(body), "e%d", i);
    cr_assert_eq(svc_server_publish(srv, i == 4 ? "b/x" : "a/x",
                                    svc_msg_new_str(body), NULL, NULL, NULL),
                 0);
  }
  hsleep(&h.loop, 20);
  /* Kept: 3, 4, 5 (history 3); after 2 on a/#: 3 and 5. */
  sse_open(&h, srv, &s, "a/%23", "2");
  chunk_of(want, sizeof(want), "id: 5\nevent: a/x\ndata: e5\n\n");
  cr_assert(hraw_wait(&h.loop, &s, want), "%s", s.buf);
  cr_assert_not_null(strstr(s.buf, "id: 3\nevent: a/x\ndata: e3\n\n"));
  cr_assert_null(strstr(s.buf, "id: 4"));
  cr_assert_null(strstr(s.buf, "id: 2"));
  cr_assert_lt(strstr(s.buf, "id: 3"), strstr(s.buf, "id: 5"));
  cr_assert_eq(
      svc_server_publish(srv, "a/y", svc_msg_new_str("live"), NULL, NULL, NULL),
      0);
  cr_assert(hraw_wait(&h.loop, &s, "id: 6\nevent: a/y\ndata: live\n\n"));
  cr_assert_eq(hraw_count(&s, "id: 5"), 1);
  cr_assert(hraw_wait(&h.loop, &s, "8\r\n: ping\n\n\r\n"), "%s", s.buf);
  drop(&h, &s);
  /* An invalid filter: 400. */
  exchange(&h, srv, &s,
           "GET /topics/a%23b HTTP/1.1\r\nAccept: text/event-stream\r\n\r\n",
           NULL);
  cr_assert_eq(strncmp(s.buf, "HTTP/1.1 400 ", 13), 0, "%s", s.buf);
  finish(&h, &s);
}

static int pub_done_n;
static int pub_status;
static void pub_cb(svc_ctx_t *ctx, int status, void *arg) {
  (void)ctx;
  (void)arg;
  pub_done_n++;
  pub_status = status;
}

Test(http_server, slow_sse_reader_drops_qos0_and_paces_qos1) {
  struct harness h;
  struct hraw s;
  struct hraw q;
  svc_server_t *srv;
  svc_pub_opts_t qos0 = {0};
  static char big[65536];
  struct svc__hs_conn *c;
  uint64_t dropped;
  int i;
  int n;
  svc_ctx_opts_t co;

  memset(&co, 0, sizeof(co));
  co.max_pending_publishes = 1;
  harness_start_opts(&h, &co);
  srv = serve_q(&h, "max_outbound=16384");
  sse_open(&h, srv, &s, "%23", NULL);
  hraw_pause(&s, 1);
  memset(big, 'x', sizeof(big) - 1);
  pub_done_n = 0;
  c = svc__container_of(
      svc__list_head(&(*(struct svc__https **)srv->tp)->conns),
      struct svc__hs_conn, link);
  cr_assert_eq(c->mode, SVC__HS_SSE);
  /* Until the socket buffers are full and the connection's own output
   * stays at its limit. */
  for (i = 0; i < 20000 && c->out_bytes < 16384;) {
    for (n = 0; n < 64; n++, i++)
      cr_assert_eq(svc_server_publish(srv, "t", svc_msg_new_str(big), &qos0,
                                      pub_cb, NULL),
                   0);
    hsleep(&h.loop, 20);
  }
  cr_assert_geq(c->out_bytes, 16384);
  dropped = srv->metrics->m.dropped;
  for (n = 0; n < 100; n++)
    cr_assert_eq(
        svc_server_publish(srv, "t", svc_msg_new_str(big), &qos0, pub_cb, NULL),
        0);
  hsleep(&h.loop, 50);
  cr_assert_eq(pub_done_n, i + 100);
  cr_assert_eq(srv->metrics->m.dropped, dropped + 100, "not dropped");
  cr_assert_lt(c->out_bytes, 16384 + sizeof(big) + 64, "grew: %zu",
               c->out_bytes);
  /* QoS 1 waits for the reader; a second one finds the hub's backlog
   * full: 429. */
  open_raw(&h, srv, &q);
  hraw_send(&q, "POST /topics/t HTTP/1.1\r\nSvc-QoS: 1\r\nContent-Length: 2\r\n"
                "\r\nq1");
  hsleep(&h.loop, 100);
  cr_assert_eq(q.n, 0, "QoS 1 did not wait: %s (out %zu)", q.buf, c->out_bytes);
  {
    struct hraw r;
    exchange(&h, srv, &r,
             "POST /topics/t HTTP/1.1\r\nSvc-QoS: 1\r\nContent-Length: 2\r\n"
             "\r\nq2",
             "\r\n\r\n");
    cr_assert_eq(strncmp(r.buf,
                         "HTTP/1.1 429 Too Many Requests\r\n"
                         "Svc-Status: RESOURCE_EXHAUSTED\r\n",
                         64),
                 0, "%s", r.buf);
    drop(&h, &r);
  }
  hraw_pause(&s, 0);
  cr_assert(hraw_wait(&h.loop, &q, "HTTP/1.1 204"), "%s", q.buf);
  cr_assert(hraw_wait(&h.loop, &s, "data: q1\n"));
  /* Everything that was not dropped arrived, in order, and is far less
   * than what was published. */
  cr_assert_lt(hraw_count(&s, "event: t"), i + 100);
  drop(&h, &q);
  finish(&h, &s);
}

/* ---- Streams. */

static void st_on_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)arg;
  cr_assert_eq(svc_stream_write(s, svc_msg_dup(msg), NULL, NULL), 0);
}

static void st_on_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}

static int st_closed;
static int st_close_status;
static void st_on_close(svc_stream_t *s, int status, void *arg) {
  (void)s;
  (void)arg;
  st_closed++;
  st_close_status = status;
}

static const svc_stream_cbs_t echo_cbs = {st_on_data, st_on_end, NULL,
                                          st_on_close};

static void echo_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_opts_t o = {0};
  (void)srv;
  (void)arg;
  o.window = 65536;
  cr_assert_str_eq(svc_stream_header(s, "X-Open"), "yes");
  cr_assert_str_eq(svc_stream_param(s, "n"), "1");
  cr_assert_eq(svc_stream_accept(s, &o, &echo_cbs, NULL), 0);
}

Test(http_server, stream_echoes_chunks_back) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  const char *want = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Type: application/octet-stream\r\n"
                     "Trailer: Svc-Status\r\n"
                     "Svc-Window: 65536\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n"
                     "0\r\nSvc-Status: OK\r\n\r\n";

  harness_start(&h);
  srv = serve(&h);
  st_closed = 0;
  cr_assert_eq(svc_server_stream_route(srv, "chat/{n}", echo_accept, NULL), 0);
  open_raw(&h, srv, &p);
  hraw_send(&p, "POST /chat/1 HTTP/1.1\r\nSvc-Stream: 1\r\nX-Open: yes\r\n"
                "Svc-Window: 4096\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5\r\nhello\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "5\r\nhello\r\n"), "%s", p.buf);
  hraw_send(&p, "6\r\n world\r\n0\r\n\r\n");
  cr_assert(hraw_wait_eof(&h.loop, &p, 3000));
  cr_assert_str_eq(p.buf, want);
  hsleep(&h.loop, 20);
  cr_assert_eq(st_closed, 1);
  cr_assert_eq(st_close_status, 0);
  drop(&h, &p);
  /* No stream route: 404. */
  exchange(&h, srv, &p,
           "POST /nope HTTP/1.1\r\nSvc-Stream: 1\r\n"
           "Transfer-Encoding: chunked\r\n\r\n",
           NULL);
  cr_assert_eq(strncmp(p.buf,
                       "HTTP/1.1 404 Not Found\r\n"
                       "Svc-Status: NOT_FOUND\r\n",
                       47),
               0, "%s", p.buf);
  finish(&h, &p);
}

/* A stream whose application consumes nothing until told to. */
static svc_stream_t *held;
static size_t held_bytes;
static int held_ended;

static void held_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  (void)s;
  (void)arg;
  held_bytes += svc_msg_len(msg);
}

static void held_end(svc_stream_t *s, void *arg) {
  (void)arg;
  held_ended = 1;
  svc_stream_end(s);
}

static const svc_stream_cbs_t held_cbs = {held_data, held_end, NULL,
                                          st_on_close};

static void held_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  svc_stream_opts_t o = {0};
  (void)srv;
  (void)arg;
  o.window = 65536;
  held = s;
  cr_assert_eq(svc_stream_accept(s, &o, &held_cbs, NULL), 0);
  svc_stream_pause(s);
}

Test(http_server, stream_flow_control_bounds_memory_both_ways) {
  struct harness h;
  struct hraw p;
  svc_server_t *srv;
  static char chunk[16384 + 32];
  struct svc__hs_conn *c;
  size_t sent = 0;
  int i;
  int eagain = 0;

  harness_start(&h);
  srv = serve(&h);
  held = NULL;
  held_bytes = 0;
  held_ended = 0;
  cr_assert_eq(svc_server_stream_route(srv, "up", held_accept, NULL), 0);
  open_raw(&h, srv, &p);
  hraw_send(&p, "POST /up HTTP/1.1\r\nSvc-Stream: 1\r\nSvc-Window: 65536\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
  cr_assert(hraw_wait(&h.loop, &p, "Svc-Window: 65536\r\n\r\n"), "%s", p.buf);
  cr_assert_not_null(held);
  /* Upload 16 MiB (more than loopback's socket buffers) to a stream that
   * consumes nothing. */
  memset(chunk, 'u', sizeof(chunk));
  memcpy(chunk, "4000\r\n", 6);
  memcpy(chunk + 6 + 16384, "\r\n", 2);
  for (i = 0; i < 1024; i++) {
    hraw_send_n(&p, chunk, 6 + 16384 + 2);
    sent += 16384;
  }
  hsleep(&h.loop, 300);
  c = held->tp;
  cr_assert_not_null(c);
  /* The server holds at most its window plus one read, and the rest waits
   * in the sockets (our writes back up). */
  cr_assert_leq(c->outstanding + c->pending_bytes + c->in_len,
                65536 + 2 * 65536 + 16384, "held %zu",
                c->outstanding + c->pending_bytes + c->in_len);
  cr_assert_gt(uv_stream_get_write_queue_size((uv_stream_t *)&p.tcp), 0);
  cr_assert_eq(held_bytes, 0);
  /* Download: the client stops reading; the server's writes stop at the
   * client's window, and the stream's send queue fills (EAGAIN). */
  hraw_pause(&p, 1);
  for (i = 0; i < 400 && !eagain; i++) {
    svc_msg_t *m = svc_msg_new(chunk, 16384);
    int rc = svc_stream_write(held, m, NULL, NULL);
    if (rc == SVC_EAGAIN) {
      eagain = 1;
      svc_msg_free(m); /* Refused: still ours. */
    } else
      cr_assert_eq(rc, 0);
    if (i % 8 == 0)
      hsleep(&h.loop, 2);
  }
  cr_assert(eagain, "the send queue never filled");
  cr_assert_leq(c->out_bytes, 65536 + 16384 + 64, "in the socket: %zu",
                c->out_bytes);
  hraw_pause(&p, 0);
  svc_stream_resume(held);
  hraw_send(&p, "0\r\n\r\n");
  {
    int k;
    for (k = 0; k < 400 && !held_ended; k++)
      hsleep(&h.loop, 10);
  }
  cr_assert(held_ended, "end not delivered; got %zu of %zu", held_bytes, sent);
  cr_assert_eq(held_bytes, sent);
  cr_assert(hraw_wait_eof(&h.loop, &p, 5000));
  cr_assert_not_null(strstr(p.buf, "\r\n0\r\nSvc-Status: OK\r\n\r\n"));
  finish(&h, &p);
}

static void publish_later(void *arg) {
  svc_server_t *srv = arg;
  cr_assert_eq(svc_server_publish(srv, "c/t", svc_msg_new_str("to curl"), NULL,
                                  NULL, NULL),
               0);
}

Test(http_server, curl_publishes_and_reads_sse) {
  struct harness h;
  svc_server_t *srv;
  struct sink_rec r;
  char url[256];
  char *out;
  int st;

  harness_start_untraced(&h);
  srv = serve(&h);
  memset(&r, 0, sizeof(r));
  r.sink.deliver = rec_deliver;
  r.sink.has_room = rec_room;
  cr_assert_eq(svc__hub_add(srv->hub, "c/#", &r.sink), 0);
  snprintf(url, sizeof(url), "%s/topics/c/p", svc_server_endpoint(srv));
  {
    const char *args[] = {"-d", "from curl",    "-H", "Svc-QoS: 1",
                          "-w", "%{http_code}", url,  NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "204");
    free(out);
  }
  cr_assert_eq(r.n, 1);
  cr_assert_str_eq(r.body, "from curl");
  snprintf(url, sizeof(url), "%s/topics/c%%2F%%23", svc_server_endpoint(srv));
  run_later(&h.loop, 300, publish_later, srv);
  {
    /* curl reads the stream until its --max-time (exit 28). */
    const char *args[] = {
        "-N", "-H", "Accept: text/event-stream", "--max-time", "1", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 28);
    cr_assert_str_eq(out, "id: 2\nevent: c/t\ndata: to curl\n\n");
    free(out);
  }
  svc__hub_remove(srv->hub, &r.sink);
  finish(&h, NULL);
}
