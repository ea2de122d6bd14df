#!/bin/bash
# e2e - mailjail against a real Postfix 3.7 + Dovecot SASL (Debian packages),
# with "mailjail run" following Postfix's own mail.log:
#   1. alice goes over her quota (3/1h) through SASL submission: she is put in
#      the HOLD map, her next message waits in the hold queue; bob, under
#      quota, is delivered;
#   2. "mailjail release alice --requeue": her held message is delivered and
#      her next one is not held;
#   3. a jail with action = reject: Postfix answers the listed client with the
#      450 reply (swaks and mail.log), and accepts it again once the ban ends;
#   4. SASL brute force from 127.0.0.5: banned in nftables, its next TCP
#      connect to the submission port fails, 127.0.0.6 still gets through;
#   5. notifications: the hold of step 1 was mailed by the running daemon
#      (user nobody, only CAP_NET_ADMIN, no_new_privs: no postdrop) to
#      admin@pfxtest.local by SMTP through this Postfix (mail.log shows the
#      queue id the daemon logged delivered to that address), and its hook
#      ran as nobody; step 2's release was told too; the IP bans of steps 3
#      and 4 came in one digest mail.
#   6. a jail with action = defer: mallory over her quota (2/1h) gets the
#      jail's 450 4.7.1 at her next submission (swaks and mail.log), nothing
#      waits in the hold queue, carol (under it) is accepted, and mallory is
#      accepted again once the deferral ends; the deferral was told (mail
#      and hook, MAILJAIL_EVENT=defer).
# Everything (Postfix, Dovecot, mailjail, the clients) runs inside a network
# namespace this script makes ("unshare -n"), so the nftables table and the
# ports are private; the host's ruleset is never touched.  All files live in
# one mktemp directory; an EXIT trap stops mailjail, Postfix and Dovecot and
# removes it on every path.
#
# Usage (root): e2e.sh MAILJAIL_BINARY SOURCE_ROOT
# A missing prerequisite is a failure, never a skip.  Last line:
# "e2e: N passed, N failed".
set -eu
umask 022   # a config file others can write is refused (src/cfgfile.h)

MJ_BIN=${1:?usage: e2e.sh MAILJAIL_BINARY SOURCE_ROOT}
SRC=${2:?usage: e2e.sh MAILJAIL_BINARY SOURCE_ROOT}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ -z "${MJ_E2E_NETNS:-}" ]; then
	missing=
	[ "$(id -u)" = 0 ] || { echo "e2e: FAIL: needs root (Postfix runs as user postfix, nftables)"; echo "e2e: 0 passed, 1 failed"; exit 1; }
	for t in /usr/sbin/postfix /usr/sbin/postconf /usr/sbin/postqueue /usr/sbin/postsuper \
	    /usr/sbin/dovecot swaks sqlite3 nft nc ip ss unshare; do
		command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
	done
	[ -e /usr/lib/postfix/postfix-sqlite.so ] || missing="$missing postfix-sqlite"
	if [ -n "$missing" ]; then
		echo "e2e: FAIL: missing:$missing (tools/deps.sh installs them)"
		echo "e2e: 0 passed, 1 failed"
		exit 1
	fi
	[ -x "$MJ_BIN" ] || { echo "e2e: FAIL: no mailjail binary at $MJ_BIN"; echo "e2e: 0 passed, 1 failed"; exit 1; }
	export MJ_E2E_NETNS=1
	exec unshare -n -- bash "$0" "$@"
	echo "e2e: FAIL: unshare -n: cannot make a network namespace"
	echo "e2e: 0 passed, 1 failed"
	exit 1
fi

# ---------------------------------------------------------------- setup

npass=0 nfail=0
T= DPID=
pass() { npass=$((npass + 1)); echo "PASS $*"; }
fail() { nfail=$((nfail + 1)); echo "FAIL $*"; }
check() { # description command... -- passes when the command succeeds
	local what=$1; shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}
