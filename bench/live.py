#!/usr/bin/env python3
"""Live cost: daemons following one log while lines are appended one at a time.

Usage:
  live.py --root SRC --out DIR --daemon LABEL=BINARY [--daemon ...]
          [--fail2ban] [--reference LABEL=BINARY ...] [--rates 200,2000]
          [--seconds 30] [--strace]

For each rate R, bench/genlog.py makes R*seconds realistic lines (syslog
format); every daemon follows the same, initially empty, file while this
script appends the lines, one write(2) each, at R lines/s, each restamped
with the time it is written (a live log's lines are dated now).  Every
"mailjail run" given (all shipped rules and jails, DB on, enforcement through
nftables in a private network namespace of its own: unshare -n) and, with
--fail2ban, Debian's fail2ban-server (the shipped [postfix] jail, pyinotify
backend, a dummy action, its socket, pid file, DB and log under DIR, never
the system's) run at the same time: they see the same lines under the same
machine load.  A --reference program (bench/floor.c: wait, read, count
lines, nothing else) is started as BINARY LOG beside them: what the machine
charges for a wake-up per line.  Measured per daemon: CPU seconds (utime + stime of
/proc/PID/stat) from just before the first line to one second after the
last, and peak RSS (VmHWM) at the end.  Every mailjail's saved offset must
reach the file's end and all of them must have counted the same events (else
exit 1): a cheap daemon that dropped lines would prove nothing.

--strace: instead of CPU, count each mailjail's system calls meanwhile
(strace -c -f; strace slows the daemon, so no CPU is reported then).

The first --daemon is the one the others are compared with.  Prints a
markdown table on stdout; each daemon's files stay in DIR/live-RATE/.
"""

