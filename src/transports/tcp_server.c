/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The serving side of tcp:// and unix://: a listener, and per accepted
 * connection the ids its client opened: requests handed to the core's
 * routes, streams to its stream routes, subscriptions as sinks of the
 * server's topic hub, and publishes relayed into that hub. A slow reader
 * cannot grow our memory: QoS 0 events for a connection whose output is
 * full are dropped and counted, QoS 1/2 publishes wait in the core's
 * bounded backlog, a connection with many relayed publishes not yet done
 * stops being read, and so does one whose answers fill its output
 * (docs/protocol.md section 8). */

#define TCPS_BACKLOG 511
/* A publisher with this many relayed publishes not yet done stops being
 * read until half of them are. */
#define TCPS_RELAY_PAUSE 256

enum tcps_kind { TS_REQ, TS_STREAM, TS_SUB, TS_PUB };

struct tcps_conn {
  struct svc__tcps *ts;
  struct svc__wire *w;
  struct svc__list link; /* ts->conns */
  struct svc__idmap ids;
  uint32_t last_id;
  size_t open;
  size_t relays; /* Relayed publishes not yet done. */
  int goaway_sent;
  uint32_t goaway_id; /* Ids above it are ignored once draining. */
};

struct tcps_op {
  enum tcps_kind kind;
  struct tcps_conn *sc; /* NULL once the connection is gone (relays). */
  uint32_t id;
  void *obj;
  struct svc__hub_sink sink; /* TS_SUB */
  int qos;
  /* TS_SUB: events go without :topic, which is the filter (the client
   * announced SVC__FEATURE_BARE_EVENTS, the filter names one topic). */
  int bare;
};

#define TS(srv) ((struct svc__tcps *)(srv)->tp)

static void ts_maybe_finish(struct svc__tcps *ts);
static void ts_conn_maybe_done(struct tcps_conn *sc);

/* ---- Ids. */

static int ts_open_id(struct tcps_conn *sc, struct tcps_op *op, uint32_t id) {
  if (svc__idmap_put(&sc->ids, id, op) != 0)
    return SVC_ENOMEM;
  op->sc = sc;
  op->id = id;
  sc->open++;
  return 0;
}

static void ts_close_id(struct tcps_op *op) {
  if (op->sc != NULL && op->id != 0) {
    svc__idmap_del(&op->sc->ids, op->id);
    op->sc->open--;
  }
  op->id = 0;
}

static struct tcps_op *ts_op_new(enum tcps_kind kind, void *obj) {
  struct tcps_op *op = svc__calloc(1, sizeof(*op));

  if (op != NULL) {
    op->kind = kind;
    op->obj = obj;
  }
  return op;
}

/* ---- Requests. */

static char *ts_cstr(const struct svc__slice *s) {
  return svc__strndup(s->p != NULL ? s->p : "", s->len);
}

static int ts_answer(struct tcps_conn *sc, uint32_t id, svc_status_t status,
                     const svc_msg_t *msg) {
  struct svc__frame_field f[1];
  char num[4];

  snprintf(num, sizeof(num), "%d", (int)status);
  f[0] = SVC__FIELD(":status", num, strlen(num));
  return svc__wire_send_block(sc->w, SVC__F_RESPONSE, 0, id, f, 1, msg, 1);
}

static int ts_on_request(struct tcps_conn *sc, struct svc__frame *f) {
  struct svc_server_s *srv = sc->ts->srv;
  struct svc_request_s *req;
  struct tcps_op *op;
  char *method;
  char *path;
  uint64_t deadline = 0;

  if (sc->open >= sc->w->opts.limits.max_streams)
    return ts_answer(sc, f->id, SVC_STATUS_RESOURCE_EXHAUSTED, NULL);
  method = ts_cstr(&f->method);
  path = ts_cstr(&f->path);
  op = ts_op_new(TS_REQ, NULL);
  if (method == NULL || path == NULL || op == NULL) {
    svc__free(method);
    svc__free(path);
    svc__free(op);
    return SVC_ENOMEM;
  }
  if (f->has_timeout)
    deadline = svc__now_ms(srv->ctx) + f->timeout_ms;
  req = svc__request_new(srv, method, path, f->msg, deadline);
  f->msg = NULL;
  svc__free(method);
  svc__free(path);
  if (req == NULL || ts_open_id(sc, op, f->id) != 0) {
    svc__free(op);
    if (req != NULL)
      svc_request_reply(req, SVC_STATUS_INTERNAL, NULL);
    return SVC_ENOMEM;
  }
  op->obj = req;
  req->tp = op;
  svc__server_dispatch(srv, req);
  return 0;
}

