#!/bin/bash
# Request smuggling and malformed framing, table-driven, as raw bytes through ferry to a raw
# backend (rawrecorder) that records the exact bytes it receives:
#  - CASES: each ambiguous or malformed request is answered with its status (400; 501 for an
#    unknown transfer coding; 413, 414, 405, 505 where those apply) and the connection is
#    closed; the request pipelined behind it is never processed, and the rejected request
#    never reaches the backend.
#  - BODY_CASES: a chunked body that turns out malformed: 400 and closed; the backend may have
#    got the head, never a complete request.
#  - ACCEPT: what ferry accepts is forwarded as exactly ONE request in one normalised form
#    (checked on the recorded bytes, parsed strictly by recparse.py: request line, Host,
#    framing, body).
# At the end, every byte the backend received parses as well-formed requests, and it saw
# exactly the legitimate and accepted requests: never two from one.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

start_rawrecorder "$WORK/rec" || { fail "start rawrecorder"; finish; }
P=$(pick_port)
# client_max_body_size: a huge Content-Length within the parser's range is refused with 413.
make_config "$WORK/ferry.yaml" --port "$P" --backend "$REC_ADDR" --listener client_max_body_size=1m
start_ferry "$WORK/ferry.yaml" "$P" || finish
F=127.0.0.1:$P
LEGIT=0
RECPARSE="$PY $IT_DIR/recparse.py"

legit() { # a well-formed request that must reach the backend
    local out
    out=$($RAW "$F" 'send:GET /legit HTTP/1.1\r\nHost: a\r\n\r\n' read)
    assert_match "$out" '^RESP 200' "control request answered 200"
    LEGIT=$((LEGIT + 1))
}

legit_posts() { # well-formed bodies, both framings: the backend must parse them exactly
    local out
    out=$($RAW --body "$F" 'send:POST /legit-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' read \
        'send:POST /legit-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n' read \
        'send:GET /legit HTTP/1.1\r\nHost: a\r\n\r\n' read)
    assert_eq 3 "$(grep -c '^RESP 200' <<<"$out")" "legitimate POSTs (Content-Length, chunked) and a GET on one connection"
    LEGIT=$((LEGIT + 3))
}

# The request pipelined after each bad one: must never be processed.
SMUG='GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n'
H='Host: a\r\n'
TE='Transfer-Encoding: chunked\r\n'

