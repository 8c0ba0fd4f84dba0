/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_POLICY_H
#define SVCCOMM_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "svccomm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct svc_ctx_s svc_ctx_t;

/* ---- Call policies per endpoint, route or topic (docs/resilience.md).
 *
 * A policy set on an endpoint ("tcp://10.0.0.7:7000",
 * "http://users.internal", "inproc://users") applies to every call the
 * context makes to it. One set on a URI with a path applies to the calls
 * whose route path (or, on mqtt://, request topic) matches that path, read
 * as an MQTT topic filter: "tcp://10.0.0.7:7000/users/+",
 * "mqtt://broker/svc/payments/#", "http://api/orders/list". A call follows
 * one policy: the most specific one that matches (more literal levels
 * first, then a filter without '#', then one without '+'), else the
 * endpoint's. Each has a breaker and a concurrency limit of its own. It is
 * set in code or loaded from a file, so an operator can change timeouts
 * and limits without recompiling.
 *
 * Circuit breaker. Each attempt of a call ends a success or a failure;
 * failures are the statuses that say the endpoint is unwell: UNAVAILABLE,
 * DEADLINE_EXCEEDED, INTERNAL, UNKNOWN and DATA_LOSS (a NOT_FOUND or an
 * INVALID_ARGUMENT is the caller's problem, and a cancelled call says
 * nothing). The breaker opens after breaker_failures failures in a row, or
 * when of the last breaker_window attempts (once that many have ended) a
 * share of at least breaker_error_rate failed. While open, calls fail at
 * once with UNAVAILABLE and svc_call_errno() SVC_EBREAKER, retries
 * included. After breaker_cooldown_ms it is half-open: breaker_probes
 * calls go through; if they all succeed it closes, if one fails it opens
 * for another cool-down. Calls waiting for a retry or for a slot are
 * subject to the breaker when their attempt starts.
 *
 * Concurrency limit. At most max_in_flight attempts to the endpoint run at
 * once; the next ones wait in order, up to max_queued of them, for a slot
 * (their deadline runs meanwhile). When the queue is full the overflow
 * policy decides which call fails with RESOURCE_EXHAUSTED and
 * svc_call_errno() SVC_ENOBUFS: the new one (SVC_OVERFLOW_FAIL_NEW, the
 * default, or SVC_OVERFLOW_DROP_NEWEST), or the one that waited longest
 * (SVC_OVERFLOW_DROP_OLDEST). SVC_OVERFLOW_WAIT is refused: waiting is
 * what the queue already does. Nothing blocks the loop.
 *
 * Breaker state, openings and calls rejected or waiting appear in the
 * endpoint's client-role metrics (svc_metrics_t; its breaker_state is the
 * most open of the endpoint's breakers) and in the Prometheus text
 * (docs/metrics.md); changes go to the logging hook, with the filter as
 * the record's target. */

typedef enum {
  SVC_BREAKER_CLOSED = 0,
  SVC_BREAKER_OPEN = 1,
  SVC_BREAKER_HALF_OPEN = 2
} svc_breaker_state_t;

/* What a full bounded queue does with one more item. Each queue documents
 * its default and which of these it takes. */
typedef enum {
  SVC_OVERFLOW_DEFAULT = 0,     /* The queue's documented default. */
  SVC_OVERFLOW_FAIL_NEW = 1,    /* The new item fails (is refused). */
  SVC_OVERFLOW_DROP_OLDEST = 2, /* The oldest waiting item goes. */
  SVC_OVERFLOW_DROP_NEWEST = 3, /* The new item is dropped and counted. */
  SVC_OVERFLOW_WAIT = 4         /* The producer waits for room. */
} svc_overflow_t;

/* Zero means the default (or "off" where so marked); svc_policy_set()
 * copies it; fields are only ever added at the end. */
typedef struct svc_policy_s {
  /* Deadline of calls whose options give none, in ms. 0: the context's
   * default_timeout_ms. */
  uint64_t timeout_ms;
  /* Attempts in flight at most. 0: no limit. */
  unsigned max_in_flight;
  /* Calls waiting for a slot at most. Default 0: none wait. */
  size_t max_queued;
  svc_overflow_t overflow;
  /* Failures in a row that open the breaker. 0: this rule is off. */
  unsigned breaker_failures;
  /* Failure share of the last breaker_window attempts that opens it,
   * 0 < rate <= 1. 0: this rule is off. */
  double breaker_error_rate;
  unsigned breaker_window;      /* Default 20, at most 1024. */
  uint64_t breaker_cooldown_ms; /* Default 5000. */
  unsigned breaker_probes;      /* Default 1. */
} svc_policy_t;

/* svc_policy_set() sets the policy of uri's endpoint, or of its route or
 * topic filter when uri has a path (a URI without a host, such as
 * unix:///run/x.sock, names the endpoint with its path), replacing the one
 * it had; a policy of all zeros turns it all off. Calls already started
 * keep their deadline and policy; the breaker keeps its state. Returns 0,
 * SVC_EINVAL (bad URI, filter or values: a rate outside 0..1, a window
 * above 1024, an unknown overflow, a "$share/" filter), SVC_ENOMEM.
 * Since 0.2. */
SVC_EXTERN int svc_policy_set(svc_ctx_t *ctx, const char *uri,
                              const svc_policy_t *policy);

/* svc_policy_get() stores the policy set on exactly uri (its endpoint, and
 * its filter if it has a path) in *out, with the defaults filled in: 0, or
 * SVC_ENOENT when none was set there. Since 0.2. */
SVC_EXTERN int svc_policy_get(svc_ctx_t *ctx, const char *uri,
                              svc_policy_t *out);

/* svc_policy_load() reads policies from the file at path and sets them
 * all, or none when the file has an error. The format (docs/resilience.md):
 *
 *   # comment
 *   [tcp://10.0.0.7:7000]          (or [tcp://10.0.0.7:7000/users/+])
 *   timeout_ms = 500
 *   max_in_flight = 64
 *   max_queued = 256
 *   overflow = drop_oldest
 *   breaker_failures = 5
 *   breaker_error_rate = 0.5
 *   breaker_window = 20
 *   breaker_cooldown_ms = 2000
 *   breaker_probes = 1
 *
 * Returns the number of sections set (>= 0), SVC_EINVAL for a syntax
 * error, an unknown key or a bad value (*line, when line is not NULL,
 * names the line), a negative errno-style code when the file cannot be
 * read (SVC_ENOENT: no such file), or SVC_ENOMEM. Since 0.2. */
SVC_EXTERN int svc_policy_load(svc_ctx_t *ctx, const char *path, int *line);

/* svc_breaker_state() returns the breaker state of the policy set on
 * exactly uri (svc_breaker_state_t, >= 0), or SVC_ENOENT when none was.
 * Since 0.2. */
SVC_EXTERN int svc_breaker_state(svc_ctx_t *ctx, const char *uri);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_POLICY_H */
