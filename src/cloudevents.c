/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdio.h>
#include <time.h>

/* CloudEvents 1.0, binary content mode (docs/cloudevents.md). Inside the
 * library an event is a message with "ce-<attribute>" headers, the HTTP
 * binding's names, and its datacontenttype as the content type; each
 * transport maps that onto its own binding (mqtt_msg.c, the HTTP header
 * paths). */

#define CE_PREFIX "ce-"
#define CE_PREFIX_LEN 3

/* The attributes svc_cloudevent_t names: svc_msg_set_cloudevent() replaces
 * all of them, and nothing else. */
static const char *const ce_core[] = {
    "specversion", "id",      "source",     "type",
    "time",        "subject", "dataschema", "datacontenttype",
};

static int ce_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

int svc__ce_is_name(const char *s, size_t n) {
  size_t i;

  if (n == 0 || n > SVC__CE_NAME_MAX)
    return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
      return 0;
  return 1;
}

/* Nonzero when name starts with "ce-" in any case. */
static int ce_has_prefix(const char *name) {
  return ce_lower((unsigned char)name[0]) == 'c' &&
         ce_lower((unsigned char)name[1]) == 'e' && name[2] == '-';
}

int svc__ce_header_attr(const char *name, char out[SVC__CE_NAME_MAX + 1]) {
  size_t n;
  size_t i;

  if (!ce_has_prefix(name))
    return 0;
  name += CE_PREFIX_LEN;
  n = strlen(name);
  if (n == 0 || n > SVC__CE_NAME_MAX)
    return 0;
  for (i = 0; i < n; i++)
    out[i] = (char)ce_lower((unsigned char)name[i]);
  out[n] = '\0';
  return svc__ce_is_name(out, n);
}

/* ---- The HTTP binding's percent-encoding (section 3.1.3.2): space, '"',
 * '%' and every byte outside printable ASCII are encoded, UTF-8 byte by
 * byte. */

static int ce_must_encode(unsigned char c) {
  return c <= 0x20 || c >= 0x7f || c == '"' || c == '%';
}

int svc__ce_http_encode(const char *name, const char *value, char **out) {
  static const char hex[] = "0123456789ABCDEF";
  char attr[SVC__CE_NAME_MAX + 1];
  const unsigned char *p;
  size_t extra = 0;
  char *w;

  *out = NULL;
  if (!svc__ce_header_attr(name, attr))
    return 0;
  for (p = (const unsigned char *)value; *p != '\0'; p++)
    extra += ce_must_encode(*p) ? 2 : 0;
  if (extra == 0)
    return 0;
  w = svc__malloc(strlen(value) + extra + 1);
  if (w == NULL)
    return SVC_ENOMEM;
  *out = w;
  for (p = (const unsigned char *)value; *p != '\0'; p++) {
    if (ce_must_encode(*p)) {
      *w++ = '%';
      *w++ = hex[*p >> 4];
      *w++ = hex[*p & 15];
    } else {
      *w++ = (char)*p;
    }
  }
  *w = '\0';
  return 0;
}

int svc__ce_http_decode(const char *name, const char *value, char **out) {
  char attr[SVC__CE_NAME_MAX + 1];
  int rc;

  *out = NULL;
  if (strchr(value, '%') == NULL || !svc__ce_header_attr(name, attr))
    return 0;
  rc = svc__url_decode(value, strlen(value), out);
  if (rc == SVC_ENOMEM)
    return rc;
  if (rc != 0 || strpbrk(*out, "\r\n") != NULL) {
    /* Not ours to judge: a sender that did not encode keeps its value. */
    svc__free(*out);
    *out = NULL;
  }
  return 0;
}

/* ---- The public API. */

/* A header value a message accepts: no CR or LF. */
static int ce_value_ok(const char *v) {
  return v == NULL || strpbrk(v, "\r\n") == NULL;
}

static int ce_nonempty(const char *v) {
  return v != NULL && v[0] != '\0';
}

