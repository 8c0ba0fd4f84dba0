/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

#include <stdio.h>
#include <stdlib.h>

/* Streams over MQTT v5 use the request/response pair of topics: the
 * opener publishes on the stream's path under the served prefix
 * ("svc/users/chat"), with its reply topic and the stream id as
 * correlation data; the server publishes on that reply topic with the same
 * correlation data. Every frame is a QoS 1 message marked by the user
 * property "svc-stream": "open" (with "svc-window" and the open headers),
 * "accept" (with "svc-window"), "data" and "end" (with "svc-seq", 0, 1, 2,
 * ... per direction), "credit" (with "svc-credit", bytes), "reset".
 * Data and end are delivered in sequence order: a redelivered frame (seq
 * already seen) is dropped, an early one waits in a reorder buffer of
 * MQ_REORDER frames (more is a protocol error that resets the stream). */

#define MQ_REORDER 64

struct mq_frame {
  uint64_t seq;
  svc_msg_t *msg; /* NULL: end. */
  int used;
};

struct mq_stream {
  struct svc__list link; /* mqs->streams (accepting side) */
  struct svc_stream_s *s;
  struct mqc *c;
  struct mqs *srv;       /* Accepting side. */
  uint32_t id;
  char *peer_topic;      /* Accepting side: the opener's reply topic. */
  char *corr;            /* Accepting side: the opener's correlation data. */
  char *topic;           /* Opening side: the request topic. */
  uint64_t out_seq;
  uint64_t in_seq;
  struct mq_frame reorder[MQ_REORDER];
};

static void mq_stream_free(struct mq_stream *st) {
  size_t i;

  if (st->srv != NULL)
    svc__list_remove(&st->link);
  else
    svc__idmap_del(&st->c->streams, st->id);
  for (i = 0; i < MQ_REORDER; i++)
    svc_msg_free(st->reorder[i].msg);
  st->s->tp = NULL;
  svc__free(st->peer_topic);
  svc__free(st->corr);
  svc__free(st->topic);
  svc__free(st);
}

/* Publishes one frame of st's stream (msg borrowed, may be NULL). */
static int mq_frame_send(struct mq_stream *st, const char *kind,
                         const char *name, const char *value,
                         const svc_msg_t *msg) {
  MQTTProperties p = MQTTProperties_initializer;
  struct mqc *c = st->c;
  int rc;

  if (c->cli == NULL || c->state == MQ_CLOSING)
    return SVC_ENOTCONN;
  rc = svc__mq_props_add_user(&p, "svc-stream", kind);
  if (rc == 0 && name != NULL)
    rc = svc__mq_props_add_user(&p, name, value);
  if (rc != 0) {
    MQTTProperties_free(&p);
    return rc;
  }
  if (st->srv == NULL) {
    rc = svc__mq_send_request(c, st->topic, st->id, msg, &p, NULL);
  } else {
    rc = svc__mq_props_add_str(&p, MQTTPROPERTY_CODE_CORRELATION_DATA,
                               st->corr, strlen(st->corr));
    if (rc == 0)
      rc = svc__mq_send(c, st->peer_topic, msg, 1, 0, &p, NULL);
  }
  MQTTProperties_free(&p);
  return rc;
}

static void mq_stream_fail(struct mq_stream *st, int err) {
  struct svc_stream_s *s = st->s;

  mq_stream_free(st);
  svc__stream_on_reset(s, err);
}

void svc__mq_stream_fail(struct svc_stream_s *s, int err) {
  if (s->tp != NULL)
    mq_stream_fail(s->tp, err);
}

/* ---- Opening side. */

