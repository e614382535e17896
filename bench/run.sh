#!/usr/bin/env bash
# bench/run.sh — issue 7: ferry side by side with nginx, HAProxy and h2o (see bench/README.md).
#
#   bench/run.sh                      # every scenario, ROUNDS rounds, DURATION s per run
#   QUICK=1 bench/run.sh              # smoke: 1 round x 2 s, 2,000-request counts
#   SCENARIOS=1,2 PROXIES="ferry nginx" ROUNDS=5 DURATION=10 bench/run.sh
#   COUNTS=0 bench/run.sh             # skip the callgrind / strace counts
#   FLOOR=0 DIRECT=0 bench/run.sh     # skip scenario 1's floor (bench/floor.c) and direct rows
#
# Each proxy runs with one worker pinned to CPU 0; the load generator and the backend (nginx,
# one worker, or the Go test backend in scenario 6b) share CPU 1. Loopback only, ports below
# 32768, every load bounded in time. Results: bench/results/latest.{md,csv,png} (a full run
# with default settings) or bench/.work/results/ (QUICK, or a selection of scenarios/proxies).
set -u -o pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
WORK=${BENCH_WORK:-$BENCH/.work}
FERRY=${FERRY:-$ROOT/src/ferry}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-2}; WARMUP=${WARMUP:-0.5}
    WARMUP_N=${WARMUP_N:-2000}; COUNT_N=${COUNT_N:-2000}; BIG_MB=${BIG_MB:-1024}; IDLE_N=${IDLE_N:-10000}
else
    ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-5}; WARMUP=${WARMUP:-1}
    WARMUP_N=${WARMUP_N:-20000}; COUNT_N=${COUNT_N:-5000}; BIG_MB=${BIG_MB:-1024}; IDLE_N=${IDLE_N:-10000}
fi
ALL_SCENARIOS=1,2,3,4,5,6,7,8
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
ALL_PROXIES="ferry nginx haproxy h2o"
PROXIES=${PROXIES:-$ALL_PROXIES}
COUNTS=${COUNTS:-1}
DIRECT=${DIRECT:-1}            # scenario 1 also measured straight to the backend (the ceiling)
FLOOR=${FLOOR:-1}              # scenario 1 also measured through bench/floor.c (the CPU floor)
if [ -z "${RESULTS_DIR:-}" ]; then
    if [ "$QUICK" != 1 ] && [ "$SCENARIOS" = "$ALL_SCENARIOS" ] && [ "$PROXIES" = "$ALL_PROXIES" ]; then
        RESULTS_DIR=$BENCH/results
    else
        RESULTS_DIR=$WORK/results
    fi
fi

CPU_PROXY=0
CPU_LOAD=1
# Ports (below the ephemeral range).
BK_H1=21080 BK_H2C=21081 BK_TLS=21083 BK_STATS=21089 GO_BK=21090
P_H1=21100 P_TLS=21143 P_H2C=21102 P_UPTLS=21104
CERT=$ROOT/tests/certs/localhost.crt
KEY=$ROOT/tests/certs/localhost.key
CA=$ROOT/tests/certs/ca.crt
BODY_BYTES=64                  # scenario 3: gRPC-shaped POST body
IDLE_KA=32                     # ferry's default upstream keepalive (scenario 6)
POOL_KA=64                     # scenarios 1-3: pool size for ferry and nginx

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ processes and cleanup
# Every daemon is started in its own session (setsid) so that its whole process tree is
# stopped by group; the EXIT trap stops whatever is still running, also on Ctrl-C or failure.
declare -A SESS=()
POLICY_RC_MADE=0

start_daemon() { # name cpu cmd... : starts cmd pinned to cpu in a new session; sets DPID
    local name=$1 cpu=$2; shift 2
    local pf="$WORK/run/$name.pid"
    rm -f "$pf"
    setsid bash -c 'echo $$ >"$0"; exec taskset -c "$1" "${@:2}"' "$pf" "$cpu" "$@" \
        >>"$WORK/logs/$name.out" 2>&1 </dev/null &
    local i
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.02; done
    DPID=$(cat "$pf" 2>/dev/null) || die "$name did not start"
    SESS[$name]=$DPID
}

stop_daemon() { # name [signal [seconds to exit, default 5]]
    local name=$1 sig=${2:-TERM} pid=${SESS[$1]:-} i
    [ -n "$pid" ] || return 0
    kill -"$sig" -- "-$pid" 2>/dev/null
    for i in $(seq $((${3:-5} * 20))); do
        pgrep -s "$pid" >/dev/null 2>&1 || break
        sleep 0.05
    done
    if pgrep -s "$pid" >/dev/null 2>&1; then kill -KILL -- "-$pid" 2>/dev/null; sleep 0.1; fi
    unset "SESS[$name]"
}

