/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_HTTP_SERVER_H
#define SVC_HTTP_SERVER_H

/* The serving side of http://, split by job:
 * - http_server_parse.c: one connection's request parser on http-parser,
 *   with our limits; bytes in, requests or an error answer out, no sockets
 *   (so it can be fuzzed: tests/fuzz/fuzz_http_request.c).
 * - http_server_conn.c: one connection: reads, pipelined answers in
 *   order, timeouts, calls handed to the core's routes.
 * - http_server_hub.c: the server's topic hub over HTTP: POST publishes,
 *   GET with Accept: text/event-stream is a Server-Sent Events stream.
 * - http_server_stream.c: streams accepted over a chunked request.
 * - http_server.c: options, the listener, the operations.
 * docs/http.md is the wire contract. */

#include <http_parser.h>

#include "transports/http.h"

/* ---- Options, from the serve URI's query ("http://h:0?max_body=1024"). */
struct svc__https_opts {
  size_t max_header_bytes;    /* Request line plus headers: 431. */
  size_t max_headers;         /* Header lines: 431. */
  size_t max_url;             /* Request-target bytes: 414. */
  uint64_t max_body;          /* Body bytes of a call or publish: 413. */
  uint64_t header_timeout_ms; /* From a request's first byte to its
                               * headers' end: 408 and close. */
  uint64_t body_timeout_ms;   /* Longest pause inside a body: 408. */
  uint64_t idle_timeout_ms;   /* Keep-alive connection with nothing to do:
                               * closed silently. */
  size_t max_conns;           /* More are answered 503 and closed. */
  size_t max_pipeline;        /* Requests read ahead of their answers. */
  char topics[128];           /* Hub prefix, "/" ... "/". */
  size_t sse_history;         /* Events kept for Last-Event-ID. */
  uint64_t sse_ping_ms;       /* ": ping" comment period (0: none). */
  size_t max_outbound;        /* Unsent bytes per SSE connection. */
};

/* Fills o with the defaults, then applies query (may be NULL). 0, or
 * SVC_EINVAL for an unknown name or a malformed or out-of-range value. */
int svc__https_opts_parse(const char *query, struct svc__https_opts *o);

/* ---- The request parser (http_server_parse.c). */
struct svc__hparse;

enum svc__hp_phase {
  SVC__HP_IDLE, /* Between requests. */
  SVC__HP_HEAD, /* Request line and headers arriving. */
  SVC__HP_BODY  /* Headers done, body arriving. */
};

/* What on_head answers for a request whose headers are complete. */
#define SVC__HP_BUFFER 0 /* Collect the body (up to max_body). */
#define SVC__HP_STREAM 1 /* Pass the body to on_body as it comes. */

struct svc__hp_cbs {
  /* The headers are complete: SVC__HP_BUFFER, SVC__HP_STREAM, or an HTTP
   * error code (>= 400) that ends parsing with that answer. */
  int (*on_head)(struct svc__hparse *hp);
  /* Streamed body bytes; chunk_end marks the end of one chunk (of a
   * chunked body). 0, or an HTTP error code. */
  int (*on_body)(struct svc__hparse *hp, const char *p, size_t n);
  int (*on_chunk_end)(struct svc__hparse *hp);
};

struct svc__hparse {
  http_parser p;
  const struct svc__hp_cbs *cbs;
  void *owner;
  size_t max_header_bytes;
  size_t max_headers;
  size_t max_url;
  uint64_t max_body;

  enum svc__hp_phase phase;
  int complete; /* A whole request was read: take it, then next(). */
  int err_code; /* Nonzero: parsing ended; answer this and close. */
  const char *err_text;
  int keep_alive; /* Set when complete. */
  int upgrade;    /* Upgrade or CONNECT: answer, then close. */
  int mode;       /* SVC__HP_BUFFER or SVC__HP_STREAM. */

  /* The request being read: "url\0name\0value\0..." in buf. */
  char *buf;
  size_t len;
  size_t cap;
  size_t url_len;
  size_t *hoff; /* Name and value offsets, two per header. */
  size_t nheaders;
  size_t hcap;
  int hstate; /* What the last text callback appended. */
  size_t head_bytes;
  size_t head_raw;
  char *body;
  size_t body_len;
  size_t body_cap;
  uint64_t chunk_left; /* Streamed chunked body: this chunk's size. */
  uint64_t declared;   /* Content-Length, or UINT64_MAX. */
};

/* Sets no limits: the caller sets max_* afterwards. */
void svc__hp_init(struct svc__hparse *hp, const struct svc__hp_cbs *cbs,
                  void *owner);
