/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* svc_publish()/svc_subscribe() over inproc://: wildcards, fan-out,
 * retained messages, shared subscriptions, QoS 0 drops, QoS 1 backpressure
 * and close. */
/* SVC__TOPIC_MAX of src/internal.h: the longest topic name. */
#define SVC_TEST_TOPIC_MAX 65535

#include "harness.h"

TestSuite(inproc_pubsub, .timeout = 20);

struct inbox {
  int events;
  int finals;
  int final_status;
  int ready;
  int ready_before_first_event;
  char topics[64][64];
  char bodies[64][64];
};

static int in_publish;

static void inbox_cb(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct inbox *in = arg;
  size_t len;
  const void *b;

  (void)sub;
  cr_assert_eq(in_publish, 0, "event delivered inside svc_publish()");
  if (ev == NULL) {
    in->finals++;
    in->final_status = status;
    return;
  }
  cr_assert_eq(status, 0);
  cr_assert_eq(in->finals, 0, "event after the final callback");
  if (in->events < 64) {
    snprintf(in->topics[in->events], 64, "%s", svc_msg_topic(ev));
    b = svc_msg_body(ev, &len);
    snprintf(in->bodies[in->events], 64, "%.*s", (int)len, (const char *)b);
  }
  in->events++;
}

static void inbox_ready(svc_sub_t *sub, void *arg) {
  struct inbox *in = arg;
  (void)sub;
  in->ready++;
  in->ready_before_first_event = in->events == 0;
}

static svc_sub_t *sub_to(svc_ctx_t *ctx, const char *uri, struct inbox *in,
                         size_t max_queue) {
  svc_sub_t *sub = NULL;
  svc_sub_opts_t opts = {.max_queue = max_queue, .on_ready = inbox_ready};
  cr_assert_eq(svc_subscribe(ctx, uri, &opts, inbox_cb, in, &sub), 0);
  return sub;
}

struct pubres {
  int calls;
  int status;
};

static void pub_cb(svc_ctx_t *ctx, int status, void *arg) {
  struct pubres *p = arg;
  (void)ctx;
  p->calls++;
  p->status = status;
}

static int pub(svc_ctx_t *ctx, const char *uri, const char *body, int qos,
               struct pubres *p) {
  svc_pub_opts_t o = {.qos = qos};
  svc_msg_t *m = svc_msg_new_str(body);
  int rc;

  in_publish = 1;
  rc = svc_publish(ctx, uri, m, &o, p ? pub_cb : NULL, p);
  in_publish = 0;
  if (rc != 0)
    svc_msg_free(m);
  return rc;
}

Test(inproc_pubsub, event_reaches_wildcard_subscriber_with_topic) {
  struct harness h;
  struct inbox in = {0};
  struct pubres p = {0};

  harness_start(&h);
  sub_to(h.ctx, "inproc://bus/orders/+", &in, 0);
  harness_run(&h);
  cr_assert_eq(in.ready, 1);
  cr_assert_eq(pub(h.ctx, "inproc://bus/orders/placed", "o-1", 0, &p), 0);
  cr_assert_eq(p.calls, 0);
  harness_run(&h);
  cr_assert_eq(p.calls, 1);
  cr_assert_eq(p.status, 0);
  cr_assert_eq(in.events, 1);
  cr_assert_str_eq(in.topics[0], "orders/placed");
  cr_assert_str_eq(in.bodies[0], "o-1");
  cr_assert(in.ready_before_first_event);
  harness_finish(&h);
  cr_assert_eq(in.finals, 1);
  cr_assert_eq(in.final_status, SVC_ECANCELED);
}

Test(inproc_pubsub, mqtt_matching_rules_apply) {
  struct harness h;
  struct inbox hash = {0}, plus = {0}, exact = {0}, sys = {0}, other = {0};

  harness_start(&h);
  sub_to(h.ctx, "inproc://bus/#", &hash, 0);
  sub_to(h.ctx, "inproc://bus/+/b", &plus, 0);
  sub_to(h.ctx, "inproc://bus/a/b", &exact, 0);
  sub_to(h.ctx, "inproc://bus/$SYS/#", &sys, 0);
  sub_to(h.ctx, "inproc://other/#", &other, 0);
  pub(h.ctx, "inproc://bus/a/b", "1", 0, NULL);
  pub(h.ctx, "inproc://bus/a/c", "2", 0, NULL);
  pub(h.ctx, "inproc://bus/$SYS/load", "3", 0, NULL);
  pub(h.ctx, "inproc://bus/a", "4", 0, NULL);
  harness_run(&h);
  cr_assert_eq(hash.events, 3, "'#' got %d", hash.events); /* Not $SYS. */
  cr_assert_eq(plus.events, 1);
  cr_assert_eq(exact.events, 1);
  cr_assert_eq(sys.events, 1);
  cr_assert_str_eq(sys.topics[0], "$SYS/load");
  cr_assert_eq(other.events, 0, "endpoints are separate buses");
  harness_finish(&h);
}

