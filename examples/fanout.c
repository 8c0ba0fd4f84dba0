/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Fan-out: one event, many independent reactions.
 *
 * The sign-up service publishes users/signed_up once per new user. Three
 * services subscribe, and each does its own thing with the event:
 *
 *   mail       sends the confirmation e-mail;
 *   analytics  counts sign-ups per plan (it listens to users/#, every user
 *              event, so it will see new kinds of event without a change);
 *   welcome    prepares an onboarding checklist (it listens to users/+).
 *
 * The publisher names a topic, not a receiver: it does not know these three
 * exist, and a fourth subscriber can be added without touching it. That is
 * the reason to use events here instead of three calls: the sign-up does not
 * need an answer from any of them, and none of them may slow it down.
 *
 * Usage:
 *   fanout                        hub on inproc://hub (one process, no I/O)
 *   fanout tcp://127.0.0.1:0      hub served on TCP in this same process:
 *                                 publisher and subscribers connect to it
 *                                 as clients, so each event crosses sockets
 *
 * Prints what each subscriber did, and exits 0 once every subscriber got
 * every event (1 on a timeout or an error). Only the URI changes between the
 * two modes; the code below does not look at the scheme. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <svccomm.h>

#define NSUBS 3
#define TIMEOUT_MS 5000

/* The events the sign-up service publishes: user, e-mail, plan. */
static const char *const signups[][3] = {
    {"alice", "alice@example.com", "free"},
    {"bob", "bob@example.org", "pro"},
    {"carol", "carol@example.net", "free"},
};
#define NEVENTS (sizeof(signups) / sizeof(signups[0]))

struct subscriber {
  const char *name;
  const char *pattern; /* Topic pattern, appended to the hub's endpoint. */
  void (*react)(struct subscriber *self, const svc_msg_t *ev);
  svc_sub_t *sub;
  unsigned got;       /* Events received. */
  int finished;       /* The final callback ran. */
  unsigned free, pro; /* Analytics' own state. */
};

static svc_ctx_t *ctx;
static svc_server_t *hub;
static uv_timer_t watchdog;
static char topic_uri[512]; /* Where the sign-up service publishes. */
static unsigned nready, nacked;
static int failed, done;

static void finish(int ok);

/* ---- The three subscribers: each reacts in its own way. */

static const char *field(const svc_msg_t *ev, const char *name) {
  const char *v = svc_msg_header_get(ev, name);
  return v != NULL ? v : "?";
}

static void mail_react(struct subscriber *self, const svc_msg_t *ev) {
  (void)self;
  printf("  mail       sends \"confirm your address\" to %s\n",
         field(ev, "email"));
}

static void analytics_react(struct subscriber *self, const svc_msg_t *ev) {
  if (strcmp(field(ev, "plan"), "pro") == 0)
    self->pro++;
  else
    self->free++;
  printf("  analytics  %s: %u sign-ups so far (free %u, pro %u)\n",
         svc_msg_topic(ev), self->free + self->pro, self->free, self->pro);
}

static void welcome_react(struct subscriber *self, const svc_msg_t *ev) {
  size_t len;
  const char *user = svc_msg_body(ev, &len);
  int pro = strcmp(field(ev, "plan"), "pro") == 0;

  (void)self;
  printf("  welcome    onboarding checklist for %.*s: %d steps%s\n", (int)len,
         user, pro ? 5 : 3, pro ? " (with a call from sales)" : "");
}

static struct subscriber subs[NSUBS] = {
    {.name = "mail", .pattern = "users/signed_up", .react = mail_react},
    {.name = "analytics", .pattern = "users/#", .react = analytics_react},
    {.name = "welcome", .pattern = "users/+", .react = welcome_react},
};

/* Done when every subscriber has every event and the hub has acknowledged
 * every publish (over tcp:// the acknowledgement may come after delivery). */
static void check_done(void) {
  int i;

  for (i = 0; i < NSUBS; i++)
    if (subs[i].got < NEVENTS)
      return;
  if (nacked == NEVENTS)
    finish(1);
}

/* One callback per event, then one final call with ev == NULL when the
 * subscription ends (SVC_ECANCELED after svc_unsubscribe(), or an error). */
static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct subscriber *s = arg;

  (void)sub;
  if (ev == NULL) {
    s->finished = 1;
    if (status != SVC_ECANCELED) {
      fprintf(stderr, "fanout: %s's subscription ended: %s\n", s->name,
              svc_strerror(status));
      finish(0);
    }
    return;
  }
  s->got++;
  s->react(s, ev);
  check_done();
}

/* ---- The publisher: knows the topic and nothing else. */

static void on_published(svc_ctx_t *c, int status, void *arg) {
  (void)c;
  if (status < 0) {
    if (!done)
      fprintf(stderr, "fanout: publish of %s failed: %s\n", (const char *)arg,
              svc_strerror(status));
    finish(0);
    return;
  }
  nacked++;
  check_done();
}

