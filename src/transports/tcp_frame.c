/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "transports/tcp_frame.h"

#include <stdlib.h>

/* The frame codec (docs/protocol.md sections 2-4). The decoder trusts
 * nothing: every length is checked against what is there and against the
 * receiver's limits before it is used, and sums are compared by
 * subtraction so that no 32-bit field can wrap them. */

const struct svc__frame_limits svc__frame_default_limits = {
    16u * 1024 * 1024,
    64u * 1024,
    256,
    1024,
    SVC__FEATURE_BARE_EVENTS,
};

const struct svc__frame_limits svc__frame_minimum_limits = {
    16u * 1024,
    4u * 1024,
    16,
    1,
    0,
};

static const char *const frame_names[] = {
    "?",           "HELLO",         "REQUEST", "RESPONSE",    "CANCEL",
    "STREAM_OPEN", "STREAM_ACCEPT", "DATA",    "END",         "RESET",
    "CREDIT",      "SUBSCRIBE",     "SUBACK",  "UNSUBSCRIBE", "PUBLISH",
    "PUBACK",      "EVENT",         "PING",    "PONG",        "GOAWAY",
};

const char *svc__frame_type_name(unsigned type) {
  return type <= SVC__F_LAST ? frame_names[type] : "?";
}

int svc__frame_code_err(uint32_t code) {
  switch (code) {
  case SVC__FC_NO_ERROR:
    return 0;
  case SVC__FC_PROTOCOL:
    return SVC_EPROTO;
  case SVC__FC_FLOW_CONTROL:
    return SVC_EPROTO;
  case SVC__FC_REFUSED:
    return SVC_ECONNREFUSED;
  case SVC__FC_CANCEL:
    return SVC_ECONNRESET;
  case SVC__FC_LIMIT:
    return SVC_ENOBUFS;
  case SVC__FC_UNAVAILABLE:
    return SVC_ECLOSING;
  case SVC__FC_NO_ROOM:
    return SVC_EAGAIN;
  case SVC__FC_INVALID:
    return SVC_EINVAL;
  default:
    return SVC_ECONNRESET;
  }
}

/* Which frames carry a message block, and whether it may have a body. */
static int frame_has_block(unsigned type) {
  switch (type) {
  case SVC__F_REQUEST:
  case SVC__F_RESPONSE:
  case SVC__F_STREAM_OPEN:
  case SVC__F_STREAM_ACCEPT:
  case SVC__F_DATA:
  case SVC__F_SUBSCRIBE:
  case SVC__F_PUBLISH:
  case SVC__F_EVENT:
    return 1;
  default:
    return 0;
  }
}

static int frame_block_has_body(unsigned type) {
  return type != SVC__F_STREAM_OPEN && type != SVC__F_STREAM_ACCEPT &&
         type != SVC__F_SUBSCRIBE;
}

/* Fixed payload length of the other frames (HELLO: the minimum). */
static uint32_t frame_fixed_len(unsigned type) {
  switch (type) {
  case SVC__F_HELLO:
    return SVC__FRAME_HELLO_LEN;
  case SVC__F_RESET:
  case SVC__F_CREDIT:
  case SVC__F_SUBACK:
  case SVC__F_PUBACK:
    return 4;
  case SVC__F_PING:
  case SVC__F_PONG:
    return 8;
  case SVC__F_GOAWAY:
    return 8; /* Plus the reason text. */
  default:
    return 0;
  }
}

/* A decimal of 1 to 19 digits. */
static int frame_decimal(const struct svc__slice *s, uint64_t *out) {
  uint64_t v = 0;
  size_t i;

  if (s->len == 0 || s->len > 19)
    return -1;
  for (i = 0; i < s->len; i++) {
    if (s->p[i] < '0' || s->p[i] > '9')
      return -1;
    v = v * 10 + (uint64_t)(s->p[i] - '0');
  }
  *out = v;
  return 0;
}

