/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* White-box tests of the topic hub (src/hub.c). */
#include "internal.h"

#include <criterion/criterion.h>
#include <stdio.h>

/* Heap bytes in use, to see that removing sinks frees trie nodes. Under
 * ASan, glibc's counters are bypassed, so ask the sanitizer (declared here
 * because gcc does not always install <sanitizer/allocator_interface.h>). */
#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void);
#define HAVE_HEAP_BYTES 1
static size_t heap_bytes(void) {
  return __sanitizer_get_current_allocated_bytes();
}
#elif defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 33)
#include <malloc.h>
#define HAVE_HEAP_BYTES 1
static size_t heap_bytes(void) {
  return mallinfo2().uordblks;
}
#endif
#endif

TestSuite(hub, .timeout = 10);

/* A subscriber that records what reaches it. */
struct tsink {
  struct svc__hub_sink sink;
  const char *name;
  int room;    /* What has_room() says; deliver() refuses without room. */
  int got;     /* Accepted deliveries. */
  int dropped; /* Refused deliveries. */
  int last_qos;
  char last_topic[64];
  svc_msg_t *last_msg;
};

/* Deliveries in order, across all sinks, by name. */
static char trace[256];

static int tsink_deliver(struct svc__hub_sink *s, const char *topic,
                         svc_msg_t *msg, int qos) {
  struct tsink *t = svc__container_of(s, struct tsink, sink);

  if (!t->room) {
    t->dropped++;
    return SVC_ENOBUFS;
  }
  t->got++;
  t->last_qos = qos;
  t->last_msg = msg;
  snprintf(t->last_topic, sizeof(t->last_topic), "%s", topic);
  if (strlen(trace) + strlen(t->name) + 1 < sizeof(trace)) {
    strcat(trace, t->name);
    strcat(trace, " ");
  }
  return 0;
}

static int tsink_has_room(struct svc__hub_sink *s) {
  return svc__container_of(s, struct tsink, sink)->room;
}

static void tsink_init(struct tsink *t, const char *name) {
  memset(t, 0, sizeof(*t));
  t->sink.deliver = tsink_deliver;
  t->sink.has_room = tsink_has_room;
  t->name = name;
  t->room = 1;
}

static struct svc__hub *hub;
static svc_msg_t *msg;

static void setup(void) {
  trace[0] = '\0';
  hub = svc__hub_new(100);
  cr_assert_not_null(hub);
  msg = svc_msg_new_str("hello");
  cr_assert_not_null(msg);
}

static void teardown(void) {
  cr_assert_eq(svc__hub_sink_count(hub), 0, "sinks left in the hub");
  svc__hub_free(hub);
  svc_msg_free(msg);
}

static void add(struct tsink *t, const char *filter) {
  cr_assert_eq(svc__topic_check_filter(filter), 0, "bad test filter %s",
               filter);
  cr_assert_eq(svc__hub_add(hub, filter, &t->sink), 0, "add %s", filter);
}

static int pub(const char *topic, int qos) {
  cr_assert_eq(svc__topic_check_name(topic), 0, "bad test topic %s", topic);
  return svc__hub_publish(hub, topic, msg, qos);
}

Test(hub, plain_exact_filter, .init = setup, .fini = teardown) {
  struct tsink a;

  tsink_init(&a, "a");
  add(&a, "a/b");
  cr_assert_eq(svc__hub_sink_count(hub), 1);
  cr_assert_eq(pub("a/b", 0), 1);
  cr_assert_eq(a.got, 1);
  cr_assert_str_eq(a.last_topic, "a/b");
  cr_assert_eq(a.last_msg, msg);
  cr_assert_eq(a.last_qos, 0);
  cr_assert_eq(pub("a/c", 0), 0);
  cr_assert_eq(pub("a", 0), 0);
  cr_assert_eq(pub("a/b/c", 0), 0);
  cr_assert_eq(pub("a/b/", 0), 0);
  cr_assert_eq(a.got, 1);
  svc__hub_remove(hub, &a.sink);
}

