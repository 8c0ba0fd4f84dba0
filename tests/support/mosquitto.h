/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_TEST_MOSQUITTO_H
#define SVC_TEST_MOSQUITTO_H

/* A real mosquitto per test: a generated configuration in a mkdtemp()
 * directory, a free port on 127.0.0.1, readiness by connecting, stop by
 * pid (SIGTERM, then SIGKILL), restart on the same port. The broker runs
 * under `setpriv --pdeathsig KILL`, so a worker killed by Criterion's
 * timeout takes its broker with it; `user root` keeps mosquitto from
 * dropping privileges (which would clear the death signal and lock it
 * out of the 0700 directory). Started with posix_spawn(): paho's threads
 * may already exist, so nothing may run between fork and exec. */

#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct broker {
  char dir[64];
  char conf[128];
  char log[128];
  int port;
  pid_t pid;
  int persistence;     /* Keep sessions and messages across restarts. */
  int default_inflight; /* Leave max_inflight_messages at its default. */
  int tls;             /* The listener speaks TLS with b->dir/cert.pem. */
  int auth;            /* No anonymous clients: b->dir/passwd only. */
};

static inline void broker_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline int broker_write_conf(struct broker *b) {
  FILE *f = fopen(b->conf, "w");

  if (f == NULL)
    return -1;
  fprintf(f, "listener %d 127.0.0.1\n", b->port);
  if (b->tls)
    fprintf(f, "certfile %s/cert.pem\nkeyfile %s/key.pem\n", b->dir, b->dir);
  if (b->auth)
    fprintf(f, "allow_anonymous false\npassword_file %s/passwd\n", b->dir);
  else
    fprintf(f, "allow_anonymous true\n");
  /* Request/response and stream credit are small messages each way:
   * without this, Nagle and delayed ACKs cost 40 ms per exchange. */
  fprintf(f, "set_tcp_nodelay true\n");
  fprintf(f, "log_dest file %s\nlog_type all\n", b->log);
  if (geteuid() == 0)
    fprintf(f, "user root\n");
  if (!b->default_inflight)
    fprintf(f, "max_inflight_messages 0\n");
  /* Unbounded per-client queues: the tests count every message. */
  fprintf(f, "max_queued_messages 0\n");
  if (b->persistence)
    fprintf(f, "persistence true\npersistence_location %s/\n"
               "autosave_interval 0\n",
            b->dir);
  else
    fprintf(f, "persistence false\n");
  fclose(f);
  return 0;
}

static inline int broker_port_open(int port) {
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int ok;

  if (fd < 0)
    return 0;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
  close(fd);
  return ok;
}

/* Starts mosquitto on b->port; 0 when it accepts connections, -1 when it
 * exited (port taken) or did not come up within 3 s. */
static inline int broker_spawn(struct broker *b) {
  char *argv[] = {"setpriv", "--pdeathsig", "KILL", "mosquitto", "-c",
                  b->conf,   NULL};
  posix_spawn_file_actions_t fa;
  int status;
  int i;

  if (broker_write_conf(b) != 0)
    return -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  if (posix_spawnp(&b->pid, "setpriv", &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    b->pid = 0;
    return -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  for (i = 0; i < 600; i++) {
    if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
      b->pid = 0;
      return -1;
    }
    if (broker_port_open(b->port))
      return 0;
    broker_sleep_ms(5);
  }
  kill(b->pid, SIGKILL);
  waitpid(b->pid, &status, 0);
  b->pid = 0;
  return -1;
}

static inline void broker_stop(struct broker *b) {
  int status;
  int i;

  if (b->pid <= 0)
    return;
  kill(b->pid, SIGTERM);
  for (i = 0; i < 200; i++) {
    if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
      b->pid = 0;
      return;
    }
    broker_sleep_ms(5);
  }
  kill(b->pid, SIGKILL);
  waitpid(b->pid, &status, 0);
  b->pid = 0;
}

/* A fresh broker in a new temporary directory (its conf and log in it).
 * 0 or -1. */
static inline int broker_new_dir(struct broker *b) {
  memset(b, 0, sizeof(*b));
  snprintf(b->dir, sizeof(b->dir), "/tmp/svc-mqtt-XXXXXX");
  if (mkdtemp(b->dir) == NULL)
    return -1;
  snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
  snprintf(b->log, sizeof(b->log), "%s/mosquitto.log", b->dir);
  return 0;
}

/* Spawns b on a free port below Linux's ephemeral range, so client
 * sockets cannot take it; a port in use makes mosquitto exit, and another
 * is tried. 0 or -1. */
static inline int broker_spawn_on_free_port(struct broker *b) {
  static unsigned counter;
  int attempt;

  for (attempt = 0; attempt < 8; attempt++) {
    unsigned h = (unsigned)getpid() * 2654435761u + counter++ * 7919u +
                 (unsigned)time(NULL) * 31u;
    b->port = 20000 + (int)(h % 12000u);
    if (broker_port_open(b->port))
      continue;
    if (broker_spawn(b) == 0)
      return 0;
  }
  return -1;
}

