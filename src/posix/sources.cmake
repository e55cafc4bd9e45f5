# SPDX-License-Identifier: MIT OR Apache-2.0
# The posix runtime (cross-process named endpoints); included from src/CMakeLists.txt after
# add_library(veridian_ipc ...).
target_sources(veridian_ipc PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/os.cpp
  ${CMAKE_CURRENT_LIST_DIR}/parking.cpp
  ${CMAKE_CURRENT_LIST_DIR}/record_ring.cpp
  ${CMAKE_CURRENT_LIST_DIR}/outbox.cpp
  ${CMAKE_CURRENT_LIST_DIR}/inbox.cpp
  ${CMAKE_CURRENT_LIST_DIR}/loan_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/wire.cpp
  ${CMAKE_CURRENT_LIST_DIR}/server.cpp
  ${CMAKE_CURRENT_LIST_DIR}/connection.cpp
  ${CMAKE_CURRENT_LIST_DIR}/region.cpp
  ${CMAKE_CURRENT_LIST_DIR}/endpoint_capability.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pollable.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ready_set.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../platform/shared_words.cpp
)
