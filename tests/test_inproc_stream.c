/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* svc_stream() over inproc://: ordering, half-close, flow control with a
 * paused reader, reset, routing and close. */
#include "harness.h"

TestSuite(inproc_stream, .timeout = 20);

struct side {
  svc_stream_t *s;
  int data;
  size_t bytes;
  int ends;
  int closes;
  int close_status;
  int writable;
  int write_cbs;
  int write_errors;
  int last_write_status;
  char first[64];
  char last[64];
  int echo;       /* Write every message back. */
  int end_on_end; /* End our side when the peer ends. */
};

static void side_data(svc_stream_t *s, const svc_msg_t *m, void *arg) {
  struct side *sd = arg;
  size_t len;
  const void *b = svc_msg_body(m, &len);

  if (sd->data == 0)
    snprintf(sd->first, sizeof(sd->first), "%.*s", (int)len, (const char *)b);
  snprintf(sd->last, sizeof(sd->last), "%.*s", (int)len, (const char *)b);
  sd->data++;
  sd->bytes += len;
  if (sd->echo)
    cr_assert_eq(svc_stream_write(s, svc_msg_dup(m), NULL, NULL), 0);
}

static void side_end(svc_stream_t *s, void *arg) {
  struct side *sd = arg;
  sd->ends++;
  if (sd->end_on_end)
    cr_assert_eq(svc_stream_end(s), 0);
}

static void side_writable(svc_stream_t *s, void *arg) {
  struct side *sd = arg;
  (void)s;
  sd->writable++;
}

static void side_close(svc_stream_t *s, int status, void *arg) {
  struct side *sd = arg;
  (void)s;
  sd->closes++;
  sd->close_status = status;
}

static const svc_stream_cbs_t side_cbs = {side_data, side_end, side_writable,
                                          side_close};

static void write_cb(svc_stream_t *s, int status, void *arg) {
  struct side *sd = arg;
  (void)s;
  sd->write_cbs++;
  sd->last_write_status = status;
  if (status != 0)
    sd->write_errors++;
}

/* The accepting side: a struct side per server, set as the route's arg. */
static svc_stream_opts_t server_opts;

static void accept_side(svc_server_t *srv, svc_stream_t *s, void *arg) {
  struct side *sd = arg;
  (void)srv;
  sd->s = s;
  cr_assert_eq(svc_stream_accept(s, &server_opts, &side_cbs, sd), 0);
  cr_assert_eq(svc_stream_accept(s, NULL, &side_cbs, sd), SVC_EINVAL);
}

static void serve_side(svc_ctx_t *ctx, const char *pattern, struct side *sd) {
  svc_server_t *srv;
  cr_assert_eq(svc_serve(ctx, "inproc://srv", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, pattern, accept_side, sd), 0);
}

static void write_str(struct side *sd, const char *s) {
  cr_assert_eq(svc_stream_write(sd->s, svc_msg_new_str(s), write_cb, sd), 0);
}

Test(inproc_stream, echo_in_order_then_clean_close_both_sides) {
  struct harness h;
  struct side cl = {0}, sv = {.echo = 1, .end_on_end = 1};

  harness_start(&h);
  memset(&server_opts, 0, sizeof(server_opts));
  serve_side(h.ctx, "echo", &sv);
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/echo", NULL, &side_cbs, &cl,
                          &cl.s), 0);
  write_str(&cl, "one");
  write_str(&cl, "two");
  write_str(&cl, "three");
  cr_assert_eq(svc_stream_end(cl.s), 0);
  cr_assert_eq(svc_stream_end(cl.s), SVC_EPIPE);
  cr_assert_eq(svc_stream_write(cl.s, NULL, NULL, NULL), SVC_EPIPE);
  harness_run(&h);
  cr_assert_eq(sv.data, 3);
  cr_assert_str_eq(sv.first, "one");
  cr_assert_str_eq(sv.last, "three");
  cr_assert_eq(cl.data, 3);
  cr_assert_str_eq(cl.first, "one");
  cr_assert_str_eq(cl.last, "three");
  cr_assert_eq(cl.ends, 1);
  cr_assert_eq(sv.ends, 1);
  cr_assert_eq(cl.write_cbs, 3);
  cr_assert_eq(cl.write_errors, 0);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(cl.close_status, 0);
  cr_assert_eq(sv.closes, 1);
  cr_assert_eq(sv.close_status, 0);
  harness_finish(&h);
}

Test(inproc_stream, no_server_closes_with_econnrefused) {
  struct harness h;
  struct side cl = {0};

  harness_start(&h);
  cr_assert_eq(svc_stream(h.ctx, "inproc://none/x", NULL, &side_cbs, &cl,
                          &cl.s), 0);
  cr_assert_eq(cl.closes, 0);
  harness_run(&h);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(cl.close_status, SVC_ECONNREFUSED);
  harness_finish(&h);
}

