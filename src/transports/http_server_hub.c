/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* The server's topic hub over HTTP (docs/http.md, "The hub over HTTP"):
 * POST <prefix><topic> publishes, GET <prefix><filter> with Accept:
 * text/event-stream subscribes as a Server-Sent Events stream. Every event
 * of the hub gets a number, and the last sse_history events are kept, so
 * that a client reconnecting with Last-Event-ID loses nothing. A recorder
 * sink on "#" numbers and keeps events; each SSE connection is a sink of
 * its own, so the hub's rules apply unchanged: a full connection drops
 * QoS 0 events (counted) and makes QoS >= 1 publishes wait. */

/* ---- Event numbers and history. */

/* The history also keeps at most this many bytes of messages. */
#define HS_HIST_MAX_BYTES (64u * 1024 * 1024)

/* One publish reaches every sink with the same message: the first sink to
 * see it numbers it. The message is held so that its address cannot be
 * reused by the next publish while we remember it. */
static uint64_t hs_event_id(struct svc__https *hs, svc_msg_t *msg) {
  if (msg != hs->last_msg) {
    svc_msg_free(hs->last_msg);
    hs->last_msg = svc__msg_ref(msg);
    hs->last_id++;
  }
  return hs->last_id;
}

static void hs_event_clear(struct svc__hs_event *e) {
  svc__free(e->topic);
  svc_msg_free(e->msg);
  memset(e, 0, sizeof(*e));
}

static int hs_recorder_deliver(struct svc__hub_sink *sink, const char *topic,
                               svc_msg_t *msg, int qos) {
  struct svc__https *hs = svc__container_of(sink, struct svc__https, recorder);
  size_t cap = hs->opts.sse_history;
  struct svc__hs_event *e;
  uint64_t id = hs_event_id(hs, msg);
  char *t;

  (void)qos;
  if (cap == 0)
    return 0;
  t = svc__strdup(topic);
  if (t == NULL)
    return 0; /* Not kept: a reconnecting reader will miss it. */
  /* Bounded by count and by bytes: the oldest events go first. */
  while (hs->hist_len > 0 &&
         (hs->hist_len == cap ||
          hs->hist_bytes + svc__msg_cost(msg) > HS_HIST_MAX_BYTES)) {
    hs->hist_bytes -= svc__msg_cost(hs->hist[hs->hist_head].msg);
    hs_event_clear(&hs->hist[hs->hist_head]);
    hs->hist_head = (hs->hist_head + 1) % cap;
    hs->hist_len--;
  }
  e = &hs->hist[(hs->hist_head + hs->hist_len) % cap];
  e->id = id;
  e->topic = t;
  e->msg = svc__msg_ref(msg);
  hs->hist_len++;
  hs->hist_bytes += svc__msg_cost(msg);
  return 0;
}

static int hs_recorder_has_room(struct svc__hub_sink *sink) {
  (void)sink;
  return 1;
}

int svc__hs_hub_init(struct svc__https *hs) {
  int rc;

  if (hs->opts.sse_history > 0) {
    hs->hist = svc__calloc(hs->opts.sse_history, sizeof(*hs->hist));
    if (hs->hist == NULL)
      return SVC_ENOMEM;
  }
  hs->recorder.deliver = hs_recorder_deliver;
  hs->recorder.has_room = hs_recorder_has_room;
  rc = svc__hub_add(hs->srv->hub, "#", &hs->recorder);
  if (rc != 0)
    return rc;
  hs->recorder_added = 1;
  return 0;
}

void svc__hs_hub_free(struct svc__https *hs) {
  size_t i;

  if (hs->recorder_added) {
    svc__hub_remove(hs->srv->hub, &hs->recorder);
    hs->recorder_added = 0;
  }
  for (i = 0; i < hs->hist_len; i++)
    hs_event_clear(&hs->hist[(hs->hist_head + i) % hs->opts.sse_history]);
  svc__free(hs->hist);
  hs->hist = NULL;
  hs->hist_len = 0;
  hs->hist_bytes = 0;
  svc_msg_free(hs->last_msg);
  hs->last_msg = NULL;
}

