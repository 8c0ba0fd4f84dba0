/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* What the commands share besides option parsing: exit codes, -H headers,
 * request bodies, output, and the loop with its context. */

#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const char cli_exit_help[] =
    "Exit status:\n"
    "  0  success (call: the reply's status was OK)\n"
    "  1  local failure: a file or stdout failed, no memory, bind failed\n"
    "  2  usage: unknown option, missing or bad argument\n"
    "  3  URI refused: malformed, or no backend for its scheme\n"
    "  4  UNAVAILABLE: the peer is unreachable or went away\n"
    "  5  DEADLINE_EXCEEDED; sub: fewer than --count events in time\n"
    "  6  NOT_FOUND, UNIMPLEMENTED\n"
    "  7  other client-side statuses (HTTP 4xx): CANCELLED,\n"
    "     INVALID_ARGUMENT, ALREADY_EXISTS, PERMISSION_DENIED,\n"
    "     RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE,\n"
    "     UNAUTHENTICATED\n"
    "  8  server-side statuses (HTTP 5xx): UNKNOWN, INTERNAL, DATA_LOSS\n";

/* ------------------------------------------------------------------------ */
/* Exit codes                                                               */

int cli_exit_status(int status) {
  switch (status) {
  case SVC_STATUS_OK:
    return CLI_EXIT_OK;
  case SVC_STATUS_UNAVAILABLE:
    return CLI_EXIT_UNAVAILABLE;
  case SVC_STATUS_DEADLINE_EXCEEDED:
    return CLI_EXIT_DEADLINE;
  case SVC_STATUS_NOT_FOUND:
  case SVC_STATUS_UNIMPLEMENTED:
    return CLI_EXIT_NOT_FOUND;
  default:
    /* The rest by the class of their HTTP code; out of range gives 500. */
    return svc_status_to_http(status) >= 500 ? CLI_EXIT_SERVER
                                             : CLI_EXIT_CLIENT;
  }
}

int cli_exit_err(int err, int sync) {
  if (sync && (err == SVC_EINVAL || err == SVC_ESCHEME || err == SVC_ENOTSUP))
    return CLI_EXIT_URI;
  if (err == SVC_ENOMEM)
    return CLI_EXIT_FAILURE;
  return cli_exit_status(svc_status_from_err(err));
}

int cli_verb_error(const char *cmd, const char *uri, int err) {
  if (err == SVC_EINVAL)
    cli_error(cmd, "bad URI '%s' (%s)", uri, svc_strerror(err));
  else
    cli_error(cmd, "'%s': %s", uri, svc_strerror(err));
  return cli_exit_err(err, 1);
}

/* ------------------------------------------------------------------------ */
/* Headers and bodies                                                       */

static int headers_bad(const char *cmd, const char *line, const char *why) {
  return cli_usage_error(cmd, "bad header '%s': %s", line, why);
}

int cli_headers_add(struct cli_headers *h, const char *cmd, const char *line) {
  const char *colon = strchr(line, ':');
  const char *value;
  const char **pairs;
  size_t nlen;
  size_t vlen;
  size_t i;
  char *name;
  char *val;

  if (colon == NULL)
    return headers_bad(cmd, line, "want 'Name: value'");
  nlen = (size_t)(colon - line);
  while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
    nlen--;
  if (nlen == 0 || nlen > 255)
    return headers_bad(cmd, line, "the name must have 1 to 255 bytes");
  for (i = 0; i < nlen; i++)
    if ((unsigned char)line[i] <= ' ' || (unsigned char)line[i] >= 0x7f)
      return headers_bad(cmd, line, "the name must be visible ASCII");
  value = colon + 1;
  while (*value == ' ' || *value == '\t')
    value++;
  vlen = strlen(value);
  while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
    vlen--;
  if (memchr(value, '\r', vlen) != NULL || memchr(value, '\n', vlen) != NULL)
    return headers_bad(cmd, line, "the value must be one line");

  name = strndup(line, nlen);
  val = strndup(value, vlen);
  pairs = realloc(h->pairs, (h->n + 1) * 2 * sizeof(*pairs));
  if (name == NULL || val == NULL || pairs == NULL) {
    free(name);
    free(val);
    if (pairs != NULL)
      h->pairs = pairs;
    cli_error(cmd, "out of memory");
    return CLI_EXIT_FAILURE;
  }
  h->pairs = pairs;
  if (!h->plain_content_type && strcasecmp(name, "content-type") == 0) {
    free(h->content_type);
    h->content_type = val;
    free(name);
    return 0;
  }
  pairs[2 * h->n] = name;
  pairs[2 * h->n + 1] = val;
  h->n++;
  return 0;
}

