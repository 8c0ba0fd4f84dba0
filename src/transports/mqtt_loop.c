/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/mqtt.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

/* paho's threads meet the loop here. Each callback copies what it got into
 * an event, appends it to the conn's queue under the lock and wakes the
 * loop; it never waits for the loop, so it can never deadlock against
 * paho's global mutex or MQTTAsync_destroy(). The loop takes the whole
 * queue at once: wake-ups coalesce, so one may stand for many events.
 *
 * The wake-up is a write to an eventfd (a pipe off Linux) that the loop
 * polls, made only when the queue was empty: what uv_async_send() does,
 * without its handshake (the woken loop yields once instead, see
 * mq_wake_cb()). In libuv before 1.45 (Debian 12 has 1.44), a loop
 * thread woken by uv_async_send() spins, then yields, until the sending
 * thread marks the send done (libuv issues 2769 and 2949, fixed by pull
 * request 3879); a pinned process runs paho's threads on the loop's CPU, so
 * the woken loop preempted the sender and waited on it for every message:
 * about 11 us per hand-off against 4 us for the descriptor, measured with
 * two threads on the project's VM, and two hand-offs per MQTT round trip.
 *
 * The write is made with the lock held and only while the queue is open,
 * and the queue is closed (under the lock) before the descriptor is: a
 * write can therefore never race the descriptor's close. Events are
 * allocated with malloc(), which any thread may call. */

static void mq_wake(struct mqc *c) {
  ssize_t r;
#ifdef __linux__
  uint64_t one = 1;

  do
    r = write(c->wake_fd[1], &one, sizeof(one));
  while (r < 0 && errno == EINTR);
#else
  char one = 1;

  do
    r = write(c->wake_fd[1], &one, 1);
  while (r < 0 && errno == EINTR);
#endif
  /* A write that fails finds the counter or the pipe full: a wake-up is
   * pending anyway. */
  (void)r;
}

