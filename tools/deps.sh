#!/bin/sh
# Install what mailjail needs to build, run and test on Debian 12.
# Run as root (or with sudo).
#
# What the build needs is debian/control's Build-Depends, installed from it
# by apt-get build-dep: add a build dependency there, not here (the package
# test checks that every library meson finds is one).  The list below is
# what the tests, the fuzzing and the package check need besides.
set -eu
export DEBIAN_FRONTEND=noninteractive
# Postfix's tools (postmap, postqueue) for the map tests, and Postfix, Dovecot
# (SASL), swaks and nc for the e2e suite, which runs its own instances in a
# temporary directory; "No configuration" installs Postfix without setting up
# a system mail server.  A system Dovecot, if the package starts one, does not
# matter: the test's Dovecot has its own base_dir and listens on no port.
# systemd-analyze and strace check the shipped unit (tools/unit-security.sh).
# libpq-dev builds the PostgreSQL store backend; postgresql gives the tests
# and the bench the binaries (initdb, pg_ctl) of the private clusters they
# start in a temporary directory (tests/pg.sh), never the system's cluster.
# python3-prometheus-client parses the metrics exposition in test_signals.
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
apt-get update -qq
apt-get build-dep -y -qq --no-install-recommends "$(cd "$(dirname "$0")/.." && pwd)" >/dev/null
apt-get install -y -qq --no-install-recommends \
    build-essential debhelper dpkg-dev lintian libcriterion-dev \
    gzip xz-utils bzip2 bash-completion groff-base man-db \
    python3-prometheus-client \
    systemd-journal-remote \
    systemd strace \
    sqlite3 postgresql nftables pcre2-utils iproute2 util-linux procps \
    clang libclang-rt-14-dev valgrind \
    postfix postfix-sqlite \
    dovecot-core swaks libsasl2-modules netcat-openbsd >/dev/null
