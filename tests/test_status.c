/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include <svccomm.h>

#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

TestSuite(status, .timeout = 10);

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The spec: the tables in include/svccomm/status.h. */
static const struct {
  svc_status_t status;
  const char *name;
  int http;
} rows[] = {
  {SVC_STATUS_OK, "OK", 200},
  {SVC_STATUS_CANCELLED, "CANCELLED", 499},
  {SVC_STATUS_UNKNOWN, "UNKNOWN", 500},
  {SVC_STATUS_INVALID_ARGUMENT, "INVALID_ARGUMENT", 400},
  {SVC_STATUS_DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", 504},
  {SVC_STATUS_NOT_FOUND, "NOT_FOUND", 404},
  {SVC_STATUS_ALREADY_EXISTS, "ALREADY_EXISTS", 409},
  {SVC_STATUS_PERMISSION_DENIED, "PERMISSION_DENIED", 403},
  {SVC_STATUS_RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED", 429},
  {SVC_STATUS_FAILED_PRECONDITION, "FAILED_PRECONDITION", 412},
  {SVC_STATUS_ABORTED, "ABORTED", 409},
  {SVC_STATUS_OUT_OF_RANGE, "OUT_OF_RANGE", 416},
  {SVC_STATUS_UNIMPLEMENTED, "UNIMPLEMENTED", 501},
  {SVC_STATUS_INTERNAL, "INTERNAL", 500},
  {SVC_STATUS_UNAVAILABLE, "UNAVAILABLE", 503},
  {SVC_STATUS_DATA_LOSS, "DATA_LOSS", 500},
  {SVC_STATUS_UNAUTHENTICATED, "UNAUTHENTICATED", 401},
};

struct http_row {
  int http;
  svc_status_t status;
};

Test(status, table_covers_every_status) {
  size_t i;

  cr_assert_eq(COUNT(rows), SVC_STATUS_COUNT);
  for (i = 0; i < COUNT(rows); i++)
    cr_assert_eq((size_t)rows[i].status, i);
}

Test(status, every_status_round_trips_through_its_name) {
  size_t i;

  for (i = 0; i < COUNT(rows); i++) {
    const char *name = svc_status_name((int)rows[i].status);
    cr_assert_not_null(name);
    cr_assert_str_eq(name, rows[i].name);
    cr_assert_eq(svc_status_from_name(name), (int)rows[i].status);
  }
}

Test(status, names_parse_case_insensitively) {
  size_t i;
  size_t j;
  char lower[64];

  for (i = 0; i < COUNT(rows); i++) {
    for (j = 0; rows[i].name[j] != '\0'; j++)
      lower[j] = (char)tolower((unsigned char)rows[i].name[j]);
    lower[j] = '\0';
    cr_assert_eq(svc_status_from_name(lower), (int)rows[i].status, "%s",
                 lower);
  }
  cr_assert_eq(svc_status_from_name("Not_Found"), SVC_STATUS_NOT_FOUND);
}

Test(status, canceled_spelling_is_accepted) {
  cr_assert_eq(svc_status_from_name("CANCELED"), SVC_STATUS_CANCELLED);
  cr_assert_eq(svc_status_from_name("canceled"), SVC_STATUS_CANCELLED);
  cr_assert_eq(svc_status_from_name("Cancelled"), SVC_STATUS_CANCELLED);
}

Test(status, bad_names_are_einval) {
  static const char *const bad[] = {"",     "OKAY",       "OK ",  " OK",
                                    "NOT FOUND", "NOT_FOUND_", "O",
                                    "UNKNOWNX",  "CANCEL"};
  size_t i;

  for (i = 0; i < COUNT(bad); i++)
    cr_assert_eq(svc_status_from_name(bad[i]), SVC_EINVAL, "'%s'", bad[i]);
  cr_assert_eq(svc_status_from_name(NULL), SVC_EINVAL);
}

Test(status, out_of_range_status_is_named_unknown) {
  cr_assert_str_eq(svc_status_name(-1), "UNKNOWN");
  cr_assert_str_eq(svc_status_name(SVC_STATUS_COUNT), "UNKNOWN");
  cr_assert_str_eq(svc_status_name(1000), "UNKNOWN");
}

Test(status, every_status_maps_to_its_http_code) {
  size_t i;

  for (i = 0; i < COUNT(rows); i++)
    cr_assert_eq(svc_status_to_http((int)rows[i].status), rows[i].http,
                 "%s", rows[i].name);
  cr_assert_eq(svc_status_to_http(-1), 500);
  cr_assert_eq(svc_status_to_http(SVC_STATUS_COUNT), 500);
}

Test(status, every_listed_http_code_maps_to_its_status) {
  static const struct http_row listed[] = {
    {400, SVC_STATUS_INVALID_ARGUMENT},
    {401, SVC_STATUS_UNAUTHENTICATED},
    {403, SVC_STATUS_PERMISSION_DENIED},
    {404, SVC_STATUS_NOT_FOUND},
    {405, SVC_STATUS_UNIMPLEMENTED},
    {501, SVC_STATUS_UNIMPLEMENTED},
    {408, SVC_STATUS_DEADLINE_EXCEEDED},
    {504, SVC_STATUS_DEADLINE_EXCEEDED},
    {409, SVC_STATUS_ABORTED},
    {412, SVC_STATUS_FAILED_PRECONDITION},
    {413, SVC_STATUS_RESOURCE_EXHAUSTED},
    {429, SVC_STATUS_RESOURCE_EXHAUSTED},
    {431, SVC_STATUS_RESOURCE_EXHAUSTED},
    {416, SVC_STATUS_OUT_OF_RANGE},
    {499, SVC_STATUS_CANCELLED},
    {502, SVC_STATUS_UNAVAILABLE},
    {503, SVC_STATUS_UNAVAILABLE},
  };
  size_t i;

  for (i = 0; i < COUNT(listed); i++)
    cr_assert_eq(svc_status_from_http(listed[i].http), listed[i].status,
                 "HTTP %d", listed[i].http);
}

Test(status, http_ranges_map_to_their_status) {
  static const struct http_row ranges[] = {
    {200, SVC_STATUS_OK},
    {201, SVC_STATUS_OK},
    {204, SVC_STATUS_OK},
    {299, SVC_STATUS_OK},
    {402, SVC_STATUS_FAILED_PRECONDITION},
    {410, SVC_STATUS_FAILED_PRECONDITION},
    {418, SVC_STATUS_FAILED_PRECONDITION},
    {451, SVC_STATUS_FAILED_PRECONDITION},
    {498, SVC_STATUS_FAILED_PRECONDITION},
    {500, SVC_STATUS_INTERNAL},
    {505, SVC_STATUS_INTERNAL},
    {599, SVC_STATUS_INTERNAL},
    {100, SVC_STATUS_UNKNOWN},
    {101, SVC_STATUS_UNKNOWN},
    {199, SVC_STATUS_UNKNOWN},
    {300, SVC_STATUS_UNKNOWN},
    {302, SVC_STATUS_UNKNOWN},
    {399, SVC_STATUS_UNKNOWN},
    {0, SVC_STATUS_UNKNOWN},
    {-1, SVC_STATUS_UNKNOWN},
    {600, SVC_STATUS_UNKNOWN},
    {999, SVC_STATUS_UNKNOWN},
  };
  size_t i;

  for (i = 0; i < COUNT(ranges); i++)
    cr_assert_eq(svc_status_from_http(ranges[i].http), ranges[i].status,
                 "HTTP %d", ranges[i].http);
}

Test(status, http_round_trip_keeps_the_status_where_the_code_is_unique) {
  size_t i;

  /* 409 and 500 are shared, so ALREADY_EXISTS, UNKNOWN and DATA_LOSS come
   * back as ABORTED and INTERNAL; every other status survives. */
  for (i = 0; i < COUNT(rows); i++) {
    svc_status_t s = rows[i].status;
    svc_status_t back = svc_status_from_http(svc_status_to_http((int)s));
    if (s == SVC_STATUS_ALREADY_EXISTS)
      cr_assert_eq(back, SVC_STATUS_ABORTED);
    else if (s == SVC_STATUS_UNKNOWN || s == SVC_STATUS_DATA_LOSS)
      cr_assert_eq(back, SVC_STATUS_INTERNAL);
    else
      cr_assert_eq(back, s, "%s", rows[i].name);
  }
}

Test(status, errors_map_to_statuses) {
  static const struct {
    int err;
    svc_status_t status;
  } rules[] = {
    {0, SVC_STATUS_OK},
    {SVC_ETIMEDOUT, SVC_STATUS_DEADLINE_EXCEEDED},
    {SVC_ECANCELED, SVC_STATUS_CANCELLED},
    {SVC_ECLOSING, SVC_STATUS_CANCELLED},
    {SVC_ECONNREFUSED, SVC_STATUS_UNAVAILABLE},
    {SVC_ECONNRESET, SVC_STATUS_UNAVAILABLE},
    {SVC_ENOTCONN, SVC_STATUS_UNAVAILABLE},
    {SVC_EPIPE, SVC_STATUS_UNAVAILABLE},
    {SVC_EOF, SVC_STATUS_UNAVAILABLE},
    {UV_EHOSTUNREACH, SVC_STATUS_UNAVAILABLE},
    {UV_ENETUNREACH, SVC_STATUS_UNAVAILABLE},
    {UV_ECONNABORTED, SVC_STATUS_UNAVAILABLE},
    {SVC_EINVAL, SVC_STATUS_INVALID_ARGUMENT},
    {SVC_ESCHEME, SVC_STATUS_INVALID_ARGUMENT},
    {SVC_ENOBUFS, SVC_STATUS_RESOURCE_EXHAUSTED},
    {SVC_EAGAIN, SVC_STATUS_RESOURCE_EXHAUSTED},
    {SVC_ENOMEM, SVC_STATUS_RESOURCE_EXHAUSTED},
    {SVC_ENOTSUP, SVC_STATUS_UNIMPLEMENTED},
    {SVC_ENOENT, SVC_STATUS_NOT_FOUND},
    {SVC_EMSGSIZE, SVC_STATUS_OUT_OF_RANGE},
    {SVC_ESTATUS, SVC_STATUS_UNKNOWN},
    {SVC_EINLOOP, SVC_STATUS_FAILED_PRECONDITION},
    {SVC_EPROTO, SVC_STATUS_INTERNAL},
    {SVC_EBUSY, SVC_STATUS_INTERNAL},
    {SVC_EEXIST, SVC_STATUS_INTERNAL},
    {UV_EACCES, SVC_STATUS_INTERNAL},
    {-12345, SVC_STATUS_INTERNAL},
  };
  size_t i;

  for (i = 0; i < COUNT(rules); i++)
    cr_assert_eq(svc_status_from_err(rules[i].err), rules[i].status,
                 "%s (%d)", svc_err_name(rules[i].err), rules[i].err);
}

Test(status, name_resolution_errors_are_unavailable) {
  static const int eai[] = {
    UV_EAI_ADDRFAMILY, UV_EAI_AGAIN,   UV_EAI_BADFLAGS, UV_EAI_BADHINTS,
    UV_EAI_CANCELED,   UV_EAI_FAIL,    UV_EAI_FAMILY,   UV_EAI_MEMORY,
    UV_EAI_NODATA,     UV_EAI_NONAME,  UV_EAI_OVERFLOW, UV_EAI_PROTOCOL,
    UV_EAI_SERVICE,    UV_EAI_SOCKTYPE};
  size_t i;

  for (i = 0; i < COUNT(eai); i++)
    cr_assert_eq(svc_status_from_err(eai[i]), SVC_STATUS_UNAVAILABLE, "%s",
                 svc_err_name(eai[i]));
}
