#!/usr/bin/python3
"""mkconfig.py — print a ferry YAML config for one listener and one upstream "be".

  mkconfig.py --port P --backend 127.0.0.1:BPORT [--backend ...] [--workers 2]
              [--access-log PATH] [--log-level info] [--global key=value]...
              [--listener key=value]... [--upstream key=value]... [--route key=value]...
              [--tls-cert CERT:KEY]... [--tls key=value]...

key=value pairs override (or add to) the defaults of their section. A --backend may carry
server keys after commas: --backend 127.0.0.1:9000,weight=3. --tls-cert (repeatable;
the first is the default certificate) adds a "tls:" mapping to the listener with
"certificates:"; --tls key=value adds other keys of that mapping (min_version, alpn,
session_tickets, handshake_timeout, ...; values are written as given, e.g. "[h2, http/1.1]").
"""
import argparse


def kv(s):
    k, _, v = s.partition("=")
    return k.strip(), v.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", required=True)
    ap.add_argument("--backend", action="append", required=True)
    ap.add_argument("--workers", default="2")
    ap.add_argument("--access-log")
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--global", dest="glob", action="append", default=[], type=kv)
    ap.add_argument("--listener", action="append", default=[], type=kv)
    ap.add_argument("--upstream", action="append", default=[], type=kv)
    ap.add_argument("--route", action="append", default=[], type=kv)
    ap.add_argument("--tls-cert", action="append", default=[])
    ap.add_argument("--tls", action="append", default=[], type=kv)
    a = ap.parse_args()

    glob = {"workers": a.workers, "error_log": "stderr", "log_level": a.log_level}
    glob.update(dict(a.glob))
    lst = {
        "keepalive_requests": "1000",
        "keepalive_timeout": "75s",
        "keepalive_time": "1h",
        "client_max_body_size": "0",
    }
    if a.access_log:
        lst["access_log"] = a.access_log
    lst.update(dict(a.listener))
    ups = {"keepalive": "64", "keepalive_timeout": "60s", "retries": "1"}
    ups.update(dict(a.upstream))
    route = {"upstream": "be"}
    route.update(dict(a.route))

    out = []
    for k, v in glob.items():
        out.append("%s: %s" % (k, v))
    out.append("listeners:")
    out.append("  - name: web")
    out.append('    listen: "127.0.0.1:%s"' % a.port)
    for k, v in lst.items():
        out.append("    %s: %s" % (k, v))
    if a.tls_cert or a.tls:
        out.append("    tls:")
        if a.tls_cert:
            out.append("      certificates:")
            for ck in a.tls_cert:
                cert, _, key = ck.partition(":")
                out.append("        - cert: %s" % cert)
                out.append("          key: %s" % key)
        for k, v in a.tls:
            out.append("      %s: %s" % (k, v))
    out.append("    routes:")
    first = True
    for k, v in route.items():
        out.append("      %s %s: %s" % ("-" if first else " ", k, v))
        first = False
    out.append("upstreams:")
    out.append("  be:")
    out.append("    servers:")
    for b in a.backend:
        addr, *extra = b.split(",")
        out.append("      - address: %s" % addr)
        for k, v in map(kv, extra):
            out.append("        %s: %s" % (k, v))
    for k, v in ups.items():
        out.append("    %s: %s" % (k, v))
    print("\n".join(out))


if __name__ == "__main__":
    main()
