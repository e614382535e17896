#!/usr/bin/python3
"""slowclients.py MODE [options] — misbehaving clients (and a counting sink backend) for
test_client_faults.sh. Every mode is bounded by --max seconds; it prints "READY ..." once its
connections are established and doing their mischief (so the test can check that ferry still
serves others meanwhile), then one "RESULT key=value ..." line. Times are seconds.

  slowloris HOST:PORT N [--interval 0.2]
      N connections each sending one byte of an endless request head every interval until the
      peer closes. RESULT: closed (by the peer), got408, after_min/after_max (from the first
      byte to the close), open (never closed).
  slowbody HOST:PORT N --path P [--size 1048576] [--first 1024] [--trickle 100]
           [--interval 0.5] [--trickle-for 3]
      N POSTs declaring SIZE bytes: FIRST bytes at once, then TRICKLE bytes every interval
      for trickle-for seconds, then nothing. RESULT: closed, got408, early (closed while still
      trickling), idle_min/idle_max (from the last byte sent to the close).
  slowread HOST:PORT N --path P --go-file F [--rate-odd 1024]
      N GETs whose responses are not read (odd-numbered connections read RATE-ODD bytes/s)
      until F exists; then each reads what is left as fast as it can. RESULT: complete (got
      the whole Content-Length), cut (ended early by EOF/RST), bytes_max.
  abortup HOST:PORT N --path P [--size 10485760]
      N POSTs of SIZE bytes sending only half, then closing: i%4 0 Content-Length+FIN,
      1 Content-Length+RST, 2 chunked+FIN, 3 chunked+RST (RST: SO_LINGER 0).
      RESULT: sent (connections that sent their half), early (peer closed first).
  abortdown HOST:PORT N --path P
      N GETs reading half of the Content-Length, then closing (even: FIN, odd: RST).
      RESULT: halfread (connections that got at least half).
  idle HOST:PORT N
      N non-blocking connections (opened 100 every 40 ms) that send nothing. RESULT:
      connected, closed (by the peer), after_min/after_max (from each one's connect to its
      close), data (bytes received, all connections), and for those still open at --max:
      lost (a probe byte got RST: the kernel lost the handshake, the server never had the
      connection) and held (still open: the server holds them).
  h2idle HOST:PORT N
      N h2c connections: preface + SETTINGS (server SETTINGS and PINGs acknowledged), then
      no stream. RESULT: settings (server SETTINGS received), goaway, closed, goaway_min/max
      (from READY), close_max.
  h2stall HOST:PORT N --what headers|body|window [--streams K] [--path P] [--size S]
      N h2c connections whose streams stall: headers = a header block never finished
      (HEADERS without END_HEADERS, no CONTINUATION; 1 stream); body = K POSTs declaring S
      bytes, 1000 sent, then nothing; window = K GETs of P whose flow-control windows are never
      replenished (the socket itself is read). RESULT: streams, ended (by RST_STREAM, an
      END_STREAM or the connection closing), open (never ended), rst/endstream/closed (how),
      goaway (connections), end_min/end_max (from each stream's start).
  sink --listen HOST:PORT
      HTTP/1.1 backend that reads request bodies (Content-Length or chunked) and counts:
      GET /stats -> {"accepted","active","heads","complete","incomplete"}; any other request
      is answered "200 <body length>" once its body is complete. Prints "LISTEN addr".
"""
import argparse
import asyncio
import errno
import json
import os
import resource
import selectors
import socket
import struct
import sys
import time

T0 = time.monotonic()


def now():
    return time.monotonic() - T0


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rst_close(w):
    sock = w.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    w.close()


def fmt(v):
    return "%.2f" % v if isinstance(v, float) else str(v)


def result(**kv):
    out("RESULT " + " ".join("%s=%s" % (k, fmt(v)) for k, v in kv.items()))


async def wait_all(tasks, limit):
    done, pending = await asyncio.wait(tasks, timeout=max(0.1, limit))
    for t in pending:
        t.cancel()
    if pending:
        await asyncio.wait(pending, timeout=1)


# ------------------------------------------------------------------ slowloris

