/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* The context: posts from other threads, owned loops, close from inside
 * callbacks, and handles that do not keep the loop alive. */
#include "harness.h"

TestSuite(ctx, .timeout = 20);

#define POSTERS 4
#define POSTS_EACH 250

struct post_state {
  uv_thread_t loop_thread;
  int ran;
  int on_wrong_thread;
  int cancelled;
  int last_seen[POSTERS];
  int out_of_order;
};

struct post_arg {
  struct post_state *st;
  int poster;
  int seq;
};

static void count_post(svc_ctx_t *ctx, int status, void *arg) {
  struct post_arg *pa = arg;
  struct post_state *st = pa->st;
  uv_thread_t self = uv_thread_self();

  (void)ctx;
  if (!uv_thread_equal(&self, &st->loop_thread))
    st->on_wrong_thread++;
  if (status == SVC_ECANCELED) {
    st->cancelled++;
  } else {
    st->ran++;
    if (pa->seq != st->last_seen[pa->poster] + 1)
      st->out_of_order++;
    st->last_seen[pa->poster] = pa->seq;
  }
  free(pa);
}

struct poster {
  svc_ctx_t *ctx;
  struct post_state *st;
  int id;
};

static void poster_main(void *arg) {
  struct poster *p = arg;
  int i;

  for (i = 1; i <= POSTS_EACH; i++) {
    struct post_arg *pa = malloc(sizeof(*pa));
    pa->st = p->st;
    pa->poster = p->id;
    pa->seq = i;
    cr_assert_eq(svc_ctx_post(p->ctx, count_post, pa), 0);
  }
}

static void stop_when_done(uv_timer_t *t) {
  struct post_state *st = t->data;
  if (st->ran == POSTERS * POSTS_EACH)
    uv_close((uv_handle_t *)t, NULL);
}

Test(ctx, posts_from_threads_run_on_the_loop_thread_in_order) {
  struct harness h;
  struct post_state st;
  struct poster posters[POSTERS];
  uv_thread_t threads[POSTERS];
  uv_timer_t poll;
  int i;

  harness_start(&h);
  memset(&st, 0, sizeof(st));
  st.loop_thread = uv_thread_self();
  for (i = 0; i < POSTERS; i++) {
    posters[i] = (struct poster){h.ctx, &st, i};
    cr_assert_eq(uv_thread_create(&threads[i], poster_main, &posters[i]), 0);
  }
  /* Keeps the loop alive until every post ran. */
  uv_timer_init(&h.loop, &poll);
  poll.data = &st;
  uv_timer_start(&poll, stop_when_done, 1, 1);
  harness_run(&h);
  for (i = 0; i < POSTERS; i++)
    uv_thread_join(&threads[i]);
  cr_assert_eq(st.ran, POSTERS * POSTS_EACH);
  cr_assert_eq(st.on_wrong_thread, 0);
  cr_assert_eq(st.out_of_order, 0);
  cr_assert_eq(st.cancelled, 0);
  harness_finish(&h);
}

Test(ctx, posts_pending_at_close_get_ecanceled_and_later_posts_are_refused) {
  struct harness h;
  struct post_state st;
  struct post_arg *pa;
  int i, refused;

  harness_start(&h);
  memset(&st, 0, sizeof(st));
  st.loop_thread = uv_thread_self();
  for (i = 0; i < 3; i++) {
    pa = calloc(1, sizeof(*pa));
    pa->st = &st;
    pa->seq = i + 1;
    cr_assert_eq(svc_ctx_post(h.ctx, count_post, pa), 0);
  }
  svc_ctx_close(h.ctx, harness_close_cb, &h);
  pa = calloc(1, sizeof(*pa));
  refused = svc_ctx_post(h.ctx, count_post, pa);
  cr_assert_eq(refused, SVC_ECLOSING);
  free(pa);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(h.close_cbs, 1);
  cr_assert_eq(st.cancelled, 3);
  cr_assert_eq(st.ran, 0);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0);
}

static void note_close(svc_ctx_t *ctx, void *arg) {
  (void)ctx;
  ++*(int *)arg;
}

