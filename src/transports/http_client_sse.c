/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include <strings.h>

#include "transports/http_client.h"

/* Subscriptions over http://: a GET of the server's hub that answers with
 * a Server-Sent Events stream (docs/http.md). The stream is parsed as it
 * arrives; each event goes to the core's queue. When that queue is full the
 * transfer is paused, which stops reading the socket, so a slow consumer
 * slows the server's sending instead of growing our memory. A stream that
 * ends or fails is opened again after a backoff, with Last-Event-ID so that
 * the server replays what we missed. */

#define SSE_RETRY_MS 250    /* First reconnect delay, unless "retry:". */
#define SSE_RETRY_MAX_MS 5000

struct held {
  struct held *next;
  svc_msg_t *msg; /* Topic set. */
};

struct svc__httpc_sse {
  struct svc_sub_s *sub;
  struct svc__httpc *hc;
  struct svc__hx *x;        /* NULL while waiting to reconnect. */
  struct svc__timer retry_timer;
  uint64_t retry_ms;        /* Base delay ("retry:" field). */
  uint64_t backoff_ms;      /* Next delay. */
  char *last_id;
  int ok;                   /* This response is an event stream. */
  /* The line being read. */
  char *line;
  size_t line_len;
  size_t line_cap;
  int after_cr;             /* The last byte was CR (CRLF is one end). */
  /* The event being read. */
  svc_msg_t *ev;
  char *topic;
  char *id;
  int base64;
  char *data;
  size_t data_len;
  size_t data_cap;
  size_t data_lines;
  /* Events read while the core's queue was full, in order. */
  struct held *held_head;
  struct held **held_tail;
};

/* ---- Small buffers. */

static int grow(char **buf, size_t *cap, size_t need, size_t limit) {
  size_t c = *cap > 0 ? *cap : 256;
  char *b;

  if (need > limit)
    return SVC_EMSGSIZE;
  while (c < need)
    c *= 2;
  if (c == *cap)
    return 0;
  b = svc__realloc(*buf, c);
  if (b == NULL)
    return SVC_ENOMEM;
  *buf = b;
  *cap = c;
  return 0;
}

static void event_reset(struct svc__httpc_sse *e) {
  if (e->ev != NULL)
    svc_msg_free(e->ev);
  e->ev = NULL;
  svc__free(e->topic);
  svc__free(e->id);
  e->topic = e->id = NULL;
  e->base64 = 0;
  e->data_len = 0;
  e->data_lines = 0;
}

static void held_free(struct svc__httpc_sse *e) {
  while (e->held_head != NULL) {
    struct held *h = e->held_head;

    e->held_head = h->next;
    svc_msg_free(h->msg);
    svc__free(h);
  }
  e->held_tail = &e->held_head;
}

/* ---- Base64 (RFC 4648, with padding), for bodies that are not text. */

