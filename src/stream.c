/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fault.h"

/* Streams: ordered messages both ways with credit-based flow control, the
 * same on every backend. Each side has a receive window; a sender spends
 * credit (svc__msg_cost() per message) and waits when it runs out; the
 * receiver returns credit as the application consumes, so a paused or slow
 * reader holds at most one window of the writer's data, and the writer
 * holds at most its send_buffer before svc_stream_write() says EAGAIN. */

/* 1 MiB of receive window keeps a loopback or LAN pipe full (256 KiB
 * measured 20-30 % slower on bulk transfers); it is also the most one
 * stream's peer can make us hold. */
#define STREAM_DEFAULT_WINDOW (1024 * 1024)
#define STREAM_DEFAULT_SEND_BUFFER (256 * 1024)

struct svc__write {
  struct svc__list link;
  svc_msg_t *msg;
  size_t cost;
  svc_write_cb cb;
  svc_stream_report_cb report_cb; /* Instead of cb: ends when consumed. */
  void *arg;
  int status;
  uint64_t end; /* sent_total once it was sent. */
};


static void stream_task(struct svc__task *t);
static void stream_pump(struct svc_stream_s *s);

/* The backend that carries this side of the stream. */
static const struct svc__transport *stream_ops(const struct svc_stream_s *s) {
  return s->conn != NULL ? s->conn->ops : s->server->ops;
}

static struct svc_stream_s *stream_new(svc_ctx_t *ctx) {
  struct svc_stream_s *s = svc__calloc(1, sizeof(*s));

  if (s == NULL)
    return NULL;
  s->ctx = ctx;
  svc__list_init(&s->link);
  svc__list_init(&s->sndq);
  svc__list_init(&s->rcvq);
  svc__list_init(&s->done_writes);
  svc__list_init(&s->unacked_writes);
  svc__task_init(&s->task, stream_task);
  return s;
}

static void stream_set_sizes(struct svc_stream_s *s,
                             const svc_stream_opts_t *opts) {
  s->window = opts != NULL && opts->window ? opts->window
                                           : STREAM_DEFAULT_WINDOW;
  s->send_buffer = opts != NULL && opts->send_buffer
                       ? opts->send_buffer
                       : STREAM_DEFAULT_SEND_BUFFER;
}

static void write_list_free(struct svc__list *list) {
  struct svc__list *pos;

  while ((pos = svc__list_head(list)) != NULL) {
    struct svc__write *w = svc__container_of(pos, struct svc__write, link);
    svc__list_remove(pos);
    svc_msg_free(w->msg);
    svc__free(w);
  }
}

static void stream_free(struct svc_stream_s *s) {
  svc__undefer(s->ctx, &s->task);
  svc__list_remove(&s->link);
  write_list_free(&s->sndq);
  write_list_free(&s->rcvq);
  write_list_free(&s->done_writes);
  write_list_free(&s->unacked_writes);
  svc_msg_free(s->open_headers);
  svc__params_free(s->params);
  svc__free(s->path);
  svc__free(s);
}

/* Ends the stream: pending writes fail with status, unread data is
 * dropped, and on_close is queued. */
static void stream_finish(struct svc_stream_s *s, int status) {
  struct svc__list *pos;

  if (s->finished)
    return;
  s->finished = 1;
  s->close_status = status;
  /* Sent and not yet consumed: a clean end means the peer read them all;
   * any other end, that they may be lost. */
  while ((pos = svc__list_head(&s->unacked_writes)) != NULL) {
    struct svc__write *w = svc__container_of(pos, struct svc__write, link);
    svc__list_remove(pos);
    w->status = status;
    if (status != 0)
      s->metrics->m.writes_dropped++;
    svc__list_insert_tail(&s->done_writes, pos);
  }
  while ((pos = svc__list_head(&s->sndq)) != NULL) {
    struct svc__write *w = svc__container_of(pos, struct svc__write, link);
    svc__list_remove(pos);
    s->sndq_bytes -= w->cost;
    s->metrics->m.queue_depth--;
    w->status = status != 0 ? status : SVC_ECANCELED;
    s->metrics->m.writes_dropped++;
    svc__list_insert_tail(&s->done_writes, pos);
  }
  while ((pos = svc__list_head(&s->rcvq)) != NULL) {
    struct svc__write *w = svc__container_of(pos, struct svc__write, link);
    svc__list_remove(pos);
    s->metrics->m.queue_depth--;
    svc_msg_free(w->msg);
    svc__free(w);
  }
  s->rcvq_bytes = 0;
  svc__defer(s->ctx, &s->task);
}

