#!/usr/bin/env bash
# Drives order_fulfillment through a real mosquitto (ctest
# example_order_fulfillment_mqtt), started here on a free 127.0.0.1 port
# with a generated configuration and stopped by its pid:
# 1. the whole demo in one process, its events going through the broker;
# 2. one process per service, orders taken over HTTP: PaymentService is
#    stopped while orders arrive; the orders are still accepted, their
#    events wait in the broker (PaymentService's persistent session), and
#    PaymentService charges them when it comes back.
# Usage: order_fulfillment_mqtt_test.sh path/to/order_fulfillment
#        path/to/svccomm
set -u
OF=$1
SVCCOMM=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/svc-of-mqtt.XXXXXX")
chmod 755 "$dir"
PIDS=""

cleanup() {
  for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

fail() {
  echo "FAIL: $*"
  for f in "$dir"/*.out "$dir/mosquitto.log"; do
    [ -f "$f" ] || continue
    echo "--- $f:"
    tail -n 30 "$f"
  done
  exit 1
}

# wait_for FILE PATTERN: up to 10 s for PATTERN to appear in FILE.
wait_for() {
  i=0
  while ! grep -q -e "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 200 ] || return 1
    sleep 0.05
  done
}

# stop PID: TERM, then up to 5 s for it to exit; its exit status in $rc.
stop() {
  kill -TERM "$1" 2>/dev/null
  i=0
  while kill -0 "$1" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  kill -KILL "$1" 2>/dev/null
  wait "$1"
  rc=$?
  PIDS=$(echo " $PIDS " | sed "s/ $1 / /")
}

# ---- The broker: a port below the ephemeral range that nothing uses.
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
[ -x "$MOSQUITTO" ] || fail "mosquitto is not installed"
port=0
for try in 1 2 3 4 5; do
  port=$((20000 + ($$ * 7 + try * 1009) % 12000))
  {
    echo "listener $port 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    echo "log_dest file $dir/mosquitto.log"
    [ "$(id -u)" = 0 ] && echo "user root"
  } >"$dir/mosquitto.conf"
  "$MOSQUITTO" -c "$dir/mosquitto.conf" >/dev/null 2>&1 &
  bpid=$!
  PIDS="$PIDS $bpid"
  i=0
  up=0
  while [ $i -lt 100 ] && kill -0 "$bpid" 2>/dev/null; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
    # sh without /dev/tcp: the log says when it listens.
    grep -q "running" "$dir/mosquitto.log" 2>/dev/null && { up=1; break; }
    sleep 0.05
    i=$((i + 1))
  done
  [ $up = 1 ] && break
  stop "$bpid"
done
[ $up = 1 ] || fail "mosquitto did not start"
BUS=mqtt://127.0.0.1:$port
echo "mosquitto pid $bpid on $BUS"

# ---- 1. The whole demo, one process, events through the broker.
timeout 20 "$OF" --bus "$BUS" >"$dir/demo.out" 2>&1 || fail "demo over $BUS exited $?"
grep -q "order_fulfillment: 3 orders, 2 paid, 1 payment failed, all events delivered" \
  "$dir/demo.out" || fail "demo over $BUS: no verdict"
echo "demo over $BUS: PASS"

# ---- 2. One process per service.
start_service() { # NAME [ARGS...]
  name=$1
  shift
  timeout --foreground 60 "$OF" --bus "$BUS" --only "$name" "$@" \
    >"$dir/$name.out" 2>&1 &
  eval "${name}_pid=$!"
  PIDS="$PIDS $!"
  wait_for "$dir/$name.out" " ready " || fail "$name did not get ready"
}
start_service payment
start_service inventory
start_service notification
start_service order --api http://127.0.0.1:0
api=$(sed -n 's/.*serving POST \(http:[^ ]*\)\/orders.*/\1/p' "$dir/order.out")
[ -n "$api" ] || fail "OrderService printed no endpoint"
echo "services up; API $api"

post() { # CARD: one order; the reply names it
  timeout 10 "$SVCCOMM" call "$api/orders" -X POST \
    -d "item=book;qty=1;card=$1" >"$dir/post.out" 2>&1 ||
    fail "POST orders with card $1: exit $? $(cat "$dir/post.out")"
  sed -n 's/^order \([0-9]*\) accepted$/\1/p' "$dir/post.out"
}

id1=$(post 4242424242424242)
wait_for "$dir/payment.out" "for order $id1: charged" || fail "order $id1 not charged"
wait_for "$dir/inventory.out" "order $id1: 1 x book reserved" || fail "order $id1 not reserved"
wait_for "$dir/notification.out" "Order $id1 is paid" || fail "no mail for order $id1"
echo "order $id1: charged, reserved, mailed"

# PaymentService goes away; orders keep being accepted.
stop "$payment_pid"
[ "$rc" = 0 ] || fail "PaymentService exited $rc on SIGTERM"
id2=$(post 5555555555554444)
id3=$(post 4000000000000000)
[ -n "$id2" ] && [ -n "$id3" ] || fail "orders not accepted while PaymentService is down"
wait_for "$dir/notification.out" "We received order $id3" ||
  fail "NotificationService did not see order $id3"
sleep 0.3
if grep -q "order $id2" "$dir/payment.out"; then fail "a stopped service charged"; fi
echo "orders $id2 and $id3 accepted while PaymentService is down"

# It comes back: its session kept the events in the broker.
mv "$dir/payment.out" "$dir/payment-1.out"
start_service payment
wait_for "$dir/payment.out" "for order $id2: charged" ||
  fail "order $id2 not charged after PaymentService came back"
wait_for "$dir/payment.out" "for order $id3: DECLINED" ||
  fail "order $id3 not handled after PaymentService came back"
wait_for "$dir/notification.out" "Payment for order $id3 was declined" ||
  fail "no decline mail for order $id3"
wait_for "$dir/inventory.out" "order $id2: 1 x book reserved" ||
  fail "order $id2 not reserved"
echo "PaymentService back: orders $id2 and $id3 processed from the broker"

for name in order notification inventory payment; do
  eval "pid=\$${name}_pid"
  stop "$pid"
  [ "$rc" = 0 ] || fail "$name exited $rc on SIGTERM"
done
stop "$bpid"
echo "order_fulfillment mqtt test: PASS"
