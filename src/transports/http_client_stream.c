/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/http_client.h"

/* Streams over http://: one request whose body is a chunked upload of what
 * this side writes, answered by a streaming (chunked) response of what the
 * server writes (docs/http.md). HTTP has no credit frames, so the core's
 * flow control rides on libcurl's pause mechanism and TCP's own:
 * - sending: a message's credit comes back once libcurl has taken its
 *   bytes; libcurl takes them only as fast as the socket drains, so a slow
 *   server slows our writer.
 * - receiving: data past our window is refused with CURL_WRITEFUNC_PAUSE,
 *   which stops reading the socket until the application consumes. */

#define DEFAULT_PEER_WINDOW (256u * 1024)

struct upq {
  struct upq *next;
  svc_msg_t *msg;
};

struct hstream {
  struct svc_stream_s *s;   /* NULL once released: the transfer lingers
                             * only to deliver what this side sent. */
  struct svc__hx *x;        /* NULL once the transfer has ended. */
  struct upq *head;         /* Messages not yet taken by libcurl. */
  struct upq **tail;
  size_t off;               /* Bytes of head already taken. */
  int end_queued;           /* svc_stream_end(): finish the upload. */
  int upload_done;          /* The last chunk went to libcurl. */
  int opened;
  int refused;              /* A final answer other than 200 came first. */
  int remote_ended;         /* The response's end (trailer) was seen. */
  int recv_over;            /* The response stopped without that end. */
};

static void upq_free(struct hstream *h) {
  while (h->head != NULL) {
    struct upq *q = h->head;

    h->head = q->next;
    svc_msg_free(q->msg);
    svc__free(q);
  }
  h->tail = &h->head;
}

static void hstream_free(struct hstream *h) {
  if (h->x != NULL)
    svc__hx_cancel(h->x);
  upq_free(h);
  svc__free(h);
}

/* One message per read, so that each goes out as one HTTP chunk and the
 * server sees the writer's message boundaries (a message larger than
 * libcurl's upload buffer arrives in parts). */
static size_t on_read(char *buf, size_t size, size_t n, void *arg) {
  struct svc__hx *x = arg;
  struct hstream *h = x->owner;
  struct upq *q;
  const char *body;
  size_t len;
  size_t take;

  if (h == NULL || h->refused || h->recv_over)
    return CURL_READFUNC_ABORT; /* Nobody will read the rest. */
  q = h->head;
  if (q == NULL) {
    if (h->end_queued) {
      h->upload_done = 1;
      return 0;
    }
    x->paused_send = 1;
    return CURL_READFUNC_PAUSE;
  }
  body = svc_msg_body(q->msg, &len);
  take = len - h->off < size * n ? len - h->off : size * n;
  memcpy(buf, body + h->off, take);
  h->off += take;
  if (h->off == len) {
    size_t cost = svc__msg_cost(q->msg);

    h->head = q->next;
    if (h->head == NULL)
      h->tail = &h->head;
    h->off = 0;
    svc_msg_free(q->msg);
    svc__free(q);
    if (h->s != NULL)
      svc__stream_on_credit(h->s, cost);
  }
  /* An empty message has no bytes to send: take the next one instead of
   * returning 0, which would end the body. */
  if (take == 0)
    return on_read(buf, size, n, arg);
  return take;
}

/* The trailer a libsvccomm server ends a stream's response with: the
 * server's side has ended, while ours may still be sending (HTTP/1.1
 * allows it: the request body goes on after the response). */
static int is_end_trailer(const char *data, size_t len) {
  static const char name[] = SVC__HTTP_H_STATUS ":";
  size_t n = sizeof(name) - 1;
  size_t i;

  if (len < n)
    return 0;
  for (i = 0; i < n; i++) {
    char c = data[i];

    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != (name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a'
                                               : name[i]))
      return 0;
  }
  return 1;
}

