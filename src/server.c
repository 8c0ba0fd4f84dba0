/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdio.h>
#include <strings.h>

/* The serving side, for every backend: routes by method and path pattern,
 * requests that handlers answer now or later, stream routes, and the
 * endpoint's topic hub. Backends turn bytes into svc_request_s and
 * svc_stream_s and hand them here. */

struct svc__route {
  struct svc__list link;
  char *method; /* NULL: any. */
  struct svc__pattern *pattern;
  svc_handler_cb handler;
  svc_accept_cb accept;
  void *arg;
};


static size_t server_core_size(void) {
  size_t align = sizeof(max_align_t);
  return (sizeof(struct svc_server_s) + align - 1) / align * align;
}

static void route_free(struct svc__route *r) {
  svc__pattern_free(r->pattern);
  svc__free(r->method);
  svc__free(r);
}

static void server_free(struct svc_server_s *srv) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&srv->routes)) != NULL) {
    svc__list_remove(pos);
    route_free(svc__container_of(pos, struct svc__route, link));
  }
  while ((pos = svc__list_head(&srv->stream_routes)) != NULL) {
    svc__list_remove(pos);
    route_free(svc__container_of(pos, struct svc__route, link));
  }
  svc__url_free(srv->url);
  svc__free(srv->base_uri);
  svc__free(srv);
}

/* unix:///run/x.sock names the socket; a route can only follow the
 * socket path in its percent-encoded form, unix://%2Frun%2Fx.sock/route,
 * which is what svc_server_endpoint() hands out. */
static char *server_unix_base(const char *sock) {
  size_t n = strlen(sock);
  char *out = svc__malloc(7 + 3 * n + 1);
  char *q = out;
  static const char hex[] = "0123456789ABCDEF";

  if (out == NULL)
    return NULL;
  memcpy(q, "unix://", 7);
  q += 7;
  for (; *sock != '\0'; sock++) {
    unsigned char c = (unsigned char)*sock;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || strchr("-._~", c) != NULL) {
      *q++ = (char)c;
    } else {
      *q++ = '%';
      *q++ = hex[c >> 4];
      *q++ = hex[c & 15];
    }
  }
  *q = '\0';
  return out;
}

int svc_serve(svc_ctx_t *ctx, const char *uri, const svc_serve_opts_t *opts,
              svc_server_t **out) {
  const struct svc__transport *ops;
  struct svc__url *url;
  struct svc_server_s *srv;
  struct svc__list *pos;
  int rc;

  if (ctx == NULL || uri == NULL || out == NULL)
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  if (ctx->closing)
    return SVC_ECLOSING;
  rc = svc__url_parse(uri, &url);
  if (rc != 0)
    return rc;
  ops = svc__transport_find(url->scheme);
  if (ops == NULL) {
    svc__url_free(url);
    return SVC_ESCHEME;
  }
  if (ops->serve == NULL) {
    svc__url_free(url);
    return SVC_ENOTSUP;
  }
  /* The path names routes and topics under the endpoint, never the
   * endpoint itself (host-less schemes such as unix:// aside, and backends
   * that serve under a path, such as mqtt:// topic prefixes). */
  if (url->host[0] != '\0' && url->path[0] != '\0' &&
      !ops->serve_takes_path) {
    svc__url_free(url);
    return SVC_EINVAL;
  }
  svc__list_foreach(pos, &ctx->servers) {
    srv = svc__container_of(pos, struct svc_server_s, link);
    if (!srv->closing && strcmp(srv->endpoint, url->endpoint) == 0) {
      svc__url_free(url);
      return SVC_EEXIST;
    }
  }
  srv = svc__calloc(1, server_core_size() + ops->server_size);
  if (srv == NULL) {
    svc__url_free(url);
    return SVC_ENOMEM;
  }
  srv->ctx = ctx;
  srv->ops = ops;
  srv->url = url;
  srv->endpoint = url->endpoint;
  srv->tp = (char *)srv + server_core_size();
  if (opts != NULL)
    srv->opts = *opts;
  if (srv->opts.max_pending_requests == 0)
    srv->opts.max_pending_requests = ctx->opts.max_pending_requests;
  svc__list_init(&srv->routes);
  svc__list_init(&srv->stream_routes);
  svc__list_init(&srv->requests);
  svc__list_init(&srv->link);
  srv->hub = svc__ctx_hub(ctx, srv->endpoint, 1);
  srv->metrics = svc__metrics_get(ctx, srv->endpoint, SVC_ROLE_SERVER);
  if (srv->hub == NULL || srv->metrics == NULL) {
    server_free(srv);
    return SVC_ENOMEM;
  }
  if (strcmp(url->scheme, "unix") == 0 &&
      (srv->base_uri = server_unix_base(url->host)) == NULL) {
    server_free(srv);
    return SVC_ENOMEM;
  }
  rc = ops->serve(srv);
  if (rc != 0) {
    server_free(srv);
    return rc;
  }
  svc__list_insert_tail(&ctx->servers, &srv->link);
  *out = srv;
  return 0;
}

