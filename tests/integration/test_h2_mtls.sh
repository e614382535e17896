#!/bin/bash
# Upstream mutual TLS (upstream tls cert/key: ferry's client certificate) against the Go backend
# with -client-ca (tls.RequireAndVerifyClientCert), once with TLS 1.3 (Go's default) and once
# with -tls-max 1.2:
#  1. the backend itself refuses a client without a certificate or with one from another CA,
#     and accepts ours (direct curl).
#  2. protocol h2 and http1 (and auto) with cert/key: 200, the backend saw the verified client
#     CN "ferry-client" (h2: HTTP/2.0, ALPN h2; http1: HTTP/1.1); a 1 MB upload intact.
#  3. the same upstream without cert/key: 502 for GET and POST, the backend logged refused
#     handshakes and served no request. TLS 1.2: ferry's error log has "TLS handshake: <alert>".
#     TLS 1.3: the client's handshake completes before the server checks its certificate, so
#     ferry only learns of the rejection when reading the response: its log has the failed
#     request (a "note:" line says when the TLS alert is not named).
#  4. a client certificate from another CA: as 3.
#  5. `ferry -t`: cert without key (and key without cert) is a configuration error; a complete
#     mTLS upstream is valid.
# The client certificates are made at test time in the work directory (signed by make_certs' CA,
# and by a throwaway CA for 4).
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }
make_certs "$WORK/certs" || { fail "make test certificates"; finish; }
C=$WORK/certs
CA=$C/ca.crt
BCERT=$C/localhost.crt:$C/localhost.key

# make_client_cert CA-CRT CA-KEY OUT CN — a clientAuth leaf OUT.crt/OUT.key signed by the CA.
make_client_cert() {
    local ca=$1 cakey=$2 out=$3 cn=$4
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
        -keyout "$out.key" -out "$out.csr" >/dev/null 2>&1 || return 1
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$out.ext"
    openssl x509 -req -in "$out.csr" -CA "$ca" -CAkey "$cakey" -CAcreateserial \
        -CAserial "$out.srl" -days 2 -extfile "$out.ext" -out "$out.crt" >/dev/null 2>&1
}

make_client_cert "$CA" "$C/ca.key" "$C/client" ferry-client || { fail "make client certificate"; finish; }
# A throwaway CA that the backend does not trust, and a client certificate (same CN) from it.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=rogue test CA" -keyout "$C/rogue-ca.key" -out "$C/rogue-ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    >/dev/null 2>&1 || { fail "make rogue CA"; finish; }
make_client_cert "$C/rogue-ca.crt" "$C/rogue-ca.key" "$C/rogue-client" ferry-client \
    || { fail "make rogue client certificate"; finish; }
CCERT=$C/client.crt
CKEY=$C/client.key

# ---------------------------------------------------------------- 1. the backend enforces mTLS
log "1. backend -client-ca: requires and verifies a client certificate"
declare -A BLOG   # backend address -> its stderr (handshake errors)
start_backend -tls "$BCERT" -client-ca "$CA" || { fail "start mTLS backend"; finish; }
BM=$BACKEND_ADDR
BLOG[$BM]=$BACKEND_LOG
# The same with TLS 1.2 at most: there a rejected client certificate fails ferry's handshake.
start_backend -tls "$BCERT" -client-ca "$CA" -tls-max 1.2 || { fail "start mTLS TLS 1.2 backend"; finish; }
BM12=$BACKEND_ADDR
BLOG[$BM12]=$BACKEND_LOG
# bcurl ADDR PATH [curl args] — the backend directly over mTLS with our client certificate.
bcurl() {
    local a=$1 path=$2; shift 2
    "${CURL[@]}" --cacert "$CA" --cert "$CCERT" --key "$CKEY" "$@" "https://localhost:${a##*:}$path"
}
bstat() { bcurl "$1" /stats | $PY -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }
for b in "$BM" "$BM12"; do
    h=$(bcurl "$b" /headers)
    assert_eq "ferry-client" "$(json_get "$h" 'j["tls_client_cn"]')" "direct ($b) with the client certificate: backend reports tls_client_cn"
    assert_eq "000" "$(http_status "https://localhost:${b##*:}/" --cacert "$CA")" "direct ($b) without a client certificate: refused"
    assert_eq "000" "$(http_status "https://localhost:${b##*:}/" --cacert "$CA" --cert "$C/rogue-client.crt" --key "$C/rogue-client.key")" \
        "direct ($b) with a client certificate from another CA: refused"
