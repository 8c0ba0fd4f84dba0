/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp_wire.h"

#include <stdio.h>
#include <stdlib.h>

/* The connection engine under tcp:// and unix://. Reading: one buffer per
 * connection, frames decoded in place as they complete. Writing: frames
 * queued during one loop turn are encoded into one batch (small payloads
 * copied into an arena, large bodies referenced) and written with a single
 * uv_write from a prepare handle, which runs after the turn's callbacks and
 * before the loop polls: one syscall per turn, not one per frame, and no
 * added latency. */

#define WIRE_READ_MIN (64 * 1024) /* Read buffer size and refill floor. */
#define WIRE_COPY_MAX (8 * 1024)  /* Bodies above this are referenced. */
#define WIRE_FLUSH_GRACE_MS 2000  /* Most a closing wire waits to flush. */
#define WIRE_IOV_STACK 64
/* A batch holding large bodies is written once it holds this much
 * (wire_queued()). */
#define WIRE_WRITE_NOW (256 * 1024)
/* A body at least this large is read into its own buffer, which the
 * message then takes: one copy (the kernel's) instead of two. */
#define WIRE_BIG_BODY (16 * 1024)
#define WIRE_PEEK 4096
#define WIRE_SPARE_BATCHES 4

struct wire_seg {
  size_t off;      /* Arena offset, when ext is NULL. */
  const char *ext; /* A referenced body. */
  size_t len;
};

struct wire_batch {
  uv_write_t req;
  struct svc__wire *w;
  uint8_t *arena;
  size_t alen;
  size_t acap;
  struct wire_seg *segs;
  size_t nsegs;
  size_t segcap;
  svc_msg_t **refs;
  size_t nrefs;
  size_t refcap;
  size_t bytes;
};

struct wire_priv {
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } io;
  uv_prepare_t flush;
  uv_connect_t connect_req;
  uv_getaddrinfo_t resolve_req;
  int resolving;
  int connecting;
  int port;
  int started; /* Reading and HELLO sent. */
  int closing; /* Handles closing or about to. */
  int flush_then_close;
  int handles; /* Open handles + requests outstanding. */

  uint8_t *rbuf;
  size_t rcap;
  size_t rpos; /* First unparsed byte. */
  size_t rlen; /* Bytes held. */
  int reading;
  /* A large body being read straight into its message's buffer; the
   * frame's header and block wait at rpos (big_head bytes). */
  uint8_t *big;
  size_t big_len;
  size_t big_got;
  size_t big_head;
  /* After a large frame, read a little first: if the next one is large
   * too, only its first bytes land in rbuf and need copying. */
  int after_big;

  struct wire_batch *fill; /* Being filled this turn. */
  /* Written batches kept for reuse with their arenas: a busy connection
   * has several writes in flight, and an arena above the allocator's mmap
   * threshold would otherwise be mapped and faulted in anew each time. */
  struct wire_batch *spares[WIRE_SPARE_BATCHES];
  int nspares;
  int flush_armed;
  int write_err; /* A write that could not start, for the armed flush. */

  struct svc__timer timer;
  uint64_t last_read_ms;
  uint64_t ping_ms;
  int ping_out;
  uint64_t ping_seq;

  struct svc__task resume_task;
};

#define WIRE_PRIV(w) ((struct wire_priv *)(w)->priv)

/* ---- Buffers for large bodies. A stream of large messages allocates and
 * frees one body per message; with plain malloc the heap top then grows
 * and shrinks (brk) every other message. A few spares per thread, kept
 * while any wire of the thread lives, avoid that. Sizes are rounded up to
 * powers of two so that spares fit the next body of a similar size. */

#define BODY_SPARES 4
#define BODY_SPARE_MAX (1024 * 1024)

struct body_hdr {
  size_t cap;
  max_align_t align; /* The body starts after this, aligned. */
};

static SVC__TLS struct body_hdr *body_spares[BODY_SPARES];
static SVC__TLS int body_nspares;
static SVC__TLS int live_wires;

static void *body_alloc(size_t len) {
  size_t cap = WIRE_BIG_BODY;
  struct body_hdr *h;
  int i;

  while (cap < len)
    cap *= 2;
  for (i = 0; i < body_nspares; i++) {
    if (body_spares[i]->cap == cap) {
      h = body_spares[i];
      body_spares[i] = body_spares[--body_nspares];
      return &h->align;
    }
  }
  h = svc__malloc(offsetof(struct body_hdr, align) + cap);
  if (h == NULL)
    return NULL;
  h->cap = cap;
  return &h->align;
}

