/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Bodies up to this size live inside the message, so that creating and
 * freeing a typical small message costs one allocation, not two. The +1
 * keeps copied bodies NUL-terminated, which costs nothing and makes text
 * bodies safe to print in a debugger. */
#define MSG_INLINE 64
/* Topics shorter than this live inside the message. */
#define MSG_INLINE_TOPIC 48

enum msg_body_kind {
  MSG_BODY_INLINE, /* body points at inline_body. */
  MSG_BODY_HEAP,   /* body is our own svc__malloc() copy. */
  MSG_BODY_TAKEN   /* body was handed over; free_fn (if any) releases it. */
};

/* One header. name and value share one allocation, "name\0value\0", owned
 * through name. The lengths make lookups and byte accounting O(1) per
 * header. */
struct msg_hdr {
  char *name;
  char *value;
  size_t name_len;
  size_t value_len;
};

struct svc_msg_s {
  unsigned refs;
  enum msg_body_kind kind;
  char *body;
  size_t len;
  void (*free_fn)(void *body);
  struct msg_hdr *hdrs;
  size_t nhdrs;
  size_t hdrs_cap;
  size_t hdr_bytes; /* Sum of name and value lengths, for the limits. */
  char *content_type;
  size_t content_type_len;
  char *topic; /* inline_topic, or allocated when longer. */
  size_t topic_len;
  char inline_topic[MSG_INLINE_TOPIC];
  char inline_body[MSG_INLINE + 1];
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
  msg->hdrs = NULL;
  msg->nhdrs = 0;
  msg->hdrs_cap = 0;
  msg->hdr_bytes = 0;
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

static void msg_destroy(svc_msg_t *msg) {
  size_t i;

  msg_body_release(msg);
  for (i = 0; i < msg->nhdrs; i++)
    svc__free(msg->hdrs[i].name);
  svc__free(msg->hdrs);
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
 * that every transport can carry them unescaped. Returns the length, or 0
 * for an invalid name. */
static size_t msg_name_check(const char *name) {
  size_t n;
  unsigned char c;

  if (name == NULL)
    return 0;
  for (n = 0; name[n] != '\0'; n++) {
    c = (unsigned char)name[n];
    if (n == 255 || c < 0x21 || c > 0x7e || c == ':')
      return 0;
  }
  return n;
}

/* Values may hold any byte but CR and LF (header injection on HTTP and
 * line-based wire formats). Returns 0 and the length in *len, or
 * SVC_EINVAL. */
static int msg_value_check(const char *value, size_t *len) {
  size_t n;

  if (value == NULL)
    return SVC_EINVAL;
  for (n = 0; value[n] != '\0'; n++)
    if (value[n] == '\r' || value[n] == '\n')
      return SVC_EINVAL;
  *len = n;
  return 0;
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

/* Validates name and value and checks that the message stays within its
 * limits after adding them, once the headers named name are removed when
 * replacing. Stores the new header's storage in *out. */
static int msg_hdr_prepare(svc_msg_t *msg, const char *name,
                           const char *value, int replacing,
                           struct msg_hdr *out) {
  size_t name_len;
  size_t value_len;
  size_t count;
  size_t bytes;
  size_t i;
  char *block;

  name_len = msg_name_check(name);
  if (name_len == 0 || msg_value_check(value, &value_len) != 0)
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
    size_t cap = msg->hdrs_cap ? msg->hdrs_cap * 2 : 4;
    struct msg_hdr *hdrs = svc__realloc(msg->hdrs, cap * sizeof(*hdrs));
    if (hdrs == NULL)
      return SVC_ENOMEM;
    msg->hdrs = hdrs;
    msg->hdrs_cap = cap;
  }

  block = svc__malloc(name_len + value_len + 2);
  if (block == NULL)
    return SVC_ENOMEM;
  memcpy(block, name, name_len + 1);
  memcpy(block + name_len + 1, value, value_len + 1);
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
      svc__free(h->name);
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
    svc__free(h->name);
  }
}

int svc_msg_header_add(svc_msg_t *msg, const char *name, const char *value) {
  struct msg_hdr h;
  int err;

  assert(msg != NULL);
  err = msg_hdr_prepare(msg, name, value, 0, &h);
  if (err != 0)
    return err;
  msg_hdr_append(msg, &h);
  return 0;
}

int svc_msg_header_set(svc_msg_t *msg, const char *name, const char *value) {
  struct msg_hdr h;
  int err;

  assert(msg != NULL);
  /* Everything that can fail happens before the old headers go, so a
   * failed set leaves the message as it was. */
  err = msg_hdr_prepare(msg, name, value, 1, &h);
  if (err != 0)
    return err;
  msg_hdr_remove(msg, h.name, h.name_len);
  msg_hdr_append(msg, &h);
  return 0;
}

const char *svc_msg_header_get(const svc_msg_t *msg, const char *name) {
  size_t len;
  size_t i;

  assert(msg != NULL);
  if (name == NULL)
    return NULL;
  len = strlen(name);
  for (i = 0; i < msg->nhdrs; i++)
    if (msg_name_eq(&msg->hdrs[i], name, len))
      return msg->hdrs[i].value;
  return NULL;
}

size_t svc_msg_header_remove(svc_msg_t *msg, const char *name) {
  assert(msg != NULL);
  if (name == NULL)
    return 0;
  return msg_hdr_remove(msg, name, strlen(name));
}

size_t svc_msg_header_count(const svc_msg_t *msg) {
  assert(msg != NULL);
  return msg->nhdrs;
}

int svc_msg_header_at(const svc_msg_t *msg, size_t i, const char **name,
                      const char **value) {
  assert(msg != NULL);
  if (i >= msg->nhdrs)
    return SVC_EINVAL;
  if (name != NULL)
    *name = msg->hdrs[i].name;
  if (value != NULL)
    *value = msg->hdrs[i].value;
  return 0;
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
  if (msg_value_check(type, &len) != 0 || len == 0)
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
  cost = msg->len + msg->hdr_bytes + msg->content_type_len;
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
  if (msg->nhdrs > 0) {
    copy->hdrs = svc__malloc(msg->nhdrs * sizeof(*copy->hdrs));
    if (copy->hdrs == NULL)
      goto fail;
    copy->hdrs_cap = msg->nhdrs;
    for (i = 0; i < msg->nhdrs; i++) {
      const struct msg_hdr *src = &msg->hdrs[i];
      struct msg_hdr *dst = &copy->hdrs[i];
      size_t size = src->name_len + src->value_len + 2;
      dst->name = svc__malloc(size);
      if (dst->name == NULL)
        goto fail;
      memcpy(dst->name, src->name, size);
      dst->value = dst->name + src->name_len + 1;
      dst->name_len = src->name_len;
      dst->value_len = src->value_len;
      copy->nhdrs++;
    }
    copy->hdr_bytes = msg->hdr_bytes;
  }
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

void svc__msg_swap_headers(svc_msg_t *a, svc_msg_t *b) {
  struct msg_hdr *hdrs = a->hdrs;
  size_t nhdrs = a->nhdrs;
  size_t cap = a->hdrs_cap;
  size_t bytes = a->hdr_bytes;

  a->hdrs = b->hdrs;
  a->nhdrs = b->nhdrs;
  a->hdrs_cap = b->hdrs_cap;
  a->hdr_bytes = b->hdr_bytes;
  b->hdrs = hdrs;
  b->nhdrs = nhdrs;
  b->hdrs_cap = cap;
  b->hdr_bytes = bytes;
}
