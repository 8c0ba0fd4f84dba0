# The mqtt:// backend's tests (included when the backend is built). Each
# test starts its own mosquitto (tests/support/mosquitto.h).
svc_test(mqtt_verbs)
svc_test(mqtt_faults)
svc_test(mqtt_restart)
svc_test(mqtt_options)
svc_test(dedup)
svc_test(propagation_mqtt)
svc_test(fault_mqtt)
# CloudEvents over every backend: needs http:// too.
if(SVC_HAVE_HTTP)
  svc_test(cloudevents_net)
endif()