/* The current time as RFC 3339 in UTC with milliseconds. */
static int ce_now(char *buf, size_t size) {
  uv_timeval64_t tv;
  struct tm tm;
  time_t secs;
  size_t n;

  if (uv_gettimeofday(&tv) != 0)
    return SVC_EINVAL;
  secs = (time_t)tv.tv_sec;
  if (gmtime_r(&secs, &tm) == NULL)
    return SVC_EINVAL;
  n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n == 0 || (size_t)snprintf(buf + n, size - n, ".%03dZ",
                                 (int)(tv.tv_usec / 1000)) >= size - n)
    return SVC_EINVAL;
  return 0;
}

static int ce_is_core(const char *attr) {
  size_t i;

  for (i = 0; i < sizeof(ce_core) / sizeof(ce_core[0]); i++)
    if (strcmp(attr, ce_core[i]) == 0)
      return 1;
  return 0;
}

static int ce_add(svc_msg_t *m, const char *attr, const char *value) {
  char name[CE_PREFIX_LEN + SVC__CE_NAME_MAX + 1];

  if (value == NULL)
    return 0;
  snprintf(name, sizeof(name), CE_PREFIX "%s", attr);
  return svc_msg_header_add(m, name, value);
}

int svc_msg_set_cloudevent(svc_msg_t *msg, const svc_cloudevent_t *ce) {
  char now[64];
  char attr[SVC__CE_NAME_MAX + 1];
  const char *time = ce != NULL ? ce->time : NULL;
  const char *name;
  const char *value;
  svc_msg_t *tmp;
  size_t i;
  int rc = 0;

  assert(msg != NULL);
  if (ce == NULL || !ce_nonempty(ce->id) || !ce_nonempty(ce->source) ||
      !ce_nonempty(ce->type) ||
      (ce->specversion != NULL && ce->specversion[0] == '\0') ||
      !ce_value_ok(ce->id) || !ce_value_ok(ce->source) ||
      !ce_value_ok(ce->type) || !ce_value_ok(ce->specversion) ||
      !ce_value_ok(ce->time) || !ce_value_ok(ce->subject) ||
      !ce_value_ok(ce->dataschema) ||
      (ce->datacontenttype != NULL &&
       (ce->datacontenttype[0] == '\0' || !ce_value_ok(ce->datacontenttype))))
    return SVC_EINVAL;
  if (time == NULL) {
    rc = ce_now(now, sizeof(now));
    if (rc != 0)
      return rc;
    time = now;
  } else if (time[0] == '\0') {
    time = NULL;
  }

  /* The new header list is built aside and swapped in, so that a failure
   * leaves msg as it was. */
  tmp = svc_msg_new(NULL, 0);
  if (tmp == NULL)
    return SVC_ENOMEM;
  for (i = 0; rc == 0 && svc_msg_header_at(msg, i, &name, &value) == 0; i++) {
    /* A datacontenttype header (from an MQTT user property) stays unless
     * the caller gives the content type. */
    if (svc__ce_header_attr(name, attr) && ce_is_core(attr) &&
        (ce->datacontenttype != NULL || strcmp(attr, "datacontenttype") != 0))
      continue;
    rc = svc_msg_header_add(tmp, name, value);
  }
  if (rc == 0)
    rc = ce_add(tmp, "specversion",
                ce->specversion != NULL ? ce->specversion : "1.0");
  if (rc == 0)
    rc = ce_add(tmp, "id", ce->id);
  if (rc == 0)
    rc = ce_add(tmp, "source", ce->source);
  if (rc == 0)
    rc = ce_add(tmp, "type", ce->type);
  if (rc == 0)
    rc = ce_add(tmp, "time", time);
  if (rc == 0)
    rc = ce_add(tmp, "subject", ce->subject);
  if (rc == 0)
    rc = ce_add(tmp, "dataschema", ce->dataschema);
  /* The content type goes last of what can fail: the move cannot. */
  if (rc == 0 && ce->datacontenttype != NULL)
    rc = svc_msg_set_content_type(msg, ce->datacontenttype);
  if (rc == 0)
    svc__msg_move_headers(msg, tmp);
  svc_msg_free(tmp);
  return rc;
}

