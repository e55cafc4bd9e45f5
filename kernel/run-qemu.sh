#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Boots the kernel under QEMU (software emulation) and checks its serial output.
#
# Usage: run-qemu.sh KERNEL_ELF32 [SERIAL_LOG]
#
# Passes only when QEMU exits with status 33 (the kernel wrote 0x10 to isa-debug-exit: every
# scenario passed), every scenario printed its PASS line, and nothing printed FAIL or
# FAULT. A missing QEMU is installed from Debian (qemu-system-x86); if that is impossible
# the test fails: it never skips.
set -u

kernel=${1:?usage: run-qemu.sh KERNEL_ELF32 [SERIAL_LOG]}
log=${2:-$(mktemp)}
timeout_seconds=${VIPC_KERNEL_TIMEOUT:-300}
scenarios=(ping_pong call_reply close_wakes_blocked full_queue_blocks_sender receive_deadline
           capability_rejected
           user_ping_pong user_call_reply user_close_wakes_blocked user_full_queue_blocks_sender
           user_deadlines user_forging user_faulting_server user_exit_with_endpoints_open)

if [[ ! -f $kernel ]]; then
  echo "FAIL: kernel image $kernel not found (build the vipc_kernel target)"
  exit 1
fi

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  echo "qemu-system-x86_64 not found: installing qemu-system-x86 from Debian"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo -n); fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y --no-install-recommends qemu-system-x86; then
    "${sudo[@]}" apt-get update && "${sudo[@]}" apt-get install -y --no-install-recommends qemu-system-x86
  fi
  if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "FAIL: qemu-system-x86_64 is missing and installing qemu-system-x86 failed"
    echo "      (install it with: apt-get install qemu-system-x86)"
    exit 1
  fi
fi

# -icount shift=0: the virtual clock (and the TSC) advances one nanosecond per instruction,
# so the instruction counts the kernel prints are deterministic.
timeout "$timeout_seconds" qemu-system-x86_64 -accel tcg -icount shift=0 -m 64 -kernel "$kernel" \
  -display none -vga none -nic none -serial stdio -monitor none -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null >"$log" 2>&1
status=$?
tr -d '\r' <"$log"
echo "--- qemu exit status: $status"

failed=0
case $status in
  33) ;;
  124) echo "FAIL: the kernel did not finish within ${timeout_seconds}s"; failed=1 ;;
  0) echo "FAIL: the machine reset (triple fault)"; failed=1 ;;
  35) echo "FAIL: the kernel reported failed scenarios"; failed=1 ;;
  37) echo "FAIL: the kernel reported a fault"; failed=1 ;;
  *) echo "FAIL: unexpected QEMU exit status $status"; failed=1 ;;
esac
if tr -d '\r' <"$log" | grep -qE '^(FAIL|FAULT)'; then
  echo "FAIL: the serial log reports a failure or fault"
  failed=1
fi
for name in "${scenarios[@]}"; do
  count=$(tr -d '\r' <"$log" | grep -cx "PASS $name")
  if [[ $count -ne 1 ]]; then
    echo "FAIL: expected one 'PASS $name' line, found $count"
    failed=1
  fi
done
if [[ $failed -eq 0 ]]; then
  echo "kernel test: all ${#scenarios[@]} scenarios passed under QEMU"
fi
exit $failed
