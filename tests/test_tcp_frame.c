/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* White-box tests of the wire frame codec (src/transports/tcp_frame.c)
 * against docs/protocol.md sections 2-5 and the example of section 9. */
#include "transports/tcp_frame.h"

#include <criterion/criterion.h>
#include <stdlib.h>

#define LIM_DEF (&svc__frame_default_limits)
#define LIM_MIN (&svc__frame_minimum_limits)

/* A frame under construction, large enough for a header block above the
 * default 64 KiB limit. */
static struct {
  uint8_t b[200 * 1024];
  size_t n;
  size_t block; /* Offset of the open block's length field. */
} fb;

/* What the last decode produced. The input is copied into a buffer of
 * exactly its size so that ASan and valgrind see any read past it; the copy
 * lives until the test ends because the frame's slices point into it. */
static uint8_t *wire;
static struct svc__frame frame;
static size_t used;
static const char *why;

static void frame_fini(void) {
  svc__frame_clear(&frame);
  free(wire);
  wire = NULL;
}

TestSuite(tcp_frame, .fini = frame_fini, .timeout = 30);

static void fb_begin(uint8_t type, uint8_t flags, uint32_t id) {
  fb.n = SVC__FRAME_HEADER;
  fb.block = 0;
  svc__frame_write_header(fb.b, type, flags, id, 0);
}

static void fb_bytes(const void *p, size_t n) {
  cr_assert(n <= sizeof(fb.b) - fb.n, "test frame buffer too small");
  if (n > 0)
    memcpy(fb.b + fb.n, p, n);
  fb.n += n;
}

static void fb_u32(uint32_t v) {
  uint8_t b[4];

  svc__put_u32(b, v);
  fb_bytes(b, 4);
}

static void fb_block_begin(void) {
  fb.block = fb.n;
  fb_u32(0);
}

/* A field with explicit lengths, so that names and values may hold NUL. */
static void fb_field_n(const char *name, size_t nl, const char *value,
                       size_t vl) {
  uint8_t b[4];

  svc__put_u16(b, (uint16_t)nl);
  svc__put_u16(b + 2, (uint16_t)vl);
  fb_bytes(b, 4);
  fb_bytes(name, nl);
  fb_bytes(value, vl);
}

static void fb_field(const char *name, const char *value) {
  fb_field_n(name, strlen(name), value, strlen(value));
}

static void fb_block_end(void) {
  svc__put_u32(fb.b + fb.block, (uint32_t)(fb.n - fb.block - 4));
}

static void fb_end(void) {
  svc__put_u32(fb.b + 8, (uint32_t)(fb.n - SVC__FRAME_HEADER));
}

/* A whole message-block frame with the given fields ("name", "value", ...,
 * NULL) and body. */
static void fb_block_frame(uint8_t type, uint8_t flags, uint32_t id,
                           const char *body, const char *const *fields) {
  size_t i;

  fb_begin(type, flags, id);
  fb_block_begin();
  for (i = 0; fields[i] != NULL; i += 2)
    fb_field(fields[i], fields[i + 1]);
  fb_block_end();
  fb_bytes(body, strlen(body));
  fb_end();
}

#define FIELDS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int decode_n(const struct svc__frame_limits *lim, size_t n) {
  svc__frame_clear(&frame);
  free(wire);
  wire = malloc(n > 0 ? n : 1);
  cr_assert_not_null(wire);
  memcpy(wire, fb.b, n);
  used = 12345;
  why = NULL;
  return svc__frame_decode(wire, n, lim, &frame, &used, &why);
}

static int decode(const struct svc__frame_limits *lim) {
  return decode_n(lim, fb.n);
}

static void expect_ok(const struct svc__frame_limits *lim) {
  int rc = decode(lim);

  cr_assert_eq(rc, 0, "decode: %d (%s)", rc, why != NULL ? why : "");
  cr_assert_eq(used, fb.n);
  cr_assert_null(why);
}

/* The frame in fb is a protocol error whose reason contains reason. */
static void expect_proto(const struct svc__frame_limits *lim,
                         const char *reason) {
  int rc = decode(lim);

  cr_assert_eq(rc, SVC_EPROTO, "decode: %d, expected EPROTO (%s)", rc, reason);
  cr_assert_not_null(why, "EPROTO without a reason");
  cr_assert(strstr(why, reason) != NULL, "reason \"%s\", expected \"%s\"", why,
            reason);
  cr_assert_null(frame.msg, "a failed decode kept its message");
}

static void assert_slice(struct svc__slice s, const char *want) {
  cr_assert_not_null(s.p, "absent, expected \"%s\"", want);
  cr_assert_eq(s.len, strlen(want));
  cr_assert(memcmp(s.p, want, s.len) == 0, "\"%.*s\" != \"%s\"", (int)s.len,
            s.p, want);
}

static void assert_body(const char *want) {
  size_t len;
  const void *body;

  cr_assert_not_null(frame.msg);
  body = svc_msg_body(frame.msg, &len);
  cr_assert_eq(len, strlen(want));
  cr_assert(memcmp(body, want, len) == 0);
}

/* ---- Section 9: the byte-exact example. */

static const uint8_t example_request[] = {
    0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x23,
    0x00, 0x00, 0x00, 0x1d, 0x00, 0x07, 0x00, 0x04, ':',  'm',  'e',  't',
    'h',  'o',  'd',  'C',  'A',  'L',  'L',  0x00, 0x05, 0x00, 0x05, ':',
    'p',  'a',  't',  'h',  'h',  'e',  'l',  'l',  'o',  'h',  'i'};

static const uint8_t example_response[] = {
    0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x12, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x07, 0x00, 0x01,
    ':',  's',  't',  'a',  't',  'u',  's',  '0',  'y',  'o'};

/* Encodes a message-block frame the way tcp_wire.c does and returns its
 * size. */
static size_t encode(uint8_t *out, size_t cap, uint8_t type, uint32_t id,
                     const struct svc__frame_field *pseudo, size_t npseudo,
                     const svc_msg_t *msg, size_t *count) {
  size_t block = svc__frame_block_size(pseudo, npseudo, msg, count);
  size_t body_len = 0;
  const void *body = msg != NULL ? svc_msg_body(msg, &body_len) : NULL;
  size_t total = SVC__FRAME_HEADER + 4 + block + body_len;

  cr_assert_neq(block, SIZE_MAX);
  cr_assert(total <= cap);
  svc__frame_write_header(out, type, 0, id,
                          (uint32_t)(total - SVC__FRAME_HEADER));
  cr_assert_eq(svc__frame_write_block(out + SVC__FRAME_HEADER, pseudo, npseudo,
                                      msg, block),
               4 + block);
  if (body_len > 0)
    memcpy(out + SVC__FRAME_HEADER + 4 + block, body, body_len);
  return total;
}

