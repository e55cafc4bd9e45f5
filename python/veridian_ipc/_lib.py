# SPDX-License-Identifier: MIT OR Apache-2.0
"""Loads libveridian_ipc (the C API) with cffi in ABI mode: no compiler is needed."""
import os

import cffi

from ._cdef import CDEF

SONAME = "libveridian_ipc.so.0.1"

ffi = cffi.FFI()
ffi.cdef(CDEF)


def _candidates():
    explicit = os.environ.get("VIPC_LIBRARY")
    if explicit:
        # Set by the caller: that library or nothing (a silent fallback would hide a mistake).
        return [explicit]
    out = [SONAME]  # the dynamic loader's search path (ldconfig, LD_LIBRARY_PATH)
    for d in ("/usr/local/lib", "/usr/local/lib/x86_64-linux-gnu", "/usr/local/lib64",
              "/usr/lib/x86_64-linux-gnu", "/usr/lib"):
        out.append(os.path.join(d, SONAME))
    return out


def _load():
    tried = []
    for path in _candidates():
        try:
            return ffi.dlopen(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError(
        f"veridian_ipc: cannot load {SONAME}: install veridian-ipc (`cmake --install build` "
        "then `ldconfig`) or set VIPC_LIBRARY to the library's path; tried: " + "; ".join(tried))


lib = _load()
