/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_CLI_H
#define SVC_CLI_H

/* The svccomm command-line tool (docs/cli.md). main.c dispatches to one
 * cli_cmd_<name>() per command, each in its own file, and holds what they
 * share: option parsing, exit codes, headers, request bodies, output, and
 * the loop and context every command runs on. */

#include <svccomm.h>

#include <stddef.h>
#include <stdint.h>

/* Exit codes, the same for every command (printed by --help; keep
 * docs/cli.md in step). A call's status picks its code by the class of its
 * HTTP mapping (svccomm/status.h), with the statuses scripts test most
 * often on codes of their own. */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILURE = 1,     /* Local failure: I/O, memory, bind, ... */
  CLI_EXIT_USAGE = 2,       /* Bad option or argument. */
  CLI_EXIT_URI = 3,         /* URI refused, or no backend for its scheme. */
  CLI_EXIT_UNAVAILABLE = 4, /* UNAVAILABLE: unreachable, connection lost. */
  CLI_EXIT_DEADLINE = 5,    /* DEADLINE_EXCEEDED; sub: --count not reached. */
  CLI_EXIT_NOT_FOUND = 6,   /* NOT_FOUND, UNIMPLEMENTED. */
  CLI_EXIT_CLIENT = 7,      /* Other statuses that map to HTTP 4xx. */
  CLI_EXIT_SERVER = 8       /* UNKNOWN, INTERNAL, DATA_LOSS (HTTP 5xx). */
};

/* The exit-code table as --help prints it. */
extern const char cli_exit_help[];

/* ---- Options. */

/* One option a command accepts. has_arg: 0 flag, 1 takes a value. */
struct cli_opt {
  int id;
  char short_name;       /* 0: none. */
  const char *long_name; /* NULL: none. */
  int has_arg;
};

enum {
  CLI_OPT_END = -1, /* No arguments left. */
  CLI_OPT_BAD = -2, /* Unknown option or missing value; message printed. */
  CLI_OPT_POS = -3, /* A positional argument, in arg. */
  CLI_OPT_HELP = -4 /* -h or --help, which every command accepts. */
};

/* Walks argv[1..]: options may come before, between and after positional
 * arguments; "--" ends options; values come as "-d VALUE", "-dVALUE",
 * "--data VALUE" or "--data=VALUE". */
struct cli_parser {
  const char *cmd; /* For messages: "call". */
  const struct cli_opt *opts;
  size_t nopts;
  int argc;
  char **argv;
  int i;
  int dashdash;
  const char *arg;  /* The value of the last option, or the positional. */
  const char *name; /* The last option as written, for messages. */
};

void cli_parser_init(struct cli_parser *p, const char *cmd,
                     const struct cli_opt *opts, size_t nopts, int argc,
                     char **argv);

/* cli_next() returns an option id or one of CLI_OPT_*. */
int cli_next(struct cli_parser *p);

/* cli_positional() stores the positional argument just returned (p->arg)
 * in the next of max slots (*n counts them). 0, or CLI_EXIT_USAGE after
 * saying so when all max are taken. */
int cli_positional(struct cli_parser *p, const char **slots, size_t max,
                   size_t *n);

/* cli_help() prints a command's help text and the exit-code table. */
void cli_help(const char *help);

/* cli_usage_error() prints "svccomm CMD: message" and a pointer to --help
 * on stderr and returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* cli_error() prints "svccomm CMD: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* cli_parse_u64() parses a decimal number in [min, max] for option name.
 * Returns 0, or CLI_EXIT_USAGE after printing why. */
int cli_parse_u64(const char *cmd, const char *name, const char *s,
                  uint64_t min, uint64_t max, uint64_t *out);

/* ---- Exit codes. */

/* cli_exit_status() gives the exit code of a call status. */
int cli_exit_status(int status);

/* cli_exit_err() gives the exit code of a negative error: the URI class for
 * SVC_EINVAL and SVC_ESCHEME when sync is set (a verb refused its URI at
 * once), else the class of svc_status_from_err(). */
