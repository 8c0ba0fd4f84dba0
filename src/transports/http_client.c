/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "transports/http_client.h"

/* libcurl's multi interface on the context's loop (shared/notes/
 * integration.md, part A): one CURLM per endpoint, one uv_poll_t per socket
 * curl asks us to watch, one uv_timer_t for curl's timeout, no threads of
 * our own. libcurl is never re-entered from its own callbacks: work that
 * arises there (adding, removing or unpausing a transfer) is marked on the
 * transfer and done by hc_flush() once the outer libcurl call returned, or
 * by the kick task on the next loop turn. */

static uv_once_t curl_once = UV_ONCE_INIT;
static int curl_init_rc;

static void curl_init_once(void) {
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

struct svc__httpc *svc__httpc_of(struct svc__conn *conn) {
  return *(struct svc__httpc **)conn->tp;
}

/* ---- Sockets.
 *
 * curl says REMOVE whenever a connection goes back to its pool, and asks
 * for the same fd again when the next transfer reuses it: with loopback
 * keep-alive calls that is every call. Closing the poll handle on REMOVE
 * and making a new one on reuse would cost two epoll_ctl() calls per call.
 * So a poll handle lives as long as its socket: curl's close-socket
 * callback closes it (before the fd is closed, so that libuv unregisters
 * the fd first), REMOVE only marks it idle, and events are changed only
 * when they differ. An idle socket stays watched for input; if something
 * arrives (the server closing a pooled connection), watching stops until
 * curl wants it again or closes it. */

struct hsock {
  uv_poll_t poll;
  struct svc__list link; /* hc->socks */
  struct svc__httpc *hc;
  curl_socket_t fd;
  int events; /* UV_READABLE | UV_WRITABLE being watched, 0 when stopped. */
  int idle;   /* curl said REMOVE. */
};

static void hc_flush(struct svc__httpc *hc);

/* What a finished transfer says about the connection: libcurl keeps a
 * pool and retries nothing, so there is no backing off to report. */
static void hc_note_state(struct svc__httpc *hc, CURLcode rc) {
  if (rc == CURLE_OK)
    svc__conn_state(hc->conn, SVC_CONN_CONNECTED, 0);
  else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
    svc__conn_state(hc->conn, SVC_CONN_CLOSED, SVC_ECONNREFUSED);
  else if (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION)
    svc__conn_state(hc->conn, SVC_CONN_CLOSED, SVC_EPROTO);
}

/* A transfer is about to go out: connecting, unless a connection is up. */
static void hc_note_start(struct svc__httpc *hc) {
  if (hc->conn->state != SVC_CONN_CONNECTED)
    svc__conn_state(hc->conn, SVC_CONN_CONNECTING, 0);
}

static void hc_check_done(struct svc__httpc *hc) {
  CURLMsg *m;
  int left;

  while ((m = curl_multi_info_read(hc->multi, &left)) != NULL) {
    struct svc__hx *x = NULL;
    CURLcode rc;

    if (m->msg != CURLMSG_DONE)
      continue;
    /* The message dies with remove_handle: copy what we need first. */
    rc = m->data.result;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(hc->multi, m->easy_handle);
    x->in_multi = 0;
    hc_note_state(hc, rc);
    if (x->want_remove || x->owner == NULL)
      svc__hx_free(x);
    else
      x->done(x, rc);
  }
}

/* Runs one socket_action and everything it made due. */
static void hc_action(struct svc__httpc *hc, curl_socket_t fd, int flags) {
  int running;

  hc->in_curl = 1;
  curl_multi_socket_action(hc->multi, fd, flags, &running);
  hc->in_curl = 0;
  hc_check_done(hc);
  hc_flush(hc);
}

static struct hsock *sock_find(struct svc__httpc *hc, curl_socket_t fd);
static int sock_watch(struct hsock *s, int events);

static void on_poll(uv_poll_t *h, int status, int events) {
  struct hsock *s = (struct hsock *)h->data;
  int flags = 0;

  if (s->idle) {
    uv_poll_stop(&s->poll);
    s->events = 0;
    return;
  }
  if (status < 0) {
    struct svc__httpc *hc = s->hc;
    curl_socket_t fd = s->fd;
    int wanted = s->events;

    /* POLLERR (a reset, usually): libuv has stopped the handle. A socket
     * curl reads from is handed over as readable, as curl's own poll does,
     * so that curl reads the error itself and can tell a kept-alive
     * connection the server dropped under a new request (it then retries
     * on a fresh one) from a real failure. CURL_CSELECT_ERR alone fails
     * the transfer with "select/poll returned error" and no retry. */
    s->events = 0;
    if (wanted & UV_READABLE)
      flags |= CURL_CSELECT_IN;
    if (wanted & UV_WRITABLE)
      flags |= CURL_CSELECT_ERR;
    hc_action(hc, fd, flags);
    /* Still curl's and still wanted: watch it again. */
    if (sock_find(hc, fd) == s && s->events == 0 && !s->idle)
      (void)sock_watch(s, wanted);
    return;
  }
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  hc_action(s->hc, s->fd, flags);
}

static void on_sock_closed(uv_handle_t *h) { svc__free(h->data); }

static struct hsock *sock_find(struct svc__httpc *hc, curl_socket_t fd) {
  struct svc__list *pos;

  svc__list_foreach(pos, &hc->socks) {
    struct hsock *s = svc__container_of(pos, struct hsock, link);

    if (s->fd == fd)
      return s;
  }
  return NULL;
}

static int sock_watch(struct hsock *s, int events) {
  if (events == s->events)
    return 0;
  if (uv_poll_start(&s->poll, events, on_poll) != 0)
    return -1;
  s->events = events;
  return 0;
}

static void sock_close(struct hsock *s) {
  svc__list_remove(&s->link);
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* curl closes a socket: our handle goes first. */
static int on_close_socket(void *clientp, curl_socket_t fd) {
  struct hsock *s = sock_find(clientp, fd);

  if (s != NULL)
    sock_close(s);
  return close(fd);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                     void *socketp) {
  struct svc__httpc *hc = userp;
  struct hsock *s = socketp != NULL ? socketp : sock_find(hc, fd);
  int events = 0;

  if (what == CURL_POLL_REMOVE) {
    struct svc__hx *x = NULL;

    if (s != NULL) {
      s->idle = 1;
      /* Writable would fire at once, over and over. */
      if ((s->events & UV_WRITABLE) && sock_watch(s, UV_READABLE) != 0) {
        uv_poll_stop(&s->poll);
        s->events = 0;
      }
      curl_multi_assign(hc->multi, fd, NULL);
    }
    /* A transfer still running that libcurl stopped watching waits for
     * us (a paused direction): tell its owner. Internal handles (pool
     * cleanup) have no private pointer. */
    if (easy != NULL &&
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x) == CURLE_OK &&
        x != NULL && x->in_multi && x->owner != NULL && x->unwatched != NULL)
      x->unwatched(x);
    return 0;
  }
  if (s == NULL) {
    s = svc__calloc(1, sizeof(*s));
    if (s == NULL)
      return -1;
    if (uv_poll_init_socket(svc_ctx_loop(hc->conn->ctx), &s->poll, fd) != 0) {
      svc__free(s);
      return -1;
    }
    s->poll.data = s;
    s->hc = hc;
    s->fd = fd;
    svc__list_insert_tail(&hc->socks, &s->link);
  }
  s->idle = 0;
  curl_multi_assign(hc->multi, fd, s);
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  return sock_watch(s, events);
}

/* ---- curl's timeout. */

static void on_timer(uv_timer_t *t) {
  hc_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *multi, long ms, void *userp) {
  struct svc__httpc *hc = userp;

  (void)multi;
  if (ms < 0) {
    uv_timer_stop(hc->timer);
    hc->timeout_now = 0;
  } else if (ms == 0) {
    /* Not a 0 ms uv timer: armed from a timer callback it would run again
     * in the same pass (libuv < 1.48). The kick runs on the next turn, or
     * right after the libcurl call that asked for it. */
    uv_timer_stop(hc->timer);
    hc->timeout_now = 1;
    svc__defer(hc->conn->ctx, &hc->kick);
  } else {
    uv_timer_start(hc->timer, on_timer, (uint64_t)ms, 0);
  }
  return 0;
}

/* ---- Deferred work. */

/* Does one marked step (add, remove or unpause a transfer) and returns 1,
 * or returns 0 when no transfer is marked. */
static int hc_flush_one(struct svc__httpc *hc) {
  struct svc__list *pos;

  svc__list_foreach(pos, &hc->xfers) {
    struct svc__hx *x = svc__container_of(pos, struct svc__hx, link);

    if (x->want_remove) {
      svc__hx_free(x);
      return 1;
    }
    if (x->want_add) {
      x->want_add = 0;
      hc_note_start(hc);
      if (curl_multi_add_handle(hc->multi, x->easy) == CURLM_OK)
        x->in_multi = 1;
      else
        x->done(x, CURLE_OUT_OF_MEMORY);
      return 1;
    }
    if (x->want_cont) {
      x->want_cont = 0;
      x->paused_recv = 0;
      x->paused_send = 0;
      /* May deliver cached data through the write callback at once. */
      hc->in_curl = 1;
      curl_easy_pause(x->easy, CURLPAUSE_CONT);
      hc->in_curl = 0;
      return 1;
    }
  }
  return 0;
}

/* Any step may end transfers (done callbacks free them) or mark others, so
 * after each one the walk starts over; it is skipped when nothing was
 * marked. */
static void hc_flush(struct svc__httpc *hc) {
  int again = 1;

  while (again && !hc->in_curl) {
    again = 0;
    if (hc->marked) {
      hc->marked = 0;
      if (hc_flush_one(hc)) {
        hc->marked = 1; /* Others may still be marked. */
        again = 1;
      }
    }
    if (hc->timeout_now) {
      int running;

      hc->timeout_now = 0;
      hc->in_curl = 1;
      curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
      hc->in_curl = 0;
      again = 1;
    }
    hc_check_done(hc);
  }
}

static void on_kick(struct svc__task *t) {
  struct svc__httpc *hc = svc__container_of(t, struct svc__httpc, kick);

  hc_flush(hc);
}

/* ---- Transfers. */

/* Options every transfer of hc has, set once per easy handle. */
static void hx_configure(struct svc__httpc *hc, CURL *e) {
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* Below the server's default idle timeout (60 s), so that we never reuse
   * a connection the server is about to close. */
  curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 50L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, hc->opts.connect_timeout_ms);
  /* The poll handle of a socket lives as long as the socket. */
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, hc);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR,
                   strcmp(hc->conn->ops->scheme, "https") == 0 ? "https"
                                                                : "http");
  if (hc->opts.http_version != 0)
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, hc->opts.http_version);
  if (hc->opts.cainfo != NULL)
    curl_easy_setopt(e, CURLOPT_CAINFO, hc->opts.cainfo);
  if (hc->opts.capath != NULL)
    curl_easy_setopt(e, CURLOPT_CAPATH, hc->opts.capath);
  if (hc->opts.insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  /* Set, even to "" (none), libcurl reads no environment per transfer. */
  curl_easy_setopt(e, CURLOPT_PROXY,
                   hc->opts.env_proxy != NULL ? hc->opts.env_proxy : "");
  curl_easy_setopt(e, CURLOPT_NOPROXY,
                   hc->opts.env_noproxy != NULL ? hc->opts.env_noproxy : "");
}