Test(hub, plus_matches_one_level, .init = setup, .fini = teardown) {
  struct tsink a;

  tsink_init(&a, "a");
  add(&a, "a/+");
  cr_assert_eq(pub("a/b", 0), 1);
  cr_assert_eq(pub("a/", 0), 1);
  cr_assert_eq(pub("a", 0), 0);
  cr_assert_eq(pub("a/b/c", 0), 0);
  cr_assert_eq(pub("b/a", 0), 0);
  cr_assert_eq(a.got, 2);
  svc__hub_remove(hub, &a.sink);
}

Test(hub, hash_matches_parent_and_children, .init = setup, .fini = teardown) {
  struct tsink a;
  struct tsink all;
  struct tsink sys;

  tsink_init(&a, "a");
  tsink_init(&all, "all");
  tsink_init(&sys, "sys");
  add(&a, "a/#");
  add(&all, "#");
  add(&sys, "$SYS/#");
  cr_assert_eq(pub("a", 0), 2);
  cr_assert_eq(pub("a/b", 0), 2);
  cr_assert_eq(pub("a/b/c", 0), 2);
  cr_assert_eq(pub("ab", 0), 1);
  cr_assert_eq(pub("$SYS/x", 0), 1, "'#' must not see $ topics");
  cr_assert_eq(pub("$SYS", 0), 1);
  cr_assert_eq(a.got, 3);
  cr_assert_eq(all.got, 4);
  cr_assert_eq(sys.got, 2);
  svc__hub_remove(hub, &a.sink);
  svc__hub_remove(hub, &all.sink);
  svc__hub_remove(hub, &sys.sink);
}

Test(hub, dollar_topics_skip_leading_wildcards, .init = setup,
     .fini = teardown) {
  struct tsink plus;
  struct tsink inner;

  tsink_init(&plus, "plus");
  tsink_init(&inner, "inner");
  add(&plus, "+/monitor/Clients");
  add(&inner, "$SYS/+/Clients");
  cr_assert_eq(pub("$SYS/monitor/Clients", 0), 1);
  cr_assert_eq(inner.got, 1);
  cr_assert_eq(plus.got, 0);
  cr_assert_eq(pub("x/monitor/Clients", 0), 1);
  cr_assert_eq(plus.got, 1);
  svc__hub_remove(hub, &plus.sink);
  svc__hub_remove(hub, &inner.sink);
}

Test(hub, every_matching_filter_delivers, .init = setup, .fini = teardown) {
  static const char *const filters[] = {"a/b", "a/+", "+/b",   "#",
                                        "a/#", "+/+", "a/b/#", "+/#"};
  struct tsink s[8];
  size_t i;

  for (i = 0; i < 8; i++) {
    tsink_init(&s[i], filters[i]);
    add(&s[i], filters[i]);
  }
  cr_assert_eq(svc__hub_sink_count(hub), 8);
  cr_assert_eq(pub("a/b", 1), 8);
  for (i = 0; i < 8; i++) {
    cr_assert_eq(s[i].got, 1, "%s", filters[i]);
    cr_assert_eq(s[i].last_qos, 1);
  }
  for (i = 0; i < 8; i++)
    svc__hub_remove(hub, &s[i].sink);
}

/* The hub must agree with svc__topic_match() on every pair. */
Test(hub, agrees_with_topic_match, .init = setup, .fini = teardown) {
  static const char *const filters[] = {
      "#",   "+",     "+/+",   "/+",    "a",   "a/#",    "a/+",
      "a/b", "a//b",  "a/+/b", "+/b",   "+/#", "$SYS/#", "$SYS/+",
      "/",   "a/b/#", "+/+/+", "a/+/#", "b/#", "$x",     "//#"};
  static const char *const topics[] = {
      "a",  "a/b", "a/b/c", "/",    "//",     "a//b", "/a",   "b",
      "a/", "b/b", "a/c/b", "$SYS", "$SYS/a", "$x",   "a/$b", "x/y/z"};
  enum { NF = sizeof(filters) / sizeof(filters[0]) };
  struct tsink s[NF];
  size_t i;
  size_t j;
  int want;

  for (i = 0; i < NF; i++) {
    tsink_init(&s[i], "s");
    add(&s[i], filters[i]);
  }
  for (j = 0; j < sizeof(topics) / sizeof(topics[0]); j++) {
    for (i = 0; i < NF; i++)
      s[i].got = 0;
    want = 0;
    for (i = 0; i < NF; i++)
      want += !!svc__topic_match(filters[i], topics[j]);
    cr_assert_eq(pub(topics[j], 0), want, "topic %s", topics[j]);
    for (i = 0; i < NF; i++)
      cr_assert_eq(s[i].got, !!svc__topic_match(filters[i], topics[j]),
                   "filter %s topic %s", filters[i], topics[j]);
  }
  for (i = 0; i < NF; i++)
    svc__hub_remove(hub, &s[i].sink);
}

