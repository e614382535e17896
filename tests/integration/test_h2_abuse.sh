#!/bin/bash
# HTTP/2 abuse at the frame level (h2peer.py): rapid reset, forbidden request fields,
# content-length that lies, CONTINUATION flood, PING and SETTINGS floods, malformed frames,
# and h2 -> HTTP/1.1 downgrades (CR/LF/NUL in values and pseudo-headers, :path with spaces,
# invalid :authority, content-length forms). Each gets the error the RFC requires (where it
# requires one), nothing invalid reaches the backend (a raw recorder, whose bytes are parsed
# strictly by recparse.py), what is accepted arrives as one normalised HTTP/1.1 request, and
# ferry keeps serving other clients.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_rawrecorder "$WORK/rec" || { fail "start rawrecorder"; finish; }
P=$(pick_port)
# keepalive_requests is raised so that the per-connection stream cap (1000 by default) does not
# end the rapid-reset connection before the flood protection has to.
make_config "$WORK/ferry.yaml" --port "$P" --backend "$REC_ADDR" --workers 1 --listener keepalive_requests=1000000
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P
PEER=($H2PEER --timeout 5)

# still_serving MESSAGE — a fresh h2 client gets a 200.
still_serving() {
    local s; s=$("${CURL[@]}" --http2-prior-knowledge -o /dev/null -w '%{http_code}' "http://$F/alive" 2>/dev/null)
    assert_eq 200 "$s" "$1: a new client is served"
    alive "$FERRY_PID" || fail "$1: ferry died"
}
# goaway_code OUTPUT — code of the first GOAWAY ("" if none)
goaway_code() { sed -n 's/^GOAWAY last=[0-9]* code=\([A-Z_0-9x]*\) .*/\1/p' <<<"$1" | head -n1; }
closed() { grep -qE '^(CLOSED|RESET) ' <<<"$1"; }
rec_has() { grep -qF -- "$1" "$REC_DIR/requests.log" 2>/dev/null; }

log "(a) rapid reset: 5000 x HEADERS+RST_STREAM while another client is served"
# the normal client: one connection, 40 requests ~50 ms apart
steps=(); for i in $(seq 1 40); do steps+=("get:/normal-$i" wait sleep:50); done
"${PEER[@]}" "$F" "${steps[@]}" >"$WORK/normal.out" 2>&1 &
normal=$!
_track "$normal"
wait_grep "$WORK/normal.out" '^END 1 ' 5 || fail "normal client did not start"
t0=$(now_ms)
out=$("${PEER[@]}" "$F" waitsettings rapidreset:5000 waitclose:10)
log "rapid reset client: $(grep -E '^(RAPIDRESET|GOAWAY|CLOSED|RESET|OPEN|SENDFAIL)' <<<"$out" | xargs)"
code=$(goaway_code "$out")
# (nghttp2's own reset rate limit answers INTERNAL_ERROR; the spec wants the abuse named.)
assert_match "$code" '^(ENHANCE_YOUR_CALM|PROTOCOL_ERROR)$' "rapid reset answered with GOAWAY ENHANCE_YOUR_CALM or PROTOCOL_ERROR"
closed "$out" && pass "rapid reset connection closed ($(( $(now_ms) - t0 )) ms)" || fail "rapid reset connection still open after 10 s"
wait_for 15 _exited "$normal"
nout=$(cat "$WORK/normal.out")
assert_eq 40 "$(grep -c '^RESP [0-9]* 200' <<<"$nout")" "normal client: 40 x 200 during the flood"
assert_no_match "$nout" '^(GOAWAY|RST|CLOSED|RESET)' "normal client's connection undisturbed"
rr=$(grep -c ' GET / HTTP/1.1$' "$REC_DIR/requests.log" 2>/dev/null)
log "requests of the rapid-reset client that reached the backend: ${rr:-0} of 5000; backend connections so far: $(ls "$REC_DIR"/conn-*.bin 2>/dev/null | wc -l)"
still_serving "after rapid reset"

