#!/usr/bin/python3
"""h2backend.py [options] — a frame-level HTTP/2 backend for ferry's upstream tests.

Serves h2c with prior knowledge (or h2 over TLS with ALPN h2, given --cert/--key) on
--listen (default 127.0.0.1:0) and prints "LISTEN host:port" once listening. Every request
is answered 200 with the body "stream <id>" (content-length set; headers x-h2b-conn and
x-h2b-stream name the connection and stream). One thread per connection.

Options:
  --listen HOST:PORT        port 0 picks a free port
  --log FILE                event log, one line per event (default: stderr)
  --cert FILE --key FILE    TLS, ALPN h2 only
  --delay-ms N              answer each request N ms after it arrived complete (default 0),
                            so that streams stay open
  --max-streams N           SETTINGS_MAX_CONCURRENT_STREAMS advertised (default 100); a
                            stream above the limit gets RST_STREAM(REFUSED_STREAM), logged
                            as "excess"
  --refuse K                every Kth stream (counted over all connections) is refused with
                            RST_STREAM(REFUSED_STREAM) as its HEADERS arrive, unprocessed;
                            a :path is refused at most once (its retry goes through)
  --goaway-after N          after the Nth request (complete, not refused) on a connection,
                            send GOAWAY(NO_ERROR) with a Last-Stream-ID chosen by
  --last-stream-id-mode M   processed: the highest stream id received so far (every stream
                            opened before the GOAWAY is answered); lower (default): the id
                            of the Nth request while streams above it are already open —
                            after the Nth request, later streams are held unanswered and
                            the GOAWAY goes out once one is open (or after --goaway-hold-ms,
                            default 300); held streams are dropped.
                            Streams <= Last-Stream-ID are answered; streams above it (also
                            ones opened after the GOAWAY) never are. Once every stream <=
                            Last-Stream-ID is answered, the connection is closed (FIN, then
                            reads are drained until the peer closes, at most 2 s).

Log lines (t = seconds since start):
  open C PEER t=                   connection C accepted (numbered from 1)
  req C SID METHOD PATH len=N sha=HEX8 t=   a request processed (it will be answered)
  refused C SID METHOD PATH t=     RST_STREAM(REFUSED_STREAM) by --refuse, not processed
  excess C SID METHOD PATH t=      RST_STREAM(REFUSED_STREAM) above --max-streams
  dropped C SID METHOD PATH t=     above the GOAWAY's Last-Stream-ID, never answered
  goaway C last=L highest=H t=     GOAWAY sent (H: highest stream id received then)
  close C REASON t=                connection closed (eof, goaway-done, error: ...)
"""
import argparse
import hashlib
import select
import socket
import ssl
import struct
import sys
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.settings import SettingCodes

T0 = time.monotonic()
LOG_LOCK = threading.Lock()
LOG = None
STATE_LOCK = threading.Lock()
CONN_SEQ = 0
STREAM_SEQ = 0
REFUSED_PATHS = set()
ARGS = None


def log(*parts):
    line = " ".join(str(p) for p in parts) + " t=%.3f\n" % (time.monotonic() - T0)
    with LOG_LOCK:
        LOG.write(line)
        LOG.flush()


def goaway_frame(last, code=0):
    return struct.pack(">I", 8)[1:] + bytes([7, 0]) + struct.pack(">III", 0, last & 0x7fffffff,
                                                                    code)


def settings_frame(settings):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in settings.items())
    return struct.pack(">I", len(payload))[1:] + bytes([4, 0]) + struct.pack(">I", 0) + payload


class Stream:
    def __init__(self, sid, headers):
        self.sid = sid
        h = {}
        for k, v in headers:
            k = k.decode("latin-1") if isinstance(k, bytes) else k
            v = v.decode("latin-1") if isinstance(v, bytes) else v
            h.setdefault(k, v)
        self.method = h.get(":method", "?")
        self.path = h.get(":path", "?")
        self.body = hashlib.sha256()
        self.blen = 0
        self.complete = False
        self.answered = False
        self.dead = False      # refused, dropped or reset by the peer


