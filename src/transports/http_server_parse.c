/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http_server.h"

#include <strings.h>

/* One connection's request parser: http-parser in strict mode with our
 * limits on top (its own header cap is a process-wide static, so ours are
 * counted here). Values arrive in fragments and the data pointers are only
 * valid inside a callback, so the request line and headers are gathered in
 * one buffer as "url\0name\0value\0...". The parser pauses at the end of
 * each request, which makes the count of used bytes exact: pipelined
 * requests stay in the caller's buffer until it asks for the next one. */

enum { HP_URL, HP_FIELD, HP_VALUE };

/* Bytes a header line costs beyond its name and value (": " and CRLF),
 * and the request line beyond its target ("GET " and " HTTP/1.1\r\n"). */
#define HP_LINE_EXTRA 4
#define HP_REQLINE_EXTRA 16

#define HP(parser) ((struct svc__hparse *)(parser)->data)

static int hp_fail(struct svc__hparse *hp, int code, const char *text) {
  if (hp->err_code == 0) {
    hp->err_code = code;
    hp->err_text = text;
  }
  return -1;
}

static int hp_append(struct svc__hparse *hp, const char *p, size_t n) {
  if (hp->len + n + 1 > hp->cap) {
    size_t cap = hp->cap != 0 ? hp->cap : 256;
    char *b;
    while (cap < hp->len + n + 1)
      cap *= 2;
    b = svc__realloc(hp->buf, cap);
    if (b == NULL)
      return hp_fail(hp, 500, "out of memory");
    hp->buf = b;
    hp->cap = cap;
  }
  memcpy(hp->buf + hp->len, p, n);
  hp->len += n;
  return 0;
}

static int hp_count(struct svc__hparse *hp, size_t n) {
  hp->head_bytes += n;
  if (hp->head_bytes > hp->max_header_bytes)
    return hp_fail(hp, 431, "request headers too large");
  return 0;
}

static int hp_on_message_begin(http_parser *p) {
  struct svc__hparse *hp = HP(p);

  hp->phase = SVC__HP_HEAD;
  hp->head_bytes = HP_REQLINE_EXTRA;
  return 0;
}

static int hp_on_url(http_parser *p, const char *at, size_t n) {
  struct svc__hparse *hp = HP(p);

  hp->url_len += n;
  if (hp->url_len > hp->max_url)
    return hp_fail(hp, 414, "request target too long");
  if (hp_count(hp, n) != 0)
    return -1;
  return hp_append(hp, at, n);
}

/* Ends the text being gathered (url, name or value) with a NUL. */
static int hp_end_text(struct svc__hparse *hp) {
  return hp_append(hp, "", 1);
}

static int hp_on_header_field(http_parser *p, const char *at, size_t n) {
  struct svc__hparse *hp = HP(p);

  if (hp_count(hp, n) != 0)
    return -1;
  if (hp->phase == SVC__HP_BODY)
    return 0; /* A trailer of a chunked body: counted, not kept. */
  if (hp->hstate != HP_FIELD) {
    if (hp->nheaders >= hp->max_headers)
      return hp_fail(hp, 431, "too many request headers");
    if (hp->nheaders == hp->hcap) {
      size_t cap = hp->hcap != 0 ? hp->hcap * 2 : 16;
      size_t *o = svc__realloc(hp->hoff, 2 * cap * sizeof(*o));
      if (o == NULL)
        return hp_fail(hp, 500, "out of memory");
      hp->hoff = o;
      hp->hcap = cap;
    }
    if (hp_end_text(hp) != 0 || hp_count(hp, HP_LINE_EXTRA) != 0)
      return -1;
    hp->hoff[2 * hp->nheaders] = hp->len;
    hp->hoff[2 * hp->nheaders + 1] = hp->len; /* Until the value comes. */
    hp->nheaders++;
    hp->hstate = HP_FIELD;
  }
  return hp_append(hp, at, n);
}

static int hp_on_header_value(http_parser *p, const char *at, size_t n) {
  struct svc__hparse *hp = HP(p);

  if (hp_count(hp, n) != 0)
    return -1;
  if (hp->phase == SVC__HP_BODY)
    return 0;
  if (hp->hstate != HP_VALUE) {
    if (hp_end_text(hp) != 0)
      return -1;
    hp->hoff[2 * hp->nheaders - 1] = hp->len;
    hp->hstate = HP_VALUE;
  }
  return hp_append(hp, at, n);
}

