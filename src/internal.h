/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_INTERNAL_H
#define SVC_INTERNAL_H

/* Shared svc__ names of the core. Every .c file includes this first. */

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "svccomm.h"

/* ---- Allocation: everything goes through these, so that allocator hooks
 * and out-of-memory tests can be added in one place. */
void *svc__malloc(size_t size);
void *svc__calloc(size_t n, size_t size);
void *svc__realloc(void *p, size_t size);
void svc__free(void *p);
char *svc__strdup(const char *s);
char *svc__strndup(const char *s, size_t n);

/* Thread-local caches are read on every message: the initial-exec model
 * makes that a plain load instead of a __tls_get_addr() call (the library
 * uses a few dozen bytes of TLS, well inside what glibc keeps for
 * libraries loaded later with dlopen). */
#if defined(__GNUC__) || defined(__clang__)
#define SVC__TLS _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define SVC__TLS _Thread_local
#endif

#define svc__container_of(ptr, type, member) \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- Intrusive circular doubly linked list (libuv's QUEUE, typed). An
 * element not in any list points at itself once initialised. */
struct svc__list {
  struct svc__list *next;
  struct svc__list *prev;
};

static inline void svc__list_init(struct svc__list *l) {
  l->next = l;
  l->prev = l;
}
static inline int svc__list_empty(const struct svc__list *l) {
  return l->next == l;
}
static inline void svc__list_insert_tail(struct svc__list *head,
                                         struct svc__list *e) {
  e->next = head;
  e->prev = head->prev;
  head->prev->next = e;
  head->prev = e;
}
static inline void svc__list_remove(struct svc__list *e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
  svc__list_init(e);
}
static inline struct svc__list *svc__list_head(const struct svc__list *l) {
  return svc__list_empty(l) ? NULL : l->next;
}
#define svc__list_foreach(pos, head) \
  for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
/* Safe against removal of pos during the loop body. */
#define svc__list_foreach_safe(pos, tmp, head)                    \
  for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); \
       (pos) = (tmp), (tmp) = (pos)->next)

/* ---- URIs (url.c). */
struct svc__url {
  char *scheme;   /* Lower-cased: "inproc", "tcp", "http". */
  char *user;     /* Percent-decoded userinfo before ':', or NULL. */
  char *password; /* Percent-decoded userinfo after ':', or NULL. */
  char *host;     /* Lower-cased; IPv6 without brackets; "" if absent. */
  int port;       /* 0..65535, or -1 when absent. */
  int host_is_ipv6;
  char *path;     /* Percent-decoded, without the leading '/'; "" if none. */
  char *path_raw; /* As written, without the leading '/': what routes match
                   * (route.c decodes segment by segment, so "%2F" stays
                   * inside one segment). */
  char *query;    /* Raw text after '?', or NULL. */
  char *endpoint; /* "scheme://host[:port]" (IPv6 in brackets), or for a
                   * host-less URI "scheme://" + the path: the key that names
                   * the endpoint in connection tables and metrics. */
  unsigned refs;  /* svc__url_free() frees at the last one; a url that is
                   * shared (svc__url_ref()) is read-only. */
};

#define SVC__URL_MAX 8192