# name | allowed statuses | raw request (escaped). Each request-target holds a unique
# hyphenated marker (/word-word...): the first one in the bytes names the case at the backend.
CASES=(
# CL.TE / TE.CL
"CL.TE|400|POST /cl-te HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"
"TE.CL|400|POST /te-cl HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 15\r\n\r\nx=1\r\n0\r\n\r\n"
"TE plus Content-Length: 0|400|POST /te-cl-zero HTTP/1.1\r\n${H}${TE}Content-Length: 0\r\n\r\n0\r\n\r\n"
"Transfer-Encoding on HTTP/1.0 plus CL|400|POST /te-10 HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
"Transfer-Encoding on HTTP/1.0|400|POST /te-10-only HTTP/1.0\r\n${H}${TE}\r\n0\r\n\r\n"
# Transfer-Encoding obfuscations
"Transfer-Encoding: xchunked|400 501|POST /x-chunked HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: chunked, identity|400 501|POST /chunked-identity HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: chunked twice (two fields)|400|POST /te-twice HTTP/1.1\r\n${H}${TE}${TE}\r\n0\r\n\r\n"
"Transfer-Encoding: chunked, chunked|400|POST /te-chunked-chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: identity|400 501|POST /te-identity HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: gzip, chunked|400 501|POST /te-gzip-chunked HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: chunked;q=1 (parameter)|400 501|POST /te-param HTTP/1.1\r\n${H}Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: \"chunked\" (quoted)|400 501|POST /te-quoted HTTP/1.1\r\n${H}Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n"
"Transfer-Encoding: empty|400|POST /te-empty HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n0\r\n\r\n"
"Transfer-Encoding: VT before chunked|400|POST /te-vtab HTTP/1.1\r\n${H}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"
"Transfer-Encoding line starting with a space|400|POST /te-lead-space HTTP/1.1\r\n Transfer-Encoding: chunked\r\n${H}\r\n0\r\n\r\n"
"space before colon|400|POST /space-colon HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
"tab before colon|400|POST /tab-colon HTTP/1.1\r\n${H}Content-Length\t: 5\r\n\r\nhello"
"obs-fold on Transfer-Encoding|400 501|POST /obs-fold-te HTTP/1.1\r\n${H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"
# Content-Length
"duplicate differing Content-Length|400|POST /dup-cl HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
"Content-Length list|400|POST /cl-list HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello!"
"Content-Length list with an empty element|400|POST /cl-list-empty HTTP/1.1\r\n${H}Content-Length: 5,\r\n\r\nhello"
"Content-Length with sign|400|POST /cl-sign HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello"
"Content-Length: -1|400|POST /cl-minus HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nhello"
"Content-Length: 0x5|400|POST /cl-hex HTTP/1.1\r\n${H}Content-Length: 0x5\r\n\r\nhello"
"Content-Length: 5.0|400|POST /cl-decimal HTTP/1.1\r\n${H}Content-Length: 5.0\r\n\r\nhello"
"Content-Length: 5 5|400|POST /cl-space-digits HTTP/1.1\r\n${H}Content-Length: 5 5\r\n\r\nhello"
"Content-Length: empty|400|POST /cl-empty HTTP/1.1\r\n${H}Content-Length: \r\n\r\nhello"
"Content-Length 2^64 (wraps to 0)|400|POST /cl-2p64 HTTP/1.1\r\n${H}Content-Length: 18446744073709551616\r\n\r\nhello"
"Content-Length 2^62+1 (over the parser's range)|400|POST /cl-2p62-plus1 HTTP/1.1\r\n${H}Content-Length: 4611686018427387905\r\n\r\nhello"
"Content-Length of 20 nines|400|POST /cl-nines HTTP/1.1\r\n${H}Content-Length: 99999999999999999999\r\n\r\nhello"
"Content-Length 2^62 (over client_max_body_size)|413|POST /cl-2p62 HTTP/1.1\r\n${H}Content-Length: 4611686018427387904\r\n\r\nhello"
"obs-fold on Content-Length|400|POST /obs-fold-cl HTTP/1.1\r\n${H}Content-Length: 5\r\n 6\r\n\r\nhello!"
# obs-fold, bare CR / LF, NUL and other control bytes
"obs-fold|400|GET /obs-fold HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n"
"bare CR in header|400|GET /bare-cr HTTP/1.1\r\n${H}X-Bad: a\rb\r\n\r\n"
"bare CR as line end|400|GET /bare-cr2 HTTP/1.1\r${H}\r\n"
"bare CR in the method|400|GET\r /bare-cr-method HTTP/1.1\r\n${H}\r\n"
"bare LF as line end|400|GET /bare-lf HTTP/1.1\nHost: a\n\n"
"bare LF ending a field line|400|GET /bare-lf-field HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n"
"bare LF inside a value|400|GET /bare-lf-value HTTP/1.1\r\n${H}X-A: a\nX-Injected: 1\r\n\r\n"
"bare LF ending the head|400|GET /bare-lf-end HTTP/1.1\r\n${H}\n"
"bare LF before the request line|400|\nGET /bare-lf-lead HTTP/1.1\r\n${H}\r\n"
"NUL in header value|400|GET /nul-value HTTP/1.1\r\n${H}X-Bad: a\x00b\r\n\r\n"
"NUL in header name|400|GET /nul-name HTTP/1.1\r\n${H}X-\x00A: 1\r\n\r\n"
"NUL in method|400|G\x00ET /nul-method HTTP/1.1\r\n${H}\r\n"
"NUL in request-target|400|GET /nul-target\x00x HTTP/1.1\r\n${H}\r\n"
"0x01 in header value|400|GET /ctl-01 HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n"
"VT in header value|400|GET /ctl-vt HTTP/1.1\r\n${H}X-A: a\x0bb\r\n\r\n"
"FF in header value|400|GET /ctl-ff HTTP/1.1\r\n${H}X-A: a\x0cb\r\n\r\n"
"ESC in header value|400|GET /ctl-esc HTTP/1.1\r\n${H}X-A: a\x1bb\r\n\r\n"
"DEL in header value|400|GET /ctl-del HTTP/1.1\r\n${H}X-A: a\x7fb\r\n\r\n"
"8-bit byte in header name|400|GET /name-8bit HTTP/1.1\r\n${H}X-\xff: 1\r\n\r\n"
"empty header name|400|GET /empty-name HTTP/1.1\r\n${H}: x\r\n\r\n"
"field line without colon|400|GET /no-colon HTTP/1.1\r\n${H}X-A\r\n\r\n"
# request line: spaces in the method, separators, version
"space inside the method|400|GE T /sp-method HTTP/1.1\r\n${H}\r\n"
"space before the method|400| GET /sp-lead HTTP/1.1\r\n${H}\r\n"
"tab between method and target|400|GET\t/tab-sep HTTP/1.1\r\n${H}\r\n"
"two spaces after the method|400|GET  /two-spaces HTTP/1.1\r\n${H}\r\n"
"space inside the target|400|GET /sp-target x HTTP/1.1\r\n${H}\r\n"
"space after the version|400|GET /sp-version HTTP/1.1 \r\n${H}\r\n"
"lowercase http/1.1|400|GET /lc-version http/1.1\r\n${H}\r\n"
"HTTP/1.10|400|GET /version-110 HTTP/1.10\r\n${H}\r\n"
"HTTP/2.0 request line|505|GET /version-20 HTTP/2.0\r\n${H}\r\n"
# Host
"two Host headers|400|GET /two-hosts HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
"no Host in HTTP/1.1|400|GET /no-host HTTP/1.1\r\n\r\n"
"Host with a comma|400|GET /host-comma HTTP/1.1\r\nHost: a,b\r\n\r\n"
"Host with a space|400|GET /host-space HTTP/1.1\r\nHost: a b\r\n\r\n"
"Host with a slash|400|GET /host-slash HTTP/1.1\r\nHost: a/b\r\n\r\n"
"Host with userinfo|400|GET /host-userinfo HTTP/1.1\r\nHost: u@a\r\n\r\n"
"Host with a quote|400|GET /host-quote HTTP/1.1\r\nHost: a\"b\r\n\r\n"
"Host with a non-numeric port|400|GET /host-port HTTP/1.1\r\nHost: a:b\r\n\r\n"
"Host with an unclosed IPv6 bracket|400|GET /host-bracket HTTP/1.1\r\nHost: [::1\r\n\r\n"
"Host with a bad percent-escape|400|GET /host-pct HTTP/1.1\r\nHost: a%zz\r\n\r\n"
# request-target forms
"absolute-form with userinfo|400|GET http://u@b.test/abs-userinfo HTTP/1.1\r\n${H}\r\n"
"absolute-form with an empty authority|400|GET http:///abs-empty-auth HTTP/1.1\r\n${H}\r\n"
"absolute-form with a comma in the authority|400|GET http://a,b/abs-auth-comma HTTP/1.1\r\n${H}\r\n"
"absolute-form with a non-numeric port|400|GET http://a:b/abs-auth-port HTTP/1.1\r\n${H}\r\n"
"absolute-form with a quote in the authority|400|GET http://a\"b/abs-auth-quote HTTP/1.1\r\n${H}\r\n"
"absolute-form with another scheme|400|GET ftp://b.test/abs-ftp HTTP/1.1\r\n${H}\r\n"
"asterisk-form with GET|400|GET * HTTP/1.1\r\n${H}X-Case: /asterisk-get\r\n\r\n"
"authority-form with GET|400|GET b.test:80 HTTP/1.1\r\n${H}X-Case: /authority-get\r\n\r\n"
"CONNECT (authority-form)|400 405|CONNECT b.test:443 HTTP/1.1\r\nHost: b.test:443\r\nX-Case: /connect-form\r\n\r\n"
)

