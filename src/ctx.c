/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include <signal.h>
#include <stdlib.h>

/* The context: the loop binding, the deferred-task queue ("next tick"),
 * thread-safe posts, and the close sequence that ends every piece of work
 * with exactly one callback. */

struct svc__post {
  struct svc__post *next;
  svc_post_cb fn;
  void *arg;
};

struct svc__named_hub {
  struct svc__list link;
  char *endpoint;
  struct svc__hub *hub;
};


static void ctx_idle_cb(uv_idle_t *handle);
static void ctx_async_cb(uv_async_t *handle);
static void ctx_handle_closed(uv_handle_t *handle);
static void ctx_finish(svc_ctx_t *ctx);

/* ---- Deferred tasks. */

void svc__task_init(struct svc__task *t, void (*fn)(struct svc__task *t)) {
  t->next = NULL;
  t->fn = fn;
  t->queued = 0;
}

void svc__defer(svc_ctx_t *ctx, struct svc__task *t) {
  if (t->queued)
    return;
  t->queued = 1;
  t->tick = ctx->tick;
  t->next = NULL;
  if (ctx->task_tail != NULL)
    ctx->task_tail->next = t;
  else
    ctx->task_head = t;
  ctx->task_tail = t;
  if (!uv_is_active((uv_handle_t *)&ctx->idle) &&
      !uv_is_closing((uv_handle_t *)&ctx->idle))
    uv_idle_start(&ctx->idle, ctx_idle_cb);
}

void svc__undefer(svc_ctx_t *ctx, struct svc__task *t) {
  struct svc__task **pp;
  struct svc__task *prev = NULL;

  if (!t->queued)
    return;
  for (pp = &ctx->task_head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
    if (*pp == t) {
      *pp = t->next;
      if (ctx->task_tail == t)
        ctx->task_tail = prev;
      break;
    }
  }
  t->queued = 0;
  t->next = NULL;
}

/* Runs the tasks queued before this call; tasks they queue carry this
 * run's tick and wait for the next run, so a producer that keeps
 * re-queueing cannot starve I/O. */
void svc__ctx_run_tasks(svc_ctx_t *ctx) {
  unsigned tick = ++ctx->tick;
  struct svc__task *t;

  while ((t = ctx->task_head) != NULL && t->tick != tick) {
    ctx->task_head = t->next;
    if (ctx->task_head == NULL)
      ctx->task_tail = NULL;
    t->next = NULL;
    t->queued = 0;
    t->fn(t);
  }
}

static void ctx_idle_cb(uv_idle_t *handle) {
  svc_ctx_t *ctx = handle->data;

  svc__ctx_run_tasks(ctx);
  if (ctx->task_head == NULL)
    uv_idle_stop(&ctx->idle);
  if (ctx->closing)
    svc__ctx_close_step(ctx);
}

/* ---- Random numbers for jitter: xorshift64*, seeded per context. */

