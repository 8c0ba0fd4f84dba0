/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_DEDUP_H
#define SVCCOMM_DEDUP_H

#include <stddef.h>

#include "svccomm/common.h"
#include "svccomm/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dropping duplicate events. At-least-once delivery (QoS 1, a broker or
 * publisher restart) may hand a subscriber the same event twice. Every
 * QoS 1 or 2 event published over mqtt:// v5 carries a message id unique
 * per publisher in its "svc-id" header; a consumer that needs idempotence
 * asks a filter whether it has seen that id, and skips the event when it
 * has. The filter remembers the most recent capacity ids (a bounded
 * window: size it to cover the redelivery span, for example the
 * publisher's max_buffered). Not thread-safe; one filter per consumer. */
typedef struct svc_dedup_s svc_dedup_t;

/* svc_dedup_new() creates a filter remembering up to capacity ids (0 means
 * 10000). Returns NULL when out of memory. Free it with svc_dedup_free().
 * Since 0.2. */
SVC_EXTERN svc_dedup_t *svc_dedup_new(size_t capacity);

/* svc_dedup_free() releases the filter. NULL is a no-op. Since 0.2. */
SVC_EXTERN void svc_dedup_free(svc_dedup_t *d);

/* svc_dedup_check_id() returns 1 when id is among the remembered ids (a
 * duplicate), else remembers it (forgetting the oldest when full) and
 * returns 0; SVC_EINVAL for a NULL or empty id, SVC_ENOMEM. Since 0.2. */
SVC_EXTERN int svc_dedup_check_id(svc_dedup_t *d, const char *id);

/* svc_dedup_check() is svc_dedup_check_id() on msg's "svc-id" header. A
 * message without one cannot be recognised and counts as new: returns 0
 * without remembering anything. Since 0.2. */
SVC_EXTERN int svc_dedup_check(svc_dedup_t *d, const svc_msg_t *msg);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_DEDUP_H */
