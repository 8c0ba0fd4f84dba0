/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Request/response, synchronously: a login.
 *
 * A login is the textbook case for a call that must be answered before the
 * caller can go on: without the answer there is no session, and nothing
 * useful to do meanwhile. So the client uses svc_call_sync(), which makes
 * the call and runs the loop until the reply (or the deadline) comes.
 *
 * Two rules make that safe:
 *
 * 1. Always give a deadline (timeout_ms). A caller that waits for an answer
 *    is only as available as the slowest thing it waits for; with a deadline
 *    a stuck auth service costs the user a clear error after a bounded
 *    time instead of a hang.
 * 2. Never call svc_call_sync() from inside the loop (a callback, or while
 *    svc_ctx_run() runs): the loop it would wait on is the one it blocks,
 *    so it refuses with SVC_EINLOOP. Call it from plain code, as main()
 *    does here. Inside callbacks use svc_call() and go on in its callback.
 *
 * Usage:
 *   login serve URI              run the auth service on URI (for example
 *                                tcp://127.0.0.1:0 or http://127.0.0.1:0)
 *                                until SIGINT/SIGTERM;
 *                                prints the endpoint it listens on
 *   login URI USER PASSWORD      log in against the service at URI: prints
 *                                "welcome USER" (exit 0) or "denied"
 *                                (exit 1); exit 2 when the service could
 *                                not answer (down, too slow, ...)
 *   login demo                   both sides in one process on inproc://:
 *                                a good login, a wrong password, a stuck
 *                                service and a service that is down
 *
 * Over tcp:// and http:// credentials travel in clear text (neither
 * server has TLS; an https:// client needs a TLS terminator in front of
 * the http:// server): keep it on loopback or a private network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <svccomm.h>

/* How long a user waits at most for the auth service to answer. The demo
 * uses a shorter one so that its stuck-service case ends quickly. */
static uint64_t login_timeout_ms = 2000;

/* ---- The auth service. */

/* A real service would keep salted password hashes and compare them in
 * constant time; the demo keeps the point, which is the call pattern. */
static const char *const accounts[][2] = {
    {"alice", "wonderland"},
    {"bob", "builder"},
};

/* When set (demo only), the service simulates a stuck dependency: it keeps
 * the request and does not answer. */
static int auth_stuck;
static svc_request_t *held;

static void auth_login(svc_request_t *req, void *arg) {
  const svc_msg_t *m = svc_request_msg(req);
  const char *user = svc_msg_header_get(m, "user");
  const char *password = svc_msg_header_get(m, "password");
  char answer[128];
  size_t i;

  (void)arg;
  if (auth_stuck) {
    held = req; /* Answered later, or never: see demo(). */
    return;
  }
  if (user == NULL || password == NULL) {
    svc_request_reply(req, SVC_STATUS_INVALID_ARGUMENT,
                      svc_msg_new_str("user and password headers required"));
    return;
  }
  for (i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++) {
    if (strcmp(user, accounts[i][0]) == 0 &&
        strcmp(password, accounts[i][1]) == 0) {
      snprintf(answer, sizeof(answer), "welcome %s", user);
      svc_request_reply(req, SVC_STATUS_OK, svc_msg_new_str(answer));
      return;
    }
  }
  /* Same answer for an unknown user and a wrong password: do not tell an
   * attacker which one it was. */
  svc_request_reply(req, SVC_STATUS_UNAUTHENTICATED, svc_msg_new_str("denied"));
}

static int start_auth(svc_ctx_t *ctx, const char *uri, svc_server_t **srv) {
  int rc = svc_serve(ctx, uri, NULL, srv);

  if (rc == 0)
    rc = svc_server_route(*srv, NULL, "login", auth_login, NULL);
  return rc;
}

/* ---- The client side. */

/* login_sync() asks the auth service at endpoint whether user/password may
 * log in, and waits for the answer. Returns the call's status; the reply
 * body (or a description of the failure) goes to text. */
static int login_sync(svc_ctx_t *ctx, const char *endpoint, const char *user,
                      const char *password, char *text, size_t size) {
  /* Not idempotent as far as the caller knows (a real auth service counts
   * failed attempts and may lock the account), so no retry policy: the
   * user decides whether to try again. */
  svc_call_opts_t opts = {.timeout_ms = login_timeout_ms};
  svc_msg_t *req = svc_msg_new(NULL, 0);
  svc_msg_t *reply = NULL;
  char uri[512];
  int status;

  if (req == NULL) {
    snprintf(text, size, "%s", svc_strerror(SVC_ENOMEM));
    return SVC_ENOMEM;
  }
  /* Header values are checked (no CR, LF or NUL), and this is user input. */
  if ((status = svc_msg_header_add(req, "user", user)) < 0 ||
      (status = svc_msg_header_add(req, "password", password)) < 0) {
    svc_msg_free(req);
    snprintf(text, size, "user or password not usable: %s",
             svc_strerror(status));
    return status;
  }
  snprintf(uri, sizeof(uri), "%s/login", endpoint);
  status = svc_call_sync(ctx, uri, req, &opts, &reply);
  if (status < 0) {
    /* The call was not even made (bad URI, unknown scheme, or called from
     * inside the loop); req is still ours. */
    svc_msg_free(req);
    snprintf(text, size, "%s", svc_strerror(status));
    return status;
  }
  if (reply != NULL && svc_msg_len(reply) > 0) {
    size_t len;
    const char *body = svc_msg_body(reply, &len);
    snprintf(text, size, "%.*s", (int)len, body);
  } else if (status == SVC_STATUS_UNAVAILABLE) {
    snprintf(text, size, "the auth service cannot be reached");
  } else if (status == SVC_STATUS_DEADLINE_EXCEEDED) {
    snprintf(text, size, "no answer within %llu ms",
             (unsigned long long)login_timeout_ms);
  } else {
    snprintf(text, size, "%s", svc_status_name(status));
  }
  svc_msg_free(reply);
  return status;
}

/* Closing a context that owns its loop finishes in svc_ctx_run(). */
static void ctx_finish(svc_ctx_t *ctx) {
  svc_ctx_close(ctx, NULL, NULL);
  svc_ctx_run(ctx, UV_RUN_DEFAULT);
}

static int client_main(const char *endpoint, const char *user,
                       const char *password) {
  svc_ctx_t *ctx;
  char text[256];
  int status, rc;

  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0) {
    fprintf(stderr, "login: %s\n", svc_strerror(rc));
    return 2;
  }
  status = login_sync(ctx, endpoint, user, password, text, sizeof(text));
  ctx_finish(ctx);
  if (status == SVC_STATUS_OK) {
    printf("%s\n", text);
    return 0;
  }
  if (status == SVC_STATUS_UNAUTHENTICATED) {
    printf("denied\n");
    return 1;
  }
  /* Not a "no": no answer at all. Tell the user it is worth trying again
   * later, which "denied" would not. */
  if (status < 0)
    fprintf(stderr, "login: cannot make the call: %s\n", text);
  else
    fprintf(stderr, "login: no answer from the auth service: %s (%s)\n",
            svc_status_name(status), text);
  return 2;
}

