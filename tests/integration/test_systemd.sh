#!/bin/bash
# systemd integration without systemd: sd_notify messages (READY=1 when the port accepts,
# STATUS=, WATCHDOG=1 at WATCHDOG_USEC/2, STOPPING=1 on SIGTERM, exit 0) received on a
# datagram socket of our own; socket activation (LISTEN_FDS/LISTEN_PID) with a launcher that
# binds a socket, puts it on fd 3 and execs ferry in its own pid: ferry adopts it, binds the
# listener that was not passed itself, and closes a passed socket that matches nothing.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

# notifyrecv.py SOCKET OUT PORT — records each datagram as "<monotonic secs> <msg, \n as |>";
# on READY=1 it connects to PORT at once and records READY-PORT-OK or READY-PORT-FAIL.
cat >"$WORK/notifyrecv.py" <<'EOF'
import os, socket, sys, time
path, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(out, "a", buffering=1) as f:
    f.write("LISTENING\n")
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        t = time.monotonic()
        f.write("%.3f %s\n" % (t, msg.replace("\n", "|")))
        if "READY=1" in msg.split("\n"):
            c = socket.socket()
            c.settimeout(1)
            try:
                c.connect(("127.0.0.1", port))
                f.write("READY-PORT-OK\n")
            except OSError as e:
                f.write("READY-PORT-FAIL %s\n" % e)
            c.close()
EOF

# launch.py [--pass HOST:PORT]... -- PROG ARGS — sets WATCHDOG_PID to its own pid, binds and
# listens on each --pass address, moves those sockets to fds 3.., sets LISTEN_FDS and
# LISTEN_PID, then execs PROG (same pid).
cat >"$WORK/launch.py" <<'EOF'
import fcntl, os, socket, sys
args = sys.argv[1:]
addrs = []
while args and args[0] == "--pass":
    addrs.append(args[1]); args = args[2:]
assert args[0] == "--"; args = args[1:]
socks = []
for a in addrs:
    host, port = a.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    socks.append(s)
# Out of the way first: a socket may already sit on fd 3 or 4.
tmp = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100) for s in socks]
for s in socks:
    s.close()
for i, t in enumerate(tmp):
    os.dup2(t, 3 + i, inheritable=True)
    os.close(t)
env = dict(os.environ)
if "WATCHDOG_USEC" in env:
    env["WATCHDOG_PID"] = str(os.getpid())
if socks:
    env["LISTEN_FDS"] = str(len(socks))
    env["LISTEN_PID"] = str(os.getpid())
os.execve(args[0], args, env)
EOF

# start_launched LOGNAME LAUNCH-ARGS... -- FERRY ARGS — like start_ferry, via launch.py.
start_launched() {
    _SEQ=$((_SEQ + 1))
    FERRY_LOG="$WORK/ferry.$_SEQ.log"
    $PY "$WORK/launch.py" "$@" 2>"$FERRY_LOG" >>"$FERRY_LOG" &
    FERRY_PID=$!
    _track "$FERRY_PID"
    FERRY_PIDS+=("$FERRY_PID")
}

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR

# ------------------------------------------------------------------ sd_notify and watchdog
log "sd_notify: READY, STATUS, WATCHDOG, STOPPING"
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --global shutdown_timeout=10s
SOCK="$WORK/notify.sock"
MSGS="$WORK/notify.msgs"
$PY "$WORK/notifyrecv.py" "$SOCK" "$MSGS" "$P" &
_track $!
wait_grep "$MSGS" '^LISTENING' 5 || fail "notify receiver did not start"

NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=400000 start_launched -- "$FERRY" -c "$WORK/ferry.yaml"
if wait_grep "$MSGS" 'READY=1' 10; then
    pass "READY=1 received"
else
    fail "no READY=1 within 10 s"; sed 's/^/        | /' "$FERRY_LOG" | tail -n 20
fi
wait_grep "$MSGS" '^READY-PORT-' 3
assert_contains "$(cat "$MSGS")" "READY-PORT-OK" "the port accepts at the moment READY=1 arrives"
assert_match "$(grep 'READY=1' "$MSGS")" 'STATUS=serving 1 listeners with 2 workers' \
    "READY=1 carries a STATUS= line"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "ferry serves"

