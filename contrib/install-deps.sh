#!/bin/sh
# Install what ferry needs on Debian 12, as root. Idempotent: when every package is already
# installed it does nothing (no apt-get update), so repeated runs take well under a second.
#
#   contrib/install-deps.sh               build + test dependencies (everything `make check` uses)
#   contrib/install-deps.sh --build-only  only what `make` and `make demo` need
set -eu

usage() {
    echo "usage: $0 [--build-only]" >&2
    exit 2
}

build_only=no
for arg in "$@"; do
    case "$arg" in
        --build-only) build_only=yes ;;
        -h|--help) echo "usage: $0 [--build-only]"; exit 0 ;;
        *) usage ;;
    esac
done

# Building ferry (configure.ac checks every library with pkg-config).
BUILD_PKGS="build-essential autoconf automake pkg-config libevent-dev libnghttp2-dev
libssl-dev libyaml-dev check libsystemd-dev"
# `make demo`: the demo backend is a Go program; the quick start tests with curl.
DEMO_PKGS="golang-go curl ca-certificates"
# `make check`: Go peers (GOPATH mode against Debian's /usr/share/gocode), command-line peers.
# `make fuzz` (clang's libFuzzer) and `make lint` (cppcheck; clang-tidy for `make tidy`).
# The status page test drives headless Chromium with python3-selenium and chromium-driver.
TEST_PKGS="golang-golang-x-net-dev golang-google-grpc-dev golang-goprotobuf-dev nghttp2-client
python3-h2 openssl valgrind iproute2 netcat-openbsd git prometheus dnsmasq-base
clang libclang-rt-14-dev cppcheck clang-tidy groff-base man-db
chromium chromium-driver python3-selenium"

if [ "$build_only" = yes ]; then
    PKGS="$BUILD_PKGS $DEMO_PKGS"
else
    PKGS="$BUILD_PKGS $DEMO_PKGS $TEST_PKGS"
fi

# Packages not yet in the "install ok installed" state.
missing=""
for p in $PKGS; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "install-deps: all packages already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: run this script as root to install them" >&2
    exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086  # word splitting of the package list is intended
apt-get install -y --no-install-recommends $missing </dev/null
echo "install-deps: done"