/* ---- login serve URI: the service, until a signal stops it. */

static uv_signal_t sig_int, sig_term;
static int nsig_open;

static void on_sig_closed(uv_handle_t *h) {
  svc_ctx_t *ctx = h->data;

  /* Our handles live on the context's loop: close them before the context
   * releases it. Closing the context stops the server; calls in flight get
   * their answer or are cancelled. */
  if (--nsig_open == 0)
    svc_ctx_close(ctx, NULL, NULL);
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig;
  printf("auth service stopping (signal %d)\n", signum);
  fflush(stdout);
  uv_close((uv_handle_t *)&sig_int, on_sig_closed);
  uv_close((uv_handle_t *)&sig_term, on_sig_closed);
}

static int serve_main(const char *uri) {
  svc_ctx_t *ctx;
  svc_server_t *srv;
  int rc;

  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0 ||
      (rc = start_auth(ctx, uri, &srv)) < 0) {
    fprintf(stderr, "login: serve %s: %s\n", uri, svc_strerror(rc));
    return 1;
  }
  uv_signal_init(svc_ctx_loop(ctx), &sig_int);
  uv_signal_init(svc_ctx_loop(ctx), &sig_term);
  sig_int.data = sig_term.data = ctx;
  nsig_open = 2;
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  /* With port 0 the system picked the port: print the real endpoint, and
   * flush, because scripts wait for this line. */
  printf("auth service listening on %s\n", svc_server_endpoint(srv));
  fflush(stdout);
  svc_ctx_run(ctx, UV_RUN_DEFAULT);
  printf("auth service stopped\n");
  return 0;
}