static void body_free(void *body) {
  struct body_hdr *h =
      (struct body_hdr *)((char *)body - offsetof(struct body_hdr, align));

  if (live_wires > 0 && body_nspares < BODY_SPARES &&
      h->cap <= BODY_SPARE_MAX) {
    body_spares[body_nspares++] = h;
    return;
  }
  svc__free(h);
}

static void body_spares_release(void) {
  while (body_nspares > 0)
    svc__free(body_spares[--body_nspares]);
}

/* The private part is allocated right after the public one. */
static struct svc__wire *wire_of(struct wire_priv *p) {
  return (struct svc__wire *)p - 1;
}

static void wire_process(struct svc__wire *w);
static void wire_big_done(struct svc__wire *w);
static void wire_close_handles(struct svc__wire *w);

/* ---- Batches. */

static void batch_reset(struct wire_batch *b) {
  size_t i;

  for (i = 0; i < b->nrefs; i++)
    svc_msg_free(b->refs[i]);
  b->nrefs = 0;
  b->nsegs = 0;
  b->alen = 0;
  b->bytes = 0;
}

static void batch_free(struct wire_batch *b) {
  if (b == NULL)
    return;
  batch_reset(b);
  svc__free(b->arena);
  svc__free(b->segs);
  svc__free(b->refs);
  svc__free(b);
}

static struct wire_batch *wire_fill(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (p->fill == NULL) {
    if (p->nspares > 0) {
      p->fill = p->spares[--p->nspares];
    } else {
      p->fill = svc__calloc(1, sizeof(*p->fill));
      if (p->fill == NULL)
        return NULL;
    }
    p->fill->w = w;
  }
  return p->fill;
}

static int batch_seg(struct wire_batch *b, size_t off, const char *ext,
                     size_t len) {
  struct wire_seg *last = b->nsegs ? &b->segs[b->nsegs - 1] : NULL;

  if (ext == NULL && last != NULL && last->ext == NULL &&
      last->off + last->len == off) {
    last->len += len;
    return 0;
  }
  if (b->nsegs == b->segcap) {
    size_t cap = b->segcap ? b->segcap * 2 : 8;
    struct wire_seg *segs = svc__realloc(b->segs, cap * sizeof(*segs));
    if (segs == NULL)
      return SVC_ENOMEM;
    b->segs = segs;
    b->segcap = cap;
  }
  b->segs[b->nsegs].off = off;
  b->segs[b->nsegs].ext = ext;
  b->segs[b->nsegs].len = len;
  b->nsegs++;
  return 0;
}

/* Room for n more arena bytes; returns where they go. */
static uint8_t *batch_reserve(struct wire_batch *b, size_t n) {
  if (b->acap - b->alen < n) {
    size_t cap = b->acap ? b->acap : 4096;
    uint8_t *a;
    while (cap - b->alen < n)
      cap *= 2;
    a = svc__realloc(b->arena, cap);
    if (a == NULL)
      return NULL;
    b->arena = a;
    b->acap = cap;
  }
  return b->arena + b->alen;
}

static int batch_commit(struct wire_batch *b, size_t n) {
  size_t off = b->alen;

  b->alen += n;
  b->bytes += n;
  return batch_seg(b, off, NULL, n);
}

static int batch_ref(struct wire_batch *b, const svc_msg_t *msg,
                     const char *body, size_t len) {
  if (b->nrefs == b->refcap) {
    size_t cap = b->refcap ? b->refcap * 2 : 8;
    svc_msg_t **refs = svc__realloc(b->refs, cap * sizeof(*refs));
    if (refs == NULL)
      return SVC_ENOMEM;
    b->refs = refs;
    b->refcap = cap;
  }
  if (batch_seg(b, 0, body, len) != 0)
    return SVC_ENOMEM;
  b->refs[b->nrefs++] = svc__msg_ref((svc_msg_t *)msg);
  b->bytes += len;
  return 0;
}

/* ---- Writing. */

