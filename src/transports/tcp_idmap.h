/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TCP_IDMAP_H
#define SVC_TCP_IDMAP_H

/* Open ids of one connection: a linear-probing hash table from a non-zero
 * u32 id to a pointer, with backward-shift deletion (no tombstones, so a
 * long-lived connection never degrades). */

#include "internal.h"

struct svc__idmap {
  uint32_t *keys; /* 0: empty. */
  void **vals;
  size_t cap; /* Power of two, or 0. */
  size_t len;
};

static inline size_t svc__idmap_slot(uint32_t id, size_t cap) {
  return (size_t)(id * 2654435761u) & (cap - 1);
}

static inline void *svc__idmap_get(const struct svc__idmap *m, uint32_t id) {
  size_t i;

  if (m->cap == 0)
    return NULL;
  for (i = svc__idmap_slot(id, m->cap); m->keys[i] != 0;
       i = (i + 1) & (m->cap - 1))
    if (m->keys[i] == id)
      return m->vals[i];
  return NULL;
}

static inline int svc__idmap_grow(struct svc__idmap *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  uint32_t *keys = svc__calloc(cap, sizeof(*keys));
  void **vals = svc__calloc(cap, sizeof(*vals));
  size_t i;
  size_t j;

  if (keys == NULL || vals == NULL) {
    svc__free(keys);
    svc__free(vals);
    return SVC_ENOMEM;
  }
  for (i = 0; i < m->cap; i++) {
    if (m->keys[i] == 0)
      continue;
    for (j = svc__idmap_slot(m->keys[i], cap); keys[j] != 0;
         j = (j + 1) & (cap - 1))
      ;
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  svc__free(m->keys);
  svc__free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = cap;
  return 0;
}

/* Adds id (not present). 0 or SVC_ENOMEM. */
static inline int svc__idmap_put(struct svc__idmap *m, uint32_t id, void *v) {
  size_t i;

  if ((m->len + 1) * 2 > m->cap && svc__idmap_grow(m) != 0)
    return SVC_ENOMEM;
  for (i = svc__idmap_slot(id, m->cap); m->keys[i] != 0;
       i = (i + 1) & (m->cap - 1))
    ;
  m->keys[i] = id;
  m->vals[i] = v;
  m->len++;
  return 0;
}

/* Removes id; returns its value or NULL. */
static inline void *svc__idmap_del(struct svc__idmap *m, uint32_t id) {
  size_t i;
  size_t j;
  size_t k;
  void *v;

  if (m->cap == 0)
    return NULL;
  for (i = svc__idmap_slot(id, m->cap); m->keys[i] != id;
       i = (i + 1) & (m->cap - 1))
    if (m->keys[i] == 0)
      return NULL;
  v = m->vals[i];
  m->len--;
  /* Shift back the entries that probed past the freed slot. */
  for (j = (i + 1) & (m->cap - 1); m->keys[j] != 0;
       j = (j + 1) & (m->cap - 1)) {
    k = svc__idmap_slot(m->keys[j], m->cap);
    if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  m->vals[i] = NULL;
  return v;
}

/* Removes and returns any one entry (for draining), or NULL when empty. */
static inline void *svc__idmap_pop(struct svc__idmap *m, uint32_t *id) {
  size_t i;

  if (m->len == 0)
    return NULL;
  for (i = 0; i < m->cap; i++) {
    if (m->keys[i] != 0) {
      *id = m->keys[i];
      return svc__idmap_del(m, m->keys[i]);
    }
  }
  return NULL;
}

static inline void svc__idmap_free(struct svc__idmap *m) {
  svc__free(m->keys);
  svc__free(m->vals);
  m->keys = NULL;
  m->vals = NULL;
  m->cap = m->len = 0;
}

#endif /* SVC_TCP_IDMAP_H */
