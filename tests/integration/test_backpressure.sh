#!/bin/bash
# Bodies are streamed with bounded buffers: a slow client downloading 32 MB and a slow backend
# reading a 32 MB upload must not make ferry's resident memory grow by anything like the body
# size (ferry must push back instead of buffering).
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

SIZE=$((32 * 1024 * 1024))
LIMIT_KB=$((12 * 1024))    # allowed RSS growth: well under the 32 MB body

# An AddressSanitizer build keeps freed memory in quarantine: RSS says nothing there.
ASAN=0
if grep -qa __asan_init "$FERRY" 2>/dev/null; then
    ASAN=1
    log "ferry is built with AddressSanitizer: RSS limits are reported, not asserted"
fi
rss_check() { # GROWTH_KB MESSAGE
    if [ "$ASAN" = 1 ]; then log "$2: $1 kB (not asserted under ASan)"
    else assert_le "$1" "$LIMIT_KB" "$2"; fi
}

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --workers 1 \
    --listener send_timeout=30s --listener client_body_timeout=30s --upstream read_timeout=30s --upstream send_timeout=30s
start_ferry "$WORK/ferry.yaml" "$P" || finish
URL=http://127.0.0.1:$P

rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$FERRY_PID/status" 2>/dev/null; }
PEAK=0
_sample_until_done() { # PID — samples ferry's RSS while PID runs
    local r
    r=$(rss_kb); [ -n "$r" ] && [ "$r" -gt "$PEAK" ] && PEAK=$r
    _exited "$1"
}

# warm up (pools, buffers) before taking the baseline
"${CURL[@]}" -o /dev/null "$URL/big?bytes=1048576"
"${CURL[@]}" -o /dev/null --data-binary @<(head -c 1048576 /dev/zero) "$URL/sha256"
base=$(rss_kb)
log "ferry RSS baseline: ${base} kB"

log "slow client: 32 MB download at 8 MB/s"
curl -sS --max-time 30 --limit-rate 8M -o /dev/null -w '%{http_code} %{size_download}' "$URL/big?bytes=$SIZE" >"$WORK/down.out" 2>&1 &
c=$!
PEAK=$base
wait_for 30 _sample_until_done "$c"
wait "$c"
assert_eq "200 $SIZE" "$(cat "$WORK/down.out")" "slow download complete"
log "peak RSS during download: $PEAK kB"
rss_check "$(( PEAK - base ))" "RSS growth during a slow 32 MB download (kB)"

log "slow backend: 32 MB upload read at 8 MB/s"
head -c "$SIZE" /dev/zero >"$WORK/up.bin"
curl -sS --max-time 30 -o "$WORK/up.body" -w '%{http_code}' --data-binary @"$WORK/up.bin" "$URL/slowsink?kbps=8192" >"$WORK/up.out" 2>&1 &
c=$!
base=$(rss_kb)
PEAK=$base
wait_for 30 _sample_until_done "$c"
wait "$c"
assert_eq "200" "$(cat "$WORK/up.out")" "slow upload complete"
assert_eq "$SIZE" "$(tr -d '\n' <"$WORK/up.body")" "backend received every byte"
log "peak RSS during upload: $PEAK kB"
rss_check "$(( PEAK - base ))" "RSS growth during a 32 MB upload to a slow backend (kB)"
rm -f "$WORK/up.bin"
finish
