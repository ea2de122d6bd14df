#!/usr/bin/env python3
"""N distinct keys in all: N/2 failing IPv4 addresses and N/2 submitting
accounts, all within two minutes, so every key is tracked at once (the
memory figure)."""
import sys

n = int(sys.argv[1]) // 2
out = []
for i in range(n):
    s = i * 120 // n          # spread over two minutes
    stamp = "2026-11-20T10:%02d:%02d.000000+00:00" % (s // 60, s % 60)
    ip = "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)
    out.append("%s mx postfix/submission/smtpd[1]: warning: unknown[%s]: SASL LOGIN "
               "authentication failed: x, sasl_username=u" % (stamp, ip))
    out.append("%s mx postfix/submission/smtpd[1]: %010X: client=unknown[192.0.2.1], "
               "sasl_method=PLAIN, sasl_username=user%d@example.org" % (stamp, i + 1, i))
    # as in a real log, qmgr picks every accepted message up at once
    out.append("%s mx postfix/qmgr[2]: %010X: from=<user%d@example.org>, size=900, "
               "nrcpt=1 (queue active)" % (stamp, i + 1, i))
sys.stdout.write("\n".join(out) + "\n")
