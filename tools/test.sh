#!/bin/sh
# Install, build with AddressSanitizer + UBSan, and run every test suite,
# then the Debian package (tools/package-test.sh: built, linted, installed,
# used, removed and purged), a short fuzzing run of each libFuzzer harness
# (FUZZ_SECONDS, default 30; 0 skips it), the daemon's steady state under
# valgrind (a plain build: valgrind and ASan do not mix), and the shipped
# unit's hardening with that plain binary (tools/unit-security.sh).  This is
# README's test command, and exactly what CI (.ci/run) runs.  Run as root.
set -eu
cd "$(dirname "$0")/.."
sh tools/deps.sh
rm -rf build-test
meson setup build-test -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-test
meson test -C build-test --print-errorlogs --num-processes 2
sh tools/package-test.sh
if [ "${FUZZ_SECONDS:-30}" != 0 ]; then
    rm -rf build-fuzz
    FUZZ_SECONDS=${FUZZ_SECONDS:-30} sh tools/fuzz.sh
fi
rm -rf build-vg
meson setup build-vg -Dtests=disabled >/dev/null
meson compile -C build-vg mailjail:executable >/dev/null
bash tools/valgrind-daemon.sh build-vg
# The shipped unit, with the binary that ships (no sanitizer).
bash tools/unit-security.sh build-vg/mailjail build-vg/mailjail.service .
# The closing line: meson's tests (each a criterion suite or a script).
python3 - build-test/meson-logs/testlog.json <<'PY'
import json, sys
results = [json.loads(line)["result"] for line in open(sys.argv[1])]
ok = sum(r == "OK" for r in results)
print("tests: %d passed, %d failed" % (ok, len(results) - ok))
PY