static void wire_write_cb(uv_write_t *req, int status) {
  struct wire_batch *b = req->data;
  struct svc__wire *w = b->w;
  struct wire_priv *p = WIRE_PRIV(w);
  size_t before = w->out_bytes;

  w->out_bytes -= b->bytes;
  batch_reset(b);
  if (p->nspares < WIRE_SPARE_BATCHES)
    p->spares[p->nspares++] = b;
  else
    batch_free(b);
  if (status < 0) {
    if (p->closing)
      wire_close_handles(w); /* A flush before closing failed: give up. */
    else
      svc__wire_close(w, status == UV_ECANCELED ? SVC_ECONNRESET : status, 0);
    return;
  }
  if (p->flush_then_close) {
    if (w->out_bytes == 0 && p->fill == NULL)
      wire_close_handles(w);
    return;
  }
  if (before >= w->opts.max_outbound && w->out_bytes < w->opts.max_outbound) {
    svc__wire_resume(w, SVC__WIRE_PAUSE_OUTBOUND);
    if (!w->down && w->cbs->on_drain != NULL)
      w->cbs->on_drain(w);
  }
}

/* Starts writing the batch being filled: 0, or the error of a write that
 * could not start (the batch is then dropped). */
static int wire_write_fill(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct wire_batch *b = p->fill;
  uv_buf_t stack[WIRE_IOV_STACK];
  uv_buf_t *bufs = stack;
  size_t i;
  int rc;

  p->fill = NULL;
  if (b->nsegs > WIRE_IOV_STACK) {
    bufs = svc__malloc(b->nsegs * sizeof(*bufs));
    if (bufs == NULL) {
      w->out_bytes -= b->bytes;
      batch_free(b);
      return SVC_ENOMEM;
    }
  }
  for (i = 0; i < b->nsegs; i++) {
    const char *base = b->segs[i].ext != NULL
                           ? b->segs[i].ext
                           : (const char *)b->arena + b->segs[i].off;
    bufs[i] = uv_buf_init((char *)base, (unsigned)b->segs[i].len);
  }
  b->req.data = b;
  /* uv_write copies the buffer array; the bytes stay ours until the cb. */
  rc =
      uv_write(&b->req, &p->io.stream, bufs, (unsigned)b->nsegs, wire_write_cb);
  if (bufs != stack)
    svc__free(bufs);
  if (rc != 0) {
    w->out_bytes -= b->bytes;
    batch_free(b);
  }
  return rc;
}

static void wire_flush(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);
  int rc;

  if (p->fill == NULL || p->closing)
    return;
  rc = wire_write_fill(w);
  if (rc != 0)
    svc__wire_close(w, rc, 0);
}

static void wire_prepare_cb(uv_prepare_t *h) {
  struct svc__wire *w = h->data;
  struct wire_priv *p = WIRE_PRIV(w);
  int err = p->write_err;

  uv_prepare_stop(h);
  p->flush_armed = 0;
  p->write_err = 0;
  if (err != 0)
    svc__wire_close(w, err, 0);
  else
    wire_flush(w);
}

static void wire_arm_flush(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (!p->flush_armed && p->started && !p->closing) {
    p->flush_armed = 1;
    uv_prepare_start(&p->flush, wire_prepare_cb);
  }
}

static void wire_queued(struct svc__wire *w, size_t bytes) {
  struct wire_priv *p = WIRE_PRIV(w);
  size_t before = w->out_bytes;

  w->out_bytes += bytes;
  wire_arm_flush(w);
  /* A batch of large bodies this full goes out now, not at the end of the
   * loop turn: the peer reads it while we go on filling the next one. A
   * turn's worth of bulk data in one write (a stream filling its window)
   * left the reader idle until it was all copied. Batches of small frames
   * still go out once a turn, whole. A write that cannot start is
   * reported by the flush armed above, not inside the send that got
   * here. */
  if (p->fill->nrefs > 0 && p->fill->bytes >= WIRE_WRITE_NOW &&
      p->flush_armed && p->write_err == 0)
    p->write_err = wire_write_fill(w);
  /* A peer that sends faster than it reads our answers is slowed to the
   * pace at which it reads them. */
  if (w->opts.pause_when_full && before < w->opts.max_outbound &&
      w->out_bytes >= w->opts.max_outbound)
    svc__wire_pause(w, SVC__WIRE_PAUSE_OUTBOUND);
}

