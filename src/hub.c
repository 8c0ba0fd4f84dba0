/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* The hub keeps subscriptions in a trie with one node per filter level, as
 * MQTT brokers do (mosquitto's subs.c), so a publish costs the topic's
 * depth times the number of wildcard branches, never the number of
 * subscriptions. Literal children sit in a small chained hash table per
 * node; '+' and '#' children have slots of their own because every publish
 * looks at them. Retained messages live in a separate hash table keyed by
 * topic: they are looked up by exact topic on publish and scanned with
 * svc__topic_match() only when a new subscription arrives. */

struct hub_node {
  struct hub_node *parent;
  struct hub_node *next; /* Bucket chain in the parent's table. */
  char *level;           /* NULL for '+' and '#' children. */
  size_t level_len;
  uint32_t hash;
  struct hub_node **buckets;
  size_t nbuckets; /* 0 or a power of two. */
  size_t nkids;    /* Literal children in buckets. */
  struct hub_node *plus;
  struct hub_node *multi;  /* The '#' child. */
  struct svc__list sinks;  /* svc__hub_sink.link, plain subscribers. */
  struct svc__list groups; /* hub_group.link */
};

/* A shared subscription group. Round robin is kept by order: the member
 * that last got an event moves to the tail, so the head is next in turn. */
struct hub_group {
  struct svc__list link;
  char *name;
  struct svc__list members; /* svc__hub_sink.link */
};

struct hub_retained {
  struct hub_retained *next;
  uint32_t hash;
  char *topic;
  svc_msg_t *msg;
};

struct svc__hub {
  struct hub_node root;
  size_t last_refused; /* Of the last svc__hub_publish(). */
  /* The nodes the last published topic matched, in visit order: services
   * publish to the same few topics over and over, and a string compare is
   * cheaper than a walk. Any add or remove invalidates it (nodes may go). */
  char *cache_topic;
  size_t cache_topic_len;
  size_t cache_topic_cap;
  struct hub_node **cache_nodes;
  size_t cache_n;
  size_t cache_cap;
  int cache_valid;
  size_t nwaiting; /* QoS >= 1 publishes waiting for room (pubsub.c). */
  size_t nsinks;
  size_t max_retained;
  size_t nretained;
  struct hub_retained **rbuckets;
  size_t nrbuckets; /* 0 or a power of two. */
};

/* State of one publish walk. The walk runs twice for QoS >= 1: a check
 * pass that only asks has_room(), then the delivery pass. Two walks cost
 * less than collecting the sinks into an array, which could fail. */
struct hub_walk {
  struct svc__hub *hub;
  const char *topic;
  svc_msg_t *msg;
  int qos;
  int check;
  int ok;
  int delivered;
  int refused;     /* Sinks whose deliver() said no (full). */
  int collect;     /* Record the matching nodes in the cache instead. */
  int collect_failed;
};

/* FNV-1a: short keys, no adversary worth a keyed hash inside one
 * process's subscription table. */
static uint32_t hub_hash(const char *s, size_t n) {
  uint32_t h;
  size_t i;

  h = 2166136261u;
  for (i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 16777619u;
  }
  return h;
}

static int hub_room(struct svc__hub_sink *sink) {
  return sink->has_room == NULL || sink->has_room(sink);
}

/* ---- Trie nodes. */

static void hub_node_init(struct hub_node *n, struct hub_node *parent) {
  memset(n, 0, sizeof(*n));
  n->parent = parent;
  svc__list_init(&n->sinks);
  svc__list_init(&n->groups);
}

static struct hub_node *hub_kid_find(const struct hub_node *n,
                                     const char *level, size_t len,
                                     uint32_t h) {
  struct hub_node *k;

  if (n->nbuckets == 0)
    return NULL;
  for (k = n->buckets[h & (n->nbuckets - 1)]; k != NULL; k = k->next)
    if (k->hash == h && k->level_len == len &&
        memcmp(k->level, level, len) == 0)
      return k;
  return NULL;
}

/* Doubles the bucket array. Failure is harmless once there is one: chains
 * just get longer. */
static int hub_kids_grow(struct hub_node *n) {
  struct hub_node **b;
  struct hub_node *k;
  struct hub_node *next;
  size_t size;
  size_t i;

  size = n->nbuckets == 0 ? 4 : n->nbuckets * 2;
  b = svc__calloc(size, sizeof(*b));
  if (b == NULL)
    return n->nbuckets == 0 ? SVC_ENOMEM : 0;
  for (i = 0; i < n->nbuckets; i++) {
    for (k = n->buckets[i]; k != NULL; k = next) {
      next = k->next;
      k->next = b[k->hash & (size - 1)];
      b[k->hash & (size - 1)] = k;
    }
  }
  svc__free(n->buckets);
  n->buckets = b;
  n->nbuckets = size;
  return 0;
}

/* Returns the child of n for one filter level, creating it, or NULL when
 * out of memory. */
static struct hub_node *hub_kid_get(struct hub_node *n, const char *level,
                                    size_t len) {
  struct hub_node **slot;
  struct hub_node *k;
  uint32_t h;

  slot = NULL;
  if (len == 1 && level[0] == '+')
    slot = &n->plus;
  else if (len == 1 && level[0] == '#')
    slot = &n->multi;
  if (slot != NULL) {
    if (*slot == NULL) {
      *slot = svc__malloc(sizeof(**slot));
      if (*slot != NULL)
        hub_node_init(*slot, n);
    }
    return *slot;
  }

  h = hub_hash(level, len);
  k = hub_kid_find(n, level, len, h);
  if (k != NULL)
    return k;
  if (n->nkids + 1 > n->nbuckets && hub_kids_grow(n) != 0)
    return NULL;
  k = svc__malloc(sizeof(*k));
  if (k == NULL)
    return NULL;
  hub_node_init(k, n);
  k->level = svc__strndup(level, len);
  if (k->level == NULL) {
    svc__free(k);
    return NULL;
  }
  k->level_len = len;
  k->hash = h;
  k->next = n->buckets[h & (n->nbuckets - 1)];
  n->buckets[h & (n->nbuckets - 1)] = k;
  n->nkids++;
  return k;
}

static void hub_kid_unlink(struct hub_node *p, struct hub_node *k) {
  struct hub_node **pp;

  if (p->plus == k) {
    p->plus = NULL;
    return;
  }
  if (p->multi == k) {
    p->multi = NULL;
    return;
  }
  for (pp = &p->buckets[k->hash & (p->nbuckets - 1)]; *pp != k;
       pp = &(*pp)->next)
    assert(*pp != NULL);
  *pp = k->next;
  if (--p->nkids == 0) {
    svc__free(p->buckets);
    p->buckets = NULL;
    p->nbuckets = 0;
  }
}

static int hub_node_unused(const struct hub_node *n) {
  return svc__list_empty(&n->sinks) && svc__list_empty(&n->groups) &&
         n->nkids == 0 && n->plus == NULL && n->multi == NULL;
}

/* Frees n and its ancestors while they hold nothing, so that a hub that
 * sees many short-lived filters does not grow without bound. */
static void hub_prune(struct hub_node *n) {
  struct hub_node *p;

  while (n->parent != NULL && hub_node_unused(n)) {
    p = n->parent;
    hub_kid_unlink(p, n);
    svc__free(n->level);
    svc__free(n);
    n = p;
  }
}

static void hub_group_free(struct hub_group *g) {
  svc__free(g->name);
  svc__free(g);
}

/* Frees what n owns; the caller frees n itself (the root is embedded).
 * Sinks are not touched: they belong to their owners. */
static void hub_node_clear(struct hub_node *n) {
  struct svc__list *pos;
  struct svc__list *tmp;
  struct hub_node *k;
  struct hub_node *next;
  size_t i;

  for (i = 0; i < n->nbuckets; i++) {
    for (k = n->buckets[i]; k != NULL; k = next) {
      next = k->next;
      hub_node_clear(k);
      svc__free(k->level);
      svc__free(k);
    }
  }
  svc__free(n->buckets);
  if (n->plus != NULL) {
    hub_node_clear(n->plus);
    svc__free(n->plus);
  }
  if (n->multi != NULL) {
    hub_node_clear(n->multi);
    svc__free(n->multi);
  }
  svc__list_foreach_safe(pos, tmp, &n->groups) {
    hub_group_free(svc__container_of(pos, struct hub_group, link));
  }
}

/* ---- The hub. */

struct svc__hub *svc__hub_new(size_t max_retained) {
  struct svc__hub *hub;

  hub = svc__calloc(1, sizeof(*hub));
  if (hub == NULL)
    return NULL;
  hub_node_init(&hub->root, NULL);
  hub->max_retained = max_retained;
  return hub;
}

void svc__hub_free(struct svc__hub *hub) {
  struct hub_retained *e;
  struct hub_retained *next;
  size_t i;

  if (hub == NULL)
    return;
  assert(hub->nsinks == 0);
  hub_node_clear(&hub->root);
  for (i = 0; i < hub->nrbuckets; i++) {
    for (e = hub->rbuckets[i]; e != NULL; e = next) {
      next = e->next;
      svc__msg_unref(e->msg);
      svc__free(e->topic);
      svc__free(e);
    }
  }
  svc__free(hub->rbuckets);
  svc__free(hub->cache_topic);
  svc__free(hub->cache_nodes);
  svc__free(hub);
}

int svc__hub_add(struct svc__hub *hub, const char *filter,
                 struct svc__hub_sink *sink) {
  struct hub_node *n;
  struct hub_node *k;
  struct hub_group *g;
  struct svc__list *pos;
  const char *name;
  const char *end;
  size_t name_len;

  /* name stays NULL unless filter is "$share/NAME/rest". */
  name = NULL;
  name_len = 0;
  svc__topic_split_share(filter, &name, &name_len, &filter);
  hub->cache_valid = 0;

  n = &hub->root;
  for (;;) {
    end = filter + strcspn(filter, "/");
    k = hub_kid_get(n, filter, (size_t)(end - filter));
    if (k == NULL) {
      hub_prune(n);
      return SVC_ENOMEM;
    }
    n = k;
    if (*end == '\0')
      break;
    filter = end + 1;
  }

  g = NULL;
  if (name != NULL) {
    /* Groups per node are few (one per distinct group name on the same
     * filter), so a list is enough. */
    svc__list_foreach(pos, &n->groups) {
      g = svc__container_of(pos, struct hub_group, link);
      if (strlen(g->name) == name_len && memcmp(g->name, name, name_len) == 0)
        break;
      g = NULL;
    }
    if (g == NULL) {
      g = svc__malloc(sizeof(*g));
      if (g != NULL && (g->name = svc__strndup(name, name_len)) == NULL) {
        svc__free(g);
        g = NULL;
      }
      if (g == NULL) {
        hub_prune(n);
        return SVC_ENOMEM;
      }
      svc__list_init(&g->members);
      svc__list_insert_tail(&n->groups, &g->link);
    }
    svc__list_insert_tail(&g->members, &sink->link);
  } else {
    svc__list_insert_tail(&n->sinks, &sink->link);
  }
  sink->node = n;
  sink->group = g;
  hub->nsinks++;
  return 0;
}

void svc__hub_remove(struct svc__hub *hub, struct svc__hub_sink *sink) {
  struct hub_node *n;
  struct hub_group *g;

  /* A sink whose svc__hub_add() failed (or that was removed already) has
   * no node: closing paths may call this unconditionally. */
  n = sink->node;
  if (n == NULL)
    return;
  hub->cache_valid = 0;
  g = sink->group;
  svc__list_remove(&sink->link);
  if (g != NULL && svc__list_empty(&g->members)) {
    svc__list_remove(&g->link);
    hub_group_free(g);
  }
  sink->node = NULL;
  sink->group = NULL;
  assert(hub->nsinks > 0);
  hub->nsinks--;
  hub_prune(n);
}

/* The member of g whose turn it is: the first in order that has room, or
 * the head when none has (QoS 0 then drops there, and QoS >= 1 waits). */
static struct svc__hub_sink *hub_group_pick(struct hub_group *g) {
  struct svc__list *pos;
  struct svc__hub_sink *sink;

  svc__list_foreach(pos, &g->members) {
    sink = svc__container_of(pos, struct svc__hub_sink, link);
    if (hub_room(sink))
      return sink;
  }
  return svc__container_of(g->members.next, struct svc__hub_sink, link);
}

static void hub_sink_visit(struct hub_walk *w, struct svc__hub_sink *sink) {
  if (w->check) {
    if (!hub_room(sink))
      w->ok = 0;
  } else if (sink->deliver(sink, w->topic, w->msg, w->qos) == 0) {
    w->delivered++;
  } else {
    w->refused++;
  }
}

/* Visits every subscriber of node n: its plain sinks and one member of each
 * of its groups. */
static void hub_visit(struct hub_walk *w, struct hub_node *n) {
  struct svc__list *pos;
  struct svc__hub_sink *sink;
  struct hub_group *g;
  struct svc__hub *hub = w->hub;

  if (w->collect) {
    if (hub->cache_n == hub->cache_cap) {
      size_t cap = hub->cache_cap ? hub->cache_cap * 2 : 8;
      struct hub_node **nodes =
          svc__realloc(hub->cache_nodes, cap * sizeof(*nodes));
      if (nodes == NULL) {
        w->collect_failed = 1;
        return;
      }
      hub->cache_nodes = nodes;
      hub->cache_cap = cap;
    }
    hub->cache_nodes[hub->cache_n++] = n;
    return;
  }

  svc__list_foreach(pos, &n->sinks) {
    hub_sink_visit(w, svc__container_of(pos, struct svc__hub_sink, link));
  }
  svc__list_foreach(pos, &n->groups) {
    g = svc__container_of(pos, struct hub_group, link);
    sink = hub_group_pick(g);
    hub_sink_visit(w, sink);
    if (!w->check) {
      /* Only a delivery pass takes a turn: the check pass must pick the
       * same members as the delivery pass that follows it. */
      svc__list_remove(&sink->link);
      svc__list_insert_tail(&g->members, &sink->link);
    }
  }
}

/* Walks the subtree of n for the topic levels starting at t (NULL once all
 * levels are matched). Recursion depth is bounded by the depth of the
 * subscribed filters along the topic, as in mosquitto. */
static void hub_walk(struct hub_walk *w, struct hub_node *n, const char *t) {
  struct hub_node *k;
  const char *end;
  const char *next;
  int wild;

  if (w->check && !w->ok)
    return;
  if (t == NULL) {
    hub_visit(w, n);
    /* '#' also matches its parent level: "a/#" gets "a". */
    if (n->multi != NULL)
      hub_visit(w, n->multi);
    return;
  }
  /* Leading wildcards never match "$..." topics (MQTT 4.7.2). */
  wild = n->parent != NULL || t[0] != '$';
  if (n->multi != NULL && wild)
    hub_visit(w, n->multi);
  end = t + strcspn(t, "/");
  next = *end == '\0' ? NULL : end + 1;
  k = hub_kid_find(n, t, (size_t)(end - t), hub_hash(t, (size_t)(end - t)));
  if (k != NULL)
    hub_walk(w, k, next);
  if (n->plus != NULL && wild)
    hub_walk(w, n->plus, next);
}

/* Fills the match cache for topic. 0, or -1 when memory ran out (then
 * the caller walks the trie itself). */
static int hub_same(const char *a, const char *b, size_t len) {
  /* Topics are short: a loop beats a call to memcmp here. */
  while (len-- > 0)
    if (*a++ != *b++)
      return 0;
  return 1;
}

static int hub_cache_fill(struct svc__hub *hub, const char *topic,
                          size_t len) {
  struct hub_walk w;

  if (hub->cache_valid && len == hub->cache_topic_len &&
      hub_same(hub->cache_topic, topic, len))
    return 0;
  hub->cache_valid = 0;
  if (len >= hub->cache_topic_cap) {
    char *t = svc__realloc(hub->cache_topic, len + 1);
    if (t == NULL)
      return -1;
    hub->cache_topic = t;
    hub->cache_topic_cap = len + 1;
  }
  memset(&w, 0, sizeof(w));
  w.hub = hub;
  w.topic = topic;
  w.collect = 1;
  hub->cache_n = 0;
  hub_walk(&w, &hub->root, topic);
  if (w.collect_failed)
    return -1;
  memcpy(hub->cache_topic, topic, len + 1);
  hub->cache_topic_len = len;
  hub->cache_valid = 1;
  return 0;
}

static void hub_run(struct hub_walk *w) {
  struct svc__hub *hub = w->hub;
  size_t i;

  if (!hub->cache_valid) {
    hub_walk(w, &hub->root, w->topic);
    return;
  }
  for (i = 0; i < hub->cache_n && (!w->check || w->ok); i++)
    hub_visit(w, hub->cache_nodes[i]);
}

int svc__hub_publish(struct svc__hub *hub, const char *topic, svc_msg_t *msg,
                     int qos) {
  struct hub_walk w;

  assert(topic != NULL);
  hub_cache_fill(hub, topic,
                 msg != NULL && topic == svc_msg_topic(msg)
                     ? svc__msg_topic_len(msg)
                     : strlen(topic));
  memset(&w, 0, sizeof(w));
  w.hub = hub;
  w.topic = topic;
  w.msg = msg;
  w.qos = qos;
  if (qos >= 1) {
    w.check = 1;
    w.ok = 1;
    hub_run(&w);
    if (!w.ok)
      return SVC_EAGAIN;
    w.check = 0;
  }
  hub_run(&w);
  hub->last_refused = (size_t)w.refused;
  return w.delivered;
}

size_t svc__hub_last_refused(const struct svc__hub *hub) {
  return hub->last_refused;
}

void svc__hub_waiting_add(struct svc__hub *hub, int delta) {
  hub->nwaiting = (size_t)((ptrdiff_t)hub->nwaiting + delta);
}

size_t svc__hub_waiting(const struct svc__hub *hub) {
  return hub->nwaiting;
}

size_t svc__hub_sink_count(const struct svc__hub *hub) {
  return hub->nsinks;
}

/* ---- Retained messages. */

/* Returns the link that points at topic's entry, or NULL. */
static struct hub_retained **hub_rfind(struct svc__hub *hub, const char *topic,
                                       uint32_t h) {
  struct hub_retained **pp;

  if (hub->nrbuckets == 0)
    return NULL;
  for (pp = &hub->rbuckets[h & (hub->nrbuckets - 1)]; *pp != NULL;
       pp = &(*pp)->next)
    if ((*pp)->hash == h && strcmp((*pp)->topic, topic) == 0)
      return pp;
  return NULL;
}

static int hub_retained_grow(struct svc__hub *hub) {
  struct hub_retained **b;
  struct hub_retained *e;
  struct hub_retained *next;
  size_t size;
  size_t i;

  size = hub->nrbuckets == 0 ? 16 : hub->nrbuckets * 2;
  b = svc__calloc(size, sizeof(*b));
  if (b == NULL)
    return hub->nrbuckets == 0 ? SVC_ENOMEM : 0;
  for (i = 0; i < hub->nrbuckets; i++) {
    for (e = hub->rbuckets[i]; e != NULL; e = next) {
      next = e->next;
      e->next = b[e->hash & (size - 1)];
      b[e->hash & (size - 1)] = e;
    }
  }
  svc__free(hub->rbuckets);
  hub->rbuckets = b;
  hub->nrbuckets = size;
  return 0;
}

int svc__hub_retain(struct svc__hub *hub, const char *topic, svc_msg_t *msg) {
  struct hub_retained **pp;
  struct hub_retained *e;
  uint32_t h;

  h = hub_hash(topic, strlen(topic));
  pp = hub_rfind(hub, topic, h);
  if (msg == NULL || svc_msg_len(msg) == 0) {
    if (pp != NULL) {
      e = *pp;
      *pp = e->next;
      svc__msg_unref(e->msg);
      svc__free(e->topic);
      svc__free(e);
      hub->nretained--;
    }
    return 0;
  }
  if (pp != NULL) {
    /* Ref before unref: msg may be the message already kept. */
    e = *pp;
    svc__msg_ref(msg);
    svc__msg_unref(e->msg);
    e->msg = msg;
    return 0;
  }
  if (hub->nretained >= hub->max_retained)
    return SVC_ENOBUFS;
  if (hub->nretained + 1 > hub->nrbuckets && hub_retained_grow(hub) != 0)
    return SVC_ENOMEM;
  e = svc__malloc(sizeof(*e));
  if (e == NULL)
    return SVC_ENOMEM;
  e->topic = svc__strdup(topic);
  if (e->topic == NULL) {
    svc__free(e);
    return SVC_ENOMEM;
  }
  e->hash = h;
  e->msg = svc__msg_ref(msg);
  e->next = hub->rbuckets[h & (hub->nrbuckets - 1)];
  hub->rbuckets[h & (hub->nrbuckets - 1)] = e;
  hub->nretained++;
  return 0;
}

/* fn must not retain or clear messages in this hub while the scan runs. */
void svc__hub_retained_foreach(struct svc__hub *hub, const char *filter,
                               void (*fn)(const char *topic, svc_msg_t *msg,
                                          void *arg),
                               void *arg) {
  struct hub_retained **pp;
  struct hub_retained *e;
  size_t i;

  /* MQTT 5 section 4.8.2: retained messages are not sent to shared
   * subscriptions. */
  if (strncmp(filter, "$share/", 7) == 0)
    return;
  if (strpbrk(filter, "+#") == NULL) {
    pp = hub_rfind(hub, filter, hub_hash(filter, strlen(filter)));
    if (pp != NULL)
      fn((*pp)->topic, (*pp)->msg, arg);
    return;
  }
  for (i = 0; i < hub->nrbuckets; i++)
    for (e = hub->rbuckets[i]; e != NULL; e = e->next)
      if (svc__topic_match(filter, e->topic))
        fn(e->topic, e->msg, arg);
}

size_t svc__hub_retained_count(const struct svc__hub *hub) {
  return hub->nretained;
}
