/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* svccomm: the library's verbs from a shell. This file dispatches to the
 * commands and parses their options; common.c holds the rest of what they
 * share. */

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char main_usage[] =
    "usage: svccomm COMMAND [OPTIONS] URI ...\n"
    "\n"
    "Commands:\n"
    "  call URI [-d DATA|@FILE] [-H 'Name: value']... [-X METHOD]\n"
    "           [--timeout MS] [-i]       make a call, print the reply body\n"
    "  pub URI DATA|@FILE [--qos N] [--retain] [-H 'Name: value']...\n"
    "                                     publish one event\n"
    "  sub URI [--count N] [--timeout MS] [--qos N] [-v]\n"
    "                                     print events, one per line\n"
    "  serve URI [--echo] [--metrics]     serve until SIGINT or SIGTERM\n"
    "  stream URI [-H 'Name: value']...   stdin to a stream, the stream to\n"
    "                                     stdout\n"
    "  bench W URI [--quick]              run a svc_bench workload against\n"
    "                                     URI, print its JSON lines\n"
    "\n"
    "URIs: inproc://, tcp://HOST:PORT/PATH, unix://%2Fpath%2Fto.sock/PATH\n"
    "(and unix:///path/to.sock to serve). 'svccomm COMMAND --help' tells\n"
    "more; 'svccomm --version' prints the library's version.\n"
    "\n";

static int main_help(FILE *out) {
  fputs(main_usage, out);
  fputs(cli_exit_help, out);
  return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}

/* ------------------------------------------------------------------------ */
/* Option parsing                                                           */

void cli_parser_init(struct cli_parser *p, const char *cmd,
                     const struct cli_opt *opts, size_t nopts, int argc,
                     char **argv) {
  memset(p, 0, sizeof(*p));
  p->cmd = cmd;
  p->opts = opts;
  p->nopts = nopts;
  p->argc = argc;
  p->argv = argv;
  p->i = 1;
}

static int parse_long(struct cli_parser *p, const char *a) {
  const char *name = a + 2;
  const char *eq = strchr(name, '=');
  size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
  const struct cli_opt *o;
  size_t i;

  p->name = a;
  if (n == 4 && memcmp(name, "help", 4) == 0 && eq == NULL)
    return CLI_OPT_HELP;
  for (i = 0; i < p->nopts; i++) {
    o = &p->opts[i];
    if (o->long_name == NULL || strlen(o->long_name) != n ||
        memcmp(o->long_name, name, n) != 0)
      continue;
    if (!o->has_arg) {
      if (eq != NULL) {
        cli_usage_error(p->cmd, "option '--%s' takes no value", o->long_name);
        return CLI_OPT_BAD;
      }
      return o->id;
    }
    if (eq != NULL) {
      p->arg = eq + 1;
    } else if (p->i < p->argc) {
      p->arg = p->argv[p->i++];
    } else {
      cli_usage_error(p->cmd, "option '--%s' needs a value", o->long_name);
      return CLI_OPT_BAD;
    }
    return o->id;
  }
  cli_usage_error(p->cmd, "unknown option '%.*s'", (int)(n + 2), a);
  return CLI_OPT_BAD;
}

static int parse_short(struct cli_parser *p, const char *a) {
  const struct cli_opt *o;
  size_t i;

  p->name = a;
  if (a[1] == 'h' && a[2] == '\0')
    return CLI_OPT_HELP;
  for (i = 0; i < p->nopts; i++) {
    o = &p->opts[i];
    if (o->short_name != a[1])
      continue;
    if (!o->has_arg) {
      if (a[2] != '\0')
        break; /* No bundling: "-iv" is two options, say so. */
      return o->id;
    }
    if (a[2] != '\0') {
      p->arg = a + 2;
    } else if (p->i < p->argc) {
      p->arg = p->argv[p->i++];
    } else {
      cli_usage_error(p->cmd, "option '-%c' needs a value", a[1]);
      return CLI_OPT_BAD;
    }
    return o->id;
  }
  cli_usage_error(p->cmd, "unknown option '%s'", a);
  return CLI_OPT_BAD;
}

