/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

/* One HTTP/1.1 connection. Requests are parsed as they arrive, up to
 * max_pipeline ahead of their answers, and answered strictly in arrival
 * order: each takes a place in c->reqs and is written once it and every
 * request before it are answered. A wait has one timer: header_timeout
 * from a request's first byte to its headers' end, body_timeout for each
 * pause inside a body, idle_timeout between requests, and a short linger
 * for a connection we are closing. Closing is graceful where we choose it
 * (answers out, shutdown, read until the peer's EOF, so that unread bytes
 * do not turn our FIN into a reset) and immediate when the peer went away,
 * in which case the requests still with their handlers are cancelled. */

#define HS_READ_SIZE 65536
/* Longest a connection we close waits for its peer to read and go. */
#define HS_LINGER_MS 2000

/* ---- Buffers. */

void svc__hs_buf_add(struct svc__hs_buf *b, const void *p, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap != 0 ? b->cap : 256;
    char *np;
    while (cap < b->len + n + 1)
      cap *= 2;
    np = svc__realloc(b->p, cap);
    if (np == NULL) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void svc__hs_buf_adds(struct svc__hs_buf *b, const char *s) {
  svc__hs_buf_add(b, s, strlen(s));
}

void svc__hs_buf_addf(struct svc__hs_buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(tmp)) {
    b->oom = 1; /* Only short fixed lines are formatted. */
    return;
  }
  svc__hs_buf_add(b, tmp, (size_t)n);
}

const char *svc__http_reason(int code) {
  switch (code) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 203:
    return "Non-Authoritative Information";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 416:
    return "Range Not Satisfiable";
  case 417:
    return "Expectation Failed";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 499:
    return "Client Closed Request";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Unknown";
  }
}

/* The status an error answer of ours carries in Svc-Status. */
static svc_status_t hs_status_of(int code) {
  switch (code) {
  case 400:
  case 414:
    return SVC_STATUS_INVALID_ARGUMENT;
  case 417:
    return SVC_STATUS_FAILED_PRECONDITION;
  case 500:
    return SVC_STATUS_INTERNAL;
  case 501:
    return SVC_STATUS_UNIMPLEMENTED;
  default:
    return svc_status_from_http(code);
  }
}

static struct svc__hs_conn *hs_conn_of(struct svc__hparse *hp) {
  return hp->owner;
}

static void hs_update(struct svc__hs_conn *c);
static void hs_maybe_shutdown(struct svc__hs_conn *c);

/* ---- Writing. */

struct hs_wr {
  uv_write_t w;
  char *mem;
  size_t len;
  size_t credit;
};

/* What follows a finished write: stream credit back, timeouts restarted,
 * a draining SSE reader refilled, a closing connection shut down. */
static void hs_wrote(struct svc__hs_conn *c, size_t credit) {
  if (credit > 0 && c->stream != NULL)
    svc__stream_on_credit(c->stream, credit);
  if (c->closed)
    return;
  c->since = svc__now_ms(c->hs->srv->ctx);
  if (c->mode == SVC__HS_SSE)
    svc__hs_sse_drained(c);
  hs_maybe_shutdown(c);
  hs_update(c);
}

static void hs_write_cb(uv_write_t *w, int status) {
  struct hs_wr *wr = svc__container_of(w, struct hs_wr, w);
  struct svc__hs_conn *c = w->handle->data;
  size_t credit = wr->credit;

  c->nwrites--;
  c->out_bytes -= wr->len;
  svc__free(wr->mem);
  svc__free(wr);
  if (c->closed)
    return;
  if (status != 0) {
    svc__hs_conn_abort(c);
    return;
  }
  hs_wrote(c, credit);
}

static void hs_wrote_task(struct svc__task *t) {
  struct svc__hs_conn *c = svc__container_of(t, struct svc__hs_conn, wrote_task);
  size_t credit = c->wrote_credit;

  c->wrote_credit = 0;
  if (!c->closed)
    hs_wrote(c, credit);
}

static void hs_abort_task(struct svc__task *t) {
  svc__hs_conn_abort(svc__container_of(t, struct svc__hs_conn, abort_task));
}

