/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* The headline demo: one process, no server, every pattern on inproc://.
 *
 *   1. A payment service answers calls at inproc://payments/charge.
 *   2. The shop calls it asynchronously, then once more with a blocking
 *      call, the way code that cannot go on without the answer would.
 *   3. The shop publishes orders/placed; an inventory and a notification
 *      subscriber both receive it (fan-out: the publisher knows neither).
 *   4. A stream carries a few lines to an echo service and back.
 *
 * Swap "inproc://" for another backend's URI and the code stays the same:
 * that is the point of the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <svccomm.h>

static uint64_t t0;

/* Milliseconds since the demo started, for the timeline. */
static double ms(void) {
  return (double)(uv_hrtime() - t0) / 1e6;
}

/* ---- The payment service: answers calls. */

static void charge(svc_request_t *req, void *arg) {
  size_t len;
  const char *body = svc_msg_body(svc_request_msg(req), &len);
  char amount[32];
  char answer[64];

  (void)arg;
  snprintf(amount, sizeof(amount), "%.*s", (int)len, body);
  if (atoi(amount) > 1000) {
    svc_request_reply(req, SVC_STATUS_FAILED_PRECONDITION,
                      svc_msg_new_str("card declined"));
    return;
  }
  snprintf(answer, sizeof(answer), "charged %s EUR", amount);
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str(answer));
}

static void print_reply(const char *what, int status, const svc_msg_t *reply) {
  size_t len = 0;
  const char *body = reply ? svc_msg_body(reply, &len) : "";
  printf("%8.3f ms  %-22s %s: %.*s\n", ms(), what, svc_status_name(status),
         (int)len, body);
}

static void charged(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  (void)call;
  print_reply(arg, status, reply);
}

/* ---- Event subscribers: neither knows the other, nor the publisher. */

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  size_t len;
  const char *body;

  (void)sub;
  if (ev == NULL) /* The final callback, once the subscription ends. */
    return;
  (void)status;
  body = svc_msg_body(ev, &len);
  printf("%8.3f ms  %-22s got %s: %.*s\n", ms(), (const char *)arg,
         svc_msg_topic(ev), (int)len, body);
}

/* ---- A stream: the server echoes each line in upper case. */

static void echo_data(svc_stream_t *s, const svc_msg_t *m, void *arg) {
  size_t len, i;
  const char *b = svc_msg_body(m, &len);
  char up[128];

  (void)arg;
  for (i = 0; i < len && i < sizeof(up); i++)
    up[i] = (char)(b[i] >= 'a' && b[i] <= 'z' ? b[i] - 32 : b[i]);
  svc_stream_write(s, svc_msg_new(up, i), NULL, NULL);
}

static void echo_end(svc_stream_t *s, void *arg) {
  (void)arg;
  svc_stream_end(s);
}

static void echo_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  static const svc_stream_cbs_t cbs = {echo_data, echo_end, NULL, NULL};
  (void)srv;
  (void)arg;
  svc_stream_accept(s, NULL, &cbs, NULL);
}

static void client_data(svc_stream_t *s, const svc_msg_t *m, void *arg) {
  size_t len;
  const char *b = svc_msg_body(m, &len);
  (void)s;
  (void)arg;
  printf("%8.3f ms  %-22s %.*s\n", ms(), "stream echo", (int)len, b);
}

static void client_close(svc_stream_t *s, int status, void *arg) {
  svc_ctx_t *ctx = arg;
  (void)s;
  printf("%8.3f ms  %-22s %s\n", ms(), "stream closed",
         status == 0 ? "cleanly" : svc_strerror(status));
  svc_ctx_close(ctx, NULL, NULL);
}

static int check(int rc, const char *what) {
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", what, svc_strerror(rc));
    exit(1);
  }
  return rc;
}

int main(void) {
  static const svc_stream_cbs_t client_cbs = {client_data, NULL, NULL,
                                              client_close};
  svc_ctx_t *ctx;
  svc_server_t *payments, *echo;
  svc_stream_t *stream;
  svc_msg_t *reply = NULL;
  int status;

  t0 = uv_hrtime();
  check(svc_ctx_init(NULL, NULL, &ctx), "svc_ctx_init");

  check(svc_serve(ctx, "inproc://payments", NULL, &payments), "svc_serve");
  check(svc_server_route(payments, NULL, "charge", charge, NULL), "route");
  check(svc_serve(ctx, "inproc://echo", NULL, &echo), "svc_serve");
  check(svc_server_stream_route(echo, "upper", echo_accept, NULL), "route");
  check(svc_subscribe(ctx, "inproc://bus/orders/+", NULL, on_event,
                      "inventory", NULL), "svc_subscribe");
  check(svc_subscribe(ctx, "inproc://bus/orders/#", NULL, on_event,
                      "notifications", NULL), "svc_subscribe");

  printf("request/response (blocking, like a login):\n");
  status = check(svc_call_sync(ctx, "inproc://payments/charge",
                               svc_msg_new_str("42"), NULL, &reply),
                 "svc_call_sync");
  print_reply("sync charge 42", status, reply);
  svc_msg_free(reply);

  printf("request/response (asynchronous) and events:\n");
  check(svc_call(ctx, "inproc://payments/charge", svc_msg_new_str("99"), NULL,
                 charged, "async charge 99", NULL), "svc_call");
  check(svc_call(ctx, "inproc://payments/charge", svc_msg_new_str("5000"),
                 NULL, charged, "async charge 5000", NULL), "svc_call");
  check(svc_publish(ctx, "inproc://bus/orders/placed",
                    svc_msg_new_str("{\"order\":7}"), NULL, NULL, NULL),
        "svc_publish");
  printf("%8.3f ms  %-22s (nothing has run yet: delivery is asynchronous)\n",
         ms(), "published");

  check(svc_stream(ctx, "inproc://echo/upper", NULL, &client_cbs, ctx,
                   &stream), "svc_stream");
  svc_stream_write(stream, svc_msg_new_str("hello"), NULL, NULL);
  svc_stream_write(stream, svc_msg_new_str("streams"), NULL, NULL);
  svc_stream_end(stream);

  /* Runs until the stream closes, which closes the context. */
  svc_ctx_run(ctx, UV_RUN_DEFAULT);
  printf("all done\n");
  return 0;
}
