/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http_server.h"

#include <stdio.h>
#include <stdlib.h>

/* Streams over HTTP/1.1 (docs/http.md, "Streams"): a request with
 * Svc-Stream: 1 opens one; its body (normally chunked) is the data the
 * opener sends, one message per chunk, and the answer (200, chunked) is
 * what we send, one chunk per message. There are no credit frames: our
 * side of the flow control is TCP's. Data goes to the core only while it
 * fits in our window; the rest waits here (at most one read) and the
 * socket is not read until the application consumed enough. Our sends get
 * their credit back as each write completes, so what sits in the socket's
 * queue is bounded by the opener's window. The stream takes the
 * connection for its lifetime. */

/* Larger chunks are handed over in pieces of this size. */
#define HS_STREAM_MSG_MAX 65536
#define HS_STREAM_WINDOW_DEFAULT (256 * 1024)

struct hs_pending {
  struct svc__list link;
  svc_msg_t *msg;
  size_t cost;
};

static void hs_pending_free_all(struct svc__hs_conn *c) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&c->pending)) != NULL) {
    struct hs_pending *p = svc__container_of(pos, struct hs_pending, link);
    svc__list_remove(pos);
    svc_msg_free(p->msg);
    svc__free(p);
  }
  c->pending_bytes = 0;
  svc__free(c->chunk);
  c->chunk = NULL;
  c->chunk_len = 0;
}

/* Hands what fits in the window to the core, then the end when due. */
static void hs_stream_pump(struct svc__hs_conn *c) {
  struct svc__list *pos;

  while (c->stream != NULL && c->stream->accepted &&
         (pos = svc__list_head(&c->pending)) != NULL) {
    struct hs_pending *p = svc__container_of(pos, struct hs_pending, link);
    if (c->outstanding > 0 && c->outstanding + p->cost > c->stream->window)
      return;
    svc__list_remove(pos);
    c->pending_bytes -= p->cost;
    c->outstanding += p->cost;
    svc__stream_on_data(c->stream, p->msg);
    svc__free(p);
  }
  if (c->stream != NULL && c->stream->accepted && c->body_ended &&
      !c->end_given && svc__list_empty(&c->pending)) {
    c->end_given = 1;
    svc__stream_on_end(c->stream);
  }
}

static void hs_chunk_free(void *p) {
  svc__free(p);
}

/* The gathered bytes become one data message. */
static int hs_stream_emit(struct svc__hs_conn *c) {
  struct hs_pending *p;
  svc_msg_t *msg;

  if (c->chunk_len == 0)
    return 0;
  p = svc__malloc(sizeof(*p));
  msg = svc_msg_new_take(c->chunk, c->chunk_len, hs_chunk_free);
  if (p == NULL || msg == NULL) {
    svc__free(p);
    return 500;
  }
  c->chunk = NULL;
  c->chunk_len = 0;
  p->msg = msg;
  p->cost = svc__msg_cost(msg);
  svc__list_insert_tail(&c->pending, &p->link);
  c->pending_bytes += p->cost;
  hs_stream_pump(c);
  return 0;
}

int svc__hs_stream_head(struct svc__hs_conn *c) {
  struct svc__hparse *hp = &c->hp;
  struct svc_stream_s *s;
  const char *v = svc__hp_get(hp, "Svc-Window");
  size_t window = HS_STREAM_WINDOW_DEFAULT;
  svc_msg_t *headers;
  int code = 500;

  if (c->nreqs > 0)
    return 400; /* It takes the connection: not behind other answers. */
  if (c->hs->closing)
    return 503;
  if (v != NULL) {
    char *end;
    unsigned long long w = strtoull(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || w == 0 || w > UINT32_MAX)
      return 400;
    window = (size_t)w;
  }
  headers = svc__hp_message(hp, NULL, 0, &code);
  if (headers == NULL)
    return code;
  s = svc__stream_incoming(c->hs->srv, svc__hp_url(hp) + 1, headers, window);
  svc_msg_free(headers);
  if (s == NULL)
    return 500;
  s->tp = c;
  c->stream = s;
  c->mode = SVC__HS_STREAM;
  return SVC__HP_STREAM;
}

int svc__hs_stream_body(struct svc__hs_conn *c, const char *p, size_t n) {
  int chunked = (c->hp.p.flags & F_CHUNKED) != 0;

  if (c->stream == NULL)
    return 0; /* Reset: the rest of the body is dropped. */
  while (n > 0) {
    size_t take = HS_STREAM_MSG_MAX - c->chunk_len;
    char *b;
    if (take > n)
      take = n;
    if (c->chunk == NULL) {
      c->chunk = svc__malloc(chunked ? HS_STREAM_MSG_MAX : take);
      if (c->chunk == NULL)
        return 500;
    }
    b = c->chunk;
    memcpy(b + c->chunk_len, p, take);
    c->chunk_len += take;
    p += take;
    n -= take;
    /* Without chunks, each piece read is a message. */
    if ((c->chunk_len == HS_STREAM_MSG_MAX || !chunked) &&
        hs_stream_emit(c) != 0)
      return 500;
    if (c->stream == NULL)
      return 0;
  }
  return 0;
}

