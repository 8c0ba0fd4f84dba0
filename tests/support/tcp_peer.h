/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_TCP_PEER_H
#define SVC_TEST_TCP_PEER_H

/* Helpers for tcp:// tests: a raw peer that writes hand-made bytes and
 * records what comes back (to play a broken or slow client), frame
 * builders written from docs/protocol.md (independent of the library's
 * encoder), and a server in a child process that a test can kill. */

#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- Frames by hand. */

struct rawbuf {
  unsigned char b[1 << 16];
  size_t n;
};

static inline void rb_u8(struct rawbuf *r, unsigned v) {
  r->b[r->n++] = (unsigned char)v;
}
static inline void rb_u16(struct rawbuf *r, unsigned v) {
  rb_u8(r, v >> 8);
  rb_u8(r, v & 0xff);
}
static inline void rb_u32(struct rawbuf *r, uint32_t v) {
  rb_u16(r, v >> 16);
  rb_u16(r, v & 0xffff);
}
static inline void rb_bytes(struct rawbuf *r, const void *p, size_t n) {
  memcpy(r->b + r->n, p, n);
  r->n += n;
}
static inline void rb_header(struct rawbuf *r, unsigned type, unsigned flags,
                             uint32_t id, uint32_t len) {
  rb_u8(r, 1);
  rb_u8(r, type);
  rb_u8(r, flags);
  rb_u8(r, 0);
  rb_u32(r, id);
  rb_u32(r, len);
}
static inline void rb_hello(struct rawbuf *r) {
  rb_header(r, 0x01, 0, 0, 16);
  rb_u32(r, 16u << 20);
  rb_u32(r, 65536);
  rb_u32(r, 256);
  rb_u32(r, 1024);
}
/* A message-block frame with pseudo/ordinary fields given as name, value
 * pairs (NULL-terminated) and a body. */
static inline void rb_block(struct rawbuf *r, unsigned type, unsigned flags,
                            uint32_t id, const char *const *fields,
                            const char *body) {
  size_t block = 0;
  size_t i;
  size_t bl = body != NULL ? strlen(body) : 0;

  for (i = 0; fields[i] != NULL; i += 2)
    block += 4 + strlen(fields[i]) + strlen(fields[i + 1]);
  rb_header(r, type, flags, id, (uint32_t)(4 + block + bl));
  rb_u32(r, (uint32_t)block);
  for (i = 0; fields[i] != NULL; i += 2) {
    rb_u16(r, (unsigned)strlen(fields[i]));
    rb_u16(r, (unsigned)strlen(fields[i + 1]));
    rb_bytes(r, fields[i], strlen(fields[i]));
    rb_bytes(r, fields[i + 1], strlen(fields[i + 1]));
  }
  if (bl > 0)
    rb_bytes(r, body, bl);
}

/* ---- A raw peer on the loop. */

struct raw_peer {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  struct rawbuf out;
  unsigned char in[1 << 16];
  size_t inlen;
  int read; /* Read what comes back (else: a peer that never reads). */
  int connected;
  int eof; /* The server closed the connection. */
  int closed;
};