Test(hub, shared_group_round_robin, .init = setup, .fini = teardown) {
  struct tsink a;
  struct tsink b;
  struct tsink plain;

  tsink_init(&a, "A");
  tsink_init(&b, "B");
  tsink_init(&plain, "P");
  add(&a, "$share/g/a/+");
  add(&b, "$share/g/a/+");
  add(&plain, "a/+");
  cr_assert_eq(svc__hub_sink_count(hub), 3);
  cr_assert_eq(pub("a/x", 0), 2);
  cr_assert_eq(pub("a/x", 0), 2);
  cr_assert_eq(pub("a/y", 0), 2);
  cr_assert_eq(pub("a/y", 0), 2);
  cr_assert_eq(pub("b/y", 0), 0);
  cr_assert_eq(a.got, 2);
  cr_assert_eq(b.got, 2);
  cr_assert_eq(plain.got, 4);
  cr_assert(strcmp(trace, "P A P B P A P B ") == 0 ||
                strcmp(trace, "A P B P A P B P ") == 0,
            "members must alternate: %s", trace);
  svc__hub_remove(hub, &a.sink);
  svc__hub_remove(hub, &b.sink);
  svc__hub_remove(hub, &plain.sink);
}

Test(hub, shared_member_without_room_is_skipped, .init = setup,
     .fini = teardown) {
  struct tsink a;
  struct tsink b;
  struct tsink c;

  tsink_init(&a, "A");
  tsink_init(&b, "B");
  tsink_init(&c, "C");
  add(&a, "$share/g/t");
  add(&b, "$share/g/t");
  add(&c, "$share/g/t");
  b.room = 0;
  cr_assert_eq(pub("t", 0), 1);
  cr_assert_eq(pub("t", 0), 1);
  cr_assert_eq(pub("t", 0), 1);
  cr_assert_eq(pub("t", 0), 1);
  cr_assert_str_eq(trace, "A C A C ");
  cr_assert_eq(b.dropped, 0, "B was skipped, not handed the event");
  /* With room again, B has waited longest and goes first. */
  b.room = 1;
  cr_assert_eq(pub("t", 1), 1);
  cr_assert_str_eq(trace, "A C A C B ");
  svc__hub_remove(hub, &a.sink);
  svc__hub_remove(hub, &b.sink);
  svc__hub_remove(hub, &c.sink);
}

Test(hub, shared_group_all_full, .init = setup, .fini = teardown) {
  struct tsink a;
  struct tsink b;

  tsink_init(&a, "A");
  tsink_init(&b, "B");
  add(&a, "$share/g/t");
  add(&b, "$share/g/t");
  a.room = b.room = 0;
  /* QoS 0 goes to the member in turn, which drops and counts it. */
  cr_assert_eq(pub("t", 0), 0);
  cr_assert_eq(a.dropped + b.dropped, 1);
  /* QoS 1 waits: nothing is handed over. */
  cr_assert_eq(pub("t", 1), SVC_EAGAIN);
  cr_assert_eq(a.dropped + b.dropped, 1);
  svc__hub_remove(hub, &a.sink);
  svc__hub_remove(hub, &b.sink);
}

Test(hub, refused_qos1_publish_keeps_the_turn, .init = setup,
     .fini = teardown) {
  struct tsink a;
  struct tsink b;
  struct tsink c;

  tsink_init(&a, "A");
  tsink_init(&b, "B");
  tsink_init(&c, "C");
  add(&a, "$share/g/t");
  add(&b, "$share/g/t");
  add(&c, "t");
  c.room = 0;
  cr_assert_eq(pub("t", 1), SVC_EAGAIN);
  cr_assert_eq(pub("t", 1), SVC_EAGAIN);
  c.room = 1;
  cr_assert_eq(pub("t", 1), 2);
  cr_assert_eq(pub("t", 1), 2);
  cr_assert_str_eq(trace, "C A C B ", "the refused publishes took no turn");
  svc__hub_remove(hub, &a.sink);
  svc__hub_remove(hub, &b.sink);
  svc__hub_remove(hub, &c.sink);
}