/* ---- Formatting events. */

/* Text goes as it is: valid UTF-8 without NUL or CR (a CR would end an SSE
 * line). Anything else is base64. */
static int hs_is_text(const unsigned char *p, size_t n) {
  size_t i = 0;

  while (i < n) {
    unsigned char b = p[i];
    size_t len;
    uint32_t cp;
    size_t k;
    if (b == 0 || b == '\r')
      return 0;
    if (b < 0x80) {
      i++;
      continue;
    }
    if ((b & 0xE0) == 0xC0) {
      len = 2;
      cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      cp = b & 0x07;
    } else {
      return 0;
    }
    if (n - i < len)
      return 0;
    for (k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return 0;
    i += len;
  }
  return 1;
}

static void hs_base64(struct svc__hs_buf *b, const unsigned char *p, size_t n) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char q[4];
  size_t i;

  for (i = 0; i + 2 < n; i += 3) {
    q[0] = tab[p[i] >> 2];
    q[1] = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
    q[2] = tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
    q[3] = tab[p[i + 2] & 63];
    svc__hs_buf_add(b, q, 4);
  }
  if (n - i == 1) {
    q[0] = tab[p[i] >> 2];
    q[1] = tab[(p[i] & 3) << 4];
    q[2] = q[3] = '=';
    svc__hs_buf_add(b, q, 4);
  } else if (n - i == 2) {
    q[0] = tab[p[i] >> 2];
    q[1] = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
    q[2] = tab[(p[i + 1] & 15) << 2];
    q[3] = '=';
    svc__hs_buf_add(b, q, 4);
  }
}

/* Sends text as one chunk of the chunked answer. */
static int hs_send_chunk(struct svc__hs_conn *c, const char *text, size_t n) {
  struct svc__hs_buf b;

  memset(&b, 0, sizeof(b));
  svc__hs_buf_addf(&b, "%zx\r\n", n);
  svc__hs_buf_add(&b, text, n);
  svc__hs_buf_add(&b, "\r\n", 2);
  if (b.oom) {
    svc__free(b.p);
    return SVC_ENOMEM;
  }
  return svc__hs_send(c, b.p, b.len, 0);
}

/* A topic holds no NUL but may hold CR or LF, which would end the line:
 * those two are written as %0D and %0A. */
static void hs_add_topic(struct svc__hs_buf *b, const char *t) {
  for (; *t != '\0'; t++) {
    if (*t == '\r')
      svc__hs_buf_adds(b, "%0D");
    else if (*t == '\n')
      svc__hs_buf_adds(b, "%0A");
    else
      svc__hs_buf_add(b, t, 1);
  }
}

static int hs_sse_send(struct svc__hs_conn *c, uint64_t id, const char *topic,
                       const svc_msg_t *msg) {
  struct svc__hs_buf b;
  const char *name;
  const char *value;
  const char *ct = svc_msg_content_type(msg);
  size_t len;
  const unsigned char *body = svc_msg_body(msg, &len);
  size_t i;
  size_t n = svc_msg_header_count(msg);
  int rc;

  memset(&b, 0, sizeof(b));
  if (id != 0)
    svc__hs_buf_addf(&b, "id: %llu\n", (unsigned long long)id);
  svc__hs_buf_adds(&b, "event: ");
  hs_add_topic(&b, topic);
  svc__hs_buf_add(&b, "\n", 1);
  for (i = 0; i < n; i++) {
    svc_msg_header_at(msg, i, &name, &value);
    svc__hs_buf_adds(&b, "svc-header: ");
    svc__hs_buf_adds(&b, name);
    svc__hs_buf_add(&b, ": ", 2);
    svc__hs_buf_adds(&b, value);
    svc__hs_buf_add(&b, "\n", 1);
  }
  if (ct != NULL) {
    svc__hs_buf_adds(&b, "svc-content-type: ");
    svc__hs_buf_adds(&b, ct);
    svc__hs_buf_add(&b, "\n", 1);
  }
  if (len == 0) {
    svc__hs_buf_adds(&b, "data:\n");
  } else if (!hs_is_text(body, len)) {
    svc__hs_buf_adds(&b, "svc-encoding: base64\ndata: ");
    hs_base64(&b, body, len);
    svc__hs_buf_add(&b, "\n", 1);
  } else {
    /* One data line per line: a reader joins them with LF again. */
    const unsigned char *p = body;
    const unsigned char *end = body + len;
    for (;;) {
      const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t ln = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
      if (ln == 0) {
        svc__hs_buf_adds(&b, "data:\n");
      } else {
        svc__hs_buf_adds(&b, "data: ");
        svc__hs_buf_add(&b, p, ln);
        svc__hs_buf_add(&b, "\n", 1);
      }
      if (nl == NULL)
        break;
      p = nl + 1;
    }
  }
  svc__hs_buf_add(&b, "\n", 1);
  if (b.oom) {
    svc__free(b.p);
    return SVC_ENOMEM;
  }
  rc = hs_send_chunk(c, b.p, b.len);
  svc__free(b.p);
  if (rc == 0 && id > c->sse_sent_id)
    c->sse_sent_id = id;
  return rc;
}

