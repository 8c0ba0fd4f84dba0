/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

#include <stdio.h>
#include <stdlib.h>

/* Request/response over MQTT v5. A call to mqtt://host/svc/users/get
 * publishes its request on topic "svc/users/get" with this client's reply
 * topic ("_svc/reply/<client id>", subscribed before the first request)
 * and a correlation id; the method, the remaining deadline (ms) and the
 * request's headers travel as user properties ("svc-method",
 * "svc-timeout"). The server answers on the reply topic with the same
 * correlation data and the status in "svc-status". A served prefix
 * ("mqtt://host/svc/users") is the subscription "svc/users/#"; what
 * follows the prefix is the route path. Streams use the same two topics
 * (mqtt_stream.c). */

static int mq_call_v5(struct mqc *c) {
  return svc__mq_v5(c);
}

int svc__mq_ensure_reply(struct mqc *c) {
  char buf[300];
  size_t i;
  size_t n;

  if (c->reply_msub != NULL)
    return 0;
  n = (size_t)snprintf(buf, sizeof(buf), "_svc/reply/%s", c->client_id);
  if (n >= sizeof(buf))
    return SVC_EINVAL;
  /* Client ids may hold characters that are special in topics. */
  for (i = 11; i < n; i++)
    if (buf[i] == '+' || buf[i] == '#' || buf[i] == '/')
      buf[i] = '_';
  if (c->reply_topic == NULL && (c->reply_topic = svc__strdup(buf)) == NULL)
    return SVC_ENOMEM;
  c->reply_msub = svc__mq_msub_add(c, MQ_MSUB_REPLY, c->reply_topic, 1);
  return c->reply_msub != NULL ? 0 : SVC_ENOMEM;
}

int svc__mq_send_request(struct mqc *c, const char *topic, uint32_t id,
                         const svc_msg_t *msg, MQTTProperties *extra,
                         struct mq_rec *rec) {
  MQTTProperties p = MQTTProperties_initializer;
  char corr[16];
  int i;
  int rc;

  snprintf(corr, sizeof(corr), "%u", (unsigned)id);
  rc = svc__mq_props_add_str(&p, MQTTPROPERTY_CODE_RESPONSE_TOPIC,
                             c->reply_topic, strlen(c->reply_topic));
  if (rc == 0)
    rc = svc__mq_props_add_str(&p, MQTTPROPERTY_CODE_CORRELATION_DATA, corr,
                               strlen(corr));
  for (i = 0; rc == 0 && extra != NULL && i < extra->count; i++)
    rc = MQTTProperties_add(&p, &extra->array[i]) == 0 ? 0 : SVC_ENOMEM;
  if (rc == 0)
    rc = svc__mq_send(c, topic, msg, 1, 0, &p, rec);
  MQTTProperties_free(&p);
  return rc;
}

/* Publishes the request of call (registered under call->tp_id). */
static int mq_call_send(struct mqc *c, struct svc_call_s *call) {
  MQTTProperties extra = MQTTProperties_initializer;
  uint64_t left = svc__call_remaining_ms(call);
  struct mq_rec *rec;
  char num[24];
  int rc;

  rec = svc__mq_rec_new(c, MQ_REC_REQ, call);
  if (rec == NULL)
    return SVC_ENOMEM;
  rec->id = (uint32_t)call->tp_id;
  rc = svc__mq_props_add_user(&extra, "svc-method", call->method);
  if (rc == 0 && left != UINT64_MAX) {
    snprintf(num, sizeof(num), "%llu", (unsigned long long)left);
    rc = svc__mq_props_add_user(&extra, "svc-timeout", num);
  }
  if (rc == 0)
    rc = svc__mq_send_request(c, call->url->path, rec->id, call->req, &extra,
                              rec);
  MQTTProperties_free(&extra);
  if (rc != 0) {
    svc__mq_rec_free(rec);
    return rc;
  }
  call->tp = rec;
  return 0;
}

static uint32_t mq_next_id(struct mqc *c) {
  do
    c->next_id++;
  while (c->next_id == 0 || svc__idmap_get(&c->calls, c->next_id) != NULL ||
         svc__idmap_get(&c->streams, c->next_id) != NULL);
  return c->next_id;
}

