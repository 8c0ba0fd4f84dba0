#!/usr/bin/env bash
# bench/run.sh - build svc_bench and measure libsvccomm beside the reference
# peers on the workloads of WORKLOADS.md, in one invocation, so that what we
# quote is a ratio taken in one run.
#
#   bench/run.sh                   everything: W1..W8, the peers, then
#                                  svccomm on every backend (inproc, tcp,
#                                  unix, http, mqtt), each on the workloads
#                                  that apply to it (W5, W6: http only; W8:
#                                  mqtt only, through a mosquitto started
#                                  here); about ten minutes
#   bench/run.sh W1 W3             a subset (run in W1..W8 order); "all" is
#                                  the same as no workload named
#   bench/run.sh --compare [W..]   markdown tables from the peers' compare.py
#                                  instead of JSON lines; the lines are kept
#                                  in bench/results/, with a PNG chart of W1
#                                  and W3 beside them (bench/chart.py, when
#                                  gnuplot is installed)
#   --no-peers                     measure svccomm only
#   --no-build                     use the svc_bench already built
#
# stdout: JSON lines in the WORKLOADS.md format and nothing else (with
#         --compare: the tables).
# stderr: progress, build output, anything the programs print besides results.
#
# Environment:
#   PEERS=DIR      the reference peers (default: ../shared/bench/peers from the
#                  repository root). Missing: said on stderr, ours run alone.
#   URI_SCHEMES    what svc_bench serves, space-separated (default "inproc tcp
#                  unix http mqtt"): a
#                  scheme (tcp -> tcp://127.0.0.1:0, http -> http://127.0.0.1:0,
#                  mqtt -> a mosquitto started here, W8 only,
#                  unix -> a socket in a
#                  temporary directory, inproc -> inproc://bench in local
#                  mode) or a full URI to serve.
#   REPEAT=N       runs the whole selection N times, peers and ours in each
#                  round (compare.py then reports medians).
#   MQTT_BROKER    "default" (default): W8's broker is left at mosquitto's
#                  defaults, as most users run it; "tuned": it gets
#                  set_tcp_nodelay true, max_inflight_messages 1000 and
#                  max_queued_messages 100000, and the paho reference runs
#                  through it too (here, not in peers/run.sh).
#   PIN=1          (default) serving side on CPU 0, measuring client on CPU 1,
#                  as peers/run.sh does; PIN=0 lets the scheduler decide.
#   BUILD_DIR      build directory (default: build-bench in the repository).
#   CMAKE_ARGS     extra arguments for the configure step.
#   BUILD_LOCK     flock(1) file every build step takes, so that builds on a
#                  shared machine do not overlap (default /tmp/svc-build.lock;
#                  empty: no lock).
#
# Every process it starts is wrapped in timeout(1) and stopped by pid when it
# finishes, fails or is interrupted. Exits non-zero if any step failed.

set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd) || exit 1
REPO=$(cd "$HERE/.." && pwd) || exit 1

log() { printf '[bench/run.sh %3ds] %s\n' "$SECONDS" "$*" >&2; }
usage() {
    echo "usage: $0 [--compare] [--no-peers] [--no-build] [all | W1 W2 W3 W4 W5 W6 W7 W8 ...]" >&2
    exit 2
}

# ---- arguments -----------------------------------------------------------------

WANT=" " COMPARE=0 USE_PEERS=1 BUILD=1
for a in "$@"; do
    case "$a" in
        --compare) COMPARE=1 ;;
        --no-peers) USE_PEERS=0 ;;
        --no-build) BUILD=0 ;;
        all) WANT=" W1 W2 W3 W4 W5 W6 W7 W8 " ;;
        W[1-8]) [[ $WANT == *" $a "* ]] || WANT="$WANT$a " ;;
        *) usage ;;
    esac
