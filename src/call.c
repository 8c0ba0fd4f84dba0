/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include "internal.h"

#include "fault.h"

/* Request/response: deadlines, retries with backoff, cancellation and the
 * blocking variant, the same for every backend. A transport only runs one
 * attempt at a time (tp->call) and reports it (svc__call_attempt_done());
 * everything that decides the call's fate is here. */

static void call_attempt(struct svc_call_s *call);

/* A method is an HTTP token: it may end up on the wire verbatim. */
static int method_valid(const char *m) {
  size_t n = 0;

  for (; *m != '\0'; m++, n++) {
    unsigned char c = (unsigned char)*m;
    if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c) != NULL)
      return 0;
  }
  return n > 0 && n <= 32;
}

static void call_free(struct svc_call_s *call) {
  svc_msg_free(call->reply);
  svc_msg_free(call->req);
  svc__url_free(call->url);
  if (call->method != call->method_buf)
    svc__free(call->method);
  svc__free(call);
}

static void call_log(struct svc_call_s *call) {
  int failed = call->status != SVC_STATUS_OK;

  svc__log(call->ctx, failed ? SVC_LOG_WARN : SVC_LOG_DEBUG, "call",
           call->conn->endpoint, call->url->path_raw, call->status, call->err,
           svc__now_us() - call->start_us, call->traced ? &call->trace : NULL,
           "%s /%s: %s%s%s", call->method, call->url->path_raw,
           svc_status_name(call->status), call->err < 0 ? ", " : "",
           call->err < 0 ? svc_strerror(call->err) : "");
}

static void call_done_task(struct svc__task *t) {
  struct svc_call_s *call = svc__container_of(t, struct svc_call_s, done_task);
  svc_ctx_t *ctx = call->ctx;
  svc_metrics_t *m = &call->conn->metrics->m;
  struct svc__trace_scope sc;

  m->in_flight--;
  m->calls_by_status[call->status]++;
  if (call->status != SVC_STATUS_OK)
    m->errors++;
  svc_hist_record(&m->latency_us, svc__now_us() - call->start_us);
  if (call->reply != NULL) {
    m->msgs_in++;
    m->bytes_in += svc_msg_len(call->reply);
  }
  svc__list_remove(&call->link);
  call->delivering = 1;
  if (svc__log_wants(ctx, call->status != SVC_STATUS_OK ? SVC_LOG_WARN
                                                        : SVC_LOG_DEBUG))
    call_log(call);
  /* A call made from the callback continues this call's trace. */
  svc__trace_enter(ctx, call->traced ? &call->trace : NULL, &sc);
  SVC__USER_CB(ctx, call->cb(call, call->status, call->reply, call->arg));
  svc__trace_leave(ctx, &sc);
  call_free(call);
}

/* Fixes the outcome and queues the callback; later reports are ignored. */
static void call_decide(struct svc_call_s *call, svc_status_t status, int err,
                        svc_msg_t *reply) {
  svc_ctx_t *ctx = call->ctx;

  assert(!call->decided);
  call->decided = 1;
  call->status = status;
  call->err = status == SVC_STATUS_OK ? 0 : err;
  call->reply = reply;
  svc__timer_stop(ctx, &call->deadline_timer);
  svc__timer_stop(ctx, &call->backoff_timer);
  if (call->queued)
    svc__policy_unqueue(call->policy, call);
  if (call->in_attempt) {
    call->in_attempt = 0;
    if (call->conn->fw != NULL)
      svc__fwrap_call_abort(call);
    else
      call->conn->ops->call_abort(call->conn, call);
  }
  /* An attempt cut short by the deadline counts against the endpoint; a
   * cancelled one says nothing about it. */
  if (call->admitted)
    svc__policy_release(call->policy, call, status,
                        status != SVC_STATUS_CANCELLED);
  svc__defer(ctx, &call->done_task);
}

void svc__call_fail_now(struct svc_call_s *call, svc_status_t status,
                        int err) {
  if (!call->decided)
    call_decide(call, status, err, NULL);
}

