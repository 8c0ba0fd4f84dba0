/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* CloudEvents in binary mode: the svc_msg_*cloudevent* accessors, their
 * validation, and events that keep every attribute over inproc://, tcp://
 * and unix:// (the mqtt:// and http:// bindings are in
 * test_cloudevents_net.c). */
#include <stdio.h>
#include <unistd.h>

#include "ce_check.h"

TestSuite(cloudevents, .timeout = 20);

/* ---- Setting and reading. */

Test(cloudevents, set_then_read_every_attribute) {
  svc_msg_t *m = ce_make();
  svc_cloudevent_t ce;

  ce_check(m, "local");
  /* Headers named the HTTP binding's way. */
  cr_assert_str_eq(svc_msg_header_get(m, "ce-id"), "ev-0001");
  cr_assert_str_eq(svc_msg_header_get(m, "ce-traceparent"), ce_exts[0][1]);
  /* datacontenttype is the content type, not a header. */
  cr_assert_null(svc_msg_header_get(m, "ce-datacontenttype"));
  cr_assert_eq(svc_msg_cloudevent(m, NULL), 0);
  /* A copy is the same event. */
  {
    svc_msg_t *d = svc_msg_dup(m);
    ce_check(d, "dup");
    svc_msg_free(d);
  }
  cr_assert_eq(svc_msg_cloudevent(m, &ce), 0);
  svc_msg_free(m);
}

Test(cloudevents, defaults_specversion_and_time) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_cloudevent_t in = {.id = "1", .source = "/s", .type = "t"};
  svc_cloudevent_t ce;
  const char *t;

  cr_assert_eq(svc_msg_set_cloudevent(m, &in), 0);
  cr_assert_eq(svc_msg_cloudevent(m, &ce), 0);
  cr_assert_str_eq(ce.specversion, "1.0");
  /* NULL time: now, RFC 3339 in UTC with milliseconds. */
  t = ce.time;
  cr_assert_not_null(t);
  cr_assert_eq(strlen(t), 24, "time %s", t);
  cr_assert(t[4] == '-' && t[7] == '-' && t[10] == 'T' && t[13] == ':' &&
                t[16] == ':' && t[19] == '.' && t[23] == 'Z',
            "time %s", t);
  cr_assert(strncmp(t, "20", 2) == 0, "time %s", t);
  cr_assert_null(ce.subject);
  cr_assert_null(ce.dataschema);
  cr_assert_null(ce.datacontenttype);
  /* "" leaves the event without a time. */
  in.time = "";
  cr_assert_eq(svc_msg_set_cloudevent(m, &in), 0);
  cr_assert_eq(svc_msg_cloudevent(m, &ce), 0);
  cr_assert_null(ce.time);
  cr_assert_null(svc_msg_header_get(m, "ce-time"));
  svc_msg_free(m);
}

Test(cloudevents, missing_required_attributes_are_einval) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_cloudevent_t ok = {.id = "1", .source = "/s", .type = "t"};
  svc_cloudevent_t bad;

  svc_msg_header_add(m, "x-a", "1");
  svc_msg_set_content_type(m, "text/plain");
  bad = ok;
  bad.id = NULL;
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.id = "";
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.source = NULL;
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.source = "";
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.type = NULL;
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.specversion = "";
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.subject = "line\r\nbreak";
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  bad = ok;
  bad.datacontenttype = "";
  cr_assert_eq(svc_msg_set_cloudevent(m, &bad), SVC_EINVAL);
  cr_assert_eq(svc_msg_set_cloudevent(m, NULL), SVC_EINVAL);
  /* Every failure left the message as it was. */
  cr_assert_eq(svc_msg_header_count(m), 1);
  cr_assert_str_eq(svc_msg_content_type(m), "text/plain");
  cr_assert_eq(svc_msg_cloudevent(m, NULL), SVC_ENOENT);
  svc_msg_free(m);
}

