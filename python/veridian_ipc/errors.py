# SPDX-License-Identifier: MIT OR Apache-2.0
"""One exception class per IpcError kind, each with the runtime's one-line detail."""
from ._lib import ffi, lib


class IpcError(Exception):
    """Base class: `code` is the C API's code (-1..-16), `detail` the runtime's line (what
    happened and the fix)."""

    code = 0
    kind = "IpcError"

    def __init__(self, detail="", code=None):
        if code is not None:
            self.code = code
        self.detail = detail
        super().__init__(detail)

    def __str__(self):
        return f"{self.kind} ({self.code}): {self.detail}" if self.detail else self.kind


def _kind(name, code, doc):
    return type(name, (IpcError,), {"code": code, "kind": name, "__doc__": doc})


InvalidCapability = _kind("InvalidCapability", -1, "The capability was revoked, or the handle is invalid.")
ProcessNotFound = _kind("ProcessNotFound", -2, "The peer process is gone (a reply's caller).")
EndpointNotFound = _kind("EndpointNotFound", -3, "No live endpoint: not published, closed, died.")
MessageTooLarge = _kind("MessageTooLarge", -4, "The payload is over what a message carries.")
OutOfMemory = _kind("OutOfMemory", -5, "The runtime or the kernel is out of memory or fds.")
WouldBlock = _kind("WouldBlock", -6, "The operation would block.")
RateLimitExceeded = _kind("RateLimitExceeded", -7, "Over the connection's rate limit.")
Timeout = _kind("Timeout", -8, "The deadline passed.")
PermissionDenied = _kind("PermissionDenied", -9, "The connection lacks the right, or refused.")
InvalidMessage = _kind("InvalidMessage", -10, "A malformed name, argument or message.")
ChannelFull = _kind("ChannelFull", -11, "The queue is full (a call that does not wait).")
ChannelEmpty = _kind("ChannelEmpty", -12, "Nothing is queued (a call that does not wait).")
EndpointBusy = _kind("EndpointBusy", -13, "The name is taken by a live process.")
InvalidMemoryRegion = _kind("InvalidMemoryRegion", -14, "A bad or missing region.")
ResourceBusy = _kind("ResourceBusy", -15, "The server is at its connection limit.")
NotInitialized = _kind("NotInitialized", -16, "Not initialized.")

ALL = (InvalidCapability, ProcessNotFound, EndpointNotFound, MessageTooLarge, OutOfMemory,
       WouldBlock, RateLimitExceeded, Timeout, PermissionDenied, InvalidMessage, ChannelFull,
       ChannelEmpty, EndpointBusy, InvalidMemoryRegion, ResourceBusy, NotInitialized)
BY_CODE = {cls.code: cls for cls in ALL}


def error_for(code, detail=""):
    """The exception for a C API code (an IpcError with that code if the kind is unknown)."""
    cls = BY_CODE.get(code)
    return cls(detail) if cls is not None else IpcError(detail, code)


def check(rc):
    """Raises the exception for a non-zero C API return code."""
    if rc != 0:
        detail = ffi.string(lib.vipc_last_error_detail()).decode("utf-8", "replace")
        raise error_for(rc, detail)


def code_of(error):
    """The code of an error given as a class, an instance or an int."""
    if isinstance(error, int):
        return error
    if isinstance(error, IpcError) or (isinstance(error, type) and issubclass(error, IpcError)):
        return error.code
    raise TypeError(f"not an IpcError kind: {error!r}")
