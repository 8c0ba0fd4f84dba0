/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

/* Call policies per endpoint, or per route or topic of an endpoint: the
 * circuit breaker and the concurrency limit (rules in svccomm/policy.h).
 * call.c asks for admission before each attempt and reports each admitted
 * attempt's end; everything else is here. A policy record lives as long as
 * its context, so a breaker keeps its state while connections come and
 * go. */

#define BREAKER_WINDOW_MAX 1024

struct svc__policy {
  struct svc__list link; /* ctx->policies */
  svc_ctx_t *ctx;
  char *endpoint;
  char *filter;   /* Route or topic filter ("users/+"), NULL: every path. */
  int specificity; /* Higher wins when several filters match a path. */
  svc_policy_t p; /* Defaults filled in. */
  struct svc__metrics *metrics;

  svc_breaker_state_t state;
  unsigned in_row; /* Failures in a row. */
  uint8_t *window; /* 1 per failed attempt, a ring. */
  unsigned wsize;
  unsigned wpos;
  unsigned wcount;
  unsigned wfail;
  uint64_t opened_at; /* Loop ms. */
  unsigned probes_out;
  unsigned probes_ok;

  unsigned in_flight;
  struct svc__list waiting; /* struct svc_call_s.plink, oldest first. */
  size_t nwaiting;
  struct svc__task task; /* Starts waiting calls as slots free up. */
};

static int status_is_failure(svc_status_t s) {
  return s == SVC_STATUS_UNAVAILABLE || s == SVC_STATUS_DEADLINE_EXCEEDED ||
         s == SVC_STATUS_INTERNAL || s == SVC_STATUS_UNKNOWN ||
         s == SVC_STATUS_DATA_LOSS;
}

static const char *state_name(svc_breaker_state_t s) {
  return s == SVC_BREAKER_OPEN        ? "open"
         : s == SVC_BREAKER_HALF_OPEN ? "half-open"
                                      : "closed";
}

static void window_reset(struct svc__policy *pol) {
  pol->in_row = 0;
  pol->wpos = 0;
  pol->wcount = 0;
  pol->wfail = 0;
  if (pol->window != NULL)
    memset(pol->window, 0, pol->wsize);
}

static void set_state(struct svc__policy *pol, svc_breaker_state_t s,
                      const char *why) {
  svc_ctx_t *ctx = pol->ctx;

  struct svc__list *pos;
  svc_breaker_state_t shown = SVC_BREAKER_CLOSED;

  if (pol->state == s)
    return;
  pol->state = s;
  /* The endpoint's gauge shows its most open breaker: open, else
   * half-open, else closed. */
  svc__list_foreach(pos, &ctx->policies) {
    struct svc__policy *o = svc__container_of(pos, struct svc__policy, link);
    if (o->metrics == pol->metrics &&
        (o->state == SVC_BREAKER_OPEN || shown == SVC_BREAKER_CLOSED))
      shown = o->state;
  }
  pol->metrics->m.breaker_state = (uint64_t)shown;
  if (s == SVC_BREAKER_OPEN) {
    pol->opened_at = svc__now_ms(ctx);
    pol->metrics->m.breaker_opens++;
  }
  if (s == SVC_BREAKER_HALF_OPEN) {
    pol->probes_out = 0;
    pol->probes_ok = 0;
  }
  if (s == SVC_BREAKER_CLOSED)
    window_reset(pol);
  svc__log(ctx, s == SVC_BREAKER_OPEN ? SVC_LOG_WARN : SVC_LOG_INFO, "breaker",
           pol->endpoint, pol->filter, SVC_STATUS_OK, 0, 0, NULL,
           "circuit breaker %s: %s", state_name(s), why);
}

/* Open long enough: half-open. Runs before every decision. */
static void breaker_tick(struct svc__policy *pol) {
  if (pol->state == SVC_BREAKER_OPEN &&
      svc__now_ms(pol->ctx) - pol->opened_at >= pol->p.breaker_cooldown_ms)
    set_state(pol, SVC_BREAKER_HALF_OPEN, "cool-down over, probing");
}

/* 0 when the breaker lets one more attempt through (taking a probe when
 * half-open), else SVC_EBREAKER. */
static int breaker_admit(struct svc__policy *pol, struct svc_call_s *call) {
  breaker_tick(pol);
  if (pol->state == SVC_BREAKER_OPEN ||
      (pol->state == SVC_BREAKER_HALF_OPEN &&
       pol->probes_out >= pol->p.breaker_probes)) {
    pol->metrics->m.calls_rejected++;
    return SVC_EBREAKER;
  }
  if (pol->state == SVC_BREAKER_HALF_OPEN) {
    pol->probes_out++;
    call->probe = 1;
  }
  return 0;
}

