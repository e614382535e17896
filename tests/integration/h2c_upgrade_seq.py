#!/usr/bin/python3
"""h2c_upgrade_seq.py PORT — h2c by Upgrade (stream 1), then streams 3 and 5 sent one at a
time after stream 1 has ended; prints "SID:STATUS" for each (RST n / closed on failure)."""
import base64, socket, sys
import h2.connection, h2.config, h2.events
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=5)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
settings = c.initiate_upgrade_connection()
s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
          b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
head, rest = buf.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 101"), head
s.sendall(c.data_to_send())
results, pending = [], rest
def run_until(sid):
    global pending
    while True:
        evs = c.receive_data(pending) if pending else []
        pending = b""
        for e in evs:
            if isinstance(e, h2.events.ResponseReceived):
                results.append((e.stream_id, dict(e.headers)[b":status"].decode()))
            elif isinstance(e, h2.events.StreamReset):
                results.append((e.stream_id, "RST %d" % e.error_code))
                if e.stream_id == sid: return
            elif isinstance(e, h2.events.StreamEnded) and e.stream_id == sid:
                s.sendall(c.data_to_send()); return
        s.sendall(c.data_to_send())
        pending = s.recv(65536)
        if not pending: results.append((sid, "closed")); return
run_until(1)
for sid in (3, 5):   # after stream 1 has ended
    c.send_headers(sid, [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "t")], end_stream=True)
    s.sendall(c.data_to_send())
    run_until(sid)
print(" ".join("%d:%s" % r for r in results))
