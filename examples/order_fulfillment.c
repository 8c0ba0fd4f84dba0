/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Order fulfillment: one call, then a chain of events.
 *
 * Four services cooperate to fulfil an order:
 *
 *   OrderService         serves POST orders: validates and stores the order,
 *                        publishes orders/placed and answers at once;
 *   PaymentService       orders/placed      -> payments/processed or
 *                                              payments/failed
 *   InventoryService     payments/processed -> inventory/updated
 *   NotificationService  orders/placed, payments/+ -> mails to the customer
 *
 * Placing an order is a call, because the customer needs an answer (the
 * order id) before going on. Everything after it is an event, because
 * nobody should wait for it: the order is accepted in well under a
 * millisecond even though the payment gateway takes PAYMENT_DELAY_MS. The
 * timeline printed below shows both numbers side by side.
 *
 * Usage:
 *   order_fulfillment                 everything in this process, inproc://
 *   order_fulfillment --api tcp://127.0.0.1:0 --bus tcp://127.0.0.1:0
 *                                     the same flow over real sockets: the
 *                                     API and the event hub are served on
 *                                     TCP, and every service connects to
 *                                     them as a client
 *   order_fulfillment --api http://127.0.0.1:8080 --keep-running
 *                                     after the demo, keep taking orders
 *                                     (curl -d 'item=book;qty=1;card=4242'
 *                                     http://127.0.0.1:8080/orders) until
 *                                     SIGINT/SIGTERM
 *   order_fulfillment --bus mqtt://127.0.0.1:1883
 *                                     the events go through an MQTT broker
 *   order_fulfillment --bus mqtt://127.0.0.1:1883 --only payment
 *                                     one service per process (order,
 *                                     payment, inventory, notification):
 *                                     each keeps a persistent broker
 *                                     session, so the events for a service
 *                                     that is down wait in the broker and
 *                                     reach it when it comes back; runs
 *                                     until SIGINT/SIGTERM
 *
 * Exits 0 once every expected reply and event was seen, 1 otherwise (a
 * watchdog makes sure it never hangs), 2 on a usage error. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <svccomm.h>

#define WATCHDOG_MS 5000
#define PAYMENT_DELAY_MS 20 /* What the simulated payment gateway takes. */
#define MAX_ORDERS 256

static svc_ctx_t *ctx;
static svc_server_t *api, *bus; /* bus stays NULL when it is a broker. */
static char api_ep[256], bus_ep[256]; /* Endpoints as served ("tcp://..."). */
/* Appended to every bus URI: the options of a broker connection. */
static char bus_query[160];

/* The services this process runs: all of them, or one with --only. */
enum { S_ORDER, S_PAYMENT, S_INVENTORY, S_NOTIFICATION, NSERVICES };
static const char *const service_names[NSERVICES] = {"order", "payment",
                                                     "inventory",
                                                     "notification"};
static int only = -1; /* -1: everything, and the demo; else one service. */
#define RUNS(s) (only < 0 || only == (s))
static uint64_t t0;
static int stopping;

static void fail(const char *fmt, ...);

/* ---- The timeline. */

static double ms_since(uint64_t t) {
  return (double)(uv_hrtime() - t) / 1e6;
}

/* say() prints one timeline line: time since start, service, what happened,
 * and, when lat >= 0, the time since the customer's POST. */
static void say(const char *who, double lat, const char *fmt, ...) {
  va_list ap;

  printf("%8.3f ms  %-20s", ms_since(t0), who);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  if (lat >= 0)
    printf("  [+%.3f ms after POST]", lat);
  putchar('\n');
}

/* The orders the demo places, and what it measured for each. Each request
 * carries a correlation-id header, which every service copies into the
 * events it publishes (as a tracing header would travel): that is how a
 * downstream event is matched to the POST that caused it. */
enum {
  LAT_ACCEPT,
  LAT_PAYMENT,
  LAT_MAIL_PLACED,
  LAT_INVENTORY,
  LAT_MAIL_PAID,
  NLAT
};

static struct demo_order {
  const char *corr, *body;
  int will_pay;
  uint64_t t_post;
  char id[16];
  double lat[NLAT];
} demo[] = {
    {"demo-1", "item=book;qty=1;card=4242424242424242", 1, 0, "", {0}},
    {"demo-2", "item=lamp;qty=2;card=4000000000000000", 0, 0, "", {0}},
    {"demo-3", "item=mug;qty=4;card=5555555555554444", 1, 0, "", {0}},
};
#define NDEMO (sizeof(demo) / sizeof(demo[0]))

/* What the demo must see before it declares success. */
enum {
  C_ACCEPTED,
  C_CHARGES,
  C_PAID,
  C_DECLINED,
  C_STOCK,
  C_SHIPPABLE,
  C_MAILS,
  C_ACKS,
  NCOUNT
};
static struct {
  const char *what;
  unsigned want, got;
} counts[NCOUNT] = {
    {"orders accepted", 3, 0},
    {"orders/placed seen by PaymentService", 3, 0},
    {"payments/processed", 2, 0},
    {"payments/failed", 1, 0},
    {"payments/processed seen by InventoryService", 2, 0},
    {"inventory/updated seen", 2, 0},
    {"mails sent", 6, 0}, /* 3 confirmations, 2 receipts, 1 decline. */
    {"publishes acknowledged by the hub", 8, 0},
};
static int demo_over;

static void demo_finished(void);

static void count(int which) {
  counts[which].got++;
  if (!demo_over) {
    int i;
    for (i = 0; i < NCOUNT; i++)
      if (counts[i].got < counts[i].want)
        return;
    demo_finished();
  }
}

/* since_post() records and returns the time from the POST of the order that
 * m belongs to, or -1 for an order the demo did not place. */
static double since_post(const svc_msg_t *m, int col) {
  const char *corr = svc_msg_header_get(m, "correlation-id");
  size_t i;

  for (i = 0; corr != NULL && i < NDEMO; i++)
    if (strcmp(corr, demo[i].corr) == 0)
      return demo[i].lat[col] = ms_since(demo[i].t_post);
  return -1;
}

static const char *hdr(const svc_msg_t *m, const char *name) {
  const char *v = svc_msg_header_get(m, name);
  return v != NULL ? v : "?";
}

/* ---- Publishing, shared by every service. */

static void on_published(svc_ctx_t *c, int status, void *arg) {
  (void)c;
  if (status < 0) {
    if (!stopping)
      fail("publish to %s failed: %s", (const char *)arg, svc_strerror(status));
    return;
  }
  count(C_ACKS);
}

/* publish() sends ev to topic on the bus; it owns ev in every case. QoS 1:
 * the hub never drops it for a full subscriber queue. */
static int publish(const char *topic, svc_msg_t *ev) {
  static const svc_pub_opts_t qos1 = {.qos = 1};
  char uri[512];
  int rc;

  snprintf(uri, sizeof(uri), "%s/%s%s", bus_ep, topic, bus_query);
  rc = svc_publish(ctx, uri, ev, &qos1, on_published, (void *)topic);
  if (rc < 0) {
    svc_msg_free(ev); /* On an error the message is still ours. */
    fail("svc_publish %s: %s", topic, svc_strerror(rc));
  }
  return rc;
}

/* copy_headers() starts an event from the headers of the one that caused
 * it (order-id, item, qty, correlation-id...), leaving out skip. */
static svc_msg_t *copy_headers(const svc_msg_t *from, const char *skip) {
  svc_msg_t *ev = svc_msg_new(NULL, 0);
  const char *name, *value;
  size_t i;

  for (i = 0; ev != NULL && svc_msg_header_at(from, i, &name, &value) == 0; i++)
    if (skip == NULL || strcmp(name, skip) != 0)
      svc_msg_header_add(ev, name, value);
  return ev;
}

/* ---- OrderService: the only synchronous step. */

static const char *const catalog[] = {"book", "lamp", "mug"};
#define NCATALOG (sizeof(catalog) / sizeof(catalog[0]))

static struct order {
  unsigned id, qty;
  char item[16], card[20];
} orders[MAX_ORDERS]; /* The order store: memory is enough for a demo. */
static unsigned norders;

static int all_digits(const char *s, size_t min, size_t max) {
  size_t n = strlen(s);

  if (n < min || n > max)
    return 0;
  return strspn(s, "0123456789") == n;
}

/* parse_order() reads "item=book;qty=1;card=4242" into o. Returns NULL or
 * what is wrong. A real service would take JSON; this format keeps the
 * parsing to a few lines that cannot overrun anything. */
static const char *parse_order(const svc_msg_t *m, struct order *o) {
  char buf[256], *field, *save = NULL;
  size_t len, i;
  const char *body = svc_msg_body(m, &len);

  if (len >= sizeof(buf) || memchr(body, '\0', len) != NULL)
    return "body too long or not text";
  memcpy(buf, body, len);
  buf[len] = '\0';
  memset(o, 0, sizeof(*o));
  for (field = strtok_r(buf, ";", &save); field != NULL;
       field = strtok_r(NULL, ";", &save)) {
    char *value = strchr(field, '=');

    if (value == NULL)
      return "expected key=value fields separated by ';'";
    *value++ = '\0';
    if (strcmp(field, "item") == 0) {
      for (i = 0; i < NCATALOG && strcmp(value, catalog[i]) != 0; i++)
        ;
      if (i == NCATALOG)
        return "unknown item (try book, lamp or mug)";
      strcpy(o->item, catalog[i]);
    } else if (strcmp(field, "qty") == 0) {
      if (!all_digits(value, 1, 2) || atoi(value) == 0)
        return "qty must be 1..99";
      o->qty = (unsigned)atoi(value);
    } else if (strcmp(field, "card") == 0) {
      if (!all_digits(value, 4, 19))
        return "card must be 4..19 digits";
      strcpy(o->card, value);
    } else {
      return "unknown field (expected item, qty, card)";
    }
  }
  if (o->item[0] == '\0' || o->qty == 0 || o->card[0] == '\0')
    return "item, qty and card are required";
  return NULL;
}

static void order_post(svc_request_t *req, void *arg) {
  const svc_msg_t *m = svc_request_msg(req);
  const char *corr = svc_msg_header_get(m, "correlation-id");
  struct order *o;
  const char *err;
  svc_msg_t *ev, *reply;
  char id[16], qty[8];

  (void)arg;
  if (norders == MAX_ORDERS) {
    svc_request_reply(req, SVC_STATUS_RESOURCE_EXHAUSTED,
                      svc_msg_new_str("order book full\n"));
    return;
  }
  o = &orders[norders];
  if ((err = parse_order(m, o)) != NULL) {
    say("OrderService", -1, "rejected an order: %s", err);
    svc_request_reply(req, SVC_STATUS_INVALID_ARGUMENT, svc_msg_new_str(err));
    return;
  }
  o->id = 1001 + norders;
  snprintf(id, sizeof(id), "%u", o->id);
  snprintf(qty, sizeof(qty), "%u", o->qty);

  /* A real shop would hand PaymentService a token from its payment
   * provider, never the card number; the demo keeps the number so that the
   * decline rule (a card ending in 0000) is easy to see. */
  ev = svc_msg_new(NULL, 0);
  if (ev == NULL || svc_msg_header_add(ev, "order-id", id) < 0 ||
      svc_msg_header_add(ev, "item", o->item) < 0 ||
      svc_msg_header_add(ev, "qty", qty) < 0 ||
      svc_msg_header_add(ev, "card", o->card) < 0 ||
      (corr != NULL && svc_msg_header_add(ev, "correlation-id", corr) < 0)) {
    svc_msg_free(ev);
    svc_request_reply(req, SVC_STATUS_INTERNAL, NULL);
    return;
  }
  /* svc_publish() queues the event and returns: the handler waits neither
   * for the hub nor for any subscriber. (A real service would store the
   * order and the event in one transaction, the "outbox" pattern, so that
   * neither can exist without the other.) */
  if (publish("orders/placed", ev) < 0) {
    svc_request_reply(req, SVC_STATUS_UNAVAILABLE,
                      svc_msg_new_str("cannot publish orders/placed\n"));
    return;
  }
  norders++;
  say("OrderService", -1, "stored order %s (%u x %s), published orders/placed",
      id, o->qty, o->item);

  /* Answer at once: the order is accepted, not fulfilled; the customer
   * learns the rest by mail. */
  reply = svc_msg_new(NULL, 0);
  if (reply != NULL) {
    char body[64];

    snprintf(body, sizeof(body), "order %s accepted\n", id);
    svc_msg_set_body(reply, body, strlen(body));
    svc_msg_header_add(reply, "order-id", id);
    /* Over HTTP: 202 Accepted rather than 200 (other backends carry the
     * header along and nobody reads it). */
    svc_msg_header_add(reply, "Svc-Http-Code", "202");
  }
  svc_request_reply(req, SVC_STATUS_OK, reply);
}

/* ---- PaymentService: charging takes a while, so it runs on a timer. */

struct charge {
  uv_timer_t timer;
  svc_msg_t *order; /* The orders/placed event, kept with svc_msg_dup(). */
  struct charge *prev, *next;
};
static struct charge *charges; /* In flight: closed on shutdown. */
static int nopen;              /* Our uv handles and servers still open. */

static void handle_gone(void);

static void charge_closed(uv_handle_t *h) {
  struct charge *c = h->data;

  svc_msg_free(c->order);
  free(c);
  handle_gone();
}

static void charge_unlink(struct charge *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    charges = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
}

static void charge_done(uv_timer_t *t) {
  struct charge *c = t->data;
  const char *card = hdr(c->order, "card");
  size_t n = strlen(card);
  int ok = n < 4 || strcmp(card + n - 4, "0000") != 0; /* Test rule. */
  svc_msg_t *ev = copy_headers(c->order, "card");

  charge_unlink(c);
  say("PaymentService", -1, "card ...%s for order %s: %s",
      n >= 4 ? card + n - 4 : card, hdr(c->order, "order-id"),
      ok ? "charged" : "DECLINED");
  if (ev != NULL) {
    count(ok ? C_PAID : C_DECLINED);
    publish(ok ? "payments/processed" : "payments/failed", ev);
  }
  uv_close((uv_handle_t *)&c->timer, charge_closed);
}

static void payment_on_placed(const svc_msg_t *ev) {
  double lat = since_post(ev, LAT_PAYMENT);
  struct charge *c = calloc(1, sizeof(*c));

  count(C_CHARGES);
  if (c == NULL || (c->order = svc_msg_dup(ev)) == NULL) {
    free(c);
    fail("out of memory");
    return;
  }
  say("PaymentService", lat, "got orders/placed %s, charging the card",
      hdr(ev, "order-id"));
  uv_timer_init(svc_ctx_loop(ctx), &c->timer);
  c->timer.data = c;
  nopen++;
  c->next = charges;
  if (charges != NULL)
    charges->prev = c;
  charges = c;
  uv_timer_start(&c->timer, charge_done, PAYMENT_DELAY_MS, 0);
}

/* ---- InventoryService. */

static int stock[NCATALOG] = {10, 5, 20};

static void inventory_on_paid(const svc_msg_t *ev) {
  double lat = since_post(ev, LAT_INVENTORY);
  const char *item = hdr(ev, "item");
  int qty = atoi(hdr(ev, "qty"));
  char left[16];
  size_t i;
  svc_msg_t *out;

  count(C_STOCK);
  for (i = 0; i < NCATALOG && strcmp(item, catalog[i]) != 0; i++)
    ;
  if (i == NCATALOG)
    return; /* OrderService validated it; nothing to do. */
  stock[i] = stock[i] >= qty ? stock[i] - qty : 0;
  snprintf(left, sizeof(left), "%d", stock[i]);
  say("InventoryService", lat, "order %s: %d x %s reserved, %s left",
      hdr(ev, "order-id"), qty, item, left);
  if ((out = copy_headers(ev, NULL)) != NULL) {
    svc_msg_header_add(out, "stock-left", left);
    publish("inventory/updated", out);
  }
}

/* ---- NotificationService: it only prints the mail it would send. */

static void notify(const svc_msg_t *ev) {
  const char *topic = svc_msg_topic(ev);
  const char *id = hdr(ev, "order-id");
  double lat;

  count(C_MAILS);
  if (strcmp(topic, "orders/placed") == 0) {
    lat = since_post(ev, LAT_MAIL_PLACED);
    say("NotificationService", lat, "mail: \"We received order %s (%s x %s).\"",
        id, hdr(ev, "qty"), hdr(ev, "item"));
  } else if (strcmp(topic, "payments/processed") == 0) {
    lat = since_post(ev, LAT_MAIL_PAID);
    say("NotificationService", lat,
        "mail: \"Order %s is paid and ships soon.\"", id);
  } else {
    lat = since_post(ev, LAT_MAIL_PAID);
    say("NotificationService", lat,
        "mail: \"Payment for order %s was declined.\"", id);
  }
}

/* ---- The demo watches inventory/updated, the end of the chain. */

static void watch_shippable(const svc_msg_t *ev) {
  (void)ev;
  count(C_SHIPPABLE);
}

/* ---- Subscriptions: one table, one callback. */

static struct subscription {
  const char *pattern;
  void (*react)(const svc_msg_t *ev);
  int service; /* Whose it is; NSERVICES: the demo's own. */
  svc_sub_t *sub; /* NULL once its final callback ran. */
} subs[] = {
    {"orders/placed", payment_on_placed, S_PAYMENT, NULL},
    {"payments/processed", inventory_on_paid, S_INVENTORY, NULL},
    {"orders/placed", notify, S_NOTIFICATION, NULL},
    {"payments/+", notify, S_NOTIFICATION, NULL}, /* processed and failed. */
    {"inventory/updated", watch_shippable, NSERVICES, NULL},
};
#define NSUBS (sizeof(subs) / sizeof(subs[0]))
static unsigned nready, nsubscribed;

static void on_event(svc_sub_t *sub, int status, const svc_msg_t *ev,
                     void *arg) {
  struct subscription *s = arg;

  (void)sub;
  if (ev == NULL) { /* The final callback. */
    s->sub = NULL;
    if (!stopping)
      fail("subscription to %s ended: %s", s->pattern, svc_strerror(status));
    return;
  }
  if (!stopping)
    s->react(ev);
}

/* ---- The customer: places the demo orders through the API. */

static void on_accepted(svc_call_t *call, svc_status_t status,
                        const svc_msg_t *reply, void *arg) {
  struct demo_order *d = arg;
  const char *id = reply != NULL ? svc_msg_header_get(reply, "order-id") : NULL;

  (void)call;
  d->lat[LAT_ACCEPT] = ms_since(d->t_post);
  if (status != SVC_STATUS_OK || id == NULL) {
    if (!stopping)
      fail("POST orders (%s) answered %s", d->body, svc_status_name(status));
    return;
  }
  snprintf(d->id, sizeof(d->id), "%s", id);
  say("customer", -1, "order %s accepted: reply %s in %.3f ms", id,
      svc_status_name(status), d->lat[LAT_ACCEPT]);
  count(C_ACCEPTED);
}

static void place_orders(void) {
  svc_call_opts_t opts = {.method = "POST", .timeout_ms = 2000};
  char uri[512];
  size_t i;

  snprintf(uri, sizeof(uri), "%s/orders", api_ep);
  for (i = 0; i < NDEMO; i++) {
    svc_msg_t *req = svc_msg_new_str(demo[i].body);
    int rc;

    if (req == NULL ||
        svc_msg_header_add(req, "correlation-id", demo[i].corr) < 0) {
      svc_msg_free(req);
      fail("out of memory");
      return;
    }
    say("customer", -1, "POST orders %s", demo[i].body);
    demo[i].t_post = uv_hrtime();
    rc = svc_call(ctx, uri, req, &opts, on_accepted, &demo[i], NULL);
    if (rc < 0) {
      svc_msg_free(req);
      fail("svc_call %s: %s", uri, svc_strerror(rc));
      return;
    }
  }
}

static void all_ready(void);

/* Orders go out once every service listens: an event published before a
 * subscription is active would never reach that subscriber. */
static void on_ready(svc_sub_t *sub, void *arg) {
  (void)sub;
  (void)arg;
  if (++nready == nsubscribed)
    all_ready();
}

/* ---- Start, report, stop. */

static uv_timer_t watchdog;
static uv_signal_t sig_int, sig_term;
static int keep_running, have_signals, failed;

static void handle_closed(uv_handle_t *h) {
  (void)h;
  handle_gone();
}

static void server_closed(svc_server_t *srv, void *arg) {
  (void)srv;
  (void)arg;
  handle_gone();
}

/* The context goes last: our own handles live on its loop, and it must
 * outlive them. Closing it releases the loop and ends svc_ctx_run(). */
static void handle_gone(void) {
  if (--nopen == 0 && stopping)
    svc_ctx_close(ctx, NULL, NULL);
}

static void shutdown_all(void) {
  struct charge *c;
  size_t i;

  if (stopping)
    return;
  stopping = 1;
  /* A service of its own keeps its broker session: closing the context
   * disconnects without unsubscribing, so that the broker holds its events
   * while it is away. */
  for (i = 0; i < NSUBS && !(only >= 0 && bus == NULL); i++)
    if (subs[i].sub != NULL)
      svc_unsubscribe(subs[i].sub);
  for (c = charges; c != NULL; c = c->next) /* Payments never finished. */
    uv_close((uv_handle_t *)&c->timer, charge_closed);
  charges = NULL;
  uv_close((uv_handle_t *)&watchdog, handle_closed);
  if (have_signals) {
    uv_close((uv_handle_t *)&sig_int, handle_closed);
    uv_close((uv_handle_t *)&sig_term, handle_closed);
  }
  if (api != NULL)
    svc_server_close(api, server_closed, NULL);
  if (bus != NULL)
    svc_server_close(bus, server_closed, NULL);
}

static void fail(const char *fmt, ...) {
  va_list ap;

  if (stopping || failed)
    return;
  failed = 1;
  fprintf(stderr, "order_fulfillment: FAILED: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  shutdown_all();
}

static void print_latencies(void) {
  size_t i;
  int j;

  printf("\n%-23s %8s |%10s%10s%10s%10s\n", "latency after POST (ms)",
         "accepted", "payment", "1st mail", "inventory", "2nd mail");
  for (i = 0; i < NDEMO; i++) {
    printf("order %-4s %-12s %8.3f |", demo[i].id,
           demo[i].will_pay ? "" : "(declined)", demo[i].lat[LAT_ACCEPT]);
    for (j = LAT_PAYMENT; j < NLAT; j++)
      if (j == LAT_INVENTORY && !demo[i].will_pay)
        printf("%10s", "-");
      else
        printf("%10.3f", demo[i].lat[j]);
    putchar('\n');
  }
  printf("The customer waited only for \"accepted\"; payment, stock and "
         "mails followed as events.\n\n");
}

static void on_signal(uv_signal_t *sig, int signum) {
  (void)sig;
  printf("order_fulfillment: stopping (signal %d)\n", signum);
  shutdown_all();
}

static void start_signals(void) {
  uv_signal_init(svc_ctx_loop(ctx), &sig_int);
  uv_signal_init(svc_ctx_loop(ctx), &sig_term);
  have_signals = 1;
  nopen += 2;
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
}

/* Every subscription of this process is active. */
static void all_ready(void) {
  if (only < 0) {
    place_orders();
    return;
  }
  say(service_names[only], -1, "ready (%u subscriptions on %s)", nready,
      bus_ep);
}

static void demo_finished(void) {
  demo_over = 1;
  print_latencies();
  printf("order_fulfillment: %u orders, %u paid, %u payment failed, "
         "all events delivered\n",
         counts[C_ACCEPTED].got, counts[C_PAID].got, counts[C_DECLINED].got);
  if (!keep_running) {
    shutdown_all();
    return;
  }
  uv_timer_stop(&watchdog);
  start_signals();
  printf("OrderService keeps serving %s until SIGINT/SIGTERM; try:\n"
         "  svccomm call %s/orders -X POST -d 'item=book;qty=1;card=4242'\n",
         api_ep, api_ep);
  if (strncmp(api_ep, "http", 4) == 0)
    printf("  curl -d 'item=book;qty=1;card=4242' %s/orders\n", api_ep);
  if (strncmp(api_ep, "inproc:", 7) == 0)
    printf("(inproc:// is reachable only from inside this process: "
           "use --api tcp://127.0.0.1:7000 to take orders from outside)\n");
}

static void on_watchdog(uv_timer_t *t) {
  int i;

  (void)t;
  fprintf(stderr, "order_fulfillment: timed out after %d ms; missing:\n",
          WATCHDOG_MS);
  for (i = 0; i < NCOUNT; i++)
    if (counts[i].got < counts[i].want)
      fprintf(stderr, "  %s: %u of %u\n", counts[i].what, counts[i].got,
              counts[i].want);
  fail("not every expected event was seen");
}

/* A broker is not served: the services connect to it. */
static int is_broker(const char *uri) {
  return strncmp(uri, "mqtt://", 7) == 0 || strncmp(uri, "mqtts://", 8) == 0;
}

/* serve() serves uri, explaining the backends that are not built in. */
static int serve(const char *uri, const char *what, svc_server_t **out) {
  int rc = svc_serve(ctx, uri, NULL, out);

  if (rc == SVC_ESCHEME)
    fprintf(stderr,
            "order_fulfillment: %s %s: %s (%s): that backend is not built "
            "into this libsvccomm\n",
            what, uri, svc_strerror(rc), svc_err_name(rc));
  else if (rc < 0)
    fprintf(stderr, "order_fulfillment: %s %s: %s (%s)%s\n", what, uri,
            svc_strerror(rc), svc_err_name(rc),
            rc == SVC_EEXIST ? ": --api and --bus need different endpoints"
                             : "");
  else
    nopen++;
  return rc;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: order_fulfillment [--api URI] [--bus URI] [--keep-running]\n"
          "                         [--only SERVICE]\n"
          "  --api URI       where OrderService serves POST orders "
          "(default inproc://shop)\n"
          "  --bus URI       the event hub (default inproc://bus), served "
          "here, or an\n"
          "                  MQTT broker (mqtt://host:port) the services "
          "connect to\n"
          "  --keep-running  after the demo, keep serving until "
          "SIGINT/SIGTERM\n"
          "  --only SERVICE  run one service (order, payment, inventory, "
          "notification)\n"
          "                  until SIGINT/SIGTERM, with a persistent broker "
          "session\n"
          "examples: order_fulfillment --api http://127.0.0.1:0 "
          "--bus tcp://127.0.0.1:0\n"
          "          order_fulfillment --bus mqtt://127.0.0.1:1883 "
          "--only payment\n");
}

int main(int argc, char **argv) {
  const char *api_uri = "inproc://shop", *bus_uri = "inproc://bus";
  svc_sub_opts_t sub_opts = {.qos = 1, .on_ready = on_ready};
  char uri[512];
  size_t i;
  int a, rc;

  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--api") == 0 && a + 1 < argc)
      api_uri = argv[++a];
    else if (strcmp(argv[a], "--bus") == 0 && a + 1 < argc)
      bus_uri = argv[++a];
    else if (strcmp(argv[a], "--keep-running") == 0)
      keep_running = 1;
    else if (strcmp(argv[a], "--only") == 0 && a + 1 < argc) {
      for (only = 0; only < NSERVICES; only++)
        if (strcmp(argv[a + 1], service_names[only]) == 0)
          break;
      if (only == NSERVICES) {
        fprintf(stderr, "order_fulfillment: --only: unknown service '%s'\n",
                argv[a + 1]);
        usage(stderr);
        return 2;
      }
      a++;
    }
    else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (only >= 0 && !is_broker(bus_uri)) {
    /* Services in separate processes meet through a broker; a hub served
     * by one of them would vanish with it. */
    fprintf(stderr, "order_fulfillment: --only needs --bus mqtt://...\n");
    return 2;
  }
  if (only == S_ORDER && strncmp(api_uri, "inproc:", 7) == 0) {
    fprintf(stderr, "order_fulfillment: --only order needs an --api that "
                    "other processes reach (http://127.0.0.1:8080)\n");
    return 2;
  }
  if (is_broker(bus_uri) && strchr(bus_uri, '?') != NULL) {
    fprintf(stderr, "order_fulfillment: --bus: give the broker without "
                    "options; the demo sets its own\n");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0); /* Scripts read the timeline live. */
  t0 = uv_hrtime();
  if ((rc = svc_ctx_init(NULL, NULL, &ctx)) < 0) {
    fprintf(stderr, "order_fulfillment: svc_ctx_init: %s\n", svc_strerror(rc));
    return 1;
  }
  /* A served endpoint answers calls on its routes and is also an event hub:
   * on tcp:// every publisher and subscriber below connects to it over a
   * socket, exactly as separate processes would. */
  rc = 0;
  if (RUNS(S_ORDER) && (rc = serve(api_uri, "API", &api)) == 0 &&
      (rc = svc_server_route(api, "POST", "orders", order_post, NULL)) < 0)
    fprintf(stderr, "order_fulfillment: route: %s\n", svc_strerror(rc));
  if (rc == 0 && !is_broker(bus_uri))
    rc = serve(bus_uri, "bus", &bus);
  if (rc < 0) {
    svc_ctx_close(ctx, NULL, NULL); /* Stops whatever was served. */
    svc_ctx_run(ctx, UV_RUN_DEFAULT);
    return 1;
  }
  if (api != NULL) {
    snprintf(api_ep, sizeof(api_ep), "%s", svc_server_endpoint(api));
    say("OrderService", -1, "serving POST %s/orders", api_ep);
  }
  if (bus != NULL) {
    snprintf(bus_ep, sizeof(bus_ep), "%s", svc_server_endpoint(bus));
    say("bus", -1, "event hub on %s", bus_ep);
  } else {
    size_t n = strlen(bus_uri);

    while (n > 0 && bus_uri[n - 1] == '/')
      n--;
    snprintf(bus_ep, sizeof(bus_ep), "%.*s", (int)n, bus_uri);
    /* QoS 1 both ways. A service of its own gets a fixed client id and a
     * session the broker keeps for an hour: while it is down, the broker
     * holds its events, and it gets them when it comes back. */
    if (only >= 0)
      snprintf(bus_query, sizeof(bus_query),
               "?qos=1&client_id=order-fulfillment-%s&clean_start=0"
               "&session_expiry=3600",
               service_names[only]);
    else
      snprintf(bus_query, sizeof(bus_query), "?qos=1");
    say("bus", -1, "MQTT broker %s", bus_ep);
  }

  uv_timer_init(svc_ctx_loop(ctx), &watchdog); /* Never hang. */
  nopen++;
  if (only < 0)
    uv_timer_start(&watchdog, on_watchdog, WATCHDOG_MS, 0);
  else
    start_signals(); /* A service runs until it is stopped. */
  for (i = 0; i < NSUBS; i++)
    if (only < 0 || subs[i].service == only)
      nsubscribed++;
  for (i = 0; i < NSUBS && !failed; i++) {
    if (only >= 0 && subs[i].service != only)
      continue;
    snprintf(uri, sizeof(uri), "%s/%s%s", bus_ep, subs[i].pattern,
             bus_query);
    rc = svc_subscribe(ctx, uri, &sub_opts, on_event, &subs[i], &subs[i].sub);
    if (rc < 0)
      fail("svc_subscribe %s: %s", uri, svc_strerror(rc));
  }
  if (nsubscribed == 0)
    all_ready(); /* OrderService alone listens to nothing. */

  svc_ctx_run(ctx, UV_RUN_DEFAULT);
  if (only >= 0)
    return failed ? 1 : 0;
  return failed || !demo_over ? 1 : 0;
}
