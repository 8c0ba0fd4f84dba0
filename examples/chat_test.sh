#!/bin/sh
# Drives the chat example (ctest example_chat): a server on 127.0.0.1 port 0,
# two clients fed through FIFOs, each must receive the other's lines and not
# its own; then both leave, and the server is stopped by its pid.
# Usage: chat_test.sh path/to/chat
set -u
CHAT=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/svc-chat.XXXXXX")
spid='' apid='' bpid=''

cleanup() {
  for p in $apid $bpid $spid; do
    kill "$p" 2>/dev/null
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

fail() {
  echo "FAIL: $*"
  for f in server alice bob; do
    echo "--- $f:"
    cat "$dir/$f.out" 2>/dev/null
  done
  exit 1
}

# wait_for FILE TEXT: up to 5 s for a line containing TEXT (fixed string).
wait_for() {
  i=0
  while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 50 ] || fail "no \"$2\" in $(basename "$1") after 5 s"
    sleep 0.1
  done
}

# wait_exit PID NAME: up to 5 s for the process to exit; prints its status.
wait_exit() {
  i=0
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    [ $i -le 50 ] || fail "$2 (pid $1) still running after 5 s"
    sleep 0.1
  done
  wait "$1"
}

# timeout(1): a safety net should this script die without stopping it; a
# TERM sent to its pid is passed on to the server.
# --foreground: a TERM to timeout reaches the server once; without it
# timeout also signals its process group and the server gets it twice,
# the second time after it dropped its handler while shutting down.
timeout --foreground 30 "$CHAT" server tcp://127.0.0.1:0 >"$dir/server.out" 2>&1 &
spid=$!
wait_for "$dir/server.out" "chat server listening on "
ep=$(sed -n 's/^chat server listening on //p' "$dir/server.out")
echo "server pid $spid at $ep"

# Opening a FIFO blocks until both ends are open: start the client (its
# shell opens the FIFO for reading), then open it for writing here, and
# keep it open so that the client's input only ends when we close it.
mkfifo "$dir/alice.in" "$dir/bob.in"
"$CHAT" client "$ep" alice <"$dir/alice.in" >"$dir/alice.out" 2>&1 &
apid=$!
exec 3>"$dir/alice.in"
wait_for "$dir/alice.out" "* welcome alice, 0 others here"

# 3>&-: bob must not inherit the write end of alice's FIFO, or alice would
# never see the end of her input.
"$CHAT" client "$ep" bob <"$dir/bob.in" >"$dir/bob.out" 2>&1 3>&- &
bpid=$!
exec 4>"$dir/bob.in"
wait_for "$dir/bob.out" "* welcome bob, 1 others here"
wait_for "$dir/alice.out" "* bob joined"

echo "hello from alice" >&3
echo "hi alice, bob here" >&4
echo "second line from alice" >&3
wait_for "$dir/bob.out" "alice: hello from alice"
wait_for "$dir/bob.out" "alice: second line from alice"
wait_for "$dir/alice.out" "bob: hi alice, bob here"
! grep -qF "alice:" "$dir/alice.out" || fail "alice got her own line back"
! grep -qF "bob:" "$dir/bob.out" || fail "bob got his own line back"

# End of input: alice leaves; bob is told; alice exits 0.
exec 3>&-
wait_exit "$apid" alice || fail "alice exited with $?"
apid=
wait_for "$dir/bob.out" "* alice left"
exec 4>&-
wait_exit "$bpid" bob || fail "bob exited with $?"
bpid=

kill -TERM "$spid"
wait_exit "$spid" server || fail "server exited with $?"
spid=
wait_for "$dir/server.out" "chat server stopped"

for f in server alice bob; do
  echo "--- $f:"
  cat "$dir/$f.out"
done
echo "chat test: PASS"
