// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc bridge: the Bridge handle and the checks both roles share.
#include "bridge/bridge.hpp"

#include <sys/random.h>

#include "bridge/bridge_impl.hpp"
#include "bridge/mapping.hpp"
#include "bridge/nats_link.hpp"
#include "veridian/ipc/posix/runtime.hpp"

namespace veridian::ipc::bridge {

u64 random_id() {
    u64 v = 0;
    while (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    }
    return v;
}

Result<Bridge> Bridge::start(Role role, std::string_view name, const BridgeOptions& options) {
    if (!posix::validate_name(name)) {
        set_detail("%s", posix::last_error_detail());
        return IpcError::InvalidMessage;
    }
    if (!validate_prefix(options.prefix)) {
        set_detail(
            "bad subject prefix '%s': tokens of letters, digits, '_' and '-' separated "
            "by '.' (like \"vipc\" or \"site1.vipc\")",
            options.prefix.c_str());
        return IpcError::InvalidMessage;
    }
    if (options.nats.urls.empty()) {
        set_detail("no NATS server URL: give --nats-url nats://HOST:PORT");
        return IpcError::InvalidMessage;
    }
    if (options.credit_window == 0 || options.credit_window > 65536) {
        set_detail("credit window %u out of range: 1..65536 messages", options.credit_window);
        return IpcError::InvalidMessage;
    }
    if (options.concurrency == 0 || options.concurrency > 64) {
        set_detail("concurrency %u out of range: 1..64", options.concurrency);
        return IpcError::InvalidMessage;
    }
    if (options.call_timeout_ms == 0) {
        set_detail("call timeout must be at least 1 ms");
        return IpcError::InvalidMessage;
    }
    std::unique_ptr<Impl> impl = role == Role::Export ? VIPC_TRY(start_exporter(name, options))
                                                      : VIPC_TRY(start_importer(name, options));
    return Bridge(std::move(impl));
}

Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bridge::Bridge(Bridge&&) noexcept = default;
Bridge& Bridge::operator=(Bridge&& other) noexcept {
    if (this != &other) {
        stop();
        impl_ = std::move(other.impl_);
    }
    return *this;
}
Bridge::~Bridge() {
    stop();
}

Role Bridge::role() const {
    return impl_->role;
}
const std::string& Bridge::name() const {
    return impl_->name;
}
const std::string& Bridge::subject() const {
    return impl_->subject;
}
BridgeCounters Bridge::counters() const {
    return impl_ ? impl_->counters() : BridgeCounters{};
}
void Bridge::stop() {
    if (impl_) impl_->stop();
}

}  // namespace veridian::ipc::bridge
