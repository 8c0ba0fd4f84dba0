/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(msg, .timeout = 10);

/* Counts calls to the free function given to svc_msg_new_take(). Each
 * Criterion test runs in its own process, so the counters start at zero. */
static int free_calls;
static void *freed_ptr;

static void count_free(void *p) {
  free_calls++;
  freed_ptr = p;
  free(p);
}

static char *heap_copy(const char *s) {
  size_t n = strlen(s);
  char *p = malloc(n + 1);
  cr_assert_not_null(p);
  memcpy(p, s, n + 1);
  return p;
}

/* Builds a string of n copies of c, for size limits. */
static char *repeat(char c, size_t n) {
  char *p = malloc(n + 1);
  cr_assert_not_null(p);
  memset(p, c, n);
  p[n] = '\0';
  return p;
}

static void assert_body(const svc_msg_t *m, const void *want, size_t len) {
  size_t got_len = 12345;
  const void *got = svc_msg_body(m, &got_len);
  cr_assert_not_null(got);
  cr_assert_eq(got_len, len);
  cr_assert_eq(svc_msg_len(m), len);
  cr_assert_eq(memcmp(got, want, len), 0);
}

/* ---- Bodies. */

Test(msg, new_copies_the_body) {
  char src[] = "hello";
  svc_msg_t *m = svc_msg_new(src, 5);
  cr_assert_not_null(m);
  cr_assert_neq((const void *)svc_msg_body(m, NULL), (const void *)src);
  src[0] = 'J';
  assert_body(m, "hello", 5);
  svc_msg_free(m);
}

Test(msg, new_copies_bodies_around_the_inline_size) {
  static const size_t sizes[] = {0, 1, 63, 64, 65, 4096};
  size_t i;

  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    char *src = repeat('a', sizes[i]);
    char *want = repeat('a', sizes[i]);
    svc_msg_t *m = svc_msg_new(src, sizes[i]);
    cr_assert_not_null(m);
    /* Scribbling on the source must not show through. */
    memset(src, 'z', sizes[i]);
    assert_body(m, want, sizes[i]);
    free(src);
    free(want);
    svc_msg_free(m);
  }
}

Test(msg, new_str_is_new_with_strlen) {
  svc_msg_t *m = svc_msg_new_str("abc");
  cr_assert_not_null(m);
  assert_body(m, "abc", 3);
  svc_msg_free(m);
}

Test(msg, new_null_body_with_length_fails) {
  cr_assert_null(svc_msg_new(NULL, 3));
  cr_assert_null(svc_msg_new_take(NULL, 3, NULL));
}

Test(msg, empty_body_is_empty_string_not_null) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  svc_msg_t *t = svc_msg_new_take(NULL, 0, count_free);
  size_t len = 99;

  cr_assert_not_null(m);
  cr_assert_not_null(t);
  cr_assert_not_null(svc_msg_body(m, &len));
  cr_assert_eq(len, 0);
  cr_assert_str_eq((const char *)svc_msg_body(m, NULL), "");
  cr_assert_not_null(svc_msg_body(t, NULL));
  cr_assert_str_eq((const char *)svc_msg_body(t, NULL), "");
  cr_assert_eq(svc_msg_len(t), 0);
  svc_msg_free(m);
  svc_msg_free(t);
  /* There was no buffer to release. */
  cr_assert_eq(free_calls, 0);
}

Test(msg, take_keeps_the_buffer_and_frees_it_once_on_last_unref) {
  char *buf = heap_copy("taken body");
  svc_msg_t *m = svc_msg_new_take(buf, 10, count_free);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_body(m, NULL), (const void *)buf);
  assert_body(m, "taken body", 10);
  cr_assert_eq(svc__msg_ref(m), m);
  svc_msg_free(m);
  cr_assert_eq(free_calls, 0);
  assert_body(m, "taken body", 10);
  svc__msg_unref(m);
  cr_assert_eq(free_calls, 1);
  cr_assert_eq(freed_ptr, (void *)buf);
}