int svc__mq_stream_open(struct svc__conn *conn, struct svc_stream_s *s) {
  struct mqc *c = MQC(conn);
  struct mq_stream *st;
  struct mq_wait *w;
  char *topic;
  int rc;

  if (!svc__mq_v5(c))
    return SVC_ENOTSUP;
  /* The path as written; percent-encoded paths are not topics. */
  if (strchr(s->path, '%') != NULL || svc__topic_check_name(s->path) != 0)
    return SVC_EINVAL;
  rc = svc__mq_start(c);
  if (rc != 0)
    return rc;
  if (c->state == MQ_DOWN)
    return SVC_ENOTCONN;
  st = svc__calloc(1, sizeof(*st));
  w = svc__calloc(1, sizeof(*w));
  topic = svc__strdup(s->path);
  if (st == NULL || w == NULL || topic == NULL) {
    svc__free(st);
    svc__free(w);
    svc__free(topic);
    return SVC_ENOMEM;
  }
  st->s = s;
  st->c = c;
  st->topic = topic;
  do
    c->next_id++;
  while (c->next_id == 0 || svc__idmap_get(&c->calls, c->next_id) != NULL ||
         svc__idmap_get(&c->streams, c->next_id) != NULL);
  st->id = c->next_id;
  if (svc__idmap_put(&c->streams, st->id, s) != 0) {
    svc__free(st);
    svc__free(w);
    svc__free(topic);
    return SVC_ENOMEM;
  }
  s->tp = st;
  s->tp_id = st->id;
  w->is_stream = 1;
  w->obj = s;
  svc__list_insert_tail(&c->waiting, &w->link);
  /* Opening waits for the reply subscription exactly like a call. */
  rc = svc__mq_ensure_reply(c);
  if (rc != 0) {
    svc__list_remove(&w->link);
    svc__free(w);
    mq_stream_free(st);
    return rc;
  }
  if (c->state == MQ_UP && c->reply_msub->acked)
    svc__mq_requests_ready(c);
  return 0;
}

void svc__mq_stream_start(struct mqc *c, struct svc_stream_s *s) {
  struct mq_stream *st = s->tp;
  char num[24];
  int rc;

  (void)c;
  if (st == NULL)
    return;
  snprintf(num, sizeof(num), "%llu", (unsigned long long)s->window);
  rc = mq_frame_send(st, "open", "svc-window", num, s->open_headers);
  if (rc != 0)
    mq_stream_fail(st, rc);
}

/* ---- Frames in. */

static void mq_deliver_frame(struct mq_stream *st, svc_msg_t *msg,
                             int is_end) {
  if (is_end)
    svc__stream_on_end(st->s);
  else
    svc__stream_on_data(st->s, msg);
}

/* Data or end with sequence number seq: in order, or later, or again. */
static void mq_stream_in(struct mq_stream *st, MQTTAsync_message *m,
                         int is_end) {
  char *sq = svc__mq_user_prop(m, "svc-seq");
  char *end;
  uint64_t seq;
  svc_msg_t *msg = NULL;
  struct mq_frame *f;

  if (sq == NULL) {
    svc__mq_stream_send_reset(st->s); /* Frees st. */
    return;
  }
  seq = strtoull(sq, &end, 10);
  if (*end != '\0') {
    svc__free(sq);
    return;
  }
  svc__free(sq);
  if (seq < st->in_seq)
    return; /* Redelivered. */
  if (!is_end && (msg = svc__mq_msg_to_svc(m)) == NULL)
    return;
  if (seq > st->in_seq) {
    f = &st->reorder[seq % MQ_REORDER];
    if (seq - st->in_seq >= MQ_REORDER || (f->used && f->seq != seq)) {
      svc_msg_free(msg);
      mq_frame_send(st, "reset", NULL, NULL, NULL);
      mq_stream_fail(st, SVC_EPROTO);
      return;
    }
    if (f->used)
      svc_msg_free(msg); /* The same frame again. */
    else {
      f->used = 1;
      f->seq = seq;
      f->msg = msg;
      if (is_end)
        f->msg = NULL;
    }
    /* An early end is remembered by a used slot without a message. */
    return;
  }
  mq_deliver_frame(st, msg, is_end);
  st->in_seq++;
  for (;;) {
    f = &st->reorder[st->in_seq % MQ_REORDER];
    if (!f->used || f->seq != st->in_seq)
      break;
    f->used = 0;
    msg = f->msg;
    f->msg = NULL;
    mq_deliver_frame(st, msg, msg == NULL);
    st->in_seq++;
  }
}