class Conn:
    def __init__(self, sock, num, peer):
        self.sock = sock
        self.num = num
        self.peer = peer
        cfg = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                        validate_inbound_headers=False)
        self.h2 = h2.connection.H2Connection(config=cfg)
        # h2 itself would enforce the advertised limit by failing the whole connection; it is
        # told "unlimited" and the limit we advertise is enforced here with REFUSED_STREAM.
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: 2 ** 31 - 1,
            SettingCodes.MAX_HEADER_LIST_SIZE: 65536})
        self.streams = {}
        self.nreq = 0
        self.due = []              # (time, sid) answers scheduled
        self.pending_data = {}     # sid -> bytes not yet sent for lack of window
        self.last = None           # Last-Stream-ID decided (GOAWAY sent or pending)
        self.want_goaway = False   # processed mode: GOAWAY at the end of this batch
        self.goaway_sent = False
        self.hold_until = None
        self.out = b""

    # ------------------------------------------------------------ request handling

    def open_streams(self):
        return sum(1 for s in self.streams.values() if not s.dead and not s.answered)

    def on_request(self, ev):
        global STREAM_SEQ
        st = Stream(ev.stream_id, ev.headers)
        self.streams[ev.stream_id] = st
        if self.last is not None and ev.stream_id > self.last:
            return                                # held (lower mode) or after GOAWAY
        with STATE_LOCK:
            STREAM_SEQ += 1
            refuse = (ARGS.refuse and STREAM_SEQ % ARGS.refuse == 0
                      and (st.method, st.path) not in REFUSED_PATHS)
            if refuse:
                REFUSED_PATHS.add((st.method, st.path))
        if refuse:
            self.reset(st, "refused")
            return
        if ARGS.max_streams and self.open_streams() > ARGS.max_streams:
            self.reset(st, "excess")

    def reset(self, st, what):
        st.dead = True
        log(what, self.num, st.sid, st.method, st.path)
        try:
            self.h2.reset_stream(st.sid, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
        except h2.exceptions.H2Error:
            pass

    def on_complete(self, st):
        st.complete = True
        if st.dead or (self.last is not None and st.sid > self.last):
            return
        self.nreq += 1
        log("req", self.num, st.sid, st.method, st.path,
            "len=%d" % st.blen, "sha=" + st.body.hexdigest()[:8])
        self.due.append((time.monotonic() + ARGS.delay_ms / 1000.0, st.sid))
        if ARGS.goaway_after and self.nreq == ARGS.goaway_after and self.last is None:
            if ARGS.last_stream_id_mode == "lower":
                self.last = st.sid
                self.hold_until = time.monotonic() + ARGS.goaway_hold_ms / 1000.0
            else:
                self.want_goaway = True   # Last-Stream-ID decided at the end of the batch

    def answer(self, sid):
        st = self.streams.get(sid)
        if st is None or st.dead or st.answered:
            return
        st.answered = True
        body = b"stream %d" % sid
        try:
            self.h2.send_headers(sid, [(b":status", b"200"),
                                       (b"content-type", b"text/plain"),
                                       (b"content-length", b"%d" % len(body)),
                                       (b"x-h2b-conn", b"%d" % self.num),
                                       (b"x-h2b-stream", b"%d" % sid)])
        except h2.exceptions.H2Error:
            st.dead = True                         # reset by the peer meanwhile
            return
        self.pending_data[sid] = body
        self.flush_data()

    def flush_data(self):
        for sid in list(self.pending_data):
            body = self.pending_data[sid]
            try:
                n = min(len(body), self.h2.local_flow_control_window(sid),
                        self.h2.max_outbound_frame_size)
                if n < len(body):
                    if n > 0:
                        self.h2.send_data(sid, body[:n])
                        self.pending_data[sid] = body[n:]
                    continue
                self.h2.send_data(sid, body, end_stream=True)
            except h2.exceptions.H2Error:
                self.streams[sid].dead = True
            del self.pending_data[sid]

    def handle(self, events):
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.on_request(ev)
            elif isinstance(ev, h2.events.DataReceived):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.body.update(ev.data)
                    st.blen += len(ev.data)
                try:
                    self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                except h2.exceptions.H2Error:
                    pass
            elif isinstance(ev, h2.events.StreamEnded):
                st = self.streams.get(ev.stream_id)
                if st is not None and not st.complete:
                    self.on_complete(st)
            elif isinstance(ev, h2.events.StreamReset):
                st = self.streams.get(ev.stream_id)
                if st is not None:
                    st.dead = True
                self.pending_data.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.WindowUpdated):
                self.flush_data()
            elif isinstance(ev, h2.events.ConnectionTerminated):
                raise EOFError("GOAWAY from peer code=%s" % ev.error_code)

    # ------------------------------------------------------------ GOAWAY

    def maybe_goaway(self, now):
        if self.goaway_sent:
            return b""
        if self.want_goaway:
            self.last = self.h2.highest_inbound_stream_id
        elif self.last is None:
            return b""
        else:
            above = [s for s in self.streams.values() if s.sid > self.last]
            if not above and now < self.hold_until:
                return b""
        self.goaway_sent = True
        log("goaway", self.num, "last=%d" % self.last,
            "highest=%d" % self.h2.highest_inbound_stream_id)
        for st in self.streams.values():
            if st.sid > self.last and not st.dead:
                st.dead = True
                log("dropped", self.num, st.sid, st.method, st.path)
        return goaway_frame(self.last)

    def drop_new(self):
        """After the GOAWAY: streams opened above Last-Stream-ID are dropped."""
        for st in self.streams.values():
            if self.goaway_sent and st.sid > self.last and not st.dead:
                st.dead = True
                log("dropped", self.num, st.sid, st.method, st.path)

    def done(self):
        if not self.goaway_sent or self.pending_data or self.due:
            return False
        return all(s.dead or s.answered for s in self.streams.values() if s.sid <= self.last)

    # ------------------------------------------------------------ loop

    def send(self, extra=b""):
        data = self.h2.data_to_send() + extra
        if data:
            self.sock.sendall(data)

    def run(self):
        self.h2.initiate_connection()
        self.h2.data_to_send()   # replaced by our own SETTINGS (advertised limit)
        s = {SettingCodes.MAX_HEADER_LIST_SIZE: 65536}
        if ARGS.max_streams:
            s[SettingCodes.MAX_CONCURRENT_STREAMS] = ARGS.max_streams
        self.sock.sendall(settings_frame(s))
        while True:
            now = time.monotonic()
            deadlines = [t for t, _ in self.due]
            if self.last is not None and not self.goaway_sent and self.hold_until:
                deadlines.append(self.hold_until)
            timeout = max(0.0, min(deadlines) - now) if deadlines else 1.0
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending:
                r, _, _ = select.select([self.sock], [], [], timeout)
            if pending or r:
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError("eof")
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.send()
                    raise EOFError("protocol error: %s" % e)
                self.handle(events)
            now = time.monotonic()
            ready = [sid for t, sid in self.due if t <= now]
            self.due = [(t, sid) for t, sid in self.due if t > now]
            for sid in sorted(ready):
                self.answer(sid)
            self.flush_data()
            self.drop_new()
            self.send(self.maybe_goaway(now))
            if self.done():
                return "goaway-done"
            # Forget finished streams (answered in full, or refused/dropped/reset).
            for sid in [sid for sid, st in self.streams.items()
                        if st.dead or (st.answered and sid not in self.pending_data)]:
                del self.streams[sid]


