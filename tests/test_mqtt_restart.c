/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Nothing lost across broker and publisher restarts: 10,000 QoS 1
 * publishes with the broker stopped and restarted in the middle reach a
 * persistent-session subscriber, every one of them (duplicates are
 * counted), and a publisher that closes with publishes unsent resends them
 * from its persist_dir when it comes back. */
#include "mosquitto.h"

#include "harness.h"

static struct broker b;

static void setup(void) {
  cr_assert_eq(broker_start_opts(&b, 1, 0), 0, "mosquitto did not start");
}

static void teardown(void) {
  broker_cleanup(&b);
}

TestSuite(mqtt_restart, .init = setup, .fini = teardown, .timeout = 60);

#define TOTAL 10000

struct counter {
  int ready;
  int unique;
  int dups;
  svc_dedup_t *dedup; /* When set: duplicates it recognised by svc-id. */
  int dedup_dups;
  int bad;
  unsigned char *seen;
  int nseen;
};

static void on_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ((struct counter *)arg)->ready++;
}

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct counter *c = arg;
  char num[16];
  size_t len;
  const char *body;
  long i;
  (void)sub;
  (void)status;
  if (ev == NULL)
    return;
  body = svc_msg_body(ev, &len);
  snprintf(num, sizeof(num), "%.*s", (int)(len < 15 ? len : 15), body);
  i = atol(num);
  if (i < 0 || i >= c->nseen) {
    c->bad++;
    return;
  }
  if (c->dedup != NULL && svc_dedup_check(c->dedup, ev) == 1)
    c->dedup_dups++;
  if (c->seen[i]++)
    c->dups++;
  else
    c->unique++;
}

struct pubs {
  int done;
  int ok;
  int failed;
  int first_err;
};

static void on_pub(svc_ctx_t *ctx, int status, void *arg) {
  struct pubs *p = arg;
  (void)ctx;
  p->done++;
  if (status == 0)
    p->ok++;
  else if (p->failed++ == 0)
    p->first_err = status;
}

static void run_ms(struct harness *h, uint64_t ms) {
  uint64_t end;
  uv_update_time(&h->loop);
  end = uv_now(&h->loop) + ms;
  while (uv_now(&h->loop) < end) {
    uv_run(&h->loop, UV_RUN_NOWAIT);
    broker_sleep_ms(1);
    uv_update_time(&h->loop);
  }
}

/* What the watchdog reports when a test is stuck. */
static const struct counter *watch_c;
static const struct pubs *watch_p;

static void watchdog_fired(uv_timer_t *t) {
  int missing = -1;
  int i;

  (void)t;
  for (i = 0; watch_c != NULL && i < watch_c->nseen && missing < 0; i++)
    if (!watch_c->seen[i])
      missing = i;
  cr_assert_fail("watchdog: publishes done %d (ok %d, failed %d), "
                 "received %d unique, %d duplicates, first missing %d",
                 watch_p ? watch_p->done : -1, watch_p ? watch_p->ok : -1,
                 watch_p ? watch_p->failed : -1,
                 watch_c ? watch_c->unique : -1, watch_c ? watch_c->dups : -1,
                 missing);
}

static void watchdog(struct harness *h, uint64_t ms, const struct counter *c,
                     const struct pubs *p) {
  watch_c = c;
  watch_p = p;
  uv_timer_stop(&h->watchdog);
  uv_timer_start(&h->watchdog, watchdog_fired, ms, 0);
}

