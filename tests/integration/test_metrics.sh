#!/bin/bash
# The admin listener: /metrics in Prometheus text format (checked by promtool), /status
# JSON, /healthz. Counters move as the scenario says: under keep-alive load, "opened" stays
# flat while "reused" grows; keep-alive limits show up as close reasons.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
P=$(pick_port)
A=$(pick_port)
cat >"$WORK/ferry.yaml" <<YAML
workers: 2
error_log: stderr
admin:
  listen: 127.0.0.1:$A
listeners:
  - name: web
    listen: "127.0.0.1:$P"
    routes: [{upstream: be}]
  - name: short
    listen: "127.0.0.1:$((P + 1))"
    keepalive_requests: 3
    routes: [{upstream: be}]
upstreams:
  be:
    servers: [{address: "$BACKEND_ADDR"}]
    keepalive: 64
YAML
start_ferry "$WORK/ferry.yaml" "$P" || finish
ADMIN=http://127.0.0.1:$A
SRV="upstream=\"be\",server=\"$BACKEND_ADDR\""

metric() { # NAME{LABELS} — the value of one sample in a fresh scrape
    curl -sS --max-time 5 "$ADMIN/metrics" | awk -v k="$1" 'index($0, k " ") == 1 { print $2 }'
}

assert_eq "ok" "$(curl -sS --max-time 5 "$ADMIN/healthz")" "/healthz answers ok"
assert_eq "404" "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$ADMIN/nope")" "unknown admin path: 404"
assert_eq "405" "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$ADMIN/metrics")" "admin is read-only: POST refused"

out=$("$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 10 -n 2000 -deadline 60s 2>&1)
log "first load: $(echo $out)"
opened1=$(metric "ferry_upstream_connections_opened_total{$SRV}")
reused1=$(metric "ferry_upstream_connections_reused_total{$SRV}")
log "after 2000 requests: opened=$opened1 reused=$reused1"
assert_le "$opened1" 20 "upstream connections opened stay few (10 clients)"
assert_eq 2000 "$((opened1 + reused1))" "every request counted as a new or a reused connection"
assert_eq 2000 "$(metric "ferry_listener_requests_total{listener=\"web\",protocol=\"http1\"}")" "listener request count"
assert_eq 2000 "$(metric "ferry_upstream_responses_total{$SRV,code=\"2xx\"}")" "2xx responses counted"
assert_eq 2000 "$(metric "ferry_upstream_response_seconds_count{$SRV}")" "response-time histogram count"

out=$("$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 10 -n 2000 -deadline 60s 2>&1)
opened2=$(metric "ferry_upstream_connections_opened_total{$SRV}")
reused2=$(metric "ferry_upstream_connections_reused_total{$SRV}")
log "after 4000 requests: opened=$opened2 reused=$reused2"
# Pools are per worker and new client connections may land on workers in another proportion:
# at most one new upstream connection per client connection, however many requests.
assert_le "$((opened2 - opened1))" 10 "opened stays flat under steady keep-alive load (<= 10 for 2000 requests)"
assert_ge "$((reused2 - reused1))" 1990 "reused grows with the requests"

# keepalive_requests=3 on the second listener: 3 requests, then the client connection closes.
curl -sS --max-time 10 -o /dev/null -o /dev/null -o /dev/null \
    "http://127.0.0.1:$((P + 1))/a" "http://127.0.0.1:$((P + 1))/b" "http://127.0.0.1:$((P + 1))/c"
_closed_by_limit() { [ "$(metric "ferry_listener_connections_closed_total{listener=\"short\",reason=\"keepalive_requests\"}")" = 1 ]; }
wait_for 5 _closed_by_limit || fail "keepalive_requests close not counted"
pass "close by keepalive_requests counted on its listener"

curl -sS --max-time 5 "$ADMIN/metrics" >"$WORK/metrics.txt"
if command -v promtool >/dev/null; then
    if out=$(promtool check metrics <"$WORK/metrics.txt" 2>&1); then pass "promtool check metrics accepts /metrics"
    else fail "promtool check metrics: $out"; fi
else
    fail "promtool is not installed (contrib/install-deps.sh installs prometheus)"
fi

st=$(curl -sS --max-time 5 "$ADMIN/status")
assert_eq "$(metric "ferry_upstream_connections_opened_total{$SRV}") $(metric "ferry_upstream_connections_reused_total{$SRV}")" "$(json_get "$st" 'str(j["upstreams"][0]["servers"][0]["opened"]) + " " + str(j["upstreams"][0]["servers"][0]["reused"])')" "/status agrees with /metrics"
assert_eq "1 2" "$(json_get "$st" 'str(j["generation"]) + " " + str(j["workers"])')" "/status: generation and workers"
finish
