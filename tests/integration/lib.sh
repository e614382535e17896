# lib.sh — shared helpers for ferry's integration tests. Source it from a test_*.sh:
#
#   . "$(dirname "$0")/lib.sh"
#
# Every process a test starts is recorded and stopped by the EXIT trap (stop_all). Waiting is
# done by polling with a deadline (wait_for), never by a bare sleep. Assertions are "soft":
# they print PASS/FAIL lines and count failures; `finish` exits non-zero if any failed.

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$IT_DIR/../.." && pwd)
BIN="$IT_DIR/.work/bin"
PY=/usr/bin/python3
FERRY=${FERRY:-$ROOT/src/ferry}
RAW="$PY $IT_DIR/rawhttp.py"
MKCONFIG="$PY $IT_DIR/mkconfig.py"
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
WORK=${WORK:-$IT_DIR/.work/$TEST_NAME}
mkdir -p "$WORK"
: >"$WORK/.picked_ports"   # (see pick_port)

PIDS=()
FERRY_PIDS=()
FAILS=0
CHECKS=0
_SEQ=0

_T0=$(date +%s%N)
log() { printf '# [%5.1fs] %s\n' "$(( ($(date +%s%N) - _T0) / 1000000 ))e-3" "$*"; }

# ---------------------------------------------------------------- assertions

pass() { CHECKS=$((CHECKS + 1)); printf '  PASS: %s\n' "$*"; }
fail() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); printf '  FAIL: %s\n' "$*"; }

assert_eq() { # expected actual message
    if [ "$1" == "$2" ]; then pass "$3 (= $1)"; else fail "$3: expected [$1], got [$2]"; fi
}
assert_ne() { # unexpected actual message
    if [ "$1" != "$2" ]; then pass "$3 ($2 != $1)"; else fail "$3: expected anything but [$1]"; fi
}
assert_le() { # actual max message   (integers)
    if [ "${1:-x}" -eq "${1:-x}" ] 2>/dev/null && [ "$1" -le "$2" ]; then pass "$3 ($1 <= $2)"
    else fail "$3: expected <= $2, got [$1]"; fi
}
assert_ge() { # actual min message   (integers)
    if [ "${1:-x}" -eq "${1:-x}" ] 2>/dev/null && [ "$1" -ge "$2" ]; then pass "$3 ($1 >= $2)"
    else fail "$3: expected >= $2, got [$1]"; fi
}
assert_gt() { # actual min message   (integers)
    if [ "${1:-x}" -eq "${1:-x}" ] 2>/dev/null && [ "$1" -gt "$2" ]; then pass "$3 ($1 > $2)"
    else fail "$3: expected > $2, got [$1]"; fi
}
assert_between() { # actual lo hi message  (decimals)
    if $PY -c "import sys; v=float(sys.argv[1]); sys.exit(0 if float(sys.argv[2]) <= v <= float(sys.argv[3]) else 1)" "$1" "$2" "$3" 2>/dev/null
    then pass "$4 ($2 <= $1 <= $3)"; else fail "$4: expected within [$2, $3], got [$1]"; fi
}
assert_contains() { # haystack needle message
    if printf '%s' "$1" | grep -qiF -- "$2"; then pass "$3 (contains '$2')"
    else fail "$3: expected to contain [$2], got:"; printf '%s\n' "$1" | head -n 40 | sed 's/^/        | /'; fi
}
assert_not_contains() { # haystack needle message
    if ! printf '%s' "$1" | grep -qiF -- "$2"; then pass "$3 (no '$2')"
    else fail "$3: expected NOT to contain [$2], got:"; printf '%s\n' "$1" | grep -iF -- "$2" | head -n 10 | sed 's/^/        | /'; fi
}
assert_match() { # haystack extended-regex message
    if printf '%s' "$1" | grep -qE -- "$2"; then pass "$3 (matches /$2/)"
    else fail "$3: expected to match /$2/, got:"; printf '%s\n' "$1" | head -n 40 | sed 's/^/        | /'; fi
}
assert_no_match() { # haystack extended-regex message
    if ! printf '%s' "$1" | grep -qE -- "$2"; then pass "$3 (no /$2/)"
    else fail "$3: expected NOT to match /$2/, got:"; printf '%s\n' "$1" | grep -E -- "$2" | head -n 10 | sed 's/^/        | /'; fi
}