static void stream_check_clean_end(struct svc_stream_s *s) {
  if (!s->finished && s->end_sent && s->end_delivered &&
      svc__list_empty(&s->sndq) && svc__list_empty(&s->done_writes))
    stream_finish(s, 0);
}

/* Sends what the peer's credit allows, then the end when everything is
 * out. A message larger than the whole window may go when nothing else is
 * outstanding, or it could never be sent. */
static void stream_pump(struct svc_stream_s *s) {
  struct svc__list *pos;
  struct svc__write *w;

  if (!s->open || s->tp_done || s->finished)
    return;
  while ((pos = svc__list_head(&s->sndq)) != NULL) {
    w = svc__container_of(pos, struct svc__write, link);
    if (w->cost > s->credit && s->credit < s->peer_window)
      break;
    if (w->cost > s->credit && s->credit == 0)
      break;
    svc__list_remove(pos);
    s->sndq_bytes -= w->cost;
    s->credit -= w->cost < s->credit ? w->cost : s->credit;
    s->metrics->m.queue_depth--;
    s->metrics->m.msgs_out++;
    s->metrics->m.bytes_out += svc_msg_len(w->msg);
    stream_ops(s)->stream_send(s, svc__msg_ref(w->msg));
    if (s->finished || s->tp_done) {
      /* The transport failed the stream while sending: this write did not
       * go out either, and its callback is owed like the others'. */
      w->status = s->close_status != 0 ? s->close_status : SVC_ECONNRESET;
      s->metrics->m.writes_dropped++;
      svc__list_insert_tail(&s->done_writes, pos);
      svc__defer(s->ctx, &s->task);
      return;
    }
    w->status = 0;
    s->sent_total += w->cost;
    if (w->report_cb != NULL) {
      w->end = s->sent_total; /* Done once the peer's credit covers it. */
      svc__list_insert_tail(&s->unacked_writes, pos);
      continue;
    }
    svc__list_insert_tail(&s->done_writes, pos);
    svc__defer(s->ctx, &s->task);
  }
  if (s->local_ended && !s->end_sent && svc__list_empty(&s->sndq)) {
    s->end_sent = 1;
    stream_ops(s)->stream_send_end(s);
  }
  if (s->want_writable && s->sndq_bytes < s->send_buffer / 2)
    svc__defer(s->ctx, &s->task);
}

/* Returns consumed bytes to the peer; batched so that a busy stream sends
 * one credit frame per loop turn, not one per message. */
static void stream_return_credit(struct svc_stream_s *s) {
  if (s->unacked == 0 || s->tp_done || s->finished)
    return;
  if (s->unacked >= s->window / 4 || svc__list_empty(&s->rcvq)) {
    size_t bytes = s->unacked;
    /* Zeroed first: an in-process peer answers the credit with data from
     * inside this call. */
    s->unacked = 0;
    stream_ops(s)->stream_send_credit(s, bytes);
  }
}

static void stream_deliver(struct svc_stream_s *s) {
  svc_ctx_t *ctx = s->ctx;
  struct svc__list *pos;
  struct svc__list *last = s->rcvq.prev;
  struct svc__write *w;
  int more = 1;

  /* Only what was queued when this turn began, so I/O is not starved. */
  while (more && !s->paused && !s->finished &&
         (pos = svc__list_head(&s->rcvq)) != NULL) {
    more = pos != last;
    w = svc__container_of(pos, struct svc__write, link);
    svc__list_remove(pos);
    s->rcvq_bytes -= w->cost;
    s->unacked += w->cost;
    s->metrics->m.queue_depth--;
    if (s->cbs.on_data != NULL)
      SVC__USER_CB(ctx, s->cbs.on_data(s, w->msg, s->arg));
    svc_msg_free(w->msg);
    svc__free(w);
  }
  stream_return_credit(s);
  if (!svc__list_empty(&s->rcvq) && !s->paused && !s->finished)
    svc__defer(ctx, &s->task);
}

static void write_report(struct svc_stream_s *s, struct svc__write *w) {
  svc_delivery_t d;

  memset(&d, 0, sizeof(d));
  d.state = w->status == 0 ? SVC_DELIVERY_ACKED : SVC_DELIVERY_DROPPED;
  d.reason = svc__drop_reason(w->status);
  d.err = w->status;
  SVC__USER_CB(s->ctx, w->report_cb(s, &d, w->arg));
}

