/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <strings.h>

#include "transports/http_client.h"

/* What the client puts on the wire and reads back, apart from the
 * transfers themselves: options, URLs, headers, status mapping. */

/* ---- Options: "svc-" query parameters (docs/http.md). */

#define OPT_PREFIX "svc-"

static int is_opt(const char *p, size_t n) {
  return n >= strlen(OPT_PREFIX) &&
         strncmp(p, OPT_PREFIX, strlen(OPT_PREFIX)) == 0;
}

/* One option; name and value as written (values need no decoding: paths
 * with '&' or '=' are not supported). */
static int opt_apply(struct svc__httpc_opts *o, const char *name, size_t nl,
                     const char *v, size_t vl) {
  uint64_t x = 0;
  char **str = NULL;

  if (svc__name_is(name, nl, "svc-cainfo"))
    str = &o->cainfo;
  else if (svc__name_is(name, nl, "svc-capath"))
    str = &o->capath;
  if (str != NULL) {
    if (vl == 0)
      return SVC_EINVAL;
    svc__free(*str);
    *str = svc__strndup(v, vl);
    return *str != NULL ? 0 : SVC_ENOMEM;
  }
  if (svc__name_is(name, nl, "svc-http")) {
    if (svc__name_is(v, vl, "1.1"))
      o->http_version = CURL_HTTP_VERSION_1_1;
    else if (svc__name_is(v, vl, "2"))
      o->http_version = CURL_HTTP_VERSION_2TLS;
    else
      return SVC_EINVAL;
    return 0;
  }
  if (svc__parse_decimal(v, vl, &x) != 0)
    return SVC_EINVAL;
  if (svc__name_is(name, nl, "svc-insecure") && x <= 1)
    o->insecure = (int)x;
  else if (svc__name_is(name, nl, "svc-connect-timeout-ms") && x > 0 &&
           x <= 3600000)
    o->connect_timeout_ms = (long)x;
  else if (svc__name_is(name, nl, "svc-max-body") && x > 0 &&
           x <= (uint64_t)SIZE_MAX / 2)
    o->max_body = (size_t)x;
  else if (svc__name_is(name, nl, "svc-sse-idle-ms") && x > 0 && x <= 86400000)
    o->sse_idle_ms = (long)x;
  else
    return SVC_EINVAL;
  return 0;
}

