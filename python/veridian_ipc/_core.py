# SPDX-License-Identifier: MIT OR Apache-2.0
"""Server, Connection, Message, Region and Capability over the C API.

Timeouts are seconds (float): None waits forever, 0 does not wait. Payloads are any object
with the buffer protocol (bytes, bytearray, memoryview, array): passed to the runtime without
a copy in Python. Up to the endpoint's inline maximum (`max_inline`, 4096 bytes by default)
they are copied into the ring (one copy in, one copy out); bigger ones travel in a Region.
The C calls release the GIL, so other Python threads run while one blocks.
"""
import enum

from ._lib import ffi, lib
from .errors import ChannelEmpty, InvalidMessage, IpcError, MessageTooLarge, check, code_of

NEVER = lib.VIPC_DEADLINE_NEVER
INLINE_MAX = lib.VIPC_INLINE_MAX

SEND = lib.VIPC_RIGHT_SEND
RECEIVE = lib.VIPC_RIGHT_RECEIVE
GRANT = lib.VIPC_RIGHT_GRANT
REVOKE = lib.VIPC_RIGHT_REVOKE


class Transfer(enum.IntEnum):
    """How a Region travels (see veridian/ipc/posix/region.hpp)."""
    MOVE = lib.VIPC_TRANSFER_MOVE
    SHARE_READ_ONLY = lib.VIPC_TRANSFER_SHARE_READ_ONLY
    SHARE_READ_WRITE = lib.VIPC_TRANSFER_SHARE_READ_WRITE
    COPY = lib.VIPC_TRANSFER_COPY


def now():
    """CLOCK_MONOTONIC in seconds (the clock of every deadline)."""
    return lib.vipc_now_ns() / 1e9


def deadline(timeout):
    """A C API deadline from a timeout in seconds (None: never; 0 or less: now)."""
    if timeout is None:
        return NEVER
    if timeout <= 0:
        return 0
    ns = lib.vipc_now_ns() + int(timeout * 1e9)
    return ns if ns < NEVER else NEVER


def _spill(payload, region, transfer, limit):
    """A payload over `limit` (the endpoint's inline maximum) without a region of its own
    travels in a new Region, moved to the receiver (sealed: it cannot change after it was
    sent): (inline payload, region, transfer) to send."""
    if region is not None or payload is None or isinstance(payload, str):
        return payload, region, transfer
    view = memoryview(payload)
    if view.nbytes <= limit:
        return payload, region, transfer
    spilled = Region.create(view.nbytes)
    spilled.view()[:] = view.cast("B") if view.format != "B" else view
    return b"", spilled, Transfer.MOVE


def _buffer(payload):
    """(pointer, size) of a payload without copying it."""
    if payload is None:
        return ffi.NULL, 0
    if isinstance(payload, str):
        raise TypeError("payloads are bytes-like (bytes, bytearray, memoryview); encode text first")
    view = memoryview(payload)
    if not view.contiguous:
        raise InvalidMessage("the payload must be contiguous")
    size = view.nbytes
    if size == 0:
        return ffi.NULL, 0
    return ffi.from_buffer(view.cast("B") if view.format != "B" else view), size


