#!/usr/bin/env bash
# Installs every Debian package that tether's build, tests and demo need.
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang llvm libclang-rt-14-dev
    libtss2-dev libmbedtls-dev libcjson-dev libcmocka-dev libsqlite3-dev
    libmicrohttpd-dev libcurl4-openssl-dev
    swtpm swtpm-tools tpm2-tools openssl sqlite3 curl python3 valgrind nodejs npm
    help2man man-db systemd
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "bootstrap: all ${#packages[@]} packages present"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing packages: ${missing[*]}" >&2
    echo "bootstrap: run this script as root (or install them with apt-get)" >&2
    exit 1
fi

echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
