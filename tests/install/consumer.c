/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* A program that uses an installed libsvccomm the way a user would: only
 * <svccomm.h>, found through pkg-config or find_package(). */
#include <stdio.h>
#include <string.h>

#include <svccomm.h>

static void hello(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str("hello, consumer"));
}

int main(void) {
  svc_ctx_t *ctx;
  svc_server_t *srv;
  svc_msg_t *reply = NULL;
  size_t len;
  const char *body;
  int status;

  if (svc_version() != SVC_VERSION_HEX) {
    fprintf(stderr, "header and library versions differ\n");
    return 1;
  }
  if (svc_ctx_init(NULL, NULL, &ctx) != 0 ||
      svc_serve(ctx, "inproc://greeter", NULL, &srv) != 0 ||
      svc_server_route(srv, NULL, "hello", hello, NULL) != 0)
    return 1;
  status = svc_call_sync(ctx, "inproc://greeter/hello", NULL, NULL, &reply);
  body = reply ? svc_msg_body(reply, &len) : "";
  if (status != SVC_STATUS_OK || strncmp(body, "hello, consumer", len) != 0) {
    fprintf(stderr, "unexpected reply: %s\n", svc_status_name(status));
    return 1;
  }
  svc_msg_free(reply);
  svc_ctx_close(ctx, NULL, NULL);
  svc_ctx_run(ctx, UV_RUN_DEFAULT);
  printf("consumer ok: libsvccomm %s\n", svc_version_string());
  return 0;
}