Test(tcp_frame, example_request_encodes_to_the_documented_bytes) {
  struct svc__frame_field pseudo[] = {SVC__FIELD(":method", "CALL", 4),
                                      SVC__FIELD(":path", "hello", 5)};
  svc_msg_t *msg = svc_msg_new_str("hi");
  uint8_t out[64];
  size_t count;
  size_t n =
      encode(out, sizeof(out), SVC__F_REQUEST, 1, pseudo, 2, msg, &count);

  svc_msg_free(msg);
  cr_assert_eq(count, 2);
  cr_assert_eq(n, sizeof(example_request));
  cr_assert(memcmp(out, example_request, n) == 0);
}

Test(tcp_frame, example_request_decodes) {
  fb.n = 0;
  fb_bytes(example_request, sizeof(example_request));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.version, 1);
  cr_assert_eq(frame.type, SVC__F_REQUEST);
  cr_assert_eq(frame.flags, 0);
  cr_assert_eq(frame.id, 1);
  cr_assert_eq(frame.length, 35);
  assert_slice(frame.method, "CALL");
  assert_slice(frame.path, "hello");
  cr_assert_eq(frame.has_timeout, 0);
  assert_body("hi");
  cr_assert_eq(svc_msg_header_count(frame.msg), 0);
  cr_assert_null(svc_msg_content_type(frame.msg));
}

Test(tcp_frame, example_response_encodes_to_the_documented_bytes) {
  struct svc__frame_field pseudo[] = {SVC__FIELD(":status", "0", 1)};
  svc_msg_t *msg = svc_msg_new_str("yo");
  uint8_t out[64];
  size_t count;
  size_t n =
      encode(out, sizeof(out), SVC__F_RESPONSE, 1, pseudo, 1, msg, &count);

  svc_msg_free(msg);
  cr_assert_eq(count, 1);
  cr_assert_eq(n, sizeof(example_response));
  cr_assert(memcmp(out, example_response, n) == 0);
}

Test(tcp_frame, example_response_decodes) {
  fb.n = 0;
  fb_bytes(example_response, sizeof(example_response));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_RESPONSE);
  cr_assert_eq(frame.id, 1);
  cr_assert_eq(frame.length, 18);
  cr_assert_eq(frame.status, 0);
  assert_body("yo");
}

/* ---- Encoder. */

Test(tcp_frame, encoder_writes_ct_and_headers_after_the_pseudo_fields) {
  struct svc__frame_field pseudo[] = {SVC__FIELD(":topic", "a/b", 3)};
  svc_msg_t *msg = svc_msg_new_str("body");
  uint8_t out[256];
  size_t count;
  size_t n;

  cr_assert_eq(svc_msg_set_content_type(msg, "text/plain"), 0);
  cr_assert_eq(svc_msg_header_add(msg, "x-one", "1"), 0);
  cr_assert_eq(svc_msg_header_add(msg, "x-one", ""), 0);
  n = encode(out, sizeof(out), SVC__F_EVENT, 7, pseudo, 1, msg, &count);
  svc_msg_free(msg);
  cr_assert_eq(count, 4);

  fb.n = 0;
  fb_bytes(out, n);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_EVENT);
  assert_slice(frame.topic, "a/b");
  cr_assert_str_eq(svc_msg_content_type(frame.msg), "text/plain");
  cr_assert_eq(svc_msg_header_count(frame.msg), 2);
  {
    const char *name;
    const char *value;
    cr_assert_eq(svc_msg_header_at(frame.msg, 1, &name, &value), 0);
    cr_assert_str_eq(name, "x-one");
    cr_assert_str_eq(value, "");
  }
  assert_body("body");
}

Test(tcp_frame, encoder_refuses_values_longer_than_a_u16) {
  static char big[UINT16_MAX + 2];
  struct svc__frame_field pseudo[1] = {
      SVC__FIELD(":path", big, UINT16_MAX + 1)};
  svc_msg_t *msg = svc_msg_new(NULL, 0);
  size_t count;

  memset(big, 'a', sizeof(big) - 1);
  cr_assert_eq(svc__frame_block_size(pseudo, 1, NULL, &count), SIZE_MAX);
  pseudo[0].value_len = UINT16_MAX;
  cr_assert_eq(svc__frame_block_size(pseudo, 1, NULL, &count),
               4 + 5 + (size_t)UINT16_MAX);

  cr_assert_eq(svc_msg_set_content_type(msg, big), 0);
  cr_assert_eq(svc__frame_block_size(NULL, 0, msg, &count), SIZE_MAX);
  big[UINT16_MAX] = '\0';
  cr_assert_eq(svc_msg_set_content_type(msg, big), 0);
  cr_assert_eq(svc__frame_block_size(NULL, 0, msg, &count),
               4 + 3 + (size_t)UINT16_MAX);
  cr_assert_eq(count, 1);
  svc_msg_free(msg);
}

/* ---- Valid frames of every type. */

static void fb_fixed(uint8_t type, uint32_t id, const void *payload,
                     size_t len) {
  fb_begin(type, 0, id);
  fb_bytes(payload, len);
  fb_end();
}

Test(tcp_frame, decodes_hello) {
  uint8_t pl[20] = {0, 0, 0x40, 0, 0, 0, 0x10, 0, 0, 0, 0, 16, 0, 0, 0, 1};
  uint8_t big[28];

  fb_fixed(SVC__F_HELLO, 0, pl, 16);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_HELLO);
  cr_assert_eq(frame.hello.max_frame, 16u * 1024);
  cr_assert_eq(frame.hello.max_header_block, 4u * 1024);
  cr_assert_eq(frame.hello.max_headers, 16);
  cr_assert_eq(frame.hello.max_streams, 1);
  cr_assert_eq(frame.hello.features, 0, "a 16-byte HELLO announces none");
  cr_assert_null(frame.msg);

  /* Feature bits follow the limits; unknown ones are kept, not refused. */
  pl[19] = 0x81;
  memset(big, 0xee, sizeof(big));
  memcpy(big, pl, sizeof(pl));
  fb_fixed(SVC__F_HELLO, 0, pl, 20);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.hello.features, 0x81);

  /* A later version may announce more and a higher version. */
  fb_fixed(SVC__F_HELLO, 0, big, sizeof(big));
  fb.b[0] = 2;
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.version, 2);
  cr_assert_eq(frame.hello.max_streams, 1);
  cr_assert_eq(frame.hello.features, 0x81);
}

