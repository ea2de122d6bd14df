#!/bin/bash
# bench/restore.sh MAILJAIL ROOT OUT N - time to restore N active bans into
# nftables at start-up, in a private network namespace.
set -euo pipefail
umask 022   # a config file others can write is refused (src/cfgfile.h)
MJ=$1 ROOT=$2 OUT=$3 N=$4
DB=$OUT/restore.db
rm -f "$DB"* "$OUT/restore.log"
: > "$OUT/restore.log"
cat > "$OUT/restore.conf" <<CONF
[mailjail]
log = $OUT/restore.log
db = $DB
rules = $ROOT/rules
jails = $ROOT/jails
user = root
[hold]
map = sqlite:$OUT/restore-hold.db
[reject]
map = sqlite:$OUT/restore-reject.db
CONF
"$MJ" replay --dry-run --quiet -c "$OUT/restore.conf" "$OUT/restore.log"   # creates the schema
sqlite3 "$DB" "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $N)
  INSERT INTO bans(jail, target, target_kind, level, reason, actions, started_at, expires_at)
  SELECT 'sasl-bruteforce', '10.' || (i >> 16 & 255) || '.' || (i >> 8 & 255) || '.' || (i & 255),
         'ip', 1, 'bench', 'nft', strftime('%s','now'), strftime('%s','now') + 3600 FROM n;"
unshare -n bash -c "
    '$MJ' run -c '$OUT/restore.conf' 2> '$OUT/restore.err.log' &
    pid=\$!
    for i in \$(seq 200); do grep -q 'running:' '$OUT/restore.err.log' && break; sleep 0.05; done
    count=\$(nft -j list set inet mailjail banned_ipv4 | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(x[\"set\"].get(\"elem\", [])) for x in d[\"nftables\"] if \"set\" in x))')
    kill \$pid; wait \$pid || true
    line=\$(grep -o 'restored [0-9]* active bans in [0-9.]* ms' '$OUT/restore.err.log' || echo 'no restore line')
    echo \"\$line; \$count elements in the kernel set afterwards\"
"
