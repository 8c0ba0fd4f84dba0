/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

#include <stdlib.h>

/* paho's threads meet the loop here. Each callback copies what it got into
 * an event, appends it to the conn's queue under the lock and wakes the
 * loop; it never waits for the loop, so it can never deadlock against
 * paho's global mutex or MQTTAsync_destroy(). The async callback takes the
 * whole queue at once: uv_async_send() coalesces, so one wake-up may stand
 * for many events.
 *
 * uv_async_send() is called with the lock held and only while the queue is
 * open, and the queue is closed (under the lock) before the async handle
 * is: a send can therefore never race the handle's close. Events are
 * allocated with malloc(), which any thread may call. */

static void mq_push(struct mqc *c, struct mq_ev *ev) {
  uv_mutex_lock(&c->lock);
  if (!c->q_closed) {
    ev->next = NULL;
    if (c->q_tail != NULL)
      c->q_tail->next = ev;
    else
      c->q_head = ev;
    c->q_tail = ev;
    uv_async_send(&c->async);
    ev = NULL;
  }
  uv_mutex_unlock(&c->lock);
  if (ev != NULL)
    svc__mq_ev_free(ev);
}

static struct mq_ev *mq_ev_new(enum mq_ev_type type) {
  struct mq_ev *ev = calloc(1, sizeof(*ev));

  if (ev != NULL)
    ev->type = type;
  return ev;
}

void svc__mq_ev_free(struct mq_ev *ev) {
  if (ev->msg != NULL)
    MQTTAsync_freeMessage(&ev->msg);
  free(ev->topic);
  free(ev);
}

/* ---- paho callbacks (paho's threads, or the loop thread inside
 * MQTTAsync_destroy()). */

static void mq_on_lost(void *context, char *cause) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_LOST);

  if (cause != NULL)
    MQTTAsync_free(cause);
  if (ev != NULL)
    mq_push(context, ev);
}

static int mq_on_msg(void *context, char *topic, int topic_len,
                     MQTTAsync_message *m) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_MSG);
  size_t n = topic_len > 0 ? (size_t)topic_len : strlen(topic);

  if (ev != NULL && (ev->topic = malloc(n + 1)) != NULL) {
    memcpy(ev->topic, topic, n);
    ev->topic[n] = '\0';
    ev->msg = m;
    m = NULL;
    mq_push(context, ev);
    ev = NULL;
  }
  /* Out of memory: the event is lost, which only QoS 0 allows; returning
   * 0 instead would make paho retry the delivery from its own thread in a
   * tight loop. */
  if (ev != NULL)
    free(ev);
  if (m != NULL)
    MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}

static void mq_on_connected(void *context, char *cause) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_CONNECTED);

  (void)cause; /* Owned by paho here. */
  if (ev != NULL) {
    ev->code = -1;
    mq_push(context, ev);
  }
}

static void mq_on_connect_ok(void *context, MQTTAsync_successData5 *r) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_CONNECTED);
  MQTTProperty *p;

  if (ev == NULL)
    return;
  ev->code = r != NULL ? r->alt.connect.sessionPresent : -1;
  p = r != NULL ? MQTTProperties_getProperty(&r->properties,
                                             MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)
                : NULL;
  /* No property means the protocol's default of 65535. */
  ev->value = p != NULL ? (int)p->value.integer2 : 65535;
  mq_push(context, ev);
}

static void mq_on_connect_ok3(void *context, MQTTAsync_successData *r) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_CONNECTED);

  if (ev == NULL)
    return;
  ev->code = r != NULL ? r->alt.connect.sessionPresent : -1;
  ev->value = 65535; /* MQTT 3.1.1 has no receive maximum. */
  mq_push(context, ev);
}

static void mq_on_connect_fail(void *context, MQTTAsync_failureData5 *r) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_CONNECT_FAIL);

  if (ev == NULL)
    return;
  ev->code = r != NULL ? r->code : MQTTASYNC_FAILURE;
  ev->value = r != NULL ? (int)r->reasonCode : 0;
  mq_push(context, ev);
}

static void mq_on_connect_fail3(void *context, MQTTAsync_failureData *r) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_CONNECT_FAIL);

  if (ev == NULL)
    return;
  ev->code = r != NULL ? r->code : MQTTASYNC_FAILURE;
  mq_push(context, ev);
}

static void mq_on_op_ok(void *context, MQTTAsync_successData5 *r) {
  struct mq_rec *rec = context;
  struct mq_ev *ev = mq_ev_new(MQ_EV_OP_OK);

  if (ev == NULL)
    return;
  ev->rec = rec;
  ev->code = r != NULL ? (int)r->reasonCode : 0;
  mq_push(rec->c, ev);
}

static void mq_on_op_fail(void *context, MQTTAsync_failureData5 *r) {
  struct mq_rec *rec = context;
  struct mq_ev *ev = mq_ev_new(MQ_EV_OP_FAIL);

  if (ev == NULL)
    return;
  ev->rec = rec;
  ev->code = r != NULL ? r->code : MQTTASYNC_FAILURE;
  ev->value = r != NULL ? (int)r->reasonCode : 0;
  mq_push(rec->c, ev);
}

