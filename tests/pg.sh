#!/bin/bash
# pg.sh - a private PostgreSQL 15 for the tests and the bench: Debian's
# binaries, initdb + pg_ctl in a temporary directory, listening on a unix
# socket in that directory only (listen_addresses = ''), run as an
# unprivileged user (initdb refuses root).  Never the host's cluster.
#
#   pg.sh start DIR [fast]   make and start a cluster in DIR (made, owned by
#                            the server's user); prints the socket directory.
#                            fast: fsync off (tests; not for the bench)
#   pg.sh stop DIR           stop it (DIR stays; rm -rf it yourself)
#   pg.sh restart DIR        stop and start again (a server restart)
#   pg.sh createdb DIR NAME  a new database; prints its URI
#   pg.sh uri DIR NAME       the URI of database NAME
#
# Roles: postgres (trust, the tests' superuser) and mailjail (password
# "mailjail-test-secret", scram-sha-256), for the tests that show a
# password never leaks.  A missing PostgreSQL is an error, never a skip.
set -euo pipefail
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: pg.sh start|stop|restart|createdb|uri DIR [ARG]}
dir=${2:?usage: pg.sh start|stop|restart|createdb|uri DIR [ARG]}

if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
    echo "pg.sh: PostgreSQL 15 not found in $PGBIN (apt-get install postgresql; tools/deps.sh)" >&2
    exit 1
fi

# as_server CMD... - run as the server's user: postgres when we are root
as_server() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

uri() {
    echo "postgresql:///$1?host=$dir/sock&user=postgres"
}

case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    # Clients that dropped their privileges (a daemon's reconnection, as
    # its run user) must reach the socket, as in /var/run/postgresql.
    chmod 755 "$dir"
    as_server mkdir -p "$dir/sock"
    as_server "$PGBIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C -N \
        --auth-local=trust --auth-host=reject >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; exit 1; }
    # The tests' role with a password, asked for it (scram) even on the socket.
    printf 'local all postgres trust\nlocal all all scram-sha-256\n' |
        as_server tee "$dir/data/pg_hba.conf" >/dev/null
    opts="-c listen_addresses='' -c unix_socket_directories='$dir/sock'"
    opts="$opts -c max_connections=60 -c shared_buffers=32MB"
    if [ "${3:-}" = fast ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    echo "$opts" | as_server tee "$dir/opts" >/dev/null
    as_server "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 \
        start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    as_server "$PGBIN/psql" -X -q -h "$dir/sock" -U postgres -d postgres -c \
        "CREATE ROLE mailjail LOGIN PASSWORD 'mailjail-test-secret'" >/dev/null
    echo "$dir/sock"
    ;;
stop)
    as_server "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    ;;
restart)
    as_server "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$(cat "$dir/opts")" \
        -m fast -w -t 60 restart >/dev/null || { tail -20 "$dir/server.log" >&2; exit 1; }
    ;;
createdb)
    name=${3:?pg.sh createdb DIR NAME}
    as_server "$PGBIN/psql" -X -q -h "$dir/sock" -U postgres -d postgres -c \
        "CREATE DATABASE \"$name\" OWNER mailjail" >/dev/null
    uri "$name"
    ;;
uri)
    uri "${3:?pg.sh uri DIR NAME}"
    ;;
*)
    echo "pg.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