async def slowloris(a):
    host, port = hostport(a.addr)
    st = []
    started = asyncio.Event()
    nstarted = [0]

    async def one(i):
        rec = {"closed": None, "r408": False, "first": None}
        st.append(rec)
        try:
            r, w = await asyncio.open_connection(host, port)
        except OSError:
            rec["connfail"] = True
            nstarted[0] += 1
            if nstarted[0] == a.n:
                started.set()
            return
        head = b"GET /slowloris HTTP/1.1\r\nHost: x\r\nX-Slow: "
        k = 0
        got = b""
        try:
            while now() < a.max:
                b = head[k:k + 1] if k < len(head) else b"a"
                k += 1
                w.write(b)
                await w.drain()
                if rec["first"] is None:
                    rec["first"] = now()
                    nstarted[0] += 1
                    if nstarted[0] == a.n:
                        started.set()
                try:
                    d = await asyncio.wait_for(r.read(4096), a.interval)
                except asyncio.TimeoutError:
                    continue
                if not d:
                    rec["closed"] = now()
                    break
                got += d
                if got.startswith(b"HTTP/1.1 408"):
                    rec["r408"] = True
        except (ConnectionError, OSError):
            rec["closed"] = now()
        finally:
            w.close()

    tasks = [asyncio.ensure_future(one(i)) for i in range(a.n)]
    try:
        await asyncio.wait_for(started.wait(), a.max)
    except asyncio.TimeoutError:
        pass
    out("READY started=%d t=%.2f" % (nstarted[0], now()))
    await wait_all(tasks, a.max - now() + 1)
    after = [r["closed"] - r["first"] for r in st if r["closed"] is not None and r["first"] is not None]
    result(n=a.n, closed=len(after), got408=sum(1 for r in st if r["r408"]),
           after_min=min(after, default=-1.0), after_max=max(after, default=-1.0),
           open=sum(1 for r in st if r["closed"] is None))


# ------------------------------------------------------------------ slowbody

async def slowbody(a):
    host, port = hostport(a.addr)
    st = []
    nstarted = [0]
    started = asyncio.Event()

    async def one(i):
        rec = {"closed": None, "r408": False, "last": None, "early": False}
        st.append(rec)
        r, w = await asyncio.open_connection(host, port)
        head = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (a.path, a.size)).encode()
        trickle_end = [None]

        async def reader():
            got = b""
            try:
                while True:
                    d = await r.read(4096)
                    if not d:
                        break
                    got += d
                    if got.startswith(b"HTTP/1.1 408"):
                        rec["r408"] = True
            except (ConnectionError, OSError):
                pass
            rec["closed"] = now()
            if trickle_end[0] is None or rec["closed"] < trickle_end[0]:
                rec["early"] = True

        rt = asyncio.ensure_future(reader())
        try:
            w.write(head + b"x" * a.first)
            await w.drain()
            rec["last"] = now()
            nstarted[0] += 1
            if nstarted[0] == a.n:
                started.set()
            end = now() + a.trickle_for
            sent = a.first
            while now() < end and not rt.done():
                await asyncio.wait([rt], timeout=a.interval)
                if rt.done():
                    break
                w.write(b"y" * a.trickle)
                await w.drain()
                sent += a.trickle
                rec["last"] = now()
            trickle_end[0] = now()
            await asyncio.wait([rt], timeout=max(0.1, a.max - now()))
        except (ConnectionError, OSError):
            await asyncio.wait([rt], timeout=2)
        finally:
            rt.cancel()
            w.close()

    tasks = [asyncio.ensure_future(one(i)) for i in range(a.n)]
    try:
        await asyncio.wait_for(started.wait(), a.max)
    except asyncio.TimeoutError:
        pass
    out("READY started=%d t=%.2f" % (nstarted[0], now()))
    await wait_all(tasks, a.max - now() + 1)
    idle = [r["closed"] - r["last"] for r in st if r["closed"] is not None and r["last"] is not None]
    result(n=a.n, closed=len(idle), got408=sum(1 for r in st if r["r408"]),
           early=sum(1 for r in st if r["early"]),
           idle_min=min(idle, default=-1.0), idle_max=max(idle, default=-1.0))


# ------------------------------------------------------------------ slowread

def parse_cl(head):
    for ln in head.split(b"\r\n")[1:]:
        k, _, v = ln.partition(b":")
        if k.strip().lower() == b"content-length":
            return int(v.strip())
    return -1


