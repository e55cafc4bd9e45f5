# SPDX-License-Identifier: MIT OR Apache-2.0
"""asyncio and selectors over the pollable descriptors."""
import asyncio
import json
import selectors
import sys

import pytest
from conftest import program, wait_published

import veridian_ipc as vipc


def test_asyncio_calls_a_cxx_server(runtime_dir, spawn):
    server = spawn(program("vipc"), "serve", "py/aio", "--runtime-dir", runtime_dir)
    wait_published("py/aio", runtime_dir, server)

    async def main():
        async with await vipc.aio.connect("py/aio", runtime_dir=runtime_dir) as conn:
            # 32 calls in flight at once, from one thread.
            replies = await asyncio.gather(
                *(conn.call(f"call {i}".encode(), i, timeout=5) for i in range(32)))
            return [(r.opcode, r.data) for r in replies]

    assert asyncio.run(main()) == [(i, f"call {i}".encode()) for i in range(32)]


def test_asyncio_call_times_out_and_is_abandoned(runtime_dir):
    with vipc.Server.publish("py/silent", runtime_dir=runtime_dir) as server:
        async def main():
            conn = await vipc.aio.connect("py/silent", runtime_dir=runtime_dir)
            with pytest.raises(vipc.Timeout):
                await conn.call(b"nobody answers", timeout=0.05)
            conn.close()

        asyncio.run(main())
        assert server.try_receive().data == b"nobody answers"


def test_asyncio_server_answers_a_cxx_client(runtime_dir, env):
    async def handler(request):
        if request.opcode == 13:
            raise vipc.PermissionDenied("not this one")
        return request.data.upper()

    async def main():
        with vipc.Server.publish("py/aserve", runtime_dir=runtime_dir) as server:
            serving = asyncio.create_task(vipc.aio.serve(server, handler, count=2))
            results = []
            for opcode in (1, 13):
                proc = await asyncio.create_subprocess_exec(
                    program("vipc"), "call", "py/aserve", "--data", "quiet", "--opcode",
                    str(opcode), "--json", "--runtime-dir", runtime_dir, env=env,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
                out, _ = await proc.communicate()
                results.append((proc.returncode, json.loads(out)))
            assert await serving == 2
            return results

    (rc_ok, ok), (rc_err, err) = asyncio.run(main())
    assert rc_ok == 0 and bytes.fromhex(ok["reply"]["hex"]) == b"QUIET"
    assert rc_err == 1 and err["error"]["kind"] == "PermissionDenied"


def test_selectors_drive_a_server_and_a_client_in_one_thread(runtime_dir):
    with vipc.Server.publish("py/select", runtime_dir=runtime_dir) as server, \
            vipc.Connection.connect("py/select", runtime_dir=runtime_dir) as conn:
        sel = selectors.DefaultSelector()
        sel.register(server.fileno(), selectors.EVENT_READ, "server")
        sel.register(conn.fileno(), selectors.EVENT_READ, "client")
        pending = {conn.begin_call(bytes([i]), i): i for i in range(20)}
        answered = {}
        while pending:
            events = sel.select(timeout=5)
            assert events, "nothing became readable in 5 s"
            for key, _ in events:
                if key.data == "server":
                    while (request := server.try_receive()) is not None:
                        server.reply(request, request.data * 2, request.opcode, timeout=1)
                else:
                    for txid in list(pending):
                        reply = conn.take_reply(txid)
                        if reply is not None:
                            answered[pending.pop(txid)] = reply.data
                    while conn.try_receive() is not None:
                        pass
        assert answered == {i: bytes([i, i]) for i in range(20)}
        sel.close()
