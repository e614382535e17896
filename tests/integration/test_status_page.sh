#!/bin/bash
# The admin status page (GET /) in headless Chromium (statuspage.py: python3-selenium and
# chromium-driver). Two Go backends with active health checks take GET load through ferry
# while the page is open: it renders with no console error, what it shows agrees with /status
# fetched at the same moment (names, generation, workers, health; every counter once the load
# has stopped), a backend stopped mid-test turns "down" on the page within its health-check
# bound, names and a failed reload's error (file:line:column) are shown as text, never as
# markup; a good reload keeps the servers' 5 s history. Bounded cost: the page's size, its
# /status requests per second, /status's size.
# Headers: CSP (hashes of the page's own script and style), nosniff, no-store; POST is 405.
# Screenshots (laptop and phone) are kept as $WORK/status_page.png and status_page_phone.png.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

for f in /usr/bin/chromium /usr/bin/chromedriver; do
    [ -x "$f" ] || { fail "$f is missing (contrib/install-deps.sh installs chromium and chromium-driver)"; finish; }
done
$PY -c 'import selenium' 2>/dev/null || { fail "python3-selenium is missing (contrib/install-deps.sh)"; finish; }

INTERVAL_MS=300 TIMEOUT_MS=200 FALL=2 POLL_MS=1500
XSS='<img src=x onerror=alert(1)>'   # an upstream name that is also markup

start_backend -health-path /healthz -id b1 || { fail "start backend 1"; finish; }
B1=$BACKEND_ADDR
start_backend -health-path /healthz -id b2 || { fail "start backend 2"; finish; }
B2=$BACKEND_ADDR B2_PID=$BACKEND_PID
P=$(pick_port)
A=$(pick_port)
while [ "$A" = "$P" ]; do A=$(pick_port); done
write_config() { # FILE [extra line for the "be" upstream]
    cat >"$1" <<YAML
workers: 2
error_log: stderr
admin:
  listen: 127.0.0.1:$A
listeners:
  - name: web
    listen: "127.0.0.1:$P"
    routes: [{upstream: be}]
upstreams:
  be:
    servers: [{address: "$B1"}, {address: "$B2"}]
    keepalive: 16
    health_check: {path: /healthz, interval: ${INTERVAL_MS}ms, timeout: ${TIMEOUT_MS}ms, unhealthy_threshold: $FALL, healthy_threshold: 2}
    $2
  "$XSS":
    servers: [{address: "$B1"}]
YAML
}
write_config "$WORK/ferry.yaml"
start_ferry "$WORK/ferry.yaml" "$P" || finish
ADMIN=http://127.0.0.1:$A

# ---------------------------------------------------------------- the page over HTTP
curl -sS --max-time 5 -D "$WORK/page.headers" -o "$WORK/page.html" "$ADMIN/"
hdr=$(tr -d '\r' <"$WORK/page.headers")
assert_match "$hdr" '^HTTP/1.1 200' "GET / answers 200"
assert_contains "$hdr" "Content-Type: text/html; charset=utf-8" "page content type"
assert_contains "$hdr" "Cache-Control: no-store" "page is not cached"
assert_contains "$hdr" "X-Content-Type-Options: nosniff" "nosniff"
csp=$(printf '%s\n' "$hdr" | sed -n 's/^Content-Security-Policy: //p')
for d in "default-src 'none'" "connect-src 'self'" "frame-ancestors 'none'" "script-src 'sha256-" "style-src 'sha256-"; do
    assert_contains "$csp" "$d" "CSP has $d"
done
assert_not_contains "$csp" "unsafe" "CSP allows no unsafe-inline or unsafe-eval"
# The hashes are those of the page's own script and style (Chromium would block them otherwise,
# and the checks below would see nothing rendered).
want=$($PY - "$WORK/page.html" <<'EOF'
import base64, hashlib, re, sys
page = open(sys.argv[1], encoding="utf-8").read()
h = lambda t: "'sha256-%s'" % base64.b64encode(hashlib.sha256(re.search("<%s>(.*?)</%s>" % (t, t), page, re.S).group(1).encode()).digest()).decode()
print("script-src %s; style-src %s" % (h("script"), h("style")))
EOF
)
assert_contains "$csp" "$want" "CSP hashes match the page's script and style"
size=$(stat -c %s "$WORK/page.html")
assert_le "$size" 24576 "page size (bytes)"
page=$(cat "$WORK/page.html")
for bad in innerHTML outerHTML insertAdjacentHTML document.write 'eval(' 'src="http' "src='http" '@import'; do
    assert_not_contains "$page" "$bad" "page source: no $bad"
