#!/usr/bin/env python3
"""N distinct keys in all: N/2 failing IPv4 addresses and N/2 submitting
accounts, all within two minutes, so every key is tracked at once (the
memory figure).

    genkeys.py N [--fail-user distinct|none|one]

What the failures name (sasl_username=, as Debian's Postfix 3.7 logs it):
  distinct  (default) each address its own made-up account: a spray, every
            address and every name tracked once (sasl-targeted-account
            tracks the names)
  none      no user name (older Postfix): the addresses alone
  one       all the same account "u": a distributed brute force on one
            account, which sasl-targeted-account answers by banning every
            address (what that costs, not a key count)
"""
import sys

args = sys.argv[1:]
mode = "distinct"
if "--fail-user" in args:
    i = args.index("--fail-user")
    mode = args[i + 1]
    del args[i:i + 2]
if mode not in ("distinct", "none", "one") or len(args) != 1:
    sys.exit(__doc__)
n = int(args[0]) // 2
out = []
for i in range(n):
    s = i * 120 // n          # spread over two minutes
    stamp = "2026-11-20T10:%02d:%02d.000000+00:00" % (s // 60, s % 60)
    ip = "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
    user = {"distinct": ", sasl_username=guess%d" % i, "none": "",
            "one": ", sasl_username=u"}[mode]
    out.append("%s mx postfix/submission/smtpd[1]: warning: unknown[%s]: SASL LOGIN "
               "authentication failed: x%s" % (stamp, ip, user))
    out.append("%s mx postfix/submission/smtpd[1]: %010X: client=unknown[192.0.2.1], "
               "sasl_method=PLAIN, sasl_username=user%d@example.org" % (stamp, i + 1, i))
    # as in a real log, qmgr picks every accepted message up at once
    out.append("%s mx postfix/qmgr[2]: %010X: from=<user%d@example.org>, size=900, "
               "nrcpt=1 (queue active)" % (stamp, i + 1, i))
sys.stdout.write("\n".join(out) + "\n")
