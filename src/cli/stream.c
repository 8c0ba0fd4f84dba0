/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm stream: stdin into a stream, the stream to stdout.
 *
 * Standard input is read the way its kind allows: a pipe, socket or
 * terminal through a libuv stream handle, a file (or /dev/null) through
 * uv_fs_read(), since epoll refuses regular files. Flow control runs end to
 * end: while svc_stream_write() answers SVC_EAGAIN, stdin is not read, and
 * on_writable starts it again; the stream's data is written to stdout as it
 * comes, so a slow stdout holds back the peer through our window. */

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char stream_help[] =
    "usage: svccomm stream URI [-H 'Name: value']...\n"
    "\n"
    "Opens a stream on URI's path, copies stdin into it in order (ending\n"
    "this side at end of input) and writes what the peer sends to stdout.\n"
    "stdin may be a pipe, a file or a terminal. Exits 0 once stdin was all\n"
    "delivered and the peer ended its side; otherwise by the error's class\n"
    "(a refused connection is 4, UNAVAILABLE).\n"
    "\n"
    "  -H, --header H      add a header 'Name: value' to the open\n"
    "                      (repeatable)\n"
    "  -h, --help          this help\n"
    "\n"
    "Example: svccomm stream tcp://127.0.0.1:7000/upload < big.bin > "
    "answer\n"
    "\n";

enum { STREAM_HEADER = 1 };

static const struct cli_opt stream_opts[] = {
    {STREAM_HEADER, 'H', "header", 1},
};

#define STREAM_CHUNK (64 * 1024)

enum { STREAM_IN_NONE, STREAM_IN_HANDLE, STREAM_IN_FILE };

struct stream_state {
  struct cli_rt rt;
  svc_stream_t *s; /* NULL once on_close ran. */
  int in_kind;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } in;
  int in_open; /* in is initialised and not yet closed. */
  uv_fs_t fs;
  uv_buf_t fs_buf;
  int fs_busy;        /* A uv_fs_read() is outstanding. */
  int paused;         /* A write met SVC_EAGAIN; stdin waits. */
  int eof;            /* stdin is done: no more reads. */
  svc_msg_t *pending; /* The write that met SVC_EAGAIN. */
  int stdin_flags;    /* fd 0's flags before libuv set O_NONBLOCK. */
  int exit_code;
};

static void stream_fail(struct stream_state *st, int code) {
  if (st->exit_code == 0)
    st->exit_code = code;
  if (st->s != NULL)
    svc_stream_reset(st->s); /* on_close follows and closes the rest. */
}

/* ---- stdin. */

static void stream_read_more(struct stream_state *st);

static void stream_in_stop(struct stream_state *st) {
  st->eof = 1;
  if (st->in_open) {
    st->in_open = 0;
    uv_close(&st->in.handle, NULL);
  }
}

/* stdin is done: end our side once everything was accepted. */
static void stream_maybe_end(struct stream_state *st) {
  int rc;

  if (!st->eof || st->pending != NULL || st->s == NULL)
    return;
  rc = svc_stream_end(st->s);
  /* Closing already (the peer is unreachable or reset us): on_close has
   * the status that says why, and decides the exit code. */
  if (rc != 0 && rc != SVC_EPIPE && rc != SVC_ECLOSING) {
    cli_error("stream", "svc_stream_end: %s", svc_strerror(rc));
    stream_fail(st, CLI_EXIT_FAILURE);
  }
}

/* Hands one chunk to the stream. Returns 0 when reading may go on. */
static int stream_send(struct stream_state *st, svc_msg_t *msg) {
  int rc;

  if (st->s == NULL) {
    svc_msg_free(msg);
    return -1;
  }
  rc = svc_stream_write(st->s, msg, NULL, NULL);
  if (rc == SVC_EAGAIN) {
    st->pending = msg;
    st->paused = 1;
    if (st->in_kind == STREAM_IN_HANDLE && st->in_open)
      uv_read_stop(&st->in.stream);
    return -1;
  }
  if (rc == SVC_ECLOSING || rc == SVC_EPIPE) {
    /* As in stream_maybe_end: on_close tells why. Stop reading stdin. */
    svc_msg_free(msg);
    if (st->in_kind == STREAM_IN_HANDLE && st->in_open)
      uv_read_stop(&st->in.stream);
    return -1;
  }
  if (rc != 0) {
    svc_msg_free(msg);
    cli_error("stream", "svc_stream_write: %s", svc_strerror(rc));
    stream_fail(st, cli_exit_err(rc, 0));
    return -1;
  }
  return 0;
}