static size_t on_body(char *data, size_t size, size_t n, void *arg);

/* A kept transfer is a call's or publish's: they have the same options. */
static int hx_keepable(enum svc__hx_kind kind) {
  return kind == SVC__HX_CALL || kind == SVC__HX_PUB;
}

struct svc__hx *svc__hx_new(struct svc__httpc *hc, enum svc__hx_kind kind,
                            void *owner, char *url) {
  struct svc__hx *x;
  int kept = hx_keepable(kind) && hc->nspare > 0;

  if (url == NULL)
    return NULL;
  if (kept) {
    x = hc->spare[--hc->nspare];
  } else if ((x = svc__calloc(1, sizeof(*x))) == NULL ||
             (x->easy = curl_easy_init()) == NULL) {
    svc__free(x);
    svc__free(url);
    return NULL;
  }
  x->hc = hc;
  x->kind = kind;
  x->owner = owner;
  x->svc_status = -1;
  svc__list_insert_tail(&hc->xfers, &x->link);
  /* Each option a kept handle still has is one libcurl call saved: a call
   * to the same URL as the last one sets only its headers. */
  if (kept && strcmp(x->url, url) == 0) {
    svc__free(url);
    return x;
  }
  svc__free(x->url);
  x->url = url;
  curl_easy_setopt(x->easy, CURLOPT_URL, url);
  if (kept)
    return x;
  hx_configure(hc, x->easy);
  curl_easy_setopt(x->easy, CURLOPT_PRIVATE, (char *)x);
  curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
  /* Over TLS, where HTTP/2 may be negotiated, calls wait to learn whether
   * the first connection multiplexes rather than open one connection
   * each. Nowhere else: on HTTP/1.1 libcurl would queue them behind one
   * busy connection instead of opening more, and subscriptions and streams
   * hold their connection for their whole life. */
  curl_easy_setopt(x->easy, CURLOPT_PIPEWAIT,
                   hx_keepable(kind) &&
                           strcmp(hc->conn->ops->scheme, "https") == 0 &&
                           hc->opts.http_version != CURL_HTTP_VERSION_1_1
                       ? 1L
                       : 0L);
  curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, svc__httpc_on_header);
  curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
  if (hx_keepable(kind)) {
    /* Replies are kept whole. */
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
  }
  return x;
}

