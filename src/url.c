/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

/* The URI grammar is RFC 3986 narrowed to what libsvccomm uses: always an
 * authority ("scheme://"), never a fragment, because '#' is the MQTT
 * multi-level wildcard and subscriptions put it in the path. The character
 * classes below are ASCII only on purpose: <ctype.h> depends on the locale.
 */

static int url_is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int url_is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int url_is_unreserved(int c) {
  return url_is_alpha(c) || url_is_digit(c) || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

static int url_is_subdelim(int c) {
  return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

int svc__query_next(const char **p, struct svc__qpair *pair) {
  const char *s = *p;
  const char *end;
  const char *eq;
  size_t n;

  if (s == NULL || *s == '\0')
    return 0;
  end = strchr(s, '&');
  n = end != NULL ? (size_t)(end - s) : strlen(s);
  eq = memchr(s, '=', n);
  pair->name = s;
  pair->name_len = eq != NULL ? (size_t)(eq - s) : n;
  pair->value = eq != NULL ? eq + 1 : NULL;
  pair->value_len = eq != NULL ? n - (size_t)(eq + 1 - s) : 0;
  *p = end != NULL ? end + 1 : NULL;
  return 1;
}

int svc__parse_decimal(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i;

  if (s == NULL || n == 0 || n > 15)
    return SVC_EINVAL;
  for (i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return SVC_EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return 0;
}

int svc__name_is(const char *s, size_t n, const char *name) {
  return strlen(name) == n && memcmp(s, name, n) == 0;
}

static void url_lower(char *s) {
  for (; *s != '\0'; s++)
    if (*s >= 'A' && *s <= 'Z')
      *s = (char)(*s - 'A' + 'a');
}

/* Decodes n bytes at s into a new string. A '%' must start a valid %XX, and
 * %00 is refused: the result is a C string, and a NUL in the middle would
 * let "a%00b" pass for "a" in every later comparison. */
int svc__url_decode(const char *s, size_t n, char **out) {
  char *d;
  size_t i;
  size_t j;
  int hi;
  int lo;

  d = svc__malloc(n + 1);
  if (d == NULL)
    return SVC_ENOMEM;
  for (i = 0, j = 0; i < n; i++) {
    if (s[i] != '%') {
      d[j++] = s[i];
      continue;
    }
    hi = i + 2 < n ? svc__hex_value(s[i + 1]) : -1;
    lo = i + 2 < n ? svc__hex_value(s[i + 2]) : -1;
    if (hi < 0 || lo < 0 || (hi | lo) == 0) {
      svc__free(d);
      return SVC_EINVAL;
    }
    d[j++] = (char)(hi * 16 + lo);
    i += 2;
  }
  d[j] = '\0';
  *out = d;
  return 0;
}

/* Copies n bytes at s into a new lower-cased string. */
static int url_lower_dup(const char *s, size_t n, char **out) {
  *out = svc__strndup(s, n);
  if (*out == NULL)
    return SVC_ENOMEM;
  url_lower(*out);
  return 0;
}

/* Userinfo is user[:password]; '@' cannot appear in it (the authority is
 * split at the last '@', so an earlier one is simply an invalid byte). */
static int url_parse_userinfo(struct svc__url *url, const char *s,
                              const char *end) {
  const char *p;
  const char *colon;
  int err;

  colon = NULL;
  for (p = s; p < end; p++) {
    if (*p == ':' && colon == NULL)
      colon = p;
    else if (!url_is_unreserved(*p) && !url_is_subdelim(*p) && *p != '%' &&
             *p != ':')
      return SVC_EINVAL;
  }
  err = svc__url_decode(s, (size_t)((colon ? colon : end) - s), &url->user);
  if (err == 0 && colon != NULL)
    err = svc__url_decode(colon + 1, (size_t)(end - colon - 1), &url->password);
  return err;
}

/* Parses host[:port] in [s, end). A bracketed host must be an IPv6 address:
 * IPvFuture and zone ids ("fe80::1%25eth0") have no use here, and
 * inet_pton() refuses both. */
static int url_parse_host(struct svc__url *url, const char *s,
                          const char *end) {
  char buf[INET6_ADDRSTRLEN];
  struct in6_addr addr;
  const char *p;
  const char *close;
  size_t n;
  long port;
  int err;

  if (s < end && *s == '[') {
    close = memchr(s, ']', (size_t)(end - s));
    if (close == NULL)
      return SVC_EINVAL;
    n = (size_t)(close - s - 1);
    if (n == 0 || n >= sizeof(buf))
      return SVC_EINVAL;
    memcpy(buf, s + 1, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET6, buf, &addr) != 1)
      return SVC_EINVAL;
    err = url_lower_dup(buf, n, &url->host);
    url->host_is_ipv6 = 1;
    p = close + 1;
  } else {
    /* Percent-encoded hosts are legal RFC 3986 but no transport can use
     * one, so '%' is refused with the other bytes outside reg-name. */
    for (p = s; p < end && *p != ':'; p++)
      if (!url_is_unreserved(*p) && !url_is_subdelim(*p))
        return SVC_EINVAL;
    err = url_lower_dup(s, (size_t)(p - s), &url->host);
  }
  if (err != 0)
    return err;

  url->port = -1;
  if (p == end)
    return 0;
  if (*p != ':')
    return SVC_EINVAL; /* Junk after "]". */
  p++;
  n = (size_t)(end - p);
  if (n < 1 || n > 5)
    return SVC_EINVAL;
  for (port = 0; p < end; p++) {
    if (!url_is_digit(*p))
      return SVC_EINVAL;
    port = port * 10 + (*p - '0');
  }
  if (port > 65535)
    return SVC_EINVAL;
  url->port = (int)port;
  return 0;
}

/* Path bytes: RFC 3986 pchar and '/', plus '#', which is an ordinary byte
 * here. '+' and '$' are sub-delims already. Everything else that is
 * printable ('{', '|', '"', '[', ...) is refused so that URIs stay
 * unambiguous when logged or forwarded. */
static int url_path_ok(const char *s, const char *end) {
  for (; s < end; s++)
    if (!url_is_unreserved(*s) && !url_is_subdelim(*s) &&
        strchr(":@/#%", *s) == NULL)
      return 0;
  return 1;
}

/* Appends s at *w. */
static void url_put(char **w, const char *s, size_t n) {
  memcpy(*w, s, n);
  *w += n;
}

/* Built by hand rather than with snprintf(): every call and publish parses
 * its URI, and formatting cost more than the rest of the parse. */
static int url_make_endpoint(struct svc__url *url) {
  size_t sl = strlen(url->scheme);
  size_t hl = strlen(url->host);
  size_t pl = 0;
  char port[8];
  size_t portl = 0;
  char *w;
  int hostless;

  /* A host-less URI ("unix:///tmp/x.sock") is named by its path, or every
   * socket file would share one endpoint. */
  hostless = url->host[0] == '\0' && url->port < 0;
  if (hostless)
    pl = strlen(url->path);
  if (url->port >= 0) {
    int v = url->port;
    char rev[8];
    size_t n = 0;

    do {
      rev[n++] = (char)('0' + v % 10);
      v /= 10;
    } while (v > 0);
    while (n > 0)
      port[portl++] = rev[--n];
  }
  /* scheme "://" [ "[" ] host [ "]" ] [ ":" port ] or scheme ":///" path */
  url->endpoint = svc__malloc(sl + 3 + hl + 2 + 1 + portl + 1 + pl + 1);
  if (url->endpoint == NULL)
    return SVC_ENOMEM;
  w = url->endpoint;
  url_put(&w, url->scheme, sl);
  url_put(&w, "://", 3);
  if (hostless) {
    *w++ = '/';
    url_put(&w, url->path, pl);
  } else {
    if (url->host_is_ipv6)
      *w++ = '[';
    url_put(&w, url->host, hl);
    if (url->host_is_ipv6)
      *w++ = ']';
    if (portl > 0) {
      *w++ = ':';
      url_put(&w, port, portl);
    }
  }
  *w = '\0';
  return 0;
}

/* unix:// names a socket file, not a host: "unix:///tmp/x.sock" is the
 * socket with no route, and the socket path may instead be given
 * percent-encoded as the authority so that a route can follow it:
 * "unix://%2Ftmp%2Fx.sock/users/1" (the convention of http+unix URLs).
 * Either way host holds the absolute socket path. */
static int url_unix_socket(struct svc__url *url, const char *auth,
                           const char *auth_end) {
  size_t n;

  if (auth == auth_end) {
    n = strlen(url->path);
    svc__free(url->host);
    url->host = svc__malloc(n + 2);
    if (url->host == NULL)
      return SVC_ENOMEM;
    url->host[0] = '/';
    memcpy(url->host + 1, url->path, n + 1);
    url->path[0] = '\0';
    url->path_raw[0] = '\0';
  } else {
    char *host;
    int err = svc__url_decode(auth, (size_t)(auth_end - auth), &host);
    if (err != 0)
      return err;
    if (host[0] != '/' || memchr(auth, '@', (size_t)(auth_end - auth))) {
      svc__free(host);
      return SVC_EINVAL;
    }
    svc__free(url->host);
    url->host = host;
  }
  if (url->host[1] == '\0')
    return SVC_EINVAL;
  url->port = -1;
  n = strlen(url->host) + 8;
  url->endpoint = svc__malloc(n);
  if (url->endpoint == NULL)
    return SVC_ENOMEM;
  snprintf(url->endpoint, n, "unix://%s", url->host);
  return 0;
}

int svc__url_parse(const char *s, struct svc__url **out) {
  struct svc__url *url;
  const char *p;
  const char *auth;
  const char *auth_end;
  const char *at;
  const char *path;
  const char *path_end;
  size_t len;
  size_t i;
  int err;
  int is_unix = 0;

  assert(out != NULL);
  *out = NULL;
  if (s == NULL)
    return SVC_EINVAL;
  len = strnlen(s, SVC__URL_MAX + 1);
  if (len > SVC__URL_MAX)
    return SVC_EINVAL;
  /* Bytes that are never legal anywhere: controls, space, DEL, non-ASCII.
   * Checking once up front keeps the per-part checks simple. */
  for (i = 0; i < len; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
      return SVC_EINVAL;

  if (!url_is_alpha(s[0]))
    return SVC_EINVAL;
  for (p = s + 1; url_is_alpha(*p) || url_is_digit(*p) || *p == '+' ||
                  *p == '-' || *p == '.';
       p++)
    ;
  if (strncmp(p, "://", 3) != 0)
    return SVC_EINVAL;
  auth = p + 3;
  auth_end = auth + strcspn(auth, "/?");
  at = NULL;
  for (p = auth; p < auth_end; p++)
    if (*p == '@')
      at = p;
  path = *auth_end == '/' ? auth_end + 1 : auth_end;
  path_end = path + strcspn(path, "?");
  if (!url_path_ok(path, path_end))
    return SVC_EINVAL;

  url = svc__calloc(1, sizeof(*url));
  if (url == NULL)
    return SVC_ENOMEM;
  url->port = -1;
  url->refs = 1;
  err = url_lower_dup(s, (size_t)(auth - 3 - s), &url->scheme);
  is_unix = err == 0 && strcmp(url->scheme, "unix") == 0;
  if (err == 0 && at != NULL && !is_unix)
    err = url_parse_userinfo(url, auth, at);
  if (err == 0 && !is_unix)
    err = url_parse_host(url, at ? at + 1 : auth, auth_end);
  if (err == 0 && is_unix && (url->host = svc__strdup("")) == NULL)
    err = SVC_ENOMEM;
  if (err == 0)
    err = svc__url_decode(path, (size_t)(path_end - path), &url->path);
  if (err == 0 &&
      (url->path_raw = svc__strndup(path, (size_t)(path_end - path))) == NULL)
    err = SVC_ENOMEM;
  if (err == 0 && *path_end == '?') {
    url->query = svc__strdup(path_end + 1);
    if (url->query == NULL)
      err = SVC_ENOMEM;
  }
  if (err == 0)
    err = is_unix ? url_unix_socket(url, auth, auth_end)
                  : url_make_endpoint(url);
  if (err != 0) {
    svc__url_free(url);
    return err;
  }
  *out = url;
  return 0;
}

struct svc__url *svc__url_ref(struct svc__url *url) {
  url->refs++;
  return url;
}

void svc__url_free(struct svc__url *url) {
  if (url == NULL)
    return;
  if (url->refs > 1) {
    url->refs--;
    return;
  }
  svc__free(url->scheme);
  svc__free(url->user);
  svc__free(url->password);
  svc__free(url->host);
  svc__free(url->path);
  svc__free(url->path_raw);
  svc__free(url->query);
  svc__free(url->endpoint);
  svc__free(url);
}