static void call_deadline_fired(struct svc__timer *t) {
  struct svc_call_s *call =
      svc__container_of(t, struct svc_call_s, deadline_timer);
  call_decide(call, SVC_STATUS_DEADLINE_EXCEEDED, SVC_ETIMEDOUT, NULL);
}

static void call_backoff_fired(struct svc__timer *t) {
  struct svc_call_s *call =
      svc__container_of(t, struct svc_call_s, backoff_timer);
  call_attempt(call);
}

/* The delay before the next attempt, or UINT64_MAX when there is none. */
static uint64_t call_next_delay(struct svc_call_s *call, svc_status_t status) {
  const svc_retry_t *r = &call->retry;
  double delay;
  unsigned i;
  uint64_t ms;

  if (!call->idempotent || call->attempts >= r->max_attempts ||
      (r->retry_on & SVC_RETRY_ON(status)) == 0 || call->ctx->closing)
    return UINT64_MAX;
  /* initial * multiplier^(attempts-1), capped; a loop keeps libm out. */
  delay = (double)r->initial_backoff_ms;
  for (i = 1; i < call->attempts && delay < (double)r->max_backoff_ms; i++)
    delay *= r->multiplier;
  if (delay > (double)r->max_backoff_ms)
    delay = (double)r->max_backoff_ms;
  delay *= 1.0 + r->jitter * (2.0 * svc__rand_unit(call->ctx) - 1.0);
  ms = delay < 0 ? 0 : (uint64_t)delay;
  /* No attempt may start at or past the deadline: the caller would get
   * DEADLINE_EXCEEDED for a status we already know. */
  if (call->deadline != 0 && svc__now_ms(call->ctx) + ms >= call->deadline)
    return UINT64_MAX;
  return ms;
}

void svc__call_attempt_done(struct svc_call_s *call, svc_status_t status,
                            int err, svc_msg_t *reply) {
  uint64_t delay;

  /* A duplicate the fault wrapper sent, or an attempt whose reply a fault
   * throws away. */
  if (call->fw_state != 0 && svc__fwrap_call_done(call, &status, &err, &reply))
    return;
  call->in_attempt = 0;
  if (call->admitted)
    svc__policy_release(call->policy, call, status, 1);
  if (call->decided) {
    svc_msg_free(reply);
    return;
  }
  if (status != SVC_STATUS_OK) {
    delay = call_next_delay(call, status);
    if (delay != UINT64_MAX &&
        svc__timer_start(call->ctx, &call->backoff_timer, delay) == 0) {
      call->conn->metrics->m.retries++;
      svc_msg_free(reply);
      return;
    }
  }
  call_decide(call, status, err, reply);
}

static void call_attempt(struct svc_call_s *call) {
  int rc;

  call->attempts++;
  if (call->conn->ops->call == NULL) {
    call_decide(call, SVC_STATUS_UNIMPLEMENTED, SVC_ENOTSUP, NULL);
    return;
  }
  if (call->policy != NULL) {
    /* The breaker and the concurrency limit decide first; a call they
     * refuse is not retried (the breaker is open, or the endpoint has no
     * room: another attempt now would only add to that). */
    rc = svc__policy_admit(call->policy, call);
    if (rc == 1)
      return; /* Waits for a slot. */
    if (rc == SVC_EBREAKER) {
      call_decide(call, SVC_STATUS_UNAVAILABLE, rc, NULL);
      return;
    }
    if (rc != 0) {
      call_decide(call, SVC_STATUS_RESOURCE_EXHAUSTED, rc, NULL);
      return;
    }
  }
  svc__call_attempt_go(call);
}

void svc__call_attempt_go(struct svc_call_s *call) {
  const struct svc__transport *ops = call->conn->ops;
  int rc;

  /* Set before: the transport may report the outcome from inside. */
  call->in_attempt = 1;
  rc = call->conn->fw != NULL ? svc__fwrap_call(call)
                              : ops->call(call->conn, call);
  if (rc != 0) {
    call->in_attempt = 0;
    svc__call_attempt_done(call, svc_status_from_err(rc), rc, NULL);
  }
}

