#!/usr/bin/env python3
"""Deterministic generator of a realistic Postfix 3.7 mail.log plus a truth file.

Usage:
  genlog.py --lines N --seed S --out FILE --truth TRUTH
            [--format syslog|rfc3339|mixed] [--start 2026-11-20T00:00:00]

Standard library only.  Every counter in the truth file is incremented only
after the line it describes has been emitted, so counts are exact for the
file that was written, even when the line budget cuts a session short.
See bench/README.md for the truth format.
"""

import argparse
import calendar
import datetime
import heapq
from math import log as _log
import random
import socket
import sys

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

EVENT_KINDS = ("auth_failure", "submission", "queued", "relay_denied",
               "rbl_reject", "lost_after_auth", "auth_disconnect", "non_smtp",
               "postscreen_pregreet", "postscreen_dnsbl")

HOSTNAME = "mx"
SERVER_V4 = "192.0.2.10"
SERVER_V6 = "2001:db8::25"
MYDOMAIN = "example.org"

# Networks never used for "real" remote clients (attackers, senders).
_RESERVED_V4 = (
    (0x00000000, 8), (0x0A000000, 8), (0x64400000, 10), (0x7F000000, 8),
    (0xA9FE0000, 16), (0xAC100000, 12), (0xC0000000, 24), (0xC0000200, 24),
    (0xC0A80000, 16), (0xC6120000, 15), (0xC6336400, 24), (0xCB007100, 24),
    (0xE0000000, 3),
)

FIRST_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
    "trent", "victor", "walter", "xavier", "yolanda", "zoe", "anna", "ben",
    "chris", "dora", "emil", "fiona", "georg", "hanna", "igor", "jana",
    "karl", "lena", "marek", "nina", "oskar", "paula", "quinn", "rosa",
)
GUESSED_USERS = (
    "admin", "info", "test", "postmaster", "support", "sales", "webmaster",
    "office", "contact", "root", "user", "mail", "billing", "noreply",
    "admin@example.org", "info@example.org", "test@example.org",
    "marketing@example.org", "hr@example.org", "scanner",
)
EXT_DOMAINS = (
    "gmail.com", "yahoo.com", "outlook.com", "gmx.de", "web.de", "example.com",
    "example.net", "mailbox.org", "proton.me", "icloud.com", "posteo.de",
    "lists.debian.org", "github.com", "newsletter.example.com",
)
MX_RELAYS = (
    ("gmail-smtp-in.l.google.com", "142.250.27.26"),
    ("alt1.gmail-smtp-in.l.google.com", "142.250.153.27"),
    ("mta7.am0.yahoodns.net", "67.195.204.79"),
    ("example-com.mail.protection.outlook.com", "52.101.68.18"),
    ("mx00.emig.gmx.net", "212.227.15.9"),
    ("mx-ha03.web.de", "212.227.17.8"),
    ("mx1.mailbox.org", "80.241.60.212"),
    ("mx01.posteo.de", "185.67.36.65"),
    ("mx.example.com", "93.184.216.34"),
    ("mail.example.net", "2001:db8:85a3::8a2e:370:7334"),
)
INBOUND_SENDERS = (
    ("mail-wm1-f45.google.com", "209.85.128.45"),
    ("mail-ej1-f50.google.com", "209.85.218.50"),
    ("mail-lf1-f41.google.com", "209.85.167.41"),
    ("mout.gmx.net", "212.227.15.19"),
    ("mout.web.de", "217.72.192.78"),
    ("mail-db8eur05on2070.outbound.protection.outlook.com", "40.107.20.70"),
    ("sonic301-3.consmr.mail.ir2.yahoo.com", "77.238.176.205"),
    ("mout-p-201.mailbox.org", "80.241.56.171"),
    ("mail.example.com", "93.184.216.35"),
    ("bendel.debian.org", "82.195.75.100"),
    ("out-27.smtp.github.com", "192.30.252.210"),
    ("mail.example.net", "2001:db8:1234::25"),
    ("mx2.example.net", "2001:db8:1234::26"),
)
RBL_ZONES = ("zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org",
             "dnsbl.sorbs.net")
TLS_CIPHERS = (
    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256",
    "TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)",
)
HELOS_BAD = ("User", "WIN-9QL4SDRB93L", "ylmf-pc", "localhost", "[127.0.0.1]",
             "WIN-CLJ1B0GQ6JP", "example.com", "mail.example.org")
PREGREETS = (
    "EHLO User\\r\\n", "EHLO ylmf-pc\\r\\n", "EHLO 127.0.0.1\\r\\n",
    "GET / HTTP/1.1\\r\\n", "\\026\\003\\001\\002\\000\\001\\000\\001\\374\\003\\003",
    "QUIT\\r\\n", "HELO localhost\\r\\n",
)
NON_SMTP_CMDS = (
    "GET / HTTP/1.1", "CONNECT 1.2.3.4:80 HTTP/1.1", "POST /cgi-bin/ HTTP/1.1",
    "\\001\\000\\000S\\000\\005\\000\\005\\001\\000\\000\\000\\000\\000",
    "User-Agent: Mozilla/5.0", "Host: 192.0.2.10",
)
LOGIN_REASONS = ("UGFzc3dvcmQ6", "authentication failure", "(reason unavailable)",
                 "Password:", "UGFzc3dvcmQ6")
PLAIN_REASONS = ("authentication failure", "(reason unavailable)", "")
CRAM_REASONS = ("PDc3OTEwNTkyNTEyMzA2NDIuMTIyODI1MzA2MUBoZWw+",
                "authentication failure")
MECHS = ("LOGIN", "LOGIN", "LOGIN", "PLAIN", "PLAIN", "CRAM-MD5", "login")


class Stop(Exception):
    pass


def _reserved_v4(x):
    for net, plen in _RESERVED_V4:
        if (x >> (32 - plen)) == (net >> (32 - plen)):
            return True
    return False