Test(msg, take_small_buffer_is_not_copied_inline) {
  char *buf = heap_copy("hi");
  svc_msg_t *m = svc_msg_new_take(buf, 2, count_free);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_body(m, NULL), (const void *)buf);
  svc_msg_free(m);
  cr_assert_eq(free_calls, 1);
}

Test(msg, take_with_null_free_fn_serves_static_data) {
  static char data[] = "static";
  svc_msg_t *m = svc_msg_new_take(data, 6, NULL);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_body(m, NULL), (const void *)data);
  svc_msg_free(m);
  cr_assert_str_eq(data, "static");
}

Test(msg, set_body_replaces_and_releases_a_taken_buffer) {
  char *buf = heap_copy("original");
  svc_msg_t *m = svc_msg_new_take(buf, 8, count_free);
  char big[200];

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_set_body(m, "new", 3), 0);
  cr_assert_eq(free_calls, 1);
  assert_body(m, "new", 3);
  memset(big, 'b', sizeof(big));
  cr_assert_eq(svc_msg_set_body(m, big, sizeof(big)), 0);
  assert_body(m, big, sizeof(big));
  cr_assert_eq(svc_msg_set_body(m, NULL, 0), 0);
  cr_assert_str_eq((const char *)svc_msg_body(m, NULL), "");
  svc_msg_free(m);
  cr_assert_eq(free_calls, 1);
}

Test(msg, set_body_accepts_a_slice_of_its_own_body) {
  char big[100];
  svc_msg_t *m;
  const char *b;
  size_t i;

  for (i = 0; i < sizeof(big); i++)
    big[i] = (char)('0' + i % 10);
  m = svc_msg_new(big, sizeof(big));
  cr_assert_not_null(m);
  b = svc_msg_body(m, NULL);
  cr_assert_eq(svc_msg_set_body(m, b + 10, 80), 0);
  assert_body(m, big + 10, 80);
  b = svc_msg_body(m, NULL);
  cr_assert_eq(svc_msg_set_body(m, b + 1, 20), 0);
  assert_body(m, big + 11, 20);
  b = svc_msg_body(m, NULL);
  cr_assert_eq(svc_msg_set_body(m, b + 2, 5), 0);
  assert_body(m, big + 13, 5);
  svc_msg_free(m);
}

Test(msg, set_body_null_with_length_is_einval_and_keeps_body) {
  svc_msg_t *m = svc_msg_new_str("keep");
  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_set_body(m, NULL, 4), SVC_EINVAL);
  assert_body(m, "keep", 4);
  svc_msg_free(m);
}

/* ---- Copies and references. */

Test(msg, dup_is_deep_and_independent) {
  char big[300];
  svc_msg_t *m;
  svc_msg_t *d;
  const char *name;
  const char *value;

  memset(big, 'x', sizeof(big));
  m = svc_msg_new(big, sizeof(big));
  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "A", "1"), 0);
  cr_assert_eq(svc_msg_header_add(m, "B", "2"), 0);
  cr_assert_eq(svc_msg_set_content_type(m, "text/plain"), 0);
  cr_assert_eq(svc__msg_set_topic(m, "orders/placed"), 0);

  d = svc_msg_dup(m);
  cr_assert_not_null(d);
  cr_assert_neq(svc_msg_body(d, NULL), svc_msg_body(m, NULL));
  cr_assert_eq(svc__msg_cost(d), svc__msg_cost(m));

  cr_assert_eq(svc_msg_set_body(m, "changed", 7), 0);
  cr_assert_eq(svc_msg_header_set(m, "a", "changed"), 0);
  cr_assert_eq(svc_msg_header_remove(m, "B"), 1);
  cr_assert_eq(svc_msg_set_content_type(m, NULL), 0);
  cr_assert_eq(svc__msg_set_topic(m, "other"), 0);
  svc_msg_free(m);

  assert_body(d, big, sizeof(big));
  cr_assert_eq(svc_msg_header_count(d), 2);
  cr_assert_eq(svc_msg_header_at(d, 0, &name, &value), 0);
  cr_assert_str_eq(name, "A");
  cr_assert_str_eq(value, "1");
  cr_assert_eq(svc_msg_header_at(d, 1, &name, &value), 0);
  cr_assert_str_eq(name, "B");
  cr_assert_str_eq(value, "2");
  cr_assert_str_eq(svc_msg_content_type(d), "text/plain");
  cr_assert_str_eq(svc_msg_topic(d), "orders/placed");
  /* The copy's headers can grow on their own. */
  cr_assert_eq(svc_msg_header_add(d, "C", "3"), 0);
  cr_assert_eq(svc_msg_header_count(d), 3);
  svc_msg_free(d);
}

