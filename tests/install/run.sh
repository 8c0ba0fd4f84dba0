#!/bin/sh
# Installs the build into a temporary prefix, then builds and runs a small
# consumer program against it three ways: pkg-config (shared), CMake's
# find_package() with the shared library, and with the static one.
# Usage: run.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
pc=$(find "$tmp/prefix" -name svccomm.pc)
[ -n "$pc" ] || { echo "svccomm.pc was not installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")

export PKG_CONFIG_PATH="$(dirname "$pc")"
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Werror \
  "$src/tests/install/consumer.c" -o "$tmp/consumer_pc" \
  $(pkg-config --cflags --libs svccomm) -Wl,-rpath,"$libdir"
"$tmp/consumer_pc"

cmake -S "$src/tests/install" -B "$tmp/cmake" \
  -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
"$tmp/cmake/consumer_shared"
"$tmp/cmake/consumer_static"
# The static program must not need the shared library at run time.
if ldd "$tmp/cmake/consumer_static" | grep -q libsvccomm; then
  echo "consumer_static is linked to the shared library" >&2
  exit 1
fi
echo "install test passed"
