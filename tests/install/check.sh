#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Installs the build tree into a scratch prefix, then, outside the tree:
#   1. find_package(veridian_ipc): a C++ project links each exported target (static, shared,
#      the freestanding core, the C API from C) and runs it;
#   2. pkg-config --cflags --libs veridian-ipc: builds examples/c_echo.c as a user would;
#   3. that C program and the Python package (loading the installed library) call each other
#      across processes, both ways, including an error reply.
# Usage: check.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

# 1. find_package
cmake -S "$src/tests/install/consumer" -B "$work/consumer" -G Ninja \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
for program in consumer consumer_shared consumer_core consumer_c; do
  "$work/consumer/$program"
done
readelf -d "$work/consumer/consumer_shared" | grep -q "NEEDED.*libveridian_ipc.so.0.1" ||
  { echo "consumer_shared does not link libveridian_ipc.so.0.1"; exit 1; }

# 2. pkg-config
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name veridian-ipc.pc | head -1)")
flags=$(pkg-config --cflags --libs veridian-ipc)
echo "pkg-config --cflags --libs veridian-ipc: $flags"
libdir=$(pkg-config --variable=libdir veridian-ipc)
cc -std=c11 -Wall -Wextra -Werror -pedantic "$src/examples/c_echo.c" $flags -o "$work/c_echo"
readelf -d "$work/c_echo" | grep -q "NEEDED.*libveridian_ipc.so.0.1" ||
  { echo "c_echo does not link libveridian_ipc.so.0.1"; exit 1; }
export LD_LIBRARY_PATH=$libdir

# 3. C and Python across processes, against the installed library only.
python=/usr/bin/python3
[[ -x $python ]] || python=python3
export VIPC_LIBRARY=$libdir/libveridian_ipc.so.0.1
export PYTHONPATH=$src/python
# Short, under /tmp: a socket path must fit in sockaddr_un.
VIPC_RUNTIME_DIR=$(mktemp -d /tmp/vipc-install-XXXXXX)
export VIPC_RUNTIME_DIR
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$VIPC_RUNTIME_DIR"
}
trap cleanup EXIT

timeout 60 "$work/c_echo" serve install/c 2 >"$work/c_server.out" 2>&1 &
pids+=($!)
out=$(timeout 30 "$python" "$src/python/examples/echo.py" call install/c "python to C" 41)
[[ $out == "reply opcode 42: python to C" ]] || { echo "python → C: '$out'"; exit 1; }
echo "python → C: $out"
out=$(timeout 30 "$python" "$src/python/examples/echo.py" call install/c "x" 1008) || true
[[ $out == "error Timeout -8" ]] || { echo "python → C error reply: '$out'"; exit 1; }
echo "python → C error reply: $out"
wait "${pids[0]}"

timeout 60 "$python" "$src/python/examples/echo.py" serve install/py 2 >"$work/py_server.out" 2>&1 &
pids+=($!)
out=$(timeout 30 "$work/c_echo" call install/py "C to python" 9)
[[ $out == "reply opcode 10: C to python" ]] || { echo "C → python: '$out'"; exit 1; }
echo "C → python: $out"
rc=0
out=$(timeout 30 "$work/c_echo" call install/py "x" 1003) || rc=$?
[[ $rc == 3 && $out == "error EndpointNotFound -3" ]] || { echo "C → python error: '$out'"; exit 1; }
echo "C → python error reply: $out"
wait "${pids[1]}"
echo "install: find_package (4 targets), pkg-config, C <-> Python across processes: OK"