int svc__hx_start(struct svc__hx *x) {
  struct svc__httpc *hc = x->hc;
  struct curl_slist *list = x->hdrs != NULL ? x->hdrs : hc->bare_hdrs;

  if (x->has_trace) {
    memcpy(x->trace_line, "traceparent: ", 13);
    svc_trace_format(&x->trace, x->trace_line + 13);
    if (x->hdrs == NULL) {
      /* curl only reads the list: a node of ours may lead to the shared
       * one. */
      x->trace_node.data = x->trace_line;
      x->trace_node.next = hc->bare_hdrs;
      list = &x->trace_node;
    } else if (svc__httpc_add_header(&x->hdrs, "traceparent",
                                     x->trace_line + 13) != 0) {
      return SVC_ENOMEM;
    }
  }
  /* A request with no header of its own still says "no Accept". */
  curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, list);
  if (hc->in_curl) {
    x->want_add = 1;
    hc->marked = 1;
    svc__defer(hc->conn->ctx, &hc->kick);
    return 0;
  }
  hc_note_start(hc);
  if (curl_multi_add_handle(hc->multi, x->easy) != CURLM_OK)
    return SVC_ENOMEM;
  x->in_multi = 1;
  /* add_handle asked for a 0 ms timeout, which the kick task serves on
   * this loop turn's deferred work: transfers started together (the
   * callbacks of one batch of replies starting the next calls) then go out
   * in one pass of libcurl instead of one pass each. */
  return 0;
}

