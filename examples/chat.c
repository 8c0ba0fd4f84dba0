/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Streams: a chat room over tcp://.
 *
 * A call carries one request and one reply; a chat connection carries
 * messages both ways, for as long as the user stays, in order. That is a
 * stream: svc_stream() opens it, svc_stream_write() sends, on_data
 * receives, svc_stream_end() says "I am done sending", and on_close runs
 * once when both sides are done (or the connection is lost).
 *
 * Usage:
 *   chat server URI          relay every line a client sends to every other
 *                            client (URI e.g. tcp://127.0.0.1:0; prints the
 *                            endpoint); runs until SIGINT/SIGTERM
 *   chat client URI NAME     join the room at URI (the endpoint the server
 *                            printed): each stdin line is sent as
 *                            "NAME: line", each line received is printed;
 *                            end of input leaves the room
 *
 * What to look at:
 * - The server keeps a list of open streams and writes each line to every
 *   other one. svc_stream_write() is bounded: when a client's send queue
 *   is full it returns SVC_EAGAIN. See relay() for what the server does
 *   then, and why.
 * - The client reads stdin on a thread of its own (fgets() blocks) and
 *   hands each line to the loop with svc_ctx_post(), the one svc_ function
 *   that may be called from another thread. It reads the next line only
 *   once the stream has taken the previous one, so a slow network slows
 *   the reading of stdin instead of filling memory. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <svccomm.h>

#define NAME_MAX_LEN 32

static svc_ctx_t *ctx;

/* ======================================================================
 * The server.
 * ====================================================================== */

struct member {
  svc_stream_t *s;
  char name[NAME_MAX_LEN];
  unsigned long missed; /* Lines dropped because its queue was full. */
  int listed;           /* In the room: relayed to and from. */
  struct member *prev, *next;
};

static struct member *room;
static unsigned room_size;
static uv_signal_t sig_int, sig_term;
static int nsig_open;

/* Each client's send queue holds at most this much. A client that does not
 * read (stopped, or on a slow link) fills it, and then loses lines. */
static const svc_stream_opts_t member_opts = {.send_buffer = 64 * 1024};

static void room_add(struct member *m) {
  m->next = room;
  if (room != NULL)
    room->prev = m;
  room = m;
  m->listed = 1;
  room_size++;
}

static void room_remove(struct member *m) {
  if (m->prev != NULL)
    m->prev->next = m->next;
  else
    room = m->next;
  if (m->next != NULL)
    m->next->prev = m->prev;
  m->listed = 0;
  room_size--;
}

/* relay() sends a copy of msg to one member.
 *
 * The choice on SVC_EAGAIN: drop the line for that member, count it, and
 * tell the member once its queue has room again (on_writable). A chat room
 * is live; a line delivered minutes late is worth little, and the other
 * choices are worse here:
 * - waiting (pausing the sender until the slow member has room) lets the
 *   slowest member set the pace of the whole room;
 * - queueing without a bound lets one stalled client grow the server's
 *   memory until it falls over.
 * The library's send queue (member_opts.send_buffer) is already the
 * bounded queue: 64 KiB of backlog per member, then drops. Where every
 * message matters (a file transfer, a log shipper) do the opposite: pause
 * the source (svc_stream_pause()) until on_writable, and let
 * backpressure reach the sender. */
static void relay(struct member *to, const svc_msg_t *msg) {
  svc_msg_t *copy = svc_msg_dup(msg);
  int rc;

  if (copy == NULL)
    return;
  rc = svc_stream_write(to->s, copy, NULL, NULL);
  if (rc == 0)
    return;
  svc_msg_free(copy); /* On an error the message is still ours. */
  if (rc == SVC_EAGAIN)
    to->missed++;
}

static void broadcast(struct member *from, const svc_msg_t *msg) {
  struct member *m;

  for (m = room; m != NULL; m = m->next)
    if (m != from)
      relay(m, msg);
}

static void notice(struct member *to, struct member *about_all_but,
                   const char *text) {
  svc_msg_t *msg = svc_msg_new_str(text);

  if (msg == NULL)
    return;
  if (to != NULL)
    relay(to, msg);
  else
    broadcast(about_all_but, msg);
  svc_msg_free(msg);
}

static void leave(struct member *m, const char *how) {
  char text[128];

  room_remove(m);
  snprintf(text, sizeof(text), "* %s left%s", m->name, how);
  notice(NULL, m, text);
  printf("%s left%s (%u connected)\n", m->name, how, room_size);
  fflush(stdout);
}