cleanup() {
    local n
    trap - EXIT INT TERM
    for n in "${!SESS[@]}"; do stop_daemon "$n" KILL; done
    if [ -n "${STRACE_PID:-}" ]; then kill "$STRACE_PID" 2>/dev/null; fi
    if [ "$POLICY_RC_MADE" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q LISTEN; }
wait_listen() { # port seconds [session that must stay alive]
    local i n=$(( $2 * 20 ))
    for i in $(seq "$n"); do
        listening "$1" && return 0
        [ -n "${3:-}" ] && ! pgrep -s "$3" >/dev/null 2>&1 && return 1
        sleep 0.05
    done
    return 1
}
wait_free() { # port
    local i
    for i in $(seq 100); do listening "$1" || return 0; sleep 0.05; done
    return 1
}

# ------------------------------------------------------------------ setup
install_deps() {
    local pkgs=(nginx haproxy h2o wrk nghttp2-client valgrind gnuplot-nox strace golang-go
                openssl curl python3 iproute2 procps util-linux) missing=() p
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}); run as root to install them"
    log "installing: ${missing[*]}"
    # Packages such as nginx start a system service when installed; this harness never wants
    # one, so services are kept from starting while apt runs (policy-rc.d, removed after).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        POLICY_RC_MADE=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends "${missing[@]}"; } || die "apt-get install failed"
    if [ "$POLICY_RC_MADE" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_MADE=0; fi
}

build() {
    if [ -z "${FERRY_PREBUILT:-}" ]; then
        make -C "$ROOT" -s src/ferry >&2 || { [ -x "$FERRY" ] || die "cannot build ferry"; \
            log "warning: make failed; using the existing $FERRY"; }
    fi
    [ -x "$FERRY" ] || die "no ferry binary at $FERRY"
    # Run a copy: src/ferry may be rebuilt by someone else while the benchmark runs, and every
    # run of a scenario must measure the same binary.
    FERRY_SRC=$FERRY
    FERRY_ID="$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), built $(date -r "$FERRY" '+%Y-%m-%d %H:%M')"
    cp "$FERRY" "$WORK/bin/ferry" && FERRY=$WORK/bin/ferry
    if [ ! -x "$WORK/bin/floor" ] || [ "$BENCH/floor.c" -nt "$WORK/bin/floor" ]; then
        cc -O2 -Wall -o "$WORK/bin/floor" "$BENCH/floor.c" || die "cannot build bench/floor.c"
    fi
    local gopath="$BENCH/go:/usr/share/gocode" it="$ROOT/tests/integration/go"
    mkdir -p "$WORK/bin" "$WORK/gocache"
    if [ ! -x "$WORK/bin/benchclient" ] || [ -n "$(find "$BENCH/go/src" -newer "$WORK/bin/benchclient" -name '*.go')" ]; then
        GO111MODULE=off GOPATH=$gopath GOCACHE="$WORK/gocache" GOFLAGS= \
            go build -o "$WORK/bin/benchclient" benchclient || die "go build benchclient"
    fi
    if [ ! -x "$WORK/bin/backend" ] || [ -n "$(find "$it/src/ferrytest/backend" -newer "$WORK/bin/backend" -name '*.go')" ]; then
        GO111MODULE=off GOPATH="$it:/usr/share/gocode" GOCACHE="$WORK/gocache" GOFLAGS= \
            go build -o "$WORK/bin/backend" ferrytest/backend || die "go build backend"
    fi
}

render() { # template out keepalive upstream_h1
    sed -e "s|@WORK@|$WORK|g; s|@BK_H1@|$BK_H1|g; s|@BK_H2C@|$BK_H2C|g; s|@BK_STATS@|$BK_STATS|g" \
        -e "s|@BK_TLS@|$BK_TLS|g; s|@P_UPTLS@|$P_UPTLS|g; s|@CA@|$CA|g" \
        -e "s|@P_H1@|$P_H1|g; s|@P_TLS@|$P_TLS|g; s|@P_H2C@|$P_H2C|g" \
        -e "s|@UP_H1@|$4|g; s|@UP_H2C@|127.0.0.1:$BK_H2C|g; s|@KEEPALIVE@|$3|g" \
        -e "s|@CERT@|$CERT|g; s|@KEY@|$KEY|g; s|@PEM@|$WORK/cert.pem|g; s|@NOFILE@|$NOFILE|g; s|@MAXCONN@|$HAP_MAXCONN|g" \
        "$BENCH/conf/$1" >"$2"
}

