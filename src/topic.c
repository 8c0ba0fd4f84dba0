/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* MQTT topic rules (MQTT 3.1.1 section 4.7, MQTT 5 sections 4.7 and 4.8.2).
 * Levels are separated by '/', and empty levels are legal ("a//b", "/a").
 * These functions work on bytes: they never allocate and never recurse, so
 * a 64 KiB topic of empty levels costs nothing special. */

#define TOPIC_SHARE "$share/"
#define TOPIC_SHARE_LEN (sizeof(TOPIC_SHARE) - 1)

int svc__topic_check_name(const char *topic) {
  size_t n;

  if (topic == NULL)
    return SVC_EINVAL;
  n = strnlen(topic, SVC__TOPIC_MAX + 1);
  if (n == 0 || n > SVC__TOPIC_MAX)
    return SVC_EINVAL;
  if (strpbrk(topic, "+#") != NULL)
    return SVC_EINVAL;
  return 0;
}

/* A filter without the $share prefix: each level containing a wildcard must
 * be exactly that wildcard, and '#' only in the last level. */
static int topic_check_plain(const char *f) {
  const char *end;
  size_t n;

  if (*f == '\0')
    return SVC_EINVAL;
  for (;;) {
    end = f + strcspn(f, "/");
    n = (size_t)(end - f);
    if (memchr(f, '+', n) != NULL && !(n == 1 && f[0] == '+'))
      return SVC_EINVAL;
    if (memchr(f, '#', n) != NULL && !(n == 1 && *end == '\0'))
      return SVC_EINVAL;
    if (*end == '\0')
      return 0;
    f = end + 1;
  }
}

int svc__topic_check_filter(const char *filter) {
  const char *group;
  const char *rest;
  size_t n;
  size_t glen;

  if (filter == NULL)
    return SVC_EINVAL;
  n = strnlen(filter, SVC__TOPIC_MAX + 1);
  if (n == 0 || n > SVC__TOPIC_MAX)
    return SVC_EINVAL;
  /* "$share/g" would be a valid plain filter, but MQTT 5 reserves the
   * prefix: whatever starts with it must be a complete shared filter. */
  if (strncmp(filter, TOPIC_SHARE, TOPIC_SHARE_LEN) == 0) {
    if (!svc__topic_split_share(filter, &group, &glen, &rest))
      return SVC_EINVAL;
    if (glen == 0 || memchr(group, '+', glen) != NULL ||
        memchr(group, '#', glen) != NULL)
      return SVC_EINVAL;
    filter = rest;
  }
  return topic_check_plain(filter);
}

int svc__topic_match(const char *filter, const char *topic) {
  const char *fe;
  const char *te;
  size_t fn;

  /* MQTT 4.7.2: a leading wildcard must not match "$SYS/..." and friends,
   * so that "#" subscribers do not see server internals. */
  if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
    return 0;
  for (;;) {
    /* filter and topic both point at the start of a level here. */
    if (filter[0] == '#')
      return 1;
    fe = filter + strcspn(filter, "/");
    te = topic + strcspn(topic, "/");
    fn = (size_t)(fe - filter);
    if (!(fn == 1 && filter[0] == '+') &&
        (fn != (size_t)(te - topic) || memcmp(filter, topic, fn) != 0))
      return 0;
    if (*te == '\0')
      /* Out of topic levels: only a trailing "/#" may remain, because '#'
       * also matches its parent level ("a/#" matches "a"). */
      return *fe == '\0' || strcmp(fe, "/#") == 0;
    if (*fe == '\0')
      return 0;
    filter = fe + 1;
    topic = te + 1;
  }
}

int svc__topic_is_name(const char *filter) {
  return strncmp(filter, TOPIC_SHARE, TOPIC_SHARE_LEN) != 0 &&
         strpbrk(filter, "+#") == NULL;
}

int svc__topic_split_share(const char *filter, const char **group,
                           size_t *group_len, const char **rest) {
  const char *g;
  const char *slash;

  if (strncmp(filter, TOPIC_SHARE, TOPIC_SHARE_LEN) != 0)
    return 0;
  g = filter + TOPIC_SHARE_LEN;
  slash = strchr(g, '/');
  if (slash == NULL)
    return 0;
  /* An empty group ("$share//f") is still recognised so that the checker
   * can refuse it rather than take it for a plain filter. */
  if (group != NULL)
    *group = g;
  if (group_len != NULL)
    *group_len = (size_t)(slash - g);
  if (rest != NULL)
    *rest = slash + 1;
  return 1;
}
