// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc: microkernel-style IPC for C++. The umbrella header.
//
// Layers: the freestanding core (core/), the hosted platforms (platform/) and, where built,
// the cross-process runtime (posix/). See README.md for a quick start.
#pragma once

#include "veridian/ipc/core/capability.hpp"
#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/mutex.hpp"
#include "veridian/ipc/core/platform.hpp"
#include "veridian/ipc/core/registry.hpp"
#include "veridian/ipc/core/types.hpp"
#include "veridian/ipc/message_port.hpp"
#include "veridian/ipc/platform/sim.hpp"
#include "veridian/ipc/platform/threads.hpp"
