/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* White-box tests of the MQTT topic rules (src/topic.c). */
#include "internal.h"

#include <criterion/criterion.h>
#include <stdlib.h>

TestSuite(topic, .timeout = 10);

struct match_case {
  const char *filter;
  const char *topic;
  int match;
};

/* The examples of MQTT 3.1.1 section 4.7 and MQTT 5 section 4.7, plus the
 * edges between them. */
static const struct match_case match_table[] = {
    {"sport/tennis/player1/#", "sport/tennis/player1", 1},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", 1},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1},
    {"sport/tennis/player1/#", "sport/tennis/player2", 0},
    {"sport/tennis/player1/#", "sport/tennis", 0},
    {"sport/#", "sport", 1},
    {"sport/#", "sport/", 1},
    {"sport/#", "sports", 0},
    {"sport/tennis/+", "sport/tennis/player1", 1},
    {"sport/tennis/+", "sport/tennis/player2", 1},
    {"sport/tennis/+", "sport/tennis/player1/ranking", 0},
    {"sport/tennis/+", "sport/tennis", 0},
    {"sport/+", "sport", 0},
    {"sport/+", "sport/", 1},
    {"sport/+/player1", "sport/tennis/player1", 1},
    {"sport/+/player1", "sport/tennis/player2", 0},
    {"+/tennis/#", "sport/tennis/player1", 1},
    {"+/tennis/#", "sport/tennis", 1},
    {"+/+", "/finance", 1},
    {"/+", "/finance", 1},
    {"+", "/finance", 0},
    {"+", "finance", 1},
    {"+", "", 1},
    {"+/+", "a", 0},
    {"#", "a/b/c", 1},
    {"#", "/", 1},
    {"#", "", 1},
    {"a//b", "a//b", 1},
    {"a/+/b", "a//b", 1},
    {"a/b", "a/b/", 0},
    {"a/b/", "a/b", 0},
    {"a/b", "a/bc", 0},
    {"a/bc", "a/b", 0},
    {"ab", "a", 0},
    {"a/+/#", "a/b", 1},
    {"a/+/#", "a", 0},
    {"+/#", "a", 1},
    /* '$' topics and leading wildcards. */
    {"#", "$SYS/monitor/Clients", 0},
    {"+/monitor/Clients", "$SYS/monitor/Clients", 0},
    {"$SYS/#", "$SYS/monitor/Clients", 1},
    {"$SYS/#", "$SYS", 1},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", 1},
    {"+", "$SYS", 0},
    {"#", "$", 0},
    {"a/#", "a/$b", 1},
    {"a/+", "a/$b", 1},
    {"+/$b", "a/$b", 1},
    {"$SYS", "$SYS", 1},
    {"$SYS", "$SYs", 0},
};

Test(topic, mqtt_match_table) {
  size_t i;
  const struct match_case *c;

  for (i = 0; i < sizeof(match_table) / sizeof(match_table[0]); i++) {
    c = &match_table[i];
    cr_assert_eq(svc__topic_check_filter(c->filter), 0, "filter %s", c->filter);
    cr_assert_eq(!!svc__topic_match(c->filter, c->topic), c->match,
                 "filter \"%s\" topic \"%s\": want %d", c->filter, c->topic,
                 c->match);
  }
}

Test(topic, literal_filter_matches_only_itself) {
  cr_assert(svc__topic_match("a/b/c", "a/b/c"));
  cr_assert_not(svc__topic_match("a/b/c", "a/b/d"));
  cr_assert_not(svc__topic_match("a/b/c", "a/b"));
  cr_assert_not(svc__topic_match("a/b", "a/b/c"));
  cr_assert_not(svc__topic_match("A/b", "a/b"));
}

Test(topic, valid_names) {
  static const char *const good[] = {"a",
                                     "/",
                                     "a/b",
                                     "//",
                                     "$SYS/x",
                                     "a b",
                                     "sport/tennis/player1",
                                     "caf\xc3\xa9",
                                     "$share/g/x"};
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_assert_eq(svc__topic_check_name(good[i]), 0, "name \"%s\"", good[i]);
}

Test(topic, invalid_names) {
  static const char *const bad[] = {"",      "a+",           "+", "a/#", "#",
                                    "a/+/b", "sport/tennis#"};
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(svc__topic_check_name(bad[i]), SVC_EINVAL, "name \"%s\"",
                 bad[i]);
  cr_assert_eq(svc__topic_check_name(NULL), SVC_EINVAL);
}

/* A string of n bytes 'a' with '/' every 8 bytes. */
static char *long_string(size_t n) {
  char *s;
  size_t i;

  s = malloc(n + 1);
  cr_assert_not_null(s);
  for (i = 0; i < n; i++)
    s[i] = i % 8 == 7 ? '/' : 'a';
  s[n - 1] = 'a';
  s[n] = '\0';
  return s;
}

