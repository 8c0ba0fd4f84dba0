/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

/* The metrics records of a context in the Prometheus text exposition
 * format, version 0.0.4: one family per counter or gauge, each with HELP
 * and TYPE lines, one sample per endpoint and role. The names are an
 * interface (docs/metrics.md): change them only with a major version. */

struct text {
  char *buf;
  size_t len;
  size_t cap;
  int failed;
};

static void text_add(struct text *t, const char *fmt, ...) {
  va_list ap;
  int n;

  if (t->failed)
    return;
  for (;;) {
    va_start(ap, fmt);
    n = vsnprintf(t->buf != NULL ? t->buf + t->len : NULL,
                  t->buf != NULL ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      t->failed = 1;
      return;
    }
    if (t->buf != NULL && (size_t)n < t->cap - t->len) {
      t->len += (size_t)n;
      return;
    }
    {
      size_t cap = t->cap ? t->cap * 2 : 4096;
      char *nb;
      while (cap - t->len <= (size_t)n)
        cap *= 2;
      nb = svc__realloc(t->buf, cap);
      if (nb == NULL) {
        t->failed = 1;
        return;
      }
      t->buf = nb;
      t->cap = cap;
    }
  }
}

/* Label values escape backslash, double quote and newline (the format's
 * rules); endpoints are URIs and hold none today, but names must never
 * break the output. */
static void text_labels(struct text *t, const svc_metrics_t *m) {
  const char *p;

  text_add(t, "{endpoint=\"");
  for (p = m->endpoint; *p != '\0'; p++) {
    if (*p == '\\' || *p == '"')
      text_add(t, "\\%c", *p);
    else if (*p == '\n')
      text_add(t, "\\n");
    else
      text_add(t, "%c", *p);
  }
  text_add(t, "\",role=\"%s\"",
           m->role == SVC_ROLE_SERVER ? "server" : "client");
}

enum family_kind { COUNTER, GAUGE };

struct family {
  const char *name;
  enum family_kind kind;
  const char *help;
  size_t offset; /* Of the uint64_t field in svc_metrics_t. */
};

#define FIELD(f) offsetof(svc_metrics_t, f)

static const struct family families[] = {
    {"svccomm_calls_total", COUNTER,
     "Calls started (client) or requests received (server).", FIELD(calls)},
    {"svccomm_call_errors_total", COUNTER,
     "Calls completed with a status other than OK.", FIELD(errors)},
    {"svccomm_call_retries_total", COUNTER,
     "Extra attempts made by retry policies.", FIELD(retries)},
    {"svccomm_calls_in_flight", GAUGE, "Calls started and not completed.",
     FIELD(in_flight)},
    {"svccomm_messages_received_total", COUNTER,
     "Requests, replies, events and stream messages received.", FIELD(msgs_in)},
    {"svccomm_messages_sent_total", COUNTER,
     "Requests, replies, events and stream messages sent.", FIELD(msgs_out)},
    {"svccomm_received_bytes_total", COUNTER, "Message body bytes received.",
     FIELD(bytes_in)},
    {"svccomm_sent_bytes_total", COUNTER, "Message body bytes sent.",
     FIELD(bytes_out)},
    {"svccomm_messages_dropped_total", COUNTER,
     "Messages dropped by a full queue (QoS 0) or an injected fault.",
     FIELD(dropped)},
    {"svccomm_queue_depth", GAUGE,
     "Messages waiting in this endpoint's queues.", FIELD(queue_depth)},
    {"svccomm_streams_total", COUNTER, "Streams opened or accepted.",
     FIELD(streams)},
    {"svccomm_breaker_state", GAUGE,
     "Circuit breaker: 0 closed, 1 open, 2 half-open.",
     FIELD(breaker_state)},
    {"svccomm_breaker_opens_total", COUNTER,
     "Times the circuit breaker opened.", FIELD(breaker_opens)},
    {"svccomm_calls_rejected_total", COUNTER,
     "Calls failed fast by the breaker or the concurrency limit.",
     FIELD(calls_rejected)},
    {"svccomm_calls_waiting", GAUGE,
     "Calls waiting for a concurrency slot.", FIELD(calls_waiting)},
    {"svccomm_stream_writes_dropped_total", COUNTER,
     "Stream writes that the stream's end failed.", FIELD(writes_dropped)},
    {"svccomm_connection_state", GAUGE,
     "Client connection: 1 connecting, 2 connected, 3 backing off, 4 "
     "closed.",
     FIELD(conn_state)},
};

