/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_HTTP_RAW_H
#define SVC_TEST_HTTP_RAW_H

/* Helpers for http:// server tests: a raw client on the test's loop that
 * writes hand-made bytes and records every byte that comes back (so tests
 * check exact answers and play broken or slow clients), and the real curl
 * command-line tool run with posix_spawn, bounded by --max-time and by a
 * kill of its pid. */

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

struct hraw {
  uv_tcp_t tcp;
  uv_connect_t conn;
  char *buf;
  size_t n;
  size_t cap;
  int connected;
  int eof; /* The server closed (EOF or reset). */
  int err;
  int closed;
  int reading;
};

static void hraw_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf) {
  struct hraw *p = h->data;
  (void)s;
  if (p->cap - p->n < 65536) {
    p->cap = p->n + 65536 + 1;
    p->buf = realloc(p->buf, p->cap);
  }
  *buf = uv_buf_init(p->buf + p->n, (unsigned)(p->cap - p->n - 1));
}

static void hraw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  struct hraw *p = s->data;
  (void)b;
  if (n > 0) {
    p->n += (size_t)n;
    p->buf[p->n] = '\0';
  } else if (n < 0) {
    p->eof = 1;
    p->err = (int)n;
    uv_read_stop(s);
    p->reading = 0;
  }
}

static void hraw_connected(uv_connect_t *c, int status) {
  struct hraw *p = c->data;
  if (status != 0) {
    p->eof = 1;
    p->err = status;
    return;
  }
  p->connected = 1;
  p->reading = 1;
  uv_read_start((uv_stream_t *)&p->tcp, hraw_alloc, hraw_read);
}

static inline void hraw_start(uv_loop_t *loop, struct hraw *p, int port) {
  struct sockaddr_in a;
  memset(p, 0, sizeof(*p));
  p->cap = 65537;
  p->buf = calloc(1, p->cap);
  cr_assert_eq(uv_tcp_init(loop, &p->tcp), 0);
  p->tcp.data = p;
  p->conn.data = p;
  uv_ip4_addr("127.0.0.1", port, &a);
  cr_assert_eq(
      uv_tcp_connect(&p->conn, &p->tcp, (struct sockaddr *)&a, hraw_connected),
      0);
}

struct hraw_wr {
  uv_write_t w;
  char *mem;
};

static void hraw_written(uv_write_t *w, int status) {
  struct hraw_wr *wr = (struct hraw_wr *)w;
  (void)status;
  free(wr->mem);
  free(wr);
}

static inline void hraw_send_n(struct hraw *p, const void *data, size_t n) {
  struct hraw_wr *wr = calloc(1, sizeof(*wr));
  uv_buf_t b;
  wr->mem = malloc(n > 0 ? n : 1);
  memcpy(wr->mem, data, n);
  b = uv_buf_init(wr->mem, (unsigned)n);
  cr_assert_eq(uv_write(&wr->w, (uv_stream_t *)&p->tcp, &b, 1, hraw_written),
               0);
}

static inline void hraw_send(struct hraw *p, const char *s) {
  hraw_send_n(p, s, strlen(s));
}

/* Stops (or restarts) reading: a client that does not read its answers. */
static inline void hraw_pause(struct hraw *p, int pause) {
  if (pause && p->reading) {
    uv_read_stop((uv_stream_t *)&p->tcp);
    p->reading = 0;
  } else if (!pause && !p->reading && !p->eof) {
    uv_read_start((uv_stream_t *)&p->tcp, hraw_alloc, hraw_read);
    p->reading = 1;
  }
}

static void hraw_closed(uv_handle_t *h) {
  struct hraw *p = h->data;
  p->closed = 1;
  free(p->buf);
  p->buf = NULL;
}

static inline void hraw_close(struct hraw *p) {
  if (!uv_is_closing((uv_handle_t *)&p->tcp))
    uv_close((uv_handle_t *)&p->tcp, hraw_closed);
}

