# SPDX-License-Identifier: MIT OR Apache-2.0
# The posix runtime (cross-process named endpoints); included from src/CMakeLists.txt after
# add_library(veridian_ipc ...).
target_sources(veridian_ipc PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/shm.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire.cpp
  ${CMAKE_CURRENT_LIST_DIR}/server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/connection.cpp
  ${CMAKE_CURRENT_LIST_DIR}/region.cpp
  ${CMAKE_CURRENT_LIST_DIR}/endpoint_capability.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pollable.cpp
)