static int hp_on_headers_complete(http_parser *p) {
  struct svc__hparse *hp = HP(p);
  int rc;

  /* A header without a value still gets its empty value. */
  if (hp->hstate == HP_FIELD) {
    if (hp_end_text(hp) != 0)
      return -1;
    hp->hoff[2 * hp->nheaders - 1] = hp->len;
  }
  if (hp_end_text(hp) != 0)
    return -1;
  hp->hstate = HP_URL;
  hp->phase = SVC__HP_BODY;
  hp->head_raw = 0;
  /* The parser counts content_length down as the body comes. */
  hp->declared = (p->flags & F_CHUNKED) != 0 || p->content_length == ULLONG_MAX
                     ? UINT64_MAX
                     : p->content_length;
  rc = hp->cbs->on_head != NULL ? hp->cbs->on_head(hp) : SVC__HP_BUFFER;
  if (rc >= 400)
    return hp_fail(hp, rc, "request refused");
  hp->mode = rc;
  if (rc == SVC__HP_BUFFER && hp->declared != UINT64_MAX &&
      hp->declared > hp->max_body)
    return hp_fail(hp, 413, "request body too large");
  return 0;
}

static int hp_on_body(http_parser *p, const char *at, size_t n) {
  struct svc__hparse *hp = HP(p);
  int rc;

  if (hp->mode == SVC__HP_STREAM) {
    rc = hp->cbs->on_body != NULL ? hp->cbs->on_body(hp, at, n) : 0;
    return rc != 0 ? hp_fail(hp, rc, "stream refused the body") : 0;
  }
  if (n > hp->max_body - hp->body_len)
    return hp_fail(hp, 413, "request body too large");
  if (hp->body_len + n > hp->body_cap) {
    size_t cap = hp->body_cap != 0 ? hp->body_cap : 1024;
    char *b;
    while (cap < hp->body_len + n)
      cap *= 2;
    b = svc__realloc(hp->body, cap);
    if (b == NULL)
      return hp_fail(hp, 500, "out of memory");
    hp->body = b;
    hp->body_cap = cap;
  }
  memcpy(hp->body + hp->body_len, at, n);
  hp->body_len += n;
  return 0;
}

static int hp_on_chunk_header(http_parser *p) {
  HP(p)->chunk_left = p->content_length;
  return 0;
}

static int hp_on_chunk_complete(http_parser *p) {
  struct svc__hparse *hp = HP(p);
  int rc;

  /* The last chunk (size 0) ends the body; it is not a chunk of data. */
  if (hp->mode != SVC__HP_STREAM || hp->chunk_left == 0 ||
      hp->cbs->on_chunk_end == NULL)
    return 0;
  hp->chunk_left = 0;
  rc = hp->cbs->on_chunk_end(hp);
  return rc != 0 ? hp_fail(hp, rc, "stream refused the body") : 0;
}