/* ---- login demo: both sides in one process, on inproc://. */

static int try_login(svc_ctx_t *ctx, const char *what, const char *user,
                     const char *password, int expected) {
  char text[256];
  uint64_t t = uv_hrtime();
  int status =
      login_sync(ctx, "inproc://auth", user, password, text, sizeof(text));

  printf("%-28s -> %-17s %-40s (%.1f ms)\n", what,
         status < 0 ? svc_err_name(status) : svc_status_name(status), text,
         (double)(uv_hrtime() - t) / 1e6);
  return status == expected;
}

static int demo_main(void) {
  svc_ctx_t *ctx;
  svc_server_t *auth;
  int ok = 1, rc;

  /* One context holds both the service and the client. That works because
   * main() calls svc_call_sync() from outside the loop: svc_call_sync()
   * itself runs the loop, which lets the service's handler run and reply. */
  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0 ||
      (rc = start_auth(ctx, "inproc://auth", &auth)) < 0) {
    fprintf(stderr, "login: %s\n", svc_strerror(rc));
    return 1;
  }

  ok &= try_login(ctx, "alice, right password", "alice", "wonderland",
                  SVC_STATUS_OK);
  ok &= try_login(ctx, "alice, wrong password", "alice", "guess",
                  SVC_STATUS_UNAUTHENTICATED);

  /* The service is up but stuck (say, on its database). Without a
   * deadline this caller would wait forever; with one it gets
   * DEADLINE_EXCEEDED after login_timeout_ms, and the service can see
   * that nobody waits for the answer any more. */
  auth_stuck = 1;
  login_timeout_ms = 300;
  ok &= try_login(ctx, "bob, auth service stuck", "bob", "builder",
                  SVC_STATUS_DEADLINE_EXCEEDED);
  if (held != NULL) {
    printf("%-28s    the held request is cancelled: %s\n", "",
           svc_request_cancelled(held) ? "yes" : "no");
    ok &= svc_request_cancelled(held) != 0;
    svc_request_reply(held, SVC_STATUS_OK, NULL); /* Dropped; releases it. */
    held = NULL;
  }
  auth_stuck = 0;

  /* The service goes away: no waiting at all, the caller learns at once
   * that nothing answers, which is UNAVAILABLE. */
  svc_server_close(auth, NULL, NULL);
  ok &= try_login(ctx, "bob, auth service down", "bob", "builder",
                  SVC_STATUS_UNAVAILABLE);

  ctx_finish(ctx);
  printf(ok ? "demo: every outcome as expected\n"
            : "demo: FAILED, an outcome was not as expected\n");
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "demo") == 0)
    return demo_main();
  if (argc == 3 && strcmp(argv[1], "serve") == 0)
    return serve_main(argv[2]);
  if (argc == 4)
    return client_main(argv[1], argv[2], argv[3]);
  fprintf(stderr, "usage: login demo\n"
                  "       login serve URI\n"
                  "       login URI USER PASSWORD\n");
  return 2;
}
