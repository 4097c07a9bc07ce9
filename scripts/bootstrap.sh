#!/usr/bin/env bash
# Installs every Debian package that tether's build, tests and demo need.
# Idempotent: when everything is present it only checks and returns. Services
# that packages bring (apache2, nginx) are installed, never started: the
# tests start their own on loopback.
set -euo pipefail

packages=(
    build-essential cmake pkg-config clang llvm libclang-rt-14-dev
    libtss2-dev libmbedtls-dev libcjson-dev libcmocka-dev libsqlite3-dev libpq-dev
    libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
    swtpm swtpm-tools tpm2-tools openssl sqlite3 postgresql curl python3 valgrind gdb
    help2man man-db systemd util-linux
    nginx apache2 libapache2-mod-auth-openidc
)

# Node.js and npm run the stock client libraries of the tests (the openai
# and jose npm packages). A machine may already have them from elsewhere
# than Debian (whose npm then conflicts with that nodejs): the commands are
# what counts, and Debian's packages are installed only when they are
# missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

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
# No service is started by a package's install script while this runs
# (policy-rc.d, exit 101: "action forbidden"), unless the machine has its own
# policy already.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
