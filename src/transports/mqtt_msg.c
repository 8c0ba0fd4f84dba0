/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

#include <strings.h>

/* Messages and MQTT v5 properties: headers travel as user properties in
 * order, the content type as the content-type property. User properties
 * named "svc-..." belong to the library (call and stream bookkeeping) and
 * are not handed to the application as headers, except "svc-id", the
 * publisher's message id, which consumers use to drop duplicates.
 *
 * CloudEvents (the MQTT protocol binding, v5 binary mode): a message with
 * a "ce-specversion" header sends each "ce-<attribute>" header as a user
 * property named by the bare attribute, and its content type is the
 * event's datacontenttype. A message arriving with a "specversion" user
 * property is an event: each user property named like an attribute
 * (lowercase a-z0-9, at most 20) becomes a "ce-<attribute>" header. */

int svc__mq_props_add_str(MQTTProperties *p, enum MQTTPropertyCodes code,
                          const char *s, size_t len) {
  MQTTProperty prop;

  memset(&prop, 0, sizeof(prop));
  prop.identifier = code;
  prop.value.data.data = (char *)s;
  prop.value.data.len = (int)len;
  return MQTTProperties_add(p, &prop) == 0 ? 0 : SVC_ENOMEM;
}

int svc__mq_props_add_user(MQTTProperties *p, const char *name,
                           const char *value) {
  MQTTProperty prop;

  memset(&prop, 0, sizeof(prop));
  prop.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
  prop.value.data.data = (char *)name;
  prop.value.data.len = (int)strlen(name);
  prop.value.value.data = (char *)value;
  prop.value.value.len = (int)strlen(value);
  return MQTTProperties_add(p, &prop) == 0 ? 0 : SVC_ENOMEM;
}

void svc__mq_prop_user(MQTTProperty *p, const char *name, size_t name_len,
                       const char *value, size_t value_len) {
  memset(p, 0, sizeof(*p));
  p->identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
  p->value.data.data = (char *)name;
  p->value.data.len = (int)name_len;
  p->value.value.data = (char *)value;
  p->value.value.len = (int)value_len;
}

int svc__mq_view_init(struct svc__mq_view *v, const svc_msg_t *msg,
                      const MQTTProperties *extra) {
  const char *ct = msg != NULL ? svc_msg_content_type(msg) : NULL;
  const svc_trace_t *t = msg != NULL ? svc__msg_trace_bin(msg) : NULL;
  MQTTProperty *arr = v->arr;
  char(*attr)[SVC__CE_NAME_MAX + 1] = v->attr;
  const char *name;
  const char *value;
  size_t nh = 0;
  size_t n;
  size_t i;
  size_t k = 0;
  int is_ce = 0;

  memset(&v->props, 0, sizeof(v->props));
  v->heap_arr = NULL;
  v->heap_attr = NULL;
  while (msg != NULL && svc__msg_raw_header_at(msg, nh, &name, NULL) == 0) {
    if (strcasecmp(name, "ce-specversion") == 0)
      is_ce = 1;
    nh++;
  }
  n = nh + (t != NULL) + (ct != NULL) +
      (extra != NULL ? (size_t)extra->count : 0);
  if (n > SVC__MQ_VIEW_INLINE) {
    arr = v->heap_arr = svc__calloc(n, sizeof(*arr));
    if (arr == NULL)
      return SVC_ENOMEM;
    if (is_ce) {
      attr = v->heap_attr = svc__malloc(nh * sizeof(*attr));
      if (attr == NULL) {
        svc__mq_view_free(v);
        return SVC_ENOMEM;
      }
    }
  }
  /* The headers as they are, a trace kept in binary formatted here, the
   * content type, then the caller's own, in that order. */
  for (i = 0; i < nh; i++) {
    svc__msg_raw_header_at(msg, i, &name, &value);
    if (is_ce && svc__ce_header_attr(name, attr[i]))
      name = attr[i];
    svc__mq_prop_user(&arr[k++], name, strlen(name), value, strlen(value));
  }
  if (t != NULL) {
    svc_trace_format(t, v->traceparent);
    svc__mq_prop_user(&arr[k++], "traceparent", 11, v->traceparent,
                      SVC_TRACEPARENT_LEN);
  }
  if (ct != NULL) {
    memset(&arr[k], 0, sizeof(arr[k]));
    arr[k].identifier = MQTTPROPERTY_CODE_CONTENT_TYPE;
    arr[k].value.data.data = (char *)ct;
    arr[k].value.data.len = (int)strlen(ct);
    k++;
  }
  for (i = 0; extra != NULL && i < (size_t)extra->count; i++)
    arr[k++] = extra->array[i];
  v->props.count = (int)k;
  v->props.max_count = (int)k;
  v->props.array = k > 0 ? arr : NULL;
  return 0;
}

