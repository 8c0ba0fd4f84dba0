/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_MQTT_H
#define SVC_MQTT_H

/* The mqtt:// and mqtts:// backend: one paho MQTTAsync client per conn
 * (scheme://host:port), driven from the context's loop thread.
 *
 * paho calls back on its own threads (integration notes, B). Every callback
 * only copies what it was given into a struct mq_ev, appends it to the
 * conn's locked queue and wakes the loop through a file descriptor the
 * loop polls (mqtt_loop.c says why not uv_async_send()); the loop drains
 * the whole queue per wake-up (wake-ups coalesce) and does everything
 * else. So all of the state below is the loop thread's, except the queue
 * and its flag, which the lock guards.
 *
 * Files: mqtt_opts.c (URI query), mqtt_loop.c (the queue and the paho
 * callbacks), mqtt_client.c (client lifecycle, connect and reconnect,
 * publish, subscriptions, incoming routing), mqtt_msg.c (svc_msg_t <->
 * MQTT v5 properties), mqtt_call.c (calls, serving), mqtt_stream.c
 * (streams). docs/mqtt.md describes the behaviour. */

#include "internal.h"

#include <MQTTAsync.h>

#include "transports/tcp_idmap.h"

/* ---- Options (mqtt_opts.c). */
struct svc__mqtt_opts {
  char *client_id;     /* NULL: generated, unique per conn. */
  int version;         /* 5 or 3 (MQTT 3.1.1). */
  int clean_start;
  uint32_t session_expiry; /* Seconds (v5). */
  int keepalive;       /* Seconds. */
  int qos;             /* Used when a publish or subscription asks for 0. */
  char *will_topic;
  char *will_payload;
  int will_qos;
  int will_retain;
  char *persist_dir;   /* NULL: no persistence. */
  int max_buffered;    /* Publishes paho may hold unsent. */
  svc_overflow_t overflow; /* overflow=: what a full offline buffer does
                            * with one more QoS >= 1 publish. */
  size_t max_held;     /* QoS >= 1 events held for full subscriptions. */
  int reconnect_min_s;
  int reconnect_max_s;
  uint64_t connect_timeout_ms;
  uint64_t disconnect_ms; /* How long close lets in-flight work finish. */
  int no_local;        /* Subscriptions skip this client's own publishes. */
  char *ca;
  char *cert;
  char *key;
  int insecure;
};

/* Fills o with the defaults, then applies query (may be NULL). 0,
 * SVC_EINVAL (unknown name, malformed or out-of-range value) or
 * SVC_ENOMEM. svc__mqtt_opts_free() releases the strings. */
int svc__mqtt_opts_parse(const char *query, int tls,
                         struct svc__mqtt_opts *o);
void svc__mqtt_opts_free(struct svc__mqtt_opts *o);

/* ---- What paho threads hand to the loop. */
enum mq_ev_type {
  MQ_EV_CONNECTED,    /* code: sessionPresent; value: receive maximum. */
  MQ_EV_CONNECT_FAIL, /* code: paho or reason code. */
  MQ_EV_LOST,
  MQ_EV_MSG,          /* topic, msg. */
  MQ_EV_OP_OK,        /* rec; code: granted QoS / reason code. */
  MQ_EV_OP_FAIL,      /* rec; code: paho error or reason code. */
  MQ_EV_DISCONNECTED  /* Close's disconnect finished either way. */
};

struct mq_rec;

struct mq_ev {
  struct mq_ev *next;
  enum mq_ev_type type;
  struct mq_rec *rec;
  int code;
  int value;
  char *topic;            /* malloc(): the loop frees every event. */
  MQTTAsync_message *msg; /* A copy in one malloc() block (mq_msg_copy()):
                           * paho's own is freed on paho's thread. */
};

/* An operation paho holds (publish, subscribe, unsubscribe, or a QoS >= 1
 * message sent for the library itself: a reply, a stream's message): the
 * context of its response callbacks. It lives until paho reports it (destroy
 * reports every pending one), so a callback never points at freed memory; the
 * svc object it served is detached (obj = NULL) when that goes away first. */