static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};

svc_msg_t *svc_metrics_prometheus(svc_ctx_t *ctx) {
  struct text t = {NULL, 0, 0, 0};
  struct svc__list *pos;
  const svc_metrics_t *m;
  svc_msg_t *msg;
  size_t f;
  size_t q;
  int s;

  if (ctx == NULL)
    return NULL;
  for (f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
    text_add(&t, "# HELP %s %s\n# TYPE %s %s\n", families[f].name,
             families[f].help, families[f].name,
             families[f].kind == COUNTER ? "counter" : "gauge");
    svc__list_foreach(pos, &ctx->metrics) {
      m = &svc__container_of(pos, struct svc__metrics, link)->m;
      text_add(&t, "%s", families[f].name);
      text_labels(&t, m);
      text_add(&t, "} %llu\n",
               (unsigned long long)*(
                   const uint64_t *)(const void *)((const char *)m +
                                                   families[f].offset));
    }
  }
  text_add(&t,
           "# HELP svccomm_calls_completed_total Calls completed, by status.\n"
           "# TYPE svccomm_calls_completed_total counter\n");
  svc__list_foreach(pos, &ctx->metrics) {
    m = &svc__container_of(pos, struct svc__metrics, link)->m;
    for (s = 0; s < SVC_STATUS_COUNT; s++) {
      if (m->calls_by_status[s] == 0)
        continue;
      text_add(&t, "svccomm_calls_completed_total");
      text_labels(&t, m);
      text_add(&t, ",status=\"%s\"} %llu\n", svc_status_name(s),
               (unsigned long long)m->calls_by_status[s]);
    }
  }
  text_add(&t, "# HELP svccomm_publishes_dropped_total Publishes that ended "
               "dropped, by reason.\n"
               "# TYPE svccomm_publishes_dropped_total counter\n");
  svc__list_foreach(pos, &ctx->metrics) {
    m = &svc__container_of(pos, struct svc__metrics, link)->m;
    for (s = 1; s < SVC_DROP_COUNT; s++) {
      if (m->pubs_dropped[s] == 0)
        continue;
      text_add(&t, "svccomm_publishes_dropped_total");
      text_labels(&t, m);
      text_add(&t, ",reason=\"%s\"} %llu\n",
               svc_drop_reason_name((svc_drop_reason_t)s),
               (unsigned long long)m->pubs_dropped[s]);
    }
  }
  text_add(&t, "# HELP svccomm_call_latency_seconds Call latency, start to "
               "completion.\n# TYPE svccomm_call_latency_seconds summary\n");
  svc__list_foreach(pos, &ctx->metrics) {
    m = &svc__container_of(pos, struct svc__metrics, link)->m;
    for (q = 0; q < sizeof(quantiles) / sizeof(quantiles[0]); q++) {
      text_add(&t, "svccomm_call_latency_seconds");
      text_labels(&t, m);
      text_add(&t, ",quantile=\"%g\"} %.6f\n", quantiles[q],
               (double)svc_hist_percentile(&m->latency_us, quantiles[q]) / 1e6);
    }
    text_add(&t, "svccomm_call_latency_seconds_sum");
    text_labels(&t, m);
    text_add(&t, "} %.6f\n", (double)m->latency_us.sum / 1e6);
    text_add(&t, "svccomm_call_latency_seconds_count");
    text_labels(&t, m);
    text_add(&t, "} %llu\n", (unsigned long long)m->latency_us.count);
  }
  if (t.failed) {
    svc__free(t.buf);
    return NULL;
  }
  msg = t.buf != NULL ? svc_msg_new_take(t.buf, t.len, svc__free)
                      : svc_msg_new(NULL, 0);
  if (msg == NULL) {
    svc__free(t.buf);
    return NULL;
  }
  if (svc_msg_set_content_type(msg, "text/plain; version=0.0.4") != 0) {
    svc_msg_free(msg);
    return NULL;
  }
  return msg;
}