Test(tcp_frame, decodes_request_with_every_field) {
  fb_block_frame(SVC__F_REQUEST, 0, 3, "payload",
                 FIELDS(":method", "GET", ":path", "", ":timeout", "1500",
                        ":ct", "application/json", ":future", "ignored", "x-a",
                        "1", "X-B", "two words"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.id, 3);
  assert_slice(frame.method, "GET");
  assert_slice(frame.path, "");
  cr_assert_eq(frame.has_timeout, 1);
  cr_assert_eq(frame.timeout_ms, 1500);
  cr_assert_str_eq(svc_msg_content_type(frame.msg), "application/json");
  cr_assert_eq(svc_msg_header_count(frame.msg), 2);
  cr_assert_str_eq(svc_msg_header_get(frame.msg, "x-b"), "two words");
  assert_body("payload");
}

Test(tcp_frame, decodes_response_statuses) {
  fb_block_frame(SVC__F_RESPONSE, 0, 9, "",
                 FIELDS(":status", "16", "grpc-message", "late"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.status, 16);
  cr_assert_str_eq(svc_msg_header_get(frame.msg, "grpc-message"), "late");
  assert_body("");

  fb_block_frame(SVC__F_RESPONSE, 0, 9, "", FIELDS(":status", "0005"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.status, 5);
}

Test(tcp_frame, decodes_stream_frames) {
  fb_block_frame(
      SVC__F_STREAM_OPEN, 0, 4, "",
      FIELDS(":path", "chat/room", ":window", "65536", "x-user", "ann"));
  expect_ok(LIM_DEF);
  assert_slice(frame.path, "chat/room");
  cr_assert_eq(frame.window, 65536);
  cr_assert_str_eq(svc_msg_header_get(frame.msg, "x-user"), "ann");

  fb_block_frame(SVC__F_STREAM_ACCEPT, 0, 4, "",
                 FIELDS(":window", "18446744073709551", "x-ignored", "y"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.window, 18446744073709551u);

  fb_block_frame(SVC__F_DATA, 0, 4, "chunk", FIELDS(":ct", "text/plain"));
  expect_ok(LIM_DEF);
  cr_assert_str_eq(svc_msg_content_type(frame.msg), "text/plain");
  assert_body("chunk");

  fb_block_frame(SVC__F_DATA, 0, 4, "", FIELDS(NULL));
  expect_ok(LIM_DEF);
  assert_body("");
  cr_assert_eq(frame.length, 4);

  fb_fixed(SVC__F_END, 4, NULL, 0);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_END);
  cr_assert_eq(frame.length, 0);
  cr_assert_null(frame.msg);

  fb_fixed(SVC__F_RESET, 4, "\0\0\0\4", 4);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.code, SVC__FC_REFUSED);

  fb_fixed(SVC__F_CREDIT, 4, "\x7f\0\0\1", 4);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.value, 0x7f000001u);
}

Test(tcp_frame, decodes_call_and_subscription_frames) {
  fb_fixed(SVC__F_CANCEL, 8, NULL, 0);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_CANCEL);
  cr_assert_eq(frame.id, 8);

  fb_block_frame(SVC__F_SUBSCRIBE, 2, 10, "",
                 FIELDS(":filter", "$share/g/sensors/+/temp/#"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.flags & SVC__FRAME_QOS_MASK, 2);
  assert_slice(frame.filter, "$share/g/sensors/+/temp/#");

  fb_fixed(SVC__F_SUBACK, 10, "\0\0\0\x09", 4);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.code, SVC__FC_INVALID);

  fb_fixed(SVC__F_UNSUBSCRIBE, 10, NULL, 0);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_UNSUBSCRIBE);
}

Test(tcp_frame, decodes_publish_event_and_puback) {
  /* QoS 0 publishes carry id 0. */
  fb_block_frame(SVC__F_PUBLISH, 0, 0, "21.5", FIELDS(":topic", "t/1"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.id, 0);
  assert_slice(frame.topic, "t/1");
  assert_body("21.5");

  fb_block_frame(SVC__F_PUBLISH, 1 | SVC__FRAME_RETAIN, 11, "",
                 FIELDS(":topic", "$SYS/x", ":ct", "a/b"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.flags, 1 | SVC__FRAME_RETAIN);
  cr_assert_eq(frame.id, 11);
  cr_assert_str_eq(svc_msg_content_type(frame.msg), "a/b");

  fb_fixed(SVC__F_PUBACK, 11, "\0\0\0\0", 4);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.code, 0);

  fb_block_frame(SVC__F_EVENT, 2 | SVC__FRAME_RETAIN, 10, "x",
                 FIELDS(":topic", "sensors/a/temp", "h", "v"));
  expect_ok(LIM_DEF);
  assert_slice(frame.topic, "sensors/a/temp");
  cr_assert_eq(svc_msg_header_count(frame.msg), 1);
}

Test(tcp_frame, decodes_connection_frames) {
  fb_fixed(SVC__F_PING, 0, "12345678", 8);
  expect_ok(LIM_DEF);
  cr_assert(memcmp(frame.ping, "12345678", 8) == 0);

  fb_fixed(SVC__F_PONG, 0, "abcdefgh", 8);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_PONG);
  cr_assert(memcmp(frame.ping, "abcdefgh", 8) == 0);

  fb_fixed(SVC__F_GOAWAY, 0, "\0\0\0\x2a\0\0\0\x07shutting down", 21);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.value, 42);
  cr_assert_eq(frame.code, SVC__FC_UNAVAILABLE);
  assert_slice(frame.reason, "shutting down");

  fb_fixed(SVC__F_GOAWAY, 0, "\0\0\0\0\0\0\0\0", 8);
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.reason.len, 0);
}

Test(tcp_frame, consumes_one_frame_at_a_time) {
  size_t first;

  fb_fixed(SVC__F_PING, 0, "12345678", 8);
  first = fb.n;
  /* A second frame right behind the first. */
  fb_bytes("\1\x08\0\0\0\0\0\1\0\0\0\0", 12);
  cr_assert_eq(decode(LIM_DEF), 0);
  cr_assert_eq(used, first);
  cr_assert_eq(frame.type, SVC__F_PING);
  memmove(fb.b, fb.b + first, fb.n - first);
  fb.n -= first;
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.type, SVC__F_END);
}

