/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Connection state as the application sees it. Transports report their
 * transitions with svc__conn_state(); the state is kept on the conn and in
 * the endpoint's metrics, and each change is handed to the context's
 * callback from a deferred task (never from inside the verb or the I/O
 * callback that caused it). The publisher watermark (pubsub.c) hands its
 * changes over through the same queue, so both arrive in the order they
 * happened. Changes are few (one per connect attempt, attempts back off;
 * one per filling of a publish queue), so each pending one is a small
 * allocation. */

enum note_kind { NOTE_STATE, NOTE_PUB_WATERMARK };

struct svc__conn_note {
  struct svc__conn_note *next;
  char *endpoint;
  enum note_kind kind;
  svc_conn_state_t state; /* NOTE_STATE */
  int err;
  size_t depth; /* NOTE_PUB_WATERMARK */
  int high;
};

static void notes_task(struct svc__task *t) {
  svc_ctx_t *ctx = svc__container_of(t, svc_ctx_t, conn_notes_task);
  struct svc__conn_note *n;

  while ((n = ctx->conn_notes) != NULL) {
    ctx->conn_notes = n->next;
    if (ctx->conn_notes == NULL)
      ctx->conn_notes_tail = NULL;
    if (n->kind == NOTE_STATE && ctx->conn_cb != NULL && !ctx->closing)
      SVC__USER_CB(
          ctx, ctx->conn_cb(ctx, n->endpoint, n->state, n->err, ctx->conn_arg));
    else if (n->kind == NOTE_PUB_WATERMARK && ctx->pub_wm_cb != NULL &&
             !ctx->closing)
      SVC__USER_CB(ctx, ctx->pub_wm_cb(ctx, n->endpoint, n->depth, n->high,
                                       ctx->pub_wm_arg));
    svc__free(n->endpoint);
    svc__free(n);
  }
}

/* Queues a note of conn's for the task: NULL when out of memory. */
static struct svc__conn_note *note_queue(struct svc__conn *conn,
                                         enum note_kind kind) {
  svc_ctx_t *ctx = conn->ctx;
  struct svc__conn_note *n = svc__calloc(1, sizeof(*n));

  if (n == NULL || (n->endpoint = svc__strdup(conn->endpoint)) == NULL) {
    svc__free(n);
    return NULL;
  }
  n->kind = kind;
  if (ctx->conn_notes_tail != NULL)
    ctx->conn_notes_tail->next = n;
  else
    ctx->conn_notes = n;
  ctx->conn_notes_tail = n;
  if (ctx->conn_notes_task.fn == NULL)
    svc__task_init(&ctx->conn_notes_task, notes_task);
  svc__defer(ctx, &ctx->conn_notes_task);
  return n;
}

void svc__conn_state(struct svc__conn *conn, svc_conn_state_t state, int err) {
  svc_ctx_t *ctx = conn->ctx;
  struct svc__conn_note *n;

  if (conn->state == state)
    return;
  conn->state = state;
  conn->metrics->m.conn_state = (uint64_t)state;
  svc__log(ctx, state == SVC_CONN_BACKOFF ? SVC_LOG_WARN : SVC_LOG_INFO,
           "connection", conn->endpoint, NULL, SVC_STATUS_OK, err, 0, NULL,
           "connection %s%s%s", svc_conn_state_name(state),
           err != 0 ? ": " : "", err != 0 ? svc_strerror(err) : "");
  if (ctx->conn_cb == NULL || ctx->closing)
    return;
  /* Out of memory, the state is still readable with svc_conn_state(). */
  if ((n = note_queue(conn, NOTE_STATE)) != NULL) {
    n->state = state;
    n->err = err;
  }
}

int svc__conn_note_watermark(struct svc__conn *conn, size_t depth, int high) {
  svc_ctx_t *ctx = conn->ctx;
  struct svc__conn_note *n;

  if (ctx->pub_wm_cb == NULL || ctx->closing ||
      (n = note_queue(conn, NOTE_PUB_WATERMARK)) == NULL)
    return 0;
  n->depth = depth;
  n->high = high;
  return 1;
}

void svc__conn_notes_free(svc_ctx_t *ctx) {
  struct svc__conn_note *n;

  while ((n = ctx->conn_notes) != NULL) {
    ctx->conn_notes = n->next;
    svc__free(n->endpoint);
    svc__free(n);
  }
  ctx->conn_notes_tail = NULL;
}

void svc_ctx_set_conn_cb(svc_ctx_t *ctx, svc_conn_state_cb cb, void *arg) {
  if (ctx == NULL)
    return;
  ctx->conn_cb = cb;
  ctx->conn_arg = arg;
}

int svc_conn_state(svc_ctx_t *ctx, const char *uri) {
  struct svc__url *url;
  struct svc__list *pos;
  int rc;

  if (ctx == NULL || uri == NULL)
    return SVC_EINVAL;
  rc = svc__url_parse(uri, &url);
  if (rc != 0)
    return rc;
  rc = SVC_ENOENT;
  svc__list_foreach(pos, &ctx->conns) {
    struct svc__conn *conn = svc__container_of(pos, struct svc__conn, link);
    if (!conn->closing && strcmp(conn->endpoint, url->endpoint) == 0 &&
        strcmp(conn->url->scheme, url->scheme) == 0) {
      rc = conn->state != 0 ? (int)conn->state : SVC_CONN_CONNECTING;
      break;
    }
  }
  svc__url_free(url);
  return rc;
}

const char *svc_conn_state_name(svc_conn_state_t state) {
  switch (state) {
  case SVC_CONN_CONNECTING:
    return "connecting";
  case SVC_CONN_CONNECTED:
    return "connected";
  case SVC_CONN_BACKOFF:
    return "backing off";
  case SVC_CONN_CLOSED:
    return "closed";
  }
  return "unknown";
}