log "(b) connection-specific / invalid request fields: RST_STREAM PROTOCOL_ERROR, not forwarded"
i=0
for h in 'connection:keep-alive' 'transfer-encoding:chunked' 'keep-alive:timeout=5' 'proxy-connection:keep-alive' \
         'upgrade:websocket' 'te:gzip' 'X-Upper:yes' 'x-bad value:1' 'x-ctl:a\x01b'; do
    i=$((i + 1))
    hv=$(printf '%b' "$h")
    out=$("${PEER[@]}" "$F" "hdr:$hv" "get:/bad-field-$i" wait get:/after-bad wait)
    assert_match "$out" '^RST 1 PROTOCOL_ERROR' "field '$h': stream reset PROTOCOL_ERROR (RFC 9113 8.2.1/8.2.2)"
    assert_match "$out" '^RESP 3 200' "field '$h': the connection stays usable (stream error only)"
    rec_has "/bad-field-$i " && fail "field '$h': request reached the backend" || pass "field '$h': not forwarded"
done
out=$("${PEER[@]}" "$F" hdr:te:trailers get:/te-trailers wait)
assert_match "$out" '^RESP 1 200' "te: trailers is allowed"
# pseudo-header problems (RFC 9113 8.3): missing :path, pseudo after regular, unknown pseudo
out=$("${PEER[@]}" "$F" hdr:x-a:1 hdr::path:/late get:/pseudo-late wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "pseudo-header after a regular field: PROTOCOL_ERROR"
out=$("${PEER[@]}" "$F" hdr::foo:bar get:/pseudo-unknown wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "unknown pseudo-header: PROTOCOL_ERROR"
rec_has "/pseudo-" && fail "malformed pseudo-headers reached the backend" || pass "malformed pseudo-headers not forwarded"

log "(c) content-length: 10 with 5 bytes of DATA"
out=$("${PEER[@]}" "$F" hdr:content-length:10 post:/cl-short:5 wait get:/after-cl wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "content-length mismatch: stream reset PROTOCOL_ERROR (RFC 9113 8.1.1)"
assert_no_match "$out" '^RESP 1 ' "no response for the lying request"
out2=$("${PEER[@]}" "$F" hdr:content-length:3 post:/cl-long:5 wait)
assert_match "$out2" '^RST 1 PROTOCOL_ERROR' "more DATA than content-length: stream reset PROTOCOL_ERROR"
for n in 1 2 3; do "${CURL[@]}" --http2-prior-knowledge -o /dev/null "http://$F/after-cl-$n"; done
wait_for 3 rec_has "/after-cl-3 "
# No backend connection may carry a complete 10-byte body for /cl-short (nor a later request
# swallowed as its body): count the bytes that follow its head on its connection.
got=$($PY - "$REC_DIR" <<'PY'
import glob, sys
best = -1
for f in glob.glob(sys.argv[1] + "/conn-*.bin"):
    d = open(f, "rb").read()
    for marker in (b"/cl-short ", b"/cl-long "):
        i = d.find(marker)
        if i < 0:
            continue
        j = d.find(b"\r\n\r\n", i)
        rest = len(d) - (j + 4) if j >= 0 else 0
        lim = 10 if marker == b"/cl-short " else 3
        best = max(best, 1 if rest >= lim else 0)
print(best)
PY
)
assert_match "$got" '^(-1|0)$' "the backend never got a complete body for a lying content-length (-1: head not forwarded)"
for n in 1 2 3; do rec_has "/after-cl-$n " || fail "later request /after-cl-$n did not reach the backend as a request"; done
still_serving "after content-length mismatch"

log "(d) CONTINUATION flood: 2000 x 1 KiB without END_HEADERS"
t0=$(now_ms)
out=$("${PEER[@]}" "$F" waitsettings contflood:2000 waitclose:5)
log "$(grep -E '^(CONTFLOOD|GOAWAY|CLOSED|RESET|OPEN|SENDFAIL)' <<<"$out" | xargs)"
code=$(goaway_code "$out")
assert_ne "" "$code" "CONTINUATION flood: GOAWAY sent"
assert_ne "NO_ERROR" "$code" "CONTINUATION flood: GOAWAY is an error ($code)"
closed "$out" && pass "CONTINUATION flood: connection closed ($(( $(now_ms) - t0 )) ms)" || fail "CONTINUATION flood: connection still open"
still_serving "after CONTINUATION flood"

flood() { # NAME STEP
    local t0 rss0 rss1 out code
    rss0=$(ferry_rss_kb "$FERRY_PID"); t0=$(now_ms)
    # A small receive buffer on the flooding client: the ACKs back up in ferry, not in the kernel.
    out=$("${PEER[@]}" --rcvbuf 32768 "$F" waitsettings "$2" waitclose:10)
    rss1=$(ferry_rss_kb "$FERRY_PID")
    log "$1: $(grep -E '^(PINGFLOOD|SETTINGSFLOOD|GOAWAY|CLOSED|RESET|OPEN|SENDFAIL|COUNTS)' <<<"$out" | xargs) rss ${rss0}->${rss1} kB"
    code=$(goaway_code "$out")
    assert_eq "ENHANCE_YOUR_CALM" "$code" "$1: GOAWAY ENHANCE_YOUR_CALM"
    closed "$out" && pass "$1: connection closed ($(( $(now_ms) - t0 )) ms)" || fail "$1: connection still open 10 s later"
    if ferry_is_asan; then log "$1: RSS not asserted under ASan"
    else assert_le "$(( rss1 - rss0 ))" 32768 "$1: ferry RSS growth (kB)"; fi
    still_serving "after $1"
}
log "(e) PING and SETTINGS floods, nothing read meanwhile"
flood "PING flood" pingflood:1000000
flood "SETTINGS flood" settingsflood:2000000

log "(f) malformed frames: connection errors"
conn_err() { # NAME EXPECTED-CODE STEPS...
    local name=$1 want=$2 out; shift 2
    out=$("${PEER[@]}" "$F" waitsettings "$@" waitclose:5)
    assert_eq "$want" "$(goaway_code "$out")" "$name: GOAWAY $want"
    closed "$out" && pass "$name: connection closed" || fail "$name: connection still open"
}
conn_err "DATA on stream 0 (RFC 9113 6.1)" PROTOCOL_ERROR data0
conn_err "HEADERS with Pad Length >= payload (RFC 9113 6.2)" PROTOCOL_ERROR badpad
conn_err "HEADERS on an even stream id (RFC 9113 5.1.1)" PROTOCOL_ERROR hdrs:2
conn_err "stream id going backwards (RFC 9113 5.1.1)" PROTOCOL_ERROR hdrs:5 hdrs:3
conn_err "PING of length 7 (RFC 9113 6.7)" FRAME_SIZE_ERROR raw:0000070600000000000000000000000000
conn_err "WINDOW_UPDATE of 0 on the connection (RFC 9113 6.9)" PROTOCOL_ERROR raw:000004080000000000000000000000
conn_err "SETTINGS_ENABLE_PUSH=2 (RFC 9113 6.5.2)" PROTOCOL_ERROR settings:ENABLE_PUSH=2
conn_err "SETTINGS_INITIAL_WINDOW_SIZE=2^31 (RFC 9113 6.5.2)" FLOW_CONTROL_ERROR settings:INITIAL_WINDOW_SIZE=2147483648
conn_err "SETTINGS ACK with a payload (RFC 9113 6.5)" FRAME_SIZE_ERROR raw:000006040100000000000300000064
conn_err "CONTINUATION without HEADERS (RFC 9113 6.10)" PROTOCOL_ERROR raw:000000090400000001
still_serving "after malformed frames"

log "(g) h2 -> HTTP/1.1 downgrade: malformed requests are stream errors and never reach the backend"
RECPARSE="$PY $IT_DIR/recparse.py"
raw_has() { grep -qaF -- "$1" "$REC_DIR"/conn-*.bin 2>/dev/null; }
# name || marker (unique; found in the backend's bytes if anything of the request got there;
# "~/path": the head may have been forwarded before the DATA, never a complete request)
# || h2peer steps, " ;; " separated, the last one opening the stream. RFC 9113 8.1.1 / 8.2 /
# 8.3: malformed, so RST_STREAM PROTOCOL_ERROR (a 400 response is accepted too).
H2_REJECT=(
":path with a space || h2-path-space || pseudo::path|/h2-path-space x ;; get:/"
":path with CRLF and a field after it || h2-path-crlf || pseudo::path|/h2-path-crlf HTTP/1.1\r\nX-Injected: 1 ;; get:/"
":path with a bare LF || h2-path-lf || pseudo::path|/h2-path-lf\nX-Injected: 1 ;; get:/"
":path with a bare CR || h2-path-cr || pseudo::path|/h2-path-cr\rX ;; get:/"
":path with NUL || h2-path-nul || pseudo::path|/h2-path-nul\x00x ;; get:/"
":path with a tab || h2-path-tab || pseudo::path|/h2-path-tab\tx ;; get:/"
":path with DEL || h2-path-del || pseudo::path|/h2-path-del\x7f ;; get:/"
":path with an 8-bit byte (not a valid HTTP/1.1 request-target) || h2-path-8bit || pseudo::path|/h2-path-8bit\xff ;; get:/"
":path not starting with / || h2-path-noslash || pseudo::path|h2-path-noslash ;; get:/"
":path in absolute form || h2-path-absolute || pseudo::path|http://b.test/h2-path-absolute ;; get:/"
":path * with GET || h2-path-asterisk || hdr:x-case:h2-path-asterisk ;; pseudo::path|* ;; get:/"
":path empty || h2-path-empty || hdr:x-case:h2-path-empty ;; pseudo::path| ;; get:/"
":path missing || h2-path-missing || hdr:x-case:h2-path-missing ;; pseudo::path ;; get:/"
":path twice || h2-path-twice || hdrx::path|/h2-path-twice ;; get:/h2-path-twice-first"
":method with a space || h2-method-space || pseudo::method|GE T ;; get:/h2-method-space"
":method with CRLF || h2-method-crlf || pseudo::method|GET /x HTTP/1.1\r\nX-Injected: 1\r\n ;; get:/h2-method-crlf"
":method with NUL || h2-method-nul || pseudo::method|GET\x00 ;; get:/h2-method-nul"
":authority with CRLF || h2-auth-crlf || pseudo::authority|a\r\nX-Injected: 1 ;; get:/h2-auth-crlf"
":authority with NUL || h2-auth-nul || pseudo::authority|a\x00b ;; get:/h2-auth-nul"
":authority with a space || h2-auth-space || pseudo::authority|a b ;; get:/h2-auth-space"
":authority with a slash || h2-auth-slash || pseudo::authority|a/b ;; get:/h2-auth-slash"
":authority with a quote || h2-auth-quote || pseudo::authority|a\"b ;; get:/h2-auth-quote"
":authority empty || h2-auth-empty || pseudo::authority| ;; get:/h2-auth-empty"
":authority with userinfo (RFC 9113 8.3.1) || h2-auth-userinfo || pseudo::authority|u@b.test ;; get:/h2-auth-userinfo"
":authority with a comma (refused in a Host header) || h2-auth-comma || pseudo::authority|a,b ;; get:/h2-auth-comma"
":authority with a non-numeric port (refused in a Host header) || h2-auth-port || pseudo::authority|a:b ;; get:/h2-auth-port"
"no :authority and no host || h2-auth-none || pseudo::authority ;; get:/h2-auth-none"
"host with a space, no :authority || h2-host-space || pseudo::authority ;; hdrx:host|a b ;; get:/h2-host-space"
":scheme with CRLF || h2-scheme-crlf || pseudo::scheme|http\r\nX-Injected: 1 ;; get:/h2-scheme-crlf"
"uppercase pseudo-header name || h2-pseudo-upper || hdrx::Path|/x ;; get:/h2-pseudo-upper"
"value with CRLF and a field after it || h2-value-crlf || hdrx:x-a|a\r\nX-Injected: 1 ;; get:/h2-value-crlf"
"value with a bare CR || h2-value-cr || hdrx:x-a|a\rb ;; get:/h2-value-cr"
"value with a bare LF || h2-value-lf || hdrx:x-a|a\nb ;; get:/h2-value-lf"
"value with NUL || h2-value-nul || hdrx:x-a|a\x00b ;; get:/h2-value-nul"
"value with leading whitespace || h2-value-lead-sp || hdrx:x-a| a ;; get:/h2-value-lead-sp"
"value with a trailing tab || h2-value-trail-tab || hdrx:x-a|a\t ;; get:/h2-value-trail-tab"
"name with a colon || h2-name-colon || hdrx:x-a:b|1 ;; get:/h2-name-colon"
"name with CRLF || h2-name-crlf || hdrx:x-a\r\nx-injected|1 ;; get:/h2-name-crlf"
"name with NUL || h2-name-nul || hdrx:x\x00a|1 ;; get:/h2-name-nul"
"empty name || h2-name-empty || hdrx:|1 ;; get:/h2-name-empty"
"uppercase name (RFC 9113 8.2.1) || h2-name-upper || hdrx:Content-Length|0 ;; get:/h2-name-upper"
"te: trailers, gzip || h2-te-gzip || hdr:te:trailers, gzip ;; get:/h2-te-gzip"
"content-length: +5 || h2-cl-plus || hdr:content-length:+5 ;; postdata:/h2-cl-plus|hello"
"content-length twice, equal || h2-cl-twice || hdr:content-length:5 ;; hdr:content-length:5 ;; postdata:/h2-cl-twice|hello"
"content-length twice, differing || h2-cl-differ || hdr:content-length:5 ;; hdr:content-length:6 ;; postdata:/h2-cl-differ|hello"
"content-length list || h2-cl-list || hdr:content-length:5, 5 ;; postdata:/h2-cl-list|hello"
"content-length 2^64 || h2-cl-2p64 || hdr:content-length:18446744073709551616 ;; postdata:/h2-cl-2p64|hello"
"content-length 5 on a GET with END_STREAM || h2-cl-no-data || hdr:content-length:5 ;; get:/h2-cl-no-data"
"content-length 5, DATA carrying a request after 5 bytes || ~/h2-cl-extra || hdr:content-length:5 ;; postdata:/h2-cl-extra|helloGET /h2-smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
)
# name || marker (in the request-target the backend gets) || steps || expected lines of
# "recparse.py show MARKER" (" ;; " separated; "N name=K": exactly K fields of that name).
H2_ACCEPT=(
"content-length with a leading zero || /h2-acc-cl-zero || hdr:content-length:05 ;; postdata:/h2-acc-cl-zero|hello || LINE POST /h2-acc-cl-zero HTTP/1.1 ;; FRAMING cl=5 ;; N content-length=1 ;; N transfer-encoding=0 ;; BODY b'hello'"
"content-length, DATA that looks like a request || /h2-acc-cl-body || hdr:content-length:38 ;; postdata:/h2-acc-cl-body|GET /h2-smuggled HTTP/1.1\r\nHost: a\r\n\r\n || FRAMING cl=38 ;; BODY b'GET /h2-smuggled HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n'"
"no content-length: chunked, a last-chunk inside DATA stays data || /h2-acc-chunked || postdata:/h2-acc-chunked|0\r\n\r\nGET /h2-smuggled HTTP/1.1\r\nHost: a\r\n\r\n || FRAMING chunked ;; N transfer-encoding=1 ;; N content-length=0 ;; BODY b'0\\r\\n\\r\\nGET /h2-smuggled HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n'"
"host differing from :authority || /h2-acc-host-differs || pseudo::authority|auth.test ;; hdr:host:other.test ;; get:/h2-acc-host-differs || H Host: auth.test ;; N host=1"
"host without :authority || /h2-acc-host-only || pseudo::authority ;; hdr:host:host.test ;; get:/h2-acc-host-only || H Host: host.test ;; N host=1"
"OPTIONS * || * || pseudo::method|OPTIONS ;; pseudo::path|* ;; hdr:x-case:h2-acc-asterisk ;; get:/ || LINE OPTIONS * HTTP/1.1 ;; H x-case: h2-acc-asterisk ;; N host=1"
"two cookie fields || /h2-acc-cookies || hdr:cookie:a=1 ;; hdr:cookie:b=2 ;; get:/h2-acc-cookies || H cookie: a=1; b=2 ;; N cookie=1"
"te: trailers || /h2-acc-te || hdr:te:trailers ;; get:/h2-acc-te || N te=0 ;; N host=1"
":scheme https over cleartext || /h2-acc-scheme || pseudo::scheme|https ;; get:/h2-acc-scheme || H X-Forwarded-Proto: http ;; N x-forwarded-proto=1"
)
split_steps() { # "a ;; b ;; c" -> one step per line
    local l=$1
    while [ -n "$l" ]; do printf '%s\n' "${l%% ;; *}"; [ "${l%% ;; *}" = "$l" ] && break; l=${l#* ;; }; done
}
for c in "${H2_REJECT[@]}"; do
    name=${c%% || *}; rest=${c#* || }; marker=${rest%% || *}; steps=${rest#* || }
    mapfile -t st < <(split_steps "$steps")
    out=$("${PEER[@]}" "$F" "${st[@]}" wait get:/h2-after-reject wait)
    if grep -qE '^(RST 1 PROTOCOL_ERROR|RESP 1 400)' <<<"$out"; then
        pass "$name: $(grep -E '^(RST 1|RESP 1) ' <<<"$out" | head -n1 | awk '{print $1, $3}')"
    else
        fail "$name: expected RST_STREAM PROTOCOL_ERROR or 400, got:"
        grep -E '^(RESP|RST|GOAWAY|CLOSED|RESET|TIMEOUT)' <<<"$out" | head -n 5 | sed 's/^/        | /'
    fi
    assert_match "$out" '^RESP 3 200' "$name: the connection serves the next stream"
    if [[ $marker == '~'* ]]; then
        assert_eq "COUNT 0" "$($RECPARSE "$REC_DIR" show "${marker#\~}" | head -n1)" "$name: no complete request at the backend"
    else
        raw_has "$marker" && fail "$name: the malformed request ($marker) reached the backend" ||
            pass "$name: nothing of it reached the backend"
    fi
done
# content-length: 0 on HEADERS without END_STREAM, then DATA: the head may already be on its
# way (a complete request with an empty body), the DATA never.
out=$("${PEER[@]}" "$F" hdr:content-length:0 'postdata:/h2-cl0-data|GET /h2-smuggled HTTP/1.1\r\nHost: a\r\n\r\n' wait read:0.3 get:/h2-after-cl0 wait)
assert_match "$out" '^RST 1 PROTOCOL_ERROR' "content-length 0 followed by DATA: stream reset PROTOCOL_ERROR"
assert_match "$out" '^RESP 3 200' "content-length 0 followed by DATA: the connection serves the next stream"
shown=$($RECPARSE "$REC_DIR" show /h2-cl0-data)
if [ "$(head -n1 <<<"$shown")" = "COUNT 0" ]; then
    pass "content-length 0 followed by DATA: not forwarded"
else
    assert_eq "COUNT 1 BODY b''" "$(grep -E '^(COUNT|BODY) ' <<<"$shown" | paste -sd' ')" \
        "content-length 0 followed by DATA: at most one empty-bodied request at the backend"
fi

log "(g) h2 -> HTTP/1.1 downgrade: accepted requests arrive as one normalised HTTP/1.1 request"
for c in "${H2_ACCEPT[@]}"; do
    name=${c%% || *}; rest=${c#* || }; marker=${rest%% || *}; rest=${rest#* || }
    steps=${rest%% || *}; exp=${rest#* || }
    mapfile -t st < <(split_steps "$steps")
    out=$("${PEER[@]}" "$F" "${st[@]}" wait)
    assert_match "$out" '^RESP 1 200' "$name: answered 200"
    shown=$($RECPARSE "$REC_DIR" show "$marker")
    assert_eq "COUNT 1" "$(head -n1 <<<"$shown")" "$name: exactly one request $marker at the backend"
    while IFS= read -r e; do
        case $e in
        'N '*) fname=${e#N }; fname=${fname%=*}
               assert_eq "${e##*=}" "$(grep -ciE "^H $fname:" <<<"$shown")" "$name: $fname fields" ;;
        *)     if grep -qxF -- "$e" <<<"$shown"; then pass "$name: backend got [$e]"
               else fail "$name: backend did not get [$e]; it got:"; sed 's/^/        | /' <<<"$shown"; fi ;;
        esac
    done < <(split_steps "$exp")
done
still_serving "after the downgrade cases"

log "what the backend saw"
summary=$($RECPARSE "$REC_DIR")
log "backend: $(grep -c '^REQ ' <<<"$summary") complete requests, $(grep -c '^INCOMPLETE ' <<<"$summary") cut short, $(grep -c '^BAD ' <<<"$summary") unparsable"
assert_no_match "$summary" '^BAD ' "every byte the backend got parses as well-formed HTTP/1.1 requests"
assert_no_match "$summary" '^REQ .* hosts=([02-9]|[0-9][0-9])' "exactly one Host field in every forwarded request"
assert_no_match "$summary" '^(REQ|INCOMPLETE) .*(h2-smuggled|X-Injected)' "no request smuggled inside DATA or a field reached the backend as a request"
rec_has "/bad-field-" && fail "some invalid request reached the backend" || pass "no invalid request reached the backend"
finish
