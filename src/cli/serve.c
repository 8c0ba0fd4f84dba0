/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm serve: an endpoint (and so a publish/subscribe hub) until SIGINT
 * or SIGTERM; with --echo, an echo service for calls and streams. */

#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char serve_help[] =
    "usage: svccomm serve URI [--echo] [--metrics]\n"
    "\n"
    "Serves URI (tcp://127.0.0.1:0, unix:///tmp/s.sock, ...; port 0 picks a\n"
    "free port) until SIGINT or SIGTERM, then closes cleanly and exits 0.\n"
    "Prints 'listening on ENDPOINT' on stderr once serving, ENDPOINT being\n"
    "the URI that clients append '/route' or '/topic' to. A served endpoint\n"
    "is also a publish/subscribe hub for its topics.\n"
    "\n"
    "  --echo      answer every call, any method and path, with the request's\n"
    "              body, headers and content type, plus the headers\n"
    "              'x-echo-method' and 'x-echo-path'; echo every stream back\n"
    "              (ending it when the peer ends). Request headers steer it:\n"
    "                x-echo-status: NAME    answer with that status\n"
    "                                       (NOT_FOUND, INTERNAL, ... or "
    "0-16)\n"
    "                x-echo-delay-ms: MS    answer MS ms later (<= 600000)\n"
    "  --metrics   answer route 'metrics' with the endpoint's counters as\n"
    "              Prometheus text; needs an http:// URI\n"
    "  -h, --help  this help\n"
    "\n"
    "Example: svccomm serve tcp://127.0.0.1:0 --echo\n"
    "\n";

enum { SERVE_ECHO = 1, SERVE_METRICS };

static const struct cli_opt serve_opts[] = {
    {SERVE_ECHO, 0, "echo", 0},
    {SERVE_METRICS, 0, "metrics", 0},
};

#define SERVE_MAX_DELAY_MS 600000

/* A reply held back by x-echo-delay-ms. */
struct serve_delay {
  uv_timer_t timer;
  svc_request_t *req;
  svc_msg_t *reply;
  svc_status_t status;
  struct serve_delay *prev;
  struct serve_delay *next;
};

struct serve_state {
  struct cli_rt rt;
  svc_server_t *srv;
  struct serve_delay *delays;
  int stopping;
};

/* ---- Calls. */

static void serve_delay_freed(uv_handle_t *h) {
  free(h->data);
}

/* Sends the held reply (dropped by the library if the caller has gone) and
 * frees the delay. */
static void serve_delay_finish(struct serve_state *st, struct serve_delay *d) {
  if (d->prev != NULL)
    d->prev->next = d->next;
  else
    st->delays = d->next;
  if (d->next != NULL)
    d->next->prev = d->prev;
  svc_request_reply(d->req, d->status, d->reply);
  uv_close((uv_handle_t *)&d->timer, serve_delay_freed);
}

static void serve_delay_fired(uv_timer_t *t) {
  struct serve_delay *d = t->data;

  serve_delay_finish(svc_request_get_data(d->req), d);
}

/* Reads a header that steers the echo. Returns 0 and the value in *out
 * (untouched when absent), or -1 when it is malformed. */
static int serve_header_u64(const svc_msg_t *msg, const char *name,
                            uint64_t max, uint64_t *out) {
  const char *s = svc_msg_header_get(msg, name);
  uint64_t v = 0;

  if (s == NULL)
    return 0;
  if (*s == '\0')
    return -1;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9' || v > max)
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  if (v > max)
    return -1;
  *out = v;
  return 0;
}