static void stream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = malloc(STREAM_CHUNK);
  buf->len = buf->base != NULL ? STREAM_CHUNK : 0;
}

static void stream_in_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  struct stream_state *st = h->data;
  svc_msg_t *msg;

  if (nread > 0) {
    msg = svc_msg_new_take(buf->base, (size_t)nread, free);
    if (msg == NULL) {
      free(buf->base);
      cli_error("stream", "out of memory");
      stream_fail(st, CLI_EXIT_FAILURE);
      stream_in_stop(st);
      return;
    }
    stream_send(st, msg);
    return;
  }
  free(buf->base);
  if (nread == 0)
    return;
  if (nread != UV_EOF) {
    cli_error("stream", "reading stdin: %s", uv_strerror((int)nread));
    stream_fail(st, CLI_EXIT_FAILURE);
  }
  stream_in_stop(st);
  stream_maybe_end(st);
}

static void stream_fs_read(uv_fs_t *req) {
  struct stream_state *st = req->data;
  ssize_t n = req->result;
  svc_msg_t *msg;

  uv_fs_req_cleanup(req);
  st->fs_busy = 0;
  if (n <= 0 || st->s == NULL) {
    free(st->fs_buf.base);
    st->fs_buf.base = NULL;
    if (n < 0 && st->s != NULL) {
      cli_error("stream", "reading stdin: %s", uv_strerror((int)n));
      stream_fail(st, CLI_EXIT_FAILURE);
    }
    st->eof = 1;
    stream_maybe_end(st);
    return;
  }
  msg = svc_msg_new_take(st->fs_buf.base, (size_t)n, free);
  if (msg == NULL) {
    free(st->fs_buf.base);
    st->fs_buf.base = NULL;
    cli_error("stream", "out of memory");
    st->eof = 1;
    stream_fail(st, CLI_EXIT_FAILURE);
    return;
  }
  st->fs_buf.base = NULL;
  if (stream_send(st, msg) == 0)
    stream_read_more(st);
}

/* Starts (again) reading stdin after a pause, or the next file read. */
static void stream_read_more(struct stream_state *st) {
  int rc;

  if (st->eof || st->paused || st->s == NULL)
    return;
  if (st->in_kind == STREAM_IN_HANDLE) {
    rc = uv_read_start(&st->in.stream, stream_alloc, stream_in_read);
  } else {
    if (st->fs_busy)
      return;
    st->fs_buf.base = malloc(STREAM_CHUNK);
    st->fs_buf.len = STREAM_CHUNK;
    if (st->fs_buf.base == NULL) {
      cli_error("stream", "out of memory");
      st->eof = 1;
      stream_fail(st, CLI_EXIT_FAILURE);
      return;
    }
    st->fs.data = st;
    rc = uv_fs_read(&st->rt.loop, &st->fs, 0, &st->fs_buf, 1, -1,
                    stream_fs_read);
    st->fs_busy = rc == 0;
  }
  if (rc != 0) {
    cli_error("stream", "reading stdin: %s", uv_strerror(rc));
    stream_in_stop(st);
    stream_fail(st, CLI_EXIT_FAILURE);
  }
}

/* Picks how to read fd 0. Returns 0 or CLI_EXIT_FAILURE. */
static int stream_in_open(struct stream_state *st) {
  int fd;
  int rc;

  switch (uv_guess_handle(0)) {
  case UV_FILE:
    st->in_kind = STREAM_IN_FILE;
    return 0;
  case UV_TTY:
    st->in_kind = STREAM_IN_HANDLE;
    rc = uv_tty_init(&st->rt.loop, &st->in.tty, 0, 1);
    break;
  case UV_NAMED_PIPE:
  case UV_TCP:
    /* libuv owns the descriptor it is given and makes it non-blocking.
     * Give it a duplicate, so that closing ours leaves fd 0 open to put
     * its flags back afterwards (they belong to the open file, which the
     * process that gave us stdin may share). */
    st->in_kind = STREAM_IN_HANDLE;
    st->stdin_flags = fcntl(0, F_GETFL);
    fd = dup(0);
    if (fd < 0) {
      cli_error("stream", "stdin: %s", strerror(errno));
      return CLI_EXIT_FAILURE;
    }
    rc = uv_pipe_init(&st->rt.loop, &st->in.pipe, 0);
    if (rc == 0 && (rc = uv_pipe_open(&st->in.pipe, fd)) != 0) {
      uv_close(&st->in.handle, NULL);
      close(fd);
      cli_error("stream", "stdin: %s", uv_strerror(rc));
      return CLI_EXIT_FAILURE;
    }
    break;
  default:
    /* Closed (svccomm stream URI <&-): nothing to send. */
    st->in_kind = STREAM_IN_NONE;
    st->eof = 1;
    return 0;
  }
  if (rc != 0) {
    cli_error("stream", "stdin: %s", uv_strerror(rc));
    return CLI_EXIT_FAILURE;
  }
  st->in.handle.data = st;
  st->in_open = 1;
  return 0;
}

