#!/bin/bash
# The daemon's steady state under valgrind: "mailjail run --dry-run" follows
# a log while 20 copies of the sample (with a rotation in the middle) are
# appended, then stops on SIGTERM.  Fails unless valgrind reports no leaks
# and no errors.   tools/valgrind-daemon.sh [BUILD_DIR]
set -euo pipefail
umask 022   # a config file others can write is refused (src/cfgfile.h)
cd "$(dirname "$0")/.."
BUILD=${1:-build}
T=$(mktemp -d /tmp/mailjail-vg-XXXXXX)
trap 'rm -rf "$T"' EXIT
cat > "$T/mailjail.conf" <<CONF
[mailjail]
log = $T/mail.log
db = $T/mj.db
rules = $PWD/rules
jails = $PWD/jails
user = root
CONF
: > "$T/mail.log"
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --log-file="$T/vg.log" "$BUILD/mailjail" run --dry-run -c "$T/mailjail.conf" 2>"$T/err" &
pid=$!
sleep 3
d=$(date -d yesterday '+%b %e')
for i in $(seq 20); do
    sed "s/^Nov 21/$d/" tests/data/sample-mail.log >> "$T/mail.log"
    [ "$i" = 10 ] && { mv "$T/mail.log" "$T/mail.log.1"; : > "$T/mail.log"; }
    sleep 0.2
done
sleep 3
kill -TERM $pid
rc=0; wait $pid || rc=$?
grep -E 'in use at exit|All heap blocks|definitely lost|indirectly lost|possibly lost|ERROR SUMMARY' "$T/vg.log"
events=$(sqlite3 "$T/mj.db" 'select sum(n) from event_counts')
rows=$(sqlite3 "$T/mj.db" 'select count(*) from events')
echo "events recorded: $events, $rows of them kept as rows for the jails (exit $rc)"
[ "$rc" = 0 ]
