# SPDX-License-Identifier: MIT OR Apache-2.0
"""Payloads: bytes-like objects of every inline size, regions (zero-copy views), capabilities."""
import array
import hashlib
import threading

import pytest

import veridian_ipc as vipc


@pytest.fixture
def echo(runtime_dir):
    server = vipc.Server.publish("py/payloads", runtime_dir=runtime_dir)
    stop = threading.Event()

    def run():
        while not stop.is_set():
            try:
                request = server.receive(timeout=0.05)
            except vipc.Timeout:
                continue
            except vipc.EndpointNotFound:
                return
            if request.region_size:
                with request.take_region() as region:
                    view = region.view()
                    assert view.readonly
                    digest = hashlib.sha256(view).digest()[:32]
                    del view
                server.reply(request, digest, 2, timeout=1)
            else:
                server.reply(request, request.data, request.opcode, timeout=1)

    t = threading.Thread(target=run)
    t.start()
    conn = vipc.Connection.connect("py/payloads", runtime_dir=runtime_dir)
    yield conn
    conn.close()
    stop.set()
    t.join()
    server.close()


@pytest.mark.parametrize("size", [0, 1, 47, 48, 63, 64])
def test_every_inline_size_and_buffer_kind(echo, size):
    raw = bytes((i * 7) % 256 for i in range(size))
    for payload in (raw, bytearray(raw), memoryview(raw), memoryview(bytearray(raw))):
        assert echo.call(payload, 3, timeout=5).data == raw


def test_typed_buffers_travel_as_their_bytes(echo):
    words = array.array("I", [1, 2, 3])
    assert echo.call(words, timeout=5).data == words.tobytes()


def test_text_is_not_a_payload(echo):
    with pytest.raises(TypeError):
        echo.call("text is not bytes", timeout=5)


def test_a_region_travels_zero_copy(echo):
    with vipc.Region.create(1 << 20) as region:
        view = region.view()
        assert not view.readonly and len(view) == 1 << 20
        view[:5] = b"hello"
        view[-1] = 0xFF
        expected = hashlib.sha256(view).digest()[:32]
        del view
        reply = echo.call(b"", 1, region=region, transfer=vipc.Transfer.SHARE_READ_ONLY,
                          timeout=5)
        assert reply.data == expected


def test_a_capability_travels_and_connects(runtime_dir):
    with vipc.Server.publish("py/caps", runtime_dir=runtime_dir) as server, \
            vipc.Connection.connect("py/caps", runtime_dir=runtime_dir) as first:
        first.send(b"hello", timeout=5)
        hello = server.receive(timeout=5)
        cap, _ = server.mint_capability(vipc.SEND | vipc.RECEIVE | vipc.GRANT)
        server.send_capability(hello.connection, cap, 5, timeout=5)
        got = first.receive(timeout=5)
        assert got.capability_count == 1
        with got.take_capability() as mine, mine.connect() as second:
            assert mine.rights & vipc.SEND
            second.send(b"through the capability", timeout=5)
            assert server.receive(timeout=5).data == b"through the capability"
        cap.close()


@pytest.mark.parametrize("size", [vipc.INLINE_MAX + 1, 4096, 4097, 1 << 20])
def test_payloads_travel_inline_up_to_the_maximum_then_in_a_region(runtime_dir, spawn, size):
    from conftest import program, wait_published
    server = spawn(program("vipc"), "serve", "py/big", "--runtime-dir", runtime_dir)
    wait_published("py/big", runtime_dir, server)
    payload = bytes((i * 13) % 251 for i in range(size))
    with vipc.Connection.connect("py/big", runtime_dir=runtime_dir) as conn:
        assert conn.max_inline == 4096  # the default
        reply = conn.call(payload, 3, timeout=10)  # vipc serve echoes it the way it came
        assert reply.region_size == (0 if size <= conn.max_inline else size)
        assert reply.payload() == payload


SIZES = [1, 64, 65, 4096]


def test_every_size_both_directions_send_and_call(runtime_dir):
    with vipc.Server.publish("py/sizes", runtime_dir=runtime_dir) as server, \
            vipc.Connection.connect("py/sizes", runtime_dir=runtime_dir) as conn:
        top = server.max_inline
        assert top == conn.max_inline == 4096
        for size in SIZES + [top]:
            payload = bytes((i * 31 + size) % 256 for i in range(size))
            conn.send(payload, 4, timeout=5)
            got = server.receive(timeout=5)
            assert (got.data, got.opcode, got.region_size) == (payload, 4, 0)
            server.send(got.connection, payload[::-1], 5, timeout=5)
            back = conn.receive(timeout=5)
            assert (back.data, back.opcode, back.region_size) == (payload[::-1], 5, 0)
        # One over: the server's send refuses it (naming the limit); the client's travels in a
        # region, nothing lost.
        over = bytes(range(256)) * ((top + 1) // 256) + b"!"
        with pytest.raises(vipc.MessageTooLarge) as e:
            server.send(got.connection, over, timeout=5)
        assert "4096" in e.value.detail
        conn.send(over, 6, timeout=5)
        got = server.receive(timeout=5)
        assert got.region_size == top + 1 and got.payload() == over
        assert conn.try_receive() is None and server.try_receive() is None

        def run(count):
            for _ in range(count):
                request = server.receive(timeout=5)
                server.reply(request, request.data[::-1], request.opcode + 1, timeout=1)

        t = threading.Thread(target=run, args=(len(SIZES) + 1,))
        t.start()
        for size in SIZES + [top]:
            payload = bytes((i * 17 + size) % 256 for i in range(size))
            reply = conn.call(payload, 8, timeout=5)
            assert (reply.data, reply.opcode, reply.region_size) == (payload[::-1], 9, 0)
        t.join()


def test_a_calls_deadline_reaches_the_server(runtime_dir):
    server = vipc.Server.publish("py/deadline", runtime_dir=runtime_dir)
    seen = []

    def run():
        for _ in range(3):
            request = server.receive(timeout=5)
            seen.append((request.caller_deadline, vipc.now()))
            if request.is_call:
                server.reply(request, request.data, request.opcode, timeout=1)

    t = threading.Thread(target=run)
    t.start()
    conn = vipc.Connection.connect("py/deadline", runtime_dir=runtime_dir)
    before = vipc.now()
    conn.call(b"with", 1, timeout=3)
    conn.call(b"without", 1)
    conn.send(b"one-way", 1)
    t.join()
    conn.close()
    server.close()
    (deadline, taken), (none, _), (one_way, _) = seen
    # The caller's deadline on the server's clock: the caller's plus the way there.
    assert before + 3 <= deadline + 1e-6
    assert deadline <= taken + 3 + 1e-6
    assert none is None
    assert one_way is None
