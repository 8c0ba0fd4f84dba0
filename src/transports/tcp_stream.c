/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp.h"

#include <stdio.h>

/* Stream frames, the same for both sides: the core keeps the flow-control
 * accounting, so this file only turns core operations into DATA, END,
 * CREDIT and RESET frames and incoming frames back into core reports. */

static struct svc__wire *stream_wire(struct svc_stream_s *s, uint32_t *id) {
  return s->server != NULL ? svc__tcps_stream_wire(s, id)
                           : svc__tcpc_stream_wire(s, id);
}

static void stream_forget(struct svc_stream_s *s) {
  if (s->server != NULL)
    svc__tcps_stream_forget(s);
  else
    svc__tcpc_stream_forget(s);
}

void svc__tcp_stream_accept(struct svc_stream_s *s) {
  uint32_t id;
  struct svc__wire *w = stream_wire(s, &id);
  struct svc__frame_field f[1];
  char num[24];

  if (w == NULL)
    return;
  snprintf(num, sizeof(num), "%llu", (unsigned long long)s->window);
  f[0] = SVC__FIELD(":window", num, strlen(num));
  if (svc__wire_send_block(w, SVC__F_STREAM_ACCEPT, 0, id, f, 1, NULL, 0) !=
      0) {
    stream_forget(s);
    svc__stream_on_reset(s, SVC_ECONNRESET);
  }
}

void svc__tcp_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  uint32_t id;
  struct svc__wire *w = stream_wire(s, &id);
  int rc;

  if (w == NULL) {
    svc_msg_free(msg);
    return;
  }
  /* The frame holds its own reference when it needs the body later. */
  rc = svc__wire_send_block(w, SVC__F_DATA, 0, id, NULL, 0, msg, 1);
  svc_msg_free(msg);
  if (rc != 0) {
    if (rc == SVC_EMSGSIZE)
      svc__wire_send_code(w, SVC__F_RESET, id, SVC__FC_CANCEL);
    stream_forget(s);
    svc__stream_on_reset(s, rc);
  }
}

void svc__tcp_stream_send_end(struct svc_stream_s *s) {
  uint32_t id;
  struct svc__wire *w = stream_wire(s, &id);

  if (w != NULL)
    svc__wire_send_fixed(w, SVC__F_END, 0, id, NULL, 0);
}

void svc__tcp_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  uint32_t id;
  struct svc__wire *w = stream_wire(s, &id);

  if (w == NULL || bytes == 0)
    return;
  while (bytes > 0) {
    uint32_t n = bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)bytes;
    svc__wire_send_code(w, SVC__F_CREDIT, id, n);
    bytes -= n;
  }
}

void svc__tcp_stream_send_reset(struct svc_stream_s *s) {
  uint32_t id;
  struct svc__wire *w = stream_wire(s, &id);

  if (w != NULL)
    svc__wire_send_code(w, SVC__F_RESET, id,
                        s->server != NULL && !s->accepted ? SVC__FC_REFUSED
                                                          : SVC__FC_CANCEL);
  stream_forget(s);
}

void svc__tcp_stream_release(struct svc_stream_s *s) {
  stream_forget(s);
}

int svc__tcp_stream_frame(struct svc_stream_s *s, struct svc__frame *f,
                          const char **why) {
  switch (f->type) {
  case SVC__F_STREAM_ACCEPT:
    if (s->server != NULL || s->open) {
      *why = "STREAM_ACCEPT twice or to the server";
      return SVC_EPROTO;
    }
    svc__stream_on_open(s, (size_t)f->window);
    return 0;
  case SVC__F_DATA:
  case SVC__F_END:
    if (s->remote_ended) {
      *why = "DATA or END after END";
      return SVC_EPROTO;
    }
    if (s->server == NULL && !s->open) {
      *why = "DATA or END before STREAM_ACCEPT";
      return SVC_EPROTO;
    }
    if (f->type == SVC__F_END) {
      svc__stream_on_end(s);
    } else {
      svc_msg_t *msg = f->msg;
      f->msg = NULL;
      svc__stream_on_data(s, msg);
    }
    return 0;
  case SVC__F_CREDIT:
    svc__stream_on_credit(s, f->value);
    return 0;
  case SVC__F_RESET:
  default:
    stream_forget(s);
    svc__stream_on_reset(s, f->code == SVC__FC_NO_ERROR
                                ? SVC_ECONNRESET
                                : svc__frame_code_err(f->code));
    return 0;
  }
}