/* Starts a broker on a free port in a new temporary directory. 0 or -1. */
static inline int broker_start_opts(struct broker *b, int persistence,
                                    int default_inflight) {
  if (broker_new_dir(b) != 0)
    return -1;
  b->persistence = persistence;
  b->default_inflight = default_inflight;
  return broker_spawn_on_free_port(b);
}

static inline int run_cmd(char *const argv[], const char *out_path,
                          long timeout_ms);

/* A TLS broker: a self-signed certificate for 127.0.0.1, made with the
 * openssl command, which clients trust as their CA (mqtts://...?ca=). */
static inline int broker_start_tls(struct broker *b) {
  char key[128];
  char cert[128];
  char *argv[] = {"openssl", "req", "-x509", "-newkey", "rsa:2048",
                  "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                  "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key,
                  "-out", cert, NULL};

  if (broker_new_dir(b) != 0)
    return -1;
  snprintf(key, sizeof(key), "%s/key.pem", b->dir);
  snprintf(cert, sizeof(cert), "%s/cert.pem", b->dir);
  if (run_cmd(argv, NULL, 20000) != 0)
    return -1;
  b->tls = 1;
  return broker_spawn_on_free_port(b);
}

/* A broker that admits only user with password (mosquitto_passwd writes
 * b->dir/passwd); anonymous clients and wrong passwords are refused. */
static inline int broker_start_auth(struct broker *b, const char *user,
                                    const char *password) {
  char file[128];
  char *argv[] = {"mosquitto_passwd", "-b", "-c", file, (char *)user,
                  (char *)password, NULL};

  if (broker_new_dir(b) != 0)
    return -1;
  snprintf(file, sizeof(file), "%s/passwd", b->dir);
  if (run_cmd(argv, NULL, 10000) != 0)
    return -1;
  b->auth = 1;
  return broker_spawn_on_free_port(b);
}

/* Waits up to timeout_ms for a line of the broker's log (log_type all)
 * that contains needle. 1 when found, 0 when not. */
static inline int broker_log_wait(const struct broker *b, const char *needle,
                                  long timeout_ms) {
  char line[1024];
  long waited;

  for (waited = 0;; waited += 10) {
    FILE *f = fopen(b->log, "r");
    if (f != NULL) {
      while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, needle) != NULL) {
          fclose(f);
          return 1;
        }
      }
      fclose(f);
    }
    if (waited >= timeout_ms)
      return 0;
    broker_sleep_ms(10);
  }
}

static inline int broker_start(struct broker *b) {
  return broker_start_opts(b, 0, 0);
}

/* Starts the stopped broker again on the same port and configuration. */
static inline int broker_restart(struct broker *b) {
  int i;

  broker_stop(b);
  for (i = 0; i < 5; i++) {
    if (broker_spawn(b) == 0)
      return 0;
    broker_sleep_ms(50);
  }
  return -1;
}

static inline int broker_rm(const char *path, const struct stat *st, int flag,
                     struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Stops the broker and removes its directory (and anything tests put in
 * it, such as paho persistence). */
static inline void broker_cleanup(struct broker *b) {
  broker_stop(b);
  /* SVC_TEST_KEEP_BROKER=1 keeps the directory (log, database) for a
   * post-mortem of a failed test. */
  if (b->dir[0] != '\0' && getenv("SVC_TEST_KEEP_BROKER") == NULL)
    nftw(b->dir, broker_rm, 16, FTW_DEPTH | FTW_PHYS);
  b->dir[0] = '\0';
}

/* "mqtt://127.0.0.1:PORT/path" in one of a few rotating buffers. */
static inline const char *broker_uri(const struct broker *b, const char *path) {
  static char buf[8][512];
  static int i;
  char *s = buf[i++ % 8];

  snprintf(s, 512, "mqtt://127.0.0.1:%d/%s", b->port, path);
  return s;
}

/* Runs a command (argv[0] looked up in PATH) with stdout into out_path (or
 * /dev/null) and waits for it, up to timeout_ms, killing it after that.
 * Returns its exit status, or -1. */
static inline int run_cmd(char *const argv[], const char *out_path, long timeout_ms) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int status;
  long waited = 0;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    return -1;
  }
  posix_spawn_file_actions_destroy(&fa);
  for (;;) {
    if (waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (waited >= timeout_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    broker_sleep_ms(10);
    waited += 10;
  }
}

/* Starts a command in the background (stdout into out_path); its pid. */
static inline pid_t spawn_cmd(char *const argv[], const char *out_path) {
  posix_spawn_file_actions_t fa;
  pid_t pid;

  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out_path ? out_path : "/dev/null",
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  if (posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

#endif /* SVC_TEST_MOSQUITTO_H */
