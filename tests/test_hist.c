/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include <svccomm.h>

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

TestSuite(hist, .timeout = 10);

/* The histogram is over 7 KiB: keep it off the small worker stacks. */
static svc_hist_t h;
static svc_hist_t h2;
static svc_hist_t all;

/* The value of rank ceil(n * permille / 1000) among 1..n, in integers so
 * that the test needs no libm. */
static uint64_t true_percentile(uint64_t n, uint64_t permille) {
  uint64_t rank = (n * permille + 999) / 1000;
  return rank < 1 ? 1 : rank;
}

/* Index of the only non-empty bucket of a one-value histogram. */
static size_t only_bucket(const svc_hist_t *hist) {
  size_t i;
  size_t found = SVC_HIST_BUCKETS;

  for (i = 0; i < SVC_HIST_BUCKETS; i++) {
    if (hist->buckets[i] != 0) {
      cr_assert_eq(found, SVC_HIST_BUCKETS, "two buckets used");
      cr_assert_eq(hist->buckets[i], 1);
      found = i;
    }
  }
  cr_assert_neq(found, SVC_HIST_BUCKETS, "no bucket used");
  return found;
}

Test(hist, values_below_16_are_exact) {
  uint64_t v;
  int k;

  for (v = 0; v < 16; v++) {
    svc_hist_init(&h);
    svc_hist_record(&h, v);
    cr_assert_eq(only_bucket(&h), v);
  }
  svc_hist_init(&h);
  for (v = 0; v < 16; v++)
    svc_hist_record(&h, v);
  /* Rank k + 1 of 16 is the value k, exactly. */
  for (k = 0; k < 16; k++)
    cr_assert_eq(svc_hist_percentile(&h, (k + 1) / 16.0), (uint64_t)k,
                 "q=%d/16", k + 1);
}

Test(hist, bucket_boundaries) {
  static const struct {
    uint64_t value;
    size_t index;
    uint64_t high; /* Highest value of that bucket. */
  } cases[] = {
    {15, 15, 15},
    {16, 16, 16},
    {17, 17, 17},
    {31, 31, 31},
    {32, 32, 33},
    {33, 32, 33},
    {34, 33, 35},
    {63, 47, 63},
    {64, 48, 67},
    {UINT64_C(1) << 40, 16 * 37, (UINT64_C(1) << 40) + (UINT64_C(1) << 36) - 1},
    {(UINT64_C(1) << 40) - 1, 16 * 37 - 1, (UINT64_C(1) << 40) - 1},
    {UINT64_C(1) << 63, 16 * 60, (UINT64_C(1) << 63) + (UINT64_C(1) << 59) - 1},
    {UINT64_MAX, SVC_HIST_BUCKETS - 1, UINT64_MAX},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    svc_hist_init(&h);
    svc_hist_record(&h, cases[i].value);
    cr_assert_eq(only_bucket(&h), cases[i].index, "value %llu",
                 (unsigned long long)cases[i].value);
    /* With 0 below and UINT64_MAX above, the middle rank reports the top
     * of the value's bucket, unclamped. */
    svc_hist_record(&h, 0);
    svc_hist_record(&h, UINT64_MAX);
    cr_assert_eq(svc_hist_percentile(&h, 0.5), cases[i].high, "value %llu",
                 (unsigned long long)cases[i].value);
  }
}

Test(hist, percentiles_of_1_to_100000_are_within_one_sixteenth) {
  static const uint64_t permille[] = {500, 900, 990, 999, 1000};
  const uint64_t n = 100000;
  uint64_t v;
  size_t i;

  svc_hist_init(&h);
  for (v = 1; v <= n; v++)
    svc_hist_record(&h, v);
  cr_assert_eq(h.count, n);
  cr_assert_eq(h.min, 1);
  cr_assert_eq(h.max, n);
  cr_assert_eq(h.sum, n * (n + 1) / 2);
  for (i = 0; i < sizeof(permille) / sizeof(permille[0]); i++) {
    double q = (double)permille[i] / 1000.0;
    uint64_t want = true_percentile(n, permille[i]);
    uint64_t got = svc_hist_percentile(&h, q);
    /* The top of the bucket: never below the truth, at most 1/16 above. */
    cr_assert_geq(got, want, "q=%g", q);
    cr_assert_leq(got - want, want / 16, "q=%g: %llu vs %llu", q,
                  (unsigned long long)got, (unsigned long long)want);
  }
  cr_assert_eq(svc_hist_percentile(&h, 1.0), n);
  cr_assert_eq(svc_hist_percentile(&h, 0.0), 1);
}

Test(hist, empty_histogram) {
  static const double qs[] = {0.0, 0.5, 0.99, 1.0};
  size_t i;

  /* Zero-filled is empty, as is an initialised one. */
  memset(&h, 0, sizeof(h));
  memset(&h2, 0xa5, sizeof(h2));
  svc_hist_init(&h2);
  cr_assert_eq(memcmp(&h, &h2, sizeof(h)), 0);
  cr_assert_eq(h2.count, 0);
  for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
    cr_assert_eq(svc_hist_percentile(&h2, qs[i]), 0);
  cr_assert_eq(svc_hist_mean(&h2), 0.0);
}

