/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Trace context and deadlines over mqtt:// (MQTT v5 user properties),
 * through a mosquitto started for each test: the checks of
 * tests/support/propagation.h, as for the other backends. */
#include "mosquitto.h"

#include "propagation.h"

static struct broker b;

static void setup(void) {
  cr_assert_eq(broker_start(&b), 0, "mosquitto did not start");
}

static void teardown(void) {
  broker_cleanup(&b);
}

TestSuite(propagation_mqtt, .init = setup, .fini = teardown, .timeout = 30);

static svc_server_t *serve_mqtt(struct harness *h) {
  svc_server_t *srv;

  cr_assert_eq(svc_serve(h->ctx, broker_uri(&b, "svc/prop"), NULL, &srv), 0);
  prop_routes(srv);
  return srv;
}

Test(propagation_mqtt, trace_reaches_the_handler_and_comes_back) {
  struct harness h;

  harness_start(&h);
  prop_check_trace(&h, serve_mqtt(&h));
  harness_finish(&h);
}

Test(propagation_mqtt, deadline_arrives_reduced_by_the_time_spent) {
  struct harness h;

  harness_start(&h);
  prop_check_deadline(&h, serve_mqtt(&h));
  harness_finish(&h);
}

Test(propagation_mqtt, events_carry_their_trace) {
  struct harness h;

  harness_start(&h);
  prop_check_event_trace(&h, broker_uri(&b, "prop-ev"));
  harness_finish(&h);
}
