/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdio.h>

/* Per-endpoint counters. Records are created on first use and live as long
 * as the context, so a snapshot after a conn or server has gone still
 * tells what happened to it. */

struct svc__metrics *svc__metrics_get(svc_ctx_t *ctx, const char *endpoint,
                                      svc_role_t role) {
  struct svc__list *pos;
  struct svc__metrics *rec;

  svc__list_foreach(pos, &ctx->metrics) {
    rec = svc__container_of(pos, struct svc__metrics, link);
    if (rec->m.role == role && strcmp(rec->m.endpoint, endpoint) == 0)
      return rec;
  }
  rec = svc__calloc(1, sizeof(*rec));
  if (rec == NULL)
    return NULL;
  /* Endpoints longer than the field are truncated: they stay unique in
   * practice and the snapshot is for people and dashboards. */
  snprintf(rec->m.endpoint, sizeof(rec->m.endpoint), "%s", endpoint);
  rec->m.role = role;
  svc__list_insert_tail(&ctx->metrics, &rec->link);
  return rec;
}

int svc_metrics_get(svc_ctx_t *ctx, const char *uri, svc_role_t role,
                    svc_metrics_t *out) {
  struct svc__url *url;
  struct svc__list *pos;
  struct svc__metrics *rec;
  int rc;

  if (ctx == NULL || uri == NULL || out == NULL)
    return SVC_EINVAL;
  rc = svc__url_parse(uri, &url);
  if (rc != 0)
    return rc;
  rc = SVC_ENOENT;
  svc__list_foreach(pos, &ctx->metrics) {
    rec = svc__container_of(pos, struct svc__metrics, link);
    if (rec->m.role == role && strcmp(rec->m.endpoint, url->endpoint) == 0) {
      *out = rec->m;
      rc = 0;
      break;
    }
  }
  svc__url_free(url);
  return rc;
}

void svc_metrics_foreach(svc_ctx_t *ctx,
                         void (*fn)(const svc_metrics_t *m, void *arg),
                         void *arg) {
  struct svc__list *pos;
  struct svc__metrics *rec;
  svc_metrics_t *snap;

  /* The snapshot is a copy, so the callback may make calls (which update
   * the records) without seeing a half-updated one. */
  snap = svc__malloc(sizeof(*snap));
  if (snap == NULL)
    return;
  svc__list_foreach(pos, &ctx->metrics) {
    rec = svc__container_of(pos, struct svc__metrics, link);
    *snap = rec->m;
    SVC__USER_CB(ctx, fn(snap, arg));
  }
  svc__free(snap);
}
