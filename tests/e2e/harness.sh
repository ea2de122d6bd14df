#!/bin/bash
# Postfix + Dovecot-SASL loopback test harness (Debian 12 packages only:
#   postfix postfix-sqlite dovecot-core swaks sqlite3 libsasl2-modules).
# mailjail's copy of the shared Postfix fixture, used by tests/e2e/e2e.sh;
# changed here: PFX_EXTRA_HOLD gives the submission service README's
# "The Postfix side" lines, PFX_EXTRA_CLIENT (the reject map on the plain
# smtpd), PFX_CHROOT, Dovecot's auth socket in the queue directory
# (private/auth, as on a Debian server, so a chroot'ed smtpd reaches it).
# Everything lives under $PFX_ROOT (default /tmp/pfx); /etc/postfix is only
# read (meta_directory: dynamicmaps.cf, postfix-files), never written.
#
# Subcommands:
#   start                      generate config, start dovecot auth + postfix (idempotent)
#   stop                       stop postfix + dovecot (by pid), idempotent
#   wipe                       stop, then delete spool/data/run/logs/maps that the harness owns
#   send-auth USER PASS [N]    N (default 1) authenticated submissions on $SUB_PORT
#   fail-auth USER [N]         N (default 1) AUTH PLAIN attempts with a wrong password
#   send-plain [N]             N unauthenticated inbound messages to a local domain on $SMTP_PORT
#   relay-attempt [N]          N unauthenticated relay attempts (rejected: Relay access denied)
#   hold-add USER|hold-del USER  insert/delete USER in the sqlite holds table (live, no reload)
#   hold-status                list hold-queue entries (postqueue -j lines with queue_name "hold")
#   release [QUEUEID|ALL]      postsuper -H (hold -> deferred) + postqueue -i/-f (deliver now)
#   queue                      postqueue -j (all queues)
#   reload                     postfix reload (needed for texthash: changes)
#   status                     pids and listeners
#   log                        path of the mail log
# Env knobs: PFX_ROOT, PFX_LISTEN (127.0.0.1), SMTP_PORT (2525), SUB_PORT (2587),
#            AUTH_FAILURE_DELAY (dovecot auth_failure_delay, default 0 = fast tests;
#            real default is 2s), DOVECOT_PENALTY (0 = anvil auth penalty off, default;
#            1 = dovecot default 2/4/8/15s per-IP penalty, makes Postfix time out
#            after 10s with "Connection lost to authentication server"),
#            PFX_CONNECT (address swaks connects to; = PFX_LISTEN),
#            PFX_SOURCE (source address swaks connects from, e.g. 127.0.0.5; default: any),
#            PFX_EXTRA_HOLD (mailjail's HOLD table for check_sasl_access on submission,
#            e.g. "sqlite:/var/lib/mailjail/postfix-hold.cf"; replaces the harness's
#            own three HOLD maps; the submission service then gets README's lines:
#              -o smtpd_sender_restrictions=$mailjail_sender_restrictions
#              mailjail_sender_restrictions = check_sasl_access MAP,
#                  permit_sasl_authenticated, reject),
#            PFX_EXTRA_CLIENT (a check_client_access table for the plain smtpd on
#            $SMTP_PORT, e.g. "sqlite:/var/lib/mailjail/postfix-reject.cf"),
#            PFX_CHROOT (y: both smtpd services chroot'ed to the queue directory,
#            Debian's default; default n)
set -u
PFX_ROOT=${PFX_ROOT:-/tmp/pfx}
PFX_LISTEN=${PFX_LISTEN:-127.0.0.1}
PFX_CONNECT=${PFX_CONNECT:-$PFX_LISTEN}
SMTP_PORT=${SMTP_PORT:-2525}
SUB_PORT=${SUB_PORT:-2587}
AUTH_FAILURE_DELAY=${AUTH_FAILURE_DELAY:-0}
DOVECOT_PENALTY=${DOVECOT_PENALTY:-0}   # 1 = keep dovecot's per-IP anvil auth penalty (2,4,8,15s)
PFX_CHROOT=${PFX_CHROOT:-n}