# ------------------------------------------------------------------ the proxies
# start_proxy NAME KEEPALIVE UPSTREAM_H1 [valgrind-prefix...]: renders its config, starts it
# on CPU 0, waits for its listeners. Sets PPID_SESS (the session id = leader pid).
start_proxy() {
    local p=$1 ka=$2 up=$3; shift 3
    local pre=("$@") cfg wait=10
    [ ${#pre[@]} -gt 0 ] && wait=90
    case $p in
    ferry)
        cfg=$WORK/cfg/ferry.yaml; render ferry.yaml.in "$cfg" "$ka" "$up"
        start_daemon proxy $CPU_PROXY "${pre[@]}" "$FERRY" -c "$cfg" ;;
    nginx)
        cfg=$WORK/cfg/nginx.conf; render nginx.conf.in "$cfg" "$ka" "$up"
        # under valgrind: one process (master_process off), so the worker is what is measured
        if [ ${#pre[@]} -gt 0 ]; then sed -i 's/^master_process on;/master_process off;/' "$cfg"; fi
        start_daemon proxy $CPU_PROXY "${pre[@]}" nginx -p "$WORK/" -e "$WORK/logs/nginx-proxy.err" -c "$cfg" ;;
    haproxy)
        cfg=$WORK/cfg/haproxy.cfg; render haproxy.cfg.in "$cfg" "$ka" "$up"
        start_daemon proxy $CPU_PROXY "${pre[@]}" haproxy -db -f "$cfg" ;;
    h2o)
        cfg=$WORK/cfg/h2o.conf; render h2o.conf.in "$cfg" "$ka" "$up"
        start_daemon proxy $CPU_PROXY "${pre[@]}" h2o -c "$cfg" ;;
    floor)   # plain HTTP/1.1 only, one backend connection per client connection
        start_daemon proxy $CPU_PROXY "$WORK/bin/floor" $P_H1 "${up##*:}" ;;
    *) die "unknown proxy $p" ;;
    esac
    PSESS=$DPID
    if ! wait_listen $P_H1 $wait "$PSESS" || { [ "$p" != floor ] && ! wait_listen $P_TLS $wait "$PSESS"; }; then
        log "warning: $p did not listen in time; see $WORK/logs/proxy.out"
        tail -5 "$WORK/logs/proxy.out" >&2
        return 1
    fi
    # nginx: the worker process is forked after the listeners are bound
    [ "$p" = nginx ] && sleep 0.2
    return 0
}
stop_proxy() { stop_daemon proxy TERM; wait_free $P_H1; wait_free $P_TLS; wait_free $P_H2C; wait_free $P_UPTLS; }

start_backend() {
    render backend-nginx.conf.in "$WORK/cfg/backend-nginx.conf" 0 x
    [ -e "$WORK/big.bin" ] && [ "$(stat -c %s "$WORK/big.bin")" = $((BIG_MB * 1048576)) ] \
        || { rm -f "$WORK/big.bin"; truncate -s "${BIG_MB}M" "$WORK/big.bin"; }
    start_daemon backend $CPU_LOAD nginx -p "$WORK/" -e "$WORK/logs/backend-nginx.err" \
        -c "$WORK/cfg/backend-nginx.conf"
    wait_listen $BK_H1 10 && wait_listen $BK_H2C 10 && wait_listen $BK_STATS 10 && wait_listen $BK_TLS 10 \
        || die "backend nginx did not start (see $WORK/logs/backend.out)"
}
start_go_backend() { # idle-timeout
    start_daemon gobackend $CPU_LOAD "$WORK/bin/backend" -listen "127.0.0.1:$GO_BK" -idle-timeout "$1"
    wait_listen $GO_BK 10 || die "Go backend did not start"
}

