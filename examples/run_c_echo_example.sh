#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The C example across two processes: `c_echo serve` in the background, `c_echo call` in the
# foreground (an echo, then the server's error replies -1..-16, each of which must reach the
# C caller as its code; then `vipc` (the C++ CLI, when given) sends a 4 KiB loan, which the
# server takes and drops, and calls with a 4 KiB payload record from a file, which must come
# back byte for byte). Own runtime directory; bounded in time.
# Usage: run_c_echo_example.sh C_ECHO [VIPC]
set -u
bin=$1
vipc=${2:-}
work=$(mktemp -d)
export VIPC_RUNTIME_DIR=$work/run
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$work"/*.out 2>/dev/null; exit 1; }

calls=17
[[ -n $vipc ]] && calls=18
timeout 60 "$bin" serve examples/c $calls >"$work/server.out" 2>&1 &
server_pid=$!
out=$(timeout 30 "$bin" call examples/c "hello from C" 41) || fail "the call failed: $out"
[[ $out == "reply opcode 42: hello from C" ]] || fail "unexpected reply: $out"
echo "$out"
for k in $(seq 1 16); do
  out=$(timeout 30 "$bin" call examples/c "err" $((1000 + k)))
  rc=$?
  [[ $rc == 3 && $out == "error "*" -$k" ]] || fail "error -$k arrived as: rc $rc, '$out'"
  echo "$out"
done
if [[ -n $vipc ]]; then
  head -c 4096 /dev/urandom >"$work/4k.bin"
  timeout 30 "$vipc" send examples/c @"$work/4k.bin" --via loan >"$work/send.out" 2>&1 ||
    fail "vipc send --via loan failed"
  timeout 30 "$vipc" call examples/c @"$work/4k.bin" --opcode 5 --out "$work/reply.bin" \
    >"$work/call.out" 2>&1 || fail "vipc call with 4 KiB failed"
  cmp "$work/4k.bin" "$work/reply.bin" || fail "the 4 KiB echo differs"
  echo "4 KiB payload from vipc call echoed byte for byte"
fi
wait "$server_pid"; rc=$?
server_pid=
[[ $rc == 0 ]] || fail "the server exited $rc"
grep -q "served $calls calls" "$work/server.out" || fail "the server's summary"
echo PASS