import argparse
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state): utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / HZ


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait_for(what, pred, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise SystemExit("live: %s did not happen within %.0f s" % (what, timeout))


def contains(path, text):
    try:
        with open(path, errors="replace") as f:
            return text in f.read()
    except FileNotFoundError:
        return False


def tree_of(binary, default):
    """The source tree a mailjail was built in (the directory above its
    build directory), for its own rules and jails: an older version does not
    know this tree's rules."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    return root if os.path.isdir(os.path.join(root, "rules")) else default


class Mailjail:
    def __init__(self, label, binary, root, d, log):
        self.name, self.binary = label, binary
        self.root = root = tree_of(binary, root)
        self.dir = os.path.join(d, re.sub(r"[^A-Za-z0-9._-]+", "_", label))
        os.makedirs(self.dir)
        self.db = os.path.join(self.dir, "mj.db")
        self.err = os.path.join(self.dir, "stderr.log")
        self.conf = os.path.join(self.dir, "mailjail.conf")
        with open(self.conf, "w") as f:
            f.write("[mailjail]\nlog = %s\ndb = %s\nrules = %s/rules\njails = %s/jails\n"
                    "user = root\n[hold]\nmap = sqlite:%s/hold.db\n[reject]\n"
                    "map = sqlite:%s/reject.db\n"
                    % (log, self.db, root, root, self.dir, self.dir))

    def start(self):
        # unshare execs the daemon: the pid is mailjail's own.
        self.proc = subprocess.Popen(["unshare", "-n", self.binary, "run", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=open(self.err, "w"))

    def ready(self):
        if self.proc.poll() is not None:
            raise SystemExit("live: %s exited at start:\n%s" % (self.name, open(self.err).read()))
        return contains(self.err, "running:")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.wait(timeout=30) != 0:
            raise SystemExit("live: %s exited %d:\n%s" % (self.name, self.proc.returncode,
                                                          open(self.err).read()[-2000:]))

    def result(self):
        db = sqlite3.connect(self.db)
        offset = db.execute("SELECT max(offset) FROM log_position").fetchone()[0] or 0
        events = db.execute("SELECT coalesce(sum(n), 0) FROM event_counts").fetchone()[0]
        bans = db.execute("SELECT count(*) FROM bans").fetchone()[0]
        db.close()
        return offset, events, bans


class Plain:
    """A reference program started as BINARY LOG (bench/floor.c)."""

    def __init__(self, label, binary, d, log):
        self.name, self.argv = label, [binary, log]
        self.dir = os.path.join(d, re.sub(r"[^A-Za-z0-9._-]+", "_", label))
        os.makedirs(self.dir)

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=open(os.path.join(self.dir, "stdout"),
                                                              "w"),
                                     stderr=open(os.path.join(self.dir, "stderr"), "w"))

    def ready(self):
        if self.proc.poll() is not None:
            raise SystemExit("live: %s exited at start, see %s" % (self.name, self.dir))
        return True

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def result(self):
        with open(os.path.join(self.dir, "stdout")) as f:
            return f.read().strip()


class Fail2ban:
    name = "fail2ban-server"

    def __init__(self, d, log):
        self.dir = os.path.join(d, "fail2ban")
        conf = os.path.join(self.dir, "etc")
        shutil.copytree("/etc/fail2ban", conf)
        # Only our jail: Debian's jail.d enables sshd, and a local
        # fail2ban.d could point elsewhere.
        for sub in ("jail.d", "fail2ban.d"):
            shutil.rmtree(os.path.join(conf, sub))
            os.makedirs(os.path.join(conf, sub))
        self.sock = os.path.join(self.dir, "f2b.sock")
        self.pidfile = os.path.join(self.dir, "f2b.pid")
        self.log = os.path.join(self.dir, "fail2ban.log")
        with open(os.path.join(conf, "fail2ban.local"), "w") as f:
            f.write("[Definition]\nloglevel = INFO\nlogtarget = %s\nsocket = %s\n"
                    "pidfile = %s\ndbfile = %s/f2b.sqlite3\n"
                    % (self.log, self.sock, self.pidfile, self.dir))
        with open(os.path.join(conf, "jail.local"), "w") as f:
            f.write("[DEFAULT]\nenabled = false\n\n[postfix]\nenabled = true\n"
                    "backend = pyinotify\nlogpath = %s\n"
                    "action = dummy[target=%s/dummy.target]\n"
                    "maxretry = 5\nfindtime = 10m\nbantime = 1h\n" % (log, self.dir))
        self.conf = conf

    def start(self):
        self.proc = subprocess.Popen(["fail2ban-server", "-f", "-x", "-c", self.conf,
                                      "-s", self.sock, "-p", self.pidfile],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "w"))

    def ready(self):
        if self.proc.poll() is not None:
            raise SystemExit("live: fail2ban-server exited at start, see %s" % self.dir)
        if not contains(self.log, "Jail 'postfix' started"):
            return False
        if not contains(self.log, "Initiated 'pyinotify' backend"):
            raise SystemExit("live: fail2ban did not use pyinotify (apt-get install "
                             "python3-pyinotify), see %s" % self.log)
        return True

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def result(self):
        with open(self.log, errors="replace") as f:
            text = f.read()
        return text.count("] Found "), text.count("] Ban ")


def strace_counts(path):
    """Total calls and calls per system call name from strace -c's table."""
    total, per = 0, {}
    with open(path) as f:
        for line in f:
            cols = line.split()
            if len(cols) < 5 or not cols[3].isdigit():
                continue
            if cols[-1] == "total":
                total = int(cols[3])
            else:
                per[cols[-1]] = int(cols[3])
    return total, per


def append_lines(path, lines, rate):
    """Append lines one write each at rate lines/s; returns the seconds taken."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    t0 = time.monotonic()
    stamp_sec, stamp = None, ""
    for i, line in enumerate(lines):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = int(time.time())
        if now != stamp_sec:
            stamp_sec, stamp = now, time.strftime("%b %e %H:%M:%S", time.localtime(now))
        os.write(fd, (stamp + line[15:]).encode())
    os.close(fd)
    return time.monotonic() - t0


def run_rate(args, rate, labels_bins):
    d = os.path.join(args.out, "live-%d%s" % (rate, "-strace" if args.strace else ""))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    log = os.path.join(d, "mail.log")
    n = rate * args.seconds
    subprocess.run([sys.executable, os.path.join(args.root, "bench/genlog.py"), "--lines",
                    str(n), "--seed", "1", "--format", "syslog", "--out",
                    os.path.join(d, "lines.log"), "--truth", os.path.join(d, "lines.truth")],
                   check=True)
    with open(os.path.join(d, "lines.log")) as f:
        lines = f.readlines()
    open(log, "w").close()
    daemons = [Mailjail(lb, b, args.root, d, log) for lb, b in labels_bins]
    if args.fail2ban:
        daemons.append(Fail2ban(d, log))
    if not args.strace:
        daemons += [Plain(lb, b, d, log) for lb, b in args.reference]
    tracers = []
    try:
        for dm in daemons:
            dm.start()
        for dm in daemons:
            wait_for(dm.name + " ready", dm.ready)
        time.sleep(2)   # past start-up work (fail2ban's threads, the first checks)
        if args.strace:
            for dm in daemons:
                tracers.append(subprocess.Popen(
                    ["strace", "-c", "-f", "-o", os.path.join(dm.dir, "strace.txt"),
                     "-p", str(dm.proc.pid)], stderr=subprocess.DEVNULL))
            time.sleep(1)
        cpu0 = {dm.name: cpu_seconds(dm.proc.pid) for dm in daemons}
        window = append_lines(log, lines, rate) + 1
        time.sleep(1)
        cpu = {dm.name: cpu_seconds(dm.proc.pid) - cpu0[dm.name] for dm in daemons}
        rss = {dm.name: peak_rss_kib(dm.proc.pid) for dm in daemons}
        for t in tracers:
            t.send_signal(signal.SIGINT)
            t.wait()
    finally:
        for dm in daemons:
            if getattr(dm, "proc", None) is not None and dm.proc.poll() is None:
                dm.stop()
    size = os.path.getsize(log)
    rows, counted = [], {}
    for dm in daemons:
        if isinstance(dm, Mailjail):
            offset, events, bans = dm.result()
            if offset != size:
                raise SystemExit("live: %s saved offset %d, the file has %d bytes"
                                 % (dm.name, offset, size))
            # The same rules count the same events.
            first = counted.setdefault(dm.root, (dm.name, events))
            if events != first[1]:
                raise SystemExit("live: %s counted %d events, %s %d"
                                 % (dm.name, events, first[0], first[1]))
            note = "%d events, %d bans" % (events, bans)
        elif isinstance(dm, Fail2ban):
            found, banned = dm.result()
            note = "%d failures found, %d bans" % (found, banned)
        else:
            note = dm.result() + " read"
        rows.append((dm, cpu[dm.name], rss[dm.name], note))
    return n, window, rows


def print_cpu(rate, n, window, rows):
    ref = rows[0][1]
    for dm, cpu, rss, note in rows:
        vs = "-" if dm is rows[0][0] else ("%.1fx" % (cpu / ref) if ref > 0 else "n/a")
        print("| %d | %s | %.2f | %.2f%% | %.1f MB | %s | %s |"
              % (rate, dm.name, cpu, 100 * cpu / window, rss / 1024, vs, note))
    sys.stdout.flush()


def print_strace(rate, n, rows):
    for dm, _, _, note in rows:
        total, per = strace_counts(os.path.join(dm.dir, "strace.txt"))
        top = sorted(per.items(), key=lambda kv: -kv[1])[:6]
        print("| %d | %s | %.1f | %s |" % (rate, dm.name, total / n, ", ".join(
            "%s %.2f" % (name, calls / n) for name, calls in top)))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--daemon", action="append", default=[], help="LABEL=BINARY")
    ap.add_argument("--fail2ban", action="store_true")
    ap.add_argument("--reference", action="append", default=[], type=lambda x: tuple(
        x.split("=", 1)), help="LABEL=BINARY, started as BINARY LOG")
    ap.add_argument("--rates", default="200,2000")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--strace", action="store_true")
    args = ap.parse_args()
    labels_bins = [tuple(x.split("=", 1)) for x in args.daemon]
    if not labels_bins:
        raise SystemExit("live: no --daemon")
    if os.geteuid() != 0:
        raise SystemExit("live: needs root (unshare -n for nftables)")
    for tool, pkg in (("fail2ban-server", "fail2ban python3-pyinotify"),
                      ("strace", "strace")):
        if (tool != "strace" or args.strace) and (tool != "fail2ban-server" or args.fail2ban) \
                and shutil.which(tool) is None:
            raise SystemExit("live: %s is not installed (apt-get install %s)" % (tool, pkg))
    if args.strace:
        args.fail2ban = False
        print("| lines/s | daemon | system calls a line | the most frequent, a line |")
        print("|---:|---|---:|---|")
    else:
        print("| lines/s | daemon | CPU s | share of a core | peak RSS | CPU vs %s | "
              "what it saw |" % labels_bins[0][0])
        print("|---:|---|---:|---:|---:|---:|---|")
    for rate in (int(r) for r in args.rates.split(",")):
        n, window, rows = run_rate(args, rate, labels_bins)
        if args.strace:
            print_strace(rate, n, rows)
        else:
            print_cpu(rate, n, window, rows)
            print("| %d | (the writer) | %d lines in %.1f s, measured over %.1f s | | | | |"
                  % (rate, n, window - 1, window))


if __name__ == "__main__":
    main()