# WATCHDOG=1 every 200 ms (WATCHDOG_USEC/2): at least 3 within one second, repeatedly.
sleep 1.6
wd=$(awk '/WATCHDOG=1/ {print $1}' "$MSGS")
nwd=$(printf '%s\n' "$wd" | grep -c .)
assert_ge "$nwd" 6 "WATCHDOG=1 messages within ~1.6 s"
max_in_1s=$(printf '%s\n' "$wd" | $PY -c "
import sys
t=[float(x) for x in sys.stdin.read().split()]
print(max([sum(1 for u in t if s <= u < s + 1.0) for s in t] or [0]))")
assert_ge "$max_in_1s" 3 "WATCHDOG=1 messages within one second"
gaps=$(printf '%s\n' "$wd" | $PY -c "
import sys
t=[float(x) for x in sys.stdin.read().split()]
print(int(1000 * max([b - a for a, b in zip(t, t[1:])] or [9])))")
assert_le "$gaps" 399 "largest gap between WATCHDOG=1 (ms; below WATCHDOG_USEC, 400 ms)"
assert_contains "$(cat "$FERRY_LOG")" "watchdog: WATCHDOG=1 every 200ms" "ferry logs the watchdog interval"

# SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again once the workers switched.
kill -HUP "$FERRY_PID"
_two_ready() { [ "$(grep -c 'READY=1' "$MSGS")" -ge 2 ]; }
if wait_grep "$MSGS" 'RELOADING=1' 5; then pass "RELOADING=1 received after SIGHUP"
else fail "no RELOADING=1 after SIGHUP"; fi
assert_match "$(grep 'RELOADING=1' "$MSGS")" 'MONOTONIC_USEC=[0-9]+' "RELOADING=1 carries MONOTONIC_USEC"
if wait_for 5 _two_ready; then pass "READY=1 again after the reload"
else fail "no READY=1 after the reload"; fi
assert_match "$(grep 'READY=1' "$MSGS" | tail -n1)" 'STATUS=serving generation 2' \
    "the second READY=1 names generation 2"

kill -TERM "$FERRY_PID"
if wait_grep "$MSGS" 'STOPPING=1' 5; then pass "STOPPING=1 received after SIGTERM"
else fail "no STOPPING=1 after SIGTERM"; fi
assert_match "$(grep 'STOPPING=1' "$MSGS")" 'STATUS=stopping: [0-9]+ connections left' \
    "STOPPING=1 carries a STATUS= line"
if wait_for 8 _exited "$FERRY_PID"; then
    wait "$FERRY_PID"; st=$?
    assert_eq 0 "$st" "ferry exit status after SIGTERM"
else
    fail "ferry still running 8 s after SIGTERM"
fi
order=$(grep -nE 'READY=1|STOPPING=1|RELOADING=1' "$MSGS" | sed -E 's/^([0-9]+):.*(READY|STOPPING|RELOADING)=1.*/\2/' | tr '\n' ' ')
assert_eq "READY RELOADING READY STOPPING " "$order" "READY=1, RELOADING=1 and READY=1 around the reload, then STOPPING=1"

# No NOTIFY_SOCKET: nothing of this is active and ferry runs as before.
P0=$(pick_port)
make_config "$WORK/plain.yaml" --port "$P0" --backend "$B"
start_ferry "$WORK/plain.yaml" "$P0" || finish
assert_eq 200 "$(http_status "http://127.0.0.1:$P0/")" "without NOTIFY_SOCKET ferry serves"
assert_not_contains "$(cat "$FERRY_LOG")" "watchdog" "without NOTIFY_SOCKET no watchdog"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "exit status without NOTIFY_SOCKET"

# ------------------------------------------------------------------ socket activation
log "socket activation: LISTEN_FDS=2, LISTEN_PID"
P1=$(pick_port)      # passed and configured: adopted
P2=$(pick_port)      # configured, not passed: bound by ferry
P3=$(pick_port)      # passed, not configured: closed with a warning
while [ "$P2" = "$P1" ]; do P2=$(pick_port); done
while [ "$P3" = "$P1" ] || [ "$P3" = "$P2" ]; do P3=$(pick_port); done
cat >"$WORK/activated.yaml" <<EOF
workers: 2
error_log: stderr
log_level: info
shutdown_timeout: 10s
listeners:
  - name: passed
    listen: "127.0.0.1:$P1"
    routes:
      - upstream: be
  - name: own
    listen: "127.0.0.1:$P2"
    routes:
      - upstream: be
upstreams:
  be:
    servers:
      - address: $B
EOF
start_launched --pass "127.0.0.1:$P1" --pass "127.0.0.1:$P3" -- "$FERRY" -c "$WORK/activated.yaml"
if wait_for 10 _ferry_up "$FERRY_PID" "$P2"; then pass "ferry up with passed sockets"
else fail "ferry did not come up with passed sockets"; sed 's/^/        | /' "$FERRY_LOG" | tail -n 20; fi
ok=0
for _ in $(seq 1 20); do [ "$(http_status "http://127.0.0.1:$P1/")" = 200 ] && ok=$((ok + 1)); done
assert_eq 20 "$ok" "requests on the passed socket (both workers accept from it)"
assert_eq 200 "$(http_status "http://127.0.0.1:$P2/")" "request on the listener ferry bound itself"
flog=$(cat "$FERRY_LOG")
assert_contains "$flog" "listener passed: adopted the socket passed by the service manager for 127.0.0.1:$P1" \
    "ferry logs the adopted address"
assert_not_contains "$flog" "for 127.0.0.1:$P2" "the listener that was not passed is not adopted"
assert_contains "$flog" "passed fd 4 (127.0.0.1:$P3) matches no configured listen address" \
    "ferry warns about the passed socket that matches nothing"
if wait_for 3 port_closed "$P3"; then pass "the unmatched passed socket was closed"
else fail "port $P3 still accepts: the unmatched passed socket was not closed"; fi
# The adopted socket is the launcher's: exactly one listening socket on P1 (no SO_REUSEPORT
# siblings bound by ferry), while P2 has one per worker.
assert_eq 1 "$(ss -Hltn "sport = :$P1" | wc -l)" "listening sockets on the passed port"
assert_eq 2 "$(ss -Hltn "sport = :$P2" | wc -l)" "listening sockets on the port ferry bound (one per worker)"
out=$($PY "$IT_DIR/sockopts.py" "$FERRY_PID" 2>&1); rc=$?
if [ $rc = 2 ]; then log "skipped TCP_NODELAY check: pidfd_getfd is not available here"
else assert_match "$out" "^LISTEN 127.0.0.1:$P1 nodelay=1\$" "adopted socket: TCP_NODELAY set (accepted sockets inherit it)"; fi
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "exit status after SIGTERM with adopted sockets"

# LISTEN_PID of another process: the fds are not ours; ferry ignores them (and here, since the
# launcher's socket holds the port without SO_REUSEPORT, binding it itself fails cleanly).
log "socket activation: LISTEN_PID of another process is ignored"
_SEQ=$((_SEQ + 1))
FERRY_LOG="$WORK/ferry.$_SEQ.log"
cat >"$WORK/launch_wrongpid.py" <<'EOF'
import os, sys
os.environ["LISTEN_PID"] = "1"
os.execv(sys.argv[1], sys.argv[1:])
EOF
LISTEN_FDS=1 $PY "$WORK/launch_wrongpid.py" "$FERRY" -c "$WORK/activated.yaml" >"$FERRY_LOG" 2>&1 3<"$WORK/activated.yaml" &
wp=$!
_track "$wp"
if wait_for 10 _ferry_up "$wp" "$P1"; then pass "ferry bound its listeners itself"
else fail "ferry did not come up"; sed 's/^/        | /' "$FERRY_LOG" | tail -n 20; fi
assert_not_contains "$(cat "$FERRY_LOG")" "adopted" "nothing adopted for another LISTEN_PID"
assert_not_contains "$(cat "$FERRY_LOG")" "socket activation" "no socket activation warnings"
stop_pid "$wp" TERM 10
assert_eq 0 "$STOP_STATUS" "exit status (LISTEN_PID of another process)"

finish
