/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm sub: events to stdout, one per line. */

#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char sub_help[] =
    "usage: svccomm sub URI [--count N] [--timeout MS] [--qos N] [-v]\n"
    "\n"
    "Subscribes to the pattern that URI's path names ('+' one level, a final\n"
    "'#' the rest, $share/GROUP/...) and writes each event's body to stdout,\n"
    "followed by a newline. Stops after N events, when the timeout expires,\n"
    "or on SIGINT/SIGTERM (which count as the timeout). Exit status 0 once N\n"
    "events arrived, or without --count when the time is up; 5 when\n"
    "--count N was given and fewer arrived; 4 when the subscription was\n"
    "never confirmed (server unreachable: tcp:// keeps retrying).\n"
    "\n"
    "  --count N           stop after N events\n"
    "  --timeout MS        stop after MS milliseconds (default: never)\n"
    "  --qos N             highest QoS wanted: 0, 1 or 2 (default 0)\n"
    "  -v, --verbose       print 'topic: TOPIC' and the event's headers\n"
    "                      ('Name: value') before each body, and\n"
    "                      'svccomm sub: subscribed to URI' on stderr once\n"
    "                      the subscription is active\n"
    "  -h, --help          this help\n"
    "\n"
    "Example: svccomm sub 'tcp://127.0.0.1:7000/orders/#' --count 1 -v\n"
    "\n";

enum { SUB_COUNT = 1, SUB_TIMEOUT, SUB_QOS, SUB_VERBOSE };

static const struct cli_opt sub_opts[] = {
    {SUB_COUNT, 0, "count", 1},
    {SUB_TIMEOUT, 0, "timeout", 1},
    {SUB_QOS, 0, "qos", 1},
    {SUB_VERBOSE, 'v', "verbose", 0},
};

struct sub_state {
  struct cli_rt rt;
  uv_timer_t timer;
  const char *uri;
  uint64_t count;
  uint64_t received;
  int verbose;
  int ready;
  int stopping;
  int exit_code;
};

static void sub_stop(struct sub_state *st, int code) {
  if (st->stopping)
    return;
  st->stopping = 1;
  st->exit_code = code;
  uv_close((uv_handle_t *)&st->timer, NULL);
  /* Closing the context ends the subscription (its final callback). */
  cli_rt_close(&st->rt);
}

/* The time is up, by the timer or by a signal. */
static void sub_time_up(struct sub_state *st) {
  if (!st->ready) {
    cli_error("sub", "%s: the subscription was never confirmed", st->uri);
    sub_stop(st, CLI_EXIT_UNAVAILABLE);
  } else if (st->count > 0 && st->received < st->count) {
    cli_error("sub", "%llu of %llu events arrived in time",
              (unsigned long long)st->received, (unsigned long long)st->count);
    sub_stop(st, CLI_EXIT_DEADLINE);
  } else {
    sub_stop(st, CLI_EXIT_OK);
  }
}

static void sub_timer_fired(uv_timer_t *t) {
  sub_time_up(t->data);
}

static void sub_signal(struct cli_rt *rt, int signum) {
  (void)signum;
  sub_time_up(rt->data);
}

static void sub_ready(svc_sub_t *sub, void *arg) {
  struct sub_state *st = arg;

  (void)sub;
  st->ready = 1;
  if (st->verbose && !st->stopping)
    cli_error("sub", "subscribed to %s", st->uri);
}

static void sub_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                      void *arg) {
  struct sub_state *st = arg;
  size_t len;
  const void *body;

  (void)sub;
  if (ev == NULL) {
    /* The final callback: ours comes from closing the context. */
    if (!st->stopping) {
      cli_error("sub", "subscription ended: %s", svc_strerror(status));
      sub_stop(st, cli_exit_err(status, 0));
    }
    return;
  }
  if (st->stopping)
    return;
  /* An event proves the subscription active even if on_ready lags. */
  st->ready = 1;
  body = svc_msg_body(ev, &len);
  if (st->verbose) {
    printf("topic: %s\n", svc_msg_topic(ev) != NULL ? svc_msg_topic(ev) : "");
    cli_print_msg_headers(ev);
  }
  fwrite(body, 1, len, stdout);
  putchar('\n');
  if (fflush(stdout) != 0) {
    /* "svccomm sub ... | head -1": the reader left, stop quietly. */
    if (errno != EPIPE)
      cli_error("sub", "writing to stdout: %s", strerror(errno));
    sub_stop(st, CLI_EXIT_FAILURE);
    return;
  }
  if (++st->received == st->count)
    sub_stop(st, CLI_EXIT_OK);
}

int cli_cmd_sub(int argc, char **argv) {
  struct cli_parser p;
  struct sub_state st;
  svc_sub_opts_t opts;
  uint64_t timeout_ms = 0;
  uint64_t v;
  size_t npos = 0;
  int opt;
  int rc;

  memset(&st, 0, sizeof(st));
  memset(&opts, 0, sizeof(opts));
  cli_parser_init(&p, "sub", sub_opts, sizeof(sub_opts) / sizeof(sub_opts[0]),
                  argc, argv);
  rc = 0;
  while (rc == 0 && (opt = cli_next(&p)) != CLI_OPT_END) {
    switch (opt) {
    case CLI_OPT_HELP:
      cli_help(sub_help);
      return CLI_EXIT_OK;
    case CLI_OPT_BAD:
      rc = CLI_EXIT_USAGE;
      break;
    case CLI_OPT_POS:
      rc = cli_positional(&p, &st.uri, 1, &npos);
      break;
    case SUB_COUNT:
      rc = cli_parse_u64("sub", "--count", p.arg, 1, UINT64_MAX - 1, &st.count);
      break;
    case SUB_TIMEOUT:
      rc = cli_parse_u64("sub", "--timeout", p.arg, 1, UINT32_MAX, &timeout_ms);
      break;
    case SUB_QOS:
      rc = cli_parse_u64("sub", "--qos", p.arg, 0, 2, &v);
      opts.qos = (int)v;
      break;
    case SUB_VERBOSE:
      st.verbose = 1;
      break;
    }
  }
  if (rc == 0 && st.uri == NULL)
    rc = cli_usage_error("sub", "missing URI");
  if (rc == 0)
    rc = cli_rt_init(&st.rt, "sub", sub_signal);
  if (rc != 0)
    return rc;
  st.rt.data = &st;
  uv_timer_init(&st.rt.loop, &st.timer);
  st.timer.data = &st;

  opts.on_ready = sub_ready;
  rc = svc_subscribe(st.rt.ctx, st.uri, &opts, sub_event, &st, NULL);
  if (rc != 0) {
    sub_stop(&st, cli_verb_error("sub", st.uri, rc));
  } else if (timeout_ms > 0) {
    uv_timer_start(&st.timer, sub_timer_fired, timeout_ms, 0);
  }
  rc = cli_rt_run(&st.rt, "sub");
  return st.exit_code != 0 ? st.exit_code : rc;
}
