/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Log-linear buckets (HdrHistogram's layout with 4 sub-bucket bits):
 * values 0..15 get bucket v; a value v >= 16 with e = floor(log2(v)) falls
 * in one of 16 equal sub-buckets of [2^e, 2^(e+1)), at index
 * 16 * (e - 3) + ((v >> (e - 4)) - 16). A bucket is at most 1/16 as wide
 * as its lower bound, which is where the 6.25% error bound comes from. */
#define HIST_SUB (1u << SVC_HIST_SUB_BITS)

/* floor(log2(v)) for v > 0. */
static unsigned hist_log2(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return 63u - (unsigned)__builtin_clzll(v);
#else
  unsigned e = 0;

  /* Binary search over the bit positions: six steps for 64 bits. */
  if (v >> 32) {
    v >>= 32;
    e += 32;
  }
  if (v >> 16) {
    v >>= 16;
    e += 16;
  }
  if (v >> 8) {
    v >>= 8;
    e += 8;
  }
  if (v >> 4) {
    v >>= 4;
    e += 4;
  }
  if (v >> 2) {
    v >>= 2;
    e += 2;
  }
  if (v >> 1)
    e += 1;
  return e;
#endif
}

static size_t hist_index(uint64_t v) {
  unsigned e;

  if (v < HIST_SUB)
    return (size_t)v;
  e = hist_log2(v);
  return (size_t)HIST_SUB * (e - 3) +
         (size_t)((v >> (e - SVC_HIST_SUB_BITS)) - HIST_SUB);
}

/* The highest value that falls in bucket i. For the last bucket this is
 * UINT64_MAX exactly, without overflow: lower = 31 << 59 and
 * width - 1 = 2^59 - 1. */
static uint64_t hist_bucket_high(size_t i) {
  unsigned e;
  uint64_t sub;
  uint64_t lower;

  if (i < HIST_SUB)
    return (uint64_t)i;
  e = (unsigned)(i / HIST_SUB) + 3;
  sub = (uint64_t)(i % HIST_SUB);
  lower = (HIST_SUB + sub) << (e - SVC_HIST_SUB_BITS);
  return lower + ((UINT64_C(1) << (e - SVC_HIST_SUB_BITS)) - 1);
}

void svc_hist_init(svc_hist_t *h) {
  assert(h != NULL);
  memset(h, 0, sizeof(*h));
}

void svc_hist_record(svc_hist_t *h, uint64_t value) {
  assert(h != NULL);
  if (h->count == 0) {
    h->min = value;
    h->max = value;
  } else {
    if (value < h->min)
      h->min = value;
    if (value > h->max)
      h->max = value;
  }
  h->count++;
  /* A saturated sum keeps the mean a lower bound instead of garbage. */
  h->sum = value > UINT64_MAX - h->sum ? UINT64_MAX : h->sum + value;
  h->buckets[hist_index(value)]++;
}

void svc_hist_merge(svc_hist_t *dst, const svc_hist_t *src) {
  size_t i;

  assert(dst != NULL);
  assert(src != NULL);
  /* A zero-filled histogram has min 0, which must not leak into dst. */
  if (src->count == 0)
    return;
  if (dst->count == 0) {
    dst->min = src->min;
    dst->max = src->max;
  } else {
    if (src->min < dst->min)
      dst->min = src->min;
    if (src->max > dst->max)
      dst->max = src->max;
  }
  dst->count += src->count;
  dst->sum = src->sum > UINT64_MAX - dst->sum ? UINT64_MAX
                                              : dst->sum + src->sum;
  for (i = 0; i < SVC_HIST_BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
}

uint64_t svc_hist_percentile(const svc_hist_t *h, double q) {
  uint64_t rank;
  uint64_t seen;
  uint64_t v;
  double r;
  size_t i;

  assert(h != NULL);
  if (h->count == 0)
    return 0;
  /* Written so that NaN clamps to 0. */
  if (!(q > 0.0))
    q = 0.0;
  if (q > 1.0)
    q = 1.0;
  /* rank = ceil(q * count), without ceil() so that the library needs no
   * libm. Past 2^53 the product is inexact; clamping keeps the rank within
   * 1..count whatever the rounding did, and the conversion defined. */
  r = q * (double)h->count;
  if (r >= (double)h->count) {
    rank = h->count;
  } else {
    rank = (uint64_t)r;
    if ((double)rank < r)
      rank++;
    if (rank == 0)
      rank = 1;
  }

  seen = 0;
  for (i = 0; i < SVC_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      v = hist_bucket_high(i);
      if (v < h->min)
        v = h->min;
      if (v > h->max)
        v = h->max;
      return v;
    }
  }
  /* Only reachable when the buckets were edited to disagree with count. */
  return h->max;
}

double svc_hist_mean(const svc_hist_t *h) {
  assert(h != NULL);
  if (h->count == 0)
    return 0.0;
  return (double)h->sum / (double)h->count;
}
