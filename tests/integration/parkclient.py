#!/usr/bin/python3
"""parkclient.py PROXY-ADDR ADMIN-ADDR LISTENER N — idle client connections through their
parking and back (see ferry.yaml(5), CONNECTION MEMORY).

Opens N keep-alive connections to PROXY-ADDR, one request on each, then waits (deadline,
polling ADMIN-ADDR's /metrics) until ferry reports them parked; then, on the same sockets:
a GET, two pipelined GETs, and a POST whose 64 KiB body is echoed back, each checked; waits
for them to park again; closes the first half and waits until ferry's active gauge shows
the other half only; finally waits for ferry to close the rest itself (keepalive_timeout).

Prints one line per phase: "<phase> ok=<n> of <m>" or "<phase> FAILED <why>".
"""
import hashlib
import socket
import sys
import time
import urllib.request

proxy, admin, listener, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
host, port = proxy.rsplit(":", 1)
port = int(port)


def metric(name):
    try:
        with urllib.request.urlopen("http://%s/metrics" % admin, timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    key = '%s{listener="%s"} ' % (name, listener)
    for line in text.splitlines():
        if line.startswith(key):
            return int(float(line[len(key):]))
    return None


def wait_metric(name, pred, secs):
    deadline = time.monotonic() + secs
    v = None
    while time.monotonic() < deadline:
        v = metric(name)
        if v is not None and pred(v):
            return True, v
        time.sleep(0.05)
    return False, v


def read_response(s, buf):
    """Reads one response from socket s (buf: bytes already read). Returns (status, body,
    rest); raises on EOF."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed before a response head")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    clen = 0
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    while len(rest) < clen:
        d = s.recv(65536)
        if not d:
            raise EOFError("closed inside a body")
        rest += d
    return status, rest[:clen], rest[clen:]


def report(phase, ok, total, why=""):
    if ok == total:
        print("%s ok=%d of %d" % (phase, ok, total), flush=True)
    else:
        print("%s FAILED ok=%d of %d %s" % (phase, ok, total, why), flush=True)


GET = b"GET / HTTP/1.1\r\nHost: parked\r\n\r\n"
socks = []
ok = 0
for i in range(n):
    s = socket.create_connection((host, port), timeout=10)
    socks.append(s)
    s.sendall(GET)
    st, body, _ = read_response(s, b"")
    ok += st == 200 and body == b"hello"
report("first-requests", ok, n)

got, v = wait_metric("ferry_listener_connections_parked", lambda v: v >= n, 15)
report("parked", n if got else 0, n, "(gauge %s)" % v)

# Back from parking: one GET, two pipelined GETs, a POST with a body, on every socket.
payload = bytes(range(256)) * 256   # 64 KiB
want = hashlib.sha256(payload).hexdigest()
ok = 0
why = ""
for i, s in enumerate(socks):
    try:
        if i % 3 == 0:
            s.sendall(GET)
            st, body, rest = read_response(s, b"")
            good = st == 200 and body == b"hello" and not rest
        elif i % 3 == 1:
            s.sendall(GET + GET)
            st1, b1, rest = read_response(s, b"")
            st2, b2, rest = read_response(s, rest)
            good = st1 == st2 == 200 and b1 == b2 == b"hello" and not rest
        else:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: parked\r\nContent-Length: %d\r\n\r\n" % len(payload))
            s.sendall(payload)
            st, body, rest = read_response(s, b"")
            good = st == 200 and hashlib.sha256(body).hexdigest() == want and not rest
    except (OSError, EOFError, ValueError) as e:
        good = False
        why = "connection %d: %s" % (i, e)
    ok += good
report("after-parking", ok, n, why)

got, v = wait_metric("ferry_listener_connections_parked", lambda v: v >= n, 15)
report("parked-again", n if got else 0, n, "(gauge %s)" % v)

# The client closes half of them while parked: ferry notices each at once.
half = n // 2
for s in socks[:half]:
    s.close()
got, v = wait_metric("ferry_listener_connections_active", lambda v: v == n - half, 10)
report("client-closed", half if got else 0, half, "(active %s)" % v)
got, v = wait_metric("ferry_listener_connections_parked", lambda v: v == n - half, 5)
report("parked-left", n - half if got else 0, n - half, "(gauge %s)" % v)

# The rest: ferry closes them at keepalive_timeout, parked or not.
ok = 0
for s in socks[half:]:
    s.settimeout(15)
    try:
        ok += s.recv(1) == b""
    except OSError:
        pass
report("keepalive-timeout", ok, n - half)
got, v = wait_metric("ferry_listener_connections_parked", lambda v: v == 0, 5)
report("parked-none", 1 if got else 0, 1, "(gauge %s)" % v)