void svc__tcps_reply(struct svc_request_s *req, svc_status_t status,
                     svc_msg_t *msg) {
  struct tcps_op *op = req->tp;
  struct tcps_conn *sc;

  req->tp = NULL;
  if (op == NULL) {
    svc_msg_free(msg);
    return;
  }
  sc = op->sc;
  if (ts_answer(sc, op->id, status, msg) == SVC_EMSGSIZE)
    ts_answer(sc, op->id, SVC_STATUS_RESOURCE_EXHAUSTED, NULL);
  svc_msg_free(msg);
  ts_close_id(op);
  svc__free(op);
  ts_conn_maybe_done(sc);
}

/* ---- Streams, accepting side. */

static int ts_on_stream_open(struct tcps_conn *sc, struct svc__frame *f) {
  struct svc_stream_s *s;
  struct tcps_op *op;
  char *path;

  if (sc->open >= sc->w->opts.limits.max_streams)
    return svc__wire_send_code(sc->w, SVC__F_RESET, f->id, SVC__FC_LIMIT);
  if (sc->ts->closing)
    return svc__wire_send_code(sc->w, SVC__F_RESET, f->id, SVC__FC_UNAVAILABLE);
  path = ts_cstr(&f->path);
  op = ts_op_new(TS_STREAM, NULL);
  if (path == NULL || op == NULL) {
    svc__free(path);
    svc__free(op);
    return SVC_ENOMEM;
  }
  s = svc__stream_incoming(sc->ts->srv, path, f->msg, (size_t)f->window);
  svc__free(path);
  if (s == NULL) {
    svc__free(op);
    return SVC_ENOMEM;
  }
  if (ts_open_id(sc, op, f->id) != 0) {
    svc__free(op);
    svc__stream_on_reset(s, SVC_ENOMEM);
    return SVC_ENOMEM;
  }
  op->obj = s;
  s->tp = op;
  return 0;
}

struct svc__wire *svc__tcps_stream_wire(struct svc_stream_s *s, uint32_t *id) {
  struct tcps_op *op = s->tp;

  if (op == NULL || op->sc == NULL)
    return NULL;
  *id = op->id;
  return op->sc->w;
}

void svc__tcps_stream_forget(struct svc_stream_s *s) {
  struct tcps_op *op = s->tp;
  struct tcps_conn *sc;

  if (op == NULL)
    return;
  sc = op->sc;
  s->tp = NULL;
  ts_close_id(op);
  svc__free(op);
  if (sc != NULL)
    ts_conn_maybe_done(sc);
}

/* ---- Subscriptions: each is a sink of the server's hub. */

static int ts_sink_has_room(struct svc__hub_sink *sink) {
  struct tcps_op *op = svc__container_of(sink, struct tcps_op, sink);

  return op->sc != NULL && op->sc->w->out_bytes < op->sc->w->opts.max_outbound;
}

/* Events are mostly small and headerless, on few topics: for those the
 * frame header and header block made for the last topic are copied, with
 * flags, id and length set per frame, instead of encoding each event (and
 * each subscriber's copy of it in a fan-out) anew. */
#define TS_PREFIX_BODY_MAX 4096
/* Where the topic starts in an EVENT prefix: frame header, block length,
 * field lengths, ":topic". */
#define TS_PREFIX_TOPIC (SVC__FRAME_HEADER + 4 + 4 + 6)

/* Builds the frame header and header block of an EVENT on topic (type
 * set; flags, id and length are filled in per frame), or leaves none when
 * the topic is too long to keep. */