async def slowread(a):
    host, port = hostport(a.addr)
    st = []

    async def one(i):
        rec = {"bytes": 0, "cl": -1, "end": None}
        st.append(rec)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        # A small stream limit: asyncio stops reading the socket once 2 x limit is buffered,
        # so a connection that "reads nothing" really leaves the bytes in the kernel.
        r, w = await asyncio.open_connection(sock=sock, limit=16384)
        w.write(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % a.path).encode())
        await w.drain()
        return rec, r, w

    conns = await asyncio.gather(*[one(i) for i in range(a.n)])
    out("READY started=%d t=%.2f" % (len(conns), now()))

    async def slow(rec, r, w, rate):
        buf = b""
        while not os.path.exists(a.go_file) and now() < a.max:
            if rate:
                try:
                    d = await asyncio.wait_for(r.read(max(1, rate // 4)), 0.25)
                except asyncio.TimeoutError:
                    continue
                if not d:
                    rec["end"] = "EOF"
                    return buf
                buf += d
                rec["bytes"] += len(d)
                await asyncio.sleep(0.25)   # models a RATE bytes/s reader (RATE/4 every 250 ms)
            else:
                await asyncio.sleep(0.05)   # polls the go file; reads nothing
        return buf

    async def drain(rec, r, w, buf):
        try:
            while b"\r\n\r\n" not in buf and now() < a.max:
                d = await asyncio.wait_for(r.read(65536), max(0.1, a.max - now()))
                if not d:
                    break
                buf += d
                rec["bytes"] += len(d)
            if b"\r\n\r\n" in buf:
                rec["cl"] = parse_cl(buf.split(b"\r\n\r\n", 1)[0])
                rec["hlen"] = buf.index(b"\r\n\r\n") + 4
            while now() < a.max and rec["end"] is None:
                d = await asyncio.wait_for(r.read(1 << 20), max(0.1, a.max - now()))
                if not d:
                    rec["end"] = "EOF"
                    break
                rec["bytes"] += len(d)
        except (ConnectionError, OSError):
            rec["end"] = "RST"
        except asyncio.TimeoutError:
            rec["end"] = "TIMEOUT"
        w.close()

    async def run(i, c):
        rec, r, w = c
        buf = await slow(rec, r, w, a.rate_odd if i % 2 else 0)
        await drain(rec, r, w, buf)

    await wait_all([asyncio.ensure_future(run(i, c)) for i, c in enumerate(conns)], a.max - now() + 1)
    complete = sum(1 for r in st if r["cl"] >= 0 and r["bytes"] - r.get("hlen", 0) >= r["cl"])
    cut = sum(1 for r in st if r["end"] in ("EOF", "RST") and not (r["cl"] >= 0 and r["bytes"] - r.get("hlen", 0) >= r["cl"]))
    result(n=a.n, complete=complete, cut=cut, bytes_max=max((r["bytes"] for r in st), default=0),
           bytes_min=min((r["bytes"] for r in st), default=0),
           timeouts=sum(1 for r in st if r["end"] == "TIMEOUT"))


# ------------------------------------------------------------------ abortup / abortdown

async def abortup(a):
    host, port = hostport(a.addr)
    half = a.size // 2
    stats = {"sent": 0, "early": 0}

    async def one(i):
        chunked = i % 4 >= 2
        rst = i % 2 == 1
        r, w = await asyncio.open_connection(host, port)
        if chunked:
            head = "POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % a.path
        else:
            head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (a.path, a.size)
        w.write(head.encode())
        blk = b"z" * 65536
        sent = 0
        try:
            while sent < half:
                n = min(len(blk), half - sent)
                w.write(b"%x\r\n%s\r\n" % (n, blk[:n]) if chunked else blk[:n])
                await w.drain()
                sent += n
            stats["sent"] += 1
        except (ConnectionError, OSError):
            stats["early"] += 1
        if rst:
            rst_close(w)
        else:
            w.close()

    out("READY t=%.2f" % now())
    await wait_all([asyncio.ensure_future(one(i)) for i in range(a.n)], a.max - now())
    result(n=a.n, **stats)


async def abortdown(a):
    host, port = hostport(a.addr)
    stats = {"halfread": 0, "short": 0}

    async def one(i):
        r, w = await asyncio.open_connection(host, port, limit=1 << 20)
        w.write(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % a.path).encode())
        await w.drain()
        try:
            head = await r.readuntil(b"\r\n\r\n")
            cl = parse_cl(head)
            got = 0
            while got < cl // 2:
                d = await r.read(min(1 << 20, cl // 2 - got))
                if not d:
                    break
                got += len(d)
            if cl > 0 and got >= cl // 2:
                stats["halfread"] += 1
            else:
                stats["short"] += 1
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            stats["short"] += 1
        if i % 2:
            rst_close(w)
        else:
            w.close()

    out("READY t=%.2f" % now())
    await wait_all([asyncio.ensure_future(one(i)) for i in range(a.n)], a.max - now())
    result(n=a.n, **stats)


# ------------------------------------------------------------------ idle (selectors)

def connect_many(host, port, n, deadline, batch=100, gap=0.04):
    """n non-blocking connects, BATCH at a time at most every GAP seconds (a listening socket's
    accept queue holds 511: a burst of thousands overflows it, and with SYN cookies the kernel
    then silently loses handshakes the client believes complete). Returns [(sock, t_start)]
    of the connected sockets (others closed)."""
    sel = selectors.DefaultSelector()
    ok = []
    made = 0
    pending = 0
    next_batch = now()
    while (made < n or pending) and now() < deadline:
        if made < n and now() >= next_batch:
            for _ in range(min(batch, n - made)):
                s = socket.socket()
                s.setblocking(False)
                made += 1
                e = s.connect_ex((host, port))
                if e not in (0, errno.EINPROGRESS):
                    s.close()
                    continue
                sel.register(s, selectors.EVENT_WRITE, now())
                pending += 1
            next_batch = now() + gap
        for key, _ in sel.select(max(0.001, min(0.5, next_batch - now())) if made < n else 0.5):
            s = key.fileobj
            sel.unregister(s)
            pending -= 1
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ok.append((s, key.data))
            else:
                s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return ok


def idle(a):
    raise_nofile()
    host, port = hostport(a.addr)
    conns = connect_many(host, port, a.n, a.max)
    t_ready = now()
    out("READY connected=%d t=%.2f" % (len(conns), t_ready))
    sel = selectors.DefaultSelector()
    for s, t in conns:
        sel.register(s, selectors.EVENT_READ, t)
    closed, data, after = 0, 0, []
    left = len(conns)
    while left and now() < a.max:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except OSError:
                d = b""
            if d:
                data += len(d)
                continue
            sel.unregister(s)
            s.close()
            left -= 1
            closed += 1
            after.append(now() - key.data)
    # Still open at the deadline: send one byte. A connection ferry holds stays open; one the
    # kernel lost in the handshake (no server state) answers RST.
    lost = 0
    if left:
        for key in list(sel.get_map().values()):
            try:
                key.fileobj.send(b"G")
            except OSError:
                pass
        end = now() + 1.0
        while left and now() < end:
            for key, _ in sel.select(0.1):
                try:
                    d = key.fileobj.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    sel.unregister(key.fileobj)
                    left -= 1
                    lost += 1
    for s, _ in conns:
        s.close()
    result(n=a.n, connected=len(conns), closed=closed, lost=lost, held=left,
           after_min=min(after, default=-1.0), after_max=max(after, default=-1.0), data=data)


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def h2idle(a):
    raise_nofile()
    host, port = hostport(a.addr)
    socks = [c[0] for c in connect_many(host, port, a.n, a.max)]
    for s in socks:
        s.setblocking(True)
        s.sendall(PREFACE + frame(4, 0, 0))
        s.setblocking(False)
    t_ready = now()
    out("READY connected=%d t=%.2f" % (len(socks), t_ready))
    sel = selectors.DefaultSelector()
    st = {}
    for s in socks:
        st[s] = {"buf": b"", "settings": False, "goaway": None, "closed": None}
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    while left and now() < a.max:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            c = st[s]
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if not d:
                c["closed"] = now() - t_ready
                sel.unregister(s)
                s.close()
                left -= 1
                continue
            c["buf"] += d
            while len(c["buf"]) >= 9:
                ln = int.from_bytes(c["buf"][:3], "big")
                if len(c["buf"]) < 9 + ln:
                    break
                ftype, flags = c["buf"][3], c["buf"][4]
                payload = c["buf"][9:9 + ln]
                c["buf"] = c["buf"][9 + ln:]
                try:
                    if ftype == 4 and not flags & 1:
                        c["settings"] = True
                        s.send(frame(4, 1, 0))
                    elif ftype == 6 and not flags & 1:
                        s.send(frame(6, 1, 0, payload))
                    elif ftype == 7 and c["goaway"] is None:
                        c["goaway"] = now() - t_ready
                except OSError:
                    pass
    for s in socks:
        s.close()
    v = list(st.values())
    ga = [c["goaway"] for c in v if c["goaway"] is not None]
    cl = [c["closed"] for c in v if c["closed"] is not None]
    result(n=a.n, connected=len(socks), settings=sum(1 for c in v if c["settings"]),
           goaway=len(ga), closed=len(cl), goaway_min=min(ga, default=-1.0),
           goaway_max=max(ga, default=-1.0), close_max=max(cl, default=-1.0))


def h2stall(a):
    """HTTP/2 streams that stall: --what headers (a header block never finished: HEADERS
    without END_HEADERS, no CONTINUATION), body (POST declaring --size bytes, 1000 sent, then
    nothing), window (GET of a large response; no WINDOW_UPDATE is ever sent, the socket is
    read). --streams per connection (headers: 1)."""
    import hpack
    raise_nofile()
    host, port = hostport(a.addr)
    conns = [c[0] for c in connect_many(host, port, a.n, a.max)]
    enc_for = {}
    st = {}      # sock -> state
    streams = {} # (sock, sid) -> {"t0", "end", "how"}
    for s in conns:
        s.setblocking(True)
        s.settimeout(5)
        s.sendall(PREFACE + frame(4, 0, 0))
        st[s] = {"buf": b"", "goaway": None, "closed": None}
        if a.what == "headers":
            # The server's SETTINGS must be acknowledged before the header block starts: no
            # other frame may come between HEADERS and its CONTINUATION.
            buf = b""
            while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            st[s]["buf"] = buf[9 + int.from_bytes(buf[:3], "big"):] if len(buf) >= 9 else b""
            s.sendall(frame(4, 1, 0))
        enc = hpack.Encoder()
        nstreams = 1 if a.what == "headers" else a.streams
        out_b = b""
        for i in range(nstreams):
            sid = 1 + 2 * i
            if a.what == "headers":
                h = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", "/h2slowloris"),
                                (":authority", "x"), ("x-pad", "p" * 200)])
                out_b += frame(1, 0x1, sid, h[:len(h) // 2])          # END_STREAM, no END_HEADERS
            elif a.what == "body":
                h = enc.encode([(":method", "POST"), (":scheme", "http"), (":path", a.path),
                                (":authority", "x"), ("content-length", str(a.size))])
                out_b += frame(1, 0x4, sid, h) + frame(0, 0, sid, b"x" * 1000)
            else:
                h = enc.encode([(":method", "GET"), (":scheme", "http"), (":path", a.path),
                                (":authority", "x")])
                out_b += frame(1, 0x5, sid, h)
            streams[(s, sid)] = {"t0": now(), "end": None, "how": None}
        s.sendall(out_b)
        s.setblocking(False)
    t_ready = now()
    out("READY connections=%d streams=%d t=%.2f" % (len(conns), len(streams), t_ready))

    def end_stream(s, sid, how):
        k = (s, sid)
        if k in streams and streams[k]["end"] is None:
            streams[k]["end"] = now() - streams[k]["t0"]
            streams[k]["how"] = how

    sel = selectors.DefaultSelector()
    for s in conns:
        sel.register(s, selectors.EVENT_READ)
    left = len(conns)
    while left and now() < a.max and any(v["end"] is None for v in streams.values()):
        for key, _ in sel.select(0.2):
            s = key.fileobj
            c = st[s]
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if not d:
                c["closed"] = now() - t_ready
                for (ss, sid) in streams:
                    if ss is s:
                        end_stream(s, sid, "close")
                sel.unregister(s)
                left -= 1
                continue
            c["buf"] += d
            while len(c["buf"]) >= 9:
                ln = int.from_bytes(c["buf"][:3], "big")
                if len(c["buf"]) < 9 + ln:
                    break
                ftype, flags = c["buf"][3], c["buf"][4]
                sid = int.from_bytes(c["buf"][5:9], "big") & 0x7FFFFFFF
                payload = c["buf"][9:9 + ln]
                c["buf"] = c["buf"][9 + ln:]
                try:
                    if ftype == 4 and not flags & 1 and a.what != "headers":
                        s.send(frame(4, 1, 0))
                    elif ftype == 6 and not flags & 1 and a.what != "headers":
                        s.send(frame(6, 1, 0, payload))
                except OSError:
                    pass
                if ftype == 3:
                    end_stream(s, sid, "rst")
                elif ftype in (0, 1) and flags & 1:
                    end_stream(s, sid, "end")
                elif ftype == 7 and c["goaway"] is None:
                    c["goaway"] = now() - t_ready
    v = list(streams.values())
    ends = [x["end"] for x in v if x["end"] is not None]
    for s in conns:
        s.close()
    result(connections=len(conns), streams=len(v), ended=len(ends),
           open=sum(1 for x in v if x["end"] is None),
           rst=sum(1 for x in v if x["how"] == "rst"), closed=sum(1 for x in v if x["how"] == "close"),
           endstream=sum(1 for x in v if x["how"] == "end"),
           goaway=sum(1 for c in st.values() if c["goaway"] is not None),
           end_min=min(ends, default=-1.0), end_max=max(ends, default=-1.0))


# ------------------------------------------------------------------ sink backend

async def sink(a):
    host, port = hostport(a.listen)
    c = {"accepted": 0, "active": 0, "heads": 0, "complete": 0, "incomplete": 0}

    async def handle(r, w):
        c["accepted"] += 1
        c["active"] += 1
        try:
            while True:
                try:
                    head = await r.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                cl, chunked = 0, False
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    k = k.strip().lower()
                    if k == "content-length":
                        cl = int(v.strip())
                    elif k == "transfer-encoding" and "chunked" in v.lower():
                        chunked = True
                counted = not path.startswith("/stats")
                if counted:
                    c["heads"] += 1
                n = 0
                try:
                    if chunked:
                        while True:
                            szl = await r.readuntil(b"\r\n")
                            sz = int(szl.split(b";")[0].strip(), 16)
                            if sz == 0:
                                while (await r.readuntil(b"\r\n")) != b"\r\n":
                                    pass
                                break
                            await r.readexactly(sz + 2)
                            n += sz
                    else:
                        while n < cl:
                            d = await r.read(min(1 << 20, cl - n))
                            if not d:
                                raise asyncio.IncompleteReadError(b"", cl - n)
                            n += len(d)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
                    if counted:
                        c["incomplete"] += 1
                    return
                if counted:
                    c["complete"] += 1
                    body = b"%d\n" % n
                else:
                    body = json.dumps(c).encode() + b"\n"
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await w.drain()
        except ConnectionError:
            pass
        finally:
            c["active"] -= 1
            w.close()

    srv = await asyncio.start_server(handle, host, port, limit=1 << 16)
    out("LISTEN %s:%d" % srv.sockets[0].getsockname()[:2])
    async with srv:
        await srv.serve_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("addr", nargs="?")
    ap.add_argument("n", nargs="?", type=int, default=1)
    ap.add_argument("--max", type=float, default=20.0)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--path", default="/")
    ap.add_argument("--size", type=int, default=1 << 20)
    ap.add_argument("--first", type=int, default=1024)
    ap.add_argument("--trickle", type=int, default=100)
    ap.add_argument("--trickle-for", type=float, default=3.0)
    ap.add_argument("--go-file")
    ap.add_argument("--rate-odd", type=int, default=1024)
    ap.add_argument("--listen")
    ap.add_argument("--what", choices=["headers", "body", "window"], default="window")
    ap.add_argument("--streams", type=int, default=1)
    a = ap.parse_args()
    if a.mode == "idle":
        idle(a)
    elif a.mode == "h2idle":
        h2idle(a)
    elif a.mode == "h2stall":
        h2stall(a)
    else:
        raise_nofile()
        fn = {"slowloris": slowloris, "slowbody": slowbody, "slowread": slowread,
              "abortup": abortup, "abortdown": abortdown, "sink": sink}[a.mode]
        try:
            asyncio.run(fn(a))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