Test(inproc_stream, unrouted_stream_is_reset) {
  struct harness h;
  struct side cl = {0}, sv = {0};

  harness_start(&h);
  serve_side(h.ctx, "chat", &sv);
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/other", NULL, &side_cbs, &cl,
                          &cl.s), 0);
  write_str(&cl, "lost");
  harness_run(&h);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(cl.close_status, SVC_ECONNRESET);
  cr_assert_eq(cl.write_cbs, 1);
  cr_assert_eq(cl.last_write_status, SVC_ECONNRESET);
  cr_assert_eq(sv.data, 0);
  harness_finish(&h);
}

static struct side *resume_target;

static void resume_it(void *arg) {
  (void)arg;
  svc_stream_resume(resume_target->s);
}

static void pause_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  accept_side(srv, s, arg);
  svc_stream_pause(s);
}

struct pump {
  struct side *cl;
  int written;
  int refused;
  int total;
};

static void pump_writes(struct pump *p) {
  char buf[100];
  int rc;

  memset(buf, 'x', sizeof(buf));
  while (p->written < p->total) {
    svc_msg_t *m = svc_msg_new(buf, sizeof(buf));
    rc = svc_stream_write(p->cl->s, m, NULL, NULL);
    if (rc == SVC_EAGAIN) {
      svc_msg_free(m); /* Refused: still ours. */
      p->refused++;
      return;
    }
    cr_assert_eq(rc, 0);
    p->written++;
  }
  svc_stream_end(p->cl->s);
}

static struct pump *the_pump;

static void pump_writable(svc_stream_t *s, void *arg) {
  side_writable(s, arg);
  pump_writes(the_pump);
}

Test(inproc_stream, paused_reader_bounds_writer_memory_and_nothing_is_lost) {
  struct harness h;
  struct side cl = {0}, sv = {.end_on_end = 1};
  svc_stream_opts_t copts = {.window = 1000, .send_buffer = 1000};
  svc_stream_cbs_t ccbs = side_cbs;
  struct pump p = {&cl, 0, 0, 500};
  svc_server_t *srv;
  int first_batch;

  harness_start(&h);
  server_opts = (svc_stream_opts_t){.window = 1000, .send_buffer = 1000};
  cr_assert_eq(svc_serve(h.ctx, "inproc://srv", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "bulk", pause_accept, &sv), 0);
  ccbs.on_writable = pump_writable;
  the_pump = &p;
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/bulk", &copts, &ccbs, &cl,
                          &cl.s), 0);
  pump_writes(&p);
  /* Before the peer accepts, only the send buffer (10 x 100 bytes) fits. */
  cr_assert_eq(p.written, 10);
  cr_assert_eq(p.refused, 1);
  /* Let the paused server take one window; the writer stalls again. */
  uv_run(&h.loop, UV_RUN_NOWAIT);
  uv_run(&h.loop, UV_RUN_NOWAIT);
  uv_run(&h.loop, UV_RUN_NOWAIT);
  first_batch = p.written;
  cr_assert(first_batch <= 21, "writer got %d messages out past a paused "
            "reader with a 1000-byte window and send buffer", first_batch);
  cr_assert_eq(sv.data, 0, "paused stream delivered data");
  resume_target = &sv;
  run_later(&h.loop, 20, resume_it, NULL);
  harness_run(&h);
  cr_assert_eq(p.written, 500, "written %d refused %d writable %d sv.data %d", p.written, p.refused, cl.writable, sv.data);
  cr_assert_eq(sv.data, 500);
  cr_assert_eq(sv.bytes, 50000);
  cr_assert(cl.writable >= 1);
  cr_assert_eq(sv.ends, 1);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(cl.close_status, 0);
  cr_assert_eq(sv.closes, 1);
  cr_assert_eq(sv.close_status, 0, "server closed with %s",
               svc_err_name(sv.close_status));
  harness_finish(&h);
}

Test(inproc_stream, message_larger_than_window_still_goes_through) {
  struct harness h;
  struct side cl = {0}, sv = {.end_on_end = 1};
  svc_stream_opts_t copts = {.window = 64, .send_buffer = 64};
  static char big[10000];

  harness_start(&h);
  server_opts = (svc_stream_opts_t){.window = 64};
  serve_side(h.ctx, "big", &sv);
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/big", &copts, &side_cbs, &cl,
                          &cl.s), 0);
  memset(big, 'b', sizeof(big));
  cr_assert_eq(svc_stream_write(cl.s, svc_msg_new(big, sizeof(big)), write_cb,
                                &cl), 0);
  {
    svc_msg_t *m = svc_msg_new_str("x");
    cr_assert_eq(svc_stream_write(cl.s, m, NULL, NULL), SVC_EAGAIN);
    svc_msg_free(m);
  }
  svc_stream_end(cl.s);
  harness_run(&h);
  cr_assert_eq(sv.data, 1);
  cr_assert_eq(sv.bytes, sizeof(big));
  cr_assert_eq(cl.write_cbs, 1);
  cr_assert_eq(cl.close_status, 0);
  harness_finish(&h);
}

