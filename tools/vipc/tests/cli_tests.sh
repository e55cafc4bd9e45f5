#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Multi-process tests of the vipc command line: each case runs the built binary as real
# processes, in a runtime directory of its own, every command bounded by `timeout`, and kills
# whatever it started in the background on the way out. No case asserts on timing.
#
# Usage: cli_tests.sh CASE PATH/TO/vipc [PATH/TO/payload_peer]   (the cases: functions case_*)
set -u
case_name=$1
VIPC=$2
PEER=${3:-}
work=$(mktemp -d)
export VIPC_RUNTIME_DIR=$work/run
# Short on purpose: the runtime needs room for a socket path under the demo's directory.
export TMPDIR=$work/t
mkdir -p "$TMPDIR"
background=()

cleanup() {
  local pid
  for pid in "${background[@]}"; do
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL ($case_name): $*"
  local f
  for f in "$work"/*.out "$work"/*.err; do
    [[ -e $f ]] && { echo "--- ${f##*/}"; head -c 4000 "$f"; }
  done
  exit 1
}

# vipc ARGS..., bounded; stdout in $work/last.out, stderr in $work/last.err, status in $rc.
run() {
  timeout 60 "$VIPC" "$@" >"$work/last.out" 2>"$work/last.err"
  rc=$?
}

expect_rc() {  # expect_rc WANT DESCRIPTION
  [[ $rc == "$1" ]] || fail "$2: exit status $rc, wanted $1"
}

# The error contract: exactly one line on stderr, containing each of the given strings.
expect_one_error_line() {
  local lines
  lines=$(wc -l <"$work/last.err")
  [[ $lines == 1 ]] || fail "wanted exactly one line on stderr, got $lines"
  local s
  for s in "$@"; do
    grep -qF -- "$s" "$work/last.err" || fail "stderr does not mention '$s'"
  done
}

# Starts vipc ARGS... in the background (bounded by `timeout`, killed on exit); sets $bg_pid
# to the pid of vipc itself (the child of `timeout`), and $bg_timeout_pid to the wrapper's,
# which forwards the signals it gets to vipc and exits with vipc's status. Both are killed on
# exit, vipc first: a SIGKILLed `timeout` cannot pass the signal on.
start_background() {  # start_background OUT ERR ARGS...
  local out=$1 err=$2
  shift 2
  timeout 60 "$VIPC" "$@" >"$out" 2>"$err" &
  bg_timeout_pid=$!
  background+=("$bg_timeout_pid")
  local i
  bg_pid=
  for ((i = 0; i < 100; i++)); do
    bg_pid=$(ps -o pid= --ppid "$bg_timeout_pid" | tr -d ' ' | head -1)
    if [[ -n $bg_pid ]]; then
      background=("$bg_pid" "${background[@]}")
      return 0
    fi
    sleep 0.05
  done
  fail "vipc $* did not start"
}

# Waits (at most ~10 s) until NAME answers `vipc stat`.
wait_for_endpoint() {
  local i
  for ((i = 0; i < 100; i++)); do
    timeout 10 "$VIPC" stat "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "'$1' was never published"
}

json_check() {  # json_check FILE PYTHON-EXPRESSION-ON-d
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval("(" + sys.argv[2] + ")")
sys.exit(0 if ok else 1)' "$1" "$2" || fail "JSON check failed: $2"
}

case_demo_quick() {
  run demo --quick
  expect_rc 0 "vipc demo --quick"
  local s
  for s in "server pid" "client pid" "p50" "p99" "p99.9" "calls/s" "msgs/s" "MB/s"; do
    grep -qF "$s" "$work/last.out" || fail "the summary has no '$s'"
  done
  cat "$work/last.out"
}

case_demo_json() {
  run demo --quick --json
  expect_rc 0 "vipc demo --quick --json"
  json_check "$work/last.out" '
d["ok"] is True and d["server_pid"] != d["client_pid"] and d["server_pid"] > 0
and d["calls"]["count"] > 0 and 0 < d["calls"]["rtt_us"]["min"] <= d["calls"]["rtt_us"]["p50"]
<= d["calls"]["rtt_us"]["p99"] <= d["calls"]["rtt_us"]["p99_9"] <= d["calls"]["rtt_us"]["max"]
and d["calls"]["per_second"] > 0
and d["stream"]["msgs_per_second"] > 0 and d["stream"]["mb_per_second"] > 0
and d["stream"]["received"] == d["stream"]["messages"] and d["stream"]["out_of_order"] == 0'
  cat "$work/last.out"
}