/* Frees what x's last transfer held and keeps x, easy handle included,
 * as a fresh call's transfer to the same URL: in curl's GET state, its
 * other options as svc__hx_new() set them. The request's header list is
 * set again by each start; curl does not read it in between. */
static void hx_keep(struct svc__hx *x) {
  struct svc__httpc *hc = x->hc;

  if (x->has_method) {
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L); /* Clears NOBODY too. */
    x->has_method = 0;
  }
  x->owner = NULL;
  x->hdrs = NULL;
  x->has_trace = 0;
  x->body = NULL;
  x->in_multi = x->want_add = x->want_remove = x->want_cont = 0;
  x->paused_recv = x->paused_send = 0;
  x->code = 0;
  x->in_headers = 0;
  x->fail_err = 0;
  x->resp = NULL;
  x->buf = NULL;
  x->len = x->cap = 0;
  x->errbuf[0] = '\0';
  x->done = NULL;
  x->unwatched = NULL;
  hc->spare[hc->nspare++] = x;
}

static void hx_destroy(struct svc__hx *x) {
  curl_easy_cleanup(x->easy);
  svc__free(x->url);
  svc__free(x);
}

void svc__hx_free(struct svc__hx *x) {
  struct svc__httpc *hc = x->hc;

  if (x->in_multi)
    curl_multi_remove_handle(hc->multi, x->easy);
  svc__list_remove(&x->link);
  curl_slist_free_all(x->hdrs);
  if (x->body != NULL)
    svc_msg_free(x->body);
  if (x->resp != NULL)
    svc_msg_free(x->resp);
  if (x->buf != x->small_body)
    svc__free(x->buf);
  /* Others set options of their own and are rare. */
  if (!hc->closing && hc->nspare < SVC__HTTPC_SPARES && hx_keepable(x->kind))
    hx_keep(x);
  else
    hx_destroy(x);
}