/* ---- SSE connections as hub sinks. */

static int hs_sink_has_room(struct svc__hub_sink *sink) {
  struct svc__hs_conn *c = svc__container_of(sink, struct svc__hs_conn, sink);

  return !c->closed && c->out_bytes < c->hs->opts.max_outbound;
}

static int hs_sink_deliver(struct svc__hub_sink *sink, const char *topic,
                           svc_msg_t *msg, int qos) {
  struct svc__hs_conn *c = svc__container_of(sink, struct svc__hs_conn, sink);
  struct svc__https *hs = c->hs;
  uint64_t id = hs_event_id(hs, msg);

  /* The hub asked has_room() before any QoS >= 1 delivery; only QoS 0
   * comes here unchecked, and is dropped and counted when full. */
  if ((qos == 0 && !hs_sink_has_room(sink)) || c->closed) {
    hs->srv->metrics->m.dropped++;
    return SVC_ENOBUFS;
  }
  if (id <= c->sse_sent_id)
    return 0; /* Already sent from the history. */
  if (hs_sse_send(c, id, topic, msg) != 0) {
    hs->srv->metrics->m.dropped++;
    return SVC_ENOBUFS;
  }
  return 0;
}

static void hs_ping_cb(struct svc__timer *t) {
  struct svc__hs_conn *c = svc__container_of(t, struct svc__hs_conn, ping);
  static const char ping[] = ": ping\n\n";

  if (c->closed)
    return;
  /* A reader that is this far behind needs no heartbeat. */
  if (c->out_bytes < c->hs->opts.max_outbound &&
      hs_send_chunk(c, ping, sizeof(ping) - 1) != 0)
    return;
  svc__timer_start(c->hs->srv->ctx, &c->ping, c->hs->opts.sse_ping_ms);
}

void svc__hs_sse_end(struct svc__hs_conn *c) {
  struct svc_server_s *srv = c->hs->srv;

  svc__timer_stop(srv->ctx, &c->ping);
  if (c->sink_added) {
    svc__hub_remove(srv->hub, &c->sink);
    c->sink_added = 0;
    /* Publishes that waited for this reader can go on. */
    svc__hub_room(srv->ctx, srv->hub);
  }
}

void svc__hs_sse_drained(struct svc__hs_conn *c) {
  if (c->sink_added && c->out_bytes < c->hs->opts.max_outbound)
    svc__hub_room(c->hs->srv->ctx, c->hs->srv->hub);
}

static void hs_retained(const char *topic, svc_msg_t *msg, void *arg) {
  struct svc__hs_conn *c = arg;

  if (!c->closed)
    hs_sse_send(c, 0, topic, msg);
}

/* ---- Requests. */


/* The topic or filter of url: what follows the prefix up to '?',
 * percent-decoded. NULL for a bad escape or %00 (or no memory). */