case_demo_leaves_nothing() {
  run demo --quick --json
  expect_rc 0 "vipc demo --quick --json"
  local server_pid
  server_pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_pid"])' \
    "$work/last.out")
  kill -0 "$server_pid" 2>/dev/null && fail "the demo server (pid $server_pid) is still running"
  [[ -z $(ls -A "$TMPDIR") ]] || fail "the demo left files in TMPDIR: $(ls -A "$TMPDIR")"

  # Interrupted in the middle: still exits non-zero, reaps the server, removes its directory.
  start_background "$work/int.out" "$work/int.err" demo --calls 100000000
  local demo_pid=$bg_timeout_pid
  local i
  for ((i = 0; i < 100; i++)); do
    grep -q "server pid" "$work/int.err" 2>/dev/null && break
    sleep 0.1
  done
  server_pid=$(sed -n 's/.*server pid \([0-9]*\).*/\1/p' "$work/int.err" | head -1)
  [[ -n $server_pid ]] || fail "the interrupted demo never said its server's pid"
  kill -INT "$demo_pid"
  wait "$demo_pid"
  rc=$?
  [[ $rc == 1 ]] || fail "an interrupted demo exited $rc, wanted 1"
  grep -q "interrupted" "$work/int.err" || fail "an interrupted demo did not say so"
  kill -0 "$server_pid" 2>/dev/null && fail "the interrupted demo left its server running"
  [[ -z $(ls -A "$TMPDIR") ]] || fail "the interrupted demo left files: $(ls -A "$TMPDIR")"
  echo "PASS"
}

case_serve_call_ls() {
  start_background "$work/serve.out" "$work/serve.err" serve demo/echo --print --json
  local serve_pid=$bg_pid serve_wrapper=$bg_timeout_pid
  wait_for_endpoint demo/echo

  run call demo/echo --opcode 7 --words 1,2,3,4 --json
  expect_rc 0 "vipc call --json"
  json_check "$work/last.out" '
d["name"] == "demo/echo" and d["calls"] == 1 and d["reply"]["opcode"] == 7
and d["reply"]["words"] == [1, 2, 3, 4] and d["rtt_us"]["p50"] > 0'

  run call demo/echo --count 100
  expect_rc 0 "vipc call --count 100"
  grep -q "^100 calls to 'demo/echo'" "$work/last.out" || fail "call --count: $(cat "$work/last.out")"

  run send demo/echo --words 9,8,7,6 --count 3
  expect_rc 0 "vipc send --count 3"

  # Wait until the server has taken all 104 messages (its own counter says so).
  local i
  for ((i = 0; i < 100; i++)); do
    run stat demo/echo --json
    [[ $rc == 0 ]] && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["received"] < 104)' \
      "$work/last.out" && break
    sleep 0.1
  done
  json_check "$work/last.out" 'd["name"] == "demo/echo" and d["received"] >= 104'

  run ls --json
  expect_rc 0 "vipc ls --json"
  json_check "$work/last.out" "
[e['pid'] for e in d['endpoints'] if e['name'] == 'demo/echo'] == [$serve_pid]"
  run ls -v
  expect_rc 0 "vipc ls -v"
  grep -q "^demo/echo .* $serve_pid " "$work/last.out" || fail "vipc ls: $(cat "$work/last.out")"

  kill -TERM "$serve_pid"
  wait "$serve_wrapper"
  rc=$?
  expect_rc 0 "vipc serve after SIGTERM"
  python3 - "$work/serve.out" <<'PY' || fail "serve --print --json output"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
calls = [e for e in events if e["event"] == "call"]
messages = [e for e in events if e["event"] == "message"]
assert len(calls) == 101, len(calls)
assert calls[0]["opcode"] == 7 and calls[0]["words"] == [1, 2, 3, 4]
assert len(messages) == 3 and all(m["words"] == [9, 8, 7, 6] for m in messages), messages
PY
  # The name is gone with the server.
  run call demo/echo
  expect_rc 1 "vipc call after the server stopped"
  echo PASS
}

# serve --threads 4: several receiving threads answer every call of three concurrent callers
# and print every one-way message once; a bad thread count is one line and exit 2.
case_serve_threads() {
  start_background "$work/serve.out" "$work/serve.err" serve demo/echo --threads 4 --print --json
  local serve_pid=$bg_pid serve_wrapper=$bg_timeout_pid
  wait_for_endpoint demo/echo
  local callers=() k
  for k in 1 2 3; do
    timeout 60 "$VIPC" call demo/echo --count 200 >"$work/call$k.out" 2>"$work/call$k.err" &
    callers+=($!)
  done
  for k in "${callers[@]}"; do
    wait "$k" || fail "a vipc call --count 200 against serve --threads 4 failed"
  done
  for k in 1 2 3; do
    grep -q "^200 calls to 'demo/echo'" "$work/call$k.out" || fail "call $k: $(cat "$work/call$k.out")"
  done
  run send demo/echo --words 5,6,7,8 --count 5
  expect_rc 0 "vipc send --count 5"
  local i
  for ((i = 0; i < 100; i++)); do
    run stat demo/echo --json
    [[ $rc == 0 ]] && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["received"] < 605)' \
      "$work/last.out" && break
    sleep 0.1
  done
  kill -TERM "$serve_pid"
  wait "$serve_wrapper"
  rc=$?
  expect_rc 0 "vipc serve --threads 4 after SIGTERM"
  python3 - "$work/serve.out" <<'PY' || fail "serve --threads 4 --print --json output"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