static void reset_on_first_data(svc_stream_t *s, const svc_msg_t *m,
                                void *arg) {
  side_data(s, m, arg);
  svc_stream_reset(s);
  svc_stream_reset(s);
}

Test(inproc_stream, reset_ends_both_sides_with_the_right_status) {
  struct harness h;
  struct side cl = {0}, sv = {0};
  svc_stream_cbs_t scbs = side_cbs;
  svc_server_t *srv;

  harness_start(&h);
  memset(&server_opts, 0, sizeof(server_opts));
  cr_assert_eq(svc_serve(h.ctx, "inproc://srv", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "r", accept_side, &sv), 0);
  scbs.on_data = reset_on_first_data;
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/r", NULL, &scbs, &cl, &cl.s),
               0);
  /* The client resets after its first message from the server. */
  harness_run(&h);
  cr_assert_not_null(sv.s);
  cr_assert_eq(svc_stream_write(sv.s, svc_msg_new_str("hi"), write_cb, &sv),
               0);
  harness_run(&h);
  cr_assert_eq(cl.data, 1);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(cl.close_status, SVC_ECANCELED);
  cr_assert_eq(sv.closes, 1);
  cr_assert_eq(sv.close_status, SVC_ECONNRESET);
  harness_finish(&h);
}

static char seen_room[32];
static char seen_user[32];

static void accept_params(svc_server_t *srv, svc_stream_t *s, void *arg) {
  snprintf(seen_room, sizeof(seen_room), "%s", svc_stream_param(s, "room"));
  snprintf(seen_user, sizeof(seen_user), "%s", svc_stream_header(s, "user"));
  accept_side(srv, s, arg);
}

Test(inproc_stream, accept_sees_path_params_and_open_headers) {
  struct harness h;
  struct side cl = {0}, sv = {.end_on_end = 1};
  const char *hdrs[] = {"user", "ada"};
  svc_stream_opts_t copts = {.headers = hdrs, .nheaders = 1};
  svc_server_t *srv;

  harness_start(&h);
  memset(&server_opts, 0, sizeof(server_opts));
  cr_assert_eq(svc_serve(h.ctx, "inproc://srv", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "rooms/{room}", accept_params,
                                       &sv), 0);
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/rooms/lobby", &copts,
                          &side_cbs, &cl, &cl.s), 0);
  svc_stream_end(cl.s);
  harness_run(&h);
  cr_assert_str_eq(seen_room, "lobby");
  cr_assert_str_eq(seen_user, "ada");
  cr_assert_eq(cl.close_status, 0);
  harness_finish(&h);
}

Test(inproc_stream, context_close_ends_open_streams_once) {
  struct harness h;
  struct side cl = {0}, sv = {0};

  harness_start(&h);
  memset(&server_opts, 0, sizeof(server_opts));
  serve_side(h.ctx, "s", &sv);
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/s", NULL, &side_cbs, &cl,
                          &cl.s), 0);
  write_str(&cl, "a");
  harness_run(&h);
  cr_assert_eq(sv.data, 1);
  harness_finish(&h);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(sv.closes, 1);
  cr_assert(cl.close_status == SVC_ECANCELED ||
            cl.close_status == SVC_ECONNRESET);
  cr_assert(sv.close_status == SVC_ECANCELED ||
            sv.close_status == SVC_ECONNRESET);
}

Test(inproc_stream, server_close_resets_accepted_streams) {
  struct harness h;
  struct side cl = {0}, sv = {0};
  svc_server_t *srv;

  harness_start(&h);
  memset(&server_opts, 0, sizeof(server_opts));
  cr_assert_eq(svc_serve(h.ctx, "inproc://srv", NULL, &srv), 0);
  cr_assert_eq(svc_server_stream_route(srv, "s", accept_side, &sv), 0);
  cr_assert_eq(svc_stream(h.ctx, "inproc://srv/s", NULL, &side_cbs, &cl,
                          &cl.s), 0);
  harness_run(&h);
  svc_server_close(srv, NULL, NULL);
  harness_run(&h);
  cr_assert_eq(cl.closes, 1);
  cr_assert_eq(cl.close_status, SVC_ECONNRESET);
  cr_assert_eq(sv.closes, 1);
  cr_assert_eq(sv.close_status, SVC_ECANCELED);
  harness_finish(&h);
}
