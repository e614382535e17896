#!/bin/bash
# DNS: server names re-resolved on their TTL, against a real resolver (dnsmasq from Debian on
# 127.0.0.1:PORT, answering from a hosts directory this test rewrites, TTL 1 s).
#  0. `ferry -t`: resolvers/min_refresh errors at their line; a name the resolver does not
#     know, and a resolver that does not answer, are errors naming the host.
#  1. Under load (8 keep-alive clients, retries 0, so nothing is hidden by a retry):
#     api.test -> .2, then .2 + .3 (ferry follows within TTL + refresh: both serve), then
#     .3 only: .2 gets no new request, its idle connections close (reason dns), a slow
#     request in flight on .2 finishes (drained, not cut). The load sees no error.
#  2. Refresh rate: TTL 1 s with min_refresh 200 ms -> about one A query per second.
#  3. The resolver stops: the last answer stays (logged once), requests go on; it comes back
#     with .3 + .4: ferry follows. A name that vanishes (NXDOMAIN) keeps its last answer too.
#  4. A reload re-resolves at once; a DNS change after it still applies.
#  5. Without resolvers: a name from /etc/hosts (localhost) expands to its addresses and is
#     not re-resolved.
#  6. SRV (srv: _api._tcp.svc.test): targets, ports and weights from the records of the
#     lowest priority; weights 1:3 -> ~25 %/75 % of requests; a target's address change and
#     a record set change (dnsmasq restarted with other records) are followed.
. "$(dirname "$0")/lib.sh"
build_peers || { fail "build peers"; finish; }

command -v dnsmasq >/dev/null || { fail "dnsmasq is not installed (contrib/install-deps.sh)"; finish; }

HOSTS="$WORK/hosts.d"
mkdir -p "$HOSTS"
# set_hosts "127.0.0.2 api.test" ... — atomically replaces dnsmasq's hosts file.
set_hosts() {
    printf '%s\n' "$@" >"$WORK/hosts.tmp"
    mv -f "$WORK/hosts.tmp" "$HOSTS/hosts"
}

DNS_PORT=$(pick_port)
start_dnsmasq() { # [extra dnsmasq options]
    _SEQ=$((_SEQ + 1))
    DNS_LOG="$WORK/dnsmasq.$_SEQ.log"
    # --local=/test/: answer every *.test query here (NXDOMAIN / no data), never REFUSED.
    dnsmasq --no-daemon --conf-file=/dev/null --port="$DNS_PORT" --listen-address=127.0.0.1 \
        --bind-interfaces --no-resolv --no-hosts --hostsdir="$HOSTS" --local=/test/ \
        --local-ttl=1 --log-queries --log-facility="$DNS_LOG" --user=root --pid-file= "$@" \
        2>"$WORK/dnsmasq.$_SEQ.err" &
    DNS_PID=$!
    _track "$DNS_PID"
    wait_for 10 port_listening "$DNS_PORT" || { fail "dnsmasq did not start"; cat "$WORK/dnsmasq.$_SEQ.err"; return 1; }
}
_dns_has() { grep -q "$2" "$DNS_LOG" 2>/dev/null; }

# Backends on 127.0.0.2/.3/.4, one port: what differs between them is the address only.
BP=$(pick_port)
start_ip_backend() { # IP ID [PORT] -> pid in IPB_PID
    _SEQ=$((_SEQ + 1))
    local out="$WORK/backend-$1.$_SEQ.out"
    "$BIN/backend" -listen "$1:${3:-$BP}" -id "$2" >"$out" 2>"$WORK/backend-$1.$_SEQ.err" &
    IPB_PID=$!
    _track "$IPB_PID"
    wait_for 10 _read_listen "$out" || { fail "backend on $1:$BP did not start"; return 1; }
}
stat_of() { backend_stat "$1:$BP" "$2"; }

