# SPDX-License-Identifier: MIT OR Apache-2.0
from conftest import SOURCE

from veridian_ipc._cdef import CDEF


def test_cdef_is_the_headers_declarations():
    header = (SOURCE / "include" / "veridian" / "ipc.h").read_text()
    block = header.split("/* VIPC_CDEF_BEGIN */")[1].split("/* VIPC_CDEF_END */")[0]
    assert CDEF == block, "run python3 python/tools/update_cdef.py"