int svc__wire_send_block(struct svc__wire *w, uint8_t type, uint8_t flags,
                         uint32_t id, const struct svc__frame_field *pseudo,
                         size_t npseudo, const svc_msg_t *msg, int with_body) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct wire_batch *b;
  size_t count;
  size_t block;
  size_t body_len = 0;
  const char *body = NULL;
  size_t head;
  uint64_t payload;
  uint8_t *q;
  size_t before;

  if (w->down || p->closing)
    return SVC_ENOTCONN;
  block = svc__frame_block_size(pseudo, npseudo, msg, &count);
  if (with_body && msg != NULL)
    body = svc_msg_body(msg, &body_len);
  if (block == SIZE_MAX || block > w->peer.max_header_block ||
      count > w->peer.max_headers)
    return SVC_EMSGSIZE;
  payload = 4 + (uint64_t)block + body_len;
  if (payload > w->peer.max_frame)
    return SVC_EMSGSIZE;
  b = wire_fill(w);
  if (b == NULL)
    return SVC_ENOMEM;
  head = SVC__FRAME_HEADER + 4 + block;
  if (body_len <= WIRE_COPY_MAX)
    head += body_len;
  before = b->bytes;
  q = batch_reserve(b, head);
  if (q == NULL)
    return SVC_ENOMEM;
  svc__frame_write_header(q, type, flags, id, (uint32_t)payload);
  svc__frame_write_block(q + SVC__FRAME_HEADER, pseudo, npseudo, msg, block);
  if (body_len > 0 && body_len <= WIRE_COPY_MAX)
    memcpy(q + SVC__FRAME_HEADER + 4 + block, body, body_len);
  if (batch_commit(b, head) != 0 ||
      (body_len > WIRE_COPY_MAX && batch_ref(b, msg, body, body_len) != 0)) {
    /* The batch now holds part of a frame: the stream is unusable. */
    svc__wire_close(w, SVC_ENOMEM, 0);
    return SVC_ENOMEM;
  }
  wire_queued(w, b->bytes - before);
  return 0;
}

int svc__wire_send_prefixed(struct svc__wire *w, const uint8_t *prefix,
                            size_t prefix_len, uint8_t flags, uint32_t id,
                            const void *body, size_t body_len) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct wire_batch *b;
  uint64_t payload = (uint64_t)prefix_len - SVC__FRAME_HEADER + body_len;
  size_t len = prefix_len + body_len;
  uint8_t *q;

  if (w->down || p->closing)
    return SVC_ENOTCONN;
  if (payload > w->peer.max_frame)
    return SVC_EMSGSIZE;
  b = wire_fill(w);
  if (b == NULL || (q = batch_reserve(b, len)) == NULL)
    return SVC_ENOMEM;
  memcpy(q, prefix, prefix_len);
  q[2] = flags;
  svc__put_u32(q + 4, id);
  svc__put_u32(q + 8, (uint32_t)payload);
  if (body_len > 0)
    memcpy(q + prefix_len, body, body_len);
  if (batch_commit(b, len) != 0) {
    svc__wire_close(w, SVC_ENOMEM, 0);
    return SVC_ENOMEM;
  }
  wire_queued(w, len);
  return 0;
}

int svc__wire_send_fixed(struct svc__wire *w, uint8_t type, uint8_t flags,
                         uint32_t id, const void *payload, size_t len) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct wire_batch *b;
  uint8_t *q;

  if (w->down || p->closing)
    return SVC_ENOTCONN;
  b = wire_fill(w);
  if (b == NULL || (q = batch_reserve(b, SVC__FRAME_HEADER + len)) == NULL)
    return SVC_ENOMEM;
  svc__frame_write_header(q, type, flags, id, (uint32_t)len);
  if (len > 0)
    memcpy(q + SVC__FRAME_HEADER, payload, len);
  if (batch_commit(b, SVC__FRAME_HEADER + len) != 0) {
    svc__wire_close(w, SVC_ENOMEM, 0);
    return SVC_ENOMEM;
  }
  wire_queued(w, SVC__FRAME_HEADER + len);
  return 0;
}

int svc__wire_send_code(struct svc__wire *w, uint8_t type, uint32_t id,
                        uint32_t code) {
  uint8_t pl[4];

  svc__put_u32(pl, code);
  return svc__wire_send_fixed(w, type, 0, id, pl, 4);
}

int svc__wire_send_goaway(struct svc__wire *w, uint32_t last_id, uint32_t code,
                          const char *reason) {
  uint8_t pl[8 + 128];
  size_t n = reason != NULL ? strlen(reason) : 0;

  if (n > 128)
    n = 128;
  svc__put_u32(pl, last_id);
  svc__put_u32(pl + 4, code);
  if (n > 0)
    memcpy(pl + 8, reason, n);
  return svc__wire_send_fixed(w, SVC__F_GOAWAY, 0, 0, pl, 8 + n);
}

