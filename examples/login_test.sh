#!/bin/sh
# Drives the login example over tcp:// or http:// (ctests example_login_tcp
# and example_login_http): the auth
# service runs in the background on 127.0.0.1 port 0; a good and a bad login
# must get "welcome alice" (exit 0) and "denied" (exit 1); then the service
# is stopped by its pid, and a login must fail fast with UNAVAILABLE (exit 2).
# Usage: login_test.sh path/to/login [tcp|http]
set -u
LOGIN=$1
SCHEME=${2:-tcp}
dir=$(mktemp -d "${TMPDIR:-/tmp}/svc-login.XXXXXX")
spid=

cleanup() {
  [ -z "$spid" ] || kill "$spid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

fail() {
  echo "FAIL: $*"
  echo "--- server:"
  cat "$dir/server.out"
  exit 1
}

now_ms() {
  echo $(($(date +%s%N) / 1000000))
}

# expect CODE TEXT USER PASSWORD: one client run, bounded by timeout(1).
expect() {
  timeout 5 "$LOGIN" "$ep" "$3" "$4" >"$dir/client.out" 2>&1
  rc=$?
  echo "login $ep $3 $4 -> exit $rc: $(cat "$dir/client.out")"
  [ $rc -eq "$1" ] || fail "expected exit $1, got $rc"
  grep -qF -- "$2" "$dir/client.out" || fail "expected \"$2\""
}

# timeout(1): a safety net should this script die without stopping it; a
# TERM sent to its pid is passed on to the server.
# --foreground: a TERM to timeout reaches the server once; without it
# timeout also signals its process group and the server gets it twice,
# the second time after it dropped its handler while shutting down.
timeout --foreground 30 "$LOGIN" serve "$SCHEME://127.0.0.1:0" >"$dir/server.out" 2>&1 &
spid=$!
i=0
while ! grep -q "^auth service listening on " "$dir/server.out"; do
  i=$((i + 1))
  [ $i -le 50 ] || fail "the auth service did not start within 5 s"
  sleep 0.1
done
ep=$(sed -n 's/^auth service listening on //p' "$dir/server.out")
echo "auth service pid $spid at $ep"

expect 0 "welcome alice" alice wonderland
expect 1 "denied" alice guess
expect 1 "denied" mallory wonderland

kill -TERM "$spid"
i=0
while kill -0 "$spid" 2>/dev/null; do
  i=$((i + 1))
  [ $i -le 50 ] || fail "the auth service did not stop within 5 s"
  sleep 0.1
done
wait "$spid" || fail "the auth service exited with $?"
spid=
grep -q "^auth service stopped" "$dir/server.out" || fail "no clean stop"
echo "auth service stopped"

start=$(now_ms)
expect 2 "UNAVAILABLE" alice wonderland
elapsed=$(($(now_ms) - start))
echo "the client got its answer in $elapsed ms"
[ "$elapsed" -lt 1000 ] || fail "UNAVAILABLE took $elapsed ms, not fast"
echo "login $SCHEME test: PASS"