int svc__hs_send(struct svc__hs_conn *c, char *buf, size_t len, size_t credit) {
  struct hs_wr *wr;
  uv_buf_t b;
  int rc;

  if (c->closed) {
    svc__free(buf);
    return SVC_ECLOSING;
  }
  /* With nothing queued, write at once: a write request that completes
   * at once still costs libuv an epoll_ctl() per answer (its drain
   * re-arms the watcher), a fifth of a small keep-alive request's syscalls.
   * What follows the write runs on the next tick, as it would after a
   * write callback, never inside the caller. */
  if (c->nwrites == 0) {
    b = uv_buf_init(buf, (unsigned)len);
    rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rc == (int)len) {
      svc__free(buf);
      c->wrote_credit += credit;
      svc__defer(c->hs->srv->ctx, &c->wrote_task);
      return 0;
    }
    if (rc > 0) {
      /* The rest goes through a write request. */
      memmove(buf, buf + rc, len - (size_t)rc);
      len -= (size_t)rc;
    } else if (rc != UV_EAGAIN) {
      svc__free(buf);
      svc__defer(c->hs->srv->ctx, &c->abort_task);
      return rc;
    }
  }
  wr = svc__malloc(sizeof(*wr));
  if (wr == NULL) {
    svc__free(buf);
    svc__defer(c->hs->srv->ctx, &c->abort_task);
    return SVC_ENOMEM;
  }
  wr->mem = buf;
  wr->len = len;
  wr->credit = credit;
  b = uv_buf_init(buf, (unsigned)len);
  rc = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, hs_write_cb);
  if (rc != 0) {
    svc__free(buf);
    svc__free(wr);
    svc__defer(c->hs->srv->ctx, &c->abort_task);
    return rc;
  }
  c->nwrites++;
  c->out_bytes += len;
  return 0;
}

/* ---- Answers in order. */

struct svc__hs_req *svc__hs_req_new(struct svc__hs_conn *c) {
  struct svc__hs_req *hr = svc__calloc(1, sizeof(*hr));

  if (hr == NULL)
    return NULL;
  hr->c = c;
  svc__list_insert_tail(&c->reqs, &hr->link);
  c->nreqs++;
  return hr;
}

static void hs_add_msg_headers(struct svc__hs_buf *b, const svc_msg_t *msg) {
  size_t i;
  size_t n = svc_msg_header_count(msg);
  const char *name;
  const char *value;

  for (i = 0; i < n; i++) {
    char *enc;

    svc_msg_header_at(msg, i, &name, &value);
    if (svc__http_is_control(name))
      continue;
    /* CloudEvents attributes go percent-encoded (the HTTP binding). */
    if (svc__ce_http_encode(name, value, &enc) != 0) {
      b->oom = 1;
      return;
    }
    svc__hs_buf_adds(b, name);
    svc__hs_buf_add(b, ": ", 2);
    svc__hs_buf_adds(b, enc != NULL ? enc : value);
    svc__hs_buf_add(b, "\r\n", 2);
    svc__free(enc);
  }
}