done
assert_eq "TLSv1.2" "$(json_get "$(bcurl "$BM12" /headers)" 'j["tls_version"]')" "-tls-max 1.2 backend speaks TLS 1.2"
assert_contains "$(cat "${BLOG[$BM]}")" "TLS handshake error" "the backend logs refused handshakes to stderr"

# mtls_case NAME BACKEND UPSTREAM-ARGS... — a fresh ferry to BACKEND; sets TP, TLOG.
mtls_case() {
    local name=$1 b=$2; shift 2
    TP=$(pick_port)
    make_config "$WORK/$name.yaml" --port "$TP" --backend "$b" --workers 1 \
        --access-log "$WORK/access.$name.log" "$@"
    start_ferry "$WORK/$name.yaml" "$TP" || return 1
    TLOG=$FERRY_LOG
}

MTLS="tls={server_name: localhost, ca_file: $CA, cert: $CCERT, key: $CKEY}"
head -c 1000000 /dev/urandom >"$WORK/up.bin"
want="1000000 $(sha256sum "$WORK/up.bin" | cut -d' ' -f1)"

# ---------------------------------------------------------------- 2. mTLS through ferry
log "2. upstream tls with cert/key: h2, http1, auto"
for b in "$BM" "$BM12"; do
    v=$([ "$b" = "$BM12" ] && echo TLSv1.2 || echo TLSv1.3)
    if mtls_case "h2-$v" "$b" --upstream protocol=h2 --upstream "$MTLS"; then
        h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
        assert_eq "200" "$(http_status "http://127.0.0.1:$TP/")" "$v protocol h2 with a client certificate: 200"
        assert_eq "HTTP/2.0 h2 localhost $v" "$(json_get "$h" 'j["proto"] + " " + j["tls_alpn"] + " " + j["tls_server_name"] + " " + j["tls_version"]')" \
            "$v protocol h2: HTTP/2 over TLS (ALPN h2, SNI localhost)"
        assert_eq "ferry-client" "$(json_get "$h" 'j["tls_client_cn"]')" "$v protocol h2: the backend verified ferry's client certificate (CN)"
        assert_eq "$want" "$("${CURL[@]}" --data-binary @"$WORK/up.bin" "http://127.0.0.1:$TP/sha256")" "$v protocol h2 over mTLS: 1 MB upload intact"
        stop_pid "$FERRY_PID" TERM 10
    fi
    if mtls_case "h1-$v" "$b" --upstream protocol=http1 --upstream "$MTLS"; then
        h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
        assert_eq "200" "$(http_status "http://127.0.0.1:$TP/")" "$v protocol http1 with a client certificate: 200"
        assert_eq "HTTP/1.1 localhost $v" "$(json_get "$h" 'j["proto"] + " " + j["tls_server_name"] + " " + j["tls_version"]')" \
            "$v protocol http1: HTTP/1.1 over TLS (SNI localhost)"
        assert_eq "ferry-client" "$(json_get "$h" 'j["tls_client_cn"]')" "$v protocol http1: the backend verified ferry's client certificate (CN)"
        assert_eq "$want" "$("${CURL[@]}" --data-binary @"$WORK/up.bin" "http://127.0.0.1:$TP/sha256")" "$v protocol http1 over mTLS: 1 MB upload intact"
        stop_pid "$FERRY_PID" TERM 10
    fi
done
if mtls_case auto "$BM" --upstream protocol=auto --upstream "$MTLS"; then
    h=$("${CURL[@]}" "http://127.0.0.1:$TP/headers")
    assert_eq "HTTP/2.0 ferry-client" "$(json_get "$h" 'j["proto"] + " " + j["tls_client_cn"]')" "protocol auto with a client certificate: h2, CN verified"
    stop_pid "$FERRY_PID" TERM 10
fi

