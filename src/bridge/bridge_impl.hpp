// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: what the two roles share (internal).
#pragma once

#include <string>

#include "bridge/bridge.hpp"

namespace veridian::ipc::bridge {

struct Bridge::Impl {
    virtual ~Impl() = default;
    virtual BridgeCounters counters() const = 0;
    virtual void stop() = 0;

    Role role = Role::Export;
    std::string name;
    std::string subject;
};

// A fresh random id (16 hex digits) for streams, exporters and inboxes.
u64 random_id();

Result<std::unique_ptr<Bridge::Impl>> start_exporter(std::string_view name,
                                                     const BridgeOptions& options);
Result<std::unique_ptr<Bridge::Impl>> start_importer(std::string_view name,
                                                     const BridgeOptions& options);

}  // namespace veridian::ipc::bridge