int svc__httpc_opts_parse(struct svc__httpc_opts *o, const char *query) {
  const char *p = query;
  struct svc__qpair q;

  o->connect_timeout_ms = 10000;
  o->max_body = 64u << 20;
  o->sse_idle_ms = 45000; /* Three of the server's default 15 s pings. */
  while (svc__query_next(&p, &q)) {
    int rc;

    if (!is_opt(q.name, q.name_len))
      continue; /* The request's own. */
    if (q.value == NULL)
      return SVC_EINVAL;
    rc = opt_apply(o, q.name, q.name_len, q.value, q.value_len);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int svc__httpc_opts_check(const char *query) {
  struct svc__httpc_opts o;
  int rc;

  if (query == NULL || strstr(query, OPT_PREFIX) == NULL)
    return 0;
  memset(&o, 0, sizeof(o));
  rc = svc__httpc_opts_parse(&o, query);
  svc__httpc_opts_free(&o);
  return rc;
}

void svc__httpc_opts_free(struct svc__httpc_opts *o) {
  svc__free(o->cainfo);
  svc__free(o->capath);
  svc__free(o->env_proxy);
  svc__free(o->env_noproxy);
  o->cainfo = o->capath = o->env_proxy = o->env_noproxy = NULL;
}

/* The first of the variables that is set, copied; NULL when none is. */
static int env_first(char **out, const char *const *names) {
  const char *v = NULL;

  while (v == NULL && *names != NULL)
    v = getenv(*names++);
  *out = NULL;
  if (v != NULL && (*out = svc__strdup(v)) == NULL)
    return SVC_ENOMEM;
  return 0;
}

/* libcurl looks these up on every transfer it starts, five getenv() calls
 * that scan the whole environment, when the proxy options are unset. The
 * same lookup done once per endpoint, and handed to libcurl as those
 * options, gives the same answers: <scheme>_proxy, then its upper-case
 * form except HTTP_PROXY (which CGI lets a request set, "httpoxy"), then
 * all_proxy and ALL_PROXY; no_proxy, then NO_PROXY. */
int svc__httpc_proxy_env(struct svc__httpc_opts *o, const char *scheme) {
  static const char *const noproxy[] = {"no_proxy", "NO_PROXY", NULL};
  static const char *const http[] = {"http_proxy", "all_proxy", "ALL_PROXY",
                                     NULL};
  static const char *const https[] = {"https_proxy", "HTTPS_PROXY",
                                      "all_proxy", "ALL_PROXY", NULL};
  int rc = env_first(&o->env_noproxy, noproxy);

  if (rc == 0)
    rc = env_first(&o->env_proxy, strcmp(scheme, "https") == 0 ? https : http);
  return rc;
}

/* ---- URLs. */

char *svc__httpc_url(const struct svc__conn *conn, const struct svc__url *u) {
  size_t elen = strlen(conn->endpoint);
  size_t plen = strlen(u->path_raw);
  size_t qlen = u->query != NULL ? strlen(u->query) : 0;
  char *url = svc__malloc(elen + plen + qlen + 3);
  char *w;
  const char *p = u->query;
  struct svc__qpair q;
  int first = 1;

  if (url == NULL)
    return NULL;
  memcpy(url, conn->endpoint, elen);
  w = url + elen;
  *w++ = '/';
  memcpy(w, u->path_raw, plen);
  w += plen;
  /* The query without our own options, in order. */
  while (svc__query_next(&p, &q)) {
    size_t n = q.value != NULL ? (size_t)(q.value + q.value_len - q.name)
                               : q.name_len;

    if (n > 0 && !is_opt(q.name, q.name_len)) {
      *w++ = first ? '?' : '&';
      memcpy(w, q.name, n);
      w += n;
      first = 0;
    }
  }
  *w = '\0';
  return url;
}

/* RFC 3986 unreserved characters and '/' go as they are; everything else,
 * the MQTT wildcards '+' and '#' included, percent-encoded. */
char *svc__httpc_topic_url(const struct svc__conn *conn, const char *topic) {
  static const char hex[] = "0123456789ABCDEF";
  size_t elen = strlen(conn->endpoint);
  size_t plen = strlen(SVC__HTTP_TOPICS_PREFIX);
  size_t tlen = strlen(topic);
  char *url = svc__malloc(elen + plen + 3 * tlen + 1);
  char *w;
  size_t i;

  if (url == NULL)
    return NULL;
  memcpy(url, conn->endpoint, elen);
  memcpy(url + elen, SVC__HTTP_TOPICS_PREFIX, plen);
  w = url + elen + plen;
  for (i = 0; i < tlen; i++) {
    unsigned char c = (unsigned char)topic[i];

    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        c == '/') {
      *w++ = (char)c;
    } else {
      *w++ = '%';
      *w++ = hex[c >> 4];
      *w++ = hex[c & 15];
    }
  }
  *w = '\0';
  return url;
}

/* ---- Request headers. */

/* value NULL removes a header curl would add itself ("Name:"); an empty
 * value sends it empty ("Name;", curl's spelling). */
int svc__httpc_add_header(struct curl_slist **list, const char *name,
                          const char *value) {
  size_t nl = strlen(name);
  size_t vl = value != NULL ? strlen(value) : 0;
  char *line = svc__malloc(nl + vl + 3);
  struct curl_slist *l;

  if (line == NULL)
    return SVC_ENOMEM;
  memcpy(line, name, nl);
  if (value == NULL) {
    line[nl] = ':';
    line[nl + 1] = '\0';
  } else if (vl == 0) {
    line[nl] = ';';
    line[nl + 1] = '\0';
  } else {
    line[nl] = ':';
    line[nl + 1] = ' ';
    memcpy(line + nl + 2, value, vl + 1);
  }
  l = curl_slist_append(*list, line);
  svc__free(line);
  if (l == NULL)
    return SVC_ENOMEM;
  *list = l;
  return 0;
}

/* The n bytes at s are header name name (len bytes), in any case. */
static int name_is(const char *s, size_t n, const char *name, size_t len) {
  return n == len && strncasecmp(s, name, n) == 0;
}

/* Headers HTTP itself owns: a message header by one of these names would
 * corrupt the framing, so it never goes out and never comes back in. */
static int is_framing(const char *name, size_t n) {
#define FRAMING(s) {s, sizeof(s) - 1}
  static const struct {
    const char *name;
    size_t len;
  } names[] = {
    FRAMING("connection"), FRAMING("keep-alive"),
    FRAMING("transfer-encoding"), FRAMING("content-length"),
    FRAMING("expect"), FRAMING("te"), FRAMING("upgrade"), FRAMING("trailer"),
    FRAMING("proxy-connection"), FRAMING("host"),
  };
#undef FRAMING
  size_t i;

  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (name_is(name, n, names[i].name, names[i].len))
      return 1;
  }
  return 0;
}