static int wire_send_hello(struct svc__wire *w) {
  uint8_t pl[SVC__FRAME_HELLO_SENT_LEN];

  svc__put_u32(pl, w->opts.limits.max_frame);
  svc__put_u32(pl + 4, w->opts.limits.max_header_block);
  svc__put_u32(pl + 8, w->opts.limits.max_headers);
  svc__put_u32(pl + 12, w->opts.limits.max_streams);
  svc__put_u32(pl + 16, w->opts.limits.features);
  return svc__wire_send_fixed(w, SVC__F_HELLO, 0, 0, pl, sizeof(pl));
}

/* ---- Timers: the handshake deadline, then keepalive. */

static void wire_timer_cb(struct svc__timer *t) {
  struct wire_priv *p = svc__container_of(t, struct wire_priv, timer);
  struct svc__wire *w = wire_of(p);
  uint64_t now;
  uint64_t idle;
  uint64_t ka;

  if (p->flush_then_close) {
    /* The peer did not take our last frames in time. */
    wire_close_handles(w);
    return;
  }
  if (!w->ready) {
    svc__wire_close(w, SVC_ETIMEDOUT, 0);
    return;
  }
  ka = w->opts.keepalive_ms;
  if (ka == 0)
    return;
  now = svc__now_ms(w->ctx);
  if (p->ping_out) {
    if (now - p->ping_ms >= ka) {
      svc__wire_close(w, SVC_ETIMEDOUT, 0);
      return;
    }
    svc__timer_start(w->ctx, &p->timer, p->ping_ms + ka - now);
    return;
  }
  idle = now - p->last_read_ms;
  if (idle >= ka) {
    uint8_t pl[8];
    uint64_t seq = ++p->ping_seq;
    int i;
    for (i = 7; i >= 0; i--, seq >>= 8)
      pl[i] = (uint8_t)seq;
    p->ping_out = 1;
    p->ping_ms = now;
    svc__wire_send_fixed(w, SVC__F_PING, 0, 0, pl, 8);
    svc__timer_start(w->ctx, &p->timer, ka);
  } else {
    svc__timer_start(w->ctx, &p->timer, ka - idle);
  }
}

/* ---- Reading. */

static void wire_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct svc__wire *w = h->data;
  struct wire_priv *p = WIRE_PRIV(w);

  (void)suggested;
  if (p->big != NULL) {
    buf->base = (char *)p->big + p->big_got;
    buf->len = p->big_len - p->big_got;
    return;
  }
  if (p->rpos > 0 && p->rcap - p->rlen < WIRE_READ_MIN / 2) {
    memmove(p->rbuf, p->rbuf + p->rpos, p->rlen - p->rpos);
    p->rlen -= p->rpos;
    p->rpos = 0;
  }
  if (p->rcap - p->rlen < WIRE_READ_MIN / 4) {
    size_t cap = p->rcap ? p->rcap * 2 : WIRE_READ_MIN;
    uint8_t *nb = svc__realloc(p->rbuf, cap);
    if (nb == NULL) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
    p->rbuf = nb;
    p->rcap = cap;
  }
  buf->base = (char *)p->rbuf + p->rlen;
  buf->len = p->rcap - p->rlen;
  if (p->after_big && buf->len > WIRE_PEEK)
    buf->len = WIRE_PEEK;
}

static void wire_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct svc__wire *w = s->data;
  struct wire_priv *p = WIRE_PRIV(w);
  svc_ctx_t *ctx = w->ctx;

  (void)buf;
  if (n == 0)
    return;
  if (n == UV_ENOBUFS) {
    svc__wire_close(w, SVC_ENOMEM, 0);
    return;
  }
  if (n < 0) {
    /* End of file inside a frame is a truncated frame. */
    svc__wire_close(w,
                    n != UV_EOF                   ? (int)n
                    : p->rlen > p->rpos || p->big ? SVC_EPROTO
                                                  : SVC_EOF,
                    0);
    return;
  }
  p->last_read_ms = svc__now_ms(w->ctx);
  p->ping_out = 0;
  if (p->big != NULL) {
    p->big_got += (size_t)n;
    if (p->big_got < p->big_len)
      return;
    wire_big_done(w);
  } else {
    p->rlen += (size_t)n;
  }
  wire_process(w);
  /* What this read decoded goes to the application now, not at the end of
   * the loop turn: libuv reads a socket up to 32 times a turn, and the
   * events of a whole turn on many connections (a subscriber per
   * connection) outgrow the CPU caches before the idle phase would hand
   * them over. w may be closing by now; ctx lives on. */
  svc__ctx_run_tasks(ctx);
}

