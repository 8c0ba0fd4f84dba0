/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "fault.h"

/* Fault profiles of endpoints: options, the generator, the decisions, and
 * the bounded store of held-back operations (inproc.c and fault_wrap.c
 * apply them). Decisions depend only on the seed and on the sequence of
 * operations: each operation draws the same number of values from its own
 * profile's generator (never the context's jitter generator, never the
 * clock). */

#define FAULT_DEFAULT_MAX_HELD 1024
#define FAULT_PREFIX "fault-"
/* Values drawn per operation, whatever its kind and outcome. */
#define FAULT_DRAWS 7

/* splitmix64 (Steele, Lea, Flood 2014): tiny, any seed works (0 too), and
 * consecutive seeds give unrelated sequences. */
static uint64_t fault_next(struct svc__fault *f) {
  uint64_t z = (f->rng += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Nonzero with probability ppm / 10^6: the top 32 bits scaled to
 * [0, 10^6) without floating point. */
static int fault_hit(uint64_t r, uint32_t ppm) {
  return (((r >> 32) * SVC__FAULT_PPM) >> 32) < ppm;
}

static void fault_flush_task(struct svc__task *t) {
  svc__fault_release_held(svc__container_of(t, struct svc__fault, flush));
}

void svc__fault_init(struct svc__fault *f, svc_ctx_t *ctx) {
  memset(f, 0, sizeof(*f));
  f->ctx = ctx;
  svc__list_init(&f->held);
  svc__task_init(&f->flush, fault_flush_task);
}

void svc__fault_fini(struct svc__fault *f) {
  if (f->ctx == NULL)
    return;
  assert(f->nheld == 0 && svc__list_empty(&f->held));
  svc__undefer(f->ctx, &f->flush);
  svc__free(f->spec);
  f->spec = NULL;
  f->active = 0;
}

static void fault_start(struct svc__fault *f,
                        const struct svc__fault_cfg *cfg) {
  f->cfg = *cfg;
  if (f->cfg.max_held == 0)
    f->cfg.max_held = FAULT_DEFAULT_MAX_HELD;
  if (f->cfg.delay == 0 && f->cfg.delay_max_ms > 0)
    f->cfg.delay = SVC__FAULT_PPM;
  f->rng = cfg->seed;
  memset(&f->stats, 0, sizeof(f->stats));
  f->active = 1;
}

/* ---- Options. */

/* A probability written as a decimal "0", "1", "0.05", "1.0" (at most six
 * digits after the point), in ppm. */
static int fault_parse_prob(const char *s, size_t n, uint32_t *out) {
  const char *dot = memchr(s, '.', n);
  size_t ilen = dot != NULL ? (size_t)(dot - s) : n;
  size_t flen = dot != NULL ? n - ilen - 1 : 0;
  uint64_t ipart = 0;
  uint64_t fpart = 0;
  size_t i;

  if (ilen == 0 && flen == 0)
    return SVC_EINVAL;
  if (ilen > 0 && svc__parse_decimal(s, ilen, &ipart) != 0)
    return SVC_EINVAL;
  if (dot != NULL &&
      (flen == 0 || flen > 6 || svc__parse_decimal(dot + 1, flen, &fpart) != 0))
    return SVC_EINVAL;
  for (i = flen; i < 6; i++)
    fpart *= 10;
  if (ipart > 1 || (ipart == 1 && fpart > 0))
    return SVC_EINVAL;
  *out = (uint32_t)(ipart * SVC__FAULT_PPM + fpart);
  return 0;
}

/* "MIN-MAX" or "MS" (both ends the same). */
static int fault_parse_range(const char *s, size_t n, uint64_t *lo,
                             uint64_t *hi) {
  const char *dash = memchr(s, '-', n);

  if (dash == NULL) {
    if (svc__parse_decimal(s, n, lo) != 0)
      return SVC_EINVAL;
    *hi = *lo;
    return 0;
  }
  if (svc__parse_decimal(s, (size_t)(dash - s), lo) != 0 ||
      svc__parse_decimal(dash + 1, n - (size_t)(dash - s) - 1, hi) != 0 ||
      *lo > *hi)
    return SVC_EINVAL;
  return 0;
}

static int fault_apply(struct svc__fault_cfg *c, const struct svc__qpair *q) {
  const char *n = q->name;
  size_t nl = q->name_len;
  const char *v = q->value;
  size_t vl = q->value_len;
  uint64_t x;

  if (v == NULL)
    return SVC_EINVAL;
  if (svc__name_is(n, nl, "fault-seed"))
    return svc__parse_decimal(v, vl, &c->seed);
  if (svc__name_is(n, nl, "fault-loss"))
    return fault_parse_prob(v, vl, &c->loss);
  if (svc__name_is(n, nl, "fault-dup"))
    return fault_parse_prob(v, vl, &c->dup);
  if (svc__name_is(n, nl, "fault-reorder"))
    return fault_parse_prob(v, vl, &c->reorder);
  if (svc__name_is(n, nl, "fault-disconnect"))
    return fault_parse_prob(v, vl, &c->disconnect);
  if (svc__name_is(n, nl, "fault-delay"))
    return fault_parse_prob(v, vl, &c->delay);
  if (svc__name_is(n, nl, "fault-delay-ms"))
    return fault_parse_range(v, vl, &c->delay_min_ms, &c->delay_max_ms);
  if (svc__name_is(n, nl, "fault-max-held")) {
    if (svc__parse_decimal(v, vl, &x) != 0 || x == 0)
      return SVC_EINVAL;
    c->max_held = (size_t)x;
    return 0;
  }
  return SVC_EINVAL;
}

int svc__fault_query_present(const struct svc__url *url) {
  return url->query != NULL && strstr(url->query, FAULT_PREFIX) != NULL;
}

int svc__fault_query_take(struct svc__url *url, struct svc__fault_query *fq) {
  const char *p = url->query;
  size_t plen = strlen(FAULT_PREFIX);
  struct svc__qpair q;
  char *spec;
  char *rest;
  size_t slen = 0;
  size_t rlen = 0;
  size_t nrest = 0;
  size_t qlen;
  int rc = 0;

  memset(fq, 0, sizeof(*fq));
  /* Most URIs carry none, and publishing is hot. */
  if (!svc__fault_query_present(url))
    return 0;
  /* Both parts are no longer than the query. */
  qlen = strlen(p);
  spec = svc__malloc(qlen + 1);
  rest = svc__malloc(qlen + 1);
  if (spec == NULL || rest == NULL) {
    svc__free(spec);
    svc__free(rest);
    return SVC_ENOMEM;
  }
  while (rc == 0 && svc__query_next(&p, &q)) {
    size_t n = q.value != NULL ? (size_t)(q.value + q.value_len - q.name)
                               : q.name_len;

    if (q.name_len < plen || strncmp(q.name, FAULT_PREFIX, plen) != 0) {
      /* Not ours: left for the backend, as written. */
      if (nrest++ > 0)
        rest[rlen++] = '&';
      memcpy(rest + rlen, q.name, n);
      rlen += n;
      continue;
    }
    rc = fault_apply(&fq->cfg, &q);
    /* The pairs as written, to tell a repeated URI from a new profile. */
    if (slen > 0)
      spec[slen++] = '&';
    memcpy(spec + slen, q.name, n);
    slen += n;
  }
  spec[slen] = '\0';
  rest[rlen] = '\0';
  if (rc != 0 || slen == 0) {
    svc__free(spec);
    svc__free(rest);
    memset(fq, 0, sizeof(*fq));
    return rc;
  }
  fq->spec = spec;
  svc__free(url->query);
  url->query = rest;
  if (nrest == 0) {
    svc__free(rest);
    url->query = NULL;
  }
  return 0;
}

void svc__fault_use(struct svc__fault *f, struct svc__fault_query *fq) {
  if (f->spec != NULL && strcmp(f->spec, fq->spec) == 0) {
    svc__free(fq->spec);
    fq->spec = NULL;
    return;
  }
  svc__free(f->spec);
  f->spec = fq->spec;
  fq->spec = NULL;
  fault_start(f, &fq->cfg);
}

struct svc__fault *svc__fault_of(struct svc__conn *conn, int create) {
  struct svc__fault *f = svc__inproc_fault(conn);

  if (f != NULL)
    return f;
  if (conn->fw == NULL && !create)
    return NULL;
  return svc__fwrap_fault(conn);
}

/* ---- Decisions. */

int svc__fault_plan(struct svc__fault *f, unsigned kinds,
                    struct svc__fault_plan *plan) {
  const struct svc__fault_cfg *c = &f->cfg;
  uint64_t r[FAULT_DRAWS];
  size_t i;

  memset(plan, 0, sizeof(*plan));
  if (!f->active)
    return 0;
  for (i = 0; i < FAULT_DRAWS; i++)
    r[i] = fault_next(f);
  f->stats.ops++;
  if ((kinds & SVC__FAULT_DISCONNECT) && fault_hit(r[0], c->disconnect)) {
    plan->disconnect = 1;
    plan->after = fault_hit(r[1], SVC__FAULT_PPM / 2);
    f->stats.disconnects++;
    return 1;
  }
  if ((kinds & SVC__FAULT_LOSS) && fault_hit(r[2], c->loss)) {
    plan->lose = 1;
    f->stats.lost++;
    return 1;
  }
  if ((kinds & SVC__FAULT_DUP) && fault_hit(r[3], c->dup)) {
    plan->dup = 1;
    f->stats.duplicated++;
  }
  if ((kinds & SVC__FAULT_DELAY) && c->delay_max_ms > 0 &&
      fault_hit(r[5], c->delay))
    plan->delay_ms =
        c->delay_min_ms + r[6] % (c->delay_max_ms - c->delay_min_ms + 1);
  else if ((kinds & SVC__FAULT_REORDER) && fault_hit(r[4], c->reorder))
    plan->reorder = 1;
  if ((plan->delay_ms > 0 || plan->reorder) && f->nheld >= c->max_held) {
    plan->delay_ms = 0;
    plan->reorder = 0;
    f->stats.overflowed++;
  }
  return 1;
}

/* ---- Held operations. */

static void fault_timer_fired(struct svc__timer *t) {
  struct svc__fault_item *it =
      svc__container_of(t, struct svc__fault_item, timer);

  it->fault->nheld--;
  it->release(it);
}

int svc__fault_delay(struct svc__fault *f, struct svc__fault_item *it,
                     uint64_t ms) {
  int rc;

  it->fault = f;
  svc__list_init(&it->link);
  svc__timer_init(&it->timer, fault_timer_fired);
  rc = svc__timer_start(f->ctx, &it->timer, ms);
  if (rc != 0)
    return rc;
  f->nheld++;
  f->stats.delayed++;
  return 0;
}

void svc__fault_hold(struct svc__fault *f, struct svc__fault_item *it) {
  it->fault = f;
  svc__timer_init(&it->timer, fault_timer_fired);
  svc__list_insert_tail(&f->held, &it->link);
  f->nheld++;
  f->stats.reordered++;
  /* Nothing may wait for a next publish that never comes. */
  svc__defer(f->ctx, &f->flush);
}

void svc__fault_release_held(struct svc__fault *f) {
  struct svc__list batch;
  struct svc__list *pos;
  struct svc__fault_item *it;

  svc__undefer(f->ctx, &f->flush);
  if (svc__list_empty(&f->held))
    return;
  /* Take the whole list first: what a release publishes may hold again. */
  batch.next = f->held.next;
  batch.prev = f->held.prev;
  batch.next->prev = &batch;
  batch.prev->next = &batch;
  svc__list_init(&f->held);
  while ((pos = svc__list_head(&batch)) != NULL) {
    it = svc__container_of(pos, struct svc__fault_item, link);
    svc__list_remove(pos);
    f->nheld--;
    it->release(it);
  }
}

void svc__fault_cancel(struct svc__fault_item *it) {
  struct svc__fault *f = it->fault;

  if (svc__timer_active(&it->timer)) {
    svc__timer_stop(f->ctx, &it->timer);
    f->nheld--;
  } else if (it->link.next != &it->link) {
    svc__list_remove(&it->link);
    f->nheld--;
  }
}

/* ---- Public API. */

static int fault_cfg_from_opts(const svc_fault_opts_t *o,
                               struct svc__fault_cfg *c) {
  const double p[5] = {o->loss, o->dup, o->reorder, o->disconnect, o->delay};
  uint32_t *ppm[5] = {&c->loss, &c->dup, &c->reorder, &c->disconnect,
                      &c->delay};
  size_t i;

  memset(c, 0, sizeof(*c));
  for (i = 0; i < 5; i++) {
    /* Written so that NaN fails too. */
    if (!(p[i] >= 0.0 && p[i] <= 1.0))
      return SVC_EINVAL;
    *ppm[i] = (uint32_t)(p[i] * SVC__FAULT_PPM + 0.5);
  }
  if (o->delay_min_ms > o->delay_max_ms)
    return SVC_EINVAL;
  c->seed = o->seed;
  c->delay_min_ms = o->delay_min_ms;
  c->delay_max_ms = o->delay_max_ms;
  c->max_held = o->max_held;
  return 0;
}

/* Parses uri and checks that its scheme has a backend. */
static int fault_url(const char *uri, struct svc__url **url) {
  int rc = svc__url_parse(uri, url);

  if (rc != 0)
    return rc;
  if (svc__transport_find((*url)->scheme) == NULL) {
    svc__url_free(*url);
    *url = NULL;
    return SVC_ESCHEME;
  }
  return 0;
}

int svc_fault_set(svc_ctx_t *ctx, const char *uri,
                  const svc_fault_opts_t *opts) {
  struct svc__fault_cfg cfg;
  struct svc__url *url;
  struct svc__conn *conn;
  struct svc__fault *f;
  int rc;

  if (ctx == NULL || uri == NULL)
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  if (opts != NULL && (rc = fault_cfg_from_opts(opts, &cfg)) != 0)
    return rc;
  rc = fault_url(uri, &url);
  if (rc != 0)
    return rc;
  svc__url_free(url);
  /* The profile lives in the endpoint's conn, made here if need be. */
  rc = svc__verb_target(ctx, uri, &url, &conn);
  if (rc != 0)
    return rc;
  svc__url_free(url);
  f = svc__fault_of(conn, opts != NULL);
  if (f == NULL)
    return opts != NULL ? SVC_ENOMEM : 0;
  if (opts == NULL)
    f->active = 0;
  else
    fault_start(f, &cfg);
  return 0;
}

int svc_fault_stats(svc_ctx_t *ctx, const char *uri, svc_fault_stats_t *out) {
  struct svc__url *url;
  struct svc__list *pos;
  struct svc__fault *f = NULL;
  int rc;

  if (ctx == NULL || uri == NULL || out == NULL)
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  rc = fault_url(uri, &url);
  if (rc != 0)
    return rc == SVC_EINVAL ? rc : SVC_ENOENT;
  svc__list_foreach(pos, &ctx->conns) {
    struct svc__conn *conn = svc__container_of(pos, struct svc__conn, link);
    if (!conn->closing && strcmp(conn->endpoint, url->endpoint) == 0 &&
        (f = svc__fault_of(conn, 0)) != NULL)
      break;
  }
  svc__url_free(url);
  if (f == NULL || !f->active)
    return SVC_ENOENT;
  *out = f->stats;
  out->held = f->nheld;
  return 0;
}