Test(tcp_frame, limits_at_their_edges_are_accepted) {
  char value[4096];
  size_t i;

  /* Exactly max_headers fields. */
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  for (i = 0; i < LIM_MIN->max_headers; i++)
    fb_field("h", "v");
  fb_block_end();
  fb_end();
  expect_ok(LIM_MIN);
  cr_assert_eq(svc_msg_header_count(frame.msg), LIM_MIN->max_headers);

  /* A block of exactly max_header_block bytes. */
  memset(value, 'v', sizeof(value));
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  fb_field_n("h", 1, value, LIM_MIN->max_header_block - 5);
  fb_block_end();
  fb_end();
  cr_assert_eq(fb.n - SVC__FRAME_HEADER - 4, LIM_MIN->max_header_block);
  expect_ok(LIM_MIN);

  /* A payload of exactly max_frame bytes. */
  fb_begin(SVC__F_DATA, 0, SVC__FRAME_MAX_ID);
  fb_block_begin();
  fb_block_end();
  while ((i = LIM_MIN->max_frame - (fb.n - SVC__FRAME_HEADER)) > 0)
    fb_bytes(value, i < sizeof(value) ? i : sizeof(value));
  fb_end();
  expect_ok(LIM_MIN);
  cr_assert_eq(frame.length, LIM_MIN->max_frame);
  cr_assert_eq(frame.id, SVC__FRAME_MAX_ID);
  cr_assert_eq(svc_msg_len(frame.msg), LIM_MIN->max_frame - 4);
}

/* ---- Partial frames. */

Test(tcp_frame, every_prefix_of_a_frame_is_eagain) {
  size_t n;
  size_t total;
  int rc;

  fb_block_frame(SVC__F_REQUEST, 0, 1, "body",
                 FIELDS(":method", "CALL", ":path", "p", "h", "v"));
  total = fb.n;
  for (n = 0; n < total; n++) {
    rc = decode_n(LIM_DEF, n);
    cr_assert_eq(rc, SVC_EAGAIN, "prefix %zu: %d", n, rc);
    /* Before the header is in, the size is unknown. */
    cr_assert_eq(used, n < SVC__FRAME_HEADER ? 0 : total, "prefix %zu", n);
    cr_assert_null(frame.msg);
  }
  cr_assert_eq(decode_n(LIM_DEF, total), 0);
  cr_assert_eq(used, total);
}

Test(tcp_frame, eagain_asks_for_at_most_max_frame) {
  /* Header only, announcing exactly max_frame: wait for all of it. */
  fb_begin(SVC__F_DATA, 0, 1);
  svc__put_u32(fb.b + 8, LIM_MIN->max_frame);
  cr_assert_eq(decode(LIM_MIN), SVC_EAGAIN);
  cr_assert_eq(used, SVC__FRAME_HEADER + (size_t)LIM_MIN->max_frame);

  /* One byte more is refused at once rather than waited for. */
  svc__put_u32(fb.b + 8, LIM_MIN->max_frame + 1);
  expect_proto(LIM_MIN, "max_frame");
  svc__put_u32(fb.b + 8, UINT32_MAX);
  expect_proto(LIM_DEF, "max_frame");
}

Test(tcp_frame, header_errors_are_found_before_the_payload_arrives) {
  /* Only the header is in; its id alone is wrong. */
  fb_begin(SVC__F_DATA, 0, 0);
  svc__put_u32(fb.b + 8, 100);
  expect_proto(LIM_DEF, "needs a non-zero id");
  cr_assert_eq(used, 0);
}

/* ---- Large bodies read apart from their frame (tcp_wire.c). */

Test(tcp_frame, body_split_finds_where_the_body_starts) {
  size_t head = 0;
  size_t body = 0;
  size_t n;

  fb_block_frame(SVC__F_REQUEST, 0, 1, "0123456789",
                 FIELDS(":method", "CALL", ":path", "p"));
  n = fb.n;
  cr_assert_eq(svc__frame_body_split(fb.b, n, &head, &body), 0);
  cr_assert_eq(head, n - 10);
  cr_assert_eq(body, 10);
  /* The header and block are enough. */
  cr_assert_eq(svc__frame_body_split(fb.b, n - 10, &head, &body), 0);
  cr_assert_eq(head, n - 10);
  cr_assert_eq(svc__frame_body_split(fb.b, n - 11, &head, &body), -1);
  cr_assert_eq(svc__frame_body_split(fb.b, 15, &head, &body), -1);

  /* A block longer than the payload has no body to split off. */
  svc__put_u32(fb.b + SVC__FRAME_HEADER, (uint32_t)(n - 16 + 1));
  cr_assert_eq(svc__frame_body_split(fb.b, n, &head, &body), -1);

  /* Frames without a body. */
  fb_block_frame(SVC__F_STREAM_OPEN, 0, 1, "",
                 FIELDS(":path", "", ":window", "1"));
  cr_assert_eq(svc__frame_body_split(fb.b, fb.n, &head, &body), -1);
  fb_fixed(SVC__F_PING, 0, "0123456789abcdef", 8);
  cr_assert_eq(svc__frame_body_split(fb.b, fb.n, &head, &body), -1);
}

/* Decodes fb with its body in a buffer of its own. */
static int decode_split(const struct svc__frame_limits *lim, size_t head) {
  size_t body_len = fb.n - head;
  void *body = svc__malloc(body_len);

  cr_assert_not_null(body);
  memcpy(body, fb.b + head, body_len);
  svc__frame_clear(&frame);
  why = NULL;
  return svc__frame_decode_split(fb.b, head, body, body_len, lim, &frame, &why);
}

Test(tcp_frame, split_decode_gives_what_a_whole_decode_gives) {
  size_t head;
  size_t body;

  fb_block_frame(SVC__F_EVENT, 1, 5, "a body that is read apart",
                 FIELDS(":topic", "t/x", ":ct", "text/plain", "h", "v"));
  cr_assert_eq(svc__frame_body_split(fb.b, fb.n, &head, &body), 0);
  cr_assert_eq(decode_split(LIM_DEF, head), 0, "%s", why != NULL ? why : "");
  cr_assert_eq(frame.type, SVC__F_EVENT);
  cr_assert_eq(frame.flags, 1);
  cr_assert_eq(frame.id, 5);
  cr_assert_eq(frame.length, fb.n - SVC__FRAME_HEADER);
  assert_slice(frame.topic, "t/x");
  cr_assert_str_eq(svc_msg_content_type(frame.msg), "text/plain");
  cr_assert_str_eq(svc_msg_header_get(frame.msg, "h"), "v");
  assert_body("a body that is read apart");

  /* Protocol errors are the same too, and the body is not leaked. */
  fb_block_frame(SVC__F_EVENT, 1, 5, "body", FIELDS(":topic", "t/#"));
  cr_assert_eq(svc__frame_body_split(fb.b, fb.n, &head, &body), 0);
  cr_assert_eq(decode_split(LIM_DEF, head), SVC_EPROTO);
  cr_assert_not_null(why);
  cr_assert(strstr(why, ":topic") != NULL, "%s", why);
  cr_assert_null(frame.msg);

  fb_block_frame(SVC__F_EVENT, 1, 0, "body", FIELDS(":topic", "t"));
  cr_assert_eq(svc__frame_body_split(fb.b, fb.n, &head, &body), 0);
  cr_assert_eq(decode_split(LIM_DEF, head), SVC_EPROTO);
  cr_assert(strstr(why, "needs a non-zero id") != NULL, "%s", why);
}

