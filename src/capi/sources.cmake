# SPDX-License-Identifier: MIT OR Apache-2.0
# The C API (include/veridian/ipc.h); included from src/CMakeLists.txt after the posix
# runtime's sources.
target_sources(veridian_ipc PRIVATE ${CMAKE_CURRENT_LIST_DIR}/capi.cpp)