int svc__mq_call(struct svc__conn *conn, struct svc_call_s *call) {
  struct mqc *c = MQC(conn);
  struct mq_wait *w;
  uint32_t id;
  int rc;

  if (!mq_call_v5(c))
    return SVC_ENOTSUP; /* MQTT 3.1.1 has no response topic. */
  if (svc__topic_check_name(call->url->path) != 0)
    return SVC_EINVAL;
  rc = svc__mq_start(c);
  if (rc != 0)
    return rc;
  /* While paho reconnects, a request could not be answered in time for
   * most callers: fail fast and let the retry policy decide. */
  if (c->state == MQ_DOWN)
    return SVC_ENOTCONN;
  rc = svc__mq_ensure_reply(c);
  if (rc != 0)
    return rc;
  id = mq_next_id(c);
  if (svc__idmap_put(&c->calls, id, call) != 0)
    return SVC_ENOMEM;
  call->tp_id = id;
  call->tp = NULL;
  if (c->state == MQ_UP && c->reply_msub->acked) {
    rc = mq_call_send(c, call);
    if (rc != 0)
      svc__idmap_del(&c->calls, id);
    return rc;
  }
  w = svc__calloc(1, sizeof(*w));
  if (w == NULL) {
    svc__idmap_del(&c->calls, id);
    return SVC_ENOMEM;
  }
  w->obj = call;
  svc__list_insert_tail(&c->waiting, &w->link);
  return 0;
}

void svc__mq_call_abort(struct svc__conn *conn, struct svc_call_s *call) {
  struct mqc *c = MQC(conn);
  struct mq_rec *rec = call->tp;
  struct svc__list *pos;

  svc__idmap_del(&c->calls, (uint32_t)call->tp_id);
  if (rec != NULL) {
    rec->obj = NULL;
    call->tp = NULL;
    return;
  }
  svc__list_foreach(pos, &c->waiting) {
    struct mq_wait *w = svc__container_of(pos, struct mq_wait, link);
    if (w->obj == call) {
      svc__list_remove(pos);
      svc__free(w);
      return;
    }
  }
}

void svc__mq_requests_ready(struct mqc *c) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&c->waiting)) != NULL) {
    struct mq_wait *w = svc__container_of(pos, struct mq_wait, link);
    void *obj = w->obj;
    int is_stream = w->is_stream;
    svc__list_remove(pos);
    svc__free(w);
    if (is_stream) {
      svc__mq_stream_start(c, obj);
    } else {
      struct svc_call_s *call = obj;
      int rc = mq_call_send(c, call);
      if (rc != 0) {
        svc__idmap_del(&c->calls, (uint32_t)call->tp_id);
        svc__call_attempt_done(call, svc_status_from_err(rc), rc, NULL);
      }
    }
  }
}

void svc__mq_requests_fail(struct mqc *c, int err) {
  struct svc__list *pos;
  struct svc_call_s *call;
  uint32_t id;

  while ((pos = svc__list_head(&c->waiting)) != NULL) {
    struct mq_wait *w = svc__container_of(pos, struct mq_wait, link);
    void *obj = w->obj;
    int is_stream = w->is_stream;
    svc__list_remove(pos);
    svc__free(w);
    if (is_stream) {
      svc__mq_stream_fail(obj, err);
    } else {
      call = obj;
      svc__idmap_del(&c->calls, (uint32_t)call->tp_id);
      svc__call_attempt_done(call, SVC_STATUS_UNAVAILABLE, err, NULL);
    }
  }
  while ((call = svc__idmap_pop(&c->calls, &id)) != NULL) {
    struct mq_rec *rec = call->tp;
    if (rec != NULL)
      rec->obj = NULL;
    call->tp = NULL;
    svc__call_attempt_done(call, SVC_STATUS_UNAVAILABLE, err, NULL);
  }
}

/* The correlation data of m as an id, or 0. */
static uint32_t mq_corr_id(MQTTAsync_message *m) {
  MQTTProperty *p = MQTTProperties_getProperty(
      &m->properties, MQTTPROPERTY_CODE_CORRELATION_DATA);
  char buf[16];
  char *end;
  unsigned long v;

  if (p == NULL || p->value.data.len <= 0 ||
      p->value.data.len >= (int)sizeof(buf))
    return 0;
  memcpy(buf, p->value.data.data, (size_t)p->value.data.len);
  buf[p->value.data.len] = '\0';
  v = strtoul(buf, &end, 10);
  return *end == '\0' && v <= UINT32_MAX ? (uint32_t)v : 0;
}