Test(msg, dup_of_taken_body_copies_it) {
  char *buf = heap_copy("taken");
  svc_msg_t *m = svc_msg_new_take(buf, 5, count_free);
  svc_msg_t *d;

  cr_assert_not_null(m);
  d = svc_msg_dup(m);
  cr_assert_not_null(d);
  cr_assert_neq(svc_msg_body(d, NULL), (const void *)buf);
  svc_msg_free(m);
  cr_assert_eq(free_calls, 1);
  assert_body(d, "taken", 5);
  svc_msg_free(d);
  cr_assert_eq(free_calls, 1);
}

Test(msg, dup_of_bare_message_has_nothing_set) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  svc_msg_t *d;

  cr_assert_not_null(m);
  d = svc_msg_dup(m);
  cr_assert_not_null(d);
  cr_assert_eq(svc_msg_len(d), 0);
  cr_assert_eq(svc_msg_header_count(d), 0);
  cr_assert_null(svc_msg_content_type(d));
  cr_assert_null(svc_msg_topic(d));
  svc_msg_free(m);
  svc_msg_free(d);
}

Test(msg, ref_and_unref_balance) {
  svc_msg_t *m = svc_msg_new_str("x");
  int i;

  cr_assert_not_null(m);
  for (i = 0; i < 5; i++)
    cr_assert_eq(svc__msg_ref(m), m);
  for (i = 0; i < 5; i++)
    svc__msg_unref(m);
  /* Still alive: the creator's reference remains (ASan would flag a
   * use after free here). */
  assert_body(m, "x", 1);
  svc_msg_free(m);
  svc_msg_free(NULL);
  svc__msg_unref(NULL);
}

/* ---- Headers. */

Test(msg, headers_keep_insertion_order_and_duplicates) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  const char *name = NULL;
  const char *value = NULL;

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "X-One", "1"), 0);
  cr_assert_eq(svc_msg_header_add(m, "X-Two", "2"), 0);
  cr_assert_eq(svc_msg_header_add(m, "x-one", "3"), 0);
  cr_assert_eq(svc_msg_header_count(m), 3);
  cr_assert_eq(svc_msg_header_at(m, 0, &name, &value), 0);
  cr_assert_str_eq(name, "X-One");
  cr_assert_str_eq(value, "1");
  cr_assert_eq(svc_msg_header_at(m, 1, &name, &value), 0);
  cr_assert_str_eq(name, "X-Two");
  cr_assert_str_eq(value, "2");
  cr_assert_eq(svc_msg_header_at(m, 2, &name, &value), 0);
  cr_assert_str_eq(name, "x-one");
  cr_assert_str_eq(value, "3");
  cr_assert_eq(svc_msg_header_at(m, 3, &name, &value), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_at(m, 0, NULL, NULL), 0);
  /* The first of the duplicates wins. */
  cr_assert_str_eq(svc_msg_header_get(m, "X-ONE"), "1");
  svc_msg_free(m);
}

Test(msg, header_get_is_case_insensitive) {
  svc_msg_t *m = svc_msg_new(NULL, 0);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "Content-Length", "10"), 0);
  cr_assert_str_eq(svc_msg_header_get(m, "content-length"), "10");
  cr_assert_str_eq(svc_msg_header_get(m, "CONTENT-LENGTH"), "10");
  cr_assert_null(svc_msg_header_get(m, "Content-Lengt"));
  cr_assert_null(svc_msg_header_get(m, "Content-Lengthh"));
  cr_assert_null(svc_msg_header_get(m, NULL));
  svc_msg_free(m);
}

