#!/bin/bash
# Operations signals. SIGUSR1 reopens error_log and access_log files (logrotate moves them
# away, then signals): new lines go to new files, none to the moved ones, and ferry serves
# throughout. SIGHUP only warns (reload is not implemented) and ferry keeps running. SIGQUIT
# stops at once (no shutdown_timeout wait, in-flight requests cut) with exit status 0.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
ELOG="$WORK/error.log"
ALOG="$WORK/access.log"
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --access-log "$ALOG" \
    --global "error_log=$ELOG" --global shutdown_timeout=30s
start_ferry "$WORK/ferry.yaml" "$P" || finish
URL=http://127.0.0.1:$P

# ------------------------------------------------------------------ SIGUSR1
assert_eq 200 "$(http_status "$URL/?r=before-rotate")" "request before the rotation"
wait_grep "$ALOG" 'before-rotate' 5
assert_contains "$(cat "$ALOG")" "r=before-rotate" "access log has the first request"
assert_contains "$(cat "$ELOG")" "started" "error log has the start line"

mv "$ALOG" "$ALOG.1"
mv "$ELOG" "$ELOG.1"
# Until the signal, ferry goes on writing to the moved files (as logrotate expects).
assert_eq 200 "$(http_status "$URL/?r=between")" "request between the move and the signal"
wait_grep "$ALOG.1" 'between' 5
assert_contains "$(cat "$ALOG.1")" "r=between" "the moved access log gets lines until SIGUSR1"

kill -USR1 "$FERRY_PID"
if wait_grep "$ELOG" 'log files reopened: 2' 5; then pass "error log recreated, reopen logged in it"
else fail "no new error log with 'log files reopened: 2'"; ls -l "$WORK" | sed 's/^/        | /'; fi
assert_eq 640 "$(stat -c %a "$ELOG" 2>/dev/null)" "mode of the new error log"
assert_eq 200 "$(http_status "$URL/?r=after-rotate")" "request after SIGUSR1"
if wait_grep "$ALOG" 'after-rotate' 5; then pass "new access log created with the new request"
else fail "new access log has no /after-rotate line"; fi
assert_eq 640 "$(stat -c %a "$ALOG" 2>/dev/null)" "mode of the new access log"
assert_not_contains "$(cat "$ALOG.1")" "after-rotate" "the moved access log gets no new lines"
assert_not_contains "$(cat "$ELOG.1")" "log files reopened" "the moved error log gets no line after the reopen"
assert_not_contains "$(cat "$ALOG")" "r=between" "the new access log has only new lines"

# Many requests from parallel clients while reopening repeatedly: nothing lost, no errors.
"$BIN/loadclient" -url "$URL/" -c 8 -n 400 -deadline 30s >"$WORK/load.out" 2>&1 &
lp=$!
_track "$lp"
for _ in 1 2 3 4 5; do
    kill -USR1 "$FERRY_PID"; sleep 0.1
done
wait "$lp"
assert_match "$(cat "$WORK/load.out")" 'ok=400 err=0' "400 requests while reopening the logs 5 times"
alive "$FERRY_PID" && pass "ferry alive after repeated SIGUSR1" || fail "ferry died on SIGUSR1"
_alog_total() { [ "$(cat "$ALOG" "$ALOG.1" | wc -l)" -ge "$1" ]; }
wait_for 5 _alog_total 403
assert_eq 403 "$(cat "$ALOG" "$ALOG.1" | wc -l)" "every request logged exactly once (old + new file)"

# A reopen that fails (directory made unwritable is not possible as root: replace the path
# by a directory) keeps the old descriptor and says so.
mv "$ALOG" "$ALOG.2"
mkdir "$ALOG"
kill -USR1 "$FERRY_PID"
if wait_grep "$ELOG" 'access_log: cannot reopen' 5; then pass "a failed reopen is logged"
else fail "no error logged for a failed reopen"; fi
assert_eq 200 "$(http_status "$URL/?r=after-failed-reopen")" "ferry serves after a failed reopen"
wait_grep "$ALOG.2" 'after-failed-reopen' 5
assert_contains "$(cat "$ALOG.2")" "r=after-failed-reopen" "the old access log is kept after a failed reopen"
rmdir "$ALOG"

# ------------------------------------------------------------------ SIGHUP
# (Reload itself is test_reload's: here, that the access log goes on after it.)
kill -HUP "$FERRY_PID"
if wait_grep "$ELOG" 'reload: generation 2 serving' 5
then pass "SIGHUP reloads"; else fail "no reload logged after SIGHUP"; fi
alive "$FERRY_PID" && pass "ferry keeps running after SIGHUP" || fail "ferry exited on SIGHUP"
assert_eq 200 "$(http_status "$URL/?r=after-hup")" "ferry serves after SIGHUP"
wait_grep "$ALOG" 'after-hup' 5
assert_contains "$(cat "$ALOG")" "r=after-hup" "requests after the reload are logged to the access log"

# ------------------------------------------------------------------ SIGQUIT
_backend_has() { [ "$(backend_stat "$B" requests)" -ge "$1" ]; }
before=$(backend_stat "$B" requests)
curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$URL/sleep?ms=10000" >"$WORK/inflight.status" 2>/dev/null &
inflight=$!
_track "$inflight"
wait_for 5 _backend_has $((before + 1)) || fail "in-flight request did not reach the backend"
t0=$(now_ms)
kill -QUIT "$FERRY_PID"
if wait_for 3 _exited "$FERRY_PID"; then
    wait "$FERRY_PID"; st=$?
    took=$(( $(now_ms) - t0 ))
    assert_eq 0 "$st" "exit status after SIGQUIT"
    assert_le "$took" 2000 "SIGQUIT exits at once despite a 10 s request and shutdown_timeout 30s (ms)"
else
    fail "ferry still running 3 s after SIGQUIT"
fi
wait "$inflight"
assert_ne 200 "$(cat "$WORK/inflight.status")" "the in-flight request was cut by SIGQUIT"
assert_contains "$(cat "$ELOG")" "SIGQUIT" "SIGQUIT logged"
finish