static void stream_task(struct svc__task *t) {
  struct svc_stream_s *s = svc__container_of(t, struct svc_stream_s, task);
  svc_ctx_t *ctx = s->ctx;
  struct svc__list *pos;
  struct svc__write *w;

  if (s->server != NULL && !s->accepted && !s->routed && !s->finished) {
    s->routed = 1;
    svc__server_route_stream(s->server, s);
  }
  while ((pos = svc__list_head(&s->done_writes)) != NULL) {
    w = svc__container_of(pos, struct svc__write, link);
    svc__list_remove(pos);
    if (w->report_cb != NULL)
      write_report(s, w);
    else if (w->cb != NULL)
      SVC__USER_CB(ctx, w->cb(s, w->status, w->arg));
    svc_msg_free(w->msg);
    svc__free(w);
  }
  if (s->accepted || s->server == NULL) {
    stream_deliver(s);
    if (s->remote_ended && svc__list_empty(&s->rcvq) && !s->end_delivered &&
        !s->paused && !s->finished) {
      s->end_delivered = 1;
      if (s->cbs.on_end != NULL)
        SVC__USER_CB(ctx, s->cbs.on_end(s, s->arg));
    }
    if (s->want_writable && !s->finished &&
        s->sndq_bytes < s->send_buffer / 2) {
      s->want_writable = 0;
      if (s->cbs.on_writable != NULL)
        SVC__USER_CB(ctx, s->cbs.on_writable(s, s->arg));
    }
    stream_check_clean_end(s);
  }
  if (s->finished && svc__list_empty(&s->done_writes) && !s->task.queued) {
    if (s->close_status != 0 && s->close_status != SVC_ECANCELED)
      svc__log(ctx, SVC_LOG_WARN, "stream",
               s->metrics != NULL ? s->metrics->m.endpoint : "", s->path,
               SVC_STATUS_OK, s->close_status, 0, NULL,
               "stream closed: %s", svc_strerror(s->close_status));
    if (s->cbs.on_close != NULL)
      SVC__USER_CB(ctx, s->cbs.on_close(s, s->close_status, s->arg));
    if (!s->tp_done) {
      assert(s->fw == NULL); /* A held open ends only by a reset. */
      s->tp_done = 1;
      stream_ops(s)->stream_release(s);
    }
    stream_free(s);
  }
}

/* ---- Transport reports. */

void svc__stream_on_open(struct svc_stream_s *s, size_t peer_window) {
  if (s->finished || s->open)
    return;
  s->open = 1;
  s->peer_window = peer_window;
  s->credit = peer_window;
  stream_pump(s);
}

void svc__stream_on_data(struct svc_stream_s *s, svc_msg_t *msg) {
  struct svc__write *w;

  if (s->finished || s->remote_ended) {
    svc_msg_free(msg);
    return;
  }
  w = svc__calloc(1, sizeof(*w));
  if (w == NULL) {
    svc_msg_free(msg);
    svc_stream_reset(s);
    return;
  }
  w->msg = msg;
  w->cost = svc__msg_cost(msg);
  /* A peer that ignores our window would grow our memory without bound:
   * that is a protocol error, and the stream ends. */
  if (s->rcvq_bytes + s->unacked > 0 &&
      s->rcvq_bytes + s->unacked + w->cost > s->window) {
    svc_msg_free(msg);
    svc__free(w);
    stream_ops(s)->stream_send_reset(s);
    s->tp_done = 1;
    stream_finish(s, SVC_EPROTO);
    return;
  }
  svc__list_insert_tail(&s->rcvq, &w->link);
  s->rcvq_bytes += w->cost;
  s->metrics->m.queue_depth++;
  s->metrics->m.msgs_in++;
  s->metrics->m.bytes_in += svc_msg_len(msg);
  if (!s->paused)
    svc__defer(s->ctx, &s->task);
}

void svc__stream_on_end(struct svc_stream_s *s) {
  if (s->finished || s->remote_ended)
    return;
  s->remote_ended = 1;
  svc__defer(s->ctx, &s->task);
}

