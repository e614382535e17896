#!/bin/bash
# h2load through ferry, over h2c and over h2/TLS: 20,000 requests on 10 connections with 32
# concurrent streams each — no failed or errored request, every status 2xx, and upstream
# connections are reused (the backend accepts a few hundred connections at most, not one per
# request; keepalive_requests is raised: h2load does not reconnect after a GOAWAY). Then one
# long-lived connection: 60,000 streams on it leave ferry's RSS where it was (nghttp2 kept
# every closed stream of a connection until it ended: ~320 bytes per request).
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/h2c.yaml" --port "$P" --backend "$B" --upstream keepalive=512 --listener keepalive_requests=100000
start_ferry "$WORK/h2c.yaml" "$P" || finish
PT=$(pick_port)
make_config "$WORK/tls.yaml" --port "$PT" --backend "$B" --upstream keepalive=512 --listener keepalive_requests=100000 \
    --tls-cert "$C/localhost.crt:$C/localhost.key"
start_ferry "$WORK/tls.yaml" "$PT" || finish

N=20000
# h2load_check NAME URL — runs h2load, checks its summary and the backend's accepted count.
h2load_check() {
    local name=$1 url=$2 out acc0 acc1 line
    acc0=$(backend_stat "$B" accepted)
    out=$(timeout 90 h2load -n $N -c 10 -m 32 -T 20 -N 20 "$url" 2>&1)
    acc1=$(backend_stat "$B" accepted)
    printf '%s\n' "$out" | grep -E '^(finished|requests|status codes|traffic|Application protocol)' | sed 's/^/#   /'
    line=$(grep -E '^requests:' <<<"$out")
    assert_match "$line" "^requests: $N total, $N started, $N done, $N succeeded, 0 failed, 0 errored, 0 timeout" "$name: all $N requests succeeded"
    assert_match "$out" "status codes: $N 2xx, 0 3xx, 0 4xx, 0 5xx" "$name: all statuses 2xx"
    assert_match "$out" "Application protocol: h2c?$" "$name: h2 used"
    log "$name: backend accepted $((acc1 - acc0)) connections for $N requests"
    assert_le "$((acc1 - acc0))" 400 "$name: upstream connections opened (reuse holds)"
}
h2load_check h2c "http://127.0.0.1:$P/"
h2load_check tls "https://127.0.0.1:$PT/"
# The same over HTTP/1.1 ("--h1") through the TLS listener: ALPN http/1.1 still works under load.
out=$(timeout 60 h2load --h1 -n 2000 -c 10 "https://127.0.0.1:$PT/" 2>&1)
assert_match "$(grep -E '^requests:' <<<"$out")" '^requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored' "TLS http/1.1 under load"

# One connection, many streams: memory per connection must not grow with the requests it served.
if ferry_rss_unreliable; then
    log "ASan build or valgrind: RSS says nothing, long-lived connection memory check skipped"
else
    FP=${FERRY_PIDS[0]}
    out=$(timeout 60 h2load -n 5000 -c 1 -m 10 "http://127.0.0.1:$P/" 2>&1)   # warm: pools, caches
    rss0=$(ferry_rss_kb "$FP")
    out=$(timeout 120 h2load -n 60000 -c 1 -m 10 "http://127.0.0.1:$P/" 2>&1)
    rss1=$(ferry_rss_kb "$FP")
    assert_match "$(grep -E '^requests:' <<<"$out")" '^requests: 60000 total, 60000 started, 60000 done, 60000 succeeded' "60,000 streams on one connection"
    log "RSS ${rss0} kB before, ${rss1} kB after 60,000 streams on one connection"
    assert_le "$((rss1 - rss0))" 4096 "RSS growth over 60,000 streams on one connection (kB)"
fi
assert_eq 200 "$(http_status "http://127.0.0.1:$P/" --http2-prior-knowledge)" "ferry (h2c) still serving"
for pid in "${FERRY_PIDS[@]}"; do alive "$pid" || fail "ferry $pid died"; done
finish