static void mq_stream_frame(struct mq_stream *st, MQTTAsync_message *m,
                            const char *kind) {
  struct svc_stream_s *s = st->s;

  if (strcmp(kind, "accept") == 0) {
    char *win = svc__mq_user_prop(m, "svc-window");
    size_t w = win != NULL ? (size_t)strtoull(win, NULL, 10) : 0;
    svc__free(win);
    if (st->srv == NULL)
      svc__stream_on_open(s, w > 0 ? w : 1);
  } else if (strcmp(kind, "data") == 0) {
    mq_stream_in(st, m, 0);
  } else if (strcmp(kind, "end") == 0) {
    mq_stream_in(st, m, 1);
  } else if (strcmp(kind, "credit") == 0) {
    char *cr = svc__mq_user_prop(m, "svc-credit");
    if (cr != NULL)
      svc__stream_on_credit(s, (size_t)strtoull(cr, NULL, 10));
    svc__free(cr);
  } else if (strcmp(kind, "reset") == 0) {
    mq_stream_fail(st, SVC_ECONNRESET);
  }
}

void svc__mq_stream_on_client(struct mqc *c, uint32_t id,
                              MQTTAsync_message *m, const char *kind) {
  struct svc_stream_s *s = svc__idmap_get(&c->streams, id);

  if (s != NULL && s->tp != NULL)
    mq_stream_frame(s->tp, m, kind);
}

void svc__mq_stream_on_server(struct mqs *srv, const char *path,
                              MQTTAsync_message *m, const char *kind) {
  MQTTProperty *rt = MQTTProperties_getProperty(
      &m->properties, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
  MQTTProperty *corr = MQTTProperties_getProperty(
      &m->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
  struct svc__list *pos;
  struct mq_stream *st;
  char *win;
  size_t w;
  svc_msg_t *headers;

  if (rt == NULL || corr == NULL || rt->value.data.len <= 0 ||
      corr->value.data.len <= 0)
    return;
  svc__list_foreach(pos, &srv->streams) {
    st = svc__container_of(pos, struct mq_stream, link);
    if (strlen(st->peer_topic) == (size_t)rt->value.data.len &&
        memcmp(st->peer_topic, rt->value.data.data, strlen(st->peer_topic)) ==
            0 &&
        strlen(st->corr) == (size_t)corr->value.data.len &&
        memcmp(st->corr, corr->value.data.data, strlen(st->corr)) == 0) {
      if (strcmp(kind, "open") != 0)
        mq_stream_frame(st, m, kind);
      return;
    }
  }
  if (strcmp(kind, "open") != 0 || srv->srv->closing)
    return;
  st = svc__calloc(1, sizeof(*st));
  headers = svc__mq_msg_to_svc(m);
  win = svc__mq_user_prop(m, "svc-window");
  w = win != NULL ? (size_t)strtoull(win, NULL, 10) : 0;
  svc__free(win);
  if (st != NULL) {
    st->peer_topic =
        svc__strndup(rt->value.data.data, (size_t)rt->value.data.len);
    st->corr = svc__strndup(corr->value.data.data,
                            (size_t)corr->value.data.len);
  }
  if (st == NULL || headers == NULL || st->peer_topic == NULL ||
      st->corr == NULL || svc__topic_check_name(st->peer_topic) != 0) {
    if (st != NULL) {
      svc__free(st->peer_topic);
      svc__free(st->corr);
      svc__free(st);
    }
    svc_msg_free(headers);
    return;
  }
  st->c = srv->c;
  st->srv = srv;
  st->s = svc__stream_incoming(srv->srv, path, headers, w > 0 ? w : 1);
  svc_msg_free(headers);
  if (st->s == NULL) {
    svc__free(st->peer_topic);
    svc__free(st->corr);
    svc__free(st);
    return;
  }
  st->s->tp = st;
  svc__list_insert_tail(&srv->streams, &st->link);
}

/* ---- Core operations. */

void svc__mq_stream_accept(struct svc_stream_s *s) {
  struct mq_stream *st = s->tp;
  char num[24];
  int rc;

  if (st == NULL)
    return;
  snprintf(num, sizeof(num), "%llu", (unsigned long long)s->window);
  rc = mq_frame_send(st, "accept", "svc-window", num, NULL);
  if (rc != 0)
    mq_stream_fail(st, rc);
}

void svc__mq_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  struct mq_stream *st = s->tp;
  char num[24];
  int rc;

  if (st != NULL) {
    snprintf(num, sizeof(num), "%llu", (unsigned long long)st->out_seq++);
    rc = mq_frame_send(st, "data", "svc-seq", num, msg);
    if (rc != 0) {
      svc_msg_free(msg);
      mq_stream_fail(st, rc);
      return;
    }
  }
  svc_msg_free(msg);
}

void svc__mq_stream_send_end(struct svc_stream_s *s) {
  struct mq_stream *st = s->tp;
  char num[24];
  int rc;

  if (st == NULL)
    return;
  snprintf(num, sizeof(num), "%llu", (unsigned long long)st->out_seq++);
  rc = mq_frame_send(st, "end", "svc-seq", num, NULL);
  if (rc != 0)
    mq_stream_fail(st, rc);
}

void svc__mq_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  struct mq_stream *st = s->tp;
  char num[24];

  if (st == NULL || bytes == 0)
    return;
  snprintf(num, sizeof(num), "%llu", (unsigned long long)bytes);
  if (mq_frame_send(st, "credit", "svc-credit", num, NULL) != 0)
    mq_stream_fail(st, SVC_ENOTCONN);
}

