/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_ERRNO_H
#define SVCCOMM_ERRNO_H

#include <uv.h>

/* Every failure in libsvccomm is a negative int. Codes that libuv defines
 * keep libuv's value, so a libuv status passes through unchanged and
 * svc_strerror() understands it; codes unique to libsvccomm live in the
 * range -30000 .. -30099. The table generates the enum, svc_strerror() and
 * svc_err_name(). Since 0.1. */
#define SVC_ERRNO_MAP(XX)                                                     \
  XX(EINVAL, UV_EINVAL, "invalid argument")                                   \
  XX(ENOMEM, UV_ENOMEM, "not enough memory")                                  \
  XX(ETIMEDOUT, UV_ETIMEDOUT, "operation timed out")                          \
  XX(ECANCELED, UV_ECANCELED, "operation canceled")                           \
  XX(ENOTSUP, UV_ENOTSUP, "operation not supported by transport")             \
  XX(EAGAIN, UV_EAGAIN, "resource temporarily unavailable, try again later")  \
  XX(ENOBUFS, UV_ENOBUFS, "queue full")                                       \
  XX(EBUSY, UV_EBUSY, "resource busy")                                        \
  XX(EEXIST, UV_EEXIST, "already exists")                                     \
  XX(ENOENT, UV_ENOENT, "no such endpoint")                                   \
  XX(ECONNREFUSED, UV_ECONNREFUSED, "connection refused")                     \
  XX(ECONNRESET, UV_ECONNRESET, "connection reset by peer")                   \
  XX(ENOTCONN, UV_ENOTCONN, "not connected")                                  \
  XX(EPIPE, UV_EPIPE, "stream already ended")                                 \
  XX(EPROTO, UV_EPROTO, "protocol error")                                     \
  XX(EMSGSIZE, UV_EMSGSIZE, "message too long")                               \
  XX(EOF, UV_EOF, "end of stream")                                            \
  XX(ESCHEME, -30001, "no transport for this URI scheme")                     \
  XX(EINLOOP, -30002, "blocking call made from inside the event loop")        \
  XX(ECLOSING, -30003, "context or handle is closing")                        \
  XX(ESTATUS, -30004, "the peer answered with a non-ok status")            \
  XX(EBREAKER, -30005, "circuit breaker open: failing fast")

typedef enum {
#define SVC__ERRNO_ENUM(name, value, text) SVC_##name = (value),
  SVC_ERRNO_MAP(SVC__ERRNO_ENUM)
#undef SVC__ERRNO_ENUM
  SVC_ERRNO_MAX_ = -30099
} svc_errno_t;

#endif /* SVCCOMM_ERRNO_H */
