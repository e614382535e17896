#!/usr/bin/python3
"""idclient.py — sequential GETs over keep-alive connections; one line per request:

    I STATUS BACKEND_ID MS EPOCH_MS

(I from 0, BACKEND_ID the X-Backend-Id response header or "-", MS milliseconds since the
start, EPOCH_MS the wall clock when the response was read; a request that failed at the
socket level prints status 000).

  idclient.py --url http://127.0.0.1:P/ -n N [--header 'X-User: user-{i}'] [--per-conn K]
              [--until-id ID [--seconds S]] [--gap-ms G]

--header (repeatable) is formatted with {i}; --per-conn opens a new connection every K
requests (default 100, so that several of ferry's workers are used); --until-id keeps going
(-n then bounds nothing) until a response comes from ID, at most --seconds (default 10; exit
status 1 if it never came); --gap-ms waits between requests.
"""
import argparse
import http.client
import sys
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("-n", type=int, default=1)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--per-conn", type=int, default=100)
    ap.add_argument("--until-id")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--gap-ms", type=float, default=0)
    a = ap.parse_args()

    u = urllib.parse.urlsplit(a.url)
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    t0 = time.monotonic()
    conn = None
    i = 0
    out = sys.stdout
    while True:
        if a.until_id is None and i >= a.n:
            break
        if a.until_id is not None and time.monotonic() - t0 > a.seconds:
            return 1
        if conn is None or (a.per_conn and i % a.per_conn == 0):
            if conn:
                conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        hdrs = {}
        for h in a.header:
            k, _, v = h.format(i=i).partition(":")
            hdrs[k.strip()] = v.strip()
        try:
            conn.request("GET", path, headers=hdrs)
            r = conn.getresponse()
            r.read()
            status, bid = r.status, r.getheader("X-Backend-Id", "-")
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            status, bid = 0, "-"
            conn.close()
            conn = None
        out.write("%d %03d %s %d %d\n" % (i, status, bid, (time.monotonic() - t0) * 1000,
                                          time.time() * 1000))
        i += 1
        if a.until_id is not None and bid == a.until_id:
            break
        if a.gap_ms:
            time.sleep(a.gap_ms / 1000.0)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
