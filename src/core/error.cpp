// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc core: error names and texts.
#include "veridian/ipc/core/error.hpp"

namespace veridian::ipc {

namespace {
struct ErrorInfo {
    const char* name;
    const char* text;
};

// Indexed by -code - 1, in the order of the enum.
constexpr ErrorInfo kErrors[IPC_ERROR_KIND_COUNT] = {
    {"InvalidCapability", "the capability is null, forged, revoked or no longer names an endpoint"},
    {"ProcessNotFound", "the process (or the caller waiting for this reply) is gone"},
    {"EndpointNotFound", "the endpoint is closed or does not exist"},
    {"MessageTooLarge", "the message is larger than the endpoint accepts"},
    {"OutOfMemory", "out of memory, or no free endpoint slot"},
    {"WouldBlock", "the operation would block"},
    {"RateLimitExceeded", "the capability's rate limit was exceeded"},
    {"Timeout", "the deadline passed before the operation could complete"},
    {"PermissionDenied", "the capability lacks the right this operation needs"},
    {"InvalidMessage", "the message is malformed"},
    {"ChannelFull", "the queue is full"},
    {"ChannelEmpty", "the queue is empty"},
    {"EndpointBusy", "the endpoint is already bound or the name is taken"},
    {"InvalidMemoryRegion", "the memory region is invalid"},
    {"ResourceBusy", "the resource is busy"},
    {"NotInitialized", "not initialized"},
};

const ErrorInfo* info(IpcError e) {
    const int index = -error_code(e) - 1;
    if (index < 0 || index >= IPC_ERROR_KIND_COUNT) return nullptr;
    return &kErrors[index];
}
}  // namespace

const char* error_name(IpcError e) {
    const ErrorInfo* i = info(e);
    return i != nullptr ? i->name : "UnknownError";
}

const char* error_text(IpcError e) {
    const ErrorInfo* i = info(e);
    return i != nullptr ? i->text : "unknown error";
}

}  // namespace veridian::ipc