Test(inproc_pubsub, fanout_reaches_every_subscriber_in_order) {
  struct harness h;
  struct inbox in[3];
  int i, j;
  char body[16];

  harness_start(&h);
  memset(in, 0, sizeof(in));
  for (i = 0; i < 3; i++)
    sub_to(h.ctx, "inproc://bus/users/signed_up", &in[i], 0);
  for (j = 0; j < 20; j++) {
    snprintf(body, sizeof(body), "u%d", j);
    cr_assert_eq(pub(h.ctx, "inproc://bus/users/signed_up", body, 1, NULL),
                 0);
  }
  harness_run(&h);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(in[i].events, 20);
    for (j = 0; j < 20; j++) {
      snprintf(body, sizeof(body), "u%d", j);
      cr_assert_str_eq(in[i].bodies[j], body);
    }
  }
  harness_finish(&h);
}

Test(inproc_pubsub, unsubscribe_stops_events_and_ends_once) {
  struct harness h;
  struct inbox in = {0};
  svc_sub_t *sub;

  harness_start(&h);
  sub = sub_to(h.ctx, "inproc://bus/t", &in, 0);
  pub(h.ctx, "inproc://bus/t", "before", 0, NULL);
  harness_run(&h);
  svc_unsubscribe(sub);
  svc_unsubscribe(sub);
  pub(h.ctx, "inproc://bus/t", "after", 0, NULL);
  harness_run(&h);
  cr_assert_eq(in.events, 1);
  cr_assert_eq(in.finals, 1);
  cr_assert_eq(in.final_status, SVC_ECANCELED);
  harness_finish(&h);
  cr_assert_eq(in.finals, 1);
}

Test(inproc_pubsub, retained_message_greets_new_subscribers) {
  struct harness h;
  struct inbox a = {0}, b = {0};
  svc_pub_opts_t retain = {.retain = 1};

  harness_start(&h);
  cr_assert_eq(svc_publish(h.ctx, "inproc://bus/config/mode",
                           svc_msg_new_str("safe"), &retain, NULL, NULL), 0);
  harness_run(&h);
  sub_to(h.ctx, "inproc://bus/config/#", &a, 0);
  harness_run(&h);
  cr_assert_eq(a.events, 1);
  cr_assert_str_eq(a.bodies[0], "safe");
  /* An empty retained publish clears it. */
  cr_assert_eq(svc_publish(h.ctx, "inproc://bus/config/mode", NULL, &retain,
                           NULL, NULL), 0);
  harness_run(&h);
  sub_to(h.ctx, "inproc://bus/config/#", &b, 0);
  harness_run(&h);
  cr_assert_eq(b.events, 0);
  harness_finish(&h);
}

Test(inproc_pubsub, qos0_overflow_drops_and_counts) {
  struct harness h;
  struct inbox in = {0};
  svc_sub_t *sub;
  svc_metrics_t m;
  int i;

  harness_start(&h);
  sub = sub_to(h.ctx, "inproc://bus/fast", &in, 4);
  for (i = 0; i < 10; i++)
    cr_assert_eq(pub(h.ctx, "inproc://bus/fast", "x", 0, NULL), 0);
  cr_assert_eq(svc_sub_dropped(sub), 6);
  harness_run(&h);
  cr_assert_eq(in.events, 4);
  cr_assert_eq(svc_metrics_get(h.ctx, "inproc://bus", SVC_ROLE_CLIENT, &m), 0);
  cr_assert_eq(m.dropped, 6);
  cr_assert_eq(m.queue_depth, 0);
  harness_finish(&h);
}

Test(inproc_pubsub, qos1_waits_for_room_and_loses_nothing) {
  struct harness h;
  struct inbox in = {0};
  struct pubres p[40];
  svc_sub_t *sub;
  char body[16];
  int i;

  harness_start(&h);
  memset(p, 0, sizeof(p));
  sub = sub_to(h.ctx, "inproc://bus/orders", &in, 4);
  for (i = 0; i < 40; i++) {
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(pub(h.ctx, "inproc://bus/orders", body, 1, &p[i]), 0);
  }
  harness_run(&h);
  cr_assert_eq(svc_sub_dropped(sub), 0);
  cr_assert_eq(in.events, 40);
  for (i = 0; i < 40; i++) {
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_str_eq(in.bodies[i], body, "event %d out of order", i);
    cr_assert_eq(p[i].calls, 1);
    cr_assert_eq(p[i].status, 0);
  }
  harness_finish(&h);
}