enum mq_rec_kind {
  MQ_REC_PUB,
  MQ_REC_SUB,
  MQ_REC_UNSUB,
  MQ_REC_REQ,
  MQ_REC_SEND /* Only marks that paho holds it (see mq_close()). */
};

struct mq_rec {
  struct svc__list link; /* c->recs */
  struct mqc *c;
  enum mq_rec_kind kind;
  void *obj;
  uint32_t id; /* MQ_REC_REQ: the call's correlation id. */
  uint64_t seq;  /* MQ_REC_PUB: the message id's number. */
  int resends;   /* MQ_REC_PUB: times paho failed it locally. */
  int qos;       /* MQ_REC_PUB */
  int queued;    /* MQ_REC_PUB: waiting in c->pubq, not yet paho's. */
  int crossed;   /* MQ_REC_PUB: paho held it when the connection went. */
  struct svc__list qlink; /* c->pubq */
};

/* ---- One MQTT subscription of the client: the svc subscriptions that
 * share its filter, or the library's own (reply topic, served prefix). */
enum mq_msub_kind { MQ_MSUB_USER, MQ_MSUB_REPLY, MQ_MSUB_SERVER };

struct mq_msub {
  struct svc__list link; /* c->msubs */
  enum mq_msub_kind kind;
  char *filter;
  uint32_t subid;        /* v5 subscription identifier. */
  int qos;
  int acked;             /* SUBACK seen on the current connection. */
  struct mq_rec *rec;    /* SUBSCRIBE in flight. */
  struct svc__list subs; /* struct mq_subref.link (USER) */
  struct svc_server_s *srv; /* SERVER */
};

struct mq_subref {
  struct svc__list link; /* msub->subs */
  struct svc_sub_s *sub;
  struct mq_msub *msub;
};

/* A QoS >= 1 event that found its subscription's queue full: held, in
 * arrival order, until the application makes room. */
struct mq_held {
  struct svc__list link; /* c->held */
  struct svc_sub_s *sub;
  svc_msg_t *msg;
  int qos;
};

enum mq_state {
  MQ_IDLE,       /* No client, or the last one was given up. */
  MQ_CONNECTING, /* First connect of this client in progress. */
  MQ_UP,
  MQ_DOWN,       /* Was up; paho reconnects. */
  MQ_RETRY,      /* First connect failed; persistent publishes wait. */
  MQ_CLOSING
};

struct mqc {
  struct svc__conn *conn;
  svc_ctx_t *ctx;
  struct svc__mqtt_opts opts;
  int tls;
  char *server_uri;
  char *client_id;
  MQTTAsync cli;
  enum mq_state state;
  int ever_up;
  int backoff_s;
  int last_err;
  /* The broker's Receive Maximum (0 until the first CONNACK). QoS >= 1
   * publishes beyond it wait in pubq instead of in paho: paho 1.3.12's
   * send thread is not woken when its in-flight window frees up and
   * stalls about 1 s per full window (integration notes, B.8). */
  unsigned receive_max;
  unsigned outstanding;   /* QoS >= 1 publishes paho holds. */
  struct svc__list pubq;  /* struct mq_rec.qlink, in publishing order. */
  size_t npubq;

  /* The queue from paho's threads. */
  uv_mutex_t lock;
  uv_poll_t wake;   /* Watches wake_fd[0]. */
  int wake_fd[2];   /* An eventfd in both (Linux), or a pipe. */
  int lock_init;
  int wake_open; /* wake_fd is open. */
  int wake_init; /* wake is initialised. */
  int q_closed;
  struct mq_ev *q_head;
  struct mq_ev *q_tail;

  struct svc__list recs;  /* struct mq_rec.link */
  struct svc__list msubs; /* struct mq_msub.link */
  struct svc__list held;  /* struct mq_held.link */
  size_t nheld;
  uint32_t next_subid;

  /* Request/response and streams. */
  char *reply_topic;
  struct mq_msub *reply_msub;
  struct svc__idmap calls;   /* correlation id -> struct svc_call_s */
  struct svc__idmap streams; /* stream id -> struct svc_stream_s (opener) */
  uint32_t next_id;
  struct svc__list waiting;  /* struct mq_wait.link: calls and streams
                              * waiting for the reply subscription. */
  struct svc__list servers;  /* struct mqs.link */
  uint64_t msg_seq;          /* svc-id counter. */