/* Nonzero when p[0..len) holds byte a or b. Fields are mostly a few bytes
 * long: a plain loop costs less than calls to memchr. */
static int frame_has_any(const char *p, size_t len, char a, char b) {
  if (len > 64)
    return memchr(p, a, len) != NULL || (b != a && memchr(p, b, len) != NULL);
  while (len-- > 0) {
    if (*p == a || *p == b)
      return 1;
    p++;
  }
  return 0;
}

/* The pseudo-field a name is, by its length and second byte, then its
 * bytes (a name with a NUL cannot equal one): the field names of every
 * frame go through here. */
enum frame_pseudo {
  FP_UNKNOWN, FP_METHOD, FP_PATH, FP_FILTER, FP_TOPIC, FP_CT, FP_WINDOW,
  FP_STATUS, FP_TIMEOUT, FP_TRACE
};

static enum frame_pseudo frame_pseudo_of(const struct svc__slice *n) {
  static const struct {
    const char *name;
    enum frame_pseudo fp;
  } by7[] = {{":method", FP_METHOD},
             {":filter", FP_FILTER},
             {":window", FP_WINDOW},
             {":status", FP_STATUS}};
  size_t i;

  switch (n->len) {
  case 3:
    return memcmp(n->p, ":ct", 3) == 0 ? FP_CT : FP_UNKNOWN;
  case 5:
    return memcmp(n->p, ":path", 5) == 0 ? FP_PATH : FP_UNKNOWN;
  case 6:
    if (memcmp(n->p, ":topic", 6) == 0)
      return FP_TOPIC;
    return memcmp(n->p, ":trace", 6) == 0 ? FP_TRACE : FP_UNKNOWN;
  case 7:
    for (i = 0; i < sizeof(by7) / sizeof(by7[0]); i++)
      if (n->p[1] == by7[i].name[1] && memcmp(n->p, by7[i].name, 7) == 0)
        return by7[i].fp;
    return FP_UNKNOWN;
  case 8:
    return memcmp(n->p, ":timeout", 8) == 0 ? FP_TIMEOUT : FP_UNKNOWN;
  default:
    return FP_UNKNOWN;
  }
}

/* Checks a topic or filter slice with the core's rules (which want C
 * strings). */
static int frame_topic_ok(const struct svc__slice *s, int filter) {
  char small[256];
  char *buf;
  int rc;

  /* Topic names (every EVENT and PUBLISH) are checked in place, as
   * svc__topic_check_name() would: non-empty, no wildcard (NUL bytes were
   * refused already, and a u16 length keeps it under the maximum). */
  if (!filter)
    return s->len > 0 && !frame_has_any(s->p, s->len, '+', '#') ? 0
                                                                : SVC_EINVAL;
  buf = s->len < sizeof(small) ? small : svc__malloc(s->len + 1);

  if (buf == NULL)
    return SVC_ENOMEM;
  memcpy(buf, s->p, s->len);
  buf[s->len] = '\0';
  rc = svc__topic_check_filter(buf);
  if (buf != small)
    svc__free(buf);
  return rc;
}

/* Adds one ordinary header (or the content type) to msg from slices. */
static int frame_msg_add(svc_msg_t *msg, const struct svc__slice *name,
                         const struct svc__slice *value, int is_ct) {
  char small[512];
  char *buf;
  int rc;

  if (!is_ct) {
    rc = svc__msg_header_add_n(msg, (const char *)name->p, name->len,
                               (const char *)value->p, value->len);
    return rc == SVC_ENOMEM ? rc : rc != 0 ? SVC_EPROTO : 0;
  }
  buf = value->len < sizeof(small) ? small : svc__malloc(value->len + 1);
  if (buf == NULL)
    return SVC_ENOMEM;
  memcpy(buf, value->p, value->len);
  buf[value->len] = '\0';
  rc = svc_msg_set_content_type(msg, buf);
  if (buf != small)
    svc__free(buf);
  return rc == SVC_ENOMEM ? rc : rc != 0 ? SVC_EPROTO : 0;
}