void svc__hs_req_answer(struct svc__hs_req *hr, int code, svc_status_t status,
                        const char *extra, const svc_msg_t *msg,
                        const char *text) {
  struct svc__hs_buf b;
  const void *body = text;
  size_t body_len = text != NULL ? strlen(text) : 0;
  const char *ct = text != NULL ? "text/plain; charset=utf-8" : NULL;

  memset(&b, 0, sizeof(b));
  if (msg != NULL) {
    body = svc_msg_body(msg, &body_len);
    ct = svc_msg_content_type(msg);
  }
  svc__hs_buf_addf(&b, "HTTP/1.1 %d %s\r\n", code, svc__http_reason(code));
  if (status != SVC_STATUS_OK)
    svc__hs_buf_addf(&b, "%s: %s\r\n", SVC__HTTP_H_STATUS,
                     svc_status_name(status));
  if (extra != NULL)
    svc__hs_buf_adds(&b, extra);
  if (msg != NULL)
    hs_add_msg_headers(&b, msg);
  if (code == 204) {
    body_len = 0; /* No body, and no length, by definition. */
  } else {
    if (ct != NULL) {
      svc__hs_buf_adds(&b, "Content-Type: ");
      svc__hs_buf_adds(&b, ct);
      svc__hs_buf_add(&b, "\r\n", 2);
    }
    svc__hs_buf_addf(&b, "Content-Length: %zu\r\n", body_len);
  }
  if (hr->close_after)
    svc__hs_buf_adds(&b, "Connection: close\r\n");
  else if (hr->http10_keep)
    svc__hs_buf_adds(&b, "Connection: keep-alive\r\n");
  svc__hs_buf_add(&b, "\r\n", 2);
  if (!hr->head_only && body_len > 0)
    svc__hs_buf_add(&b, body, body_len);
  if (b.oom) {
    svc__free(b.p);
    memset(&b, 0, sizeof(b));
    hr->close_after = 1;
    svc__hs_buf_adds(&b, "HTTP/1.1 500 Internal Server Error\r\n"
                         "Svc-Status: INTERNAL\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n");
    if (b.oom) {
      svc__free(b.p);
      b.p = NULL;
      b.len = 0;
    }
  }
  hr->out = b.p;
  hr->out_len = b.len;
  hr->ready = 1;
  svc__hs_flush(hr->c);
}

/* Takes the ready answers at the head of c->reqs, up to the first that
 * closes the connection, as one buffer: answers that became ready
 * together (pipelined ones waiting behind a slow one) go out in one
 * write. NULL when none is ready, or with *oom set when memory ran out. */
static char *hs_take_ready(struct svc__hs_conn *c, size_t *len, int *closing,
                           int *oom) {
  struct svc__list *pos;
  struct svc__hs_req *hr;
  size_t total = 0;
  size_t n = 0;
  char *buf;

  *len = 0;
  *closing = 0;
  *oom = 0;
  svc__list_foreach(pos, &c->reqs) {
    hr = svc__container_of(pos, struct svc__hs_req, link);
    if (!hr->ready)
      break;
    if (hr->out == NULL) {
      *oom = 1; /* Out of memory even for a 500. */
      return NULL;
    }
    total += hr->out_len;
    n++;
    if (hr->close_after)
      break;
  }
  if (n == 0)
    return NULL;
  hr = svc__container_of(svc__list_head(&c->reqs), struct svc__hs_req, link);
  if (n == 1) {
    buf = hr->out; /* No copy for one answer. */
  } else {
    buf = svc__malloc(total);
    if (buf == NULL) {
      *oom = 1;
      return NULL;
    }
  }
  while (n-- > 0) {
    pos = svc__list_head(&c->reqs);
    hr = svc__container_of(pos, struct svc__hs_req, link);
    svc__list_remove(pos);
    c->nreqs--;
    if (buf != hr->out) {
      memcpy(buf + *len, hr->out, hr->out_len);
      svc__free(hr->out);
    }
    *len += hr->out_len;
    *closing = hr->close_after;
    svc__free(hr);
  }
  return buf;
}

void svc__hs_flush(struct svc__hs_conn *c) {
  size_t len;
  int closing;
  int oom;
  char *buf;

  if (c->closed)
    return;
  buf = hs_take_ready(c, &len, &closing, &oom);
  if (oom) {
    svc__hs_conn_abort(c);
    return;
  }
  if (buf != NULL) {
    svc__hs_send(c, buf, len, 0);
    if (closing)
      svc__hs_close_soon(c);
  }
  if (c->closed)
    return;
  hs_maybe_shutdown(c);
  /* A slot in the pipeline freed up: parse what is waiting. */
  if (!c->in_process)
    svc__hs_process(c);
}

void svc__hs_close_soon(struct svc__hs_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  c->in_len = 0;
  c->closing_since = svc__now_ms(c->hs->srv->ctx);
  hs_maybe_shutdown(c);
  hs_update(c);
}