# ---------------------------------------------------------------- 3./4. refused certificates
# refused_case NAME BACKEND UPSTREAM-ARGS... — ferry answers 502, logs the failure, and the
# backend logged a refused handshake and served no request.
# TLS 1.2: the backend's alert arrives during ferry's handshake: "TLS handshake: <alert>".
# TLS 1.3: ferry's handshake completes before the backend checks the certificate; the alert
# comes on the first read, after the request was written: ferry logs a failed connection for
# the request (a note says whether the TLS alert reason is in the log).
refused_case() {
    local name=$1 b=$2; shift 2
    local blog=${BLOG[$b]} req0 logn
    req0=$(bstat "$b" requests)
    logn=$(grep -c 'TLS handshake error' "$blog")
    mtls_case "$name" "$b" "$@" || return 1
    assert_eq 502 "$(http_status "http://127.0.0.1:$TP/")" "$name: GET / gives 502"
    assert_eq 502 "$(http_status "http://127.0.0.1:$TP/headers" -X POST --data-binary hello)" "$name: POST gives 502"
    wait_grep "$TLOG" 'POST /headers' 5
    if [ "$b" = "$BM12" ]; then
        assert_match "$(cat "$TLOG")" 'upstream be server [^ ]+: TLS handshake: .*alert' "$name: ferry's error log names the upstream TLS handshake and the alert"
    else
        assert_match "$(cat "$TLOG")" 'upstream be server [^ ]+: .*for "GET / HTTP/1.1"' "$name: ferry's error log has the failed upstream request"
        grep -qiE 'alert|certificate|handshake' "$TLOG" \
            || log "note: $name: ferry's error log does not name the TLS alert (TLS 1.3 post-handshake rejection)"
    fi
    _more_handshake_errors() { [ "$(grep -c 'TLS handshake error' "$blog")" -ge $((logn + 2)) ]; }
    wait_for 5 _more_handshake_errors
    assert_match "$(tail -n +$((logn + 1)) "$blog" | grep 'TLS handshake error')" "certificate" "$name: the backend logged the refused handshakes"
    assert_eq "$req0" "$(bstat "$b" requests)" "$name: the backend served no request"
    stop_pid "$FERRY_PID" TERM 10
}

log "3. upstream tls without cert/key: 502"
for b in "$BM" "$BM12"; do
    v=$([ "$b" = "$BM12" ] && echo TLSv1.2 || echo TLSv1.3)
    for proto in h2 http1; do
        refused_case "nocert-$proto-$v" "$b" --upstream protocol=$proto \
            --upstream "tls={server_name: localhost, ca_file: $CA}"
    done
done

log "4. client certificate signed by an untrusted CA: 502"
for b in "$BM" "$BM12"; do
    v=$([ "$b" = "$BM12" ] && echo TLSv1.2 || echo TLSv1.3)
    for proto in h2 http1; do
        refused_case "rogue-$proto-$v" "$b" --upstream protocol=$proto \
            --upstream "tls={server_name: localhost, ca_file: $CA, cert: $C/rogue-client.crt, key: $C/rogue-client.key}"
    done
done

# The backend still serves ferry with the right certificate afterwards.
if mtls_case after "$BM" --upstream protocol=h2 --upstream "$MTLS"; then
    assert_eq "200" "$(http_status "http://127.0.0.1:$TP/")" "the backend still serves ferry with the right certificate"
    stop_pid "$FERRY_PID" TERM 10
fi

# ---------------------------------------------------------------- 5. config validation
log "5. ferry -t: cert and key go together"
P=$(pick_port)
make_config "$WORK/t-nokey.yaml" --port "$P" --backend "$BM" --upstream protocol=h2 \
    --upstream "tls={server_name: localhost, ca_file: $CA, cert: $CCERT}"
out=$("$FERRY" -t -c "$WORK/t-nokey.yaml" 2>&1 </dev/null); rc=$?
assert_eq 1 "$rc" "ferry -t, upstream tls cert without key: exit status"
assert_contains "$out" "cert without key" "ferry -t, cert without key: message"
assert_match "$out" "t-nokey\.yaml:[0-9]+:[0-9]+: " "ferry -t, cert without key: message has FILE:LINE:COL"

make_config "$WORK/t-nocert.yaml" --port "$P" --backend "$BM" --upstream protocol=h2 \
    --upstream "tls={server_name: localhost, ca_file: $CA, key: $CKEY}"
out=$("$FERRY" -t -c "$WORK/t-nocert.yaml" 2>&1 </dev/null); rc=$?
assert_eq 1 "$rc" "ferry -t, upstream tls key without cert: exit status"
assert_contains "$out" "key without cert" "ferry -t, key without cert: message"

make_config "$WORK/t-mismatch.yaml" --port "$P" --backend "$BM" --upstream protocol=h2 \
    --upstream "tls={server_name: localhost, ca_file: $CA, cert: $CCERT, key: $C/rogue-client.key}"
out=$("$FERRY" -t -c "$WORK/t-mismatch.yaml" 2>&1 </dev/null); rc=$?
assert_eq 1 "$rc" "ferry -t, client certificate with another key: exit status"

make_config "$WORK/t-ok.yaml" --port "$P" --backend "$BM" --upstream protocol=h2 --upstream "$MTLS"
out=$("$FERRY" -t -c "$WORK/t-ok.yaml" 2>&1 </dev/null); rc=$?
assert_eq 0 "$rc" "ferry -t, complete mTLS upstream: valid"
finish
