/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TCP_WIRE_H
#define SVC_TCP_WIRE_H

/* One connection of the svccomm wire protocol, either side: the socket
 * (TCP or Unix), the HELLO exchange, reading and decoding frames, gathered
 * writes (every frame queued in one loop turn goes out in one write),
 * keepalive, GOAWAY on errors and an orderly close. The client (tcp_client.c)
 * and the server (tcp_server.c) own wires and give them meaning. */

#include "transports/tcp_frame.h"

struct svc__wire;

struct svc__wire_opts {
  struct svc__frame_limits limits; /* What we accept (sent in HELLO). */
  uint64_t keepalive_ms;           /* Ping after this long silent; 0: off. */
  uint64_t handshake_ms;           /* Connect + HELLO must finish within. */
  size_t max_outbound;             /* Queued output before on_drain matters. */
  /* Stop reading while our output to the peer is over max_outbound (the
   * server does: a peer that does not read its answers is not served
   * more; a client never does, or two full sides would wait forever). */
  int pause_when_full;
};

struct svc__wire_cbs {
  /* A frame other than HELLO, PING and PONG (which the wire answers), in
   * order. Return 0, or SVC_EPROTO (with *why) to fail the connection with
   * a PROTOCOL GOAWAY, or another error to close it. Message blocks: take
   * f->msg (set it to NULL) to keep it. */
  int (*on_frame)(struct svc__wire *w, struct svc__frame *f, const char **why);
  /* The peer's HELLO arrived: w->peer holds its limits. */
  void (*on_ready)(struct svc__wire *w);
  /* Queued output fell back under max_outbound. */
  void (*on_drain)(struct svc__wire *w);
  /* Once: the connection is over (err: why). The owner ends everything it
   * had on it and forgets w, which frees itself later. */
  void (*on_down)(struct svc__wire *w, int err);
  /* The handles are closed; w is freed when this returns. Optional. */
  void (*on_closed)(struct svc__wire *w);
};

/* Reasons to stop reading; reading resumes when none is left. */
#define SVC__WIRE_PAUSE_OUTBOUND 1u /* Our output to this peer is full. */
#define SVC__WIRE_PAUSE_OWNER 2u    /* The owner is waiting for room. */

struct svc__wire {
  svc_ctx_t *ctx;
  const struct svc__wire_cbs *cbs;
  void *owner;
  struct svc__list link; /* The owner's list. */
  struct svc__wire_opts opts;
  struct svc__frame_limits peer; /* Peer's limits once ready. */
  int is_pipe;
  int ready; /* Peer's HELLO received. */
  int down;  /* on_down reported. */
  int goaway_received;
  uint32_t goaway_last_id;
  size_t out_bytes;
  unsigned paused;
  void *priv; /* The wire's own state (tcp_wire.c). */
};

/* svc__wire_new() creates an unconnected wire. NULL when out of memory. */
struct svc__wire *svc__wire_new(svc_ctx_t *ctx, int is_pipe,
                                const struct svc__wire_opts *opts,
                                const struct svc__wire_cbs *cbs, void *owner);
/* svc__wire_connect() resolves host (or uses path for Unix sockets) and
 * connects; on success the wire sends HELLO and on_ready follows; on
 * failure on_down. Returns 0 or an immediate error (then nothing follows
 * and the caller closes the wire). */
int svc__wire_connect(struct svc__wire *w, const char *host, int port,
                      const char *path);
/* svc__wire_accept() accepts a pending connection on server. 0 or error. */
int svc__wire_accept(struct svc__wire *w, uv_stream_t *server);

/* Queue one frame. A message block is built from pseudo-fields and msg's
 * headers and content type, with msg's body when with_body. Returns 0,
 * SVC_EMSGSIZE when the peer's limits refuse it (nothing queued),
 * SVC_ENOTCONN when the wire is down, or SVC_ENOMEM. */
int svc__wire_send_block(struct svc__wire *w, uint8_t type, uint8_t flags,
                         uint32_t id, const struct svc__frame_field *pseudo,
                         size_t npseudo, const svc_msg_t *msg, int with_body);
int svc__wire_send_fixed(struct svc__wire *w, uint8_t type, uint8_t flags,
                         uint32_t id, const void *payload, size_t len);
/* svc__wire_send_prefixed() queues a frame made of prefix (a frame header
 * and header block, prefix_len bytes) with type, flags, id and length set
 * here, followed by body: a frame encoded once and reused. The caller
 * checks the peer's header limits; the frame size is checked here
 * (SVC_EMSGSIZE). */
int svc__wire_send_prefixed(struct svc__wire *w, const uint8_t *prefix,
                            size_t prefix_len, uint8_t flags, uint32_t id,
                            const void *body, size_t body_len);
int svc__wire_send_code(struct svc__wire *w, uint8_t type, uint32_t id,
                        uint32_t code);
int svc__wire_send_goaway(struct svc__wire *w, uint32_t last_id, uint32_t code,
                          const char *reason);

/* svc__wire_close() ends the connection: err is what on_down reports.
 * With flush, queued output (a GOAWAY, last replies) is written first, for
 * at most a few seconds. Idempotent. */
void svc__wire_close(struct svc__wire *w, int err, int flush);
/* svc__wire_fail(): a protocol error: GOAWAY(PROTOCOL, why), then close. */
void svc__wire_fail(struct svc__wire *w, const char *why);

void svc__wire_pause(struct svc__wire *w, unsigned reason);
void svc__wire_resume(struct svc__wire *w, unsigned reason);

#endif /* SVC_TCP_WIRE_H */
