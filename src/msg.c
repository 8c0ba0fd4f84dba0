/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Bodies up to this size live inside the message, so that creating and
 * freeing a typical small message costs one allocation, not two. The +1
 * keeps copied bodies NUL-terminated, which costs nothing and makes text
 * bodies safe to print in a debugger. */
#define MSG_INLINE 64
/* Topics shorter than this live inside the message. */
#define MSG_INLINE_TOPIC 48
/* The first headers live inside the message too: their slots, and their
 * bytes in a small arena. A call or event that carries a traceparent and a
 * few more headers then costs no allocation for them, which is what makes
 * starting a trace on every call affordable. */
#define MSG_INLINE_HDRS 4
#define MSG_HDR_ARENA 192

enum msg_body_kind {
  MSG_BODY_INLINE, /* body points at inline_body. */
  MSG_BODY_HEAP,   /* body is our own svc__malloc() copy. */
  MSG_BODY_TAKEN   /* body was handed over; free_fn (if any) releases it. */
};

/* One header. name and value share one block, "name\0value\0", owned
 * through name: in the message's arena, or allocated when it does not fit.
 * The lengths make lookups and byte accounting O(1) per header. */
struct msg_hdr {
  char *name;
  char *value;
  size_t name_len;
  size_t value_len;
};

/* What every event touches comes first (the reference count, the body,
 * whether there are headers): a subscriber's queue holds a thousand
 * messages, so each one is cold when delivered and every further cache
 * line it touches costs a miss. */
struct svc_msg_s {
  unsigned refs;
  enum msg_body_kind kind;
  char *body;
  size_t len;
  size_t nhdrs;
  /* A traceparent kept in binary until the headers are read as text
   * (msg_trace_to_header()): starting, forwarding and reading a trace then
   * costs no formatting, parsing or allocation, and tcp:// carries it in
   * 25 bytes. While set, no "traceparent" header is in hdrs. */
  int has_trace;
  struct msg_hdr *hdrs;
  void (*free_fn)(void *body);
  size_t hdrs_cap;
  size_t hdr_bytes; /* Sum of name and value lengths, for the limits. */
  size_t arena_used; /* Bytes of hdr_arena handed out (never reused). */
  svc_trace_t trace;
  char *content_type;
  size_t content_type_len;
  char *topic; /* inline_topic, or allocated when longer. */
  size_t topic_len;
  char inline_topic[MSG_INLINE_TOPIC];
  char inline_body[MSG_INLINE + 1];
  struct msg_hdr inline_hdrs[MSG_INLINE_HDRS];
  char hdr_arena[MSG_HDR_ARENA];
};

/* Freed messages kept for reuse, per thread, while a context of the thread
 * is open: events are made and freed at a high rate, many at a time (a
 * subscription queue holds a thousand), which is more than the allocator's
 * own per-thread cache keeps. The spares are chained through their body
 * pointer. */
#define MSG_SPARES 4096

static SVC__TLS svc_msg_t *msg_spares;
static SVC__TLS size_t msg_nspares;
static SVC__TLS int msg_cache_users;

void svc__msg_cache_hold(void) {
  msg_cache_users++;
}

void svc__msg_cache_release(void) {
  svc_msg_t *msg;

  if (--msg_cache_users > 0)
    return;
  while ((msg = msg_spares) != NULL) {
    msg_spares = (svc_msg_t *)msg->body;
    svc__free(msg);
  }
  msg_nspares = 0;
}

static svc_msg_t *msg_alloc(void) {
  svc_msg_t *msg;

  if (msg_spares != NULL) {
    msg = msg_spares;
    msg_spares = (svc_msg_t *)msg->body;
    msg_nspares--;
  } else {
    msg = svc__malloc(sizeof(*msg));
    if (msg == NULL)
      return NULL;
  }
  msg->refs = 1;
  msg->kind = MSG_BODY_INLINE;
  msg->body = msg->inline_body;
  msg->len = 0;
  msg->free_fn = NULL;
  msg->hdrs = msg->inline_hdrs;
  msg->nhdrs = 0;
  msg->hdrs_cap = MSG_INLINE_HDRS;
  msg->hdr_bytes = 0;
  msg->arena_used = 0;
  msg->has_trace = 0;
  msg->content_type = NULL;
  msg->content_type_len = 0;
  msg->topic = NULL;
  msg->inline_body[0] = '\0';
  return msg;
}

