// SPDX-License-Identifier: MIT OR Apache-2.0
// The shared library libveridian_ipc.so has no code of its own: src/CMakeLists.txt links the
// whole static library (core, platforms, posix runtime, C API) into it. This file gives the
// target a source, as CMake requires.