static size_t on_stream_header(char *data, size_t size, size_t n,
                               void *arg) {
  struct svc__hx *x = arg;
  struct hstream *h = x->owner;
  size_t len = size * n;
  size_t rc;
  const char *w;
  size_t window = DEFAULT_PEER_WINDOW;

  if (h != NULL && h->opened && !x->in_headers && !h->remote_ended &&
      is_end_trailer(data, len)) {
    h->remote_ended = 1;
    if (h->s != NULL)
      svc__stream_on_end(h->s);
    return len;
  }
  rc = svc__httpc_on_header(data, size, n, arg);
  if (rc != len || x->in_headers || x->code < 200 || h == NULL ||
      h->opened || h->refused)
    return rc;
  if (x->code != 200) {
    /* Refused: stop the upload (libcurl waits for it otherwise) and let
     * the transfer end with the answer. */
    h->refused = 1;
    svc__hx_resume(x);
    return rc;
  }
  w = svc_msg_header_get(x->resp, SVC__HTTP_H_WINDOW);
  if (w != NULL) {
    char *end;
    unsigned long long v = strtoull(w, &end, 10);

    if (end != w && *end == '\0' && v > 0 && v <= SIZE_MAX)
      window = (size_t)v;
  }
  h->opened = 1;
  svc__stream_on_open(h->s, window);
  return rc;
}

static size_t on_stream_data(char *data, size_t size, size_t n, void *arg) {
  struct svc__hx *x = arg;
  struct hstream *h = x->owner;
  struct svc_stream_s *s;
  size_t len = size * n;
  svc_msg_t *msg;

  if (h == NULL || !h->opened || h->s == NULL)
    return len; /* A refusal's body, or nobody left to read it. */
  s = h->s;
  /* Past our window: leave the bytes with libcurl, which stops reading
   * until stream_send_credit says the application consumed. A lone
   * message larger than the window still goes in, as the core allows. */
  if (s->rcvq_bytes + s->unacked > 0 &&
      s->rcvq_bytes + s->unacked + len > s->window) {
    x->paused_recv = 1;
    return CURL_WRITEFUNC_PAUSE;
  }
  msg = svc_msg_new(data, len);
  if (msg == NULL) {
    x->fail_err = SVC_ENOMEM;
    return 0;
  }
  svc__stream_on_data(s, msg);
  return len;
}

/* libcurl stopped watching the socket. With our upload paused and the
 * download not paused by us, the response is over (the server closed, or a
 * foreign server finished without our end trailer), and libcurl would wait
 * for the upload forever: end the transfer. */
static void stream_unwatched(struct svc__hx *x) {
  struct hstream *h = x->owner;

  if (!x->paused_send || x->paused_recv || h->remote_ended || h->refused)
    return;
  h->recv_over = 1;
  svc__hx_resume(x);
}

static void stream_done(struct svc__hx *x, CURLcode rc) {
  struct hstream *h = x->owner;
  struct svc_stream_s *s = h->s;
  long code = x->code;
  svc_status_t status;
  int err;

  h->x = NULL;
  if (s == NULL) {
    /* Released: what this side sent has been delivered, or cannot be. */
    svc__hx_free(x);
    hstream_free(h);
    return;
  }
  if (rc == CURLE_OK && h->opened) {
    svc__hx_free(x);
    if (!h->remote_ended)
      svc__stream_on_end(s);
    /* libcurl ends a transfer whose response is complete only once the
     * upload is done too; if it did not, what this side still had to
     * send is lost, and it must know. */
    if (!h->upload_done) {
      s->tp = NULL;
      hstream_free(h);
      svc__stream_on_reset(s, SVC_EPIPE);
    }
    return;
  }
  if (!h->opened && code >= 300) {
    /* Refused before it opened: no route (404), the server closing or
     * full (503, 429), or not a libsvccomm server. */
    if (code == 404)
      err = SVC_ECONNRESET;
    else if (code == 503 || code == 429)
      err = SVC_ECONNREFUSED;
    else
      err = SVC_EPROTO;
  } else if (h->recv_over) {
    err = SVC_ECONNRESET; /* The response stopped before its end. */
  } else if (rc == CURLE_OK) {
    err = SVC_EPROTO; /* A 2xx other than 200: not a stream. */
  } else {
    svc__httpc_map_error(x, rc, &status, &err);
  }
  svc__hx_free(x);
  s->tp = NULL;
  hstream_free(h);
  svc__stream_on_reset(s, err);
}