calls = [e for e in events if e["event"] == "call"]
messages = [e for e in events if e["event"] == "message"]
assert len(calls) == 600, len(calls)
assert len(messages) == 5 and all(m["words"] == [5, 6, 7, 8] for m in messages), messages
PY
  run serve demo/other --threads 0
  expect_rc 2 "vipc serve --threads 0"
  expect_one_error_line "--threads"
  echo PASS
}

# A huge --count under a memory limit: the call keeps a bounded sample of round trips (it used
# to reserve one slot per call and abort with std::bad_alloc); SIGINT ends it with a summary.
case_call_huge_count() {
  # AddressSanitizer and ThreadSanitizer reserve terabytes of address space for their shadow
  # memory, so a binary built with them cannot start under `ulimit -v`: this case runs in the
  # trees without them.
  if ldd "$VIPC" 2>/dev/null | grep -qE 'lib(a|t)san'; then
    echo "SKIP: ulimit -v cannot be combined with a sanitizer's shadow memory"
    exit 77
  fi
  start_background "$work/serve.out" "$work/serve.err" serve demo/echo
  wait_for_endpoint demo/echo
  (
    ulimit -v 1048576  # 1 GiB of address space: 10^9 slots of 8 bytes cannot fit
    exec timeout -s INT 2 "$VIPC" call demo/echo --count 1000000000
  ) >"$work/last.out" 2>"$work/last.err"
  rc=$?
  grep -q "bad_alloc" "$work/last.err" && fail "call --count 10^9: $(cat "$work/last.err")"
  [[ $rc == 134 ]] && fail "call --count 10^9 aborted"
  grep -q "calls to 'demo/echo'" "$work/last.out" || fail "call --count 10^9: no summary: $(cat "$work/last.out" "$work/last.err")"
  echo PASS
}

case_send_recv() {
  start_background "$work/recv.out" "$work/recv.err" recv jobs --count 3 --json
  local recv_pid=$bg_timeout_pid
  run send jobs --count 3 --words 5,6 --wait-ms 10000
  expect_rc 0 "vipc send --wait-ms"
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv --count 3"
  python3 - "$work/recv.out" <<'PY' || fail "recv --json output"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert len(events) == 3, events
assert all(e["event"] == "message" and e["words"] == [5, 6, 0, 0] for e in events), events
PY
  # Nothing arrives: recv gives up at its timeout with one line naming the endpoint.
  run recv idle --timeout-ms 200
  expect_rc 1 "vipc recv --timeout-ms with no sender"
  expect_one_error_line "'idle'"
  echo PASS
}

case_unknown_name() {
  local cmd
  for cmd in call send stat; do
    run "$cmd" nosuch/thing
    expect_rc 1 "vipc $cmd on an unknown name"
    expect_one_error_line "vipc $cmd:" "'nosuch/thing'" "$VIPC_RUNTIME_DIR" "vipc serve nosuch/thing"
  done
  run ls
  expect_rc 0 "vipc ls with nothing published"
  echo PASS
}

case_name_taken() {
  start_background "$work/serve.out" "$work/serve.err" serve taken
  local serve_pid=$bg_pid serve_wrapper=$bg_timeout_pid
  wait_for_endpoint taken
  run serve taken
  expect_rc 1 "a second vipc serve of a taken name"
  expect_one_error_line "vipc serve:" "$serve_pid"
  kill -TERM "$serve_pid"
  wait "$serve_wrapper"
  rc=$?
  expect_rc 0 "vipc serve after SIGTERM"
  # A malformed name is a usage error.
  run serve "../bad name"
  expect_rc 2 "vipc serve with a malformed name"
  expect_one_error_line "vipc serve:"
  echo PASS
}

case_bad_flags() {
  run call x --count abc
  expect_rc 2 "--count abc"
  expect_one_error_line "--count" "'abc'" "vipc call --help"
  run frobnicate
  expect_rc 2 "an unknown command"
  expect_one_error_line "frobnicate" "vipc --help"
  run ls --bogus
  expect_rc 2 "an unknown flag"
  expect_one_error_line "--bogus" "vipc ls --help"
  run demo --calls 0
  expect_rc 2 "demo --calls 0"
  expect_one_error_line "--calls"
  run call
  expect_rc 2 "call without a name"
  expect_one_error_line "vipc call:"
  run call x --words 1,2,3,4,5
  expect_rc 2 "five data words"
  expect_one_error_line "--words"
  run call x --hex abc
  expect_rc 2 "an odd number of hex digits"
  expect_one_error_line "--hex" "'abc'"
  run send x @"$work/no-such-file"
  expect_rc 2 "a payload file that does not exist"
  expect_one_error_line "no-such-file"
  run send x --data a --hex 61
  expect_rc 2 "two payloads"
  expect_one_error_line "one payload"
  run ls --runtime-dir
  expect_rc 2 "--runtime-dir without a directory"
  expect_one_error_line "--runtime-dir"
  run send x --timeout-ms
  expect_rc 2 "a flag without its value"
  expect_one_error_line "--timeout-ms"
  run serve a b
  expect_rc 2 "two names"
  expect_one_error_line "'b'"
  run serve x --max-inline 70000
  expect_rc 2 "--max-inline over its cap"
  expect_one_error_line "--max-inline" "65536"
  run send x --out "$work/f"
  expect_rc 2 "--out on send (it has no reply)"
  expect_one_error_line "--out"
  run call x --pool-bytes 5
  expect_rc 2 "--pool-bytes on call (a call's request never travels in a loan)"
  expect_one_error_line "--pool-bytes"
  # An --out file that cannot be written is refused before anything is taken or sent.
  run recv x --out "$work/no-such-dir/f"
  expect_rc 1 "recv --out into a missing directory"
  expect_one_error_line "no-such-dir" "writable"
  run call x --out "$work/no-such-dir/f"
  expect_rc 1 "call --out into a missing directory"
  expect_one_error_line "no-such-dir" "writable"
  run
  expect_rc 2 "no command"
  echo PASS
}