Test(msg, header_remove_removes_every_match_and_keeps_order) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  const char *name;
  const char *value;

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "a", "1"), 0);
  cr_assert_eq(svc_msg_header_add(m, "B", "2"), 0);
  cr_assert_eq(svc_msg_header_add(m, "A", "3"), 0);
  cr_assert_eq(svc_msg_header_add(m, "c", "4"), 0);
  cr_assert_eq(svc_msg_header_remove(m, "A"), 2);
  cr_assert_eq(svc_msg_header_count(m), 2);
  cr_assert_eq(svc_msg_header_at(m, 0, &name, &value), 0);
  cr_assert_str_eq(name, "B");
  cr_assert_eq(svc_msg_header_at(m, 1, &name, &value), 0);
  cr_assert_str_eq(name, "c");
  cr_assert_eq(svc_msg_header_remove(m, "a"), 0);
  cr_assert_eq(svc_msg_header_remove(m, NULL), 0);
  /* The bytes of removed headers no longer count. */
  cr_assert_eq(svc__msg_cost(m), 4);
  svc_msg_free(m);
}

Test(msg, header_set_replaces_every_match_and_appends) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  const char *name;
  const char *value;

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "k", "1"), 0);
  cr_assert_eq(svc_msg_header_add(m, "other", "x"), 0);
  cr_assert_eq(svc_msg_header_add(m, "K", "2"), 0);
  cr_assert_eq(svc_msg_header_set(m, "K", "new"), 0);
  cr_assert_eq(svc_msg_header_count(m), 2);
  cr_assert_eq(svc_msg_header_at(m, 0, &name, &value), 0);
  cr_assert_str_eq(name, "other");
  cr_assert_eq(svc_msg_header_at(m, 1, &name, &value), 0);
  cr_assert_str_eq(name, "K");
  cr_assert_str_eq(value, "new");
  /* With no match, set is add. */
  cr_assert_eq(svc_msg_header_set(m, "fresh", "f"), 0);
  cr_assert_eq(svc_msg_header_count(m), 3);
  cr_assert_str_eq(svc_msg_header_get(m, "FRESH"), "f");
  svc_msg_free(m);
}

Test(msg, header_set_failure_leaves_headers_alone) {
  svc_msg_t *m = svc_msg_new(NULL, 0);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "k", "1"), 0);
  cr_assert_eq(svc_msg_header_set(m, "k", "bad\r\nvalue"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_count(m), 1);
  cr_assert_str_eq(svc_msg_header_get(m, "k"), "1");
  svc_msg_free(m);
}