static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Decodes in place; returns the decoded length, or -1 when malformed. */
static long b64_decode(char *s, size_t n) {
  size_t i;
  size_t out = 0;
  unsigned acc = 0;
  int bits = 0;
  size_t pad = 0;

  for (i = 0; i < n; i++) {
    int v;

    if (s[i] == '=') {
      pad++;
      continue;
    }
    if (pad > 0)
      return -1; /* Data after padding. */
    v = b64_value((unsigned char)s[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      s[out++] = (char)((acc >> bits) & 0xff);
    }
  }
  if (pad > 2 || (n - pad) % 4 == 1)
    return -1;
  return (long)out;
}

/* ---- Events. */

static int queue_event(struct svc__httpc_sse *e, svc_msg_t *msg) {
  struct held *h;

  if (e->held_head == NULL && svc__sub_has_room(e->sub)) {
    svc__sub_event(e->sub, svc_msg_topic(msg), msg, 0);
    svc_msg_free(msg);
    return 0;
  }
  h = svc__calloc(1, sizeof(*h));
  if (h == NULL) {
    svc_msg_free(msg);
    return SVC_ENOMEM;
  }
  h->msg = msg;
  *e->held_tail = h;
  e->held_tail = &h->next;
  return 0;
}

static int dispatch(struct svc__httpc_sse *e) {
  svc_msg_t *msg;
  const char *topic;
  long len;
  int rc;

  if (e->id != NULL) {
    svc__free(e->last_id);
    e->last_id = e->id;
    e->id = NULL;
  }
  if (e->data_lines == 0 && e->topic == NULL) {
    event_reset(e);
    return 0;
  }
  /* Lines were joined with LF; the last one is not part of the body. */
  len = (long)e->data_len;
  if (len > 0)
    len--;
  if (e->base64) {
    len = b64_decode(e->data, (size_t)len);
    if (len < 0) {
      event_reset(e);
      return SVC_EPROTO;
    }
  }
  msg = e->ev != NULL ? e->ev : svc_msg_new(NULL, 0);
  e->ev = NULL;
  /* An event without a type is a "message", as for every SSE client. */
  topic = e->topic != NULL ? e->topic : "message";
  rc = msg == NULL ? SVC_ENOMEM : 0;
  if (rc == 0 && len > 0)
    rc = svc_msg_set_body(msg, e->data, (size_t)len);
  if (rc == 0)
    rc = svc__msg_set_topic(msg, topic);
  event_reset(e);
  if (rc != 0) {
    svc_msg_free(msg);
    return rc;
  }
  e->backoff_ms = e->retry_ms;
  return queue_event(e, msg);
}

static int field_is(const char *f, size_t n, const char *name) {
  return strlen(name) == n && memcmp(f, name, n) == 0;
}

static int ev_msg(struct svc__httpc_sse *e) {
  if (e->ev == NULL)
    e->ev = svc_msg_new(NULL, 0);
  return e->ev != NULL ? 0 : SVC_ENOMEM;
}

static int on_line(struct svc__httpc_sse *e, char *line, size_t n) {
  const char *colon;
  const char *v;
  size_t fl;
  size_t vl;
  int rc;

  if (n == 0)
    return dispatch(e);
  if (line[0] == ':')
    return 0; /* A comment: the server's heartbeat. */
  if (memchr(line, '\0', n) != NULL)
    return SVC_EPROTO;
  colon = memchr(line, ':', n);
  fl = colon != NULL ? (size_t)(colon - line) : n;
  v = colon != NULL ? colon + 1 : line + n;
  vl = n - fl - (colon != NULL ? 1 : 0);
  if (vl > 0 && *v == ' ') {
    v++;
    vl--;
  }
  line[n] = '\0'; /* The buffer always has room for it. */
  if (field_is(line, fl, "data")) {
    rc = grow(&e->data, &e->data_cap, e->data_len + vl + 1,
              e->hc->opts.max_body / 3 * 4 + 16);
    if (rc != 0)
      return rc;
    memcpy(e->data + e->data_len, v, vl);
    e->data_len += vl;
    e->data[e->data_len++] = '\n';
    e->data_lines++;
  } else if (field_is(line, fl, "event")) {
    svc__free(e->topic);
    e->topic = svc__strndup(v, vl);
    if (e->topic == NULL)
      return SVC_ENOMEM;
  } else if (field_is(line, fl, "id")) {
    svc__free(e->id);
    e->id = svc__strndup(v, vl);
    if (e->id == NULL)
      return SVC_ENOMEM;
  } else if (field_is(line, fl, "retry")) {
    char *end;
    unsigned long ms = strtoul(v, &end, 10);

    if (vl > 0 && end == v + vl && ms > 0 && ms <= 3600000)
      e->retry_ms = ms;
  } else if (field_is(line, fl, "svc-header")) {
    const char *c = memchr(v, ':', vl);
    char *name;
    const char *hv;

    if (c == NULL || c == v)
      return SVC_EPROTO;
    name = svc__strndup(v, (size_t)(c - v));
    if (name == NULL)
      return SVC_ENOMEM;
    hv = c + 1;
    while (*hv == ' ')
      hv++;
    rc = ev_msg(e);
    if (rc == 0)
      rc = svc_msg_header_add(e->ev, name, hv);
    svc__free(name);
    if (rc != 0)
      return rc;
  } else if (field_is(line, fl, "svc-content-type")) {
    rc = ev_msg(e);
    if (rc == 0)
      rc = svc_msg_set_content_type(e->ev, v);
    if (rc != 0)
      return rc;
  } else if (field_is(line, fl, "svc-encoding")) {
    if (!field_is(v, vl, "base64"))
      return SVC_EPROTO;
    e->base64 = 1;
  }
  /* Other fields are ignored, as the SSE rules say. */
  return 0;
}

/* Feeds bytes of the stream: lines end at CR, LF or CRLF. */
static int feed(struct svc__httpc_sse *e, const char *p, size_t n) {
  size_t limit = e->hc->opts.max_body / 3 * 4 + 64;

  while (n > 0) {
    size_t i = 0;
    int rc;

    if (e->after_cr && *p == '\n') {
      p++;
      n--;
      e->after_cr = 0;
      continue;
    }
    e->after_cr = 0;
    while (i < n && p[i] != '\n' && p[i] != '\r')
      i++;
    rc = grow(&e->line, &e->line_cap, e->line_len + i + 1, limit);
    if (rc != 0)
      return rc;
    memcpy(e->line + e->line_len, p, i);
    e->line_len += i;
    if (i == n)
      return 0; /* The line goes on in the next piece. */
    e->after_cr = p[i] == '\r';
    rc = on_line(e, e->line, e->line_len);
    e->line_len = 0;
    if (rc != 0)
      return rc;
    p += i + 1;
    n -= i + 1;
  }
  return 0;
}

/* ---- The transfer. */

static size_t on_sse_header(char *data, size_t size, size_t n, void *arg) {
  struct svc__hx *x = arg;
  struct svc__httpc_sse *e = x->owner;
  size_t rc = svc__httpc_on_header(data, size, n, arg);
  const char *ct;

  if (rc != size * n || x->in_headers || x->code < 200 || e == NULL)
    return rc;
  /* The blank line that ends the final response's headers. */
  ct = x->resp != NULL ? svc_msg_content_type(x->resp) : NULL;
  e->ok = x->code == 200 && ct != NULL &&
          strncasecmp(ct, "text/event-stream", 17) == 0;
  if (e->ok) {
    e->backoff_ms = e->retry_ms;
    if (!e->sub->ready)
      svc__sub_ready(e->sub);
  }
  return rc;
}

static size_t on_sse_data(char *data, size_t size, size_t n, void *arg) {
  struct svc__hx *x = arg;
  struct svc__httpc_sse *e = x->owner;
  int rc;

  if (e == NULL || !e->ok)
    return size * n; /* An error response's body: not events. */
  /* Events still held: take nothing now; curl keeps these bytes and
   * stops reading until sub_room unpauses us. */
  if (e->held_head != NULL) {
    x->paused_recv = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  rc = feed(e, data, size * n);
  if (rc != 0) {
    x->fail_err = rc;
    return 0;
  }
  return size * n;
}

static int sse_start(struct svc__httpc_sse *e);

/* Ends the subscription for good; the core forgets it too. */
static void sse_fail(struct svc__httpc_sse *e, int err) {
  struct svc_sub_s *sub = e->sub;

  sub->tp = NULL;
  svc__httpc_sse_free(e);
  svc__sub_failed(sub, err);
}

static void on_retry(struct svc__timer *t) {
  struct svc__httpc_sse *e =
    svc__container_of(t, struct svc__httpc_sse, retry_timer);
  int rc = sse_start(e);

  if (rc != 0)
    sse_fail(e, rc);
}

static void sse_retry_later(struct svc__httpc_sse *e) {
  uint64_t ms = e->backoff_ms;
  double jitter = 0.8 + 0.4 * svc__rand_unit(e->sub->ctx);

  e->backoff_ms = e->backoff_ms * 2 < SSE_RETRY_MAX_MS ? e->backoff_ms * 2
                                                       : SSE_RETRY_MAX_MS;
  if (svc__timer_start(e->sub->ctx, &e->retry_timer,
                       (uint64_t)((double)ms * jitter)) != 0)
    sse_fail(e, SVC_ENOMEM);
}

/* A response that says the subscription can never work. */
static int refusal(long code) {
  switch (code) {
  case 400:
    return SVC_EINVAL;
  case 401:
  case 403:
    return SVC_EPROTO;
  case 404:
  case 405:
  case 406:
    return SVC_ENOTSUP;
  default:
    return 0;
  }
}

static void sse_done(struct svc__hx *x, CURLcode rc) {
  struct svc__httpc_sse *e = x->owner;
  long code = x->code;
  int ok = e->ok;
  int fail = x->fail_err;

  e->x = NULL;
  e->ok = 0;
  svc__hx_free(x);
  event_reset(e);
  e->line_len = 0;
  e->after_cr = 0;
  if (fail == SVC_EMSGSIZE || fail == SVC_EPROTO) {
    sse_fail(e, fail);
    return;
  }
  if (rc == CURLE_OK && !ok && refusal(code) != 0) {
    sse_fail(e, refusal(code));
    return;
  }
  if (rc == CURLE_OK && !ok && code == 200) {
    sse_fail(e, SVC_EPROTO); /* Not an event stream. */
    return;
  }
  /* The stream ended or broke: the server restarted, a proxy timed out,
   * the network failed. Open it again; Last-Event-ID resumes it. */
  sse_retry_later(e);
}

static int sse_start(struct svc__httpc_sse *e) {
  struct svc__hx *x;
  int rc;

  x = svc__hx_new(e->hc, SVC__HX_SUB, e,
                  svc__httpc_topic_url(e->sub->conn, e->sub->filter));
  if (x == NULL)
    return SVC_ENOMEM;
  curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_sse_header);
  curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_sse_data);
  curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
  /* A stream that stays silent past a few heartbeats is dead (paused
   * transfers are exempt). */
  curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME,
                   (e->hc->opts.sse_idle_ms + 999) / 1000);
  rc = svc__httpc_add_header(&x->hdrs, "Accept", "text/event-stream");
  if (rc == 0)
    rc = svc__httpc_add_header(&x->hdrs, "Cache-Control", "no-cache");
  if (rc == 0 && e->last_id != NULL)
    rc = svc__httpc_add_header(&x->hdrs, "Last-Event-ID", e->last_id);
  x->done = sse_done;
  e->x = x;
  if (rc == 0)
    rc = svc__hx_start(x);
  if (rc != 0) {
    e->x = NULL;
    svc__hx_free(x);
  }
  return rc;
}

