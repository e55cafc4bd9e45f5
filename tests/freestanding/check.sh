#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Compiles and links the core's sources with -ffreestanding -fno-exceptions -fno-rtti
# -nostdlib (no libc, no libstdc++, no libgcc) into a program with its own _start, then
# runs it. Fails if any core file needs a hosted header or a runtime symbol.
# Usage: check.sh CXX SOURCE_DIR BUILD_DIR CORE_SOURCE...
set -euo pipefail
cxx=$1 src=$2 out=$3
shift 3
mkdir -p "$out"
flags=(-std=c++20 -O2 -ffreestanding -fno-exceptions -fno-rtti -fno-stack-protector -fno-pie
       -fno-asynchronous-unwind-tables -Wall -Wextra -Werror -I"$src/include" -I"$src/src")
link_flags=(-nostdlib -static)
echo "freestanding: compiling ${*##*/} with ${flags[*]}"
objects=()
for source in "$@" "$src/tests/freestanding/freestanding_main.cpp"; do
  object="$out/$(basename "$source").o"
  "$cxx" "${flags[@]}" -c "$source" -o "$object"
  objects+=("$object")
done
echo "freestanding: linking with ${link_flags[*]} (no libc, no libstdc++, no libgcc)"
"$cxx" "${link_flags[@]}" "${objects[@]}" -o "$out/freestanding_core"
"$out/freestanding_core"
echo "freestanding: the core compiled, linked with no library and ran: OK"