static void serve_echo_call(svc_request_t *req, void *arg) {
  struct serve_state *st = arg;
  const svc_msg_t *in = svc_request_msg(req);
  const char *name = svc_msg_header_get(in, "x-echo-status");
  struct serve_delay *d;
  svc_msg_t *out;
  uint64_t delay = 0;
  uint64_t num = 0;
  int status = SVC_STATUS_OK;

  if (name != NULL) {
    status = svc_status_from_name(name);
    if (status < 0 &&
        serve_header_u64(in, "x-echo-status", SVC_STATUS_COUNT - 1, &num) == 0)
      status = (int)num;
    if (status < 0) {
      svc_request_reply(req, SVC_STATUS_INVALID_ARGUMENT,
                        svc_msg_new_str("bad x-echo-status"));
      return;
    }
  }
  if (serve_header_u64(in, "x-echo-delay-ms", SERVE_MAX_DELAY_MS, &delay) !=
      0) {
    svc_request_reply(req, SVC_STATUS_INVALID_ARGUMENT,
                      svc_msg_new_str("bad x-echo-delay-ms"));
    return;
  }
  out = svc_msg_dup(in);
  if (out == NULL ||
      svc_msg_header_add(out, "x-echo-method", svc_request_method(req)) != 0 ||
      svc_msg_header_add(out, "x-echo-path", svc_request_path(req)) != 0) {
    /* The request's headers already fill the limits, or no memory. */
    svc_msg_free(out);
    svc_request_reply(req, SVC_STATUS_RESOURCE_EXHAUSTED, NULL);
    return;
  }
  if (delay == 0 || st->stopping) {
    svc_request_reply(req, (svc_status_t)status, out);
    return;
  }
  d = calloc(1, sizeof(*d));
  if (d == NULL) {
    svc_request_reply(req, SVC_STATUS_RESOURCE_EXHAUSTED, out);
    return;
  }
  d->req = req;
  d->reply = out;
  d->status = (svc_status_t)status;
  d->next = st->delays;
  if (d->next != NULL)
    d->next->prev = d;
  st->delays = d;
  svc_request_set_data(req, st);
  uv_timer_init(&st->rt.loop, &d->timer);
  d->timer.data = d;
  uv_timer_start(&d->timer, serve_delay_fired, delay, 0);
}

/* ---- Streams: every message goes back as it came, in order. Writes that
 * meet a full send queue wait here, and the stream is paused meanwhile, so
 * that the peer's window, not our memory, absorbs a slow reader. */

struct serve_pending {
  svc_msg_t *msg;
  struct serve_pending *next;
};

struct serve_echo_stream {
  struct serve_pending *head;
  struct serve_pending *tail;
  int paused;
  int peer_ended;
  int ended;
};

static void serve_stream_flush(svc_stream_t *s, struct serve_echo_stream *es) {
  struct serve_pending *p;
  int rc;

  while ((p = es->head) != NULL) {
    rc = svc_stream_write(s, p->msg, NULL, NULL);
    if (rc == SVC_EAGAIN) {
      if (!es->paused) {
        es->paused = 1;
        svc_stream_pause(s);
      }
      return; /* on_writable calls us again. */
    }
    if (rc != 0) {
      svc_stream_reset(s); /* on_close frees what is left. */
      return;
    }
    es->head = p->next;
    if (es->head == NULL)
      es->tail = NULL;
    free(p);
  }
  if (es->paused) {
    es->paused = 0;
    svc_stream_resume(s);
  }
  if (es->peer_ended && !es->ended) {
    es->ended = 1;
    svc_stream_end(s);
  }
}

static void serve_stream_data(svc_stream_t *s, const svc_msg_t *msg,
                              void *arg) {
  struct serve_echo_stream *es = arg;
  struct serve_pending *p = malloc(sizeof(*p));

  if (p == NULL || (p->msg = svc_msg_dup(msg)) == NULL) {
    free(p);
    svc_stream_reset(s);
    return;
  }
  p->next = NULL;
  if (es->tail != NULL)
    es->tail->next = p;
  else
    es->head = p;
  es->tail = p;
  serve_stream_flush(s, es);
}

static void serve_stream_writable(svc_stream_t *s, void *arg) {
  serve_stream_flush(s, arg);
}

static void serve_stream_end(svc_stream_t *s, void *arg) {
  struct serve_echo_stream *es = arg;

  es->peer_ended = 1;
  serve_stream_flush(s, es);
}

static void serve_stream_close(svc_stream_t *s, int status, void *arg) {
  struct serve_echo_stream *es = arg;
  struct serve_pending *p;

  (void)s;
  (void)status;
  while ((p = es->head) != NULL) {
    es->head = p->next;
    svc_msg_free(p->msg);
    free(p);
  }
  free(es);
}

static void serve_echo_stream(svc_server_t *srv, svc_stream_t *s, void *arg) {
  static const svc_stream_cbs_t cbs = {.on_data = serve_stream_data,
                                       .on_end = serve_stream_end,
                                       .on_writable = serve_stream_writable,
                                       .on_close = serve_stream_close};
  struct serve_echo_stream *es = calloc(1, sizeof(*es));

  (void)srv;
  (void)arg;
  if (es == NULL || svc_stream_accept(s, NULL, &cbs, es) != 0) {
    free(es);
    svc_stream_reset(s);
  }
}

/* ---- Metrics, as Prometheus text (the library renders them). */