void svc__hx_cancel(struct svc__hx *x) {
  struct svc__httpc *hc = x->hc;

  x->owner = NULL;
  if (hc->in_curl) {
    x->want_remove = 1;
    hc->marked = 1;
    svc__defer(hc->conn->ctx, &hc->kick);
    return;
  }
  svc__hx_free(x);
}

void svc__hx_resume(struct svc__hx *x) {
  struct svc__httpc *hc = x->hc;

  if (!x->in_multi || (!x->paused_recv && !x->paused_send))
    return;
  x->want_cont = 1;
  hc->marked = 1;
  if (hc->in_curl)
    svc__defer(hc->conn->ctx, &hc->kick);
  else
    hc_flush(hc);
}

/* ---- The conn. */

int svc__httpc_init(struct svc__conn *conn) {
  struct svc__httpc *hc;
  int rc;

  uv_once(&curl_once, curl_init_once);
  if (curl_init_rc != 0)
    return SVC_ENOMEM;
  hc = svc__calloc(1, sizeof(*hc));
  if (hc == NULL)
    return SVC_ENOMEM;
  *(struct svc__httpc **)conn->tp = hc;
  hc->conn = conn;
  svc__list_init(&hc->xfers);
  svc__list_init(&hc->socks);
  svc__task_init(&hc->kick, on_kick);
  rc = svc__httpc_opts_parse(&hc->opts, conn->url->query);
  if (rc == 0)
    rc = svc__httpc_proxy_env(&hc->opts, conn->ops->scheme);
  if (rc != 0)
    return rc;
  rc = svc__httpc_add_header(&hc->bare_hdrs, "Accept", NULL);
  if (rc != 0)
    return rc;
  hc->timer = svc__calloc(1, sizeof(*hc->timer));
  hc->multi = curl_multi_init();
  if (hc->timer == NULL || hc->multi == NULL)
    return SVC_ENOMEM;
  uv_timer_init(svc_ctx_loop(conn->ctx), hc->timer);
  hc->timer->data = hc;
  curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
  curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
  /* Every call is an easy handle of its own, removed when it ends. The
   * default cache size, four times the handles added at the moment,
   * shrinks whenever a batch of calls completes and closes idle
   * connections that the next batch has to open again. */
  curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, 256L);
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  struct svc__conn *conn = h->data;

  svc__free(h);
  svc__conn_closed(conn);
}

void svc__httpc_close(struct svc__conn *conn) {
  struct svc__httpc *hc = svc__httpc_of(conn);
  struct svc__list *pos;
  struct svc__list *tmp;

  if (hc == NULL) {
    svc__conn_closed(conn);
    return;
  }
  hc->closing = 1;
  svc__undefer(conn->ctx, &hc->kick);
  /* The core aborted every operation first; what is left are transfers
   * already cancelled but not yet freed, and streams released while
   * their last bytes were still going out, which end here. */
  svc__list_foreach_safe(pos, tmp, &hc->xfers) {
    struct svc__hx *x = svc__container_of(pos, struct svc__hx, link);

    if (x->owner != NULL && x->done != NULL)
      x->done(x, CURLE_ABORTED_BY_CALLBACK);
    else
      svc__hx_free(x);
  }
  while (hc->nspare > 0)
    hx_destroy(hc->spare[--hc->nspare]);
  /* Cleanup closes the pooled connections through on_close_socket, which
   * closes their poll handles; any left belong to sockets curl no longer
   * has. */
  if (hc->multi != NULL)
    curl_multi_cleanup(hc->multi);
  while (!svc__list_empty(&hc->socks))
    sock_close(svc__container_of(svc__list_head(&hc->socks), struct hsock,
                                 link));
  svc__httpc_opts_free(&hc->opts);
  curl_slist_free_all(hc->bare_hdrs);
  *(struct svc__httpc **)conn->tp = NULL;
  if (hc->timer != NULL) {
    uv_timer_stop(hc->timer);
    hc->timer->data = conn;
    uv_close((uv_handle_t *)hc->timer, on_timer_closed);
    svc__free(hc);
    return;
  }
  svc__free(hc);
  svc__conn_closed(conn);
}

