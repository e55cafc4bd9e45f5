#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# The main job, from a fresh Debian 12 machine: installs what is missing, builds, and runs
# `vipc demo` (a server and a client as two real processes: call/reply and a stream).
# Extra arguments go to `vipc demo` (see `build/bin/vipc demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target vipc
exec build/bin/vipc demo "$@"
