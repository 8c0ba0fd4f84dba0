/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* CloudEvents over http:// and mqtt:// (each test starts its own
 * mosquitto): one event relayed inproc -> tcp -> http -> mqtt -> inproc
 * keeps every attribute at every hop, and events interoperate with other
 * tooling: curl posting "ce-" headers, mosquitto_pub sending the MQTT
 * binding's user properties, mosquitto_sub reading ours. */
#include "mosquitto.h"

#include "ce_check.h"
#include "http_raw.h"

static struct broker b;

static void setup(void) {
  cr_assert_eq(broker_start(&b), 0, "mosquitto did not start");
}

static void teardown(void) {
  broker_cleanup(&b);
}

TestSuite(cloudevents_net, .init = setup, .fini = teardown, .timeout = 30);

static const char *at(svc_server_t *srv, const char *path) {
  static char buf[8][256];
  static int i;
  char *s = buf[i++ % 8];

  snprintf(s, 256, "%s/%s", svc_server_endpoint(srv), path);
  return s;
}

static int all_ready(const struct ce_hop *hops, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    if (!hops[i].ready)
      return 0;
  return 1;
}

Test(cloudevents_net, chain_inproc_tcp_http_mqtt_inproc) {
  struct harness h;
  struct ce_hop hops[5];
  svc_server_t *tcp;
  svc_server_t *http;
  svc_pub_opts_t po = {.qos = 1};

  memset(hops, 0, sizeof(hops));
  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1:0", NULL, &tcp), 0);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0", NULL, &http), 0);
  ce_hop_subscribe(&hops[0], h.ctx, "inproc", "inproc://bus/ce/#",
                   at(tcp, "ce/t"));
  ce_hop_subscribe(&hops[1], h.ctx, "tcp", at(tcp, "ce/#"), at(http, "ce/h"));
  ce_hop_subscribe(&hops[2], h.ctx, "http (SSE)", at(http, "ce/#"),
                   broker_uri(&b, "ce/m"));
  ce_hop_subscribe(&hops[3], h.ctx, "mqtt", broker_uri(&b, "ce/#"),
                   "inproc://end/ce/e");
  ce_hop_subscribe(&hops[4], h.ctx, "inproc again", "inproc://end/ce/#", NULL);
  while (!all_ready(hops, 5))
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(
      svc_publish(h.ctx, "inproc://bus/ce/start", ce_make(), &po, NULL, NULL),
      0);
  harness_run_until(&h, &hops[4].n);
  ce_hops_check(hops, 5);
  harness_finish(&h);
}

/* ---- HTTP tooling. */

static void ce_reply_handler(svc_request_t *req, void *arg) {
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, ce_make());
}