# ------------------------------------------------------------------ measurements
sess_pids() { pgrep -s "$1" 2>/dev/null; }
proc_ticks() { # session: utime+stime of every process in it (all threads)
    local pid t=0 v
    for pid in $(sess_pids "$1"); do
        v=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
proc_mem_kb() { # session field(VmRSS|VmHWM): summed over the processes of the session
    local pid t=0 v
    for pid in $(sess_pids "$1"); do
        v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
cpu_line() { awk -v c="cpu$1" '$1 == c {busy = $2+$3+$4+$7+$8+$9; print busy, busy+$5+$6}' /proc/stat; }
backend_accepts() { # nginx stub_status "accepts" (minus this query's own connection later)
    curl -s --max-time 2 "http://127.0.0.1:$BK_STATS/" | awk 'NR == 3 {print $1}'
}
go_accepts() { curl -s --max-time 2 "http://127.0.0.1:$GO_BK/stats" | sed -n 's/.*"accepted": \([0-9]*\).*/\1/p'; }

snap() { # prefix session accept-fn: records ticks, cpu0/cpu1, accepts, time
    local pfx=$1
    eval "${pfx}_t=\$(date +%s.%N)"
    eval "${pfx}_ticks=\$(proc_ticks $2)"
    eval "${pfx}_c0=(\$(cpu_line $CPU_PROXY))"
    eval "${pfx}_c1=(\$(cpu_line $CPU_LOAD))"
    eval "${pfx}_acc=\$($3)"
}

HZ=$(getconf CLK_TCK)
# emit scenario proxy round requests seconds rps p50_ms p99_ms errors up_conns extra note
# (uses the A_* and B_* snapshots)
emit() {
    local sc=$1 px=$2 rd=$3 req=$4 secs=$5 rps=$6 p50=$7 p99=$8 err=$9 upc=${10} extra=${11} note=${12:-}
    local hwm=0 cpu_us='' c0 c1 rpu=''
    if [ -n "${PSESS:-}" ] && [ "$px" != direct ]; then
        hwm=$(proc_mem_kb "$PSESS" VmHWM)
        cpu_us=$(awk -v a="$A_ticks" -v b="$B_ticks" -v hz="$HZ" -v n="$req" \
                 'BEGIN { if (n > 0) printf "%.2f", (b - a) * 1e6 / hz / n }')
    fi
    c0=$(awk -v a="${A_c0[0]} ${A_c0[1]}" -v b="${B_c0[0]} ${B_c0[1]}" \
         'BEGIN { split(a, x); split(b, y); d = y[2] - x[2]; if (d > 0) printf "%.1f", 100 * (y[1] - x[1]) / d }')
    c1=$(awk -v a="${A_c1[0]} ${A_c1[1]}" -v b="${B_c1[0]} ${B_c1[1]}" \
         'BEGIN { split(a, x); split(b, y); d = y[2] - x[2]; if (d > 0) printf "%.1f", 100 * (y[1] - x[1]) / d }')
    local other=''
    if [ -n "$cpu_us" ] && [ -n "$c0" ]; then
        other=$(awk -v c0="$c0" -v a="$A_ticks" -v b="$B_ticks" -v hz="$HZ" -v t0="$A_t" -v t1="$B_t" \
                'BEGIN { o = c0 - 100 * (b - a) / hz / (t1 - t0); if (o < 0) o = 0; printf "%.1f", o }')
    fi
    if [ -n "$upc" ] && [ "$upc" -gt 0 ] 2>/dev/null; then
        rpu=$(awk -v n="$req" -v u="$upc" 'BEGIN { printf "%.1f", n / u }')
    fi
    echo "$sc,$px,$rd,$req,$secs,$rps,$p50,$p99,$err,$cpu_us,$c0,$c1,$other,$upc,$rpu,$hwm,$extra,$note" >>"$RAW"
    log "  $sc $px r$rd: req/s=$rps p50=$p50 p99=$p99 err=$err cpu_us/req=$cpu_us cpu0=$c0% (others $other%) cpu1=$c1% up_conns=$upc rss_hwm=${hwm}kB $extra $note"
}
emit_na() { echo "$1,$2,$3,,,,,,,,,,,,,,,n/a: $4" >>"$RAW"; log "  $1 $2: n/a ($4)"; }

to_ms() { # wrk duration (e.g. 812.00us, 1.20ms, 2.00s) -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n;
                           else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
parse_wrk() { # file -> "requests seconds rps p50 p99 errors"
    local f=$1 req secs rps p50 p99 sock non2
    req=$(awk '/requests in/ {print $1}' "$f")
    secs=$(awk '/requests in/ {sub(/s,$/, "", $4); print $4}' "$f")
    rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
    sock=$(awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10}' "$f")
    non2=$(awk '/Non-2xx/ {print $NF}' "$f")
    echo "${req:-0} ${secs:-0} ${rps:-0} $p50 $p99 $(( ${sock:-0} + ${non2:-0} ))"
}
parse_h2load() { # file logfile -> "requests seconds rps p50 p99 errors"
    local f=$1 lf=$2 ok secs rps failed p50 p99 non2
    # requests: T total, S started, D done, OK succeeded, F failed, E errored, X timeout
    ok=$(awk '/^requests:/ {print $8}' "$f")
    failed=$(awk '/^requests:/ {print $10 + $14}' "$f")
    non2=$(awk '/^status codes:/ {print $7 + $9}' "$f")   # 4xx + 5xx
    secs=$(awk '/^finished in/ {sub(/s,$/, "", $3); print $3}' "$f")
    rps=$(awk -v n="${ok:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%.2f", n / s; else print 0 }')
    read -r p50 p99 < <(awk -F'\t' '{print $3}' "$lf" 2>/dev/null | sort -n | awk '
        { v[NR] = $1 } END { if (NR == 0) { print "", ""; exit }
          printf "%.3f %.3f\n", v[int(0.5 * (NR - 1)) + 1] / 1000, v[int(0.99 * (NR - 1)) + 1] / 1000 }')
    [ "${non2:-0}" -gt "${failed:-0}" ] && failed=$non2
    echo "${ok:-0} ${secs:-0} $rps ${p50:-} ${p99:-} ${failed:-0}"
}

on_load() { taskset -c $CPU_LOAD timeout --foreground -k 5 "$@"; }   # --foreground: Ctrl-C reaches the load too
dur_t() { echo $(( ${1%.*} + 30 )); }

# ------------------------------------------------------------------ scenarios
# run_case SCENARIO PROXY ROUND: one measured run (proxy started and stopped around it).
run_case() {
    local sc=$1 px=$2 rd=$3 out="$WORK/out/$1.$2.$3" ka=$POOL_KA up="127.0.0.1:$BK_H1" acc=backend_accepts
    local r req secs rps p50 p99 err upc extra='' note=''
    case $sc in 6a) ka=$IDLE_KA ;; 6b) ka=$IDLE_KA; up="127.0.0.1:$GO_BK"; acc=go_accepts ;; esac
    if [ "$sc" = 3 ] && [ "$px" = h2o ]; then emit_na 3 h2o "$rd" "h2o 2.2 proxies to HTTP/1.1 only (no h2c upstream)"; return; fi
    PSESS=
    if [ "$px" = direct ]; then
        PSESS=''
    else
        start_proxy "$px" "$ka" "$up" || { emit_na "$sc" "$px" "$rd" "did not start"; stop_proxy; return; }
        PSESS=${SESS[proxy]}
    fi
    local port=$P_H1
    [ "$px" = direct ] && port=$BK_H1
    local url="http://127.0.0.1:$port/"
    local h2flags=(-t1 -c16 -m10)
    case $sc in
    1|6a|8)
        local c=64; [ "$sc" = 6a ] && c=128
        [ "$sc" = 8 ] && url="http://127.0.0.1:$P_UPTLS/"
        [ "$WARMUP" != 0 ] && on_load 30 wrk -t1 -c$c -d${WARMUP}s "$url" >/dev/null 2>&1
        snap A "${PSESS:-0}" $acc
        on_load "$(dur_t "$DURATION")" wrk -t1 -c$c -d${DURATION}s --latency "$url" >"$out" 2>&1
        snap B "${PSESS:-0}" $acc
        read -r req secs rps p50 p99 err < <(parse_wrk "$out") ;;
    2|3)
        local u="https://127.0.0.1:$P_TLS/" extra_args=()
        if [ "$sc" = 3 ]; then
            u="http://127.0.0.1:$P_H2C/"
            extra_args=(-d "$WORK/body.bin" -H 'content-type: application/grpc' -H 'te: trailers')
        fi
        [ "$WARMUP" != 0 ] && on_load 30 h2load "${h2flags[@]}" "${extra_args[@]}" -n "$WARMUP_N" "$u" >/dev/null 2>&1
        snap A "$PSESS" $acc
        on_load "$(dur_t "$DURATION")" h2load "${h2flags[@]}" "${extra_args[@]}" -D "$DURATION" \
            --log-file="$out.log" "$u" >"$out" 2>&1
        snap B "$PSESS" $acc
        read -r req secs rps p50 p99 err < <(parse_h2load "$out" "$out.log")
        rm -f "$out.log"
        note="latency from h2load --log-file" ;;
    4a)
        [ "$WARMUP" != 0 ] && on_load 30 wrk -t1 -c64 -d${WARMUP}s -H 'Connection: close' "$url" >/dev/null 2>&1
        snap A "$PSESS" $acc
        on_load "$(dur_t "$DURATION")" wrk -t1 -c64 -d${DURATION}s --latency -H 'Connection: close' "$url" >"$out" 2>&1
        snap B "$PSESS" $acc
        read -r req secs rps p50 p99 err < <(parse_wrk "$out") ;;
    4b|4c)
        local res=(); [ "$sc" = 4c ] && res=(-resume)
        snap A "$PSESS" $acc
        on_load "$(dur_t "$DURATION")" "$WORK/bin/benchclient" conn -addr "127.0.0.1:$P_TLS" -tls "${res[@]}" \
            -c 8 -d "${DURATION}s" >"$out" 2>&1
        snap B "$PSESS" $acc
        req=$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' "$out"); err=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' "$out")
        secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' "$out")
        rps=$(awk -v n="${req:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%.2f", n / s; else print 0 }')
        p50=$(awk -v v="$(sed -n 's/.*p50_us=\([0-9]*\).*/\1/p' "$out")" 'BEGIN { printf "%.3f", v / 1000 }')
        p99=$(awk -v v="$(sed -n 's/.*p99_us=\([0-9]*\).*/\1/p' "$out")" 'BEGIN { printf "%.3f", v / 1000 }')
        local resumed; resumed=$(sed -n 's/.*resumed=\([0-9]*\).*/\1/p' "$out")
        extra="resumed=${resumed:-0}" ;;
    5)
        on_load 60 h2load --h1 -t1 -c4 -n 400 "$url" >/dev/null 2>&1
        sleep 0.5
        local rss0 rss1 fifo="$WORK/run/idle.fifo" cpid
        rss0=$(proc_mem_kb "$PSESS" VmRSS)
        snap A "$PSESS" $acc
        rm -f "$fifo"; mkfifo "$fifo"
        # the client holds its connections until its stdin (the fifo) is closed
        local n=$IDLE_N
        [ "$px" = haproxy ] && [ $n -gt $((HAP_MAXCONN - 16)) ] && n=$((HAP_MAXCONN - 16))
        taskset -c $CPU_LOAD timeout --foreground -k 5 120 "$WORK/bin/benchclient" idle -addr "127.0.0.1:$P_H1" \
            -n "$n" <"$fifo" >"$out" 2>&1 &
        cpid=$!
        exec 7>"$fifo"
        local i; for i in $(seq 1200); do grep -q '^open=' "$out" 2>/dev/null && break; sleep 0.05; done
        sleep 1
        rss1=$(proc_mem_kb "$PSESS" VmRSS)
        snap B "$PSESS" $acc
        exec 7>&-
        wait "$cpid" 2>/dev/null
        rm -f "$fifo"
        local ok failed
        ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' "$out"); failed=$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' "$out")
        req=${ok:-0}; err=${failed:-$n}; secs=''; rps=''; p50=''; p99=''
        extra=$(awk -v a="$rss0" -v b="$rss1" -v n="${ok:-0}" 'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1024 / n }')
        note="RSS ${rss0} -> ${rss1} kB for ${ok:-0} idle connections"
        [ "$n" != "$IDLE_N" ] && note="$note (HAProxy maxconn $HAP_MAXCONN: fd limit $NOFILE)" ;;
    6b)
        # bursts of load separated by gaps about as long as the backend's idle timeout (2 s):
        # pooled connections are closed by the backend just when they are wanted again.
        snap A "$PSESS" $acc
        req=0; err=0; local b r2 e2 s2 tot=0
        for b in 1 2 3 4; do
            on_load 30 wrk -t1 -c16 -d1s "$url" >"$out.$b" 2>&1
            read -r r2 s2 _ _ _ e2 < <(parse_wrk "$out.$b")
            req=$((req + r2)); err=$((err + e2))
            tot=$(awk -v a="$tot" -v b="$s2" 'BEGIN { print a + b }')
            [ $b -lt 4 ] && sleep 2.0
        done
        snap B "$PSESS" $acc
        secs=$tot; rps=$(awk -v n="$req" -v s="$tot" 'BEGIN { if (s > 0) printf "%.2f", n / s }')
        p50=''; p99=''; note="4 bursts of 1 s (wrk -c16), 2 s gaps, Go backend -idle-timeout 2s" ;;
    7)
        snap A "$PSESS" $acc
        on_load 120 curl -s -o /dev/null --max-time 100 \
            -w '%{http_code} %{size_download} %{time_total}\n' "http://127.0.0.1:$P_H1/big" >"$out" 2>&1
        snap B "$PSESS" $acc
        local code size tt
        read -r code size tt <"$out"
        req=1; err=0; [ "$code" = 200 ] && [ "$size" = $((BIG_MB * 1048576)) ] || err=1
        secs=$tt; rps=''; p50=''; p99=''
        extra=$(awk -v s="${size:-0}" -v t="${tt:-0}" 'BEGIN { if (t > 0) printf "%.0f", s / t / 1048576 }')
        note="MiB/s; ${size:-0} bytes, status ${code:-none}" ;;
    esac
    local a0=${A_acc:-0} b0=${B_acc:-0}
    upc=$(( b0 - a0 ))
    [ "$acc" = backend_accepts ] && upc=$((upc - 1))   # the stub_status query itself
    [ "$px" = direct ] && upc=''
    emit "$sc" "$px" "$rd" "${req:-0}" "${secs:-}" "${rps:-}" "${p50:-}" "${p99:-}" "${err:-0}" "$upc" "$extra" "$note"
    [ "$px" != direct ] && stop_proxy
}

