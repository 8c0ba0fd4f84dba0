/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* White-box tests of route patterns (src/route.c). */
#include "internal.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>

TestSuite(route, .timeout = 10);

static struct svc__pattern *compile(const char *s) {
  struct svc__pattern *p;
  int rc;

  p = NULL;
  rc = svc__pattern_compile(s, &p);
  cr_assert_eq(rc, 0, "compile \"%s\": %d", s, rc);
  cr_assert_not_null(p);
  return p;
}

/* Score of pattern on path, or -1. */
static int score(const char *pattern, const char *path) {
  struct svc__pattern *p;
  int rc;

  p = compile(pattern);
  rc = svc__pattern_match(p, path, NULL);
  svc__pattern_free(p);
  return rc;
}

Test(route, literal_matches_only_itself) {
  struct svc__pattern *p;
  char **params;

  p = compile("users/me");
  params = NULL;
  cr_assert_geq(svc__pattern_match(p, "users/me", &params), 0);
  cr_assert_not_null(params);
  cr_assert_null(params[0], "no parameters");
  svc__params_free(params);
  cr_assert_eq(svc__pattern_match(p, "users/you", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users/me/x", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users/me/", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "Users/me", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users/m", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users/mee", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "", NULL), -1);
  svc__pattern_free(p);
}

Test(route, leading_slash_ignored_trailing_slash_kept) {
  cr_assert_geq(score("/users", "users"), 0);
  cr_assert_geq(score("users", "users"), 0);
  cr_assert_eq(score("users/", "users"), -1);
  cr_assert_geq(score("users/", "users/"), 0);
  cr_assert_eq(score("users", "users/"), -1);
  cr_assert_geq(score("a//b", "a//b"), 0);
  cr_assert_eq(score("a//b", "a/b"), -1);
  /* "" and "/" are the root: the empty path only. */
  cr_assert_geq(score("", ""), 0);
  cr_assert_geq(score("/", ""), 0);
  cr_assert_eq(score("/", "a"), -1);
  cr_assert_eq(score("", "/"), -1);
}

Test(route, param_takes_one_nonempty_segment) {
  struct svc__pattern *p;
  char **params;

  p = compile("users/{id}");
  params = NULL;
  cr_assert_geq(svc__pattern_match(p, "users/42", &params), 0);
  cr_assert_str_eq(params[0], "id");
  cr_assert_str_eq(params[1], "42");
  cr_assert_null(params[2]);
  cr_assert_str_eq(svc__params_get(params, "id"), "42");
  cr_assert_null(svc__params_get(params, "ID"));
  cr_assert_null(svc__params_get(params, "name"));
  svc__params_free(params);
  params = NULL;
  cr_assert_eq(svc__pattern_match(p, "users", &params), -1);
  cr_assert_null(params, "no array on a miss");
  cr_assert_eq(svc__pattern_match(p, "users/", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users/42/x", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users/42/", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "groups/42", NULL), -1);
  svc__pattern_free(p);
}

Test(route, several_params) {
  struct svc__pattern *p;
  char **params;

  p = compile("/orgs/{org}/repos/{repo}/{file...}");
  cr_assert_geq(
      svc__pattern_match(p, "orgs/acme/repos/web/src/main.c", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "org"), "acme");
  cr_assert_str_eq(svc__params_get(params, "repo"), "web");
  cr_assert_str_eq(svc__params_get(params, "file"), "src/main.c");
  cr_assert_null(params[6]);
  svc__params_free(params);
  cr_assert_eq(svc__pattern_match(p, "orgs/acme/repo/web/x", NULL), -1);
  svc__pattern_free(p);
  cr_assert_null(svc__params_get(NULL, "x"));
  svc__params_free(NULL);
}

Test(route, rest_param_takes_the_remainder) {
  struct svc__pattern *p;
  char **params;

  p = compile("files/{path...}");
  cr_assert_geq(svc__pattern_match(p, "files/a", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "path"), "a");
  svc__params_free(params);
  cr_assert_geq(svc__pattern_match(p, "files/a/b/c", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "path"), "a/b/c");
  svc__params_free(params);
  cr_assert_geq(svc__pattern_match(p, "files/a/", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "path"), "a/");
  svc__params_free(params);
  cr_assert_geq(svc__pattern_match(p, "files//x", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "path"), "/x");
  svc__params_free(params);
  cr_assert_eq(svc__pattern_match(p, "files", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "files/", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "file/a", NULL), -1);
  svc__pattern_free(p);

  cr_assert_geq(score("{any...}", "x"), 0);
  cr_assert_geq(score("{any...}", "x/y/z"), 0);
  cr_assert_eq(score("{any...}", ""), -1);
}

