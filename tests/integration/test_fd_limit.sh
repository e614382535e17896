#!/bin/bash
# Out of descriptors (ulimit -n 64): accept() fails with EMFILE. ferry must not spin on the
# still-readable listening socket nor flood its log: it pauses accepting, logs once, keeps
# serving the connections it has, and accepts again as soon as descriptors free up.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$BACKEND_ADDR" --workers 1
# The limit applies to ferry alone: a wrapper lowers it, then becomes ferry (same pid).
REAL_FERRY=$FERRY
printf '#!/bin/sh\nulimit -n 64\nexec "%s" "$@"\n' "$REAL_FERRY" >"$WORK/ferry-64"
chmod +x "$WORK/ferry-64"
FERRY=$WORK/ferry-64
start_ferry "$WORK/ferry.yaml" "$P" || finish

cat >"$WORK/flood.py" <<'PY'
import os, socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctl = sys.stdin
# A keep-alive client that was connected before the flood.
keep = socket.create_connection(("127.0.0.1", port), timeout=5)
def get(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"hello"):
        b = s.recv(4096)
        if not b:
            return "closed"
        data += b
    return data.split(b"\r\n", 1)[0].decode()
print("before", get(keep), flush=True)
flood = []
for _ in range(n):
    s = socket.socket()
    s.settimeout(5)
    s.connect(("127.0.0.1", port))   # completes in the kernel backlog even when not accepted
    flood.append(s)
print("flooded", len(flood), flush=True)
ctl.readline()                          # the test samples ferry meanwhile
print("during", get(keep), flush=True)
for s in flood:
    s.close()
print("released", flush=True)
ctl.readline()
PY
mkfifo "$WORK/ctl"
/usr/bin/python3 "$WORK/flood.py" "$P" 120 <"$WORK/ctl" >"$WORK/flood.out" 2>&1 &
fl=$!
_track "$fl"
exec 9>"$WORK/ctl"
_flooded() { grep -q '^flooded' "$WORK/flood.out"; }
wait_for 10 _flooded || fail "flood did not complete: $(cat "$WORK/flood.out")"
_starved() { grep -q 'not accepting new connections' "$FERRY_LOG"; }
wait_for 10 _starved || fail "no EMFILE log line"

cpu() { awk '{ print $14 + $15 }' "/proc/$FERRY_PID/stat"; }
c0=$(cpu); t0=$(now_ms)
sleep 1   # measures CPU over a fixed second; synchronises nothing
c1=$(cpu); t1=$(now_ms)
log "ferry CPU while starved: $((c1 - c0)) ticks in $((t1 - t0)) ms"
assert_le "$((c1 - c0))" 20 "no busy loop on EMFILE (< 0.2 s CPU in 1 s)"
assert_eq 1 "$(grep -c 'not accepting new connections' "$FERRY_LOG")" "EMFILE logged once, not per attempt"

echo go >&9
_released() { grep -q '^released' "$WORK/flood.out"; }
wait_for 10 _released || fail "flood client stuck: $(cat "$WORK/flood.out")"
assert_eq "before HTTP/1.1 200 OK" "$(grep '^before' "$WORK/flood.out")" "keep-alive client served before the flood"
assert_eq "during HTTP/1.1 200 OK" "$(grep '^during' "$WORK/flood.out")" "existing connection still served while out of descriptors"

_serves() { [ "$(curl -sS --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/" 2>/dev/null)" = 200 ]; }
wait_for 10 _serves || fail "ferry did not accept again after descriptors were freed"
pass "new connections accepted again once descriptors are free"
assert_match "$(cat "$FERRY_LOG")" 'descriptors available again' "recovery logged"
echo done >&9
exec 9>&-
wait "$fl" 2>/dev/null
finish
