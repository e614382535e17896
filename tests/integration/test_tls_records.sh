#!/bin/bash
# ferry's own TLS reads and writes on client connections (sockio over OpenSSL, read-ahead):
# a burst of records read in one go must all be served although no socket event announces
# the ones OpenSSL holds; uploads that pause reading at the input watermark resume and lose
# nothing; a slow reader makes SSL_write wait and retry; a TLS 1.3 KeyUpdate is answered
# mid-connection; connections end with close_notify; h2 over TLS multiplexes under load.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
TR=$IT_DIR/tlsrecords.py

start_backend || { fail "start backend"; finish; }
B=$BACKEND_ADDR
P=$(pick_port)
make_config "$WORK/ferry.yaml" --port "$P" --backend "$B" --workers 1 --log-level debug \
    --listener keepalive_timeout=2s \
    --tls-cert "$C/localhost.crt:$C/localhost.key" --tls 'alpn=[h2, http/1.1]'
start_ferry "$WORK/ferry.yaml" "$P" || finish
URL=https://localhost:$P
CURLTLS=(--cacert "$C/ca.crt" --resolve "localhost:$P:127.0.0.1")

log "300 pipelined requests of 1 KiB, one TLS record each, written back to back"
out=$(timeout 30 $PY "$TR" burst "$P" "$C/ca.crt" 300 2>&1)
assert_eq "responses 300" "$out" "every request of the burst answered on one connection"

log "uploads over TLS (HTTP/1.1): fast, and into a slow backend (reading pauses at the watermark)"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$WORK/up.bin"
want=$(sha256sum <"$WORK/up.bin" | cut -d' ' -f1)
out=$(curl -sS --max-time 30 --http1.1 "${CURLTLS[@]}" --data-binary @"$WORK/up.bin" "$URL/sha256" 2>&1)
assert_eq "16777216 $want" "$out" "16 MiB upload arrives whole and unchanged"
out=$(curl -sS --max-time 30 --http1.1 "${CURLTLS[@]}" --data-binary @"$WORK/up.bin" \
      "$URL/slowsink?kbps=16384" 2>&1)
assert_eq "16777216" "$out" "16 MiB upload into a backend reading 16 MiB/s arrives whole"
out=$(curl -sS --max-time 30 --http2 "${CURLTLS[@]}" --data-binary @"$WORK/up.bin" "$URL/sha256" 2>&1)
assert_eq "16777216 $want" "$out" "16 MiB upload over h2/TLS arrives whole and unchanged"

log "a slow reader: 8 MiB read 64 KiB at a time with a pause after each"
N=$((8 * 1024 * 1024))
want=$(curl -sS --max-time 30 "http://$B/big?bytes=$N" | sha256sum | cut -d' ' -f1)
out=$(timeout 60 $PY "$TR" slowread "$P" "$C/ca.crt" "/big?bytes=$N" 65536 5 2>&1)
assert_eq "body $N $want HTTP/1.1 200 OK" "$out" "the response arrives whole and unchanged"
out=$(curl -sS --max-time 30 --http2 "${CURLTLS[@]}" --limit-rate 4M "$URL/big?bytes=$N" | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$out" "the same over h2/TLS at 4 MiB/s"

log "TLS 1.3 KeyUpdate (update_requested) between two requests on one connection"
out=$(timeout 30 $PY "$TR" keyupdate "$P" "$C/ca.crt" 2>&1)
assert_match "$out" "^responses 2" "both requests answered across the key update"

log "close_notify: answered to the client's, and sent when ferry closes an idle connection"
out=$(timeout 30 $PY "$TR" closenotify "$P" "$C/ca.crt" client 2>&1)
assert_eq "close_notify" "$out" "the client's close_notify is answered with ferry's"
out=$(timeout 30 $PY "$TR" closenotify "$P" "$C/ca.crt" server 2>&1)
assert_eq "close_notify" "$out" "keepalive_timeout ends the connection with close_notify"

log "h2 over TLS: 2,000 requests on 4 connections, 10 streams each"
out=$(timeout 60 h2load -n 2000 -c 4 -m 10 "https://127.0.0.1:$P/" 2>&1)
assert_match "$out" "2000 succeeded, 0 failed, 0 errored" "h2load: all succeeded"

assert_eq "" "$(grep -E 'TLS connection failed|ERROR|error' "$FERRY_LOG" | head -3)" \
    "ferry logged no TLS or other error"
assert_eq 1 "$(alive "$FERRY_PID" && echo 1)" "ferry still running"
finish