class Message:
    """A received message. `data` holds its payload bytes (for a small message, the 32 bytes of
    its four data words; `words` gives them as integers)."""

    __slots__ = ("kind", "opcode", "flags", "data", "words", "capability", "sender_pid",
                 "transaction_id", "connection", "region_size", "capability_count",
                 "caller_deadline", "_raw")

    def __init__(self, raw, data=None):
        self._raw = raw
        self.kind = "small" if raw.kind == lib.VIPC_KIND_SMALL else "bytes"
        self.opcode = raw.opcode
        self.flags = raw.flags
        self.capability = raw.capability
        self.words = tuple(raw.words)
        if self.kind == "small":
            self.data = bytes(ffi.buffer(raw.words, 32))
        elif data is not None:
            self.data = data  # taken with receive_into / call_into: any size
        else:
            self.data = bytes(ffi.buffer(raw.bytes, raw.size))
        self.sender_pid = raw.sender_pid
        self.transaction_id = raw.transaction_id
        self.connection = raw.connection
        self.region_size = raw.region_size
        self.capability_count = raw.capability_count
        # On a server, for a call: when its caller stops waiting, in seconds on now()'s clock
        # (None: no deadline, not a call, or a small message). A hint: the client's word.
        self.caller_deadline = (None if raw.caller_deadline == NEVER
                                else raw.caller_deadline / 1e9)

    @property
    def is_call(self):
        return self.transaction_id != 0

    def payload(self):
        """All the payload bytes: the inline ones and, when a region came with the message
        (a payload over INLINE_MAX sent by send/call/reply travels in one), the region's (taken:
        call it once)."""
        if not self.region_size:
            return self.data
        with self.take_region() as region:
            return self.data + bytes(region.view())

    def take_region(self):
        """The Region this message carries (once)."""
        out = ffi.new("vipc_region**")
        check(lib.vipc_region_receive(self._raw, out))
        return Region(out[0])

    def take_capability(self, index=0):
        """Capability `index` of those this message carries (each once)."""
        out = ffi.new("vipc_capability**")
        check(lib.vipc_capability_receive(self._raw, index, out))
        return Capability(out[0])

    def __repr__(self):
        return (f"Message(opcode={self.opcode}, data={self.data!r}, flags={self.flags:#x}, "
                f"sender_pid={self.sender_pid}, transaction_id={self.transaction_id})")


def _new_message():
    return ffi.new("vipc_message*")


class _Inbox:
    """A receive buffer that grows to what the runtime says it needs (the message stays
    queued meanwhile), starting at the endpoint's inline maximum."""

    __slots__ = ("buffer", "needed")

    def __init__(self, size):
        self.buffer = ffi.new("uint8_t[]", max(size, INLINE_MAX))
        self.needed = ffi.new("size_t*")

    def take(self, receive):
        """Calls receive(header, buffer, capacity, needed) until the buffer is big enough:
        the Message, or None for CHANNEL_EMPTY."""
        while True:
            header = _new_message()
            rc = receive(header, self.buffer, len(self.buffer), self.needed)
            if rc == MessageTooLarge.code and self.needed[0] > len(self.buffer):
                self.buffer = ffi.new("uint8_t[]", self.needed[0])
                continue
            if rc == ChannelEmpty.code:
                return None
            check(rc)
            data = None
            if header.kind != lib.VIPC_KIND_SMALL:
                data = bytes(ffi.buffer(self.buffer, self.needed[0]))
            return Message(header, data)