case "$PFX_ROOT" in /*) ;; *) echo "harness: PFX_ROOT must be absolute (postfix -c with a relative path fails silently, rc=1)" >&2; exit 1;; esac
ETC=$PFX_ROOT/etc
SPOOL=$PFX_ROOT/spool
DATA=$PFX_ROOT/data
RUN=$PFX_ROOT/run
MAPS=$PFX_ROOT/maps
DOVE=$PFX_ROOT/dovecot
MAILLOG=$PFX_ROOT/mail.log
DOVELOG=$PFX_ROOT/dovecot.log
HOLDDB=$MAPS/holds.db
export MAIL_CONFIG=$ETC

die() { echo "harness: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing $1 (apt-get install $2)"; }

pf() { /usr/sbin/postfix -c "$ETC" "$@"; }

# Start a daemon without leaking our stdio/pipes into it: dovecot keeps fd 2 (and any
# other inherited fd) open forever, so a caller reading our output through a pipe
# (subprocess capture, "| tee") would never see EOF.
spawn_clean() {
    local log=$1; shift
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done 2>/dev/null
        exec "$@" </dev/null >>"$log" 2>&1
    )
}

alive() { # pid -- kill -0 is true for zombies (PID 1 here reaps late), so look at /proc
    local st
    st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
master_pid() {
    local f=$SPOOL/pid/master.pid p
    [ -r "$f" ] || return 1
    p=$(tr -dc 0-9 < "$f")
    [ -n "$p" ] && alive "$p" && echo "$p"
}
dovecot_pid() {
    local f=$RUN/dovecot/master.pid p
    [ -r "$f" ] || return 1
    p=$(tr -dc 0-9 < "$f")
    [ -n "$p" ] && alive "$p" && echo "$p"
}

wait_port() { # host port timeout_s -- uses ss, so no probe connection pollutes the log
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        ss -Hltn "sport = :$2" 2>/dev/null | grep -q "$1:$2" && return 0
        sleep 0.05
    done
    return 1
}

gen_config() {
    mkdir -p "$ETC" "$SPOOL" "$DATA" "$RUN" "$MAPS" "$DOVE"
    chmod 755 "$PFX_ROOT" "$ETC" "$SPOOL" "$RUN" "$MAPS" "$DOVE"
    chown postfix:postfix "$DATA"; chmod 700 "$DATA"   # data_directory must be owned by mail_owner
    # Dovecot's auth socket goes where a chroot'ed smtpd finds it (private/auth);
    # the directory is made before Postfix's own start would, with its modes.
    mkdir -p "$SPOOL/private"; chown postfix "$SPOOL/private"; chmod 700 "$SPOOL/private"

    # ---------------- Dovecot (auth only, no IMAP/POP) ----------------
    cat > "$DOVE/users" <<'EOF'
alice:{PLAIN}alice-pw
bob:{PLAIN}bob-pw
mallory:{PLAIN}mallory-pw
carol:{PLAIN}carol-pw
EOF
    chown root:dovecot "$DOVE/users"; chmod 640 "$DOVE/users"
    cat > "$DOVE/dovecot.conf" <<EOF
# generated by harness.sh
base_dir = $RUN/dovecot
state_dir = $RUN/dovecot-state
log_path = $DOVELOG
info_log_path = $DOVELOG
protocols =
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = ${AUTH_FAILURE_DELAY}s
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $DOVE/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = $([ "$DOVECOT_PENALTY" = 1 ] && echo 0600 || echo 0)
  }
}
service auth {
  unix_listener $SPOOL/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF

    # ---------------- HOLD maps ----------------
    [ -e "$MAPS/sasl_hold" ] || printf '# SASL-username HOLD map (texthash)\n' > "$MAPS/sasl_hold"
    [ -e "$MAPS/sasl_hold_hash" ] || printf '# SASL-username HOLD map (hash, needs postmap)\n' > "$MAPS/sasl_hold_hash"
    if [ ! -s "$HOLDDB" ]; then
        sqlite3 "$HOLDDB" 'PRAGMA journal_mode=DELETE; CREATE TABLE IF NOT EXISTS holds(account TEXT PRIMARY KEY, reason TEXT, created INTEGER);' >/dev/null
    fi
    # smtpd runs as user postfix and only needs read access -- with the default rollback
    # journal. In WAL mode a reader must be able to create/write holds.db-shm/-wal; if it
    # can't, smtpd dies with "fatal: dict_sqlite_lookup: ...: SQL prepare failed: attempt
    # to write a readonly database?" and master throttles smtpd ("bad command startup").
    chmod 644 "$HOLDDB"
    cat > "$ETC/sqlite-hold.cf" <<EOF
dbpath = $HOLDDB
query = SELECT 'HOLD held by enforcement daemon' FROM holds WHERE account='%s'
EOF

    # ---------------- Postfix main.cf ----------------
    cat > "$ETC/main.cf.new" <<EOF
# generated by harness.sh -- private Postfix instance, loopback only, nothing leaves
compatibility_level = 3.6
queue_directory = $SPOOL
data_directory = $DATA
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.pfxtest.local
mydomain = pfxtest.local
myorigin = \$mydomain
mydestination = pfxtest.local, localhost
inet_interfaces = $PFX_LISTEN
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = \$myhostname ESMTP
biff = no
append_dot_mydomain = no
readme_directory = no

# ---- logging straight to a file via postlogd (Postfix >= 3.4), no syslog ----
maillog_file = $MAILLOG
maillog_file_prefixes = /var, /dev/stdout, $PFX_ROOT

# ---- nothing leaves the machine: every transport is discard ----
local_recipient_maps =
alias_maps =
alias_database =
local_transport = discard:
virtual_transport = discard:
relay_transport = discard:
default_transport = discard:

# ---- SASL via Dovecot (enabled on the submission service only) ----
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_tls_security_level = none

# ---- policy ----
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_client_restrictions = ${PFX_EXTRA_CLIENT:+check_client_access $PFX_EXTRA_CLIENT}
# HOLD switches: texthash (needs postfix reload / new smtpd), hash (postmap; daemons
# notice the new .db and restart), sqlite (live per-lookup query, no reload)
# (used only by the submission service: on a non-SASL smtpd, check_sasl_access
#  logs "warning: restriction 'check_sasl_access' ignored: no SASL support" - real text uses a backtick)
$(if [ -n "${PFX_EXTRA_HOLD:-}" ]; then
echo "# README's line for mailjail's HOLD map (the submission service uses it)"
echo "mailjail_sender_restrictions = check_sasl_access $PFX_EXTRA_HOLD, permit_sasl_authenticated, reject"
else
echo "hold_restrictions ="
echo "  check_sasl_access texthash:$MAPS/sasl_hold,"
echo "  check_sasl_access hash:$MAPS/sasl_hold_hash,"
echo "  check_sasl_access sqlite:$ETC/sqlite-hold.cf"
fi)
EOF

    # ---------------- Postfix master.cf (chroot off, but smtpd: PFX_CHROOT) ----------------
    cat > "$ETC/master.cf.new" <<EOF
# generated by harness.sh
$PFX_LISTEN:$SMTP_PORT inet n - $PFX_CHROOT - - smtpd
$PFX_LISTEN:$SUB_PORT inet n - $PFX_CHROOT - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
  -o smtpd_sender_restrictions=\$$([ -n "${PFX_EXTRA_HOLD:-}" ] && echo mailjail_sender || echo hold)_restrictions
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Postfix commands stall ~2s when main.cf was modified within the last second or
    # two, so only replace config files whose content changed, and backdate them.
    local f
    for f in main.cf master.cf; do
        if cmp -s "$ETC/$f.new" "$ETC/$f"; then rm -f "$ETC/$f.new"
        else mv "$ETC/$f.new" "$ETC/$f"; touch -d "@$(( $(date +%s) - 10 ))" "$ETC/$f"; fi
    done
    /usr/sbin/postmap -c "$ETC" "hash:$MAPS/sasl_hold_hash"
    # postlogd creates the log 0600 root; pre-create it world-readable so a
    # non-root tailer can read it (Postfix 3.7 has no maillog_file_permissions).
    # ("postfix logrotate" renames+gzips it and postlogd then creates a new 0600 file.)
    [ -e "$MAILLOG" ] || install -m 644 /dev/null "$MAILLOG"
    chmod 644 "$MAILLOG"
}

cmd_start() {
    local t0=$EPOCHREALTIME
    need postfix postfix; need swaks swaks; need sqlite3 sqlite3; need dovecot dovecot-core
    gen_config || die "config generation failed"
    local w
    w=$(/usr/sbin/postconf -c "$ETC" -n 2>&1 >/dev/null; /usr/sbin/postconf -c "$ETC" -M 2>&1 >/dev/null)
    [ -z "$w" ] || die "postconf complains: $w"
    /usr/bin/doveconf -c "$DOVE/dovecot.conf" >/dev/null || die "doveconf failed"
    if dovecot_pid >/dev/null; then
        kill -HUP "$(dovecot_pid)"   # re-read dovecot.conf
    else
        # stale sockets matter: a leftover anvil-auth-penalty socket (listener disabled
        # with mode=0) gives "Connection refused" + a 5s stall on the first AUTH
        rm -rf "$RUN/dovecot" "$SPOOL/private/auth"
        spawn_clean "$RUN/start.err" /usr/sbin/dovecot -c "$DOVE/dovecot.conf" || die "dovecot failed: $(cat "$RUN/start.err")"
        for _ in $(seq 1 100); do [ -S "$SPOOL/private/auth" ] && break; sleep 0.05; done
        [ -S "$SPOOL/private/auth" ] || die "dovecot auth socket did not appear"
    fi
    if master_pid >/dev/null; then
        pf reload >/dev/null 2>&1
    else
        pf check || die "postfix check failed"
        : > "$RUN/start.err"
        spawn_clean "$RUN/start.err" /usr/sbin/postfix -c "$ETC" start || die "postfix start failed: $(tail -3 "$RUN/start.err"; tail -3 "$MAILLOG")"
    fi
    wait_port "$PFX_LISTEN" "$SUB_PORT" 10 || die "port $SUB_PORT not listening"
    wait_port "$PFX_LISTEN" "$SMTP_PORT" 10 || die "port $SMTP_PORT not listening"
    echo "started: postfix master pid $(master_pid), dovecot pid $(dovecot_pid), log $MAILLOG ($(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME-$t0}")s)"
}

cmd_stop() {
    local p i t0=$EPOCHREALTIME
    if p=$(master_pid); then
        pf stop >/dev/null 2>&1 || kill "$p"
        for ((i = 0; i < 200; i++)); do alive "$p" || break; sleep 0.05; done
        alive "$p" && { kill -9 "$p"; echo "postfix master $p killed -9"; }
    fi
    if p=$(dovecot_pid); then
        kill "$p"
        for ((i = 0; i < 200; i++)); do alive "$p" || break; sleep 0.05; done
        alive "$p" && { kill -9 "$p"; echo "dovecot $p killed -9"; }
    fi
    echo "stopped ($(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME-$t0}")s)"
}

cmd_wipe() {
    cmd_stop
    case "$PFX_ROOT" in /tmp/*) ;; *) die "refusing to wipe outside /tmp: $PFX_ROOT";; esac
    rm -rf "$SPOOL" "$DATA" "$RUN" "$MAPS" "$ETC" "$DOVE" "$MAILLOG" "$DOVELOG"
    echo "wiped $PFX_ROOT (kept harness.sh and saved logs)"
}

swaks_base() { swaks --server "$PFX_CONNECT" ${PFX_SOURCE:+--local-interface "$PFX_SOURCE"} --helo client.test --timeout 20 "$@"; }

last_reply() { grep -E '^<\*\* +[45][0-9][0-9] ' | tail -1; }   # swaks marks error replies with <**
queued_id() { sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Za-z]*\).*/\1/p'; }

