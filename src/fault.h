/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_FAULT_H
#define SVC_FAULT_H

/* Fault injection (fault.c): the profile of one endpoint, its generator,
 * its options, and a bounded store for the operations it holds back.
 * inproc.c decides where each fault applies on inproc:// endpoints, and
 * fault_wrap.c on the client side of every other backend; fault.c only
 * decides which faults an operation suffers. */

#include "internal.h"

/* Faults an operation of each kind can suffer (svc__fault_plan()). */
#define SVC__FAULT_LOSS 0x01u
#define SVC__FAULT_DUP 0x02u
#define SVC__FAULT_REORDER 0x04u
#define SVC__FAULT_DELAY 0x08u
#define SVC__FAULT_DISCONNECT 0x10u

#define SVC__FAULT_CALL \
  (SVC__FAULT_LOSS | SVC__FAULT_DUP | SVC__FAULT_DELAY | SVC__FAULT_DISCONNECT)
#define SVC__FAULT_PUBLISH (SVC__FAULT_CALL | SVC__FAULT_REORDER)
#define SVC__FAULT_STREAM_OPEN (SVC__FAULT_DELAY | SVC__FAULT_DISCONNECT)
#define SVC__FAULT_STREAM_DATA SVC__FAULT_DISCONNECT

/* Probabilities in parts per million, so that decisions are integer
 * arithmetic on the generator's output. */
#define SVC__FAULT_PPM 1000000u

struct svc__fault_cfg {
  uint64_t seed;
  uint32_t loss, dup, reorder, disconnect, delay; /* ppm */
  uint64_t delay_min_ms;
  uint64_t delay_max_ms;
  size_t max_held;
};

/* The fault state of one endpoint (one per inproc conn, and one per
 * remote conn that was ever given a profile). It outlives profiles: items
 * held by a replaced or removed profile still complete. */
struct svc__fault {
  svc_ctx_t *ctx;
  int active; /* A profile is set. */
  struct svc__fault_cfg cfg;
  uint64_t rng; /* splitmix64 state. */
  svc_fault_stats_t stats;
  char *spec;             /* fault-* pairs of the last URI with any. */
  struct svc__list held;  /* struct svc__fault_item.link (reorder) */
  size_t nheld;           /* Items held: reordered plus delayed. */
  struct svc__task flush; /* Releases reordered items on a later turn. */
};

/* One operation held back. The owner embeds it and sets release, which
 * runs once when the item's time has come (the item is then no longer
 * held; the owner frees it). */
struct svc__fault_item {
  struct svc__list link;
  struct svc__timer timer;
  struct svc__fault *fault;
  void (*release)(struct svc__fault_item *it);
};

/* What svc__fault_plan() decided for one operation. */
struct svc__fault_plan {
  int lose;
  int dup;
  int reorder;
  int disconnect;
  int after;         /* Disconnect after delivery (calls: reply lost). */
  uint64_t delay_ms; /* 0: not delayed. */
};

/* The fault-* options of one URI, taken out of its query. */
struct svc__fault_query {
  struct svc__fault_cfg cfg;
  char *spec; /* The fault-* pairs as written, or NULL when there were none. */
};

void svc__fault_init(struct svc__fault *f, svc_ctx_t *ctx);
/* Frees what f owns; nothing may be held any more. */
void svc__fault_fini(struct svc__fault *f);
/* svc__fault_query_take() moves the fault-* pairs of url's query into *fq
 * and leaves the other pairs in url->query, in order (NULL when none is
 * left), so that no backend ever sees a fault-* name. Returns 0, SVC_EINVAL
 * (unknown fault-* name, bad value; url is then unchanged) or SVC_ENOMEM.
 * The caller frees fq->spec (svc__free()) unless it hands it on. */
int svc__fault_query_take(struct svc__url *url, struct svc__fault_query *fq);
/* Nonzero when url's query may hold fault-* pairs, which taking them
 * rewrites. */