static int route_add(svc_server_t *srv, struct svc__list *list,
                     const char *method, const char *pattern,
                     svc_handler_cb handler, svc_accept_cb accept, void *arg) {
  struct svc__route *r;
  struct svc__list *pos;
  int rc;

  if (srv == NULL || pattern == NULL || (handler == NULL && accept == NULL))
    return SVC_EINVAL;
  if (srv->closing)
    return SVC_ECLOSING;
  r = svc__calloc(1, sizeof(*r));
  if (r == NULL)
    return SVC_ENOMEM;
  rc = svc__pattern_compile(pattern, &r->pattern);
  if (rc != 0) {
    svc__free(r);
    return rc;
  }
  if (method != NULL && (r->method = svc__strdup(method)) == NULL) {
    route_free(r);
    return SVC_ENOMEM;
  }
  svc__list_foreach(pos, list) {
    struct svc__route *o = svc__container_of(pos, struct svc__route, link);
    int same_method = (o->method == NULL && method == NULL) ||
                      (o->method != NULL && method != NULL &&
                       strcasecmp(o->method, method) == 0);
    if (same_method && strcmp(svc__pattern_key(o->pattern),
                              svc__pattern_key(r->pattern)) == 0) {
      route_free(r);
      return SVC_EEXIST;
    }
  }
  r->handler = handler;
  r->accept = accept;
  r->arg = arg;
  svc__list_insert_tail(list, &r->link);
  return 0;
}

int svc_server_route(svc_server_t *srv, const char *method,
                     const char *pattern, svc_handler_cb cb, void *arg) {
  if (cb == NULL)
    return SVC_EINVAL;
  return route_add(srv, &srv->routes, method, pattern, cb, NULL, arg);
}

int svc_server_stream_route(svc_server_t *srv, const char *pattern,
                            svc_accept_cb cb, void *arg) {
  if (cb == NULL)
    return SVC_EINVAL;
  return route_add(srv, &srv->stream_routes, NULL, pattern, NULL, cb, arg);
}

/* The most specific route matching path (and method, unless method is
 * NULL). *params receives the winner's parameters. */
static struct svc__route *route_find(struct svc__list *list,
                                     const char *method, const char *path,
                                     char ***params) {
  struct svc__list *pos;
  struct svc__route *best = NULL;
  int best_score = -1;
  int score;

  svc__list_foreach(pos, list) {
    struct svc__route *r = svc__container_of(pos, struct svc__route, link);
    if (method != NULL && r->method != NULL &&
        strcasecmp(r->method, method) != 0)
      continue;
    score = svc__pattern_match(r->pattern, path, NULL);
    /* A route for this exact method beats a catch-all of equal shape. */
    if (score >= 0)
      score = score * 2 + (r->method != NULL);
    if (score > best_score) {
      best_score = score;
      best = r;
    }
  }
  if (best != NULL && params != NULL)
    svc__pattern_match(best->pattern, path, params);
  return best;
}