static void ts_event_prefix(struct svc__tcps *ts, const char *topic,
                            size_t tl) {
  uint8_t *p = ts->ev_prefix;

  ts->ev_prefix_len = 0;
  if (TS_PREFIX_TOPIC + tl > sizeof(ts->ev_prefix))
    return;
  svc__frame_write_header(p, SVC__F_EVENT, 0, 0, 0);
  svc__put_u32(p + SVC__FRAME_HEADER, (uint32_t)(4 + 6 + tl));
  svc__put_u16(p + SVC__FRAME_HEADER + 4, 6);
  svc__put_u16(p + SVC__FRAME_HEADER + 6, (uint16_t)tl);
  memcpy(p + SVC__FRAME_HEADER + 8, ":topic", 6);
  memcpy(p + TS_PREFIX_TOPIC, topic, tl);
  ts->ev_prefix_topic_len = tl;
  ts->ev_prefix_len = TS_PREFIX_TOPIC + tl;
}

static int ts_send_event(struct tcps_op *op, const char *topic, svc_msg_t *msg,
                         int qos, int retained) {
  struct svc__frame_field f[1];
  struct svc__tcps *ts = op->sc->ts;
  struct svc__wire *w = op->sc->w;
  int q = qos < op->qos ? qos : op->qos;
  uint8_t flags = (uint8_t)(q | (retained ? SVC__FRAME_RETAIN : 0));
  size_t tl = 0;
  const uint8_t *prefix;
  size_t prefix_len;
  const void *body;
  size_t body_len;
  const svc_trace_t *t;
  uint8_t traced[sizeof(ts->ev_prefix) + SVC__FRAME_TRACE_FIELD];

  /* Small events with no header but a trace (the usual kind) reuse the
   * encoded prefix of their topic, or an empty header block when the
   * subscriber takes bare events; a trace is appended to a copy. */
  if (!op->bare)
    tl = topic == svc_msg_topic(msg) ? svc__msg_topic_len(msg) : strlen(topic);
  if (svc__msg_is_plain(msg) && svc_msg_len(msg) <= TS_PREFIX_BODY_MAX) {
    if (op->bare) {
      svc__frame_write_header(traced, SVC__F_EVENT, 0, 0, 0);
      svc__put_u32(traced + SVC__FRAME_HEADER, 0);
      prefix = traced;
      prefix_len = SVC__FRAME_HEADER + 4;
    } else {
      if (ts->ev_prefix_len == 0 || tl != ts->ev_prefix_topic_len ||
          memcmp(ts->ev_prefix + TS_PREFIX_TOPIC, topic, tl) != 0)
        ts_event_prefix(ts, topic, tl);
      prefix = ts->ev_prefix;
      prefix_len = ts->ev_prefix_len;
    }
    if (prefix_len > 0) {
      body = svc_msg_body(msg, &body_len);
      if ((t = svc__msg_trace_bin(msg)) == NULL)
        return svc__wire_send_prefixed(w, prefix, prefix_len, flags, op->id,
                                       body, body_len);
      if (prefix != traced)
        memcpy(traced, prefix, prefix_len);
      svc__put_u32(traced + SVC__FRAME_HEADER,
                   (uint32_t)(prefix_len - SVC__FRAME_HEADER - 4 +
                              SVC__FRAME_TRACE_FIELD));
      svc__frame_put_trace(traced + prefix_len, t);
      return svc__wire_send_prefixed(w, traced,
                                     prefix_len + SVC__FRAME_TRACE_FIELD,
                                     flags, op->id, body, body_len);
    }
  }
  f[0] = SVC__FIELD(":topic", topic, tl);
  return svc__wire_send_block(w, SVC__F_EVENT, flags, op->id, f,
                              op->bare ? 0 : 1, msg, 1);
}

static int ts_sink_deliver(struct svc__hub_sink *sink, const char *topic,
                           svc_msg_t *msg, int qos) {
  struct tcps_op *op = svc__container_of(sink, struct tcps_op, sink);
  struct svc_server_s *srv;

  if (op->sc == NULL)
    return SVC_ENOBUFS;
  srv = op->sc->ts->srv;
  /* The hub asked has_room() before any QoS >= 1 delivery; only QoS 0
   * comes here unchecked, and is dropped and counted when full. */
  if (qos == 0 && !ts_sink_has_room(sink)) {
    srv->metrics->m.dropped++;
    return SVC_ENOBUFS;
  }
  if (ts_send_event(op, topic, msg, qos, 0) != 0) {
    srv->metrics->m.dropped++;
    return SVC_ENOBUFS;
  }
  return 0;
}

static void ts_retained(const char *topic, svc_msg_t *msg, void *arg) {
  ts_send_event(arg, topic, msg, 1, 1);
}