/* Occurrences of s in what was received. */
static inline int hraw_count(const struct hraw *p, const char *s) {
  int k = 0;
  const char *q = p->buf;
  while (q != NULL && (q = strstr(q, s)) != NULL) {
    k++;
    q += strlen(s);
  }
  return k;
}

/* ---- Waiting on the loop for a condition, with a bound. */

static void hwait_tick(uv_timer_t *t) {
  (void)t;
}

static inline int hwait(uv_loop_t *loop, int (*pred)(void *arg), void *arg,
                        uint64_t ms) {
  uv_timer_t tick;
  uint64_t end;
  int ok;

  uv_update_time(loop);
  end = uv_now(loop) + ms;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, hwait_tick, 5, 5);
  while (!(ok = pred(arg)) && uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

static int hwait_never(void *arg) {
  (void)arg;
  return 0;
}

/* Runs the loop for ms. */
static inline void hsleep(uv_loop_t *loop, uint64_t ms) {
  hwait(loop, hwait_never, NULL, ms);
}

struct hraw_until {
  struct hraw *p;
  const char *s;
  int n;
};

static int hraw_has(void *arg) {
  struct hraw_until *u = arg;
  return hraw_count(u->p, u->s) >= u->n;
}

/* Waits until s was received n times. */
static inline int hraw_wait_n(uv_loop_t *loop, struct hraw *p, const char *s,
                              int n, uint64_t ms) {
  struct hraw_until u = {p, s, n};
  return hwait(loop, hraw_has, &u, ms);
}

static inline int hraw_wait(uv_loop_t *loop, struct hraw *p, const char *s) {
  return hraw_wait_n(loop, p, s, 1, 3000);
}

static int hraw_is_eof(void *arg) {
  return ((struct hraw *)arg)->eof;
}

static inline int hraw_wait_eof(uv_loop_t *loop, struct hraw *p, uint64_t ms) {
  return hwait(loop, hraw_is_eof, p, ms);
}

/* ---- curl. */

struct hcurl {
  pid_t pid;
  char out[64];
  int status; /* Exit status, or -1 while running. */
};

static int hcurl_done(void *arg) {
  struct hcurl *c = arg;
  int st;
  if (c->status >= 0)
    return 1;
  if (waitpid(c->pid, &st, WNOHANG) == c->pid)
    c->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return c->status >= 0;
}

/* Runs curl with args (NULL-terminated, without "curl") while the loop
 * serves; returns its stdout (malloc'd) and its exit status in *status. */
static inline char *hcurl_run(uv_loop_t *loop, const char *const *args,
                              int *status) {
  struct hcurl c;
  posix_spawn_file_actions_t fa;
  const char *argv[64];
  size_t n = 0;
  size_t i;
  FILE *f;
  char *out;
  long len;
  int fd;

  memset(&c, 0, sizeof(c));
  c.status = -1;
  strcpy(c.out, "/tmp/svc_http_curl_XXXXXX");
  fd = mkstemp(c.out);
  cr_assert_geq(fd, 0);
  argv[n++] = "curl";
  argv[n++] = "-sS";
  argv[n++] = "--max-time";
  argv[n++] = "10";
  for (i = 0; args[i] != NULL && n < 62; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  cr_assert_eq(posix_spawnp(&c.pid, "curl", &fa, NULL, (char **)argv, environ),
               0);
  posix_spawn_file_actions_destroy(&fa);
  close(fd);
  if (!hwait(loop, hcurl_done, &c, 12000)) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, NULL, 0);
    c.status = 137;
  }
  f = fopen(c.out, "rb");
  cr_assert_not_null(f);
  fseek(f, 0, SEEK_END);
  len = ftell(f);
  fseek(f, 0, SEEK_SET);
  out = calloc(1, (size_t)len + 1);
  if (len > 0)
    cr_assert_eq(fread(out, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  unlink(c.out);
  *status = c.status;
  return out;
}

#endif /* SVC_TEST_HTTP_RAW_H */