void svc__mq_on_reply(struct mqc *c, MQTTAsync_message *m) {
  uint32_t id = mq_corr_id(m);
  char *kind = svc__mq_user_prop(m, "svc-stream");
  char *st;
  struct svc_call_s *call;
  struct mq_rec *rec;
  svc_msg_t *msg;
  long status = SVC_STATUS_OK;

  if (id == 0) {
    svc__free(kind);
    return;
  }
  if (kind != NULL) {
    svc__mq_stream_on_client(c, id, m, kind);
    svc__free(kind);
    return;
  }
  call = svc__idmap_del(&c->calls, id);
  if (call == NULL)
    return; /* Late: the call has ended (deadline, cancel). */
  rec = call->tp;
  if (rec != NULL)
    rec->obj = NULL;
  call->tp = NULL;
  st = svc__mq_user_prop(m, "svc-status");
  if (st != NULL) {
    char *end;
    status = strtol(st, &end, 10);
    if (*end != '\0' || status < 0 || status >= SVC_STATUS_COUNT)
      status = SVC_STATUS_UNKNOWN;
    svc__free(st);
  }
  msg = svc__mq_msg_to_svc(m);
  if (msg == NULL) {
    svc__call_attempt_done(call, SVC_STATUS_RESOURCE_EXHAUSTED, SVC_ENOMEM,
                           NULL);
    return;
  }
  svc__call_attempt_done(call, (svc_status_t)status,
                         status == SVC_STATUS_OK ? 0 : SVC_ESTATUS, msg);
}

/* ---- Serving. */

static void mq_sreq_free(struct mq_sreq *r) {
  if (r == NULL)
    return;
  svc__free(r->response_topic);
  svc__free(r->corr);
  svc__free(r);
}

int svc__mq_serve(struct svc_server_s *srv) {
  struct mqs *s = srv->tp;
  struct svc__list *pos;
  struct svc__conn *conn;
  struct mqc *c;
  char *filter;
  char *endpoint;
  size_t n;
  int rc;

  if (srv->url->path[0] == '\0' || svc__topic_check_name(srv->url->path) != 0)
    return SVC_EINVAL;
  rc = svc__conn_get(srv->ctx, srv->url, srv->ops, &conn);
  if (rc != 0)
    return rc;
  c = MQC(conn);
  if (!svc__mq_v5(c))
    return SVC_ENOTSUP;
  svc__list_foreach(pos, &c->servers) {
    if (strcmp(svc__container_of(pos, struct mqs, link)->prefix,
               srv->url->path) == 0)
      return SVC_EEXIST; /* This prefix is served in this context. */
  }
  rc = svc__mq_start(c);
  if (rc != 0)
    return rc;
  n = strlen(srv->url->path);
  s->srv = srv;
  s->c = c;
  svc__list_init(&s->streams);
  s->prefix = svc__strdup(srv->url->path);
  filter = svc__malloc(n + 3);
  endpoint = svc__malloc(strlen(srv->url->endpoint) + strlen(srv->url->path_raw) + 2);
  if (s->prefix == NULL || filter == NULL || endpoint == NULL) {
    svc__free(filter);
    svc__free(endpoint);
    svc__free(s->prefix);
    return SVC_ENOMEM;
  }
  memcpy(filter, srv->url->path, n);
  memcpy(filter + n, "/#", 3);
  /* The endpoint a client appends routes to: the broker plus the prefix,
   * so that servers of several prefixes on one broker stay apart. */
  sprintf(endpoint, "%s/%s", srv->url->endpoint, srv->url->path_raw);
  rc = svc__server_set_endpoint(srv, endpoint);
  svc__free(endpoint);
  if (rc == 0) {
    s->msub = svc__mq_msub_add(c, MQ_MSUB_SERVER, filter, 1);
    rc = s->msub != NULL ? 0 : SVC_ENOMEM;
  }
  svc__free(filter);
  if (rc != 0) {
    svc__free(s->prefix);
    return rc;
  }
  s->msub->srv = srv;
  svc__list_insert_tail(&c->servers, &s->link);
  return 0;
}