Test(inproc_pubsub, qos1_publisher_is_told_to_wait_past_the_bound) {
  struct harness h;
  struct inbox in = {0};
  svc_ctx_opts_t copts = {.max_pending_publishes = 3};
  int i, accepted = 0, again = 0, rc;

  harness_start_opts(&h, &copts);
  sub_to(h.ctx, "inproc://bus/q", &in, 1);
  for (i = 0; i < 10; i++) {
    rc = pub(h.ctx, "inproc://bus/q", "x", 1, NULL);
    accepted += rc == 0;
    again += rc == SVC_EAGAIN;
  }
  /* One fits the queue, three wait, the rest are refused. */
  cr_assert_eq(accepted, 4);
  cr_assert_eq(again, 6);
  harness_run(&h);
  cr_assert_eq(in.events, 4);
  harness_finish(&h);
}

Test(inproc_pubsub, shared_subscription_splits_the_work) {
  struct harness h;
  struct inbox a = {0}, b = {0}, plain = {0};
  int i;

  harness_start(&h);
  sub_to(h.ctx, "inproc://bus/$share/workers/jobs/#", &a, 0);
  sub_to(h.ctx, "inproc://bus/$share/workers/jobs/#", &b, 0);
  sub_to(h.ctx, "inproc://bus/jobs/#", &plain, 0);
  for (i = 0; i < 10; i++)
    pub(h.ctx, "inproc://bus/jobs/resize", "j", 1, NULL);
  harness_run(&h);
  cr_assert_eq(a.events + b.events, 10);
  cr_assert_eq(a.events, 5);
  cr_assert_eq(b.events, 5);
  cr_assert_eq(plain.events, 10);
  harness_finish(&h);
}

