#!/bin/bash
# HTTP/2 flow control keeps ferry's memory bounded: a 100 MB upload over h2c to a backend
# reading at 8 MB/s, and a 100 MB download over h2/TLS by a client reading at 8 MB/s. ferry's
# RSS grows by < 16 MB (not asserted under ASan) and the bytes arrive intact.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs

SIZE=$((100 * 1024 * 1024))
LIMIT_KB=$((16 * 1024))
TOOL=0
ferry_rss_unreliable && { TOOL=1; log "ferry runs under ASan or valgrind: RSS limits are reported, not asserted"; }
rss_check() { # GROWTH_KB MESSAGE
    if [ "$TOOL" = 1 ]; then log "$2: $1 kB (not asserted under ASan or valgrind)"
    else assert_le "$1" "$LIMIT_KB" "$2"; fi
}

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --workers 1 \
    --tls-cert "$C/localhost.crt:$C/localhost.key" \
    --listener send_timeout=30s --listener client_body_timeout=30s \
    --upstream read_timeout=30s --upstream send_timeout=30s
start_ferry "$WORK/ferry.yaml" "$P" || finish
PC=$(pick_port)
make_config "$WORK/h2c.yaml" --port "$PC" --backend "$B" --workers 1 \
    --listener send_timeout=30s --listener client_body_timeout=30s \
    --upstream read_timeout=30s --upstream send_timeout=30s
start_ferry "$WORK/h2c.yaml" "$PC" || finish
H2C_PID=$FERRY_PID
S=https://127.0.0.1:$P
H=http://127.0.0.1:$PC
TC=(--cacert "$C/ca.crt")

PEAK=0
_sample_until_done() { # FERRY-PID CLIENT-PID
    local r; r=$(ferry_rss_kb "$1"); [ -n "$r" ] && [ "$r" -gt "$PEAK" ] && PEAK=$r
    _exited "$2"
}
# warm up both instances
"${CURL[@]}" --http2 "${TC[@]}" -o /dev/null "$S/big?bytes=1048576"
"${CURL[@]}" --http2-prior-knowledge -o /dev/null --data-binary @<(head -c 1048576 /dev/zero) "$H/sha256"

log "100 MB upload over h2c, backend reading at 8 MB/s"
head -c "$SIZE" /dev/urandom >"$WORK/up.bin"
base=$(ferry_rss_kb "$H2C_PID"); PEAK=$base
curl -sS --max-time 40 --http2-prior-knowledge -o "$WORK/up.body" -w '%{http_version} %{http_code}' \
    --data-binary @"$WORK/up.bin" "$H/slowsink?kbps=8192" >"$WORK/up.out" 2>&1 &
c=$!
wait_for 40 _sample_until_done "$H2C_PID" "$c"
wait "$c"
assert_eq "2 200" "$(cat "$WORK/up.out")" "slow-backend upload over h2c complete"
assert_eq "$SIZE" "$(tr -d '\n' <"$WORK/up.body")" "backend received every byte"
log "ferry RSS $base -> peak $PEAK kB"
rss_check "$(( PEAK - base ))" "RSS growth during a 100 MB h2c upload to a slow backend (kB)"
# the same file at full speed through /sha256: content intact
want="$SIZE $(sha256sum "$WORK/up.bin" | cut -d' ' -f1)"
out=$(curl -sS --max-time 30 --http2-prior-knowledge --data-binary @"$WORK/up.bin" "$H/sha256")
assert_eq "$want" "$out" "100 MB h2c upload checksum"
rm -f "$WORK/up.bin"

log "100 MB download over h2/TLS by a client reading at 8 MB/s"
direct=$(curl -sS --max-time 30 "http://$B/big?bytes=$SIZE" | sha256sum | cut -d' ' -f1)
base=$(ferry_rss_kb "$FERRY_PID"); PEAK=$base
( curl -sS --max-time 40 --http2 "${TC[@]}" --limit-rate 8M -w '%{http_version} %{http_code} %{size_download}' \
    -o >(sha256sum | cut -d' ' -f1 >"$WORK/down.sum") "$S/big?bytes=$SIZE" >"$WORK/down.out" 2>&1 ) &
c=$!
wait_for 40 _sample_until_done "$FERRY_PID" "$c"
wait "$c"
wait_for 5 test -s "$WORK/down.sum"
assert_eq "2 200 $SIZE" "$(cat "$WORK/down.out")" "slow h2 download complete"
assert_eq "$direct" "$(cat "$WORK/down.sum")" "100 MB h2 download checksum"
log "ferry RSS $base -> peak $PEAK kB"
rss_check "$(( PEAK - base ))" "RSS growth during a slow 100 MB h2/TLS download (kB)"
for pid in "${FERRY_PIDS[@]}"; do alive "$pid" || fail "ferry $pid died"; done
finish