static void raw_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf) {
  struct raw_peer *p = h->data;
  (void)s;
  if (p->inlen == sizeof(p->in))
    p->inlen = 0; /* Keep reading; only the start matters to tests. */
  buf->base = (char *)p->in + p->inlen;
  buf->len = sizeof(p->in) - p->inlen;
}
static void raw_closed(uv_handle_t *h) {
  struct raw_peer *p = h->data;
  p->closed = 1;
}
static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct raw_peer *p = s->data;
  (void)b;
  if (n > 0) {
    p->inlen += (size_t)n;
  } else if (n < 0) {
    p->eof = 1;
    uv_close((uv_handle_t *)&p->tcp, raw_closed);
  }
}
static void raw_written(uv_write_t *w, int status) {
  (void)w;
  (void)status;
}
static void raw_connected(uv_connect_t *c, int status) {
  struct raw_peer *p = c->data;
  uv_buf_t buf = uv_buf_init((char *)p->out.b, (unsigned)p->out.n);
  cr_assert_eq(status, 0);
  p->connected = 1;
  if (p->out.n > 0)
    uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &buf, 1, raw_written);
  if (p->read)
    uv_read_start((uv_stream_t *)&p->tcp, raw_alloc, raw_read);
}
static inline int endpoint_port(const char *ep) {
  const char *c = strrchr(ep, ':');
  return c != NULL ? atoi(c + 1) : -1;
}
/* Connects to port and writes p->out (fill it first). */
static inline void raw_start(uv_loop_t *loop, struct raw_peer *p, int port,
                             int read) {
  struct sockaddr_in sa;
  p->read = read;
  uv_ip4_addr("127.0.0.1", port, &sa);
  uv_tcp_init(loop, &p->tcp);
  p->tcp.data = p;
  p->creq.data = p;
  cr_assert_eq(
      uv_tcp_connect(&p->creq, &p->tcp, (struct sockaddr *)&sa, raw_connected),
      0);
}
static inline void raw_close(struct raw_peer *p) {
  if (!uv_is_closing((uv_handle_t *)&p->tcp))
    uv_close((uv_handle_t *)&p->tcp, raw_closed);
}
/* Finds the first frame of type in what the peer read; returns its
 * offset or -1. */
static inline long raw_find(const struct raw_peer *p, unsigned type) {
  size_t off = 0;
  while (off + 12 <= p->inlen) {
    uint32_t len = (uint32_t)p->in[off + 8] << 24 |
                   (uint32_t)p->in[off + 9] << 16 |
                   (uint32_t)p->in[off + 10] << 8 | p->in[off + 11];
    if (p->in[off + 1] == type)
      return (long)off;
    off += 12 + len;
  }
  return -1;
}
static inline uint32_t raw_u32(const struct raw_peer *p, size_t off) {
  return (uint32_t)p->in[off] << 24 | (uint32_t)p->in[off + 1] << 16 |
         (uint32_t)p->in[off + 2] << 8 | p->in[off + 3];
}

/* ---- A server in a child process (to kill it, or stop it). */

static void child_park(svc_request_t *req, void *arg) {
  (void)req;
  (void)arg; /* Never answered. */
}
static void child_echo(svc_request_t *req, void *arg) {
  size_t len;
  const void *b = svc_msg_body(svc_request_msg(req), &len);
  (void)arg;
  svc_request_reply(req, SVC_STATUS_OK, svc_msg_new(b, len));
}
static void child_tick(uv_timer_t *t) {
  svc_server_publish(t->data, "ticks", svc_msg_new_str("tick"), NULL, NULL,
                     NULL);
}

/* Forks a server on 127.0.0.1:port (0: any) with routes "park" (never
 * answers) and "echo", publishing "tick" on topic "ticks" every 20 ms.
 * Returns its pid and the port it listens on in *bound. */
static inline pid_t spawn_server(int port, int *bound) {
  int fds[2];
  pid_t pid;

  cr_assert_eq(pipe(fds), 0);
  pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    uv_loop_t loop;
    svc_ctx_t *ctx;
    svc_server_t *srv;
    uv_timer_t tick;
    char uri[64];
    int p;
    close(fds[0]);
    uv_loop_init(&loop);
    if (svc_ctx_init(&loop, NULL, &ctx) != 0)
      _exit(2);
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
    if (svc_serve(ctx, uri, NULL, &srv) != 0)
      _exit(3);
    svc_server_route(srv, NULL, "park", child_park, NULL);
    svc_server_route(srv, NULL, "echo", child_echo, NULL);
    uv_timer_init(&loop, &tick);
    tick.data = srv;
    uv_timer_start(&tick, child_tick, 20, 20);
    p = endpoint_port(svc_server_endpoint(srv));
    if (write(fds[1], &p, sizeof(p)) != sizeof(p))
      _exit(4);
    close(fds[1]);
    /* Ends when the parent kills it; and by itself after 20 s at most. */
    alarm(20);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(fds[1]);
  cr_assert_eq(read(fds[0], bound, sizeof(*bound)), (ssize_t)sizeof(*bound),
               "child server did not start");
  close(fds[0]);
  return pid;
}

static inline void kill_server(pid_t pid) {
  int st;
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
}

#endif /* SVC_TEST_TCP_PEER_H */
