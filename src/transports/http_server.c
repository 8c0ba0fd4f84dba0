/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http_server.h"

#include <stdio.h>
#include <stdlib.h>

/* Serving http://: options, the listener, and the operations the core
 * calls (see http_server.h for the split). */

#define HS_BACKLOG 511

#define HS(srv) (*(struct svc__https **)(srv)->tp)

/* ---- Options. Unknown names are errors, so that a typo never silently
 * means the default. */

/* The hub prefix: "/" followed by unreserved characters and '/', with a
 * '/' added at the end when missing. */
static int hs_opt_prefix(struct svc__https_opts *o, const char *s, size_t n) {
  size_t i;

  if (n == 0 || s[0] != '/' || n + 2 > sizeof(o->topics))
    return SVC_EINVAL;
  for (i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '/' || ch == '-' || ch == '_' ||
          ch == '.' || ch == '~'))
      return SVC_EINVAL;
  }
  memcpy(o->topics, s, n);
  o->topics[n] = '\0';
  if (s[n - 1] != '/')
    strcat(o->topics, "/");
  return 0;
}

static int hs_opt_apply(struct svc__https_opts *o, const char *name, size_t nl,
                        const char *val, size_t vl) {
  uint64_t v;

  if (svc__name_is(name, nl, "topics"))
    return hs_opt_prefix(o, val, vl);
  if (svc__parse_decimal(val, vl, &v) != 0)
    return SVC_EINVAL;
  if (svc__name_is(name, nl, "max_header_bytes") && v >= 64)
    o->max_header_bytes = (size_t)v;
  else if (svc__name_is(name, nl, "max_headers") && v >= 1)
    o->max_headers = (size_t)v;
  else if (svc__name_is(name, nl, "max_url") && v >= 1)
    o->max_url = (size_t)v;
  else if (svc__name_is(name, nl, "max_body"))
    o->max_body = v;
  else if (svc__name_is(name, nl, "header_timeout_ms") && v >= 1)
    o->header_timeout_ms = v;
  else if (svc__name_is(name, nl, "body_timeout_ms") && v >= 1)
    o->body_timeout_ms = v;
  else if (svc__name_is(name, nl, "idle_timeout_ms") && v >= 1)
    o->idle_timeout_ms = v;
  else if (svc__name_is(name, nl, "max_conns") && v >= 1)
    o->max_conns = (size_t)v;
  else if (svc__name_is(name, nl, "max_pipeline") && v >= 1)
    o->max_pipeline = (size_t)v;
  else if (svc__name_is(name, nl, "sse_history") && v <= 1000000)
    o->sse_history = (size_t)v;
  else if (svc__name_is(name, nl, "sse_ping_ms"))
    o->sse_ping_ms = v;
  else if (svc__name_is(name, nl, "max_outbound") && v >= 1)
    o->max_outbound = (size_t)v;
  else
    return SVC_EINVAL;
  return 0;
}

int svc__https_opts_parse(const char *query, struct svc__https_opts *o) {
  const char *p = query;
  struct svc__qpair q;

  memset(o, 0, sizeof(*o));
  o->max_header_bytes = 16384;
  o->max_headers = 100;
  o->max_url = 8192;
  o->max_body = 8u * 1024 * 1024;
  o->header_timeout_ms = 10000;
  o->body_timeout_ms = 10000;
  o->idle_timeout_ms = 60000;
  o->max_conns = 1024;
  o->max_pipeline = 16;
  strcpy(o->topics, SVC__HTTP_TOPICS_PREFIX);
  o->sse_history = 1024;
  o->sse_ping_ms = 15000;
  o->max_outbound = 1024 * 1024;
  while (svc__query_next(&p, &q)) {
    if (q.value == NULL ||
        hs_opt_apply(o, q.name, q.name_len, q.value, q.value_len) != 0)
      return SVC_EINVAL;
  }
  return 0;
}

/* ---- Listening. */

static void hs_on_connection(uv_stream_t *listener, int status) {
  struct svc__https *hs = listener->data;

  if (status != 0 || hs->closing)
    return;
  /* On failure (EMFILE...) the listener goes on serving everyone else. */
  svc__hs_accept(hs);
}