static int ts_on_subscribe(struct tcps_conn *sc, struct svc__frame *f) {
  struct svc_server_s *srv = sc->ts->srv;
  struct tcps_op *op;
  char *filter;

  if (sc->open >= sc->w->opts.limits.max_streams)
    return svc__wire_send_code(sc->w, SVC__F_SUBACK, f->id, SVC__FC_LIMIT);
  if (sc->ts->closing)
    return svc__wire_send_code(sc->w, SVC__F_SUBACK, f->id,
                               SVC__FC_UNAVAILABLE);
  filter = ts_cstr(&f->filter);
  op = ts_op_new(TS_SUB, NULL);
  if (filter == NULL || op == NULL) {
    svc__free(filter);
    svc__free(op);
    return SVC_ENOMEM;
  }
  op->qos = f->flags & SVC__FRAME_QOS_MASK;
  op->bare = (sc->w->peer.features & SVC__FEATURE_BARE_EVENTS) != 0 &&
             svc__topic_is_name(filter);
  op->sink.deliver = ts_sink_deliver;
  op->sink.has_room = ts_sink_has_room;
  if (ts_open_id(sc, op, f->id) != 0 ||
      svc__hub_add(srv->hub, filter, &op->sink) != 0) {
    ts_close_id(op);
    svc__free(op);
    svc__free(filter);
    return svc__wire_send_code(sc->w, SVC__F_SUBACK, f->id, SVC__FC_INTERNAL);
  }
  op->obj = op; /* Subscribed. */
  svc__wire_send_code(sc->w, SVC__F_SUBACK, f->id, SVC__FC_NO_ERROR);
  svc__hub_retained_foreach(srv->hub, filter, ts_retained, op);
  svc__free(filter);
  return 0;
}

static void ts_sub_end(struct tcps_op *op) {
  if (op->obj != NULL) {
    svc__hub_remove(op->sc->ts->srv->hub, &op->sink);
    op->obj = NULL;
  }
  ts_close_id(op);
  svc__free(op);
}

/* ---- Publishes relayed into the hub. */

static void ts_relay_done(svc_ctx_t *ctx, int status, void *arg) {
  struct tcps_op *op = arg;
  struct tcps_conn *sc = op->sc;
  uint32_t code;

  (void)ctx;
  if (sc == NULL) {
    svc__free(op); /* The publisher went away meanwhile. */
    return;
  }
  code = status == 0               ? SVC__FC_NO_ERROR
         : status == SVC_EAGAIN    ? SVC__FC_NO_ROOM
         : status == SVC_ECANCELED ? SVC__FC_UNAVAILABLE
         : status == SVC_ENOBUFS   ? SVC__FC_NO_ROOM
                                   : SVC__FC_INTERNAL;
  svc__wire_send_code(sc->w, SVC__F_PUBACK, op->id, code);
  ts_close_id(op);
  svc__free(op);
  if (sc->relays-- == TCPS_RELAY_PAUSE / 2 + 1 || sc->relays == 0)
    svc__wire_resume(sc->w, SVC__WIRE_PAUSE_OWNER);
  ts_conn_maybe_done(sc);
}

static int ts_on_publish(struct tcps_conn *sc, struct svc__frame *f) {
  struct svc_server_s *srv = sc->ts->srv;
  svc_pub_opts_t po;
  struct tcps_op *op = NULL;
  char *topic;
  int qos = f->flags & SVC__FRAME_QOS_MASK;
  int rc;
  uint32_t code;

  memset(&po, 0, sizeof(po));
  po.qos = qos;
  po.retain = (f->flags & SVC__FRAME_RETAIN) != 0;
  if (qos > 0 && sc->open >= sc->w->opts.limits.max_streams)
    return svc__wire_send_code(sc->w, SVC__F_PUBACK, f->id, SVC__FC_LIMIT);
  topic = ts_cstr(&f->topic);
  if (topic == NULL)
    return SVC_ENOMEM;
  if (qos > 0) {
    op = ts_op_new(TS_PUB, NULL);
    if (op == NULL || ts_open_id(sc, op, f->id) != 0) {
      svc__free(op);
      svc__free(topic);
      return SVC_ENOMEM;
    }
  }
  rc = svc_server_publish(srv, topic, f->msg, &po,
                          qos > 0 ? ts_relay_done : NULL, op);
  svc__free(topic);
  if (rc == 0) {
    f->msg = NULL; /* The hub owns it now. */
    if (op != NULL && ++sc->relays == TCPS_RELAY_PAUSE)
      svc__wire_pause(sc->w, SVC__WIRE_PAUSE_OWNER);
    return 0;
  }
  if (rc == SVC_ENOMEM && op == NULL)
    return rc;
  if (op == NULL) {
    srv->metrics->m.dropped++; /* QoS 0: no answer to give. */
    return 0;
  }
  code = rc == SVC_EAGAIN || rc == SVC_ENOBUFS ? SVC__FC_NO_ROOM
         : rc == SVC_EINVAL                    ? SVC__FC_INVALID
         : rc == SVC_ECLOSING                  ? SVC__FC_UNAVAILABLE
                                               : SVC__FC_INTERNAL;
  svc__wire_send_code(sc->w, SVC__F_PUBACK, f->id, code);
  ts_close_id(op);
  svc__free(op);
  return 0;
}