Test(cloudevents, plain_message_is_not_a_cloudevent) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_cloudevent_t ce;

  svc_msg_header_add(m, "id", "1");
  svc_msg_set_content_type(m, "text/plain");
  cr_assert_eq(svc_msg_cloudevent(m, &ce), SVC_ENOENT);
  cr_assert_null(ce.id);
  cr_assert_null(svc_msg_cloudevent_attr(m, "id"));
  /* Claims to be one but lacks what every event has. */
  svc_msg_header_add(m, "ce-specversion", "1.0");
  svc_msg_header_add(m, "ce-id", "1");
  cr_assert_eq(svc_msg_cloudevent(m, &ce), SVC_EPROTO);
  cr_assert_str_eq(ce.id, "1");
  cr_assert_null(ce.source);
  svc_msg_free(m);
}

Test(cloudevents, extension_attributes) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_cloudevent_t in = {.id = "1", .source = "/s", .type = "t", .time = ""};
  const char *names[16];
  const char *values[16];
  const char *name;
  const char *value;
  size_t pos = 0;
  int n = 0;

  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "traceparent", "00-ab"), 0);
  cr_assert_eq(svc_msg_set_cloudevent(m, &in), 0);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "seq", "1"), 0);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "seq", "2"), 0);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "a2345678901234567890", "v"), 0);
  cr_assert_str_eq(svc_msg_cloudevent_attr(m, "traceparent"), "00-ab");
  cr_assert_str_eq(svc_msg_cloudevent_attr(m, "seq"), "2");
  cr_assert_null(svc_msg_cloudevent_attr(m, "missing"));
  /* Names: 1..20 of a-z 0-9. */
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "Seq", "1"), SVC_EINVAL);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "with-dash", "1"), SVC_EINVAL);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "", "1"), SVC_EINVAL);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "a23456789012345678901", "v"),
               SVC_EINVAL);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "seq", "a\nb"), SVC_EINVAL);
  cr_assert_null(svc_msg_cloudevent_attr(m, "with-dash"));
  /* datacontenttype is the content type. */
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "datacontenttype", "text/csv"),
               0);
  cr_assert_str_eq(svc_msg_content_type(m), "text/csv");
  cr_assert_str_eq(svc_msg_cloudevent_attr(m, "datacontenttype"), "text/csv");
  /* Every attribute header, in order. */
  while (svc_msg_cloudevent_attr_next(m, &pos, &name, &value) == 0 && n < 16) {
    names[n] = name;
    values[n] = value;
    n++;
  }
  cr_assert_eq(n, 7);
  cr_assert_str_eq(names[0], "traceparent");
  cr_assert_str_eq(names[1], "specversion");
  cr_assert_str_eq(names[4], "type");
  cr_assert_str_eq(names[5], "seq");
  cr_assert_str_eq(values[5], "2");
  cr_assert_str_eq(names[6], "a2345678901234567890");
  /* Removing. */
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "seq", NULL), 0);
  cr_assert_null(svc_msg_cloudevent_attr(m, "seq"));
  cr_assert_eq(svc_msg_cloudevent(m, NULL), 0);
  svc_msg_free(m);
}

Test(cloudevents, reads_attributes_in_any_case) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_cloudevent_t ce;
  const char *name;
  size_t pos = 0;

  /* As other HTTP tooling may send them. */
  svc_msg_header_add(m, "Ce-Specversion", "1.0");
  svc_msg_header_add(m, "Ce-Id", "A-1");
  svc_msg_header_add(m, "CE-SOURCE", "/other");
  svc_msg_header_add(m, "ce-Type", "t.x");
  svc_msg_header_add(m, "Ce-Traceparent", "00-cd");
  cr_assert_eq(svc_msg_cloudevent(m, &ce), 0);
  cr_assert_str_eq(ce.id, "A-1");
  cr_assert_str_eq(ce.source, "/other");
  cr_assert_str_eq(ce.type, "t.x");
  cr_assert_str_eq(svc_msg_cloudevent_attr(m, "traceparent"), "00-cd");
  cr_assert_str_eq(svc_msg_cloudevent_attr(m, "TraceParent"), "00-cd");
  cr_assert_eq(svc_msg_cloudevent_attr_next(m, &pos, &name, NULL), 0);
  cr_assert_str_eq(name, "Specversion");
  svc_msg_free(m);
}