case_help() {
  local cmd
  for cmd in demo ls stat serve recv call send; do
    run "$cmd" --help
    expect_rc 0 "vipc $cmd --help"
    head -1 "$work/last.out" | grep -q "^usage: vipc $cmd" || fail "vipc $cmd --help: $(head -1 "$work/last.out")"
  done
  run --help
  expect_rc 0 "vipc --help"
  grep -q "demo" "$work/last.out" || fail "vipc --help does not list demo"
  run help call
  expect_rc 0 "vipc help call"
  echo PASS
}

case_bench_forward() {
  run bench --help
  if [[ $rc == 2 ]] && grep -qx "vipc bench: not built (bench/ is missing)" "$work/last.err"; then
    echo "PASS (bench not built)"
  else
    expect_rc 0 "vipc bench --help"
    echo PASS
  fi
}

# Payloads of any size from a file, stdin, text and hex, end to end through `vipc recv`.
case_payloads() {
  head -c 100000 /dev/urandom >"$work/big.bin"
  printf 'small \x01\x02 file' >"$work/small.bin"
  start_background "$work/recv.out" "$work/recv.err" recv demo/x --count 4 --json
  local recv_pid=$bg_timeout_pid
  run send demo/x @"$work/big.bin" --wait-ms 10000
  expect_rc 0 "vipc send demo/x @file (100000 bytes)"
  run send demo/x --data @"$work/small.bin"
  expect_rc 0 "vipc send demo/x --data @file"
  timeout 60 "$VIPC" send demo/x - <"$work/small.bin" >"$work/last.out" 2>"$work/last.err"
  rc=$?
  expect_rc 0 "vipc send demo/x - (stdin)"
  run send demo/x --data "plain text"
  expect_rc 0 "vipc send --data TEXT"
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv --count 4"
  python3 - "$work/recv.out" "$work/big.bin" "$work/small.bin" <<'PY' || fail "recv --json payloads"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
big, small = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
got = [bytes.fromhex(e["hex"]) for e in events]
assert got == [big, small, small, b"plain text"], [len(g) for g in got]
assert [e["size"] for e in events] == [100000, len(small), len(small), 10]
assert events[3]["text"] == "plain text" and events[0]["kind"] == "bytes"
PY
  echo PASS
}

# Calls with --hex and @file: the echo comes back byte for byte, small and large.
case_call_hex() {
  start_background "$work/serve.out" "$work/serve.err" serve demo/x
  wait_for_endpoint demo/x
  run call demo/x --hex 'de ad be ef 00 ff' --json
  expect_rc 0 "vipc call demo/x --hex"
  json_check "$work/last.out" 'd["reply"]["hex"] == "deadbeef00ff" and d["reply"]["size"] == 6'
  run call demo/x --hex 'de:ad'
  expect_rc 0 "vipc call --hex without --json"
  grep -qF '2 bytes "\xde\xad"' "$work/last.out" || fail "the reply line: $(cat "$work/last.out")"
  head -c 5000 /dev/urandom >"$work/req.bin"
  run call demo/x @"$work/req.bin" --json
  expect_rc 0 "vipc call demo/x @file (5000 bytes)"
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert bytes.fromhex(d["reply"]["hex"]) == open(sys.argv[2], "rb").read()'     "$work/last.out" "$work/req.bin" || fail "the 5000-byte echo differs"
  echo PASS
}