# Malformed chunked bodies: the head is valid (ferry may already have forwarded it), the body
# is not: 400, closed, and no complete request at the backend.
BODY_CASES=(
"bad chunk size|400|POST /bad-chunk HTTP/1.1\r\n${H}${TE}\r\nzz\r\nhello\r\n0\r\n\r\n"
"chunk size of 17 hex digits|400|POST /chunk-17-digits HTTP/1.1\r\n${H}${TE}\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"
"chunk data not followed by CRLF|400|POST /chunk-no-crlf HTTP/1.1\r\n${H}${TE}\r\n5\r\nhelloXX0\r\n\r\n"
"bare LF after the chunk size|400|POST /chunk-bare-lf HTTP/1.1\r\n${H}${TE}\r\n5\nhello\r\n0\r\n\r\n"
"bare CR after the chunk size|400|POST /chunk-bare-cr HTTP/1.1\r\n${H}${TE}\r\n5\rhello\r\n0\r\n\r\n"
"space after the chunk size|400|POST /chunk-space HTTP/1.1\r\n${H}${TE}\r\n5 \r\nhello\r\n0\r\n\r\n"
"negative chunk size|400|POST /chunk-negative HTTP/1.1\r\n${H}${TE}\r\n-5\r\nhello\r\n0\r\n\r\n"
"0x prefix on the chunk size|400|POST /chunk-0x HTTP/1.1\r\n${H}${TE}\r\n0x5\r\nhello\r\n0\r\n\r\n"
"bare LF in a chunk extension|400|POST /chunk-ext-lf HTTP/1.1\r\n${H}${TE}\r\n5;a=b\nc\r\nhello\r\n0\r\n\r\n"
"bare LF in the trailer section|400|POST /chunk-trailer-lf HTTP/1.1\r\n${H}${TE}\r\n0\r\nX-T: y\n\r\n"
"NUL in a trailer field|400|POST /chunk-trailer-nul HTTP/1.1\r\n${H}${TE}\r\n0\r\nX-T: a\x00b\r\n\r\n"
)