Test(route, literal_beats_param_beats_rest) {
  int me;
  int id;
  int rest;
  int any;

  me = score("users/me", "users/me");
  id = score("users/{id}", "users/me");
  rest = score("users/{r...}", "users/me");
  any = score("{any...}", "users/me");
  cr_assert_gt(me, id);
  cr_assert_gt(id, rest);
  cr_assert_gt(rest, any);
  cr_assert_geq(any, 0);
  /* Order of registration is irrelevant: the score is the pattern's. */
  cr_assert_eq(score("users/{id}", "users/42"), id);
}

Test(route, earlier_literals_dominate) {
  /* "a/b/{y}" has its first parameter later than "a/{x}/c". */
  cr_assert_gt(score("a/b/{y}", "a/b/c"), score("a/{x}/c", "a/b/c"));
  cr_assert_gt(score("a/{x}/c", "a/b/c"), score("{w}/b/c", "a/b/c"));
  cr_assert_gt(score("a/{x}/{y}", "a/b/c"), score("{w}/b/c", "a/b/c"));
  cr_assert_gt(score("a/{x}/{r...}", "a/b/c"), score("a/{r...}", "a/b/c"));
  cr_assert_gt(score("a/{r...}", "a/b/c"), score("{x}/b/c", "a/b/c"));
  cr_assert_gt(score("a/b/c", "a/b/c"), score("a/b/{c}", "a/b/c"));
}

Test(route, deep_patterns_do_not_overflow) {
  char pattern[256];
  char path[256];
  int i;
  int s;

  pattern[0] = path[0] = '\0';
  for (i = 0; i < 40; i++) {
    strcat(pattern, i ? "/x" : "x");
    strcat(path, i ? "/x" : "x");
  }
  s = score(pattern, path);
  cr_assert_gt(s, 0);
  /* Documented bound: callers may double a score and add one. */
  cr_assert_lt(s, 1 << 29);
  cr_assert_leq(s, (INT_MAX - 1) / 2);
  cr_assert_gt(s, score("{p}", "x") * 2, "literal depth counts");
  cr_assert_gt(s, score("x/{r...}", path));

  /* The 18th segment still counts. */
  pattern[0] = path[0] = '\0';
  for (i = 0; i < 17; i++) {
    strcat(pattern, "x/");
    strcat(path, "x/");
  }
  strcat(path, "x");
  cr_assert_gt(score("x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x/x", path),
               score(strcat(pattern, "{p}"), path));
}