Test(inproc_pubsub, invalid_topics_and_options_are_einval) {
  struct harness h;
  struct inbox in = {0};
  svc_sub_t *sub;
  svc_pub_opts_t bad_qos = {.qos = 3};
  svc_msg_t *m = svc_msg_new_str("kept");

  harness_start(&h);
  cr_assert_eq(svc_publish(h.ctx, "inproc://bus/a/+", m, NULL, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_publish(h.ctx, "inproc://bus/a/#", m, NULL, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_publish(h.ctx, "inproc://bus/", m, NULL, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_publish(h.ctx, "inproc://bus/a", m, &bad_qos, NULL, NULL),
               SVC_EINVAL);
  cr_assert_eq(svc_publish(h.ctx, "nope://bus/a", m, NULL, NULL, NULL),
               SVC_ESCHEME);
  cr_assert_eq(svc_subscribe(h.ctx, "inproc://bus/a/#/b", NULL, inbox_cb, &in,
                             &sub), SVC_EINVAL);
  cr_assert_eq(svc_subscribe(h.ctx, "inproc://bus/a+", NULL, inbox_cb, &in,
                             &sub), SVC_EINVAL);
  cr_assert(body_is(m, "kept"));
  svc_msg_free(m);
  harness_run(&h);
  cr_assert_eq(in.events + in.finals, 0);
  harness_finish(&h);
}

/* svc_server_publish() takes a topic as it is, so its checks are seen at
 * the edges: the longest topic there may be, one byte more, wildcards
 * anywhere, the empty topic. */
Test(inproc_pubsub, server_publish_checks_topics_at_their_limits) {
  struct harness h;
  svc_server_t *srv;
  char *t = malloc(SVC_TEST_TOPIC_MAX + 2);
  svc_msg_t *m = svc_msg_new_str("kept");

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://limits", NULL, &srv), 0);
  memset(t, 'a', SVC_TEST_TOPIC_MAX + 1);
  t[SVC_TEST_TOPIC_MAX + 1] = '\0';
  cr_assert_eq(svc_server_publish(srv, t, m, NULL, NULL, NULL), SVC_EINVAL);
  t[SVC_TEST_TOPIC_MAX] = '\0';
  t[SVC_TEST_TOPIC_MAX - 1] = '+';
  cr_assert_eq(svc_server_publish(srv, t, m, NULL, NULL, NULL), SVC_EINVAL);
  t[0] = '#';
  t[SVC_TEST_TOPIC_MAX - 1] = 'a';
  cr_assert_eq(svc_server_publish(srv, t, m, NULL, NULL, NULL), SVC_EINVAL);
  cr_assert_eq(svc_server_publish(srv, "", m, NULL, NULL, NULL), SVC_EINVAL);
  cr_assert(body_is(m, "kept"));
  t[0] = 'a';
  cr_assert_eq(svc_server_publish(srv, t, m, NULL, NULL, NULL), 0);
  free(t);
  harness_finish(&h);
}

Test(inproc_pubsub, close_ends_subscriptions_and_waiting_publishes) {
  struct harness h;
  struct inbox in = {0};
  struct pubres p[3];

  harness_start(&h);
  memset(p, 0, sizeof(p));
  sub_to(h.ctx, "inproc://bus/q", &in, 1);
  cr_assert_eq(pub(h.ctx, "inproc://bus/q", "1", 1, &p[0]), 0);
  cr_assert_eq(pub(h.ctx, "inproc://bus/q", "2", 1, &p[1]), 0);
  cr_assert_eq(pub(h.ctx, "inproc://bus/q", "3", 1, &p[2]), 0);
  harness_finish(&h);
  cr_assert_eq(in.finals, 1);
  cr_assert_eq(in.final_status, SVC_ECANCELED);
  cr_assert_eq(p[0].calls, 1);
  cr_assert_eq(p[0].status, 0);
  cr_assert_eq(p[1].calls, 1);
  cr_assert_eq(p[1].status, SVC_ECANCELED);
  cr_assert_eq(p[2].calls, 1);
  cr_assert_eq(p[2].status, SVC_ECANCELED);
}

Test(inproc_pubsub, server_publishes_into_its_own_hub) {
  struct harness h;
  struct inbox in = {0};
  struct pubres p = {0};
  svc_server_t *srv;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "inproc://hub", NULL, &srv), 0);
  sub_to(h.ctx, "inproc://hub/news/+", &in, 0);
  cr_assert_eq(svc_server_publish(srv, "news/today", svc_msg_new_str("hi"),
                                  NULL, pub_cb, &p), 0);
  harness_run(&h);
  cr_assert_eq(p.calls, 1);
  cr_assert_eq(in.events, 1);
  cr_assert_str_eq(in.topics[0], "news/today");
  harness_finish(&h);
}

static void unsub_in_cb(svc_sub_t *sub, int status, const svc_msg_t *ev,
                        void *arg) {
  inbox_cb(sub, status, ev, arg);
  if (ev != NULL)
    svc_unsubscribe(sub);
}

Test(inproc_pubsub, unsubscribe_inside_callback_stops_delivery) {
  struct harness h;
  struct inbox in = {0};
  int i;

  harness_start(&h);
  cr_assert_eq(svc_subscribe(h.ctx, "inproc://bus/t", NULL, unsub_in_cb, &in,
                             NULL), 0);
  for (i = 0; i < 5; i++)
    pub(h.ctx, "inproc://bus/t", "x", 0, NULL);
  harness_run(&h);
  cr_assert_eq(in.events, 1);
  cr_assert_eq(in.finals, 1);
  harness_finish(&h);
}

/* A context keeps the URIs it parsed last and shares a parse between the
 * verbs that use the same URI: a subscription keeps a filter of its own
 * after its parse is dropped, and more URIs than are kept all work, the
 * same ones again included. */
Test(inproc_pubsub, verbs_share_parsed_uris_and_outlive_them) {
  struct harness h;
  struct inbox a = {0};
  struct inbox b = {0};
  char uri[64];
  int round;
  int i;

  harness_start(&h);
  sub_to(h.ctx, "inproc://bus/kept/+", &a, 0);
  sub_to(h.ctx, "inproc://bus/kept/+", &b, 0);
  harness_run(&h);
  for (round = 0; round < 3; round++) {
    for (i = 0; i < 6; i++) {
      snprintf(uri, sizeof(uri), "inproc://bus/kept/%d", i);
      cr_assert_eq(pub(h.ctx, uri, "e", 0, NULL), 0);
    }
    harness_run(&h);
  }
  cr_assert_eq(a.events, 18);
  cr_assert_eq(b.events, 18);
  for (i = 0; i < 18; i++) {
    char want[16];

    snprintf(want, sizeof(want), "kept/%d", i % 6);
    cr_assert_str_eq(a.topics[i], want);
    cr_assert_str_eq(b.topics[i], want);
  }
  harness_finish(&h);
}
