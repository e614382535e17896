#!/bin/bash
# HTTP/2 connection limits: keepalive_requests (streams per connection, then GOAWAY with the
# last stream served), keepalive_timeout (an idle h2 connection gets GOAWAY and is closed),
# the SETTINGS ferry sends (h2_max_concurrent_streams, h2_initial_window_size,
# h2_max_frame_size, h2_max_header_list_size) and the concurrent stream limit enforced.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
PA=$(pick_port)
make_config "$WORK/a.yaml" --port "$PA" --backend "$B" --listener keepalive_requests=5
start_ferry "$WORK/a.yaml" "$PA" || finish
PB=$(pick_port)
make_config "$WORK/b.yaml" --port "$PB" --backend "$B" --listener keepalive_timeout=1s
start_ferry "$WORK/b.yaml" "$PB" || finish
PC=$(pick_port)
make_config "$WORK/c.yaml" --port "$PC" --backend "$B" --listener h2_max_concurrent_streams=7 \
    --listener h2_initial_window_size=1048576 --listener h2_max_frame_size=32768 \
    --listener h2_max_header_list_size=16k
start_ferry "$WORK/c.yaml" "$PC" || finish

log "keepalive_requests=5: sequential streams"
out=$($H2PEER --timeout 5 "127.0.0.1:$PA" seq:5:/ waitgoaway:3 waitclose:3)
printf '%s\n' "$out" | grep -E '^(RESP|RST|GOAWAY|CLOSED|RESET|OPEN|TIMEOUT)' | sed 's/^/#   /'
assert_eq 5 "$(grep -c '^RESP [0-9]* 200' <<<"$out")" "5 streams answered 200"
assert_match "$out" '^GOAWAY last=9 code=NO_ERROR' "GOAWAY NO_ERROR with last-stream-id 9 (the 5th stream)"
assert_match "$out" '^(CLOSED|RESET) ' "connection closed after the GOAWAY"
g=$(grep -n '^GOAWAY' <<<"$out" | head -n1 | cut -d: -f1)
e=$(grep -n '^END 9 ' <<<"$out" | head -n1 | cut -d: -f1)
[ -n "$g" ] && [ -n "$e" ] && [ "$g" -gt "$e" ] && pass "5th response complete before the GOAWAY was read" || \
    assert_match "$out" '^END 9 ' "5th response completes"

log "keepalive_requests=5: 8 streams opened at once"
acc0=$(backend_stat "$B" requests)
steps=(); for i in $(seq 1 8); do steps+=("get:/sleep?ms=200"); done
out=$($H2PEER --timeout 5 "127.0.0.1:$PA" waitsettings "${steps[@]}" waitclose:5)
acc1=$(backend_stat "$B" requests)
printf '%s\n' "$out" | grep -E '^(RESP|RST|GOAWAY|CLOSED|RESET|OPEN)' | sed 's/^/#   /'
assert_eq "1 3 5 7 9" "$(grep -E '^RESP [0-9]+ 200' <<<"$out" | awk '{print $2}' | sort -n | xargs)" "streams 1..9 answered 200"
assert_match "$out" '^GOAWAY last=9 ' "GOAWAY last-stream-id 9"
assert_no_match "$out" '^RESP (11|13|15) ' "no stream past the 5th answered"
assert_eq 5 "$((acc1 - acc0))" "backend got exactly 5 requests"

log "keepalive_timeout=1s on h2"
out=$($H2PEER --timeout 5 "127.0.0.1:$PB" get:/ wait waitclose:6)
printf '%s\n' "$out" | grep -E '^(END|GOAWAY|CLOSED|RESET|OPEN)' | sed 's/^/#   /'
tend=$(sed -n 's/^END 1 t=//p' <<<"$out")
tg=$(sed -n 's/^GOAWAY .* t=\([0-9.]*\) .*/\1/p' <<<"$out" | head -n1)
tc=$(sed -n 's/^\(CLOSED\|RESET\) t=\([0-9.]*\) .*/\2/p' <<<"$out")
assert_match "$out" '^GOAWAY last=1 code=NO_ERROR' "idle connection gets GOAWAY NO_ERROR last-stream-id 1"
if [ -n "$tg" ] && [ -n "$tend" ]; then
    assert_between "$($PY -c "print($tg - $tend)")" 0.9 3.0 "GOAWAY after the idle timeout (s)"
