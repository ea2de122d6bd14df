#!/usr/bin/env python3
"""Write tests/data/sample-mail.log, the demo log of README's first command.

Deterministic.  Postfix 3.7 line formats as seen on real servers (see
DESIGN.md); addresses are documentation ranges.  What is in it, and what
mailjail should make of it with the shipped jails:
  - 203.0.113.45 brute-forces SASL LOGIN (8 failures)    -> banned
  - 2001:db8:a::7 brute-forces over IPv6 (6 failures)     -> banned
  - 192.0.2.99 fails twice, far apart                     -> nothing
  - 198.51.100.77 fails 6 times with a user name that imitates a failure
    line for 192.0.2.66                                    -> 198.51.100.77 banned, never 192.0.2.66
  - 198.51.100.9 tries to relay 3 times                    -> below relay-abuse
  - 192.0.2.150 is rejected by an RBL once                 -> banned (rbl jail)
  - newsletter@example.org sends 120 messages in ~30 min   -> held (quota 100/1h)
"""
import random
import sys

random.seed(7)
out = []
t = [0]            # seconds since Nov 21 09:00:00
pid = [2000]
qn = [0x3A1F0000]


def stamp():
    s = 9 * 3600 + t[0]
    d = 21 + s // 86400
    s %= 86400
    return "Nov %2d %02d:%02d:%02d" % (d, s // 3600, s % 3600 // 60, s % 60)


def line(prog, msg, dt=1):
    t[0] += dt
    out.append("%s mx %s[%d]: %s" % (stamp(), prog, pid[0], msg))


def qid():
    qn[0] += 0x1F3
    return "%X" % qn[0]


def submit(user, ip="198.51.100.20", host="client.example.net", n=1, dt=2):
    pid[0] += 1
    line("postfix/submission/smtpd", "connect from %s[%s]" % (host, ip), dt)
    q = qid()
    line("postfix/submission/smtpd", "%s: client=%s[%s], sasl_method=PLAIN, sasl_username=%s"
         % (q, host, ip, user), 0)
    line("postfix/cleanup", "%s: message-id=<%s@example.org>" % (q, q.lower()), 0)
    line("postfix/qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)"
         % (q, user, random.randint(800, 9000), n), 0)
    for i in range(n):
        line("postfix/smtp", "%s: to=<rcpt%d@example.com>, relay=mx.example.com[192.0.2.25]:25, "
             "delay=0.4, delays=0.1/0/0.1/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok)" % (q, i), 0)
    line("postfix/qmgr", "%s: removed" % q, 0)
    line("postfix/submission/smtpd", "disconnect from %s[%s] ehlo=1 auth=1 mail=1 rcpt=%d data=1 "
         "quit=1 commands=%d" % (host, ip, n, 5 + n), 0)


def fail(ip, host="unknown", user="admin", mech="LOGIN", dt=7, suffix=True):
    pid[0] += 1
    line("postfix/submission/smtpd", "connect from %s[%s]" % (host, ip), dt)
    msg = "warning: %s[%s]: SASL %s authentication failed: UGFzc3dvcmQ6" % (host, ip, mech)
    if suffix:
        msg += ", sasl_username=%s" % user
    line("postfix/submission/smtpd", msg, 1)
    line("postfix/submission/smtpd", "lost connection after AUTH from %s[%s]" % (host, ip), 0)
    line("postfix/submission/smtpd", "disconnect from %s[%s] ehlo=1 auth=0/1 commands=1/2"
         % (host, ip), 0)


line("postfix/master", "daemon started -- version 3.7.11, configuration /etc/postfix", 0)
for i in range(6):
    submit(random.choice(["alice@example.org", "bob@example.org", "carol@example.org"]), dt=40)
for i in range(8):
    fail("203.0.113.45", user=random.choice(["admin", "info", "test", "sales"]))
fail("192.0.2.99", host="mail.example.net", user="bob@example.org", mech="PLAIN", dt=300)
for i in range(6):
    fail("2001:db8:a::7", mech="login", user="postmaster", suffix=(i % 2 == 0))
fail("192.0.2.99", host="mail.example.net", user="bob@example.org", mech="PLAIN", dt=400)
for i in range(6):
    fail("198.51.100.77", user="x[192.0.2.66]: SASL LOGIN authentication failed:", dt=20)
line("postfix/submission/smtpd", "warning: unknown[192.0.2.200]: SASL LOGIN authentication "
     "failed: Connection lost to authentication server, sasl_username=(unavailable)", 5)
for i in range(3):
    line("postfix/smtpd", "connect from unknown[198.51.100.9]", 30)
    line("postfix/smtpd", "NOQUEUE: reject: RCPT from unknown[198.51.100.9]: 554 5.7.1 "
         "<victim%d@elsewhere.example>: Relay access denied; from=<spam@bulk.example> "
         "to=<victim%d@elsewhere.example> proto=ESMTP helo=<bulk.example>" % (i, i), 1)
line("postfix/smtpd", "connect from bad.example.com[192.0.2.150]", 20)
line("postfix/smtpd", "NOQUEUE: reject: RCPT from bad.example.com[192.0.2.150]: 554 5.7.1 "
     "Service unavailable; Client host [192.0.2.150] blocked using zen.spamhaus.org; "
     "https://www.spamhaus.org/query/ip/192.0.2.150; from=<x@bad.example.com> "
     "to=<alice@example.org> proto=ESMTP helo=<bad.example.com>", 1)
for i in range(120):
    submit("newsletter@example.org", ip="203.0.113.200", host="unknown",
           n=random.randint(1, 3), dt=random.randint(5, 25))
for i in range(5):
    submit(random.choice(["alice@example.org", "bob@example.org"]), dt=60)

path = sys.argv[1] if len(sys.argv) > 1 else "tests/data/sample-mail.log"
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