static void member_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  struct member *m = arg;

  (void)s;
  if (m->listed)
    broadcast(m, msg);
}

/* The client ended its side (end of its input): it has left the room. We
 * end ours too; on_close follows once both directions are done. */
static void member_end(svc_stream_t *s, void *arg) {
  leave(arg, "");
  svc_stream_end(s);
}

static void member_writable(svc_stream_t *s, void *arg) {
  struct member *m = arg;
  char text[128];

  (void)s;
  if (m->missed == 0)
    return;
  snprintf(text, sizeof(text), "* you missed %lu lines (too slow to keep up)",
           m->missed);
  m->missed = 0;
  notice(m, NULL, text);
}

static void member_close(svc_stream_t *s, int status, void *arg) {
  struct member *m = arg;

  (void)s;
  if (m->listed) /* Gone without ending: killed, or the link broke. */
    leave(m, status == 0 ? "" : " (connection lost)");
  free(m);
}

static void member_accept(svc_server_t *srv, svc_stream_t *s, void *arg) {
  static const svc_stream_cbs_t cbs = {member_data, member_end, member_writable,
                                       member_close};
  const char *name = svc_stream_header(s, "name");
  struct member *m = calloc(1, sizeof(*m));
  char text[128];

  (void)srv;
  (void)arg;
  if (m == NULL || svc_stream_accept(s, &member_opts, &cbs, m) != 0) {
    free(m);
    svc_stream_reset(s);
    return;
  }
  m->s = s;
  snprintf(m->name, sizeof(m->name), "%s", name != NULL ? name : "anonymous");
  snprintf(text, sizeof(text), "* welcome %s, %u others here", m->name,
           room_size);
  notice(m, NULL, text);
  snprintf(text, sizeof(text), "* %s joined", m->name);
  notice(NULL, m, text);
  room_add(m);
  printf("%s joined (%u connected)\n", m->name, room_size);
  fflush(stdout);
}

static void on_sig_closed(uv_handle_t *h) {
  (void)h;
  /* Our handles must be closed before the context releases its loop.
   * Closing the context resets every stream: each member_close() runs. */
  if (--nsig_open == 0)
    svc_ctx_close(ctx, NULL, NULL);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig;
  printf("chat server stopping (signal %d)\n", signum);
  fflush(stdout);
  uv_close((uv_handle_t *)&sig_int, on_sig_closed);
  uv_close((uv_handle_t *)&sig_term, on_sig_closed);
}

static int server_main(const char *uri) {
  svc_server_t *srv;
  int rc;

  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0 ||
      (rc = svc_serve(ctx, uri, NULL, &srv)) < 0 ||
      (rc = svc_server_stream_route(srv, "chat", member_accept, NULL)) < 0) {
    fprintf(stderr, "chat: serve %s: %s\n", uri, svc_strerror(rc));
    return 1;
  }
  uv_signal_init(svc_ctx_loop(ctx), &sig_int);
  uv_signal_init(svc_ctx_loop(ctx), &sig_term);
  nsig_open = 2;
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  printf("chat server listening on %s\n", svc_server_endpoint(srv));
  fflush(stdout);
  svc_ctx_run(ctx, UV_RUN_DEFAULT);
  printf("chat server stopped\n");
  return 0;
}

/* ======================================================================
 * The client.
 * ====================================================================== */

static svc_stream_t *stream;
static const char *my_name;
static int exit_code;

/* Hand-over between the stdin thread and the loop thread. */
static uv_mutex_t post_lock; /* Guards the two flags, every post. */
static int ctx_closed;       /* Set once svc_ctx_close() has begun. */
static int reader_done;      /* The reader is past its last post. */
static uv_sem_t may_read;    /* Posted when the reader may read on. */
static svc_msg_t *waiting;   /* A line the send queue had no room for. */

/* Runs on the loop thread, once per line the reader posted (line NULL at
 * the end of input), or with SVC_ECANCELED if the context closed first. */
