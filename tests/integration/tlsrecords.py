#!/usr/bin/python3
"""TLS record-level client behaviour against ferry's own TLS reads and writes.

tlsrecords.py burst PORT CA N
    N keep-alive requests of ~1 KiB, each in its own TLS record, written back to back: they
    reach ferry in bursts that OpenSSL's read-ahead takes in one read, so records sit inside
    OpenSSL with no socket event to announce them.
    Prints "responses N".
tlsrecords.py slowread PORT CA PATH CHUNK PAUSE_MS
    GETs PATH and reads the response CHUNK bytes at a time with a pause after each (a
    client slower than ferry's writes: the socket fills, SSL_write must be retried).
    Prints "body LENGTH SHA256".
tlsrecords.py keyupdate PORT CA
    A request, then a TLS 1.3 KeyUpdate asking for ferry's (via openssl s_client's K
    command), then another request on the same connection. Prints "responses N".
tlsrecords.py closenotify PORT CA client|server
    A request and its response; then the client sends close_notify and waits for ferry's,
    or waits for ferry to close the idle connection. Prints "close_notify" when the stream
    ended with one, "eof without close_notify" when it did not.
Every wait is bounded; a stall exits with status 2 and says where.
"""
import hashlib
import select
import socket
import ssl
import subprocess
import sys
import time

DEADLINE_S = 20


def connect(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF   # (on by default: a hang-up reads as EOF)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_S)
    # A hang-up without close_notify raises SSLEOFError instead of reading as b"".
    return ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)


class Reader:
    """Reads HTTP/1.1 responses framed by Content-Length off a (TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self, n=65536):
        chunk = self.sock.recv(n)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def response(self, sink=None, chunk=65536, pause=0.0):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        status = head.split(b"\r\n", 1)[0].decode()
        left = length
        while left:
            if not self.buf:
                self.fill(min(chunk, left))
                if pause:
                    time.sleep(pause)   # the client's pace, not synchronisation
            take = self.buf[:left]
            self.buf = self.buf[len(take):]
            left -= len(take)
            if sink:
                sink(take)
        return status, length


def burst(port, ca, n):
    s = connect(port, ca)
    # ~1 KiB each: a burst well past ferry's input watermark, so that reading pauses with
    # records left inside OpenSSL, and the last ones arrive with nothing more on the socket.
    req = b"GET /?i=%d HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"

    for i in range(n):
        s.sendall(req % i)   # one record each
    r = Reader(s)
    got = 0
    for _ in range(n):
        status, _ = r.response()
        if " 200" in status:
            got += 1
    print("responses", got)


def slowread(port, ca, path, chunk, pause_ms):
    s = connect(port, ca)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode())
    h = hashlib.sha256()
    status, length = Reader(s).response(h.update, chunk, pause_ms / 1000.0)
    print("body", length, h.hexdigest(), status)


def keyupdate(port, ca):
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3", "-CAfile", ca,
         "-alpn", "http/1.1"],   # (not -quiet or -ign_eof: they turn the K command off)
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    end = time.monotonic() + DEADLINE_S
    out = b""

    def wait_for(what, k):
        nonlocal out
        while out.count(what) < k:
            left = end - time.monotonic()
            if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
                print("stalled waiting for", what, k, out[-200:])
                p.kill()
                sys.exit(2)
            chunk = p.stdout.read1(65536)
            if not chunk:
                break
            out += chunk

    req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
    p.stdin.write(req)
    p.stdin.flush()
    wait_for(b"HTTP/1.1 200", 1)
    p.stdin.write(b"K\n")   # KeyUpdate, update_requested: ferry must send its own
    p.stdin.flush()
    wait_for(b"KEYUPDATE", 1)   # (s_client drops what it reads with a command)
    p.stdin.write(req)
    p.stdin.flush()
    wait_for(b"HTTP/1.1 200", 2)
    p.kill()
    print("responses", out.count(b"HTTP/1.1 200"), "keyupdate" if b"KEYUPDATE" in out else "")


def closenotify(port, ca, who):
    s = connect(port, ca)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    Reader(s).response()
    s.settimeout(10)
    try:
        if who == "client":
            s.unwrap()   # sends close_notify, then waits for ferry's
            print("close_notify")
        else:            # ferry closes the idle connection (keepalive_timeout)
            print("close_notify" if s.recv(1) == b"" else "data")
    except (ssl.SSLError, OSError) as e:
        ragged = isinstance(e, ssl.SSLEOFError) or "UNEXPECTED_EOF" in str(e)
        print("eof without close_notify" if ragged else "error %s" % e)


def main():
    cmd, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    try:
        if cmd == "burst":
            burst(port, ca, int(sys.argv[4]))
        elif cmd == "slowread":
            slowread(port, ca, sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
        elif cmd == "keyupdate":
            keyupdate(port, ca)
        elif cmd == "closenotify":
            closenotify(port, ca, sys.argv[4])
    except (socket.timeout, EOFError) as e:
        print("stalled or closed:", e)
        sys.exit(2)


main()
