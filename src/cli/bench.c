/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm bench: bench/svc_bench.c's client, built into the tool (compiled
 * with SVC_BENCH_NO_MAIN), so that its figures are the ones bench/run.sh
 * reports. */

#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char bench_help[] =
    "usage: svccomm bench W URI [--quick]\n"
    "\n"
    "Runs workload W (W1 W2 W3 W4 W6 W7 W8 of bench/README.md) against the\n"
    "server at URI and prints its JSON lines on stdout, as 'svc_bench client\n"
    "W URI' does. The server must answer the workload: 'svc_bench server W\n"
    "URI' serves W1-W4 and W7; 'svccomm serve URI --echo' serves W1 and W2\n"
    "(route 'echo'); W6 wants an HTTP server answering GET /hello (nginx's\n"
    "'return 200'). An inproc:// URI runs server and client in this\n"
    "process, as 'svc_bench local'; so does W8, whose URI is an MQTT broker\n"
    "(subscriber, echo, publisher and pinger all in this process; QoS 0).\n"
    "\n"
    "  --quick     about a hundredth of the work (W7: 16 MiB)\n"
    "  -h, --help  this help\n"
    "\n"
    "Exit status: 0 once the figures are printed, 1 when the workload\n"
    "failed (the reason is on stderr), 2 on a usage error.\n"
    "\n"
    "Example: svccomm bench W1 tcp://127.0.0.1:7000 --quick\n"
    "\n";

enum { BENCH_QUICK = 1 };

static const struct cli_opt bench_opts[] = {
    {BENCH_QUICK, 0, "quick", 0},
};

int cli_cmd_bench(int argc, char **argv) {
  static char role_client[] = "client";
  static char role_local[] = "local";
  static char quick_opt[] = "--quick";
  static char argv0[] = "svccomm bench";
  struct cli_parser p;
  char *pos[2] = {NULL, NULL};
  char *args[6];
  int npos = 0;
  int quick = 0;
  int nargs = 0;
  int opt;
  int rc = 0;
  const char *w;

  cli_parser_init(&p, "bench", bench_opts,
                  sizeof(bench_opts) / sizeof(bench_opts[0]), argc, argv);
  while (rc == 0 && (opt = cli_next(&p)) != CLI_OPT_END) {
    switch (opt) {
    case CLI_OPT_HELP:
      fputs(bench_help, stdout);
      return CLI_EXIT_OK;
    case CLI_OPT_BAD:
      rc = CLI_EXIT_USAGE;
      break;
    case CLI_OPT_POS:
      if (npos == 2)
        rc = cli_usage_error("bench", "unexpected argument '%s'", p.arg);
      else
        pos[npos++] = argv[p.i - 1];
      break;
    case BENCH_QUICK:
      quick = 1;
      break;
    }
  }
  if (rc != 0)
    return rc;
  if (npos < 2)
    return cli_usage_error("bench", "missing %s",
                           npos == 0 ? "W and URI" : "URI");
  w = pos[0];
  if (!((w[0] == 'W' || w[0] == 'w') && strchr("1234678", w[1]) != NULL &&
        w[1] != '\0' && w[2] == '\0'))
    return cli_usage_error("bench",
                           "unknown workload '%s' (W1 W2 W3 W4 W6 W7 W8)", w);
  if (strstr(pos[1], "://") == NULL || strstr(pos[1], "://") == pos[1])
    return cli_usage_error("bench", "not a URI: '%s'", pos[1]);

  args[nargs++] = argv0;
  /* inproc:// does not reach across processes: serve it here. W8's URI is
   * the broker, and both of its sides run here. */
  args[nargs++] = strncmp(pos[1], "inproc://", 9) == 0 || w[1] == '8'
                      ? role_local
                      : role_client;
  args[nargs++] = pos[0];
  args[nargs++] = pos[1];
  if (quick)
    args[nargs++] = quick_opt;
  args[nargs] = NULL;
  return svc_bench_main(nargs, args);
}
