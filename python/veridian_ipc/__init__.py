# SPDX-License-Identifier: MIT OR Apache-2.0
"""veridian_ipc: microkernel-style IPC between processes, from Python.

    import veridian_ipc as vipc

    with vipc.Server.publish("demo/py") as server:        # one process
        request = server.receive(timeout=5.0)
        server.reply(request, request.data.upper())

    with vipc.Connection.connect("demo/py") as conn:      # another process
        print(conn.call(b"hello", timeout=1.0).data)      # b'HELLO'

Errors are exceptions, one class per kind (vipc.Timeout, vipc.EndpointNotFound, ...), all
subclasses of vipc.IpcError with .code and .detail. Timeouts are seconds. fileno() works with
selectors and asyncio; veridian_ipc.aio has `await conn.call(...)`.
"""
from ._core import (GRANT, INLINE_MAX, RECEIVE, REVOKE, SEND, Capability, Connection, Message,
                    Region, Server, Transfer, now, stat_endpoint)
from .errors import (ALL as ERROR_KINDS, ChannelEmpty, ChannelFull, EndpointBusy,
                     EndpointNotFound, InvalidCapability, InvalidMemoryRegion, InvalidMessage,
                     IpcError, MessageTooLarge, NotInitialized, OutOfMemory, PermissionDenied,
                     ProcessNotFound, RateLimitExceeded, ResourceBusy, Timeout, WouldBlock,
                     error_for)
from . import aio

__version__ = "0.1.0"

__all__ = [
    "Server", "Connection", "Message", "Region", "Capability", "Transfer", "now",
    "stat_endpoint", "SEND", "RECEIVE", "GRANT", "REVOKE", "INLINE_MAX", "aio", "IpcError",
    "ERROR_KINDS", "error_for", "InvalidCapability", "ProcessNotFound", "EndpointNotFound",
    "MessageTooLarge", "OutOfMemory", "WouldBlock", "RateLimitExceeded", "Timeout",
    "PermissionDenied", "InvalidMessage", "ChannelFull", "ChannelEmpty", "EndpointBusy",
    "InvalidMemoryRegion", "ResourceBusy", "NotInitialized",
]
