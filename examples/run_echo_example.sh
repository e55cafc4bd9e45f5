#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The echo example end to end: the server in the background, the client in the foreground,
# then SIGTERM stops the server, which must exit 0. Own runtime directory; bounded in time.
# Usage: run_echo_example.sh ECHO_SERVER ECHO_CLIENT
set -u
server_bin=$1 client_bin=$2
work=$(mktemp -d)
export VIPC_RUNTIME_DIR=$work/run
server_pid= server_child=
cleanup() {
  # The server first: a SIGKILLed `timeout` cannot pass the signal on to it.
  [[ -n $server_child ]] && kill -KILL "$server_child" 2>/dev/null
  [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$work"/*.out "$work"/*.err; do echo "--- $f"; cat "$f"; done; exit 1; }

timeout 60 "$server_bin" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for ((i = 0; i < 100; i++)); do
  server_child=$(ps -o pid= --ppid "$server_pid" | tr -d ' ' | head -1)
  [[ -n $server_child ]] && break
  sleep 0.05
done
timeout 30 "$client_bin" >"$work/client.out" 2>"$work/client.err" || fail "the client failed"
grep -q "reply data\[0\] = 3" "$work/client.out" || fail "the client printed no reply"
grep -q "the server got 1000 of 1000" "$work/client.out" || fail "the stream did not arrive"
kill -TERM "$server_pid"
wait "$server_pid"; rc=$?
server_pid= server_child=
[[ $rc == 0 ]] || fail "the server exited $rc after SIGTERM"
grep -q "stopped after 1000 one-way messages" "$work/server.out" || fail "the server's summary"
cat "$work/client.out" "$work/server.out"
echo PASS