static void wire_start_reading(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);
  int rc;

  if (p->reading || w->paused || w->down || p->closing)
    return;
  rc = uv_read_start(&p->io.stream, wire_alloc_cb, wire_read_cb);
  if (rc != 0) {
    svc__wire_close(w, rc, 0);
    return;
  }
  p->reading = 1;
}

static void wire_stop_reading(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (p->reading) {
    uv_read_stop(&p->io.stream);
    p->reading = 0;
  }
}

/* Handles the frames the wire itself owns; 1 when f was one of them. */
static int wire_own_frame(struct svc__wire *w, struct svc__frame *f,
                          const char **why) {
  if (!w->ready) {
    if (f->type != SVC__F_HELLO) {
      *why = "first frame is not HELLO";
      return -1;
    }
    w->peer = f->hello;
    w->ready = 1;
    if (w->cbs->on_ready != NULL)
      w->cbs->on_ready(w);
    if (w->down)
      return 1;
    if (w->opts.keepalive_ms > 0)
      svc__timer_start(w->ctx, &WIRE_PRIV(w)->timer, w->opts.keepalive_ms);
    else
      svc__timer_stop(w->ctx, &WIRE_PRIV(w)->timer);
    return 1;
  }
  switch (f->type) {
  case SVC__F_HELLO:
    *why = "second HELLO";
    return -1;
  case SVC__F_PING:
    svc__wire_send_fixed(w, SVC__F_PONG, 0, 0, f->ping, 8);
    return 1;
  case SVC__F_PONG:
    return 1;
  case SVC__F_GOAWAY:
    w->goaway_received = 1;
    w->goaway_last_id = f->value;
    return 0; /* The owner decides what it means. */
  default:
    return 0;
  }
}

/* Acts on one decode result; returns 0 to go on, -1 when the wire
 * stopped. */
static int wire_handle(struct svc__wire *w, struct svc__frame *f, int rc,
                       const char *why) {
  if (rc == SVC_ENOMEM || rc == SVC_EINVAL) {
    svc__wire_close(w, rc, 0);
    return -1;
  }
  if (rc != 0) {
    svc__wire_fail(w, why);
    return -1;
  }
  rc = wire_own_frame(w, f, &why);
  if (rc == 0) {
    rc = w->cbs->on_frame(w, f, &why);
    svc__frame_clear(f);
    if (rc == SVC_EPROTO) {
      svc__wire_fail(w, why != NULL ? why : "protocol error");
      return -1;
    }
    if (rc != 0) {
      svc__wire_close(w, rc, 0);
      return -1;
    }
    return 0;
  }
  svc__frame_clear(f);
  if (rc < 0) {
    svc__wire_fail(w, why);
    return -1;
  }
  return 0;
}

/* The large body is all there: decode its frame. */
static void wire_big_done(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct svc__frame f;
  const char *why = NULL;
  uint8_t *body = p->big;
  int rc;

  p->big = NULL;
  rc = svc__frame_decode_split_fn(p->rbuf + p->rpos, p->big_head, body,
                                  p->big_len, body_free, &w->opts.limits, &f,
                                  &why);
  p->rpos += p->big_head;
  p->after_big = 1;
  wire_handle(w, &f, rc, why);
}

/* Starts reading the body of the incomplete frame at rpos into a buffer of
 * its own when it is large; 1 if it did. */
static int wire_big_start(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);
  size_t avail = p->rlen - p->rpos;
  size_t head;
  size_t body;
  size_t have;

  if (svc__frame_body_split(p->rbuf + p->rpos, avail, &head, &body) != 0 ||
      body < WIRE_BIG_BODY)
    return 0;
  p->big = body_alloc(body);
  if (p->big == NULL)
    return 0; /* The read buffer will do. */
  have = avail - head;
  memcpy(p->big, p->rbuf + p->rpos + head, have);
  p->big_len = body;
  p->big_got = have;
  p->big_head = head;
  p->rlen = p->rpos + head;
  return 1;
}

