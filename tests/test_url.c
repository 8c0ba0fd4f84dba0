/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* White-box tests of the URI parser (src/url.c). */
#include "internal.h"

#include <criterion/criterion.h>
#include <stdio.h>

TestSuite(url, .timeout = 10);

struct good {
  const char *in;
  const char *scheme;
  const char *user;
  const char *password;
  const char *host;
  int port;
  int ipv6;
  const char *path;
  const char *query;
  const char *endpoint;
};

/* NULL means the field must be NULL. */
static void expect_str(const char *got, const char *want, const char *field,
                       const char *in) {
  if (want == NULL) {
    cr_assert_null(got, "%s: %s should be NULL, is \"%s\"", in, field, got);
    return;
  }
  cr_assert_not_null(got, "%s: %s is NULL, want \"%s\"", in, field, want);
  cr_assert_str_eq(got, want, "%s: %s is \"%s\", want \"%s\"", in, field, got,
                   want);
}

static void check_good(const struct good *g) {
  struct svc__url *u;
  int rc;

  u = NULL;
  rc = svc__url_parse(g->in, &u);
  cr_assert_eq(rc, 0, "%s: rc %d", g->in, rc);
  cr_assert_not_null(u, "%s", g->in);
  expect_str(u->scheme, g->scheme, "scheme", g->in);
  expect_str(u->user, g->user, "user", g->in);
  expect_str(u->password, g->password, "password", g->in);
  expect_str(u->host, g->host, "host", g->in);
  cr_assert_eq(u->port, g->port, "%s: port %d, want %d", g->in, u->port,
               g->port);
  cr_assert_eq(u->host_is_ipv6, g->ipv6, "%s: host_is_ipv6", g->in);
  expect_str(u->path, g->path, "path", g->in);
  expect_str(u->query, g->query, "query", g->in);
  expect_str(u->endpoint, g->endpoint, "endpoint", g->in);
  svc__url_free(u);
}

static void check_bad(const char *in) {
  struct svc__url *u;
  int rc;

  u = (struct svc__url *)&u; /* Must be overwritten with NULL. */
  rc = svc__url_parse(in, &u);
  cr_assert_eq(rc, SVC_EINVAL, "\"%s\": rc %d, want SVC_EINVAL", in, rc);
  cr_assert_null(u, "\"%s\": *out not cleared", in);
}