void svc__mq_serve_close(struct svc_server_s *srv) {
  struct mqs *s = srv->tp;
  struct svc__list *pos;

  svc__mq_server_streams_fail(s, SVC_ECANCELED);
  /* Requests whose callers have gone (context close) are freed by the core
   * without a reply: their reply addresses go now. A handler that replies
   * after the close finds none, and the reply is dropped. */
  svc__list_foreach(pos, &srv->requests) {
    struct svc_request_s *req =
        svc__container_of(pos, struct svc_request_s, link);
    mq_sreq_free(req->tp);
    req->tp = NULL;
  }
  svc__mq_msub_remove(s->c, s->msub);
  s->msub = NULL;
  svc__list_remove(&s->link);
  svc__free(s->prefix);
  s->prefix = NULL;
  svc__server_closed(srv);
}

void svc__mq_on_request(struct mqs *s, const char *topic,
                        MQTTAsync_message *m) {
  struct svc_server_s *srv = s->srv;
  size_t n = strlen(s->prefix);
  const char *path;
  MQTTProperty *rt;
  MQTTProperty *corr;
  struct mq_sreq *r;
  struct svc_request_s *req;
  char *kind;
  char *method;
  char *timeout;
  uint64_t deadline = 0;
  svc_msg_t *msg;

  if (srv->closing || strncmp(topic, s->prefix, n) != 0 || topic[n] != '/')
    return;
  path = topic + n + 1;
  kind = svc__mq_user_prop(m, "svc-stream");
  if (kind != NULL) {
    svc__mq_stream_on_server(s, path, m, kind);
    svc__free(kind);
    return;
  }
  rt = MQTTProperties_getProperty(&m->properties,
                                  MQTTPROPERTY_CODE_RESPONSE_TOPIC);
  corr = MQTTProperties_getProperty(&m->properties,
                                    MQTTPROPERTY_CODE_CORRELATION_DATA);
  /* Without a response topic it is an event published under the prefix,
   * not a request: nobody could receive an answer. */
  if (rt == NULL || rt->value.data.len <= 0)
    return;
  r = svc__calloc(1, sizeof(*r));
  if (r == NULL)
    return;
  r->response_topic = svc__strndup(rt->value.data.data,
                                   (size_t)rt->value.data.len);
  if (corr != NULL && corr->value.data.len > 0) {
    r->corr = svc__malloc((size_t)corr->value.data.len);
    if (r->corr != NULL) {
      memcpy(r->corr, corr->value.data.data, (size_t)corr->value.data.len);
      r->corr_len = corr->value.data.len;
    }
  }
  msg = svc__mq_msg_to_svc(m);
  if (r->response_topic == NULL || (corr != NULL && r->corr == NULL) ||
      msg == NULL || svc__topic_check_name(r->response_topic) != 0) {
    svc_msg_free(msg);
    mq_sreq_free(r);
    return;
  }
  timeout = svc__mq_user_prop(m, "svc-timeout");
  if (timeout != NULL) {
    char *end;
    unsigned long long ms = strtoull(timeout, &end, 10);
    if (*end == '\0' && timeout[0] != '\0')
      deadline = svc__now_ms(srv->ctx) + (ms > 0 ? ms : 1);
    svc__free(timeout);
  }
  method = svc__mq_user_prop(m, "svc-method");
  req = svc__request_new(srv, method != NULL ? method : "CALL", path, msg,
                         deadline);
  svc__free(method);
  if (req == NULL) {
    mq_sreq_free(r);
    return;
  }
  req->tp = r;
  svc__server_dispatch(srv, req);
}

void svc__mq_reply(struct svc_request_s *req, svc_status_t status,
                   svc_msg_t *msg) {
  struct mqs *s = req->server->tp;
  struct mq_sreq *r = req->tp;
  MQTTProperties p = MQTTProperties_initializer;
  char num[16];
  int rc;

  req->tp = NULL;
  if (r == NULL || s->c == NULL || s->c->cli == NULL) {
    svc_msg_free(msg);
    mq_sreq_free(r);
    return;
  }
  snprintf(num, sizeof(num), "%d", (int)status);
  rc = svc__mq_props_add_user(&p, "svc-status", num);
  if (rc == 0 && r->corr != NULL)
    rc = svc__mq_props_add_str(&p, MQTTPROPERTY_CODE_CORRELATION_DATA,
                               r->corr, (size_t)r->corr_len);
  /* A reply that cannot go out (buffer full, too large) is lost to the
   * caller, whose deadline then decides. */
  if (rc == 0)
    svc__mq_send(s->c, r->response_topic, msg, 1, 0, &p, NULL);
  MQTTProperties_free(&p);
  svc_msg_free(msg);
  mq_sreq_free(r);
}