int cli_next(struct cli_parser *p) {
  const char *a;

  for (;;) {
    if (p->i >= p->argc)
      return CLI_OPT_END;
    a = p->argv[p->i++];
    /* "-" alone is an argument, as in most tools. */
    if (p->dashdash || a[0] != '-' || a[1] == '\0') {
      p->arg = a;
      return CLI_OPT_POS;
    }
    if (strcmp(a, "--") != 0)
      break;
    p->dashdash = 1;
  }
  return a[1] == '-' ? parse_long(p, a) : parse_short(p, a);
}

static void cli_vmessage(const char *cmd, const char *fmt, va_list ap) {
  fflush(stdout);
  if (cmd != NULL)
    fprintf(stderr, "svccomm %s: ", cmd);
  else
    fputs("svccomm: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

void cli_error(const char *cmd, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  cli_vmessage(cmd, fmt, ap);
  va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  cli_vmessage(cmd, fmt, ap);
  va_end(ap);
  if (cmd != NULL)
    fprintf(stderr, "Try 'svccomm %s --help'.\n", cmd);
  else
    fputs("Try 'svccomm --help'.\n", stderr);
  return CLI_EXIT_USAGE;
}

int cli_parse_u64(const char *cmd, const char *name, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  const char *c;
  int overflow = 0;

  /* strtoull() would take a sign, spaces and "0x": accept digits only. */
  for (c = s; *c >= '0' && *c <= '9'; c++) {
    if (v > (UINT64_MAX - (unsigned)(*c - '0')) / 10)
      overflow = 1;
    else
      v = v * 10 + (unsigned)(*c - '0');
  }
  if (c == s || *c != '\0' || overflow || v < min || v > max)
    return cli_usage_error(cmd,
                           "%s wants a whole number from %llu to %llu, "
                           "not '%s'",
                           name, (unsigned long long)min,
                           (unsigned long long)max, s);
  *out = v;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                 */

static const struct {
  const char *name;
  int (*fn)(int argc, char **argv);
} main_cmds[] = {
    {"call", cli_cmd_call},     {"pub", cli_cmd_pub},
    {"sub", cli_cmd_sub},       {"serve", cli_cmd_serve},
    {"stream", cli_cmd_stream}, {"bench", cli_cmd_bench},
};

/* Opens /dev/null on any of fds 0-2 that is closed ("svccomm ... <&-"):
 * else the loop's own descriptors would take those numbers, and reading
 * stdin or printing would hit them. */
static void main_std_fds(void) {
  int fd;

  for (fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF &&
        open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
      exit(CLI_EXIT_FAILURE);
}

int main(int argc, char **argv) {
  size_t i;

  main_std_fds();
  if (argc < 2)
    return main_help(stderr);
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
    printf("svccomm %s\n", svc_version_string());
    return CLI_EXIT_OK;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    /* "svccomm help call" is "svccomm call --help". */
    if (argc > 2 && strcmp(argv[1], "help") == 0)
      for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
        if (strcmp(argv[2], main_cmds[i].name) == 0) {
          static char help_opt[] = "--help";
          char *args[] = {argv[2], help_opt, NULL};

          return main_cmds[i].fn(2, args);
        }
    return main_help(stdout);
  }
  for (i = 0; i < sizeof(main_cmds) / sizeof(main_cmds[0]); i++)
    if (strcmp(argv[1], main_cmds[i].name) == 0)
      return main_cmds[i].fn(argc - 1, argv + 1);
  if (argv[1][0] == '-')
    return cli_usage_error(NULL, "unknown option '%s'", argv[1]);
  return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
}

int cli_positional(struct cli_parser *p, const char **slots, size_t max,
                   size_t *n) {
  if (*n == max)
    return cli_usage_error(p->cmd, "unexpected argument '%s'", p->arg);
  slots[(*n)++] = p->arg;
  return 0;
}

void cli_help(const char *help) {
  fputs(help, stdout);
  fputs(cli_exit_help, stdout);
}
