#!/bin/bash
# truth.sh - replay a generated realistic mail.log (bench/genlog.py, fixed
# seed) and compare every event count, per-key count and verdict with the
# ground truth the generator wrote.  TRUTH_LINES (default 1000000) lines.
# With MAILJAIL_TEST_DB=pgsql the store is a PostgreSQL started here
# (tests/pg.sh), not a SQLite file.
#   truth.sh MAILJAIL SRCDIR
set -euo pipefail
umask 022   # a config file others can write is refused (src/cfgfile.h)
MJ=$1 SRC=$2
LINES=${TRUTH_LINES:-1000000}
T=$(mktemp -d /tmp/mailjail-truth-XXXXXX)
DB=$T/mj.db
if [ "${MAILJAIL_TEST_DB:-}" = pgsql ]; then
    PGD=$(mktemp -d /tmp/mailjail-pg-XXXXXX)
    trap 'bash "$SRC/tests/pg.sh" stop "$PGD"; rm -rf "$T" "$PGD"' EXIT
    bash "$SRC/tests/pg.sh" start "$PGD" fast >/dev/null
    DB=$(bash "$SRC/tests/pg.sh" createdb "$PGD" truth)
else
    trap 'rm -rf "$T"' EXIT
fi
python3 "$SRC/bench/genlog.py" --lines "$LINES" --seed 7 --format mixed --out "$T/mail.log" \
    --truth "$T/truth"
cat > "$T/mailjail.conf" <<CONF
[mailjail]
log = $T/mail.log
db = $DB
rules = $SRC/rules
jails = $SRC/jails
user = root
CONF
"$MJ" replay --dry-run -c "$T/mailjail.conf" "$T/mail.log"
python3 "$SRC/bench/check_truth.py" "$T/truth" "$DB" | tee "$T/result"
tail -1 "$T/result" | grep -q '^OK'
echo "1 passed, 0 failed"