static void on_line(svc_ctx_t *c, int status, void *arg) {
  char *line = arg;
  svc_msg_t *msg;
  char *text;
  int rc;

  (void)c;
  if (status < 0 || line == NULL) {
    if (status == 0)
      svc_stream_end(stream); /* End of input: leave the room. */
    free(line);
    uv_sem_post(&may_read);
    return;
  }
  text = malloc(strlen(my_name) + 2 + strlen(line) + 1);
  if (text == NULL) {
    free(line);
    uv_sem_post(&may_read);
    return;
  }
  sprintf(text, "%s: %s", my_name, line);
  free(line);
  msg = svc_msg_new_take(text, strlen(text), free);
  rc = svc_stream_write(stream, msg, NULL, NULL);
  if (rc == SVC_EAGAIN) {
    /* The send queue is full: keep this line and let the reader wait until
     * on_writable says there is room. */
    waiting = msg;
    return;
  }
  if (rc < 0)
    svc_msg_free(msg); /* The stream is closing: on_close says why. */
  uv_sem_post(&may_read);
}

static void client_writable(svc_stream_t *s, void *arg) {
  (void)arg;
  if (waiting == NULL || svc_stream_write(s, waiting, NULL, NULL) == SVC_EAGAIN)
    return;
  waiting = NULL;
  uv_sem_post(&may_read);
}

static void client_data(svc_stream_t *s, const svc_msg_t *msg, void *arg) {
  size_t len;
  const char *body = svc_msg_body(msg, &len);

  (void)s;
  (void)arg;
  printf("%.*s\n", (int)len, body);
  fflush(stdout);
}

static void client_close(svc_stream_t *s, int status, void *arg) {
  (void)s;
  (void)arg;
  if (status != 0) {
    fprintf(stderr, "chat: connection closed: %s\n", svc_strerror(status));
    exit_code = 1;
  }
  svc_msg_free(waiting);
  waiting = NULL;
  /* From here on the reader thread must not touch the context. */
  uv_mutex_lock(&post_lock);
  ctx_closed = 1;
  uv_mutex_unlock(&post_lock);
  uv_sem_post(&may_read);
  svc_ctx_close(ctx, NULL, NULL);
}

/* The stdin thread: blocking reads, one line at a time. */
static void reader(void *arg) {
  char buf[1024];
  char *line;
  size_t len;
  int rc;

  (void)arg;
  for (;;) {
    line = NULL;
    if (fgets(buf, sizeof(buf), stdin) != NULL) {
      len = strcspn(buf, "\r\n");
      buf[len] = '\0';
      if ((line = malloc(len + 1)) == NULL)
        return;
      memcpy(line, buf, len + 1);
    }
    uv_mutex_lock(&post_lock);
    rc = ctx_closed ? SVC_ECLOSING : svc_ctx_post(ctx, on_line, line);
    if (rc < 0 || line == NULL)
      reader_done = 1; /* Returns at once: main() may join it. */
    uv_mutex_unlock(&post_lock);
    if (rc < 0 || line == NULL) {
      if (rc < 0)
        free(line);
      return;
    }
    uv_sem_wait(&may_read);
  }
}

static int client_main(const char *endpoint, const char *name) {
  static const svc_stream_cbs_t cbs = {client_data, NULL, client_writable,
                                       client_close};
  const char *const headers[] = {"name", name};
  svc_stream_opts_t opts = {.headers = headers, .nheaders = 1};
  uv_thread_t tid;
  char uri[512];
  int rc, joinable;

  my_name = name;
  snprintf(uri, sizeof(uri), "%s/chat", endpoint);
  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0 ||
      (rc = svc_stream(ctx, uri, &opts, &cbs, NULL, &stream)) < 0) {
    fprintf(stderr, "chat: %s: %s\n", uri, svc_strerror(rc));
    return 1;
  }
  /* Failing to connect is not an error here: it arrives in client_close. */
  uv_mutex_init(&post_lock);
  uv_sem_init(&may_read, 0);
  if (uv_thread_create(&tid, reader, NULL) != 0) {
    fprintf(stderr, "chat: cannot start the stdin thread\n");
    return 1;
  }
  svc_ctx_run(ctx, UV_RUN_DEFAULT);
  /* If the connection ended first, the reader may still be blocked in
   * fgets(): it will never touch the context again, and returning from
   * main() ends it. Otherwise it has finished: join it. */
  uv_mutex_lock(&post_lock);
  joinable = reader_done;
  uv_mutex_unlock(&post_lock);
  if (joinable)
    uv_thread_join(&tid);
  return exit_code;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "server") == 0)
    return server_main(argv[2]);
  if (argc == 4 && strcmp(argv[1], "client") == 0)
    return client_main(argv[2], argv[3]);
  fprintf(stderr, "usage: chat server URI\n"
                  "       chat client URI NAME\n");
  return 2;
}
