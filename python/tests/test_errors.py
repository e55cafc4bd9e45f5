# SPDX-License-Identifier: MIT OR Apache-2.0
"""Every IpcError reaches Python as its exception class, with its code and the detail."""
import threading

import pytest
from conftest import program, wait_published

import veridian_ipc as vipc
from veridian_ipc._lib import ffi, lib

CODES = range(-1, -17, -1)


def test_one_class_per_kind_named_as_the_runtime_names_it():
    assert len(vipc.ERROR_KINDS) == 16
    for code in CODES:
        cls = type(vipc.error_for(code))
        assert cls.code == code
        assert cls.__name__ == ffi.string(lib.vipc_error_name(code)).decode()
        assert issubclass(cls, vipc.IpcError)


def test_every_error_reply_raises_its_class_in_process(runtime_dir):
    with vipc.Server.publish("py/errors", runtime_dir=runtime_dir) as server:
        def answer():
            for code in CODES:
                request = server.receive(timeout=5)
                server.reply_error(request, code, f"refused {code}", timeout=1)

        t = threading.Thread(target=answer)
        t.start()
        with vipc.Connection.connect("py/errors", runtime_dir=runtime_dir) as conn:
            for code in CODES:
                cls = vipc.ERROR_KINDS[-code - 1]
                with pytest.raises(cls) as info:
                    conn.call(b"?", timeout=5)
                assert info.value.code == code
                assert f"{cls.__name__}: refused {code}" in info.value.detail
        t.join()


def test_every_error_from_a_c_server_raises_its_class(runtime_dir, spawn):
    server = spawn(program("vipc_example_c_echo"), "serve", "py/c-errors", "16")
    wait_published("py/c-errors", runtime_dir, server)
    with vipc.Connection.connect("py/c-errors", runtime_dir=runtime_dir) as conn:
        for code in CODES:
            with pytest.raises(vipc.ERROR_KINDS[-code - 1]):
                conn.call(b"x", 1000 - code, timeout=5)
    assert server.wait(10) == 0


def test_errors_the_runtime_finds(runtime_dir):
    with pytest.raises(vipc.EndpointNotFound) as info:
        vipc.Connection.connect("py/nobody", runtime_dir=runtime_dir)
    assert "py/nobody" in info.value.detail
    with pytest.raises(vipc.InvalidMessage):
        vipc.Server.publish("py//bad", runtime_dir=runtime_dir)
    with vipc.Server.publish("py/natural", runtime_dir=runtime_dir, capacity=1,
                             max_connections=1) as server:
        with pytest.raises(vipc.EndpointBusy):
            vipc.Server.publish("py/natural", runtime_dir=runtime_dir)
        with pytest.raises(vipc.Timeout):
            server.receive(timeout=0.01)
        assert server.try_receive() is None
        with vipc.Connection.connect("py/natural", runtime_dir=runtime_dir) as conn:
            with pytest.raises(vipc.ResourceBusy):
                vipc.Connection.connect("py/natural", runtime_dir=runtime_dir)
            with vipc.Region.create(vipc.INLINE_MAX + 1) as region:
                # A copied region must fit inline.
                with pytest.raises(vipc.MessageTooLarge):
                    conn.send(b"", region=region, transfer=vipc.Transfer.COPY)
            conn.send(b"fills the one slot", timeout=0)
            with pytest.raises(vipc.ChannelFull):
                conn.send(b"one more", timeout=0)
            m = server.receive(timeout=5)
            with pytest.raises(vipc.InvalidMemoryRegion):
                m.take_region()
            with pytest.raises(vipc.InvalidCapability):
                m.take_capability()
    with vipc.Server.publish("py/rights", runtime_dir=runtime_dir) as server:
        with vipc.Connection.connect("py/rights", runtime_dir=runtime_dir,
                                     rights=vipc.RECEIVE) as conn:
            with pytest.raises(vipc.PermissionDenied):
                conn.send(b"no SEND right")
        cap, cid = server.mint_capability(vipc.SEND | vipc.RECEIVE)
        server.revoke(cid)
        with pytest.raises(vipc.InvalidCapability):
            cap.connect()
        cap.close()