/* ---- Responses kept whole: calls and publishes. */

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  struct svc__hx *x = arg;
  size_t len = size * n;

  if (len > x->hc->opts.max_body - x->len) {
    x->fail_err = SVC_EMSGSIZE;
    return 0; /* CURLE_WRITE_ERROR */
  }
  if (x->buf == NULL) {
    x->buf = x->small_body;
    x->cap = sizeof(x->small_body);
  }
  if (x->len + len > x->cap) {
    size_t cap = x->cap < 1024 ? 1024 : x->cap;
    char *buf;

    while (cap < x->len + len)
      cap *= 2;
    if (x->buf == x->small_body) {
      buf = svc__malloc(cap);
      if (buf != NULL)
        memcpy(buf, x->small_body, x->len);
    } else {
      buf = svc__realloc(x->buf, cap);
    }
    if (buf == NULL) {
      x->fail_err = SVC_ENOMEM;
      return 0;
    }
    x->buf = buf;
    x->cap = cap;
  }
  memcpy(x->buf + x->len, data, len);
  x->len += len;
  return len;
}

/* The response as a message, or NULL when out of memory. */
static svc_msg_t *take_reply(struct svc__hx *x) {
  svc_msg_t *m = x->resp != NULL ? x->resp : svc_msg_new(NULL, 0);

  x->resp = NULL;
  if (m != NULL && x->len > 0 && svc_msg_set_body(m, x->buf, x->len) != 0) {
    svc_msg_free(m);
    return NULL;
  }
  return m;
}

/* The request body: method rules as curl(1) users know them. */
static void set_method(struct svc__hx *x, const char *method,
                       const svc_msg_t *body) {
  size_t len = svc_msg_len(body);
  CURL *e = x->easy;

  /* A new or kept handle is in curl's GET state already. */
  if (strcmp(method, "GET") == 0 && len == 0)
    return;
  x->has_method = 1;
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    return;
  }
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, svc_msg_body(body, NULL));
  if (strcmp(method, "POST") != 0)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

/* Headers every request with a body sends: no 100-continue round trip
 * (we know the length), and no form content type made up by curl. */
static int add_body_headers(struct svc__hx *x, const char *method,
                            const svc_msg_t *msg) {
  int has_body = strcmp(method, "HEAD") != 0 &&
                 (strcmp(method, "GET") != 0 || svc_msg_len(msg) > 0);
  int rc = 0;

  /* libcurl adds these only to requests that send a body, as set_method()
   * decides (and checks every header it writes against this list: the
   * shorter, the better). */
  if (has_body)
    rc = svc__httpc_add_header(&x->hdrs, "Expect", NULL);
  if (rc == 0 && has_body && svc_msg_content_type(msg) == NULL)
    rc = svc__httpc_add_header(&x->hdrs, "Content-Type", NULL);
  /* Nothing of the message's own but a trace and no body: the shared list
   * will do, with the trace in front (svc__hx_start()). */
  if (rc == 0 && x->hdrs == NULL &&
      svc__msg_is_plain(msg)) {
    const svc_trace_t *t = svc__msg_trace_bin(msg);
    if (t != NULL) {
      x->trace = *t;
      x->has_trace = 1;
    }
    return 0;
  }
  if (rc == 0)
    rc = svc__httpc_add_msg_headers(&x->hdrs, msg);
  return rc;
}

/* ---- Calls. */

static void call_done(struct svc__hx *x, CURLcode rc) {
  struct svc_call_s *call = x->owner;
  svc_status_t status;
  int err;
  svc_msg_t *reply = NULL;

  call->tp = NULL;
  if (rc == CURLE_OK) {
    status = svc__httpc_reply_status(x);
    err = status == SVC_STATUS_OK ? 0 : SVC_ESTATUS;
    reply = take_reply(x);
    if (reply == NULL) {
      status = SVC_STATUS_RESOURCE_EXHAUSTED;
      err = SVC_ENOMEM;
    }
  } else {
    svc__httpc_map_error(x, rc, &status, &err);
  }
  svc__hx_free(x);
  svc__call_attempt_done(call, status, err, reply);
}