# name | marker | raw request (escaped) | expected lines of "recparse.py show MARKER", " ;; "
# separated: "LINE ...", "H Name: value", "FRAMING ...", "BODY <repr>" must appear exactly;
# "N name=K" means exactly K fields of that name (any case).
ACCEPT=(
"Content-Length with leading zeros|/acc-cl-zeros|POST /acc-cl-zeros HTTP/1.1\r\n${H}Content-Length: 005\r\n\r\nhello|LINE POST /acc-cl-zeros HTTP/1.1 ;; FRAMING cl=5 ;; N content-length=1 ;; N transfer-encoding=0 ;; BODY b'hello'"
"two identical Content-Length fields|/acc-cl-same-twice|POST /acc-cl-same-twice HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello|FRAMING cl=5 ;; N content-length=1 ;; BODY b'hello'"
"Content-Length list of equal values|/acc-cl-list-same|POST /acc-cl-list-same HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\nhello|FRAMING cl=5 ;; H Content-Length: 5 ;; N content-length=1 ;; BODY b'hello'"
"Transfer-Encoding with a tab before chunked|/acc-te-tab|POST /acc-te-tab HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n|FRAMING chunked ;; H Transfer-Encoding: chunked ;; N transfer-encoding=1 ;; N content-length=0 ;; BODY b'hello'"
"Transfer-Encoding with spaces around chunked|/acc-te-spaces|POST /acc-te-spaces HTTP/1.1\r\n${H}Transfer-Encoding:    chunked   \r\n\r\n5\r\nhello\r\n0\r\n\r\n|FRAMING chunked ;; H Transfer-Encoding: chunked ;; N transfer-encoding=1 ;; BODY b'hello'"
"Transfer-Encoding: CHUNKED (case)|/acc-te-upper|POST /acc-te-upper HTTP/1.1\r\n${H}Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n|FRAMING chunked ;; H Transfer-Encoding: chunked ;; BODY b'hello'"
"a request inside chunk data stays data|/acc-chunk-fake-req|POST /acc-chunk-fake-req HTTP/1.1\r\n${H}${TE}\r\n28;ext=1\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n\r\n0\r\n\r\n|FRAMING chunked ;; BODY b'0\\r\\n\\r\\nGET /smuggled HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n'"
"a request inside a Content-Length body stays data|/acc-cl-fake-req|POST /acc-cl-fake-req HTTP/1.1\r\n${H}Content-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n|FRAMING cl=35 ;; BODY b'GET /smuggled HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n'"
"absolute-form target with another Host|/acc-abs-form|GET http://b.test/acc-abs-form?q=1 HTTP/1.1\r\nHost: a\r\n\r\n|LINE GET /acc-abs-form?q=1 HTTP/1.1 ;; H Host: b.test ;; N host=1 ;; FRAMING none"
"absolute-form target with a port|/acc-abs-port|GET http://b.test:8080/acc-abs-port HTTP/1.1\r\nHost: a\r\n\r\n|LINE GET /acc-abs-port HTTP/1.1 ;; H Host: b.test:8080 ;; N host=1"
"absolute-form target, uppercase scheme|/acc-abs-upper|GET HTTP://b.test/acc-abs-upper HTTP/1.1\r\nHost: a\r\n\r\n|LINE GET /acc-abs-upper HTTP/1.1 ;; H Host: b.test ;; N host=1"
"absolute-form target without a path|/?acc-abs-nopath|GET http://b.test?acc-abs-nopath HTTP/1.1\r\nHost: a\r\n\r\n|LINE GET /?acc-abs-nopath HTTP/1.1 ;; H Host: b.test ;; N host=1"
"asterisk-form OPTIONS|*|OPTIONS * HTTP/1.1\r\n${H}X-Case: acc-asterisk\r\n\r\n|LINE OPTIONS * HTTP/1.1 ;; H Host: a ;; H X-Case: acc-asterisk ;; N host=1 ;; FRAMING none"
"HTTP/1.0 without Host|/acc-http10-nohost|GET /acc-http10-nohost HTTP/1.0\r\nConnection: keep-alive\r\n\r\n|LINE GET /acc-http10-nohost HTTP/1.1 ;; N host=1 ;; N connection=0"
"empty lines before the request line|/acc-lead-crlf|\r\n\r\nGET /acc-lead-crlf HTTP/1.1\r\n${H}\r\n|LINE GET /acc-lead-crlf HTTP/1.1 ;; N host=1"
"whitespace around a field value|/acc-ows|GET /acc-ows HTTP/1.1\r\n${H}X-Pad: \t v w \t\r\n\r\n|H X-Pad: v w ;; N x-pad=1"
)
# marker_of PAYLOAD — the first hyphenated path segment (/word-word...) of a case's bytes.
marker_of() { grep -oE '/[a-z0-9]+(-[a-z0-9]+)+' <<<"$1" | head -n1; }
# raw_has MARKER — the backend got MARKER (as a whole path or field value) in any byte.
raw_has() { grep -qaE -- "$1([ ?"$'\r'"]|\$)" "$REC_DIR"/conn-*.bin 2>/dev/null; }

