#!/bin/bash
# Regression: when the last bytes of a response are the ones that push the client side past
# buffer_size, ferry pauses reading from the backend with the response already complete.
# It must still finish the exchange at once, not wait for read_timeout.
# A raw backend writes each whole response in one go, so ferry's reads are full 8 KiB
# blocks; with buffer_size at its 4k minimum every read pauses, and the sizes are chosen so
# that the last read brings more than 4k too.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

RDIR=$WORK/responses
mkdir -p "$RDIR"
respond_with() { # SIZE: the next answers carry SIZE body bytes after a 41-byte head
    { printf 'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' "$1"; head -c "$1" /dev/zero | tr '\0' x; } >"$RDIR/response.GET"
}
respond_with 65495
start_rawrecorder "$WORK/rec" -respond "$RDIR" || { fail "start recorder"; finish; }
P=$(pick_port)
# A short read_timeout turns a stall into a cut response instead of a 60 s wait.
make_config "$WORK/ferry.yaml" --port "$P" --backend "$REC_ADDR" --workers 1 \
    --upstream read_timeout=3s --upstream buffer_size=4k
start_ferry "$WORK/ferry.yaml" "$P" || finish

# head + body = 8 * 8192, 7 * 8192 + 6192, 8 * 8192 + 8092 bytes. Three requests on one
# client connection each: a stalled exchange holds the next request until read_timeout
# and loses its upstream connection, although the client already has every byte.
for SIZE in 65495 63495 73587; do
    respond_with "$SIZE"
    out=$(curl -sS --max-time 20 -o /dev/null -o /dev/null -o /dev/null \
          -w '%{http_code} %{size_download} %{num_connects}\n' \
          "http://127.0.0.1:$P/a" "http://127.0.0.1:$P/b" "http://127.0.0.1:$P/c" | tr '\n' ' ')
    log "size $SIZE: $out"
    assert_eq "200 $SIZE 1 200 $SIZE 0 200 $SIZE 0 " "$out" "size $SIZE: three whole responses on one connection"
done
wait_lines "$REC_DIR/requests.log" 9 5
assert_eq 1 "$(cut -d' ' -f1 "$REC_DIR/requests.log" | sort -u | wc -l)" "all nine requests rode one upstream connection"
assert_not_contains "$(cat "$FERRY_LOG")" "read timed out" "no upstream read timeout"
finish