class Gen:
    def __init__(self, args):
        self.rnd = random.Random(args.seed)
        self._random = self.rnd.random
        self.limit = args.lines
        self.fmt = args.format
        self.n = 0
        self.out = []
        self.outf = open(args.out, "w", encoding="ascii", newline="\n")
        st = args.start
        if st.tzinfo is None:
            st = st.replace(tzinfo=datetime.timezone.utc)
        self.t = int(st.timestamp()) * 1000000 + st.microsecond
        self.first_ts = None
        self.last_ts = None
        self._sec = -1
        self._pfx_sys = ""
        self._pfx_rfc = ""
        # mean gap so that 1M lines span about two days
        self.mean_gap = 170000.0
        self.counts = dict((k, 0) for k in EVENT_KINDS)
        self.auth_fail = {}
        self.subm = {}
        self.relay = {}
        self.rbl = {}
        self.pending = []   # heap of (due_line, seq, fn, arg)
        self.seq = 0
        self.used_inodes = set()
        self.pidc = 2000 + self.rnd.randrange(1000)
        self.used_ips = set()
        self.hostnames = {}
        self._setup()

    # ----------------------------------------------------------------- output
    def emit(self, body):
        """Write one line; raises Stop when the budget is used up."""
        if self.n >= self.limit:
            raise Stop
        rand = self._random
        # exponential gap (mean self.gap us) plus 1 ms
        t = self.t = self.t + int(-_log(1.0 - rand()) * self.gap) + 1000
        sec = t // 1000000
        if sec != self._sec:
            self._new_second(sec)
        fmt = self.fmt
        if fmt == "mixed":
            fmt = "syslog" if rand() < 0.5 else "rfc3339"
        if fmt == "syslog":
            self.out.append(self._pfx_sys + body + "\n")
        else:
            self.out.append("%s%06d+00:00 %s %s\n" % (
                self._pfx_rfc, t % 1000000, HOSTNAME, body))
        self.n += 1
        if len(self.out) >= 32768:
            self.outf.write("".join(self.out))
            self.out = []

    def _new_second(self, sec):
        self._sec = sec
        tm = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
        self._pfx_sys = "%s %2d %02d:%02d:%02d %s " % (
            MONTHS[tm.month - 1], tm.day, tm.hour, tm.minute, tm.second,
            HOSTNAME)
        self._pfx_rfc = "%04d-%02d-%02dT%02d:%02d:%02d." % (
            tm.year, tm.month, tm.day, tm.hour, tm.minute, tm.second)
        if self.first_ts is None:
            self.first_ts = sec
        self.last_ts = sec

    def close(self):
        self.outf.write("".join(self.out))
        self.out = []
        self.outf.close()

    # ------------------------------------------------------------ primitives
    def newpid(self):
        self.pidc += self.rnd.randrange(1, 40)
        if self.pidc > 4194000:
            self.pidc = 1000
        return self.pidc

    def pid(self, pool):
        """Pick a process from a pool; processes get replaced over time."""
        rnd = self.rnd
        i = rnd.randrange(len(pool))
        if rnd.random() < 0.01:
            pool[i] = self.newpid()
        return pool[i]

    def qid(self):
        rnd = self.rnd
        usec = self.t % 1000000
        while True:
            r = rnd.random()
            if r < 0.1:
                ino = rnd.randrange(0x10000, 0x100000)      # 10 chars
            elif r < 0.9:
                ino = rnd.randrange(0x100000, 0x1000000)    # 11 chars
            else:
                ino = rnd.randrange(0x1000000, 0x10000000)  # 12 chars
            if ino not in self.used_inodes:
                self.used_inodes.add(ino)
                return "%05X%X" % (usec, ino)

    def rand_v4(self):
        rnd = self.rnd
        while True:
            x = rnd.getrandbits(32)
            if _reserved_v4(x):
                continue
            s = "%d.%d.%d.%d" % (x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255)
            if s not in self.used_ips:
                self.used_ips.add(s)
                return s

    def rand_v6(self):
        rnd = self.rnd
        while True:
            # 2001:db8::/32 plus a few realistic-looking global prefixes
            pre = rnd.choice((0x20010db8, 0x2a010e00, 0x24020800, 0x2a02c207,
                              0x26001f18))
            words = [pre >> 16, pre & 0xFFFF, rnd.getrandbits(16),
                     rnd.choice((0, 0, rnd.getrandbits(16)))]
            style = rnd.random()
            if style < 0.4:        # ::N style interface id
                words += [0, 0, 0, rnd.randrange(1, 0x10000)]
            elif style < 0.6:      # a single zero word (not compressed by inet_ntop)
                words += [rnd.getrandbits(16), 0, rnd.getrandbits(16),
                          rnd.getrandbits(16)]
            else:
                words += [rnd.getrandbits(16) for _ in range(4)]
            b = b"".join(w.to_bytes(2, "big") for w in words)
            s = socket.inet_ntop(socket.AF_INET6, b)
            if s not in self.used_ips:
                self.used_ips.add(s)
                return s

    def host_for(self, ip, p_unknown=0.6):
        h = self.hostnames.get(ip)
        if h is None:
            rnd = self.rnd
            if rnd.random() < p_unknown:
                h = "unknown"
            elif ":" in ip:
                h = rnd.choice(("static", "host", "vps")) + "-%d.ip6.example.net" % rnd.randrange(1, 9999)
            else:
                a, b, c, d = ip.split(".")
                h = rnd.choice((
                    "%s-%s-%s-%s.dynamic.example.net" % (a, b, c, d),
                    "static.%s.%s.%s.%s.clients.your-server.example" % (d, c, b, a),
                    "ip%s-%s-%s-%s.pool.example.com" % (a, b, c, d),
                    "vps%d.hosting.example" % rnd.randrange(100, 99999),
                    "mail.%s.example" % rnd.choice(("acme", "contoso", "fabrikam", "initech")),
                ))
            self.hostnames[ip] = h
        return h

    def later(self, k, fn, arg):
        self.seq += 1
        heapq.heappush(self.pending, (self.n + k, self.seq, fn, arg))

    def flush_pending(self, force=False):
        p = self.pending
        while p and (force or p[0][0] <= self.n):
            _, _, fn, arg = heapq.heappop(p)
            fn(arg)

    # ----------------------------------------------------------------- setup
    def _setup(self):
        rnd = self.rnd
        N = self.limit
        self.gap = self.mean_gap
        self.script_pid = self.newpid()
        self.master_pid = self.newpid()
        self.smtpd = [self.newpid() for _ in range(12)]
        self.subd = [self.newpid() for _ in range(6)]
        self.smtpsd = [self.newpid() for _ in range(3)]
        self.cleanup = [self.newpid() for _ in range(4)]
        self.smtp = [self.newpid() for _ in range(8)]
        self.lmtp = [self.newpid() for _ in range(3)]
        self.pscreen = [self.newpid() for _ in range(1)]
        self.qmgr = self.newpid()
        self.anvil = self.newpid()
        # accounts: user123@domain style plus bare names
        accts = []
        nums = rnd.sample(range(1, 1000), 260)
        for i in nums:
            accts.append("user%d@%s" % (i, rnd.choice((MYDOMAIN, MYDOMAIN, "example.com", "mail.example.org"))))
        accts += list(FIRST_NAMES)
        rnd.shuffle(accts)
        self.accounts = accts
        self.acct_w = [rnd.uniform(0.3, 3.0) for _ in accts]
        self.acct_ip = {}
        for a in accts:
            ip = rnd.choice((self.rand_v4(), self.rand_v4(), self.rand_v6(), "127.0.0.1"))
            self.acct_ip[a] = ip
            self.host_for(ip, 0.3)
        self.burst_acct = accts[rnd.randrange(len(accts))]
        b0 = int(N * rnd.uniform(0.35, 0.6))
        self.burst_window = (b0, b0 + max(200, N * 3 // 100))
        # brute-forcers: 7 IPv4 + 3 IPv6, each with 2..6 campaigns
        self.bruteforcers = [self.rand_v4() for _ in range(7)] + [self.rand_v6() for _ in range(3)]
        total_bf_fail = max(200, int(N * 0.035))
        camps = []
        for ip in self.bruteforcers:
            self.host_for(ip, 0.8)
            for _ in range(rnd.randrange(2, 7)):
                camps.append([int(N * rnd.uniform(0.0, 0.95)), ip,
                              rnd.uniform(0.3, 2.0)])
        wsum = sum(c[2] for c in camps)
        self.campaigns = []
        for start, ip, w in camps:
            fails = max(8, int(total_bf_fail * w / wsum))
            users = rnd.sample(GUESSED_USERS, 4) if rnd.random() < 0.7 else [rnd.choice(accts)]
            self.campaigns.append((start, ip, fails, rnd.choice(MECHS), users,
                                   rnd.random() < 0.5))
        self.campaigns.sort(key=lambda c: (c[0], c[1]))
        self.camp_i = 0
        self.active = []
        # low-rate failers: a few hundred v4 and v6
        self.lowrate = [self.rand_v4() for _ in range(230)] + [self.rand_v6() for _ in range(70)]
        rnd.shuffle(self.lowrate)
        self.lowrate_w = [rnd.choice((1, 1, 1, 2, 3, 5, 8)) for _ in self.lowrate]
        for ip in self.lowrate:
            self.host_for(ip, 0.6)
        # relay testers, RBL-listed hosts, scanners, postscreen victims
        self.relayers = [self.rand_v4() for _ in range(150)] + [self.rand_v6() for _ in range(20)]
        self.relay_w = [rnd.choice((1, 1, 2, 4, 10)) for _ in self.relayers]
        self.rblers = [self.rand_v4() for _ in range(250)]
        self.rbl_w = [rnd.choice((1, 1, 1, 2, 3)) for _ in self.rblers]
        self.scanners = [self.rand_v4() for _ in range(120)] + [self.rand_v6() for _ in range(20)]
        self.ps_clients = [self.rand_v4() for _ in range(300)] + [self.rand_v6() for _ in range(30)]
        self.misc_clients = [self.rand_v4() for _ in range(300)] + [self.rand_v6() for _ in range(40)]
        self.decoy_ips = [self.rand_v4() for _ in range(30)] + [self.rand_v6() for _ in range(5)]
        for ip in self.relayers + self.rblers + self.scanners + self.misc_clients + self.decoy_ips:
            self.host_for(ip, 0.6)
        # injection lines, spread evenly
        self.injections = []
        kinds = 6
        reps = max(1, N // 200000)
        total = kinds * reps
        for i in range(total):
            self.injections.append((int(N * (i + 0.5) / total), i % kinds))
        self.inj_i = 0
        import itertools
        self.acct_cw = list(itertools.accumulate(self.acct_w))
        self.lowrate_cw = list(itertools.accumulate(self.lowrate_w))
        self.relay_cw = list(itertools.accumulate(self.relay_w))
        self.rbl_cw = list(itertools.accumulate(self.rbl_w))
        self.lost_pool = self.misc_clients + self.scanners
        self.anvil_pool = self.misc_clients + self.bruteforcers
        # main scenario table
        self.scen = [
            (self.s_inbound, 34), (self.s_submission, 14), (self.s_lowrate_fail, 5),
            (self.s_relay, 3.5), (self.s_rbl, 3.5), (self.s_postscreen, 11),
            (self.s_dovecot, 9), (self.s_nonsmtp, 1.2), (self.s_lost, 4),
            (self.s_decoy_connlost, 0.6), (self.s_other_reject, 2.5),
            (self.s_typo_then_ok, 0.8), (self.s_misc, 2.0),
        ]
        cum = 0.0
        self.scen_cum = []
        for fn, w in self.scen:
            cum += w
            self.scen_cum.append(cum)
        self.scen_total = cum

    # ----------------------------------------------------------- helpers
    @staticmethod
    def disc_stats(cmds):
        """cmds: list of (name, ok, total) -> Postfix disconnect statistics."""
        parts = []
        ok_sum = tot_sum = 0
        for name, ok, tot in cmds:
            ok_sum += ok
            tot_sum += tot
            parts.append("%s=%d" % (name, ok) if ok == tot else "%s=%d/%d" % (name, ok, tot))
        if ok_sum == tot_sum:
            parts.append("commands=%d" % ok_sum)
        else:
            parts.append("commands=%d/%d" % (ok_sum, tot_sum))
        return " ".join(parts)

    def client(self, ip, port=False):
        h = self.host_for(ip)
        if port:
            return "%s[%s]:%d" % (h, ip, self.rnd.randrange(1024, 65536))
        return "%s[%s]" % (h, ip)

    def ext_addr(self):
        rnd = self.rnd
        return "%s%s@%s" % (rnd.choice(FIRST_NAMES), rnd.choice(("", ".smith", "%d" % rnd.randrange(100), "-news")),
                            rnd.choice(EXT_DOMAINS))

    def local_addr(self):
        a = self.rnd.choice(self.accounts)
        return a if "@" in a else "%s@%s" % (a, MYDOMAIN)

    def msgid(self, dom):
        rnd = self.rnd
        tm = datetime.datetime.fromtimestamp(self.t // 1000000, datetime.timezone.utc)
        if rnd.random() < 0.5:
            return "<%s.%06d@%s>" % (tm.strftime("%Y%m%d%H%M%S"), rnd.randrange(1000000), dom)
        return "<%032x@%s>" % (rnd.getrandbits(128), dom)

    def fail_line(self, prog, ip, mech, user, port=False, decoy=False, reason=None):
        rnd = self.rnd
        if decoy:
            if rnd.random() < 0.5:
                msg = "Connection lost to authentication server"
            else:
                msg = "Connection lost to authentication server, sasl_username=(unavailable)"
            self.emit("%s: warning: %s: SASL %s authentication failed: %s" % (
                prog, self.client(ip, port), mech, msg))
            return
        if reason is None:
            m = mech.upper()
            if m == "LOGIN":
                reason = rnd.choice(LOGIN_REASONS)
            elif m == "PLAIN":
                reason = rnd.choice(PLAIN_REASONS)
            else:
                reason = rnd.choice(CRAM_REASONS)
        tail = reason
        if user is not None and rnd.random() < 0.6:
            tail = "%s, sasl_username=%s" % (reason, user)
        self.emit("%s: warning: %s: SASL %s authentication failed: %s" % (
            prog, self.client(ip, port), mech, tail))
        self.auth_fail[ip] = self.auth_fail.get(ip, 0) + 1
        self.counts["auth_failure"] += 1

    # -------------------------------------------------------- deliveries
    def _deliver(self, arg):
        qid, rcpt, t0, local, last = arg
        rnd = self.rnd
        d = (self.t - t0) / 1e6
        a = min(d, rnd.uniform(0, 0.05))
        b = rnd.choice((0, 0.01, 0.02))
        c = rnd.choice((0, 0, 0.01, 0.03, 0.2))
        e = max(0.0, d - a - b - c)

        def f(x):
            # Postfix style: 0, 0.01 .. 0.99, 1.2, 12
            if x < 0.005:
                return "0"
            if x < 1:
                return ("%.2f" % x).rstrip("0")
            if x < 10:
                return ("%.1f" % x).rstrip("0").rstrip(".")
            return "%d" % x

        delays = "%s/%s/%s/%s" % (f(a), f(b), f(c), f(e))
        if local:
            self.emit("postfix/lmtp[%d]: %s: to=<%s>, relay=%s.%s[private/dovecot-lmtp], delay=%s, delays=%s, dsn=2.0.0, status=sent (250 2.0.0 <%s> %s Saved)" % (
                self.pid(self.lmtp), qid, rcpt, HOSTNAME, MYDOMAIN, f(d), delays, rcpt,
                "%012x" % rnd.getrandbits(48)))
        else:
            relay, rip = rnd.choice(MX_RELAYS)
            r = rnd.random()
            if r < 0.9:
                status = "dsn=2.0.0, status=sent (250 2.0.0 OK  %d %s - gsmtp)" % (
                    self.t // 1000000, "%016x" % rnd.getrandbits(64))
            elif r < 0.97:
                status = "dsn=4.4.1, status=deferred (connect to %s[%s]:25: Connection timed out)" % (relay, rip)
            else:
                status = "dsn=5.1.1, status=bounced (host %s[%s] said: 550 5.1.1 <%s>: Recipient address rejected: User unknown (in reply to RCPT TO command))" % (relay, rip, rcpt)
            self.emit("postfix/smtp[%d]: %s: to=<%s>, relay=%s[%s]:25, delay=%s, delays=%s, %s" % (
                self.pid(self.smtp), qid, rcpt, relay, rip, f(d), delays, status))
        if last:
            self.emit("postfix/qmgr[%d]: %s: removed" % (self.qmgr, qid))

    def queue_msg(self, qid, sender, rcpts, local):
        rnd = self.rnd
        self.emit("postfix/qmgr[%d]: %s: from=<%s>, size=%d, nrcpt=%d (queue active)" % (
            self.qmgr, qid, sender, rnd.randrange(400, 200000), len(rcpts)))
        self.counts["queued"] += 1
        t0 = self.t
        for i, r in enumerate(rcpts):
            self.later(rnd.randrange(0, 12), self._deliver,
                       (qid, r, t0, local, i == len(rcpts) - 1))

    # --------------------------------------------------------- scenarios
    def s_inbound(self):
        rnd = self.rnd
        host, ip = rnd.choice(INBOUND_SENDERS)
        self.hostnames.setdefault(ip, host)
        if rnd.random() < 0.3:
            self.emit("postfix/postscreen[%d]: CONNECT from [%s]:%d to [%s]:25" % (
                self.pscreen[0], ip, rnd.randrange(1024, 65536), SERVER_V6 if ":" in ip else SERVER_V4))
            self.emit("postfix/postscreen[%d]: PASS OLD [%s]:%d" % (self.pscreen[0], ip, rnd.randrange(1024, 65536)))
        p = "postfix/smtpd[%d]" % self.pid(self.smtpd)
        c = "%s[%s]" % (host, ip)
        self.emit("%s: connect from %s" % (p, c))
        tls = rnd.random() < 0.8
        if tls:
            self.emit("%s: Anonymous TLS connection established from %s: %s" % (p, c, rnd.choice(TLS_CIPHERS)))
        nmsg = 1 if rnd.random() < 0.9 else 2
        for _ in range(nmsg):
            qid = self.qid()
            self.emit("%s: %s: client=%s" % (p, qid, c))
            self.emit("postfix/cleanup[%d]: %s: message-id=%s" % (self.pid(self.cleanup), qid, self.msgid(host)))
            nr = 1 if rnd.random() < 0.85 else rnd.randrange(2, 4)
            self.queue_msg(qid, self.ext_addr() if rnd.random() < 0.95 else "",
                           [self.local_addr() for _ in range(nr)], True)
        st = [("ehlo", 2 if tls else 1, 2 if tls else 1)]
        if tls:
            st.append(("starttls", 1, 1))
        st += [("mail", nmsg, nmsg), ("rcpt", nmsg, nmsg), ("data", nmsg, nmsg), ("quit", 1, 1)]
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(st)))

    def _submit(self, acct, nmsg, burst=False):
        rnd = self.rnd
        ip = self.acct_ip[acct]
        h = self.host_for(ip)
        smtps = rnd.random() < 0.15
        if smtps:
            p = "postfix/smtps/smtpd[%d]" % self.pid(self.smtpsd)
        else:
            p = "postfix/submission/smtpd[%d]" % self.pid(self.subd)
        c = "%s[%s]" % (h, ip)
        self.emit("%s: connect from %s" % (p, c))
        if ip != "127.0.0.1" and rnd.random() < 0.7:
            self.emit("%s: Anonymous TLS connection established from %s: %s" % (p, c, rnd.choice(TLS_CIPHERS)))
        mech = "PLAIN" if rnd.random() < 0.8 else "LOGIN"
        sender = acct if "@" in acct else "%s@%s" % (acct, MYDOMAIN)
        nr_total = 0
        for _ in range(nmsg):
            qid = self.qid()
            self.emit("%s: %s: client=%s, sasl_method=%s, sasl_username=%s" % (p, qid, c, mech, acct))
            self.subm[acct] = self.subm.get(acct, 0) + 1
            self.counts["submission"] += 1
            self.emit("postfix/cleanup[%d]: %s: message-id=%s" % (self.pid(self.cleanup), qid, self.msgid(MYDOMAIN)))
            if burst:
                nr = rnd.randrange(1, 4)
                rc = ["%s%d@%s" % (rnd.choice(FIRST_NAMES), rnd.randrange(10000), rnd.choice(EXT_DOMAINS)) for _ in range(nr)]
            else:
                nr = 1 if rnd.random() < 0.8 else rnd.randrange(2, 4)
                rc = [self.ext_addr() if rnd.random() < 0.8 else self.local_addr() for _ in range(nr)]
            nr_total += nr
            self.queue_msg(qid, sender, rc, False)
        st = [("ehlo", 2, 2), ("starttls", 1, 1), ("auth", 1, 1), ("mail", nmsg, nmsg),
              ("rcpt", nr_total, nr_total), ("data", nmsg, nmsg), ("quit", 1, 1)]
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(st)))

    def s_submission(self):
        rnd = self.rnd
        acct = rnd.choices(self.accounts, cum_weights=self.acct_cw)[0]
        self._submit(acct, 1 if rnd.random() < 0.85 else rnd.randrange(2, 4))

    def s_burst(self):
        self._submit(self.burst_acct, self.rnd.randrange(1, 6), burst=True)

    def _fail_session(self, ip, mech, users, nfail, port_style):
        rnd = self.rnd
        r = rnd.random()
        if r < 0.6:
            p = "postfix/submission/smtpd[%d]" % self.pid(self.subd)
        elif r < 0.8:
            p = "postfix/smtps/smtpd[%d]" % self.pid(self.smtpsd)
        else:
            p = "postfix/smtpd[%d]" % self.pid(self.smtpd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        for _ in range(nfail):
            m = mech if mech else rnd.choice(MECHS)
            u = rnd.choice(users) if (users and rnd.random() < 0.8) else None
            self.fail_line(p, ip, m, u, port=port_style and rnd.random() < 0.9)
        if rnd.random() < 0.3:
            self.emit("%s: lost connection after AUTH from %s" % (p, c))
            self.counts["lost_after_auth"] += 1
            st = [("ehlo", 1, 1), ("auth", 0, nfail)]
        else:
            st = [("ehlo", 1, 1), ("auth", 0, nfail), ("quit", 1, 1)]
            if rnd.random() < 0.2:
                st.insert(2, ("rset", 1, 1))
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(st)))
        self.counts["auth_disconnect"] += 1

    def s_bf(self, camp):
        rnd = self.rnd
        ip, mech, users, port_style = camp[1], camp[2], camp[3], camp[4]
        nf = min(camp[0], rnd.choice((1, 1, 2, 3)))
        camp[0] -= nf
        self._fail_session(ip, mech, users, nf, port_style)

    def s_lowrate_fail(self):
        rnd = self.rnd
        ip = rnd.choices(self.lowrate, cum_weights=self.lowrate_cw)[0]
        users = [rnd.choice(GUESSED_USERS)] if rnd.random() < 0.7 else [rnd.choice(self.accounts)]
        self._fail_session(ip, None, users, 1 if rnd.random() < 0.85 else 2, rnd.random() < 0.2)

    def s_typo_then_ok(self):
        """Legitimate user mistypes the password, then succeeds: auth=1/2."""
        rnd = self.rnd
        acct = rnd.choices(self.accounts, cum_weights=self.acct_cw)[0]
        ip = self.acct_ip[acct]
        p = "postfix/submission/smtpd[%d]" % self.pid(self.subd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        self.fail_line(p, ip, "PLAIN", acct, reason=rnd.choice(("authentication failure", "(reason unavailable)")))
        qid = self.qid()
        self.emit("%s: %s: client=%s, sasl_method=PLAIN, sasl_username=%s" % (p, qid, c, acct))
        self.subm[acct] = self.subm.get(acct, 0) + 1
        self.counts["submission"] += 1
        self.emit("postfix/cleanup[%d]: %s: message-id=%s" % (self.pid(self.cleanup), qid, self.msgid(MYDOMAIN)))
        self.queue_msg(qid, acct if "@" in acct else "%s@%s" % (acct, MYDOMAIN), [self.ext_addr()], False)
        st = [("ehlo", 2, 2), ("starttls", 1, 1), ("auth", 1, 2), ("mail", 1, 1),
              ("rcpt", 1, 1), ("data", 1, 1), ("quit", 1, 1)]
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(st)))

    def s_decoy_connlost(self):
        rnd = self.rnd
        ip = rnd.choice(self.decoy_ips)
        p = "postfix/submission/smtpd[%d]" % self.pid(self.subd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        self.fail_line(p, ip, rnd.choice(("LOGIN", "PLAIN")), None, decoy=True)
        self.emit("%s: disconnect from %s ehlo=1 auth=0/1 commands=1/2" % (p, c))
        self.counts["auth_disconnect"] += 1

    def s_relay(self, ip=None, helo=None, rcpt=None):
        rnd = self.rnd
        if ip is None:
            ip = rnd.choices(self.relayers, cum_weights=self.relay_cw)[0]
        p = "postfix/smtpd[%d]" % self.pid(self.smtpd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        n = rnd.randrange(1, 4)
        frm = self.ext_addr() if rnd.random() < 0.8 else ""
        h = helo or rnd.choice(HELOS_BAD + (self.host_for(ip),))
        code = "554 5.7.1" if rnd.random() < 0.7 else "454 4.7.1"
        for _ in range(n):
            to = rcpt or "%s%d@%s" % (rnd.choice(FIRST_NAMES), rnd.randrange(1000), rnd.choice(EXT_DOMAINS))
            self.emit("%s: NOQUEUE: reject: RCPT from %s: %s <%s>: Relay access denied; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                p, c, code, to, frm, to, h))
            self.relay[ip] = self.relay.get(ip, 0) + 1
            self.counts["relay_denied"] += 1
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(
            [("ehlo", 1, 1), ("mail", 1, 1), ("rcpt", 0, n), ("quit", 1, 1)])))

    def s_rbl(self):
        rnd = self.rnd
        ip = rnd.choices(self.rblers, cum_weights=self.rbl_cw)[0]
        p = "postfix/smtpd[%d]" % self.pid(self.smtpd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        zone = rnd.choice(RBL_ZONES)
        if zone == "zen.spamhaus.org":
            url = "https://www.spamhaus.org/query/ip/%s" % ip
        else:
            url = "http://www.%s/query?ip=%s" % (zone, ip)
        code = "554 5.7.1" if rnd.random() < 0.8 else "454 4.7.1"
        self.emit("%s: NOQUEUE: reject: RCPT from %s: %s Service unavailable; Client host [%s] blocked using %s; %s; from=<%s> to=<%s> proto=%s helo=<%s>" % (
            p, c, code, ip, zone, url, self.ext_addr(), self.local_addr(),
            rnd.choice(("ESMTP", "SMTP")), rnd.choice(HELOS_BAD + (self.host_for(ip),))))
        self.rbl[ip] = self.rbl.get(ip, 0) + 1
        self.counts["rbl_reject"] += 1
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(
            [("ehlo", 1, 1), ("mail", 1, 1), ("rcpt", 0, 1), ("quit", 1, 1)])))

    def s_postscreen(self):
        rnd = self.rnd
        ip = rnd.choice(self.ps_clients)
        port = rnd.randrange(1024, 65536)
        p = "postfix/postscreen[%d]" % self.pscreen[0]
        self.emit("%s: CONNECT from [%s]:%d to [%s]:25" % (p, ip, port, SERVER_V6 if ":" in ip else SERVER_V4))
        r = rnd.random()
        if r < 0.3:
            g = rnd.choice(PREGREETS)
            self.emit("%s: PREGREET %d after %s from [%s]:%d: %s" % (
                p, rnd.randrange(4, 60), rnd.choice(("0", "0.08", "0.1", "0.25", "1.2", "2.6")), ip, port, g))
            self.counts["postscreen_pregreet"] += 1
            self.emit("%s: DISCONNECT [%s]:%d" % (p, ip, port))
        elif r < 0.55:
            self.emit("%s: DNSBL rank %d for [%s]:%d" % (p, rnd.randrange(2, 9), ip, port))
            self.counts["postscreen_dnsbl"] += 1
            self.emit("%s: DISCONNECT [%s]:%d" % (p, ip, port))
        elif r < 0.7:
            self.emit("%s: HANGUP after %.1f from [%s]:%d in tests before SMTP handshake" % (
                p, rnd.uniform(0.1, 6), ip, port))
            self.emit("%s: DISCONNECT [%s]:%d" % (p, ip, port))
        elif r < 0.8:
            self.emit("%s: COMMAND PIPELINING from [%s]:%d after EHLO: QUIT\\r\\n" % (p, ip, port))
            self.emit("%s: DISCONNECT [%s]:%d" % (p, ip, port))
        else:
            self.emit("%s: PASS NEW [%s]:%d" % (p, ip, port))

    def s_dovecot(self):
        rnd = self.rnd
        acct = rnd.choices(self.accounts, cum_weights=self.acct_cw)[0]
        user = acct
        ip = self.acct_ip[acct]
        if ip == "127.0.0.1":
            lip = ip
        else:
            lip = SERVER_V6 if ":" in ip else SERVER_V4
        svc = "imap" if rnd.random() < 0.85 else "pop3"
        sess = "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(16))
        mpid = self.newpid()
        r = rnd.random()
        if r < 0.9:
            self.emit("dovecot: %s-login: Login: user=<%s>, method=PLAIN, rip=%s, lip=%s, mpid=%d, TLS, session=<%s>" % (
                svc, user, ip, lip, mpid, sess))
            if rnd.random() < 0.7:
                self.emit("dovecot: %s(%s)<%d><%s>: Logged out in=%d out=%d deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0" % (
                    svc, user, mpid, sess[:12], rnd.randrange(50, 5000), rnd.randrange(300, 900000)))
        else:
            sip = rnd.choice(self.scanners)
            self.emit("dovecot: %s-login: Disconnected: Connection closed (no auth attempts in %d secs): user=<>, rip=%s, lip=%s, TLS handshaking: Connection closed, session=<%s>" % (
                svc, rnd.randrange(0, 5), sip, SERVER_V6 if ":" in sip else SERVER_V4, sess))

    def s_nonsmtp(self, ip=None, cmd=None):
        rnd = self.rnd
        if ip is None:
            ip = rnd.choice(self.scanners)
        p = "postfix/%s[%d]" % (("smtpd", self.pid(self.smtpd)) if rnd.random() < 0.7
                                 else ("submission/smtpd", self.pid(self.subd)))
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        self.emit("%s: warning: non-SMTP command from %s: %s" % (p, c, cmd or rnd.choice(NON_SMTP_CMDS)))
        self.counts["non_smtp"] += 1
        self.emit("%s: disconnect from %s unknown=0/1 commands=0/1" % (p, c))

    def s_lost(self):
        rnd = self.rnd
        ip = rnd.choice(self.lost_pool)
        p = "postfix/smtpd[%d]" % self.pid(self.smtpd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        stage = rnd.choice(("CONNECT", "EHLO", "STARTTLS", "STARTTLS", "RSET", "DATA"))
        self.emit("%s: lost connection after %s from %s" % (p, stage, c))
        st = {"CONNECT": [], "EHLO": [("ehlo", 1, 1)], "STARTTLS": [("ehlo", 1, 1), ("starttls", 0, 1)],
              "RSET": [("ehlo", 1, 1), ("rset", 1, 1)], "DATA": [("ehlo", 1, 1), ("mail", 1, 1), ("rcpt", 1, 1), ("data", 0, 1)]}[stage]
        self.emit("%s: disconnect from %s %s" % (p, c, self.disc_stats(st) if st else "commands=0"))

    def s_other_reject(self):
        rnd = self.rnd
        ip = rnd.choice(self.misc_clients)
        p = "postfix/smtpd[%d]" % self.pid(self.smtpd)
        c = self.client(ip)
        self.emit("%s: connect from %s" % (p, c))
        r = rnd.random()
        if r < 0.35:
            self.emit("%s: NOQUEUE: reject: RCPT from %s: 450 4.7.1 Client host rejected: cannot find your hostname, [%s]; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                p, c, ip, self.ext_addr(), self.local_addr(), rnd.choice(HELOS_BAD)))
        elif r < 0.6:
            h = rnd.choice(HELOS_BAD)
            self.emit("%s: NOQUEUE: reject: RCPT from %s: 504 5.5.2 <%s>: Helo command rejected: need fully-qualified hostname; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                p, c, h, self.ext_addr(), self.local_addr(), h))
        elif r < 0.85:
            to = "%s@%s" % (rnd.choice(GUESSED_USERS).split("@")[0] + str(rnd.randrange(99)), MYDOMAIN)
            self.emit("%s: NOQUEUE: reject: RCPT from %s: 550 5.1.1 <%s>: Recipient address rejected: User unknown in virtual mailbox table; from=<%s> to=<%s> proto=ESMTP helo=<%s>" % (
                p, c, to, self.ext_addr(), to, self.host_for(ip)))
        else:
            self.emit("%s: improper command pipelining after AUTH from %s: QUIT" % (p, c))
        self.emit("%s: disconnect from %s ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4" % (p, c))

    def s_misc(self):
        rnd = self.rnd
        r = rnd.random()
        if r < 0.4:
            ip = rnd.choice(self.misc_clients)
            self.emit("postfix/smtpd[%d]: warning: hostname %s does not resolve to address %s: Name or service not known" % (
                self.pid(self.smtpd), "host-%d.example.net" % rnd.randrange(1, 99999), ip))
        elif r < 0.6:
            ip = rnd.choice(self.anvil_pool)
            tm = datetime.datetime.fromtimestamp(self.t // 1000000, datetime.timezone.utc)
            self.emit("postfix/anvil[%d]: statistics: max connection rate %d/60s for (smtp:%s) at %s %2d %02d:%02d:%02d" % (
                self.anvil, rnd.randrange(1, 40), ip, MONTHS[tm.month - 1], tm.day, tm.hour, tm.minute, tm.second))
        elif r < 0.8:
            ip = rnd.choice(self.misc_clients)
            self.emit("postfix/smtpd[%d]: warning: Connection rate limit exceeded: %d from %s for service smtp" % (
                self.pid(self.smtpd), rnd.randrange(30, 80), self.client(ip)))
        else:
            qid = self.qid()
            self.emit("postfix/bounce[%d]: %s: sender non-delivery notification: %s" % (self.newpid(), qid, self.qid()))

    def s_injection(self, kind):
        """Lines whose attacker-controlled parts imitate other events."""
        rnd = self.rnd
        if kind == 0:
            ip = "203.0.113.9"
            self.hostnames[ip] = "unknown"
            p = "postfix/submission/smtpd[%d]" % self.pid(self.subd)
            self.emit("%s: connect from unknown[%s]" % (p, ip))
            self.emit("%s: warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=x[192.0.2.66]: SASL LOGIN authentication failed:" % (p, ip))
            self.auth_fail[ip] = self.auth_fail.get(ip, 0) + 1
            self.counts["auth_failure"] += 1
            self.emit("%s: disconnect from unknown[%s] ehlo=1 auth=0/1 quit=1 commands=2/3" % (p, ip))
            self.counts["auth_disconnect"] += 1
        elif kind == 1:
            ip = "2001:db8:bad::9"
            self.hostnames[ip] = "unknown"
            p = "postfix/smtps/smtpd[%d]" % self.pid(self.smtpsd)
            self.emit("%s: warning: unknown[%s]:44123: SASL PLAIN authentication failed: , sasl_username=unknown[2001:db8::66]: SASL PLAIN authentication failed: , sasl_username=alice" % (p, ip))
            self.auth_fail[ip] = self.auth_fail.get(ip, 0) + 1
            self.counts["auth_failure"] += 1
        elif kind == 2:
            ip = "203.0.113.10"
            self.hostnames[ip] = "unknown"
            self.s_nonsmtp(ip, "warning: unknown[192.0.2.67]: SASL LOGIN authentication failed: UGFzc3dvcmQ6")
        elif kind == 3:
            self.hostnames["203.0.113.11"] = "unknown"
            self.s_relay("203.0.113.11", rcpt='"x]: 554 5.7.1 Service unavailable; Client host [192.0.2.68] blocked using zen.spamhaus.org;"@example.net')
        elif kind == 4:
            self.hostnames["203.0.113.12"] = "evil.example"
            self.s_relay("203.0.113.12", helo="x,client=a[192.0.2.69],sasl_method=PLAIN,sasl_username=victim")
        else:
            ip = "203.0.113.13"
            self.hostnames[ip] = "unknown"
            p = "postfix/submission/smtpd[%d]" % self.pid(self.subd)
            self.emit("%s: connect from unknown[%s]" % (p, ip))
            self.emit("%s: warning: unknown[%s]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=a: client=b[192.0.2.70], sasl_method=PLAIN, sasl_username=bob" % (p, ip))
            self.auth_fail[ip] = self.auth_fail.get(ip, 0) + 1
            self.counts["auth_failure"] += 1
            self.emit("%s: lost connection after AUTH from unknown[%s]" % (p, ip))
            self.counts["lost_after_auth"] += 1
            self.emit("%s: disconnect from unknown[%s] ehlo=1 auth=0/1 commands=1/2" % (p, ip))
            self.counts["auth_disconnect"] += 1

    # ------------------------------------------------------------ main loop
    def run(self):
        rnd = self.rnd
        cum = self.scen_cum
        fns = [f for f, _ in self.scen]
        total = self.scen_total
        camps = self.campaigns
        import bisect
        try:
            self.emit("postfix/postfix-script[%d]: starting the Postfix mail system" % self.script_pid)
            self.emit("postfix/master[%d]: daemon started -- version 3.7.11, configuration /etc/postfix" % self.master_pid)
            while True:
                if self.pending:
                    self.flush_pending()
                n = self.n
                while self.camp_i < len(camps) and camps[self.camp_i][0] <= n:
                    _, ip, fails, mech, users, port_style = camps[self.camp_i]
                    self.active.append([fails, ip, mech, users, port_style])
                    self.camp_i += 1
                if self.inj_i < len(self.injections) and self.injections[self.inj_i][0] <= n:
                    self.s_injection(self.injections[self.inj_i][1])
                    self.inj_i += 1
                    continue
                r = rnd.random()
                if self.active and r < 0.3:
                    camp = self.active[rnd.randrange(len(self.active))]
                    self.s_bf(camp)
                    if camp[0] <= 0:
                        self.active.remove(camp)
                    continue
                bw = self.burst_window
                if bw[0] <= n < bw[1] and r < 0.6:
                    self.s_burst()
                    continue
                fns[bisect.bisect(cum, rnd.random() * total)]()
        except Stop:
            pass
        self.close()

    def truth(self, path):
        out = []
        for ip, c in self.auth_fail.items():
            out.append("auth_failure %s %d" % (ip, c))
        for a, c in self.subm.items():
            out.append("submission %s %d" % (a, c))
        for ip, c in self.relay.items():
            out.append("relay_denied %s %d" % (ip, c))
        for ip, c in self.rbl.items():
            out.append("rbl_reject %s %d" % (ip, c))
        for k in EVENT_KINDS:
            out.append("event_total %s %d" % (k, self.counts[k]))
        out.append("lines %d" % self.n)
        out.append("first_ts %d" % (self.first_ts if self.first_ts is not None else 0))
        out.append("last_ts %d" % (self.last_ts if self.last_ts is not None else 0))
        if self.subm.get(self.burst_acct):
            out.append("burst %s" % self.burst_acct)
        for ip in self.bruteforcers:
            if self.auth_fail.get(ip):
                out.append("bruteforcer %s" % ip)
        out.sort()
        with open(path, "w", encoding="ascii", newline="\n") as f:
            f.write("".join(s + "\n" for s in out))


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate a realistic Postfix mail.log and its truth file.")
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--format", choices=("syslog", "rfc3339", "mixed"), default="syslog")
    ap.add_argument("--start", default="2026-11-20T00:00:00",
                    help="ISO 8601 start time; naive times are UTC")
    a = ap.parse_args(argv)
    if a.lines < 0:
        ap.error("--lines must be >= 0")
    try:
        a.start = datetime.datetime.fromisoformat(a.start)
    except ValueError:
        ap.error("bad --start %r" % a.start)
    g = Gen(a)
    g.run()
    g.truth(a.truth)
    return 0


if __name__ == "__main__":
    sys.exit(main())