int cli_headers_apply(const struct cli_headers *h, svc_msg_t *msg) {
  size_t i;
  int rc;

  for (i = 0; i < h->n; i++)
    if ((rc = svc_msg_header_add(msg, h->pairs[2 * i], h->pairs[2 * i + 1])) !=
        0)
      return rc;
  if (h->content_type != NULL)
    return svc_msg_set_content_type(msg, h->content_type);
  return 0;
}

void cli_headers_free(struct cli_headers *h) {
  size_t i;

  for (i = 0; i < 2 * h->n; i++)
    free((void *)h->pairs[i]);
  free(h->pairs);
  free(h->content_type);
  memset(h, 0, sizeof(*h));
}

int cli_load_data(const char *cmd, const char *spec, char **buf, size_t *len) {
  const char *path = spec + 1;
  FILE *f;
  char *b = NULL;
  char *nb;
  size_t n = 0;
  size_t cap = 0;
  size_t got;

  *buf = NULL;
  *len = 0;
  if (spec[0] != '@') {
    if ((n = strlen(spec)) == 0)
      return 0;
    if ((*buf = malloc(n)) == NULL) {
      cli_error(cmd, "out of memory");
      return CLI_EXIT_FAILURE;
    }
    memcpy(*buf, spec, n);
    *len = n;
    return 0;
  }
  f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (f == NULL) {
    cli_error(cmd, "cannot read '%s': %s", path, strerror(errno));
    return CLI_EXIT_FAILURE;
  }
  for (;;) {
    if (n == cap) {
      cap = cap != 0 ? 2 * cap : 64 * 1024;
      if ((nb = realloc(b, cap)) == NULL) {
        cli_error(cmd, "out of memory reading '%s'", path);
        break;
      }
      b = nb;
    }
    got = fread(b + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
  }
  if (n != cap && !ferror(f) && feof(f)) {
    if (f != stdin)
      fclose(f);
    if (n == 0) {
      free(b);
      b = NULL;
    }
    *buf = b;
    *len = n;
    return 0;
  }
  if (ferror(f))
    cli_error(cmd, "cannot read '%s': %s", path, strerror(errno));
  if (f != stdin)
    fclose(f);
  free(b);
  return CLI_EXIT_FAILURE;
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */

int cli_write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  struct pollfd pfd;
  ssize_t n;

  while (len > 0) {
    n = write(fd, p, len);
    if (n >= 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -1;
    /* A descriptor someone made non-blocking (it may share its open file
     * with our stdin, which libuv makes non-blocking): wait for room. */
    pfd.fd = fd;
    pfd.events = POLLOUT;
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
      return -1;
  }
  return 0;
}

void cli_print_msg_headers(const svc_msg_t *msg) {
  const char *name;
  const char *value;
  size_t i;

  for (i = 0; svc_msg_header_at(msg, i, &name, &value) == 0; i++)
    printf("%s: %s\n", name, value);
  if (svc_msg_content_type(msg) != NULL)
    printf("Content-Type: %s\n", svc_msg_content_type(msg));
}

/* ------------------------------------------------------------------------ */
/* The loop and the context                                                 */

static void rt_on_signal(uv_signal_t *h, int signum) {
  struct cli_rt *rt = h->data;

  if (rt->closing) {
    /* A second Ctrl-C while closing means now. timeout(1) sends SIGTERM
     * twice (to us and to our process group): that one is ignored. */
    if (signum == SIGINT)
      exit(128 + SIGINT);
    return;
  }
  rt->on_signal(rt, signum);
}

static void rt_ctx_closed(svc_ctx_t *ctx, void *arg) {
  struct cli_rt *rt = arg;

  (void)ctx;
  rt->ctx = NULL;
  /* The watchers live until the context has closed, so that a signal
   * during the close does not kill us halfway. */
  if (rt->signals) {
    uv_close((uv_handle_t *)&rt->sig_int, NULL);
    uv_close((uv_handle_t *)&rt->sig_term, NULL);
  }
}

int cli_rt_init(struct cli_rt *rt, const char *cmd,
                void (*on_signal)(struct cli_rt *rt, int signum)) {
  int rc;

  memset(rt, 0, sizeof(*rt));
  rc = uv_loop_init(&rt->loop);
  if (rc != 0) {
    cli_error(cmd, "uv_loop_init: %s", uv_strerror(rc));
    return CLI_EXIT_FAILURE;
  }
  rc = svc_ctx_init(&rt->loop, NULL, &rt->ctx);
  if (rc != 0) {
    cli_error(cmd, "svc_ctx_init: %s", svc_strerror(rc));
    uv_loop_close(&rt->loop);
    return CLI_EXIT_FAILURE;
  }
  rt->on_signal = on_signal;
  if (on_signal != NULL) {
    uv_signal_init(&rt->loop, &rt->sig_int);
    uv_signal_init(&rt->loop, &rt->sig_term);
    rt->sig_int.data = rt;
    rt->sig_term.data = rt;
    uv_signal_start(&rt->sig_int, rt_on_signal, SIGINT);
    uv_signal_start(&rt->sig_term, rt_on_signal, SIGTERM);
    rt->signals = 1;
  }
  return 0;
}

void cli_rt_close(struct cli_rt *rt) {
  if (rt->closing)
    return;
  rt->closing = 1;
  svc_ctx_close(rt->ctx, rt_ctx_closed, rt);
}

static void rt_print_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "svccomm:   %s handle %p%s\n", uv_handle_type_name(h->type),
          (void *)h, uv_is_closing(h) ? " (closing)" : "");
}