void svc__server_allowed_methods(struct svc_server_s *srv, const char *path,
                                 char *buf, size_t size) {
  struct svc__list *pos;
  size_t used = 0;

  if (size == 0)
    return;
  buf[0] = '\0';
  svc__list_foreach(pos, &srv->routes) {
    struct svc__route *r = svc__container_of(pos, struct svc__route, link);
    if (r->method == NULL || svc__pattern_match(r->pattern, path, NULL) < 0)
      continue;
    used += (size_t)snprintf(buf + used, size - used, "%s%s",
                             used ? ", " : "", r->method);
    if (used >= size)
      break;
  }
}

/* ---- Requests. */

/* A copy of s in req->strs from *used on, where the method and path of
 * most requests fit (two allocations fewer per request), or allocated. */
static char *request_str(struct svc_request_s *req, const char *s,
                         size_t *used) {
  size_t n = strlen(s) + 1;
  char *p;

  if (n > sizeof(req->strs) - *used)
    return svc__strdup(s);
  p = memcpy(req->strs + *used, s, n);
  *used += n;
  return p;
}

static void request_str_free(struct svc_request_s *req, char *s) {
  if (s < req->strs || s >= req->strs + sizeof(req->strs))
    svc__free(s);
}

static void request_free(struct svc_request_s *req) {
  struct svc_server_s *srv = req->server;

  svc__undefer(srv->ctx, &req->task);
  svc__list_remove(&req->link);
  srv->npending--;
  srv->metrics->m.in_flight--;
  svc_msg_free(req->msg);
  svc__params_free(req->params);
  request_str_free(req, req->method);
  request_str_free(req, req->path);
  svc__free(req);
  /* A closed server lives on only for the requests its handlers held. */
  if (srv->released && svc__list_empty(&srv->requests)) {
    svc__list_remove(&srv->link);
    server_free(srv);
  }
}

static void request_task(struct svc__task *t);

struct svc_request_s *svc__request_new(struct svc_server_s *srv,
                                       const char *method, const char *path,
                                       svc_msg_t *msg, uint64_t deadline) {
  struct svc_request_s *req = svc__calloc(1, sizeof(*req));
  size_t used = 0;

  if (req == NULL) {
    svc_msg_free(msg);
    return NULL;
  }
  req->server = srv;
  req->msg = msg != NULL ? msg : svc_msg_new(NULL, 0);
  req->method = request_str(req, method != NULL ? method : "CALL", &used);
  req->path = request_str(req, path != NULL ? path : "", &used);
  req->deadline = deadline;
  req->start_us = svc__now_us();
  svc__list_init(&req->link);
  svc__task_init(&req->task, request_task);
  /* Counted from creation so request_free() can always undo it. */
  svc__list_insert_tail(&srv->requests, &req->link);
  srv->npending++;
  srv->metrics->m.in_flight++;
  if (req->msg == NULL || req->method == NULL || req->path == NULL) {
    request_free(req);
    return NULL;
  }
  return req;
}

/* Answers without a handler (no route, overload, closing). */
static void request_answer(struct svc_request_s *req, svc_status_t status,
                           const char *text) {
  svc_request_reply(req, status, text != NULL ? svc_msg_new_str(text) : NULL);
}

static void request_task(struct svc__task *t) {
  struct svc_request_s *req =
      svc__container_of(t, struct svc_request_s, task);
  struct svc_server_s *srv = req->server;
  struct svc__route *r;
  struct svc__trace_scope sc;
  svc_trace_t parent;

  if (req->cancelled) {
    request_free(req);
    return;
  }
  /* The server's span of the caller's trace: current while the handler
   * runs, and carried back on the reply. */
  if (srv->ctx->opts.trace != SVC_TRACE_OFF &&
      svc_msg_trace(req->msg, &parent) == 0) {
    svc__trace_child(srv->ctx, &parent, &req->trace);
    req->traced = 1;
  }
  if (srv->closing) {
    request_answer(req, SVC_STATUS_UNAVAILABLE, "server closing");
    return;
  }
  r = route_find(&srv->routes, req->method, req->path, &req->params);
  if (r == NULL) {
    if (route_find(&srv->routes, NULL, req->path, NULL) != NULL)
      request_answer(req, SVC_STATUS_UNIMPLEMENTED, "method not allowed");
    else
      request_answer(req, SVC_STATUS_NOT_FOUND, "no route");
    return;
  }
  svc__trace_enter(srv->ctx, req->traced ? &req->trace : NULL, &sc);
  SVC__USER_CB(srv->ctx, r->handler(req, r->arg));
  svc__trace_leave(srv->ctx, &sc);
}