static void msg_body_release(svc_msg_t *msg) {
  if (msg->kind == MSG_BODY_HEAP)
    svc__free(msg->body);
  else if (msg->kind == MSG_BODY_TAKEN && msg->free_fn != NULL &&
           msg->body != NULL)
    msg->free_fn(msg->body);
}

/* Replaces the body with a copy of body/len, keeping the old one on
 * failure. The copy is made before the old body is released, so body may
 * point into the current body. */
static int msg_body_copy(svc_msg_t *msg, const void *body, size_t len) {
  char *heap;

  if (len <= MSG_INLINE) {
    if (msg->kind == MSG_BODY_INLINE) {
      if (len > 0)
        memmove(msg->inline_body, body, len);
    } else {
      if (len > 0)
        memcpy(msg->inline_body, body, len);
      msg_body_release(msg);
    }
    msg->inline_body[len] = '\0';
    msg->kind = MSG_BODY_INLINE;
    msg->body = msg->inline_body;
  } else {
    if (len == SIZE_MAX)
      return SVC_ENOMEM;
    heap = svc__malloc(len + 1);
    if (heap == NULL)
      return SVC_ENOMEM;
    memcpy(heap, body, len);
    heap[len] = '\0';
    msg_body_release(msg);
    msg->kind = MSG_BODY_HEAP;
    msg->body = heap;
  }
  msg->free_fn = NULL;
  msg->len = len;
  return 0;
}

static int msg_in_arena(const svc_msg_t *msg, const char *block) {
  return block >= msg->hdr_arena && block < msg->hdr_arena + MSG_HDR_ARENA;
}

static void msg_hdr_block_free(svc_msg_t *msg, char *block) {
  if (!msg_in_arena(msg, block))
    svc__free(block);
}

/* Frees every header and returns the message to its inline storage. */
static void msg_hdrs_clear(svc_msg_t *msg) {
  size_t i;

  for (i = 0; i < msg->nhdrs; i++)
    msg_hdr_block_free(msg, msg->hdrs[i].name);
  if (msg->hdrs != msg->inline_hdrs)
    svc__free(msg->hdrs);
  msg->hdrs = msg->inline_hdrs;
  msg->hdrs_cap = MSG_INLINE_HDRS;
  msg->nhdrs = 0;
  msg->hdr_bytes = 0;
  msg->arena_used = 0;
  msg->has_trace = 0;
}

static void msg_destroy(svc_msg_t *msg) {
  msg_body_release(msg);
  msg_hdrs_clear(msg);
  svc__free(msg->content_type);
  if (msg->topic != msg->inline_topic)
    svc__free(msg->topic);
  if (msg_cache_users > 0 && msg_nspares < MSG_SPARES) {
    msg->body = (char *)msg_spares;
    msg_spares = msg;
    msg_nspares++;
    return;
  }
  svc__free(msg);
}

svc_msg_t *svc_msg_new(const void *body, size_t len) {
  svc_msg_t *msg;

  if (body == NULL && len > 0)
    return NULL;
  msg = msg_alloc();
  if (msg == NULL)
    return NULL;
  if (msg_body_copy(msg, body, len) != 0) {
    msg_destroy(msg);
    return NULL;
  }
  return msg;
}

svc_msg_t *svc_msg_new_str(const char *s) {
  assert(s != NULL);
  return svc_msg_new(s, strlen(s));
}

svc_msg_t *svc_msg_new_take(void *body, size_t len,
                            void (*free_fn)(void *body)) {
  svc_msg_t *msg;

  if (body == NULL && len > 0)
    return NULL;
  msg = msg_alloc();
  if (msg == NULL)
    return NULL;
  msg->kind = MSG_BODY_TAKEN;
  msg->body = body;
  msg->len = len;
  msg->free_fn = free_fn;
  return msg;
}

void svc_msg_free(svc_msg_t *msg) {
  svc__msg_unref(msg);
}

svc_msg_t *svc__msg_ref(svc_msg_t *msg) {
  assert(msg != NULL);
  assert(msg->refs > 0);
  msg->refs++;
  return msg;
}

void svc__msg_unref(svc_msg_t *msg) {
  if (msg == NULL)
    return;
  assert(msg->refs > 0);
  if (--msg->refs == 0)
    msg_destroy(msg);
}