# --json means JSON on stdout, on success and on failure, for every command.
case_json_everywhere() {
  run call nosuch/thing --json
  expect_rc 1 "vipc call --json on an unknown name"
  json_check "$work/last.out" '
d["error"]["kind"] == "EndpointNotFound" and d["error"]["code"] == -3
and d["error"]["command"] == "call" and "nosuch/thing" in d["error"]["message"]
and d["error"]["exit"] == 1'
  expect_one_error_line "nosuch/thing"
  run stat nosuch/thing --json
  expect_rc 1 "vipc stat --json on an unknown name"
  json_check "$work/last.out" 'd["error"]["kind"] == "EndpointNotFound"'
  run send x --count abc --json
  expect_rc 2 "a usage error under --json"
  json_check "$work/last.out" 'd["error"]["kind"] == "Usage" and d["error"]["code"] is None'
  run ls --json
  expect_rc 0 "vipc ls --json"
  json_check "$work/last.out" 'd["endpoints"] == []'
  start_background "$work/serve.out" "$work/serve.err" serve taken
  local serve_pid=$bg_pid
  wait_for_endpoint taken
  run serve taken --json
  expect_rc 1 "vipc serve --json of a taken name"
  json_check "$work/last.out" "d['error']['kind'] == 'EndpointBusy' and d['error']['code'] == -13
and '$serve_pid' in d['error']['message']"
  run stat taken --json
  expect_rc 0 "vipc stat --json"
  json_check "$work/last.out" "d['name'] == 'taken' and d['pid'] == $serve_pid"
  run bench --help
  if [[ $rc == 0 ]]; then
    grep -q -- "--json-out FILE" "$work/last.out" || fail "vipc bench --help names no --json-out"
    # vipc bench --json: stdout is the JSON document alone (the tables go to stderr).
    run bench --quick --only pipe --rtts 50 --msgs 200 --reps 1 --sizes 48 --json
    expect_rc 0 "vipc bench --json"
    json_check "$work/last.out" 'd["tool"] == "vipc bench" and [t["name"] for t in d["transports"]] == ["pipe"]'
  fi
  echo PASS
}

# --runtime-dir on every command instead of $VIPC_RUNTIME_DIR; names and paths with bytes
# that are not UTF-8 still give valid JSON.
case_runtime_dir() {
  local dir=$work/rd
  mkdir -p "$dir"
  chmod 700 "$dir"
  unset VIPC_RUNTIME_DIR
  XDG_RUNTIME_DIR=$work/xdg-empty
  export XDG_RUNTIME_DIR
  start_background "$work/serve.out" "$work/serve.err" serve demo/rd --runtime-dir "$dir"
  local serve_pid=$bg_pid
  local i
  for ((i = 0; i < 100; i++)); do
    timeout 10 "$VIPC" stat demo/rd --runtime-dir "$dir" >/dev/null 2>&1 && break
    sleep 0.1
  done
  run stat demo/rd --runtime-dir "$dir" --json
  expect_rc 0 "vipc stat --runtime-dir"
  json_check "$work/last.out" "d['pid'] == $serve_pid"
  run stat demo/rd
  expect_rc 1 "vipc stat without --runtime-dir looks elsewhere"
  run call demo/rd --runtime-dir="$dir" --data hi --json
  expect_rc 0 "vipc call --runtime-dir=DIR"
  json_check "$work/last.out" 'd["reply"]["text"] == "hi"'
  run send demo/rd --runtime-dir "$dir" --data x
  expect_rc 0 "vipc send --runtime-dir"
  run ls --runtime-dir "$dir" --json
  expect_rc 0 "vipc ls --runtime-dir"
  json_check "$work/last.out" "d['runtime_dir'] == '$dir' and [e['name'] for e in d['endpoints']] == ['demo/rd']"
  run demo --quick --runtime-dir "$dir" --json
  expect_rc 0 "vipc demo --runtime-dir"
  # A runtime directory whose path is not UTF-8: the JSON is valid, the exact bytes in hex.
  local odd
  odd=$(printf '%s/bad-\xff\xfe' "$work")
  mkdir -p "$odd"
  chmod 700 "$odd"
  run ls --runtime-dir "$odd" --json
  expect_rc 0 "vipc ls in a directory whose name is not UTF-8"
  python3 - "$work/last.out" "$odd" <<'PY' || fail "vipc ls --json with a non-UTF-8 path: $(cat "$work/last.out")"
import json, os, sys
raw = open(sys.argv[1], "rb").read()
d = json.loads(raw.decode("utf-8"))  # strict: valid UTF-8 and valid JSON
assert bytes.fromhex(d["runtime_dir_hex"]) == os.fsencode(sys.argv[2])
assert "�" in d["runtime_dir"]
PY
  kill -TERM "$serve_pid"
  echo PASS
}

# A server in a pid namespace of its own: `vipc stat`/`ls` show its pid as seen from here and
# say that it has another one there; the server, which cannot see our pid, shows the client as
# in another pid namespace. Needs root (unshare --pid): skipped (exit 77) otherwise.
case_pid_namespace() {
  if [[ $(id -u) != 0 ]] || ! command -v unshare >/dev/null; then
    echo "SKIP: needs root and unshare"
    exit 77
  fi
  # unshare --kill-child: the server dies with unshare, which is the one killed on exit; the
  # timeout inside bounds it even if this script is killed first.
  unshare --pid --fork --kill-child timeout 60 "$VIPC" serve demo/ns >"$work/ns.out" \
    2>"$work/ns.err" &
  background+=("$!")
  wait_for_endpoint demo/ns
  run call demo/ns --data "from outside"
  expect_rc 0 "vipc call to a server in another pid namespace"
  run stat demo/ns --json
  expect_rc 0 "vipc stat --json"
  json_check "$work/last.out" '
d["pid"] > 2 and d["pid_namespace"] == "other" and d["pid_in_namespace"] == 2'
  run ls
  expect_rc 0 "vipc ls"
  grep -q "(pid 2 in its pid namespace)" "$work/last.out" || fail "vipc ls: $(cat "$work/last.out")"
  # A client that stays connected (calling until it is stopped), as the server sees it.
  start_background "$work/caller.out" "$work/caller.err" call demo/ns --count 1000000000
  local caller=$bg_pid i
  for ((i = 0; i < 100; i++)); do
    run stat demo/ns --json
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if any(c["pid"] is None and c["pid_namespace"] == "other" and c["alive"]
                  for c in d["per_connection"]) else 1)' "$work/last.out" && break
    sleep 0.05
  done
  ((i < 100)) || fail "the server never showed its client as in another pid namespace: $(cat "$work/last.out")"
  run stat demo/ns
  expect_rc 0 "vipc stat"
  grep -q "pid ? (another pid namespace)" "$work/last.out" || fail "vipc stat: $(cat "$work/last.out")"
  kill -TERM "$caller"
  echo PASS
}

