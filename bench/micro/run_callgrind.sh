#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Instructions per in-process call/reply round trip, counted by callgrind: the caller's
# side (Endpoint::call) and the server's side (receive_sync + reply), each divided by the
# number of round trips; and, when vipc-callgrind-validate sits next to it, the instructions
# of one capability validation (Registry::validate_capability).
# Usage: run_callgrind.sh PATH/TO/vipc-callgrind-call-reply [N]
set -euo pipefail
bin=$1 n=${2:-2000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {  # $1 = toggle pattern, $2 = program (default: the call/reply one)
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" --toggle-collect="$1" \
           "${2:-$bin}" "$n" >/dev/null 2>&1
  callgrind_annotate "$out/cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}
caller=$(count '*Endpoint::call*')
server_receive=$(count '*Endpoint::receive_sync*')
server_reply=$(count '*Endpoint::reply*')
echo "instructions per round trip ($n round trips, spin 0):"
echo "  caller   Endpoint::call          $((caller / n))"
echo "  server   Endpoint::receive_sync  $((server_receive / n))"
echo "  server   Endpoint::reply         $((server_reply / n))"
echo "  total                            $(((caller + server_receive + server_reply) / n))"
validate_bin=$(dirname "$bin")/vipc-callgrind-validate
if [[ -x $validate_bin ]]; then
  validate=$(count '*validate_capability*' "$validate_bin")
  echo "instructions per capability validation ($n validations):"
  echo "  Registry::validate_capability    $((validate / n))"
fi
