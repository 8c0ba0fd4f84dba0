/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVC_HTTP_CLIENT_H
#define SVC_HTTP_CLIENT_H

/* The libcurl side of http:// and https://, split by job:
 * http_client.c (one CURLM per endpoint driven by the context's loop with
 * curl_multi_socket_action; transfers; calls and publishes),
 * http_client_msg.c (URLs, request headers, response headers, error
 * mapping), http_client_sse.c (subscriptions: Server-Sent Events with
 * reconnect and Last-Event-ID), http_client_stream.c (streams: a chunked
 * upload and a streaming download under the core's flow control). */

#include <curl/curl.h>
#include <stdlib.h>

#include "transports/http.h"

/* Client options, from "svc-" query parameters of the URI that first used
 * the endpoint (docs/http.md); they are never sent to the server. */
struct svc__httpc_opts {
  char *cainfo;         /* svc-cainfo: CA bundle file. */
  char *capath;         /* svc-capath: CA directory. */
  int insecure;         /* svc-insecure=1: skip peer and host checks. */
  long http_version;    /* svc-http=1.1|2 (CURL_HTTP_VERSION_*). */
  long connect_timeout_ms; /* svc-connect-timeout-ms, default 10000. */
  size_t max_body;      /* svc-max-body: largest reply body, 64 MiB. */
  long sse_idle_ms;     /* svc-sse-idle-ms: silent SSE stream is dead. */
  /* The proxy settings of the environment, read as libcurl reads them
   * but once per endpoint (svc__httpc_proxy_env()): NULL when unset. */
  char *env_proxy;
  char *env_noproxy;
};

#define SVC__HTTPC_SPARES 64

struct svc__httpc {
  struct svc__conn *conn;
  CURLM *multi;
  uv_timer_t *timer;    /* curl's timeout; allocated apart (async close). */
  struct svc__task kick; /* Work deferred out of curl's callbacks. */
  int timeout_now;      /* curl asked for a 0 ms timeout. */
  int in_curl;          /* Inside a libcurl function that runs callbacks. */
  int marked;           /* Some transfer has a want_* flag set. */
  struct svc__list xfers;  /* struct svc__hx.link: every live transfer. */
  struct svc__list socks;  /* struct hsock.link: every socket curl has. */
  struct svc__httpc_opts opts;
  struct curl_slist *bare_hdrs; /* "Accept:" alone: requests with no header
                                 * of their own. */
  /* Finished calls and publishes, easy handle included, kept for the next
   * ones: creating a handle per call costs more than the call on loopback,
   * and a kept one needs few of its options set again (svc__hx_new()). */
  struct svc__hx *spare[SVC__HTTPC_SPARES];
  size_t nspare;
  int closing;
};

enum svc__hx_kind { SVC__HX_CALL, SVC__HX_PUB, SVC__HX_SUB, SVC__HX_STREAM };

