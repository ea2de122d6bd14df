#!/bin/bash
# live.sh BIN [EXTRA_CONF] - CPU time of "mailjail run" (dry run, shipped rules
# and jails) while a realistic log grows by 200 lines/s for 30 s, one line
# at a time (a busy single server); EXTRA_CONF is appended to its config,
# DIR in it standing for the run's directory, e.g.
#   bench/live.sh build-rel/mailjail '[notify]\ncommand = DIR/hook.sh\n[metrics]\ntextfile = DIR/m.prom\n'
# Prints the daemon's user+system seconds and the share of one core.
# Children (notification hooks) are not the daemon's time.
set -eu
BIN=$(readlink -f "${1:?usage: live.sh BIN [EXTRA_CONF]}")
EXTRA=${2:-}
SRC=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/mailjail-live.XXXXXX)
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$D"' EXIT
python3 "$SRC/bench/genlog.py" --lines 6000 --seed 1 --out "$D/src.log" --truth "$D/src.truth" \
	--start "$(date -u +%Y-%m-%dT%H:%M:%S)"
: > "$D/mail.log"
printf '#!/bin/sh\ncat >/dev/null\n' > "$D/hook.sh"
chmod +x "$D/hook.sh"
printf "[mailjail]\nlog = $D/mail.log\ndb = $D/mj.db\nrules = $SRC/rules\njails = $SRC/jails\nuser = root\n$EXTRA" \
	| sed "s|DIR|$D|g" > "$D/c.conf"
"$BIN" run --dry-run -c "$D/c.conf" 2> "$D/err" &
pid=$!
sleep 2
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
python3 - "$D/src.log" "$D/mail.log" <<'PY'
import sys, time
lines = open(sys.argv[1]).read().splitlines(True)
out = open(sys.argv[2], "a")
t0 = time.monotonic()
for n in range(200 * 30):
    d = t0 + n / 200 - time.monotonic()
    if d > 0:
        time.sleep(d)
    out.write(lines[n % len(lines)])
    out.flush()
PY
sleep 1
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
hz=$(getconf CLK_TCK)
awk -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "daemon CPU %.2f s in 30 s of 200 lines/s: %.2f%% of a core\n", t / hz, 100 * t / hz / 30 }'
echo "bans: $(sqlite3 "$D/mj.db" 'SELECT count(*) FROM bans'), notifications: $(sqlite3 "$D/mj.db" 'SELECT count(*) FROM notifications' 2>/dev/null || echo -)"