set_hosts "127.0.0.2 api.test"
start_dnsmasq || finish
start_ip_backend 127.0.0.2 b2 || finish
start_ip_backend 127.0.0.3 b3 || finish
start_ip_backend 127.0.0.4 b4 || finish

P=$(pick_port); AP=$(pick_port)
while [ "$AP" = "$P" ]; do AP=$(pick_port); done
cfg() { # FILE [extra dns keys] — one upstream "be" with server api.test:BP
    cat >"$1" <<EOF
workers: 2
log_level: info
admin:
  listen: 127.0.0.1:$AP
listeners:
  - name: web
    listen: 127.0.0.1:$P
    routes: [{upstream: be}]
upstreams:
  be:
    retries: 0
    servers:
      - address: api.test:$BP
    dns:
      resolvers: ["127.0.0.1:$DNS_PORT"]
      min_refresh: 200ms
      max_refresh: 5s
      timeout: 500ms
EOF
}
status() { curl -sS --max-time 5 "http://127.0.0.1:$AP/status"; }
# addresses currently in upstream be, sorted, space separated
addrs() { json_get "$(status)" "' '.join(sorted(s['address'] for s in j['upstreams'][0]['servers']))"; }
_addrs_are() { [ "$(addrs)" = "$1" ]; }
# wait_addrs "127.0.0.2:BP ..." SECONDS — sets WAITED_MS
wait_addrs() {
    local t0; t0=$(now_ms)
    wait_for "$2" _addrs_are "$1"; local rc=$?
    WAITED_MS=$(( $(now_ms) - t0 ))
    return $rc
}

# ---------------------------------------------------------------- 0. config errors
log "section 0: config errors"
printf 'listeners:\n  - name: web\n    listen: 127.0.0.1:%s\n    routes: [{upstream: be}]\nupstreams:\n  be:\n    servers:\n      - address: api.test:%s\n    dns:\n      resolvers: ["localhost:53"]\n' "$P" "$BP" >"$WORK/bad1.yaml"
out=$("$FERRY" -t -c "$WORK/bad1.yaml" 2>&1); rc=$?
assert_eq 1 "$rc" "s0: resolvers with a host name is rejected"
assert_contains "$out" "10:19: invalid resolver address 'localhost:53'" "s0: error at its line:column"
printf 'listeners:\n  - name: web\n    listen: 127.0.0.1:%s\n    routes: [{upstream: be}]\nupstreams:\n  be:\n    servers:\n      - address: api.test:%s\n    dns:\n      resolvers: ["127.0.0.1:%s"]\n      min_refresh: 10s\n      max_refresh: 5s\n' "$P" "$BP" "$DNS_PORT" >"$WORK/bad2.yaml"
out=$("$FERRY" -t -c "$WORK/bad2.yaml" 2>&1)
assert_contains "$out" "11:20: dns min_refresh is longer than max_refresh" "s0: min_refresh > max_refresh"
sed "s/api.test:$BP/nope.test:$BP/" "$WORK/bad1.yaml" | sed "s/\"localhost:53\"/\"127.0.0.1:$DNS_PORT\"/" >"$WORK/bad3.yaml"
out=$("$FERRY" -t -c "$WORK/bad3.yaml" 2>&1)
assert_contains "$out" "8:18: cannot resolve 'nope.test'" "s0: a name the resolver does not know"
DEAD=$(pick_port)
sed "s/\"localhost:53\"/\"127.0.0.1:$DEAD\"/" "$WORK/bad1.yaml" >"$WORK/bad4.yaml"
printf '      timeout: 300ms\n' >>"$WORK/bad4.yaml"
t0=$(now_ms)
out=$("$FERRY" -t -c "$WORK/bad4.yaml" 2>&1)
assert_contains "$out" "cannot resolve 'api.test'" "s0: a resolver that does not answer"
assert_le $(( $(now_ms) - t0 )) 5000 "s0: ... reported within the query timeout (ms)"
cfg "$WORK/good.yaml"
out=$("$FERRY" -t -c "$WORK/good.yaml" 2>&1)
assert_contains "$out" "test is successful" "s0: the test config is valid"

