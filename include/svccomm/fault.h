/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_FAULT_H
#define SVCCOMM_FAULT_H

/* Deterministic fault injection on every backend (docs/faults.md).
 *
 * A fault profile on an endpoint makes the calls, publishes and streams that
 * go through it suffer loss, duplication, reordering, delay and
 * disconnects, as a real network would, so that an application's own tests
 * can show that its consumers are idempotent and its callers survive
 * failures. Every decision comes from a small pseudo-random generator of
 * the profile, seeded with the profile's seed: the same seed and the same
 * sequence of operations give the same faults on every run. The clock is
 * never read for a decision (only delays, once decided, take time).
 *
 * On inproc:// the faults act on both sides (a duplicated call runs the
 * handler twice). On tcp://, unix://, http(s):// and mqtt(s):// they act on
 * the client side only, between the application's caller and the real
 * server or broker, which runs unchanged; docs/faults.md lists where the
 * effects differ (marked "Remote" below).
 *
 * A profile is set in code with svc_fault_set(), or by the query of any
 * URI given to a client verb ("tcp://10.0.0.5:7000/orders/create?
 * fault-seed=42&fault-loss=0.1"; the names are listed in docs/faults.md).
 * The library takes the fault-* pairs out of the URI before the backend
 * sees it, so no backend refuses them or sends them to the server. A URI
 * whose fault options differ from those of the last URI that carried any
 * replaces the profile (and restarts its generator); repeating the same
 * options changes nothing; a URI without fault options leaves the profile
 * alone. An unknown fault-* name or a bad value makes the verb return
 * SVC_EINVAL. */

#include <stddef.h>
#include <stdint.h>

#include "svccomm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_ctx_s svc_ctx_t;

/* The faults of one endpoint. Zero means the default (no such fault); a
 * probability is the chance, 0.0 .. 1.0, that one operation suffers the
 * fault. svc_fault_set() copies it. New fields are only added at the end.
 * Since 0.2. */
typedef struct svc_fault_opts_s {
  /* Seed of the profile's generator. 0 is a seed like any other: faults are
   * never seeded from the clock. */
  uint64_t seed;
  /* Calls: the request never reaches the handler (the caller sees its
   * deadline; give the call one). Publishes: the event reaches no
   * subscriber; the publisher is told 0, as a network loss would be
   * invisible to it, and the loss is counted (svc_fault_stats() and the
   * endpoint's client metrics "dropped"). Remote: nothing is sent. */
  double loss;
  /* Calls: the handler runs twice for one call; the second reply is
   * dropped. Remote: the request is sent twice and the copy's reply is
   * dropped (the caller gets the original's). Publishes: every subscriber
   * receives the event twice (remote: the event is published twice). */
  double dup;
  /* Publishes only: the event is held back and delivered after the next
   * publish of the endpoint goes out, or on the next loop turn if none
   * does. */
  double reorder;
  /* Calls: the attempt fails with SVC_STATUS_UNAVAILABLE and
   * svc_call_errno() SVC_ECONNRESET, as a dropped connection would
   * (idempotent calls with retries are retried); half of these happen
   * after the handler received the request (its reply is lost; remote: the
   * attempt fails when the reply comes). Publishes: the event is not
   * delivered and the publish callback gets SVC_ECONNRESET. Streams: at
   * the open, on_close gets SVC_ECONNRESET; on any later message (inproc://
   * only), both sides are reset with SVC_ECONNRESET. */
  double disconnect;
  /* Chance that an operation is delayed by a uniform random time in
   * [delay_min_ms, delay_max_ms]. 0 means 1.0 when delay_max_ms > 0.
   * Calls: the request is dispatched later. Publishes: the event is
   * delivered later (and the publish completes then). Streams: the open
   * reaches the server later (stream data keeps its order and is never
   * delayed, lost, duplicated or reordered). */
  double delay;
  uint64_t delay_min_ms;
  uint64_t delay_max_ms;
  /* Most operations held back at once by delay or reorder on this
   * endpoint. Default 1024. Past it, an operation that would be held goes
   * through at once and is counted in svc_fault_stats_t.overflowed, so
   * memory stays bounded. Remote: also the most duplicated requests in
   * flight (past it, a duplicate is not sent and counts as overflowed). */
  size_t max_held;
} svc_fault_opts_t;

/* What a profile did (svc_fault_stats()). Counters only grow; held is a
 * gauge. Since 0.2. */
typedef struct svc_fault_stats_s {
  uint64_t ops;         /* Operations that went through the profile. */
  uint64_t lost;        /* Requests and events lost. */
  uint64_t duplicated;  /* Requests and events sent twice. */
  uint64_t reordered;   /* Events held back behind later ones. */
  uint64_t delayed;     /* Operations delayed. */
  uint64_t disconnects; /* Calls, publishes and streams disconnected. */
  uint64_t overflowed;  /* Delays and reorders skipped at max_held. */
  uint64_t held;        /* Gauge: operations held back now. */
} svc_fault_stats_t;

/* svc_fault_set() sets the fault profile of the endpoint that uri names
 * (scheme://host[:port], or inproc://NAME; any path and query are ignored)
 * in ctx, replacing any profile it had and restarting the generator from
 * opts->seed; opts NULL removes the profile (operations already held back
 * still complete as decided). The statistics restart from zero. opts is
 * copied. Like a verb, it creates the endpoint's connection when there is
 * none yet. Returns 0, SVC_EINVAL (bad URI, a probability outside 0 .. 1,
 * delay_min_ms > delay_max_ms), SVC_ESCHEME, SVC_ECLOSING, SVC_ENOMEM, or
 * the error the backend gives for the URI. Loop thread only. Since 0.2. */
SVC_EXTERN int svc_fault_set(svc_ctx_t *ctx, const char *uri,
                             const svc_fault_opts_t *opts);

/* svc_fault_stats() copies the statistics of the fault profile of the
 * endpoint that uri names into *out. Returns 0, SVC_EINVAL, or SVC_ENOENT
 * when the endpoint has no profile in ctx. Loop thread only. Since 0.2. */
SVC_EXTERN int svc_fault_stats(svc_ctx_t *ctx, const char *uri,
                               svc_fault_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_FAULT_H */