void svc__hs_fail(struct svc__hs_conn *c, int code, const char *text) {
  struct svc__hs_req *hr;
  char line[128];

  if (c->closed || c->closing)
    return;
  hr = svc__hs_req_new(c);
  if (hr == NULL) {
    svc__hs_conn_abort(c);
    return;
  }
  hr->close_after = 1;
  c->closing = 1; /* Nothing after this request is parsed. */
  c->in_len = 0;
  c->closing_since = svc__now_ms(c->hs->srv->ctx);
  snprintf(line, sizeof(line), "%s\n", text != NULL ? text : "");
  svc__hs_req_answer(hr, code, hs_status_of(code), NULL, NULL, line);
}

/* ---- Closing. */

static void hs_closed_cb(uv_handle_t *h) {
  struct svc__hs_conn *c = h->data;
  struct svc__https *hs = c->hs;

  svc__list_remove(&c->link);
  if (c->refused)
    hs->nrefused--;
  else
    hs->nconns--;
  svc__hp_free(&c->hp);
  svc__free(c->in);
  svc__free(c);
  svc__hs_maybe_finish(hs);
}

void svc__hs_conn_abort(struct svc__hs_conn *c) {
  svc_ctx_t *ctx = c->hs->srv->ctx;
  struct svc__list *pos;
  struct svc__hs_req *hr;

  if (c->closed)
    return;
  c->closed = 1;
  svc__undefer(ctx, &c->abort_task);
  svc__undefer(ctx, &c->wrote_task);
  svc__timer_stop(ctx, &c->timer);
  uv_read_stop((uv_stream_t *)&c->tcp);
  while ((pos = svc__list_head(&c->reqs)) != NULL) {
    hr = svc__container_of(pos, struct svc__hs_req, link);
    svc__list_remove(pos);
    if (hr->req != NULL) {
      /* The caller went away: the handler's reply will be dropped. */
      hr->req->tp = NULL;
      svc__request_cancel(hr->req);
      svc__free(hr);
    } else if (!hr->ready) {
      hr->c = NULL; /* A publish in the hub: its callback frees hr. */
    } else {
      svc__free(hr->out);
      svc__free(hr);
    }
  }
  c->nreqs = 0;
  if (c->mode == SVC__HS_SSE)
    svc__hs_sse_end(c);
  svc__hs_stream_gone(c);
  uv_close((uv_handle_t *)&c->tcp, hs_closed_cb);
}

static void hs_shutdown_cb(uv_shutdown_t *req, int status) {
  struct svc__hs_conn *c = req->data;

  if (c->closed)
    return;
  if (status != 0) {
    svc__hs_conn_abort(c);
    return;
  }
  c->draining = 1;
  hs_update(c);
}

static void hs_maybe_shutdown(struct svc__hs_conn *c) {
  int rc;

  if (!c->closing || c->closed || c->shutting || c->nreqs > 0 || c->nwrites > 0)
    return;
  c->shutting = 1;
  c->shut.data = c;
  rc = uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, hs_shutdown_cb);
  if (rc != 0)
    svc__hs_conn_abort(c);
}

/* ---- Timeouts and reading. */

static void hs_timer_cb(struct svc__timer *t) {
  struct svc__hs_conn *c = svc__container_of(t, struct svc__hs_conn, timer);

  hs_update(c);
}

/* What the connection waits for, and until when: 0 for nothing. */
enum { HS_WAIT_NONE, HS_WAIT_HEAD, HS_WAIT_BODY, HS_WAIT_IDLE, HS_WAIT_LINGER };

static int hs_wait(const struct svc__hs_conn *c, uint64_t *due) {
  const struct svc__https_opts *o = &c->hs->opts;

  if (c->closing) {
    *due = c->closing_since + HS_LINGER_MS;
    return HS_WAIT_LINGER;
  }
  if (c->mode != SVC__HS_HTTP)
    return HS_WAIT_NONE;
  switch (c->hp.phase) {
  case SVC__HP_HEAD:
    *due = c->since + o->header_timeout_ms;
    return HS_WAIT_HEAD;
  case SVC__HP_BODY:
    if (c->kind == SVC__HSK_STREAM)
      return HS_WAIT_NONE;
    *due = c->since + o->body_timeout_ms;
    return HS_WAIT_BODY;
  default:
    break;
  }
  if (c->nreqs > 0 || c->nwrites > 0)
    return HS_WAIT_NONE;
  *due = c->since + o->idle_timeout_ms;
  return HS_WAIT_IDLE;
}