Test(msg, header_names_are_validated) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  char *n255 = repeat('n', 255);
  char *n256 = repeat('n', 256);
  static const char *const bad[] = {"",       "a:b",  "a b",  "a\tb",
                                    "\x7f",   "caf\xc3\xa9", ":",
                                    "x\x01y", "\x20"};
  size_t i;

  cr_assert_not_null(m);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(svc_msg_header_add(m, bad[i], "v"), SVC_EINVAL,
                 "name %zu accepted", i);
  cr_assert_eq(svc_msg_header_add(m, NULL, "v"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_add(m, n256, "v"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_set(m, "a:b", "v"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_count(m), 0);
  cr_assert_eq(svc_msg_header_add(m, n255, "v"), 0);
  cr_assert_eq(svc_msg_header_add(m, "!#$%&'*+-.^_`|~09azAZ", "v"), 0);
  cr_assert_eq(svc_msg_header_add(m, "\x21\x7e", "v"), 0);
  cr_assert_eq(svc_msg_header_count(m), 3);
  free(n255);
  free(n256);
  svc_msg_free(m);
}

Test(msg, header_values_are_validated) {
  svc_msg_t *m = svc_msg_new(NULL, 0);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "k", "a\rb"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_add(m, "k", "a\nb"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_add(m, "k", "\r\n"), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_add(m, "k", NULL), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_count(m), 0);
  cr_assert_eq(svc_msg_header_add(m, "k", ""), 0);
  cr_assert_eq(svc_msg_header_add(m, "u", "caf\xc3\xa9 \t\x01:x"), 0);
  cr_assert_str_eq(svc_msg_header_get(m, "k"), "");
  cr_assert_str_eq(svc_msg_header_get(m, "u"), "caf\xc3\xa9 \t\x01:x");
  svc_msg_free(m);
}

Test(msg, header_count_limit_is_exact) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  char name[16];
  int i;

  cr_assert_not_null(m);
  for (i = 0; i < SVC_MSG_MAX_HEADERS; i++) {
    snprintf(name, sizeof(name), "h%d", i);
    cr_assert_eq(svc_msg_header_add(m, name, "v"), 0, "header %d", i);
  }
  cr_assert_eq(svc_msg_header_count(m), SVC_MSG_MAX_HEADERS);
  cr_assert_eq(svc_msg_header_add(m, "one-more", "v"), SVC_EMSGSIZE);
  cr_assert_eq(svc_msg_header_set(m, "one-more", "v"), SVC_EMSGSIZE);
  cr_assert_eq(svc_msg_header_count(m), SVC_MSG_MAX_HEADERS);
  /* Replacing an existing header does not grow the count. */
  cr_assert_eq(svc_msg_header_set(m, "H0", "w"), 0);
  cr_assert_eq(svc_msg_header_count(m), SVC_MSG_MAX_HEADERS);
  cr_assert_eq(svc_msg_header_remove(m, "h1"), 1);
  cr_assert_eq(svc_msg_header_add(m, "one-more", "v"), 0);
  svc_msg_free(m);
}

Test(msg, header_byte_limit_is_exact) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  /* Name "a" plus this value is exactly the limit. */
  char *full = repeat('v', SVC_MSG_MAX_HEADER_BYTES - 1);
  char *over = repeat('v', SVC_MSG_MAX_HEADER_BYTES);

  cr_assert_not_null(m);
  cr_assert_eq(svc_msg_header_add(m, "a", over), SVC_EMSGSIZE);
  cr_assert_eq(svc_msg_header_count(m), 0);
  cr_assert_eq(svc_msg_header_add(m, "a", full), 0);
  cr_assert_eq(svc__msg_cost(m), SVC_MSG_MAX_HEADER_BYTES);
  /* Even an empty value costs its name. */
  cr_assert_eq(svc_msg_header_add(m, "b", ""), SVC_EMSGSIZE);
  /* Replacing the big header frees its bytes first. */
  cr_assert_eq(svc_msg_header_set(m, "A", "small"), 0);
  cr_assert_eq(svc_msg_header_count(m), 1);
  cr_assert_eq(svc__msg_cost(m), 6);
  cr_assert_eq(svc_msg_header_add(m, "b", over), SVC_EMSGSIZE);
  free(full);
  free(over);
  svc_msg_free(m);
}

Test(msg, add_pairs_adds_in_order_and_stops_at_the_first_error) {
  static const char *const good[] = {"a", "1", "b", "2", "a", "3"};
  static const char *const bad[] = {"c", "4", "bad name", "5", "d", "6"};
  svc_msg_t *m = svc_msg_new(NULL, 0);
  const char *name;
  const char *value;

  cr_assert_not_null(m);
  cr_assert_eq(svc__msg_add_pairs(m, NULL, 0), 0);
  cr_assert_eq(svc__msg_add_pairs(m, good, 3), 0);
  cr_assert_eq(svc_msg_header_count(m), 3);
  cr_assert_eq(svc_msg_header_at(m, 2, &name, &value), 0);
  cr_assert_str_eq(name, "a");
  cr_assert_str_eq(value, "3");
  cr_assert_eq(svc__msg_add_pairs(m, bad, 3), SVC_EINVAL);
  cr_assert_str_eq(svc_msg_header_get(m, "c"), "4");
  cr_assert_null(svc_msg_header_get(m, "d"));
  svc_msg_free(m);
}

/* ---- Content type, topic, cost. */

