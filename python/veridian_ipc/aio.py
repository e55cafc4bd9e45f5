# SPDX-License-Identifier: MIT OR Apache-2.0
"""asyncio integration: `await conn.call(...)` and an async server loop, on the pollable
descriptors (loop.add_reader), without threads.

    conn = await veridian_ipc.aio.connect("demo/echo")
    reply = await conn.call(b"hi", opcode=1, timeout=1.0)

    async def handler(request):            # returns bytes, or raises an IpcError kind
        return request.data.upper()
    await veridian_ipc.aio.serve(server, handler)
"""
import asyncio

from ._core import Connection
from .errors import IpcError, Timeout


class AsyncConnection:
    """A Connection whose calls are awaited. One-way messages from the server are queued for
    `await receive()`. Use it from one event loop."""

    def __init__(self, connection):
        self.connection = connection
        self._calls = {}  # transaction id -> future
        self._inbox = asyncio.Queue()
        self._loop = None
        self._fd = connection.fileno()

    def _watch(self):
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            loop.add_reader(self._fd, self._readable)

    def _readable(self):
        # Level-triggered: take every reply that came, then every message, until empty.
        for txid, fut in list(self._calls.items()):
            if fut.done():
                continue
            try:
                reply = self.connection.take_reply(txid)
            except IpcError as e:
                fut.set_exception(e)
                continue
            if reply is not None:
                fut.set_result(reply)
        while True:
            try:
                m = self.connection.try_receive()
            except IpcError as e:
                for fut in self._calls.values():
                    if not fut.done():
                        fut.set_exception(e)
                self._unwatch()
                return
            if m is None:
                break
            self._inbox.put_nowait(m)

    def _unwatch(self):
        if self._loop is not None:
            self._loop.remove_reader(self._fd)
            self._loop = None

    async def call(self, data=b"", opcode=0, *, timeout=None):
        """The reply to a request of at most INLINE_MAX bytes (a call that does not block the
        loop is begun with a Message; for more, run Connection.call in an executor); Timeout
        (and the call abandoned) after `timeout` seconds; the server's error if it answered
        with one."""
        self._watch()
        txid = self.connection.begin_call(data, opcode, timeout=0)
        fut = self._loop.create_future()
        self._calls[txid] = fut
        self._readable()  # it may be there already
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self.connection.cancel_call(txid)
            raise Timeout(f"no reply to call {txid} within {timeout} s") from None
        finally:
            del self._calls[txid]

    async def receive(self):
        """The next one-way message from the server."""
        self._watch()
        self._readable()
        return await self._inbox.get()

    def close(self):
        self._unwatch()
        self.connection.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()


async def connect(name, **options):
    """An AsyncConnection to `name` (options as Connection.connect)."""
    return AsyncConnection(Connection.connect(name, **options))


async def serve(server, handler, *, count=None):
    """Answers calls with `await handler(request)` (bytes to reply with; an IpcError kind it
    raises is sent back as the caller's error) until `count` calls were answered (None:
    forever). One-way messages are passed to the handler too; its result is dropped."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    fd = server.fileno()
    loop.add_reader(fd, ready.set)
    answered = 0
    try:
        while count is None or answered < count:
            await ready.wait()
            ready.clear()
            while count is None or answered < count:
                request = server.try_receive()
                if request is None:
                    break
                try:
                    result = await handler(request)
                except IpcError as e:
                    if request.is_call:
                        server.reply_error(request, e, timeout=1.0)
                        answered += 1
                    continue
                if request.is_call:
                    server.reply(request, result or b"", request.opcode, timeout=1.0)
                    answered += 1
            else:
                break
    finally:
        loop.remove_reader(fd)
    return answered
