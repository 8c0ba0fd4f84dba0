#!/bin/sh
# The shared library exports svc_* and nothing else: internal svc__ names
# and any dependency's symbols stay hidden (see hiredis #1363 for what
# exporting everything costs users). Usage: check_symbols.sh LIBRARY
set -eu
lib=$1
exported=$(nm -D --defined-only "$lib" | awk '{print $3}')
[ -n "$exported" ] || { echo "no exported symbols in $lib" >&2; exit 1; }
bad=$(printf '%s\n' "$exported" | grep -v '^svc_[a-z]' || true)
internal=$(printf '%s\n' "$exported" | grep '^svc__' || true)
if [ -n "$bad$internal" ]; then
  echo "unexpected exported symbols:" >&2
  printf '%s\n' $bad $internal >&2
  exit 1
fi
echo "$(printf '%s\n' "$exported" | wc -l) symbols exported, all svc_*"
