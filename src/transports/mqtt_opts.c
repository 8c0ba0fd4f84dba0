/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

/* Query options of an mqtt:// endpoint: name=value pairs joined by '&',
 * read from the URI that first uses the endpoint in a context. Values are
 * percent-decoded. Unknown names are errors, so that a typo never silently
 * means the default. */

static int opt_uint(const char *v, uint64_t max, uint64_t *out) {
  uint64_t x;

  if (svc__parse_decimal(v, strlen(v), &x) != 0 || x > max)
    return SVC_EINVAL;
  *out = x;
  return 0;
}

/* Replaces *slot with v (taking it). */
static int opt_str(char **slot, char **v) {
  if ((*v)[0] == '\0')
    return SVC_EINVAL;
  svc__free(*slot);
  *slot = *v;
  *v = NULL;
  return 0;
}

static int opt_apply(struct svc__mqtt_opts *o, const char *name, char **val,
                     int tls) {
  const char *v = *val;
  uint64_t x;
  int rc;

#define OPT_NUM(nm, max, field)                   \
  if (strcmp(name, nm) == 0) {                    \
    if ((rc = opt_uint(v, (max), &x)) != 0)       \
      return rc;                                  \
    o->field = x;                                 \
    return 0;                                     \
  }
  OPT_NUM("clean_start", 1, clean_start)
  OPT_NUM("session_expiry", UINT32_MAX, session_expiry)
  OPT_NUM("keepalive", 65535, keepalive)
  OPT_NUM("qos", 2, qos)
  OPT_NUM("will_qos", 2, will_qos)
  OPT_NUM("will_retain", 1, will_retain)
  OPT_NUM("max_buffered", 1000000, max_buffered)
  OPT_NUM("max_held", 100000000, max_held)
  OPT_NUM("reconnect_min_s", 3600, reconnect_min_s)
  OPT_NUM("reconnect_max_s", 3600, reconnect_max_s)
  OPT_NUM("connect_timeout_ms", 3600000, connect_timeout_ms)
  OPT_NUM("disconnect_ms", 3600000, disconnect_ms)
  OPT_NUM("no_local", 1, no_local)
#undef OPT_NUM
  if (strcmp(name, "version") == 0) {
    if (strcmp(v, "5") == 0)
      o->version = 5;
    else if (strcmp(v, "3") == 0 || strcmp(v, "3.1.1") == 0)
      o->version = 3;
    else
      return SVC_EINVAL;
    return 0;
  }
  if (strcmp(name, "overflow") == 0) {
    if (strcmp(v, "fail_new") == 0)
      o->overflow = SVC_OVERFLOW_FAIL_NEW;
    else if (strcmp(v, "drop_oldest") == 0)
      o->overflow = SVC_OVERFLOW_DROP_OLDEST;
    else if (strcmp(v, "drop_newest") == 0)
      o->overflow = SVC_OVERFLOW_DROP_NEWEST;
    else if (strcmp(v, "wait") == 0)
      o->overflow = SVC_OVERFLOW_WAIT;
    else
      return SVC_EINVAL;
    return 0;
  }
  if (strcmp(name, "client_id") == 0)
    return opt_str(&o->client_id, val);
  if (strcmp(name, "will_topic") == 0)
    return opt_str(&o->will_topic, val);
  if (strcmp(name, "will_payload") == 0) {
    svc__free(o->will_payload);
    o->will_payload = *val;
    *val = NULL;
    return 0;
  }
  if (strcmp(name, "persist_dir") == 0)
    return opt_str(&o->persist_dir, val);
  /* TLS material only means something on mqtts://. */
  if (tls && strcmp(name, "ca") == 0)
    return opt_str(&o->ca, val);
  if (tls && strcmp(name, "cert") == 0)
    return opt_str(&o->cert, val);
  if (tls && strcmp(name, "key") == 0)
    return opt_str(&o->key, val);
  if (tls && strcmp(name, "insecure") == 0) {
    if ((rc = opt_uint(v, 1, &x)) != 0)
      return rc;
    o->insecure = (int)x;
    return 0;
  }
  return SVC_EINVAL;
}

int svc__mqtt_opts_parse(const char *query, int tls,
                         struct svc__mqtt_opts *o) {
  const char *p = query;
  struct svc__qpair q;
  int rc = 0;

  memset(o, 0, sizeof(*o));
  o->version = 5;
  o->clean_start = 1;
  o->keepalive = 30;
  o->max_buffered = 10000;
  o->max_held = 100000;
  o->reconnect_min_s = 1;
  o->reconnect_max_s = 30;
  o->connect_timeout_ms = 10000;
  o->disconnect_ms = 1000;
  o->overflow = SVC_OVERFLOW_FAIL_NEW;
  while (rc == 0 && svc__query_next(&p, &q)) {
    char *name = NULL;
    char *val = NULL;

    if (q.value == NULL || q.name_len == 0) {
      rc = SVC_EINVAL;
      break;
    }
    rc = svc__url_decode(q.name, q.name_len, &name);
    if (rc == 0)
      rc = svc__url_decode(q.value, q.value_len, &val);
    if (rc == 0)
      rc = opt_apply(o, name, &val, tls);
    svc__free(name);
    svc__free(val);
  }
  if (rc == 0 && o->reconnect_min_s == 0)
    o->reconnect_min_s = 1;
  if (rc == 0 && o->reconnect_max_s < o->reconnect_min_s)
    o->reconnect_max_s = o->reconnect_min_s;
  if (rc == 0 && o->max_buffered == 0)
    o->max_buffered = 1;
  if (rc == 0 && o->connect_timeout_ms == 0)
    o->connect_timeout_ms = 1;
  /* With persist_dir the offline buffer is paho's, which drops its oldest
   * without a callback (1.3.12): the drop could be neither reported nor
   * counted. */
  if (rc == 0 && o->overflow == SVC_OVERFLOW_DROP_OLDEST &&
      o->persist_dir != NULL)
    rc = SVC_EINVAL;
  /* A will needs its topic; a topic without payload sends an empty one. */
  if (rc == 0 && o->will_payload != NULL && o->will_topic == NULL)
    rc = SVC_EINVAL;
  if (rc == 0 && o->will_topic != NULL &&
      svc__topic_check_name(o->will_topic) != 0)
    rc = SVC_EINVAL;
  if (rc != 0)
    svc__mqtt_opts_free(o);
  return rc;
}

void svc__mqtt_opts_free(struct svc__mqtt_opts *o) {
  svc__free(o->client_id);
  svc__free(o->will_topic);
  svc__free(o->will_payload);
  svc__free(o->persist_dir);
  svc__free(o->ca);
  svc__free(o->cert);
  svc__free(o->key);
  memset(o, 0, sizeof(*o));
}
