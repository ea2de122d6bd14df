#!/usr/bin/env python3
"""Parse a Prometheus text exposition with the Prometheus project's own
Python parser (Debian's python3-prometheus-client) and print what it read,
one sample a line, labels sorted, so a test can look values up:

    # TYPE mailjail_lines counter
    mailjail_lines_total{source="/var/log/mail.log"} 14

Usage: promparse.py FILE | http://HOST:PORT/PATH
For a URL the first line is "# CONTENT-TYPE <the response's Content-Type>".
A text the parser refuses is an exception: exit status 1.
"""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    src = sys.argv[1]
    if src.startswith("http://"):
        with urllib.request.urlopen(src, timeout=10) as r:
            print("# CONTENT-TYPE " + r.headers.get("Content-Type", ""))
            text = r.read().decode("utf-8")
    else:
        with open(src, encoding="utf-8") as f:
            text = f.read()
    for fam in text_string_to_metric_families(text):
        print("# TYPE %s %s" % (fam.name, fam.type))
        for s in fam.samples:
            labels = ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"')
                                           .replace("\n", "\\n"))
                              for k, v in sorted(s.labels.items()))
            v = float(s.value)
            print("%s{%s} %s" % (s.name, labels, "%d" % v if v == int(v) else repr(v)))


if __name__ == "__main__":
    main()