Test(hub, groups_are_per_name_and_filter, .init = setup, .fini = teardown) {
  struct tsink g1;
  struct tsink g2;
  struct tsink g3;

  tsink_init(&g1, "G1");
  tsink_init(&g2, "G2");
  tsink_init(&g3, "G3");
  add(&g1, "$share/one/t");
  add(&g2, "$share/two/t");
  add(&g3, "$share/one/+");
  cr_assert_eq(pub("t", 0), 3, "each group gets its own copy");
  cr_assert_eq(g1.got + g2.got + g3.got, 3);
  svc__hub_remove(hub, &g1.sink);
  cr_assert_eq(pub("t", 0), 2);
  svc__hub_remove(hub, &g2.sink);
  svc__hub_remove(hub, &g3.sink);
  cr_assert_eq(pub("t", 0), 0);
}

Test(hub, qos1_is_all_or_nothing, .init = setup, .fini = teardown) {
  struct tsink a;
  struct tsink b;
  struct tsink c;

  tsink_init(&a, "A");
  tsink_init(&b, "B");
  tsink_init(&c, "C");
  add(&a, "x/y");
  add(&b, "x/+");
  add(&c, "q");
  b.room = 0;
  cr_assert_eq(pub("x/y", 1), SVC_EAGAIN);
  cr_assert_eq(pub("x/y", 2), SVC_EAGAIN);
  cr_assert_eq(a.got + a.dropped + b.got + b.dropped, 0, "nothing delivered");
  /* A full sink that does not match is irrelevant. */
  c.room = 0;
  b.room = 1;
  cr_assert_eq(pub("x/y", 1), 2);
  /* QoS 0 delivers where it can and counts what it could. */
  b.room = 0;
  cr_assert_eq(pub("x/y", 0), 1);
  cr_assert_eq(b.dropped, 1);
  cr_assert_eq(a.got, 2);
  svc__hub_remove(hub, &a.sink);
  svc__hub_remove(hub, &b.sink);
  svc__hub_remove(hub, &c.sink);
}

Test(hub, remove_prunes_and_stops_delivery, .init = setup, .fini = teardown) {
  static const char *const filters[] = {"a/b/c", "a/b/#",          "a/+/c",
                                        "#",     "$share/g/a/b/c", "a/b"};
  struct tsink s[6];
  size_t i;

  for (i = 0; i < 6; i++) {
    tsink_init(&s[i], "s");
    add(&s[i], filters[i]);
  }
  cr_assert_eq(pub("a/b/c", 0), 5);
  for (i = 0; i < 6; i++) {
    svc__hub_remove(hub, &s[i].sink);
    cr_assert_null(s[i].sink.node);
    cr_assert_eq(svc__hub_sink_count(hub), 5 - i);
  }
  cr_assert_eq(pub("a/b/c", 0), 0);
  cr_assert_eq(pub("a/b", 0), 0);
  for (i = 0; i < 6; i++)
    s[i].got = 0;
  /* Removing twice (or a sink never added) is harmless. */
  svc__hub_remove(hub, &s[0].sink);
  cr_assert_eq(svc__hub_sink_count(hub), 0);
  /* The trie still works after pruning to the root. */
  add(&s[0], "a/b/c");
  cr_assert_eq(pub("a/b/c", 0), 1);
  svc__hub_remove(hub, &s[0].sink);
}