/* MQTT 3.1.1 clients take the v3 callback shapes. */
static void mq_on_op_ok3(void *context, MQTTAsync_successData *r) {
  struct mq_rec *rec = context;
  struct mq_ev *ev = mq_ev_new(MQ_EV_OP_OK);

  if (ev == NULL)
    return;
  ev->rec = rec;
  /* A v3 SUBACK carries the granted QoS, 0x80 for a refusal. */
  ev->code = r != NULL && rec->kind == MQ_REC_SUB ? r->alt.qos : 0;
  mq_push(rec->c, ev);
}

static void mq_on_op_fail3(void *context, MQTTAsync_failureData *r) {
  struct mq_rec *rec = context;
  struct mq_ev *ev = mq_ev_new(MQ_EV_OP_FAIL);

  if (ev == NULL)
    return;
  ev->rec = rec;
  ev->code = r != NULL ? r->code : MQTTASYNC_FAILURE;
  mq_push(rec->c, ev);
}

static void mq_on_disc_ok(void *context, MQTTAsync_successData5 *r) {
  struct mq_ev *ev = mq_ev_new(MQ_EV_DISCONNECTED);

  (void)r;
  if (ev != NULL)
    mq_push(context, ev);
}

static void mq_on_disc_fail(void *context, MQTTAsync_failureData5 *r) {
  mq_on_disc_ok(context, NULL);
  (void)r;
}

static void mq_on_disc_ok3(void *context, MQTTAsync_successData *r) {
  (void)r;
  mq_on_disc_ok(context, NULL);
}

static void mq_on_disc_fail3(void *context, MQTTAsync_failureData *r) {
  (void)r;
  mq_on_disc_ok(context, NULL);
}

/* ---- Loop side. */

static void mq_async_cb(uv_async_t *h) {
  svc__mq_drain(h->data);
}

void svc__mq_drain(struct mqc *c) {
  struct mq_ev *ev;

  for (;;) {
    uv_mutex_lock(&c->lock);
    ev = c->q_head;
    c->q_head = c->q_tail = NULL;
    uv_mutex_unlock(&c->lock);
    if (ev == NULL)
      return;
    while (ev != NULL) {
      struct mq_ev *next = ev->next;
      svc__mq_handle(c, ev);
      svc__mq_ev_free(ev);
      ev = next;
    }
  }
}

int svc__mq_queue_init(struct mqc *c) {
  int rc;

  rc = uv_mutex_init(&c->lock);
  if (rc != 0)
    return rc;
  c->lock_init = 1;
  rc = uv_async_init(c->ctx->loop, &c->async, mq_async_cb);
  if (rc != 0)
    return rc;
  c->async.data = c;
  c->async_init = 1;
  /* The async handle keeps the loop alive while a client exists (as a
   * connected socket would), and only then. */
  uv_unref((uv_handle_t *)&c->async);
  return 0;
}

static void mq_async_closed(uv_handle_t *h) {
  struct mqc *c = h->data;

  uv_mutex_destroy(&c->lock);
  c->lock_init = 0;
  c->closed_fn(c);
}

void svc__mq_queue_close(struct mqc *c, void (*done)(struct mqc *c)) {
  if (c->lock_init) {
    uv_mutex_lock(&c->lock);
    c->q_closed = 1;
    uv_mutex_unlock(&c->lock);
    /* Whatever arrived before the flag (nothing can after it). */
    svc__mq_drain(c);
  }
  c->closed_fn = done;
  if (c->async_init) {
    c->async_init = 0;
    uv_close((uv_handle_t *)&c->async, mq_async_closed);
    return;
  }
  if (c->lock_init) {
    uv_mutex_destroy(&c->lock);
    c->lock_init = 0;
  }
  done(c);
}

int svc__mq_set_callbacks(struct mqc *c) {
  int rc = MQTTAsync_setCallbacks(c->cli, c, mq_on_lost, mq_on_msg, NULL);

  if (rc == MQTTASYNC_SUCCESS)
    rc = MQTTAsync_setConnected(c->cli, c, mq_on_connected);
  return rc;
}

void svc__mq_response_opts(struct mqc *c, struct mq_rec *rec,
                           MQTTAsync_responseOptions *ro) {
  MQTTAsync_responseOptions init = MQTTAsync_responseOptions_initializer;

  *ro = init;
  if (rec == NULL)
    return;
  ro->context = rec;
  if (svc__mq_v5(c)) {
    ro->onSuccess5 = mq_on_op_ok;
    ro->onFailure5 = mq_on_op_fail;
  } else {
    ro->onSuccess = mq_on_op_ok3;
    ro->onFailure = mq_on_op_fail3;
  }
}

void svc__mq_connect_callbacks(struct mqc *c, MQTTAsync_connectOptions *co) {
  co->context = c;
  if (svc__mq_v5(c)) {
    co->onSuccess5 = mq_on_connect_ok;
    co->onFailure5 = mq_on_connect_fail;
  } else {
    co->onSuccess = mq_on_connect_ok3;
    co->onFailure = mq_on_connect_fail3;
  }
}

void svc__mq_disconnect_callbacks(struct mqc *c,
                                  MQTTAsync_disconnectOptions *dopt) {
  dopt->context = c;
  if (svc__mq_v5(c)) {
    dopt->onSuccess5 = mq_on_disc_ok;
    dopt->onFailure5 = mq_on_disc_fail;
  } else {
    dopt->onSuccess = mq_on_disc_ok3;
    dopt->onFailure = mq_on_disc_fail3;
  }
}