done
[ "$WANT" = " " ] && WANT=" W1 W2 W3 W4 W5 W6 W7 W8 "
WORKLOADS=""
for w in W1 W2 W3 W4 W5 W6 W7 W8; do [[ $WANT == *" $w "* ]] && WORKLOADS="$WORKLOADS $w"; done
WORKLOADS=${WORKLOADS# }

REPEAT=${REPEAT:-1}
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || { echo "$0: REPEAT must be a positive number" >&2; exit 2; }
PIN=${PIN:-1}
URI_SCHEMES=${URI_SCHEMES:-inproc tcp unix http mqtt}
MQTT_BROKER=${MQTT_BROKER:-default}
case $MQTT_BROKER in
    default|tuned) ;;
    *) echo "run.sh: MQTT_BROKER must be default or tuned" >&2; exit 2 ;;
esac
BUILD_DIR=${BUILD_DIR:-$REPO/build-bench}
BUILD_LOCK=${BUILD_LOCK-/tmp/svc-build.lock}
PEERS=${PEERS:-$REPO/../shared/bench/peers}
BENCH=$BUILD_DIR/bench/svc_bench

# With --compare the JSON lines go to a file and compare.py turns them into
# tables at the end; everything below writes results to fd 3.
if [ "$COMPARE" = 1 ]; then
    COMPARE_PY=$PEERS/../compare.py
    [ -f "$COMPARE_PY" ] || { echo "$0: --compare needs $COMPARE_PY" >&2; exit 1; }
    command -v python3 >/dev/null 2>&1 || { echo "$0: --compare needs python3" >&2; exit 1; }
    mkdir -p "$HERE/results" || exit 1
    RESULTS=$HERE/results/run-$(date +%Y%m%d-%H%M%S).jsonl
    exec 3>"$RESULTS" || exit 1
else
    exec 3>&1
fi

# ---- build ---------------------------------------------------------------------

locked() {
    if [ -n "$BUILD_LOCK" ] && command -v flock >/dev/null 2>&1; then
        flock "$BUILD_LOCK" "$@"
    else
        "$@"
    fi
}

if [ "$BUILD" = 1 ]; then
    log "building svc_bench (Release) in $BUILD_DIR"
    # shellcheck disable=SC2086
    if ! locked cmake -S "$REPO" -B "$BUILD_DIR" -DSVC_BUILD_BENCH=ON \
            -DCMAKE_BUILD_TYPE=Release -DSVC_BUILD_TESTS=OFF \
            -DSVC_BUILD_EXAMPLES=OFF ${CMAKE_ARGS:-} >&2 ||
        ! locked cmake --build "$BUILD_DIR" --target svc_bench -j "$(nproc)" >&2; then
        log "build failed"
        exit 1
    fi
fi
[ -x "$BENCH" ] || { log "no $BENCH (build it, or drop --no-build)"; exit 1; }

if [ "$USE_PEERS" = 1 ] && [ ! -x "$PEERS/run.sh" ]; then
    echo "bench/run.sh: no reference peers at $PEERS (set PEERS=DIR): measuring svccomm only" >&2
    USE_PEERS=0
fi
if [ "$USE_PEERS" = 1 ]; then
    # peers/run.sh builds its programs with make; doing it here first puts
    # that compile under the build lock too (it then finds them up to date).
    # A missing dependency is left for peers/run.sh to report.
    PEER_PROGS="build/raw_libuv"
    [[ $WANT == *" W"[1234]" "* ]] && PEER_PROGS="$PEER_PROGS build/zmq_peer build/nng_peer"
    # shellcheck disable=SC2086
    locked make -s -C "$PEERS" $PEER_PROGS >&2 2>/dev/null || true
fi

# ---- processes -------------------------------------------------------------------

if [ "$PIN" = 1 ] && [ "$(nproc)" -lt 2 ]; then log "one CPU only, not pinning"; PIN=0; fi
if [ "$PIN" = 1 ] && ! command -v taskset >/dev/null 2>&1; then log "no taskset, not pinning"; PIN=0; fi
export PIN     # peers/run.sh follows the same placement
PIN_SERVER="" PIN_CLIENT=""
if [ "$PIN" = 1 ]; then PIN_SERVER="taskset -c 0"; PIN_CLIENT="taskset -c 1"; fi
CLIENT_LIMIT=120   # seconds a measuring client may run
SERVER_LIMIT=400   # seconds a server may live, should this script die
PEERS_LIMIT=1800   # seconds one peers/run.sh round may take

