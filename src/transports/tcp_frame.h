/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TCP_FRAME_H
#define SVC_TCP_FRAME_H

/* The frame codec of the svccomm wire protocol (docs/protocol.md): pure
 * functions from bytes to frames and back, with every limit checked. No
 * I/O and no connection state (id rules live in tcp_wire.c), so that the
 * fuzzer (tests/fuzz/) can drive it alone. */

#include "internal.h"

#define SVC__FRAME_VERSION 1
#define SVC__FRAME_HEADER 12
#define SVC__FRAME_HELLO_LEN 16
#define SVC__FRAME_MAX_ID 0x7fffffffu

enum svc__frame_type {
  SVC__F_HELLO = 0x01,
  SVC__F_REQUEST = 0x02,
  SVC__F_RESPONSE = 0x03,
  SVC__F_CANCEL = 0x04,
  SVC__F_STREAM_OPEN = 0x05,
  SVC__F_STREAM_ACCEPT = 0x06,
  SVC__F_DATA = 0x07,
  SVC__F_END = 0x08,
  SVC__F_RESET = 0x09,
  SVC__F_CREDIT = 0x0a,
  SVC__F_SUBSCRIBE = 0x0b,
  SVC__F_SUBACK = 0x0c,
  SVC__F_UNSUBSCRIBE = 0x0d,
  SVC__F_PUBLISH = 0x0e,
  SVC__F_PUBACK = 0x0f,
  SVC__F_EVENT = 0x10,
  SVC__F_PING = 0x11,
  SVC__F_PONG = 0x12,
  SVC__F_GOAWAY = 0x13,
  SVC__F_LAST = SVC__F_GOAWAY
};

/* Codes of RESET, SUBACK, PUBACK and GOAWAY. */
enum svc__frame_code {
  SVC__FC_NO_ERROR = 0,
  SVC__FC_PROTOCOL = 1,
  SVC__FC_INTERNAL = 2,
  SVC__FC_FLOW_CONTROL = 3,
  SVC__FC_REFUSED = 4,
  SVC__FC_CANCEL = 5,
  SVC__FC_LIMIT = 6,
  SVC__FC_UNAVAILABLE = 7,
  SVC__FC_NO_ROOM = 8,
  SVC__FC_INVALID = 9
};

#define SVC__FRAME_QOS_MASK 0x03
#define SVC__FRAME_RETAIN 0x04
/* The :trace pseudo-field: trace id (16), parent id (8), flags (1). */
#define SVC__FRAME_TRACE_LEN 25

/* What one side accepts; sent in HELLO. */
struct svc__frame_limits {
  uint32_t max_frame;
  uint32_t max_header_block;
  uint32_t max_headers;
  uint32_t max_streams;
  uint32_t features; /* SVC__FEATURE_* the sender accepts (0: a 16-byte
                      * HELLO, which announces none). */
};

/* HELLO feature bits (docs/protocol.md section 3). */
/* EVENT frames without :topic, whose topic is then the subscription's
 * filter (sent only for a filter without wildcards or $share). */
#define SVC__FEATURE_BARE_EVENTS 0x1u
/* The HELLO payload libsvccomm sends: the limits and the feature bits. */
#define SVC__FRAME_HELLO_SENT_LEN 20

extern const struct svc__frame_limits svc__frame_default_limits;
extern const struct svc__frame_limits svc__frame_minimum_limits;

/* A piece of the input buffer: not NUL-terminated, valid as long as the
 * bytes it was decoded from. */
struct svc__slice {
  const char *p;
  size_t len;
};

/* One decoded frame. */
struct svc__frame {
  uint8_t version;
  uint8_t type;
  uint8_t flags;
  uint32_t id;
  uint32_t length; /* Payload bytes. */

  /* Fixed payloads. */
  struct svc__frame_limits hello;
  uint32_t code;   /* RESET, SUBACK, PUBACK, GOAWAY. */
  uint32_t value;  /* CREDIT bytes, GOAWAY last_id. */
  uint8_t ping[8]; /* PING, PONG. hello and ping are only set for theirs. */
  struct svc__slice reason; /* GOAWAY. */

  /* Message blocks: pseudo-fields (len 0 and p NULL when absent). */
  struct svc__slice method, path, filter, topic;
  int has_timeout;
  uint64_t timeout_ms;
  int status;      /* RESPONSE: 0..16. */
  uint64_t window; /* STREAM_OPEN, STREAM_ACCEPT. */
  /* Headers, content type and body of a message block (the body is
   * copied); NULL for frames without one. Owned by the frame: free with
   * svc__frame_clear() unless taken (set to NULL). */
  svc_msg_t *msg;
};