static char *hs_topic_of(const char *url, size_t prefix_len) {
  const char *s = url + prefix_len;
  size_t n = strcspn(s, "?");
  char *out = svc__malloc(n + 1);
  size_t i;
  size_t o = 0;

  if (out == NULL)
    return NULL;
  for (i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n || svc__hex_value(s[i + 1]) < 0 || svc__hex_value(s[i + 2]) < 0 ||
          (svc__hex_value(s[i + 1]) == 0 && svc__hex_value(s[i + 2]) == 0)) {
        svc__free(out);
        return NULL;
      }
      out[o++] = (char)(svc__hex_value(s[i + 1]) * 16 + svc__hex_value(s[i + 2]));
      i += 2;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
}

/* The value of name in url's query ("qos=1&retain=1"), or NULL. */
static const char *hs_query_get(const char *url, const char *name,
                                size_t *len) {
  const char *q = strchr(url, '?');
  size_t nl = strlen(name);

  while (q != NULL) {
    const char *v;
    q++;
    if (strncmp(q, name, nl) == 0 && q[nl] == '=') {
      v = q + nl + 1;
      *len = strcspn(v, "&");
      return v;
    }
    q = strchr(q, '&');
  }
  return NULL;
}

/* 0/1/2 from a header or the query; -1 when absent, -2 when invalid. */
static int hs_small_int(const struct svc__hparse *hp, const char *header,
                        const char *qname, int max) {
  const char *v = svc__hp_get(hp, header);
  size_t len;

  if (v != NULL)
    len = strlen(v);
  else
    v = hs_query_get(svc__hp_url(hp), qname, &len);
  if (v == NULL)
    return -1;
  if (len != 1 || v[0] < '0' || v[0] - '0' > max)
    return -2;
  return v[0] - '0';
}

int svc__hs_hub_head(struct svc__hs_conn *c, int *sse) {
  struct svc__hparse *hp = &c->hp;
  const char *accept = svc__hp_get(hp, "Accept");

  *sse = 0;
  if (hp->p.method == HTTP_POST)
    return SVC__HP_BUFFER;
  if (hp->p.method == HTTP_GET && accept != NULL &&
      strstr(accept, "text/event-stream") != NULL) {
    /* The stream takes the connection, so it cannot wait behind answers
     * still due on it. */
    if (c->nreqs > 0)
      return 400;
    *sse = 1;
    return SVC__HP_BUFFER;
  }
  return -1; /* An ordinary call to a route under the prefix. */
}

static void hs_pub_done(svc_ctx_t *ctx, int status, void *arg) {
  struct svc__hs_req *hr = arg;

  (void)ctx;
  if (hr->c == NULL) {
    svc__free(hr); /* The publisher went away meanwhile. */
    return;
  }
  if (status == 0)
    svc__hs_req_answer(hr, 204, SVC_STATUS_OK, NULL, NULL, NULL);
  else if (status == SVC_EAGAIN || status == SVC_ENOBUFS)
    svc__hs_req_answer(hr, 429, SVC_STATUS_RESOURCE_EXHAUSTED, NULL, NULL,
                       "hub full\n");
  else if (status == SVC_ECANCELED || status == SVC_ECLOSING)
    svc__hs_req_answer(hr, 503, SVC_STATUS_UNAVAILABLE, NULL, NULL,
                       "server closing\n");
  else
    svc__hs_req_answer(hr, 500, SVC_STATUS_INTERNAL, NULL, NULL,
                       "publish failed\n");
}