# Ends the test: stops every ferry still running (SIGTERM; it must exit 0), checks that no
# ferry crashed or reported sanitizer errors (leaks are reported at exit), then exits.
finish() {
    local f pid
    for pid in "${FERRY_PIDS[@]}"; do
        alive "$pid" || continue
        if ! _exited "$pid"; then
            stop_pid "$pid" TERM 10
            [ "$STOP_STATUS" = 0 ] || fail "ferry pid $pid exited with status $STOP_STATUS on SIGTERM"
        else
            wait "$pid" 2>/dev/null; STOP_STATUS=$?
            [ "$STOP_STATUS" = 0 ] || fail "ferry pid $pid had exited with status $STOP_STATUS before the end of the test"
        fi
    done
    for f in "$WORK"/ferry.*.log; do
        [ -f "$f" ] || continue
        if grep -qE 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:|LeakSanitizer' "$f"; then
            fail "sanitizer report in $(basename "$f")"
            grep -E -A5 'Sanitizer|runtime error:' "$f" | head -n 30 | sed 's/^/        | /'
        fi
    done
    if [ "$FAILS" -gt 0 ]; then
        printf '%s: %d of %d checks failed\n' "$TEST_NAME" "$FAILS" "$CHECKS"
        exit 1
    fi
    printf '%s: all %d checks passed\n' "$TEST_NAME" "$CHECKS"
    exit 0
}

# ---------------------------------------------------------------- waiting