uint64_t svc__rand(svc_ctx_t *ctx) {
  uint64_t x = ctx->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  ctx->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

double svc__rand_unit(svc_ctx_t *ctx) {
  return (double)(svc__rand(ctx) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t svc__now_us(void) {
  return uv_hrtime() / 1000;
}

/* ---- Lifecycle. */

/* libuv writes to sockets with write(2), which raises SIGPIPE when the
 * peer has gone; by default that kills the process instead of returning
 * EPIPE. Like Node.js and other libuv programs we ignore it, but only when
 * nobody chose a disposition: an application's own handler stays. */
static void ctx_ignore_sigpipe(void) {
  struct sigaction sa;

  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
      !(sa.sa_flags & SA_SIGINFO)) {
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

int svc_ctx_init(uv_loop_t *loop, const svc_ctx_opts_t *opts,
                 svc_ctx_t **out) {
  svc_ctx_t *ctx;
  int rc;

  if (out == NULL ||
      (opts != NULL && (opts->trace < SVC_TRACE_ALL || opts->trace > SVC_TRACE_OFF)))
    return SVC_EINVAL;
  ctx_ignore_sigpipe();
  *out = NULL;
  ctx = svc__calloc(1, sizeof(*ctx));
  if (ctx == NULL)
    return SVC_ENOMEM;
  if (opts != NULL)
    ctx->opts = *opts;
  if (ctx->opts.max_pending_requests == 0)
    ctx->opts.max_pending_requests = 1024;
  if (ctx->opts.max_pending_publishes == 0)
    ctx->opts.max_pending_publishes = 1024;
  if (ctx->opts.max_retained == 0)
    ctx->opts.max_retained = 10000;
  if (ctx->opts.max_posts == 0)
    ctx->opts.max_posts = 65536;
  ctx->rng = ctx->opts.seed != 0 ? ctx->opts.seed
                                 : (uv_hrtime() ^ (uint64_t)(uintptr_t)ctx);
  if (ctx->rng == 0)
    ctx->rng = 0x9E3779B97F4A7C15ULL;
  svc__trace_seed(ctx);

  if (loop == NULL) {
    ctx->owned_loop = svc__malloc(sizeof(*ctx->owned_loop));
    if (ctx->owned_loop == NULL) {
      svc__free(ctx);
      return SVC_ENOMEM;
    }
    rc = uv_loop_init(ctx->owned_loop);
    if (rc != 0) {
      svc__free(ctx->owned_loop);
      svc__free(ctx);
      return rc;
    }
    loop = ctx->owned_loop;
  }
  ctx->loop = loop;
  ctx->thread = uv_thread_self();
  svc__list_init(&ctx->conns);
  svc__list_init(&ctx->servers);
  svc__list_init(&ctx->calls);
  svc__list_init(&ctx->subs);
  svc__list_init(&ctx->streams);
  svc__list_init(&ctx->pubs);
  svc__list_init(&ctx->pubs_sent);
  svc__list_init(&ctx->metrics);
  svc__list_init(&ctx->hubs);
  svc__list_init(&ctx->policies);

  rc = uv_mutex_init(&ctx->post_mutex);
  if (rc != 0)
    goto fail_mutex;
  rc = uv_async_init(loop, &ctx->async, ctx_async_cb);
  if (rc != 0)
    goto fail_async;
  /* Handles of ours must not keep the user's loop alive on their own: the
   * async waits for posts, the idle and timer are active only with work. */
  uv_unref((uv_handle_t *)&ctx->async);
  ctx->async.data = ctx;
  uv_idle_init(loop, &ctx->idle);
  ctx->idle.data = ctx;
  rc = svc__timers_init(ctx);
  if (rc != 0)
    goto fail_timers;
  ctx->handles_open = 3;
  svc__msg_cache_hold();
  *out = ctx;
  return 0;

fail_timers:
  /* The two handles are closed synchronously enough for a failed init: run
   * the loop once, without blocking, to let their close callbacks finish. */
  uv_close((uv_handle_t *)&ctx->idle, NULL);
  uv_close((uv_handle_t *)&ctx->async, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
fail_async:
  uv_mutex_destroy(&ctx->post_mutex);
fail_mutex:
  if (ctx->owned_loop != NULL) {
    uv_loop_close(ctx->owned_loop);
    svc__free(ctx->owned_loop);
  }
  svc__free(ctx);
  return rc;
}

uv_loop_t *svc_ctx_loop(const svc_ctx_t *ctx) {
  return ctx->loop;
}

void svc_ctx_set_data(svc_ctx_t *ctx, void *data) {
  ctx->data = data;
}

void *svc_ctx_get_data(const svc_ctx_t *ctx) {
  return ctx->data;
}

/* Frees a closed context once no uv_run() of ours is on the stack: the
 * loop still touches its handles' memory until uv_run() returns, and an
 * owned loop cannot be closed from inside its own run. Returns 1 when the
 * context is gone. */
int svc__ctx_release_if_closed(svc_ctx_t *ctx) {
  uv_loop_t *owned = ctx->owned_loop;

  if (!ctx->closed || ctx->run_depth > 0)
    return 0;
  if (owned != NULL) {
    uv_run(owned, UV_RUN_DEFAULT);
    /* EBUSY means the application left a handle of its own on our loop;
     * leaking the loop is then the only safe choice. */
    if (uv_loop_close(owned) == 0)
      svc__free(owned);
  }
  svc__free(ctx);
  return 1;
}

int svc_ctx_run(svc_ctx_t *ctx, uv_run_mode mode) {
  int rc;

  ctx->run_depth++;
  rc = uv_run(ctx->loop, mode);
  ctx->run_depth--;
  if (svc__ctx_release_if_closed(ctx))
    return 0;
  return rc;
}

/* ---- Posts from other threads. */

int svc_ctx_post(svc_ctx_t *ctx, svc_post_cb fn, void *arg) {
  struct svc__post *p;
  int rc;

  if (ctx == NULL || fn == NULL)
    return SVC_EINVAL;
  p = svc__malloc(sizeof(*p));
  if (p == NULL)
    return SVC_ENOMEM;
  p->next = NULL;
  p->fn = fn;
  p->arg = arg;
  uv_mutex_lock(&ctx->post_mutex);
  if (ctx->post_closed || ctx->nposts >= ctx->opts.max_posts) {
    rc = ctx->post_closed ? SVC_ECLOSING : SVC_EAGAIN;
    uv_mutex_unlock(&ctx->post_mutex);
    svc__free(p);
    return rc;
  }
  ctx->nposts++;
  if (ctx->post_tail != NULL)
    ctx->post_tail->next = p;
  else
    ctx->post_head = p;
  ctx->post_tail = p;
  /* Sent under the lock: close sets post_closed under the same lock before
   * it closes the handle, so the handle is alive here. */
  uv_async_send(&ctx->async);
  uv_mutex_unlock(&ctx->post_mutex);
  return 0;
}

static void ctx_drain_posts(svc_ctx_t *ctx, int status) {
  struct svc__post *p;
  struct svc__post *next;

  /* uv_async_send() coalesces wake-ups, so take everything queued. */
  uv_mutex_lock(&ctx->post_mutex);
  p = ctx->post_head;
  ctx->post_head = NULL;
  ctx->post_tail = NULL;
  ctx->nposts = 0;
  uv_mutex_unlock(&ctx->post_mutex);
  for (; p != NULL; p = next) {
    next = p->next;
    SVC__USER_CB(ctx, p->fn(ctx, status, p->arg));
    svc__free(p);
  }
}

static void ctx_async_cb(uv_async_t *handle) {
  svc_ctx_t *ctx = handle->data;
  ctx_drain_posts(ctx, ctx->closing ? SVC_ECANCELED : 0);
}

/* ---- Named hubs: one per endpoint that has topics in this context. */

struct svc__hub *svc__ctx_hub(svc_ctx_t *ctx, const char *endpoint,
                              int create) {
  struct svc__list *pos;
  struct svc__named_hub *nh;

  svc__list_foreach(pos, &ctx->hubs) {
    nh = svc__container_of(pos, struct svc__named_hub, link);
    if (strcmp(nh->endpoint, endpoint) == 0)
      return nh->hub;
  }
  if (!create)
    return NULL;
  nh = svc__calloc(1, sizeof(*nh));
  if (nh == NULL)
    return NULL;
  nh->endpoint = svc__strdup(endpoint);
  nh->hub = svc__hub_new(ctx->opts.max_retained);
  if (nh->endpoint == NULL || nh->hub == NULL) {
    if (nh->hub != NULL)
      svc__hub_free(nh->hub);
    svc__free(nh->endpoint);
    svc__free(nh);
    return NULL;
  }
  svc__list_insert_tail(&ctx->hubs, &nh->link);
  return nh->hub;
}

int svc__ctx_hub_rename(svc_ctx_t *ctx, const char *from, const char *to) {
  struct svc__list *pos;
  struct svc__named_hub *nh;
  char *copy;

  svc__list_foreach(pos, &ctx->hubs) {
    nh = svc__container_of(pos, struct svc__named_hub, link);
    if (strcmp(nh->endpoint, from) != 0)
      continue;
    if ((copy = svc__strdup(to)) == NULL)
      return SVC_ENOMEM;
    svc__free(nh->endpoint);
    nh->endpoint = copy;
    return 0;
  }
  return 0;
}

static void ctx_free_hubs(svc_ctx_t *ctx) {
  struct svc__list *pos;
  struct svc__named_hub *nh;

  while ((pos = svc__list_head(&ctx->hubs)) != NULL) {
    nh = svc__container_of(pos, struct svc__named_hub, link);
    svc__list_remove(pos);
    svc__hub_free(nh->hub);
    svc__free(nh->endpoint);
    svc__free(nh);
  }
}

/* ---- Close.
 *
 * 1. svc_ctx_close() marks the context closing and aborts all work: every
 *    callback that is owed is queued as a deferred task.
 * 2. Servers close asynchronously; each end calls svc__ctx_close_step().
 * 3. Once those callbacks have run (they still point at their conns), the
 *    conns close, asynchronously too.
 * 4. When no conn or server is left and the task queue is empty, our own
 *    handles close; the last close callback runs the user's callback and
 *    frees the context (or, for an owned loop, leaves that to
 *    svc_ctx_run()). */

void svc_ctx_close(svc_ctx_t *ctx, svc_ctx_close_cb cb, void *arg) {
  if (ctx == NULL)
    return;
  assert(!ctx->closing && "svc_ctx_close() called twice");
  ctx->closing = 1;
  ctx->close_cb = cb;
  ctx->close_arg = arg;

  uv_mutex_lock(&ctx->post_mutex);
  ctx->post_closed = 1;
  uv_mutex_unlock(&ctx->post_mutex);
  /* Posts already queued still get their (cancelled) callback. */
  uv_async_send(&ctx->async);

  svc__calls_abort_all(ctx);
  svc__pubs_abort_all(ctx);
  svc__subs_abort_all(ctx);
  svc__streams_abort_all(ctx);
  svc__servers_close_all(ctx);
  /* Make sure the close sequence gets a turn even with nothing queued. */
  if (!uv_is_active((uv_handle_t *)&ctx->idle))
    uv_idle_start(&ctx->idle, ctx_idle_cb);
}

/* Closes every conn. Called once the callbacks owed for aborted work have
 * run, since those still point at their conn. */
static void ctx_close_conns(svc_ctx_t *ctx) {
  struct svc__list *pos;
  struct svc__conn *conn;

  /* A close may finish synchronously and unlink its conn, so restart the
   * walk after each one. The walk counts as a pending close itself: a conn
   * that closes synchronously re-enters svc__ctx_close_step(), which must
   * not see zero pending and close the context's handles while conns
   * later in the list (an mqtt:// client after an inproc:// one) have not
   * even begun closing. */
  ctx->close_pending++;
  for (;;) {
    conn = NULL;
    svc__list_foreach(pos, &ctx->conns) {
      conn = svc__container_of(pos, struct svc__conn, link);
      if (!conn->closing)
        break;
      conn = NULL;
    }
    if (conn == NULL)
      break;
    conn->closing = 1;
    ctx->close_pending++;
    conn->ops->close(conn);
  }
  ctx->close_pending--;
}

void svc__ctx_close_step(svc_ctx_t *ctx) {
  if (!ctx->closing || ctx->close_pending > 0 || ctx->task_head != NULL ||
      ctx->handles_closing)
    return;
  if (!ctx->conns_closed) {
    ctx->conns_closed = 1;
    ctx_close_conns(ctx);
    /* A conn that closed synchronously re-entered this function, which
     * may have finished the job already. */
    if (ctx->handles_closing || ctx->close_pending > 0 ||
        ctx->task_head != NULL)
      return;
  }
  ctx->handles_closing = 1;
  /* Work owed to the user is all delivered; close our handles. */
  ctx_drain_posts(ctx, SVC_ECANCELED);
  svc__timers_close(ctx);
  uv_close((uv_handle_t *)&ctx->idle, ctx_handle_closed);
  uv_close((uv_handle_t *)&ctx->async, ctx_handle_closed);
  uv_close((uv_handle_t *)&ctx->timer, ctx_handle_closed);
}

static void ctx_handle_closed(uv_handle_t *handle) {
  svc_ctx_t *ctx = handle->data;

  if (--ctx->handles_open == 0)
    ctx_finish(ctx);
}

static void ctx_finish(svc_ctx_t *ctx) {
  struct svc__list *pos;

  /* Posts that raced with the close (none can be added now). */
  ctx_drain_posts(ctx, SVC_ECANCELED);
  /* Requests that handlers never answered still count in the metrics. */
  svc__servers_free_all(ctx);
  while ((pos = svc__list_head(&ctx->metrics)) != NULL) {
    svc__list_remove(pos);
    svc__free(svc__container_of(pos, struct svc__metrics, link));
  }
  ctx_free_hubs(ctx);
  svc__policies_free(ctx);
  svc__url_cache_free(ctx);
  svc__conn_notes_free(ctx);
  svc__pubs_free_spares(ctx);
  svc__msg_cache_release();
  svc__free(ctx->heap);
  ctx->heap = NULL;
  uv_mutex_destroy(&ctx->post_mutex);
  ctx->closed = 1;
  if (ctx->close_cb != NULL)
    SVC__USER_CB(ctx, ctx->close_cb(ctx, ctx->close_arg));
  /* With our uv_run() on the stack (svc_ctx_run(), svc_call_sync()) the
   * context is freed when it returns; a loop the application drives itself
   * is done with our handles once their close callbacks ran. */
  if (ctx->owned_loop == NULL && ctx->run_depth == 0)
    svc__free(ctx);
}
