/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm pub: one event. */

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char pub_help[] =
    "usage: svccomm pub URI DATA [--qos N] [--retain] [-H 'Name: value']...\n"
    "\n"
    "Publishes DATA on the topic that URI's path names (no wildcards) and\n"
    "exits 0 once it is published: handed to the transport with QoS 0,\n"
    "acknowledged by the server or broker with QoS 1 and 2. DATA may be\n"
    "@FILE (@- reads stdin); an empty DATA with --retain clears the topic's\n"
    "retained event.\n"
    "\n"
    "  --qos N             0, 1 or 2 (default 0)\n"
    "  --retain            keep as the topic's retained event: later\n"
    "                      subscribers receive it first\n"
    "  -H, --header H      add a header 'Name: value' (repeatable);\n"
    "                      Content-Type sets the content type\n"
    "  -h, --help          this help\n"
    "\n"
    "Example: svccomm pub tcp://127.0.0.1:7000/orders/placed '{\"id\":7}' "
    "--qos 1\n"
    "\n";

enum { PUB_QOS = 1, PUB_RETAIN, PUB_HEADER };

static const struct cli_opt pub_opts[] = {
    {PUB_QOS, 0, "qos", 1},
    {PUB_RETAIN, 0, "retain", 0},
    {PUB_HEADER, 'H', "header", 1},
};

struct pub_state {
  struct cli_rt rt;
  int exit_code;
};

static void pub_done(svc_ctx_t *ctx, int status, void *arg) {
  struct pub_state *st = arg;

  (void)ctx;
  if (status != 0) {
    cli_error("pub", "%s", svc_strerror(status));
    st->exit_code = cli_exit_err(status, 0);
  }
  cli_rt_close(&st->rt);
}

int cli_cmd_pub(int argc, char **argv) {
  struct cli_parser p;
  struct pub_state st;
  struct cli_headers headers;
  svc_pub_opts_t opts;
  const char *pos[2] = {NULL, NULL};
  size_t npos = 0;
  svc_msg_t *msg = NULL;
  uint64_t v;
  int opt;
  int rc;

  memset(&st, 0, sizeof(st));
  memset(&headers, 0, sizeof(headers));
  memset(&opts, 0, sizeof(opts));
  cli_parser_init(&p, "pub", pub_opts, sizeof(pub_opts) / sizeof(pub_opts[0]),
                  argc, argv);
  rc = 0;
  while (rc == 0 && (opt = cli_next(&p)) != CLI_OPT_END) {
    switch (opt) {
    case CLI_OPT_HELP:
      cli_help(pub_help);
      cli_headers_free(&headers);
      return CLI_EXIT_OK;
    case CLI_OPT_BAD:
      rc = CLI_EXIT_USAGE;
      break;
    case CLI_OPT_POS:
      rc = cli_positional(&p, pos, 2, &npos);
      break;
    case PUB_QOS:
      rc = cli_parse_u64("pub", "--qos", p.arg, 0, 2, &v);
      opts.qos = (int)v;
      break;
    case PUB_RETAIN:
      opts.retain = 1;
      break;
    case PUB_HEADER:
      rc = cli_headers_add(&headers, "pub", p.arg);
      break;
    }
  }
  if (rc == 0 && npos < 2)
    rc = cli_usage_error("pub", npos == 0 ? "missing URI and DATA"
                                          : "missing DATA (use '' for none)");
  if (rc == 0)
    rc = cli_make_msg("pub", pos[1], &headers, &msg);
  else
    cli_headers_free(&headers);
  if (rc == 0)
    rc = cli_rt_init(&st.rt, "pub", NULL);
  if (rc != 0) {
    svc_msg_free(msg);
    return rc;
  }

  rc = svc_publish(st.rt.ctx, pos[0], msg, &opts, pub_done, &st);
  if (rc != 0) {
    svc_msg_free(msg);
    st.exit_code = cli_verb_error("pub", pos[0], rc);
    cli_rt_close(&st.rt);
  }
  rc = cli_rt_run(&st.rt, "pub");
  return st.exit_code != 0 ? st.exit_code : rc;
}
