/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

/* Workload sizes, the clock, percentiles and JSON-line output for
 * svc_bench. The sizes are the ones WORKLOADS.md fixes; the reference
 * peers use the same ones, so that their figures and ours can be joined
 * line by line. Everything here is file-local (static), since this header
 * has exactly one includer. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_MSG_SIZE 64 /* W1..W4 payload bytes. */
#define BENCH_W1_WARMUP 2000
#define BENCH_W1_ROUNDS 20000
#define BENCH_W2_INFLIGHT 64
#define BENCH_W2_WARMUP_MS 500
#define BENCH_W2_MEASURE_MS 3000
#define BENCH_W3_MSGS 1000000
#define BENCH_W4_SUBS 8
#define BENCH_W4_MSGS 200000
#define BENCH_W6_REQUESTS 20000
#define BENCH_W6_INFLIGHT 32
#define BENCH_W7_BYTES (1ull << 30)
#define BENCH_W7_CHUNK (64 * 1024)
/* A subscriber gives up this long after the last event (W3, W4). */
#define BENCH_IDLE_NS 2000000000ull

/* CLOCK_MONOTONIC, like the peers: round trips are timed on one host. */
static inline uint64_t bench_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double bench_secs(uint64_t ns) {
  return (double)ns / 1e9;
}

/* The workload number of "W1".."W8", or 0. */
static inline int bench_workload_id(const char *s) {
  if (s == NULL || (s[0] != 'W' && s[0] != 'w') || s[1] < '1' || s[1] > '8' ||
      s[2] != '\0')
    return 0;
  return s[1] - '0';
}

/* One result line in the format of WORKLOADS.md. Whole numbers print
 * without decimals, as the peers print them, so that the files diff
 * cleanly. */
static inline void bench_emit(int wl, const char *system, const char *metric,
                              double value) {
  if (value == (double)(int64_t)value)
    printf("{\"workload\":\"W%d\",\"system\":\"%s\",\"metric\":\"%s\","
           "\"value\":%lld}\n",
           wl, system, metric, (long long)value);
  else
    printf("{\"workload\":\"W%d\",\"system\":\"%s\",\"metric\":\"%s\","
           "\"value\":%.2f}\n",
           wl, system, metric, value);
  fflush(stdout);
}

/* Every recorded round trip, in nanoseconds. Grown by doubling, and sized
 * up front by the caller, so that the measured part rarely reallocates. */
typedef struct {
  uint64_t *v;
  size_t n;
  size_t cap;
} bench_lat_t;

static inline int bench_lat_reserve(bench_lat_t *l, size_t cap) {
  uint64_t *v;

  if (cap <= l->cap)
    return 0;
  v = realloc(l->v, cap * sizeof(*v));
  if (v == NULL)
    return -1;
  l->v = v;
  l->cap = cap;
  return 0;
}

static inline void bench_lat_add(bench_lat_t *l, uint64_t ns) {
  if (l->n == l->cap &&
      bench_lat_reserve(l, l->cap != 0 ? 2 * l->cap : 65536) != 0) {
    fprintf(stderr, "svc_bench: out of memory for latencies\n");
    exit(1);
  }
  l->v[l->n++] = ns;
}

static inline void bench_lat_free(bench_lat_t *l) {
  free(l->v);
  memset(l, 0, sizeof(*l));
}

static int bench_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a;
  uint64_t y = *(const uint64_t *)b;

  return x < y ? -1 : x > y;
}

static inline void bench_lat_sort(bench_lat_t *l) {
  if (l->n > 0)
    qsort(l->v, l->n, sizeof(*l->v), bench_cmp_u64);
}

/* Nearest-rank percentile (p in 0..100) of a sorted array, in
 * microseconds: the smallest value with at least p% of the samples at or
 * below it. */
static inline double bench_pct_us(const bench_lat_t *l, double p) {
  double r;
  size_t i;

  if (l->n == 0)
    return 0;
  r = p / 100.0 * (double)l->n;
  i = (size_t)r;
  if ((double)i < r)
    i++;
  if (i == 0)
    i = 1;
  if (i > l->n)
    i = l->n;
  return (double)l->v[i - 1] / 1000.0;
}

/* The peak resident set of this process in MiB (ru_maxrss is in KiB on
 * Linux). */
static inline double bench_peak_rss_mib(void) {
  struct rusage ru;

  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)ru.ru_maxrss / 1024.0;
}

#endif /* BENCH_COMMON_H */
