#!/usr/bin/python3
"""h2peer.py [options] HOST:PORT STEP... — a frame-level HTTP/2 client for ferry's tests.

Builds and parses frames itself (hyperframe is not used for sending; hpack only decodes), so it
can send what a conforming client never would: connection-specific or uppercase header names,
a content-length that lies, floods of PING / SETTINGS / RST_STREAM / CONTINUATION, malformed
frames. One connection; the client preface and an empty SETTINGS frame are sent at connect.

Options (before HOST:PORT):
  --tls               TLS with ALPN h2 (certificate not verified); prints "ALPN <proto>"
  --sni NAME          server name for TLS (default: none for an IP address)
  --authority A       :authority of requests (default HOST:PORT)
  --timeout SECS      default limit of waiting steps (default 10)
  --body              print response bodies (BODYTEXT <repr>, first 4 KiB)
  --no-preface        do not send the preface/SETTINGS at connect (use step "preface")
  --quiet-data        do not replenish flow-control windows (model a stalled reader)
  --rcvbuf BYTES      SO_RCVBUF of the client socket (small: the server's writes back up
                      sooner, e.g. during a flood that is not being read)

Steps:
  preface                  client preface + empty SETTINGS
  settings:K=V[,K=V]       send SETTINGS (names as in RFC 9113 without SETTINGS_, or numbers)
  hdr:NAME:VALUE           add a raw header field to the next request (repeatable)
  hdrx:NAME|VALUE          the same with Python escapes decoded in NAME and VALUE (\\r \\n
                           \\x00 ...), split at the first '|': names with ':' or controls
  pseudo:NAME|VALUE        replace pseudo-header NAME (":path", ":method", ":authority",
                           ":scheme") of the next request, escapes decoded; "pseudo:NAME"
                           without '|' leaves it out
  get:PATH                 new stream: GET PATH with END_STREAM
  post:PATH:N              new stream: POST PATH (no automatic content-length; add one with
                           hdr:), then N bytes of DATA respecting flow control, END_STREAM
  postdata:PATH|BYTES      new stream: POST PATH, then BYTES (escapes decoded) in one DATA
                           frame with END_STREAM (no automatic content-length)
  wait[:SID]               process frames until stream SID (default: last opened) has ended
  waitall                  process frames until every opened stream has ended
  seq:N:PATH               N sequential GETs, each waited for; stops at GOAWAY or close
  read:SECS                process frames for SECS (stops early at close)
  waitgoaway[:SECS]        process frames until a GOAWAY arrives
  waitclose[:SECS]         process frames until the peer closes: CLOSED/RESET ... or OPEN
  rst:SID[:CODE]           send RST_STREAM
  rapidreset:N             N x (HEADERS GET / END_STREAM + RST_STREAM CANCEL), batched
  pingflood:N              N PING frames in one write, nothing read meanwhile
  settingsflood:N          N empty SETTINGS frames in one write, nothing read meanwhile
  contflood:N              HEADERS without END_HEADERS then N CONTINUATION frames of ~1 KiB
                           header fields each, the last without END_HEADERS either
  waitsettings             process frames until the server's SETTINGS arrived
  hdrs:SID                 HEADERS GET / (END_STREAM) on an explicit stream id (may be invalid)
  data0                    DATA frame on stream 0
  badpad                   HEADERS frame (new stream) with PADDED and Pad Length >= payload
  raw:HEX                  send raw bytes
  sleep:MS                 sleep (only to model a slow peer)

Output, one event per line (t = seconds since connect):
  SETTINGS NAME=V ...      the server's SETTINGS (also "SETTINGS_ACK")
  SENT <sid> <method> <path>      a stream was opened
  RESP <sid> <status> t=   then "H <sid> name: value" per field
  T <sid> name: value      trailer fields
  BODY <sid> <len> <sha256-prefix16>   at END_STREAM; END <sid> t=
  RST <sid> <CODE> t=      RST_STREAM received
  GOAWAY last=<id> code=<CODE> t= debug=<repr>
  WINDOW_UPDATE / PING acks are counted: COUNTS pingack=N settingsack=M (printed at exit)
  CLOSED t= step= | RESET t= step= | OPEN step= | TIMEOUT step=
  SENDFAIL <what> <error>  a write failed (peer closed / reset / blocked)
"""
import codecs
import hashlib
import socket
import ssl
import struct
import sys
import time

