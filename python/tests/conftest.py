# SPDX-License-Identifier: MIT OR Apache-2.0
"""Fixtures: a private runtime directory per test, the build tree's programs (the C++ `vipc`
tool and the C example), and an environment for the processes a test starts."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
BUILD = pathlib.Path(os.environ.get("VIPC_BUILD_DIR", SOURCE / "build")).resolve()
if "VIPC_LIBRARY" not in os.environ:
    os.environ["VIPC_LIBRARY"] = str(BUILD / "src" / "libveridian_ipc.so")
sys.path.insert(0, str(HERE.parent))

import veridian_ipc as vipc  # noqa: E402


def program(name):
    path = BUILD / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it first (cmake --build {BUILD} --target ...)")
    return str(path)


@pytest.fixture
def runtime_dir():
    # Short, under /tmp: a socket path must fit in sockaddr_un.
    d = tempfile.mkdtemp(prefix="vipc-py-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(runtime_dir):
    e = dict(os.environ)
    e["VIPC_RUNTIME_DIR"] = runtime_dir
    e["PYTHONPATH"] = str(HERE.parent) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def wait_published(name, runtime_dir, proc, timeout=10.0):
    """Waits until `name` answers (its server process is up)."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the server exited {proc.returncode}: {out} {err}")
        try:
            vipc.stat_endpoint(name, runtime_dir)
            return
        except vipc.EndpointNotFound:
            time.sleep(0.01)
    pytest.fail(f"{name} was not published within {timeout} s")


@pytest.fixture
def spawn(env):
    """Starts a process (killed at the end of the test if still running)."""
    procs = []

    def start(*argv):
        p = subprocess.Popen(list(argv), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()