#define FRAME_FAIL(msg_) \
  do {                   \
    *why = (msg_);       \
    rc = SVC_EPROTO;     \
    goto fail;           \
  } while (0)

/* Decodes the message block of payload p (len bytes). The body follows the
 * block in p, or is ext (len - 4 - block bytes), which the message then
 * takes over, to release it with ext_free: *taken says so. */
static int frame_decode_block(const uint8_t *p, uint32_t len,
                              const struct svc__frame_limits *lim,
                              struct svc__frame *f, const char **why, void *ext,
                              void (*ext_free)(void *), int *taken) {
  uint32_t block_len;
  uint32_t off = 4;
  uint32_t end;
  uint32_t nfields = 0;
  int ordinary = 0;
  struct svc__slice ct = {NULL, 0};
  struct svc__slice name;
  struct svc__slice value;
  struct svc__slice window = {NULL, 0};
  struct svc__slice status = {NULL, 0};
  struct svc__slice timeout = {NULL, 0};
  struct svc__slice trace = {NULL, 0};
  enum frame_pseudo fp;
  uint64_t v;
  int rc;

  if (len < 4) {
    *why = "message block shorter than its length field";
    return SVC_EPROTO;
  }
  block_len = svc__get_u32(p);
  if (block_len > len - 4) {
    *why = "header block longer than the payload";
    return SVC_EPROTO;
  }
  if (block_len > lim->max_header_block) {
    *why = "header block above max_header_block";
    return SVC_EPROTO;
  }
  if (!frame_block_has_body(f->type) && block_len != len - 4) {
    *why = "body on a frame that has none";
    return SVC_EPROTO;
  }
  if (ext != NULL) {
    f->msg = svc_msg_new_take(ext, len - 4 - block_len, ext_free);
    *taken = f->msg != NULL;
  } else {
    f->msg = svc_msg_new(p + 4 + block_len, len - 4 - block_len);
  }
  if (f->msg == NULL)
    return SVC_ENOMEM;

  end = 4 + block_len;
  while (off < end) {
    uint16_t nl;
    uint16_t vl;
    if (end - off < 4)
      FRAME_FAIL("field header runs past the header block");
    nl = svc__get_u16(p + off);
    vl = svc__get_u16(p + off + 2);
    off += 4;
    if ((uint32_t)nl + vl > end - off)
      FRAME_FAIL("field runs past the header block");
    if (nl == 0)
      FRAME_FAIL("empty field name");
    if (++nfields > lim->max_headers)
      FRAME_FAIL("more fields than max_headers");
    name.p = (const char *)p + off;
    name.len = nl;
    value.p = (const char *)p + off + nl;
    value.len = vl;
    off += (uint32_t)nl + vl;
    fp = name.p[0] == ':' ? frame_pseudo_of(&name) : FP_UNKNOWN;
    /* Every value is text but :trace's, which is binary; a known
     * pseudo-field's name has no NUL (it equals a literal). */
    if ((fp == FP_UNKNOWN && frame_has_any(name.p, name.len, '\0', '\0')) ||
        (fp != FP_TRACE && frame_has_any(value.p, value.len, '\0', '\0')))
      FRAME_FAIL("NUL byte in a field");
    if (name.p[0] != ':') {
      ordinary = 1;
      rc = frame_msg_add(f->msg, &name, &value, 0);
      if (rc == SVC_EPROTO)
        FRAME_FAIL("header the message rules refuse");
      if (rc != 0)
        goto fail;
      continue;
    }
    if (ordinary)
      FRAME_FAIL("pseudo-field after an ordinary header");
    {
      struct svc__slice *slot;
      switch (fp) {
      case FP_METHOD:
        slot = &f->method;
        break;
      case FP_PATH:
        slot = &f->path;
        break;
      case FP_FILTER:
        slot = &f->filter;
        break;
      case FP_TOPIC:
        slot = &f->topic;
        break;
      case FP_CT:
        slot = &ct;
        break;
      case FP_WINDOW:
        slot = &window;
        break;
      case FP_STATUS:
        slot = &status;
        break;
      case FP_TIMEOUT:
        slot = &timeout;
        break;
      case FP_TRACE:
        slot = &trace;
        break;
      default:
        continue; /* Unknown pseudo-fields are ignored. */
      }
      if (slot->p != NULL)
        FRAME_FAIL("repeated pseudo-field");
      /* A present but empty value still marks the slot as seen. */
      slot->p = value.p;
      slot->len = value.len;
    }
  }

  switch (f->type) {
  case SVC__F_REQUEST:
    if (f->method.p == NULL || f->method.len == 0 || f->path.p == NULL)
      FRAME_FAIL("REQUEST without :method or :path");
    break;
  case SVC__F_RESPONSE:
    if (status.p == NULL || frame_decimal(&status, &v) != 0 || v > 16)
      FRAME_FAIL("RESPONSE without a valid :status");
    f->status = (int)v;
    break;
  case SVC__F_STREAM_OPEN:
    if (f->path.p == NULL)
      FRAME_FAIL("STREAM_OPEN without :path");
    if (window.p == NULL || frame_decimal(&window, &f->window) != 0 ||
        f->window == 0)
      FRAME_FAIL("stream frame without a valid :window");
    break;
  case SVC__F_STREAM_ACCEPT:
    if (window.p == NULL || frame_decimal(&window, &f->window) != 0 ||
        f->window == 0)
      FRAME_FAIL("stream frame without a valid :window");
    break;
  case SVC__F_SUBSCRIBE:
    if (f->filter.p == NULL)
      FRAME_FAIL("SUBSCRIBE without :filter");
    rc = frame_topic_ok(&f->filter, 1);
    if (rc == SVC_ENOMEM)
      goto fail;
    if (rc != 0)
      FRAME_FAIL("invalid :filter");
    break;
  case SVC__F_EVENT:
    /* Without :topic when the receiver accepts bare events: whether it
     * did, and the subscription's filter, are its business. */
    if (f->topic.p == NULL)
      break;
    /* fallthrough */
  case SVC__F_PUBLISH:
    if (f->topic.p == NULL)
      FRAME_FAIL("PUBLISH without :topic");
    rc = frame_topic_ok(&f->topic, 0);
    if (rc == SVC_ENOMEM)
      goto fail;
    if (rc != 0)
      FRAME_FAIL("invalid :topic");
    break;
  default:
    break;
  }
  if (timeout.p != NULL) {
    if (frame_decimal(&timeout, &f->timeout_ms) != 0)
      FRAME_FAIL("malformed :timeout");
    f->has_timeout = 1;
  }
  if (ct.p != NULL) {
    struct svc__slice ctname = {"content-type", 12};
    if (ct.len == 0)
      FRAME_FAIL("empty :ct");
    rc = frame_msg_add(f->msg, &ctname, &ct, 1);
    if (rc == SVC_EPROTO)
      FRAME_FAIL("invalid :ct");
    if (rc != 0)
      goto fail;
  }
  if (trace.p != NULL) {
    svc_trace_t t;
    if (trace.len != SVC__FRAME_TRACE_LEN)
      FRAME_FAIL(":trace not 25 bytes");
    memcpy(t.trace_id, trace.p, 16);
    memcpy(t.span_id, trace.p + 16, 8);
    t.flags = (uint8_t)trace.p[24];
    /* Invalid ids (all zero) are dropped, as an invalid traceparent is:
     * the receiver starts afresh. */
    svc__msg_put_trace(f->msg, &t);
  }
  return 0;

fail:
  svc_msg_free(f->msg);
  f->msg = NULL;
  return rc;
}