static void hs_alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  struct svc__hs_conn *c = h->data;

  (void)size;
  if (c->in_cap - c->in_len < HS_READ_SIZE) {
    char *p = svc__realloc(c->in, c->in_len + HS_READ_SIZE);
    if (p == NULL) {
      *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS. */
      return;
    }
    c->in = p;
    c->in_cap = c->in_len + HS_READ_SIZE;
  }
  *buf = uv_buf_init(c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void hs_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct svc__hs_conn *c = st->data;

  (void)buf;
  if (nread == 0 || c->closed)
    return;
  if (nread < 0) {
    /* EOF or an error: the peer is gone (a half-close counts as gone, as
     * in most servers), and so are its unanswered requests. */
    svc__hs_conn_abort(c);
    return;
  }
  if (c->closing || c->mode == SVC__HS_SSE ||
      (c->mode == SVC__HS_STREAM && c->hp.complete)) {
    c->in_len = 0; /* Nothing more is read from this connection. */
    return;
  }
  /* Timeouts restart in svc__hs_process(): at a request's first byte for
   * the headers (trickling bytes do not extend them), at each piece of a
   * body. */
  c->in_len += (size_t)nread;
  svc__hs_process(c);
}

static int hs_want_read(const struct svc__hs_conn *c) {
  if (c->closed)
    return 0;
  if (c->closing || c->mode == SVC__HS_SSE)
    return 1; /* Read and drop, to see the peer go. */
  if (c->mode == SVC__HS_STREAM)
    return !svc__hs_stream_blocked(c);
  return c->nreqs < c->hs->opts.max_pipeline;
}

static void hs_update(struct svc__hs_conn *c) {
  svc_ctx_t *ctx = c->hs->srv->ctx;
  uint64_t due = 0;
  uint64_t now;
  int wait;

  if (c->closed)
    return;
  if (hs_want_read(c) != (int)c->reading) {
    if (!c->reading) {
      if (uv_read_start((uv_stream_t *)&c->tcp, hs_alloc_cb, hs_read_cb) != 0) {
        svc__hs_conn_abort(c);
        return;
      }
      c->reading = 1;
    } else {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
    }
  }
  wait = hs_wait(c, &due);
  if (wait == HS_WAIT_NONE) {
    svc__timer_stop(ctx, &c->timer);
    return;
  }
  now = svc__now_ms(ctx);
  if (now < due) {
    svc__timer_start(ctx, &c->timer, due - now);
    return;
  }
  svc__timer_stop(ctx, &c->timer);
  switch (wait) {
  case HS_WAIT_HEAD:
    svc__hs_fail(c, 408, "request headers took too long");
    break;
  case HS_WAIT_BODY:
    svc__hs_fail(c, 408, "request body stopped arriving");
    break;
  default: /* Idle keep-alive, or a peer that does not go: close. */
    svc__hs_conn_abort(c);
    break;
  }
}

/* ---- Requests. */