Test(url, ipv6_literals) {
  static const struct good t[] = {
      {"tcp://[::1]:7000/a", "tcp", NULL, NULL, "::1", 7000, 1, "a", NULL,
       "tcp://[::1]:7000"},
      {"http://[2001:db8::1]/", "http", NULL, NULL, "2001:db8::1", -1, 1, "",
       NULL, "http://[2001:db8::1]"},
      {"http://[2001:DB8::A]:80/X", "http", NULL, NULL, "2001:db8::a", 80, 1,
       "X", NULL, "http://[2001:db8::a]:80"},
      {"tcp://[::ffff:192.0.2.1]:1", "tcp", NULL, NULL, "::ffff:192.0.2.1", 1,
       1, "", NULL, "tcp://[::ffff:192.0.2.1]:1"},
      {"tcp://[::]", "tcp", NULL, NULL, "::", -1, 1, "", NULL, "tcp://[::]"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
}

Test(url, bad_ipv6_literals) {
  check_bad("tcp://[::1");
  check_bad("tcp://[::1]x/");
  check_bad("tcp://[::1]:/");
  check_bad("tcp://[]/");
  check_bad("tcp://[fe80::1%25eth0]/");
  check_bad("tcp://[1.2.3.4]/");
  check_bad("tcp://[v1.fe]/");
  check_bad("tcp://[::g]/");
  check_bad("tcp://::1/");
  check_bad("tcp://[1:2:3:4:5:6:7:8:9]/");
}

Test(url, plain_hosts_and_paths) {
  static const struct good t[] = {
      {"inproc://users/get", "inproc", NULL, NULL, "users", -1, 0, "get", NULL,
       "inproc://users"},
      {"TCP://Example.COM:80/Path/To", "tcp", NULL, NULL, "example.com", 80, 0,
       "Path/To", NULL, "tcp://example.com:80"},
      {"tcp://127.0.0.1:7000", "tcp", NULL, NULL, "127.0.0.1", 7000, 0, "",
       NULL, "tcp://127.0.0.1:7000"},
      {"http://h", "http", NULL, NULL, "h", -1, 0, "", NULL, "http://h"},
      {"http://h//a/", "http", NULL, NULL, "h", -1, 0, "/a/", NULL, "http://h"},
      {"svc+tls.v1-x://h", "svc+tls.v1-x", NULL, NULL, "h", -1, 0, "", NULL,
       "svc+tls.v1-x://h"},
      {"http://a-b.c_d~e!$&'()*+,;=/", "http", NULL, NULL,
       "a-b.c_d~e!$&'()*+,;=", -1, 0, "", NULL, "http://a-b.c_d~e!$&'()*+,;="},
      {"http://h/a:b@c!$&'()*+,;=-._~", "http", NULL, NULL, "h", -1, 0,
       "a:b@c!$&'()*+,;=-._~", NULL, "http://h"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
}

Test(url, mqtt_wildcards_are_path_bytes) {
  static const struct good t[] = {
      {"inproc://bus/orders/#", "inproc", NULL, NULL, "bus", -1, 0, "orders/#",
       NULL, "inproc://bus"},
      {"mqtt://b:1883/sport/+/player1", "mqtt", NULL, NULL, "b", 1883, 0,
       "sport/+/player1", NULL, "mqtt://b:1883"},
      {"inproc://bus/$SYS/#", "inproc", NULL, NULL, "bus", -1, 0, "$SYS/#",
       NULL, "inproc://bus"},
      {"inproc://bus/$share/g/a/#?x#y", "inproc", NULL, NULL, "bus", -1, 0,
       "$share/g/a/#", "x#y", "inproc://bus"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
}

Test(url, userinfo) {
  static const struct good t[] = {
      {"mqtt://user:pa%3Ass@broker:1883/t", "mqtt", "user", "pa:ss", "broker",
       1883, 0, "t", NULL, "mqtt://broker:1883"},
      {"mqtt://us%40er@host/", "mqtt", "us@er", NULL, "host", -1, 0, "", NULL,
       "mqtt://host"},
      {"mqtt://user:@host", "mqtt", "user", "", "host", -1, 0, "", NULL,
       "mqtt://host"},
      {"mqtt://:secret@host", "mqtt", "", "secret", "host", -1, 0, "", NULL,
       "mqtt://host"},
      {"mqtt://u:p:q@[::1]:1/x", "mqtt", "u", "p:q", "::1", 1, 1, "x", NULL,
       "mqtt://[::1]:1"},
      {"mqtt://U!$&'()*+,;=-._~:%41@h", "mqtt", "U!$&'()*+,;=-._~", "A", "h",
       -1, 0, "", NULL, "mqtt://h"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
}

Test(url, bad_userinfo) {
  check_bad("mqtt://a@b@host/");
  check_bad("mqtt://us%zzer@host/");
  check_bad("mqtt://us%4@host/");
  check_bad("mqtt://u%00@host/");
  check_bad("mqtt://u:p%00@host/");
  check_bad("mqtt://u[x@host/");
  check_bad("mqtt://u\"@host/");
}

Test(url, ports) {
  static const struct good t[] = {
      {"tcp://h:0", "tcp", NULL, NULL, "h", 0, 0, "", NULL, "tcp://h:0"},
      {"tcp://h:65535/", "tcp", NULL, NULL, "h", 65535, 0, "", NULL,
       "tcp://h:65535"},
      {"tcp://h:00080", "tcp", NULL, NULL, "h", 80, 0, "", NULL, "tcp://h:80"},
      {"tcp://:7000", "tcp", NULL, NULL, "", 7000, 0, "", NULL, "tcp://:7000"},
      {"tcp://h:1?q", "tcp", NULL, NULL, "h", 1, 0, "", "q", "tcp://h:1"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
  check_bad("tcp://h:65536");
  check_bad("tcp://h:99999");
  check_bad("tcp://h:");
  check_bad("tcp://h:/x");
  check_bad("tcp://h:123456");
  check_bad("tcp://h:000080");
  check_bad("tcp://h:-1");
  check_bad("tcp://h:+80");
  check_bad("tcp://h:8a");
  check_bad("tcp://h:80:81");
}

Test(url, percent_decoding) {
  static const struct good t[] = {
      {"http://h/a%20b%2Fc", "http", NULL, NULL, "h", -1, 0, "a b/c", NULL,
       "http://h"},
      {"http://h/%7b%7D%25", "http", NULL, NULL, "h", -1, 0, "{}%", NULL,
       "http://h"},
      {"http://h/%C3%A9", "http", NULL, NULL, "h", -1, 0, "\xc3\xa9", NULL,
       "http://h"},
      {"http://h/a?x=%zz", "http", NULL, NULL, "h", -1, 0, "a", "x=%zz",
       "http://h"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
  check_bad("http://h/%");
  check_bad("http://h/a%2");
  check_bad("http://h/%zz");
  check_bad("http://h/%g0");
  check_bad("http://h/a%00b");
  check_bad("http://%41/");
  check_bad("http://h%20/");
}

Test(url, queries) {
  static const struct good t[] = {
      {"http://h/p?x=1&y=2", "http", NULL, NULL, "h", -1, 0, "p", "x=1&y=2",
       "http://h"},
      {"http://h/p?", "http", NULL, NULL, "h", -1, 0, "p", "", "http://h"},
      {"http://h?q", "http", NULL, NULL, "h", -1, 0, "", "q", "http://h"},
      {"http://h/a?b/c?d#e", "http", NULL, NULL, "h", -1, 0, "a", "b/c?d#e",
       "http://h"},
      {"unix:///s?x", "unix", NULL, NULL, "/s", -1, 0, "", "x", "unix:///s"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
  check_bad("http://h/p?a b");
  check_bad("http://h/p?a\x01");
}

Test(url, hostless_endpoint_is_named_by_path) {
  static const struct good t[] = {
      {"inproc://", "inproc", NULL, NULL, "", -1, 0, "", NULL, "inproc:///"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
}

/* unix:// keeps the socket file in host: the whole path, or a
 * percent-encoded authority followed by a route. */
Test(url, unix_socket_paths) {
  static const struct good t[] = {
      {"unix:///tmp/x.sock", "unix", NULL, NULL, "/tmp/x.sock", -1, 0, "",
       NULL, "unix:///tmp/x.sock"},
      {"unix:///tmp/a%20b", "unix", NULL, NULL, "/tmp/a b", -1, 0, "", NULL,
       "unix:///tmp/a b"},
      {"unix://%2Ftmp%2Fx.sock/users/1", "unix", NULL, NULL, "/tmp/x.sock", -1,
       0, "users/1", NULL, "unix:///tmp/x.sock"},
      {"unix://%2fRun%2FSvc.sock/orders/%23?keepalive_ms=5", "unix", NULL,
       NULL, "/Run/Svc.sock", -1, 0, "orders/#", "keepalive_ms=5",
       "unix:///Run/Svc.sock"},
  };
  size_t i;

  for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    check_good(&t[i]);
  check_bad("unix://relative/x");
  check_bad("unix://%2F/x");
  check_bad("unix:///");
  check_bad("unix://u@%2Ftmp%2Fs/x");
}

Test(url, bad_schemes) {
  check_bad(NULL);
  check_bad("");
  check_bad("tcp:/x");
  check_bad("tcp:x");
  check_bad("tcp//x");
  check_bad("tcp:");
  check_bad("://x");
  check_bad("1tcp://x");
  check_bad("+tcp://x");
  check_bad("t_cp://x");
  check_bad("/tmp/x.sock");
  check_bad("localhost:7000");
}

Test(url, bad_characters) {
  static const char *const path_bad[] = {"{",  "}", "|", "\\", "^", "`",
                                         "\"", "<", ">", "[",  "]"};
  char buf[64];
  size_t i;

  for (i = 0; i < sizeof(path_bad) / sizeof(path_bad[0]); i++) {
    snprintf(buf, sizeof(buf), "http://h/a%sb", path_bad[i]);
    check_bad(buf);
    snprintf(buf, sizeof(buf), "http://h%s/", path_bad[i]);
    check_bad(buf);
  }
  check_bad(" http://h/");
  check_bad("http://h /");
  check_bad("http://h/a b");
  check_bad("http://h/a\tb");
  check_bad("http://h/a\nb");
  check_bad("http://h/a\x7f");
  check_bad("http://h/\xc3\xa9");
  check_bad("ht\x80tp://h/");
  check_bad("http://h#x/");
}

Test(url, length_limit) {
  char *s;
  size_t prefix;
  struct svc__url *u;

  s = malloc(SVC__URL_MAX + 2);
  cr_assert_not_null(s);
  prefix = strlen("http://h/");
  memcpy(s, "http://h/", prefix);
  memset(s + prefix, 'a', SVC__URL_MAX - prefix);
  s[SVC__URL_MAX] = '\0';
  cr_assert_eq(strlen(s), SVC__URL_MAX);
  u = NULL;
  cr_assert_eq(svc__url_parse(s, &u), 0, "exactly SVC__URL_MAX is fine");
  cr_assert_eq(strlen(u->path), SVC__URL_MAX - prefix);
  svc__url_free(u);
  s[SVC__URL_MAX] = 'a';
  s[SVC__URL_MAX + 1] = '\0';
  check_bad(s);
  free(s);
}

Test(url, free_null_is_noop) {
  svc__url_free(NULL);
  cr_assert(1);
}

Test(url, fields_are_separate_allocations) {
  struct svc__url *u;

  /* Callers may take over or replace single fields; freeing one of them
   * and putting NULL in its place must leave the rest intact. */
  cr_assert_eq(svc__url_parse("tcp://u:p@h:1/a?q", &u), 0);
  svc__free(u->path);
  u->path = NULL;
  cr_assert_str_eq(u->query, "q");
  cr_assert_str_eq(u->endpoint, "tcp://h:1");
  svc__url_free(u);
}
