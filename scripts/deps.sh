#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# Installs, from Debian 12's packages, whatever the build and the tests need and this
# machine lacks. Safe to run again: it installs only what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  cmake ninja-build g++ make python3           # build
  libgtest-dev libgmock-dev libbenchmark-dev   # tests, micro-benchmarks
  clang-14 libclang-rt-14-dev                  # libFuzzer targets
  qemu-system-x86                              # the bare-metal kernel test
  valgrind                                     # instruction counts (bench)
  pkgconf                                      # the install test: pkg-config veridian-ipc
  python3-cffi python3-pytest                  # the Python package and its tests
  libasio-dev                                  # the asio example
  doxygen                                      # the API reference (docs/API)
  nats-server libnats-dev                      # the NATS bridge and its tests
  openssl                                      # the bridge tests' certificates and nkeys
)
if [[ -f "$here/bench/packages.txt" ]]; then
  while read -r p; do [[ -n "$p" && "$p" != \#* ]] && packages+=("$p"); done < "$here/bench/packages.txt"
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: all ${#packages[@]} packages present"
