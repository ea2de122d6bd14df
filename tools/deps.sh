#!/bin/sh
# Install what mailjail needs to build, run and test on Debian 12.
# Run as root (or through sudo).
set -eu
export DEBIAN_FRONTEND=noninteractive
# Postfix's tools (postmap, postqueue) for the map tests, and Postfix, Dovecot
# (SASL), swaks and nc for the e2e suite, which runs its own instances in a
# temporary directory; "No configuration" installs Postfix without setting up
# a system mail server.  A system Dovecot, if the package starts one, does not
# matter: the test's Dovecot has its own base_dir and listens on no port.
echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential meson ninja-build pkg-config python3 \
    libpcre2-dev libinotifytools0-dev libnftnl-dev libmnl-dev libsqlite3-dev \
    libinih-dev libcap-ng-dev libsystemd-dev libcriterion-dev \
    libcurl4-openssl-dev libjson-c-dev libmicrohttpd-dev python3-prometheus-client \
    systemd-journal-remote \
    sqlite3 nftables pcre2-utils iproute2 util-linux procps \
    clang libclang-rt-14-dev valgrind \
    postfix postfix-sqlite \
    dovecot-core swaks libsasl2-modules netcat-openbsd >/dev/null
