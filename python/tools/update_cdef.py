# SPDX-License-Identifier: MIT OR Apache-2.0
"""Copies the C API's declarations from include/veridian/ipc.h into veridian_ipc/_cdef.py."""
import pathlib

here = pathlib.Path(__file__).resolve().parent
header = (here / "../../include/veridian/ipc.h").read_text()
block = header.split("/* VIPC_CDEF_BEGIN */")[1].split("/* VIPC_CDEF_END */")[0]
(here / "../veridian_ipc/_cdef.py").write_text(
    "# SPDX-License-Identifier: MIT OR Apache-2.0\n"
    "# The C API's declarations, exactly the text between VIPC_CDEF_BEGIN and VIPC_CDEF_END in\n"
    "# include/veridian/ipc.h (python/tests/test_cdef.py checks that they stay the same; regenerate\n"
    "# with `python3 python/tools/update_cdef.py`).\n"
    'CDEF = r"""' + block + '"""\n'
)