/* svc__frame_decode() decodes the frame at the start of p[0..avail) with
 * the receiver's limits lim. Returns:
 *   0            a whole frame: *f filled, *consumed = its size;
 *   SVC_EAGAIN   not complete yet; *consumed = the whole frame's size once
 *                the header is in (so the caller can make room), else 0;
 *   SVC_EPROTO   a protocol error: *why says which (a static string);
 *   SVC_ENOMEM.
 * Checks everything sections 2 and 4 of docs/protocol.md ask of one frame
 * (version: 1, or >= 1 for HELLO) and the id rules that need no
 * connection state (id 0 where it must be, 31 bits), from the header alone,
 * so a bad header is refused before its payload arrives. Which ids are
 * open is the connection's business (tcp_client.c, tcp_server.c). */
int svc__frame_decode(const uint8_t *p, size_t avail,
                      const struct svc__frame_limits *lim, struct svc__frame *f,
                      size_t *consumed, const char **why);
void svc__frame_clear(struct svc__frame *f);

/* Large bodies are read into a buffer of their own instead of the read
 * buffer, so that the message takes them without a copy.
 * svc__frame_body_split() finds, in the bytes of an incomplete frame at p,
 * where its body starts: 0 with the header+block length in *head_len and
 * the body length in *body_len, or -1 when the frame has no body or its
 * block is not all there yet. svc__frame_decode_split() then decodes the
 * frame from head (head_len bytes) and body (body_len bytes allocated with
 * svc__malloc(), which it takes in every case). Same results as
 * svc__frame_decode(); SVC_EINVAL when the parts do not fit together. */
int svc__frame_body_split(const uint8_t *p, size_t avail, size_t *head_len,
                          size_t *body_len);
int svc__frame_decode_split(const uint8_t *head, size_t head_len, void *body,
                            size_t body_len,
                            const struct svc__frame_limits *lim,
                            struct svc__frame *f, const char **why);
/* The same for a body from another allocator, released with free_fn. */
int svc__frame_decode_split_fn(const uint8_t *head, size_t head_len, void *body,
                               size_t body_len, void (*free_fn)(void *body),
                               const struct svc__frame_limits *lim,
                               struct svc__frame *f, const char **why);

/* Encoding. A pseudo-field to write before a message's own headers. */
struct svc__frame_field {
  const char *name;
  const char *value;
  size_t value_len;
  size_t name_len; /* 0: strlen(name). SVC__FIELD() fills it in. */
};

/* A pseudo-field with a literal name, its length known at compile time. */
#define SVC__FIELD(lit, value, value_len) \
  ((struct svc__frame_field){(lit), (value), (value_len), sizeof(lit) - 1})

/* svc__frame_write_header() writes the 12-byte frame header. */
void svc__frame_write_header(uint8_t *p, uint8_t type, uint8_t flags,
                             uint32_t id, uint32_t length);

/* Size of the header block (without its 4-byte length) for the
 * pseudo-fields plus msg's headers and content type (msg may be NULL), and
 * its number of fields in *count; SIZE_MAX when a value is too long for
 * the wire. */
size_t svc__frame_block_size(const struct svc__frame_field *pseudo,
                             size_t npseudo, const svc_msg_t *msg,
                             size_t *count);
/* Writes the 4-byte block length and the block (block_size bytes, from
 * svc__frame_block_size()) at p; returns the bytes written. */
/* Writes the :trace field of t at p (SVC__FRAME_TRACE_FIELD bytes);
 * returns its size. */
#define SVC__FRAME_TRACE_FIELD (4 + 6 + SVC__FRAME_TRACE_LEN)
size_t svc__frame_put_trace(uint8_t *p, const svc_trace_t *t);
size_t svc__frame_write_block(uint8_t *p, const struct svc__frame_field *pseudo,
                              size_t npseudo, const svc_msg_t *msg,
                              size_t block_size);

static inline void svc__put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline uint32_t svc__get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}
static inline void svc__put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint16_t svc__get_u16(const uint8_t *p) {
  return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

/* Names for logs and errors. */
const char *svc__frame_type_name(unsigned type);
/* svc__frame_code_err() maps a wire code to a local error. */
int svc__frame_code_err(uint32_t code);

#endif /* SVC_TCP_FRAME_H */