/* Resets what a decode fills in. Field by field: the struct is large and
 * a memset of it cost more than decoding a small frame (rep stos). The
 * fixed-payload fields are set by the frame types that carry them. */
static void frame_reset(struct svc__frame *f) {
  static const struct svc__slice none = {NULL, 0};

  f->code = 0;
  f->value = 0;
  f->reason = none;
  f->method = none;
  f->path = none;
  f->filter = none;
  f->topic = none;
  f->has_timeout = 0;
  f->timeout_ms = 0;
  f->status = 0;
  f->window = 0;
  f->msg = NULL;
}

/* The checks that need only the 12-byte header. */
static int frame_check_header(const uint8_t *p,
                              const struct svc__frame_limits *lim,
                              struct svc__frame *f, const char **why) {
  f->version = p[0];
  f->type = p[1];
  f->flags = p[2];
  f->id = svc__get_u32(p + 4);
  f->length = svc__get_u32(p + 8);
  if (f->type == 0 || f->type > SVC__F_LAST) {
    *why = "unknown frame type";
    return SVC_EPROTO;
  }
  if (f->type == SVC__F_HELLO ? f->version == 0
                              : f->version != SVC__FRAME_VERSION) {
    *why = "unsupported protocol version";
    return SVC_EPROTO;
  }
  if (f->length > lim->max_frame) {
    *why = "frame larger than max_frame";
    return SVC_EPROTO;
  }
  /* Ids: connection-level frames use 0, everything else (QoS 0 PUBLISH
   * aside) a non-zero id of at most 31 bits. */
  switch (f->type) {
  case SVC__F_HELLO:
  case SVC__F_PING:
  case SVC__F_PONG:
  case SVC__F_GOAWAY:
    if (f->id != 0) {
      *why = "connection frame with a non-zero id";
      return SVC_EPROTO;
    }
    break;
  case SVC__F_PUBLISH:
    if ((f->id == 0) != ((f->flags & SVC__FRAME_QOS_MASK) == 0)) {
      *why = "PUBLISH id does not match its QoS";
      return SVC_EPROTO;
    }
    break;
  default:
    if (f->id == 0) {
      *why = "frame needs a non-zero id";
      return SVC_EPROTO;
    }
  }
  if (f->id > SVC__FRAME_MAX_ID) {
    *why = "id above 31 bits";
    return SVC_EPROTO;
  }
  if ((f->type == SVC__F_SUBSCRIBE || f->type == SVC__F_PUBLISH ||
       f->type == SVC__F_EVENT) &&
      (f->flags & SVC__FRAME_QOS_MASK) == 3) {
    *why = "QoS 3";
    return SVC_EPROTO;
  }
  return 0;
}