Test(mqtt_restart, ten_thousand_qos1_survive_a_broker_restart) {
  struct harness h;
  svc_ctx_t *sc;
  struct counter c = {0};
  struct pubs p = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready, .max_queue = 256};
  svc_pub_opts_t po = {.qos = 1};
  char sub_uri[256];
  char pub_uri[256];
  int i;
  uint64_t t0 = uv_hrtime();

  c.nseen = TOTAL;
  c.seen = calloc(TOTAL, 1);
  c.dedup = svc_dedup_new(2 * TOTAL);
  harness_start(&h);
  watchdog(&h, 50000, &c, &p);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &sc), 0);
  snprintf(sub_uri, sizeof(sub_uri),
           "mqtt://127.0.0.1:%d/rs/#?client_id=rs-sub-%d&clean_start=0&"
           "session_expiry=600&reconnect_max_s=1",
           b.port, (int)getpid());
  snprintf(pub_uri, sizeof(pub_uri),
           "mqtt://127.0.0.1:%d/rs/x?client_id=rs-pub-%d&"
           "reconnect_max_s=1&max_buffered=20000",
           b.port, (int)getpid());
  cr_assert_eq(svc_subscribe(sc, sub_uri, &so, on_event, &c, NULL), 0);
  while (!c.ready)
    uv_run(&h.loop, UV_RUN_ONCE);
  /* The publisher's first connect completes before the outage: a client
   * that never connected fails what it buffered (docs/mqtt.md). It starts
   * clean sessions (the default): resuming one makes paho 1.3.12 resend
   * in-flight publishes it has already freed (docs/mqtt.md); what paho
   * fails at the outage, the library publishes again. */
  cr_assert_eq(svc_publish(h.ctx, pub_uri, svc_msg_new_str("0"), &po, on_pub,
                           &p),
               0);
  while (p.done < 1)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 1; i < TOTAL; i++) {
    char body[16];
    int rc;
    if (i == TOTAL / 2) {
      /* Stop the broker mid-stream, publish on into the offline buffer,
       * then bring it back. */
      run_ms(&h, 20);
      broker_stop(&b);
    }
    if (i == TOTAL / 2 + 1000)
      cr_assert_eq(broker_restart(&b), 0);
    snprintf(body, sizeof(body), "%d", i);
    rc = svc_publish(h.ctx, pub_uri, svc_msg_new_str(body), &po, on_pub, &p);
    cr_assert_eq(rc, 0, "publish %d: %s", i, svc_strerror(rc));
    if (i % 500 == 0)
      uv_run(&h.loop, UV_RUN_NOWAIT);
  }
  while (p.done < TOTAL || c.unique < TOTAL)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(p.ok, TOTAL, "%d publishes failed, the first with %s",
               p.failed, svc_err_name(p.first_err));
  cr_assert_eq(c.unique, TOTAL);
  cr_assert_eq(c.bad, 0);
  /* Every duplicate carried the id of its first copy. */
  cr_assert_eq(c.dedup_dups, c.dups);
  cr_log_info("10000 QoS 1 across a broker restart: %d duplicates, %.2f s",
              c.dups, (double)(uv_hrtime() - t0) / 1e9);
  svc_ctx_close(sc, NULL, NULL);
  harness_finish(&h);
  free(c.seen);
  svc_dedup_free(c.dedup);
}

Test(mqtt_restart, publisher_resends_from_persist_dir) {
  struct harness h;
  svc_ctx_t *pc;
  svc_ctx_t *sc;
  struct counter c = {0};
  struct pubs p = {0}, p2 = {0};
  svc_sub_opts_t so = {.qos = 1, .on_ready = on_ready};
  svc_pub_opts_t po = {.qos = 1};
  char sub_uri[256];
  char pub_uri[512];
  int closed = 0;
  int i;

  c.nseen = 100;
  c.seen = calloc(100, 1);
  harness_start(&h);
  watchdog(&h, 20000, &c, &p);
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &sc), 0);
  snprintf(sub_uri, sizeof(sub_uri),
           "mqtt://127.0.0.1:%d/pp/#?client_id=pp-sub-%d&clean_start=0&"
           "session_expiry=600&reconnect_max_s=1",
           b.port, (int)getpid());
  snprintf(pub_uri, sizeof(pub_uri),
           "mqtt://127.0.0.1:%d/pp/x?client_id=pp-pub-%d&clean_start=0&"
           "session_expiry=600&reconnect_max_s=1&persist_dir=%s/paho&"
           "disconnect_ms=100",
           b.port, (int)getpid(), b.dir);
  cr_assert_eq(svc_subscribe(sc, sub_uri, &so, on_event, &c, NULL), 0);
  while (!c.ready)
    uv_run(&h.loop, UV_RUN_ONCE);

  /* First life: connected once, then the broker goes away and ten
   * publishes wait in paho's persistent buffer when the publisher closes. */
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &pc), 0);
  cr_assert_eq(svc_publish(pc, pub_uri, svc_msg_new_str("0"), &po, on_pub, &p),
               0);
  while (p.done < 1)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(p.ok, 1);
  broker_stop(&b);
  run_ms(&h, 200);
  for (i = 1; i <= 10; i++) {
    char body[8];
    snprintf(body, sizeof(body), "%d", i);
    cr_assert_eq(
        svc_publish(pc, pub_uri, svc_msg_new_str(body), &po, on_pub, &p), 0);
  }
  svc_ctx_close(pc, NULL, NULL);
  while (p.done < 11)
    uv_run(&h.loop, UV_RUN_ONCE);
  /* Not acknowledged in this life: reported cancelled, kept on disk. */
  cr_assert_eq(p.ok, 1);
  cr_assert_eq(broker_restart(&b), 0);

  /* Second life: same client id and persist_dir; paho sends them. */
  cr_assert_eq(svc_ctx_init(&h.loop, NULL, &pc), 0);
  cr_assert_eq(svc_publish(pc, pub_uri, svc_msg_new_str("11"), &po, on_pub,
                           &p2),
               0);
  while (c.unique < 12)
    uv_run(&h.loop, UV_RUN_ONCE);
  for (i = 0; i <= 11; i++)
    cr_assert_eq(c.seen[i] > 0, 1, "message %d missing", i);
  svc_ctx_close(pc, NULL, NULL);
  svc_ctx_close(sc, NULL, NULL);
  (void)closed;
  harness_finish(&h);
  free(c.seen);
}