void svc__mq_stream_send_reset(struct svc_stream_s *s) {
  struct mq_stream *st = s->tp;
  struct svc__list *pos;

  if (st == NULL)
    return;
  /* A stream still waiting to open has told the peer nothing. */
  svc__list_foreach(pos, &st->c->waiting) {
    struct mq_wait *w = svc__container_of(pos, struct mq_wait, link);
    if (w->obj == s) {
      svc__list_remove(pos);
      svc__free(w);
      mq_stream_free(st);
      return;
    }
  }
  mq_frame_send(st, "reset", NULL, NULL, NULL);
  mq_stream_free(st);
}

void svc__mq_stream_release(struct svc_stream_s *s) {
  if (s->tp != NULL)
    mq_stream_free(s->tp);
}

void svc__mq_streams_fail(struct mqc *c, int err) {
  struct svc__list *pos;
  struct svc__list *tmp;
  struct svc_stream_s *s;
  uint32_t id;

  while ((s = svc__idmap_pop(&c->streams, &id)) != NULL) {
    struct mq_stream *st = s->tp;
    if (st != NULL) {
      /* Remove any open still waiting. */
      svc__list_foreach_safe(pos, tmp, &c->waiting) {
        struct mq_wait *w = svc__container_of(pos, struct mq_wait, link);
        if (w->obj == s) {
          svc__list_remove(pos);
          svc__free(w);
        }
      }
      mq_stream_fail(st, err);
    }
  }
  svc__list_foreach(pos, &c->servers) {
    svc__mq_server_streams_fail(svc__container_of(pos, struct mqs, link), err);
  }
}

void svc__mq_server_streams_fail(struct mqs *srv, int err) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&srv->streams)) != NULL)
    mq_stream_fail(svc__container_of(pos, struct mq_stream, link), err);
}