const char *svc_msg_cloudevent_attr(const svc_msg_t *msg, const char *name) {
  char hname[CE_PREFIX_LEN + SVC__CE_NAME_MAX + 1];
  size_t n;
  size_t i;

  assert(msg != NULL);
  if (name == NULL)
    return NULL;
  n = strlen(name);
  if (n == 0 || n > SVC__CE_NAME_MAX)
    return NULL;
  memcpy(hname, CE_PREFIX, CE_PREFIX_LEN);
  for (i = 0; i < n; i++)
    hname[CE_PREFIX_LEN + i] = (char)ce_lower((unsigned char)name[i]);
  hname[CE_PREFIX_LEN + n] = '\0';
  if (!svc__ce_is_name(hname + CE_PREFIX_LEN, n))
    return NULL;
  if (strcmp(hname + CE_PREFIX_LEN, "datacontenttype") == 0 &&
      svc_msg_content_type(msg) != NULL)
    return svc_msg_content_type(msg);
  /* A binding that carried it as an attribute of its own (an MQTT user
   * property from other tooling) left it as a header. */
  return svc_msg_header_get(msg, hname);
}

int svc_msg_cloudevent(const svc_msg_t *msg, svc_cloudevent_t *out) {
  svc_cloudevent_t ce;

  assert(msg != NULL);
  ce.specversion = svc_msg_cloudevent_attr(msg, "specversion");
  ce.id = svc_msg_cloudevent_attr(msg, "id");
  ce.source = svc_msg_cloudevent_attr(msg, "source");
  ce.type = svc_msg_cloudevent_attr(msg, "type");
  ce.time = svc_msg_cloudevent_attr(msg, "time");
  ce.datacontenttype = svc_msg_cloudevent_attr(msg, "datacontenttype");
  ce.subject = svc_msg_cloudevent_attr(msg, "subject");
  ce.dataschema = svc_msg_cloudevent_attr(msg, "dataschema");
  if (out != NULL)
    *out = ce;
  if (ce.specversion == NULL)
    return SVC_ENOENT;
  if (!ce_nonempty(ce.id) || !ce_nonempty(ce.source) || !ce_nonempty(ce.type))
    return SVC_EPROTO;
  return 0;
}

int svc_msg_set_cloudevent_attr(svc_msg_t *msg, const char *name,
                                const char *value) {
  char hname[CE_PREFIX_LEN + SVC__CE_NAME_MAX + 1];

  assert(msg != NULL);
  if (name == NULL || !svc__ce_is_name(name, strlen(name)) ||
      !ce_value_ok(value))
    return SVC_EINVAL;
  if (strcmp(name, "datacontenttype") == 0) {
    svc_msg_header_remove(msg, CE_PREFIX "datacontenttype");
    return svc_msg_set_content_type(msg, value);
  }
  snprintf(hname, sizeof(hname), CE_PREFIX "%s", name);
  if (value == NULL) {
    svc_msg_header_remove(msg, hname);
    return 0;
  }
  return svc_msg_header_set(msg, hname, value);
}

int svc_msg_cloudevent_attr_next(const svc_msg_t *msg, size_t *pos,
                                 const char **name, const char **value) {
  const char *n;
  const char *v;

  assert(msg != NULL && pos != NULL);
  while (svc_msg_header_at(msg, *pos, &n, &v) == 0) {
    (*pos)++;
    if (ce_has_prefix(n) && n[CE_PREFIX_LEN] != '\0') {
      if (name != NULL)
        *name = n + CE_PREFIX_LEN;
      if (value != NULL)
        *value = v;
      return 0;
    }
  }
  return SVC_ENOENT;
}
