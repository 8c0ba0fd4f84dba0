/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_STATUS_H
#define SVCCOMM_STATUS_H

#include "svccomm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* svc_status_t is the transport-neutral outcome of a call, the same on every
 * backend. The values are gRPC's status codes, so they can travel on the
 * wire as small integers. A call's callback always receives one of these:
 * a reply from the peer carries the status its handler chose, and a local
 * failure is mapped onto the nearest status (svc_status_from_err()), with the
 * precise negative error available from svc_call_errno().
 *
 * Mapping to and from HTTP (docs/status.md has the full table):
 *
 *   status               -> HTTP   HTTP            -> status
 *   OK                      200    2xx                OK
 *   CANCELLED               499    400                INVALID_ARGUMENT
 *   UNKNOWN                 500    401                UNAUTHENTICATED
 *   INVALID_ARGUMENT        400    403                PERMISSION_DENIED
 *   DEADLINE_EXCEEDED       504    404                NOT_FOUND
 *   NOT_FOUND               404    405, 501           UNIMPLEMENTED
 *   ALREADY_EXISTS          409    408, 504           DEADLINE_EXCEEDED
 *   PERMISSION_DENIED       403    409                ABORTED
 *   RESOURCE_EXHAUSTED      429    412                FAILED_PRECONDITION
 *   FAILED_PRECONDITION     412    413, 429, 431      RESOURCE_EXHAUSTED
 *   ABORTED                 409    416                OUT_OF_RANGE
 *   OUT_OF_RANGE            416    499                CANCELLED
 *   UNIMPLEMENTED           501    502, 503           UNAVAILABLE
 *   INTERNAL                500    other 4xx          FAILED_PRECONDITION
 *   UNAVAILABLE             503    other 5xx          INTERNAL
 *   DATA_LOSS               500    1xx, 3xx, other    UNKNOWN
 *   UNAUTHENTICATED         401
 *
 * Since 0.1. */
typedef enum {
  SVC_STATUS_OK = 0,
  SVC_STATUS_CANCELLED = 1,
  SVC_STATUS_UNKNOWN = 2,
  SVC_STATUS_INVALID_ARGUMENT = 3,
  SVC_STATUS_DEADLINE_EXCEEDED = 4,
  SVC_STATUS_NOT_FOUND = 5,
  SVC_STATUS_ALREADY_EXISTS = 6,
  SVC_STATUS_PERMISSION_DENIED = 7,
  SVC_STATUS_RESOURCE_EXHAUSTED = 8,
  SVC_STATUS_FAILED_PRECONDITION = 9,
  SVC_STATUS_ABORTED = 10,
  SVC_STATUS_OUT_OF_RANGE = 11,
  SVC_STATUS_UNIMPLEMENTED = 12,
  SVC_STATUS_INTERNAL = 13,
  SVC_STATUS_UNAVAILABLE = 14,
  SVC_STATUS_DATA_LOSS = 15,
  SVC_STATUS_UNAUTHENTICATED = 16
} svc_status_t;

/* Number of distinct statuses; valid statuses are 0 .. SVC_STATUS_COUNT-1. */
#define SVC_STATUS_COUNT 17

/* svc_status_name() returns the upper-case name ("NOT_FOUND") of a status,
 * or "UNKNOWN" for a value out of range. Never NULL. Since 0.1. */
SVC_EXTERN const char *svc_status_name(int status);

/* svc_status_from_name() parses a name as printed by svc_status_name()
 * (case-insensitive). Returns the status, or SVC_EINVAL. Since 0.1. */
SVC_EXTERN int svc_status_from_name(const char *name);

/* svc_status_to_http() gives the HTTP status code for a status, per the table
 * above. Out-of-range input gives 500. Since 0.1. */
SVC_EXTERN int svc_status_to_http(int status);

/* svc_status_from_http() gives the status for an HTTP status code, per the
 * table above. Since 0.1. */
SVC_EXTERN svc_status_t svc_status_from_http(int http_code);

/* svc_status_from_err() maps a negative SVC_E* (or libuv) error to the status
 * a caller sees: ETIMEDOUT -> DEADLINE_EXCEEDED, ECANCELED and ECLOSING ->
 * CANCELLED, connection failures -> UNAVAILABLE, EINVAL and ESCHEME ->
 * INVALID_ARGUMENT, ENOBUFS/EAGAIN/ENOMEM -> RESOURCE_EXHAUSTED, ENOTSUP ->
 * UNIMPLEMENTED, ENOENT -> NOT_FOUND, EMSGSIZE -> OUT_OF_RANGE, anything
 * else -> INTERNAL. 0 gives OK. Since 0.1. */
SVC_EXTERN svc_status_t svc_status_from_err(int err);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_STATUS_H */