# wait_for SECONDS CMD [ARGS...] — polls CMD every 50 ms until it succeeds; 1 on timeout.
wait_for() {
    local secs=$1; shift
    local ms int frac
    if [[ $secs == *.* ]]; then
        int=${secs%.*}; frac=${secs#*.}000; frac=${frac:0:3}
        ms=$(( ${int:-0} * 1000 + 10#$frac ))
    else
        ms=$(( secs * 1000 ))
    fi
    local end=$(( $(date +%s%N) + ms * 1000000 ))
    while :; do
        if "$@"; then return 0; fi
        if [ "$(date +%s%N)" -ge "$end" ]; then return 1; fi
        sleep 0.05
    done
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

port_open() { # PORT [HOST]
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}
port_closed() { ! port_open "$@"; }
port_listening() { # PORT — a listening socket exists (does not connect)
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

# pick_port — a free TCP port in 20000..32000 (below the ephemeral range 32768-60999), never
# one this test picked before: a port picked earlier may be free again while its process is
# down and would be handed out twice (it runs in $(...), so the record is a file).
pick_port() {
    local p i
    for i in $(seq 1 200); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
        grep -qx "$p" "$WORK/.picked_ports" 2>/dev/null && continue
        if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
            echo "$p" >>"$WORK/.picked_ports"
            echo "$p"
            return 0
        fi
    done
    echo "pick_port: no free port" >&2
    return 1
}

# ---------------------------------------------------------------- processes

_track() { PIDS+=("$1"); }

alive() { kill -0 "$1" 2>/dev/null; }

# stop_pid PID [SIGNAL] [SECONDS] — signal, wait up to SECONDS (default 5), then SIGKILL.
# Sets STOP_STATUS to the exit status when PID is a child of this shell.
stop_pid() {
    local pid=$1 sig=${2:-TERM} secs=${3:-5}
    STOP_STATUS=
    alive "$pid" || { wait "$pid" 2>/dev/null; STOP_STATUS=$?; return 0; }
    kill -"$sig" "$pid" 2>/dev/null
    if ! wait_for "$secs" _exited "$pid"; then
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    STOP_STATUS=$?
}
_exited() { ! alive "$1" || [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = Z ]; }

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        alive "$pid" && kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        if alive "$pid"; then
            wait_for 5 _exited "$pid" || kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    PIDS=()
}
trap stop_all EXIT
trap 'echo "# interrupted"; exit 130' INT TERM

# build_peers — builds the Go peers into $BIN (cached: rebuilt only when sources change).
build_peers() {
    local p src
    mkdir -p "$BIN" "$IT_DIR/.work/gocache"
    for p in backend rawrecorder kaclient loadclient grpcpeer; do
        src="$IT_DIR/go/src/ferrytest/$p"
        if [ -x "$BIN/$p" ] && [ -z "$(find "$src" -newer "$BIN/$p" -name '*.go' 2>/dev/null)" ]; then
            continue
        fi
        GO111MODULE=off GOPATH="$IT_DIR/go:/usr/share/gocode" GOCACHE="$IT_DIR/.work/gocache" \
            GOFLAGS= go build -o "$BIN/$p" "ferrytest/$p" || return 1
    done
}

_read_listen() { grep -q '^LISTEN ' "$1" 2>/dev/null; }

# start_backend [--port P] [backend flags...] — starts the Go backend.
# Sets BACKEND_PID, BACKEND_PORT, BACKEND_ADDR, BACKEND_LOG.
start_backend() {
    local port
    if [ "$1" = --port ]; then port=$2; shift 2; else port=$(pick_port) || return 1; fi
    _SEQ=$((_SEQ + 1))
    local out="$WORK/backend.$_SEQ.out"
    BACKEND_LOG="$WORK/backend.$_SEQ.err"
    "$BIN/backend" -listen "127.0.0.1:$port" "$@" >"$out" 2>"$BACKEND_LOG" &
    BACKEND_PID=$!
    _track "$BACKEND_PID"
    if ! wait_for 10 _read_listen "$out"; then
        echo "start_backend: no LISTEN line within 10s" >&2; cat "$BACKEND_LOG" >&2
        return 1
    fi
    BACKEND_ADDR=$(sed -n 's/^LISTEN //p' "$out" | head -n1)
    BACKEND_PORT=${BACKEND_ADDR##*:}
}

# start_rawrecorder DIR [rawrecorder flags, e.g. -respond RDIR] — sets REC_PID, REC_PORT,
# REC_ADDR, REC_DIR.
start_rawrecorder() {
    REC_DIR=$1; shift
    mkdir -p "$REC_DIR"
    local port; port=$(pick_port) || return 1
    _SEQ=$((_SEQ + 1))
    local out="$WORK/rawrecorder.$_SEQ.out"
    "$BIN/rawrecorder" -listen "127.0.0.1:$port" -dir "$REC_DIR" "$@" >"$out" 2>"$WORK/rawrecorder.$_SEQ.err" &
    REC_PID=$!
    _track "$REC_PID"
    if ! wait_for 10 _read_listen "$out"; then
        echo "start_rawrecorder: no LISTEN line" >&2; return 1
    fi
    REC_ADDR=$(sed -n 's/^LISTEN //p' "$out" | head -n1)
    REC_PORT=${REC_ADDR##*:}
}

# start_ferry CONFIG PORT — starts ferry in the foreground mode (in background of this shell)
# and waits until PORT accepts connections. Sets FERRY_PID and FERRY_LOG (its stderr).
start_ferry() {
    local cfg=$1 port=$2
    if [ ! -x "$FERRY" ]; then
        fail "ferry binary not found at $FERRY (run make)"
        return 1
    fi
    _SEQ=$((_SEQ + 1))
    FERRY_LOG="$WORK/ferry.$_SEQ.log"
    "$FERRY" -c "$cfg" 2>"$FERRY_LOG" >>"$FERRY_LOG" &
    FERRY_PID=$!
    _track "$FERRY_PID"
    FERRY_PIDS+=("$FERRY_PID")
    if ! wait_for 10 _ferry_up "$FERRY_PID" "$port"; then
        fail "ferry did not accept on port $port within 10s (config $cfg)"
        sed 's/^/        | /' "$FERRY_LOG" | tail -n 20
        return 1
    fi
}
_ferry_up() { alive "$1" && port_open "$2"; }

# make_config FILE --port P --backend ADDR [mkconfig options] — writes a config file.
make_config() {
    local f=$1; shift
    $MKCONFIG "$@" >"$f" || { fail "mkconfig failed"; return 1; }
}

# ---------------------------------------------------------------- HTTP helpers

CURL=(curl -sS --max-time 10 --connect-timeout 5)

# http_status URL [curl args] — prints the status code only ("000" on failure).
http_status() {
    local url=$1; shift
    "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null
}

# backend_stat ADDR FIELD — reads a counter from the backend's /stats directly.
backend_stat() {
    "${CURL[@]}" "http://$1/stats" | $PY -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# json_get JSON-TEXT PYTHON-EXPR — evaluates EXPR with the parsed JSON bound to j.
json_get() {
    printf '%s' "$1" | $PY -c "import json,sys
j=json.load(sys.stdin)
try:
    v=$2
except Exception as e:
    v='<missing: %s>' % e
print(v if not isinstance(v,(list,dict)) else json.dumps(v))"
}

_file_lines_ge() { [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]; }
# wait_lines FILE N [SECONDS] — waits until FILE has at least N lines.
wait_lines() { wait_for "${3:-10}" _file_lines_ge "$1" "$2"; }

_grep_q() { grep -qE -- "$2" "$1" 2>/dev/null; }
# wait_grep FILE REGEX [SECONDS]
wait_grep() { wait_for "${3:-10}" _grep_q "$1" "$2"; }

# access-log field value from a line: alog_field LINE NAME
alog_field() { printf '%s\n' "$1" | grep -oE "(^| )$2=[^ ]*" | head -n1 | sed "s/^ *$2=//"; }

# ---------------------------------------------------------------- HTTP/2 and TLS helpers

H2PEER="$PY $IT_DIR/h2peer.py"

# make_certs DIR — throwaway test PKI in DIR (cached: reused when DIR/ca.crt exists):
#   ca.crt/ca.key, localhost.crt/.key (SAN localhost, 127.0.0.1, ::1),
#   alt.crt/.key (CN alt.test, SAN alt.test, *.wild.test). EC P-256, 2 days.
make_certs() {
    local d=$1 name cn san
    mkdir -p "$d"
    [ -s "$d/ca.crt" ] && [ -s "$d/localhost.crt" ] && [ -s "$d/alt.crt" ] && return 0
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=ferry test CA" -keyout "$d/ca.key" -out "$d/ca.crt" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
        >/dev/null 2>&1 || return 1
    for name in localhost alt; do
        if [ $name = localhost ]; then cn=localhost; san="DNS:localhost,IP:127.0.0.1,IP:::1"
        else cn=alt.test; san="DNS:alt.test,DNS:*.wild.test"; fi
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
            -keyout "$d/$name.key" -out "$d/$name.csr" >/dev/null 2>&1 || return 1
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$d/$name.ext"
        openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
            -days 2 -extfile "$d/$name.ext" -out "$d/$name.crt" >/dev/null 2>&1 || return 1
    done
}

# h2_frames_of OUTPUT SID — the lines of h2peer output for one stream (RESP/H/T/BODY/END/RST).
h2_stream() { printf '%s\n' "$1" | grep -E "^(RESP|H|T|BODY|BODYTEXT|END|RST|SENT) $2 "; }

# ferry_rss_kb PID — resident set size in kB.
ferry_rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null; }

# ferry_is_asan — true when $FERRY is built with AddressSanitizer (RSS says nothing there).
ferry_is_asan() { grep -qa __asan_init "$FERRY" 2>/dev/null; }

# ferry_rss_unreliable — true when ferry's RSS measures a tool, not ferry: an ASan build, or
# ferry under valgrind (make check-valgrind's valgrind-ferry.sh as $FERRY).
ferry_rss_unreliable() {
    ferry_is_asan || case "$FERRY" in *valgrind-ferry.sh) true ;; *) false ;; esac
}

# h2_body OUTPUT SID — the body text of stream SID from "h2peer.py --body" output (<= 4 KiB).
h2_body() {
    printf '%s\n' "$1" | $PY -c "import ast,sys
for ln in sys.stdin:
    if ln.startswith('BODYTEXT $2 '):
        sys.stdout.write(ast.literal_eval(ln.split(' ', 2)[2]).decode('latin-1'))"
}

# ---------------------------------------------------------------- HTTP/2 backends (upstream h2)

H2BACKEND="$PY $IT_DIR/h2backend.py"

# start_h2backend [--port P] [h2backend.py flags...] — starts the frame-level h2 backend
# logging to its own file. Sets H2B_PID, H2B_PORT, H2B_ADDR, H2B_LOG (the event log:
# "open C", "req C SID METHOD PATH ...", "refused ...", "dropped ...", "goaway ...", "close ...").
start_h2backend() {
    local port
    if [ "$1" = --port ]; then port=$2; shift 2; else port=$(pick_port) || return 1; fi
    _SEQ=$((_SEQ + 1))
    local out="$WORK/h2backend.$_SEQ.out"
    H2B_LOG="$WORK/h2backend.$_SEQ.log"
    : >"$H2B_LOG"
    $H2BACKEND --listen "127.0.0.1:$port" --log "$H2B_LOG" "$@" >"$out" 2>&1 &
    H2B_PID=$!
    _track "$H2B_PID"
    if ! wait_for 10 _read_listen "$out"; then
        echo "start_h2backend: no LISTEN line within 10s" >&2; cat "$out" >&2
        return 1
    fi
    H2B_ADDR=$(sed -n 's/^LISTEN //p' "$out" | head -n1)
    H2B_PORT=${H2B_ADDR##*:}
}

# ferry_metric ADMIN-ADDR NAME{LABELS} — one sample of ferry's /metrics (empty if absent).
ferry_metric() {
    curl -sS --max-time 5 "http://$1/metrics" 2>/dev/null | awk -v k="$2" 'index($0, k " ") == 1 { print $2 }'
}

# ---------------------------------------------------------------- gRPC peer

# start_grpcpeer [--port P] [grpcpeer server flags: -tls CERT:KEY -max-streams N -id X
# -graceful-on-term] — starts "grpcpeer server" with its /stats sidecar on another picked
# port (read it with: backend_stat "$GRPC_STATS_ADDR" FIELD). Sets GRPC_PID, GRPC_PORT,
# GRPC_ADDR, GRPC_STATS_ADDR, GRPC_LOG (stderr: connections, GOAWAY/RST frames, cancellations).
start_grpcpeer() {
    local port sport
    if [ "$1" = --port ]; then port=$2; shift 2; else port=$(pick_port) || return 1; fi
    sport=$(pick_port) || return 1
    while [ "$sport" = "$port" ]; do sport=$(pick_port) || return 1; done
    _SEQ=$((_SEQ + 1))
    local out="$WORK/grpcpeer.$_SEQ.out"
    GRPC_LOG="$WORK/grpcpeer.$_SEQ.err"
    "$BIN/grpcpeer" server -listen "127.0.0.1:$port" -stats "127.0.0.1:$sport" "$@" \
        >"$out" 2>"$GRPC_LOG" &
    GRPC_PID=$!
    _track "$GRPC_PID"
    if ! wait_for 10 _read_listen "$out"; then
        echo "start_grpcpeer: no LISTEN line within 10s" >&2; cat "$GRPC_LOG" >&2
        return 1
    fi
    GRPC_ADDR=$(sed -n 's/^LISTEN //p' "$out" | head -n1)
    GRPC_PORT=${GRPC_ADDR##*:}
    GRPC_STATS_ADDR=$(sed -n 's/^STATS //p' "$out" | head -n1)
}

# ---------------------------------------------------------------- baselines (fds, metrics)

# ferry_fds PID — number of open file descriptors of PID (entries of /proc/PID/fd); fails
# (prints nothing) when PID is gone.
ferry_fds() { [ -d "/proc/$1/fd" ] && ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# ferry_metric_sum ADMIN-ADDR NAME — the sum of every sample of metric NAME (all label sets);
# empty if the scrape fails or NAME is absent.
ferry_metric_sum() {
    curl -sS --max-time 5 "http://$1/metrics" 2>/dev/null |
        awk -v k="$2" '$1 == k || index($1, k "{") == 1 { s += $2; n++ } END { if (n) printf "%d\n", s }'
}