int svc__fault_query_present(const struct svc__url *url);
/* svc__fault_use() applies the options fq took from a verb's URI (fq->spec
 * not NULL; f takes it): options that differ from the last ones replace
 * the profile and restart it, the same ones change nothing. */
void svc__fault_use(struct svc__fault *f, struct svc__fault_query *fq);
/* svc__fault_of() returns the fault state of conn: inproc's own, or the
 * client-side wrapper's (made here when create is nonzero; NULL when there
 * is none or out of memory). */
struct svc__fault *svc__fault_of(struct svc__conn *conn, int create);
/* Decides the faults of one operation that can suffer those in kinds
 * (SVC__FAULT_CALL, ...). Draws the same amount from the generator
 * whatever the outcome, so that one fault's decisions do not depend on
 * another's probability. Counts ops, lost, duplicated and disconnects; a
 * delay or reorder past max_held is dropped from the plan and counted in
 * overflowed. Returns 0 when f has no profile (plan all zero). */
int svc__fault_plan(struct svc__fault *f, unsigned kinds,
                    struct svc__fault_plan *plan);
/* Holds it for ms (> 0), then releases it. 0, or SVC_ENOMEM (then it is
 * not held and the caller goes on at once). */
int svc__fault_delay(struct svc__fault *f, struct svc__fault_item *it,
                     uint64_t ms);
/* Holds it until the next svc__fault_release_held() or the next loop
 * turn, whichever comes first. */
void svc__fault_hold(struct svc__fault *f, struct svc__fault_item *it);
/* Releases every item held by svc__fault_hold(), in holding order. */
void svc__fault_release_held(struct svc__fault *f);
/* Withdraws a held or delayed item without releasing it. */
void svc__fault_cancel(struct svc__fault_item *it);

/* inproc.c: the fault state of conn, or NULL when conn is not inproc. */
struct svc__fault *svc__inproc_fault(struct svc__conn *conn);

/* ---- The client-side wrapper (fault_wrap.c): faults between the core's
 * verbs and the operations of any backend but inproc://. A conn gets one
 * (conn->fw) the first time it is given a profile, and keeps it until it
 * closes. The core calls these instead of the transport's operations when
 * conn->fw is set. */
struct svc__fwrap;

/* The wrapper of conn, made if need be: its fault state, or NULL when out
 * of memory. */
struct svc__fault *svc__fwrap_fault(struct svc__conn *conn);
/* Frees conn's wrapper (svc__conn_closed()): nothing may be held. */
void svc__fwrap_free(struct svc__conn *conn);
/* In place of tp->call, tp->call_abort, tp->publish, tp->publish_abort and
 * tp->stream_open, with the same contracts. svc__fwrap_call_done() runs
 * first in svc__call_attempt_done() for a call whose fw_state is set:
 * returns 1 when it consumed the report (a duplicate's reply), else it may
 * rewrite the outcome (a disconnect after delivery). */
int svc__fwrap_call(struct svc_call_s *call);
void svc__fwrap_call_abort(struct svc_call_s *call);
int svc__fwrap_call_done(struct svc_call_s *call, svc_status_t *status,
                         int *err, svc_msg_t **reply);
int svc__fwrap_publish(struct svc__conn *conn, struct svc__pub *pub);
void svc__fwrap_publish_abort(struct svc__pub *pub);
int svc__fwrap_stream_open(struct svc__conn *conn, struct svc_stream_s *s);
/* Withdraws a stream whose open is held (s->fw set) instead of
 * tp->stream_send_reset: the transport never saw it. */
void svc__fwrap_stream_cancel(struct svc_stream_s *s);
/* Context close: withdraws the duplicate requests still in flight. */
void svc__fwrap_abort_copies(svc_ctx_t *ctx);
/* pubsub.c: a second publish of pub's message to pub's conn, with no
 * callback, listed as sent (a duplicate); NULL when out of memory. */
struct svc__pub *svc__pub_copy(const struct svc__pub *pub);

#endif /* SVC_FAULT_H */