/* The value of hex digit c, or -1. */
static inline int svc__hex_value(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* One name=value pair of a URI query, as written (not decoded); value is
 * NULL for a pair without '='. */
struct svc__qpair {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};
/* svc__query_next() stores in *pair the pair at *p (a query, or what the
 * last call left) and moves *p past it. Returns 1, or 0 at the end (p NULL
 * or ""). An empty pair ("a=1&&b=2") is one with name_len 0. */
int svc__query_next(const char **p, struct svc__qpair *pair);
/* svc__parse_decimal() reads n decimal digits (1 to 15, no sign) at s into
 * *out: 0, or SVC_EINVAL. Option values. */
int svc__parse_decimal(const char *s, size_t n, uint64_t *out);
/* svc__url_decode() percent-decodes the n bytes at s into a new string
 * (*out, the caller frees it): 0, SVC_EINVAL for a '%' not followed by two
 * hex digits or for %00, or SVC_ENOMEM. */
int svc__url_decode(const char *s, size_t n, char **out);
/* Nonzero when the n bytes at s are exactly the string name. */
int svc__name_is(const char *s, size_t n, const char *name);

/* svc__url_parse() parses an absolute URI "scheme://authority/path?query".
 * There is no fragment: '#' is an ordinary path character (MQTT wildcard).
 * Returns 0 and a new url in *out, SVC_EINVAL for malformed input, or
 * SVC_ENOMEM. */
int svc__url_parse(const char *s, struct svc__url **out);
/* Drops one reference; the last frees the url. */
void svc__url_free(struct svc__url *url);
/* Another reference to url, for a holder that only reads it. */
struct svc__url *svc__url_ref(struct svc__url *url);
/* A deep copy of u (conn.c), or NULL when out of memory. */
struct svc__url *svc__url_dup(const struct svc__url *u);

/* ---- Topics (topic.c), MQTT rules. */
#define SVC__TOPIC_MAX 65535
/* A topic name to publish to: non-empty, no '+' or '#', no NUL. 0 or
 * SVC_EINVAL. */
int svc__topic_check_name(const char *topic);
/* A subscription filter: '+' alone in a level, '#' alone in the last level,
 * optionally "$share/GROUP/filter" with a non-empty GROUP without '/', '+'
 * or '#'. 0 or SVC_EINVAL. */
int svc__topic_check_filter(const char *filter);
/* svc__topic_match() returns nonzero when topic (a valid name) matches
 * filter (a valid filter without the $share prefix). */
int svc__topic_match(const char *filter, const char *topic);
/* svc__topic_is_name() returns nonzero when a valid filter matches one
 * topic only, itself: no wildcard, no $share prefix. */
int svc__topic_is_name(const char *filter);
/* svc__topic_split_share() recognises "$share/GROUP/rest": returns 1 and
 * points *group (length *group_len) and *rest into filter, else returns 0. */
int svc__topic_split_share(const char *filter, const char **group,
                           size_t *group_len, const char **rest);

/* ---- The topic hub (hub.c): a trie of subscription filters with wildcard
 * matching, shared-subscription groups and retained messages. Written once;
 * inproc uses it and the network servers fan out through it. */
struct svc__hub;

/* A subscriber as the hub sees it. The owner embeds it and fills in the
 * two functions; the hub owns the remaining fields while subscribed. */
struct svc__hub_sink {
  /* Queue msg (the hub holds a reference for the duration of the call: take
   * svc__msg_ref() to keep it) published on topic with qos. Returns 0 or
   * SVC_ENOBUFS when full (then the event is dropped: for QoS 0 the sink
   * counts it; QoS >= 1 publishes check has_room first). */
  int (*deliver)(struct svc__hub_sink *sink, const char *topic,
                 svc_msg_t *msg, int qos);
  /* Nonzero when deliver() would accept one more event now. */
  int (*has_room)(struct svc__hub_sink *sink);
  /* Private to the hub. */
  struct svc__list link;
  void *node;
  void *group;
};

struct svc__hub *svc__hub_new(size_t max_retained);
/* Frees the hub; every sink must have been removed. */
void svc__hub_free(struct svc__hub *hub);
/* Adds sink under filter (validated by the caller with
 * svc__topic_check_filter(); "$share/G/f" joins group G on filter f).
 * Returns 0 or SVC_ENOMEM. */
int svc__hub_add(struct svc__hub *hub, const char *filter,
                 struct svc__hub_sink *sink);
/* Removes a sink added with svc__hub_add(); frees trie nodes left empty. */
void svc__hub_remove(struct svc__hub *hub, struct svc__hub_sink *sink);
/* Delivers msg to every matching sink; in each matching shared group, to one
 * member (round robin, preferring members with room). With qos >= 1 it
 * first checks that every chosen sink has room and, if one has not,
 * delivers nothing and returns SVC_EAGAIN. Returns the number of sinks that
 * accepted it (>= 0), or SVC_EAGAIN. Does not touch retained messages. */
int svc__hub_publish(struct svc__hub *hub, const char *topic, svc_msg_t *msg,
                     int qos);
/* The drop reason an error stands for (pubsub.c). */
svc_drop_reason_t svc__drop_reason(int err);
/* How many sinks the last svc__hub_publish() found full (QoS 0 drops). */
size_t svc__hub_last_refused(const struct svc__hub *hub);
/* Stores msg as topic's retained message (taking a reference), replacing
 * the old one; an empty body clears it. Returns 0, or SVC_ENOBUFS when
 * max_retained topics are already kept. */
int svc__hub_retain(struct svc__hub *hub, const char *topic, svc_msg_t *msg);
/* Calls fn for every retained message whose topic matches filter (which may
 * carry $share; retained messages are not sent to shared subscriptions, so
 * then nothing is called). */
void svc__hub_retained_foreach(struct svc__hub *hub, const char *filter,
                               void (*fn)(const char *topic, svc_msg_t *msg,
                                          void *arg),
                               void *arg);
/* QoS >= 1 publishes of this hub waiting for room (kept by pubsub.c, so
 * that "is anything waiting?" costs nothing per publish). */
void svc__hub_waiting_add(struct svc__hub *hub, int delta);
size_t svc__hub_waiting(const struct svc__hub *hub);
/* Number of sinks subscribed; number of retained topics. */
size_t svc__hub_sink_count(const struct svc__hub *hub);
size_t svc__hub_retained_count(const struct svc__hub *hub);

/* ---- Route patterns (route.c): "users/{id}", "files/{rest...}". */
struct svc__pattern;
/* Compiles pattern (a leading '/' is ignored). 0, SVC_EINVAL (empty
 * parameter name, '{' not closing a segment, "{x...}" not last, duplicate
 * parameter names) or SVC_ENOMEM. */
int svc__pattern_compile(const char *pattern, struct svc__pattern **out);
void svc__pattern_free(struct svc__pattern *p);
/* Normalised text of the pattern ("users/{}"), for duplicate detection. */
const char *svc__pattern_key(const struct svc__pattern *p);
/* Matches path (no leading '/'). Returns -1 for no match, else a
 * specificity score (higher wins: more literal segments earlier). On a
 * match with params not NULL, stores a new NULL-terminated array of
 * name/value string pairs (name0, value0, ..., NULL) in *params, freed with
 * svc__params_free(); values are percent-decoded path pieces. */
int svc__pattern_match(const struct svc__pattern *p, const char *path,
                       char ***params);
void svc__params_free(char **params);
const char *svc__params_get(char *const *params, const char *name);

/* ---- Messages (msg.c). Messages are reference counted inside the library
 * so that one event can sit in many queues; users see plain ownership. */
svc_msg_t *svc__msg_ref(svc_msg_t *msg);
void svc__msg_unref(svc_msg_t *msg);
/* Sets the topic (copied). 0 or SVC_ENOMEM. */
int svc__msg_set_topic(svc_msg_t *msg, const char *topic);
int svc__msg_set_topic_n(svc_msg_t *msg, const char *topic, size_t len);
/* Length of svc_msg_topic(msg), kept so that hot paths need no strlen. */
size_t svc__msg_topic_len(const svc_msg_t *msg);
/* Body plus header bytes: what a message costs in windows and queues. At
 * least 1, so that empty messages still use credit. */
size_t svc__msg_cost(const svc_msg_t *msg);
/* Appends name/value pairs (as in svc_call_opts_t.headers). */
int svc__msg_add_pairs(svc_msg_t *msg, const char *const *pairs, size_t n);
/* A context keeps the thread's cache of freed messages while it is open
 * (ctx.c calls hold on init and release when the close has finished). */
void svc__msg_cache_hold(void);
void svc__msg_cache_release(void);
/* Drops headers past the first count (undoes a failed svc__msg_add_pairs()
 * so that a caller who keeps the message gets it back unchanged). */
void svc__msg_headers_truncate(svc_msg_t *msg, size_t count);
/* Replaces dst's headers (not body, content type or topic) with src's,
 * leaving src with none. Cannot fail. */
void svc__msg_move_headers(svc_msg_t *dst, svc_msg_t *src);
/* svc_msg_header_add() with lengths, for decoders that have them: the
 * same checks (a NUL inside is refused), no copy to terminate them. */
int svc__msg_header_add_n(svc_msg_t *msg, const char *name, size_t name_len,
                          const char *value, size_t value_len);
/* svc_msg_header_at() without the traceparent kept in binary (read it with
 * svc_msg_trace()): for encoders that carry the trace their own way. */
int svc__msg_raw_header_at(const svc_msg_t *msg, size_t i, const char **name,
                           const char **value);
/* svc_msg_set_trace() without the NULL checks, for the hot paths. */
int svc__msg_put_trace(svc_msg_t *msg, const svc_trace_t *t);
/* The traceparent msg keeps in binary, or NULL (none, or one that is an
 * ordinary header now). */
const svc_trace_t *svc__msg_trace_bin(const svc_msg_t *msg);
/* Whether msg has any header, the binary traceparent included, without
 * turning that into text. */
int svc__msg_has_headers(const svc_msg_t *msg);
/* Whether msg has no stored header and no content type (a binary trace
 * aside): what the transports' shortcuts for small events ask, in one
 * call. */
int svc__msg_is_plain(const svc_msg_t *msg);

/* ---- CloudEvents bindings (cloudevents.c, docs/cloudevents.md). */
#define SVC__CE_NAME_MAX 20
/* Nonzero when the n bytes at s are a CloudEvents attribute name: 1..20
 * of lowercase a-z and 0-9. */
int svc__ce_is_name(const char *s, size_t n);
/* When header name is "ce-<attribute>" (the prefix and the attribute in
 * any case), stores the attribute lowercased in out and returns 1; else 0. */
int svc__ce_header_attr(const char *name, char out[SVC__CE_NAME_MAX + 1]);
/* The HTTP binding's percent-encoding of header name's value when name is
 * a "ce-" attribute header: 0 and *out NULL when the value goes as it is
 * (other headers always do), 0 and a new string in *out (the caller frees
 * it), or SVC_ENOMEM. svc__ce_http_decode() undoes it the same way; a
 * value that is not valid percent-encoding is left as it came. */
int svc__ce_http_encode(const char *name, const char *value, char **out);
int svc__ce_http_decode(const char *name, const char *value, char **out);

/* ---- Metrics (metrics.c). */
struct svc__metrics {
  struct svc__list link;
  svc_metrics_t m;
};
struct svc__metrics *svc__metrics_get(svc_ctx_t *ctx, const char *endpoint,
                                      svc_role_t role);

/* ---- Timers (timer.c): one uv_timer_t per context drives a binary heap of
 * these, so that ops need no uv handle of their own (and can be freed
 * synchronously). */
struct svc__timer {
  uint64_t due;      /* Loop time in ms. */
  size_t heap_index; /* Private; SIZE_MAX when not armed. */
  void (*fn)(struct svc__timer *t);
};
void svc__timer_init(struct svc__timer *t, void (*fn)(struct svc__timer *t));
/* (Re)arms t to fire once after ms. 0 or SVC_ENOMEM. */
int svc__timer_start(svc_ctx_t *ctx, struct svc__timer *t, uint64_t ms);
void svc__timer_stop(svc_ctx_t *ctx, struct svc__timer *t);
static inline int svc__timer_active(const struct svc__timer *t) {
  return t->heap_index != SIZE_MAX;
}
int svc__timers_init(svc_ctx_t *ctx);
void svc__timers_close(svc_ctx_t *ctx);

/* ---- Deferred work (ctx.c): the "next tick". A task runs its fn from the
 * loop itself (the idle phase, or svc__ctx_run_tasks() at the end of a
 * socket's read callback), never inside the stack that queued it;
 * this is how the library keeps its promise that no user callback runs
 * inside the call that started the work. A task is queued at most once at a
 * time (queueing a queued task does nothing). */
struct svc__task {
  struct svc__task *next;
  void (*fn)(struct svc__task *t);
  int queued;
  unsigned tick;
};
void svc__task_init(struct svc__task *t, void (*fn)(struct svc__task *t));
/* Runs the tasks queued before this call; only from a loop callback that
 * no API call can be on the stack of. */
void svc__ctx_run_tasks(svc_ctx_t *ctx);
void svc__defer(svc_ctx_t *ctx, struct svc__task *t);
/* Removes a queued task (no-op if not queued). Every object that embeds a
 * task undefers it before it is freed. */
void svc__undefer(svc_ctx_t *ctx, struct svc__task *t);

/* ---- The context. */
struct svc__transport;
struct svc__conn;

/* Parsed URIs a context keeps: services call a few endpoints over and over,
 * and parsing one costs several allocations. */
#define SVC__URL_CACHE 4

struct svc_ctx_s {
  uv_loop_t *loop;
  uv_loop_t *owned_loop; /* Non-NULL when we created the loop. */
  svc_ctx_opts_t opts;
  void *data;
  uv_thread_t thread;

  /* Deferred work: an idle handle runs the queue while it is not empty. */
  uv_idle_t idle;
  struct svc__task *task_head;
  struct svc__task *task_tail;
  unsigned tick; /* Counts task-queue runs. */

  /* Timers. */
  uv_timer_t timer;
  struct svc__timer **heap;
  size_t heap_len;
  size_t heap_cap;

  /* Thread-safe posts. */
  uv_async_t async;
  uv_mutex_t post_mutex;
  struct svc__post *post_head;
  struct svc__post *post_tail;
  size_t nposts;
  int post_closed;

  struct svc__list conns;     /* struct svc__conn.link */
  struct svc__list servers;   /* struct svc_server_s.link */
  struct svc__list calls;     /* struct svc_call_s.link, in flight */
  struct svc__list subs;      /* struct svc_sub_s.link */
  struct svc__list streams;   /* struct svc_stream_s.link */
  struct svc__list pubs;      /* struct svc__pub.link, waiting for room */
  struct svc__list pubs_sent; /* struct svc__pub.link, held by transports */
  size_t npubs_waiting;
  struct svc__task pubs_task; /* Retries waiting publishes. */
  struct svc__pub *pub_spares; /* Freed publishes for reuse (pubsub.c). */
  size_t npub_spares;
  struct svc__list metrics;   /* struct svc__metrics.link */
  struct svc__list hubs;      /* struct svc__named_hub.link (inproc) */
  struct svc__list policies;  /* struct svc__policy.link (policy.c) */
  /* The URIs verbs were given last, parsed (conn.c). */
  struct svc__url_cached {
    char *uri;
    struct svc__url *url;
  } url_cache[SVC__URL_CACHE];
  unsigned url_cache_next; /* The slot a miss replaces. */
  /* Connection state and publisher watermark changes waiting for their
   * callbacks (conn_state.c). */
  svc_conn_state_cb conn_cb;
  void *conn_arg;
  struct svc__conn_note *conn_notes;
  struct svc__conn_note *conn_notes_tail;
  struct svc__task conn_notes_task;
  /* The publisher watermark (pubsub.c). */
  svc_pub_watermark_cb pub_wm_cb;
  void *pub_wm_arg;
  size_t npubs_full_hub; /* Conns with pub_full_hub set. */

  uint64_t rng;
  /* Trace context and logging (trace.c). */
  uint64_t trace_rng;
  svc_trace_t trace_cur; /* The current trace, while trace_has_cur. */
  /* 0: none; 1: trace_cur; 2: trace_cur with the parent's span id, its own
   * drawn when svc_ctx_trace() first reads it (continuing a trace never
   * needs it, and events are many); 3: the trace of trace_msg, if it has
   * one, not read yet (the message a subscriber is handed: most callbacks
   * never ask, and reading it costs a cache miss per event). */
  int trace_has_cur;
  const svc_msg_t *trace_msg;
  svc_log_cb log_cb;
  void *log_arg;
  int log_level;         /* 0: off. */
  int cb_depth;   /* > 0 while a user callback runs. */
  int run_depth;  /* > 0 while svc_ctx_run() or svc_call_sync() runs. */
  int closing;
  int handles_open;
  int handles_closing;
  int conns_closed;  /* Close reached the conns. */
  int close_pending; /* Conns and servers still closing. */
  int closed;        /* Close finished (owned loop: free after run). */
  svc_ctx_close_cb close_cb;
  void *close_arg;
};

/* Runs a user callback with the bookkeeping that svc_call_sync() needs. */
#define SVC__USER_CB(ctx, expr) \
  do {                          \
    (ctx)->cb_depth++;          \
    expr;                       \
    (ctx)->cb_depth--;          \
  } while (0)

uint64_t svc__rand(svc_ctx_t *ctx);
double svc__rand_unit(svc_ctx_t *ctx); /* [0, 1) */
static inline uint64_t svc__now_ms(svc_ctx_t *ctx) {
  return uv_now(ctx->loop);
}
uint64_t svc__now_us(void);

/* ---- Connection state (conn_state.c). */
struct svc__conn_note;
void svc__conn_notes_free(svc_ctx_t *ctx);
/* Queues a publisher watermark change of conn for the callback
 * (svc_ctx_set_pub_watermark()): 1 when it will be told. */
int svc__conn_note_watermark(struct svc__conn *conn, size_t depth, int high);

/* ---- Call policies (policy.c, policy_file.c). */
struct svc__policy;
/* The policy for a call to path (a route or topic, may be NULL) of
 * endpoint: the most specific matching filter's, else the endpoint's, else
 * NULL. */
struct svc__policy *svc__policy_find(svc_ctx_t *ctx, const char *endpoint,
                                     const char *path);
/* Splits a policy URI into its endpoint and its route or topic filter
 * (NULL for none); both new. SVC_EINVAL for a bad URI or filter. */
int svc__policy_key(const char *uri, char **endpoint, char **filter);
/* The policy's call deadline, 0 for none (pol may be NULL). */
uint64_t svc__policy_timeout(const struct svc__policy *pol);
/* Before an attempt of call: 0 (go; it holds a slot until released), 1
 * (it waits; svc__call_attempt_go() runs when a slot frees), SVC_EBREAKER
 * or SVC_ENOBUFS (fail it). */
int svc__policy_admit(struct svc__policy *pol, struct svc_call_s *call);
/* The admitted attempt of call ended with status; counts: whether the
 * breaker learns from it (not for a cancelled call). */
void svc__policy_release(struct svc__policy *pol, struct svc_call_s *call,
                         svc_status_t status, int counts);
/* A waiting call was decided: it leaves the queue. */
void svc__policy_unqueue(struct svc__policy *pol, struct svc_call_s *call);
int svc__policy_apply(svc_ctx_t *ctx, const char *uri, const svc_policy_t *p);
void svc__policies_free(svc_ctx_t *ctx);
/* call.c, for policy.c: start the admitted attempt; fail a call at once. */
void svc__call_attempt_go(struct svc_call_s *call);
void svc__call_fail_now(struct svc_call_s *call, svc_status_t status,
                        int err);

/* ---- Trace context and logging (trace.c). */
void svc__trace_seed(svc_ctx_t *ctx);
/* A new span of parent's trace, or of a new trace when parent is NULL. */
void svc__trace_child(svc_ctx_t *ctx, const svc_trace_t *parent,
                      svc_trace_t *out);
/* Unless tracing is off: sets msg's traceparent to a new span of the
 * trace msg already carries, else of the context's current trace, else
 * (create) of a new trace. Returns 1 and the trace in *out (may be NULL),
 * 0 when msg stays untraced, or SVC_ENOMEM. */
int svc__trace_stamp(svc_ctx_t *ctx, svc_msg_t *msg, int create,
                     svc_trace_t *out);
/* Makes t (NULL: none) the current trace until svc__trace_leave(). */
struct svc__trace_scope {
  svc_trace_t saved;
  const svc_msg_t *saved_msg;
  int had;
};
void svc__trace_enter(svc_ctx_t *ctx, const svc_trace_t *t,
                      struct svc__trace_scope *sc);
/* The same with a new span of msg's trace (none when it carries none). */
void svc__trace_enter_msg(svc_ctx_t *ctx, const svc_msg_t *msg,
                          struct svc__trace_scope *sc);
void svc__trace_leave(svc_ctx_t *ctx, const struct svc__trace_scope *sc);
static inline int svc__log_wants(const svc_ctx_t *ctx, svc_log_level_t l) {
  return (int)l <= ctx->log_level;
}
/* Builds a record and hands it to the hook, when it wants level. */
void svc__log(svc_ctx_t *ctx, svc_log_level_t level, const char *verb,
              const char *endpoint, const char *target, svc_status_t status,
              int err, uint64_t latency_us, const svc_trace_t *trace,
              const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 10, 11)))