static int hp_on_message_complete(http_parser *p) {
  struct svc__hparse *hp = HP(p);

  hp->complete = 1;
  hp->phase = SVC__HP_IDLE;
  hp->keep_alive = http_should_keep_alive(p);
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings hp_settings = {
    .on_message_begin = hp_on_message_begin,
    .on_url = hp_on_url,
    .on_header_field = hp_on_header_field,
    .on_header_value = hp_on_header_value,
    .on_headers_complete = hp_on_headers_complete,
    .on_body = hp_on_body,
    .on_message_complete = hp_on_message_complete,
    .on_chunk_header = hp_on_chunk_header,
    .on_chunk_complete = hp_on_chunk_complete,
};

static void hp_reset_request(struct svc__hparse *hp) {
  hp->complete = 0;
  hp->len = 0;
  hp->url_len = 0;
  hp->nheaders = 0;
  hp->hstate = HP_URL;
  hp->head_bytes = 0;
  hp->head_raw = 0;
  hp->mode = SVC__HP_BUFFER;
  hp->chunk_left = 0;
  hp->declared = UINT64_MAX;
  svc__free(hp->body);
  hp->body = NULL;
  hp->body_len = 0;
  hp->body_cap = 0;
}

void svc__hp_init(struct svc__hparse *hp, const struct svc__hp_cbs *cbs,
                  void *owner) {
  memset(hp, 0, sizeof(*hp));
  /* No limits until the caller sets them. */
  hp->max_header_bytes = SIZE_MAX / 2;
  hp->max_headers = SIZE_MAX;
  hp->max_url = SIZE_MAX;
  hp->max_body = UINT64_MAX;
  hp->cbs = cbs;
  hp->owner = owner;
  http_parser_init(&hp->p, HTTP_REQUEST);
  hp->p.data = hp;
  hp_reset_request(hp);
}

void svc__hp_free(struct svc__hparse *hp) {
  svc__free(hp->buf);
  svc__free(hp->hoff);
  svc__free(hp->body);
  hp->buf = NULL;
  hp->hoff = NULL;
  hp->body = NULL;
}

static int hp_errno_code(enum http_errno e) {
  switch (e) {
  case HPE_HEADER_OVERFLOW:
    return 431;
  default:
    return 400;
  }
}

size_t svc__hp_feed(struct svc__hparse *hp, const char *data, size_t len) {
  enum svc__hp_phase before = hp->phase;
  enum http_errno e;
  size_t n;

  if (hp->err_code != 0 || hp->complete)
    return 0;
  n = http_parser_execute(&hp->p, &hp_settings, data, len);
  e = HTTP_PARSER_ERRNO(&hp->p);
  /* Upgrade (and CONNECT) first, even when paused: what follows is not
   * HTTP, so the request is answered and the connection ends. */
  if (hp->p.upgrade) {
    hp->upgrade = 1;
    hp->keep_alive = 0;
    if (!hp->complete)
      hp_fail(hp, 400, "protocol upgrade not supported");
    return n;
  }
  if (e == HPE_PAUSED)
    return n;
  if (e != HPE_OK) {
    hp_fail(hp, hp_errno_code(e), http_errno_description(e));
    return n;
  }
  /* Bytes that are neither text nor body (padding between header
   * characters) still count against the header limit. */
  if ((before == SVC__HP_IDLE || before == SVC__HP_HEAD) &&
      hp->phase == SVC__HP_HEAD) {
    hp->head_raw += n;
    if (hp->head_raw > hp->max_header_bytes + HP_REQLINE_EXTRA)
      hp_fail(hp, 431, "request headers too large");
  }
  return n;
}

void svc__hp_next(struct svc__hparse *hp) {
  hp_reset_request(hp);
  http_parser_pause(&hp->p, 0);
}

const char *svc__hp_method(const struct svc__hparse *hp) {
  return http_method_str((enum http_method)hp->p.method);
}

const char *svc__hp_url(const struct svc__hparse *hp) {
  return hp->buf != NULL ? hp->buf : "";
}

size_t svc__hp_nheaders(const struct svc__hparse *hp) {
  return hp->nheaders;
}

void svc__hp_header(const struct svc__hparse *hp, size_t i, const char **name,
                    const char **value) {
  *name = hp->buf + hp->hoff[2 * i];
  *value = hp->buf + hp->hoff[2 * i + 1];
}

const char *svc__hp_get(const struct svc__hparse *hp, const char *name) {
  size_t i;

  for (i = 0; i < hp->nheaders; i++)
    if (strcasecmp(hp->buf + hp->hoff[2 * i], name) == 0)
      return hp->buf + hp->hoff[2 * i + 1];
  return NULL;
}

uint64_t svc__hp_content_length(const struct svc__hparse *hp) {
  return hp->declared;
}

char *svc__hp_take_body(struct svc__hparse *hp, size_t *len) {
  char *b = hp->body;

  *len = hp->body_len;
  hp->body = NULL;
  hp->body_len = 0;
  hp->body_cap = 0;
  return b;
}

int svc__http_is_control(const char *name) {
  static const char *const names[] = {
      "Connection",        "Keep-Alive",    "Transfer-Encoding",
      "Content-Length",    "Expect",        "TE",
      "Upgrade",           "Trailer",       "Proxy-Connection",
      "Content-Type",      "Host",          SVC__HTTP_H_STATUS,
      SVC__HTTP_H_TIMEOUT, SVC__HTTP_H_QOS, SVC__HTTP_H_RETAIN,
      "Svc-Stream",        "Svc-Window",    SVC__HTTP_H_CODE,
  };
  size_t i;

  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (strcasecmp(name, names[i]) == 0)
      return 1;
  return 0;
}

static void hp_body_free(void *p) {
  svc__free(p);
}

svc_msg_t *svc__hp_message(const struct svc__hparse *hp, char *body,
                           size_t body_len, int *code) {
  svc_msg_t *msg;
  const char *name;
  const char *value;
  const char *ct;
  size_t i;
  int rc;

  msg = body != NULL ? svc_msg_new_take(body, body_len, hp_body_free)
                     : svc_msg_new(NULL, 0);
  if (msg == NULL) {
    svc__free(body);
    *code = 500;
    return NULL;
  }
  for (i = 0; i < hp->nheaders; i++) {
    svc__hp_header(hp, i, &name, &value);
    char *dec;

    if (svc__http_is_control(name))
      continue;
    /* CloudEvents attributes come percent-encoded (the HTTP binding). */
    rc = svc__ce_http_decode(name, value, &dec);
    if (rc == 0)
      rc = svc_msg_header_add(msg, name, dec != NULL ? dec : value);
    svc__free(dec);
    if (rc != 0) {
      svc_msg_free(msg);
      *code = rc == SVC_ENOMEM ? 500 : rc == SVC_EMSGSIZE ? 431 : 400;
      return NULL;
    }
  }
  ct = svc__hp_get(hp, "Content-Type");
  if (ct != NULL && ct[0] != '\0' &&
      (rc = svc_msg_set_content_type(msg, ct)) != 0) {
    svc_msg_free(msg);
    *code = rc == SVC_ENOMEM ? 500 : 400;
    return NULL;
  }
  return msg;
}