void svc__server_dispatch(struct svc_server_s *srv,
                          struct svc_request_s *req) {
  srv->metrics->m.calls++;
  srv->metrics->m.msgs_in++;
  srv->metrics->m.bytes_in += svc_msg_len(req->msg);
  if (srv->npending > srv->opts.max_pending_requests) {
    request_answer(req, SVC_STATUS_RESOURCE_EXHAUSTED, "too many requests");
    return;
  }
  svc__defer(srv->ctx, &req->task);
}

void svc__request_cancel(struct svc_request_s *req) {
  req->cancelled = 1;
}

const svc_msg_t *svc_request_msg(const svc_request_t *req) {
  return req->msg;
}

const char *svc_request_method(const svc_request_t *req) {
  return req->method;
}

const char *svc_request_path(const svc_request_t *req) {
  return req->path;
}

const char *svc_request_param(const svc_request_t *req, const char *name) {
  return req->params != NULL ? svc__params_get(req->params, name) : NULL;
}

uint64_t svc_request_remaining_ms(const svc_request_t *req) {
  uint64_t now;

  if (req->deadline == 0)
    return UINT64_MAX;
  now = svc__now_ms(req->server->ctx);
  return req->deadline > now ? req->deadline - now : 0;
}

int svc_request_cancelled(const svc_request_t *req) {
  return req->cancelled ||
         (req->deadline != 0 && svc_request_remaining_ms(req) == 0);
}

int svc_request_reply(svc_request_t *req, svc_status_t status,
                      svc_msg_t *msg) {
  struct svc_server_s *srv;
  svc_metrics_t *m;

  if (req == NULL) {
    svc_msg_free(msg);
    return SVC_EINVAL;
  }
  srv = req->server;
  m = &srv->metrics->m;
  if ((unsigned)status >= SVC_STATUS_COUNT)
    status = SVC_STATUS_UNKNOWN;
  svc__undefer(srv->ctx, &req->task);
  if (req->cancelled) {
    svc_msg_free(msg);
    request_free(req);
    return SVC_ECANCELED;
  }
  m->calls_by_status[status]++;
  if (status != SVC_STATUS_OK)
    m->errors++;
  svc_hist_record(&m->latency_us, svc__now_us() - req->start_us);
  if (req->traced) {
    if (msg == NULL)
      msg = svc_msg_new(NULL, 0);
    if (msg != NULL)
      svc_msg_set_trace(msg, &req->trace); /* Best effort. */
  }
  if (svc__log_wants(srv->ctx, status != SVC_STATUS_OK ? SVC_LOG_WARN
                                                       : SVC_LOG_DEBUG))
    svc__log(srv->ctx, status != SVC_STATUS_OK ? SVC_LOG_WARN : SVC_LOG_DEBUG,
             "serve", srv->endpoint, req->path, status, 0,
             svc__now_us() - req->start_us, req->traced ? &req->trace : NULL,
             "%s /%s: %s", req->method, req->path, svc_status_name(status));
  if (msg != NULL) {
    m->msgs_out++;
    m->bytes_out += svc_msg_len(msg);
  }
  srv->ops->reply(req, status, msg);
  request_free(req);
  return 0;
}

void svc_request_set_data(svc_request_t *req, void *data) {
  req->data = data;
}

void *svc_request_get_data(const svc_request_t *req) {
  return req->data;
}