# ---- Messages of every size, both ends ---------------------------------------------------

# The sizes the payload tests send: one byte, the default inline maximum (4 KiB), a loan's
# worth (64 KiB), and two that only a region carries at the default pool (4 MiB, 40 MiB).
sizes=(1 4096 65536 4194304 41943040)
make_sizes() {
  local n
  for n in "${sizes[@]}"; do
    head -c "$n" /dev/urandom >"$work/p$n.bin"
  done
}

# The way a payload of N bytes travels at the defaults (4 KiB inline, 1 MiB pools).
expected_via() {  # expected_via call|send N
  if (($2 <= 4096)); then
    echo payload
  elif [[ $1 == send ]] && (($2 <= 1048576)); then
    echo loan
  else
    echo region
  fi
}

# Runs CLIENT (call or send) with every size, first from a file, then from stdin, against a
# SERVER (serve or recv) that writes every payload it takes to a file; checks both ends byte
# for byte (a call's reply too) and how each message travelled, as both sides report it.
sizes_case() {  # sizes_case CLIENT SERVER
  local client=$1 server=$2 n source
  make_sizes
  local count=$((2 * ${#sizes[@]}))
  if [[ $server == recv ]]; then
    start_background "$work/server.out" "$work/server.err" recv demo/sz --count "$count" \
      --out "$work/taken.bin" --json
  else
    start_background "$work/server.out" "$work/server.err" serve demo/sz --print \
      --out "$work/taken.bin" --json
  fi
  local server_pid=$bg_pid server_wrapper=$bg_timeout_pid
  wait_for_endpoint demo/sz
  : >"$work/expected.bin"
  for n in "${sizes[@]}"; do
    for source in file stdin; do
      local reply=(--out "$work/reply.bin")
      [[ $client == send ]] && reply=()
      if [[ $source == file ]]; then
        run "$client" demo/sz @"$work/p$n.bin" --json "${reply[@]}"
      else
        timeout 60 "$VIPC" "$client" demo/sz - --json "${reply[@]}" <"$work/p$n.bin" \
          >"$work/last.out" 2>"$work/last.err"
        rc=$?
      fi
      expect_rc 0 "vipc $client of $n bytes from $source"
      json_check "$work/last.out" "d['via'] == '$(expected_via "$client" "$n")'"
      if [[ $client == call ]]; then
        cmp -s "$work/p$n.bin" "$work/reply.bin" || fail "the $n-byte echo ($source) differs"
        json_check "$work/last.out" "d['reply']['size'] == $n and d['reply']['kind'] == 'bytes'"
      fi
      cat "$work/p$n.bin" >>"$work/expected.bin"
    done
  done
  if [[ $server == recv ]]; then
    wait "$server_wrapper"
    rc=$?
    expect_rc 0 "vipc recv --count $count"
  else
    # Wait until the server has taken every message (its own counter says so).
    local i
    for ((i = 0; i < 100; i++)); do
      run stat demo/sz --json
      [[ $rc == 0 ]] && python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["received"] < int(sys.argv[2]))' \
        "$work/last.out" "$count" && break
      sleep 0.1
    done
    kill -TERM "$server_pid"
    wait "$server_wrapper"
    rc=$?
    expect_rc 0 "vipc serve after SIGTERM"
  fi
  [[ $(sha256sum <"$work/taken.bin") == $(sha256sum <"$work/expected.bin") ]] ||
    fail "what vipc $server took differs from what vipc $client sent ($(stat -c %s "$work/taken.bin") of $(stat -c %s "$work/expected.bin") bytes)"
  python3 - "$work/server.out" "$client" "${sizes[@]}" <<'PY' || fail "vipc $server --json"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
client, sizes = sys.argv[2], [int(n) for n in sys.argv[3:]]
def via(n):
    if n <= 4096: return "payload"
    if client == "send" and n <= 1 << 20: return "loan"
    return "region"
want = [(n, via(n)) for n in sizes for _ in range(2)]
got = [(e["size"], e["via"]) for e in events]
assert got == want, (got, want)
assert all(e["event"] == ("call" if client == "call" else "message") for e in events), events
assert all(e["kind"] == "bytes" and e["opcode"] == 1 for e in events), events
PY
  echo PASS
}

case_sizes_call_serve() { sizes_case call serve; }
case_sizes_call_recv() { sizes_case call recv; }
case_sizes_send_serve() { sizes_case send serve; }
case_sizes_send_recv() { sizes_case send recv; }

# The way is chosen from what the connection offers: a larger pool carries 4 MiB as a loan,
# no pool sends 64 KiB in a region, and a server with a smaller inline maximum gets a region
# for what it does not carry inline.
case_via_choice() {
  head -c 4194304 /dev/urandom >"$work/4m.bin"
  head -c 65536 /dev/urandom >"$work/64k.bin"
  head -c 100 /dev/urandom >"$work/100.bin"
  head -c 4096 /dev/urandom >"$work/4k.bin"
  start_background "$work/recv.out" "$work/recv.err" recv demo/via --count 5 --max-inline 100 \
    --out "$work/taken.bin" --json
  local recv_pid=$bg_timeout_pid
  run send demo/via @"$work/4m.bin" --pool-bytes 8388608 --wait-ms 10000 --json
  expect_rc 0 "vipc send of 4 MiB with an 8 MiB pool"
  json_check "$work/last.out" 'd["via"] == "loan"'
  run send demo/via @"$work/64k.bin" --pool-bytes 0 --json
  expect_rc 0 "vipc send of 64 KiB without a pool"
  json_check "$work/last.out" 'd["via"] == "region"'
  run call demo/via @"$work/100.bin" --json --out "$work/r100.bin"
  expect_rc 0 "vipc call of 100 bytes to a server that carries 100 inline"
  json_check "$work/last.out" 'd["via"] == "payload"'
  cmp -s "$work/100.bin" "$work/r100.bin" || fail "the 100-byte echo differs"
  run call demo/via @"$work/4k.bin" --json --out "$work/r4k.bin"
  expect_rc 0 "vipc call of 4 KiB to a server that carries 100 inline"
  json_check "$work/last.out" 'd["via"] == "region"'
  cmp -s "$work/4k.bin" "$work/r4k.bin" || fail "the 4 KiB echo differs"
  run send demo/via @"$work/4k.bin" --json
  expect_rc 0 "vipc send of 4 KiB to a server that carries 100 inline"
  json_check "$work/last.out" 'd["via"] == "loan"'
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv --count 5"
  cat "$work/4m.bin" "$work/64k.bin" "$work/100.bin" "$work/4k.bin" "$work/4k.bin" \
    >"$work/expected.bin"
  cmp -s "$work/expected.bin" "$work/taken.bin" || fail "vipc recv --out differs"
  python3 - "$work/recv.out" <<'PY' || fail "vipc recv --json"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
got = [(e["size"], e["via"]) for e in events]
want = [(4194304, "loan"), (65536, "region"), (100, "payload"), (4096, "region"), (4096, "loan")]
assert got == want, got
PY
  echo PASS
}

# Payload records and a loan sent by a program that is not vipc (the runtime's payload API)
# are taken and printed by `vipc recv`, byte for byte, with their opcodes.
case_other_sender() {
  [[ -x $PEER ]] || fail "no payload_peer program given"
  head -c 3000 /dev/urandom >"$work/3000.bin"
  printf 'hello from another program' >"$work/text.bin"
  head -c 200000 /dev/urandom >"$work/200k.bin"
  start_background "$work/recv.out" "$work/recv.err" recv demo/peer --count 3 \
    --out "$work/taken.bin" --json --timeout-ms 30000
  local recv_pid=$bg_timeout_pid
  wait_for_endpoint demo/peer
  timeout 30 "$PEER" demo/peer payload "$work/3000.bin" 41 || fail "payload_peer payload 3000"
  timeout 30 "$PEER" demo/peer payload "$work/text.bin" 42 || fail "payload_peer payload text"
  timeout 30 "$PEER" demo/peer loan "$work/200k.bin" 43 || fail "payload_peer loan 200000"
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv --count 3 of another program's messages"
  cat "$work/3000.bin" "$work/text.bin" "$work/200k.bin" >"$work/expected.bin"
  cmp -s "$work/expected.bin" "$work/taken.bin" || fail "vipc recv --out differs"
  python3 - "$work/recv.out" "$work/3000.bin" <<'PY' || fail "vipc recv --json"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
got = [(e["opcode"], e["size"], e["via"], e["event"]) for e in events]
assert got == [(41, 3000, "payload", "message"), (42, 26, "payload", "message"),
               (43, 200000, "loan", "message")], got
assert bytes.fromhex(events[0]["hex"]) == open(sys.argv[2], "rb").read()
assert events[1]["text"] == "hello from another program"
assert all(e["from"] > 0 for e in events), events
PY
  # The lines without --json say the same.
  start_background "$work/recv2.out" "$work/recv2.err" recv demo/peer2 --timeout-ms 30000
  recv_pid=$bg_timeout_pid
  wait_for_endpoint demo/peer2
  timeout 30 "$PEER" demo/peer2 payload "$work/text.bin" 44 || fail "payload_peer payload"
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv of a payload record"
  grep -q '^message on connection [0-9]*: opcode 44 flags 0x0 26 bytes "hello from another program" from pid [0-9]* via payload$' \
    "$work/recv2.out" || fail "the line: $(cat "$work/recv2.out")"
  echo PASS
}

# Loans come back: 100 sends of 64 KiB through a 1 MiB pool (16 chunks) need the server to
# release each one after taking it, or the 17th loan would wait and time out.
case_loans_released() {
  head -c 65536 /dev/urandom >"$work/64k.bin"
  start_background "$work/recv.out" "$work/recv.err" recv demo/loans --count 100 \
    --out "$work/taken.bin" --timeout-ms 50000
  local recv_pid=$bg_timeout_pid
  run send demo/loans @"$work/64k.bin" --count 100 --wait-ms 10000 --timeout-ms 20000 --json
  expect_rc 0 "vipc send --count 100 of 64 KiB loans"
  json_check "$work/last.out" 'd["via"] == "loan" and d["sent"] == 100'
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv --count 100"
  local i
  for ((i = 0; i < 100; i++)); do cat "$work/64k.bin"; done >"$work/expected.bin"
  cmp -s "$work/expected.bin" "$work/taken.bin" || fail "vipc recv --out differs"
  echo PASS
}

# --via forces a way (inline and region are what a server that reads only Messages takes);
# one that cannot carry the payload is a clear error, before or at the send.
case_via_forced() {
  head -c 10 /dev/urandom >"$work/10.bin"
  head -c 5000 /dev/urandom >"$work/5000.bin"
  start_background "$work/recv.out" "$work/recv.err" recv demo/force --count 5 \
    --out "$work/taken.bin" --json
  local recv_pid=$bg_timeout_pid
  local way
  for way in inline region payload loan; do
    run send demo/force @"$work/10.bin" --via "$way" --wait-ms 10000 --json
    expect_rc 0 "vipc send --via $way"
    json_check "$work/last.out" "d['via'] == '$way'"
  done
  run call demo/force @"$work/5000.bin" --via region --out "$work/r5000.bin" --json
  expect_rc 0 "vipc call --via region"
  json_check "$work/last.out" 'd["via"] == "region" and d["reply"]["size"] == 5000'
  cmp -s "$work/5000.bin" "$work/r5000.bin" || fail "the --via region echo differs"
  wait "$recv_pid"
  rc=$?
  expect_rc 0 "vipc recv --count 5"
  cat "$work/10.bin" "$work/10.bin" "$work/10.bin" "$work/10.bin" "$work/5000.bin" \
    >"$work/expected.bin"
  cmp -s "$work/expected.bin" "$work/taken.bin" || fail "vipc recv --out differs"
  python3 - "$work/recv.out" <<'PY' || fail "vipc recv --json"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
got = [(e["size"], e["via"]) for e in events]
assert got == [(10, "inline"), (10, "region"), (10, "payload"), (10, "loan"),
               (5000, "region")], got
PY
  # Ways that cannot carry it.
  start_background "$work/serve.out" "$work/serve.err" serve demo/force2
  wait_for_endpoint demo/force2
  run send demo/force2 @"$work/5000.bin" --via payload
  expect_rc 1 "vipc send --via payload over the inline maximum"
  expect_one_error_line "vipc send:" "4096"
  run send demo/force2 @"$work/10.bin" --via loan --pool-bytes 0
  expect_rc 1 "vipc send --via loan without a pool"
  expect_one_error_line "vipc send:"
  run call demo/force2 @"$work/5000.bin" --via inline
  expect_rc 2 "vipc call --via inline over 64 bytes"
  expect_one_error_line "--via inline" "5000"
  run call demo/force2 @"$work/10.bin" --via loan
  expect_rc 2 "vipc call --via loan"
  expect_one_error_line "--via" "loan"
  run send demo/force2 --words 1,2 --via region
  expect_rc 2 "vipc send --words --via region"
  expect_one_error_line "--words"
  echo PASS
}

# serve --echo answers from what it received in place (nothing printed or kept): the echo is
# still byte for byte, payload record and region alike, many calls in a row.
case_echo_only() {
  start_background "$work/serve.out" "$work/serve.err" serve demo/echo --echo
  wait_for_endpoint demo/echo
  local n
  for n in 1 100 4096 65536; do
    head -c "$n" /dev/urandom >"$work/p$n.bin"
    run call demo/echo @"$work/p$n.bin" --count 50 --out "$work/r$n.bin" --json
    expect_rc 0 "vipc call of $n bytes to serve --echo"
    json_check "$work/last.out" "d['calls'] == 50 and d['reply']['size'] == $n"
    cmp -s "$work/p$n.bin" "$work/r$n.bin" || fail "the $n-byte echo differs"
  done
  [[ -s $work/serve.out ]] && fail "serve --echo printed: $(head -c 300 "$work/serve.out")"
  echo PASS
}

declare -F "case_$case_name" >/dev/null || { echo "no case '$case_name'"; exit 2; }
"case_$case_name"