cmd_send_auth() {
    local user=${1:?USER} pass=${2:?PASS} n=${3:-1} i out rc fails=0
    for ((i = 1; i <= n; i++)); do
        out=$(swaks_base --port "$SUB_PORT" --auth PLAIN --auth-user "$user" --auth-password "$pass" \
            --from "$user@pfxtest.local" --to "rcpt$i@example.net" \
            --header "Subject: harness test $i from $user" 2>&1); rc=$?
        if [ $rc -eq 0 ]; then echo "sent $i: queued as $(echo "$out" | queued_id)"
        else echo "send $i FAILED rc=$rc: $(echo "$out" | last_reply)"; fails=$((fails+1)); fi
    done
    [ $fails -eq 0 ]
}

cmd_fail_auth() {
    local user=${1:?USER} n=${2:-1} i out
    for ((i = 1; i <= n; i++)); do
        out=$(swaks_base --port "$SUB_PORT" --auth PLAIN --auth-user "$user" --auth-password "wrong-$RANDOM" \
            --from "$user@pfxtest.local" --to "x@example.net" --quit-after AUTH 2>&1)
        echo "fail-auth $i: $(echo "$out" | last_reply)"
    done
}

cmd_send_plain() {
    local n=${1:-1} i out
    for ((i = 1; i <= n; i++)); do
        out=$(swaks_base --port "$SMTP_PORT" --from "sender$i@remote.example" --to "bob@pfxtest.local" 2>&1)
        echo "inbound $i: $(echo "$out" | grep -E '^<(-|\*\*) +([45][0-9][0-9] |250 .*queued)' | tail -1)"
    done
}