static void serve_metrics(svc_request_t *req, void *arg) {
  struct serve_state *st = arg;
  svc_msg_t *out = svc_metrics_prometheus(st->rt.ctx);

  svc_request_reply(
      req, out != NULL ? SVC_STATUS_OK : SVC_STATUS_RESOURCE_EXHAUSTED, out);
}

/* ---- Lifetime. */

static void serve_closed(svc_server_t *srv, void *arg) {
  struct serve_state *st = arg;

  (void)srv;
  st->srv = NULL;
  cli_rt_close(&st->rt);
}

static void serve_signal(struct cli_rt *rt, int signum) {
  struct serve_state *st = rt->data;

  if (st->stopping)
    return;
  st->stopping = 1;
  fprintf(stderr, "svccomm serve: %s, closing\n",
          signum == SIGINT ? "SIGINT" : "SIGTERM");
  /* Held replies go out now: the library keeps a request until it is
   * answered. */
  while (st->delays != NULL) {
    uv_timer_stop(&st->delays->timer);
    serve_delay_finish(st, st->delays);
  }
  svc_server_close(st->srv, serve_closed, st);
}

static int serve_is_http(const char *uri) {
  return strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0;
}

int cli_cmd_serve(int argc, char **argv) {
  struct cli_parser p;
  struct serve_state st;
  const char *uri = NULL;
  int echo = 0;
  int metrics = 0;
  size_t npos = 0;
  int opt;
  int rc;

  memset(&st, 0, sizeof(st));
  cli_parser_init(&p, "serve", serve_opts,
                  sizeof(serve_opts) / sizeof(serve_opts[0]), argc, argv);
  rc = 0;
  while (rc == 0 && (opt = cli_next(&p)) != CLI_OPT_END) {
    switch (opt) {
    case CLI_OPT_HELP:
      cli_help(serve_help);
      return CLI_EXIT_OK;
    case CLI_OPT_BAD:
      rc = CLI_EXIT_USAGE;
      break;
    case CLI_OPT_POS:
      rc = cli_positional(&p, &uri, 1, &npos);
      break;
    case SERVE_ECHO:
      echo = 1;
      break;
    case SERVE_METRICS:
      metrics = 1;
      break;
    }
  }
  if (rc == 0 && uri == NULL)
    rc = cli_usage_error("serve", "missing URI");
  if (rc == 0 && metrics && !serve_is_http(uri))
    rc = cli_usage_error("serve", "--metrics needs an http:// URI");
  if (rc == 0)
    rc = cli_rt_init(&st.rt, "serve", serve_signal);
  if (rc != 0)
    return rc;
  st.rt.data = &st;

  rc = svc_serve(st.rt.ctx, uri, NULL, &st.srv);
  if (rc != 0) {
    /* A URI we cannot serve is the URI's fault (a backend that cannot
     * serve, such as https://, included); a bind that fails is not. */
    if (rc == SVC_EINVAL || rc == SVC_ESCHEME || rc == SVC_ENOTSUP) {
      rc = cli_verb_error("serve", uri, rc);
    } else {
      cli_error("serve", "cannot serve '%s': %s", uri, svc_strerror(rc));
      rc = CLI_EXIT_FAILURE;
    }
    st.srv = NULL;
    cli_rt_close(&st.rt);
    cli_rt_run(&st.rt, "serve");
    return rc;
  }
  if (echo &&
      ((rc = svc_server_route(st.srv, NULL, "", serve_echo_call, &st)) != 0 ||
       (rc = svc_server_route(st.srv, NULL, "{rest...}", serve_echo_call,
                              &st)) != 0 ||
       (rc = svc_server_stream_route(st.srv, "", serve_echo_stream, &st)) !=
           0 ||
       (rc = svc_server_stream_route(st.srv, "{rest...}", serve_echo_stream,
                                     &st)) != 0))
    cli_error("serve", "echo routes: %s", svc_strerror(rc));
  else if (metrics && (rc = svc_server_route(st.srv, NULL, "metrics",
                                             serve_metrics, &st)) != 0)
    cli_error("serve", "metrics route: %s", svc_strerror(rc));
  if (rc != 0) {
    st.stopping = 1;
    svc_server_close(st.srv, serve_closed, &st);
    cli_rt_run(&st.rt, "serve");
    return CLI_EXIT_FAILURE;
  }
  fprintf(stderr, "listening on %s\n", svc_server_endpoint(st.srv));
  fflush(stderr);
  return cli_rt_run(&st.rt, "serve");
}
