// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the boot-time scenarios that exercise the core on the kernel's scheduler.
//
// Each prints one line, "PASS <name>" or "FAIL <name>: <why>". The names are:
// ping_pong, call_reply, close_wakes_blocked, full_queue_blocks_sender, receive_deadline,
// capability_rejected.
#pragma once

namespace vipc_kernel {

// Runs every scenario in order (on the calling task); true when all passed.
bool run_scenarios();

}  // namespace vipc_kernel
