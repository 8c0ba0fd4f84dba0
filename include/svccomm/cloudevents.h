/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_CLOUDEVENTS_H
#define SVCCOMM_CLOUDEVENTS_H

#include <stddef.h>

#include "svccomm/common.h"
#include "svccomm/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CloudEvents 1.0 in binary content mode (docs/cloudevents.md). A message
 * is a CloudEvent when it carries the event's context attributes as headers
 * named "ce-<attribute>" (the HTTP binding's names) and its data as the
 * body; the datacontenttype attribute is the message's content type. Every
 * backend carries them: HTTP as "ce-" headers and Content-Type (values
 * percent-encoded as the HTTP binding asks), SSE deliveries as their
 * headers, tcp://, unix:// and inproc:// as ordinary headers, and mqtt://
 * v5 as user properties named by the bare attribute name and the Content
 * Type property (the MQTT binding). MQTT 3.1.1 has nowhere to put them: a
 * CloudEvent published there fails with SVC_ENOTSUP.
 *
 * Header names compare case-insensitively, so "Ce-Id" from other tooling
 * reads like "ce-id". Attribute names are 1..20 characters of lowercase
 * a-z and 0-9. */

/* The context attributes of a CloudEvent. Every member is a borrowed
 * NUL-terminated string or NULL. */
typedef struct svc_cloudevent_s {
  const char *id;          /* Required, non-empty; unique per source. */
  const char *source;      /* Required, non-empty URI-reference. */
  const char *type;        /* Required, non-empty ("com.example.placed"). */
  const char *specversion; /* NULL: "1.0". */
  /* RFC 3339 timestamp. Setting: NULL stamps the current time in UTC
   * ("2026-01-31T12:34:56.789Z"), "" leaves the event without one. */
  const char *time;
  /* The data's media type: the message's content type. Setting: NULL
   * leaves the message's content type as it is. */
  const char *datacontenttype;
  const char *subject;    /* Optional; NULL: none. */
  const char *dataschema; /* Optional URI; NULL: none. */
} svc_cloudevent_t;

/* svc_msg_set_cloudevent() makes msg a CloudEvent with the attributes of
 * ce (borrowed; every string is copied). The attributes it names replace
 * any earlier ones (an optional one that is NULL is removed); extension
 * attributes already set stay. The body is the event's data and is not
 * touched. Returns 0; SVC_EINVAL when id, source or type is NULL or empty,
 * specversion is empty, or a value holds CR or LF; SVC_EMSGSIZE past the
 * message's header limits; SVC_ENOMEM. On error msg is unchanged.
 * Since 0.2. */
SVC_EXTERN int svc_msg_set_cloudevent(svc_msg_t *msg,
                                      const svc_cloudevent_t *ce);

/* svc_msg_cloudevent() reads msg's context attributes into *out (which may
 * be NULL to only ask). Pointers stored are owned by msg and valid while it
 * is and its headers are unchanged; attributes msg lacks are NULL, and
 * datacontenttype is the message's content type. Returns 0 when msg is a
 * CloudEvent; SVC_ENOENT when it is not (no "ce-specversion"); SVC_EPROTO
 * when it claims to be one but lacks id, source or type (*out is filled
 * all the same). Since 0.2. */
SVC_EXTERN int svc_msg_cloudevent(const svc_msg_t *msg, svc_cloudevent_t *out);

/* svc_msg_cloudevent_attr() returns the value of attribute name (without
 * the "ce-" prefix, any case: "traceparent", "subject", ...) or NULL when
 * msg lacks it or name is not an attribute name. "datacontenttype" gives
 * the content type. Owned by msg, as svc_msg_header_get(). Works for the
 * core attributes and for extensions alike. Since 0.2. */
SVC_EXTERN const char *svc_msg_cloudevent_attr(const svc_msg_t *msg,
                                               const char *name);

/* svc_msg_set_cloudevent_attr() sets attribute name (an extension such as
 * "traceparent", or a core optional one) to a copy of value, replacing any
 * earlier value; value NULL removes it. "datacontenttype" sets the content
 * type. Returns 0; SVC_EINVAL when name is not 1..20 characters of a-z and
 * 0-9, or value holds CR or LF; SVC_EMSGSIZE; SVC_ENOMEM. Since 0.2. */
SVC_EXTERN int svc_msg_set_cloudevent_attr(svc_msg_t *msg, const char *name,
                                           const char *value);

/* svc_msg_cloudevent_attr_next() walks msg's "ce-" headers in order, the
 * core attributes and extensions alike (datacontenttype is the content
 * type, not a header, and is not among them). Start with *pos = 0; each
 * call stores the next attribute's name (without the prefix, in the case
 * it arrived in) and value, owned by msg, and advances *pos. Returns 0, or
 * SVC_ENOENT when there are no more. Since 0.2. */
SVC_EXTERN int svc_msg_cloudevent_attr_next(const svc_msg_t *msg, size_t *pos,
                                            const char **name,
                                            const char **value);

#ifdef __cplusplus
}
#endif
#endif /* SVCCOMM_CLOUDEVENTS_H */