FAILURES=0
TMP=$(mktemp -d /tmp/svc-bench.XXXXXX) || exit 1
PIDS=" "

alive() {          # a live process, not a zombie waiting to be reaped
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) && [ -n "$st" ] && [ "$st" != Z ]
}

# stop_pid PID: TERM, KILL after 8 s (svc_bench gives its close 5 s), reap.
# Returns the process's exit status.
stop_pid() {
    local pid=$1 _ rc
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 80); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && { log "pid $pid ignored SIGTERM, killing it"; kill -KILL "$pid" 2>/dev/null; }
    fi
    wait "$pid" 2>/dev/null; rc=$?
    PIDS=${PIDS/ $pid / }
    return "$rc"
}

cleanup() {
    local p
    for p in $PIDS; do stop_pid "$p"; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# results FILE: JSON lines to the results, anything else to stderr.
results() {
    grep '^{' "$1" >&3
    grep -v '^{' "$1" >&2
    return 0
}

# measure LIMIT CMD...: runs a measuring process in the foreground (but
# killable by pid from the trap); its JSON lines go to the results.
measure() {
    local limit=$1 out=$TMP/measure.out pid rc
    shift
    : >"$out"
    timeout -k 5 "$limit" "$@" >"$out" &
    pid=$!
    PIDS="$PIDS$pid "
    wait "$pid"; rc=$?
    PIDS=${PIDS/ $pid / }
    results "$out"
    if [ "$rc" -ne 0 ]; then log "FAILED (exit $rc): $*"; FAILURES=$((FAILURES + 1)); fi
    return "$rc"
}

# wait_ready FILE PID: waits up to 10 s for "READY <endpoint>"; sets READY_ARG.
wait_ready() {
    local line _
    for _ in $(seq 100); do
        if line=$(grep -m1 '^READY ' "$1" 2>/dev/null); then READY_ARG=${line#READY }; return 0; fi
        alive "$2" || break
        sleep 0.1
    done
    return 1
}

# ---- svccomm ---------------------------------------------------------------------

# serve_uri SCHEME-OR-URI W ROUND: the URI svc_bench serves.
serve_uri() {
    case "$1" in
        *://*) echo "$1" ;;
        tcp) echo "tcp://127.0.0.1:0" ;;
        http) echo "http://127.0.0.1:0" ;;
        mqtt) echo "mqtt://" ;;   # a broker run.sh starts (W8)
        unix) echo "unix://$TMP/svc-$2-$3.sock" ;;
        inproc) echo "inproc://bench" ;;
        *) return 1 ;;
    esac
}

