/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* What the fault-injection tests (test_fault*.c) share: a subscriber that
 * records the numbered events it receives, numbered publishes that count
 * how they ended, and a loop runner for conditions a flag cannot name. */
#ifndef SVC_TEST_FAULT_EVENTS_H
#define SVC_TEST_FAULT_EVENTS_H

#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

#ifndef NEVENTS
#define NEVENTS 200
#endif

/* Runs the loop until cond holds; the watchdog fails a wait that nothing
 * ends. */
#define RUN_UNTIL(h, cond)                   \
  do {                                       \
    uv_ref((uv_handle_t *)&(h)->watchdog);   \
    while (!(cond))                          \
      uv_run(&(h)->loop, UV_RUN_ONCE);       \
    uv_unref((uv_handle_t *)&(h)->watchdog); \
  } while (0)

/* ---- The subscriber: event bodies are decimal ids. */

struct seq {
  int ids[4 * NEVENTS];
  int n;
  int finals;
  int ready;
  uv_loop_t *loop;   /* When set, first_ms is recorded. */
  uint64_t first_ms; /* Loop time of the first event. */
};

static inline void seq_cb(svc_sub_t *sub, int status, const svc_msg_t *ev,
                          void *arg) {
  struct seq *q = arg;
  size_t len;
  const char *b;
  char buf[16];

  (void)sub;
  if (ev == NULL) {
    q->finals++;
    return;
  }
  cr_assert_eq(status, 0);
  b = svc_msg_body(ev, &len);
  cr_assert_lt(len, sizeof(buf));
  memcpy(buf, b, len);
  buf[len] = '\0';
  cr_assert_lt(q->n, 4 * NEVENTS);
  if (q->n == 0 && q->loop != NULL)
    q->first_ms = uv_now(q->loop);
  q->ids[q->n++] = atoi(buf);
}

static inline void seq_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  ((struct seq *)arg)->ready++;
}

/* ---- The publisher. */

struct pubs {
  int calls;
  int ok;
  int cancelled;
  int reset;
  int in_publish;
  int inside;      /* Callbacks that ran inside svc_publish(). */
  uv_loop_t *loop; /* When set, done_ms is recorded. */
  uint64_t done_ms;
};

static inline void pubs_cb(svc_ctx_t *ctx, int status, void *arg) {
  struct pubs *p = arg;

  (void)ctx;
  p->calls++;
  p->inside += p->in_publish;
  if (p->loop != NULL)
    p->done_ms = uv_now(p->loop);
  if (status == 0)
    p->ok++;
  else if (status == SVC_ECANCELED)
    p->cancelled++;
  else if (status == SVC_ECONNRESET)
    p->reset++;
}

/* Publishes event i at qos; the svc_publish() result. */
static inline int publish_n(svc_ctx_t *ctx, const char *uri, int i, int qos,
                            struct pubs *p) {
  char body[16];
  svc_pub_opts_t o = {.qos = qos};
  svc_msg_t *m;
  int rc;

  snprintf(body, sizeof(body), "%d", i);
  m = svc_msg_new_str(body);
  p->in_publish = 1;
  rc = svc_publish(ctx, uri, m, &o, pubs_cb, p);
  p->in_publish = 0;
  if (rc != 0)
    svc_msg_free(m);
  return rc;
}

/* ---- Callbacks of verbs that must be refused. */

static inline void never_cb(svc_call_t *call, svc_status_t status,
                            const svc_msg_t *reply, void *arg) {
  (void)call;
  (void)status;
  (void)reply;
  (void)arg;
  cr_assert_fail("callback of a refused call");
}

static inline void never_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                               void *arg) {
  (void)sub;
  (void)status;
  (void)ev;
  (void)arg;
  cr_assert_fail("callback of a refused subscription");
}

#endif