void svc__stream_on_credit(struct svc_stream_s *s, size_t bytes) {
  struct svc__list *pos;

  if (s->finished)
    return;
  /* Credit comes back as the peer's application consumes: the writes it
   * covers have been read. */
  s->acked_total += bytes;
  while ((pos = svc__list_head(&s->unacked_writes)) != NULL) {
    struct svc__write *w = svc__container_of(pos, struct svc__write, link);
    if (w->end > s->acked_total)
      break;
    svc__list_remove(pos);
    svc__list_insert_tail(&s->done_writes, pos);
    svc__defer(s->ctx, &s->task);
  }
  s->credit = bytes > s->peer_window - s->credit ? s->peer_window
                                                 : s->credit + bytes;
  stream_pump(s);
}

void svc__stream_on_reset(struct svc_stream_s *s, int err) {
  s->tp_done = 1;
  stream_finish(s, err != 0 ? err : SVC_ECONNRESET);
}

/* ---- Public API. */

static int stream_add_headers(struct svc_stream_s *s,
                              const svc_stream_opts_t *opts) {
  s->open_headers = svc_msg_new(NULL, 0);
  if (s->open_headers == NULL)
    return SVC_ENOMEM;
  if (opts != NULL && opts->nheaders > 0) {
    int rc =
        svc__msg_add_pairs(s->open_headers, opts->headers, opts->nheaders);
    if (rc != 0)
      return rc;
  }
  /* A stream continues the caller's trace or starts one, like a call. */
  return svc__trace_stamp(s->ctx, s->open_headers,
                          s->ctx->opts.trace == SVC_TRACE_CALLS ||
                              s->ctx->opts.trace == SVC_TRACE_ALL,
                          NULL) < 0
             ? SVC_ENOMEM
             : 0;
}

int svc_stream(svc_ctx_t *ctx, const char *uri, const svc_stream_opts_t *opts,
               const svc_stream_cbs_t *cbs, void *arg, svc_stream_t **out) {
  struct svc__url *url;
  struct svc__conn *conn;
  struct svc_stream_s *s;
  int rc;

  if (ctx == NULL || uri == NULL || out == NULL ||
      (opts != NULL && opts->nheaders > 0 && opts->headers == NULL))
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  rc = svc__verb_target(ctx, uri, &url, &conn);
  if (rc != 0)
    return rc;
  if (conn->ops->stream_open == NULL) {
    svc__url_free(url);
    return SVC_ENOTSUP;
  }
  s = stream_new(ctx);
  if (s == NULL) {
    svc__url_free(url);
    return SVC_ENOMEM;
  }
  s->conn = conn;
  s->metrics = conn->metrics;
  s->path = svc__strdup(url->path_raw); /* url may be shared. */
  svc__url_free(url);
  if (cbs != NULL)
    s->cbs = *cbs;
  s->arg = arg;
  stream_set_sizes(s, opts);
  rc = stream_add_headers(s, opts);
  if (rc != 0 || s->path == NULL) {
    stream_free(s);
    return rc != 0 ? rc : SVC_ENOMEM;
  }
  svc__list_insert_tail(&ctx->streams, &s->link);
  rc = conn->fw != NULL ? svc__fwrap_stream_open(conn, s)
                        : conn->ops->stream_open(conn, s);
  if (rc != 0) {
    s->tp_done = 1;
    stream_free(s);
    return rc;
  }
  s->metrics->m.streams++;
  *out = s;
  return 0;
}

struct svc_stream_s *svc__stream_incoming(struct svc_server_s *srv,
                                          const char *path,
                                          const svc_msg_t *open_headers,
                                          size_t peer_window) {
  struct svc_stream_s *s = stream_new(srv->ctx);

  if (s == NULL)
    return NULL;
  s->server = srv;
  s->metrics = srv->metrics;
  s->path = svc__strdup(path);
  s->open_headers = open_headers != NULL ? svc_msg_dup(open_headers)
                                         : svc_msg_new(NULL, 0);
  if (s->path == NULL || s->open_headers == NULL) {
    stream_free(s);
    return NULL;
  }
  s->peer_window = peer_window;
  s->credit = peer_window;
  s->metrics->m.streams++;
  svc__list_insert_tail(&srv->ctx->streams, &s->link);
  svc__defer(srv->ctx, &s->task);
  return s;
}