/* ---- Stream routing. */

void svc__server_route_stream(struct svc_server_s *srv,
                              struct svc_stream_s *s) {
  struct svc__route *r;
  struct svc__trace_scope sc;

  r = srv->closing ? NULL
                   : route_find(&srv->stream_routes, NULL, s->path,
                                &s->params);
  if (r == NULL) {
    svc_stream_reset(s);
    return;
  }
  svc__trace_enter_msg(srv->ctx, s->open_headers, &sc);
  SVC__USER_CB(srv->ctx, r->accept(srv, s, r->arg));
  svc__trace_leave(srv->ctx, &sc);
}

/* ---- Close. */

static void server_close_task(struct svc__task *t) {
  struct svc_server_s *srv =
      svc__container_of(t, struct svc_server_s, close_task);
  svc_ctx_t *ctx = srv->ctx;

  if (srv->close_cb != NULL)
    SVC__USER_CB(ctx, srv->close_cb(srv, srv->close_arg));
  /* Requests still held by handlers stay valid until replied (or until the
   * context is gone): the last one frees the server. */
  srv->released = 1;
  if (svc__list_empty(&srv->requests)) {
    svc__list_remove(&srv->link);
    server_free(srv);
  }
  ctx->close_pending--;
  if (ctx->closing)
    svc__ctx_close_step(ctx);
}

int svc__server_set_endpoint(struct svc_server_s *srv, const char *endpoint) {
  char *copy = svc__strdup(endpoint);

  if (copy == NULL ||
      svc__ctx_hub_rename(srv->ctx, srv->endpoint, endpoint) != 0) {
    svc__free(copy);
    return SVC_ENOMEM;
  }
  snprintf(srv->metrics->m.endpoint, sizeof(srv->metrics->m.endpoint), "%s",
           endpoint);
  svc__free(srv->url->endpoint);
  srv->url->endpoint = copy;
  srv->endpoint = copy;
  return 0;
}

const char *svc_server_endpoint(const svc_server_t *srv) {
  if (srv == NULL)
    return NULL;
  return srv->base_uri != NULL ? srv->base_uri : srv->endpoint;
}

void svc__server_closed(struct svc_server_s *srv) {
  srv->closed = 1;
  svc__defer(srv->ctx, &srv->close_task);
}

void svc_server_close(svc_server_t *srv, svc_server_close_cb cb, void *arg) {
  if (srv == NULL || srv->closing)
    return;
  srv->closing = 1;
  srv->close_cb = cb;
  srv->close_arg = arg;
  srv->ctx->close_pending++;
  svc__task_init(&srv->close_task, server_close_task);
  /* Requests not yet handed to a handler are refused UNAVAILABLE when their
   * task runs; those a handler holds are answered when it replies. */
  svc__streams_abort_server(srv);
  srv->ops->serve_close(srv);
}

void svc__servers_close_all(svc_ctx_t *ctx) {
  struct svc__list *pos;
  struct svc__list *tmp;

  svc__list_foreach_safe(pos, tmp, &ctx->servers) {
    struct svc_server_s *srv =
        svc__container_of(pos, struct svc_server_s, link);
    struct svc__list *rpos;
    /* Callers are gone with the context: replies will be dropped. */
    svc__list_foreach(rpos, &srv->requests) {
      svc__container_of(rpos, struct svc_request_s, link)->cancelled = 1;
    }
    svc_server_close(srv, NULL, NULL);
  }
}

/* Frees what handlers never answered: the context is going away. */
void svc__servers_free_all(svc_ctx_t *ctx) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&ctx->servers)) != NULL) {
    struct svc_server_s *srv =
        svc__container_of(pos, struct svc_server_s, link);
    struct svc__list *rpos;
    srv->released = 0;
    while ((rpos = svc__list_head(&srv->requests)) != NULL)
      request_free(svc__container_of(rpos, struct svc_request_s, link));
    svc__list_remove(&srv->link);
    server_free(srv);
  }
}