Test(msg, content_type_set_get_clear_and_validate) {
  svc_msg_t *m = svc_msg_new(NULL, 0);

  cr_assert_not_null(m);
  cr_assert_null(svc_msg_content_type(m));
  cr_assert_eq(svc_msg_set_content_type(m, "application/json"), 0);
  cr_assert_str_eq(svc_msg_content_type(m), "application/json");
  cr_assert_eq(svc_msg_set_content_type(m, ""), SVC_EINVAL);
  cr_assert_eq(svc_msg_set_content_type(m, "text/plain\r\nX: y"),
               SVC_EINVAL);
  cr_assert_eq(svc_msg_set_content_type(m, "a\nb"), SVC_EINVAL);
  cr_assert_str_eq(svc_msg_content_type(m), "application/json");
  cr_assert_eq(svc_msg_set_content_type(m, "text/plain; charset=utf-8"), 0);
  cr_assert_str_eq(svc_msg_content_type(m), "text/plain; charset=utf-8");
  cr_assert_eq(svc_msg_set_content_type(m, NULL), 0);
  cr_assert_null(svc_msg_content_type(m));
  svc_msg_free(m);
}

Test(msg, topic_is_set_by_the_library_only) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  char topic[] = "a/b";

  cr_assert_not_null(m);
  cr_assert_null(svc_msg_topic(m));
  cr_assert_eq(svc__msg_set_topic(m, topic), 0);
  topic[0] = 'z';
  cr_assert_str_eq(svc_msg_topic(m), "a/b");
  cr_assert_eq(svc__msg_set_topic(m, NULL), 0);
  cr_assert_null(svc_msg_topic(m));
  svc_msg_free(m);
}

Test(msg, cost_counts_body_headers_and_content_type) {
  svc_msg_t *m = svc_msg_new(NULL, 0);

  cr_assert_not_null(m);
  cr_assert_eq(svc__msg_cost(m), 1);
  cr_assert_eq(svc_msg_set_body(m, "12345", 5), 0);
  cr_assert_eq(svc__msg_cost(m), 5);
  cr_assert_eq(svc_msg_header_add(m, "abc", "de"), 0);
  cr_assert_eq(svc__msg_cost(m), 10);
  cr_assert_eq(svc_msg_set_content_type(m, "text"), 0);
  cr_assert_eq(svc__msg_cost(m), 14);
  cr_assert_eq(svc_msg_set_content_type(m, NULL), 0);
  cr_assert_eq(svc_msg_header_remove(m, "ABC"), 1);
  cr_assert_eq(svc_msg_set_body(m, NULL, 0), 0);
  cr_assert_eq(svc__msg_cost(m), 1);
  svc_msg_free(m);
}

/* ---- Header storage: the first headers live inside the message, the
 * rest on the heap; none of that may show. */

Test(msg, headers_past_the_inline_storage_keep_their_values) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  svc_msg_t *copy;
  char name[32];
  char value[300];
  const char *n;
  const char *v;
  size_t i;

  /* Sizes from 1 to 280 bytes: some fit the arena, most do not. */
  for (i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "h%zu", i);
    memset(value, 'a' + (int)(i % 26), i * 7 + 1);
    value[i * 7 + 1] = '\0';
    cr_assert_eq(svc_msg_header_add(m, name, value), 0);
  }
  cr_assert_eq(svc_msg_header_remove(m, "h3"), 1);
  cr_assert_eq(svc_msg_header_set(m, "h0", "replaced"), 0);
  copy = svc_msg_dup(m);
  cr_assert_not_null(copy);
  svc_msg_free(m);
  cr_assert_eq(svc_msg_header_count(copy), 39);
  for (i = 0; i < 39; i++) {
    size_t k = i < 2 ? i + 1 : i + 2; /* h1, h2, h4, ... then h0 last. */
    cr_assert_eq(svc_msg_header_at(copy, i, &n, &v), 0);
    if (i == 38) {
      cr_assert_str_eq(n, "h0");
      cr_assert_str_eq(v, "replaced");
      break;
    }
    snprintf(name, sizeof(name), "h%zu", k);
    cr_assert_str_eq(n, name);
    cr_assert_eq(strlen(v), k * 7 + 1);
    cr_assert_eq(v[0], 'a' + (int)(k % 26));
  }
  svc_msg_free(copy);
}

