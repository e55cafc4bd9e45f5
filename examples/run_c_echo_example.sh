#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The C example across two processes: `c_echo serve` in the background, `c_echo call` in the
# foreground (an echo, then the server's error replies -1..-16, each of which must reach the
# C caller as its code). Own runtime directory; bounded in time.
# Usage: run_c_echo_example.sh C_ECHO
set -u
bin=$1
work=$(mktemp -d)
export VIPC_RUNTIME_DIR=$work/run
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; cat "$work"/*.out 2>/dev/null; exit 1; }

timeout 60 "$bin" serve examples/c 17 >"$work/server.out" 2>&1 &
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
wait "$server_pid"; rc=$?
server_pid=
[[ $rc == 0 ]] || fail "the server exited $rc"
grep -q "served 17 calls" "$work/server.out" || fail "the server's summary"
echo PASS
