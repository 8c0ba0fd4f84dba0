/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_FAULT_H
#define SVC_FAULT_H

/* Fault injection (fault.c): the profile of one inproc:// endpoint, its
 * generator, its options, and a bounded store for the operations it holds
 * back. inproc.c decides where each fault applies; this file only decides
 * which faults an operation suffers. */

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

/* The fault state of one endpoint (one per inproc conn). It outlives
 * profiles: items held by a replaced or removed profile still complete. */
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

void svc__fault_init(struct svc__fault *f, svc_ctx_t *ctx);
/* Frees what f owns; nothing may be held any more. */
void svc__fault_fini(struct svc__fault *f);
/* Applies the fault-* options of a verb's URI query (may be NULL): 0 or
 * SVC_EINVAL (unknown fault-* name, bad value) or SVC_ENOMEM. Other query
 * names are ignored. */
int svc__fault_use_query(struct svc__fault *f, const char *query);
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

#endif /* SVC_FAULT_H */