static void wire_process(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct svc__frame f;
  size_t used;
  const char *why = NULL;
  int rc;

  while (!w->down && !w->paused && p->big == NULL) {
    rc = svc__frame_decode(p->rbuf + p->rpos, p->rlen - p->rpos,
                           &w->opts.limits, &f, &used, &why);
    if (rc == SVC_EAGAIN) {
      if (used > 0 && wire_big_start(w))
        return;
      /* Make room for a frame larger than the buffer (the decoder has
       * checked it against max_frame). */
      if (used > p->rcap - p->rpos) {
        size_t held = p->rlen - p->rpos;
        memmove(p->rbuf, p->rbuf + p->rpos, held);
        p->rpos = 0;
        p->rlen = held;
        if (used > p->rcap) {
          uint8_t *nb = svc__realloc(p->rbuf, used);
          if (nb == NULL) {
            svc__wire_close(w, SVC_ENOMEM, 0);
            return;
          }
          p->rbuf = nb;
          p->rcap = used;
        }
      }
      break;
    }
    if (rc == 0) {
      p->rpos += used;
      p->after_big = 0; /* Small frames again: read in bulk. */
    }
    if (wire_handle(w, &f, rc, why) != 0)
      return;
  }
  if (p->rpos == p->rlen && p->big == NULL) {
    p->rpos = p->rlen = 0;
    /* Give back the memory of one huge frame. */
    if (p->rcap > 4 * WIRE_READ_MIN) {
      svc__free(p->rbuf);
      p->rbuf = NULL;
      p->rcap = 0;
    }
  }
}

static void wire_resume_task(struct svc__task *t) {
  struct wire_priv *p = svc__container_of(t, struct wire_priv, resume_task);
  struct svc__wire *w = wire_of(p);

  if (w->paused || w->down)
    return;
  wire_process(w);
  if (!w->paused)
    wire_start_reading(w);
}

void svc__wire_pause(struct svc__wire *w, unsigned reason) {
  struct wire_priv *p = WIRE_PRIV(w);

  w->paused |= reason;
  svc__undefer(w->ctx, &p->resume_task);
  wire_stop_reading(w);
}

void svc__wire_resume(struct svc__wire *w, unsigned reason) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (!(w->paused & reason))
    return;
  w->paused &= ~reason;
  /* Frames already buffered are processed on a later turn: the caller
   * may be in the middle of something those frames would change. */
  if (w->paused == 0 && p->started && !w->down)
    svc__defer(w->ctx, &p->resume_task);
}

/* ---- Connecting and accepting. */

static void wire_start(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);

  p->started = 1;
  p->last_read_ms = svc__now_ms(w->ctx);
  if (!w->is_pipe)
    uv_tcp_nodelay(&p->io.tcp, 1);
  if (wire_send_hello(w) != 0) {
    svc__wire_close(w, SVC_ENOMEM, 0);
    return;
  }
  wire_start_reading(w);
  svc__timer_start(w->ctx, &p->timer, w->opts.handshake_ms);
}

static void wire_connect_cb(uv_connect_t *req, int status) {
  struct svc__wire *w = req->data;
  struct wire_priv *p = WIRE_PRIV(w);

  p->connecting = 0;
  p->handles--;
  if (p->closing) {
    wire_close_handles(w);
    return;
  }
  if (status != 0) {
    svc__wire_close(w, status, 0);
    return;
  }
  wire_start(w);
}

static int wire_connect_addr(struct svc__wire *w, const struct sockaddr *sa) {
  struct wire_priv *p = WIRE_PRIV(w);
  int rc;

  p->connect_req.data = w;
  rc = uv_tcp_connect(&p->connect_req, &p->io.tcp, sa, wire_connect_cb);
  if (rc == 0) {
    p->connecting = 1;
    p->handles++;
  }
  return rc;
}

static void wire_resolve_cb(uv_getaddrinfo_t *req, int status,
                            struct addrinfo *res) {
  struct svc__wire *w = req->data;
  struct wire_priv *p = WIRE_PRIV(w);
  int rc;

  p->resolving = 0;
  p->handles--;
  if (p->closing) {
    uv_freeaddrinfo(res);
    wire_close_handles(w);
    return;
  }
  if (status != 0 || res == NULL) {
    uv_freeaddrinfo(res);
    svc__wire_close(w, status != 0 ? status : SVC_ENOENT, 0);
    return;
  }
  rc = wire_connect_addr(w, res->ai_addr);
  uv_freeaddrinfo(res);
  if (rc != 0)
    svc__wire_close(w, rc, 0);
}

int svc__wire_connect(struct svc__wire *w, const char *host, int port,
                      const char *path) {
  struct wire_priv *p = WIRE_PRIV(w);
  struct sockaddr_storage ss;
  struct addrinfo hints;
  char service[16];
  int rc;

  if (w->is_pipe) {
    p->connect_req.data = w;
    uv_pipe_connect(&p->connect_req, &p->io.pipe, path, wire_connect_cb);
    p->connecting = 1;
    p->handles++;
    return 0;
  }
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0)
    return wire_connect_addr(w, (struct sockaddr *)&ss);
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(service, sizeof(service), "%d", port);
  p->resolve_req.data = w;
  rc = uv_getaddrinfo(w->ctx->loop, &p->resolve_req, wire_resolve_cb, host,
                      service, &hints);
  if (rc == 0) {
    p->resolving = 1;
    p->handles++;
  }
  return rc;
}