const void *svc_msg_body(const svc_msg_t *msg, size_t *len) {
  assert(msg != NULL);
  if (len != NULL)
    *len = msg->len;
  /* A taken empty body may be NULL; callers are promised a valid pointer. */
  return msg->len > 0 ? msg->body : "";
}

size_t svc_msg_len(const svc_msg_t *msg) {
  assert(msg != NULL);
  return msg->len;
}

int svc_msg_set_body(svc_msg_t *msg, const void *body, size_t len) {
  assert(msg != NULL);
  if (body == NULL && len > 0)
    return SVC_EINVAL;
  return msg_body_copy(msg, body, len);
}

/* ---- Headers. */

/* Names follow HTTP's token rules loosely: visible ASCII without ':', so
 * that every transport can carry them unescaped. */
static int msg_name_ok(const char *name, size_t len) {
  size_t n;
  unsigned char c;

  if (len == 0 || len > 255)
    return 0;
  for (n = 0; n < len; n++) {
    c = (unsigned char)name[n];
    if (c < 0x21 || c > 0x7e || c == ':')
      return 0;
  }
  return 1;
}

/* Values may hold any byte but NUL, CR and LF (header injection on HTTP
 * and line-based wire formats). */
static int msg_value_ok(const char *value, size_t len) {
  return memchr(value, '\r', len) == NULL &&
         memchr(value, '\n', len) == NULL && memchr(value, '\0', len) == NULL;
}

/* ASCII-only case folding: header names are ASCII, and the C library's
 * tolower() depends on the locale. */
static int msg_lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int msg_name_eq(const struct msg_hdr *h, const char *name,
                       size_t len) {
  size_t i;

  if (h->name_len != len)
    return 0;
  for (i = 0; i < len; i++)
    if (msg_lower((unsigned char)h->name[i]) !=
        msg_lower((unsigned char)name[i]))
      return 0;
  return 1;
}

/* A block for "name\0value\0" of size bytes: from the arena while it
 * lasts (space is not reused after a removal; the message is short-lived),
 * else allocated. */
static char *msg_hdr_block(svc_msg_t *msg, size_t size) {
  char *block;

  if (size <= MSG_HDR_ARENA - msg->arena_used) {
    block = msg->hdr_arena + msg->arena_used;
    msg->arena_used += size;
    return block;
  }
  return svc__malloc(size);
}

/* Validates name and value and checks that the message stays within its
 * limits after adding them, once the headers named name are removed when
 * replacing. Makes room for one more slot and stores the new header's
 * block in *out. */
static int msg_hdr_prepare(svc_msg_t *msg, const char *name, size_t name_len,
                           const char *value, size_t value_len, int replacing,
                           struct msg_hdr *out) {
  size_t count;
  size_t bytes;
  size_t i;
  char *block;

  if (!msg_name_ok(name, name_len) || !msg_value_ok(value, value_len))
    return SVC_EINVAL;

  count = msg->nhdrs;
  bytes = msg->hdr_bytes;
  if (replacing) {
    for (i = 0; i < msg->nhdrs; i++) {
      if (msg_name_eq(&msg->hdrs[i], name, name_len)) {
        count--;
        bytes -= msg->hdrs[i].name_len + msg->hdrs[i].value_len;
      }
    }
  }
  /* Compare by subtraction so that a huge value cannot wrap the sum. */
  if (count >= SVC_MSG_MAX_HEADERS ||
      value_len > SVC_MSG_MAX_HEADER_BYTES - bytes ||
      name_len > SVC_MSG_MAX_HEADER_BYTES - bytes - value_len)
    return SVC_EMSGSIZE;

  if (msg->nhdrs == msg->hdrs_cap) {
    size_t cap = msg->hdrs_cap * 2;
    struct msg_hdr *hdrs;
    if (msg->hdrs == msg->inline_hdrs) {
      hdrs = svc__malloc(cap * sizeof(*hdrs));
      if (hdrs != NULL)
        memcpy(hdrs, msg->hdrs, msg->nhdrs * sizeof(*hdrs));
    } else {
      hdrs = svc__realloc(msg->hdrs, cap * sizeof(*hdrs));
    }
    if (hdrs == NULL)
      return SVC_ENOMEM;
    msg->hdrs = hdrs;
    msg->hdrs_cap = cap;
  }

  block = msg_hdr_block(msg, name_len + value_len + 2);
  if (block == NULL)
    return SVC_ENOMEM;
  memcpy(block, name, name_len);
  block[name_len] = '\0';
  memcpy(block + name_len + 1, value, value_len);
  block[name_len + 1 + value_len] = '\0';
  out->name = block;
  out->value = block + name_len + 1;
  out->name_len = name_len;
  out->value_len = value_len;
  return 0;
}