/* ---- Frames. */

static int ts_is_opening(const struct svc__frame *f) {
  switch (f->type) {
  case SVC__F_REQUEST:
  case SVC__F_STREAM_OPEN:
  case SVC__F_SUBSCRIBE:
    return 1;
  case SVC__F_PUBLISH:
    return f->id != 0;
  default:
    return 0;
  }
}

static int ts_on_frame(struct svc__wire *w, struct svc__frame *f,
                       const char **why) {
  struct tcps_conn *sc = w->owner;
  struct tcps_op *op;

  if (f->type == SVC__F_GOAWAY) {
    /* The client will open nothing more; it closes when it is done. */
    return 0;
  }
  if (ts_is_opening(f)) {
    if (f->id <= sc->last_id) {
      *why = "opening frame reuses an id";
      return SVC_EPROTO;
    }
    sc->last_id = f->id;
    if (sc->goaway_sent)
      return 0; /* Sent before the client saw our GOAWAY: not handled. */
  } else if (f->id > sc->last_id) {
    *why = "frame for an id the client never opened";
    return SVC_EPROTO;
  }
  switch (f->type) {
  case SVC__F_REQUEST:
    return ts_on_request(sc, f);
  case SVC__F_STREAM_OPEN:
    return ts_on_stream_open(sc, f);
  case SVC__F_SUBSCRIBE:
    return ts_on_subscribe(sc, f);
  case SVC__F_PUBLISH:
    if (sc->goaway_sent)
      return 0;
    return ts_on_publish(sc, f);
  case SVC__F_CANCEL:
    op = svc__idmap_get(&sc->ids, f->id);
    if (op == NULL)
      return 0;
    if (op->kind != TS_REQ)
      break;
    {
      struct svc_request_s *req = op->obj;
      req->tp = NULL;
      svc__request_cancel(req);
      ts_close_id(op);
      svc__free(op);
      ts_conn_maybe_done(sc);
    }
    return 0;
  case SVC__F_UNSUBSCRIBE:
    op = svc__idmap_get(&sc->ids, f->id);
    if (op == NULL)
      return 0;
    if (op->kind != TS_SUB)
      break;
    ts_sub_end(op);
    svc__hub_room(sc->ts->srv->ctx, sc->ts->srv->hub);
    return 0;
  case SVC__F_DATA:
  case SVC__F_END:
  case SVC__F_RESET:
  case SVC__F_CREDIT:
    op = svc__idmap_get(&sc->ids, f->id);
    if (op == NULL)
      return 0;
    if (op->kind != TS_STREAM)
      break;
    return svc__tcp_stream_frame(op->obj, f, why);
  default:
    *why = "frame type a client does not send";
    return SVC_EPROTO;
  }
  *why = "frame type does not match what the id is";
  return SVC_EPROTO;
}

static void ts_on_drain(struct svc__wire *w) {
  struct tcps_conn *sc = w->owner;

  /* QoS >= 1 publishes waiting for this subscriber can go on. */
  svc__hub_room(sc->ts->srv->ctx, sc->ts->srv->hub);
}