# ---------------------------------------------------------------- 1. follow, drain, no loss
log "section 1: following the answer under load"
start_ferry "$WORK/good.yaml" "$P" || finish
F_LOG=$FERRY_LOG F_PID=$FERRY_PID
assert_eq "127.0.0.2:$BP" "$(addrs)" "s1: api.test resolved to .2 at start"
assert_eq "api.test:$BP" "$(json_get "$(status)" "j['upstreams'][0]['servers'][0]['name']")" "s1: /status names the server as written"

"$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 8 -n 100000000 -deadline 90s -stop-file "$WORK/s1.stop" \
    >"$WORK/s1.load" 2>&1 &
LOAD_PID=$!
_track "$LOAD_PID"
_reqs_ge() { local v; v=$(stat_of "$1" requests); [ -n "$v" ] && [ "$v" -ge "$2" ]; }
wait_for 10 _reqs_ge 127.0.0.2 200 || fail "s1: load reaches .2"
# A slow request that will be on .2 when .2 leaves the answer.
curl -sS --max-time 30 -o /dev/null -w '%{http_code} ' -D "$WORK/slow.h" "http://127.0.0.1:$P/sleep?ms=6000" \
    >"$WORK/slow.out" 2>&1 &
SLOW_PID=$!

set_hosts "127.0.0.2 api.test" "127.0.0.3 api.test"
if wait_addrs "127.0.0.2:$BP 127.0.0.3:$BP" 8; then
    pass "s1: .3 added ($WAITED_MS ms after the hosts change)"
    assert_le "$WAITED_MS" 4000 "s1: followed within TTL 1s + refresh (+ margin), ms"
else
    fail "s1: .3 not added within 8 s (now: $(addrs))"
fi
r3=$(stat_of 127.0.0.3 requests)
wait_for 10 _reqs_ge 127.0.0.3 $(( r3 + 200 )) && pass "s1: .3 serves requests" || fail "s1: no requests reach .3"

set_hosts "127.0.0.3 api.test"
if wait_addrs "127.0.0.3:$BP" 8; then
    pass "s1: .2 removed ($WAITED_MS ms)"
else
    fail "s1: .2 not removed within 8 s (now: $(addrs))"
fi
_active_is() { [ "$(stat_of "$1" active)" = "$2" ]; }
# Idle connections to .2 close at once; the one carrying the slow request when it is done.
# (active counts the /stats request's own connection: 1 = none from ferry.)
wait_for 15 _active_is 127.0.0.2 1 && pass "s1: .2 drained: no connection from ferry left" \
    || fail "s1: .2 still has $(( $(stat_of 127.0.0.2 active) - 1 )) connections from ferry"
wait "$SLOW_PID"
assert_eq "200 " "$(cat "$WORK/slow.out")" "s1: the slow request on .2 finished (drained, not cut)"
assert_match "$(tr -d '\r' <"$WORK/slow.h")" "X-Backend-Id: b2" "s1: ... and it was served by .2"
r2=$(stat_of 127.0.0.2 requests)
r3=$(stat_of 127.0.0.3 requests)
wait_for 10 _reqs_ge 127.0.0.3 $(( r3 + 500 )) || fail "s1: load goes on at .3"
assert_eq "$r2" "$(stat_of 127.0.0.2 requests)" "s1: .2 gets no request once it left the answer"
assert_match "$(cat "$F_LOG")" "DNS answer changed: 127.0.0.3:$BP \(was 127.0.0.2:$BP, 127.0.0.3:$BP\)" "s1: the change is logged"
assert_match "$(cat "$F_LOG")" "no longer in the DNS answer for api.test:$BP" "s1: the drain is logged"