static void msg_hdr_append(svc_msg_t *msg, const struct msg_hdr *h) {
  assert(msg->nhdrs < msg->hdrs_cap);
  msg->hdrs[msg->nhdrs++] = *h;
  msg->hdr_bytes += h->name_len + h->value_len;
}

static size_t msg_hdr_remove(svc_msg_t *msg, const char *name,
                             size_t name_len) {
  size_t i;
  size_t j;
  size_t removed;

  /* One pass that compacts the array keeps the survivors in order. */
  removed = 0;
  for (i = 0, j = 0; i < msg->nhdrs; i++) {
    struct msg_hdr *h = &msg->hdrs[i];
    if (msg_name_eq(h, name, name_len)) {
      msg->hdr_bytes -= h->name_len + h->value_len;
      msg_hdr_block_free(msg, h->name);
      removed++;
    } else {
      msg->hdrs[j++] = *h;
    }
  }
  msg->nhdrs = j;
  return removed;
}

void svc__msg_headers_truncate(svc_msg_t *msg, size_t count) {
  while (msg->nhdrs > count) {
    struct msg_hdr *h = &msg->hdrs[--msg->nhdrs];
    msg->hdr_bytes -= h->name_len + h->value_len;
    msg_hdr_block_free(msg, h->name);
  }
}

static int msg_trace_to_header(const svc_msg_t *cmsg);

int svc__msg_header_add_n(svc_msg_t *msg, const char *name, size_t name_len,
                          const char *value, size_t value_len) {
  static const struct msg_hdr traceparent = {.name = (char *)"traceparent",
                                              .name_len = 11};
  struct msg_hdr h;
  int err;

  assert(msg != NULL);
  /* A second traceparent (a decoder that took the first into binary)
   * joins it as text, after it: a binary trace and a traceparent header
   * never stand side by side. */
  if (msg->has_trace && msg_name_eq(&traceparent, name, name_len)) {
    err = msg_trace_to_header(msg);
    if (err != 0)
      return err;
  }
  err = msg_hdr_prepare(msg, name, name_len, value, value_len, 0, &h);
  if (err != 0)
    return err;
  msg_hdr_append(msg, &h);
  return 0;
}

/* The binary traceparent becomes an ordinary header before anything reads
 * or changes the headers as text, so that they always show it. The
 * message is logically unchanged, hence the casts from const. On failure
 * (no memory) it stays binary: the text view then lacks it. */
static int msg_trace_to_header(const svc_msg_t *cmsg) {
  svc_msg_t *msg = (svc_msg_t *)cmsg;
  char text[SVC_TRACEPARENT_LEN + 1];
  struct msg_hdr h;
  int err;

  if (!msg->has_trace)
    return 0;
  svc_trace_format(&msg->trace, text);
  err = msg_hdr_prepare(msg, "traceparent", 11, text, SVC_TRACEPARENT_LEN, 0,
                        &h);
  if (err != 0)
    return err;
  msg->has_trace = 0;
  msg_hdr_append(msg, &h);
  return 0;
}

int svc_msg_header_add(svc_msg_t *msg, const char *name, const char *value) {
  int err;

  assert(msg != NULL);
  if (name == NULL || value == NULL)
    return SVC_EINVAL;
  err = msg_trace_to_header(msg);
  if (err != 0)
    return err;
  return svc__msg_header_add_n(msg, name, strlen(name), value, strlen(value));
}

int svc_msg_header_set(svc_msg_t *msg, const char *name, const char *value) {
  struct msg_hdr h;
  size_t name_len;
  int err;

  assert(msg != NULL);
  if (name == NULL || value == NULL)
    return SVC_EINVAL;
  err = msg_trace_to_header(msg);
  if (err != 0)
    return err;
  /* Everything that can fail happens before the old headers go, so a
   * failed set leaves the message as it was. */
  name_len = strlen(name);
  err = msg_hdr_prepare(msg, name, name_len, value, strlen(value), 1, &h);
  if (err != 0)
    return err;
  msg_hdr_remove(msg, name, name_len);
  msg_hdr_append(msg, &h);
  return 0;
}

