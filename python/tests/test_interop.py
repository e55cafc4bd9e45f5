# SPDX-License-Identifier: MIT OR Apache-2.0
"""Across processes: a Python client and a C++ server (`vipc serve`, the C++ runtime), a C++
client (`vipc call`) and a Python server, a C client and a Python server, and back."""
import json
import subprocess
import sys
import threading

from conftest import HERE, program, wait_published

import veridian_ipc as vipc


def test_python_client_calls_a_cxx_server(runtime_dir, spawn):
    server = spawn(program("vipc"), "serve", "py/cxx", "--runtime-dir", runtime_dir)
    wait_published("py/cxx", runtime_dir, server)
    with vipc.Connection.connect("py/cxx", runtime_dir=runtime_dir) as conn:
        assert conn.server_pid == server.pid
        for size in (0, 1, 48, vipc.INLINE_MAX):
            payload = bytes(range(size))
            reply = conn.call(payload, 7, timeout=5)  # vipc serve echoes the request
            assert reply.data == payload and reply.opcode == 7
        small = conn.call_small(9, (1, 2, 3, 4), timeout=5)
        assert small.kind == "small" and small.words == (1, 2, 3, 4)


def serve_in_thread(server, count):
    def run():
        for _ in range(count):
            request = server.receive(timeout=10)
            server.reply(request, request.data[::-1], request.opcode + 1, timeout=1)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_cxx_client_calls_a_python_server(runtime_dir, env):
    with vipc.Server.publish("py/server", runtime_dir=runtime_dir) as server:
        t = serve_in_thread(server, 1)
        out = subprocess.run([program("vipc"), "call", "py/server", "--data", "hello",
                              "--opcode", "41", "--json", "--runtime-dir", runtime_dir],
                             env=env, capture_output=True, text=True, timeout=30)
        t.join()
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["reply"]["opcode"] == 42
        assert bytes.fromhex(doc["reply"]["hex"]) == b"olleh"


def test_c_client_calls_a_python_server(runtime_dir, env):
    with vipc.Server.publish("py/for-c", runtime_dir=runtime_dir) as server:
        t = serve_in_thread(server, 1)
        out = subprocess.run([program("vipc_example_c_echo"), "call", "py/for-c", "from C", "9"],
                             env=env, capture_output=True, text=True, timeout=30)
        t.join()
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "reply opcode 10: C morf"


def test_python_server_process_answers_a_c_client(runtime_dir, spawn, env):
    server = spawn(sys.executable, str(HERE.parent / "examples" / "echo.py"), "serve",
                   "py/echo-proc", "2")
    wait_published("py/echo-proc", runtime_dir, server)
    c = program("vipc_example_c_echo")
    ok = subprocess.run([c, "call", "py/echo-proc", "ping", "1"], env=env, capture_output=True,
                        text=True, timeout=30)
    assert ok.stdout.strip() == "reply opcode 2: ping", ok.stderr
    err = subprocess.run([c, "call", "py/echo-proc", "x", "1013"], env=env, capture_output=True,
                         text=True, timeout=30)
    assert err.returncode == 3 and err.stdout.strip() == "error EndpointBusy -13"
    assert server.wait(10) == 0


def test_cli_call_with_4k_from_a_file_to_a_python_server(runtime_dir, env, tmp_path):
    payload = bytes((i * 29 + 3) % 256 for i in range(4096))
    (tmp_path / "4k.bin").write_bytes(payload)
    with vipc.Server.publish("py/4k", runtime_dir=runtime_dir) as server:
        t = serve_in_thread(server, 1)
        out = subprocess.run([program("vipc"), "call", "py/4k", "@" + str(tmp_path / "4k.bin"),
                              "--opcode", "3", "--out", str(tmp_path / "reply.bin"),
                              "--runtime-dir", runtime_dir],
                             env=env, capture_output=True, text=True, timeout=30)
        t.join()
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "reply.bin").read_bytes() == payload[::-1]


def test_cli_loans_bigger_than_the_inline_maximum_reach_a_python_server(runtime_dir, env,
                                                                        tmp_path):
    # 8 KiB: over the receive buffer's first size, so receive() grows it (the loan stays
    # queued meanwhile) and the runtime gets the chunk back.
    payload = bytes((i * 7 + 1) % 256 for i in range(8192))
    (tmp_path / "8k.bin").write_bytes(payload)
    with vipc.Server.publish("py/loan", runtime_dir=runtime_dir) as server:
        out = subprocess.run([program("vipc"), "send", "py/loan", "@" + str(tmp_path / "8k.bin"),
                              "--via", "loan", "--runtime-dir", runtime_dir],
                             env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        got = server.receive(timeout=10)
        assert got.data == payload and got.region_size == 0


def test_python_client_calls_the_c_example_with_4k(runtime_dir, spawn):
    server = spawn(program("vipc_example_c_echo"), "serve", "py/c4k", "1")
    wait_published("py/c4k", runtime_dir, server)
    payload = bytes((i * 11) % 256 for i in range(4096))
    with vipc.Connection.connect("py/c4k", runtime_dir=runtime_dir) as conn:
        reply = conn.call(payload, 20, timeout=10)
        assert reply.opcode == 21 and reply.data == payload
    assert server.wait(10) == 0
