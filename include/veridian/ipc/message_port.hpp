// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc: MessagePort, the one face of a message endpoint.
//
// The core's Endpoint (threads of one process, the kernel) and the posix runtime's
// Connection (another process) give the same contract (docs/CONTRACT.md) through the same
// operations, so code written against MessagePort runs on either:
//
//   template <veridian::ipc::MessagePort Port>
//   veridian::ipc::Result<veridian::ipc::u64> ask(Port& port, veridian::ipc::Deadline d) {
//       veridian::ipc::Message m = VIPC_TRY(port.call(veridian::ipc::Message::small(0, 1), d));
//       return m.small_message().data[0];
//   }
//
// Deadlines are absolute points on the monotonic clock: Platform::after_ns() for the core,
// posix::after_ns()/after_ms() (CLOCK_MONOTONIC, the clock of ThreadsPlatform) for posix.
//
// Layer: core (freestanding): this header includes only core headers and <concepts>.
#pragma once

#include <concepts>

#include "veridian/ipc/core/endpoint.hpp"
#include "veridian/ipc/core/error.hpp"
#include "veridian/ipc/core/message.hpp"
#include "veridian/ipc/core/platform.hpp"

namespace veridian::ipc {

// What a port does: send and receive (blocking with a deadline, or not at all), the fast
// path for one SmallMessage, a call that waits for its reply, close, and the core's
// statistics record.
template <typename P>
concept MessagePort = requires(P& port, const P& cport, const Message& message,
                               const SmallMessage& small, Deadline deadline) {
    { port.send_sync(message, deadline) } -> std::same_as<Result<void>>;
    { port.send_sync(message) } -> std::same_as<Result<void>>;
    { port.send_async(message) } -> std::same_as<Result<void>>;
    { port.fast_send(small) } -> std::same_as<Result<void>>;
    { port.receive_sync(deadline) } -> std::same_as<Result<Message>>;
    { port.receive_sync() } -> std::same_as<Result<Message>>;
    { port.try_receive() } -> std::same_as<Result<Message>>;
    { port.call(message, deadline) } -> std::same_as<Result<Message>>;
    { port.close() } -> std::same_as<Result<void>>;
    { cport.stats() } -> std::same_as<Result<EndpointStats>>;
};

static_assert(MessagePort<Endpoint>);

}  // namespace veridian::ipc