/* The first header named name (len bytes), without the binary trace. */
static const char *msg_hdr_find(const svc_msg_t *msg, const char *name,
                                size_t len) {
  size_t i;

  for (i = 0; i < msg->nhdrs; i++)
    if (msg_name_eq(&msg->hdrs[i], name, len))
      return msg->hdrs[i].value;
  return NULL;
}

const char *svc_msg_header_get(const svc_msg_t *msg, const char *name) {
  assert(msg != NULL);
  if (name == NULL)
    return NULL;
  msg_trace_to_header(msg);
  return msg_hdr_find(msg, name, strlen(name));
}

size_t svc_msg_header_remove(svc_msg_t *msg, const char *name) {
  assert(msg != NULL);
  if (name == NULL)
    return 0;
  msg_trace_to_header(msg);
  return msg_hdr_remove(msg, name, strlen(name));
}

size_t svc_msg_header_count(const svc_msg_t *msg) {
  assert(msg != NULL);
  msg_trace_to_header(msg);
  return msg->nhdrs;
}

int svc_msg_header_at(const svc_msg_t *msg, size_t i, const char **name,
                      const char **value) {
  assert(msg != NULL);
  msg_trace_to_header(msg);
  return svc__msg_raw_header_at(msg, i, name, value);
}

int svc__msg_raw_header_at(const svc_msg_t *msg, size_t i, const char **name,
                           const char **value) {
  if (i >= msg->nhdrs)
    return SVC_EINVAL;
  if (name != NULL)
    *name = msg->hdrs[i].name;
  if (value != NULL)
    *value = msg->hdrs[i].value;
  return 0;
}

const svc_trace_t *svc__msg_trace_bin(const svc_msg_t *msg) {
  return msg->has_trace ? &msg->trace : NULL;
}

int svc__msg_has_headers(const svc_msg_t *msg) {
  return msg->nhdrs > 0 || msg->has_trace;
}

int svc__msg_is_plain(const svc_msg_t *msg) {
  return msg->nhdrs == 0 && msg->content_type == NULL;
}

int svc_msg_trace(const svc_msg_t *msg, svc_trace_t *out) {
  const char *v;

  if (msg == NULL || out == NULL)
    return SVC_EINVAL;
  if (msg->has_trace) {
    *out = msg->trace;
    return 0;
  }
  if (msg->nhdrs == 0 || (v = msg_hdr_find(msg, "traceparent", 11)) == NULL)
    return SVC_ENOENT;
  return svc_trace_parse(v, out);
}

int svc__msg_put_trace(svc_msg_t *msg, const svc_trace_t *t) {
  uint64_t w[3];

  /* All-zero ids are invalid: three words, not a byte loop. */
  memcpy(w, t->trace_id, 16);
  memcpy(w + 2, t->span_id, 8);
  if ((w[0] | w[1]) == 0 || w[2] == 0)
    return SVC_EINVAL;
  if (msg->nhdrs > 0)
    msg_hdr_remove(msg, "traceparent", 11);
  msg->trace = *t;
  msg->has_trace = 1;
  return 0;
}

int svc_msg_set_trace(svc_msg_t *msg, const svc_trace_t *t) {
  if (msg == NULL || t == NULL)
    return SVC_EINVAL;
  return svc__msg_put_trace(msg, t);
}

int svc__msg_add_pairs(svc_msg_t *msg, const char *const *pairs, size_t n) {
  size_t i;
  int err;

  assert(msg != NULL);
  assert(pairs != NULL || n == 0);
  for (i = 0; i < n; i++) {
    err = svc_msg_header_add(msg, pairs[2 * i], pairs[2 * i + 1]);
    if (err != 0)
      return err;
  }
  return 0;
}

/* ---- Content type and topic. */

int svc_msg_set_content_type(svc_msg_t *msg, const char *type) {
  size_t len;
  char *copy;

  assert(msg != NULL);
  if (type == NULL) {
    svc__free(msg->content_type);
    msg->content_type = NULL;
    msg->content_type_len = 0;
    return 0;
  }
  /* It travels as a header value on HTTP, so the same rules apply. */
  len = strlen(type);
  if (len == 0 || !msg_value_ok(type, len))
    return SVC_EINVAL;
  copy = svc__strndup(type, len);
  if (copy == NULL)
    return SVC_ENOMEM;
  svc__free(msg->content_type);
  msg->content_type = copy;
  msg->content_type_len = len;
  return 0;
}