int svc__frame_decode_split_fn(const uint8_t *head, size_t head_len, void *body,
                               size_t body_len, void (*free_fn)(void *body),
                               const struct svc__frame_limits *lim,
                               struct svc__frame *f, const char **why) {
  int taken = 0;
  int rc;

  memset(f, 0, sizeof(*f)); /* Rare: large frames only. */
  *why = NULL;
  if (head_len < SVC__FRAME_HEADER + 4) {
    rc = SVC_EINVAL;
  } else if ((rc = frame_check_header(head, lim, f, why)) == 0) {
    if (!frame_has_block(f->type) || !frame_block_has_body(f->type) ||
        (uint64_t)f->length != head_len - SVC__FRAME_HEADER + body_len ||
        svc__get_u32(head + SVC__FRAME_HEADER) !=
            head_len - SVC__FRAME_HEADER - 4)
      rc = SVC_EINVAL; /* The caller split it wrong: a bug, not input. */
    else
      rc = frame_decode_block(head + SVC__FRAME_HEADER, f->length, lim, f, why,
                              body, free_fn, &taken);
  }
  if (!taken)
    free_fn(body);
  return rc;
}

int svc__frame_decode_split(const uint8_t *head, size_t head_len, void *body,
                            size_t body_len,
                            const struct svc__frame_limits *lim,
                            struct svc__frame *f, const char **why) {
  return svc__frame_decode_split_fn(head, head_len, body, body_len, svc__free,
                                    lim, f, why);
}

