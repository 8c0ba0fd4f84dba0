/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm call: one request, its reply body on stdout. */

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char call_help[] =
    "usage: svccomm call URI [-d DATA | -d @FILE] [-H 'Name: value']...\n"
    "                        [-X METHOD] [--timeout MS] [-i]\n"
    "\n"
    "Calls the route that URI's path names and writes the reply body to\n"
    "stdout, byte for byte. On any status but OK, the status name (and the\n"
    "local error, or the reply body, that explains it) goes to stderr and\n"
    "the exit status tells its class (below).\n"
    "\n"
    "  -d, --data DATA     request body; @FILE reads FILE, @- stdin\n"
    "  -H, --header H      add a request header 'Name: value' (repeatable);\n"
    "                      Content-Type sets the body's content type\n"
    "  -X, --method M      request method (default: the backend's, CALL)\n"
    "      --timeout MS    deadline for the call (default: none)\n"
    "  -i, --include       print the status name, the reply headers and an\n"
    "                      empty line before the body (on any status)\n"
    "  -h, --help          this help\n"
    "\n"
    "Example: svccomm call tcp://127.0.0.1:7000/users/42 -d '{}' \\\n"
    "           -H 'Content-Type: application/json' --timeout 2000\n"
    "\n";

enum { CALL_DATA = 1, CALL_HEADER, CALL_METHOD, CALL_TIMEOUT, CALL_INCLUDE };

static const struct cli_opt call_opts[] = {
    {CALL_DATA, 'd', "data", 1},     {CALL_HEADER, 'H', "header", 1},
    {CALL_METHOD, 'X', "method", 1}, {CALL_METHOD, 0, "request", 1},
    {CALL_TIMEOUT, 0, "timeout", 1}, {CALL_INCLUDE, 'i', "include", 0},
};

struct call_state {
  struct cli_rt rt;
  int include;
  int exit_code;
};

/* Prints a peer's explanation when it is short readable text; a binary or
 * long body is only counted. */
static void call_explain(const char *status, const svc_msg_t *reply) {
  size_t len = 0;
  const char *body = reply != NULL ? svc_msg_body(reply, &len) : "";
  size_t i;

  if (len == 0) {
    cli_error("call", "%s", status);
    return;
  }
  for (i = 0; i < len && len <= 512; i++)
    if ((unsigned char)body[i] < ' ' && body[i] != '\t')
      break;
  if (i == len)
    cli_error("call", "%s: %.*s", status, (int)len, body);
  else
    cli_error("call", "%s (reply body: %zu bytes)", status, len);
}

static void call_done(svc_call_t *call, svc_status_t status,
                      const svc_msg_t *reply, void *arg) {
  struct call_state *st = arg;
  size_t len = 0;
  const void *body = reply != NULL ? svc_msg_body(reply, &len) : NULL;
  int err;

  if (st->include) {
    printf("%s\n", svc_status_name(status));
    if (reply != NULL)
      cli_print_msg_headers(reply);
    putchar('\n');
  }
  if ((status == SVC_STATUS_OK || st->include) && len > 0)
    fwrite(body, 1, len, stdout);
  if (fflush(stdout) != 0) {
    cli_error("call", "writing the reply failed");
    st->exit_code = CLI_EXIT_FAILURE;
  }
  if (status != SVC_STATUS_OK) {
    err = svc_call_errno(call);
    if (err != 0 && err != SVC_ESTATUS)
      cli_error("call", "%s (%s)", svc_status_name(status), svc_strerror(err));
    else
      call_explain(svc_status_name(status), reply);
    st->exit_code = cli_exit_status(status);
  }
  cli_rt_close(&st->rt);
}

int cli_cmd_call(int argc, char **argv) {
  struct cli_parser p;
  struct call_state st;
  struct cli_headers headers;
  svc_call_opts_t opts;
  const char *uri = NULL;
  const char *data = NULL;
  svc_msg_t *msg = NULL;
  uint64_t v;
  size_t npos = 0;
  int opt;
  int rc;

  memset(&st, 0, sizeof(st));
  memset(&headers, 0, sizeof(headers));
  memset(&opts, 0, sizeof(opts));
  cli_parser_init(&p, "call", call_opts,
                  sizeof(call_opts) / sizeof(call_opts[0]), argc, argv);
  rc = 0;
  while (rc == 0 && (opt = cli_next(&p)) != CLI_OPT_END) {
    switch (opt) {
    case CLI_OPT_HELP:
      cli_help(call_help);
      cli_headers_free(&headers);
      return CLI_EXIT_OK;
    case CLI_OPT_BAD:
      rc = CLI_EXIT_USAGE;
      break;
    case CLI_OPT_POS:
      rc = cli_positional(&p, &uri, 1, &npos);
      break;
    case CALL_DATA:
      data = p.arg;
      break;
    case CALL_HEADER:
      rc = cli_headers_add(&headers, "call", p.arg);
      break;
    case CALL_METHOD:
      if (p.arg[0] == '\0')
        rc = cli_usage_error("call", "the method must not be empty");
      opts.method = p.arg;
      break;
    case CALL_TIMEOUT:
      rc = cli_parse_u64("call", "--timeout", p.arg, 1, UINT32_MAX, &v);
      opts.timeout_ms = v;
      break;
    case CALL_INCLUDE:
      st.include = 1;
      break;
    }
  }
  if (rc == 0 && uri == NULL)
    rc = cli_usage_error("call", "missing URI");
  if (rc == 0)
    rc = cli_make_msg("call", data, &headers, &msg);
  else
    cli_headers_free(&headers);
  if (rc == 0)
    rc = cli_rt_init(&st.rt, "call", NULL);
  if (rc != 0) {
    svc_msg_free(msg);
    return rc;
  }

  rc = svc_call(st.rt.ctx, uri, msg, &opts, call_done, &st, NULL);
  if (rc != 0) {
    svc_msg_free(msg);
    st.exit_code = cli_verb_error("call", uri, rc);
    cli_rt_close(&st.rt);
  }
  rc = cli_rt_run(&st.rt, "call");
  return st.exit_code != 0 ? st.exit_code : rc;
}
