#!/bin/sh
# Fuzz the line parser, the config parsers, the rules' prefilters (a
# pattern and a message: rules_match must agree with PCRE2) and the reading
# of a replayed file (plain, gzip, xz, bzip2: logfile) with libFuzzer
# (clang, ASan, UBSan).  FUZZ_SECONDS per target (default 60); crashes land
# in build-fuzz/crash-* and must become regression tests: copy the file into
# tests/fuzz/regress/rules/, .../config/, .../prefilter/ or .../logfile/, which `meson test` replays
# (fuzz_*_regress) and which seed the corpus here.  Exits 1 if a fuzzer
# found anything.  tools/test.sh (CI) runs it with FUZZ_SECONDS=30.
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
if [ ! -d build-fuzz ]; then
    CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dtests=disabled >/dev/null
fi
meson compile -C build-fuzz fuzz_rules fuzz_config fuzz_prefilter fuzz_logfile >/dev/null
rm -rf build-fuzz/corpus-rules build-fuzz/corpus-config build-fuzz/corpus-prefilter \
    build-fuzz/corpus-logfile
mkdir -p build-fuzz/corpus-rules build-fuzz/corpus-config build-fuzz/corpus-prefilter \
    build-fuzz/corpus-logfile
# Seeds: every line of the real and shipped logs, one file each.
n=0
cat tests/data/*.log | while IFS= read -r line; do
    n=$((n + 1)); printf '%s' "$line" > "build-fuzz/corpus-rules/seed-$n"
done
cp rules/*.rules jails/*.jail conf/mailjail.conf build-fuzz/corpus-config/
cp tests/fuzz/regress/rules/* build-fuzz/corpus-rules/
cp tests/fuzz/regress/config/* build-fuzz/corpus-config/
cp tests/fuzz/regress/prefilter/* build-fuzz/corpus-prefilter/
cp tests/fuzz/regress/logfile/* build-fuzz/corpus-logfile/
export MAILJAIL_RULES=$PWD/rules
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
for t in rules config prefilter logfile; do
    echo "fuzz_$t: ${SECONDS_EACH}s"
    rc=0
    (cd build-fuzz && ./fuzz_$t -max_total_time="$SECONDS_EACH" -max_len=4096 \
        -print_final_stats=1 corpus-$t > fuzz_$t.log 2>&1) || rc=$?
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)' \
        build-fuzz/fuzz_$t.log || true
    if [ "$rc" -ne 0 ]; then
        echo "fuzz_$t: exit $rc, see build-fuzz/fuzz_$t.log and build-fuzz/crash-*"
        status=1
    fi
done
exit $status