/* ---- The stream. */

static void stream_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct stream_state *st = arg;
  size_t len;
  const void *body = svc_msg_body(msg, &len);

  (void)s;
  if (cli_write_all(1, body, len) != 0) {
    if (errno != EPIPE)
      cli_error("stream", "writing to stdout: %s", strerror(errno));
    stream_fail(st, CLI_EXIT_FAILURE);
  }
}

static void stream_writable(svc_stream_t *s, void *arg) {
  struct stream_state *st = arg;
  svc_msg_t *msg = st->pending;

  (void)s;
  if (msg == NULL)
    return;
  st->pending = NULL;
  st->paused = 0;
  if (stream_send(st, msg) != 0)
    return;
  if (st->eof)
    stream_maybe_end(st);
  else
    stream_read_more(st);
}

static void stream_closed(svc_stream_t *s, int status, void *arg) {
  struct stream_state *st = arg;

  (void)s;
  st->s = NULL;
  svc_msg_free(st->pending);
  st->pending = NULL;
  stream_in_stop(st);
  if (status != 0 && st->exit_code == 0) {
    cli_error("stream", "%s", svc_strerror(status));
    st->exit_code = cli_exit_err(status, 0);
  }
  cli_rt_close(&st->rt);
}

static void stream_signal(struct cli_rt *rt, int signum) {
  stream_fail(rt->data, 128 + signum);
}

int cli_cmd_stream(int argc, char **argv) {
  static const svc_stream_cbs_t cbs = {.on_data = stream_data,
                                       .on_writable = stream_writable,
                                       .on_close = stream_closed};
  struct cli_parser p;
  struct stream_state st;
  struct cli_headers headers;
  svc_stream_opts_t opts;
  const char *uri = NULL;
  size_t npos = 0;
  int opt;
  int rc;

  memset(&st, 0, sizeof(st));
  memset(&headers, 0, sizeof(headers));
  memset(&opts, 0, sizeof(opts));
  st.stdin_flags = -1;
  /* The open has headers but no content type: keep Content-Type as one. */
  headers.plain_content_type = 1;
  cli_parser_init(&p, "stream", stream_opts,
                  sizeof(stream_opts) / sizeof(stream_opts[0]), argc, argv);
  rc = 0;
  while (rc == 0 && (opt = cli_next(&p)) != CLI_OPT_END) {
    switch (opt) {
    case CLI_OPT_HELP:
      cli_help(stream_help);
      cli_headers_free(&headers);
      return CLI_EXIT_OK;
    case CLI_OPT_BAD:
      rc = CLI_EXIT_USAGE;
      break;
    case CLI_OPT_POS:
      rc = cli_positional(&p, &uri, 1, &npos);
      break;
    case STREAM_HEADER:
      rc = cli_headers_add(&headers, "stream", p.arg);
      break;
    }
  }
  if (rc == 0 && uri == NULL)
    rc = cli_usage_error("stream", "missing URI");
  if (rc == 0)
    rc = cli_rt_init(&st.rt, "stream", stream_signal);
  if (rc != 0) {
    cli_headers_free(&headers);
    return rc;
  }
  st.rt.data = &st;
  opts.headers = headers.pairs;
  opts.nheaders = headers.n;

  rc = svc_stream(st.rt.ctx, uri, &opts, &cbs, &st, &st.s);
  cli_headers_free(&headers);
  if (rc != 0) {
    st.s = NULL;
    st.exit_code = cli_verb_error("stream", uri, rc);
    cli_rt_close(&st.rt);
  } else if ((rc = stream_in_open(&st)) != 0) {
    stream_fail(&st, rc);
  } else if (st.eof) {
    stream_maybe_end(&st);
  } else {
    stream_read_more(&st);
  }
  rc = cli_rt_run(&st.rt, "stream");
  if (st.stdin_flags != -1)
    fcntl(0, F_SETFL, st.stdin_flags);
  return st.exit_code != 0 ? st.exit_code : rc;
}