static void hs_publish(struct svc__hs_conn *c, char *topic) {
  struct svc__hparse *hp = &c->hp;
  struct svc_server_s *srv = c->hs->srv;
  struct svc__hs_req *hr;
  svc_pub_opts_t po;
  svc_msg_t *msg;
  int qos = hs_small_int(hp, SVC__HTTP_H_QOS, "qos", 2);
  int retain = hs_small_int(hp, SVC__HTTP_H_RETAIN, "retain", 1);
  int rc;

  if (svc__topic_check_name(topic) != 0 || qos == -2 || retain == -2) {
    svc__hs_fail(c, 400, "invalid topic, QoS or retain");
    return;
  }
  hr = svc__hs_req_take(c, &msg);
  if (hr == NULL)
    return;
  memset(&po, 0, sizeof(po));
  po.qos = qos > 0 ? qos : 0;
  po.retain = retain > 0;
  rc = svc_server_publish(srv, topic, msg, &po, hs_pub_done, hr);
  if (rc == 0)
    return; /* hs_pub_done answers. */
  svc_msg_free(msg);
  if (rc == SVC_EAGAIN || rc == SVC_ENOBUFS)
    svc__hs_req_answer(hr, 429, SVC_STATUS_RESOURCE_EXHAUSTED, NULL, NULL,
                       "hub full\n");
  else if (rc == SVC_EINVAL)
    svc__hs_req_answer(hr, 400, SVC_STATUS_INVALID_ARGUMENT, NULL, NULL,
                       "publish refused\n");
  else if (rc == SVC_ECLOSING)
    svc__hs_req_answer(hr, 503, SVC_STATUS_UNAVAILABLE, NULL, NULL,
                       "server closing\n");
  else
    svc__hs_req_answer(hr, 500, SVC_STATUS_INTERNAL, NULL, NULL,
                       "publish failed\n");
}

static void hs_subscribe(struct svc__hs_conn *c, const char *filter) {
  static const char head[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/event-stream\r\n"
                             "Cache-Control: no-cache\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n";
  struct svc__https *hs = c->hs;
  struct svc_server_s *srv = hs->srv;
  const char *last = svc__hp_get(&c->hp, "Last-Event-ID");
  const char *match = filter;
  const char *group;
  size_t group_len;
  uint64_t after = 0;
  size_t i;
  char *b;

  if (svc__topic_check_filter(filter) != 0) {
    svc__hs_fail(c, 400, "invalid topic filter");
    return;
  }
  if (last != NULL) {
    char *end;
    unsigned long long v = strtoull(last, &end, 10);
    if (last[0] < '0' || last[0] > '9' || *end != '\0') {
      svc__hs_fail(c, 400, "invalid Last-Event-ID");
      return;
    }
    after = v;
  }
  svc__topic_split_share(filter, &group, &group_len, &match);
  b = svc__malloc(sizeof(head) - 1);
  if (b == NULL) {
    svc__hs_fail(c, 500, "out of memory");
    return;
  }
  memcpy(b, head, sizeof(head) - 1);
  c->mode = SVC__HS_SSE;
  if (svc__hs_send(c, b, sizeof(head) - 1, 0) != 0)
    return;
  if (last != NULL) {
    /* Replay what the reader missed, then go live. */
    for (i = 0; i < hs->hist_len && !c->closed; i++) {
      struct svc__hs_event *e =
          &hs->hist[(hs->hist_head + i) % hs->opts.sse_history];
      if (e->id > after && svc__topic_match(match, e->topic))
        hs_sse_send(c, e->id, e->topic, e->msg);
    }
    if (c->sse_sent_id < hs->last_id)
      c->sse_sent_id = hs->last_id; /* Live events start after these. */
  } else {
    svc__hub_retained_foreach(srv->hub, filter, hs_retained, c);
    c->sse_sent_id = hs->last_id;
  }
  if (c->closed)
    return;
  c->sink.deliver = hs_sink_deliver;
  c->sink.has_room = hs_sink_has_room;
  if (svc__hub_add(srv->hub, filter, &c->sink) != 0) {
    svc__hs_conn_abort(c);
    return;
  }
  c->sink_added = 1;
  svc__timer_init(&c->ping, hs_ping_cb);
  if (hs->opts.sse_ping_ms > 0)
    svc__timer_start(srv->ctx, &c->ping, hs->opts.sse_ping_ms);
}

void svc__hs_hub_request(struct svc__hs_conn *c, int sse) {
  size_t plen = strlen(c->hs->opts.topics);
  char *topic = hs_topic_of(svc__hp_url(&c->hp), plen);

  if (topic == NULL) {
    svc__hs_fail(c, 400, "invalid percent-encoding in topic");
    return;
  }
  if (sse)
    hs_subscribe(c, topic);
  else
    hs_publish(c, topic);
  svc__free(topic);
}
