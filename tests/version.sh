#!/bin/sh
# version.sh BINARY SRCDIR VERSION - one version everywhere: "mailjail
# --version" and "-V" print "mailjail VERSION" (meson's project version),
# --help names it, debian/changelog's version starts with it (VERSION-N),
# and the man page's header says it.
set -eu
bin=$1 src=$2 version=$3
fail=0
check() {   # check WHAT GOT WANT
    if [ "$2" != "$3" ]; then
        echo "FAIL: $1: got \"$2\", want \"$3\"" >&2
        fail=1
    else
        echo "ok: $1: $2"
    fi
}
check "mailjail --version" "$("$bin" --version)" "mailjail $version"
check "mailjail -V" "$("$bin" -V)" "mailjail $version"
check "--help names the version" \
    "$("$bin" --help | grep -c "This is mailjail $version\.")" 1
command -v dpkg-parsechangelog >/dev/null ||
    { echo "FAIL: dpkg-parsechangelog missing: apt-get install dpkg-dev (tools/deps.sh)" >&2; exit 1; }
deb=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
check "debian/changelog's upstream version" "${deb%-*}" "$version"
check "mailjail.8's header" \
    "$(sed -n 's/^\.TH MAILJAIL 8 [^ ]* "mailjail \([^"]*\)".*/\1/p' "$src/docs/mailjail.8")" \
    "$version"
exit $fail
