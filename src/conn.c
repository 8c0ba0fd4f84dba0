/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fault.h"

/* Client-side connections: one per endpoint per context, created on first
 * use by any verb, shared by every call, stream and subscription to it. */

struct svc__url *svc__url_dup(const struct svc__url *u) {
  struct svc__url *d = svc__calloc(1, sizeof(*d));

  if (d == NULL)
    return NULL;
  d->refs = 1;
  d->port = u->port;
  d->host_is_ipv6 = u->host_is_ipv6;
  d->scheme = svc__strdup(u->scheme);
  d->host = svc__strdup(u->host);
  d->path = svc__strdup(u->path);
  d->path_raw = svc__strdup(u->path_raw);
  d->endpoint = svc__strdup(u->endpoint);
  d->user = u->user ? svc__strdup(u->user) : NULL;
  d->password = u->password ? svc__strdup(u->password) : NULL;
  d->query = u->query ? svc__strdup(u->query) : NULL;
  if (!d->scheme || !d->host || !d->path || !d->path_raw || !d->endpoint ||
      (u->user && !d->user) || (u->password && !d->password) ||
      (u->query && !d->query)) {
    svc__url_free(d);
    return NULL;
  }
  return d;
}

/* Size of the core part, rounded so the transport's part is aligned for
 * anything. */
static size_t conn_core_size(void) {
  size_t align = sizeof(max_align_t);
  return (sizeof(struct svc__conn) + align - 1) / align * align;
}

/* svc__conn_get() returns the open conn for url's endpoint, creating it with
 * ops when there is none. 0, SVC_ENOMEM or the transport's init error. */
int svc__conn_get(svc_ctx_t *ctx, const struct svc__url *url,
                  const struct svc__transport *ops, struct svc__conn **out) {
  struct svc__list *pos;
  struct svc__conn *conn;
  int rc;

  svc__list_foreach(pos, &ctx->conns) {
    conn = svc__container_of(pos, struct svc__conn, link);
    if (!conn->closing && conn->ops == ops &&
        strcmp(conn->endpoint, url->endpoint) == 0) {
      *out = conn;
      return 0;
    }
  }
  conn = svc__calloc(1, conn_core_size() + ops->conn_size);
  if (conn == NULL)
    return SVC_ENOMEM;
  conn->ctx = ctx;
  conn->ops = ops;
  conn->tp = (char *)conn + conn_core_size();
  conn->url = svc__url_dup(url);
  conn->metrics = svc__metrics_get(ctx, url->endpoint, SVC_ROLE_CLIENT);
  if (conn->url == NULL || conn->metrics == NULL) {
    svc__url_free(conn->url);
    svc__free(conn);
    return SVC_ENOMEM;
  }
  conn->endpoint = conn->url->endpoint;
  svc__list_insert_tail(&ctx->conns, &conn->link);
  rc = ops->init(conn);
  if (rc != 0) {
    /* The transport's close copes with a half-initialised conn and ends in
     * svc__conn_closed(), as on any other close. */
    conn->closing = 1;
    ctx->close_pending++;
    ops->close(conn);
    return rc;
  }
  *out = conn;
  return 0;
}

void svc__conn_closed(struct svc__conn *conn) {
  svc_ctx_t *ctx = conn->ctx;

  svc__list_remove(&conn->link);
  if (conn->pub_full_hub)
    ctx->npubs_full_hub--;
  svc__fwrap_free(conn);
  svc__url_free(conn->url);
  svc__free(conn);
  ctx->close_pending--;
  if (ctx->closing)
    svc__ctx_close_step(ctx);
}

/* verb_url() parses uri, or takes a reference to the parse of the same text
 * the context kept. A URI with fault-* options is not kept: taking them
 * rewrites the url. A miss replaces the slots in turn. */
static int verb_url(svc_ctx_t *ctx, const char *uri, struct svc__url **url) {
  struct svc__url_cached *slot;
  char *copy;
  size_t i;
  int rc;

  for (i = 0; i < SVC__URL_CACHE; i++) {
    slot = &ctx->url_cache[i];
    if (slot->uri != NULL && strcmp(slot->uri, uri) == 0) {
      *url = svc__url_ref(slot->url);
      return 0;
    }
  }
  rc = svc__url_parse(uri, url);
  if (rc != 0 || svc__fault_query_present(*url))
    return rc;
  /* Keeping it is an optimisation: out of memory, just do not. */
  if ((copy = svc__strdup(uri)) == NULL)
    return 0;
  slot = &ctx->url_cache[ctx->url_cache_next++ % SVC__URL_CACHE];
  svc__free(slot->uri);
  svc__url_free(slot->url);
  slot->uri = copy;
  slot->url = svc__url_ref(*url);
  return 0;
}

void svc__url_cache_free(svc_ctx_t *ctx) {
  size_t i;

  for (i = 0; i < SVC__URL_CACHE; i++) {
    svc__free(ctx->url_cache[i].uri);
    svc__url_free(ctx->url_cache[i].url);
    ctx->url_cache[i].uri = NULL;
    ctx->url_cache[i].url = NULL;
  }
}

/* svc__verb_target() parses uri and finds its backend and conn: the common
 * start of every client verb. On 0 the caller holds a reference to *url,
 * which it reads only and drops with svc__url_free().
 *
 * This is the one place that reads fault-* query options, for every
 * backend: they are taken out of the URI before the conn or the verb sees
 * it (so no backend rejects them or sends them on), and applied to the
 * endpoint's fault profile, inproc's own or the client-side wrapper's. */
int svc__verb_target(svc_ctx_t *ctx, const char *uri, struct svc__url **url,
                     struct svc__conn **conn) {
  const struct svc__transport *ops;
  struct svc__fault_query fq;
  struct svc__fault *f;
  int rc;

  if (ctx->closing)
    return SVC_ECLOSING;
  rc = verb_url(ctx, uri, url);
  if (rc != 0)
    return rc;
  fq.spec = NULL;
  ops = svc__transport_find((*url)->scheme);
  if (ops == NULL)
    rc = SVC_ESCHEME;
  else if ((rc = svc__fault_query_take(*url, &fq)) == 0)
    rc = svc__conn_get(ctx, *url, ops, conn);
  if (rc == 0 && fq.spec != NULL) {
    f = svc__fault_of(*conn, 1);
    if (f != NULL)
      svc__fault_use(f, &fq);
    else
      rc = SVC_ENOMEM;
  }
  svc__free(fq.spec);
  if (rc == 0 && ops->conn_use != NULL)
    rc = ops->conn_use(*conn, *url);
  if (rc != 0) {
    svc__url_free(*url);
    *url = NULL;
  }
  return rc;
}
