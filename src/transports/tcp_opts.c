/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp_opts.h"

/* Query options: name=value pairs joined by '&', decimal values. Unknown
 * names are errors, so that a typo never silently means the default. */

static int opts_u32(uint64_t v, uint32_t min, uint32_t *out) {
  if (v < min || v > UINT32_MAX)
    return SVC_EINVAL;
  *out = (uint32_t)v;
  return 0;
}

/* The overflow policies by the names the URI option gives them. */
static int opts_overflow(const char *v, size_t n, svc_overflow_t *out) {
  static const struct {
    const char *name;
    svc_overflow_t policy;
  } names[] = {{"fail_new", SVC_OVERFLOW_FAIL_NEW},
               {"drop_oldest", SVC_OVERFLOW_DROP_OLDEST},
               {"drop_newest", SVC_OVERFLOW_DROP_NEWEST},
               {"wait", SVC_OVERFLOW_WAIT}};
  size_t i;

  for (i = 0; v != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
    if (svc__name_is(v, n, names[i].name)) {
      *out = names[i].policy;
      return 0;
    }
  }
  return SVC_EINVAL;
}

static int opts_apply(struct svc__tcp_opts *o, const char *name, size_t nl,
                      uint64_t v) {
  struct svc__frame_limits *l = &o->wire.limits;
  const struct svc__frame_limits *min = &svc__frame_minimum_limits;

  if (svc__name_is(name, nl, "keepalive_ms"))
    o->wire.keepalive_ms = v;
  else if (svc__name_is(name, nl, "connect_timeout_ms"))
    o->wire.handshake_ms = v > 0 ? v : 1;
  else if (svc__name_is(name, nl, "reconnect_ms"))
    o->reconnect_ms = v > 0 ? v : 1;
  else if (svc__name_is(name, nl, "reconnect_max_ms"))
    o->reconnect_max_ms = v > 0 ? v : 1;
  else if (svc__name_is(name, nl, "drain_ms"))
    o->drain_ms = v;
  else if (svc__name_is(name, nl, "max_outbound"))
    o->wire.max_outbound = v > 0 ? (size_t)v : 1;
  else if (svc__name_is(name, nl, "max_frame"))
    return opts_u32(v, min->max_frame, &l->max_frame);
  else if (svc__name_is(name, nl, "max_header_block"))
    return opts_u32(v, min->max_header_block, &l->max_header_block);
  else if (svc__name_is(name, nl, "max_headers"))
    return opts_u32(v, min->max_headers, &l->max_headers);
  else if (svc__name_is(name, nl, "max_streams"))
    return opts_u32(v, min->max_streams, &l->max_streams);
  else
    return SVC_EINVAL;
  return 0;
}

int svc__tcp_opts_parse(const char *query, struct svc__tcp_opts *o) {
  const char *p = query;
  struct svc__qpair q;

  memset(o, 0, sizeof(*o));
  o->wire.limits = svc__frame_default_limits;
  o->wire.keepalive_ms = 30000;
  o->wire.handshake_ms = 10000;
  o->wire.max_outbound = 8u * 1024 * 1024;
  o->reconnect_ms = 100;
  o->reconnect_max_ms = 5000;
  o->drain_ms = 5000;
  o->overflow = SVC_OVERFLOW_FAIL_NEW;
  while (svc__query_next(&p, &q)) {
    uint64_t v;

    if (svc__name_is(q.name, q.name_len, "overflow")) {
      if (opts_overflow(q.value, q.value_len, &o->overflow) != 0)
        return SVC_EINVAL;
      continue;
    }
    if (svc__parse_decimal(q.value, q.value_len, &v) != 0 ||
        opts_apply(o, q.name, q.name_len, v) != 0)
      return SVC_EINVAL;
  }
  if (o->reconnect_max_ms < o->reconnect_ms)
    o->reconnect_max_ms = o->reconnect_ms;
  return 0;
}
