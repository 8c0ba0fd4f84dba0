/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <strings.h>

/* The registry of backends, chosen at build time. No dlopen: a backend is
 * in the library or it is not, and svc_call() says SVC_ESCHEME when not. */

extern const struct svc__transport svc__transport_inproc;
#if SVC_WITH_TCP
extern const struct svc__transport svc__transport_tcp;
extern const struct svc__transport svc__transport_unix;
#endif
#if SVC_WITH_HTTP
extern const struct svc__transport svc__transport_http;
extern const struct svc__transport svc__transport_https;
#endif
#if SVC_WITH_MQTT
extern const struct svc__transport svc__transport_mqtt;
extern const struct svc__transport svc__transport_mqtts;
#endif

static const struct svc__transport *const transports[] = {
  &svc__transport_inproc,
#if SVC_WITH_TCP
  &svc__transport_tcp,
  &svc__transport_unix,
#endif
#if SVC_WITH_HTTP
  &svc__transport_http,
  &svc__transport_https,
#endif
#if SVC_WITH_MQTT
  &svc__transport_mqtt,
  &svc__transport_mqtts,
#endif
};

#ifndef NDEBUG
/* The members every backend must have, and the pairs that go together. */
static void transport_check(const struct svc__transport *t) {
  assert(t->scheme != NULL && t->init != NULL && t->close != NULL);
  assert((t->call == NULL) == (t->call_abort == NULL));
  assert(t->stream_open == NULL ||
         (t->stream_send != NULL && t->stream_send_end != NULL &&
          t->stream_send_credit != NULL && t->stream_send_reset != NULL &&
          t->stream_release != NULL));
  assert(t->serve == NULL || (t->serve_close != NULL && t->reply != NULL));
  /* A backend that serves streams must be able to accept them. */
  assert(t->serve == NULL || t->stream_open == NULL ||
         t->stream_accept != NULL);
  assert(t->subscribe == NULL || t->unsubscribe != NULL);
  (void)t;
}
#endif

const struct svc__transport *svc__transport_find(const char *scheme) {
  size_t i;

  for (i = 0; i < sizeof(transports) / sizeof(transports[0]); i++) {
    if (strcasecmp(transports[i]->scheme, scheme) == 0) {
#ifndef NDEBUG
      transport_check(transports[i]);
#endif
      return transports[i];
    }
  }
  return NULL;
}