void svc__hp_free(struct svc__hparse *hp);
/* Feeds len bytes; returns how many were used. Afterwards hp->complete
 * (a request is ready; the rest of the bytes are for the next one) or
 * hp->err_code may be set; otherwise everything was used. */
size_t svc__hp_feed(struct svc__hparse *hp, const char *data, size_t len);
/* Forgets the complete request and goes on to the next one. */
void svc__hp_next(struct svc__hparse *hp);
/* The request: method name, request-target, headers in order. */
const char *svc__hp_method(const struct svc__hparse *hp);
const char *svc__hp_url(const struct svc__hparse *hp);
size_t svc__hp_nheaders(const struct svc__hparse *hp);
void svc__hp_header(const struct svc__hparse *hp, size_t i, const char **name,
                    const char **value);
/* First header named name (case-insensitive), or NULL. */
const char *svc__hp_get(const struct svc__hparse *hp, const char *name);
/* Content-Length of the request, or UINT64_MAX (none, or chunked). */
uint64_t svc__hp_content_length(const struct svc__hparse *hp);
/* Hands the buffered body over (svc__free()); *len its size. */
char *svc__hp_take_body(struct svc__hparse *hp, size_t *len);

/* Builds the message of a request: headers except framing, hop-by-hop and
 * our own control headers (svc__http_is_control()), Content-Type as the
 * content type, and body (taken; may be NULL). NULL with *code set to an
 * HTTP error (431 for headers a message cannot hold, 500 for memory). */
svc_msg_t *svc__hp_message(const struct svc__hparse *hp, char *body,
                           size_t body_len, int *code);
/* Nonzero for headers that never become message headers. */
int svc__http_is_control(const char *name);

/* ---- The server (srv->tp points at it). */
struct svc__hs_conn;

struct svc__hs_event {
  uint64_t id;
  char *topic;
  svc_msg_t *msg;
};

struct svc__https {
  struct svc_server_s *srv;
  struct svc__https_opts opts;
  uv_tcp_t *listener;
  int listener_open;
  struct svc__list conns; /* struct svc__hs_conn.link */
  size_t nconns;          /* Served (not refused) connections. */
  size_t nrefused;        /* Being answered 503. */
  int closing;
  int finished;

  /* The hub over HTTP (http_server_hub.c). */
  struct svc__hub_sink recorder; /* "#": numbers and keeps every event. */
  int recorder_added;
  uint64_t last_id;
  svc_msg_t *last_msg; /* Held, so that its address is not reused. */
  struct svc__hs_event *hist;
  size_t hist_head;
  size_t hist_len;
  size_t hist_bytes;
};

/* What the request being read is. */
#define SVC__HSK_CALL 0
#define SVC__HSK_PUB 1
#define SVC__HSK_SSE 2
#define SVC__HSK_STREAM 3

enum svc__hs_mode { SVC__HS_HTTP, SVC__HS_SSE, SVC__HS_STREAM };

struct svc__hs_conn {
  struct svc__list link;
  struct svc__https *hs;
  uv_tcp_t tcp;
  struct svc__hparse hp;
  enum svc__hs_mode mode;
  char *in; /* Bytes read and not parsed yet. */
  size_t in_len;
  size_t in_cap;
  struct svc__list reqs; /* struct svc__hs_req.link, in arrival order */
  size_t nreqs;
  size_t out_bytes; /* Written, not yet confirmed. */
  size_t nwrites;
  struct svc__timer timer;
  struct svc__task abort_task; /* A failed write ends the connection on the
                                * next tick, not inside whoever wrote (a
                                * hub delivering to many sinks). */
  struct svc__task wrote_task; /* After writes that finished at once. */
  size_t wrote_credit;         /* Their stream credit, not yet returned. */
  uint64_t since;              /* When the current wait began (timeouts). */
  unsigned reading : 1;
  unsigned closing : 1;   /* No more requests; close once answered. */
  unsigned shutting : 1;  /* uv_shutdown started. */
  unsigned closed : 1;    /* uv_close called. */
  unsigned refused : 1;   /* Over max_conns: answered 503. */
  unsigned head_only : 1; /* The request being read is HEAD. */
  unsigned draining : 1;  /* Shut down: reading until the peer's EOF. */
  unsigned in_process : 1;
  int kind;             /* SVC__HSK_* of the request being read. */
  uint64_t req_timeout; /* Its Svc-Timeout, or UINT64_MAX. */
  uint64_t closing_since;
  uv_shutdown_t shut;

  /* SSE (http_server_hub.c). */
  struct svc__hub_sink sink;
  int sink_added;
  uint64_t sse_sent_id; /* Highest event id written. */
  struct svc__timer ping;