int svc__httpc_add_msg_headers(struct curl_slist **list, const svc_msg_t *msg) {
  size_t i;
  const char *ct = svc_msg_content_type(msg);
  const svc_trace_t *t = svc__msg_trace_bin(msg);
  const char *name;
  const char *value;
  int accept = 0;
  int rc = 0;

  /* The headers as they are, and a trace kept in binary formatted here,
   * so the message is left as it was. */
  for (i = 0; rc == 0 && svc__msg_raw_header_at(msg, i, &name, &value) == 0;
       i++) {
    char *enc;

    if (strcasecmp(name, "Accept") == 0)
      accept = 1;
    if (is_framing(name, strlen(name)) ||
        strcasecmp(name, "Content-Type") == 0)
      continue;
    /* CloudEvents attributes go percent-encoded (the HTTP binding). */
    rc = svc__ce_http_encode(name, value, &enc);
    if (rc == 0)
      rc = svc__httpc_add_header(list, name, enc != NULL ? enc : value);
    svc__free(enc);
  }
  if (rc == 0 && t != NULL) {
    char tp[SVC_TRACEPARENT_LEN + 1];
    svc_trace_format(t, tp);
    rc = svc__httpc_add_header(list, "traceparent", tp);
  }
  if (rc == 0 && ct != NULL)
    rc = svc__httpc_add_header(list, "Content-Type", ct);
  /* libcurl sends an "Accept" header of its own by default: the receiver
   * would see a header the message never had (an event's subscribers
   * included). */
  if (rc == 0 && !accept)
    rc = svc__httpc_add_header(list, "Accept", NULL);
  return rc;
}

/* ---- Response headers. */

static size_t trim_len(const char *s, size_t n) {
  while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' ||
                   s[n - 1] == '\t'))
    n--;
  return n;
}

/* n bytes at s, NUL-terminated in small (size bytes) or in a new buffer;
 * NULL when out of memory. */
static char *header_text(const char *s, size_t n, char *small, size_t size) {
  char *t = n < size ? small : svc__malloc(n + 1);

  if (t != NULL) {
    memcpy(t, s, n);
    t[n] = '\0';
  }
  return t;
}

/* One header line of the response (name and value as received, the value
 * trimmed) into x->resp; 0, SVC_ENOMEM or SVC_EMSGSIZE. Every response
 * header goes through here, so the usual one, with no percent sign to
 * decode, is added straight from curl's buffer. */