Test(tcp_frame, split_decode_refuses_parts_that_do_not_fit) {
  size_t head;
  size_t body;

  fb_block_frame(SVC__F_DATA, 0, 1, "0123456789", FIELDS("h", "v"));
  cr_assert_eq(svc__frame_body_split(fb.b, fb.n, &head, &body), 0);
  /* The body, taken in every case, must not leak (valgrind, ASan). */
  cr_assert_eq(decode_split(LIM_DEF, head - 1), SVC_EINVAL);
  cr_assert_null(frame.msg);
  cr_assert_eq(decode_split(LIM_DEF, head + 1), SVC_EINVAL);
  cr_assert_eq(decode_split(LIM_DEF, 15), SVC_EINVAL);
}

/* ---- Section 2: frame header and fixed payloads. */

Test(tcp_frame, unknown_types_are_refused) {
  static const uint8_t types[] = {0x00, 0x14, 0x7f, 0xff};
  size_t i;

  for (i = 0; i < sizeof(types); i++) {
    fb_fixed(SVC__F_END, 1, NULL, 0);
    fb.b[1] = types[i];
    expect_proto(LIM_DEF, "unknown frame type");
  }
  /* The header alone is enough to know: no waiting for the payload. */
  svc__put_u32(fb.b + 8, 100);
  expect_proto(LIM_DEF, "unknown frame type");
}

Test(tcp_frame, versions_other_than_1_are_refused) {
  fb_fixed(SVC__F_END, 1, NULL, 0);
  fb.b[0] = 0;
  expect_proto(LIM_DEF, "version");
  fb.b[0] = 2;
  expect_proto(LIM_DEF, "version");

  fb_block_frame(SVC__F_REQUEST, 0, 1, "",
                 FIELDS(":method", "CALL", ":path", ""));
  fb.b[0] = 2;
  expect_proto(LIM_DEF, "version");

  fb_fixed(SVC__F_HELLO, 0, "\0\1\0\0\0\0\x10\0\0\0\0\x10\0\0\0\1", 16);
  fb.b[0] = 0;
  expect_proto(LIM_DEF, "version");
}

Test(tcp_frame, fixed_payloads_of_the_wrong_size_are_refused) {
  static const uint8_t filler[32] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  static const struct {
    uint8_t type;
    uint32_t id;
    size_t len;
  } cases[] = {
      {SVC__F_HELLO, 0, 0},  {SVC__F_HELLO, 0, 15},      {SVC__F_CANCEL, 1, 1},
      {SVC__F_END, 1, 4},    {SVC__F_RESET, 1, 3},       {SVC__F_RESET, 1, 5},
      {SVC__F_CREDIT, 1, 0}, {SVC__F_CREDIT, 1, 8},      {SVC__F_SUBACK, 1, 2},
      {SVC__F_SUBACK, 1, 6}, {SVC__F_UNSUBSCRIBE, 1, 4}, {SVC__F_PUBACK, 1, 3},
      {SVC__F_PUBACK, 1, 5}, {SVC__F_PING, 0, 7},        {SVC__F_PING, 0, 9},
      {SVC__F_PONG, 0, 0},   {SVC__F_PONG, 0, 16},       {SVC__F_GOAWAY, 0, 7},
      {SVC__F_GOAWAY, 0, 0},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    fb_fixed(cases[i].type, cases[i].id, filler, cases[i].len);
    expect_proto(LIM_DEF, "fixed payload");
  }
}

Test(tcp_frame, message_blocks_shorter_than_their_length_field_are_refused) {
  size_t len;

  for (len = 0; len < 4; len++) {
    fb_fixed(SVC__F_DATA, 1, "\0\0\0", len);
    expect_proto(LIM_DEF, "shorter than its length field");
  }
}

Test(tcp_frame, hello_limits_below_the_minimum_are_refused) {
  size_t i;

  for (i = 0; i < 4; i++) {
    uint32_t v[4] = {LIM_MIN->max_frame, LIM_MIN->max_header_block,
                     LIM_MIN->max_headers, LIM_MIN->max_streams};
    size_t j;

    v[i]--;
    fb_begin(SVC__F_HELLO, 0, 0);
    for (j = 0; j < 4; j++)
      fb_u32(v[j]);
    fb_end();
    expect_proto(LIM_DEF, "below the minimum");
  }
}

Test(tcp_frame, credit_of_zero_is_refused) {
  fb_fixed(SVC__F_CREDIT, 1, "\0\0\0\0", 4);
  expect_proto(LIM_DEF, "CREDIT of 0");
}

/* ---- Section 2 flags and section 5 ids. */

Test(tcp_frame, qos_3_is_refused) {
  fb_block_frame(SVC__F_SUBSCRIBE, 3, 1, "", FIELDS(":filter", "a"));
  expect_proto(LIM_DEF, "QoS 3");
  fb_block_frame(SVC__F_PUBLISH, 3, 1, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "QoS 3");
  fb_block_frame(SVC__F_EVENT, 3 | SVC__FRAME_RETAIN, 1, "",
                 FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "QoS 3");
  /* Bits the type does not define are ignored. */
  fb_block_frame(SVC__F_DATA, 3, 1, "", FIELDS(NULL));
  expect_ok(LIM_DEF);
}

