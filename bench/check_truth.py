#!/usr/bin/env python3
"""Compare what mailjail recorded (its SQLite DB, or a PostgreSQL URI read
through psql) with the generator's ground truth.  Prints one line per check;
the last line is "OK ..." or "FAIL ..."."""
import re
import sqlite3
import subprocess
import sys


class Psql:
    """The little of sqlite3.Connection used below, through psql (no Python
    driver needed): ? parameters, rows as tuples, integers as int."""

    def __init__(self, uri):
        self.uri = uri

    def execute(self, sql, params=()):
        for p in params:
            sql = sql.replace("?", "'" + str(p).replace("'", "''") + "'", 1)
        out = subprocess.run(["psql", "-X", "-A", "-t", "-q", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              "-c", sql, self.uri], check=True, capture_output=True, text=True).stdout
        return [tuple(int(v) if re.fullmatch(r"-?[0-9]+", v) else v for v in line.split("\t"))
                for line in out.splitlines() if line]

truth_path, db_path = sys.argv[1], sys.argv[2]
per = {}          # (kind, key) -> count
totals = {}
bruteforcers, bursts = [], []
for line in open(truth_path):
    f = line.split()
    if not f:
        continue
    if f[0] == "event_total":
        totals[f[1]] = int(f[2])
    elif f[0] in ("auth_failure", "submission", "relay_denied", "rbl_reject"):
        per[(f[0], f[1])] = int(f[2])
    elif f[0] == "bruteforcer":
        bruteforcers.append(f[1])
    elif f[0] == "burst":
        bursts.append(f[1])

db = Psql(db_path) if db_path.startswith("postgres") else sqlite3.connect(db_path)
fails = []
# Every recognised line is counted in event_counts (per minute and rule);
# only the kinds a jail counts are also rows of events (schemas/003).
got_totals = dict(db.execute("SELECT event, sum(n) FROM event_counts GROUP BY event"))
rows = dict(db.execute("SELECT event, count(*) FROM events GROUP BY event"))
for name, want in sorted(totals.items()):
    got = got_totals.get(name, 0)
    print("events %-20s truth %8d  mailjail %8d  %s" % (name, want, got, "ok" if got == want else "DIFF"))
    if got != want:
        fails.append(name)
for name in sorted(set(got_totals) - set(totals)):
    print("events %-20s not in the truth: %d" % (name, got_totals[name]))
# The kinds the shipped jails count must be stored, each one: the per-key
# and quota checks below read these rows.
for name in ("auth_failure", "relay_denied", "rbl_reject", "submission"):
    if rows.get(name, 0) != got_totals.get(name, 0):
        print("rows   %-20s counted %d, stored %d  DIFF" % (name, got_totals.get(name, 0), rows.get(name, 0)))
        fails.append("rows " + name)
print("rows stored: %s" % ", ".join("%s %d" % kv for kv in sorted(rows.items())))

col = {"auth_failure": "ip", "relay_denied": "ip", "rbl_reject": "ip", "submission": "account"}
wrong = 0
for kind in col:
    got = dict(db.execute("SELECT %s, count(*) FROM events WHERE event = ? GROUP BY 1" % col[kind], (kind,)))
    want = {k: v for (t, k), v in per.items() if t == kind}
    diff = [k for k in set(got) | set(want) if got.get(k, 0) != want.get(k, 0)]
    print("per-key %-13s %6d keys, %d differ" % (kind, len(want), len(diff)))
    wrong += len(diff)
    for k in sorted(diff)[:5]:
        print("  %s: truth %d, mailjail %d" % (k, want.get(k, 0), got.get(k, 0)))

banned = {r[0] for r in db.execute("SELECT target FROM bans WHERE target_kind = 'ip'")}
held = {r[0] for r in db.execute("SELECT target FROM bans WHERE target_kind = 'account' "
                                 "AND jail = 'outbound-quota'")}
# Which accounts went over outbound-quota (100/1h, 500/1d, sliding windows
# (t-w, t]), computed here from the truth's own events, independently of jail.c.
over = set()
times = {}
for acct, t in db.execute("SELECT account, time FROM events WHERE event = 'submission' ORDER BY time, id"):
    times.setdefault(acct, []).append(t)
for acct, ts in times.items():
    lo1 = lo2 = 0
    for i, t in enumerate(ts):
        while ts[lo1] <= t - 3600:
            lo1 += 1
        while ts[lo2] <= t - 86400:
            lo2 += 1
        if i - lo1 + 1 > 100 or i - lo2 + 1 > 500:
            over.add(acct)
            break
missed = [ip for ip in bruteforcers if not any(ip == b or (("/" in b) and ip.startswith(b.split("/")[0].rstrip(":"))) for b in banned)]
print("brute-forcers banned: %d of %d" % (len(bruteforcers) - len(missed), len(bruteforcers)))
print("bursting accounts held: %d of %d (%d of them went over 100/1h or 500/1d)"
      % (len([a for a in bursts if a in held]), len(bursts), len([a for a in bursts if a in over])))
print("accounts over quota: %d, held by outbound-quota: %d, same set: %s"
      % (len(over), len(held), "yes" if over == held else "NO"))
print("all bans: %d IP targets, %d account targets" % (len(banned), len(held)))
if missed or over != held or any(a not in held for a in bursts if a in over):
    fails.append("verdicts")
if wrong:
    fails.append("per-key counts")
print(("FAIL: " + ", ".join(fails)) if fails else "OK: events, per-key counts and verdicts match the ground truth")
