/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <stdlib.h>

/* Thin wrappers over libc. Every allocation in the library goes through
 * them, so that allocator hooks and out-of-memory tests need one change.
 * A request for zero bytes asks libc for one, so that every success is a
 * distinct non-NULL pointer and NULL always means out of memory, whatever
 * the platform does with malloc(0). */

void *svc__malloc(size_t size) {
  return malloc(size ? size : 1);
}

void *svc__calloc(size_t n, size_t size) {
  if (n == 0 || size == 0)
    return calloc(1, 1);
  return calloc(n, size);
}

void *svc__realloc(void *p, size_t size) {
  /* realloc(p, 0) may free p and return NULL, which a caller cannot tell
   * from failure; keep one byte instead. */
  return realloc(p, size ? size : 1);
}

void svc__free(void *p) {
  free(p);
}

char *svc__strdup(const char *s) {
  return svc__strndup(s, strlen(s));
}

char *svc__strndup(const char *s, size_t n) {
  char *copy;

  /* As POSIX strndup(): stop at the first NUL within n bytes. strnlen()
   * never reads past that NUL, so n may exceed the string's size. */
  n = strnlen(s, n);
  copy = svc__malloc(n + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, s, n);
  copy[n] = '\0';
  return copy;
}