void svc__httpc_sse_free(struct svc__httpc_sse *e) {
  if (e->x != NULL)
    svc__hx_cancel(e->x);
  svc__timer_stop(e->sub->ctx, &e->retry_timer);
  event_reset(e);
  held_free(e);
  svc__free(e->last_id);
  svc__free(e->line);
  svc__free(e->data);
  svc__free(e);
}

int svc__httpc_subscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct svc__httpc_sse *e = svc__calloc(1, sizeof(*e));
  int rc;

  if (e == NULL)
    return SVC_ENOMEM;
  e->sub = sub;
  e->hc = svc__httpc_of(conn);
  e->retry_ms = e->backoff_ms = SSE_RETRY_MS;
  e->held_tail = &e->held_head;
  svc__timer_init(&e->retry_timer, on_retry);
  sub->tp = e;
  rc = sse_start(e);
  if (rc != 0) {
    sub->tp = NULL;
    svc__httpc_sse_free(e);
  }
  return rc;
}

void svc__httpc_unsubscribe(struct svc__conn *conn, struct svc_sub_s *sub) {
  (void)conn;
  if (sub->tp != NULL)
    svc__httpc_sse_free(sub->tp);
  sub->tp = NULL;
}

void svc__httpc_sub_room(struct svc__conn *conn, struct svc_sub_s *sub) {
  struct svc__httpc_sse *e = sub->tp;

  (void)conn;
  if (e == NULL)
    return;
  while (e->held_head != NULL && svc__sub_has_room(sub)) {
    struct held *h = e->held_head;

    e->held_head = h->next;
    if (e->held_head == NULL)
      e->held_tail = &e->held_head;
    svc__sub_event(sub, svc_msg_topic(h->msg), h->msg, 0);
    svc_msg_free(h->msg);
    svc__free(h);
  }
  if (e->held_head == NULL && e->x != NULL)
    svc__hx_resume(e->x);
}