step() { echo; echo "=== $*"; }
finish() {
	echo
	echo "e2e: $npass passed, $nfail failed"
	[ "$nfail" = 0 ] && [ "$npass" -gt 0 ]
}
abort() { # a step everything after depends on failed
	fail "$*"
	[ -n "$T" ] && { echo "--- mail.log (tail)"; tail -30 "$T/pfx/mail.log" 2>/dev/null || true;
		echo "--- mailjail stderr"; tail -30 "$T/mailjail.err" 2>/dev/null || true; }
	echo "e2e: stopped early"
	echo "e2e: $npass passed, $nfail failed"
	exit 1
}

cleanup() {
	local rc=$?
	set +e
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		kill -TERM "$DPID"
		for _ in $(seq 1 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$DPID" 2>/dev/null && kill -KILL "$DPID"
		wait "$DPID" 2>/dev/null
	fi
	if [ -n "$T" ]; then
		PFX_ROOT=$T/pfx "$H" stop >/dev/null 2>&1
		[ -n "${MJ_E2E_KEEP:-}" ] && echo "e2e: kept $T" || rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

H=$HERE/harness.sh
T=$(mktemp -d /tmp/mailjail-e2e.XXXXXX)
chmod 755 "$T"                  # Postfix (user postfix) reads the maps in $T/mj
MJ=$T/mj
mkdir -m 755 "$MJ"
# The daemon runs as nobody (as a packaged one runs as mailjail): it writes
# the maps' journals and the hook's files here.
chown nobody "$MJ"
export PFX_ROOT=$T/pfx SMTP_PORT=2525 SUB_PORT=2587 AUTH_FAILURE_DELAY=0
# Both smtpd services chroot'ed, as Debian ships them: the maps must work there.
export PFX_CHROOT=y
export PFX_EXTRA_HOLD=sqlite:$MJ/postfix-hold.cf PFX_EXTRA_CLIENT=sqlite:$MJ/postfix-reject.cf
LOG=$PFX_ROOT/mail.log
CONF=$T/mailjail.conf
export MAIL_CONFIG=$PFX_ROOT/etc

ip link set lo up || abort "ip link set lo up in the test's namespace"
[ -z "$(nft list ruleset)" ] || abort "the test's namespace should start with an empty ruleset"

cat > "$T/e2e.jail" <<'EOF'
# Quota: more than 3 messages an hour puts the account on HOLD.
[e2e-quota]
events  = submission
key     = account
limits  = 3/1h
count   = messages
action  = hold
bantime = 1h
ignore  = mallory, carol

# Quota with a 450: more than 2 messages an hour and the account map answers
# Postfix "450 4.7.1 ..." for 8 s (mallory and carol only).
[e2e-defer]
events  = submission
key     = account
limits  = 2/1h
action  = defer
bantime = 8s
ignore  = alice, bob

# Two "Relay access denied" and the client gets Postfix's 450 for 8 s.
# (ignore = empty: loopback, where the test's clients live, is not spared.)
[e2e-reject]
events   = relay_denied
key      = ip
findtime = 10m
maxretry = 2
action   = reject
bantime  = 8s
ignore   =

# Three failed AUTHs from one address: dropped by nftables.
[e2e-bruteforce]
events   = auth_failure
key      = ip
findtime = 10m
maxretry = 3
action   = nft
bantime  = 1h
ignore   =
EOF
# The hook is root's, beside the config (the run user's directory would let
# that user change what runs: refused like a config there); it writes in $MJ.
cat > "$T/hook.sh" <<EOF
#!/bin/sh
# One line per notification: who ran it, and what it was told.
echo "uid=\$(id -u) nnp=\$(sed -n 's/^NoNewPrivs:\t//p' /proc/\$\$/status) \$MAILJAIL_EVENT \$MAILJAIL_JAIL \$MAILJAIL_TARGET \$MAILJAIL_COUNT \$(tr -d '\n' | head -c 300)" >> $MJ/hook.out
EOF
chmod 755 "$T/hook.sh"
cat > "$CONF" <<EOF
[mailjail]
log   = $LOG
db    = $MJ/mailjail.db
rules = $SRC/rules
jails = $T/e2e.jail
user  = nobody
[notify]
mailto  = admin@pfxtest.local
smtp    = 127.0.0.1:$SMTP_PORT
command = $T/hook.sh
digest  = 5s
[nft]
ports = $SMTP_PORT, $SUB_PORT
[hold]
map = sqlite:$MJ/hold.db
[reject]
map = sqlite:$MJ/reject.db
[postfix]
config_directory = $PFX_ROOT/etc
EOF

mj() { "$MJ_BIN" "$@" -c "$CONF"; }
q() { sqlite3 "$@"; }
# wait_for SECONDS command... -- poll every 0.1 s until the command succeeds
wait_for() {
	local n=$(($1 * 10)); shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}
log_has() { grep -qE -- "$1" "$LOG"; }
held() { q "$MJ/hold.db" "SELECT key FROM hold WHERE key = '$1'" | grep -qx "$1"; }
rejected() { q "$MJ/reject.db" "SELECT key FROM reject WHERE key = '$1'" | grep -qx "$1"; }
in_set() { nft list set inet mailjail banned_ipv4 2>/dev/null | grep -qw "$1"; }
queue_name_of() { # QID -> the queue postqueue -j shows it in, or nothing
	/usr/sbin/postqueue -j | grep "\"queue_id\": \"$1\"" | sed -n 's/.*"queue_name": "\([a-z]*\)".*/\1/p'
}
in_queue() { [ "$(queue_name_of "$1")" = "$2" ]; }
sent() { log_has "[/]discard\[[0-9]+\]: $1: to=<[^>]*>, relay=none, .*status=sent"; }
event_stored() { [ "$(q "$MJ/mailjail.db" "SELECT count(*) FROM events WHERE qid = '$1'")" -ge 1 ]; }
qids_of() { sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p'; }
# tcp_ok SRC PORT -- a plain TCP connect from SRC, 3 s at most
tcp_ok() { nc -z -w 3 -s "$1" 127.0.0.1 "$2" 2>/dev/null; }

step "start mailjail run, then Postfix + Dovecot (in namespace, root $T)"
mj check-config >"$T/check.out" 2>&1 || { cat "$T/check.out"; abort "mailjail check-config"; }
"$MJ_BIN" run -c "$CONF" </dev/null >"$T/mailjail.out" 2>"$T/mailjail.err" &
DPID=$!
wait_for 10 test -s "$MJ/postfix-hold.cf" -a -s "$MJ/postfix-reject.cf" \
	|| abort "mailjail run wrote postfix-hold.cf and postfix-reject.cf next to its maps"
pass "mailjail run (pid $DPID) wrote $(ls "$MJ" | grep -c 'postfix-.*\.cf') Postfix table files"
"$H" start || abort "harness start (Postfix + Dovecot)"
out=$(mj check-config 2>&1) || true
echo "$out"
check "check-config: Postfix can read both maps (no warning)" \
	bash -c '! grep -q warning <<<"$1"' _ "$out"
check "hold.db is in rollback-journal mode and mode 0644 (user postfix reads it)" \
	bash -c '[ "$(sqlite3 "$1" "PRAGMA journal_mode")" = delete ] && [ "$(stat -c %a "$1")" = 644 ]' _ "$MJ/hold.db"

# ---------------------------------------------------------------- 1
step "1. alice sends 4 messages over a quota of 3/1h; bob sends 2"
out=$("$H" send-auth alice alice-pw 4) || { echo "$out"; abort "alice's 4 submissions accepted"; }
echo "$out"
pass "alice's 4 submissions accepted by Postfix"
check "alice is in the HOLD map (mailjail saw her 4th submission in mail.log)" wait_for 15 held alice
echo "hold map: $(q "$MJ/hold.db" 'SELECT key, value, expires_at FROM hold')"
check "her hold entry's value is a HOLD action" \
	bash -c '[[ "$(sqlite3 "$1" "SELECT value FROM hold WHERE key = '"'alice'"'")" == HOLD* ]]' _ "$MJ/hold.db"
out=$("$H" send-auth bob bob-pw 2) || { echo "$out"; abort "bob's submissions accepted"; }
echo "$out"
bobq=$(qids_of <<<"$out")
for id in $bobq; do
	check "bob's $id delivered (status=sent)" wait_for 10 sent "$id"
done
check "bob is not in the HOLD map" bash -c '! sqlite3 "$1" "SELECT key FROM hold" | grep -qx bob' _ "$MJ/hold.db"

out=$("$H" send-auth alice alice-pw 1) || { echo "$out"; abort "alice's 5th submission accepted"; }
echo "$out"
aq5=$(qids_of <<<"$out")
[ -n "$aq5" ] || abort "a queue id for alice's 5th message"
check "alice's next message $aq5 shows \"queue_name\": \"hold\" in postqueue -j" wait_for 10 in_queue "$aq5" hold
/usr/sbin/postqueue -j | grep "\"$aq5\"" || true
# Postfix logs the HOLD before the queue file exists (NOQUEUE), then the
# message's client= line; the text after HOLD is mailjail's.
check "mail.log shows Postfix's hold of alice's message, with the map's text" \
	log_has "NOQUEUE: hold: RCPT from [^ ]+\[127\.0\.0\.1\]: <alice>: SASL login name mailjail e2e-quota level 1;"
check "$aq5 is not delivered" bash -c '! grep -qE "discard\[[0-9]+\]: $1: .*status=sent" "$2"' _ "$aq5" "$LOG"
check "mailjail bans lists the hold of alice" bash -c '"$1" bans -c "$2" | grep -E "e2e-quota +alice +account"' _ "$MJ_BIN" "$CONF"

# ---------------------------------------------------------------- 2
step "2. mailjail release alice --requeue"
check "mailjail recorded the submission of $aq5 (release finds it by queue id)" wait_for 10 event_stored "$aq5"
out=$(mj release alice --requeue 2>&1) && rc=0 || rc=$?
echo "$out"
check "release exits 0" test "$rc" = 0
check "release took alice off the map and requeued 1 message" \
	bash -c 'grep -q "released alice from the hold map" <<<"$1" && grep -q "requeued 1 held message of alice" <<<"$1"' _ "$out"
check "alice is no longer in the HOLD map" bash -c '! sqlite3 "$1" "SELECT key FROM hold" | grep -qx alice' _ "$MJ/hold.db"
check "held $aq5 delivered after the release (status=sent)" wait_for 15 sent "$aq5"
check "the hold queue is empty" bash -c '! /usr/sbin/postqueue -j | grep -q "\"queue_name\": \"hold\""'
out=$("$H" send-auth alice alice-pw 1) || { echo "$out"; abort "alice's 6th submission accepted"; }
echo "$out"
aq6=$(qids_of <<<"$out")
check "alice's next message $aq6 is delivered, not held" wait_for 10 sent "$aq6"
check "$aq6 never reached the hold queue" bash -c '! grep -qE "$1: hold:" "$2"' _ "$aq6" "$LOG"

# ---------------------------------------------------------------- 3
step "3. action = reject: 127.0.0.7 probes for an open relay twice"
PFX_SOURCE=127.0.0.7 "$H" relay-attempt 2
check "mail.log has 2 Relay access denied from 127.0.0.7" \
	test "$(grep -cE 'NOQUEUE: reject: RCPT from [^ ]+\[127\.0\.0\.7\]: 554 5\.7\.1 .*Relay access denied' "$LOG")" = 2
check "127.0.0.7 is in the reject map" wait_for 15 rejected 127.0.0.7
echo "reject map: $(q "$MJ/reject.db" 'SELECT key, value, expires_at FROM reject')"
plain() { # SRC -- one unauthenticated message to a local user on the plain smtpd
	swaks --server 127.0.0.1 --port "$SMTP_PORT" --local-interface "$1" --helo client.test \
		--from "someone@remote.example" --to bob@pfxtest.local --timeout 10 2>&1
}
out=$(plain 127.0.0.7) || true
echo "$out" | grep -E '^<\*\* ' || true
check "swaks from 127.0.0.7 gets Postfix's 450 4.7.1 reply" \
	bash -c 'grep -qE "^<\*\* +450 4\.7\.1 .*Too many errors from your address" <<<"$1"' _ "$out"
check "mail.log shows the 450 reject of 127.0.0.7" \
	wait_for 5 log_has 'NOQUEUE: reject: (CONNECT|RCPT) from [^ ]+\[127\.0\.0\.7\]: 450 4\.7\.1 .*Too many errors from your address'
out=$(plain 127.0.0.8) || true
check "another client (127.0.0.8) is accepted meanwhile" bash -c 'grep -q "250 2.0.0 Ok: queued as" <<<"$1"' _ "$out"
exp=$(q "$MJ/reject.db" "SELECT expires_at FROM reject WHERE key = '127.0.0.7'")
now=$(date +%s)
[ -n "$exp" ] && [ "$exp" -ge "$now" ] && [ "$exp" -le $((now + 10)) ] \
	&& pass "the reject ends at its bantime (in $((exp - now)) s)" || fail "reject expiry $exp is within now+10s (now $now)"
echo "waiting for the ban to end"
while [ "$(date +%s)" -le "${exp:-0}" ]; do sleep 0.5; done
out=$(plain 127.0.0.7) || true
echo "$out" | grep -E '^<(\*\*|-) +(4|5|250 2\.0\.0)' || true
check "after the ban, 127.0.0.7 is accepted again (250 queued)" \
	bash -c 'grep -q "250 2.0.0 Ok: queued as" <<<"$1"' _ "$out"
check "mailjail removed the expired entry from the reject map" wait_for 20 bash -c '! sqlite3 "$1" "SELECT key FROM reject" | grep -q .' _ "$MJ/reject.db"

# ---------------------------------------------------------------- 4
step "4. SASL brute force from 127.0.0.5; 127.0.0.6 is innocent"
check "before: TCP connect from 127.0.0.5 to the submission port works" tcp_ok 127.0.0.5 "$SUB_PORT"
PFX_SOURCE=127.0.0.5 "$H" fail-auth mallory 3
check "mail.log has 3 SASL failures from 127.0.0.5" \
	test "$(grep -cE 'warning: [^ ]+\[127\.0\.0\.5\]: SASL PLAIN authentication failed: .*sasl_username=mallory$' "$LOG")" = 3
check "127.0.0.5 is in nft set inet mailjail banned_ipv4" wait_for 15 in_set 127.0.0.5
nft list set inet mailjail banned_ipv4
check "the ban carries a kernel timeout" bash -c 'nft list set inet mailjail banned_ipv4 | grep -E "127\.0\.0\.5 timeout"'
check "a banned TCP connect from 127.0.0.5 to port $SUB_PORT fails" bash -c '! nc -z -w 3 -s 127.0.0.5 127.0.0.1 "$1"' _ "$SUB_PORT"
out=$(swaks --server 127.0.0.1 --port "$SUB_PORT" --local-interface 127.0.0.5 --quit-after CONNECT --timeout 3 2>&1) || true
check "swaks from 127.0.0.5 gets no banner" bash -c '! grep -q "^<-  220" <<<"$1"' _ "$out"
check "127.0.0.6 still connects" tcp_ok 127.0.0.6 "$SUB_PORT"
out=$(PFX_SOURCE=127.0.0.6 "$H" send-auth bob bob-pw 1) || true
echo "$out"
check "bob submits from 127.0.0.6 while 127.0.0.5 is banned" bash -c 'grep -q "queued as" <<<"$1"' _ "$out"
check "127.0.0.6 is not in the set" bash -c '! nft list set inet mailjail banned_ipv4 | grep -qw 127.0.0.6'

# ---------------------------------------------------------------- 5
step "5. notifications: mail through this Postfix, from the privilege-dropped daemon"
st=$(grep -E '^(Uid|CapEff|NoNewPrivs):' "/proc/$DPID/status" | tr '\n' ' ')
echo "daemon: $st"
check "the daemon runs as nobody with only CAP_NET_ADMIN and no_new_privs" \
	bash -c 'grep -qP "Uid:\t65534\t" <<<"$1" && grep -qP "CapEff:\t0000000000001000" <<<"$1" && grep -qP "NoNewPrivs:\t1" <<<"$1"' _ "$st"
mailed() { grep -oE "notify: mail for $1 \([0-9]+\) sent: 250 [0-9.]+ Ok: queued as [0-9A-Za-z]+" "$T/mailjail.err" | sed 's/.*queued as //' | head -1; }
check "the daemon logged the hold of alice as mailed, with Postfix's queue id" wait_for 15 bash -c '[ -n "$(grep -E "notify: mail for hold of alice \([0-9]+\) sent: 250 .*queued as" "$1")" ]' _ "$T/mailjail.err"
hq=$(mailed "hold of alice")
echo "hold notification: queue id ${hq:-none}"
check "mail.log: $hq came by SMTP from loopback (no pickup: no postdrop)" log_has "smtpd\[[0-9]+\]: $hq: client=[^ ]+\[127\.0\.0\.1\]"
check "mail.log: $hq from mailjail@ to admin@pfxtest.local, delivered" \
	bash -c 'grep -qE "qmgr\[[0-9]+\]: $1: from=<mailjail@" "$2" && grep -qE "discard\[[0-9]+\]: $1: to=<admin@pfxtest\.local>, .*status=sent" "$2"' _ "$hq" "$LOG"
check "the hook ran for the hold as nobody, with no_new_privs, and got the JSON" \
	bash -c 'grep -qE "^uid=65534 nnp=1 hold e2e-quota alice 1 \{\"id\":[0-9]+,\"event\":\"hold\",.*\"evidence\":\{" "$1"' _ "$MJ/hook.out"
check "the release of alice (step 2) was told: mail and hook" \
	bash -c '[ -n "$(grep -E "notify: mail for lift of alice \([0-9]+\) sent: 250" "$1")" ] && grep -qE "^uid=65534 nnp=1 lift e2e-quota alice" "$2"' _ "$T/mailjail.err" "$MJ/hook.out"
check "the bans of 127.0.0.7 and 127.0.0.5 came in digest mail, not one mail each" \
	wait_for 20 bash -c '[ "$(grep -cE "notify: mail for a digest of [0-9]+ sent: 250" "$1")" -ge 1 ] && ! grep -qE "notify: mail for ban of" "$1" && grep -qE "^uid=65534 nnp=1 digest " "$2"' _ "$T/mailjail.err" "$MJ/hook.out"
echo "--- hook calls"; cut -c1-160 "$MJ/hook.out"
check "no delivery failed" bash -c '! grep -E "notify: .* failed" "$1"' _ "$T/mailjail.err"

step "6. action = defer: mallory sends 3 over a quota of 2/1h; carol sends 1"
map_value() { q "$MJ/hold.db" "SELECT value FROM hold WHERE key = '$1'"; }
deferred() { [[ "$(map_value "$1")" == "450 4.7.1 Too much mail from your account"* ]]; }
out=$("$H" send-auth mallory mallory-pw 3) || { echo "$out"; abort "mallory's 3 submissions accepted"; }
echo "$out"
check "mallory is in the account map, answering the jail's reply" wait_for 15 deferred mallory
echo "account map: $(q "$MJ/hold.db" "SELECT key, value, expires_at FROM hold WHERE key = 'mallory'")"
out=$("$H" send-auth mallory mallory-pw 1) && rc=0 || rc=$?
echo "$out"
check "mallory's next submission is refused" test "$rc" != 0
check "swaks sees Postfix's 450 4.7.1 with the jail's text" \
	bash -c 'grep -qE "450 4\.7\.1 .*Too much mail from your account, try again later" <<<"$1"' _ "$out"
check "mail.log shows the 450 reject of mallory's message" \
	wait_for 5 log_has 'NOQUEUE: reject: (MAIL|RCPT) from [^ ]+\[127\.0\.0\.1\]: 450 4\.7\.1 <mallory>: .*Too much mail from your account, try again later'
check "nothing is in the hold queue (postqueue -j)" \
	bash -c '! /usr/sbin/postqueue -j | grep -q "\"queue_name\": \"hold\""'
out=$("$H" send-auth carol carol-pw 1) || { echo "$out"; fail "carol, under the quota, is accepted"; }
echo "$out"
cq=$(qids_of <<<"$out")
[ -n "$cq" ] && check "carol, under the quota, is accepted and delivered ($cq)" wait_for 10 sent "$cq"
check "mailjail bans lists the deferral of mallory" \
	bash -c '"$1" bans -c "$2" | grep -E "e2e-defer +mallory +account"' _ "$MJ_BIN" "$CONF"
exp=$(q "$MJ/hold.db" "SELECT expires_at FROM hold WHERE key = 'mallory'")
now=$(date +%s)
[ -n "$exp" ] && [ "$exp" -ge "$now" ] && [ "$exp" -le $((now + 10)) ] \
	&& pass "the deferral ends at its bantime (in $((exp - now)) s)" || fail "defer expiry $exp is within now+10s (now $now)"
echo "waiting for the deferral to end"
while [ "$(date +%s)" -le "${exp:-0}" ]; do sleep 0.5; done
out=$("$H" send-auth mallory mallory-pw 1) || true
echo "$out"
mq=$(qids_of <<<"$out")
check "after the deferral mallory is accepted again" test -n "$mq"
[ -n "$mq" ] && check "and her message $mq is delivered" wait_for 10 sent "$mq"
check "mailjail removed the expired entry from the account map" \
	wait_for 20 bash -c '! sqlite3 "$1" "SELECT key FROM hold" | grep -qx mallory' _ "$MJ/hold.db"
check "the deferral of mallory was told at once: mail and hook (event defer)" \
	wait_for 15 bash -c '[ -n "$(grep -E "notify: mail for defer of mallory \([0-9]+\) sent: 250" "$1")" ] && grep -qE "^uid=65534 nnp=1 defer e2e-defer mallory" "$2"' _ "$T/mailjail.err" "$MJ/hook.out"
check "still no delivery failed" bash -c '! grep -E "notify: .* failed" "$1"' _ "$T/mailjail.err"

# ---------------------------------------------------------------- end
step "mailjail still runs, and stops cleanly"
check "the daemon is alive" kill -0 "$DPID"
kill -TERM "$DPID"
wait "$DPID" && rc=0 || rc=$?
DPID=
check "mailjail run exited 0 on SIGTERM" test "$rc" = 0
check "no sanitizer report or error in mailjail's stderr" \
	bash -c '! grep -E "AddressSanitizer|runtime error|LeakSanitizer|fatal|error:" "$1"' _ "$T/mailjail.err"
check "Postfix never failed a lookup of mailjail's maps (no dict_sqlite warning, no fatal)" \
	bash -c '! grep -E "dict_sqlite|fatal:|database is locked|table lookup problem" "$1"' _ "$LOG"
if [ "$nfail" != 0 ]; then
	echo "--- mailjail stderr"; tail -40 "$T/mailjail.err"
	echo "--- mail.log"; tail -60 "$LOG"
fi
finish