Test(hub, remove_frees_nodes, .init = setup, .fini = teardown) {
#ifdef HAVE_HEAP_BYTES
  struct tsink t;
  char filter[64];
  size_t before;
  size_t after;
  int i;

  /* Without pruning, each distinct filter would leave its nodes behind:
   * 2000 filters of 3 fresh levels are far more than the slack allowed. */
  tsink_init(&t, "t");
  add(&t, "warm/up");
  svc__hub_remove(hub, &t.sink);
  before = heap_bytes();
  for (i = 0; i < 2000; i++) {
    snprintf(filter, sizeof(filter), "n%d/m%d/%s", i, i,
             i % 3 == 0   ? "#"
             : i % 3 == 1 ? "+"
                          : "leaf");
    add(&t, filter);
    svc__hub_remove(hub, &t.sink);
  }
  after = heap_bytes();
  cr_assert_lt(after, before + 4096, "trie kept %zu bytes", after - before);
#else
  cr_skip_test("no way to measure the heap here");
#endif
}

Test(hub, many_children_in_one_node, .init = setup, .fini = teardown) {
  enum { N = 300 };
  static struct tsink s[N];
  char topic[32];
  int i;

  for (i = 0; i < N; i++) {
    tsink_init(&s[i], "s");
    snprintf(topic, sizeof(topic), "root/k%d", i);
    add(&s[i], topic);
  }
  for (i = 0; i < N; i++) {
    snprintf(topic, sizeof(topic), "root/k%d", i);
    cr_assert_eq(pub(topic, 0), 1, "%s", topic);
    cr_assert_eq(s[i].got, 1);
  }
  /* Remove every other one, then the rest: the table shrinks and grows. */
  for (i = 0; i < N; i += 2)
    svc__hub_remove(hub, &s[i].sink);
  for (i = 0; i < N; i++) {
    snprintf(topic, sizeof(topic), "root/k%d", i);
    cr_assert_eq(pub(topic, 0), i % 2, "%s", topic);
  }
  for (i = 1; i < N; i += 2)
    svc__hub_remove(hub, &s[i].sink);
  cr_assert_eq(pub("root/k1", 0), 0);
}

/* ---- Retained messages. */

struct seen {
  int n;
  char topics[16][32];
  svc_msg_t *msgs[16];
};

static void collect(const char *topic, svc_msg_t *m, void *arg) {
  struct seen *s = arg;

  if (s->n < 16) {
    snprintf(s->topics[s->n], sizeof(s->topics[0]), "%s", topic);
    s->msgs[s->n] = m;
  }
  s->n++;
}

static int seen_has(const struct seen *s, const char *topic) {
  int i;

  for (i = 0; i < s->n && i < 16; i++)
    if (strcmp(s->topics[i], topic) == 0)
      return 1;
  return 0;
}

Test(hub, retain_store_replace_clear, .init = setup, .fini = teardown) {
  struct seen seen;
  svc_msg_t *m2;
  svc_msg_t *empty;
  size_t len;

  m2 = svc_msg_new_str("second");
  empty = svc_msg_new(NULL, 0);
  cr_assert_not_null(m2);
  cr_assert_not_null(empty);

  cr_assert_eq(svc__hub_retain(hub, "a/b", msg), 0);
  cr_assert_eq(svc__hub_retained_count(hub), 1);
  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "a/b", collect, &seen);
  cr_assert_eq(seen.n, 1);
  cr_assert_str_eq(seen.topics[0], "a/b");
  cr_assert_eq(seen.msgs[0], msg);

  /* Replace; the hub holds its own reference. */
  cr_assert_eq(svc__hub_retain(hub, "a/b", m2), 0);
  svc_msg_free(m2);
  cr_assert_eq(svc__hub_retained_count(hub), 1);
  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "a/b", collect, &seen);
  cr_assert_eq(seen.n, 1);
  cr_assert_eq(seen.msgs[0], m2);
  cr_assert_eq(memcmp(svc_msg_body(seen.msgs[0], &len), "second", 6), 0);
  cr_assert_eq(len, 6);

  /* Retaining the very message kept already is fine. */
  cr_assert_eq(svc__hub_retain(hub, "a/b", seen.msgs[0]), 0);

  /* Publishing does not touch retained messages. */
  cr_assert_eq(pub("a/b", 0), 0);
  cr_assert_eq(svc__hub_retained_count(hub), 1);

  /* An empty body clears; clearing an unknown topic is a no-op. */
  cr_assert_eq(svc__hub_retain(hub, "a/b", empty), 0);
  cr_assert_eq(svc__hub_retained_count(hub), 0);
  cr_assert_eq(svc__hub_retain(hub, "nope", empty), 0);
  cr_assert_eq(svc__hub_retained_count(hub), 0);
  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "#", collect, &seen);
  cr_assert_eq(seen.n, 0);
  svc_msg_free(empty);
}

