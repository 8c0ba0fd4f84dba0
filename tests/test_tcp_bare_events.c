/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */

/* Bare events (docs/protocol.md sections 3 and 4): a client that announces
 * SVC__FEATURE_BARE_EVENTS in its HELLO gets the events of a filter that
 * names one topic without :topic. Checked on the bytes, from both ends: a
 * raw client against the library's server, and the library's client
 * against a hand-written server. */

#include "tcp_peer.h"

/* ---- Reading EVENT frames out of what a raw peer received. */

struct ev_seen {
  uint32_t id;
  int has_topic;
  char topic[64];
  char body[64];
};

/* Decodes every EVENT in p->in into seen[]; returns how many. */
static int events_in(const struct raw_peer *p, struct ev_seen *seen, int max) {
  size_t off = 0;
  int n = 0;

  while (off + 12 <= p->inlen && n < max) {
    uint32_t len = raw_u32(p, off + 8);
    if (off + 12 + len > p->inlen)
      break;
    if (p->in[off + 1] == 0x10) {
      struct ev_seen *e = &seen[n++];
      size_t b = off + 12;
      uint32_t block = raw_u32(p, b);
      size_t f = b + 4;
      memset(e, 0, sizeof(*e));
      e->id = raw_u32(p, off + 4);
      while (f < b + 4 + block) {
        unsigned nl = (unsigned)p->in[f] << 8 | p->in[f + 1];
        unsigned vl = (unsigned)p->in[f + 2] << 8 | p->in[f + 3];
        if (nl == 6 && memcmp(p->in + f + 4, ":topic", 6) == 0) {
          e->has_topic = 1;
          cr_assert_lt(vl, sizeof(e->topic));
          memcpy(e->topic, p->in + f + 10, vl);
        }
        f += 4 + nl + vl;
      }
      cr_assert_eq(f, b + 4 + block, "fields run past the block");
      cr_assert_lt(off + 12 + len - f, sizeof(e->body));
      memcpy(e->body, p->in + f, off + 12 + len - f);
    }
    off += 12 + len;
  }
  return n;
}

static void rb_hello_features(struct rawbuf *r, uint32_t features) {
  rb_header(r, 0x01, 0, 0, 20);
  rb_u32(r, 16u << 20);
  rb_u32(r, 65536);
  rb_u32(r, 256);
  rb_u32(r, 1024);
  rb_u32(r, features);
}

/* A raw client subscribed to "news/a" (id 1) and "news/+" (id 3); the
 * server publishes "news/a" twice: plain (the encoded-prefix path) and with
 * a content type (the general encoder). */
static int raw_subscriber(int bare, struct ev_seen *seen) {
  static const char *const lit[] = {":filter", "news/a", NULL};
  static const char *const wild[] = {":filter", "news/+", NULL};
  struct harness h;
  svc_server_t *srv;
  struct raw_peer *p = calloc(1, sizeof(*p));
  svc_msg_t *typed;
  int n;

  harness_start(&h);
  cr_assert_eq(svc_serve(h.ctx, "tcp://127.0.0.1:0", NULL, &srv), 0);
  if (bare)
    rb_hello_features(&p->out, 1);
  else
    rb_hello(&p->out);
  rb_block(&p->out, 0x0b, 0, 1, lit, NULL);
  rb_block(&p->out, 0x0b, 0, 3, wild, NULL);
  raw_start(&h.loop, p, endpoint_port(svc_server_endpoint(srv)), 1);
  /* Both SUBACKs: the second follows the first. */
  while (raw_find(p, 0x0c) < 0 || p->inlen < (size_t)raw_find(p, 0x0c) + 32)
    uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(svc_server_publish(srv, "news/a", svc_msg_new_str("plain"), NULL,
                                  NULL, NULL),
               0);
  typed = svc_msg_new_str("{}");
  cr_assert_eq(svc_msg_set_content_type(typed, "application/json"), 0);
  cr_assert_eq(svc_server_publish(srv, "news/a", typed, NULL, NULL, NULL), 0);
  do {
    uv_run(&h.loop, UV_RUN_ONCE);
    n = events_in(p, seen, 4);
  } while (n < 4);
  raw_close(p);
  harness_run_until(&h, &p->closed);
  free(p);
  harness_finish(&h);
  return n;
}