static int hs_endpoint(struct svc__https *hs) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char host[64];
  char endpoint[128];
  int port;

  if (uv_tcp_getsockname(hs->listener, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(endpoint, sizeof(endpoint), "http://[%s]:%d", host, port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(endpoint, sizeof(endpoint), "http://%s:%d", host, port);
  }
  if (strcmp(endpoint, hs->srv->endpoint) == 0)
    return 0;
  return svc__server_set_endpoint(hs->srv, endpoint);
}

static void hs_handle_free(uv_handle_t *h) {
  svc__free(h);
}

static void hs_free(struct svc__https *hs) {
  svc__hs_hub_free(hs);
  svc__free(hs);
}

void svc__hs_maybe_finish(struct svc__https *hs) {
  struct svc_server_s *srv = hs->srv;

  if (!hs->closing || hs->finished || hs->listener_open ||
      !svc__list_empty(&hs->conns))
    return;
  hs->finished = 1;
  HS(srv) = NULL;
  hs_free(hs);
  svc__server_closed(srv);
}

static void hs_listener_closed(uv_handle_t *h) {
  struct svc__https *hs = h->data;

  svc__free(h);
  hs->listener = NULL;
  hs->listener_open = 0;
  svc__hs_maybe_finish(hs);
}

static int hs_bind(struct svc__https *hs) {
  struct svc_server_s *srv = hs->srv;
  struct sockaddr_storage ss;
  const char *host = srv->url->host[0] != '\0' ? srv->url->host : "0.0.0.0";
  int port = srv->url->port >= 0 ? srv->url->port : 80;
  int rc;

  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
    return SVC_EINVAL; /* Serving needs an address, not a name. */
  rc = uv_tcp_bind(hs->listener, (struct sockaddr *)&ss, 0);
  if (rc != 0)
    return rc;
  rc = uv_listen((uv_stream_t *)hs->listener, HS_BACKLOG, hs_on_connection);
  if (rc != 0)
    return rc;
  return hs_endpoint(hs);
}

int svc__https_serve(struct svc_server_s *srv) {
  struct svc__https *hs;
  int rc;

  if (strcmp(srv->url->scheme, "http") != 0)
    return SVC_ENOTSUP; /* https:// is served behind a TLS terminator. */
  if (srv->url->path[0] != '\0')
    return SVC_EINVAL;
  hs = svc__calloc(1, sizeof(*hs));
  if (hs == NULL)
    return SVC_ENOMEM;
  hs->srv = srv;
  svc__list_init(&hs->conns);
  rc = svc__https_opts_parse(srv->url->query, &hs->opts);
  if (rc == 0)
    rc = svc__hs_hub_init(hs);
  if (rc != 0) {
    hs_free(hs);
    return rc;
  }
  hs->listener = svc__calloc(1, sizeof(*hs->listener));
  if (hs->listener == NULL) {
    hs_free(hs);
    return SVC_ENOMEM;
  }
  rc = uv_tcp_init(srv->ctx->loop, hs->listener);
  if (rc != 0) {
    svc__free(hs->listener);
    hs_free(hs);
    return rc;
  }
  hs->listener->data = hs;
  rc = hs_bind(hs);
  if (rc != 0) {
    uv_close((uv_handle_t *)hs->listener, hs_handle_free);
    hs_free(hs);
    return rc;
  }
  hs->listener_open = 1;
  HS(srv) = hs;
  return 0;
}

/* Stops accepting and ends every connection: answers still with their
 * handlers are cancelled, SSE readers and streams see the connection go. */
void svc__https_serve_close(struct svc_server_s *srv) {
  struct svc__https *hs = HS(srv);
  struct svc__list *pos;
  struct svc__list *tmp;

  hs->closing = 1;
  if (hs->listener_open)
    uv_close((uv_handle_t *)hs->listener, hs_listener_closed);
  /* The hub stops numbering events for a server that is going away. */
  if (hs->recorder_added) {
    svc__hub_remove(srv->hub, &hs->recorder);
    hs->recorder_added = 0;
  }
  svc__list_foreach_safe(pos, tmp, &hs->conns) {
    svc__hs_conn_abort(svc__container_of(pos, struct svc__hs_conn, link));
  }
  svc__hs_maybe_finish(hs);
}

void svc__https_reply(struct svc_request_s *req, svc_status_t status,
                      svc_msg_t *msg) {
  struct svc__hs_req *hr = req->tp;
  char allow[256];
  char extra[300];
  const char *ex = NULL;
  int code = svc_status_to_http(status);

  req->tp = NULL;
  if (hr == NULL) {
    svc_msg_free(msg);
    return;
  }
  hr->req = NULL;
  /* UNIMPLEMENTED for a path that has routes, only not for this method,
   * is HTTP's 405 with the methods that would do. */
  if (status == SVC_STATUS_UNIMPLEMENTED) {
    svc__server_allowed_methods(req->server, req->path, allow, sizeof(allow));
    if (allow[0] != '\0') {
      code = 405;
      snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
      ex = extra;
    }
  }
  /* An OK reply may ask for another success code ("Svc-Http-Code: 202",
   * as grpc-gateway's x-http-code does): only those whose answer has a
   * body like 200's, never a failure code for a success. */
  if (status == SVC_STATUS_OK && msg != NULL) {
    const char *want = svc_msg_header_get(msg, SVC__HTTP_H_CODE);
    int c = want != NULL ? atoi(want) : 0;

    if (c == 200 || c == 201 || c == 202 || c == 203)
      code = c;
  }
  svc__hs_req_answer(hr, code, status, ex, msg, NULL);
  svc_msg_free(msg);
}
