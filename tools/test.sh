#!/bin/sh
# Install, build with AddressSanitizer + UBSan, and run every test suite.
# This is README's test command, and exactly what CI (.ci/run) runs.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
rm -rf build-test
meson setup build-test -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-test
meson test -C build-test --print-errorlogs --num-processes 2