# ------------------------------------------------------------------ noise-free counts
# Instructions per request (callgrind, user space) and syscalls per request (strace -c), for
# scenario 1's traffic (HTTP/1.1 keep-alive, h2load --h1 -c 64, a fixed number of requests).
callgrind_total() { # file prefix: instructions summed over its per-process files
    awk 'FNR == 1 {got = 0} !got && /^(summary|totals):/ {s += $2; got = 1} END {if (s) print s}' "$1".[0-9]* 2>/dev/null
}
counts() {
    local px=$1 n1=$COUNT_N n2=$((COUNT_N / 5)) ir1 ir2 f
    local url="http://127.0.0.1:$P_H1/"
    # callgrind: two runs, N1 and N2 requests; (Ir(N1) - Ir(N2)) / (N1 - N2) cancels start-up,
    # shutdown and the 64 connections' accept/close, leaving the per-request cost. One output
    # file per process (%p), summed: h2o forks a second process (neverbleed) that valgrind
    # follows, and with one file name the last process to exit overwrote the other's counts.
    for n in $n1 $n2; do
        f="$WORK/out/callgrind.$px.$n"
        rm -f "$f" "$f".[0-9]*
        start_proxy "$px" $POOL_KA "127.0.0.1:$BK_H1" valgrind --tool=callgrind \
            --callgrind-out-file="$f.%p" --dump-instr=no || { stop_proxy; echo "$px,,,callgrind failed" >>"$COUNTS_RAW"; return; }
        sleep 1
        on_load 600 h2load --h1 -t1 -c64 -n "$n" "$url" >"$f.load" 2>&1
        stop_daemon proxy TERM 60; wait_free $P_H1   # every process has written its counts
    done
    ir1=$(callgrind_total "$WORK/out/callgrind.$px.$n1")
    ir2=$(callgrind_total "$WORK/out/callgrind.$px.$n2")
    local ipr
    ipr=$(awk -v a="${ir1:-0}" -v b="${ir2:-0}" -v n=$((n1 - n2)) 'BEGIN { if (a > 0 && b > 0) printf "%.0f", (a - b) / n }')
    # strace -c -f on the proxy's processes while it serves N1 requests on warm pools.
    start_proxy "$px" $POOL_KA "127.0.0.1:$BK_H1" || { stop_proxy; return; }
    on_load 60 h2load --h1 -t1 -c64 -n 2000 "$url" >/dev/null 2>&1
    local sfile="$WORK/out/strace.$px" pargs=() pid
    for pid in $(sess_pids "${SESS[proxy]}"); do pargs+=(-p "$pid"); done
    # nginx: only the worker serves; the master is idle (its syscalls would add ~0)
    taskset -c $CPU_LOAD strace -c -f -o "$sfile" "${pargs[@]}" 2>/dev/null &
    STRACE_PID=$!
    sleep 1
    on_load 600 h2load --h1 -t1 -c64 -n "$n1" "$url" >"$sfile.load" 2>&1
    kill -INT "$STRACE_PID" 2>/dev/null; wait "$STRACE_PID" 2>/dev/null; STRACE_PID=
    stop_proxy
    local calls spr
    # rows: "% time, seconds, usecs/call, calls, [errors], syscall": sum the calls column
    calls=$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 {c += $4} END {print c + 0}' "$sfile")
    spr=$(awk -v c="${calls:-0}" -v n="$n1" 'BEGIN { if (c > 0) printf "%.2f", c / n }')
    local top; top=$(awk -v n="$n1" '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 { printf "%s=%.2f\n", $NF, $4 / n }' "$sfile" | head -6 | paste -sd' ')
    echo "$px,$ipr,$spr,$top" >>"$COUNTS_RAW"
    log "  counts $px: instructions/request=$ipr syscalls/request=$spr ($top)"
}