  /* A stream (http_server_stream.c). */
  struct svc_stream_s *stream;
  char *chunk; /* Bytes of the data message being gathered. */
  size_t chunk_len;
  struct svc__list pending; /* struct svc__hs_pending.link, not yet
                             * handed to the core (window full). */
  size_t pending_bytes;
  size_t outstanding; /* Handed to the core, credit not returned. */
  int body_ended;     /* The request body ended: stream end is due. */
  int end_given;
};

/* An answer in the connection's order: a call waiting for its handler, a
 * publish waiting for the hub, or a ready answer. */
struct svc__hs_req {
  struct svc__list link;
  struct svc__hs_conn *c; /* NULL once the connection went away. */
  struct svc_request_s *req;
  char *out; /* The ready answer (head and body). */
  size_t out_len;
  int ready;
  int head_only;   /* HEAD: the body is not sent. */
  int close_after; /* Connection: close. */
  int http10_keep; /* HTTP/1.0 with keep-alive: say so. */
};

/* A growing byte buffer for answers and events; oom remembers a failed
 * allocation so that building goes on unchecked and is checked once. */
struct svc__hs_buf {
  char *p;
  size_t len;
  size_t cap;
  int oom;
};
void svc__hs_buf_add(struct svc__hs_buf *b, const void *p, size_t n);
void svc__hs_buf_adds(struct svc__hs_buf *b, const char *s);
void svc__hs_buf_addf(struct svc__hs_buf *b, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* http_server.c: ends serve_close once nothing is left. */
void svc__hs_maybe_finish(struct svc__https *hs);

/* http_server_conn.c */
void svc__hs_accept(struct svc__https *hs);
void svc__hs_conn_abort(struct svc__hs_conn *c);
/* Queues req in c's answer order. */
struct svc__hs_req *svc__hs_req_new(struct svc__hs_conn *c);
/* The complete request's message (*msg, taken from the parser) and its
 * answer slot, with the connection's keep-alive choice on it; NULL when
 * either fails, after the connection was answered (431, 400 or 500) and
 * set to close. */
struct svc__hs_req *svc__hs_req_take(struct svc__hs_conn *c,
                                     svc_msg_t **msg);
/* Makes hr's answer: code, Svc-Status for non-OK, extra header lines
 * (each ending in CRLF, may be NULL), message headers and body (borrowed;
 * may be NULL) or text. Then sends what is in order. */
void svc__hs_req_answer(struct svc__hs_req *hr, int code, svc_status_t status,
                        const char *extra, const svc_msg_t *msg,
                        const char *text);
/* Sends ready answers in order. */
void svc__hs_flush(struct svc__hs_conn *c);
/* Writes buf (a svc__malloc() block, taken), len bytes; credit is given
 * back to c's stream once the write is done. 0, or a negative error after
 * which the connection is being aborted. */
int svc__hs_send(struct svc__hs_conn *c, char *buf, size_t len, size_t credit);
/* An answer that ends the connection (408, 400...), after the answers
 * before it. */
void svc__hs_fail(struct svc__hs_conn *c, int code, const char *text);
/* Re-evaluates reading and parsing (after a window or queue changed). */
void svc__hs_process(struct svc__hs_conn *c);
/* Closes once everything queued is written. */
void svc__hs_close_soon(struct svc__hs_conn *c);
const char *svc__http_reason(int code);

/* http_server_hub.c */
int svc__hs_hub_init(struct svc__https *hs);
void svc__hs_hub_free(struct svc__https *hs);
/* Handles a request under the topics prefix whose headers are complete:
 * returns SVC__HP_BUFFER, or an HTTP error code. *sse is set for an SSE
 * subscription (started once the request is complete). */
int svc__hs_hub_head(struct svc__hs_conn *c, int *sse);
/* The complete request: publish, or start the SSE stream. */
void svc__hs_hub_request(struct svc__hs_conn *c, int sse);
void svc__hs_sse_end(struct svc__hs_conn *c);
void svc__hs_sse_drained(struct svc__hs_conn *c);

/* http_server_stream.c */
int svc__hs_stream_head(struct svc__hs_conn *c);
int svc__hs_stream_body(struct svc__hs_conn *c, const char *p, size_t n);
int svc__hs_stream_chunk_end(struct svc__hs_conn *c);
void svc__hs_stream_body_end(struct svc__hs_conn *c);
/* Nonzero while the stream's window is full (stop reading). */
int svc__hs_stream_blocked(const struct svc__hs_conn *c);
void svc__hs_stream_gone(struct svc__hs_conn *c);

#endif /* SVC_HTTP_SERVER_H */
