#!/bin/bash
# SIGHUP reload with warm pools.
#  1. Ten reloads under steady keep-alive load (HTTP/1.1 upstream, then h2c upstream; one
#     worker, so that the warm-up and the load need the same connections): no
#     failed request, and the backend accepts no new connection across the reloads: the
#     pooled upstream connections survive them (a new nginx worker generation could not).
#  2. A reload with an invalid file: still serving, the error logged with line:column,
#     /status and /metrics report the failure, the old behaviour intact.
#  3. A reload that adds a listener, removes one, moves an upstream to another server and
#     lowers a listener's keepalive_requests: each takes effect; a long request in flight on
#     the removed listener completes; the old server's pooled connections are closed.
#  4. A burst of SIGHUPs: ferry stays up and ends on the newest file.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

AP=$(pick_port)
ADMIN=(--global "admin={listen: \"127.0.0.1:$AP\"}")

reloads_ok() { "${CURL[@]}" "http://127.0.0.1:$AP/metrics" | awk '/^ferry_config_reloads_total\{result="ok"\}/ {print $2}'; }
reloads_failed() { "${CURL[@]}" "http://127.0.0.1:$AP/metrics" | awk '/^ferry_config_reloads_total\{result="failed"\}/ {print $2}'; }
_reloads_ge() { [ "$(reloads_ok)" -ge "$1" ] 2>/dev/null; }
_failed_ge() { [ "$(reloads_failed)" -ge "$1" ] 2>/dev/null; }

# hup_and_wait N — SIGHUP, then wait until N reloads are reported done.
hup_and_wait() {
    kill -HUP "$FERRY_PID"
    wait_for 10 _reloads_ge "$1" || fail "reload $1 not reported done within 10 s"
}

# ---------------------------------------------------------------- 1. reloads under load
steady_load() { # LABEL UPSTREAM_ARGS...
    local label=$1; shift
    local p; p=$(pick_port)
    make_config "$WORK/$label.yaml" --port "$p" --backend "$B" --workers 1 "${ADMIN[@]}" \
        --upstream keepalive=64 --upstream keepalive_requests=0 --listener keepalive_requests=0 "$@"
    start_ferry "$WORK/$label.yaml" "$p" || return 1
    # Warm the pools: every worker gets the connections this concurrency needs.
    local out
    out=$("$BIN/loadclient" -url "http://127.0.0.1:$p/" -c 20 -n 2000 -deadline 60s 2>&1)
    assert_match "$out" "ok=2000 err=0" "$label: warm-up load"
    local before; before=$(backend_stat "$B" accepted)
    "$BIN/loadclient" -url "http://127.0.0.1:$p/" -c 20 -n 30000 -deadline 90s >"$WORK/$label.load" 2>&1 &
    local lpid=$!
    _track $lpid
    local i
    for i in $(seq 1 10); do
        hup_and_wait "$i"
    done
    wait_for 90 _exited "$lpid" || fail "$label: load did not finish"
    wait "$lpid"
    out=$(cat "$WORK/$label.load")
    log "$label: $(echo $out)"
    assert_match "$out" "ok=30000 err=0" "$label: 30000 requests during 10 reloads, none failed"
    local after; after=$(backend_stat "$B" accepted)
    # minus the /stats connection of the second call
    assert_eq 0 $(( after - before - 1 )) "$label: backend accepted no new connection across 10 reloads"
    assert_eq 10 "$(reloads_ok)" "$label: ferry_config_reloads_total{result=\"ok\"}"
    local st; st=$("${CURL[@]}" "http://127.0.0.1:$AP/status")
    assert_eq 11 "$(json_get "$st" 'j["generation"]')" "$label: /status generation after 10 reloads"
    assert_eq ok "$(json_get "$st" 'j["last_reload"]')" "$label: /status last_reload"
    stop_pid "$FERRY_PID" TERM 10
    assert_eq 0 "$STOP_STATUS" "$label: ferry exits 0"
}

log "1a. ten reloads under load, HTTP/1.1 upstream"
start_backend -id one || finish
B=$BACKEND_ADDR
steady_load h1
stop_pid "$BACKEND_PID"

log "1b. ten reloads under load, h2c upstream"
start_backend -h2c -id one || finish
B=$BACKEND_ADDR
steady_load h2c --upstream protocol=h2c
stop_pid "$BACKEND_PID"

# ---------------------------------------------------------------- 2. invalid file
log "2. reload with an invalid file"
start_backend -id one || finish
B1=$BACKEND_ADDR; B1PID=$BACKEND_PID
P=$(pick_port)
make_config "$WORK/bad.yaml" --port "$P" --backend "$B1" --workers 2 "${ADMIN[@]}"
start_ferry "$WORK/bad.yaml" "$P" || finish
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "serving before the bad reload"
cp "$WORK/bad.yaml" "$WORK/bad.yaml.orig"
printf 'upstreams:\n  be: {servers: [{address: "127.0.0.1:notaport"}]}\n' >>"$WORK/bad.yaml"
kill -HUP "$FERRY_PID"
wait_for 10 _failed_ge 1 || fail "failed reload not reported"
assert_match "$(grep 'reload failed' "$FERRY_LOG")" "reload failed: $WORK/bad.yaml:[0-9]+:[0-9]+: " \
    "the error names file:line:column"
