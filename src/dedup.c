/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* A bounded set of recent message ids: a chained hash table for lookups
 * and a ring in arrival order for forgetting the oldest. */

#define DEDUP_DEFAULT 10000

struct dedup_entry {
  struct dedup_entry *next; /* Bucket chain. */
  uint64_t hash;
  char id[]; /* NUL-terminated. */
};

struct svc_dedup_s {
  struct dedup_entry **buckets;
  size_t nbuckets; /* Power of two. */
  struct dedup_entry **ring;
  size_t capacity;
  size_t head; /* Oldest. */
  size_t len;
};

static uint64_t dedup_hash(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */

  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

svc_dedup_t *svc_dedup_new(size_t capacity) {
  svc_dedup_t *d = svc__calloc(1, sizeof(*d));
  size_t n = 16;

  if (d == NULL)
    return NULL;
  d->capacity = capacity > 0 ? capacity : DEDUP_DEFAULT;
  while (n < d->capacity * 2 && n < ((size_t)1 << 40))
    n *= 2;
  d->nbuckets = n;
  d->buckets = svc__calloc(n, sizeof(*d->buckets));
  d->ring = svc__calloc(d->capacity, sizeof(*d->ring));
  if (d->buckets == NULL || d->ring == NULL) {
    svc_dedup_free(d);
    return NULL;
  }
  return d;
}

void svc_dedup_free(svc_dedup_t *d) {
  size_t i;

  if (d == NULL)
    return;
  for (i = 0; d->ring != NULL && i < d->len; i++)
    svc__free(d->ring[(d->head + i) % d->capacity]);
  svc__free(d->ring);
  svc__free(d->buckets);
  svc__free(d);
}

static void dedup_forget_oldest(svc_dedup_t *d) {
  struct dedup_entry *e = d->ring[d->head];
  struct dedup_entry **pp = &d->buckets[e->hash & (d->nbuckets - 1)];

  while (*pp != e)
    pp = &(*pp)->next;
  *pp = e->next;
  svc__free(e);
  d->ring[d->head] = NULL;
  d->head = (d->head + 1) % d->capacity;
  d->len--;
}

int svc_dedup_check_id(svc_dedup_t *d, const char *id) {
  uint64_t h;
  size_t n;
  struct dedup_entry *e;
  struct dedup_entry **bucket;

  if (d == NULL || id == NULL || id[0] == '\0')
    return SVC_EINVAL;
  h = dedup_hash(id);
  bucket = &d->buckets[h & (d->nbuckets - 1)];
  for (e = *bucket; e != NULL; e = e->next)
    if (e->hash == h && strcmp(e->id, id) == 0)
      return 1;
  n = strlen(id);
  e = svc__malloc(sizeof(*e) + n + 1);
  if (e == NULL)
    return SVC_ENOMEM;
  if (d->len == d->capacity) {
    dedup_forget_oldest(d);
    bucket = &d->buckets[h & (d->nbuckets - 1)];
  }
  e->hash = h;
  memcpy(e->id, id, n + 1);
  e->next = *bucket;
  *bucket = e;
  d->ring[(d->head + d->len) % d->capacity] = e;
  d->len++;
  return 0;
}

int svc_dedup_check(svc_dedup_t *d, const svc_msg_t *msg) {
  const char *id;

  if (d == NULL || msg == NULL)
    return SVC_EINVAL;
  id = svc_msg_header_get(msg, "svc-id");
  if (id == NULL || id[0] == '\0')
    return 0;
  return svc_dedup_check_id(d, id);
}