# reject_case KIND NAME ALLOWED PAYLOAD — KIND head: nothing of it may reach the backend;
# KIND body: its head may have, but never as a complete request.
reject_case() {
    local kind=$1 name=$2 allowed=$3 payload=$4 out statuses first marker n
    marker=$(marker_of "$payload")
    [ -n "$marker" ] || fail "$name: no /word-word marker in the case's bytes (fix the table)"
    out=$($RAW --timeout 3 "$F" "send:$payload$SMUG" readall:3)
    statuses=$(grep '^RESP' <<<"$out" | awk '{print $2}' | xargs)
    first=${statuses%% *}
    if [[ " $allowed " == *" $first "* ]] && [ -n "$first" ]; then
        pass "$name: answered $first"
    else
        fail "$name: expected one of [$allowed], got [${statuses:-no response}]"
        printf '%s\n' "$out" | head -n 12 | sed 's/^/        | /'
    fi
    assert_eq 1 "$(grep -c '^RESP' <<<"$out")" "$name: exactly one response (the pipelined request is not processed)"
    assert_match "$out" '^(CLOSED|RESET)' "$name: connection closed"
    if [ "$kind" = head ]; then
        raw_has "$marker" && fail "$name: the rejected request ($marker) reached the backend" ||
            pass "$name: nothing of it reached the backend"
    else
        n=$($RECPARSE "$REC_DIR" show "$marker" | sed -n 's/^COUNT //p')
        assert_eq 0 "$n" "$name: no complete request $marker at the backend"
    fi
}