  struct svc__timer timer;   /* Connect retry, close drain, close fallback. */
  int draining;              /* Closing: waiting for paho to settle recs. */
  int destroy_err;           /* While destroying: the error to report. */
  void (*closed_fn)(struct mqc *c);
};

#define MQC(conn) ((struct mqc *)(conn)->tp)

/* A call or stream waiting for the client to be ready for requests. */
struct mq_wait {
  struct svc__list link;
  int is_stream;
  void *obj;
};

/* ---- The serving side: a prefix subscription on the endpoint's conn. */
struct mqs {
  struct svc__list link; /* c->servers */
  struct svc_server_s *srv;
  struct mqc *c;
  char *prefix;            /* "svc/users" */
  struct mq_msub *msub;
  struct svc__list streams; /* struct mq_sstream.link */
};

/* Per-request state of a served call: where to answer. */
struct mq_sreq {
  char *response_topic;
  void *corr;
  int corr_len;
};

/* ---- mqtt_loop.c */
int svc__mq_queue_init(struct mqc *c);
/* Runs every queued event now (also used right after MQTTAsync_destroy(),
 * whose failure callbacks run synchronously). */
void svc__mq_drain(struct mqc *c);
/* Marks the queue closed (no paho callback can arrive any more) and closes
 * the wake-up's handle; done() runs from its close callback. */
void svc__mq_queue_close(struct mqc *c, void (*done)(struct mqc *c));
void svc__mq_ev_free(struct mq_ev *ev);
/* Sets the client callbacks (connection lost, message, connected). */
int svc__mq_set_callbacks(struct mqc *c);
/* Response options whose callbacks queue MQ_EV_OP_OK/FAIL for rec. */
void svc__mq_response_opts(struct mqc *c, struct mq_rec *rec,
                           MQTTAsync_responseOptions *ro);
void svc__mq_connect_callbacks(struct mqc *c, MQTTAsync_connectOptions *co);
void svc__mq_disconnect_callbacks(struct mqc *c,
                                  MQTTAsync_disconnectOptions *dopt);

/* ---- mqtt_client.c */
struct mq_rec *svc__mq_rec_new(struct mqc *c, enum mq_rec_kind kind,
                               void *obj);
void svc__mq_rec_free(struct mq_rec *rec);
/* Handles one event on the loop thread. */
void svc__mq_handle(struct mqc *c, struct mq_ev *ev);
/* Starts the client and its first connect when there is none. 0 or an
 * error. */
int svc__mq_start(struct mqc *c);
/* Adds an internal subscription (reply topic, served prefix); sent now
 * when up, and again on every reconnect. */
struct mq_msub *svc__mq_msub_add(struct mqc *c, enum mq_msub_kind kind,
                                 const char *filter, int qos);
void svc__mq_msub_remove(struct mqc *c, struct mq_msub *m);
/* Publishes topic with msg (borrowed) and the extra v5 properties (copied
 * by paho). rec receives the outcome; with rec NULL, a QoS >= 1 message
 * gets a record of its own, which only tells close that paho holds it.
 * 0 or an error. */
int svc__mq_send(struct mqc *c, const char *topic, const svc_msg_t *msg,
                 int qos, int retain, MQTTProperties *extra,
                 struct mq_rec *rec);
int svc__mq_err(int paho_rc);
int svc__mq_v5(const struct mqc *c);

/* ---- mqtt_msg.c */
/* A publish's v5 properties as a view over the message and the caller's
 * extra properties (headers as user properties, the trace, the content
 * type, then the extras), pointing into them: paho copies every property
 * it is handed (MQTTAsync_send), so building them with
 * MQTTProperties_add(), which copies each name and value through paho's
 * allocator, copied everything twice. Valid while msg and extra are. */
