/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The policy file: "[URI]" starts an endpoint's section, "key = value"
 * lines set its fields, '#' or ';' start a comment line, blank lines are
 * ignored. The whole file is read and checked before anything is set, so
 * a typo never leaves half a configuration applied. */

#define LINE_MAX_LEN 1024

struct section {
  char *uri;
  svc_policy_t p;
};

static char *trim(char *s) {
  char *e;

  while (*s == ' ' || *s == '\t')
    s++;
  e = s + strlen(s);
  while (e > s &&
         (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
    *--e = '\0';
  return s;
}

static int parse_u64(const char *v, uint64_t *out) {
  return svc__parse_decimal(v, strlen(v), out);
}

static int parse_uint(const char *v, unsigned *out) {
  uint64_t n;

  if (parse_u64(v, &n) != 0 || n > 0xffffffffu)
    return SVC_EINVAL;
  *out = (unsigned)n;
  return 0;
}

static int parse_rate(const char *v, double *out) {
  char *end;
  double d;

  errno = 0;
  d = strtod(v, &end);
  if (end == v || *end != '\0' || errno != 0 || !(d >= 0 && d <= 1.0))
    return SVC_EINVAL;
  *out = d;
  return 0;
}

static int set_key(svc_policy_t *p, const char *key, const char *v) {
  uint64_t n;

  if (strcmp(key, "timeout_ms") == 0)
    return parse_u64(v, &p->timeout_ms);
  if (strcmp(key, "max_in_flight") == 0)
    return parse_uint(v, &p->max_in_flight);
  if (strcmp(key, "max_queued") == 0) {
    if (parse_u64(v, &n) != 0)
      return SVC_EINVAL;
    p->max_queued = (size_t)n;
    return 0;
  }
  if (strcmp(key, "overflow") == 0) {
    if (strcmp(v, "fail_new") == 0)
      p->overflow = SVC_OVERFLOW_FAIL_NEW;
    else if (strcmp(v, "drop_oldest") == 0)
      p->overflow = SVC_OVERFLOW_DROP_OLDEST;
    else if (strcmp(v, "drop_newest") == 0)
      p->overflow = SVC_OVERFLOW_DROP_NEWEST;
    else
      return SVC_EINVAL;
    return 0;
  }
  if (strcmp(key, "breaker_failures") == 0)
    return parse_uint(v, &p->breaker_failures);
  if (strcmp(key, "breaker_error_rate") == 0)
    return parse_rate(v, &p->breaker_error_rate);
  if (strcmp(key, "breaker_window") == 0)
    return parse_uint(v, &p->breaker_window) != 0 || p->breaker_window > 1024
               ? SVC_EINVAL
               : 0;
  if (strcmp(key, "breaker_cooldown_ms") == 0)
    return parse_u64(v, &p->breaker_cooldown_ms);
  if (strcmp(key, "breaker_probes") == 0)
    return parse_uint(v, &p->breaker_probes);
  return SVC_EINVAL;
}

/* A section header "[URI]": the URI, checked, new, in *out. */
static int parse_header(char *s, char **out) {
  char *endpoint;
  char *filter;
  size_t n = strlen(s);
  int rc;

  if (n < 3 || s[n - 1] != ']')
    return SVC_EINVAL;
  s[n - 1] = '\0';
  s = trim(s + 1);
  rc = svc__policy_key(s, &endpoint, &filter);
  if (rc != 0)
    return rc;
  svc__free(endpoint);
  svc__free(filter);
  *out = svc__strdup(s);
  return *out != NULL ? 0 : SVC_ENOMEM;
}

static void sections_free(struct section *secs, size_t n) {
  size_t i;

  for (i = 0; i < n; i++)
    svc__free(secs[i].uri);
  svc__free(secs);
}

/* Reads f into *secs (*n of them). 0, or an error with *line set. */
static int read_sections(FILE *f, struct section **secs, size_t *n, int *line) {
  char buf[LINE_MAX_LEN + 2];
  struct section *cur = NULL;
  size_t cap = 0;
  int rc;

  *secs = NULL;
  *n = 0;
  for (*line = 1; fgets(buf, sizeof(buf), f) != NULL; (*line)++) {
    char *s;
    char *eq;

    if (strchr(buf, '\n') == NULL && !feof(f))
      return SVC_EINVAL; /* Longer than any sensible line. */
    s = trim(buf);
    if (*s == '\0' || *s == '#' || *s == ';')
      continue;
    if (*s == '[') {
      if (*n == cap) {
        size_t ncap = cap ? cap * 2 : 8;
        struct section *m = svc__realloc(*secs, ncap * sizeof(*m));
        if (m == NULL)
          return SVC_ENOMEM;
        *secs = m;
        cap = ncap;
      }
      cur = &(*secs)[*n];
      memset(cur, 0, sizeof(*cur));
      rc = parse_header(s, &cur->uri);
      if (rc != 0)
        return rc;
      (*n)++;
      continue;
    }
    eq = strchr(s, '=');
    if (cur == NULL || eq == NULL)
      return SVC_EINVAL; /* A key outside a section, or no '='. */
    *eq = '\0';
    rc = set_key(&cur->p, trim(s), trim(eq + 1));
    if (rc != 0)
      return rc;
  }
  *line = 0;
  return ferror(f) ? SVC_EINVAL : 0;
}

int svc_policy_load(svc_ctx_t *ctx, const char *path, int *line) {
  struct section *secs;
  size_t n = 0;
  size_t i;
  int at = 0;
  FILE *f;
  int rc;

  if (line != NULL)
    *line = 0;
  if (ctx == NULL || path == NULL)
    return SVC_EINVAL;
  f = fopen(path, "r");
  if (f == NULL)
    return errno == ENOENT ? SVC_ENOENT : -errno;
  rc = read_sections(f, &secs, &n, &at);
  fclose(f);
  /* Every value was checked as it was read: setting cannot fail on one
   * (only on memory). */
  for (i = 0; rc == 0 && i < n; i++)
    rc = svc__policy_apply(ctx, secs[i].uri, &secs[i].p);
  sections_free(secs, n);
  if (rc != 0) {
    if (line != NULL)
      *line = at;
    return rc;
  }
  return (int)n;
}