static const struct ev_seen *event_for(const struct ev_seen *seen, int n,
                                       uint32_t id, const char *body) {
  int i;
  for (i = 0; i < n; i++)
    if (seen[i].id == id && strcmp(seen[i].body, body) == 0)
      return &seen[i];
  cr_assert_fail("no event %s on id %u", body, id);
  return NULL;
}

Test(tcp_bare_events, a_literal_filter_gets_events_without_topic) {
  struct ev_seen seen[4];
  int n = raw_subscriber(1, seen);

  cr_assert_not(event_for(seen, n, 1, "plain")->has_topic);
  cr_assert_not(event_for(seen, n, 1, "{}")->has_topic);
  /* A wildcard filter still needs the topic. */
  cr_assert_str_eq(event_for(seen, n, 3, "plain")->topic, "news/a");
  cr_assert_str_eq(event_for(seen, n, 3, "{}")->topic, "news/a");
}

Test(tcp_bare_events, a_client_that_did_not_ask_gets_every_topic) {
  struct ev_seen seen[4];
  int n = raw_subscriber(0, seen);

  cr_assert_str_eq(event_for(seen, n, 1, "plain")->topic, "news/a");
  cr_assert_str_eq(event_for(seen, n, 1, "{}")->topic, "news/a");
  cr_assert_str_eq(event_for(seen, n, 3, "plain")->topic, "news/a");
}

/* ---- The library's client against a hand-written server that answers
 * every SUBSCRIBE with SUBACK and one bare EVENT. */

struct bare_srv {
  uv_tcp_t listener;
  uv_tcp_t conn;
  unsigned char in[4096];
  size_t inlen;
  int conns;
  uint32_t hello_features;
  int peer_closed;
  int closed;
};

static void bs_written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void bs_write(struct bare_srv *s, const struct rawbuf *b) {
  uv_write_t *w = malloc(sizeof(*w) + b->n);
  uv_buf_t buf;
  memcpy(w + 1, b->b, b->n);
  buf = uv_buf_init((char *)(w + 1), (unsigned)b->n);
  cr_assert_eq(uv_write(w, (uv_stream_t *)&s->conn, &buf, 1, bs_written), 0);
}

static uint32_t bs_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void bs_conn_closed(uv_handle_t *h) {
  ((struct bare_srv *)h->data)->peer_closed = 1;
}

static void bs_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct bare_srv *s = st->data;
  static const char *const none[] = {NULL};
  size_t off = 0;

  (void)buf;
  if (n < 0) {
    uv_close((uv_handle_t *)&s->conn, bs_conn_closed);
    return;
  }
  s->inlen += (size_t)n;
  while (off + 12 <= s->inlen) {
    uint32_t len = bs_u32(s->in + off + 8);
    if (off + 12 + len > s->inlen)
      break;
    if (s->in[off + 1] == 0x01 && len >= 20)
      s->hello_features = bs_u32(s->in + off + 28);
    if (s->in[off + 1] == 0x0b) {
      struct rawbuf *b = calloc(1, sizeof(*b));
      uint32_t id = bs_u32(s->in + off + 4);
      rb_header(b, 0x0c, 0, id, 4); /* SUBACK, NO_ERROR */
      rb_u32(b, 0);
      rb_block(b, 0x10, 0, id, none, "bare");
      bs_write(s, b);
      free(b);
    }
    off += 12 + len;
  }
  memmove(s->in, s->in + off, s->inlen - off);
  s->inlen -= off;
}

