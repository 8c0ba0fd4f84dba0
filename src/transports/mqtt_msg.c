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

int svc__mq_props_from_msg(MQTTProperties *p, const svc_msg_t *msg) {
  size_t i;
  const char *ct = msg != NULL ? svc_msg_content_type(msg) : NULL;
  const svc_trace_t *t = msg != NULL ? svc__msg_trace_bin(msg) : NULL;
  char traceparent[SVC_TRACEPARENT_LEN + 1];
  const char *name;
  const char *value;
  int is_ce = 0;
  int rc;
  char attr[SVC__CE_NAME_MAX + 1];

  /* The headers as they are, and a trace kept in binary formatted here
   * (paho copies property values), so the message is left as it was. */
  for (i = 0; msg != NULL && svc__msg_raw_header_at(msg, i, &name, NULL) == 0;
       i++)
    if (strcasecmp(name, "ce-specversion") == 0)
      is_ce = 1;
  for (i = 0; msg != NULL && svc__msg_raw_header_at(msg, i, &name, &value) == 0;
       i++) {
    if (is_ce && svc__ce_header_attr(name, attr))
      name = attr;
    rc = svc__mq_props_add_user(p, name, value);
    if (rc != 0)
      return rc;
  }
  if (t != NULL) {
    svc_trace_format(t, traceparent);
    rc = svc__mq_props_add_user(p, "traceparent", traceparent);
    if (rc != 0)
      return rc;
  }
  if (ct != NULL)
    return svc__mq_props_add_str(p, MQTTPROPERTY_CODE_CONTENT_TYPE, ct,
                                 strlen(ct));
  return 0;
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

svc_msg_t *svc__mq_msg_to_svc(MQTTAsync_message *m) {
  svc_msg_t *msg = svc_msg_new(m->payload, (size_t)m->payloadlen);
  int is_ce = mq_is_cloudevent(m);
  int i;

  if (msg == NULL)
    return NULL;
  for (i = 0; i < m->properties.count; i++) {
    MQTTProperty *p = &m->properties.array[i];
    char *name;
    char *value;
    int rc = 0;

    if (p->identifier == MQTTPROPERTY_CODE_CONTENT_TYPE) {
      value = mq_lenstr(&p->value.data);
      rc = value != NULL ? svc_msg_set_content_type(msg, value) : SVC_ENOMEM;
      svc__free(value);
    } else if (p->identifier == MQTTPROPERTY_CODE_USER_PROPERTY) {
      /* The message id stays visible: consumers drop duplicates by it. */
      if (p->value.data.len >= 4 &&
          memcmp(p->value.data.data, "svc-", 4) == 0 &&
          !(p->value.data.len == 6 &&
            memcmp(p->value.data.data, "svc-id", 6) == 0))
        continue;
      if (is_ce && svc__ce_is_name(p->value.data.data,
                                   (size_t)p->value.data.len)) {
        name = svc__malloc((size_t)p->value.data.len + 4);
        if (name != NULL) {
          memcpy(name, "ce-", 3);
          memcpy(name + 3, p->value.data.data, (size_t)p->value.data.len);
          name[p->value.data.len + 3] = '\0';
        }
      } else {
        name = mq_lenstr(&p->value.data);
      }
      value = mq_lenstr(&p->value.value);
      rc = name != NULL && value != NULL ? svc_msg_header_add(msg, name, value)
                                         : SVC_ENOMEM;
      svc__free(name);
      svc__free(value);
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
