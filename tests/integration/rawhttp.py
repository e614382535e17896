#!/usr/bin/python3
"""rawhttp.py HOST:PORT STEP... — drive one raw TCP connection, step by step.

Steps:
  send:TEXT        send TEXT after Python escape decoding (\\r \\n \\x00 \\t \\\\)
  sendfile:PATH    send the bytes of a file
  read[:HEAD|:1XX] read one final response (1xx are printed and skipped); HEAD: no body;
                   1XX: return after an interim 1xx response too
  readall[:SECS]   read responses until the peer closes or SECS (default 5) pass quietly
  sleep:MS         sleep
  waitclose:SECS   wait up to SECS for the peer to close; prints CLOSED or OPEN
  shutwr           half-close (send FIN)
Options (before HOST:PORT): --timeout SECS (each read, default 5), --body (print bodies)

Output, one event per line:
  RESP <status> t=<secs>      then "H name: value" per header, "T name: value" per trailer,
                              "BODY <len> <sha256-prefix>"[ then "BODYTEXT <repr>"]
  CLOSED t=<secs> step=<secs> the peer closed (EOF); RESET ...: connection reset
  OPEN step=<secs>            still open when waitclose gave up
  CLOSED ... (in a read)       the peer closed before any byte of the response
  EOF t=..                    the peer closed inside a response (incomplete)
  TIMEOUT t=..                a read timed out
t is seconds since the connection was opened.
"""
import codecs
import hashlib
import socket
import sys
import time

TIMEOUT = 5.0
PRINT_BODY = False


class Closed(Exception):
    pass


class Reset(Exception):
    pass


class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.t0 = time.monotonic()
        self.s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        self.buf = b""
        self.closed = False
        self.partial = False  # inside a response

    def t(self):
        return time.monotonic() - self.t0

    def fill(self, timeout):
        self.s.settimeout(timeout)
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            self.closed = True
            raise Reset()
        if not d:
            self.closed = True
            raise Closed()
        self.buf += d

    def line(self, timeout):
        while b"\n" not in self.buf:
            self.fill(timeout)
        i = self.buf.index(b"\n")
        ln, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        return ln.rstrip(b"\r\n")

    def exact(self, n, timeout):
        while len(self.buf) < n:
            self.fill(timeout)
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def until_close(self, timeout):
        try:
            while True:
                self.fill(timeout)
        except Closed:
            d, self.buf = self.buf, b""
            return d


def read_headers(c, timeout):
    hs = []
    while True:
        ln = c.line(timeout)
        if ln == b"":
            return hs
        k, _, v = ln.partition(b":")
        hs.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))


def read_response(c, head=False, timeout=None, stop_1xx=False):
    timeout = timeout or TIMEOUT
    while True:
        status_line = c.line(timeout)
        c.partial = True
        parts = status_line.split(b" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            print("BADSTATUS %r t=%.3f" % (status_line, c.t()))
            raise Closed()
        print("RESP %d t=%.3f" % (status, c.t()))
        hs = read_headers(c, timeout)
        for k, v in hs:
            print("H %s: %s" % (k, v))
        if 100 <= status < 200 and status != 101:
            if stop_1xx:
                c.partial = False
                return status
            continue
        break
    hmap = {}
    for k, v in hs:
        hmap.setdefault(k.lower(), []).append(v)
    body = b""
    if head or status in (204, 304) or 100 <= status < 200:
        pass
    elif "chunked" in ",".join(hmap.get("transfer-encoding", [])).lower():
        while True:
            sz = c.line(timeout).split(b";")[0].strip()
            n = int(sz, 16)
            if n == 0:
                for k, v in read_headers(c, timeout):
                    print("T %s: %s" % (k, v))
                break
            body += c.exact(n, timeout)
            c.exact(2, timeout)
    elif "content-length" in hmap:
        body = c.exact(int(hmap["content-length"][0]), timeout)
    else:
        body = c.until_close(timeout)
    print("BODY %d %s" % (len(body), hashlib.sha256(body).hexdigest()[:16]))
    if PRINT_BODY:
        print("BODYTEXT %r" % body)
    c.partial = False
    sys.stdout.flush()
    return status


def main(argv):
    global TIMEOUT, PRINT_BODY
    while argv and argv[0].startswith("--"):
        o = argv.pop(0)
        if o == "--timeout":
            TIMEOUT = float(argv.pop(0))
        elif o == "--body":
            PRINT_BODY = True
    addr = argv.pop(0)
    try:
        c = Conn(addr)
    except OSError as e:
        print("CONNECTFAIL %s" % e)
        return 0
    for step in argv:
        name, _, arg = step.partition(":")
        st = time.monotonic()
        try:
            if name == "send":
                data = codecs.decode(arg, "unicode_escape").encode("latin-1")
                c.s.sendall(data)
            elif name == "sendfile":
                with open(arg, "rb") as f:
                    c.s.sendall(f.read())
            elif name == "read":
                read_response(c, head=(arg.upper() == "HEAD"), stop_1xx=(arg.upper() == "1XX"))
            elif name == "readall":
                limit = float(arg or 5)
                while True:
                    read_response(c, timeout=limit)
            elif name == "sleep":
                time.sleep(float(arg) / 1000.0)
            elif name == "shutwr":
                c.s.shutdown(socket.SHUT_WR)
            elif name == "waitclose":
                limit = float(arg or 5)
                end = st + limit
                while True:
                    left = end - time.monotonic()
                    if left <= 0:
                        print("OPEN step=%.3f" % (time.monotonic() - st))
                        break
                    n = len(c.buf)
                    c.fill(left)
                    print("DATA %d t=%.3f" % (len(c.buf) - n, c.t()))
            else:
                print("BADSTEP %s" % step)
                return 2
        except Closed:
            kind = "CLOSED" if not c.buf and not c.partial else "EOF"
            print("%s t=%.3f step=%.3f" % (kind, c.t(), time.monotonic() - st))
            if c.buf:
                print("LEFTOVER %r" % c.buf[:200])
            break
        except Reset:
            print("RESET t=%.3f step=%.3f" % (c.t(), time.monotonic() - st))
            break
        except socket.timeout:
            if name == "readall":
                print("OPEN step=%.3f" % (time.monotonic() - st))
            else:
                print("TIMEOUT t=%.3f step=%.3f" % (c.t(), time.monotonic() - st))
                break
        except (BrokenPipeError, ConnectionError) as e:
            print("SENDFAIL %s t=%.3f" % (e, c.t()))
            break
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