done
assert_eq "200 0" "$(curl -sS --max-time 5 -I -o /dev/null -w '%{http_code} %{size_download}' "$ADMIN/")" "HEAD / : 200, no body"
assert_eq 405 "$(http_status "$ADMIN/" -X POST)" "POST / is refused (read-only)"
assert_eq 413 "$(http_status "$ADMIN/" -X POST -d x=1)" "POST / with a body is refused before it is read"
assert_eq 405 "$(http_status "$ADMIN/status" -X DELETE)" "DELETE /status is refused"
assert_contains "$(curl -sS --max-time 5 "$ADMIN/nope")" "try / (status page)" "404 text names the page"

# ---------------------------------------------------------------- load, then the browser
"$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 4 -n 100000000 -deadline 150s \
    -stop-file "$WORK/stop-load" >"$WORK/load.out" 2>&1 &
LOAD_PID=$!
_track "$LOAD_PID"
status_requests() { curl -sS --max-time 5 "$ADMIN/status" | $PY -c 'import json,sys
j=json.load(sys.stdin); print(sum(s["requests"] for u in j["upstreams"] for s in u["servers"]))'; }
_load_flowing() { [ "$(status_requests)" -gt 200 ] 2>/dev/null; }
wait_for 15 _load_flowing || fail "no load through ferry"

# statuspage.py answers one JSON line per command over two FIFOs.
mkfifo "$WORK/drv.in" "$WORK/drv.out"
rm -rf "$WORK/chrome-profile"
$PY "$IT_DIR/statuspage.py" --profile "$WORK/chrome-profile" <"$WORK/drv.in" >"$WORK/drv.out" \
    2>"$WORK/statuspage.err" &
DRV_PID=$!
_track "$DRV_PID"
exec 7>"$WORK/drv.in" 8<"$WORK/drv.out"
R=
drv() { # COMMAND... — sends it, sets R to the answer (empty on timeout)
    R=
    printf '%s\n' "$*" >&7
    read -r -t 90 R <&8 || R=
    printf '%s\n' "drv $*: ${R:0:600}" >>"$WORK/drv.log"
}
read -r -t 90 R <&8
assert_eq True "$(json_get "$R" 'j["ready"]')" "headless Chromium started"
[ -n "$R" ] || { sed 's/^/        | /' "$WORK/statuspage.err" | tail -n 20; finish; }

drv open "$ADMIN/" 1400 900
assert_eq True "$(json_get "$R" 'j["ok"]')" "page loads and shows a live /status answer"
drv match "$ADMIN/status" stable 5
assert_eq True "$(json_get "$R" 'j["ok"]')" "page agrees with /status under load: generation, workers, config, names, health ($(json_get "$R" 'j.get("mismatches", "")'))"
drv snapshot
snap=$R
assert_eq live "$(json_get "$snap" 'j["conn"]')" "page says live"
assert_eq "be|$XSS" "$(json_get "$snap" '"|".join(j["upstreams"])')" "upstream names shown as text"
# Rates need two polls (or a history sample): shown within a poll period or two.
_page_rps() { drv snapshot; [[ $(json_get "$R" 'j["servers"]["be '"$B1"'"]["rps"]') =~ ^[0-9.]+$ ]]; }
wait_for 5 _page_rps || fail "no requests/s on the page"
assert_match "$(json_get "$R" 'j["servers"]["be '"$B1"'"]["rps"]')" '^[0-9.]+$' "requests/s shown for a server"
assert_match "$(json_get "$snap" 'j["listeners"]["web"]["share"]')" 'h1 100% · h2 0%' "listener's h1 vs h2 share"

# Polling cost: at most one /status request a second, and it does poll.
drv polls 10
n=$(json_get "$R" 'j["count"]')
win=$(json_get "$R" 'int(j["window"])')
log "page made $n /status requests in ${win}s"
assert_le "$n" "$win" "/status requests by the page over ${win}s (<= 1/s)"
assert_ge "$n" $(( win * 1000 / POLL_MS - 2 )) "the page keeps polling"
st_size=$(curl -sS --max-time 5 "$ADMIN/status" | wc -c)
# 3 servers; a full history adds at most 3 x 2 x 60 x 11 bytes.
assert_le "$st_size" 10240 "/status size for this configuration (bytes)"

drv layout
assert_eq "3 3 0" "$(json_get "$R" '"%d %d %d" % (j["rows"], j["svgs"], j["images"])')" "3 server rows, each with a sparkline; no <img> (the name stayed text)"
drv screenshot "$WORK/status_page.png" full
assert_eq True "$(json_get "$R" 'j["ok"]')" "screenshot saved: $WORK/status_page.png"

# ---------------------------------------------------------------- a backend stops
# Bound: the checks notice within interval x unhealthy_threshold + timeout, the page within
# one more poll; plus slack for this loaded machine.
BOUND=$($PY -c "print(($INTERVAL_MS * $FALL + $TIMEOUT_MS + $POLL_MS + 2500) / 1000)")
t0=$(now_ms)
stop_pid "$B2_PID" KILL
drv wait_state "be+$B2" down "$BOUND"
took=$(( $(now_ms) - t0 ))
assert_eq True "$(json_get "$R" 'j["ok"]')" "stopped backend shown down on the page within ${BOUND}s (${took} ms)"
assert_eq False "$(json_get "$(curl -sS --max-time 5 "$ADMIN/status")" 'j["upstreams"][0]["servers"][1]["healthy"]')" "/status agrees: unhealthy"
drv match "$ADMIN/status" stable 5
assert_eq True "$(json_get "$R" 'j["ok"]')" "page agrees with /status after the stop ($(json_get "$R" 'j.get("mismatches", "")'))"
drv layout
assert_contains "$(json_get "$R" 'j["text"]')" "1 of 2 servers taking requests" "upstream summary counts the healthy servers"

# ---------------------------------------------------------------- a failed reload
write_config "$WORK/ferry.yaml" "keepalive_requests: \"$XSS\""
kill -HUP "$FERRY_PID"
_reload_failed() { [ "$(json_get "$(curl -sS --max-time 5 "$ADMIN/status")" 'j["last_reload"]')" = failed ]; }
wait_for 10 _reload_failed || fail "the bad reload was not reported failed in /status"
_page_reload_error() { drv snapshot; [ "$(json_get "$R" 'j["reload_error"] is not None')" = True ]; }
wait_for 5 _page_reload_error || fail "page shows no reload error"
err=$(json_get "$R" 'j["reload_error"]')
assert_match "$err" 'ferry\.yaml:[0-9]+:[0-9]+: .*keepalive_requests' "reload error shown with its file:line:column"
assert_contains "$err" "$XSS" "the error's markup shown as text"
assert_contains "$(json_get "$R" 'j["reload"]')" "failed" "last reload: failed"
drv layout
assert_eq 0 "$(json_get "$R" 'j["images"]')" "the error's markup made no element"

# ---------------------------------------------------------------- phone
drv resize 390 844
drv layout
assert_le "$(json_get "$R" 'j["scroll_width"]')" "$(json_get "$R" 'j["inner_width"]')" "phone width: no horizontal scrolling"
drv screenshot "$WORK/status_page_phone.png" full
assert_eq True "$(json_get "$R" 'j["ok"]')" "phone screenshot saved: $WORK/status_page_phone.png"
drv resize 1400 900

# ---------------------------------------------------------------- exact numbers at rest
touch "$WORK/stop-load"
wait_for 20 _exited "$LOAD_PID" || fail "load client did not stop"
wait "$LOAD_PID" 2>/dev/null
log "load: $(cat "$WORK/load.out")"
drv match "$ADMIN/status" exact 6
assert_eq True "$(json_get "$R" 'j["ok"]')" "every counter on the page equals /status at rest ($(json_get "$R" 'j.get("mismatches", "")'))"

# ---------------------------------------------------------------- a reload keeps the history
hist() { json_get "$(curl -sS --max-time 5 "$ADMIN/status")" 'len(j["upstreams"][0]["servers"][0]["history"]["requests"])'; }
h1=$(hist)
assert_ge "$h1" 2 "/status keeps 5 s samples per server (history)"
write_config "$WORK/ferry.yaml" "keepalive_requests: 500"
kill -HUP "$FERRY_PID"
_gen2() { [ "$(json_get "$(curl -sS --max-time 5 "$ADMIN/status")" 'j["generation"]')" = 2 ]; }
wait_for 10 _gen2 || fail "reload to generation 2"
assert_ge "$(hist)" "$h1" "a reload keeps the servers' history"
drv match "$ADMIN/status" stable 5
assert_eq True "$(json_get "$R" 'j["ok"]')" "page follows the reload: generation 2 ($(json_get "$R" 'j.get("mismatches", "")'))"
drv snapshot
assert_contains "$(json_get "$R" 'j["reload"]')" "ok at" "last reload: ok"
assert_eq None "$(json_get "$R" 'j["reload_error"]')" "the error box is gone after a good reload"

drv console
assert_eq "[]" "$(json_get "$R" 'j["severe"]')" "no console errors (SEVERE browser log)"
printf 'quit\n' >&7
exec 7>&- 8<&-
wait_for 20 _exited "$DRV_PID" || fail "statuspage.py did not quit"
wait "$DRV_PID" 2>/dev/null
finish