static void bs_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  struct bare_srv *s = h->data;
  (void)sz;
  b->base = (char *)s->in + s->inlen;
  b->len = sizeof(s->in) - s->inlen;
}

static void bs_accept(uv_stream_t *l, int status) {
  struct bare_srv *s = l->data;
  struct rawbuf *b = calloc(1, sizeof(*b));

  cr_assert_eq(status, 0);
  if (s->conns++ > 0) {
    /* A reconnect after the test is done with the first connection. */
    uv_tcp_t *extra = malloc(sizeof(*extra));
    uv_tcp_init(l->loop, extra);
    cr_assert_eq(uv_accept(l, (uv_stream_t *)extra), 0);
    uv_close((uv_handle_t *)extra, (uv_close_cb)free);
    free(b);
    return;
  }
  uv_tcp_init(l->loop, &s->conn);
  s->conn.data = s;
  cr_assert_eq(uv_accept(l, (uv_stream_t *)&s->conn), 0);
  rb_hello(b);
  bs_write(s, b);
  free(b);
  uv_read_start((uv_stream_t *)&s->conn, bs_alloc, bs_read);
}

static void bs_closed(uv_handle_t *h) {
  ((struct bare_srv *)h->data)->closed = 1;
}

static int bs_start(struct harness *h, struct bare_srv *s) {
  struct sockaddr_in sa;
  struct sockaddr_storage bound;
  int len = sizeof(bound);

  memset(s, 0, sizeof(*s));
  uv_tcp_init(&h->loop, &s->listener);
  s->listener.data = s;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  cr_assert_eq(uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&s->listener, 8, bs_accept), 0);
  uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len);
  return ntohs(((struct sockaddr_in *)&bound)->sin_port);
}

struct got {
  int n;
  int ended;
  char topic[64];
  char body[64];
};

static void got_cb(svc_sub_t *sub, int status, const svc_msg_t *msg,
                   void *arg) {
  struct got *g = arg;
  (void)sub;
  if (msg == NULL) {
    g->ended = status == 0 ? 1 : status;
    return;
  }
  g->n++;
  snprintf(g->topic, sizeof(g->topic), "%s", svc_msg_topic(msg));
  snprintf(g->body, sizeof(g->body), "%.*s", (int)svc_msg_len(msg),
           (const char *)svc_msg_body(msg, NULL));
}

/* A client subscribed to filter on the hand-written server. */
struct bare_case {
  struct harness h;
  struct bare_srv s;
  struct got g;
  svc_sub_t *sub;
};

static void bare_case_start(struct bare_case *c, const char *filter) {
  char uri[64];

  memset(c, 0, sizeof(*c));
  harness_start(&c->h);
  snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d/%s", bs_start(&c->h, &c->s),
           filter);
  cr_assert_eq(svc_subscribe(c->h.ctx, uri, NULL, got_cb, &c->g, &c->sub), 0);
}

static void bare_case_finish(struct bare_case *c) {
  svc_unsubscribe(c->sub);
  uv_close((uv_handle_t *)&c->s.listener, bs_closed);
  harness_finish(&c->h);
}

Test(tcp_bare_events,
     the_client_takes_the_topic_of_a_bare_event_from_its_filter) {
  static struct bare_case c;

  bare_case_start(&c, "orders/eu");
  harness_run_until(&c.h, &c.g.n);
  cr_assert_eq(c.s.hello_features & 1, 1, "the client announces bare events");
  cr_assert_str_eq(c.g.topic, "orders/eu");
  cr_assert_str_eq(c.g.body, "bare");
  bare_case_finish(&c);
}

Test(tcp_bare_events, a_bare_event_on_a_wildcard_filter_is_a_protocol_error) {
  static struct bare_case c;

  bare_case_start(&c, "orders/+");
  /* The client cannot know the topic: it drops the connection. */
  harness_run_until(&c.h, &c.s.peer_closed);
  cr_assert_eq(c.g.n, 0, "an event without a topic was delivered");
  bare_case_finish(&c);
}