Test(hub, retain_limit) {
  struct svc__hub *h;
  svc_msg_t *m;
  svc_msg_t *empty;

  h = svc__hub_new(2);
  m = svc_msg_new_str("x");
  empty = svc_msg_new(NULL, 0);
  cr_assert_eq(svc__hub_retain(h, "t1", m), 0);
  cr_assert_eq(svc__hub_retain(h, "t2", m), 0);
  cr_assert_eq(svc__hub_retain(h, "t3", m), SVC_ENOBUFS);
  cr_assert_eq(svc__hub_retained_count(h), 2);
  cr_assert_eq(svc__hub_retain(h, "t1", m), 0, "replacing is allowed");
  cr_assert_eq(svc__hub_retain(h, "t2", empty), 0);
  cr_assert_eq(svc__hub_retain(h, "t3", m), 0, "room after a clear");
  cr_assert_eq(svc__hub_retained_count(h), 2);
  svc_msg_free(m);
  svc_msg_free(empty);
  svc__hub_free(h);

  h = svc__hub_new(0);
  m = svc_msg_new_str("x");
  cr_assert_eq(svc__hub_retain(h, "t", m), SVC_ENOBUFS);
  cr_assert_eq(svc__hub_retained_count(h), 0);
  svc_msg_free(m);
  svc__hub_free(h);
}

Test(hub, retained_foreach_matches_filter, .init = setup, .fini = teardown) {
  static const char *const topics[] = {"a/b", "a/c",    "a/b/c",
                                       "a",   "$SYS/x", "b"};
  struct seen seen;
  size_t i;

  for (i = 0; i < 6; i++)
    cr_assert_eq(svc__hub_retain(hub, topics[i], msg), 0);
  cr_assert_eq(svc__hub_retained_count(hub), 6);

  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "a/+", collect, &seen);
  cr_assert_eq(seen.n, 2);
  cr_assert(seen_has(&seen, "a/b") && seen_has(&seen, "a/c"));

  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "a/#", collect, &seen);
  cr_assert_eq(seen.n, 4);
  cr_assert(seen_has(&seen, "a") && seen_has(&seen, "a/b/c"));

  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "#", collect, &seen);
  cr_assert_eq(seen.n, 5, "'#' must not see $SYS/x");
  cr_assert_not(seen_has(&seen, "$SYS/x"));

  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "$SYS/#", collect, &seen);
  cr_assert_eq(seen.n, 1);

  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "a/b/c", collect, &seen);
  cr_assert_eq(seen.n, 1);
  svc__hub_retained_foreach(hub, "a/b/d", collect, &seen);
  cr_assert_eq(seen.n, 1);

  /* Shared subscriptions get no retained messages, not even one whose
   * topic happens to spell the filter's prefix. */
  cr_assert_eq(svc__hub_retain(hub, "$share/g/a/b", msg), 0);
  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(hub, "$share/g/#", collect, &seen);
  svc__hub_retained_foreach(hub, "$share/g/a/b", collect, &seen);
  cr_assert_eq(seen.n, 0);
}

Test(hub, many_retained_and_free_releases_them) {
  struct svc__hub *h;
  struct seen seen;
  svc_msg_t *m;
  char topic[32];
  int i;

  h = svc__hub_new(5000);
  m = svc_msg_new_str("x");
  for (i = 0; i < 3000; i++) {
    snprintf(topic, sizeof(topic), "t/%d", i);
    cr_assert_eq(svc__hub_retain(h, topic, m), 0);
  }
  cr_assert_eq(svc__hub_retained_count(h), 3000);
  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(h, "t/+", collect, &seen);
  cr_assert_eq(seen.n, 3000);
  memset(&seen, 0, sizeof(seen));
  svc__hub_retained_foreach(h, "t/2999", collect, &seen);
  cr_assert_eq(seen.n, 1);
  /* The hub's references keep m alive after its owner lets go; the leak
   * checker and ASan verify that svc__hub_free() drops every one. */
  svc_msg_free(m);
  svc__hub_free(h);
}
