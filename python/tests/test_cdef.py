# SPDX-License-Identifier: MIT OR Apache-2.0
from conftest import SOURCE

from veridian_ipc._cdef import CDEF


def test_cdef_is_the_headers_declarations():
    header = (SOURCE / "include" / "veridian" / "ipc.h").read_text()
    block = header.split("/* VIPC_CDEF_BEGIN */")[1].split("/* VIPC_CDEF_END */")[0]
    assert CDEF == block, "run python3 python/tools/update_cdef.py"


def test_every_declared_function_is_in_the_library():
    import re

    from veridian_ipc._lib import lib

    names = re.findall(r"\b(vipc_[a-z_]+)\(", CDEF)
    assert len(set(names)) >= 49
    for name in set(names):
        assert callable(getattr(lib, name)), name