import hpack

TIMEOUT = 10.0
PRINT_BODY = False
QUIET_DATA = False
RCVBUF = 0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
F_END_STREAM, F_ACK, F_END_HEADERS, F_PADDED, F_PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20

ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
          "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
          "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
          "HTTP_1_1_REQUIRED"]
SETTING_NAMES = {1: "HEADER_TABLE_SIZE", 2: "ENABLE_PUSH", 3: "MAX_CONCURRENT_STREAMS",
                 4: "INITIAL_WINDOW_SIZE", 5: "MAX_FRAME_SIZE", 6: "MAX_HEADER_LIST_SIZE",
                 8: "ENABLE_CONNECT_PROTOCOL", 9: "NO_RFC7540_PRIORITIES"}
SETTING_IDS = {v: k for k, v in SETTING_NAMES.items()}


def errname(c):
    return ERRORS[c] if c < len(ERRORS) else "0x%x" % c


class Closed(Exception):
    pass


class Reset(Exception):
    pass


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


def hpack_int(v, prefix_bits, first=0):
    mx = (1 << prefix_bits) - 1
    if v < mx:
        return bytes([first | v])
    out = [first | mx]
    v -= mx
    while v >= 128:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_literal(name, value):
    """Literal header field without indexing, new name, no Huffman: bytes sent as given."""
    n = name.encode("latin-1") if isinstance(name, str) else name
    v = value.encode("latin-1") if isinstance(value, str) else value
    return b"\x00" + hpack_int(len(n), 7) + n + hpack_int(len(v), 7) + v


def header_block(fields):
    return b"".join(hpack_literal(k, v) for k, v in fields)


class Stream:
    def __init__(self, sid, path):
        self.sid = sid
        self.path = path
        self.got_headers = False
        self.body = b""
        self.blen = 0
        self.h = hashlib.sha256()
        self.ended = False
        self.send_window = 65535


