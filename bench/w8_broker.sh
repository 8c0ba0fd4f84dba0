#!/bin/bash
# W8 against one mosquitto whose configuration we choose: the paho reference
# (shared/bench/peers' mqtt_paho, MQTT 3.1.1) and svc_bench over MQTT v5 and
# 3.1.1, QoS 0 and 1, one after the other in each round, all through the
# same broker.
#
#   bench/w8_broker.sh [--tuned] [ROUNDS]       JSON lines (WORKLOADS.md)
#   bench/w8_broker.sh --tuned 3 | ../shared/bench/compare.py
#
# bench/run.sh measures W8 against a broker left at its defaults, as most
# users run it. --tuned sets what a deployment tuned for throughput and
# latency would:
#   set_tcp_nodelay true       mosquitto leaves Nagle's algorithm on;
#   max_inflight_messages 1000 default 20, also the Receive Maximum that
#                              MQTT v5 clients are told;
#   max_queued_messages 100000 default 1000: a subscriber that falls behind
#                              loses the QoS 1 messages beyond it.
# Without --tuned the broker has the same configuration as in bench/run.sh.
#
# Like bench/run.sh: the broker and the receiving side (subscriber, echo)
# on CPU 0, the sending side (publisher, pinger) on CPU 1 (PIN=0: no
# pinning); every process runs under timeout(1) and is stopped by its pid.
# Environment: PEERS (default ../shared/bench/peers), BUILD_DIR (default
# build-bench, built by bench/run.sh).

set -u -o pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$REPO/../shared/bench/peers}
BUILD_DIR=${BUILD_DIR:-$REPO/build-bench}
BENCH=$BUILD_DIR/bench/svc_bench
TUNED=0
ROUNDS=1
for a in "$@"; do
    case $a in
        --tuned) TUNED=1 ;;
        [1-9]*) ROUNDS=$a ;;
        *) echo "usage: $0 [--tuned] [ROUNDS]" >&2; exit 2 ;;
    esac
done
if [ "${PIN:-1}" = 1 ]; then
    PIN_RECV="taskset -c 0" PIN_SEND="taskset -c 1"
else
    PIN_RECV="" PIN_SEND=""
fi

log() { echo "[w8_broker.sh] $*" >&2; }

[ -x "$BENCH" ] || { log "no $BENCH: run bench/run.sh W8 first"; exit 1; }
MOSQ=$(PATH=$PATH:/usr/sbin:/sbin command -v mosquitto) ||
    { log "needs mosquitto (Debian package mosquitto)"; exit 1; }
PAHO=$PEERS/build/mqtt_paho
if [ ! -x "$PAHO" ]; then
    make -s -C "$PEERS" build/mqtt_paho >&2 || { log "cannot build $PAHO"; exit 1; }
fi

TMP=$(mktemp -d)
PIDS=""
stop_pid() {
    kill -INT "$1" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    for p in $PIDS; do stop_pid "$p"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until file $1 says READY, while pid $2 lives (10 s at most).
wait_ready() {
    for _ in $(seq 100); do
        grep -q READY "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

chmod 755 "$TMP"
PORT=$((20000 + RANDOM % 12000))
# shellcheck source=bench/mosquitto_conf.sh
. "$REPO/bench/mosquitto_conf.sh"
{
    mosquitto_conf "$PORT"
    if [ "$TUNED" = 1 ]; then
        echo "set_tcp_nodelay true"
        echo "max_inflight_messages 1000"
        echo "max_queued_messages 100000"
    fi
} >"$TMP/mosquitto.conf"
# shellcheck disable=SC2086
timeout -k 5 3600 $PIN_RECV "$MOSQ" -c "$TMP/mosquitto.conf" 2>"$TMP/mosquitto.log" &
MOSQ_PID=$!
PIDS="$MOSQ_PID "
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null ||
    { log "mosquitto did not start"; cat "$TMP/mosquitto.log" >&2; exit 1; }
log "mosquitto on $PORT ($([ "$TUNED" = 1 ] && echo tuned || echo defaults)), $ROUNDS round(s)"

FAILED=0
# paho: subscriber and publisher (throughput), then echo and pinger (p50).
run_paho() {
    local qos=$1 pid
    # shellcheck disable=SC2086
    timeout -k 5 300 $PIN_RECV "$PAHO" sub "$PORT" "$qos" >"$TMP/sub.out" 2>&2 &
    pid=$!
    if wait_ready "$TMP/sub.out" "$pid"; then
        # shellcheck disable=SC2086
        timeout -k 5 300 $PIN_SEND "$PAHO" pub "$PORT" "$qos" >/dev/null || FAILED=1
        wait "$pid" || FAILED=1
        grep '^{' "$TMP/sub.out"
    else
        FAILED=1
    fi
    stop_pid "$pid"
    # shellcheck disable=SC2086
    timeout -k 5 300 $PIN_RECV "$PAHO" echo "$PORT" "$qos" >"$TMP/echo.out" 2>&2 &
    pid=$!
    if wait_ready "$TMP/echo.out" "$pid"; then
        # shellcheck disable=SC2086
        timeout -k 5 300 $PIN_SEND "$PAHO" ping "$PORT" "$qos" | grep '^{' || FAILED=1
    else
        FAILED=1
    fi
    stop_pid "$pid"
}

# svc_bench: its server subscribes and echoes, its client publishes and
# pings; the server reports the throughput when stopped.
run_svc() {
    local qos=$1 uri=$2 pid
    # shellcheck disable=SC2086
    timeout -k 5 600 $PIN_RECV "$BENCH" server W8 "$uri" --qos "$qos" >"$TMP/srv.out" &
    pid=$!
    if wait_ready "$TMP/srv.out" "$pid"; then
        # shellcheck disable=SC2086
        timeout -k 5 600 $PIN_SEND "$BENCH" client W8 "$uri" --qos "$qos" | grep '^{' || FAILED=1
    else
        FAILED=1
    fi
    stop_pid "$pid"
    grep '^{' "$TMP/srv.out"
}

for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for qos in 0 1; do
        run_paho "$qos"
        run_svc "$qos" "mqtt://127.0.0.1:$PORT"
        run_svc "$qos" "mqtt://127.0.0.1:$PORT?version=3"
    done
done
[ "$FAILED" = 0 ] || { log "FAILED: a program failed or printed no result"; exit 1; }
