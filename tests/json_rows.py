#!/usr/bin/env python3
"""Read the output of `mailjail bans --json` / `history --json` (a file, as
strict UTF-8 and strict JSON) and check its shape: an array of objects with
exactly the README's members and types.  Print one line per row for the C
test to compare with what it did:

    TARGET KIND LEVEL STARTED EXPIRES LIFTED JAIL REASON

TARGET, JAIL and REASON as ASCII JSON strings (so every byte shows), times
as Unix seconds, LIFTED "null" when the member is null.  Exit 1 with a
message on the first thing that is not as documented.
"""
import calendar
import json
import re
import sys
import time

KEYS = ["jail", "target", "kind", "level", "started", "expires", "lifted", "reason"]
ISO = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def fail(msg):
    print("BAD " + msg)
    sys.exit(1)


def epoch(v, what):
    if not isinstance(v, str) or not ISO.match(v):
        fail("%s is not an ISO 8601 UTC string: %r" % (what, v))
    return calendar.timegm(time.strptime(v, "%Y-%m-%dT%H:%M:%SZ"))


def main(path):
    with open(path, "rb") as f:
        raw = f.read()
    try:
        # No NaN/Infinity either: those are not JSON.
        rows = json.loads(raw.decode("utf-8"),
                          parse_constant=lambda c: fail("not JSON: " + c))
    except (UnicodeDecodeError, ValueError) as e:
        fail("not UTF-8 JSON: %s" % e)
    if not isinstance(rows, list):
        fail("not an array")
    for r in rows:
        if not isinstance(r, dict) or list(r.keys()) != KEYS:
            fail("members are not %s in this order: %r" % (KEYS, r))
        for k in ("jail", "target", "kind", "reason"):
            if not isinstance(r[k], str):
                fail("%s is not a string: %r" % (k, r[k]))
        if r["kind"] not in ("ip", "account"):
            fail("kind %r" % r["kind"])
        if type(r["level"]) is not int or r["level"] < 1:
            fail("level is not a number >= 1: %r" % (r["level"],))
        lifted = "null" if r["lifted"] is None else str(epoch(r["lifted"], "lifted"))
        print(" ".join([json.dumps(r["target"]), r["kind"], str(r["level"]),
                        str(epoch(r["started"], "started")),
                        str(epoch(r["expires"], "expires")), lifted,
                        json.dumps(r["jail"]), json.dumps(r["reason"])]))


if __name__ == "__main__":
    main(sys.argv[1])
