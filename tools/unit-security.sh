#!/bin/bash
# unit-security.sh MAILJAIL UNIT SRCDIR - the shipped unit is as tight as the
# daemon allows, and the daemon works under it.  There is no systemd as
# PID 1 to start it under, so each setting is checked another way:
#
#  1. systemd-analyze security --offline rates UNIT (the rendered
#     dist/mailjail.service.in) 2.5 or lower.
#  2. MAILJAIL runs with the unit's credentials (its user -- nobody stands in
#     for mailjail --, CAP_NET_ADMIN alone, ambient, as the only bounding
#     capability, no_new_privs, the unit's UMask) in a private network
#     namespace, under strace -f: check-config, then run through start, a
#     ban (nftables), a hold (sqlite: map), a reject (hash: map, so postmap
#     runs too), a rotation, SIGHUP, SIGUSR1 and SIGTERM, with every
#     operator signal configured: the hold mailed by SMTP (libcurl, in a
#     child) to a Python smtpd sink and told to a [notify] command (a
#     /bin/sh hook: its calls are the unit's too), the IP bans in a
#     digest, the metrics textfile written and /metrics (libmicrohttpd)
#     scraped.  Then:
#     - every system call made is allowed by the unit's SystemCallFilter=
#       lines (expanded with systemd-analyze syscall-filter), so
#       SystemCallErrorNumber=EPERM never fires;
#     - /proc is mounted as ProcSubset=pid and ProtectProc=invisible make
#       it, and only /proc/self, /proc/thread-self and the caller's own
#       /proc/PID are asked for;
#     - files are written only in the state directory (ProtectSystem=strict
#       with StateDirectory= as the one writable place);
#     - sockets are only of the RestrictAddressFamilies= families;
#     - /dev is only what PrivateDevices= leaves;
#     - the maps Postfix reads and the metrics textfile (node_exporter
#       reads it) are 0644 and the DB is 0600 under the UMask.
# Needs root (namespaces, the user switch).  Prints "unit-security: PASS"
# or the failures and exits 1.
set -euo pipefail
umask 022
MJ=$(realpath "$1") UNIT=$(realpath "$2") SRC=$(realpath "$3")
THRESHOLD=2.5
fail=0
say() { echo "unit-security: $*"; }
bad() { say "FAIL: $*"; fail=1; }

[ "$(id -u)" = 0 ] || { say "FAIL: needs root"; exit 1; }
# (/usr/bin/python3: Debian's, whose smtpd module is the scenario's SMTP
# sink; a python3 earlier in PATH may not have it.)
for t in systemd-analyze strace setpriv unshare nft sqlite3 /usr/sbin/postmap /usr/bin/python3; do
	command -v "$t" >/dev/null || { say "FAIL: $t is missing (tools/deps.sh)"; exit 1; }
done

# ---------------------------------------------------------------- 1
out=$(systemd-analyze security --offline=yes "$UNIT" 2>&1) || true
level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
if [ -z "$level" ]; then
	echo "$out"
	bad "systemd-analyze security gave no overall exposure level"
elif awk -v l="$level" -v t="$THRESHOLD" 'BEGIN { exit !(l > t) }'; then
	grep '✗' <<<"$out" || true
	bad "exposure $level is above $THRESHOLD"
else
	say "exposure $level (at most $THRESHOLD)"
fi

# ---------------------------------------------------------------- 2
unit_values() { # KEY -- every value of KEY= in [Service], in order
	sed -n "s/^$1=//p" "$UNIT"
}
UMASK=$(unit_values UMask | tail -1)
FAMILIES=$(unit_values RestrictAddressFamilies | tail -1)
[ -n "$UMASK" ] || bad "the unit sets no UMask="
[ -n "$FAMILIES" ] || bad "the unit sets no RestrictAddressFamilies="
[ "$(unit_values ProcSubset)" = pid ] || bad "the unit does not set ProcSubset=pid"
[ "$(unit_values PrivateDevices)" = yes ] || bad "the unit does not set PrivateDevices=yes"
[ "$(unit_values CapabilityBoundingSet)" = CAP_NET_ADMIN ] ||
	bad "the scenario runs with CAP_NET_ADMIN only; the unit's bounding set differs"