static int on_response_header(struct svc__hx *x, const char *name, size_t nl,
                              const char *v, size_t vl) {
  char nbuf[256];
  char vbuf[256];
  char *value;
  char *dec = NULL;
  int rc = 0;

  if (is_framing(name, nl))
    return 0;
  /* A name no message can hold (msg.h: 1..255 bytes): over the limits,
   * like too many headers, rather than a reply with a header missing. */
  if (nl >= sizeof(nbuf))
    return SVC_EMSGSIZE;
  if (name_is(name, nl, "Content-Type", 12)) {
    if ((value = header_text(v, vl, vbuf, sizeof(vbuf))) == NULL)
      return SVC_ENOMEM;
    rc = svc_msg_set_content_type(x->resp, value);
  } else if (name_is(name, nl, SVC__HTTP_H_STATUS,
                     sizeof(SVC__HTTP_H_STATUS) - 1)) {
    int st;

    if ((value = header_text(v, vl, vbuf, sizeof(vbuf))) == NULL)
      return SVC_ENOMEM;
    if ((st = svc_status_from_name(value)) >= 0)
      x->svc_status = st;
  } else if (memchr(v, '%', vl) == NULL) {
    return svc__msg_header_add_n(x->resp, name, nl, v, vl);
  } else {
    /* Maybe a percent-encoded CloudEvents attribute (the HTTP binding). */
    memcpy(nbuf, name, nl);
    nbuf[nl] = '\0';
    if ((value = header_text(v, vl, vbuf, sizeof(vbuf))) == NULL)
      return SVC_ENOMEM;
    rc = svc__ce_http_decode(nbuf, value, &dec);
    if (rc == 0)
      rc = svc__msg_header_add_n(x->resp, name, nl,
                                 dec != NULL ? dec : value,
                                 dec != NULL ? strlen(dec) : vl);
    svc__free(dec);
  }
  if (value != vbuf)
    svc__free(value);
  return rc;
}

size_t svc__httpc_on_header(char *data, size_t size, size_t n, void *arg) {
  struct svc__hx *x = arg;
  size_t len = size * n;
  size_t line = trim_len(data, len);
  const char *colon;
  size_t nl;
  const char *v;
  size_t vl;
  int rc;

  if (line >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    /* A status line: a new response begins (an interim 1xx, or the final
     * one); what came before is forgotten. */
    const char *sp = memchr(data, ' ', line);

    x->code = 0;
    x->svc_status = -1;
    if (x->resp != NULL)
      svc_msg_free(x->resp);
    x->resp = svc_msg_new(NULL, 0);
    if (x->resp == NULL) {
      x->fail_err = SVC_ENOMEM;
      return 0;
    }
    if (sp != NULL && (size_t)(sp - data) + 4 <= line)
      x->code = strtol(sp + 1, NULL, 10);
    x->in_headers = 1;
    return len;
  }
  if (line == 0) {
    x->in_headers = 0;
    return len;
  }
  if (!x->in_headers || x->resp == NULL)
    return len; /* Trailers: not part of the message. */
  colon = memchr(data, ':', line);
  if (colon == NULL)
    return len;
  nl = (size_t)(colon - data);
  if (nl == 0)
    return len;
  v = colon + 1;
  vl = line - nl - 1;
  while (vl > 0 && (*v == ' ' || *v == '\t')) {
    v++;
    vl--;
  }
  rc = on_response_header(x, data, nl, v, vl);
  if (rc == SVC_EMSGSIZE || rc == SVC_ENOMEM) {
    /* Past the message limits: refuse the response rather than hand over
     * a part of it. */
    x->fail_err = rc;
    return 0;
  }
  return len;
}

svc_status_t svc__httpc_reply_status(const struct svc__hx *x) {
  if (x->svc_status >= 0)
    return (svc_status_t)x->svc_status;
  return svc_status_from_http((int)x->code);
}

void svc__httpc_map_error(const struct svc__hx *x, CURLcode rc,
                          svc_status_t *status, int *err) {
  if (x->fail_err != 0) {
    *status = SVC_STATUS_RESOURCE_EXHAUSTED;
    *err = x->fail_err;
    return;
  }
  *status = SVC_STATUS_UNAVAILABLE;
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
    *err = SVC_ECONNREFUSED;
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    *err = SVC_ENOENT;
    break;
  case CURLE_OPERATION_TIMEDOUT:
    *err = SVC_ETIMEDOUT;
    break;
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    *err = SVC_ECONNRESET;
    break;
  case CURLE_OUT_OF_MEMORY:
    *status = SVC_STATUS_RESOURCE_EXHAUSTED;
    *err = SVC_ENOMEM;
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE:
    *err = SVC_EPROTO;
    break;
  default:
    *status = SVC_STATUS_UNKNOWN;
    *err = SVC_EPROTO;
    break;
  }
}