void svc__mq_view_free(struct svc__mq_view *v) {
  svc__free(v->heap_arr);
  svc__free(v->heap_attr);
  v->heap_arr = NULL;
  v->heap_attr = NULL;
}

static char *mq_lenstr(const MQTTLenString *s) {
  return svc__strndup(s->data != NULL ? s->data : "", (size_t)s->len);
}

char *svc__mq_user_prop(MQTTAsync_message *m, const char *name) {
  int i;
  size_t n = strlen(name);

  for (i = 0; i < m->properties.count; i++) {
    MQTTProperty *p = &m->properties.array[i];
    if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY &&
        (size_t)p->value.data.len == n &&
        memcmp(p->value.data.data, name, n) == 0)
      return mq_lenstr(&p->value.value);
  }
  return NULL;
}

/* Nonzero when m carries a "specversion" user property: a CloudEvent. */
static int mq_is_cloudevent(MQTTAsync_message *m) {
  int i;

  for (i = 0; i < m->properties.count; i++) {
    MQTTProperty *p = &m->properties.array[i];
    if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY &&
        p->value.data.len == 11 &&
        memcmp(p->value.data.data, "specversion", 11) == 0)
      return 1;
  }
  return 0;
}

/* A valid traceparent property becomes the message's binary trace (no
 * text to keep); 0 when it was not taken. */
static int mq_take_trace(svc_msg_t *msg, const char *v, size_t len) {
  char text[SVC_TRACEPARENT_LEN + 1];
  svc_trace_t t;

  if (len != SVC_TRACEPARENT_LEN || svc__msg_trace_bin(msg) != NULL)
    return 0;
  memcpy(text, v, len);
  text[len] = '\0';
  return svc_trace_parse(text, &t) == 0 && svc__msg_put_trace(msg, &t) == 0;
}

svc_msg_t *svc__mq_msg_to_svc(MQTTAsync_message *m) {
  svc_msg_t *msg = svc_msg_new(m->payload, (size_t)m->payloadlen);
  int is_ce = mq_is_cloudevent(m);
  int i;

  if (msg == NULL)
    return NULL;
  for (i = 0; i < m->properties.count; i++) {
    MQTTProperty *p = &m->properties.array[i];
    int rc = 0;

    if (p->identifier == MQTTPROPERTY_CODE_CONTENT_TYPE) {
      char *value = mq_lenstr(&p->value.data);

      rc = value != NULL ? svc_msg_set_content_type(msg, value) : SVC_ENOMEM;
      svc__free(value);
    } else if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY) {
      const char *name = p->value.data.data != NULL ? p->value.data.data : "";
      size_t name_len = (size_t)p->value.data.len;
      const char *value =
          p->value.value.data != NULL ? p->value.value.data : "";
      size_t value_len = (size_t)p->value.value.len;
      char ce_name[3 + SVC__CE_NAME_MAX + 1];

      /* The message id stays visible: consumers drop duplicates by it. */
      if (name_len >= 4 && memcmp(name, "svc-", 4) == 0 &&
          !(name_len == 6 && memcmp(name, "svc-id", 6) == 0))
        continue;
      /* In a CloudEvent, a "traceparent" is the distributed-tracing
       * extension attribute, kept as ce-traceparent below. */
      if (!is_ce && name_len == 11 && memcmp(name, "traceparent", 11) == 0 &&
          mq_take_trace(msg, value, value_len))
        continue;
      if (is_ce && svc__ce_is_name(name, name_len)) {
        /* An attribute name is at most SVC__CE_NAME_MAX bytes. */
        memcpy(ce_name, "ce-", 3);
        memcpy(ce_name + 3, name, name_len);
        name = ce_name;
        name_len += 3;
      }
      /* Names and values arrive with lengths, not terminated: copied
       * into the message once, with no string of their own first. */
      rc = svc__msg_header_add_n(msg, name, name_len, value, value_len);
    }
    /* A header our messages cannot hold (a name with ':', too many) is
     * left out rather than failing the whole event; memory is not. */
    if (rc == SVC_ENOMEM) {
      svc_msg_free(msg);
      return NULL;
    }
  }
  return msg;
}
