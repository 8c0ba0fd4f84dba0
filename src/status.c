/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* The mappings below are the tables in include/svccomm/status.h and
 * docs/status.md; change all three together. */

static const char *const status_names[SVC_STATUS_COUNT] = {
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
};

/* gRPC's HTTP mapping, with 499 (nginx's "client closed request") for
 * CANCELLED as grpc-gateway does. */
static const short status_http[SVC_STATUS_COUNT] = {
  200, /* OK */
  499, /* CANCELLED */
  500, /* UNKNOWN */
  400, /* INVALID_ARGUMENT */
  504, /* DEADLINE_EXCEEDED */
  404, /* NOT_FOUND */
  409, /* ALREADY_EXISTS */
  403, /* PERMISSION_DENIED */
  429, /* RESOURCE_EXHAUSTED */
  412, /* FAILED_PRECONDITION */
  409, /* ABORTED */
  416, /* OUT_OF_RANGE */
  501, /* UNIMPLEMENTED */
  500, /* INTERNAL */
  503, /* UNAVAILABLE */
  500, /* DATA_LOSS */
  401, /* UNAUTHENTICATED */
};

const char *svc_status_name(int status) {
  if (status < 0 || status >= SVC_STATUS_COUNT)
    return "UNKNOWN";
  return status_names[status];
}

/* ASCII-only, so that the locale cannot change what parses. */
static int status_name_eq(const char *a, const char *b) {
  unsigned char ca;
  unsigned char cb;

  do {
    ca = (unsigned char)*a++;
    cb = (unsigned char)*b++;
    if (ca >= 'a' && ca <= 'z')
      ca = (unsigned char)(ca - ('a' - 'A'));
    if (cb >= 'a' && cb <= 'z')
      cb = (unsigned char)(cb - ('a' - 'A'));
    if (ca != cb)
      return 0;
  } while (ca != '\0');
  return 1;
}

int svc_status_from_name(const char *name) {
  int i;

  if (name == NULL)
    return SVC_EINVAL;
  for (i = 0; i < SVC_STATUS_COUNT; i++)
    if (status_name_eq(name, status_names[i]))
      return i;
  /* The American spelling, as some gRPC implementations print it. */
  if (status_name_eq(name, "CANCELED"))
    return SVC_STATUS_CANCELLED;
  return SVC_EINVAL;
}

int svc_status_to_http(int status) {
  if (status < 0 || status >= SVC_STATUS_COUNT)
    return 500;
  return status_http[status];
}

svc_status_t svc_status_from_http(int http_code) {
  switch (http_code) {
  case 400:
    return SVC_STATUS_INVALID_ARGUMENT;
  case 401:
    return SVC_STATUS_UNAUTHENTICATED;
  case 403:
    return SVC_STATUS_PERMISSION_DENIED;
  case 404:
    return SVC_STATUS_NOT_FOUND;
  case 405:
  case 501:
    return SVC_STATUS_UNIMPLEMENTED;
  case 408:
  case 504:
    return SVC_STATUS_DEADLINE_EXCEEDED;
  case 409:
    return SVC_STATUS_ABORTED;
  case 412:
    return SVC_STATUS_FAILED_PRECONDITION;
  case 413:
  case 429:
  case 431:
    return SVC_STATUS_RESOURCE_EXHAUSTED;
  case 416:
    return SVC_STATUS_OUT_OF_RANGE;
  case 499:
    return SVC_STATUS_CANCELLED;
  case 502:
  case 503:
    return SVC_STATUS_UNAVAILABLE;
  default:
    break;
  }
  if (http_code >= 200 && http_code < 300)
    return SVC_STATUS_OK;
  if (http_code >= 400 && http_code < 500)
    return SVC_STATUS_FAILED_PRECONDITION;
  if (http_code >= 500 && http_code < 600)
    return SVC_STATUS_INTERNAL;
  return SVC_STATUS_UNKNOWN;
}

svc_status_t svc_status_from_err(int err) {
  switch (err) {
  case 0:
    return SVC_STATUS_OK;
  case SVC_ETIMEDOUT:
    return SVC_STATUS_DEADLINE_EXCEEDED;
  case SVC_ECANCELED:
  case SVC_ECLOSING:
    return SVC_STATUS_CANCELLED;
  /* The peer could not be reached or went away: worth retrying. */
  case SVC_ECONNREFUSED:
  case SVC_ECONNRESET:
  case SVC_ENOTCONN:
  case SVC_EPIPE:
  case SVC_EOF:
  case UV_EHOSTUNREACH:
  case UV_ENETUNREACH:
  case UV_ECONNABORTED:
  /* Name resolution failed. */
  case UV_EAI_ADDRFAMILY:
  case UV_EAI_AGAIN:
  case UV_EAI_BADFLAGS:
  case UV_EAI_BADHINTS:
  case UV_EAI_CANCELED:
  case UV_EAI_FAIL:
  case UV_EAI_FAMILY:
  case UV_EAI_MEMORY:
  case UV_EAI_NODATA:
  case UV_EAI_NONAME:
  case UV_EAI_OVERFLOW:
  case UV_EAI_PROTOCOL:
  case UV_EAI_SERVICE:
  case UV_EAI_SOCKTYPE:
    return SVC_STATUS_UNAVAILABLE;
  case SVC_EINVAL:
  case SVC_ESCHEME:
    return SVC_STATUS_INVALID_ARGUMENT;
  case SVC_ENOBUFS:
  case SVC_EAGAIN:
  case SVC_ENOMEM:
    return SVC_STATUS_RESOURCE_EXHAUSTED;
  case SVC_ENOTSUP:
    return SVC_STATUS_UNIMPLEMENTED;
  case SVC_ENOENT:
    return SVC_STATUS_NOT_FOUND;
  case SVC_EMSGSIZE:
    return SVC_STATUS_OUT_OF_RANGE;
  /* svc_call_errno() says SVC_ESTATUS when the peer chose a non-OK status;
   * the status itself travels separately, so this is only a fallback. */
  case SVC_ESTATUS:
    return SVC_STATUS_UNKNOWN;
  case SVC_EINLOOP:
    return SVC_STATUS_FAILED_PRECONDITION;
  default:
    return SVC_STATUS_INTERNAL;
  }
}