/* Everything the connection held ends; relays finish on their own. */
static void ts_on_down(struct svc__wire *w, int err) {
  struct tcps_conn *sc = w->owner;
  struct tcps_op *op;
  uint32_t id;

  (void)err;
  while ((op = svc__idmap_pop(&sc->ids, &id)) != NULL) {
    sc->open--;
    op->id = 0;
    switch (op->kind) {
    case TS_REQ: {
      struct svc_request_s *req = op->obj;
      req->tp = NULL;
      svc__request_cancel(req);
      svc__free(op);
      break;
    }
    case TS_STREAM: {
      struct svc_stream_s *s = op->obj;
      s->tp = NULL;
      svc__free(op);
      svc__stream_on_reset(s, SVC_ECONNRESET);
      break;
    }
    case TS_SUB:
      ts_sub_end(op);
      break;
    case TS_PUB:
      op->sc = NULL; /* ts_relay_done frees it. */
      break;
    }
  }
  svc__hub_room(sc->ts->srv->ctx, sc->ts->srv->hub);
}

static void ts_on_closed(struct svc__wire *w) {
  struct tcps_conn *sc = w->owner;
  struct svc__tcps *ts = sc->ts;

  svc__list_remove(&sc->link);
  svc__idmap_free(&sc->ids);
  svc__free(sc);
  ts_maybe_finish(ts);
}

static const struct svc__wire_cbs ts_wire_cbs = {
    .on_frame = ts_on_frame,
    .on_drain = ts_on_drain,
    .on_down = ts_on_down,
    .on_closed = ts_on_closed,
};

/* ---- Listening. */

static void ts_on_connection(uv_stream_t *listener, int status) {
  struct svc__tcps *ts = listener->data;
  struct tcps_conn *sc;

  if (status != 0 || ts->closing)
    return;
  sc = svc__calloc(1, sizeof(*sc));
  if (sc == NULL)
    return;
  sc->ts = ts;
  sc->w = svc__wire_new(ts->srv->ctx, ts->is_pipe, &ts->opts.wire, &ts_wire_cbs,
                        sc);
  if (sc->w == NULL) {
    svc__free(sc);
    return;
  }
  svc__list_insert_tail(&ts->conns, &sc->link);
  /* On failure (EMFILE...) on_down/on_closed clean up; the listener goes
   * on serving everyone else. */
  if (svc__wire_accept(sc->w, listener) != 0)
    svc__wire_close(sc->w, UV_ECONNABORTED, 0);
}