const char *svc_msg_content_type(const svc_msg_t *msg) {
  assert(msg != NULL);
  return msg->content_type;
}

int svc__msg_set_topic_n(svc_msg_t *msg, const char *topic, size_t len) {
  char *copy;

  assert(msg != NULL && topic != NULL);
  /* Most topics are short: every event carries one, so keeping it in the
   * message saves an allocation per event. */
  if (len < MSG_INLINE_TOPIC && msg->topic != msg->inline_topic) {
    copy = msg->inline_topic;
  } else if ((copy = svc__malloc(len + 1)) == NULL) {
    return SVC_ENOMEM;
  }
  memmove(copy, topic, len);
  copy[len] = '\0';
  if (msg->topic != msg->inline_topic)
    svc__free(msg->topic);
  msg->topic = copy;
  msg->topic_len = len;
  return 0;
}

size_t svc__msg_topic_len(const svc_msg_t *msg) {
  return msg->topic != NULL ? msg->topic_len : 0;
}

int svc__msg_set_topic(svc_msg_t *msg, const char *topic) {
  assert(msg != NULL);
  if (topic == NULL) {
    if (msg->topic != msg->inline_topic)
      svc__free(msg->topic);
    msg->topic = NULL;
    return 0;
  }
  return svc__msg_set_topic_n(msg, topic, strlen(topic));
}

const char *svc_msg_topic(const svc_msg_t *msg) {
  assert(msg != NULL);
  return msg->topic;
}

size_t svc__msg_cost(const svc_msg_t *msg) {
  size_t cost;

  assert(msg != NULL);
  cost = msg->len + msg->hdr_bytes + msg->content_type_len +
         (msg->has_trace ? SVC_TRACEPARENT_LEN : 0);
  return cost > 0 ? cost : 1;
}

/* ---- Copies. */

svc_msg_t *svc_msg_dup(const svc_msg_t *msg) {
  svc_msg_t *copy;
  size_t i;

  assert(msg != NULL);
  copy = svc_msg_new(msg->body, msg->len);
  if (copy == NULL)
    return NULL;
  for (i = 0; i < msg->nhdrs; i++) {
    const struct msg_hdr *h = &msg->hdrs[i];
    if (svc__msg_header_add_n(copy, h->name, h->name_len, h->value,
                              h->value_len) != 0)
      goto fail;
  }
  copy->has_trace = msg->has_trace;
  copy->trace = msg->trace;
  if (msg->content_type != NULL) {
    copy->content_type = svc__strndup(msg->content_type,
                                      msg->content_type_len);
    if (copy->content_type == NULL)
      goto fail;
    copy->content_type_len = msg->content_type_len;
  }
  if (msg->topic != NULL && svc__msg_set_topic(copy, msg->topic) != 0)
    goto fail;
  return copy;

fail:
  msg_destroy(copy);
  return NULL;
}

void svc__msg_move_headers(svc_msg_t *dst, svc_msg_t *src) {
  size_t i;

  msg_hdrs_clear(dst);
  if (src->hdrs != src->inline_hdrs) {
    dst->hdrs = src->hdrs;
    dst->hdrs_cap = src->hdrs_cap;
  }
  /* dst's arena is empty and as large as src's, so whatever src keeps in
   * its arena fits: the move cannot fail. */
  for (i = 0; i < src->nhdrs; i++) {
    struct msg_hdr h = src->hdrs[i];
    if (msg_in_arena(src, h.name)) {
      size_t size = h.name_len + h.value_len + 2;
      char *block = dst->hdr_arena + dst->arena_used;
      memcpy(block, h.name, size);
      dst->arena_used += size;
      h.name = block;
      h.value = block + h.name_len + 1;
    }
    dst->hdrs[i] = h;
  }
  dst->nhdrs = src->nhdrs;
  dst->hdr_bytes = src->hdr_bytes;
  dst->has_trace = src->has_trace;
  dst->trace = src->trace;
  src->has_trace = 0;
  if (src->hdrs != src->inline_hdrs)
    src->hdrs = src->inline_hdrs;
  src->hdrs_cap = MSG_INLINE_HDRS;
  src->nhdrs = 0;
  src->hdr_bytes = 0;
  src->arena_used = 0;
}