int svc_stream_accept(svc_stream_t *s, const svc_stream_opts_t *opts,
                      const svc_stream_cbs_t *cbs, void *arg) {
  if (s == NULL || s->server == NULL || s->accepted)
    return SVC_EINVAL;
  if (s->finished)
    return SVC_ECLOSING;
  s->accepted = 1;
  s->open = 1;
  if (cbs != NULL)
    s->cbs = *cbs;
  s->arg = arg;
  stream_set_sizes(s, opts);
  s->server->ops->stream_accept(s);
  stream_pump(s);
  svc__defer(s->ctx, &s->task);
  return 0;
}

static int stream_write(svc_stream_t *s, svc_msg_t *msg, svc_write_cb cb,
                        svc_stream_report_cb report_cb, void *arg) {
  struct svc__write *w;

  if (s == NULL || (s->server != NULL && !s->accepted))
    return SVC_EINVAL;
  if (s->finished)
    return SVC_ECLOSING;
  if (s->local_ended)
    return SVC_EPIPE;
  if (s->sndq_bytes >= s->send_buffer) {
    s->want_writable = 1;
    return SVC_EAGAIN;
  }
  w = svc__calloc(1, sizeof(*w));
  if (w == NULL)
    return SVC_ENOMEM;
  w->msg = msg != NULL ? msg : svc_msg_new(NULL, 0);
  if (w->msg == NULL) {
    svc__free(w);
    return SVC_ENOMEM;
  }
  w->cost = svc__msg_cost(w->msg);
  w->cb = cb;
  w->report_cb = report_cb;
  w->arg = arg;
  svc__list_insert_tail(&s->sndq, &w->link);
  s->sndq_bytes += w->cost;
  s->metrics->m.queue_depth++;
  stream_pump(s);
  return 0;
}

int svc_stream_write(svc_stream_t *s, svc_msg_t *msg, svc_write_cb cb,
                     void *arg) {
  return stream_write(s, msg, cb, NULL, arg);
}

int svc_stream_write_report(svc_stream_t *s, svc_msg_t *msg,
                            svc_stream_report_cb cb, void *arg) {
  return stream_write(s, msg, NULL, cb, arg);
}

int svc_stream_end(svc_stream_t *s) {
  if (s == NULL || (s->server != NULL && !s->accepted))
    return SVC_EINVAL;
  if (s->finished)
    return SVC_ECLOSING;
  if (s->local_ended)
    return SVC_EPIPE;
  s->local_ended = 1;
  stream_pump(s);
  return 0;
}

void svc_stream_pause(svc_stream_t *s) {
  s->paused = 1;
}

void svc_stream_resume(svc_stream_t *s) {
  if (!s->paused)
    return;
  s->paused = 0;
  svc__defer(s->ctx, &s->task);
}

void svc_stream_reset(svc_stream_t *s) {
  if (s == NULL || s->finished)
    return;
  if (!s->tp_done) {
    s->tp_done = 1;
    /* An open a fault holds back never reached the transport. */
    if (s->fw != NULL)
      svc__fwrap_stream_cancel(s);
    else
      stream_ops(s)->stream_send_reset(s);
  }
  stream_finish(s, SVC_ECANCELED);
}

size_t svc_stream_queued_bytes(const svc_stream_t *s) {
  return s->sndq_bytes;
}

const char *svc_stream_path(const svc_stream_t *s) {
  return s->path;
}

const char *svc_stream_param(const svc_stream_t *s, const char *name) {
  return s->params != NULL ? svc__params_get(s->params, name) : NULL;
}

const char *svc_stream_header(const svc_stream_t *s, const char *name) {
  return s->open_headers != NULL ? svc_msg_header_get(s->open_headers, name)
                                 : NULL;
}

void svc_stream_set_data(svc_stream_t *s, void *data) {
  s->data = data;
}

void *svc_stream_get_data(const svc_stream_t *s) {
  return s->data;
}

void svc__streams_abort_all(svc_ctx_t *ctx) {
  struct svc__list *pos;

  svc__list_foreach(pos, &ctx->streams) {
    svc_stream_reset(svc__container_of(pos, struct svc_stream_s, link));
  }
}

/* Resets the streams a server accepted (server close). */
void svc__streams_abort_server(struct svc_server_s *srv) {
  struct svc__list *pos;

  svc__list_foreach(pos, &srv->ctx->streams) {
    struct svc_stream_s *s = svc__container_of(pos, struct svc_stream_s, link);
    if (s->server == srv)
      svc_stream_reset(s);
  }
}
