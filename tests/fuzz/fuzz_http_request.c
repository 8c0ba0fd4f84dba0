/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* libFuzzer target for the http:// server's request parser
 * (src/transports/http_server_parse.c), without sockets. The first input
 * byte picks the limits, how the bytes are cut into reads and whether
 * bodies are collected or streamed; the rest is what a client sent, fed
 * the way http_server_conn.c feeds it: every complete request is taken
 * (method, target, headers, the message built from them, the body) and
 * parsing goes on with the bytes that follow, until an error answer or
 * the end of the input. Checks: a request's parts are consistent and
 * within the limits, the bytes used never exceed the bytes given, an
 * error is a real HTTP error code, and a collected body has the length
 * the request declared. Any disagreement aborts. */
#include "transports/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

struct fuzz_state {
  int stream;        /* Bodies streamed to on_body. */
  uint64_t streamed; /* Bytes of the current streamed body. */
  int chunks;
};

static int fuzz_on_head(struct svc__hparse *hp) {
  struct fuzz_state *st = hp->owner;
  const char *name;
  const char *value;
  size_t i;

  FUZZ_CHECK(hp->phase == SVC__HP_BODY);
  FUZZ_CHECK(strlen(svc__hp_url(hp)) <= hp->max_url);
  FUZZ_CHECK(svc__hp_nheaders(hp) <= hp->max_headers);
  for (i = 0; i < svc__hp_nheaders(hp); i++) {
    svc__hp_header(hp, i, &name, &value);
    FUZZ_CHECK(name[0] != '\0');
    FUZZ_CHECK(strpbrk(value, "\r\n") == NULL);
  }
  st->streamed = 0;
  st->chunks = 0;
  return st->stream ? SVC__HP_STREAM : SVC__HP_BUFFER;
}

static int fuzz_on_body(struct svc__hparse *hp, const char *p, size_t n) {
  struct fuzz_state *st = hp->owner;

  FUZZ_CHECK(n > 0 && p != NULL);
  st->streamed += n;
  return 0;
}

static int fuzz_on_chunk_end(struct svc__hparse *hp) {
  struct fuzz_state *st = hp->owner;

  st->chunks++;
  return 0;
}

static const struct svc__hp_cbs fuzz_cbs = {
    .on_head = fuzz_on_head,
    .on_body = fuzz_on_body,
    .on_chunk_end = fuzz_on_chunk_end,
};

static void fuzz_take(struct svc__hparse *hp, struct fuzz_state *st) {
  uint64_t declared = svc__hp_content_length(hp);
  svc_msg_t *msg;
  size_t len;
  char *body;
  int code = 0;

  FUZZ_CHECK(svc__hp_method(hp) != NULL);
  body = svc__hp_take_body(hp, &len);
  if (st->stream) {
    FUZZ_CHECK(body == NULL);
    if (declared != UINT64_MAX)
      FUZZ_CHECK(st->streamed == declared);
  } else {
    FUZZ_CHECK(len <= hp->max_body);
    if (declared != UINT64_MAX)
      FUZZ_CHECK(len == declared);
  }
  msg = svc__hp_message(hp, body, len, &code);
  if (msg == NULL) {
    FUZZ_CHECK(code == 400 || code == 431 || code == 500);
    return;
  }
  FUZZ_CHECK(svc_msg_len(msg) == len);
  FUZZ_CHECK(svc_msg_header_get(msg, "Content-Length") == NULL);
  FUZZ_CHECK(svc_msg_header_get(msg, "Transfer-Encoding") == NULL);
  svc_msg_free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct svc__hparse hp;
  struct fuzz_state st;
  size_t cut;
  size_t off = 1;
  int requests = 0;

  if (size < 1)
    return 0;
  memset(&st, 0, sizeof(st));
  st.stream = (data[0] & 0x80) != 0;
  cut = (size_t)1 << (data[0] & 7); /* Reads of 1..128 bytes. */
  svc__hp_init(&hp, &fuzz_cbs, &st);
  if (data[0] & 0x40) {
    hp.max_header_bytes = 256;
    hp.max_headers = 4;
    hp.max_url = 32;
    hp.max_body = 16;
  } else {
    hp.max_header_bytes = 16384;
    hp.max_headers = 100;
    hp.max_url = 8192;
    hp.max_body = 1 << 20;
  }
  while (off < size && hp.err_code == 0) {
    size_t n = size - off < cut ? size - off : cut;
    size_t used = svc__hp_feed(&hp, (const char *)data + off, n);
    FUZZ_CHECK(used <= n);
    off += used;
    if (hp.err_code != 0)
      break;
    if (hp.complete) {
      fuzz_take(&hp, &st);
      requests++;
      if (!hp.keep_alive || hp.upgrade)
        break; /* The connection ends after this answer. */
      svc__hp_next(&hp);
      continue;
    }
    FUZZ_CHECK(used == n);
  }
  if (hp.err_code != 0) {
    FUZZ_CHECK(hp.err_code >= 400 && hp.err_code <= 599);
    FUZZ_CHECK(hp.err_text != NULL);
  }
  (void)requests;
  svc__hp_free(&hp);
  return 0;
}