Test(ctx, post_queue_is_bounded) {
  struct harness h;
  struct post_state st;
  svc_ctx_opts_t opts = {.max_posts = 2};
  struct post_arg *pa[3];
  int i;

  harness_start_opts(&h, &opts);
  memset(&st, 0, sizeof(st));
  st.loop_thread = uv_thread_self();
  /* A referenced handle, so that UV_RUN_ONCE polls for the posts. */
  uv_ref((uv_handle_t *)&h.watchdog);
  for (i = 0; i < 3; i++) {
    pa[i] = calloc(1, sizeof(*pa[i]));
    pa[i]->st = &st;
    pa[i]->seq = i + 1;
  }
  cr_assert_eq(svc_ctx_post(h.ctx, count_post, pa[0]), 0);
  cr_assert_eq(svc_ctx_post(h.ctx, count_post, pa[1]), 0);
  cr_assert_eq(svc_ctx_post(h.ctx, count_post, pa[2]), SVC_EAGAIN);
  /* Posts do not keep the loop alive (as with uv_async_t): turn it. */
  uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(st.ran, 2);
  /* Drained: there is room again. */
  cr_assert_eq(svc_ctx_post(h.ctx, count_post, pa[2]), 0);
  uv_run(&h.loop, UV_RUN_ONCE);
  cr_assert_eq(st.ran, 3);
  cr_assert_eq(st.out_of_order, 0);
  uv_unref((uv_handle_t *)&h.watchdog);
  harness_finish(&h);
}

Test(ctx, idle_context_does_not_keep_the_loop_alive) {
  uv_loop_t loop;
  svc_ctx_t *ctx;
  uint64_t start;
  int closed = 0;

  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(svc_ctx_init(&loop, NULL, &ctx), 0);
  cr_assert_eq(svc_ctx_loop(ctx), &loop);
  start = uv_hrtime();
  cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
  cr_assert(uv_hrtime() - start < 1000000000ULL);
  svc_ctx_close(ctx, note_close, &closed);
  cr_assert_eq(closed, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(closed, 1);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

Test(ctx, owned_loop_runs_and_is_released_by_run) {
  svc_ctx_t *ctx;
  svc_msg_t *reply = NULL;
  int closes = 0;
  int data = 7;

  cr_assert_eq(svc_ctx_init(NULL, NULL, &ctx), 0);
  cr_assert_not_null(svc_ctx_loop(ctx));
  svc_ctx_set_data(ctx, &data);
  cr_assert_eq(svc_ctx_get_data(ctx), &data);
  /* No server: the call fails, but the owned loop carried it. */
  cr_assert_eq(svc_call_sync(ctx, "inproc://none/x", NULL, NULL, &reply),
               SVC_STATUS_UNAVAILABLE);
  cr_assert_null(reply);
  svc_ctx_close(ctx, note_close, &closes);
  cr_assert_eq(closes, 0);
  cr_assert_eq(svc_ctx_run(ctx, UV_RUN_DEFAULT), 0);
  cr_assert_eq(closes, 1);
  /* ctx and its loop are gone now; valgrind and ASan runs check that
   * nothing leaked. */
}

struct closer {
  svc_ctx_t *ctx;
  struct harness *h;
  int replies;
};

static void close_from_reply(svc_call_t *call, svc_status_t status,
                             const svc_msg_t *reply, void *arg) {
  struct closer *c = arg;
  (void)call;
  (void)reply;
  c->replies++;
  cr_assert_eq(status, SVC_STATUS_UNAVAILABLE);
  svc_ctx_close(c->ctx, harness_close_cb, c->h);
}

Test(ctx, close_from_inside_a_callback) {
  struct harness h;
  struct closer c;

  harness_start(&h);
  c.ctx = h.ctx;
  c.h = &h;
  c.replies = 0;
  cr_assert_eq(svc_call(h.ctx, "inproc://none/x", NULL, NULL,
                        close_from_reply, &c, NULL), 0);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(c.replies, 1);
  cr_assert_eq(h.close_cbs, 1);
  uv_close((uv_handle_t *)&h.watchdog, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0);
}

Test(ctx, null_arguments_are_rejected_and_close_null_is_noop) {
  svc_ctx_t *ctx = NULL;

  cr_assert_eq(svc_ctx_init(NULL, NULL, NULL), SVC_EINVAL);
  svc_ctx_close(NULL, NULL, NULL);
  cr_assert_eq(svc_ctx_post(NULL, NULL, NULL), SVC_EINVAL);
  cr_assert_eq(svc_call(NULL, "inproc://a/b", NULL, NULL, NULL, NULL, NULL),
               SVC_EINVAL);
  cr_assert_null(ctx);
}