static int ts_endpoint(struct svc__tcps *ts) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char host[64];
  char endpoint[128];
  int port;

  if (ts->is_pipe)
    return 0;
  if (uv_tcp_getsockname(&ts->listener->tcp, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
    port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(endpoint, sizeof(endpoint), "tcp://[%s]:%d", host, port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(endpoint, sizeof(endpoint), "tcp://%s:%d", host, port);
  }
  if (strcmp(endpoint, ts->srv->endpoint) == 0)
    return 0;
  return svc__server_set_endpoint(ts->srv, endpoint);
}

static void ts_handle_free(uv_handle_t *h) {
  svc__free(h);
}

static void ts_listener_closed(uv_handle_t *h) {
  struct svc__tcps *ts = h->data;

  svc__free(h);
  ts->listener = NULL;
  ts->listener_open = 0;
  ts_maybe_finish(ts);
}

static int ts_bind(struct svc__tcps *ts) {
  struct svc_server_s *srv = ts->srv;
  struct sockaddr_storage ss;
  int rc;

  if (ts->is_pipe) {
    rc = uv_pipe_bind(&ts->listener->pipe, srv->url->host);
    if (rc != 0)
      return rc;
    ts->sock_path = svc__strdup(srv->url->host);
    if (ts->sock_path == NULL)
      return SVC_ENOMEM;
  } else {
    const char *host = srv->url->host[0] != '\0' ? srv->url->host : "0.0.0.0";
    if (uv_ip4_addr(host, srv->url->port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, srv->url->port, (struct sockaddr_in6 *)&ss) != 0)
      return SVC_EINVAL; /* Serving needs an address, not a name. */
    rc = uv_tcp_bind(&ts->listener->tcp, (struct sockaddr *)&ss, 0);
    if (rc != 0)
      return rc;
  }
  rc = uv_listen(&ts->listener->stream, TCPS_BACKLOG, ts_on_connection);
  if (rc != 0)
    return rc;
  return ts_endpoint(ts);
}

static void ts_drain_cb(struct svc__timer *t) {
  struct svc__tcps *ts = svc__container_of(t, struct svc__tcps, drain_timer);
  struct svc__list *pos;
  struct svc__list *tmp;

  /* Handlers that have not answered by now are cut off. */
  svc__list_foreach_safe(pos, tmp, &ts->conns) {
    struct tcps_conn *sc = svc__container_of(pos, struct tcps_conn, link);
    svc__wire_close(sc->w, SVC_ETIMEDOUT, 1);
  }
}

int svc__tcps_serve(struct svc_server_s *srv) {
  struct svc__tcps *ts = TS(srv);
  int rc;

  ts->srv = srv;
  svc__list_init(&ts->conns);
  svc__timer_init(&ts->drain_timer, ts_drain_cb);
  ts->is_pipe = strcmp(srv->url->scheme, "unix") == 0;
  rc = svc__tcp_opts_parse(srv->url->query, &ts->opts);
  if (rc != 0)
    return rc;
  ts->opts.wire.pause_when_full = 1;
  if (ts->is_pipe ? srv->url->host[0] != '/' : srv->url->port < 0)
    return SVC_EINVAL;
  ts->listener = svc__calloc(1, sizeof(*ts->listener));
  if (ts->listener == NULL)
    return SVC_ENOMEM;
  rc = ts->is_pipe ? uv_pipe_init(srv->ctx->loop, &ts->listener->pipe, 0)
                   : uv_tcp_init(srv->ctx->loop, &ts->listener->tcp);
  if (rc != 0) {
    svc__free(ts->listener);
    ts->listener = NULL;
    return rc;
  }
  ts->listener->handle.data = ts;
  rc = ts_bind(ts);
  if (rc != 0) {
    if (ts->sock_path != NULL) {
      unlink(ts->sock_path);
      svc__free(ts->sock_path);
      ts->sock_path = NULL;
    }
    uv_close(&ts->listener->handle, ts_handle_free);
    ts->listener = NULL;
    return rc;
  }
  ts->listener_open = 1;
  return 0;
}

/* A closing server lets a connection go once nothing is left on it. */
static void ts_conn_maybe_done(struct tcps_conn *sc) {
  if (sc->ts->closing && sc->open == 0 && sc->relays == 0)
    svc__wire_close(sc->w, 0, 1);
}

static void ts_maybe_finish(struct svc__tcps *ts) {
  if (!ts->closing || ts->finished || ts->listener_open ||
      !svc__list_empty(&ts->conns))
    return;
  ts->finished = 1;
  svc__timer_stop(ts->srv->ctx, &ts->drain_timer);
  svc__server_closed(ts->srv);
}

/* Graceful: stop accepting, GOAWAY to everyone, let replies and
 * acknowledgements in flight go out, close each connection when it is
 * empty, and cut off what is left after drain_ms. */
void svc__tcps_serve_close(struct svc_server_s *srv) {
  struct svc__tcps *ts = TS(srv);
  struct svc__list *pos;
  struct svc__list *tmp;

  ts->closing = 1;
  if (ts->listener_open)
    uv_close(&ts->listener->handle, ts_listener_closed);
  if (ts->sock_path != NULL) {
    unlink(ts->sock_path);
    svc__free(ts->sock_path);
    ts->sock_path = NULL;
  }
  svc__list_foreach_safe(pos, tmp, &ts->conns) {
    struct tcps_conn *sc = svc__container_of(pos, struct tcps_conn, link);
    size_t i;
    /* Subscriptions end with the server. */
    for (i = 0; i < sc->ids.cap; i++) {
      struct tcps_op *op = sc->ids.vals[i];
      if (sc->ids.keys[i] != 0 && op->kind == TS_SUB) {
        ts_sub_end(op);
        i--; /* The table shifted an entry into this slot, maybe. */
      }
    }
    sc->goaway_sent = 1;
    svc__wire_send_goaway(sc->w, sc->last_id, SVC__FC_NO_ERROR,
                          "server closing");
    ts_conn_maybe_done(sc);
  }
  if (!svc__list_empty(&ts->conns) && ts->opts.drain_ms > 0)
    svc__timer_start(srv->ctx, &ts->drain_timer, ts->opts.drain_ms);
  else if (!svc__list_empty(&ts->conns))
    ts_drain_cb(&ts->drain_timer);
  ts_maybe_finish(ts);
}
