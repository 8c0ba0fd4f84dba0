/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* svc_dedup_*: the bounded filter consumers use to drop redelivered
 * events by their "svc-id". */
#include <criterion/criterion.h>
#include <stdio.h>

#include "svccomm.h"

Test(dedup, second_sighting_is_a_duplicate) {
  svc_dedup_t *d = svc_dedup_new(4);

  cr_assert_not_null(d);
  cr_assert_eq(svc_dedup_check_id(d, "p-1"), 0);
  cr_assert_eq(svc_dedup_check_id(d, "p-2"), 0);
  cr_assert_eq(svc_dedup_check_id(d, "p-1"), 1);
  cr_assert_eq(svc_dedup_check_id(d, "p-2"), 1);
  cr_assert_eq(svc_dedup_check_id(d, "q-1"), 0);
  svc_dedup_free(d);
}

Test(dedup, window_forgets_the_oldest) {
  svc_dedup_t *d = svc_dedup_new(3);
  char id[16];
  int i;

  for (i = 0; i < 5; i++) {
    snprintf(id, sizeof(id), "id-%d", i);
    cr_assert_eq(svc_dedup_check_id(d, id), 0);
  }
  /* 2, 3, 4 are remembered; 0 and 1 were forgotten. */
  cr_assert_eq(svc_dedup_check_id(d, "id-4"), 1);
  cr_assert_eq(svc_dedup_check_id(d, "id-2"), 1);
  cr_assert_eq(svc_dedup_check_id(d, "id-0"), 0);
  /* Remembering id-0 again forgot id-2. */
  cr_assert_eq(svc_dedup_check_id(d, "id-2"), 0);
  svc_dedup_free(d);
}

Test(dedup, many_ids_with_default_capacity) {
  svc_dedup_t *d = svc_dedup_new(0);
  char id[16];
  int i;
  int dups = 0;

  for (i = 0; i < 30000; i++) {
    snprintf(id, sizeof(id), "m-%d", i % 12000);
    dups += svc_dedup_check_id(d, id);
  }
  /* Ids repeat every 12000, beyond the window of 10000: never caught. */
  cr_assert_eq(dups, 0);
  for (i = 0; i < 100; i++) {
    snprintf(id, sizeof(id), "m-%d", 29999 % 12000 - i);
    dups += svc_dedup_check_id(d, id);
  }
  cr_assert_eq(dups, 100);
  svc_dedup_free(d);
}

Test(dedup, messages_by_svc_id_header) {
  svc_dedup_t *d = svc_dedup_new(8);
  svc_msg_t *a = svc_msg_new_str("x");
  svc_msg_t *plain = svc_msg_new_str("y");

  svc_msg_header_add(a, "svc-id", "pub-7");
  cr_assert_eq(svc_dedup_check(d, a), 0);
  cr_assert_eq(svc_dedup_check(d, a), 1);
  /* Without an id a message cannot be recognised: always new. */
  cr_assert_eq(svc_dedup_check(d, plain), 0);
  cr_assert_eq(svc_dedup_check(d, plain), 0);
  cr_assert_eq(svc_dedup_check_id(d, ""), SVC_EINVAL);
  cr_assert_eq(svc_dedup_check_id(d, NULL), SVC_EINVAL);
  cr_assert_eq(svc_dedup_check(NULL, a), SVC_EINVAL);
  svc_msg_free(a);
  svc_msg_free(plain);
  svc_dedup_free(d);
  svc_dedup_free(NULL);
}