Test(tcp_frame, id_0_is_refused_on_non_connection_frames) {
  static const uint8_t fixed0[] = {SVC__F_CANCEL, SVC__F_END,
                                   SVC__F_UNSUBSCRIBE};
  static const uint8_t fixed4[] = {SVC__F_RESET, SVC__F_CREDIT, SVC__F_SUBACK,
                                   SVC__F_PUBACK};
  size_t i;

  for (i = 0; i < sizeof(fixed0); i++) {
    fb_fixed(fixed0[i], 0, NULL, 0);
    expect_proto(LIM_DEF, "needs a non-zero id");
  }
  for (i = 0; i < sizeof(fixed4); i++) {
    fb_fixed(fixed4[i], 0, "\0\0\0\1", 4);
    expect_proto(LIM_DEF, "needs a non-zero id");
  }
  fb_block_frame(SVC__F_REQUEST, 0, 0, "", FIELDS(":method", "M", ":path", ""));
  expect_proto(LIM_DEF, "needs a non-zero id");
  fb_block_frame(SVC__F_RESPONSE, 0, 0, "", FIELDS(":status", "0"));
  expect_proto(LIM_DEF, "needs a non-zero id");
  fb_block_frame(SVC__F_STREAM_OPEN, 0, 0, "",
                 FIELDS(":path", "", ":window", "1"));
  expect_proto(LIM_DEF, "needs a non-zero id");
  fb_block_frame(SVC__F_STREAM_ACCEPT, 0, 0, "", FIELDS(":window", "1"));
  expect_proto(LIM_DEF, "needs a non-zero id");
  fb_block_frame(SVC__F_DATA, 0, 0, "", FIELDS(NULL));
  expect_proto(LIM_DEF, "needs a non-zero id");
  fb_block_frame(SVC__F_SUBSCRIBE, 0, 0, "", FIELDS(":filter", "#"));
  expect_proto(LIM_DEF, "needs a non-zero id");
  fb_block_frame(SVC__F_EVENT, 0, 0, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "needs a non-zero id");
}

Test(tcp_frame, connection_frames_with_an_id_are_refused) {
  fb_fixed(SVC__F_HELLO, 1, "\0\1\0\0\0\0\x10\0\0\0\0\x10\0\0\0\1", 16);
  expect_proto(LIM_DEF, "connection frame with a non-zero id");
  fb_fixed(SVC__F_PING, 1, "12345678", 8);
  expect_proto(LIM_DEF, "connection frame with a non-zero id");
  fb_fixed(SVC__F_PONG, 0x80000000u, "12345678", 8);
  expect_proto(LIM_DEF, "connection frame with a non-zero id");
  fb_fixed(SVC__F_GOAWAY, 7, "\0\0\0\0\0\0\0\0", 8);
  expect_proto(LIM_DEF, "connection frame with a non-zero id");
}

Test(tcp_frame, ids_above_31_bits_are_refused) {
  fb_fixed(SVC__F_END, 0x80000000u, NULL, 0);
  expect_proto(LIM_DEF, "31 bits");
  fb_fixed(SVC__F_CREDIT, UINT32_MAX, "\0\0\0\1", 4);
  expect_proto(LIM_DEF, "31 bits");
  fb_block_frame(SVC__F_REQUEST, 0, 0x80000001u, "",
                 FIELDS(":method", "M", ":path", ""));
  expect_proto(LIM_DEF, "31 bits");
  fb_block_frame(SVC__F_PUBLISH, 1, 0x80000000u, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "31 bits");
}

Test(tcp_frame, publish_id_must_match_its_qos) {
  fb_block_frame(SVC__F_PUBLISH, 0, 5, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "does not match its QoS");
  fb_block_frame(SVC__F_PUBLISH, SVC__FRAME_RETAIN, 5, "",
                 FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "does not match its QoS");
  fb_block_frame(SVC__F_PUBLISH, 1, 0, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "does not match its QoS");
  fb_block_frame(SVC__F_PUBLISH, 2, 0, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, "does not match its QoS");
}

/* ---- Section 4: message blocks. */

Test(tcp_frame, header_block_longer_than_the_payload_is_refused) {
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("h", "v"));
  svc__put_u32(fb.b + SVC__FRAME_HEADER, (uint32_t)(fb.n - 16 + 1));
  expect_proto(LIM_DEF, "longer than the payload");
  svc__put_u32(fb.b + SVC__FRAME_HEADER, UINT32_MAX);
  expect_proto(LIM_DEF, "longer than the payload");
}

Test(tcp_frame, header_block_above_max_header_block_is_refused) {
  static char value[UINT16_MAX];

  memset(value, 'v', sizeof(value));
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  fb_field_n("h", 1, value, LIM_MIN->max_header_block - 4);
  fb_block_end();
  fb_end();
  expect_proto(LIM_MIN, "max_header_block");

  /* Above the default 64 KiB too, in two fields. */
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  fb_field_n("h", 1, value, sizeof(value));
  fb_field_n("h", 1, value, 10);
  fb_block_end();
  fb_end();
  cr_assert_gt(fb.n - 16, LIM_DEF->max_header_block);
  expect_proto(LIM_DEF, "max_header_block");
}

Test(tcp_frame, more_than_max_headers_fields_are_refused) {
  size_t i;

  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  for (i = 0; i <= LIM_MIN->max_headers; i++)
    fb_field("h", "v");
  fb_block_end();
  fb_end();
  expect_proto(LIM_MIN, "max_headers");

  /* Pseudo-fields count too, known or not. */
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  for (i = 0; i <= LIM_MIN->max_headers; i++)
    fb_field(":unknown", "");
  fb_block_end();
  fb_end();
  expect_proto(LIM_MIN, "max_headers");
}

Test(tcp_frame, fields_running_past_the_block_are_refused) {
  size_t extra;

  /* A value longer than what is left. */
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  fb_bytes("\0\1\0\5hvv", 7);
  fb_block_end();
  fb_bytes("vvvvv", 5); /* The body has the bytes; the block does not. */
  fb_end();
  expect_proto(LIM_DEF, "runs past the header block");

  /* 1 to 3 bytes left over after the last whole field. */
  for (extra = 1; extra < 4; extra++) {
    fb_begin(SVC__F_DATA, 0, 1);
    fb_block_begin();
    fb_field("h", "v");
    fb_bytes("\0\1\0", extra);
    fb_block_end();
    fb_end();
    expect_proto(LIM_DEF, "runs past the header block");
  }
}

Test(tcp_frame, empty_names_are_refused) {
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("", "v"));
  expect_proto(LIM_DEF, "empty field name");
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("", ""));
  expect_proto(LIM_DEF, "empty field name");
}