class Region:
    """Shared memory that travels with a message (a sealed memfd). `view()` is a zero-copy
    memoryview of its mapping, valid until close()."""

    def __init__(self, handle):
        self._h = handle

    @classmethod
    def create(cls, size):
        out = ffi.new("vipc_region**")
        check(lib.vipc_region_create(size, out))
        return cls(out[0])

    def view(self):
        data = ffi.new("void**")
        size = ffi.new("uint64_t*")
        writable = ffi.new("int*")
        check(lib.vipc_region_data(self._handle(), data, size, writable))
        mv = memoryview(ffi.buffer(data[0], size[0]))
        return mv if writable[0] else mv.toreadonly()

    @property
    def size(self):
        size = ffi.new("uint64_t*")
        check(lib.vipc_region_data(self._handle(), ffi.NULL, size, ffi.NULL))
        return size[0]

    def _handle(self):
        if self._h is None:
            raise InvalidMessage("the region is closed")
        return self._h

    def close(self):
        if self._h is not None:
            lib.vipc_region_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Capability:
    """The right to connect to an endpoint (a descriptor), passed in messages."""

    def __init__(self, handle):
        self._h = handle

    @property
    def rights(self):
        out = ffi.new("uint32_t*")
        check(lib.vipc_capability_rights(self._handle(), out))
        return out[0]

    def derive(self, rights):
        out = ffi.new("vipc_capability**")
        check(lib.vipc_capability_derive(self._handle(), rights, out))
        return Capability(out[0])

    def connect(self, *, rights=SEND | RECEIVE, connect_timeout=2.0):
        """A Connection made through this capability."""
        return Connection._connect(None, self, rights, None, connect_timeout)

    def _handle(self):
        if self._h is None:
            raise InvalidMessage("the capability is closed")
        return self._h

    def close(self):
        if self._h is not None:
            lib.vipc_capability_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class _Handle:
    _close = None
    _free = None

    def __init__(self, handle):
        self._h = handle

    def _handle(self):
        if self._h is None:
            raise InvalidMessage(f"the {type(self).__name__} is closed")
        return self._h

    def close(self):
        """Closes (blocked calls in other threads return) and releases the handle. Call it
        when no other thread is inside a call on this object, or use shutdown() first."""
        if self._h is not None:
            h, self._h = self._h, None
            type(self)._free(h)

    def shutdown(self):
        """Closes without releasing: other threads' blocked calls return (thread-safe)."""
        if self._h is not None:
            check(type(self)._close(self._h))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class Server(_Handle):
    """A published endpoint. `with Server.publish("demo/echo") as s: ...`"""

    _close = lib.vipc_server_close
    _free = lib.vipc_server_free

    def __init__(self, handle, name):
        super().__init__(handle)
        self.name = name
        out = ffi.new("uint32_t*")
        check(lib.vipc_server_max_inline(handle, out))
        #: The largest payload a send or reply carries inline (the endpoint's maximum).
        self.max_inline = out[0]
        self._inbox = _Inbox(self.max_inline)

    @classmethod
    def publish(cls, name, *, runtime_dir=None, capacity=None, spin_ns=None,
                max_connections=None):
        options = ffi.new("vipc_server_options*")
        lib.vipc_server_options_init(options)
        if capacity is not None:
            options.capacity = capacity
        if spin_ns is not None:
            options.spin_ns = spin_ns
        if max_connections is not None:
            options.max_connections = max_connections
        keep = None
        if runtime_dir is not None:
            keep = ffi.new("char[]", str(runtime_dir).encode())
            options.runtime_dir = keep
        out = ffi.new("vipc_server**")
        check(lib.vipc_server_publish(name.encode(), options, out))
        return cls(out[0], name)

    def receive(self, timeout=None):
        """The next message from any client, its payload of any size in .data (a loan is
        copied and given back); Timeout when none came in time."""
        h, d = self._handle(), deadline(timeout)
        return self._inbox.take(lambda m, b, n, needed: lib.vipc_server_receive_into(
            h, m, b, n, needed, d))

    def try_receive(self):
        """The next message, or None when nothing is queued (re-arms fileno())."""
        h = self._handle()
        return self._inbox.take(lambda m, b, n, needed: lib.vipc_server_try_receive_into(
            h, m, b, n, needed))

    def reply(self, request, data=b"", opcode=0, *, region=None, transfer=Transfer.SHARE_READ_ONLY,
              timeout=None):
        """Answers the call `request` with `data`: up to max_inline bytes inline; more (or with
        `region`) in a region, which the caller's call() delivers when its own request came in
        a region (reply.payload() reads it); otherwise MessageTooLarge."""
        if request.region_size:
            data, region, transfer = _spill(data, region, transfer, self.max_inline)
        ptr, size = _buffer(data)
        if region is not None:
            check(lib.vipc_server_reply_region(self._handle(), request._raw, opcode, ptr, size,
                                               region._handle(), int(transfer),
                                               deadline(timeout)))
        else:
            check(lib.vipc_server_reply(self._handle(), request._raw, opcode, ptr, size,
                                        deadline(timeout)))

    def reply_error(self, request, error, detail=None, *, timeout=None):
        """Answers `request` with an error (an IpcError class, instance or code): the caller's
        call raises it, with `detail` (default: an instance's own detail; its first 56 bytes
        travel) at the end of its detail."""
        if detail is None and isinstance(error, IpcError):
            detail = error.detail
        text = ffi.NULL if not detail else str(detail).encode("utf-8", "replace")
        check(lib.vipc_server_reply_error(self._handle(), request._raw, code_of(error), text,
                                          deadline(timeout)))

    def send(self, connection, data=b"", opcode=0, *, timeout=None):
        """A one-way message of up to max_inline bytes to client `connection` (a received
        message's .connection)."""
        ptr, size = _buffer(data)
        check(lib.vipc_server_send(self._handle(), connection, opcode, ptr, size,
                                   deadline(timeout)))

    def send_capability(self, connection, capability, opcode=0, *, timeout=None):
        check(lib.vipc_server_send_capability(self._handle(), connection, opcode,
                                              capability._handle(), deadline(timeout)))

    def mint_capability(self, rights):
        """(Capability, id): a new capability to this endpoint; revoke(id) ends it."""
        out = ffi.new("vipc_capability**")
        cid = ffi.new("uint64_t*")
        check(lib.vipc_server_mint_capability(self._handle(), rights, out, cid))
        return Capability(out[0]), cid[0]

    def revoke(self, capability_id):
        check(lib.vipc_server_revoke(self._handle(), capability_id))

    def fileno(self):
        """A descriptor readable when a message may be waiting (selectors, asyncio's
        add_reader): drain with try_receive() until None."""
        fd = ffi.new("int*")
        check(lib.vipc_server_pollable_fd(self._handle(), fd))
        return fd[0]

    def stats(self):
        s = ffi.new("vipc_endpoint_stats*")
        check(lib.vipc_server_stats(self._handle(), s))
        return _stats(s)