Test(route, values_are_percent_decoded) {
  struct svc__pattern *p;
  char **params;

  p = compile("users/{id}");
  cr_assert_geq(svc__pattern_match(p, "users/a%20b", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "a b");
  svc__params_free(params);
  /* %2F is a byte of the segment, not a separator. */
  cr_assert_geq(svc__pattern_match(p, "users/a%2Fb", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "a/b");
  svc__params_free(params);
  /* A '%' that is no escape, and %00, stay as they are. */
  cr_assert_geq(svc__pattern_match(p, "users/100%", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "100%");
  svc__params_free(params);
  cr_assert_geq(svc__pattern_match(p, "users/%zz%4", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "%zz%4");
  svc__params_free(params);
  cr_assert_geq(svc__pattern_match(p, "users/a%00b", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "a%00b");
  svc__params_free(params);
  cr_assert_geq(svc__pattern_match(p, "users/%c3%A9", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "\xc3\xa9");
  svc__params_free(params);
  svc__pattern_free(p);

  p = compile("f/{rest...}");
  cr_assert_geq(svc__pattern_match(p, "f/a%20b/c%2Fd", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "rest"), "a b/c/d");
  svc__params_free(params);
  svc__pattern_free(p);
}

Test(route, literals_compare_decoded) {
  cr_assert_geq(score("users/me", "users/m%65"), 0);
  cr_assert_geq(score("users/m%65", "users/me"), 0);
  cr_assert_geq(score("a%20b", "a b"), 0);
  cr_assert_geq(score("a%2Fb", "a%2fb"), 0);
  cr_assert_eq(score("a%2Fb", "a/b"), -1, "an escaped '/' is no separator");
  cr_assert_eq(score("a/b", "a%2Fb"), -1);
  cr_assert_eq(score("me", "m%6"), -1);
  cr_assert_geq(score("100%", "100%"), 0);
}

Test(route, invalid_patterns) {
  static const char *const bad[] = {
      "{}",   "{...}", "a{b}",      "{a}b",      "{a",         "a}",
      "a/{",  "}",     "{a...}/b",  "{a}/{a}",   "{a}/{a...}", "{a{b}}",
      "{a}}", "{{a}",  "x/{a...}/", "{a}/x/{a}", "/{...}"};
  struct svc__pattern *p;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    p = (struct svc__pattern *)&p;
    cr_assert_eq(svc__pattern_compile(bad[i], &p), SVC_EINVAL, "\"%s\"",
                 bad[i]);
    cr_assert_null(p, "\"%s\": *out not cleared", bad[i]);
  }
  p = NULL;
  cr_assert_eq(svc__pattern_compile(NULL, &p), SVC_EINVAL);
  svc__pattern_free(NULL);
}

Test(route, odd_but_valid_patterns) {
  struct svc__pattern *p;
  char **params;

  /* Names are any bytes but braces; "..." only at the end means rest. */
  p = compile("{a.b}/{x...y}/{....}");
  cr_assert_geq(svc__pattern_match(p, "1/2/3/4", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "a.b"), "1");
  cr_assert_str_eq(svc__params_get(params, "x...y"), "2");
  cr_assert_str_eq(svc__params_get(params, "."), "3/4");
  svc__params_free(params);
  svc__pattern_free(p);
}

struct key_case {
  const char *pattern;
  const char *key;
};

Test(route, keys) {
  static const struct key_case t[] = {
      {"users/{id}", "users/{}"},
      {"/users/{name}", "users/{}"},
      {"files/{p...}", "files/{...}"},
      {"{a}/{b}/{c...}", "{}/{}/{...}"},
      {"users/", "users/"},
      {"users", "users"},
      {"", ""},
      {"/", ""},
      {"a%20b", "a b"},
      {"a b", "a b"},
      {"a%2Fb", "a%2Fb"},
      {"a%2fb/%7B%7D", "a%2Fb/%7B%7D"},
      {"100%", "100%25"},
      {"a//b", "a//b"},
  };
  struct svc__pattern *p;
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    p = compile(t[i].pattern);
    cr_assert_str_eq(svc__pattern_key(p), t[i].key, "\"%s\": key \"%s\"",
                     t[i].pattern, svc__pattern_key(p));
    svc__pattern_free(p);
  }
}

Test(route, duplicate_keys_detect_equivalent_patterns) {
  static const char *const same[][2] = {
      {"users/{id}", "/users/{name}"},
      {"f/{a...}", "f/{b...}"},
      {"a%20b/{x}", "a b/{y}"},
      {"users/m%65", "users/me"},
  };
  static const char *const differ[][2] = {
      {"users/{id}", "users/{id...}"},
      {"users", "users/"},
      {"a%2Fb", "a/b"},
      {"{x}", "%7Bx%7D"},
      {"users/{id}", "users/me"},
  };
  struct svc__pattern *p;
  struct svc__pattern *q;
  size_t i;

  for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
    p = compile(same[i][0]);
    q = compile(same[i][1]);
    cr_assert_str_eq(svc__pattern_key(p), svc__pattern_key(q), "%s vs %s",
                     same[i][0], same[i][1]);
    svc__pattern_free(p);
    svc__pattern_free(q);
  }
  for (i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
    p = compile(differ[i][0]);
    q = compile(differ[i][1]);
    cr_assert_str_neq(svc__pattern_key(p), svc__pattern_key(q), "%s vs %s",
                      differ[i][0], differ[i][1]);
    svc__pattern_free(p);
    svc__pattern_free(q);
  }
}

Test(route, literal_braces_by_escape) {
  /* A literal "{x}" segment is written escaped and is no parameter. */
  cr_assert_geq(score("%7Bx%7D", "{x}"), 0);
  cr_assert_geq(score("%7Bx%7D", "%7bx%7d"), 0);
  cr_assert_eq(score("%7Bx%7D", "y"), -1);
}

/* HTTP hands the request-target over with its query ("users/1?x=2"): routes
 * match the path before '?' and parameters never include the query. */
Test(route, query_string_is_ignored) {
  struct svc__pattern *p;
  char **params;

  cr_assert_geq(score("users", "users?x=1"), 0);
  cr_assert_geq(score("", "?x"), 0);
  cr_assert_eq(score("users", "users/?x"), -1);
  cr_assert_eq(score("users", "users2?x"), -1);
  p = compile("users/{id}");
  cr_assert_geq(svc__pattern_match(p, "users/7?x=2&y=/a", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "id"), "7");
  svc__params_free(params);
  cr_assert_eq(svc__pattern_match(p, "users/?x", NULL), -1);
  cr_assert_eq(svc__pattern_match(p, "users?x=/7", NULL), -1);
  svc__pattern_free(p);
  p = compile("files/{path...}");
  cr_assert_geq(svc__pattern_match(p, "files/a/b?c/d", &params), 0);
  cr_assert_str_eq(svc__params_get(params, "path"), "a/b");
  svc__params_free(params);
  svc__pattern_free(p);
  /* Encoded, '?' is an ordinary character of a segment. */
  cr_assert_geq(score("{q}", "a%3Fb"), 0);
}