/* ---- The trace a message keeps in binary. */

static const svc_trace_t some_trace = {
    {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d,
     0x0e, 0x0e, 0x47, 0x36},
    {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
    1};

/* A decoder takes a message's first traceparent into binary and adds a
 * second one as text: both stay, in the order they came. Regression: the
 * second one stood beside the binary trace and came first once the
 * headers were read as text. */
Test(msg, a_second_traceparent_after_a_binary_one_keeps_the_order) {
  static const char first[] =
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  static const char second[] =
      "00-11111111111111111111111111111111-2222222222222222-01";
  svc_msg_t *m = svc_msg_new(NULL, 0);
  svc_trace_t t;
  const char *name;
  const char *value;

  cr_assert_eq(svc_trace_parse(first, &t), 0);
  cr_assert_eq(svc__msg_put_trace(m, &t), 0);
  cr_assert_eq(svc__msg_header_add_n(m, "traceparent", 11, second,
                                     sizeof(second) - 1),
               0);
  cr_assert_eq(svc_msg_header_at(m, 0, &name, &value), 0);
  cr_assert_str_eq(value, first);
  cr_assert_eq(svc_msg_header_at(m, 1, &name, &value), 0);
  cr_assert_str_eq(value, second);
  cr_assert_str_eq(svc_msg_header_get(m, "traceparent"), first);
  svc_msg_free(m);
}

Test(msg, a_binary_trace_reads_as_a_traceparent_header) {
  svc_msg_t *m = svc_msg_new_str("x");
  svc_msg_t *copy;
  svc_trace_t t;

  cr_assert_eq(svc_msg_header_add(m, "traceparent", "bogus"), 0);
  cr_assert_eq(svc_msg_set_trace(m, &some_trace), 0);
  cr_assert_eq(svc_msg_trace(m, &t), 0);
  cr_assert_eq(memcmp(&t, &some_trace, sizeof(t)), 0);
  copy = svc_msg_dup(m);
  /* The set replaced the old header; the text view shows the new one. */
  cr_assert_eq(svc_msg_header_count(m), 1);
  cr_assert_str_eq(svc_msg_header_get(m, "TraceParent"),
                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  cr_assert_eq(svc_msg_trace(m, &t), 0);
  cr_assert_eq(memcmp(&t, &some_trace, sizeof(t)), 0);
  /* A header set by hand replaces the trace. */
  cr_assert_eq(svc_msg_header_set(
                   m, "traceparent",
                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"),
               0);
  cr_assert_eq(svc_msg_trace(m, &t), 0);
  cr_assert_eq(t.trace_id[0], 0x0a);
  cr_assert_eq(t.flags, 0);
  cr_assert_eq(svc_msg_header_remove(m, "traceparent"), 1);
  cr_assert_eq(svc_msg_trace(m, &t), SVC_ENOENT);
  /* The copy kept the binary trace. */
  cr_assert_eq(svc_msg_trace(copy, &t), 0);
  cr_assert_eq(memcmp(&t, &some_trace, sizeof(t)), 0);
  cr_assert_str_eq(svc_msg_header_get(copy, "traceparent"),
                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  svc_msg_free(copy);
  svc_msg_free(m);
}

Test(msg, set_trace_refuses_all_zero_ids) {
  svc_msg_t *m = svc_msg_new(NULL, 0);
  svc_trace_t t = some_trace;

  memset(t.trace_id, 0, sizeof(t.trace_id));
  cr_assert_eq(svc_msg_set_trace(m, &t), SVC_EINVAL);
  t = some_trace;
  memset(t.span_id, 0, sizeof(t.span_id));
  cr_assert_eq(svc_msg_set_trace(m, &t), SVC_EINVAL);
  cr_assert_eq(svc_msg_header_count(m), 0);
  svc_msg_free(m);
}