#endif
    ;

/* A context's named hub (inproc endpoints, served endpoints). */
struct svc__hub *svc__ctx_hub(svc_ctx_t *ctx, const char *endpoint,
                              int create);
/* Renames the hub of endpoint from (if any). 0 or SVC_ENOMEM. */
int svc__ctx_hub_rename(svc_ctx_t *ctx, const char *from, const char *to);

/* Called by conns and servers when their asynchronous close finished; the
 * context close waits for all of them. */
void svc__ctx_close_step(svc_ctx_t *ctx);
int svc__ctx_release_if_closed(svc_ctx_t *ctx);

/* Only the loop thread may call the API (svc_ctx_post() aside). */
#define SVC__ASSERT_LOOP_THREAD(ctx)                     \
  do {                                                   \
    uv_thread_t svc__self_ = uv_thread_self();           \
    assert(uv_thread_equal(&(ctx)->thread, &svc__self_)); \
    (void)svc__self_;                                    \
  } while (0)

/* ---- Transports. */
#include "transports/transport.h"

/* conn.c: the common start of every client verb. */
int svc__conn_get(svc_ctx_t *ctx, const struct svc__url *url,
                  const struct svc__transport *ops, struct svc__conn **out);
int svc__verb_target(svc_ctx_t *ctx, const char *uri, struct svc__url **url,
                     struct svc__conn **conn);
/* Drops the parsed URIs the context keeps. */
void svc__url_cache_free(svc_ctx_t *ctx);

/* Context close: each verb module ends its own kind of work, queueing the
 * callbacks it owes. */
void svc__calls_abort_all(svc_ctx_t *ctx);
void svc__pubs_abort_all(svc_ctx_t *ctx);
void svc__pubs_free_spares(svc_ctx_t *ctx);
void svc__subs_abort_all(svc_ctx_t *ctx);
void svc__streams_abort_all(svc_ctx_t *ctx);
void svc__streams_abort_server(struct svc_server_s *srv);
void svc__servers_close_all(svc_ctx_t *ctx);
void svc__servers_free_all(svc_ctx_t *ctx);
/* server.c: routes an incoming stream to its accept callback, or resets it. */
void svc__server_route_stream(struct svc_server_s *srv,
                              struct svc_stream_s *s);

#endif /* SVC_INTERNAL_H */