# ------------------------------------------------------------------ profile
# bench/run.sh profile [PROXY]: scenario 1's load against one proxy (default ferry) under
# callgrind (COUNT_N requests, h2load --h1 -c 64) and under perf (DURATION s of wrk -c 64,
# cpu-clock samples with call graphs, kernel included when perf may see it). Writes
# bench/.work/profile/{callgrind.out,callgrind.txt,perf.data,perf.txt}.
profile() {
    local px=${1:-ferry} dir="$WORK/profile" url="http://127.0.0.1:$P_H1/"
    mkdir -p "$dir"
    start_backend
    start_proxy "$px" $POOL_KA "127.0.0.1:$BK_H1" valgrind --tool=callgrind \
        --callgrind-out-file="$dir/callgrind.out" --dump-instr=no || die "$px under callgrind did not start"
    on_load 60 h2load --h1 -t1 -c64 -n 1000 "$url" >/dev/null 2>&1
    callgrind_control -z "${SESS[proxy]}" >/dev/null 2>&1   # start-up and warm-up not counted
    on_load 600 h2load --h1 -t1 -c64 -n "$COUNT_N" "$url" >"$dir/callgrind.load" 2>&1
    stop_daemon proxy TERM; wait_free $P_H1
    callgrind_annotate --inclusive=no "$dir/callgrind.out" 2>/dev/null | head -60 >"$dir/callgrind.txt"
    callgrind_annotate --inclusive=yes "$dir/callgrind.out" 2>/dev/null | head -60 >"$dir/callgrind-inclusive.txt"
    log "callgrind: $dir/callgrind.txt (self), callgrind-inclusive.txt ($COUNT_N requests)"
    if command -v perf >/dev/null 2>&1; then
        start_proxy "$px" $POOL_KA "127.0.0.1:$BK_H1" || die "$px did not start"
        on_load 30 wrk -t1 -c64 -d1s "$url" >/dev/null 2>&1
        perf record -e cpu-clock -g -o "$dir/perf.data" -p "$(sess_pids "${SESS[proxy]}" | paste -sd,)" \
            >"$dir/perf.record.log" 2>&1 &
        local perf_pid=$!
        sleep 0.5
        on_load "$(dur_t "$DURATION")" wrk -t1 -c64 -d${DURATION}s "$url" >"$dir/perf.load" 2>&1
        kill -INT "$perf_pid" 2>/dev/null; wait "$perf_pid" 2>/dev/null
        stop_proxy
        { perf report -i "$dir/perf.data" --stdio --no-children --sort dso 2>/dev/null \
              | grep -E '^ +[0-9.]+%' | head -8
          echo
          perf report -i "$dir/perf.data" --stdio --no-children --sort symbol 2>/dev/null \
              | grep -E '^ +[0-9.]+%' | head -50; } >"$dir/perf.txt"
        log "perf: $dir/perf.txt"
    fi
    stop_daemon backend
}