# accept_case NAME MARKER PAYLOAD EXPECTATIONS — answered 200 on a kept-alive connection,
# forwarded as exactly one request whose recorded form matches every expectation.
accept_case() {
    local name=$1 marker=$2 payload=$3 exp=$4 out shown e
    out=$($RAW --timeout 3 "$F" "send:$payload" read 'send:GET /legit HTTP/1.1\r\nHost: a\r\n\r\n' read)
    assert_eq "200 200" "$(grep '^RESP' <<<"$out" | awk '{print $2}' | xargs)" \
        "$name: answered 200, and the connection serves the next request"
    LEGIT=$((LEGIT + 1))
    shown=$($RECPARSE "$REC_DIR" show "$marker")
    assert_eq "COUNT 1" "$(head -n1 <<<"$shown")" "$name: exactly one request $marker at the backend"
    while [ -n "$exp" ]; do
        e=${exp%% ;; *}
        [ "$e" = "$exp" ] && exp= || exp=${exp#* ;; }
        case $e in
        'N '*)  local fname=${e#N }; fname=${fname%=*}
                assert_eq "${e##*=}" "$(grep -ciE "^H $fname:" <<<"$shown")" "$name: $fname fields" ;;
        *)      if grep -qxF -- "$e" <<<"$shown"; then pass "$name: backend got [$e]"
                else fail "$name: backend did not get [$e]; it got:"; sed 's/^/        | /' <<<"$shown"; fi ;;
        esac
    done
}

legit
legit_posts
for c in "${CASES[@]}"; do
    name=${c%%|*}; rest=${c#*|}
    log "case: $name"
    reject_case head "$name" "${rest%%|*}" "${rest#*|}"
done
for c in "${BODY_CASES[@]}"; do
    name=${c%%|*}; rest=${c#*|}
    log "body case: $name"
    reject_case body "$name" "${rest%%|*}" "${rest#*|}"
done
for c in "${ACCEPT[@]}"; do
    IFS='|' read -r name marker payload exp <<<"$c"
    log "accepted: $name"
    accept_case "$name" "$marker" "$payload" "$exp"
done
legit

log "what the backend saw"
wait_lines "$WORK/rec/requests.log" "$LEGIT" 3
summary=$($RECPARSE "$REC_DIR")
sed 's/^/#   /' <<<"$summary"
assert_eq "$(( LEGIT + ${#ACCEPT[@]} ))" "$(grep -c '^REQ ' <<<"$summary")" \
    "complete requests at the backend = the legitimate and accepted ones (never two from one)"
assert_no_match "$summary" '^BAD ' "every byte the backend got parses as well-formed requests"
assert_no_match "$summary" '^REQ .* hosts=([02-9]|[0-9][0-9])' "exactly one Host field in every forwarded request"
assert_no_match "$summary" '^(REQ|INCOMPLETE) .*(/smuggled|GPOST)' "no request pipelined behind a rejected one (/smuggled), nor GPOST, reached the backend"
inc=$(grep '^INCOMPLETE ' <<<"$summary" | awk '{print $5}' | sort -u | xargs)
for m in $inc; do
    grep -qF "$m HTTP/1.1" <<<"$(printf '%s\n' "${BODY_CASES[@]}")" ||
        fail "request $m was cut short at the backend but is not a malformed-body case"
done
pass "requests cut short at the backend are malformed-body cases only (${inc:-none})"
alive "$FERRY_PID" && pass "ferry still running" || fail "ferry died"
finish