# ---------------------------------------------------------------- 2. refresh rate
log "section 2: refresh rate"
n0=$(grep -c "query\[A\] api.test" "$DNS_LOG")
t0=$(now_ms)
_window_over() { [ $(( $(now_ms) - t0 )) -ge 4000 ]; }
wait_for 10 _window_over
n1=$(grep -c "query\[A\] api.test" "$DNS_LOG")
el=$(( $(now_ms) - t0 ))
assert_between "$(( n1 - n0 ))" 2 $(( el / 1000 + 2 )) "s2: A queries in ${el} ms with TTL 1s, min_refresh 200ms (about one a second)"

# ---------------------------------------------------------------- 3. failures keep the answer
log "section 3: resolver failures"
stop_pid "$DNS_PID"
wait_grep "$F_LOG" "DNS refresh failed .*keeping its 1 address" 10 && pass "s3: resolver down: logged, last answer kept" \
    || fail "s3: no 'refresh failed' log line"
assert_eq "127.0.0.3:$BP" "$(addrs)" "s3: the server set is unchanged"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s3: requests still served"
assert_eq 1 "$(grep -c "DNS refresh failed" "$F_LOG")" "s3: logged once, not once per refresh"
set_hosts "127.0.0.3 api.test" "127.0.0.4 api.test"
start_dnsmasq || finish
if wait_addrs "127.0.0.3:$BP 127.0.0.4:$BP" 15; then
    pass "s3: resolver back: .4 added ($WAITED_MS ms)"
else
    fail "s3: did not follow the resolver's new answer (now: $(addrs))"
fi
assert_match "$(cat "$F_LOG")" "DNS answers again" "s3: recovery is logged"
set_hosts "127.0.0.9 other.test"
wait_for 10 _dns_has "$DNS_LOG" "api.test is NXDOMAIN|reply api.test is NXDOMAIN|config api.test is NXDOMAIN" || true
_failed_twice() { [ "$(grep -c "DNS refresh failed" "$F_LOG")" -ge 2 ]; }
wait_for 10 _failed_twice && pass "s3: NXDOMAIN is a failure: logged" || fail "s3: NXDOMAIN not reported"
assert_eq "127.0.0.3:$BP 127.0.0.4:$BP" "$(addrs)" "s3: NXDOMAIN keeps the last answer"

# ---------------------------------------------------------------- 4. reload
log "section 4: reload"
set_hosts "127.0.0.4 api.test"
gen=$(json_get "$(status)" "j['generation']")
kill -HUP "$F_PID"
_reloaded() { [ "$(json_get "$(status)" "j['reloads_ok']")" -ge 1 ] 2>/dev/null; }
wait_for 10 _reloaded || fail "s4: reload not done"
assert_eq "127.0.0.4:$BP" "$(addrs)" "s4: the reload resolved the name afresh"
set_hosts "127.0.0.2 api.test"
wait_addrs "127.0.0.2:$BP" 8 && pass "s4: refreshing goes on after the reload" || fail "s4: no refresh after the reload (now: $(addrs))"
assert_ge "$(json_get "$(status)" "j['dns_updates']")" 1 "s4: /status counts DNS updates"

touch "$WORK/s1.stop"
wait "$LOAD_PID"
out=$(cat "$WORK/s1.load")
assert_match "$out" "ok=[0-9]+ err=0 " "s1-4: no failed request under load across every change (retries 0)"
log "load: $out"
alive "$F_PID" && pass "ferry alive" || fail "ferry died"
assert_no_match "$(cat "$F_LOG")" "ERROR|AddressSanitizer|runtime error" "no errors in ferry's log"
stop_pid "$F_PID"