static void breaker_record(struct svc__policy *pol, int failed, int probe) {
  char why[96];

  if (probe && pol->state == SVC_BREAKER_HALF_OPEN) {
    if (failed) {
      set_state(pol, SVC_BREAKER_OPEN, "a probe failed");
    } else if (++pol->probes_ok >= pol->p.breaker_probes) {
      set_state(pol, SVC_BREAKER_CLOSED, "the probes succeeded");
    }
    return;
  }
  if (pol->state != SVC_BREAKER_CLOSED)
    return; /* Started before the breaker opened: says nothing new. */
  pol->in_row = failed ? pol->in_row + 1 : 0;
  if (pol->window != NULL) {
    if (pol->wcount == pol->wsize)
      pol->wfail -= pol->window[pol->wpos];
    else
      pol->wcount++;
    pol->window[pol->wpos] = (uint8_t)(failed != 0);
    pol->wfail += (unsigned)(failed != 0);
    pol->wpos = (pol->wpos + 1) % pol->wsize;
  }
  if (pol->p.breaker_failures > 0 && pol->in_row >= pol->p.breaker_failures) {
    snprintf(why, sizeof(why), "%u failures in a row", pol->in_row);
    set_state(pol, SVC_BREAKER_OPEN, why);
  } else if (pol->window != NULL && pol->wcount == pol->wsize &&
             (double)pol->wfail >=
                 pol->p.breaker_error_rate * (double)pol->wsize) {
    snprintf(why, sizeof(why), "%u of the last %u attempts failed", pol->wfail,
             pol->wsize);
    set_state(pol, SVC_BREAKER_OPEN, why);
  }
}

/* ---- Admission, for call.c. */

static void take_slot(struct svc__policy *pol, struct svc_call_s *call) {
  call->admitted = 1;
  pol->in_flight++;
}

static void waiting_push(struct svc__policy *pol, struct svc_call_s *call) {
  svc__list_insert_tail(&pol->waiting, &call->plink);
  pol->nwaiting++;
  call->queued = 1;
  pol->metrics->m.calls_waiting++;
}

void svc__policy_unqueue(struct svc__policy *pol, struct svc_call_s *call) {
  if (!call->queued)
    return;
  svc__list_remove(&call->plink);
  pol->nwaiting--;
  call->queued = 0;
  pol->metrics->m.calls_waiting--;
}

int svc__policy_admit(struct svc__policy *pol, struct svc_call_s *call) {
  struct svc_call_s *oldest;
  int rc;

  rc = breaker_admit(pol, call);
  if (rc != 0)
    return rc;
  /* Calls that wait go first: a new one may not overtake them. */
  if (pol->p.max_in_flight == 0 ||
      (pol->in_flight < pol->p.max_in_flight && pol->nwaiting == 0)) {
    take_slot(pol, call);
    return 0;
  }
  if (call->probe) { /* Not a probe while it waits. */
    call->probe = 0;
    pol->probes_out--;
  }
  if (pol->nwaiting >= pol->p.max_queued) {
    if (pol->p.overflow != SVC_OVERFLOW_DROP_OLDEST || pol->nwaiting == 0) {
      pol->metrics->m.calls_rejected++;
      return SVC_ENOBUFS;
    }
    oldest = svc__container_of(svc__list_head(&pol->waiting), struct svc_call_s,
                               plink);
    svc__policy_unqueue(pol, oldest);
    pol->metrics->m.calls_rejected++;
    svc__call_fail_now(oldest, SVC_STATUS_RESOURCE_EXHAUSTED, SVC_ENOBUFS);
  }
  waiting_push(pol, call);
  return 1;
}

static void policy_task(struct svc__task *t) {
  struct svc__policy *pol = svc__container_of(t, struct svc__policy, task);
  struct svc__list *pos;

  while (pol->in_flight < pol->p.max_in_flight &&
         (pos = svc__list_head(&pol->waiting)) != NULL) {
    struct svc_call_s *call = svc__container_of(pos, struct svc_call_s, plink);
    svc__policy_unqueue(pol, call);
    if (breaker_admit(pol, call) != 0) {
      svc__call_fail_now(call, SVC_STATUS_UNAVAILABLE, SVC_EBREAKER);
      continue;
    }
    take_slot(pol, call);
    svc__call_attempt_go(call);
  }
}