Test(tcp_frame, nul_bytes_in_fields_are_refused) {
  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  fb_field_n("a\0b", 3, "v", 1);
  fb_block_end();
  fb_end();
  expect_proto(LIM_DEF, "NUL");

  fb_begin(SVC__F_DATA, 0, 1);
  fb_block_begin();
  fb_field_n("h", 1, "v\0", 2);
  fb_block_end();
  fb_end();
  expect_proto(LIM_DEF, "NUL");

  fb_begin(SVC__F_REQUEST, 0, 1);
  fb_block_begin();
  fb_field_n(":method", 7, "CA\0LL", 5);
  fb_field(":path", "");
  fb_block_end();
  fb_end();
  expect_proto(LIM_DEF, "NUL");

  fb_begin(SVC__F_PUBLISH, 0, 0);
  fb_block_begin();
  fb_field_n(":topic", 6, "a\0", 2);
  fb_block_end();
  fb_end();
  expect_proto(LIM_DEF, "NUL");
}

Test(tcp_frame, headers_the_message_rules_refuse_are_refused) {
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("bad name", "v"));
  expect_proto(LIM_DEF, "header");
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("h", "a\r\nInjected: 1"));
  expect_proto(LIM_DEF, "header");
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("h:x", "v"));
  expect_proto(LIM_DEF, "header");
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS(":ct", ""));
  expect_proto(LIM_DEF, ":ct");
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS(":ct", "a\nb"));
  expect_proto(LIM_DEF, ":ct");
}

Test(tcp_frame, pseudo_fields_after_an_ordinary_header_are_refused) {
  fb_block_frame(SVC__F_REQUEST, 0, 1, "",
                 FIELDS(":method", "M", "h", "v", ":path", ""));
  expect_proto(LIM_DEF, "after an ordinary header");
  /* Even an unknown one. */
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS("h", "v", ":x", ""));
  expect_proto(LIM_DEF, "after an ordinary header");
}

Test(tcp_frame, repeated_pseudo_fields_are_refused) {
  fb_block_frame(SVC__F_REQUEST, 0, 1, "",
                 FIELDS(":method", "M", ":path", "a", ":path", "a"));
  expect_proto(LIM_DEF, "repeated");
  /* An empty value still counts as present. */
  fb_block_frame(SVC__F_REQUEST, 0, 1, "",
                 FIELDS(":path", "", ":method", "M", ":path", ""));
  expect_proto(LIM_DEF, "repeated");
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS(":ct", "a", ":ct", "a"));
  expect_proto(LIM_DEF, "repeated");
  fb_block_frame(SVC__F_RESPONSE, 0, 1, "",
                 FIELDS(":status", "0", ":status", "0"));
  expect_proto(LIM_DEF, "repeated");
  fb_block_frame(
      SVC__F_REQUEST, 0, 1, "",
      FIELDS(":method", "M", ":path", "", ":timeout", "1", ":timeout", "1"));
  expect_proto(LIM_DEF, "repeated");
  /* Unknown pseudo-fields are ignored, so they may repeat. */
  fb_block_frame(SVC__F_DATA, 0, 1, "", FIELDS(":x", "1", ":x", "2"));
  expect_ok(LIM_DEF);
  cr_assert_eq(svc_msg_header_count(frame.msg), 0);
}

Test(tcp_frame, missing_required_pseudo_fields_are_refused) {
  fb_block_frame(SVC__F_REQUEST, 0, 1, "", FIELDS(":path", "p"));
  expect_proto(LIM_DEF, "REQUEST without");
  fb_block_frame(SVC__F_REQUEST, 0, 1, "", FIELDS(":method", "", ":path", ""));
  expect_proto(LIM_DEF, "REQUEST without");
  fb_block_frame(SVC__F_REQUEST, 0, 1, "", FIELDS(":method", "M"));
  expect_proto(LIM_DEF, "REQUEST without");
  fb_block_frame(SVC__F_RESPONSE, 0, 1, "", FIELDS("status", "0"));
  expect_proto(LIM_DEF, ":status");
  fb_block_frame(SVC__F_STREAM_OPEN, 0, 1, "", FIELDS(":window", "1"));
  expect_proto(LIM_DEF, ":path");
  fb_block_frame(SVC__F_STREAM_OPEN, 0, 1, "", FIELDS(":path", "p"));
  expect_proto(LIM_DEF, ":window");
  fb_block_frame(SVC__F_STREAM_ACCEPT, 0, 1, "", FIELDS(NULL));
  expect_proto(LIM_DEF, ":window");
  fb_block_frame(SVC__F_SUBSCRIBE, 0, 1, "", FIELDS(":topic", "a"));
  expect_proto(LIM_DEF, ":filter");
  fb_block_frame(SVC__F_PUBLISH, 0, 0, "", FIELDS(":filter", "a"));
  expect_proto(LIM_DEF, ":topic");
}

/* A bare EVENT (docs/protocol.md section 4) decodes with no topic: only
 * the client knows whether it asked for bare events on that id. */
Test(tcp_frame, event_without_topic_decodes_without_one) {
  fb_block_frame(SVC__F_EVENT, 1, 7, "body", FIELDS(NULL));
  expect_ok(LIM_DEF);
  cr_assert_null(frame.topic.p);
  cr_assert_eq(svc_msg_len(frame.msg), 4);
  fb_block_frame(SVC__F_EVENT, 1, 7, "body", FIELDS(":topic", "a/b"));
  expect_ok(LIM_DEF);
  assert_slice(frame.topic, "a/b");
  fb_block_frame(SVC__F_EVENT, 1, 7, "body", FIELDS(":topic", "a/+"));
  expect_proto(LIM_DEF, "invalid :topic");
}

Test(tcp_frame, malformed_decimals_are_refused) {
  static const char *const bad_status[] = {
      "",   "17", "99", "-1",  "+1",
      " 1", "1 ", "1a", "0x1", "12345678901234567890",
  };
  static const char *const bad_window[] = {
      "", "0", "000", "-5", "1.5", "k", "99999999999999999999"};
  static const char *const bad_timeout[] = {"", "-1", "10ms", "1e3",
                                            "18446744073709551616"};
  size_t i;

  for (i = 0; i < sizeof(bad_status) / sizeof(bad_status[0]); i++) {
    fb_block_frame(SVC__F_RESPONSE, 0, 1, "", FIELDS(":status", bad_status[i]));
    expect_proto(LIM_DEF, ":status");
  }
  for (i = 0; i < sizeof(bad_window) / sizeof(bad_window[0]); i++) {
    fb_block_frame(SVC__F_STREAM_OPEN, 0, 1, "",
                   FIELDS(":path", "", ":window", bad_window[i]));
    expect_proto(LIM_DEF, ":window");
    fb_block_frame(SVC__F_STREAM_ACCEPT, 0, 1, "",
                   FIELDS(":window", bad_window[i]));
    expect_proto(LIM_DEF, ":window");
  }
  for (i = 0; i < sizeof(bad_timeout) / sizeof(bad_timeout[0]); i++) {
    fb_block_frame(
        SVC__F_REQUEST, 0, 1, "",
        FIELDS(":method", "M", ":path", "", ":timeout", bad_timeout[i]));
    expect_proto(LIM_DEF, ":timeout");
  }
  /* The largest decimals that parse. */
  fb_block_frame(
      SVC__F_REQUEST, 0, 1, "",
      FIELDS(":method", "M", ":path", "", ":timeout", "9999999999999999999"));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.timeout_ms, 9999999999999999999u);
}

