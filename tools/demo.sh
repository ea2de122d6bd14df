#!/bin/sh
# README's first command: install the build dependencies, build, replay the
# shipped sample log in dry-run mode (decisions recorded, nothing enforced)
# and show the ban history with the plain sqlite3 CLI.  Run as root (apt).
set -eu
umask 022   # a config file others can write is refused (src/cfgfile.h)
cd "$(dirname "$0")/.."
sh tools/deps.sh
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
meson compile -C build >/dev/null
DB=${DB:-/tmp/mailjail-demo.db}
rm -f "$DB" "$DB-wal" "$DB-shm"
build/mailjail replay --dry-run -c conf/mailjail.conf --db "$DB" tests/data/sample-mail.log
echo
sqlite3 -header -column "$DB" 'select * from ban_history'
