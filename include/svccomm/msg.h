/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_MSG_H
#define SVCCOMM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "svccomm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A message is what every verb carries: a body of bytes, an ordered list of
 * headers (name/value strings; names compare case-insensitively, duplicates
 * are kept in order), a content type, and, on events, the topic it was
 * published to.
 *
 * Ownership, the one rule for the whole library:
 * - Messages you create are yours until you hand them to a verb
 *   (svc_call(), svc_publish(), svc_stream_write(), svc_request_reply()).
 *   If that verb returns 0 the library owns the message and frees it; if it
 *   returns an error you still own it and may retry or free it.
 * - Messages the library gives to a callback (replies, events, stream data,
 *   requests) are const and valid until that callback returns. Keep one
 *   with svc_msg_dup().
 * - Every string and byte range passed in is copied unless the function
 *   says otherwise (svc_msg_new_take() hands a buffer over). Every pointer
 *   returned by an accessor is owned by the message and valid while it is.
 */
typedef struct svc_msg_s svc_msg_t;

/* Limits enforced on every message, so that a peer cannot make us allocate
 * without bound. Larger messages are refused with SVC_EMSGSIZE. */
#define SVC_MSG_MAX_HEADERS 256
#define SVC_MSG_MAX_HEADER_BYTES (64 * 1024)

/* svc_msg_new() creates a message whose body is a copy of len bytes at body
 * (body may be NULL when len is 0). Returns NULL when out of memory. The
 * caller owns the result. Since 0.1. */
SVC_EXTERN svc_msg_t *svc_msg_new(const void *body, size_t len);

/* svc_msg_new_str() is svc_msg_new(s, strlen(s)). Since 0.1. */
SVC_EXTERN svc_msg_t *svc_msg_new_str(const char *s);

/* svc_msg_new_take() creates a message whose body is the buffer body of len
 * bytes, without copying it. The message owns the buffer from then on and
 * releases it with free_fn(body) (free_fn may be NULL for static data). On
 * NULL (out of memory) the caller still owns body. Since 0.1. */
SVC_EXTERN svc_msg_t *svc_msg_new_take(void *body, size_t len,
                                       void (*free_fn)(void *body));

/* svc_msg_dup() returns a deep copy of msg that the caller owns, or NULL
 * when out of memory. Since 0.1. */
SVC_EXTERN svc_msg_t *svc_msg_dup(const svc_msg_t *msg);

/* svc_msg_free() releases a message the caller owns. NULL is a no-op.
 * Since 0.1. */
SVC_EXTERN void svc_msg_free(svc_msg_t *msg);

/* svc_msg_body() returns the body (never NULL; an empty body is "") and
 * stores its length in *len when len is not NULL. The body is not
 * NUL-terminated in general. Since 0.1. */
SVC_EXTERN const void *svc_msg_body(const svc_msg_t *msg, size_t *len);

/* svc_msg_len() returns the body length in bytes. Since 0.1. */
SVC_EXTERN size_t svc_msg_len(const svc_msg_t *msg);

/* svc_msg_set_body() replaces the body with a copy of len bytes at body.
 * Returns 0, SVC_EINVAL or SVC_ENOMEM (the old body is then kept).
 * Since 0.1. */
SVC_EXTERN int svc_msg_set_body(svc_msg_t *msg, const void *body, size_t len);

/* svc_msg_header_add() appends a header, copying name and value. Names are
 * 1..255 bytes of visible ASCII other than ':'; values hold no CR, LF or
 * NUL. Returns 0, SVC_EINVAL for a bad name or value, SVC_EMSGSIZE past
 * SVC_MSG_MAX_HEADERS or SVC_MSG_MAX_HEADER_BYTES, or SVC_ENOMEM.
 * Since 0.1. */
SVC_EXTERN int svc_msg_header_add(svc_msg_t *msg, const char *name,
                                  const char *value);

/* svc_msg_header_set() removes every header named name, then adds one.
 * Returns as svc_msg_header_add(). Since 0.1. */
SVC_EXTERN int svc_msg_header_set(svc_msg_t *msg, const char *name,
                                  const char *value);

/* svc_msg_header_get() returns the value of the first header named name
 * (case-insensitive), or NULL. Since 0.1. */
SVC_EXTERN const char *svc_msg_header_get(const svc_msg_t *msg,
                                          const char *name);

/* svc_msg_header_remove() removes every header named name and returns how
 * many it removed. Since 0.1. */
SVC_EXTERN size_t svc_msg_header_remove(svc_msg_t *msg, const char *name);

/* svc_msg_header_count() returns the number of headers. Since 0.1. */
SVC_EXTERN size_t svc_msg_header_count(const svc_msg_t *msg);

/* svc_msg_header_at() stores the name and value of header i (0-based, in
 * insertion order) in *name and *value. Returns 0, or SVC_EINVAL when i is
 * out of range. Since 0.1. */
SVC_EXTERN int svc_msg_header_at(const svc_msg_t *msg, size_t i,
                                 const char **name, const char **value);

/* svc_msg_set_content_type() sets the content type ("application/json"),
 * or clears it when type is NULL. Transports map it onto their own field
 * (HTTP Content-Type, the MQTT v5 content-type property). Returns 0,
 * SVC_EINVAL or SVC_ENOMEM. Since 0.1. */
SVC_EXTERN int svc_msg_set_content_type(svc_msg_t *msg, const char *type);

/* svc_msg_content_type() returns the content type, or NULL when unset.
 * Since 0.1. */
SVC_EXTERN const char *svc_msg_content_type(const svc_msg_t *msg);

/* svc_msg_topic() returns the topic an event was published to (set by the
 * library on messages given to subscription callbacks), or NULL.
 * Since 0.1. */
SVC_EXTERN const char *svc_msg_topic(const svc_msg_t *msg);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_MSG_H */
