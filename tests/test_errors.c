/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include <svccomm.h>

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

TestSuite(errors, .timeout = 10);

struct entry {
  int value;
  const char *name;
  const char *text;
};

static const struct entry svc_entries[] = {
#define ENTRY(name, value, text) {SVC_##name, "SVC_" #name, text},
  SVC_ERRNO_MAP(ENTRY)
#undef ENTRY
};
#define NSVC (sizeof(svc_entries) / sizeof(svc_entries[0]))

struct uv_entry {
  int value;
  const char *name;
};

static const struct uv_entry uv_entries[] = {
#define UV_ENTRY(name, text) {UV_##name, #name},
  UV_ERRNO_MAP(UV_ENTRY)
#undef UV_ENTRY
};
#define NUV (sizeof(uv_entries) / sizeof(uv_entries[0]))

static const struct entry *svc_find(int value) {
  size_t i;

  for (i = 0; i < NSVC; i++)
    if (svc_entries[i].value == value)
      return &svc_entries[i];
  return NULL;
}

Test(errors, every_map_entry_has_its_name_and_text) {
  size_t i;

  for (i = 0; i < NSVC; i++) {
    const struct entry *e = &svc_entries[i];
    cr_assert_lt(e->value, 0, "%s is not negative", e->name);
    cr_assert_str_eq(svc_err_name(e->value), e->name);
    cr_assert_str_eq(svc_strerror(e->value), e->text);
    cr_assert_gt(strlen(svc_strerror(e->value)), 0);
  }
}

Test(errors, map_names_texts_and_values_are_distinct) {
  size_t i;
  size_t j;

  for (i = 0; i < NSVC; i++) {
    for (j = i + 1; j < NSVC; j++) {
      const struct entry *a = &svc_entries[i];
      const struct entry *b = &svc_entries[j];
      cr_assert_neq(a->value, b->value, "%s, %s", a->name, b->name);
      cr_assert_str_neq(svc_err_name(a->value), svc_err_name(b->value));
      cr_assert_str_neq(svc_strerror(a->value), svc_strerror(b->value));
    }
  }
}

Test(errors, svc_only_codes_use_their_own_range) {
  static const int own[] = {SVC_ESCHEME, SVC_EINLOOP, SVC_ECLOSING,
                            SVC_ESTATUS};
  size_t i;

  for (i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
    cr_assert_leq(own[i], -30000);
    cr_assert_geq(own[i], -30099);
  }
  cr_assert_eq(SVC_ETIMEDOUT, UV_ETIMEDOUT);
  cr_assert_eq(SVC_EOF, UV_EOF);
}

Test(errors, libuv_codes_pass_through) {
  /* In both maps: ours wins, with the same meaning. */
  cr_assert_str_eq(svc_strerror(UV_ECONNREFUSED), "connection refused");
  cr_assert_str_eq(svc_err_name(UV_ECONNREFUSED), "SVC_ECONNREFUSED");
  /* Only libuv's: its own literal text and name. */
  cr_assert_str_eq(svc_strerror(UV_EADDRINUSE), "address already in use");
  cr_assert_str_eq(svc_err_name(UV_EADDRINUSE), "EADDRINUSE");
  cr_assert_str_eq(svc_strerror(UV_EAI_NONAME), uv_strerror(UV_EAI_NONAME));
  cr_assert_str_eq(svc_err_name(UV_EAI_NONAME), "EAI_NONAME");
}

Test(errors, every_libuv_code_is_understood) {
  size_t i;

  for (i = 0; i < NUV; i++) {
    const struct uv_entry *u = &uv_entries[i];
    const struct entry *e = svc_find(u->value);
    const char *text = svc_strerror(u->value);
    const char *name = svc_err_name(u->value);
    cr_assert_not_null(text);
    cr_assert_not_null(name);
    if (e != NULL) {
      cr_assert_str_eq(name, e->name);
    } else {
      cr_assert_str_eq(name, u->name);
      cr_assert_str_eq(text, uv_strerror(u->value));
      /* A literal, not a fresh copy: the same pointer every time. */
      cr_assert_eq(svc_strerror(u->value), text);
      cr_assert_eq(svc_err_name(u->value), name);
    }
  }
}

Test(errors, unknown_code_gives_one_fixed_string) {
  static const int unknown[] = {-12345, -30099, -29999, 0, 1, INT_MIN,
                                INT_MAX};
  const char *text = svc_strerror(-12345);
  const char *name = svc_err_name(-12345);
  size_t i;

  cr_assert_not_null(text);
  cr_assert_not_null(name);
  cr_assert_str_eq(text, "unknown error");
  cr_assert_str_eq(name, "SVC_EUNKNOWN");
  for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
    cr_assert_eq(svc_strerror(unknown[i]), text, "code %d", unknown[i]);
    cr_assert_eq(svc_err_name(unknown[i]), name, "code %d", unknown[i]);
  }
}

Test(errors, version_matches_the_header) {
  char want[32];

  snprintf(want, sizeof(want), "%d.%d.%d", SVC_VERSION_MAJOR,
           SVC_VERSION_MINOR, SVC_VERSION_PATCH);
  cr_assert_eq(svc_version(), (unsigned)SVC_VERSION_HEX);
  cr_assert_eq(svc_version() >> 16, (unsigned)SVC_VERSION_MAJOR);
  cr_assert_eq((svc_version() >> 8) & 0xff, (unsigned)SVC_VERSION_MINOR);
  cr_assert_eq(svc_version() & 0xff, (unsigned)SVC_VERSION_PATCH);
  cr_assert_str_eq(svc_version_string(), want);
}