class Conn:
    def __init__(self, addr, tls, sni, authority):
        host, port = addr.rsplit(":", 1)
        host = host.strip("[]")
        self.t0 = time.monotonic()
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        if RCVBUF:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        s.settimeout(TIMEOUT)
        s.connect((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname=sni)
            print("ALPN %s" % s.selected_alpn_protocol())
        self.s = s
        self.scheme = "https" if tls else "http"
        self.authority = authority or addr
        self.buf = b""
        self.closed = False
        self.streams = {}
        self.next_sid = 1
        self.last_sid = 0
        self.extra = []
        self.pseudo = {}  # name -> value (None: leave the field out) for the next request
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536
        self.hblock = None  # (sid, flags, bytes) while CONTINUATIONs are expected
        self.goaways = []
        self.peer_settings = {}
        self.conn_send_window = 65535
        self.counts = {"pingack": 0, "settingsack": 0, "window_update": 0, "ping": 0}
        self.unacked = 0

    def t(self):
        return time.monotonic() - self.t0

    def send(self, data, what="write"):
        try:
            self.s.settimeout(TIMEOUT)
            self.s.sendall(data)
            return True
        except (socket.timeout, ssl.SSLError, OSError) as e:
            print("SENDFAIL %s %s t=%.3f" % (what, type(e).__name__, self.t()))
            sys.stdout.flush()
            return False

    # ------------------------------------------------------------- reading

    def fill(self, timeout):
        if self.closed:
            raise Closed()
        self.s.settimeout(max(timeout, 0.001))
        try:
            d = self.s.recv(262144)
        except (ConnectionResetError, BrokenPipeError):
            self.closed = True
            raise Reset()
        except ssl.SSLError as e:
            if "timed out" in str(e):
                raise socket.timeout()
            self.closed = True
            raise Reset()
        if not d:
            self.closed = True
            raise Closed()
        self.buf += d

    def read_frame(self, timeout):
        end = time.monotonic() + timeout
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = end - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.fill(left)
        ln = int.from_bytes(self.buf[:3], "big")
        ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
        payload = self.buf[9:9 + ln]
        self.buf = self.buf[9 + ln:]
        return ftype, flags, sid & 0x7FFFFFFF, payload

    def process(self, timeout):
        """Read and handle one frame; raises socket.timeout, Closed, Reset."""
        ftype, flags, sid, p = self.read_frame(timeout)
        if ftype == SETTINGS:
            if flags & F_ACK:
                self.counts["settingsack"] += 1
                if self.counts["settingsack"] <= 3:
                    print("SETTINGS_ACK t=%.3f" % self.t())
            else:
                self.counts["settings"] = self.counts.get("settings", 0) + 1
                items = []
                for i in range(0, len(p) - len(p) % 6, 6):
                    k, v = struct.unpack(">HI", p[i:i + 6])
                    self.peer_settings[k] = v
                    if k == 4:
                        delta = v - getattr(self, "_init_win", 65535)
                        self._init_win = v
                        for st in self.streams.values():
                            st.send_window += delta
                    items.append("%s=%d" % (SETTING_NAMES.get(k, str(k)), v))
                print("SETTINGS %s t=%.3f" % (" ".join(items), self.t()))
                self.send(frame(SETTINGS, F_ACK, 0), "settings-ack")
        elif ftype == HEADERS or ftype == CONTINUATION:
            if ftype == HEADERS:
                off = 0
                pad = 0
                if flags & F_PADDED:
                    pad = p[0]
                    off = 1
                if flags & F_PRIORITY:
                    off += 5
                frag = p[off:len(p) - pad]
                self.hblock = (sid, flags, frag)
            else:
                s0, f0, frag = self.hblock
                self.hblock = (s0, f0, frag + p)
                flags = (f0 & ~F_END_HEADERS) | (flags & F_END_HEADERS)
            if flags & F_END_HEADERS:
                s0, f0, block = self.hblock
                self.hblock = None
                self.on_headers(s0, f0, block)
        elif ftype == DATA:
            st = self.streams.get(sid)
            pad = p[0] + 1 if flags & F_PADDED else 0
            body = p[1:len(p) - p[0]] if flags & F_PADDED else p
            if st:
                st.blen += len(body)
                st.h.update(body)
                if PRINT_BODY and len(st.body) < 4096:
                    st.body += body[:4096 - len(st.body)]
            n = len(p)
            if n and not QUIET_DATA:
                self.unacked += n
                wu = struct.pack(">I", n)
                out = b""
                if not (flags & F_END_STREAM):
                    out += frame(WINDOW_UPDATE, 0, sid, wu)
                if self.unacked >= 32768:
                    out += frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", self.unacked))
                    self.unacked = 0
                if out:
                    self.send(out, "window-update")
            del pad
            if flags & F_END_STREAM:
                self.end_stream(sid)
        elif ftype == RST_STREAM:
            code = struct.unpack(">I", p[:4])[0] if len(p) >= 4 else -1
            print("RST %d %s t=%.3f" % (sid, errname(code), self.t()))
            st = self.streams.get(sid)
            if st:
                st.ended = True
        elif ftype == PING:
            if flags & F_ACK:
                self.counts["pingack"] += 1
            else:
                self.counts["ping"] += 1
                self.send(frame(PING, F_ACK, 0, p), "ping-ack")
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", p[:8])
            last &= 0x7FFFFFFF
            self.goaways.append((last, code))
            print("GOAWAY last=%d code=%s t=%.3f debug=%r" % (last, errname(code), self.t(), p[8:200]))
        elif ftype == WINDOW_UPDATE:
            self.counts["window_update"] += 1
            inc = struct.unpack(">I", p[:4])[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_send_window += inc
            elif sid in self.streams:
                self.streams[sid].send_window += inc
        elif ftype == PUSH_PROMISE:
            print("PUSH_PROMISE %d t=%.3f" % (sid, self.t()))
        sys.stdout.flush()
        return ftype

    def on_headers(self, sid, flags, block):
        try:
            fields = self.dec.decode(block)
        except Exception as e:  # noqa: BLE001
            print("HPACKERROR %d %s" % (sid, e))
            return
        st = self.streams.get(sid)
        status = dict(fields).get(":status")
        if st is not None and not st.got_headers and status is not None:
            if not status.startswith("1"):
                st.got_headers = True
            print("RESP %d %s t=%.3f" % (sid, status, self.t()))
            for k, v in fields:
                if not k.startswith(":"):
                    print("H %d %s: %s" % (sid, k, v))
        else:
            for k, v in fields:
                print("T %d %s: %s" % (sid, k, v))
        if flags & F_END_STREAM:
            self.end_stream(sid)

    def end_stream(self, sid):
        st = self.streams.get(sid)
        if st is None:
            return
        st.ended = True
        print("BODY %d %d %s" % (sid, st.blen, st.h.hexdigest()[:16]))
        if PRINT_BODY:
            print("BODYTEXT %d %r" % (sid, st.body))
        print("END %d t=%.3f" % (sid, self.t()))

    def run_until(self, cond, timeout):
        """Process frames until cond() is true. Returns True, or False on timeout."""
        end = time.monotonic() + timeout
        while not cond():
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                self.process(left)
            except socket.timeout:
                return False
        return True

    # ------------------------------------------------------------- writing

    def new_stream(self, method, path, end_stream):
        sid = self.next_sid
        self.next_sid += 2
        self.last_sid = sid
        fields = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                  (":path", path)]
        fields = [(k, self.pseudo.get(k, v)) for k, v in fields if self.pseudo.get(k, v) is not None]
        fields += [(k, v) for k, v in self.pseudo.items() if v is not None and k not in
                   (":method", ":scheme", ":authority", ":path")]
        fields += self.extra
        self.extra = []
        self.pseudo = {}
        st = Stream(sid, path)
        st.send_window = getattr(self, "_init_win", 65535)
        self.streams[sid] = st
        flags = F_END_HEADERS | (F_END_STREAM if end_stream else 0)
        ok = self.send(frame(HEADERS, flags, sid, header_block(fields)), "headers")
        print("SENT %d %s %s t=%.3f" % (sid, method, path, self.t()))
        sys.stdout.flush()
        return sid, ok

    def send_data(self, sid, n, timeout):
        st = self.streams[sid]
        maxf = self.peer_settings.get(5, 16384)
        chunk = bytes(i % 251 for i in range(maxf))
        sent = 0
        end = time.monotonic() + timeout
        while sent < n:
            if st.ended:
                print("DATASTOP %d sent=%d (stream ended)" % (sid, sent))
                return False
            room = min(st.send_window, self.conn_send_window, maxf, n - sent)
            if room <= 0:
                left = end - time.monotonic()
                if left <= 0:
                    print("DATASTOP %d sent=%d (no window)" % (sid, sent))
                    return False
                try:
                    self.process(left)
                except socket.timeout:
                    pass
                continue
            last = sent + room == n
            if not self.send(frame(DATA, F_END_STREAM if last else 0, sid, chunk[:room]), "data"):
                return False
            sent += room
            st.send_window -= room
            self.conn_send_window -= room
        if n == 0:
            return self.send(frame(DATA, F_END_STREAM, sid), "data")
        return True


def unescape(s):
    """Python escape sequences (\\r, \\n, \\x00, \\t, \\\\) to bytes, latin-1."""
    return codecs.decode(s, "unicode_escape").encode("latin-1")


def parse_settings(arg):
    out = b""
    for item in filter(None, arg.split(",")):
        k, _, v = item.partition("=")
        k = SETTING_IDS.get(k.upper().replace("SETTINGS_", ""), None) or int(k)
        out += struct.pack(">HI", k, int(v))
    return out


def run_step(c, step):
    name, _, arg = step.partition(":")
    st = time.monotonic()
    if name == "preface":
        c.send(PREFACE + frame(SETTINGS, 0, 0), "preface")
    elif name == "settings":
        c.send(frame(SETTINGS, 0, 0, parse_settings(arg)), "settings")
    elif name == "hdr":
        k, _, v = arg.partition(":")
        c.extra.append((k, v))
    elif name == "hdrx":
        k, _, v = arg.partition("|")
        c.extra.append((unescape(k), unescape(v)))
    elif name == "pseudo":
        k, bar, v = arg.partition("|")
        c.pseudo[k] = unescape(v) if bar else None
    elif name == "get":
        c.new_stream("GET", arg or "/", True)
    elif name == "postdata":
        path, _, body = arg.partition("|")
        sid, ok = c.new_stream("POST", path, False)
        if ok:
            c.send(frame(DATA, F_END_STREAM, sid, unescape(body)), "data")
    elif name == "post":
        path, _, n = arg.rpartition(":")
        sid, ok = c.new_stream("POST", path, False)
        if ok:
            c.send_data(sid, int(n), TIMEOUT)
    elif name == "wait":
        sid = int(arg) if arg else c.last_sid
        if not c.run_until(lambda: c.streams[sid].ended, TIMEOUT):
            print("TIMEOUT step=%.3f wait %d" % (time.monotonic() - st, sid))
    elif name == "waitall":
        if not c.run_until(lambda: all(s.ended for s in c.streams.values()), TIMEOUT):
            print("TIMEOUT step=%.3f waitall" % (time.monotonic() - st))
    elif name == "seq":
        n, _, path = arg.partition(":")
        for _ in range(int(n)):
            if c.goaways:
                print("SEQSTOP goaway")
                break
            sid, ok = c.new_stream("GET", path or "/", True)
            if not ok:
                break
            if not c.run_until(lambda: c.streams[sid].ended, TIMEOUT):
                print("TIMEOUT step=%.3f seq %d" % (time.monotonic() - st, sid))
                break
    elif name == "read":
        c.run_until(lambda: False, float(arg or 1))
    elif name == "waitgoaway":
        n0 = len(c.goaways)
        if not c.run_until(lambda: len(c.goaways) > n0, float(arg or TIMEOUT)):
            print("TIMEOUT step=%.3f waitgoaway" % (time.monotonic() - st))
    elif name == "waitclose":
        if not c.run_until(lambda: False, float(arg or TIMEOUT)):
            print("OPEN step=%.3f" % (time.monotonic() - st))
    elif name == "rst":
        sid, _, code = arg.partition(":")
        code = ERRORS.index(code) if code in ERRORS else int(code or 8)
        c.send(frame(RST_STREAM, 0, int(sid), struct.pack(">I", code)), "rst")
    elif name == "rapidreset":
        n = int(arg)
        sent = 0
        batch = b""
        blk = header_block([(":method", "GET"), (":scheme", c.scheme),
                            (":authority", c.authority), (":path", "/")])
        for i in range(n):
            sid = c.next_sid
            c.next_sid += 2
            batch += frame(HEADERS, F_END_HEADERS | F_END_STREAM, sid, blk)
            batch += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
            if len(batch) > 16384 or i == n - 1:
                if not c.send(batch, "rapidreset"):
                    break
                sent = i + 1
                batch = b""
        print("RAPIDRESET sent=%d t=%.3f" % (sent, c.t()))
    elif name == "pingflood":
        n = int(arg)
        data = b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(n))
        if c.send(data, "pingflood"):
            print("PINGFLOOD sent=%d t=%.3f" % (n, c.t()))
    elif name == "settingsflood":
        n = int(arg)
        if c.send(frame(SETTINGS, 0, 0) * n, "settingsflood"):
            print("SETTINGSFLOOD sent=%d t=%.3f" % (n, c.t()))
    elif name == "contflood":
        n = int(arg)
        sid = c.next_sid
        c.next_sid += 2
        c.last_sid = sid
        c.streams[sid] = Stream(sid, "/")
        first = header_block([(":method", "GET"), (":scheme", c.scheme),
                              (":authority", c.authority), (":path", "/")])
        ok = c.send(frame(HEADERS, F_END_STREAM, sid, first), "contflood-headers")
        i = 0
        while ok and i < n:
            batch = b"".join(frame(CONTINUATION, 0, sid, hpack_literal("x-fill-%d" % j, "v" * 1000))
                             for j in range(i, min(n, i + 64)))
            ok = c.send(batch, "contflood")
            i = min(n, i + 64)
        print("CONTFLOOD sent=%d t=%.3f" % (i if ok else -1, c.t()))
    elif name == "waitsettings":
        if not c.run_until(lambda: bool(c.peer_settings) or c.counts.get("settings", 0), TIMEOUT):
            print("TIMEOUT step=%.3f waitsettings" % (time.monotonic() - st))
    elif name == "hdrs":
        blk = header_block([(":method", "GET"), (":scheme", c.scheme),
                            (":authority", c.authority), (":path", "/")])
        c.send(frame(HEADERS, F_END_HEADERS | F_END_STREAM, int(arg), blk), "hdrs")
    elif name == "data0":
        c.send(frame(DATA, 0, 0, b"hello"), "data0")
    elif name == "badpad":
        sid = c.next_sid
        c.next_sid += 2
        c.last_sid = sid
        c.streams[sid] = Stream(sid, "/")
        blk = header_block([(":method", "GET"), (":scheme", c.scheme),
                            (":authority", c.authority), (":path", "/")])
        payload = bytes([len(blk) + 10]) + blk  # Pad Length exceeds what follows
        c.send(frame(HEADERS, F_END_HEADERS | F_END_STREAM | F_PADDED, sid, payload), "badpad")
    elif name == "raw":
        c.send(bytes.fromhex(arg), "raw")
    elif name == "sleep":
        time.sleep(float(arg) / 1000.0)
    else:
        print("BADSTEP %s" % step)
        return False
    sys.stdout.flush()
    return True