int svc__wire_accept(struct svc__wire *w, uv_stream_t *server) {
  int rc = uv_accept(server, &WIRE_PRIV(w)->io.stream);

  if (rc == 0)
    wire_start(w);
  return rc;
}

/* ---- Life cycle. */

struct svc__wire *svc__wire_new(svc_ctx_t *ctx, int is_pipe,
                                const struct svc__wire_opts *opts,
                                const struct svc__wire_cbs *cbs, void *owner) {
  struct svc__wire *w;
  struct wire_priv *p;
  int rc;

  /* One allocation: the public part, then the private one. */
  w = svc__calloc(1, sizeof(*w) + sizeof(*p));
  if (w == NULL)
    return NULL;
  p = (struct wire_priv *)(w + 1);
  w->priv = p;
  w->ctx = ctx;
  w->cbs = cbs;
  w->owner = owner;
  w->opts = *opts;
  w->is_pipe = is_pipe;
  w->peer = svc__frame_minimum_limits;
  svc__list_init(&w->link);
  rc = is_pipe ? uv_pipe_init(ctx->loop, &p->io.pipe, 0)
               : uv_tcp_init(ctx->loop, &p->io.tcp);
  if (rc != 0) {
    svc__free(w);
    return NULL;
  }
  p->io.handle.data = w;
  uv_prepare_init(ctx->loop, &p->flush);
  p->flush.data = w;
  p->handles = 2;
  live_wires++;
  svc__timer_init(&p->timer, wire_timer_cb);
  svc__task_init(&p->resume_task, wire_resume_task);
  return w;
}

static void wire_free(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (w->cbs->on_closed != NULL)
    w->cbs->on_closed(w);
  batch_free(p->fill);
  while (p->nspares > 0)
    batch_free(p->spares[--p->nspares]);
  svc__free(p->rbuf);
  if (p->big != NULL)
    body_free(p->big);
  if (--live_wires == 0)
    body_spares_release();
  svc__free(w);
}

static void wire_handle_closed(uv_handle_t *h) {
  struct svc__wire *w = h->data;
  struct wire_priv *p = WIRE_PRIV(w);

  if (--p->handles == 0)
    wire_free(w);
}

static void wire_close_handles(struct svc__wire *w) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (p->handles == 0)
    return;
  svc__timer_stop(w->ctx, &p->timer);
  svc__undefer(w->ctx, &p->resume_task);
  if (p->resolving) {
    /* Its callback (with UV_EAI_CANCELED or a result) comes back here. */
    uv_cancel((uv_req_t *)&p->resolve_req);
    return;
  }
  if (uv_is_closing(&p->io.handle))
    return;
  p->flush_then_close = 0;
  uv_close(&p->io.handle, wire_handle_closed);
  uv_close((uv_handle_t *)&p->flush, wire_handle_closed);
}

void svc__wire_close(struct svc__wire *w, int err, int flush) {
  struct wire_priv *p = WIRE_PRIV(w);

  if (p->closing)
    return;
  p->closing = 1;
  wire_stop_reading(w);
  svc__undefer(w->ctx, &p->resume_task);
  svc__timer_stop(w->ctx, &p->timer);
  if (!w->down) {
    w->down = 1;
    if (w->cbs->on_down != NULL)
      w->cbs->on_down(w, err);
  }
  if (flush && p->started && !p->connecting &&
      (p->fill != NULL || w->out_bytes > 0)) {
    /* Write what is queued, then close; bounded, as the peer may not be
     * reading at all. */
    p->flush_then_close = 1;
    if (p->fill != NULL) {
      /* wire_flush refuses while closing: lift that for the last batch. */
      p->closing = 0;
      wire_flush(w);
      p->closing = 1;
    }
    if (p->flush_then_close && (w->out_bytes > 0 || p->fill != NULL)) {
      svc__timer_start(w->ctx, &p->timer, WIRE_FLUSH_GRACE_MS);
      return;
    }
  }
  wire_close_handles(w);
}

void svc__wire_fail(struct svc__wire *w, const char *why) {
  svc__wire_send_goaway(w, 0, SVC__FC_PROTOCOL, why);
  svc__wire_close(w, SVC_EPROTO, 1);
}
