#!/usr/bin/python3
"""tlsbackend.py — an HTTP/1.1 backend over TLS (Python's ssl, i.e. OpenSSL) that shapes its
records and its closes, and tells how each connection ended.

    tlsbackend.py --listen HOST:PORT --cert CRT --key KEY --log FILE

Prints "LISTEN HOST:PORT" once listening. Keep-alive; every request is answered by path:
    /records?n=N   N bytes of body, each byte in a TLS record of its own, written back to
                   back after the head (one burst: the proxy reads many records at once)
    /notify        "bye" (Content-Length 3), then close_notify and the TCP close at once,
                   with no "Connection: close": the close arrives on the response's heels
    anything else  "ok"
The log gets a line per connection:
    open C
    req C METHOD PATH
    end C close_notify        the peer ended the TLS stream properly
    end C eof                 TCP closed without close_notify
    end C error REASON
    end C sent_close_notify   we ended it (/notify)
"""
import argparse
import socket
import ssl
import sys
import threading

LOCK = threading.Lock()


def log(path, line):
    with LOCK, open(path, "a") as f:
        f.write(line + "\n")


def read_request(conn, buf):
    """-> (method, path, rest of buf) or None at the stream's end (raises on errors)."""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    method, path, _ = lines[0].decode("latin-1").split(" ", 2)
    length = 0
    for ln in lines[1:]:
        name, _, value = ln.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buf) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buf += data
    return method, path, buf[length:]


def serve(conn, cid, logpath):
    buf = b""
    try:
        while True:
            r = read_request(conn, buf)
            if r is None:
                log(logpath, "end %d close_notify" % cid)
                return
            method, path, buf = r
            log(logpath, "req %d %s %s" % (cid, method, path))
            if path.startswith("/records"):
                n = int(path.partition("n=")[2] or "100")
                # corked: the records leave in full segments, many per read at the proxy
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                for _ in range(n):
                    conn.sendall(b"x")
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            elif path.startswith("/notify"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye")
                raw = conn.unwrap()   # sends close_notify; does not wait for the peer's
                raw.close()
                log(logpath, "end %d sent_close_notify" % cid)
                return
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except ssl.SSLError as e:
        if isinstance(e, ssl.SSLEOFError) or getattr(e, "reason", "") == "UNEXPECTED_EOF_WHILE_READING":
            log(logpath, "end %d eof" % cid)
        else:
            log(logpath, "end %d error %s" % (cid, e.reason or e))
    except OSError as e:
        log(logpath, "end %d error %s" % (cid, getattr(e, "reason", None) or e))
    finally:
        try:
            conn.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    # Python sets OP_IGNORE_UNEXPECTED_EOF, which reads a TCP close without close_notify as
    # a clean end: without it such a close raises SSLEOFError, which is what we log.
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    host, _, port = a.listen.rpartition(":")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(64)
    print("LISTEN %s:%d" % ls.getsockname(), flush=True)
    cid = 0
    while True:
        s, _ = ls.accept()
        cid += 1
        # No Nagle: a close_notify after a response leaves at once, not after the ACK.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            # suppress_ragged_eofs=False: a TCP close without close_notify raises
            # SSLEOFError instead of reading as a clean end.
            conn = ctx.wrap_socket(s, server_side=True, suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError) as e:
            log(a.log, "end %d error handshake %s" % (cid, e))
            s.close()
            continue
        log(a.log, "open %d" % cid)
        threading.Thread(target=serve, args=(conn, cid, a.log), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