int svc__frame_body_split(const uint8_t *p, size_t avail, size_t *head_len,
                          size_t *body_len) {
  uint32_t len;
  uint32_t block;

  if (avail < SVC__FRAME_HEADER + 4 || !frame_has_block(p[1]) ||
      !frame_block_has_body(p[1]))
    return -1;
  len = svc__get_u32(p + 8);
  block = svc__get_u32(p + SVC__FRAME_HEADER);
  if (len < 4 || block > len - 4 ||
      avail < (size_t)SVC__FRAME_HEADER + 4 + block)
    return -1;
  *head_len = (size_t)SVC__FRAME_HEADER + 4 + block;
  *body_len = len - 4 - block;
  return 0;
}

int svc__frame_decode(const uint8_t *p, size_t avail,
                      const struct svc__frame_limits *lim, struct svc__frame *f,
                      size_t *consumed, const char **why) {
  uint32_t len;
  const uint8_t *pl;
  uint32_t fixed;
  int rc;

  frame_reset(f);
  *consumed = 0;
  *why = NULL;
  if (avail < SVC__FRAME_HEADER)
    return SVC_EAGAIN;
  rc = frame_check_header(p, lim, f, why);
  if (rc != 0)
    return rc;
  len = f->length;
  if (avail - SVC__FRAME_HEADER < len) {
    *consumed = SVC__FRAME_HEADER + (size_t)len;
    return SVC_EAGAIN;
  }
  pl = p + SVC__FRAME_HEADER;
  *consumed = SVC__FRAME_HEADER + (size_t)len;

  if (frame_has_block(f->type))
    return frame_decode_block(pl, len, lim, f, why, NULL, NULL, NULL);

  fixed = frame_fixed_len(f->type);
  if (f->type == SVC__F_HELLO || f->type == SVC__F_GOAWAY ? len < fixed
                                                          : len != fixed) {
    *why = "fixed payload of the wrong size";
    return SVC_EPROTO;
  }
  switch (f->type) {
  case SVC__F_HELLO:
    f->hello.max_frame = svc__get_u32(pl);
    f->hello.max_header_block = svc__get_u32(pl + 4);
    f->hello.max_headers = svc__get_u32(pl + 8);
    f->hello.max_streams = svc__get_u32(pl + 12);
    /* Bits this version does not know are ignored, like longer HELLOs. */
    f->hello.features =
        len >= SVC__FRAME_HELLO_SENT_LEN ? svc__get_u32(pl + 16) : 0;
    if (f->hello.max_frame < svc__frame_minimum_limits.max_frame ||
        f->hello.max_header_block <
            svc__frame_minimum_limits.max_header_block ||
        f->hello.max_headers < svc__frame_minimum_limits.max_headers ||
        f->hello.max_streams < svc__frame_minimum_limits.max_streams) {
      *why = "HELLO limits below the minimum";
      return SVC_EPROTO;
    }
    break;
  case SVC__F_RESET:
  case SVC__F_SUBACK:
  case SVC__F_PUBACK:
    f->code = svc__get_u32(pl);
    break;
  case SVC__F_CREDIT:
    f->value = svc__get_u32(pl);
    if (f->value == 0) {
      *why = "CREDIT of 0 bytes";
      return SVC_EPROTO;
    }
    break;
  case SVC__F_PING:
  case SVC__F_PONG:
    memcpy(f->ping, pl, 8);
    break;
  case SVC__F_GOAWAY:
    f->value = svc__get_u32(pl);
    f->code = svc__get_u32(pl + 4);
    f->reason.p = (const char *)pl + 8;
    f->reason.len = len - 8;
    break;
  default:
    break;
  }
  return 0;
}

void svc__frame_clear(struct svc__frame *f) {
  svc_msg_free(f->msg);
  f->msg = NULL;
}