int svc__httpc_call(struct svc__conn *conn, struct svc_call_s *call) {
  struct svc__httpc *hc = svc__httpc_of(conn);
  struct svc__hx *x;
  uint64_t left;
  int rc = svc__httpc_opts_check(call->url->query);

  if (rc != 0)
    return rc;
  x = svc__hx_new(hc, SVC__HX_CALL, call, svc__httpc_url(conn, call->url));
  if (x == NULL)
    return SVC_ENOMEM;
  x->body = svc__msg_ref(call->req);
  set_method(x, call->method, x->body);
  rc = add_body_headers(x, call->method, x->body);
  left = svc__call_remaining_ms(call);
  if (rc == 0 && left != UINT64_MAX) {
    char ms[24];

    if (x->hdrs == NULL) /* Not the shared list any more. */
      rc = svc__httpc_add_header(&x->hdrs, "Accept", NULL);
    snprintf(ms, sizeof(ms), "%llu", (unsigned long long)left);
    if (rc == 0)
      rc = svc__httpc_add_header(&x->hdrs, SVC__HTTP_H_TIMEOUT, ms);
  }
  /* The transfer may end inside svc__hx_start() (curl fails some at
   * once), so everything done needs is in place before it. */
  x->done = call_done;
  call->tp = x;
  if (rc == 0)
    rc = svc__hx_start(x);
  if (rc != 0) {
    call->tp = NULL;
    svc__hx_free(x);
    return rc;
  }
  return 0;
}

void svc__httpc_call_abort(struct svc__conn *conn, struct svc_call_s *call) {
  (void)conn;
  if (call->tp != NULL) {
    svc__hx_cancel(call->tp);
    call->tp = NULL;
  }
}

/* ---- Publishes: a POST to the server's hub (docs/http.md). */

static int pub_error(long code) {
  switch (code) {
  case 400:
    return SVC_EINVAL;
  case 404:
  case 405:
    return SVC_ENOTSUP; /* No hub there. */
  case 413:
  case 431:
    return SVC_EMSGSIZE;
  case 429:
  case 503:
    return SVC_EAGAIN;
  default:
    return SVC_EPROTO;
  }
}

static void pub_done(struct svc__hx *x, CURLcode rc) {
  struct svc__pub *pub = x->owner;
  svc_status_t status;
  int err;

  pub->tp = NULL;
  if (rc == CURLE_OK)
    err = x->code >= 200 && x->code < 300 ? 0 : pub_error(x->code);
  else
    svc__httpc_map_error(x, rc, &status, &err);
  svc__hx_free(x);
  pub->acked = 1; /* The server answered: an acknowledgement. */
  svc__pub_done(pub, err);
}

int svc__httpc_publish(struct svc__conn *conn, struct svc__pub *pub) {
  struct svc__httpc *hc = svc__httpc_of(conn);
  struct svc__hx *x;
  char num[16];
  int rc;

  x = svc__hx_new(hc, SVC__HX_PUB, pub,
                  svc__httpc_topic_url(conn, pub->topic));
  if (x == NULL)
    return SVC_ENOMEM;
  x->body = svc__msg_ref(pub->msg);
  set_method(x, "POST", x->body);
  rc = add_body_headers(x, "POST", x->body);
  if (rc == 0 && pub->qos > 0) {
    snprintf(num, sizeof(num), "%d", pub->qos);
    rc = svc__httpc_add_header(&x->hdrs, SVC__HTTP_H_QOS, num);
  }
  if (rc == 0 && pub->retain)
    rc = svc__httpc_add_header(&x->hdrs, SVC__HTTP_H_RETAIN, "1");
  x->done = pub_done;
  pub->tp = x;
  if (rc == 0)
    rc = svc__hx_start(x);
  if (rc != 0) {
    pub->tp = NULL;
    svc__hx_free(x);
    return rc;
  }
  return 0;
}

void svc__httpc_publish_abort(struct svc__conn *conn, struct svc__pub *pub) {
  (void)conn;
  if (pub->tp != NULL) {
    svc__hx_cancel(pub->tp);
    pub->tp = NULL;
  }
}
