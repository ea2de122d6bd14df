#!/bin/sh
# The Debian package, as an admin would use it: build it (dpkg-buildpackage
# from a copy of the tree in a temporary directory, since the .deb lands in
# the parent of the source tree), lint it, install it with apt, use the
# installed files, remove it (configuration and history stay), purge it
# (both go).  Run as root on a Debian 12 with tools/deps.sh's packages, from
# tools/test.sh (CI).
#
# It leaves the machine as it found it: it refuses to start if mailjail is
# installed or its user or directories exist, purges the package and deletes
# the user mailjail at the end (the package leaves system users in place, as
# Debian does), and checks that the installed packages are those of before.
# Where systemd runs as PID 1 the package's postinst would start the daemon,
# which sets up nftables in the host's namespace: a policy-rc.d denying it
# stands for the time of the test.  --dry-run is the only way the daemon
# runs here, so no nftables rule is made.
set -eu
cd "$(dirname "$0")/.."

fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
ok() { echo "package-test: ok: $*"; }

[ "$(id -u)" = 0 ] || fail "run as root (or with sudo): it installs the package"
for tool in dpkg-buildpackage lintian apt-get sqlite3 git; do
    command -v "$tool" >/dev/null || fail "$tool missing: run tools/deps.sh"
done
if dpkg-query -W -f '${Status}' mailjail 2>/dev/null | grep -q 'installed\|config-files'; then
    fail "package mailjail is installed: purge it first (this test installs and purges it)"
fi
getent passwd mailjail >/dev/null && fail "user mailjail exists: this test must create it"
for d in /etc/mailjail /var/lib/mailjail; do
    [ ! -e "$d" ] || fail "$d exists (a source install?): this test must not touch it"
done