# ------------------------------------------------------------------ main
main() {
    mkdir -p "$WORK"/{run,logs,cfg,out,tmp,bin} "$RESULTS_DIR"
    rm -f "$WORK"/logs/* "$WORK"/out/* 2>/dev/null
    install_deps
    build
    cat "$CERT" "$KEY" >"$WORK/cert.pem"
    head -c $BODY_BYTES /dev/urandom >"$WORK/body.bin"
    # 10,000 client connections + as many proxy sockets: raise the soft fd limit to the hard one
    ulimit -n "$(ulimit -Hn)" 2>/dev/null
    NOFILE=$(ulimit -n); [ "$NOFILE" = unlimited ] && NOFILE=65536
    [ "$NOFILE" -gt 65536 ] && NOFILE=65536
    NOFILE=$((NOFILE - 64))   # valgrind keeps a few descriptors for itself
    # HAProxy reserves two descriptors per connection (client and server side) and will not
    # start with maxconn above half the limit: with a limit of 20000 it holds 9,968 at most.
    HAP_MAXCONN=$(( (NOFILE - 64) / 2 )); [ $HAP_MAXCONN -gt 30000 ] && HAP_MAXCONN=30000
    [ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((IDLE_N + 1000)) ] \
        || log "warning: ulimit -n $(ulimit -n) is low for $IDLE_N idle connections"
    for port in $BK_H1 $BK_H2C $BK_TLS $BK_STATS $GO_BK $P_H1 $P_TLS $P_H2C $P_UPTLS; do
        listening $port && die "port $port is already in use"
    done
    RAW=$WORK/raw.csv
    COUNTS_RAW=$WORK/counts.csv
    echo "scenario,proxy,round,requests,seconds,rps,p50_ms,p99_ms,errors,cpu_us_per_req,cpu0_busy_pct,cpu1_busy_pct,cpu0_other_pct,upstream_conns,req_per_upstream_conn,peak_rss_kb,extra,note" >"$RAW"
    echo "proxy,instr_per_req,syscalls_per_req,top_syscalls" >"$COUNTS_RAW"
    local t0; t0=$(date +%s)
    log "ferry $("$FERRY" -V 2>&1 | head -1); rounds=$ROUNDS duration=${DURATION}s scenarios=$SCENARIOS proxies=$PROXIES"
    start_backend
    local sc list=() rd px
    IFS=, read -r -a sel <<<"$SCENARIOS"
    for sc in "${sel[@]}"; do
        case $sc in 4) list+=(4a 4b 4c) ;; 6) list+=(6a 6b) ;; *) list+=("$sc") ;; esac
    done
    for sc in "${list[@]}"; do
        log "scenario $sc"
        [ "$sc" = 6b ] && start_go_backend 2s
        local rounds=$ROUNDS
        for rd in $(seq "$rounds"); do
            for px in $PROXIES; do
                run_case "$sc" "$px" "$rd"
                # the floor right after ferry: the two compare under the same conditions
                if [ "$sc" = 1 ] && [ "$FLOOR" = 1 ] && [ "$px" = ferry ]; then run_case 1 floor "$rd"; fi
            done
            if [ "$sc" = 1 ] && [ "$DIRECT" = 1 ]; then run_case 1 direct "$rd"; fi
        done
        [ "$sc" = 6b ] && stop_daemon gobackend
    done
    if [ "$COUNTS" = 1 ] && [[ ",$SCENARIOS," == *",1,"* ]]; then
        log "counts: callgrind and strace, $COUNT_N requests"
        for px in $PROXIES; do counts "$px"; done
    fi
    stop_daemon backend
    local elapsed=$(( $(date +%s) - t0 ))
    log "measured in ${elapsed}s; writing $RESULTS_DIR"
    python3 -B "$BENCH/report.py" --raw "$RAW" --counts "$COUNTS_RAW" --out "$RESULTS_DIR" \
        --rounds "$ROUNDS" --duration "$DURATION" --elapsed "$elapsed" \
        --ferry-version "$("$FERRY" -V 2>&1 | head -1) ($FERRY_ID)" --count-n "$COUNT_N" \
        $( [ "$RESULTS_DIR" = "$BENCH/results" ] && echo --timestamped )
}

if [ "${1:-}" = profile ]; then
    mkdir -p "$WORK"/{run,logs,cfg,out,tmp,bin}
    build; cat "$CERT" "$KEY" >"$WORK/cert.pem"
    ulimit -n "$(ulimit -Hn)" 2>/dev/null; NOFILE=$(( $(ulimit -n) - 64 )); HAP_MAXCONN=$(( (NOFILE - 64) / 2 ))
    profile "${2:-ferry}"
    exit 0
fi
main "$@"