uint64_t svc__call_remaining_ms(const struct svc_call_s *call) {
  uint64_t now;

  if (call->deadline == 0)
    return UINT64_MAX;
  now = svc__now_ms(call->ctx);
  return call->deadline > now ? call->deadline - now : 0;
}

static int call_opts_valid(const svc_call_opts_t *o) {
  if (o == NULL)
    return 1;
  if (o->nheaders > 0 && o->headers == NULL)
    return 0;
  if (o->method != NULL && !method_valid(o->method))
    return 0;
  /* Written so that NaN fails too. */
  if (!(o->retry.multiplier >= 0) || !(o->retry.jitter <= 1.0))
    return 0;
  return 1;
}

static void call_set_retry(struct svc_call_s *call, const svc_retry_t *r) {
  call->retry = *r;
  if (call->retry.max_attempts == 0)
    call->retry.max_attempts = 1;
  if (call->retry.initial_backoff_ms == 0)
    call->retry.initial_backoff_ms = 50;
  if (call->retry.max_backoff_ms == 0)
    call->retry.max_backoff_ms = 2000;
  if (call->retry.multiplier == 0)
    call->retry.multiplier = 2.0;
  if (call->retry.jitter == 0)
    call->retry.jitter = 0.2;
  else if (call->retry.jitter < 0)
    call->retry.jitter = 0;
  if (call->retry.retry_on == 0)
    call->retry.retry_on = SVC_RETRY_DEFAULT;
}

int svc_call(svc_ctx_t *ctx, const char *uri, svc_msg_t *req,
             const svc_call_opts_t *opts, svc_call_cb cb, void *arg,
             svc_call_t **handle) {
  static const svc_call_opts_t no_opts;
  struct svc_call_s *call;
  struct svc__url *url;
  struct svc__conn *conn;
  const char *method;
  size_t nheaders = 0;
  uint64_t timeout;
  int rc;

  if (ctx == NULL || uri == NULL || cb == NULL || !call_opts_valid(opts))
    return SVC_EINVAL;
  SVC__ASSERT_LOOP_THREAD(ctx);
  if (opts == NULL)
    opts = &no_opts;
  rc = svc__verb_target(ctx, uri, &url, &conn);
  if (rc != 0)
    return rc;
  call = svc__calloc(1, sizeof(*call));
  if (call == NULL) {
    svc__url_free(url);
    return SVC_ENOMEM;
  }
  call->ctx = ctx;
  call->conn = conn;
  call->url = url;
  svc__timer_init(&call->deadline_timer, call_deadline_fired);
  svc__timer_init(&call->backoff_timer, call_backoff_fired);
  svc__task_init(&call->done_task, call_done_task);
  call->req = req != NULL ? req : svc_msg_new(NULL, 0);
  method = opts->method != NULL ? opts->method : conn->ops->default_method;
  if (method == NULL)
    method = svc_msg_len(call->req) > 0 ? "POST" : "GET";
  if (strlen(method) < sizeof(call->method_buf))
    call->method = strcpy(call->method_buf, method);
  else
    call->method = svc__strdup(method);
  call->method_given = opts->method != NULL;
  if (call->req == NULL || call->method == NULL) {
    rc = SVC_ENOMEM;
    goto fail;
  }
  if (opts->nheaders > 0) {
    nheaders = svc_msg_header_count(call->req);
    rc = svc__msg_add_pairs(call->req, opts->headers, opts->nheaders);
    if (rc != 0) {
      svc__msg_headers_truncate(call->req, nheaders);
      goto fail;
    }
  }
  rc = svc__trace_stamp(ctx, call->req, ctx->opts.trace == SVC_TRACE_CALLS ||
                                            ctx->opts.trace == SVC_TRACE_ALL,
                        &call->trace);
  if (rc < 0)
    goto fail;
  call->traced = rc;
  call->idempotent = opts->idempotent;
  call_set_retry(call, &opts->retry);
  call->cb = cb;
  call->arg = arg;
  call->start_us = svc__now_us();
  call->policy = svc__list_empty(&ctx->policies)
                     ? NULL
                     : svc__policy_find(ctx, conn->endpoint, url->path);
  svc__list_init(&call->plink);
  timeout = opts->timeout_ms                     ? opts->timeout_ms
            : svc__policy_timeout(call->policy) ? svc__policy_timeout(call->policy)
                                                 : ctx->opts.default_timeout_ms;
  if (timeout > 0) {
    rc = svc__timer_start(ctx, &call->deadline_timer, timeout);
    if (rc != 0)
      goto fail;
    call->deadline = call->deadline_timer.due;
  }

  conn->metrics->m.calls++;
  conn->metrics->m.in_flight++;
  conn->metrics->m.msgs_out++;
  conn->metrics->m.bytes_out += svc_msg_len(call->req);
  svc__list_insert_tail(&ctx->calls, &call->link);
  if (handle != NULL)
    *handle = call;
  call_attempt(call);
  return 0;

fail:
  svc__timer_stop(ctx, &call->deadline_timer);
  if (call->req == req)
    call->req = NULL; /* The caller keeps it. */
  call_free(call);
  return rc;
}