def serve_conn(sock, peer):
    global CONN_SEQ
    with STATE_LOCK:
        CONN_SEQ += 1
        num = CONN_SEQ
    log("open", num, "%s:%d" % peer[:2])
    reason = "?"
    try:
        if ARGS.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(ARGS.cert, ARGS.key)
            ctx.set_alpn_protocols(["h2"])
            sock.settimeout(10)
            sock = ctx.wrap_socket(sock, server_side=True)
            sock.settimeout(None)
            if sock.selected_alpn_protocol() != "h2":
                raise EOFError("ALPN %r, not h2" % sock.selected_alpn_protocol())
        c = Conn(sock, num, peer)
        reason = c.run()
        # Graceful close: FIN, then drain until the peer closes (bounded).
        sock.shutdown(socket.SHUT_WR)
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            r, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
            if r and not sock.recv(65536):
                break
    except EOFError as e:
        reason = str(e)
    except (OSError, ssl.SSLError, h2.exceptions.H2Error) as e:
        reason = "error: %s" % e
    finally:
        log("close", num, reason)
        try:
            sock.close()
        except OSError:
            pass


def main():
    global ARGS, LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--log")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--max-streams", type=int, default=100)
    ap.add_argument("--refuse", type=int, default=0)
    ap.add_argument("--goaway-after", type=int, default=0)
    ap.add_argument("--last-stream-id-mode", choices=["processed", "lower"], default="lower")
    ap.add_argument("--goaway-hold-ms", type=int, default=300)
    ARGS = ap.parse_args()
    LOG = open(ARGS.log, "a") if ARGS.log else sys.stderr

    host, _, port = ARGS.listen.rpartition(":")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(128)
    print("LISTEN %s:%d" % ls.getsockname()[:2], flush=True)
    while True:
        s, peer = ls.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve_conn, args=(s, peer), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