def _stats(s):
    return {k: getattr(s, k) for k in ("owner_pid", "owner_uid", "capacity", "connections",
                                       "accepted", "received", "sent", "broken")}


def stat_endpoint(name, runtime_dir=None):
    """The statistics of the endpoint `name` (asked of its server)."""
    s = ffi.new("vipc_endpoint_stats*")
    rd = ffi.NULL if runtime_dir is None else str(runtime_dir).encode()
    check(lib.vipc_stat_endpoint(name.encode(), rd, s))
    return _stats(s)


class Connection(_Handle):
    """A client's connection. `with Connection.connect("demo/echo") as c: c.call(b"hi")`"""

    _close = lib.vipc_connection_close
    _free = lib.vipc_connection_free

    @classmethod
    def connect(cls, name, *, runtime_dir=None, rights=SEND | RECEIVE, connect_timeout=2.0):
        return cls._connect(name, None, rights, runtime_dir, connect_timeout)

    @classmethod
    def _connect(cls, name, capability, rights, runtime_dir, connect_timeout):
        options = ffi.new("vipc_connect_options*")
        lib.vipc_connect_options_init(options)
        options.rights = rights
        options.connect_timeout_ms = max(1, int(connect_timeout * 1000))
        keep = None
        if runtime_dir is not None:
            keep = ffi.new("char[]", str(runtime_dir).encode())
            options.runtime_dir = keep
        out = ffi.new("vipc_connection**")
        if capability is not None:
            check(lib.vipc_connect_capability(capability._handle(), options, out))
        else:
            check(lib.vipc_connect(name.encode(), options, out))
        del keep
        return cls(out[0])

    def __init__(self, handle):
        super().__init__(handle)
        out = ffi.new("uint32_t*")
        check(lib.vipc_connection_max_inline(handle, out))
        #: The largest payload a send or call carries inline (the server's maximum).
        self.max_inline = out[0]
        self._inbox = _Inbox(self.max_inline)
        self._reply = _Inbox(self.max_inline)

    def send(self, data=b"", opcode=0, *, region=None, transfer=Transfer.SHARE_READ_ONLY,
             timeout=None):
        """A one-way message of any size (over max_inline in a region); waits while the queue
        is full (timeout=0: ChannelFull)."""
        data, region, transfer = _spill(data, region, transfer, self.max_inline)
        ptr, size = _buffer(data)
        if region is not None:
            check(lib.vipc_connection_send_region(self._handle(), opcode, ptr, size,
                                                  region._handle(), int(transfer),
                                                  deadline(timeout)))
        else:
            check(lib.vipc_connection_send(self._handle(), opcode, ptr, size, deadline(timeout)))

    def send_small(self, opcode, words=(0, 0, 0, 0), *, timeout=None):
        """The 48-byte register-sized message: four 64-bit data words."""
        m = ffi.new("vipc_small*")
        m.opcode = opcode
        for i, w in enumerate(words):
            m.data[i] = w
        check(lib.vipc_connection_send_small(self._handle(), m, deadline(timeout)))

    def send_capability(self, capability, opcode=0, *, timeout=None):
        check(lib.vipc_connection_send_capability(self._handle(), opcode, capability._handle(),
                                                  deadline(timeout)))

    def call(self, data=b"", opcode=0, *, region=None, transfer=Transfer.SHARE_READ_ONLY,
             timeout=None):
        """Sends a request of any size (over max_inline in a region) and returns the reply (a
        Message: .data holds an inline reply of any size; reply.payload() adds a region's
        bytes); raises the server's error when it answered with one. A server may answer with a
        region only a request that came in one (the runtime delivers regions to those calls)."""
        data, region, transfer = _spill(data, region, transfer, self.max_inline)
        ptr, size = _buffer(data)
        if region is not None:
            reply = _new_message()
            check(lib.vipc_connection_call_region(self._handle(), opcode, ptr, size,
                                                  region._handle(), int(transfer), reply,
                                                  deadline(timeout)))
            return Message(reply)
        box = self._reply
        header = _new_message()
        rc = lib.vipc_connection_call_into(self._handle(), opcode, ptr, size, header, box.buffer,
                                           len(box.buffer), box.needed, deadline(timeout))
        if rc == MessageTooLarge.code and box.needed[0] > len(box.buffer):
            # A loan reply bigger than the buffer (it is dropped): the next call will fit it.
            box.buffer = ffi.new("uint8_t[]", box.needed[0])
        check(rc)
        return Message(header, bytes(ffi.buffer(box.buffer, box.needed[0])))

    def call_small(self, opcode, words=(0, 0, 0, 0), *, timeout=None):
        m = ffi.new("vipc_small*")
        m.opcode = opcode
        for i, w in enumerate(words):
            m.data[i] = w
        reply = _new_message()
        check(lib.vipc_connection_call_small(self._handle(), m, reply, deadline(timeout)))
        return Message(reply)

    def begin_call(self, data=b"", opcode=0, *, timeout=0):
        """Sends a request of at most INLINE_MAX bytes without waiting for the reply; returns
        its transaction id. take_reply(id) when fileno() is readable."""
        ptr, size = _buffer(data)
        txid = ffi.new("uint64_t*")
        check(lib.vipc_connection_call_begin(self._handle(), opcode, ptr, size, txid,
                                             deadline(timeout)))
        return txid[0]

    def take_reply(self, transaction_id):
        """The reply to a call begun, or None while it has not come."""
        reply = _new_message()
        rc = lib.vipc_connection_call_poll(self._handle(), transaction_id, reply)
        if rc == ChannelEmpty.code:
            return None
        check(rc)
        return Message(reply)

    def cancel_call(self, transaction_id):
        check(lib.vipc_connection_call_cancel(self._handle(), transaction_id))

    def receive(self, timeout=None):
        """The next message from the server that is not a reply, its payload of any size in
        .data (a loan is copied and given back)."""
        h, d = self._handle(), deadline(timeout)
        return self._inbox.take(lambda m, b, n, needed: lib.vipc_connection_receive_into(
            h, m, b, n, needed, d))

    def try_receive(self):
        """The next message, or None (re-arms fileno())."""
        h = self._handle()
        return self._inbox.take(lambda m, b, n, needed: lib.vipc_connection_try_receive_into(
            h, m, b, n, needed))

    def fileno(self):
        """A descriptor readable when a message or a reply may be waiting (selectors,
        asyncio's add_reader): drain with try_receive()/take_reply() until None."""
        fd = ffi.new("int*")
        check(lib.vipc_connection_pollable_fd(self._handle(), fd))
        return fd[0]

    @property
    def server_pid(self):
        pid = ffi.new("uint64_t*")
        check(lib.vipc_connection_server_pid(self._handle(), pid))
        return pid[0]
