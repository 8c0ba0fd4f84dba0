/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TCP_OPTS_H
#define SVC_TCP_OPTS_H

/* Options of tcp:// and unix:// endpoints, from the query of the URI that
 * creates the connection or the server ("tcp://h:1?keepalive_ms=500"). */

#include "transports/tcp_wire.h"

struct svc__tcp_opts {
  struct svc__wire_opts wire;
  uint64_t reconnect_ms;     /* First backoff after a failed connect. */
  uint64_t reconnect_max_ms; /* Backoff ceiling. */
  uint64_t drain_ms;         /* Server: most a graceful close waits. */
  /* overflow=: what a publish does when max_pending_publishes already
   * wait (for the connection, or for its output to drain). FAIL_NEW
   * (default) or WAIT: refused; DROP_OLDEST: the oldest waiting one goes;
   * DROP_NEWEST: accepted and dropped. Client only. */
  svc_overflow_t overflow;
};

/* Fills o with the defaults, then applies query (may be NULL). 0, or
 * SVC_EINVAL for an unknown name or a malformed or out-of-range value. */
int svc__tcp_opts_parse(const char *query, struct svc__tcp_opts *o);

#endif /* SVC_TCP_OPTS_H */