int svc__hs_stream_chunk_end(struct svc__hs_conn *c) {
  if (c->stream == NULL)
    return 0;
  return hs_stream_emit(c);
}

void svc__hs_stream_body_end(struct svc__hs_conn *c) {
  if (c->stream == NULL)
    return;
  if (hs_stream_emit(c) != 0) {
    svc__hs_conn_abort(c);
    return;
  }
  c->body_ended = 1;
  hs_stream_pump(c);
}

int svc__hs_stream_blocked(const struct svc__hs_conn *c) {
  if (c->stream == NULL)
    return 0;
  if (c->pending_bytes > 0)
    return 1;
  return c->stream->accepted && c->outstanding >= c->stream->window;
}

void svc__hs_stream_gone(struct svc__hs_conn *c) {
  struct svc_stream_s *s = c->stream;

  hs_pending_free_all(c);
  if (s == NULL)
    return;
  c->stream = NULL;
  s->tp = NULL;
  svc__stream_on_reset(s, SVC_ECONNRESET);
}

/* ---- Operations. */

void svc__https_stream_accept(struct svc_stream_s *s) {
  struct svc__hs_conn *c = s->tp;
  struct svc__hs_buf b;

  if (c == NULL)
    return;
  memset(&b, 0, sizeof(b));
  svc__hs_buf_addf(&b,
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: application/octet-stream\r\n"
                   "Trailer: Svc-Status\r\n"
                   "Svc-Window: %zu\r\n\r\n",
                   s->window);
  if (b.oom) {
    svc__free(b.p);
    svc__hs_conn_abort(c);
    return;
  }
  if (svc__hs_send(c, b.p, b.len, 0) != 0)
    return;
  hs_stream_pump(c);
  if (c->stream != NULL)
    svc__hs_process(c);
}

void svc__https_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  struct svc__hs_conn *c = s->tp;
  struct svc__hs_buf b;
  size_t cost = svc__msg_cost(msg);
  size_t len;
  const void *body = svc_msg_body(msg, &len);

  if (c == NULL) {
    svc_msg_free(msg);
    return;
  }
  memset(&b, 0, sizeof(b));
  /* An empty message has no chunk (that would end the body): nothing is
   * written, and its credit comes back like any other's. */
  if (len > 0) {
    svc__hs_buf_addf(&b, "%zx\r\n", len);
    svc__hs_buf_add(&b, body, len);
    svc__hs_buf_add(&b, "\r\n", 2);
  }
  svc_msg_free(msg);
  if (b.oom) {
    svc__free(b.p);
    svc__hs_conn_abort(c);
    return;
  }
  svc__hs_send(c, b.p, b.len, cost);
}

void svc__https_stream_send_end(struct svc_stream_s *s) {
  struct svc__hs_conn *c = s->tp;
  /* The last chunk carries the trailer Svc-Status: a client sees our end
   * at once, while its own upload may go on (HTTP/1.1 allows a request
   * body to continue after the response); without it libcurl would tell
   * only when the whole exchange is over. */
  static const char last[] = "0\r\nSvc-Status: OK\r\n\r\n";
  char *b;

  if (c == NULL)
    return;
  b = svc__malloc(sizeof(last) - 1);
  if (b == NULL) {
    svc__hs_conn_abort(c);
    return;
  }
  memcpy(b, last, sizeof(last) - 1);
  svc__hs_send(c, b, sizeof(last) - 1, 0);
}

void svc__https_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  struct svc__hs_conn *c = s->tp;

  if (c == NULL)
    return;
  c->outstanding -= bytes < c->outstanding ? bytes : c->outstanding;
  hs_stream_pump(c);
  if (c->stream != NULL)
    svc__hs_process(c); /* Read again, and parse what waited. */
}

void svc__https_stream_send_reset(struct svc_stream_s *s) {
  struct svc__hs_conn *c = s->tp;
  int accepted = s->accepted;

  if (c == NULL)
    return;
  s->tp = NULL;
  c->stream = NULL;
  hs_pending_free_all(c);
  if (accepted) {
    svc__hs_conn_abort(c); /* The answer has begun: only a reset is left. */
    return;
  }
  /* Refused before the answer began: say why. A stream that matched a
   * route has its parameters, so one without was not routed. */
  if (c->hs->closing || s->server->closing)
    svc__hs_fail(c, 503, "server closing");
  else if (s->params == NULL)
    svc__hs_fail(c, 404, "no stream route");
  else
    svc__hs_fail(c, 500, "stream refused");
}

void svc__https_stream_release(struct svc_stream_s *s) {
  struct svc__hs_conn *c = s->tp;

  if (c == NULL)
    return;
  s->tp = NULL;
  c->stream = NULL;
  hs_pending_free_all(c);
  svc__hs_close_soon(c); /* Both directions ended: the connection too. */
}