Test(tcp_frame, invalid_topics_and_filters_are_refused) {
  static const char *const bad_topic[] = {"", "a/+", "#", "a/#/b", "+"};
  static const char *const bad_filter[] = {
      "", "a/b#", "a+/b", "#/a", "$share//x", "$share/g", "$share/g+/x"};
  size_t i;

  for (i = 0; i < sizeof(bad_topic) / sizeof(bad_topic[0]); i++) {
    fb_block_frame(SVC__F_PUBLISH, 1, 1, "", FIELDS(":topic", bad_topic[i]));
    expect_proto(LIM_DEF, ":topic");
    fb_block_frame(SVC__F_EVENT, 0, 1, "", FIELDS(":topic", bad_topic[i]));
    expect_proto(LIM_DEF, ":topic");
  }
  for (i = 0; i < sizeof(bad_filter) / sizeof(bad_filter[0]); i++) {
    fb_block_frame(SVC__F_SUBSCRIBE, 0, 1, "",
                   FIELDS(":filter", bad_filter[i]));
    expect_proto(LIM_DEF, ":filter");
  }
}

Test(tcp_frame, long_topics_are_checked_whole) {
  static char topic[1000];

  /* Longer than the checker's stack buffer, with the wildcard at the end. */
  memset(topic, 'a', sizeof(topic) - 1);
  fb_block_frame(SVC__F_PUBLISH, 0, 0, "", FIELDS(":topic", topic));
  expect_ok(LIM_DEF);
  cr_assert_eq(frame.topic.len, sizeof(topic) - 1);
  topic[sizeof(topic) - 2] = '#';
  fb_block_frame(SVC__F_PUBLISH, 0, 0, "", FIELDS(":topic", topic));
  expect_proto(LIM_DEF, ":topic");
  fb_block_frame(SVC__F_SUBSCRIBE, 0, 1, "", FIELDS(":filter", topic));
  expect_proto(LIM_DEF, ":filter");
  topic[sizeof(topic) - 3] = '/';
  fb_block_frame(SVC__F_SUBSCRIBE, 0, 1, "", FIELDS(":filter", topic));
  expect_ok(LIM_DEF);
}

Test(tcp_frame, bodies_on_frames_without_one_are_refused) {
  fb_block_frame(SVC__F_STREAM_OPEN, 0, 1, "x",
                 FIELDS(":path", "", ":window", "1"));
  expect_proto(LIM_DEF, "body");
  fb_block_frame(SVC__F_STREAM_ACCEPT, 0, 1, "x", FIELDS(":window", "1"));
  expect_proto(LIM_DEF, "body");
  fb_block_frame(SVC__F_SUBSCRIBE, 1, 1, "xyz", FIELDS(":filter", "a"));
  expect_proto(LIM_DEF, "body");
}

/* ---- Names and codes. */

Test(tcp_frame, names_and_codes) {
  cr_assert_str_eq(svc__frame_type_name(SVC__F_HELLO), "HELLO");
  cr_assert_str_eq(svc__frame_type_name(SVC__F_GOAWAY), "GOAWAY");
  cr_assert_str_eq(svc__frame_type_name(0), "?");
  cr_assert_str_eq(svc__frame_type_name(0x14), "?");
  cr_assert_str_eq(svc__frame_type_name(~0u), "?");
  cr_assert_eq(svc__frame_code_err(SVC__FC_NO_ERROR), 0);
  cr_assert_eq(svc__frame_code_err(SVC__FC_PROTOCOL), SVC_EPROTO);
  cr_assert_eq(svc__frame_code_err(SVC__FC_INVALID), SVC_EINVAL);
  /* Unknown codes are INTERNAL's. */
  cr_assert_eq(svc__frame_code_err(1000),
               svc__frame_code_err(SVC__FC_INTERNAL));
}

/* ---- :trace, the binary traceparent. */

Test(tcp_frame, trace_travels_as_25_binary_bytes) {
  struct svc__frame_field pseudo[] = {SVC__FIELD(":topic", "a/b", 3)};
  /* Ids with NUL bytes: the field is binary, unlike every other. */
  svc_trace_t t = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                   {0, 0xff, 0, 0xfe, 0, 0, 0, 9},
                   1};
  svc_trace_t got;
  svc_msg_t *msg = svc_msg_new_str("body");
  uint8_t out[256];
  size_t count;
  size_t n;
  static const uint8_t field[] = {0x00, 0x06, 0x00, 0x19, ':', 't',
                                  'r',  'a',  'c',  'e'};

  /* Headers first: reading or changing them as text turns the trace into
   * an ordinary traceparent header. */
  cr_assert_eq(svc_msg_header_add(msg, "x-k", "v"), 0);
  cr_assert_eq(svc_msg_set_trace(msg, &t), 0);
  n = encode(out, sizeof(out), SVC__F_EVENT, 7, pseudo, 1, msg, &count);
  svc_msg_free(msg);
  cr_assert_eq(count, 3);
  {
    size_t i = 0;
    while (i + sizeof(field) <= n && memcmp(out + i, field, sizeof(field)))
      i++;
    cr_assert(i + sizeof(field) <= n, "no :trace field of 25 bytes");
  }

  fb.n = 0;
  fb_bytes(out, n);
  expect_ok(LIM_DEF);
  cr_assert_eq(svc_msg_trace(frame.msg, &got), 0);
  cr_assert_eq(memcmp(&got, &t, sizeof(t)), 0);
  cr_assert_str_eq(svc_msg_header_get(frame.msg, "x-k"), "v");
  assert_body("body");
}

Test(tcp_frame, trace_of_another_length_is_a_protocol_error) {
  fb_begin(SVC__F_EVENT, 0, 1);
  fb_block_begin();
  fb_field(":topic", "a");
  fb_field(":trace", "0123456789");
  fb_block_end();
  fb_end();
  expect_proto(LIM_DEF, ":trace");
}
