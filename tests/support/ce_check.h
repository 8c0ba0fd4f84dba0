/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_CE_CHECK_H
#define SVC_TEST_CE_CHECK_H

/* One CloudEvent with every kind of attribute, and a check that a message
 * received on some hop still carries all of it: the core attributes, the
 * optional ones, extensions, the data and its content type. The values
 * hold what bindings must encode (HTTP: space, '%', '"', UTF-8). */

#include "harness.h"

#define CE_DATA "{\"order\":42,\"note\":\"100% sure\"}"

static const char *const ce_exts[][2] = {
    {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    {"tenant", "acme corp"},
    {"partitionkey", "p7"},
};
#define CE_NEXTS (sizeof(ce_exts) / sizeof(ce_exts[0]))

static const svc_cloudevent_t ce_want = {
    .id = "ev-0001",
    .source = "/svc/tests/orders",
    .type = "com.example.order.placed",
    .specversion = "1.0",
    .time = "2026-01-31T12:34:56.789Z",
    .datacontenttype = "application/json",
    .subject = "order 42 \"caf\xc3\xa9\" 100%",
    .dataschema = "https://example.com/schemas/order.json",
};

/* A new message carrying the event above. */
static inline svc_msg_t *ce_make(void) {
  svc_msg_t *m = svc_msg_new_str(CE_DATA);
  size_t i;

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "x-plain", "kept"), 0);
  cr_assert_eq(svc_msg_set_cloudevent(m, &ce_want), 0);
  for (i = 0; i < CE_NEXTS; i++)
    cr_assert_eq(svc_msg_set_cloudevent_attr(m, ce_exts[i][0], ce_exts[i][1]),
                 0);
  return m;
}

static inline void ce_str_eq(const char *got, const char *want, const char *hop,
                             const char *what) {
  cr_assert_not_null(got, "%s: %s missing", hop, what);
  cr_assert_str_eq(got, want, "%s: %s is \"%s\", not \"%s\"", hop, what, got,
                   want);
}

/* Asserts that m, received on hop, is the event of ce_make(). */
static inline void ce_check(const svc_msg_t *m, const char *hop) {
  svc_cloudevent_t ce;
  size_t i;

  cr_assert_not_null(m, "%s: no message", hop);
  cr_assert_eq(svc_msg_cloudevent(m, &ce), 0, "%s: not a CloudEvent", hop);
  ce_str_eq(ce.specversion, "1.0", hop, "specversion");
  ce_str_eq(ce.id, ce_want.id, hop, "id");
  ce_str_eq(ce.source, ce_want.source, hop, "source");
  ce_str_eq(ce.type, ce_want.type, hop, "type");
  ce_str_eq(ce.time, ce_want.time, hop, "time");
  ce_str_eq(ce.datacontenttype, ce_want.datacontenttype, hop,
            "datacontenttype");
  ce_str_eq(svc_msg_content_type(m), ce_want.datacontenttype, hop,
            "content type");
  ce_str_eq(ce.subject, ce_want.subject, hop, "subject");
  ce_str_eq(ce.dataschema, ce_want.dataschema, hop, "dataschema");
  for (i = 0; i < CE_NEXTS; i++)
    ce_str_eq(svc_msg_cloudevent_attr(m, ce_exts[i][0]), ce_exts[i][1], hop,
              ce_exts[i][0]);
  ce_str_eq(svc_msg_header_get(m, "x-plain"), "kept", hop, "x-plain");
  cr_assert(body_is(m, CE_DATA), "%s: data is \"%.*s\"", hop,
            (int)svc_msg_len(m), (const char *)svc_msg_body(m, NULL));
}

/* ---- Relays: a hop subscribes on one backend and publishes what it
 * receives, unchanged (a copy), on the next; the last hop only keeps it.
 * Checks happen after the loop, on the copies each hop kept. */

struct ce_hop {
  const char *name;
  svc_ctx_t *ctx;
  const char *next; /* URI to publish on, or NULL for the last hop. */
  int ready;
  int n;
  int final;
  svc_msg_t *got;
  int pub_done;
  int pub_status;
};

static void ce_hop_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ((struct ce_hop *)arg)->ready++;
}

static void ce_hop_pub(svc_ctx_t *ctx, int status, void *arg) {
  struct ce_hop *hop = arg;

  (void)ctx;
  hop->pub_done++;
  hop->pub_status = status;
}

static void ce_hop_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                         void *arg) {
  struct ce_hop *hop = arg;
  svc_pub_opts_t po = {.qos = 1};
  svc_msg_t *m;
  int rc;

  (void)sub;
  (void)status;
  if (ev == NULL) {
    hop->final++;
    return;
  }
  if (hop->n++ > 0)
    return;
  hop->got = svc_msg_dup(ev);
  if (hop->next == NULL)
    return;
  m = svc_msg_dup(ev);
  rc = m != NULL ? svc_publish(hop->ctx, hop->next, m, &po, ce_hop_pub, hop)
                 : SVC_ENOMEM;
  if (rc != 0) {
    svc_msg_free(m);
    hop->pub_done++;
    hop->pub_status = rc;
  }
}

static inline void ce_hop_subscribe(struct ce_hop *hop, svc_ctx_t *ctx,
                                    const char *name, const char *uri,
                                    const char *next) {
  svc_sub_opts_t so = {.qos = 1, .on_ready = ce_hop_ready};

  hop->name = name;
  hop->ctx = ctx;
  hop->next = next;
  cr_assert_eq(svc_subscribe(ctx, uri, &so, ce_hop_event, hop, NULL), 0,
               "subscribe %s", uri);
}

/* Checks what every hop received and forwarded, and frees the copies. */
static inline void ce_hops_check(struct ce_hop *hops, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    cr_assert_eq(hops[i].n, 1, "%s received %d events", hops[i].name,
                 hops[i].n);
    ce_check(hops[i].got, hops[i].name);
    if (hops[i].next != NULL)
      cr_assert_eq(hops[i].pub_status, 0, "%s could not publish on: %s",
                   hops[i].name, svc_strerror(hops[i].pub_status));
    svc_msg_free(hops[i].got);
    hops[i].got = NULL;
  }
}

#endif /* SVC_TEST_CE_CHECK_H */
