#!/usr/bin/env bash
# ringmq developer entry point: installs the Debian packages that are missing,
# builds, and then either starts the broker or runs the whole test suite.
#
#   tools/dev.sh run    build and start the broker on 127.0.0.1:5672 (etc/ringmq.conf)
#   tools/dev.sh test   build (normal and ASan+UBSan) and run every test
#
# Builds go to build/normal and build/sanitize inside the source tree.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

packages=(
    build-essential autoconf automake libtool pkg-config
    liburing-dev libxxhash-dev libmimalloc-dev libcmocka-dev libbenchmark-dev
    clang libclang-rt-14-dev
    python3 python3-pamqp python3-pika python3-aio-pika python3-kombu librabbitmq-dev
)

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q
    as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() { # build DIR [configure args...]
    local dir=$1
    shift
    [ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ] || [ "$top/configure" -nt "$dir/Makefile" ]; then
        (cd "$dir" && "$top/configure" -q "$@")
    fi
    make -C "$dir" -j"$jobs" all
}

cmd=${1:-}
case "$cmd" in
run)
    install_missing
    build "$top/build/normal"
    mkdir -p "$top/build/data"
    exec "$top/build/normal/ringmq" --config "$top/etc/ringmq.conf" --data-dir "$top/build/data"
    ;;
test)
    install_missing
    (cd "$top" && autoreconf -fi >/dev/null 2>&1)
    status=0
    build "$top/build/normal"
    make -C "$top/build/normal" -j"$jobs" check || status=1
    build "$top/build/sanitize" --enable-sanitizers
    make -C "$top/build/sanitize" -j"$jobs" check || status=1
    "$top/tools/test-summary.sh" "$top/build/normal" "$top/build/sanitize" || status=1
    exit $status
    ;;
*)
    echo "usage: tools/dev.sh run|test" >&2
    exit 2
    ;;
esac
