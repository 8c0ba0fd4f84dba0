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
  while (svc__query_next(&p, &q)) {
    uint64_t v;

    if (svc__name_is(q.name, q.name_len, "overflow")) {
      if (q.value != NULL && svc__name_is(q.value, q.value_len, "fail_new"))
        o->drop_oldest = 0;
      else if (q.value != NULL &&
               svc__name_is(q.value, q.value_len, "drop_oldest"))
        o->drop_oldest = 1;
      else
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