Test(cloudevents_net, curl_posts_a_cloudevent_and_reads_one) {
  struct harness h;
  struct ce_hop hop = {0};
  svc_server_t *srv;
  svc_cloudevent_t ce;
  char url[256];
  char *out;
  int st;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "http://127.0.0.1:0", NULL, &srv), 0);
  cr_assert_eq(svc_server_route(srv, "GET", "event", ce_reply_handler, NULL),
               0);
  ce_hop_subscribe(&hop, h.ctx, "sse", at(srv, "orders/#"), NULL);
  harness_run_until(&h, &hop.ready);
  /* Headers as other tooling writes them: mixed case, percent-encoded. */
  snprintf(url, sizeof(url), "http://%s/topics/orders/placed",
           svc_server_endpoint(srv) + strlen("http://"));
  {
    const char *args[] = {"-X", "POST",
                          "-H", "Ce-Specversion: 1.0",
                          "-H", "Ce-Id: curl-1",
                          "-H", "ce-source: /tools/curl",
                          "-H", "CE-TYPE: com.example.curl",
                          "-H", "ce-subject: hello%20w%C3%B6rld%25",
                          "-H", "ce-traceparent: 00-ef-01",
                          "-H", "Content-Type: application/json",
                          "-d", "{\"x\":1}",
                          "-w", "%{http_code}",
                          url,  NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 0);
    cr_assert_str_eq(out, "204", "%s", out);
    free(out);
  }
  harness_run_until(&h, &hop.n);
  cr_assert_eq(svc_msg_cloudevent(hop.got, &ce), 0);
  cr_assert_str_eq(ce.specversion, "1.0");
  cr_assert_str_eq(ce.id, "curl-1");
  cr_assert_str_eq(ce.source, "/tools/curl");
  cr_assert_str_eq(ce.type, "com.example.curl");
  cr_assert_str_eq(ce.subject, "hello w\xc3\xb6rld%");
  cr_assert_str_eq(ce.datacontenttype, "application/json");
  cr_assert_str_eq(svc_msg_cloudevent_attr(hop.got, "traceparent"), "00-ef-01");
  cr_assert(body_is(hop.got, "{\"x\":1}"));
  svc_msg_free(hop.got);

  /* Our answer, as curl sees it: "ce-" headers percent-encoded where the
   * binding asks, datacontenttype as Content-Type. */
  snprintf(url, sizeof(url), "%s/event", svc_server_endpoint(srv));
  {
    const char *args[] = {"-i", url, NULL};
    out = hcurl_run(&h.loop, args, &st);
    cr_assert_eq(st, 0);
    cr_assert_not_null(strstr(out, "\r\nce-id: ev-0001\r\n"), "%s", out);
    cr_assert_not_null(strstr(out, "\r\nce-specversion: 1.0\r\n"), "%s", out);
    cr_assert_not_null(
        strstr(out,
               "\r\nce-subject: order%2042%20%22caf%C3%A9%22%20100%25\r\n"),
        "%s", out);
    cr_assert_not_null(strstr(out, "\r\nce-tenant: acme%20corp\r\n"), "%s",
                       out);
    cr_assert_not_null(strstr(out, "\r\nContent-Type: application/json\r\n"),
                       "%s", out);
    cr_assert_not_null(strstr(out, "\r\n\r\n" CE_DATA), "%s", out);
    free(out);
  }
  /* And our client reads it back decoded. */
  {
    svc_msg_t *reply = NULL;
    cr_assert_eq(svc_call_sync(h.ctx, url, NULL, NULL, &reply), 0);
    ce_check(reply, "http reply");
    svc_msg_free(reply);
  }
  harness_finish(&h);
}

/* ---- MQTT tooling. */

Test(cloudevents_net, mosquitto_pub_event_reads_as_cloudevent) {
  struct harness h;
  struct ce_hop hop = {0};
  svc_cloudevent_t ce;
  char port[16];

  harness_start(&h);
  snprintf(port, sizeof(port), "%d", b.port);
  ce_hop_subscribe(&hop, h.ctx, "mqtt", broker_uri(&b, "ce/in"), NULL);
  harness_run_until(&h, &hop.ready);
  {
    char *argv[] = {"mosquitto_pub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    port,
                    "-V",
                    "mqttv5",
                    "-q",
                    "1",
                    "-t",
                    "ce/in",
                    "-m",
                    "{\"y\":2}",
                    "-D",
                    "publish",
                    "user-property",
                    "specversion",
                    "1.0",
                    "-D",
                    "publish",
                    "user-property",
                    "id",
                    "mq-1",
                    "-D",
                    "publish",
                    "user-property",
                    "source",
                    "/tools/mosquitto",
                    "-D",
                    "publish",
                    "user-property",
                    "type",
                    "com.example.mq",
                    "-D",
                    "publish",
                    "user-property",
                    "subject",
                    "a b",
                    "-D",
                    "publish",
                    "user-property",
                    "traceparent",
                    "00-12-01",
                    "-D",
                    "publish",
                    "user-property",
                    "not-an-attribute",
                    "kept",
                    "-D",
                    "publish",
                    "content-type",
                    "application/json",
                    NULL};
    cr_assert_eq(run_cmd(argv, NULL, 5000), 0);
  }
  harness_run_until(&h, &hop.n);
  cr_assert_eq(svc_msg_cloudevent(hop.got, &ce), 0);
  cr_assert_str_eq(ce.specversion, "1.0");
  cr_assert_str_eq(ce.id, "mq-1");
  cr_assert_str_eq(ce.source, "/tools/mosquitto");
  cr_assert_str_eq(ce.type, "com.example.mq");
  cr_assert_str_eq(ce.subject, "a b");
  cr_assert_str_eq(ce.datacontenttype, "application/json");
  cr_assert_str_eq(svc_msg_header_get(hop.got, "ce-id"), "mq-1");
  cr_assert_str_eq(svc_msg_cloudevent_attr(hop.got, "traceparent"), "00-12-01");
  /* Not an attribute name: an ordinary header, as before. */
  cr_assert_str_eq(svc_msg_header_get(hop.got, "not-an-attribute"), "kept");
  cr_assert_null(svc_msg_header_get(hop.got, "id"));
  cr_assert(body_is(hop.got, "{\"y\":2}"));
  svc_msg_free(hop.got);
  harness_finish(&h);
}