# ---------------------------------------------------------------- 5. /etc/hosts, no resolvers
log "section 5: names from /etc/hosts"
if grep -qE '^[[:space:]]*127\.0\.0\.1[[:space:]].*\blocalhost\b' /etc/hosts; then
    make_config "$WORK/lh.yaml" --port "$P" --backend "localhost:$BP" --global "admin={listen: \"127.0.0.1:$AP\"}" || finish
    start_ferry "$WORK/lh.yaml" "$P" || finish
    assert_contains "$(addrs)" "127.0.0.1:$BP" "s5: localhost expanded to 127.0.0.1"
    assert_eq "localhost:$BP" "$(json_get "$(status)" "j['upstreams'][0]['servers'][0]['name']")" "s5: named as written"
    assert_no_match "$(cat "$FERRY_LOG")" "DNS refresh failed" "s5: a hosts-file name is not sent to DNS"
    stop_pid "$FERRY_PID"
else
    log "s5 skipped: /etc/hosts has no 127.0.0.1 localhost line"
fi

# ---------------------------------------------------------------- 6. SRV records
log "section 6: SRV"
stop_pid "$DNS_PID"
BP2=$(pick_port)
while [ "$BP2" = "$BP" ]; do BP2=$(pick_port); done
start_ip_backend 127.0.0.3 b3p2 "$BP2" || finish
set_hosts "127.0.0.2 t2.test" "127.0.0.3 t3.test" "127.0.0.4 t4.test"
SRV="_api._tcp.svc.test"
# t2 weight 10 on BP, t3 weight 30 on BP2; t4 has priority 5: used only if the others vanish.
start_dnsmasq "--srv-host=$SRV,t2.test,$BP,0,10" "--srv-host=$SRV,t3.test,$BP2,0,30" \
    "--srv-host=$SRV,t4.test,$BP,5,10" || finish
cfg "$WORK/srv.yaml"
sed -i "s|      - address: api.test:$BP|      - srv: $SRV|" "$WORK/srv.yaml"
start_ferry "$WORK/srv.yaml" "$P" || finish
F_LOG=$FERRY_LOG F_PID=$FERRY_PID
assert_eq "127.0.0.2:$BP 127.0.0.3:$BP2" "$(addrs)" "s6: the priority-0 targets with their own ports"
assert_eq "$SRV" "$(json_get "$(status)" "j['upstreams'][0]['servers'][0]['name']")" "s6: named by the SRV name"
h2=$(stat_of 127.0.0.2 requests)
h3=$("${CURL[@]}" "http://127.0.0.3:$BP2/stats" | $PY -c "import json,sys; print(json.load(sys.stdin)['requests'])")
"$BIN/loadclient" -url "http://127.0.0.1:$P/" -c 4 -n 2000 -deadline 60s >"$WORK/s6.load" 2>&1
assert_match "$(cat "$WORK/s6.load")" "ok=2000 err=0" "s6: 2000 requests"
d2=$(( $(stat_of 127.0.0.2 requests) - h2 ))
d3=$(( $("${CURL[@]}" "http://127.0.0.3:$BP2/stats" | $PY -c "import json,sys; print(json.load(sys.stdin)['requests'])") - h3 ))
log "weights 10:30 -> $d2 : $d3"
assert_between "$(( d3 * 100 / (d2 + d3) ))" 70 80 "s6: the weight-30 target takes ~75 % (%)"
set_hosts "127.0.0.4 t2.test" "127.0.0.3 t3.test" "127.0.0.4 t4.test"
wait_addrs "127.0.0.3:$BP2 127.0.0.4:$BP" 8 && pass "s6: a target's new address followed ($WAITED_MS ms)" \
    || fail "s6: target address change not followed (now: $(addrs))"
stop_pid "$DNS_PID"
start_dnsmasq "--srv-host=$SRV,t3.test,$BP2,0,30" || finish
wait_addrs "127.0.0.3:$BP2" 15 && pass "s6: a record removed: followed ($WAITED_MS ms)" \
    || fail "s6: record removal not followed (now: $(addrs))"
assert_eq 200 "$(http_status "http://127.0.0.1:$P/")" "s6: requests served"
assert_no_match "$(cat "$F_LOG")" "ERROR|AddressSanitizer|runtime error" "s6: no errors in ferry's log"

finish