T=$(mktemp -d /tmp/mailjail-unitsec.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
chmod 755 "$T"
mkdir -m 755 "$T/conf" "$T/logs" "$T/pfx" "$T/state"
mkdir -m 755 "$T/traces"
chown nobody:nogroup "$T/state" "$T/traces"
: >"$T/pfx/main.cf"
: >"$T/logs/mail.log"
cat >"$T/conf/scenario.jail" <<'EOF'
[bruteforce]
events   = auth_failure
key      = ip
findtime = 10m
maxretry = 3
action   = nft
bantime  = 1h
ignore   =

[quota]
events  = submission
key     = account
limits  = 3/1h
action  = hold
bantime = 1h

[relay]
events   = relay_denied
key      = ip
findtime = 10m
maxretry = 2
action   = reject
bantime  = 1h
ignore   =
EOF
cat >"$T/conf/mailjail.conf" <<EOF
[mailjail]
log   = $T/logs/mail.log
db    = $T/state/mailjail.db
rules = $SRC/rules
jails = $T/conf/scenario.jail
user  = nobody
[hold]
map = sqlite:$T/state/hold.db
[reject]
map = hash:$T/state/mailjail_reject
[postfix]
config_directory = $T/pfx
[notify]
mailto  = postmaster@localhost
smtp    = 127.0.0.1:2525
command = $T/conf/hook.sh
digest  = 2s
[metrics]
textfile = $T/state/mailjail.prom
listen   = 127.0.0.1:9947
EOF
# The hook leaves what it was told in the state directory (the one place
# the unit lets it write), one file per call.
cat >"$T/conf/hook.sh" <<EOF
#!/bin/sh
cat >"$T/state/hook.\$MAILJAIL_EVENT.\$\$"
EOF
chmod 755 "$T/conf/hook.sh"

# The scenario, inside a private network namespace.
cat >"$T/scenario.sh" <<'EOF'
set -euo pipefail
T=$1 MJ=$2 UMASK=$3
CONF=$T/conf/mailjail.conf LOG=$T/logs/mail.log
ip link set lo up
# /proc as ProcSubset=pid and ProtectProc=invisible make it: the daemon
# really runs with it, in this mount namespace only.
mount --make-rprivate /
mount -t proc -o subset=pid,hidepid=invisible proc /proc
# (LeakSanitizer cannot work under ptrace: an ASan build is checked too.)
export ASAN_OPTIONS=detect_leaks=0
as_unit() { # the unit's credentials, under strace -f into $T/traces/trace.NAME
	# (exec: call it in a subshell; the subshell becomes strace)
	local name=$1; shift
	exec setpriv --reuid=nobody --regid=nogroup --init-groups \
		--inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
		--bounding-set=-all,+net_admin --no-new-privs \
		sh -c 'umask "$1"; shift; exec "$@"' sh "$UMASK" \
		strace -f -qq -y -e trace=all -o "$T/traces/trace.$name" "$@"
}
wait_for() { # SECONDS command...
	local n=$(($1 * 10)); shift
	while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	echo "scenario: timed out: $*" >&2
	return 1
}
said() { grep -qs -- "$1" "$T/run.err"; }
stamp() { date '+%b %e %H:%M:%S'; }
# The SMTP peer of [notify] mailto (root's, not traced: not the daemon).
/usr/bin/python3 -u -W ignore -m smtpd -n -c DebuggingServer 127.0.0.1:2525 \
	>"$T/smtp.out" 2>&1 &
smtp=$!
trap 'kill "$smtp" 2>/dev/null || true' EXIT
wait_for 30 /usr/bin/python3 -c 'import socket; socket.create_connection(("127.0.0.1", 2525)).close()' 2>/dev/null
(as_unit check "$MJ" check-config -c "$CONF") >"$T/check.out" 2>&1 ||
	{ cat "$T/check.out"; echo "scenario: check-config failed" >&2; exit 1; }
as_unit run "$MJ" run -c "$CONF" 2>"$T/run.err" &
tracer=$!   # strace, once setpriv and sh have exec'ed it
wait_for 30 said "running:"
pid=$(pgrep -P "$tracer" -x "$(basename "$MJ")")   # the daemon, strace's child
for i in 1 2 3; do
	echo "$(stamp) mx postfix/submission/smtpd[1$i]: warning: unknown[203.0.113.7]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=x" >>"$LOG"
done
for i in 1 2 3 4; do
	echo "$(stamp) mx postfix/submission/smtpd[2$i]: 4F00000$i: client=c.example[192.0.2.$i], sasl_method=PLAIN, sasl_username=alice" >>"$LOG"
done
for i in 1 2; do
	echo "$(stamp) mx postfix/smtpd[3$i]: NOQUEUE: reject: RCPT from unknown[198.51.100.9]: 554 5.7.1 <x@example.net>: Relay access denied; from=<a@b> to=<x@example.net> proto=ESMTP helo=<h>" >>"$LOG"
done
wait_for 30 sh -c "nft list set inet mailjail banned_ipv4 | grep -q 203.0.113.7"
wait_for 30 sh -c "sqlite3 '$T/state/hold.db' \"SELECT key FROM hold\" | grep -qx alice"
wait_for 30 grep -q '^198.51.100.9 ' "$T/state/mailjail_reject"
# The hold: mailed and told to the hook at once; the two IP bans: one digest.
wait_for 30 said "notify: mail for hold of alice"
wait_for 30 grep -q 'Subject: \[mailjail\] hold: account alice' "$T/smtp.out"
wait_for 30 sh -c "grep -qs '\"target\":\"alice\"' '$T'/state/hook.hold.*"
wait_for 30 sh -c "ls '$T'/state/hook.digest.* >/dev/null 2>&1"
# The metrics: the textfile and /metrics.
wait_for 30 grep -q '^mailjail_verdicts_total{.*jail="quota".*} 1$' "$T/state/mailjail.prom"
wait_for 30 /usr/bin/python3 -c 'import sys, urllib.request as u
sys.exit(b"mailjail_active{" not in u.urlopen("http://127.0.0.1:9947/metrics", timeout=5).read())'
mv "$LOG" "$LOG.1" && : >"$LOG"
echo "$(stamp) mx postfix/submission/smtpd[41]: warning: unknown[203.0.113.8]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=y" >>"$LOG"
wait_for 30 said "rotated"
kill -HUP "$pid"
wait_for 30 said "reloaded"
kill -USR1 "$pid"
wait_for 30 said "reopened"
kill -TERM "$pid"
rc=0
wait "$tracer" || rc=$?   # strace exits with its tracee's status
[ "$rc" = 0 ] || { cat "$T/run.err"; echo "scenario: run exited $rc" >&2; exit 1; }
EOF
if ! unshare -n -m bash "$T/scenario.sh" "$T" "$MJ" "$UMASK"; then
	[ -f "$T/run.err" ] && sed 's/^/  run: /' "$T/run.err"
	bad "the scenario did not complete under the unit's credentials"
fi

# What the unit's SystemCallFilter= lines allow, expanded.
expand() { # NAME -- a group, recursively, or a call
	local m members
	case $1 in
	@*)	members=$(systemd-analyze syscall-filter "$1" </dev/null |
			sed -n 's/^ \+\([-@a-z0-9_]\+\)$/\1/p')
		[ -n "$members" ] || { bad "systemd-analyze knows no group $1"; return; }
		for m in $members; do expand "$m"; done ;;
	*) echo "$1" ;;
	esac
}
allowed=$T/allowed
: >"$allowed"
first=1
while read -r value; do
	deny=0
	case $value in "~"*) deny=1; value=${value#\~} ;; esac
	for item in $value; do
		if [ "$deny" = 1 ]; then
			expand "$item" | sort -u >"$T/deny"
			grep -vxF -f "$T/deny" "$allowed" >"$T/allowed.new" || true
			mv "$T/allowed.new" "$allowed"
		else
			expand "$item" >>"$allowed"
		fi
	done
	if [ "$first" = 1 ] && [ "$deny" = 1 ]; then
		bad "the first SystemCallFilter= is a deny list: the check expects an allow list"
	fi
	first=0
done < <(unit_values SystemCallFilter)
# Always allowed (systemd.exec(5)): execve, exit, exit_group, getrlimit,
# rt_sigreturn, sigreturn, and the calls querying time and sleeping.
printf '%s\n' execve exit exit_group getrlimit rt_sigreturn sigreturn clock_gettime \
	clock_gettime64 gettimeofday time nanosleep clock_nanosleep \
	clock_nanosleep_time64 >>"$allowed"
sort -u -o "$allowed" "$allowed"
[ -s "$allowed" ] || bad "the unit's SystemCallFilter= allows nothing"

calls=$T/calls
cat "$T"/traces/trace.* 2>/dev/null | sed -n 's/^[0-9]\+ \+\([a-z0-9_]\+\)(.*/\1/p' | sort -u >"$calls"
if [ ! -s "$calls" ]; then
	bad "no system calls traced"
else
	denied=$(comm -23 "$calls" "$allowed")
	if [ -n "$denied" ]; then
		bad "system calls the filter denies (EPERM): $(echo $denied)"
	else
		say "$(wc -l <"$calls") distinct system calls, all allowed by SystemCallFilter="
	fi
fi

# /proc: the scenario ran with /proc mounted as the unit mounts it, so
# whatever else the programs asked for there was hidden from them and they
# did without; listed here, and a failure if any such request succeeded
# (then the mount above is not what the unit gives).
procother=$(cat "$T"/traces/trace.* 2>/dev/null | awk '
	{
		pid = $1; line = $0; failed = $0 ~ / = -1 E/
		while (match(line, /"\/proc\/[^"]*"/)) {
			p = substr(line, RSTART + 1, RLENGTH - 2)
			line = substr(line, RSTART + RLENGTH)
			split(p, part, "/")
			if (part[3] != "self" && part[3] != "thread-self" && part[3] != pid)
				print (failed ? "hidden: " : "SEEN: ") p
		}
	}' | sort -u)
if grep -q '^SEEN: ' <<<"$procother"; then
	bad "/proc beyond the process's own was visible (ProcSubset=pid, ProtectProc=invisible):"
	grep '^SEEN: ' <<<"$procother" | head -20
else
	say "/proc: only the process's own$([ -n "$procother" ] && echo "; asked for and done without: $(sed 's/^hidden: //' <<<"$procother" | tr '\n' ' ')")"
fi

# Writes: only in the state directory (ProtectSystem=strict; StateDirectory=
# is the one writable path) and to /dev/null.  Paths relative to a
# descriptor are joined to the directory strace -y names for it.
wrbad=$(cat "$T"/traces/trace.* 2>/dev/null | awk -v ok="$T/state/" '
	function paths(line,    out, p, dir) {
		out = ""
		while (match(line, /([0-9]+<[^>]*>, )?"[^"]*"/)) {
			p = substr(line, RSTART, RLENGTH)
			line = substr(line, RSTART + RLENGTH)
			dir = ""
			if (p ~ /^[0-9]+</) {
				dir = p; sub(/^[0-9]+</, "", dir); sub(/>.*/, "", dir)
				sub(/^[^"]*"/, "", p)
			} else
				sub(/^"/, "", p)
			sub(/"$/, "", p)
			if (p !~ /^\// && dir != "")
				p = dir "/" p
			out = out " " p
		}
		return out
	}
	{
		call = $2; sub(/\(.*/, "", call)
		writes = call ~ /^(rename|renameat|renameat2|unlink|unlinkat|mkdir|mkdirat|rmdir|link|linkat|symlink|symlinkat|chmod|fchmodat|truncate|mknod|mknodat|creat)$/
		if (call ~ /^(open|openat|openat2)$/ && $0 ~ /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/)
			writes = 1
		if (!writes || $0 ~ / = -1 /)
			next
		n = split(paths($0), ps, " ")
		for (i = 1; i <= n; i++)
			if (index(ps[i], ok) != 1 && ps[i] != "/dev/null")
				print call ": " ps[i]
	}' | sort -u)
if [ -n "$wrbad" ]; then
	bad "written outside the state directory (ProtectSystem=strict):"
	echo "$wrbad" | head -20
else
	say "writes: only in the state directory"
fi

# Sockets: only the families RestrictAddressFamilies= lists.
fams=$(cat "$T"/traces/trace.* 2>/dev/null | sed -n 's/^[0-9]\+ \+socket\(pair\)\?(\(AF_[A-Z0-9]\+\).*/\2/p' | sort -u)
for f in $fams; do
	case " $FAMILIES " in
	*" $f "*) ;;
	*) bad "a socket of family $f, which RestrictAddressFamilies= denies" ;;
	esac
done
say "socket families used: $(echo ${fams:-none})"

# /dev: only the API devices PrivateDevices= leaves (and /dev/log, the
# syslog socket systemd links there: postmap logs through it).
devbad=$(cat "$T"/traces/trace.* 2>/dev/null | grep -o '"/dev/[^"]*"' | tr -d '"' | sort -u |
	grep -vxE '/dev/(null|zero|full|random|urandom|tty|log|shm(/.*)?|pts(/.*)?|ptmx)' || true)
[ -z "$devbad" ] || bad "devices PrivateDevices= hides: $(echo $devbad)"

# UMask: the maps stay readable by Postfix, the DB private.
mode_is() { # FILE MODE
	local m
	m=$(stat -c %a "$1" 2>/dev/null || echo missing)
	[ "$m" = "$2" ] || bad "$1: mode $m under UMask=$UMASK, expected $2"
}
for f in hold.db postfix-hold.cf mailjail_reject mailjail_reject.db mailjail_reject.expires \
	mailjail.prom; do
	mode_is "$T/state/$f" 644
done
mode_is "$T/state/mailjail.db" 600

if [ "$fail" = 0 ]; then
	say "PASS"
else
	say "FAILED"
	exit 1
fi
