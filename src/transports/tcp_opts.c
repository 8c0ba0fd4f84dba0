/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp_opts.h"

/* Query options: name=value pairs joined by '&', decimal values. Unknown
 * names are errors, so that a typo never silently means the default. */

static int opts_decimal(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i;

  if (n == 0 || n > 12)
    return SVC_EINVAL;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return SVC_EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

static int opts_name_is(const char *s, size_t n, const char *name) {
  return strlen(name) == n && memcmp(s, name, n) == 0;
}

static int opts_u32(uint64_t v, uint32_t min, uint32_t *out) {
  if (v < min || v > UINT32_MAX)
    return SVC_EINVAL;
  *out = (uint32_t)v;
  return 0;
}

static int opts_apply(struct svc__tcp_opts *o, const char *name, size_t nl,
                      uint64_t v) {
  struct svc__frame_limits *l = &o->wire.limits;
  const struct svc__frame_limits *min = &svc__frame_minimum_limits;

  if (opts_name_is(name, nl, "keepalive_ms"))
    o->wire.keepalive_ms = v;
  else if (opts_name_is(name, nl, "connect_timeout_ms"))
    o->wire.handshake_ms = v > 0 ? v : 1;
  else if (opts_name_is(name, nl, "reconnect_ms"))
    o->reconnect_ms = v > 0 ? v : 1;
  else if (opts_name_is(name, nl, "reconnect_max_ms"))
    o->reconnect_max_ms = v > 0 ? v : 1;
  else if (opts_name_is(name, nl, "drain_ms"))
    o->drain_ms = v;
  else if (opts_name_is(name, nl, "max_outbound"))
    o->wire.max_outbound = v > 0 ? (size_t)v : 1;
  else if (opts_name_is(name, nl, "max_frame"))
    return opts_u32(v, min->max_frame, &l->max_frame);
  else if (opts_name_is(name, nl, "max_header_block"))
    return opts_u32(v, min->max_header_block, &l->max_header_block);
  else if (opts_name_is(name, nl, "max_headers"))
    return opts_u32(v, min->max_headers, &l->max_headers);
  else if (opts_name_is(name, nl, "max_streams"))
    return opts_u32(v, min->max_streams, &l->max_streams);
  else
    return SVC_EINVAL;
  return 0;
}

int svc__tcp_opts_parse(const char *query, struct svc__tcp_opts *o) {
  const char *p = query;

  memset(o, 0, sizeof(*o));
  o->wire.limits = svc__frame_default_limits;
  o->wire.keepalive_ms = 30000;
  o->wire.handshake_ms = 10000;
  o->wire.max_outbound = 8u * 1024 * 1024;
  o->reconnect_ms = 100;
  o->reconnect_max_ms = 5000;
  o->drain_ms = 5000;
  while (p != NULL && *p != '\0') {
    const char *end = strchr(p, '&');
    const char *eq;
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    uint64_t v;
    eq = memchr(p, '=', n);
    if (eq == NULL || opts_decimal(eq + 1, n - (size_t)(eq + 1 - p), &v) != 0 ||
        opts_apply(o, p, (size_t)(eq - p), v) != 0)
      return SVC_EINVAL;
    p = end != NULL ? end + 1 : NULL;
  }
  if (o->reconnect_max_ms < o->reconnect_ms)
    o->reconnect_max_ms = o->reconnect_ms;
  return 0;
}
