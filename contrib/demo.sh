#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and on_signal are only called from traps
# `make demo`: build ferry, start the demo backend on 127.0.0.1:9000 in the background, then
# run ferry in the foreground with conf/ferry.yaml (listening on 127.0.0.1:8080 and
# [::1]:8080). Ctrl-C or SIGTERM stops both.
#
#   contrib/demo.sh [CONFIG]     CONFIG defaults to conf/ferry.yaml
#
# Environment: DEMO_BACKEND_LISTEN (default 127.0.0.1:9000) must match the upstream server in
# CONFIG; DEMO_FERRY_URL (default http://127.0.0.1:8080/) is only used in the printed hint.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
work=$root/.work                        # git-ignored scratch space (Go cache, binaries)
config=${1:-conf/ferry.yaml}
backend_listen=${DEMO_BACKEND_LISTEN:-127.0.0.1:9000}
ferry_url=${DEMO_FERRY_URL:-http://127.0.0.1:8080/}
backend_host=${backend_listen%:*}
backend_port=${backend_listen##*:}

say() { printf 'demo: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# port_open HOST PORT: true when something accepts a TCP connection there.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

[ -f "$config" ] || die "config file $config not found"
command -v go >/dev/null || die "go not found: run contrib/install-deps.sh --build-only"

say "building ferry"
"${MAKE:-make}" src/ferry

say "building the demo backend"
mkdir -p "$work"
GO111MODULE=off GOPATH="$work/gopath" GOCACHE="$work/gocache" GOFLAGS="" \
    go build -o "$work/demo-backend" ./contrib/demo-backend

if port_open "$backend_host" "$backend_port"; then
    die "something already listens on $backend_listen; stop it first"
fi

backend_pid=
ferry_pid=
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$ferry_pid" ] && kill -0 "$ferry_pid" 2>/dev/null; then
        kill -TERM "$ferry_pid" 2>/dev/null || true
        wait "$ferry_pid" 2>/dev/null || true
    fi
    if [ -n "$backend_pid" ] && kill -0 "$backend_pid" 2>/dev/null; then
        kill -TERM "$backend_pid" 2>/dev/null || true
        wait "$backend_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# A signal to this script becomes one graceful stop of ferry (SIGTERM); the loop below then
# sees ferry exit, and the EXIT trap stops the backend. ferry runs in its own session (setsid)
# so that a Ctrl-C on the terminal reaches it only through here: a second SIGINT/SIGTERM would
# make ferry skip the graceful drain.
stop_requested=no
on_signal() {
    stop_requested=yes
    if [ -n "$ferry_pid" ]; then
        kill -TERM "$ferry_pid" 2>/dev/null || true
    else
        exit 130
    fi
}
trap on_signal INT TERM HUP

"$work/demo-backend" -listen "$backend_listen" &
backend_pid=$!

# Wait until the backend accepts connections (poll with a deadline, no blind sleep).
deadline=$((SECONDS + 10))
until port_open "$backend_host" "$backend_port"; do
    kill -0 "$backend_pid" 2>/dev/null || die "the demo backend exited during startup"
    [ "$SECONDS" -lt "$deadline" ] || die "the demo backend did not listen on $backend_listen within 10s"
    sleep 0.05
done
say "demo backend is up on http://$backend_listen/ (pid $backend_pid)"

say "starting: src/ferry -c $config"
setsid src/ferry -c "$config" &
ferry_pid=$!

# Tell the user how to try it once ferry accepts (or after a few seconds if CONFIG listens
# somewhere else).
hint_host=${ferry_url#*://}
hint_host=${hint_host%%/*}
deadline=$((SECONDS + 5))
while kill -0 "$ferry_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ] &&
      ! port_open "${hint_host%:*}" "${hint_host##*:}"; do
    sleep 0.05
done
if kill -0 "$ferry_pid" 2>/dev/null; then
    say "ferry is running (pid $ferry_pid). From another terminal try:"
    say "    curl $ferry_url"
    say "Press Ctrl-C to stop ferry and the demo backend."
fi

# Wait for ferry; `wait` returns early (status > 128) when a trapped signal arrives.
status=0
while :; do
    wait "$ferry_pid" && status=0 || status=$?
    kill -0 "$ferry_pid" 2>/dev/null || break
done
ferry_pid=
if [ "$stop_requested" = yes ]; then
    say "stopped (ferry exit status $status)"
    exit "$status"
fi
say "ferry exited with status $status"
exit "$status"
