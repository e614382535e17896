#!/usr/bin/python3
"""recparse.py DIR [show MARKER] — what a rawrecorder backend really received, parsed strictly.

Reads DIR/conn-*.bin (the exact bytes of each backend connection, in connection order) and
splits each into HTTP/1.1 requests with a strict parser: request line `METHOD SP TARGET SP
HTTP/1.x` and field lines `name: value`, every line ending in CRLF; the body framed by
Transfer-Encoding: chunked (the only coding; with no Content-Length) or Content-Length (one
value). This is what a strict backend would see, so a proxy that lets one client request
become two, or leaves stray bytes between requests, shows up here.

  recparse.py DIR            one line per request: "REQ <conn> hosts=<n> <request line>" (n:
                             its Host fields); a request cut short by the end of the connection
                             (the proxy aborted it): "INCOMPLETE <conn> hosts=<n> <request
                             line>"; bytes that do not parse as a request, after which the rest
                             of that connection is not read: "BAD <conn> <reason> <repr of the
                             first bytes>".
  recparse.py DIR show MARKER
                             "COUNT <n>": complete requests whose request-target contains
                             MARKER; then for the first of them "LINE <request line>",
                             "H <name>: <value>" per field as received, "FRAMING cl=N |
                             chunked | none", "BODY <repr of the decoded body>" and
                             "T <name>: <value>" per trailer field.
"""
import glob
import os
import re
import sys

TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
REQ_LINE = re.compile(rb"^(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/1\.[01]$")
FIELD = re.compile(rb"^(" + TOKEN + rb"):[ \t]*(.*?)[ \t]*$", re.S)


class Bad(Exception):
    pass


class Short(Exception):
    pass


def line(d, p):
    i = d.find(b"\r\n", p)
    if i < 0:
        if b"\n" in d[p:]:
            raise Bad("bare LF")
        raise Short()
    ln = d[p:i]
    if b"\r" in ln or b"\n" in ln:
        raise Bad("bare CR/LF in a line")
    return ln, i + 2


def fields(d, p):
    out = []
    while True:
        ln, p = line(d, p)
        if ln == b"":
            return out, p
        m = FIELD.match(ln)
        if not m:
            raise Bad("invalid field line %r" % ln[:60])
        if any(c < 0x20 and c != 0x09 or c == 0x7f for c in m.group(2)):
            raise Bad("control byte in a field value")
        out.append((m.group(1).decode("latin-1"), m.group(2).decode("latin-1")))


def parse_one(d, p):
    """Returns (request dict, next offset). Raises Bad or Short (with what was parsed)."""
    while d.startswith(b"\r\n", p):   # RFC 9112 2.2: empty lines before a request
        p += 2
    req = {"line": None}
    try:
        ln, p = line(d, p)
        if not REQ_LINE.match(ln):
            raise Bad("invalid request line %r" % ln[:80])
        req["line"] = ln.decode("latin-1")
        hs, p = fields(d, p)
        req["fields"] = hs
        te = [v for k, v in hs if k.lower() == "transfer-encoding"]
        cl = [v for k, v in hs if k.lower() == "content-length"]
        body = b""
        req["trailers"] = []
        if te:
            if cl:
                raise Bad("both Transfer-Encoding and Content-Length")
            codings = [c.strip().lower() for c in ",".join(te).split(",")]
            if codings != ["chunked"]:
                raise Bad("Transfer-Encoding %r" % te)
            req["framing"] = "chunked"
            while True:
                ln, p = line(d, p)
                m = re.match(rb"^([0-9A-Fa-f]{1,16})(;.*)?$", ln)
                if not m:
                    raise Bad("invalid chunk size line %r" % ln[:40])
                n = int(m.group(1), 16)
                if n == 0:
                    req["trailers"], p = fields(d, p)
                    break
                if len(d) < p + n + 2:
                    raise Short()
                body += d[p:p + n]
                if d[p + n:p + n + 2] != b"\r\n":
                    raise Bad("chunk data not followed by CRLF")
                p += n + 2
        elif cl:
            if len(cl) != 1 or not re.match(r"^[0-9]+$", cl[0]):
                raise Bad("Content-Length %r" % cl)
            n = int(cl[0])
            req["framing"] = "cl=%d" % n
            if len(d) < p + n:
                raise Short()
            body = d[p:p + n]
            p += n
        else:
            req["framing"] = "none"
        req["body"] = body
        return req, p
    except Short:
        raise Short(req)


def parse_dir(dirname):
    files = glob.glob(os.path.join(dirname, "conn-*.bin"))
    files.sort(key=lambda f: int(re.search(r"conn-(\d+)\.bin$", f).group(1)))
    out = []   # (kind, conn, req-or-reason, raw)
    for f in files:
        conn = int(re.search(r"conn-(\d+)\.bin$", f).group(1))
        d = open(f, "rb").read()
        p = 0
        while p < len(d):
            if d[p:].strip(b"\r\n") == b"":
                break
            try:
                req, p = parse_one(d, p)
                out.append(("REQ", conn, req, None))
            except Short as e:
                req = e.args[0] if e.args else {"line": None}
                if req.get("line") is None:
                    out.append(("BAD", conn, "truncated request line", d[p:p + 60]))
                else:
                    out.append(("INCOMPLETE", conn, req, None))
                break
            except Bad as e:
                out.append(("BAD", conn, str(e), d[p:p + 60]))
                break
    return out


def target_of(req):
    return req["line"].split(" ")[1]


def main(argv):
    items = parse_dir(argv[0])
    if len(argv) >= 3 and argv[1] == "show":
        marker = argv[2]
        hits = [r for k, c, r, _ in items if k == "REQ" and marker in target_of(r)]
        print("COUNT %d" % len(hits))
        if hits:
            r = hits[0]
            print("LINE %s" % r["line"])
            for k, v in r["fields"]:
                print("H %s: %s" % (k, v))
            print("FRAMING %s" % r["framing"])
            print("BODY %r" % r["body"])
            for k, v in r["trailers"]:
                print("T %s: %s" % (k, v))
        return 0
    for kind, conn, r, raw in items:
        if kind == "BAD":
            print("BAD %d %s %r" % (conn, r, raw))
        else:
            hosts = sum(1 for k, _ in r.get("fields", []) if k.lower() == "host")
            print("%s %d hosts=%d %s" % (kind, conn, hosts, r["line"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