static void mq_push(struct mqc *c, struct mq_ev *ev) {
  uv_mutex_lock(&c->lock);
  if (!c->q_closed) {
    ev->next = NULL;
    if (c->q_tail != NULL) {
      c->q_tail->next = ev;
    } else {
      /* The loop consumes its wake-up before it takes the queue, so an
       * event put behind others is always taken with them. */
      c->q_head = ev;
      mq_wake(c);
    }
    c->q_tail = ev;
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
  free(ev->msg); /* One block: mq_msg_copy(). */
  free(ev->topic);
  free(ev);
}

static size_t mq_lenstr_len(const MQTTLenString *s) {
  return s->len > 0 && s->data != NULL ? (size_t)s->len : 0;
}

/* The bytes a property's strings take in a copy, terminators included. */
static size_t mq_prop_extra(const MQTTProperty *p) {
  switch (MQTTProperty_getType(p->identifier)) {
  case MQTTPROPERTY_TYPE_BINARY_DATA:
  case MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING:
    return mq_lenstr_len(&p->value.data) + 1;
  case MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR:
    return mq_lenstr_len(&p->value.data) + mq_lenstr_len(&p->value.value) + 2;
  default:
    return 0;
  }
}

/* Copies s to to, NUL-terminated, and points s there; returns what
 * follows. */
static char *mq_lenstr_copy(MQTTLenString *s, char *to) {
  size_t n = mq_lenstr_len(s);

  if (n > 0)
    memcpy(to, s->data, n);
  to[n] = '\0';
  s->data = to;
  s->len = (int)n;
  return to + n + 1;
}

/* m copied into one block of plain malloc(), freed with free(). paho
 * allocates through its own heap, which in Debian's build takes one
 * process-wide mutex and records every block in a tree: a message freed
 * on the loop thread (several blocks with properties) contended with
 * paho's receive thread for that mutex, and paho's tree held every
 * message waiting in the queue. Copied here, paho's message is freed at
 * once by the thread that made it. NULL when out of memory. */
static MQTTAsync_message *mq_msg_copy(const MQTTAsync_message *m) {
  int n = m->properties.count > 0 ? m->properties.count : 0;
  size_t len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
  size_t size = sizeof(*m) + (size_t)n * sizeof(MQTTProperty) + len + 1;
  MQTTAsync_message *c;
  char *p;
  int i;

  for (i = 0; i < n; i++)
    size += mq_prop_extra(&m->properties.array[i]);
  if ((c = malloc(size)) == NULL)
    return NULL;
  *c = *m;
  c->properties.array = n > 0 ? (MQTTProperty *)(c + 1) : NULL;
  c->properties.count = c->properties.max_count = n;
  p = (char *)(c + 1) + (size_t)n * sizeof(MQTTProperty);
  for (i = 0; i < n; i++) {
    MQTTProperty *q = &c->properties.array[i];

    *q = m->properties.array[i];
    switch (MQTTProperty_getType(q->identifier)) {
    case MQTTPROPERTY_TYPE_BINARY_DATA:
    case MQTTPROPERTY_TYPE_UTF_8_ENCODED_STRING:
      p = mq_lenstr_copy(&q->value.data, p);
      break;
    case MQTTPROPERTY_TYPE_UTF_8_STRING_PAIR:
      p = mq_lenstr_copy(&q->value.data, p);
      p = mq_lenstr_copy(&q->value.value, p);
      break;
    default:
      break;
    }
  }
  if (len > 0)
    memcpy(p, m->payload, len);
  p[len] = '\0';
  c->payload = p;
  c->payloadlen = (int)len;
  return c;
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

  if (ev != NULL && (ev->topic = malloc(n + 1)) != NULL &&
      (ev->msg = mq_msg_copy(m)) != NULL) {
    memcpy(ev->topic, topic, n);
    ev->topic[n] = '\0';
    mq_push(context, ev);
    ev = NULL;
  }
  /* Out of memory: the event is lost, which only QoS 0 allows; returning
   * 0 instead would make paho retry the delivery from its own thread in a
   * tight loop. */
  if (ev != NULL)
    svc__mq_ev_free(ev);
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

static void mq_wake_consume(struct mqc *c) {
  char buf[64];
  ssize_t r;

  /* An eventfd's counter resets in one read; a pipe is read dry. */
  do
    r = read(c->wake_fd[0], buf, sizeof(buf));
  while ((r > 0 && c->wake_fd[0] != c->wake_fd[1]) ||
         (r < 0 && errno == EINTR));
}

static void mq_wake_cb(uv_poll_t *h, int status, int events) {
  struct mqc *c = h->data;

  (void)status;
  (void)events;
  /* The thread that woke us shares this CPU in a pinned process, and we
   * preempted it inside mq_push(), lock held, often with more messages
   * to queue: yield so that it finishes and we take them in one batch.
   * Woken from another CPU, there is nothing to yield to and this returns
   * at once. Without it, W8's subscriber took one message per wake-up
   * and ran about a fifth slower than with the old uv_async_send(), whose
   * handshake ended in a yield too. */
  sched_yield();
  mq_wake_consume(c);
  svc__mq_drain(c);
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

static int mq_wake_open(struct mqc *c) {
#ifdef __linux__
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

  if (fd < 0)
    return uv_translate_sys_error(errno);
  c->wake_fd[0] = c->wake_fd[1] = fd;
  return 0;
#else
  uv_file fds[2];
  int rc = uv_pipe(fds, UV_NONBLOCK_PIPE, UV_NONBLOCK_PIPE);

  if (rc != 0)
    return rc;
  c->wake_fd[0] = fds[0];
  c->wake_fd[1] = fds[1];
  return 0;
#endif
}

static void mq_wake_close(struct mqc *c) {
  if (!c->wake_open)
    return;
  c->wake_open = 0;
  close(c->wake_fd[0]);
  if (c->wake_fd[1] != c->wake_fd[0])
    close(c->wake_fd[1]);
}

int svc__mq_queue_init(struct mqc *c) {
  int rc;

  rc = uv_mutex_init(&c->lock);
  if (rc != 0)
    return rc;
  c->lock_init = 1;
  rc = mq_wake_open(c);
  if (rc != 0)
    return rc;
  c->wake_open = 1;
  rc = uv_poll_init(c->ctx->loop, &c->wake, c->wake_fd[0]);
  if (rc != 0)
    return rc;
  c->wake.data = c;
  c->wake_init = 1;
  rc = uv_poll_start(&c->wake, UV_READABLE, mq_wake_cb);
  if (rc != 0)
    return rc;
  /* The handle keeps the loop alive while a client exists (as a connected
   * socket would), and only then. */
  uv_unref((uv_handle_t *)&c->wake);
  return 0;
}

static void mq_wake_closed(uv_handle_t *h) {
  struct mqc *c = h->data;

  mq_wake_close(c);
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
  if (c->wake_init) {
    c->wake_init = 0;
    uv_close((uv_handle_t *)&c->wake, mq_wake_closed);
    return;
  }
  mq_wake_close(c);
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
