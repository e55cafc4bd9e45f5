// SPDX-License-Identifier: MIT OR Apache-2.0
// Kernel: the boot-time scenarios that run in user processes (ring 3, own address spaces,
// IPC by system calls). Each prints "PASS <name>" or "FAIL <name>: <why>". The names:
// user_ping_pong, user_call_reply, user_close_wakes_blocked, user_full_queue_blocks_sender,
// user_deadlines, user_forging, user_faulting_server, user_exit_with_endpoints_open.
#pragma once

namespace vipc_kernel {

// Runs every user scenario in order (on the calling kernel task); true when all passed.
bool run_user_scenarios();

}  // namespace vipc_kernel