void svc__policy_release(struct svc__policy *pol, struct svc_call_s *call,
                         svc_status_t status, int counts) {
  int probe = call->probe;

  call->admitted = 0;
  call->probe = 0;
  pol->in_flight--;
  if (probe && !counts)
    pol->probes_out--; /* A cancelled probe frees its turn. */
  if (counts)
    breaker_record(pol, status_is_failure(status), probe);
  if (pol->nwaiting > 0 &&
      (pol->p.max_in_flight == 0 || pol->in_flight < pol->p.max_in_flight))
    svc__defer(pol->ctx, &pol->task);
}

struct svc__policy *svc__policy_find(svc_ctx_t *ctx, const char *endpoint,
                                     const char *path) {
  struct svc__list *pos;
  struct svc__policy *best = NULL;

  svc__list_foreach(pos, &ctx->policies) {
    struct svc__policy *pol = svc__container_of(pos, struct svc__policy, link);
    if (strcmp(pol->endpoint, endpoint) != 0 ||
        (best != NULL && pol->specificity <= best->specificity))
      continue;
    if (pol->filter == NULL ||
        (path != NULL && svc__topic_match(pol->filter, path)))
      best = pol;
  }
  return best;
}

/* The record set for exactly this endpoint and filter, or NULL. */
static struct svc__policy *policy_exact(svc_ctx_t *ctx, const char *endpoint,
                                        const char *filter) {
  struct svc__list *pos;

  svc__list_foreach(pos, &ctx->policies) {
    struct svc__policy *pol = svc__container_of(pos, struct svc__policy, link);
    if (strcmp(pol->endpoint, endpoint) == 0 &&
        (pol->filter == NULL ? filter == NULL
                             : filter != NULL && strcmp(pol->filter, filter) == 0))
      return pol;
  }
  return NULL;
}

/* How specific a filter is: literal levels count most, then the absence
 * of '#', then of '+'. A whole-endpoint policy is below every filter. */
static int filter_specificity(const char *filter) {
  int literal = 0;
  int has_hash = 0;
  int has_plus = 0;
  const char *level = filter;

  if (filter == NULL)
    return -1;
  for (;;) {
    const char *end = strchr(level, '/');
    size_t n = end != NULL ? (size_t)(end - level) : strlen(level);
    if (n == 1 && level[0] == '#')
      has_hash = 1;
    else if (n == 1 && level[0] == '+')
      has_plus = 1;
    else
      literal++;
    if (end == NULL)
      break;
    level = end + 1;
  }
  return literal * 4 + (has_hash ? 0 : 2) + (has_plus ? 0 : 1);
}

uint64_t svc__policy_timeout(const struct svc__policy *pol) {
  return pol != NULL ? pol->p.timeout_ms : 0;
}

/* ---- The public API. */

static int policy_valid(const svc_policy_t *p) {
  return p->overflow >= SVC_OVERFLOW_DEFAULT &&
         p->overflow <= SVC_OVERFLOW_DROP_NEWEST &&
         p->breaker_error_rate >= 0 && p->breaker_error_rate <= 1.0 &&
         p->breaker_window <= BREAKER_WINDOW_MAX;
}

static void policy_defaults(svc_policy_t *p) {
  if (p->breaker_window == 0)
    p->breaker_window = 20;
  if (p->breaker_cooldown_ms == 0)
    p->breaker_cooldown_ms = 5000;
  if (p->breaker_probes == 0)
    p->breaker_probes = 1;
}

int svc__policy_key(const char *uri, char **endpoint, char **filter) {
  struct svc__url *url;
  int rc = svc__url_parse(uri, &url);

  if (rc != 0)
    return rc;
  *endpoint = NULL;
  *filter = NULL;
  /* A host-less URI's path names the endpoint itself (unix://, inproc://
   * without a host): it has no route filter. */
  if (url->host[0] != '\0' && url->path[0] != '\0') {
    if (svc__topic_check_filter(url->path) != 0 ||
        strncmp(url->path, "$share/", 7) == 0) {
      svc__url_free(url);
      return SVC_EINVAL;
    }
    if ((*filter = svc__strdup(url->path)) == NULL)
      rc = SVC_ENOMEM;
  }
  if (rc == 0 && (*endpoint = svc__strdup(url->endpoint)) == NULL)
    rc = SVC_ENOMEM;
  svc__url_free(url);
  if (rc != 0) {
    svc__free(*filter);
    *filter = NULL;
  }
  return rc;
}