assert_match "$(grep 'reload failed' "$FERRY_LOG")" "still serving generation 1" "the log says the old generation serves"
alive "$FERRY_PID" && pass "ferry still running" || fail "ferry exited after a bad reload"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "still serving after the bad reload"
st=$("${CURL[@]}" "http://127.0.0.1:$AP/status")
assert_eq failed "$(json_get "$st" 'j["last_reload"]')" "/status last_reload failed"
assert_match "$(json_get "$st" 'j["last_reload_error"]')" 'bad.yaml:[0-9]+:[0-9]+:' "/status carries the error"
assert_eq 1 "$(json_get "$st" 'j["generation"]')" "/status generation unchanged"
# The file fixed: the next reload works.
cp "$WORK/bad.yaml.orig" "$WORK/bad.yaml"
hup_and_wait 1
assert_eq ok "$(json_get "$("${CURL[@]}" "http://127.0.0.1:$AP/status")" 'j["last_reload"]')" \
    "a good reload after the bad one: last_reload ok"
stop_pid "$FERRY_PID" TERM 10

# ---------------------------------------------------------------- 3. what changes
log "3. add and remove listeners, move the upstream, lower keepalive_requests"
start_backend -id two || finish
B2=$BACKEND_ADDR
P1=$(pick_port); P2=$(pick_port); P3=$(pick_port)
cat >"$WORK/change.yaml" <<EOF
workers: 2
error_log: stderr
admin: {listen: "127.0.0.1:$AP"}
listeners:
  - name: web
    listen: "127.0.0.1:$P1"
    keepalive_requests: 1000
    routes: [{upstream: be}]
  - name: old
    listen: "127.0.0.1:$P2"
    routes: [{upstream: be}]
upstreams:
  be:
    servers: [{address: "$B1"}]
EOF
start_ferry "$WORK/change.yaml" "$P1" || finish
id=$("${CURL[@]}" -D - -o /dev/null "http://127.0.0.1:$P1/" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-backend-id" {print $2}')
assert_eq one "$id" "before: web routes to server one"
assert_eq 200 "$(http_status "http://127.0.0.1:$P2/")" "before: listener old serves"
b1_active=$(backend_stat "$B1" active)
assert_ge "$b1_active" 2 "server one has pooled connections from ferry (plus /stats)"
# A long request in flight on the listener about to be removed.
"${CURL[@]}" -o "$WORK/long.out" -w '%{http_code}' "http://127.0.0.1:$P2/sleep?ms=2500" >"$WORK/long.code" &
LPID=$!
_track $LPID
_b1_busy() { [ "$(backend_stat "$B1" requests)" -ge "$1" ]; }
wait_for 5 _b1_busy $(( $(backend_stat "$B1" requests) + 1 )) || true
cat >"$WORK/change.yaml" <<EOF
workers: 2
error_log: stderr
admin: {listen: "127.0.0.1:$AP"}
listeners:
  - name: web
    listen: "127.0.0.1:$P1"
    keepalive_requests: 2
    routes: [{upstream: be}]
  - name: new
    listen: "127.0.0.1:$P3"
    routes: [{upstream: be}]
upstreams:
  be:
    servers: [{address: "$B2"}]
EOF
hup_and_wait 1
wait_for 5 port_closed "$P2" && pass "removed listener stops accepting" || fail "listener old still accepts"
wait_for 5 port_open "$P3" && pass "added listener accepts" || fail "listener new does not accept"
assert_eq 200 "$(http_status "http://127.0.0.1:$P3/")" "added listener serves"
id=$("${CURL[@]}" -D - -o /dev/null "http://127.0.0.1:$P1/" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-backend-id" {print $2}')
assert_eq two "$id" "after: web routes to the new server"
# keepalive_requests 2 for new connections: three requests on one curl need two connections.
n=$("${CURL[@]}" -v "http://127.0.0.1:$P1/" "http://127.0.0.1:$P1/" "http://127.0.0.1:$P1/" 2>&1 | grep -c '^\* Connected to')
assert_eq 2 "$n" "after: keepalive_requests 2 applies to new connections (3 requests, 2 connections)"
wait_for 10 _exited "$LPID" || fail "long request did not finish"
wait "$LPID"
assert_eq 200 "$(cat "$WORK/long.code")" "the long request in flight on the removed listener completed"
assert_eq slept "$(cat "$WORK/long.out")" "... with its whole body"
_b1_drained() { [ "$(backend_stat "$B1" active)" -le 1 ]; }   # only the /stats connection
wait_for 10 _b1_drained && pass "server one (removed) has no pooled connection left" \
    || fail "server one still has $(backend_stat "$B1" active) connections"
assert_contains "$(cat "$FERRY_LOG")" "no longer configured; draining" "ferry logs the retired pool"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0 after the reloads"

# ---------------------------------------------------------------- 4. burst
log "4. a burst of SIGHUPs"
P=$(pick_port)
make_config "$WORK/burst.yaml" --port "$P" --backend "$B2" --workers 2 "${ADMIN[@]}"
start_ferry "$WORK/burst.yaml" "$P" || finish
for i in $(seq 1 20); do kill -HUP "$FERRY_PID"; done
_settled() { [ "$(json_get "$("${CURL[@]}" "http://127.0.0.1:$AP/status")" 'j["generation"]')" -ge 2 ] && \
             ! grep -q 'reloading again' "$FERRY_LOG" || \
             [ "$(grep -c 'generation [0-9]* serving' "$FERRY_LOG")" -ge "$(grep -c 'reloading again' "$FERRY_LOG")" ]; }
wait_for 10 _settled || true
alive "$FERRY_PID" && pass "ferry survives 20 SIGHUPs in a row" || fail "ferry died in a SIGHUP burst"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "serving after the burst"
gen=$(json_get "$("${CURL[@]}" "http://127.0.0.1:$AP/status")" 'j["generation"]')
assert_ge "$gen" 2 "the burst was applied (coalesced: generation $gen)"
assert_le "$gen" 21 "at most one reload per SIGHUP"
stop_pid "$FERRY_PID" TERM 10
assert_eq 0 "$STOP_STATUS" "ferry exits 0"
finish
