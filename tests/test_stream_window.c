/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* White-box: a peer that ignores our receive window cannot grow our memory;
 * the stream ends with SVC_EPROTO and the peer is reset. */
#include "internal.h"

#include "harness.h"

TestSuite(stream_window, .timeout = 20);

struct ends {
  int closes;
  int status;
  svc_stream_t *accepted;
};

static void on_close(svc_stream_t *s, int status, void *arg) {
  struct ends *e = arg;
  (void)s;
  e->closes++;
  e->status = status;
}

static void accept_paused(svc_server_t *srv, svc_stream_t *s, void *arg) {
  static const svc_stream_cbs_t cbs = {NULL, NULL, NULL, on_close};
  svc_stream_opts_t opts = {.window = 300};
  struct ends *e = arg;
  (void)srv;
  e->accepted = s;
  cr_assert_eq(svc_stream_accept(s, &opts, &cbs, e), 0);
  svc_stream_pause(s);
}

Test(stream_window, data_beyond_the_window_is_a_protocol_error) {
  static const svc_stream_cbs_t ccbs = {NULL, NULL, NULL, on_close};
  struct harness h;
  struct ends server = {0}, client = {0};
  svc_server_t *srv;
  svc_stream_t *s;
  char buf[100];
  int i;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://w", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "x", accept_paused, &server), 0);
  cr_assert_eq(svc_stream(h.ctx, "inproc://w/x", NULL, &ccbs, &client, &s),
               0);
  harness_run(&h);
  cr_assert_not_null(server.accepted);
  memset(buf, 'a', sizeof(buf));
  /* Three fit the 300-byte window; the fourth is a violation, delivered
   * the way a misbehaving remote peer's frames would be. */
  for (i = 0; i < 4; i++)
    svc__stream_on_data(server.accepted, svc_msg_new(buf, sizeof(buf)));
  harness_run(&h);
  cr_assert_eq(server.closes, 1);
  cr_assert_eq(server.status, SVC_EPROTO);
  cr_assert_eq(client.closes, 1);
  cr_assert_eq(client.status, SVC_ECONNRESET);
  harness_finish(&h);
}
