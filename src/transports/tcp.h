/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TCP_H
#define SVC_TCP_H

/* tcp:// and unix://, split by job: tcp_frame.c (codec), tcp_wire.c (one
 * connection), tcp_client.c (client verbs and the operations tables),
 * tcp_server.c (serving), tcp_stream.c (stream frames, both sides). */

#include "transports/tcp_idmap.h"
#include "transports/tcp_opts.h"
#include "transports/tcp_wire.h"

/* tcp_stream.c: stream operations for both sides, and incoming stream
 * frames (DATA, END, RESET, CREDIT; STREAM_ACCEPT on the client). */
void svc__tcp_stream_accept(struct svc_stream_s *s);
void svc__tcp_stream_send(struct svc_stream_s *s, svc_msg_t *msg);
void svc__tcp_stream_send_end(struct svc_stream_s *s);
void svc__tcp_stream_send_credit(struct svc_stream_s *s, size_t bytes);
void svc__tcp_stream_send_reset(struct svc_stream_s *s);
void svc__tcp_stream_release(struct svc_stream_s *s);
int svc__tcp_stream_frame(struct svc_stream_s *s, struct svc__frame *f,
                          const char **why);

/* Each side tells tcp_stream.c where a stream's frames go and how to
 * forget it (its id closes). */
struct svc__wire *svc__tcpc_stream_wire(struct svc_stream_s *s, uint32_t *id);
void svc__tcpc_stream_forget(struct svc_stream_s *s);
struct svc__wire *svc__tcps_stream_wire(struct svc_stream_s *s, uint32_t *id);
void svc__tcps_stream_forget(struct svc_stream_s *s);

/* tcp_server.c. The server's state (srv->tp). */
union svc__tcps_listener {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};
struct svc__tcps {
  struct svc_server_s *srv;
  struct svc__tcp_opts opts;
  /* Allocated apart: a failed svc_serve() frees srv at once, while the
   * loop owns a handle until its close callback. */
  union svc__tcps_listener *listener;
  int is_pipe;
  int listener_open;
  int finished;
  char *sock_path;        /* unix://: the file we created. */
  struct svc__list conns; /* struct tcps_conn.link */
  /* The frame header and header block of an EVENT for the last topic,
   * for events without headers (ts_send_event's fast path). */
  uint8_t ev_prefix[256];
  size_t ev_prefix_len; /* 0: none. */
  size_t ev_prefix_topic_len;
  int closing;
  struct svc__timer drain_timer;
};
#define SVC__TCPS_SIZE sizeof(struct svc__tcps)
int svc__tcps_serve(struct svc_server_s *srv);
void svc__tcps_serve_close(struct svc_server_s *srv);
void svc__tcps_reply(struct svc_request_s *req, svc_status_t status,
                     svc_msg_t *msg);

#endif /* SVC_TCP_H */
