/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Error texts and names, generated from SVC_ERRNO_MAP. Nothing here
 * allocates: every string returned is a literal. */

#define ERRNO_STR_(x) #x
#define ERRNO_STR(x) ERRNO_STR_(x)

#define ERRNO_UNKNOWN_TEXT "unknown error"
#define ERRNO_UNKNOWN_NAME "SVC_EUNKNOWN"

/* The codes libuv knows. uv_strerror() and uv_err_name() return literals
 * for these, but for any other code they strdup() a message and leak it
 * (libuv src/uv-common.c, uv__unknown_err_code), so we only pass known
 * codes on. A table rather than a switch: on some platforms two UV_ codes
 * share a value, which would be a duplicate case label. */
static const int errno_uv_codes[] = {
#define ERRNO_UV_CODE(name, text) UV_##name,
  UV_ERRNO_MAP(ERRNO_UV_CODE)
#undef ERRNO_UV_CODE
};

static int errno_uv_known(int err) {
  size_t i;

  for (i = 0; i < sizeof(errno_uv_codes) / sizeof(errno_uv_codes[0]); i++)
    if (errno_uv_codes[i] == err)
      return 1;
  return 0;
}

const char *svc_strerror(int err) {
  switch (err) {
#define ERRNO_TEXT_CASE(name, value, text) \
  case SVC_##name:                         \
    return text;
    SVC_ERRNO_MAP(ERRNO_TEXT_CASE)
#undef ERRNO_TEXT_CASE
  default:
    break;
  }
  if (errno_uv_known(err))
    return uv_strerror(err);
  return ERRNO_UNKNOWN_TEXT;
}

const char *svc_err_name(int err) {
  switch (err) {
#define ERRNO_NAME_CASE(name, value, text) \
  case SVC_##name:                         \
    return "SVC_" #name;
    SVC_ERRNO_MAP(ERRNO_NAME_CASE)
#undef ERRNO_NAME_CASE
  default:
    break;
  }
  if (errno_uv_known(err))
    return uv_err_name(err);
  return ERRNO_UNKNOWN_NAME;
}

unsigned svc_version(void) {
  return SVC_VERSION_HEX;
}

const char *svc_version_string(void) {
  /* Built by the preprocessor, so that version.h stays the one place the
   * version is written. */
  return ERRNO_STR(SVC_VERSION_MAJOR) "." ERRNO_STR(SVC_VERSION_MINOR) "."
      ERRNO_STR(SVC_VERSION_PATCH);
}
