/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_METRICS_H
#define SVCCOMM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "svccomm/common.h"
#include "svccomm/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A log-linear histogram of non-negative integers (libsvccomm records call
 * latency in microseconds). Values below 16 have a bucket each; above, every
 * power of two is split into 16 equal buckets, so a percentile read from it
 * is within 1/16 (6.25%) of the true value, over the whole uint64 range, in
 * fixed memory. It is plain data: copy it, zero it, add two together.
 * Since 0.1. */
#define SVC_HIST_SUB_BITS 4
#define SVC_HIST_BUCKETS (16 * 61)

typedef struct svc_hist_s {
  uint64_t count;
  uint64_t sum;
  uint64_t min;
  uint64_t max;
  uint64_t buckets[SVC_HIST_BUCKETS];
} svc_hist_t;

/* svc_hist_init() empties h. A zero-filled svc_hist_t is also empty.
 * Since 0.1. */
SVC_EXTERN void svc_hist_init(svc_hist_t *h);

/* svc_hist_record() adds one value. O(1), no allocation. Since 0.1. */
SVC_EXTERN void svc_hist_record(svc_hist_t *h, uint64_t value);

/* svc_hist_merge() adds every value recorded in src to dst. Since 0.1. */
SVC_EXTERN void svc_hist_merge(svc_hist_t *dst, const svc_hist_t *src);

/* svc_hist_percentile() returns the value at quantile q (0.0 .. 1.0; 0.5 is
 * the median, 0.999 the p999): the highest value that falls in the same
 * bucket as the value of that rank, clamped to [min, max]. Returns 0 for an
 * empty histogram. Since 0.1. */
SVC_EXTERN uint64_t svc_hist_percentile(const svc_hist_t *h, double q);

/* svc_hist_mean() returns sum / count, or 0 when empty. Since 0.1. */
SVC_EXTERN double svc_hist_mean(const svc_hist_t *h);

/* Which side of an endpoint a metrics record counts. */
typedef enum {
  SVC_ROLE_CLIENT = 0, /* Calls made, streams opened, publishes sent. */
  SVC_ROLE_SERVER = 1  /* Requests served, streams accepted. */
} svc_role_t;

/* A snapshot of one endpoint's counters (svc_metrics_get()). Counters only
 * grow; gauges (in_flight, queue_depth) are the value at snapshot time.
 * "Messages" are requests, replies, events and stream messages alike; bytes
 * count message bodies. Since 0.1. */
typedef struct svc_metrics_s {
  char endpoint[256];      /* "scheme://authority", e.g. "inproc://users". */
  svc_role_t role;
  uint64_t calls;          /* Calls started (client) or requests received. */
  uint64_t calls_by_status[SVC_STATUS_COUNT]; /* Completed, per status. */
  uint64_t errors;         /* Completed with any status but OK. */
  uint64_t retries;        /* Extra attempts made by the retry policy. */
  uint64_t in_flight;      /* Gauge: calls started and not completed. */
  uint64_t msgs_in;
  uint64_t msgs_out;
  uint64_t bytes_in;
  uint64_t bytes_out;
  uint64_t dropped;        /* Messages dropped by a full queue (QoS 0),
                            * or lost by injected faults (svccomm/fault.h). */
  uint64_t queue_depth;    /* Gauge: messages waiting in this endpoint's
                            * queues (requests, events, stream data). */
  uint64_t streams;        /* Streams opened or accepted. */
  svc_hist_t latency_us;   /* Call latency, start to completion, in us. */
  /* Call policies (svccomm/policy.h), client role. Since 0.2. */
  uint64_t breaker_state;  /* Gauge: svc_breaker_state_t. */
  uint64_t breaker_opens;  /* Times the breaker opened. */
  uint64_t calls_rejected; /* Failed fast: breaker open, or no room to
                            * wait for a concurrency slot. */
  uint64_t calls_waiting;  /* Gauge: calls waiting for a slot. */
  /* Publishes that ended dropped, by svc_drop_reason_t (index 0 unused).
   * Since 0.2. */
  uint64_t pubs_dropped[6];
  uint64_t conn_state;     /* Gauge: svc_conn_state_t, 0 before any.
                            * Since 0.2. */
  uint64_t writes_dropped; /* Stream writes the stream's end failed.
                            * Since 0.2. */
} svc_metrics_t;

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_METRICS_H */