# run_svccomm W URI: "svc_bench server" in the background and "svc_bench
# client" against the endpoint it reports; inproc:// cannot cross processes,
# so it runs in local mode (one process, pinned like a client).
run_svccomm() {
    local w=$1 uri=$2 pid rc out
    if [[ $w == W[56] && $uri != http://* ]]; then
        log "$w: HTTP only, skipped for $uri"
        return
    fi
    local is_w8=0 is_mqtt=0
    [ "$w" = W8 ] && is_w8=1
    [[ $uri == mqtt://* ]] && is_mqtt=1
    if [ "$is_w8" != "$is_mqtt" ]; then
        log "$w: skipped for $uri (W8 is MQTT's, and MQTT runs only W8)"
        return
    fi
    if [ "$w" = W8 ]; then
        # Through a mosquitto configured as peers/run.sh configures it, at
        # QoS 0 and QoS 1 (the system names say which).
        # Two processes, pinned as the peer's are: the subscriber and echo
        # beside the broker, the publisher and pinger on the client's CPU.
        # MQTT v5 (our default), then 3.1.1, the protocol the paho peer
        # speaks (svccomm-mqtt311@qosN).
        start_mosquitto || return
        local q v broker
        for v in "" "?version=3"; do
        broker="mqtt://127.0.0.1:$MOSQ_PORT$v"
        for q in 0 1; do
            log "W8: svccomm against mosquitto, QoS $q${v:+, MQTT 3.1.1}"
            out=$TMP/server-W8-$q.out
            : >"$out"
            # shellcheck disable=SC2086
            timeout --foreground -k 5 700 $PIN_SERVER "$BENCH" server W8 "$broker" --qos "$q" >"$out" &
            pid=$!
            PIDS="$PIDS$pid "
            if ! wait_ready "$out" "$pid"; then
                stop_pid "$pid"
                grep -v '^READY ' "$out" >&2
                log "FAILED: svc_bench server W8 did not subscribe"
                FAILURES=$((FAILURES + 1))
                continue
            fi
            # shellcheck disable=SC2086
            # 1,000,000 QoS 1 messages take minutes through paho.
            measure 600 $PIN_CLIENT "$BENCH" client W8 "$broker" --qos "$q"
            stop_pid "$pid"; rc=$?
            # The subscriber side's figures (msgs_per_s, lost) join the
            # pinger's in the results.
            grep -v '^READY ' "$out" >"$TMP/server-W8.json"
            results "$TMP/server-W8.json"
            if [ "$rc" -ne 0 ]; then
                log "FAILED: svc_bench server W8 exited $rc when stopped"
                FAILURES=$((FAILURES + 1))
            fi
        done
        done
        return
    fi
    if [ "$w" = W6 ]; then
        # Our client against the same nginx configuration the peers' libcurl
        # run uses.
        start_nginx || return
        log "W6: svccomm client against nginx"
        # shellcheck disable=SC2086
        measure "$CLIENT_LIMIT" $PIN_CLIENT "$BENCH" client W6 "http://127.0.0.1:$NGINX_PORT"
        return
    fi
    if [[ $uri == inproc://* ]]; then
        log "$w: svccomm local $uri"
        # shellcheck disable=SC2086
        measure "$CLIENT_LIMIT" $PIN_CLIENT "$BENCH" local "$w" "$uri"
        return
    fi
    log "$w: svccomm $uri"
    out=$TMP/server-$w.out
    : >"$out"
    # --foreground: the TERM of stop_pid reaches the server once; without
    # it timeout also signals its process group, and a second TERM can land
    # after the server dropped its handler while closing.
    # shellcheck disable=SC2086
    timeout --foreground -k 5 "$SERVER_LIMIT" $PIN_SERVER "$BENCH" server "$w" "$uri" >"$out" &
    pid=$!
    PIDS="$PIDS$pid "
    if ! wait_ready "$out" "$pid"; then
        stop_pid "$pid"; rc=$?
        grep -v '^READY ' "$out" >&2
        log "FAILED: svc_bench server $w $uri did not start (exit $rc)"
        FAILURES=$((FAILURES + 1))
        return
    fi
    if [ "$w" = W5 ]; then
        # wrk is the client, with the peers' report script: the command
        # peers/run.sh points at nginx.
        # shellcheck disable=SC2086
        measure "$CLIENT_LIMIT" env BENCH_SYSTEM=svccomm-http $PIN_CLIENT \
            wrk -t1 -c64 -d5s -s "$PEERS/w5_report.lua" "$READY_ARG/hello"
    else
        # shellcheck disable=SC2086
        measure "$CLIENT_LIMIT" $PIN_CLIENT "$BENCH" client "$w" "$READY_ARG"
    fi
    # A server stopped by SIGTERM closes its context and exits 0; anything
    # else (a hang in close, a crash) is a failure worth seeing.
    stop_pid "$pid"; rc=$?
    grep -v '^READY ' "$out" >&2
    if [ "$rc" -ne 0 ]; then
        log "FAILED: svc_bench server $w $uri exited $rc when stopped"
        FAILURES=$((FAILURES + 1))
    fi
}

# ---- nginx for W6 ------------------------------------------------------------------

# wait_port PORT PID: up to 10 s for PORT to accept on 127.0.0.1 while PID
# lives.
wait_port() {
    local _
    for _ in $(seq 100); do
        (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        alive "$2" || return 1
        sleep 0.1
    done
    return 1
}

# The W6 server of WORKLOADS.md, configured as peers/run.sh configures it.
NGINX_PID="" NGINX_PORT=""
start_nginx() {
    [ -n "$NGINX_PID" ] && alive "$NGINX_PID" && return 0
    local d=$TMP/nginx nginx port
    nginx=$(PATH=$PATH:/usr/sbin:/sbin command -v nginx) || {
        log "W6 needs nginx (Debian package nginx-light)"; FAILURES=$((FAILURES + 1)); return 1; }
    mkdir -p "$d"
    chmod 755 "$TMP"   # nginx workers drop root
    port=$((20000 + RANDOM % 12000))
    cat >"$d/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    server {
        listen 127.0.0.1:$port;
        location = /hello {
            default_type text/plain;
            return 200 "Hello, world!";
        }
    }
}
EOF
    # shellcheck disable=SC2086
    timeout --foreground -k 5 "$SERVER_LIMIT" $PIN_SERVER "$nginx" -e "$d/error.log" -p "$d" -c "$d/nginx.conf" >&2 &
    NGINX_PID=$!
    PIDS="$PIDS$NGINX_PID "
    if wait_port "$port" "$NGINX_PID"; then NGINX_PORT=$port; return 0; fi
    log "FAILED: nginx did not start:"; cat "$d/error.log" >&2
    stop_pid "$NGINX_PID"; NGINX_PID=""
    FAILURES=$((FAILURES + 1))
    return 1
}

# ---- mosquitto for W8 ---------------------------------------------------------------

MOSQ_PID="" MOSQ_PORT=""
start_mosquitto() {
    [ -n "$MOSQ_PID" ] && alive "$MOSQ_PID" && return 0
    local mosq port
    mosq=$(PATH=$PATH:/usr/sbin:/sbin command -v mosquitto) || {
        log "W8 needs mosquitto (Debian package mosquitto)"; FAILURES=$((FAILURES + 1)); return 1; }
    chmod 755 "$TMP"
    port=$((20000 + RANDOM % 12000))
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence false"
        echo "log_dest stderr"
        echo "log_type error"
        echo "log_type warning"
        [ "$(id -u)" = 0 ] && echo "user root"
        if [ "$MQTT_BROKER" = tuned ]; then
            echo "set_tcp_nodelay true"
            echo "max_inflight_messages 1000"
            echo "max_queued_messages 100000"
        fi
    } >"$TMP/mosquitto.conf"
    # shellcheck disable=SC2086
    timeout --foreground -k 5 "$SERVER_LIMIT" $PIN_SERVER "$mosq" -c "$TMP/mosquitto.conf" >&2 &
    MOSQ_PID=$!
    PIDS="$PIDS$MOSQ_PID "
    if wait_port "$port" "$MOSQ_PID"; then MOSQ_PORT=$port; return 0; fi
    log "FAILED: mosquitto did not start"
    stop_pid "$MOSQ_PID"; MOSQ_PID=""
    FAILURES=$((FAILURES + 1))
    return 1
}

# With MQTT_BROKER=tuned, W8's reference runs here: the peer's own paho
# client through this script's (tuned) broker, its two processes pinned as
# peers/run.sh pins them, instead of through peers/run.sh's broker, which
# is at its defaults.
run_paho_w8() {
    local q
    PAHO=$PEERS/build/mqtt_paho
    if [ ! -x "$PAHO" ] && ! locked make -s -C "$PEERS" build/mqtt_paho >&2; then
        log "FAILED: cannot build $PAHO"; FAILURES=$((FAILURES + 1)); return
    fi
    start_mosquitto || return
    for q in 0 1; do
        log "W8: mosquitto+paho QoS $q through the tuned broker"
        if paho_start sub "$q"; then
            # shellcheck disable=SC2086
            measure 600 $PIN_CLIENT "$PAHO" pub "$MOSQ_PORT" "$q"
            # The subscriber stops once everything arrived or nothing has
            # for a while; its figures are the throughput.
            wait "$PAHO_PID" || { log "FAILED: paho subscriber"; FAILURES=$((FAILURES + 1)); }
            PIDS=${PIDS/ $PAHO_PID / }
            results "$TMP/paho-W8.out"
        fi
        if paho_start echo "$q"; then
            # shellcheck disable=SC2086
            measure 120 $PIN_CLIENT "$PAHO" ping "$MOSQ_PORT" "$q"
            stop_pid "$PAHO_PID"
        fi
    done
}

# paho_start ROLE QOS: the peer's receiving side (sub or echo) beside the
# broker, its output in $TMP/paho-W8.out; 0 once it is READY (pid in
# PAHO_PID), else stopped and counted as a failure.
paho_start() {
    local out=$TMP/paho-W8.out
    : >"$out"
    # shellcheck disable=SC2086
    timeout --foreground -k 5 700 $PIN_SERVER "$PAHO" "$1" "$MOSQ_PORT" "$2" >"$out" &
    PAHO_PID=$!
    PIDS="$PIDS$PAHO_PID "
    wait_ready "$out" "$PAHO_PID" && return 0
    log "FAILED: paho $1 did not start"; FAILURES=$((FAILURES + 1))
    stop_pid "$PAHO_PID"
    return 1
}

# ---- rounds ----------------------------------------------------------------------

log "workloads: $WORKLOADS; svccomm on: $URI_SCHEMES; PIN=$PIN; REPEAT=$REPEAT; MQTT_BROKER=$MQTT_BROKER"
T0=$(date +%s)
for round in $(seq "$REPEAT"); do
    [ "$REPEAT" -gt 1 ] && log "round $round of $REPEAT"
    if [ "$USE_PEERS" = 1 ]; then
        peer_workloads=$WORKLOADS
        [ "$MQTT_BROKER" = tuned ] && peer_workloads=${WORKLOADS/W8/}
        if [ -n "${peer_workloads// /}" ]; then
            log "peers: $PEERS/run.sh $peer_workloads"
            # shellcheck disable=SC2086
            measure "$PEERS_LIMIT" env REPEAT=1 "$PEERS/run.sh" $peer_workloads
        fi
        if [ "$MQTT_BROKER" = tuned ] && [[ " $WORKLOADS " == *" W8 "* ]]; then
            run_paho_w8
        fi
    fi
    for w in $WORKLOADS; do
        for s in $URI_SCHEMES; do
            if ! uri=$(serve_uri "$s" "$w" "$round"); then
                log "unknown scheme or URI in URI_SCHEMES: $s"
                FAILURES=$((FAILURES + 1))
                continue
            fi
            run_svccomm "$w" "$uri"
        done
    done
done
log "done in $(($(date +%s) - T0)) s, $FAILURES failure(s)"

if [ "$COMPARE" = 1 ]; then
    exec 3>&-
    log "results: $RESULTS"
    python3 "$COMPARE_PY" "$RESULTS" || FAILURES=$((FAILURES + 1))
    # The chart of W1 latency and W3 throughput per system, beside the
    # results, when gnuplot is there (Debian: gnuplot-nox).
    if [[ " $WORKLOADS " != *" W1 "* && " $WORKLOADS " != *" W3 "* ]]; then
        : # Nothing to draw.
    elif command -v gnuplot >/dev/null 2>&1; then
        if python3 "$HERE/chart.py" "$RESULTS" "${RESULTS%.jsonl}.png"; then
            log "chart: ${RESULTS%.jsonl}.png"
        else
            log "chart.py failed"; FAILURES=$((FAILURES + 1))
        fi
    else
        log "no gnuplot (Debian: gnuplot-nox): no chart"
    fi
fi
[ "$FAILURES" -eq 0 ]