#define SVC__MQ_VIEW_INLINE 16
struct svc__mq_view {
  MQTTProperties props; /* count and array only: nothing to free there */
  MQTTProperty arr[SVC__MQ_VIEW_INLINE];
  char attr[SVC__MQ_VIEW_INLINE][SVC__CE_NAME_MAX + 1];
  MQTTProperty *heap_arr; /* Past SVC__MQ_VIEW_INLINE properties. */
  char (*heap_attr)[SVC__CE_NAME_MAX + 1];
  char traceparent[SVC_TRACEPARENT_LEN + 1];
};
/* 0 or SVC_ENOMEM; svc__mq_view_free() after 0. */
int svc__mq_view_init(struct svc__mq_view *v, const svc_msg_t *msg,
                      const MQTTProperties *extra);
void svc__mq_view_free(struct svc__mq_view *v);
/* A user property pointing at name and value (not copied). */
void svc__mq_prop_user(MQTTProperty *p, const char *name, size_t name_len,
                       const char *value, size_t value_len);
int svc__mq_props_add_str(MQTTProperties *p, enum MQTTPropertyCodes code,
                          const char *s, size_t len);
int svc__mq_props_add_user(MQTTProperties *p, const char *name,
                           const char *value);
/* The message paho delivered as a svc message (user properties other than
 * the library's "svc-*" become headers). NULL when out of memory. */
svc_msg_t *svc__mq_msg_to_svc(MQTTAsync_message *m);
/* The value of user property name as a new string, or NULL. */
char *svc__mq_user_prop(MQTTAsync_message *m, const char *name);

/* ---- mqtt_call.c */
int svc__mq_call(struct svc__conn *conn, struct svc_call_s *call);
void svc__mq_call_abort(struct svc__conn *conn, struct svc_call_s *call);
int svc__mq_serve(struct svc_server_s *srv);
void svc__mq_serve_close(struct svc_server_s *srv);
void svc__mq_reply(struct svc_request_s *req, svc_status_t status,
                   svc_msg_t *msg);
/* The client became ready for requests (reply subscription acknowledged),
 * or can no longer serve them (err). */
void svc__mq_requests_ready(struct mqc *c);
void svc__mq_requests_fail(struct mqc *c, int err);
/* Sets up the reply topic and its subscription once. 0 or an error. */
int svc__mq_ensure_reply(struct mqc *c);
/* A message on the reply topic; a message under a served prefix. */
void svc__mq_on_reply(struct mqc *c, MQTTAsync_message *m);
void svc__mq_on_request(struct mqs *s, const char *topic,
                        MQTTAsync_message *m);
/* Publishes a request-kind message (calls and stream frames) on topic
 * with the reply topic and correlation id. */
int svc__mq_send_request(struct mqc *c, const char *topic, uint32_t id,
                         const svc_msg_t *msg, MQTTProperties *extra,
                         struct mq_rec *rec);

/* ---- mqtt_stream.c */
int svc__mq_stream_open(struct svc__conn *conn, struct svc_stream_s *s);
void svc__mq_stream_accept(struct svc_stream_s *s);
void svc__mq_stream_send(struct svc_stream_s *s, svc_msg_t *msg);
void svc__mq_stream_send_end(struct svc_stream_s *s);
void svc__mq_stream_send_credit(struct svc_stream_s *s, size_t bytes);
void svc__mq_stream_send_reset(struct svc_stream_s *s);
void svc__mq_stream_release(struct svc_stream_s *s);
/* Sends the open of a stream that waited for the reply subscription. */
void svc__mq_stream_start(struct mqc *c, struct svc_stream_s *s);
/* A stream frame for the opener (on the reply topic) or for a served
 * prefix (kind is the "svc-stream" property). */
void svc__mq_stream_on_client(struct mqc *c, uint32_t id,
                              MQTTAsync_message *m, const char *kind);
void svc__mq_stream_on_server(struct mqs *s, const char *path,
                              MQTTAsync_message *m, const char *kind);
/* The transport forgets s, which fails with err. */
void svc__mq_stream_fail(struct svc_stream_s *s, int err);
/* Every stream of the conn (or server) fails with err. */
void svc__mq_streams_fail(struct mqc *c, int err);
void svc__mq_server_streams_fail(struct mqs *s, int err);

#endif /* SVC_MQTT_H */