Test(cloudevents, setting_again_replaces_and_keeps_extensions) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_cloudevent_t a = {.id = "1",
                        .source = "/s",
                        .type = "t",
                        .subject = "s1",
                        .time = "2026-01-01T00:00:00Z",
                        .datacontenttype = "text/plain"};
  svc_cloudevent_t b = {.id = "2", .source = "/s2", .type = "t2", .time = ""};
  svc_cloudevent_t ce;

  svc_msg_header_add(m, "Ce-Id", "stale");
  cr_assert_eq(svc_msg_set_cloudevent(m, &a), 0);
  cr_assert_eq(svc_msg_set_cloudevent_attr(m, "ext", "e"), 0);
  cr_assert_eq(svc_msg_set_cloudevent(m, &b), 0);
  cr_assert_eq(svc_msg_cloudevent(m, &ce), 0);
  cr_assert_str_eq(ce.id, "2");
  cr_assert_null(ce.subject);
  cr_assert_null(ce.time);
  /* NULL datacontenttype leaves the content type alone. */
  cr_assert_str_eq(ce.datacontenttype, "text/plain");
  cr_assert_str_eq(svc_msg_cloudevent_attr(m, "ext"), "e");
  /* One header per attribute: specversion, id, source, type, ext. */
  cr_assert_eq(svc_msg_header_count(m), 5);
  svc_msg_free(m);
}

/* ---- Over the backends. */

Test(cloudevents, inproc_publish_keeps_every_attribute) {
  struct harness h;
  struct ce_hop hop = {0};
  svc_pub_opts_t po = {.qos = 1};

  harness_start(&h);
  ce_hop_subscribe(&hop, h.ctx, "inproc", "inproc://bus/ce/#", NULL);
  harness_run_until(&h, &hop.ready);
  cr_assert_eq(
      svc_publish(h.ctx, "inproc://bus/ce/one", ce_make(), &po, NULL, NULL), 0);
  harness_run_until(&h, &hop.n);
  ce_hops_check(&hop, 1);
  harness_finish(&h);
}

static const char *at(svc_server_t *srv, const char *path) {
  static char buf[8][256];
  static int i;
  char *b = buf[i++ % 8];

  snprintf(b, 256, "%s/%s", svc_server_endpoint(srv), path);
  return b;
}

/* inproc -> tcp:// hub -> unix:// hub -> inproc, each hop re-publishing
 * what it received; every hop sees the whole event. */
Test(cloudevents, chain_inproc_tcp_unix_inproc) {
  struct harness h;
  struct ce_hop hops[4];
  svc_server_t *tcp;
  svc_server_t *unx;
  svc_pub_opts_t po = {.qos = 1};
  char unix_uri[128];

  memset(hops, 0, sizeof(hops));
  snprintf(unix_uri, sizeof(unix_uri), "unix:///tmp/svc-ce-%d.sock",
           (int)getpid());
  unlink(unix_uri + 7);
  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1:0", NULL, &tcp), 0);
  cr_assert_eq(svc_serve(h.ctx, unix_uri, NULL, &unx), 0);
  ce_hop_subscribe(&hops[0], h.ctx, "inproc", "inproc://bus/ce/#",
                   at(tcp, "ce/t"));
  ce_hop_subscribe(&hops[1], h.ctx, "tcp", at(tcp, "ce/#"), at(unx, "ce/u"));
  ce_hop_subscribe(&hops[2], h.ctx, "unix", at(unx, "ce/#"),
                   "inproc://end/ce/e");
  ce_hop_subscribe(&hops[3], h.ctx, "inproc again", "inproc://end/ce/#", NULL);
  while (!hops[0].ready || !hops[1].ready || !hops[2].ready || !hops[3].ready)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(
      svc_publish(h.ctx, "inproc://bus/ce/start", ce_make(), &po, NULL, NULL),
      0);
  harness_run_until(&h, &hops[3].n);
  ce_hops_check(hops, 4);
  harness_finish(&h);
  unlink(unix_uri + 7);
}