static int hs_parse_ms(const char *s, uint64_t *out) {
  uint64_t v = 0;
  size_t i;

  if (s[0] == '\0' || strlen(s) > 15)
    return -1;
  for (i = 0; s[i] != '\0'; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

static int hs_on_head(struct svc__hparse *hp) {
  struct svc__hs_conn *c = hs_conn_of(hp);
  struct svc__https *hs = c->hs;
  const char *url = svc__hp_url(hp);
  const char *expect = svc__hp_get(hp, "Expect");
  const char *v;
  uint64_t len;
  int sse = 0;
  int rc;

  c->head_only = hp->p.method == HTTP_HEAD;
  c->req_timeout = UINT64_MAX;
  if (url[0] != '/')
    return 400; /* Only origin-form targets ("/path?query"). */
  if (expect != NULL && strcasecmp(expect, "100-continue") != 0)
    return 417;
  v = svc__hp_get(hp, SVC__HTTP_H_TIMEOUT);
  if (v != NULL && hs_parse_ms(v, &c->req_timeout) != 0)
    return 400;
  v = svc__hp_get(hp, "Svc-Stream");
  if (v != NULL && strcmp(v, "1") == 0) {
    c->kind = SVC__HSK_STREAM;
    rc = svc__hs_stream_head(c);
  } else if (strncmp(url, hs->opts.topics, strlen(hs->opts.topics)) == 0 &&
             (rc = svc__hs_hub_head(c, &sse)) >= 0) {
    c->kind = sse ? SVC__HSK_SSE : SVC__HSK_PUB;
  } else {
    c->kind = SVC__HSK_CALL;
    rc = SVC__HP_BUFFER;
  }
  if (rc >= 400)
    return rc;
  len = svc__hp_content_length(hp);
  if (rc == SVC__HP_BUFFER && len != UINT64_MAX && len > hs->opts.max_body)
    return 413;
  /* The body will be taken: tell a client that waits for it to send it.
   * The interim answer takes its place in the answer order, so that it
   * follows the answers to requests before this one. */
  if (expect != NULL && len != 0) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct svc__hs_req *hr = svc__hs_req_new(c);
    if (hr == NULL)
      return 500;
    hr->out = svc__malloc(sizeof(cont) - 1);
    if (hr->out == NULL) {
      svc__list_remove(&hr->link);
      c->nreqs--;
      svc__free(hr);
      return 500;
    }
    memcpy(hr->out, cont, sizeof(cont) - 1);
    hr->out_len = sizeof(cont) - 1;
    hr->ready = 1;
    svc__hs_flush(c);
  }
  return rc;
}

static int hs_on_body(struct svc__hparse *hp, const char *p, size_t n) {
  return svc__hs_stream_body(hs_conn_of(hp), p, n);
}

static int hs_on_chunk_end(struct svc__hparse *hp) {
  return svc__hs_stream_chunk_end(hs_conn_of(hp));
}

static const struct svc__hp_cbs hs_hp_cbs = {
    .on_head = hs_on_head,
    .on_body = hs_on_body,
    .on_chunk_end = hs_on_chunk_end,
};

struct svc__hs_req *svc__hs_req_take(struct svc__hs_conn *c,
                                     svc_msg_t **msg) {
  struct svc__hparse *hp = &c->hp;
  struct svc__hs_req *hr;
  size_t len;
  char *body;
  int code = 500;

  body = svc__hp_take_body(hp, &len);
  *msg = svc__hp_message(hp, body, len, &code);
  if (*msg == NULL) {
    svc__hs_fail(c, code,
                 code == 431 ? "request headers too large"
                             : "request headers not accepted");
    return NULL;
  }
  hr = svc__hs_req_new(c);
  if (hr == NULL) {
    svc_msg_free(*msg);
    *msg = NULL;
    svc__hs_fail(c, 500, "out of memory");
    return NULL;
  }
  hr->close_after = !hp->keep_alive || hp->upgrade;
  hr->http10_keep = hp->keep_alive && hp->p.http_minor == 0;
  return hr;
}

static void hs_call(struct svc__hs_conn *c) {
  struct svc_server_s *srv = c->hs->srv;
  struct svc__hparse *hp = &c->hp;
  struct svc__hs_req *hr;
  struct svc_request_s *req;
  svc_msg_t *msg;
  const char *method = c->head_only ? "GET" : svc__hp_method(hp);
  uint64_t deadline = 0;

  hr = svc__hs_req_take(c, &msg);
  if (hr == NULL)
    return;
  hr->head_only = c->head_only;
  if (c->req_timeout != UINT64_MAX)
    deadline = svc__now_ms(srv->ctx) + c->req_timeout;
  /* The core's path: the request-target without its '/', query kept. */
  req = svc__request_new(srv, method, svc__hp_url(hp) + 1, msg, deadline);
  if (req == NULL) {
    svc__hs_req_answer(hr, 500, SVC_STATUS_INTERNAL, NULL, NULL,
                       "out of memory\n");
    return;
  }
  hr->req = req;
  req->tp = hr;
  svc__server_dispatch(srv, req);
}

/* A whole request was read. */
static void hs_on_complete(struct svc__hs_conn *c) {
  struct svc__hparse *hp = &c->hp;
  int last = !hp->keep_alive || hp->upgrade;

  switch (c->kind) {
  case SVC__HSK_CALL:
    hs_call(c);
    break;
  case SVC__HSK_PUB:
  case SVC__HSK_SSE:
    svc__hs_hub_request(c, c->kind == SVC__HSK_SSE);
    break;
  case SVC__HSK_STREAM:
    svc__hs_stream_body_end(c);
    break;
  }
  if (c->closed)
    return;
  if (c->mode != SVC__HS_HTTP || c->closing)
    return; /* The connection is this stream's now, or ending. */
  if (last) {
    c->closing = 1; /* Answer what was asked, then close. */
    c->in_len = 0;
    c->closing_since = svc__now_ms(c->hs->srv->ctx);
    hs_maybe_shutdown(c);
    return;
  }
  svc__hp_next(hp);
}

void svc__hs_process(struct svc__hs_conn *c) {
  struct svc__hparse *hp = &c->hp;
  enum svc__hp_phase before;
  size_t n;

  if (c->closed || c->in_process)
    return;
  c->in_process = 1;
  while (!c->closed && !c->closing && c->in_len > 0) {
    if (c->mode == SVC__HS_SSE) {
      c->in_len = 0;
      break;
    }
    if (c->mode == SVC__HS_HTTP && c->nreqs >= c->hs->opts.max_pipeline)
      break;
    if (c->mode == SVC__HS_STREAM &&
        (svc__hs_stream_blocked(c) || hp->complete))
      break;
    before = hp->phase;
    n = svc__hp_feed(hp, c->in, c->in_len);
    if (c->closed || c->closing) {
      c->in_len = 0; /* Ended from a callback: the rest is dropped. */
      break;
    }
    if (n > 0) {
      memmove(c->in, c->in + n, c->in_len - n);
      c->in_len -= n;
    }
    if (hp->phase != before || hp->phase == SVC__HP_BODY)
      c->since = svc__now_ms(c->hs->srv->ctx);
    if (hp->err_code != 0) {
      if (c->mode == SVC__HS_STREAM) {
        svc__hs_conn_abort(c); /* The answer has begun: only a reset. */
        break;
      }
      svc__hs_fail(c, hp->err_code, hp->err_text);
      break;
    }
    if (hp->complete) {
      hs_on_complete(c);
      continue;
    }
    if (n == 0)
      break;
  }
  c->in_process = 0;
  hs_update(c);
}

/* ---- Accepting. */

void svc__hs_accept(struct svc__https *hs) {
  struct svc__hs_conn *c = svc__calloc(1, sizeof(*c));
  svc_ctx_t *ctx = hs->srv->ctx;

  if (c == NULL)
    return;
  if (uv_tcp_init(ctx->loop, &c->tcp) != 0) {
    svc__free(c);
    return;
  }
  c->hs = hs;
  c->tcp.data = c;
  svc__list_init(&c->reqs);
  svc__list_init(&c->pending);
  svc__timer_init(&c->timer, hs_timer_cb);
  svc__task_init(&c->abort_task, hs_abort_task);
  svc__task_init(&c->wrote_task, hs_wrote_task);
  svc__timer_init(&c->ping, NULL);
  svc__hp_init(&c->hp, &hs_hp_cbs, c);
  c->hp.max_header_bytes = hs->opts.max_header_bytes;
  c->hp.max_headers = hs->opts.max_headers;
  c->hp.max_url = hs->opts.max_url;
  c->hp.max_body = hs->opts.max_body;
  c->since = svc__now_ms(ctx);
  svc__list_insert_tail(&hs->conns, &c->link);
  if (hs->nconns >= hs->opts.max_conns) {
    c->refused = 1;
    hs->nrefused++;
  } else {
    hs->nconns++;
  }
  if (uv_accept((uv_stream_t *)hs->listener, (uv_stream_t *)&c->tcp) != 0) {
    svc__hs_conn_abort(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (c->refused) {
    /* A clear refusal, unless refusals pile up too. */
    if (hs->nrefused > hs->opts.max_conns) {
      svc__hs_conn_abort(c);
      return;
    }
    svc__hs_fail(c, 503, "too many connections");
  }
  hs_update(c);
}