void svc_call_cancel(svc_call_t *call) {
  if (call == NULL || call->decided)
    return;
  call_decide(call, SVC_STATUS_CANCELLED, SVC_ECANCELED, NULL);
}

int svc_call_errno(const svc_call_t *call) {
  return call->err;
}

unsigned svc_call_attempts(const svc_call_t *call) {
  return call->attempts;
}

void svc__calls_abort_all(svc_ctx_t *ctx) {
  struct svc__list *pos;

  svc__list_foreach(pos, &ctx->calls) {
    struct svc_call_s *call = svc__container_of(pos, struct svc_call_s, link);
    if (!call->decided)
      call_decide(call, SVC_STATUS_CANCELLED, SVC_ECANCELED, NULL);
  }
  svc__fwrap_abort_copies(ctx);
}

/* ---- The blocking variant. */

struct sync_wait {
  int done;
  svc_status_t status;
  svc_msg_t *reply;
};

static void sync_cb(svc_call_t *call, svc_status_t status,
                    const svc_msg_t *reply, void *arg) {
  struct sync_wait *w = arg;

  w->done = 1;
  w->status = status;
  /* The reply is ours for the taking: nobody else holds it. */
  w->reply = reply != NULL ? svc__msg_ref((svc_msg_t *)reply) : NULL;
}

int svc_call_sync(svc_ctx_t *ctx, const char *uri, svc_msg_t *req,
                  const svc_call_opts_t *opts, svc_msg_t **reply) {
  struct sync_wait w = {0, SVC_STATUS_OK, NULL};
  svc_call_t *call;
  int rc;

  if (reply != NULL)
    *reply = NULL;
  if (ctx == NULL)
    return SVC_EINVAL;
  /* Waiting from inside the loop would need the loop to run under itself:
   * libuv forbids re-entering uv_run(), and the reply may need the very
   * callback we are in to return first. */
  if (ctx->cb_depth > 0 || ctx->run_depth > 0)
    return SVC_EINLOOP;
  rc = svc_call(ctx, uri, req, opts, sync_cb, &w, &call);
  if (rc != 0)
    return rc;
  ctx->run_depth++;
  while (!w.done) {
    /* A loop with nothing left to wait for would never bring the reply
     * (a handler that stored the request and forgot it): cancel rather
     * than spin. */
    if (uv_run(ctx->loop, UV_RUN_ONCE) == 0 && !w.done && !call->decided)
      svc_call_cancel(call);
  }
  ctx->run_depth--;
  svc__ctx_release_if_closed(ctx);
  if (reply != NULL)
    *reply = w.reply;
  else
    svc_msg_free(w.reply);
  return (int)w.status;
}