static void on_pub(svc_ctx_t *ctx, int status, void *arg) {
  int *p = arg;
  (void)ctx;
  *p = status == 0 ? 1 : status;
}

Test(cloudevents_net, mosquitto_sub_sees_bare_attribute_names) {
  struct harness h;
  svc_pub_opts_t po = {.qos = 1, .retain = 1};
  char port[16];
  char out[128];
  char buf[2048] = "";
  size_t n;
  FILE *f;
  int done = 0;

  harness_start(&h);
  snprintf(port, sizeof(port), "%d", b.port);
  /* Retained, so that the order of publish and subscribe cannot race. */
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "ce/out"), ce_make(), &po,
                           on_pub, &done),
               0);
  harness_run_until(&h, &done);
  cr_assert_eq(done, 1);
  snprintf(out, sizeof(out), "%s/sub.out", b.dir);
  {
    char *argv[] = {
        "mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-V", "mqttv5",   "-t",
        "ce/out",        "-C", "1",         "-W", "5",  "-F", "%C|%P|%p", NULL};
    cr_assert_eq(run_cmd(argv, out, 6000), 0);
  }
  f = fopen(out, "r");
  cr_assert_not_null(f);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  cr_assert(strncmp(buf, "application/json|", 17) == 0, "%s", buf);
  cr_assert_not_null(strstr(buf, "specversion:1.0"), "%s", buf);
  cr_assert_not_null(strstr(buf, "id:ev-0001"), "%s", buf);
  cr_assert_not_null(strstr(buf, "type:com.example.order.placed"), "%s", buf);
  cr_assert_not_null(strstr(buf, "tenant:acme corp"), "%s", buf);
  cr_assert_not_null(strstr(buf, "x-plain:kept"), "%s", buf);
  cr_assert_null(strstr(buf, "ce-"), "%s", buf);
  cr_assert_not_null(strstr(buf, "|" CE_DATA), "%s", buf);
  harness_finish(&h);
}

Test(cloudevents_net, mqtt_311_refuses_a_cloudevent) {
  struct harness h;
  svc_pub_opts_t po = {.qos = 1};
  char uri[256];
  svc_msg_t *m = ce_make();
  int done = 0;
  int rc;

  harness_start(&h);
  snprintf(uri, sizeof(uri), "%s?version=3", broker_uri(&b, "ce/v3"));
  rc = svc_publish(h.ctx, uri, m, &po, on_pub, &done);
  if (rc == 0) {
    harness_run_until(&h, &done);
    rc = done;
  } else {
    svc_msg_free(m);
  }
  cr_assert_eq(rc, SVC_ENOTSUP, "%s", svc_strerror(rc));
  harness_finish(&h);
}

/* Regression: closing a context whose first conn closes synchronously
 * (inproc://) re-entered the close sequence, which finished and freed the
 * context while the mqtt:// client after it was still disconnecting. */
Test(cloudevents_net, context_with_inproc_then_mqtt_closes_cleanly) {
  struct harness h;
  struct ce_hop hops[2];
  svc_pub_opts_t po = {.qos = 1};

  memset(hops, 0, sizeof(hops));
  harness_start(&h);
  ce_hop_subscribe(&hops[0], h.ctx, "inproc", "inproc://bus/ce/#", NULL);
  ce_hop_subscribe(&hops[1], h.ctx, "mqtt", broker_uri(&b, "ce/#"), NULL);
  while (!all_ready(hops, 2))
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(svc_publish(h.ctx, broker_uri(&b, "ce/m"), svc_msg_new_str("x"),
                           &po, NULL, NULL),
               0);
  harness_run_until(&h, &hops[1].n);
  svc_msg_free(hops[1].got);
  harness_finish(&h);
}
