/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_HTTP_SCRIPT_H
#define SVC_TEST_HTTP_SCRIPT_H

/* A scripted HTTP peer for client tests: a thread that accepts loopback
 * connections one after another, reads each request head (and a
 * Content-Length body), keeps the heads for the test to check, and answers
 * with the raw bytes the test chose for that connection, then closes it or
 * holds it open. It lets the tests play servers that libsvccomm's own
 * server never is: foreign, broken, silent or dying ones. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define SCRIPT_MAX 8

struct script_peer {
  int lfd;
  int port;
  pthread_t thread;
  /* Per connection index (the last entry repeats): the bytes to answer
   * each request with (NULL: never answer) and whether to close after. */
  const char *resp[SCRIPT_MAX];
  int close_after[SCRIPT_MAX];
  /* When > 0: answers that many requests on the connection, then resets
   * it (RST, no answer) as the next request arrives, the way a server
   * drops a kept-alive connection that a new request races. */
  int reset_after[SCRIPT_MAX];
  int nscript;
  /* What happened, for the test (read after script_stop()). */
  int nconns;
  int nreqs;
  char heads[SCRIPT_MAX][2048];
  volatile int stop;
};

/* strcasestr() is a GNU extension; the tests build as plain POSIX. */
static const char *script_find(const char *hay, const char *needle) {
  size_t n = strlen(needle);

  for (; *hay != '\0'; hay++) {
    if (strncasecmp(hay, needle, n) == 0)
      return hay;
  }
  return NULL;
}

/* Waits for fd to be readable for up to 50 ms at a time, until stop. */
static int script_wait(struct script_peer *p, int fd) {
  struct pollfd pfd;

  pfd.fd = fd;
  pfd.events = POLLIN;
  while (!p->stop) {
    int rc = poll(&pfd, 1, 50);

    if (rc > 0)
      return 1;
    if (rc < 0)
      return 0;
  }
  return 0;
}

/* Reads one request; 1 when one was read, 0 on EOF or stop. */
static int script_read_request(struct script_peer *p, int fd, char *head,
                               size_t size) {
  size_t len = 0;
  char *end = NULL;
  long body = 0;
  const char *cl;

  while (end == NULL) {
    ssize_t n;

    if (len + 1 >= size || !script_wait(p, fd))
      return 0;
    n = read(fd, head + len, size - len - 1);
    if (n <= 0)
      return 0;
    len += (size_t)n;
    head[len] = '\0';
    end = strstr(head, "\r\n\r\n");
  }
  cl = script_find(head, "\r\nContent-Length:");
  if (cl != NULL)
    body = strtol(cl + 17, NULL, 10);
  body -= (long)(len - (size_t)(end + 4 - head));
  end[4] = '\0';
  while (body > 0) {
    char sink[4096];
    ssize_t n;

    if (!script_wait(p, fd))
      return 0;
    n = read(fd, sink, sizeof(sink) < (size_t)body ? sizeof(sink) : (size_t)body);
    if (n <= 0)
      return 0;
    body -= n;
  }
  return 1;
}

static void *script_main(void *arg) {
  struct script_peer *p = arg;

  while (!p->stop) {
    int fd;
    int i;

    if (!script_wait(p, p->lfd))
      break;
    fd = accept(p->lfd, NULL, NULL);
    if (fd < 0)
      continue;
    i = p->nconns < p->nscript ? p->nconns : p->nscript - 1;
    p->nconns++;
    for (int answered = 0;; answered++) {
      char head[2048];

      if (!script_read_request(p, fd, head, sizeof(head)))
        break;
      if (p->nreqs < SCRIPT_MAX)
        snprintf(p->heads[p->nreqs], sizeof(p->heads[0]), "%s", head);
      p->nreqs++;
      if (p->reset_after[i] > 0 && answered == p->reset_after[i]) {
        struct linger lg = {1, 0};

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        break;
      }
      if (p->resp[i] == NULL) {
        /* Silent: hold the connection until the client gives up. */
        char sink[256];

        while (script_wait(p, fd) && read(fd, sink, sizeof(sink)) > 0) {
        }
        break;
      }
      if (write(fd, p->resp[i], strlen(p->resp[i])) < 0)
        break;
      if (p->close_after[i])
        break;
    }
    close(fd);
  }
  return NULL;
}

/* Starts the peer on a free loopback port; the script is set before. */
static inline void script_start(struct script_peer *p) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  int one = 1;

  p->lfd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(p->lfd >= 0);
  setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  cr_assert_eq(listen(p->lfd, 16), 0);
  cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&a, &alen), 0);
  p->port = ntohs(a.sin_port);
  cr_assert_eq(pthread_create(&p->thread, NULL, script_main, p), 0);
}

static inline void script_stop(struct script_peer *p) {
  p->stop = 1;
  pthread_join(p->thread, NULL);
  close(p->lfd);
}

#endif /* SVC_TEST_HTTP_SCRIPT_H */