def main(argv):
    global TIMEOUT, PRINT_BODY, QUIET_DATA, RCVBUF
    tls = False
    sni = None
    authority = None
    preface = True
    while argv and argv[0].startswith("--"):
        o = argv.pop(0)
        if o == "--tls":
            tls = True
        elif o == "--sni":
            sni = argv.pop(0)
        elif o == "--authority":
            authority = argv.pop(0)
        elif o == "--timeout":
            TIMEOUT = float(argv.pop(0))
        elif o == "--body":
            PRINT_BODY = True
        elif o == "--no-preface":
            preface = False
        elif o == "--quiet-data":
            QUIET_DATA = True
        elif o == "--rcvbuf":
            RCVBUF = int(argv.pop(0))
    addr = argv.pop(0)
    try:
        c = Conn(addr, tls, sni, authority)
    except (OSError, ssl.SSLError) as e:
        print("CONNECTFAIL %s" % e)
        return 0
    if preface:
        c.send(PREFACE + frame(SETTINGS, 0, 0), "preface")
    for step in argv:
        st = time.monotonic()
        try:
            if not run_step(c, step):
                return 2
        except Closed:
            print("CLOSED t=%.3f step=%.3f" % (c.t(), time.monotonic() - st))
            break
        except Reset:
            print("RESET t=%.3f step=%.3f" % (c.t(), time.monotonic() - st))
            break
    print("COUNTS pingack=%d settingsack=%d ping=%d window_update=%d" % (
        c.counts["pingack"], c.counts["settingsack"], c.counts["ping"], c.counts["window_update"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
