/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Route patterns: '/'-separated segments, each a literal, a parameter
 * "{name}" (one non-empty segment) or, last only, a rest parameter
 * "{name...}" (the non-empty remainder of the path, slashes included).
 *
 * Paths are split on '/' before percent-decoding, one segment at a time
 * (as Go's net/http ServeMux does), so "a%2Fb" is one segment. Decoding is
 * lenient: a '%' that does not start a valid %XX, or starts %00, stays as
 * it is. Paths that reach us have sometimes been decoded once already (the
 * URI parser decodes inproc paths), and a stray '%' there must not make a
 * route unreachable. Pattern literals are decoded the same way, so the
 * literal "a%20b" and the path "a b" match.
 *
 * Specificity. Each of the first ROUTE_DEPTH segments gives a base-3 digit,
 * the first segment the most significant:
 *
 *   score = sum over i < ROUTE_DEPTH of d(i) * 3^(ROUTE_DEPTH - 1 - i)
 *   d(i)  = 2 literal, 1 parameter, 0 rest parameter or no segment
 *
 * Comparing scores is comparing the digit strings, so among patterns that
 * match one path an earlier literal beats anything later: "users/me" (22)
 * beats "users/{id}" (21), which beats "users/{rest...}" (20) and
 * "{any...}" (0). A parameter beats a rest parameter at the same position
 * because the parameter consumed exactly one segment. ROUTE_DEPTH is 18:
 * scores then stay below 3^18 < 2^29, which leaves callers room to fold
 * tie-breakers into them (server.c computes score * 2 + 1) without
 * overflowing an int. Segments past the 18th do not count, so two patterns
 * that differ only there tie. */

#define ROUTE_DEPTH 18

enum { ROUTE_LITERAL, ROUTE_PARAM, ROUTE_REST };

struct route_seg {
  int kind;
  char *text; /* Decoded literal, or parameter name. */
  size_t len;
};

struct svc__pattern {
  struct route_seg *segs;
  size_t nsegs;
  int score;
  char *key;
};

/* The byte that s[i] stands for, and in *step how many bytes it takes. */
static int route_byte(const char *s, size_t n, size_t i, size_t *step) {
  int hi;
  int lo;

  *step = 1;
  if (s[i] != '%' || i + 2 >= n)
    return (unsigned char)s[i];
  hi = svc__hex_value((unsigned char)s[i + 1]);
  lo = svc__hex_value((unsigned char)s[i + 2]);
  if (hi < 0 || lo < 0 || (hi | lo) == 0)
    return (unsigned char)s[i];
  *step = 3;
  return hi * 16 + lo;
}

/* Decodes n bytes at s into d (room for n + 1) and returns the length. */
static size_t route_decode(const char *s, size_t n, char *d) {
  size_t i;
  size_t j;
  size_t step;

  for (i = 0, j = 0; i < n; i += step)
    d[j++] = (char)route_byte(s, n, i, &step);
  d[j] = '\0';
  return j;
}

/* Whether the raw path segment s (n bytes) decodes to lit. */
static int route_seg_equal(const char *s, size_t n, const char *lit,
                           size_t len) {
  size_t i;
  size_t j;
  size_t step;

  for (i = 0, j = 0; i < n; i += step, j++)
    if (j == len || route_byte(s, n, i, &step) != (unsigned char)lit[j])
      return 0;
  return j == len;
}

static int route_seg_parse(struct route_seg *seg, const char *s, size_t n,
                           int last) {
  const char *name;
  size_t len;

  if (memchr(s, '{', n) == NULL && memchr(s, '}', n) == NULL) {
    seg->kind = ROUTE_LITERAL;
    seg->text = svc__malloc(n + 1);
    if (seg->text == NULL)
      return SVC_ENOMEM;
    seg->len = route_decode(s, n, seg->text);
    return 0;
  }
  /* A parameter is a whole segment: "{id}", never "v{n}" or "{a}.json". */
  if (n < 2 || s[0] != '{' || s[n - 1] != '}')
    return SVC_EINVAL;
  name = s + 1;
  len = n - 2;
  if (memchr(name, '{', len) != NULL || memchr(name, '}', len) != NULL)
    return SVC_EINVAL;
  seg->kind = ROUTE_PARAM;
  if (len >= 3 && memcmp(name + len - 3, "...", 3) == 0) {
    if (!last)
      return SVC_EINVAL;
    seg->kind = ROUTE_REST;
    len -= 3;
  }
  if (len == 0)
    return SVC_EINVAL;
  seg->text = svc__strndup(name, len);
  if (seg->text == NULL)
    return SVC_ENOMEM;
  seg->len = len;
  return 0;
}

/* The key writes parameters as "{}" and "{...}" and escapes the bytes of
 * decoded literals that would make it ambiguous, so two patterns have the
 * same key exactly when they match the same paths. */
static int route_make_key(struct svc__pattern *p) {
  static const char hex[] = "0123456789ABCDEF";
  struct route_seg *seg;
  size_t size;
  size_t i;
  size_t j;
  char *k;

  size = 1;
  for (i = 0; i < p->nsegs; i++)
    size += 1 + (p->segs[i].kind == ROUTE_LITERAL ? 3 * p->segs[i].len : 5);
  p->key = k = svc__malloc(size);
  if (k == NULL)
    return SVC_ENOMEM;
  for (i = 0; i < p->nsegs; i++) {
    seg = &p->segs[i];
    if (i > 0)
      *k++ = '/';
    if (seg->kind == ROUTE_PARAM) {
      memcpy(k, "{}", 2);
      k += 2;
    } else if (seg->kind == ROUTE_REST) {
      memcpy(k, "{...}", 5);
      k += 5;
    } else {
      for (j = 0; j < seg->len; j++) {
        if (strchr("%/{}", seg->text[j]) != NULL) {
          *k++ = '%';
          *k++ = hex[(unsigned char)seg->text[j] >> 4];
          *k++ = hex[(unsigned char)seg->text[j] & 15];
        } else {
          *k++ = seg->text[j];
        }
      }
    }
  }
  *k = '\0';
  return 0;
}

int svc__pattern_compile(const char *pattern, struct svc__pattern **out) {
  struct svc__pattern *p;
  struct route_seg *seg;
  const char *s;
  const char *end;
  size_t i;
  size_t j;
  int err;

  assert(out != NULL);
  *out = NULL;
  if (pattern == NULL)
    return SVC_EINVAL;
  if (pattern[0] == '/')
    pattern++;
  p = svc__calloc(1, sizeof(*p));
  if (p == NULL)
    return SVC_ENOMEM;
  /* "" has no segments; otherwise every '/' starts one more, so a trailing
   * '/' makes a final empty segment and "users/" differs from "users". */
  if (pattern[0] != '\0')
    for (p->nsegs = 1, s = pattern; *s != '\0'; s++)
      p->nsegs += *s == '/';
  p->segs = svc__calloc(p->nsegs + 1, sizeof(*p->segs));
  err = p->segs == NULL ? SVC_ENOMEM : 0;

  for (i = 0, s = pattern; err == 0 && i < p->nsegs; i++, s = end + 1) {
    seg = &p->segs[i];
    end = s + strcspn(s, "/");
    err = route_seg_parse(seg, s, (size_t)(end - s), i + 1 == p->nsegs);
    for (j = 0; err == 0 && seg->kind != ROUTE_LITERAL && j < i; j++)
      if (p->segs[j].kind != ROUTE_LITERAL &&
          strcmp(p->segs[j].text, seg->text) == 0)
        err = SVC_EINVAL; /* Duplicate parameter name. */
  }
  if (err == 0)
    err = route_make_key(p);
  if (err != 0) {
    svc__pattern_free(p);
    return err;
  }
  for (i = 0; i < ROUTE_DEPTH; i++) {
    p->score *= 3;
    if (i < p->nsegs && p->segs[i].kind == ROUTE_LITERAL)
      p->score += 2;
    else if (i < p->nsegs && p->segs[i].kind == ROUTE_PARAM)
      p->score += 1;
  }
  *out = p;
  return 0;
}

void svc__pattern_free(struct svc__pattern *p) {
  size_t i;

  if (p == NULL)
    return;
  if (p->segs != NULL)
    for (i = 0; i < p->nsegs; i++)
      svc__free(p->segs[i].text);
  svc__free(p->segs);
  svc__free(p->key);
  svc__free(p);
}

const char *svc__pattern_key(const struct svc__pattern *p) {
  return p->key;
}

/* Matches path against p. With out NULL it only matches and adds to *need
 * the bytes that the parameter strings take; otherwise it also writes the
 * name/value pointers into out and their text into buf. 0 on a match. */
static int route_walk(const struct svc__pattern *p, const char *path,
                      size_t *need, char **out, char *buf) {
  const struct route_seg *seg;
  const char *end;
  const char *s;
  size_t i;
  size_t n;

  /* A query string ("users/1?x=2", as HTTP hands the request-target over)
   * is not part of what routes match. */
  s = path[0] == '\0' || path[0] == '?' ? NULL : path; /* NULL: none left */
  for (i = 0; i < p->nsegs; i++) {
    seg = &p->segs[i];
    if (s == NULL)
      return -1;
    end = s + strcspn(s, seg->kind == ROUTE_REST ? "?" : "/?");
    n = (size_t)(end - s);
    if (seg->kind == ROUTE_LITERAL) {
      if (!route_seg_equal(s, n, seg->text, seg->len))
        return -1;
    } else {
      if (n == 0)
        return -1;
      *need += seg->len + 1 + n + 1;
      if (out != NULL) {
        memcpy(buf, seg->text, seg->len + 1);
        *out++ = buf;
        buf += seg->len + 1;
        *out++ = buf;
        buf += route_decode(s, n, buf) + 1;
      }
    }
    s = *end == '\0' || *end == '?' ? NULL : end + 1;
  }
  if (out != NULL)
    *out = NULL;
  return s == NULL ? 0 : -1;
}

/* Besides -1 and scores, this returns SVC_ENOMEM (below -1) when params is
 * wanted and cannot be allocated: a caller that treats every negative
 * value as "no match" then answers NOT_FOUND rather than crash. */
int svc__pattern_match(const struct svc__pattern *p, const char *path,
                       char ***params) {
  char **arr;
  size_t need;
  size_t nparams;
  size_t i;

  assert(path != NULL);
  need = 0;
  if (route_walk(p, path, &need, NULL, NULL) != 0)
    return -1;
  if (params == NULL)
    return p->score;
  /* One block: the pointer array, then the strings it points into, so
   * that svc__params_free() is a single free. */
  for (nparams = 0, i = 0; i < p->nsegs; i++)
    nparams += p->segs[i].kind != ROUTE_LITERAL;
  arr = svc__malloc((2 * nparams + 1) * sizeof(*arr) + need);
  if (arr == NULL)
    return SVC_ENOMEM;
  need = 0;
  route_walk(p, path, &need, arr, (char *)(arr + 2 * nparams + 1));
  *params = arr;
  return p->score;
}

void svc__params_free(char **params) {
  svc__free(params);
}

const char *svc__params_get(char *const *params, const char *name) {
  if (params == NULL)
    return NULL;
  for (; params[0] != NULL; params += 2)
    if (strcmp(params[0], name) == 0)
      return params[1];
  return NULL;
}