Test(hist, first_value_sets_min_and_max) {
  memset(&h, 0, sizeof(h));
  svc_hist_record(&h, 500);
  cr_assert_eq(h.min, 500);
  cr_assert_eq(h.max, 500);
  svc_hist_record(&h, 7);
  svc_hist_record(&h, 9000);
  cr_assert_eq(h.min, 7);
  cr_assert_eq(h.max, 9000);
  cr_assert_eq(h.count, 3);
  cr_assert_eq(h.sum, 9507);
  cr_assert_eq(svc_hist_mean(&h), 9507.0 / 3.0);
}

Test(hist, percentile_is_clamped_to_min_and_max) {
  svc_hist_init(&h);
  /* 1000 lies in [992, 1023]: the bucket top exceeds max. */
  svc_hist_record(&h, 1000);
  cr_assert_eq(svc_hist_percentile(&h, 0.0), 1000);
  cr_assert_eq(svc_hist_percentile(&h, 0.5), 1000);
  cr_assert_eq(svc_hist_percentile(&h, 1.0), 1000);
  svc_hist_record(&h, 1001);
  cr_assert_eq(svc_hist_percentile(&h, 1.0), 1001);
  /* Plain data may be assembled by hand: a bucket below min still reports
   * at least min. */
  svc_hist_init(&h2);
  h2.count = 1;
  h2.buckets[3] = 1;
  h2.min = 5;
  h2.max = 5;
  h2.sum = 5;
  cr_assert_eq(svc_hist_percentile(&h2, 0.5), 5);
}

Test(hist, quantile_is_clamped_to_0_1) {
  uint64_t v;

  svc_hist_init(&h);
  for (v = 1; v <= 100; v++)
    svc_hist_record(&h, v * 100);
  cr_assert_eq(svc_hist_percentile(&h, -1.0), svc_hist_percentile(&h, 0.0));
  cr_assert_eq(svc_hist_percentile(&h, 2.0), 10000);
  cr_assert_eq(svc_hist_percentile(&h, INFINITY), 10000);
  cr_assert_eq(svc_hist_percentile(&h, NAN), svc_hist_percentile(&h, 0.0));
  /* Rank 1 is the lowest value's bucket top: 100 lies in [96, 103]. */
  cr_assert_eq(svc_hist_percentile(&h, 0.0), 103);
}

Test(hist, sum_saturates) {
  svc_hist_init(&h);
  svc_hist_record(&h, UINT64_MAX - 1);
  cr_assert_eq(h.sum, UINT64_MAX - 1);
  svc_hist_record(&h, 5);
  cr_assert_eq(h.sum, UINT64_MAX);
  svc_hist_record(&h, UINT64_MAX);
  cr_assert_eq(h.sum, UINT64_MAX);
  cr_assert_eq(h.count, 3);
  cr_assert_eq(h.min, 5);
  cr_assert_eq(h.max, UINT64_MAX);
}

Test(hist, merge_equals_recording_everything) {
  uint64_t v;
  size_t i;

  svc_hist_init(&h);
  svc_hist_init(&h2);
  svc_hist_init(&all);
  for (v = 50; v <= 150; v++) {
    svc_hist_record(&h, v);
    svc_hist_record(&all, v);
  }
  for (v = 1000; v <= 3000; v += 7) {
    svc_hist_record(&h2, v);
    svc_hist_record(&all, v);
  }
  svc_hist_record(&h2, 3);
  svc_hist_record(&all, 3);
  svc_hist_merge(&h, &h2);
  cr_assert_eq(memcmp(&h, &all, sizeof(h)), 0);
  cr_assert_eq(h.min, 3);
  cr_assert_eq(h.max, 2995);
  for (i = 0; i <= 10; i++)
    cr_assert_eq(svc_hist_percentile(&h, i / 10.0),
                 svc_hist_percentile(&all, i / 10.0));
}

Test(hist, merge_of_empty_source_is_a_no_op) {
  svc_hist_init(&h);
  svc_hist_record(&h, 40);
  svc_hist_record(&h, 60);
  memcpy(&all, &h, sizeof(h));
  memset(&h2, 0, sizeof(h2));
  svc_hist_merge(&h, &h2);
  cr_assert_eq(memcmp(&h, &all, sizeof(h)), 0);
  cr_assert_eq(h.min, 40);
}

Test(hist, merge_into_empty_destination_copies_min) {
  svc_hist_init(&h);
  svc_hist_init(&h2);
  svc_hist_record(&h2, 50);
  svc_hist_record(&h2, 70);
  svc_hist_merge(&h, &h2);
  cr_assert_eq(memcmp(&h, &h2, sizeof(h)), 0);
  cr_assert_eq(h.min, 50);
  cr_assert_eq(h.max, 70);
  cr_assert_eq(h.count, 2);
  /* 50 lies in [50, 51]. */
  cr_assert_eq(svc_hist_percentile(&h, 0.0), 51);
}

Test(hist, merge_saturates_the_sum) {
  svc_hist_init(&h);
  svc_hist_init(&h2);
  svc_hist_record(&h, UINT64_MAX / 2 + 1);
  svc_hist_record(&h2, UINT64_MAX / 2 + 1);
  svc_hist_merge(&h, &h2);
  cr_assert_eq(h.sum, UINT64_MAX);
  cr_assert_eq(h.count, 2);
}