int cli_exit_err(int err, int sync);

/* cli_verb_error() reports that a verb refused uri at once with err and
 * returns the exit code (cli_exit_err() with sync set). */
int cli_verb_error(const char *cmd, const char *uri, int err);

/* ---- Headers and bodies. */

/* Headers given with -H, as the name/value pairs the option structs take. A
 * Content-Type header is kept apart: it becomes the message's content
 * type. */
struct cli_headers {
  const char **pairs;     /* name0, value0, ...; the strings are owned. */
  size_t n;               /* Pairs. */
  char *content_type;     /* Owned, or NULL. */
  int plain_content_type; /* Set by the caller: keep it as a header. */
};

/* cli_headers_add() parses "Name: value". Returns 0, or CLI_EXIT_USAGE
 * after printing why. */
int cli_headers_add(struct cli_headers *h, const char *cmd, const char *line);

/* cli_headers_apply() adds the headers and content type to msg. Returns 0
 * or a negative SVC_E* code. */
int cli_headers_apply(const struct cli_headers *h, svc_msg_t *msg);

void cli_headers_free(struct cli_headers *h);

/* cli_load_data() reads a body: "@FILE" reads FILE ("@-": standard input),
 * anything else is the body itself. Stores a buffer the caller frees (NULL
 * when empty) and its length. Returns 0, or CLI_EXIT_FAILURE after printing
 * why. */
int cli_load_data(const char *cmd, const char *spec, char **buf, size_t *len);

/* cli_make_msg() builds the message a command sends: the body from spec
 * (as cli_load_data(); NULL for none) and the headers, which it frees.
 * Returns 0 and the message in *out, or an exit code after printing why. */
int cli_make_msg(const char *cmd, const char *spec, struct cli_headers *h,
                 svc_msg_t **out);

/* cli_write_all() writes len bytes to fd, waiting while a non-blocking fd
 * is full. Returns 0 or -1 (errno set). */
int cli_write_all(int fd, const void *buf, size_t len);

/* cli_print_msg_headers() writes msg's headers, one "Name: value" line
 * each, then "Content-Type: ..." when it has one, to stdout. */
void cli_print_msg_headers(const svc_msg_t *msg);

/* ---- The loop and context a command runs on. */

struct cli_rt {
  uv_loop_t loop;
  svc_ctx_t *ctx;
  uv_signal_t sig_int;
  uv_signal_t sig_term;
  int signals; /* The signal watchers were started. */
  int closing;
  /* Called once, on the first SIGINT or SIGTERM, when signals is set. */
  void (*on_signal)(struct cli_rt *rt, int signum);
  void *data;
};

/* cli_rt_init() makes the loop and a context on it; with on_signal, also
 * watches SIGINT and SIGTERM. Returns 0 or CLI_EXIT_FAILURE after printing
 * why. */
int cli_rt_init(struct cli_rt *rt, const char *cmd,
                void (*on_signal)(struct cli_rt *rt, int signum));

/* cli_rt_close() closes the context, then the signal watchers. The
 * command closes its own handles. Safe to call more than once. */
void cli_rt_close(struct cli_rt *rt);

/* cli_rt_run() runs the loop until nothing is left on it and closes it.
 * Returns 0, or CLI_EXIT_FAILURE when handles were left open. */
int cli_rt_run(struct cli_rt *rt, const char *cmd);

/* ---- Commands: each takes argv from its name on and returns the exit
 * code. */
int cli_cmd_call(int argc, char **argv);
int cli_cmd_pub(int argc, char **argv);
int cli_cmd_sub(int argc, char **argv);
int cli_cmd_serve(int argc, char **argv);
int cli_cmd_stream(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);

/* bench/svc_bench.c, compiled with SVC_BENCH_NO_MAIN. */
int svc_bench_main(int argc, char **argv);

#endif /* SVC_CLI_H */