void svc__frame_write_header(uint8_t *p, uint8_t type, uint8_t flags,
                             uint32_t id, uint32_t length) {
  p[0] = SVC__FRAME_VERSION;
  p[1] = type;
  p[2] = flags;
  p[3] = 0;
  svc__put_u32(p + 4, id);
  svc__put_u32(p + 8, length);
}

size_t svc__frame_block_size(const struct svc__frame_field *pseudo,
                             size_t npseudo, const svc_msg_t *msg,
                             size_t *count) {
  size_t size = 0;
  size_t n = npseudo;
  size_t i;
  const char *name;
  const char *value;
  const char *ct;

  size_t vl;

  for (i = 0; i < npseudo; i++) {
    /* A longer :path or :topic would be cut by the u16 length and leave
     * the rest of its bytes to be read as the next field. */
    if (pseudo[i].value_len > UINT16_MAX)
      return SIZE_MAX;
    size += 4 +
            (pseudo[i].name_len ? pseudo[i].name_len : strlen(pseudo[i].name)) +
            pseudo[i].value_len;
  }
  if (msg != NULL) {
    ct = svc_msg_content_type(msg);
    if (ct != NULL) {
      if (strlen(ct) > UINT16_MAX)
        return SIZE_MAX;
      size += 4 + 3 + strlen(ct);
      n++;
    }
    if (svc__msg_trace_bin(msg) != NULL) {
      size += 4 + 6 + SVC__FRAME_TRACE_LEN;
      n++;
    }
    for (i = 0; svc__msg_raw_header_at(msg, i, &name, &value) == 0; i++) {
      /* Field lengths are u16 on the wire (names are short already). */
      if ((vl = strlen(value)) > UINT16_MAX)
        return SIZE_MAX;
      size += 4 + strlen(name) + vl;
      n++;
    }
  }
  if (count != NULL)
    *count = n;
  return size;
}

static uint8_t *frame_put_field(uint8_t *p, const char *name, size_t nl,
                                const char *value, size_t vl) {
  svc__put_u16(p, (uint16_t)nl);
  svc__put_u16(p + 2, (uint16_t)vl);
  memcpy(p + 4, name, nl);
  memcpy(p + 4 + nl, value, vl);
  return p + 4 + nl + vl;
}

size_t svc__frame_put_trace(uint8_t *p, const svc_trace_t *t) {
  uint8_t tb[SVC__FRAME_TRACE_LEN];

  memcpy(tb, t->trace_id, 16);
  memcpy(tb + 16, t->span_id, 8);
  tb[24] = t->flags;
  return (size_t)(frame_put_field(p, ":trace", 6, (const char *)tb,
                                  sizeof(tb)) -
                  p);
}

size_t svc__frame_write_block(uint8_t *p, const struct svc__frame_field *pseudo,
                              size_t npseudo, const svc_msg_t *msg,
                              size_t block_size) {
  uint8_t *q = p + 4;
  size_t i;
  const char *name;
  const char *value;
  const char *ct;
  const svc_trace_t *t;

  svc__put_u32(p, (uint32_t)block_size);
  for (i = 0; i < npseudo; i++)
    q = frame_put_field(q, pseudo[i].name,
                        pseudo[i].name_len ? pseudo[i].name_len
                                           : strlen(pseudo[i].name),
                        pseudo[i].value, pseudo[i].value_len);
  if (msg != NULL) {
    ct = svc_msg_content_type(msg);
    if (ct != NULL)
      q = frame_put_field(q, ":ct", 3, ct, strlen(ct));
    if ((t = svc__msg_trace_bin(msg)) != NULL)
      q += svc__frame_put_trace(q, t);
    for (i = 0; svc__msg_raw_header_at(msg, i, &name, &value) == 0; i++)
      q = frame_put_field(q, name, strlen(name), value, strlen(value));
  }
  assert((size_t)(q - p) == 4 + block_size);
  return (size_t)(q - p);
}