cmd_relay_attempt() {
    local n=${1:-1} i out
    for ((i = 1; i <= n; i++)); do
        out=$(swaks_base --port "$SMTP_PORT" --from "spammer@remote.example" --to "victim$i@elsewhere.example" 2>&1)
        echo "relay $i: $(echo "$out" | grep -E '^<\*\* +[45][0-9][0-9] ' | tail -1)"
    done
}

sqlq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }   # SQL string literal
cmd_hold_add() { sqlite3 "$HOLDDB" "INSERT OR REPLACE INTO holds VALUES($(sqlq "${1:?USER}"), $(sqlq "${2:-harness}"), strftime('%s','now'));"; }
cmd_hold_del() { sqlite3 "$HOLDDB" "DELETE FROM holds WHERE account=$(sqlq "${1:?USER}");"; }

cmd_hold_status() {
    echo "sqlite holds table: $(sqlite3 -separator ' ' "$HOLDDB" 'SELECT account FROM holds ORDER BY account;' | tr '\n' ' ')"
    /usr/sbin/postqueue -c "$ETC" -j | grep '"queue_name": *"hold"' || echo "(hold queue empty)"
}

cmd_status() {
    echo "postfix master: $(master_pid || echo down)"
    echo "dovecot master: $(dovecot_pid || echo down)"
    ss -ltnp 2>/dev/null | grep -E ":($SMTP_PORT|$SUB_PORT) " || true
}

sub=${1:-}; shift || true
case "$sub" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    wipe) cmd_wipe ;;
    send-auth) cmd_send_auth "$@" ;;
    fail-auth) cmd_fail_auth "$@" ;;
    send-plain) cmd_send_plain "$@" ;;
    relay-attempt) cmd_relay_attempt "$@" ;;
    hold-add) cmd_hold_add "$@" ;;
    hold-del) cmd_hold_del "$@" ;;
    hold-status) cmd_hold_status ;;
    release) # postsuper -H moves hold -> deferred; flush so it is delivered now, not at the next queue run
        /usr/sbin/postsuper -c "$ETC" -H "${1:-ALL}"
        if [ "${1:-ALL}" = ALL ]; then /usr/sbin/postqueue -c "$ETC" -f; else /usr/sbin/postqueue -c "$ETC" -i "$1"; fi ;;
    queue) /usr/sbin/postqueue -c "$ETC" -j ;;
    reload) pf reload ;;
    status) cmd_status ;;
    log) echo "$MAILLOG" ;;
    *) sed -n '2,/^set -u$/{/^set -u$/!p}' "$0"; exit 2 ;;
esac
