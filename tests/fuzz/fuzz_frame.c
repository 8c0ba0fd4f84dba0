/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* libFuzzer target for the wire frame codec (src/transports/tcp_frame.c).
 * The first input byte picks the receiver's limits, the rest is a byte
 * stream decoded frame by frame as tcp_wire.c does. Every message-block
 * frame that decodes is encoded again from what was decoded and must decode
 * to the same frame: what the decoder accepts, the encoder can say, and the
 * two agree on every field. Frames with a body are also decoded the way
 * tcp_wire.c reads large bodies (svc__frame_body_split() and
 * svc__frame_decode_split()), which must agree with svc__frame_decode().
 * Any disagreement aborts, which libFuzzer and the corpus replay
 * (replay_main.c) report as a crash. */
#include "transports/tcp_frame.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() vanishes under NDEBUG; these checks must not. */
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

static void fuzz_same_slice(struct svc__slice a, struct svc__slice b) {
  FUZZ_CHECK((a.p == NULL) == (b.p == NULL));
  FUZZ_CHECK(a.len == b.len);
  FUZZ_CHECK(a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void fuzz_same_str(const char *a, const char *b) {
  FUZZ_CHECK((a == NULL) == (b == NULL));
  FUZZ_CHECK(a == NULL || strcmp(a, b) == 0);
}

/* g says what f says: type, flags, id, pseudo-fields and message. */
static void fuzz_same_frame(const struct svc__frame *f,
                            const struct svc__frame *g) {
  size_t i;
  const char *na;
  const char *va;
  const char *nb;
  const char *vb;
  const void *ba;
  const void *bb;
  const svc_trace_t *ta;
  const svc_trace_t *tb;
  size_t la;
  size_t lb;

  FUZZ_CHECK(g->type == f->type);
  FUZZ_CHECK(g->flags == f->flags);
  FUZZ_CHECK(g->id == f->id);
  fuzz_same_slice(g->method, f->method);
  fuzz_same_slice(g->path, f->path);
  fuzz_same_slice(g->filter, f->filter);
  fuzz_same_slice(g->topic, f->topic);
  FUZZ_CHECK(g->status == f->status);
  FUZZ_CHECK(g->window == f->window);
  FUZZ_CHECK(g->has_timeout == f->has_timeout);
  FUZZ_CHECK(g->timeout_ms == f->timeout_ms);

  FUZZ_CHECK((g->msg == NULL) == (f->msg == NULL));
  if (f->msg == NULL)
    return;
  fuzz_same_str(svc_msg_content_type(g->msg), svc_msg_content_type(f->msg));
  /* The headers as stored, and the trace in binary: reading them through
   * svc_msg_header_at() would turn a binary trace into a traceparent
   * header for good, which re-encodes larger than the :trace it came
   * from. */
  ta = svc__msg_trace_bin(f->msg);
  tb = svc__msg_trace_bin(g->msg);
  FUZZ_CHECK((ta == NULL) == (tb == NULL));
  FUZZ_CHECK(ta == NULL || memcmp(ta, tb, sizeof(*ta)) == 0);
  for (i = 0; svc__msg_raw_header_at(f->msg, i, &na, &va) == 0; i++) {
    FUZZ_CHECK(svc__msg_raw_header_at(g->msg, i, &nb, &vb) == 0);
    fuzz_same_str(na, nb);
    fuzz_same_str(va, vb);
  }
  FUZZ_CHECK(svc__msg_raw_header_at(g->msg, i, &nb, &vb) != 0);
  ba = svc_msg_body(f->msg, &la);
  bb = svc_msg_body(g->msg, &lb);
  FUZZ_CHECK(la == lb);
  FUZZ_CHECK(la == 0 || memcmp(ba, bb, la) == 0);
}

/* Encodes f's message-block frame into a new buffer, pseudo-fields first
 * as the transports write them. Returns the buffer and its size in *len. */
static uint8_t *fuzz_encode(const struct svc__frame *f, size_t *len) {
  /* Decimals are written canonically, so they never grow. */
  char status[24];
  char window[24];
  char timeout[24];
  struct svc__frame_field pseudo[7];
  size_t n = 0;
  size_t count;
  size_t block;
  size_t body_len;
  const void *body;
  uint8_t *out;

  if (f->method.p != NULL)
    pseudo[n++] =
        SVC__FIELD(":method", f->method.p, f->method.len);
  if (f->path.p != NULL)
    pseudo[n++] = SVC__FIELD(":path", f->path.p, f->path.len);
  if (f->filter.p != NULL)
    pseudo[n++] =
        SVC__FIELD(":filter", f->filter.p, f->filter.len);
  if (f->topic.p != NULL)
    pseudo[n++] = SVC__FIELD(":topic", f->topic.p, f->topic.len);
  if (f->type == SVC__F_RESPONSE) {
    snprintf(status, sizeof(status), "%d", f->status);
    pseudo[n++] = SVC__FIELD(":status", status, strlen(status));
  }
  if (f->type == SVC__F_STREAM_OPEN || f->type == SVC__F_STREAM_ACCEPT) {
    snprintf(window, sizeof(window), "%llu", (unsigned long long)f->window);
    pseudo[n++] = SVC__FIELD(":window", window, strlen(window));
  }
  if (f->has_timeout) {
    snprintf(timeout, sizeof(timeout), "%llu",
             (unsigned long long)f->timeout_ms);
    pseudo[n++] =
        SVC__FIELD(":timeout", timeout, strlen(timeout));
  }

  block = svc__frame_block_size(pseudo, n, f->msg, &count);
  FUZZ_CHECK(block != SIZE_MAX);
  body = svc_msg_body(f->msg, &body_len);
  *len = SVC__FRAME_HEADER + 4 + block + body_len;
  /* Unknown pseudo-fields are dropped and decimals shortened, so the new
   * frame is never larger than the one decoded: the same limits hold. */
  FUZZ_CHECK(*len - SVC__FRAME_HEADER <= f->length);
  out = malloc(*len);
  FUZZ_CHECK(out != NULL);
  svc__frame_write_header(out, f->type, f->flags, f->id,
                          (uint32_t)(*len - SVC__FRAME_HEADER));
  FUZZ_CHECK(svc__frame_write_block(out + SVC__FRAME_HEADER, pseudo, n, f->msg,
                                    block) == 4 + block);
  if (body_len > 0)
    memcpy(out + SVC__FRAME_HEADER + 4 + block, body, body_len);
  return out;
}

static void fuzz_roundtrip(const struct svc__frame *f,
                           const struct svc__frame_limits *lim) {
  struct svc__frame g;
  size_t len;
  size_t len2;
  size_t used;
  const char *why;
  uint8_t *out = fuzz_encode(f, &len);
  uint8_t *out2;
  int rc;

  rc = svc__frame_decode(out, len, lim, &g, &used, &why);
  if (rc != 0)
    fprintf(stderr, "re-decode of %s: %d (%s)\n", svc__frame_type_name(f->type),
            rc, why != NULL ? why : "");
  FUZZ_CHECK(rc == 0);
  FUZZ_CHECK(used == len);
  FUZZ_CHECK(g.version == SVC__FRAME_VERSION);
  FUZZ_CHECK(g.msg != NULL);
  fuzz_same_frame(f, &g);

  /* The re-encoded frame is canonical: encoding it again changes nothing. */
  out2 = fuzz_encode(&g, &len2);
  FUZZ_CHECK(len2 == len);
  FUZZ_CHECK(memcmp(out, out2, len) == 0);

  free(out2);
  svc__frame_clear(&g);
  free(out);
}

/* Decodes the whole frame p[0..n) again with its body in a buffer of its
 * own, as tcp_wire.c does for large bodies, and checks that the result is
 * the one svc__frame_decode() gave: rc, why and f. */
static void fuzz_split(const uint8_t *p, size_t n,
                       const struct svc__frame_limits *lim,
                       const struct svc__frame *f, int rc, const char *why) {
  struct svc__frame g;
  size_t head;
  size_t body_len;
  void *body;
  const char *why2;
  int rc2;

  if (svc__frame_body_split(p, n, &head, &body_len) != 0)
    return;
  FUZZ_CHECK(head >= SVC__FRAME_HEADER + 4 && head <= n);
  FUZZ_CHECK(head + body_len == n);
  body = svc__malloc(body_len);
  FUZZ_CHECK(body != NULL);
  if (body_len > 0)
    memcpy(body, p + head, body_len);
  /* decode_split takes body whatever it returns. */
  rc2 = svc__frame_decode_split(p, head, body, body_len, lim, &g, &why2);
  if (rc2 != rc)
    fprintf(stderr, "split decode of %s: %d (%s), whole: %d (%s)\n",
            svc__frame_type_name(p[1]), rc2, why2 != NULL ? why2 : "", rc,
            why != NULL ? why : "");
  FUZZ_CHECK(rc2 == rc);
  if (rc == SVC_EPROTO)
    FUZZ_CHECK(why2 != NULL && strcmp(why2, why) == 0);
  if (rc == 0) {
    FUZZ_CHECK(g.version == f->version && g.length == f->length);
    fuzz_same_frame(f, &g);
  } else {
    FUZZ_CHECK(g.msg == NULL);
  }
  svc__frame_clear(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const struct svc__frame_limits *lim;
  struct svc__frame f;
  size_t used;
  size_t head;
  size_t body_len;
  const char *why;
  int rc;

  if (size == 0)
    return 0;
  lim = data[0] & 1 ? &svc__frame_minimum_limits : &svc__frame_default_limits;
  data++;
  size--;
  for (;;) {
    rc = svc__frame_decode(data, size, lim, &f, &used, &why);
    if (rc == SVC_EAGAIN) {
      /* Once the header is in, the decoder names the whole frame's size,
       * which is more than it has and never more than max_frame allows. */
      if (size < SVC__FRAME_HEADER)
        FUZZ_CHECK(used == 0);
      else
        FUZZ_CHECK(used > size &&
                   used <= SVC__FRAME_HEADER + (size_t)lim->max_frame);
      /* Where tcp_wire.c would start reading a large body on its own: the
       * split must add up to the frame, past what is there. */
      if (used > 0 && svc__frame_body_split(data, size, &head, &body_len) == 0)
        FUZZ_CHECK(head >= SVC__FRAME_HEADER + 4 && head <= size &&
                   head + body_len == used);
    } else if (rc == SVC_EPROTO) {
      FUZZ_CHECK(why != NULL);
    }
    /* A frame that is all there, whether it decoded or not. */
    if (rc != SVC_EAGAIN && used > 0) {
      FUZZ_CHECK(used <= size);
      fuzz_split(data, used, lim, &f, rc, why);
    }
    if (rc != 0) {
      FUZZ_CHECK(f.msg == NULL);
      svc__frame_clear(&f);
      break;
    }
    FUZZ_CHECK(used == SVC__FRAME_HEADER + (size_t)f.length && used <= size);
    FUZZ_CHECK(f.length <= lim->max_frame);
    FUZZ_CHECK(f.id <= SVC__FRAME_MAX_ID);
    if (f.msg != NULL)
      fuzz_roundtrip(&f, lim);
    svc__frame_clear(&f);
    data += used;
    size -= used;
  }
  return 0;
}