int svc__httpc_stream_open(struct svc__conn *conn, struct svc_stream_s *s) {
  struct svc__httpc *hc = svc__httpc_of(conn);
  struct hstream *h;
  struct svc__hx *x;
  char *url;
  size_t elen = strlen(conn->endpoint);
  size_t plen = strlen(s->path);
  char num[24];
  int rc;

  url = svc__malloc(elen + plen + 2);
  if (url == NULL)
    return SVC_ENOMEM;
  memcpy(url, conn->endpoint, elen);
  url[elen] = '/';
  memcpy(url + elen + 1, s->path, plen + 1);
  h = svc__calloc(1, sizeof(*h));
  if (h == NULL) {
    svc__free(url);
    return SVC_ENOMEM;
  }
  h->s = s;
  h->tail = &h->head;
  x = svc__hx_new(hc, SVC__HX_STREAM, h, url);
  if (x == NULL) {
    svc__free(h);
    return SVC_ENOMEM;
  }
  h->x = x;
  curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
  curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
  curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_stream_header);
  curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_stream_data);
  curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
  rc = svc__httpc_add_header(&x->hdrs, "Transfer-Encoding", "chunked");
  if (rc == 0)
    rc = svc__httpc_add_header(&x->hdrs, "Expect", NULL);
  if (rc == 0)
    rc = svc__httpc_add_header(&x->hdrs, SVC__HTTP_H_STREAM, "1");
  if (rc == 0) {
    snprintf(num, sizeof(num), "%zu", s->window);
    rc = svc__httpc_add_header(&x->hdrs, SVC__HTTP_H_WINDOW, num);
  }
  if (rc == 0 && svc_msg_content_type(s->open_headers) == NULL)
    rc = svc__httpc_add_header(&x->hdrs, "Content-Type",
                               "application/octet-stream");
  if (rc == 0)
    rc = svc__httpc_add_msg_headers(&x->hdrs, s->open_headers);
  x->done = stream_done;
  x->unwatched = stream_unwatched;
  s->tp = h;
  if (rc == 0)
    rc = svc__hx_start(x);
  if (rc != 0) {
    s->tp = NULL;
    h->x = NULL;
    svc__hx_free(x);
    hstream_free(h);
  }
  return rc;
}

void svc__httpc_stream_send(struct svc_stream_s *s, svc_msg_t *msg) {
  struct hstream *h = s->tp;
  struct upq *q;

  if (h == NULL || h->x == NULL || h->end_queued) {
    svc_msg_free(msg);
    return;
  }
  q = svc__calloc(1, sizeof(*q));
  if (q == NULL) {
    svc_msg_free(msg);
    svc_stream_reset(s);
    return;
  }
  q->msg = msg;
  *h->tail = q;
  h->tail = &q->next;
  svc__hx_resume(h->x);
}

void svc__httpc_stream_send_end(struct svc_stream_s *s) {
  struct hstream *h = s->tp;

  if (h == NULL || h->x == NULL)
    return;
  h->end_queued = 1;
  svc__hx_resume(h->x);
}

void svc__httpc_stream_send_credit(struct svc_stream_s *s, size_t bytes) {
  struct hstream *h = s->tp;

  (void)bytes;
  if (h != NULL && h->x != NULL && h->x->paused_recv)
    svc__hx_resume(h->x);
}

/* Removing the transfer mid-way closes its connection: the server sees
 * the stream cut off, which is what a reset is over HTTP/1.1. */
void svc__httpc_stream_send_reset(struct svc_stream_s *s) {
  struct hstream *h = s->tp;

  s->tp = NULL;
  if (h != NULL)
    hstream_free(h);
}

/* The core is done with a stream that closed cleanly: both sides ended
 * and libcurl took every byte this side wrote. The transfer may still be
 * sending them (and the end of the body), so it runs on without the
 * stream and frees itself when done, or when the context closes. */
void svc__httpc_stream_release(struct svc_stream_s *s) {
  struct hstream *h = s->tp;

  s->tp = NULL;
  if (h == NULL)
    return;
  if (h->x == NULL) {
    hstream_free(h);
    return;
  }
  h->s = NULL;
  h->end_queued = 1;
  svc__hx_resume(h->x);
}