int cli_rt_run(struct cli_rt *rt, const char *cmd) {
  /* Only our own handles and the context's are on this loop, and no
   * svc_call_sync() is ever made: uv_run() is what svc_ctx_run() would do. */
  uv_run(&rt->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&rt->loop) == 0)
    return CLI_EXIT_OK;
  cli_error(cmd, "handles left open on the loop:");
  uv_walk(&rt->loop, rt_print_handle, NULL);
  return CLI_EXIT_FAILURE;
}

int cli_make_msg(const char *cmd, const char *spec, struct cli_headers *h,
                 svc_msg_t **out) {
  char *buf = NULL;
  size_t len = 0;
  svc_msg_t *msg = NULL;
  int rc = 0;

  if (spec != NULL)
    rc = cli_load_data(cmd, spec, &buf, &len);
  if (rc == 0) {
    msg = buf != NULL ? svc_msg_new_take(buf, len, free) : svc_msg_new(NULL, 0);
    if (msg == NULL) {
      free(buf);
      cli_error(cmd, "out of memory");
      rc = CLI_EXIT_FAILURE;
    }
  }
  if (rc == 0 && (rc = cli_headers_apply(h, msg)) != 0) {
    cli_error(cmd, "bad header: %s", svc_strerror(rc));
    rc = CLI_EXIT_USAGE;
  }
  cli_headers_free(h);
  if (rc != 0) {
    svc_msg_free(msg);
    msg = NULL;
  }
  *out = msg;
  return rc;
}