tmp=$(mktemp -d /tmp/mailjail-package.XXXXXX)
policy_saved=
installed=
cleanup() {
    status=$?
    if [ -n "$installed" ] && dpkg-query -W mailjail >/dev/null 2>&1; then
        apt-get purge -y -qq -o DPkg::Lock::Timeout=300 mailjail >/dev/null 2>&1 || true
    fi
    if [ -n "$installed" ] && getent passwd mailjail >/dev/null; then
        userdel mailjail || true
        ! getent group mailjail >/dev/null || groupdel mailjail || true
    fi
    if [ -n "$policy_saved" ]; then
        if [ "$policy_saved" = none ]; then
            rm -f /usr/sbin/policy-rc.d
        else
            mv "$tmp/policy-rc.d.saved" /usr/sbin/policy-rc.d
        fi
    fi
    rm -rf "$tmp"
    exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

packages() { dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n' | sort; }
packages >"$tmp/packages.before"

# --- build: from a copy, so nothing lands outside the temporary directory.
mkdir "$tmp/src"
git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -x -C "$tmp/src"
(cd "$tmp/src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 ||
    { tail -40 "$tmp/build.log" >&2; fail "dpkg-buildpackage (log above)"; }
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
deb=$tmp/mailjail_${version}_$(dpkg --print-architecture).deb
[ -f "$deb" ] || fail "no $deb after the build"
ok "built $(basename "$deb")"

# Every library meson found through pkg-config comes from a package that
# debian/control's Build-Depends names (tools/deps.sh installs them from there).
meson introspect --dependencies "$tmp/src/obj-$(dpkg-architecture -qDEB_HOST_GNU_TYPE)" |
python3 -c '
import json, re, subprocess, sys
control = open(sys.argv[1]).read()
field = re.search(r"^Build-Depends:(.*?)^(?=\S)", control, re.M | re.S).group(1)
wanted = {re.split(r"[\s(:\[<]", item.strip())[0] for item in field.split(",") if item.strip()}
missing = []
for dep in json.load(sys.stdin):
    name = dep["name"]
    pc = subprocess.run(["pkg-config", "--path", name], capture_output=True, text=True)
    if pc.returncode != 0:
        continue   # not pkg-config (find_library: libm, inotifytools)
    owner = subprocess.run(["dpkg", "-S", pc.stdout.strip()], capture_output=True,
                           text=True, check=True).stdout.split(":")[0]
    if owner not in wanted:
        missing.append("%s (%s)" % (owner, name))
if missing:
    sys.exit("Build-Depends lacks: " + ", ".join(missing))
' debian/control || fail "debian/control's Build-Depends"
ok "Build-Depends names every library meson found"

# --- lint: no error, and no warning that debian/ does not explain.
lintian --fail-on error,warning --display-info "$tmp"/mailjail_*.changes ||
    fail "lintian (an error, or a warning neither fixed nor overridden with a reason)"
ok "lintian"

# --- install, with apt, as an admin would.
if [ -d /run/systemd/system ]; then
    if [ -e /usr/sbin/policy-rc.d ]; then
        cp -p /usr/sbin/policy-rc.d "$tmp/policy-rc.d.saved"
        policy_saved=saved
    else
        policy_saved=none
    fi
    printf '#!/bin/sh\n# tools/package-test.sh: no service starts while it runs.\nexit 101\n' \
        >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
fi
installed=yes
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "apt-get install"; }
[ "$(dpkg-query -W -f '${Version} ${db:Status-Abbrev}' mailjail)" = "$version ii " ] ||
    fail "mailjail $version not installed"
[ "$(mailjail --version)" = "mailjail ${version%-*}" ] || fail "mailjail --version: $(mailjail --version)"
[ "$(command -v mailjail)" = /usr/sbin/mailjail ] || fail "not /usr/sbin/mailjail"
for f in /etc/mailjail/mailjail.conf /etc/mailjail/rules/postfix.rules \
    /etc/mailjail/jails/sasl-bruteforce.jail; do
    dpkg-query -W -f '${Conffiles}\n' mailjail | grep -q "^ $f " || fail "$f is no conffile"
done
for f in /lib/systemd/system/mailjail.service /usr/lib/sysusers.d/mailjail.conf \
    /usr/lib/tmpfiles.d/mailjail.conf /usr/share/man/man8/mailjail.8.gz; do
    [ -f "$f" ] || fail "$f not installed"
done
[ -L /etc/systemd/system/multi-user.target.wants/mailjail.service ] ||
    fail "mailjail.service not enabled"
ok "installed: /usr/sbin/mailjail, conffiles, the unit (enabled), sysusers, tmpfiles, mailjail(8)"

# The user and the state directory, from sysusers.d and tmpfiles.d.
getent passwd mailjail | grep -q ':/var/lib/mailjail:/usr/sbin/nologin$' ||
    fail "user mailjail: $(getent passwd mailjail)"
for g in adm systemd-journal; do
    id -nG mailjail | tr ' ' '\n' | grep -qx "$g" || fail "mailjail not in group $g: $(id mailjail)"
done
[ "$(stat -c '%U:%G %a' /var/lib/mailjail)" = "mailjail:mailjail 755" ] ||
    fail "/var/lib/mailjail: $(stat -c '%U:%G %a' /var/lib/mailjail)"
ok "user mailjail (groups adm, systemd-journal), /var/lib/mailjail owned by it"

# --- use the installed files.
mailjail check-config >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "check-config"; }
cat "$tmp/check.out"
grep -q '^/etc/mailjail/mailjail.conf: log = auto: ' "$tmp/check.out" ||
    fail "check-config does not say what log = auto chose"
grep -q ': OK$' "$tmp/check.out" || fail "check-config: no OK"
ok "mailjail check-config"

# A replay with the installed configuration decides what the tree's decides.
mailjail replay --dry-run --quiet --db "$tmp/installed.db" tests/data/sample-mail.log
"$tmp/src/obj-$(dpkg-architecture -qDEB_HOST_GNU_TYPE)/mailjail" replay --dry-run --quiet \
    -c conf/mailjail.conf --db "$tmp/tree.db" tests/data/sample-mail.log
ban_rows() { sqlite3 "$1" 'select jail, target, target_kind, level from ban_history order by 2, 1'; }
ban_rows "$tmp/installed.db" >"$tmp/installed.bans"
ban_rows "$tmp/tree.db" >"$tmp/tree.bans"
cmp -s "$tmp/installed.bans" "$tmp/tree.bans" ||
    { diff "$tmp/tree.bans" "$tmp/installed.bans" >&2; fail "replay: installed and tree differ"; }
grep -q '|ip|' "$tmp/installed.bans" && grep -q '|account|' "$tmp/installed.bans" ||
    fail "replay: no ban and hold from the sample: $(cat "$tmp/installed.bans")"
ok "mailjail replay --dry-run with /etc/mailjail: $(wc -l <"$tmp/installed.bans") bans/holds, as from the tree"

# The daemon starts as root, drops to user mailjail and makes its database
# in /var/lib/mailjail (--dry-run: no nftables, no maps).
mailjail run --dry-run 2>"$tmp/run.err" &
pid=$!
for _ in $(seq 150); do
    grep -q 'running:' "$tmp/run.err" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.2
done
grep -q 'running:' "$tmp/run.err" || { cat "$tmp/run.err" >&2; fail "mailjail run did not start"; }
kill -TERM $pid
rc=0
wait $pid || rc=$?
[ $rc = 0 ] || { cat "$tmp/run.err" >&2; fail "mailjail run: exit status $rc"; }
[ "$(stat -c %U /var/lib/mailjail/mailjail.db)" = mailjail ] ||
    fail "the database is not the run user's: $(ls -l /var/lib/mailjail)"
ok "mailjail run: $(grep -o 'log = auto: .*' "$tmp/run.err" | head -1)"

# --- remove: configuration and history stay.
apt-get remove -y -qq -o DPkg::Lock::Timeout=300 mailjail >"$tmp/remove.log" 2>&1 ||
    { cat "$tmp/remove.log" >&2; fail "apt-get remove"; }
[ "$(dpkg-query -W -f '${db:Status-Abbrev}' mailjail)" = "rc " ] || fail "not removed"
[ ! -e /usr/sbin/mailjail ] || fail "/usr/sbin/mailjail stays after remove"
[ -f /etc/mailjail/mailjail.conf ] && [ -f /etc/mailjail/jails/sasl-bruteforce.jail ] ||
    fail "apt remove took the configuration"
[ -f /var/lib/mailjail/mailjail.db ] || fail "apt remove took the history"
ok "apt remove keeps /etc/mailjail and /var/lib/mailjail"

# --- purge: both go; the user stays (Debian leaves system users).
apt-get purge -y -qq -o DPkg::Lock::Timeout=300 mailjail >"$tmp/purge.log" 2>&1 ||
    { cat "$tmp/purge.log" >&2; fail "apt-get purge"; }
case $(dpkg-query -W -f '${db:Status-Abbrev}' mailjail 2>/dev/null) in
    "" | un* | pn*) ;;
    *) fail "not purged: $(dpkg-query -W -f '${db:Status-Abbrev}' mailjail)" ;;
esac
for d in /etc/mailjail /var/lib/mailjail /etc/systemd/system/multi-user.target.wants/mailjail.service; do
    [ ! -e "$d" ] && [ ! -L "$d" ] || fail "$d stays after purge"
done
getent passwd mailjail >/dev/null || fail "purge removed the user (Debian keeps it)"
ok "apt purge removes /etc/mailjail and /var/lib/mailjail; the user stays"
userdel mailjail
! getent group mailjail >/dev/null || groupdel mailjail
installed=

packages >"$tmp/packages.after"
cmp -s "$tmp/packages.before" "$tmp/packages.after" ||
    { diff "$tmp/packages.before" "$tmp/packages.after" >&2; fail "installed packages changed"; }
ok "the machine's packages are as before"
echo "package-test: all passed"