static void publish_signups(void) {
  /* QoS 1: the hub never drops these for a full subscriber queue; the
   * publish waits for room instead (backpressure), and on_published runs
   * once the hub has taken the event. QoS 0 would be fire-and-forget: no
   * waiting, and an overflowing subscriber loses events, each one counted
   * by svc_sub_dropped(). */
  static const svc_pub_opts_t qos1 = {.qos = 1};
  size_t i;

  for (i = 0; i < NEVENTS; i++) {
    svc_msg_t *ev = svc_msg_new_str(signups[i][0]);
    int rc;

    svc_msg_header_add(ev, "email", signups[i][1]);
    svc_msg_header_add(ev, "plan", signups[i][2]);
    printf("sign-up service publishes users/signed_up: %s\n", signups[i][0]);
    rc = svc_publish(ctx, topic_uri, ev, &qos1, on_published,
                     (void *)signups[i][0]);
    if (rc < 0) { /* On an error the message is still ours. */
      fprintf(stderr, "fanout: svc_publish: %s\n", svc_strerror(rc));
      svc_msg_free(ev);
      finish(0);
      return;
    }
  }
}

/* Publishing before a subscription is active would lose the event for that
 * subscriber (QoS 1 covers full queues, not subscribers that do not exist
 * yet), so the demo waits until the hub confirmed all three. */
static void on_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  (void)arg;
  if (++nready == NSUBS)
    publish_signups();
}

/* ---- Start and stop. */

static void on_watchdog(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "fanout: timed out after %d ms\n", TIMEOUT_MS);
  finish(0);
}

static void on_watchdog_closed(uv_handle_t *h) {
  (void)h;
  /* Closing the context ends the subscriptions (each gets its final
   * callback) and stops the hub; then svc_ctx_run() returns. */
  svc_ctx_close(ctx, NULL, NULL);
}

static void finish(int ok) {
  static svc_metrics_t metrics; /* Large (a histogram): not on the stack. */
  int i;

  if (done)
    return;
  done = 1;
  failed = !ok;
  for (i = 0; i < NSUBS; i++) {
    printf("%-10s got %u of %zu events, dropped %llu\n", subs[i].name,
           subs[i].got, NEVENTS,
           (unsigned long long)svc_sub_dropped(subs[i].sub));
    if (subs[i].got != NEVENTS || svc_sub_dropped(subs[i].sub) != 0)
      failed = 1;
  }
  /* Every endpoint has counters, kept per context and role. This process
   * is a client of the hub: it sent the publishes and received the events
   * (3 subscribers x 3 events). In production the same numbers, and the
   * dropped count above all, are what a dashboard watches. */
  if (svc_metrics_get(ctx, topic_uri, SVC_ROLE_CLIENT, &metrics) == 0)
    printf("client metrics for %s: %llu messages out, %llu in, "
           "%llu dropped\n",
           metrics.endpoint, (unsigned long long)metrics.msgs_out,
           (unsigned long long)metrics.msgs_in,
           (unsigned long long)metrics.dropped);
  /* Our own handle must be closed before the context's loop is released. */
  uv_close((uv_handle_t *)&watchdog, on_watchdog_closed);
}

static void die(int rc, const char *what) {
  fprintf(stderr, "fanout: %s: %s\n", what, svc_strerror(rc));
  exit(1);
}

int main(int argc, char **argv) {
  const char *uri = argc > 1 ? argv[1] : "inproc://hub";
  svc_sub_opts_t sub_opts = {0};
  char sub_uri[512];
  int i, rc;

  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0)
    die(rc, "svc_ctx_init");
  /* Every served endpoint is also a pub/sub hub for its topics. On tcp://
   * port 0 picks a free port; svc_server_endpoint() tells which. */
  if ((rc = svc_serve(ctx, uri, NULL, &hub)) < 0)
    die(rc, uri);
  printf("hub: %s\n", svc_server_endpoint(hub));
  snprintf(topic_uri, sizeof(topic_uri), "%s/users/signed_up",
           svc_server_endpoint(hub));

  /* Each subscriber would normally be its own service, in its own process;
   * here they share one context, but each has its own subscription and
   * its own queue, so a slow one does not hold the others back. */
  sub_opts.qos = 1;        /* Remote backends: ask for QoS 1 delivery. */
  sub_opts.max_queue = 64; /* Events waiting for this subscriber. */
  sub_opts.on_ready = on_ready;
  for (i = 0; i < NSUBS; i++) {
    snprintf(sub_uri, sizeof(sub_uri), "%s/%s", svc_server_endpoint(hub),
             subs[i].pattern);
    printf("%-10s subscribes to %s\n", subs[i].name, subs[i].pattern);
    rc = svc_subscribe(ctx, sub_uri, &sub_opts, on_event, &subs[i],
                       &subs[i].sub);
    if (rc < 0)
      die(rc, sub_uri);
  }

  /* A demo must never hang: give up after TIMEOUT_MS. */
  uv_timer_init(svc_ctx_loop(ctx), &watchdog);
  uv_timer_start(&watchdog, on_watchdog, TIMEOUT_MS, 0);

  svc_ctx_run(ctx, UV_RUN_DEFAULT);

  /* The context is closed now, and every subscription has had its final
   * callback: the library promises exactly one, even on a timeout. */
  for (i = 0; i < NSUBS; i++)
    if (!subs[i].finished)
      failed = 1;
  if (failed) {
    printf("FAILED: not every subscriber got every event\n");
    return 1;
  }
  printf("all %d subscribers got all %zu events\n", NSUBS, NEVENTS);
  return 0;
}