/* One transfer: an easy handle and what it is for. */
struct svc__hx {
  struct svc__list link; /* hc->xfers */
  struct svc__httpc *hc;
  CURL *easy;
  enum svc__hx_kind kind;
  void *owner;            /* The call, pub, sub or stream; NULL once gone. */
  struct curl_slist *hdrs;
  /* A request whose only header is its trace (the usual call) sends it
   * without building a list: one node of its own in front of the shared
   * list (svc__hx_start()). */
  int has_trace;
  svc_trace_t trace;
  struct curl_slist trace_node;
  char trace_line[sizeof("traceparent: ") + SVC_TRACEPARENT_LEN];
  svc_msg_t *body;        /* Request body, kept while curl reads it. */
  char *url;
  unsigned in_multi : 1;  /* Added to hc->multi. */
  unsigned want_add : 1;  /* To be added once out of curl's callbacks. */
  unsigned want_remove : 1; /* To be removed and freed, likewise. */
  unsigned want_cont : 1; /* To be unpaused, likewise. */
  unsigned paused_recv : 1;
  unsigned paused_send : 1;
  unsigned has_method : 1; /* set_method() made it more than a GET. */
  /* The response being read. */
  long code;              /* Final (non-1xx) status code, 0 before. */
  int svc_status;         /* From Svc-Status, or -1. */
  int in_headers;         /* Between a status line and its blank line. */
  int fail_err;           /* Set by a callback that aborted the transfer. */
  svc_msg_t *resp;        /* Response headers, then its body. */
  char *buf;              /* Response body (calls, publishes): small_body
                           * while it fits, else allocated. */
  size_t len;
  size_t cap;
  char small_body[128];
  char errbuf[CURL_ERROR_SIZE];
  /* Called once the transfer has ended (rc is libcurl's result), after
   * it left the multi handle; it frees x with svc__hx_free(). */
  void (*done)(struct svc__hx *x, CURLcode rc);
  /* Optional: libcurl stopped watching the transfer's socket while it
   * runs (inside libcurl: only flags and deferred work). */
  void (*unwatched)(struct svc__hx *x);
};

/* http_client.c */
struct svc__httpc *svc__httpc_of(struct svc__conn *conn);
/* A transfer to url (taken) with the options every transfer shares. NULL
 * when out of memory (url is freed). */
struct svc__hx *svc__hx_new(struct svc__httpc *hc, enum svc__hx_kind kind,
                            void *owner, char *url);
/* Starts x (now, or right after the libcurl call we are inside). 0 or a
 * negative error (x is then still the caller's to free). */
int svc__hx_start(struct svc__hx *x);
/* Ends x without its done callback: removes it from the multi handle and
 * frees it, now or once out of curl's callbacks. */
void svc__hx_cancel(struct svc__hx *x);
void svc__hx_free(struct svc__hx *x);
/* Unpauses x (both directions), now or once out of curl's callbacks. */
void svc__hx_resume(struct svc__hx *x);

/* http_client_msg.c */
int svc__httpc_opts_parse(struct svc__httpc_opts *o, const char *query);
void svc__httpc_opts_free(struct svc__httpc_opts *o);
/* Reads the proxy environment variables for scheme ("http", "https") into
 * o. 0 or SVC_ENOMEM. */
int svc__httpc_proxy_env(struct svc__httpc_opts *o, const char *scheme);
/* Checks the svc- options of a URI whose endpoint is already set up: they
 * are not applied (the first URI's are), but a typo is still an error. */
int svc__httpc_opts_check(const char *query);
/* endpoint + "/" + path + the query without its svc- options; malloc'd,
 * or NULL when out of memory. */
char *svc__httpc_url(const struct svc__conn *conn, const struct svc__url *u);
/* endpoint + prefix + topic or filter, percent-encoded. */
char *svc__httpc_topic_url(const struct svc__conn *conn, const char *topic);
/* Appends msg's headers and content type to *list as request headers.
 * 0 or SVC_ENOMEM. */
int svc__httpc_add_msg_headers(struct curl_slist **list, const svc_msg_t *msg);
int svc__httpc_add_header(struct curl_slist **list, const char *name,
                          const char *value);
/* The header callback shared by every transfer: status line, headers into
 * x->resp (framing headers left out), Svc-Status into x->svc_status. */
size_t svc__httpc_on_header(char *data, size_t size, size_t n, void *arg);
/* The status a finished transfer's response stands for. */
svc_status_t svc__httpc_reply_status(const struct svc__hx *x);
/* Maps a failed transfer to a status and a local error. */
void svc__httpc_map_error(const struct svc__hx *x, CURLcode rc,
                          svc_status_t *status, int *err);

/* http_client_sse.c: the parts of a subscription the core does not see. */
struct svc__httpc_sse;
void svc__httpc_sse_free(struct svc__httpc_sse *sse);

#endif /* SVC_HTTP_CLIENT_H */