/* Sets the policy of an endpoint and filter (copies are taken). */
static int policy_apply(svc_ctx_t *ctx, const char *endpoint,
                        const char *filter, const svc_policy_t *given) {
  struct svc__policy *pol = policy_exact(ctx, endpoint, filter);
  svc_policy_t p = *given;
  uint8_t *window = NULL;

  policy_defaults(&p);
  if (p.breaker_error_rate > 0) {
    window = svc__calloc(p.breaker_window, 1);
    if (window == NULL)
      return SVC_ENOMEM;
  }
  if (pol == NULL) {
    pol = svc__calloc(1, sizeof(*pol));
    if (pol == NULL || (pol->endpoint = svc__strdup(endpoint)) == NULL ||
        (filter != NULL && (pol->filter = svc__strdup(filter)) == NULL) ||
        (pol->metrics = svc__metrics_get(ctx, endpoint, SVC_ROLE_CLIENT)) ==
            NULL) {
      if (pol != NULL) {
        svc__free(pol->endpoint);
        svc__free(pol->filter);
      }
      svc__free(pol);
      svc__free(window);
      return SVC_ENOMEM;
    }
    pol->ctx = ctx;
    pol->specificity = filter_specificity(filter);
    svc__list_init(&pol->waiting);
    svc__task_init(&pol->task, policy_task);
    svc__list_insert_tail(&ctx->policies, &pol->link);
  }
  svc__free(pol->window);
  pol->window = window;
  pol->wsize = p.breaker_window;
  pol->p = p;
  pol->in_row = 0;
  pol->wpos = pol->wcount = pol->wfail = 0;
  /* A higher limit lets waiting calls go now. */
  if (pol->nwaiting > 0)
    svc__defer(ctx, &pol->task);
  return 0;
}

int svc_policy_set(svc_ctx_t *ctx, const char *uri,
                   const svc_policy_t *policy) {
  if (ctx == NULL || uri == NULL || policy == NULL || !policy_valid(policy))
    return SVC_EINVAL;
  return svc__policy_apply(ctx, uri, policy);
}

/* The policy set for exactly uri's endpoint and filter in *out: 0,
 * SVC_ENOENT, or a URI error. */
static int policy_lookup(svc_ctx_t *ctx, const char *uri,
                         struct svc__policy **out) {
  char *endpoint;
  char *filter;
  int rc;

  if (ctx == NULL || uri == NULL)
    return SVC_EINVAL;
  rc = svc__policy_key(uri, &endpoint, &filter);
  if (rc != 0)
    return rc;
  *out = policy_exact(ctx, endpoint, filter);
  svc__free(endpoint);
  svc__free(filter);
  return *out != NULL ? 0 : SVC_ENOENT;
}

int svc_policy_get(svc_ctx_t *ctx, const char *uri, svc_policy_t *out) {
  struct svc__policy *pol;
  int rc = out != NULL ? policy_lookup(ctx, uri, &pol) : SVC_EINVAL;

  if (rc == 0)
    *out = pol->p;
  return rc;
}

int svc_breaker_state(svc_ctx_t *ctx, const char *uri) {
  struct svc__policy *pol;
  int rc = policy_lookup(ctx, uri, &pol);

  if (rc != 0)
    return rc;
  breaker_tick(pol);
  return (int)pol->state;
}

void svc__policies_free(svc_ctx_t *ctx) {
  struct svc__list *pos;

  while ((pos = svc__list_head(&ctx->policies)) != NULL) {
    struct svc__policy *pol = svc__container_of(pos, struct svc__policy, link);
    svc__list_remove(pos);
    svc__undefer(ctx, &pol->task);
    svc__free(pol->window);
    svc__free(pol->endpoint);
    svc__free(pol->filter);
    svc__free(pol);
  }
}

/* svc_policy_set() without the argument checks; svc_policy_load()
 * (policy_file.c) sets what it read through this. */
int svc__policy_apply(svc_ctx_t *ctx, const char *uri, const svc_policy_t *p) {
  char *endpoint;
  char *filter;
  int rc;

  if (!policy_valid(p))
    return SVC_EINVAL;
  rc = svc__policy_key(uri, &endpoint, &filter);
  if (rc != 0)
    return rc;
  rc = policy_apply(ctx, endpoint, filter, p);
  svc__free(endpoint);
  svc__free(filter);
  return rc;
}