Test(topic, length_limit) {
  char *s;

  s = long_string(SVC__TOPIC_MAX);
  cr_assert_eq(svc__topic_check_name(s), 0);
  cr_assert_eq(svc__topic_check_filter(s), 0);
  cr_assert(svc__topic_match(s, s));
  free(s);
  s = long_string(SVC__TOPIC_MAX + 1);
  cr_assert_eq(svc__topic_check_name(s), SVC_EINVAL);
  cr_assert_eq(svc__topic_check_filter(s), SVC_EINVAL);
  free(s);
}

Test(topic, valid_filters) {
  static const char *const good[] = {"#",
                                     "+",
                                     "a//b",
                                     "/",
                                     "+/+",
                                     "/+",
                                     "sport/tennis/#",
                                     "+/tennis/#",
                                     "a/+/#",
                                     "$SYS/#",
                                     "$share/g/a/#",
                                     "$share/g/#",
                                     "$share/g/+",
                                     "$share/g//",
                                     "$share/G-1.x/a",
                                     "$share",
                                     "$sharex/a",
                                     "a/$share/b",
                                     "$share/g/$share/h"};
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_assert_eq(svc__topic_check_filter(good[i]), 0, "filter \"%s\"", good[i]);
}

Test(topic, invalid_filters) {
  static const char *const bad[] = {"",
                                    "a/#/b",
                                    "a#",
                                    "a/+b",
                                    "+a",
                                    "++",
                                    "##",
                                    "#/a",
                                    "a/b#",
                                    "sport/tennis#",
                                    "sport+",
                                    "$share//x",
                                    "$share/g",
                                    "$share/g/",
                                    "$share/",
                                    "$share/g+/x",
                                    "$share/g#/x",
                                    "$share/+/x",
                                    "$share/g/a#",
                                    "$share/g/#/a"};
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(svc__topic_check_filter(bad[i]), SVC_EINVAL, "filter \"%s\"",
                 bad[i]);
  cr_assert_eq(svc__topic_check_filter(NULL), SVC_EINVAL);
}

Test(topic, split_share) {
  const char *f;
  const char *group;
  const char *rest;
  size_t len;

  f = "$share/grp/a/b";
  group = rest = NULL;
  len = 0;
  cr_assert_eq(svc__topic_split_share(f, &group, &len, &rest), 1);
  cr_assert_eq(group, f + 7);
  cr_assert_eq(len, 3);
  cr_assert_str_eq(rest, "a/b");

  f = "$share/g/#";
  cr_assert_eq(svc__topic_split_share(f, &group, &len, &rest), 1);
  cr_assert_eq(len, 1);
  cr_assert_str_eq(rest, "#");

  /* An empty group is recognised, so that the checker can refuse it. */
  f = "$share//x";
  cr_assert_eq(svc__topic_split_share(f, &group, &len, &rest), 1);
  cr_assert_eq(len, 0);
  cr_assert_str_eq(rest, "x");

  group = rest = NULL;
  cr_assert_eq(svc__topic_split_share("a/b", &group, &len, &rest), 0);
  cr_assert_eq(svc__topic_split_share("$share/g", &group, &len, &rest), 0);
  cr_assert_eq(svc__topic_split_share("$sharex/g/a", &group, &len, &rest), 0);
  cr_assert_eq(svc__topic_split_share("$SHARE/g/a", &group, &len, &rest), 0);
  cr_assert_null(group, "outputs untouched without a match");
  cr_assert_null(rest);
}

Test(topic, many_empty_levels) {
  char *f;
  char *t;
  size_t n;

  /* 64 KiB of '/' is 64 Ki empty levels: no recursion, no trouble. */
  n = SVC__TOPIC_MAX;
  f = malloc(n + 1);
  t = malloc(n + 1);
  cr_assert_not_null(f);
  cr_assert_not_null(t);
  memset(f, '/', n);
  f[n] = '\0';
  memcpy(t, f, n + 1);
  cr_assert_eq(svc__topic_check_name(t), 0);
  cr_assert(svc__topic_match(f, t));
  cr_assert(svc__topic_match("#", t));
  /* f: n empty levels and '#'; t: n - 1 empty levels, the parent. */
  f[n - 1] = '#';
  t[n - 2] = '\0';
  cr_assert_eq(svc__topic_check_filter(f), 0);
  cr_assert(svc__topic_match(f, t), "'#' matches the parent level");
  f[n - 1] = '+';
  cr_assert_eq(svc__topic_check_filter(f), 0);
  cr_assert_not(svc__topic_match(f, t), "'+' needs a level");
  t[n - 2] = '/';
  t[n - 1] = '\0';
  cr_assert(svc__topic_match(f, t), "n levels each");
  free(f);
  free(t);
}
