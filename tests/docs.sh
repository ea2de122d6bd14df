#!/bin/bash
# docs.sh - the manual pages and the bash completion tell the truth and are
# installed where man and bash-completion look:
#   - every page renders without a groff warning;
#   - every option "mailjail COMMAND --help" lists is in mailjail(8), every
#     key of src/config.c's table in mailjail.conf(5), every key the rules
#     and jail parsers accept in mailjail.rules(5);
#   - "meson install" into a temporary DESTDIR puts the pages where
#     "man -M" finds mailjail(8), mailjail.conf(5), mailjail.rules(5) and
#     mailjail.jails(5), and the completion where bash-completion's pkg-config
#     completionsdir says;
#   - the installed completion, sourced with bash-completion, completes the
#     commands, exactly the options each --help lists, jail and rule names
#     from the configuration, and banned addresses for unban.
#   docs.sh MAILJAIL SRCDIR BUILDDIR
set -euo pipefail
MJ=$1 SRC=$2 BUILD=$3
T=$(mktemp -d /tmp/mailjail-docs-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

for tool in groff man pkg-config; do
    command -v $tool >/dev/null || { echo "FAIL: $tool is missing (tools/deps.sh installs it)"; exit 1; }
done
[[ -r /usr/share/bash-completion/bash_completion ]] ||
    { echo "FAIL: bash-completion is missing (tools/deps.sh installs it)"; exit 1; }

# 1. the pages render cleanly
for page in "$SRC"/docs/mailjail.8 "$SRC"/docs/mailjail.conf.5 "$SRC"/docs/mailjail.rules.5; do
    w=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
    if [[ -z $w ]]; then ok; else bad "$page: groff warns: $w"; fi
done

# 2. the pages name every option and key the code accepts
commands=$("$MJ" --help | sed -n '/^commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p')
[[ $(wc -w <<<"$commands") -ge 12 ]] || bad "mailjail --help lists too few commands: $commands"
man8=$(sed 's/\\-/-/g' "$SRC/docs/mailjail.8")
help_options() {   # the long options COMMAND --help lists, one per line
    "$MJ" "$1" --help | sed -n 's/^  \(-[a-z], \)\{0,1\}\(--[a-z-]*\).*/\2/p' | sort -u
}
for c in $commands; do
    grep -q "^\.B mailjail $c\$" <<<"$man8" || bad "mailjail(8) has no synopsis for $c"
    grep -Eq "^\.SS (.*[ ,])?$c(,|\$| )" <<<"$man8" || bad "mailjail(8) has no section for $c"
    for o in $(help_options "$c"); do
        if grep -q -- "$o" <<<"$man8"; then ok; else bad "mailjail(8) lacks $c $o"; fi
    done
done
conf5=$(sed 's/\\-/-/g' "$SRC/docs/mailjail.conf.5")
for k in $(sed -n 's/^\t{ "\([a-z]*\)", "\([a-z_]*\)",.*/\1.\2/p' "$SRC/src/config.c"); do
    section=${k%%.*} key=${k#*.}
    grep -q "^\.SH \[$section\]" <<<"$conf5" || bad "mailjail.conf(5) has no [$section]"
    if grep -Eq "^\.BI? $key( |\$)" <<<"$conf5"; then ok; else bad "mailjail.conf(5) lacks $key"; fi
done
rules5=$(sed 's/\\-/-/g' "$SRC/docs/mailjail.rules.5")
# the keys of a jail file are read in jail_conf.c: a jail key none names is
# a failure, not a check that passes on nothing
grep -q 'strcmp(key, "findtime")' "$SRC/src/jail_conf.c" ||
    bad "src/jail_conf.c reads no jail key (moved?): update this check"
for k in $(grep -oh 'strcmp(key, "[a-z_]*")' "$SRC/src/jail_conf.c" "$SRC/src/rules.c" |
           sed 's/.*"\(.*\)".*/\1/' | sort -u); do
    if grep -Eq "^\.BI? $k( |\$)" <<<"$rules5"; then ok; else bad "mailjail.rules(5) lacks $k"; fi
done

# 3. installed where man and bash-completion look
meson install -C "$BUILD" --destdir "$T/root" --no-rebuild --quiet >"$T/install.log" 2>&1 ||
    { cat "$T/install.log"; bad "meson install failed"; }
prefix=$(meson introspect "$BUILD" --buildoptions |
    python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
mandir="$T/root$prefix/share/man"
for page in mailjail mailjail.conf mailjail.rules mailjail.jails; do
    text=$(MANWIDTH=80 man -M "$mandir" "$page" 2>/dev/null | head -5)
    if grep -q "^NAME" <<<"$text"; then ok; else bad "man $page: nothing at $mandir"; fi
done
grep -q "spare_authenticated" <(MANWIDTH=80 man -M "$mandir" mailjail.jails 2>/dev/null) ||
    bad "mailjail.jails(5) is not the jails format"
compdir=$(pkg-config --variable=completionsdir \
    --define-variable=datadir="$prefix/share" bash-completion)
completion="$T/root$compdir/mailjail"
[[ -r $completion ]] && ok || bad "no completion at $completion"
if [[ $prefix == /usr ]]; then
    [[ $compdir == /usr/share/bash-completion/completions ]] || bad "completionsdir $compdir"
fi

# 4. the completion completes
cat >"$T/mailjail.conf" <<CONF
[mailjail]
log = $T/mail.log
db = $T/mj.db
rules = $SRC/rules
jails = $SRC/jails
user = root
CONF
"$MJ" ban -c "$T/mailjail.conf" --dry-run 192.0.2.71 >/dev/null
"$MJ" hold -c "$T/mailjail.conf" --dry-run carol@example.org >/dev/null
complete_words() {   # complete_words WORD... : the candidates for the last word, sorted
    bash -c '
        source /usr/share/bash-completion/bash_completion
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
        _mailjail "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}" | sort -u' _ "$completion" "$@"
}
expect() {   # expect "WANT" WORD...
    local want=$1 got
    shift
    got=$(complete_words "$@" | tr '\n' ' ')
    if [[ $got == "$want" ]]; then ok; else bad "completing '${*:2}': got '$got', want '$want'"; fi
}
expect "$(tr ' ' '\n' <<<"$commands" | sort -u | tr '\n' ' ')" "$MJ" ""
expect "release replay " "$MJ" re
for c in $commands; do
    want=$(help_options "$c" | tr '\n' ' ')
    expect "$want" "$MJ" "$c" --
done
expect "--jail --json " "$MJ" bans --j
expect "sasl-bruteforce sasl-bruteforce-v6 sasl-targeted-account " "$MJ" ban -c "$T/mailjail.conf" 192.0.2.1 --jail sasl
expect "qmgr-queued " "$MJ" test-rules -c "$T/mailjail.conf" --rule qm
expect "12h 1d 1h 1w " "$MJ" hold --for 1
expect "192.0.2.71 " "$MJ" unban -c "$T/mailjail.conf" ""
expect "carol@example.org " "$MJ" release -c "$T/mailjail.conf" ""
touch "$T/mail.log.1" "$T/mail.log.2.gz"
expect "$T/mail.log.1 $T/mail.log.2.gz " "$MJ" replay "$T/mail.log."

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
