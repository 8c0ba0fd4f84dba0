/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* svc_metrics_prometheus(): the text exposition format, with the names
 * docs/metrics.md promises, checked line by line. */
#include <regex.h>
#include <stdio.h>

#include "harness.h"

static void ok_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str("ok"));
}

static int calls_done;
static void done_cb(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  (void)call;
  (void)status;
  (void)reply;
  (void)arg;
  calls_done++;
}

/* The text of msg as a C string (the caller frees it). */
static char *text_of(const svc_msg_t *msg) {
  size_t len;
  const char *b = svc_msg_body(msg, &len);
  char *s = malloc(len + 1);
  memcpy(s, b, len);
  s[len] = '\0';
  return s;
}

Test(metrics_text, prometheus_names_labels_and_values) {
  struct harness h;
  svc_server_t *srv;
  svc_msg_t *m;
  char *text;
  char *line;
  char *save = NULL;
  regex_t sample;
  int samples = 0;
  int i;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://shop", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, NULL, "ok", ok_handler, NULL), 0);
  for (i = 0; i < 3; i++)
    cr_assert_eq(
        svc_call(h.ctx, "inproc://shop/ok", NULL, NULL, done_cb, NULL, NULL),
        0);
  cr_assert_eq(
      svc_call(h.ctx, "inproc://shop/missing", NULL, NULL, done_cb, NULL, NULL),
      0);
  harness_run(&h);
  cr_assert_eq(calls_done, 4);

  m = svc_metrics_prometheus(h.ctx);
  cr_assert_not_null(m);
  cr_assert_str_eq(svc_msg_content_type(m), "text/plain; version=0.0.4");
  text = text_of(m);
  cr_assert_not_null(strstr(text, "# TYPE svccomm_calls_total counter\n"));
  cr_assert_not_null(strstr(
      text, "svccomm_calls_total{endpoint=\"inproc://shop\",role=\"client\"} "
            "4\n"));
  cr_assert_not_null(strstr(
      text, "svccomm_calls_total{endpoint=\"inproc://shop\",role=\"server\"} "
            "4\n"));
  cr_assert_not_null(
      strstr(text, "svccomm_calls_completed_total{endpoint=\"inproc://"
                   "shop\",role=\"client\",status=\"NOT_FOUND\"} 1\n"));
  cr_assert_not_null(strstr(text,
                            "svccomm_calls_completed_total{endpoint=\"inproc://"
                            "shop\",role=\"client\",status=\"OK\"} 3\n"));
  cr_assert_not_null(
      strstr(text, "svccomm_call_errors_total{endpoint=\"inproc://shop\",role="
                   "\"client\"} 1\n"));
  cr_assert_not_null(strstr(text, "# TYPE svccomm_call_latency_seconds "
                                  "summary\n"));
  cr_assert_not_null(strstr(
      text, "svccomm_call_latency_seconds_count{endpoint=\"inproc://shop\","
            "role=\"client\"} 4\n"));
  cr_assert_not_null(strstr(text, ",quantile=\"0.99\"} "));

  /* Every line is a comment or a well-formed sample. */
  cr_assert_eq(regcomp(&sample,
                       "^svccomm_[a-z_]+\\{endpoint=\"[^\"]*\",role=\"(client|"
                       "server)\"(,[a-z]+=\"[^\"]*\")?\\} [0-9]+(\\.[0-9]+)?$",
                       REG_EXTENDED | REG_NOSUB),
               0);
  for (line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    if (strncmp(line, "# HELP svccomm_", 15) == 0 ||
        strncmp(line, "# TYPE svccomm_", 15) == 0)
      continue;
    cr_assert_eq(regexec(&sample, line, 0, NULL, 0), 0, "bad line: %s", line);
    samples++;
  }
  cr_assert(samples > 20);
  regfree(&sample);
  free(text);
  svc_msg_free(m);
  harness_finish(&h);
}

Test(metrics_text, empty_context_renders_headers_only) {
  struct harness h;
  svc_msg_t *m;
  char *text;

  harness_start(&h);
  m = svc_metrics_prometheus(h.ctx);
  cr_assert_not_null(m);
  text = text_of(m);
  cr_assert_not_null(strstr(text, "# HELP svccomm_calls_total "));
  cr_assert_null(strstr(text, "{endpoint="));
  cr_assert_null(svc_metrics_prometheus(NULL));
  free(text);
  svc_msg_free(m);
  harness_finish(&h);
}