fi
if [ -n "$tc" ] && [ -n "$tend" ]; then
    assert_between "$($PY -c "print($tc - $tend)")" 0.9 3.0 "connection closed after the idle timeout (s)"
else
    fail "idle h2 connection not closed within 6 s"
fi
out=$($H2PEER --timeout 6 "127.0.0.1:$PB" get:/sleep?ms=2500 wait)
assert_match "$out" '^RESP 1 200' "a stream open for 2.5 s is not cut by the 1 s idle timeout"
assert_no_match "$out" '^GOAWAY' "no GOAWAY while a stream is open"

log "SETTINGS and the concurrent stream limit"
out=$($H2PEER "127.0.0.1:$PC" waitsettings)
s=$(grep '^SETTINGS ' <<<"$out" | head -n1)
log "$s"
assert_match "$s" ' MAX_CONCURRENT_STREAMS=7( |$)' "SETTINGS_MAX_CONCURRENT_STREAMS = configured 7"
assert_match "$s" ' INITIAL_WINDOW_SIZE=1048576( |$)' "SETTINGS_INITIAL_WINDOW_SIZE = configured 1 MiB"
assert_match "$s" ' MAX_FRAME_SIZE=32768( |$)' "SETTINGS_MAX_FRAME_SIZE = configured 32768"
assert_match "$s" ' MAX_HEADER_LIST_SIZE=16384( |$)' "SETTINGS_MAX_HEADER_LIST_SIZE = configured 16k"
out=$(timeout 10 nghttp -nv "http://127.0.0.1:$PC/" 2>&1)
assert_match "$out" 'SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):7' "nghttp -v shows MAX_CONCURRENT_STREAMS 7"
steps=(); for i in $(seq 1 10); do steps+=("get:/sleep?ms=500"); done
out=$($H2PEER --timeout 5 "127.0.0.1:$PC" waitsettings read:0.2 "${steps[@]}" waitall get:/ wait)
printf '%s\n' "$out" | grep -E '^(RESP|RST|GOAWAY)' | sed 's/^/#   /'
assert_eq 7 "$(grep -E '^RESP ([0-9]|1[0-9]) 200' <<<"$out" | wc -l)" "7 of 10 concurrent streams served"
assert_eq 3 "$(grep -cE '^RST [0-9]+ (REFUSED_STREAM|PROTOCOL_ERROR)' <<<"$out")" "3 streams over the limit refused with a stream error (RFC 9113 5.1.2: REFUSED_STREAM or PROTOCOL_ERROR RST_STREAM)"
assert_match "$out" '^RESP 21 200' "connection usable afterwards"
assert_no_match "$out" '^GOAWAY' "no connection error (GOAWAY) for exceeding the stream limit (RFC 9113 5.1.2)"
# A header list over h2_max_header_list_size (16k): 431 or a stream reset, never the backend.
acc0=$(backend_stat "$B" requests)
out=$($H2PEER --timeout 5 "127.0.0.1:$PC" waitsettings "hdr:x-big:$(head -c 20000 /dev/zero | tr '\0' a)" get:/big-header wait get:/ wait)
acc1=$(backend_stat "$B" requests)
assert_match "$out" '^RESP 1 431' "20 kB header list answered 431 Request Header Fields Too Large"
assert_eq 0 "$((acc1 - acc0 - $(grep -c '^RESP 3 200' <<<"$out")))" "oversized request not forwarded"

log "keepalive_time=1s over h2: the first stream after the 1 s mark is served, then GOAWAY"
PD=$(pick_port)
make_config "$WORK/d.yaml" --port "$PD" --backend "$B" --listener keepalive_time=1s
start_ferry "$WORK/d.yaml" "$PD" || finish
# sleep models the connection's age here; it synchronises nothing.
out=$($H2PEER --timeout 6 "127.0.0.1:$PD" get:/ wait sleep:1200 get:/ wait waitclose:4)
printf '%s\n' "$out" | grep -E '^(RESP|GOAWAY|CLOSED|RESET)' | sed 's/^/#   /'
assert_match "$out" '^RESP 1 200' "stream 1 (before the mark) served"
assert_match "$out" '^RESP 3 200' "stream 3 (after the mark) served"
assert_match "$out" '^GOAWAY last=3 code=NO_ERROR' "GOAWAY naming stream 3 as the last"
assert_match "$out" '^CLOSED' "connection closed after its last stream"
for pid in "${FERRY_PIDS[@]}"; do alive "$pid" || fail "ferry $pid died"; done
finish
