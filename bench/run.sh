#!/usr/bin/env bash
# Runs tether's benchmarks on this machine and prints the figures
# (bench/README.md). Everything listens on 127.0.0.1 and is removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/swtpm.sh"
COUNT=${BENCH_COUNT:-200}
DEVICES=${BENCH_DEVICES:-8}
MANY_DEVICES=${BENCH_MANY_DEVICES:-1000}
WORKERS=${BENCH_WORKERS:-16}
SECONDS_LOAD=${BENCH_SECONDS:-10}

"$top/scripts/bootstrap.sh" >/dev/null
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc 2>/dev/null || echo 2)" \
    --target tether-agent tether-fleetd tetherctl bench_exchange bench_bulk_devices \
    bench_group_commit bench_measured_boot >/dev/null
BIN=$top/build/bin
BENCH=$top/build/bench/bench_exchange

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench.XXXXXX")
FLEETD_PID=
cleanup() {
    [ -n "$FLEETD_PID" ] && kill "$FLEETD_PID" 2>/dev/null && wait "$FLEETD_PID" 2>/dev/null
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

swtpm_start "$WORK/tpm" >/dev/null
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=https://127.0.0.1:$PORT
cp "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" "$WORK/vendor-root.pem"
cp "$SWTPM_CA_DIR/issuercert.pem" "$WORK/vendor-issuer.pem"
"$BENCH" fake-ca "$WORK/simulated-vendor.pem"
"$BIN/tether-fleetd" init --dir "$WORK/fleet" --listen "127.0.0.1:$PORT" \
    --ek-ca "$WORK/vendor-root.pem" --ek-ca "$WORK/vendor-issuer.pem" \
    --ek-ca "$WORK/simulated-vendor.pem" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
# The simulated devices all enrol from 127.0.0.1: one source, many devices.
sed -i 's/^enroll_rate_per_minute = .*/enroll_rate_per_minute = 60000/; s/^enroll_burst = .*/enroll_burst = 10000/' \
    "$WORK/fleet/fleetd.conf"
"$BIN/tether-fleetd" run --dir "$WORK/fleet" 2>"$WORK/fleetd.log" &
FLEETD_PID=$!
for _ in $(seq 1 100); do
    curl -s --max-time 1 --cacert "$WORK/fleet/ca.pem" "$URL/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
export TETHER_FLEET_URL=$URL TETHER_CA=$WORK/fleet/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
EK=$("$BIN/tether-agent" selftest --tcti "$SWTPM_TCTI" | sed -n 's/^EK SHA-256: *//p')
"$BIN/tetherctl" device allow --ek-sha256 "$EK" --name bench-device >/dev/null
"$BIN/tether-agent" enroll --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --fleet "$URL" \
    --ca "$WORK/fleet/ca.pem" >/dev/null

# Measured boot (issue 10), below: the swtpm's PCRs get what firmware and
# tether-agent measure would have extended at boot (a real platform log's
# digests, tether's own measurement), before the device's first exchange
# fixes its reference digest.
mkdir -p "$WORK/boot"
cp "$top/firmware/tests/data/event-arch-linux.bin" "$WORK/boot/platform.bin"
"$BIN/tether-agent" eventlog --json "$WORK/boot/platform.bin" >"$WORK/boot/platform.json"
# shellcheck disable=SC2046 # one argument per event
TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrextend \
    $(python3 "$top/tests/integration/eventlog_extend.py" args "$WORK/boot/platform.json")
printf 'agent %s\n' "$BIN/tether-agent" >"$WORK/boot/measure.conf"
"$BIN/tether-agent" measure --tcti "$SWTPM_TCTI" --config "$WORK/boot/measure.conf" \
    --log "$WORK/boot/tether.cel" >/dev/null

echo "== tether benchmarks ($(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ))"
"$BENCH" latency --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --count "$COUNT"
"$BENCH" reconcile --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --count "$COUNT"
# Measured boot at fleetd: parse, replay and check of the largest real log.
"$top/build/bench/bench_measured_boot" --count "$((COUNT * 5))"
"$BENCH" dpop --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --count "$COUNT"

# The exchange of a device whose policy has a measured_boot section, its
# logs unchanged (the fleet holds them: hashes only after the first),
# alternated with the plain exchange.
"$BIN/tetherctl" policy create measured --models '*' --from-eventlog "$WORK/boot/platform.bin" \
    --from-eventlog "$WORK/boot/tether.cel" >/dev/null
DEV=$("$BIN/tetherctl" --json device list | python3 -c 'import json, sys; print(json.load(sys.stdin)["devices"][0]["id"])')
for round in 1 2; do
    "$BIN/tetherctl" device set-policy "$DEV" default >/dev/null
    echo "-- without measured boot (round $round)"
    "$BENCH" latency --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --count "$COUNT"
    "$BIN/tetherctl" device set-policy "$DEV" measured >/dev/null
    echo "-- with measured boot, logs unchanged (round $round)"
    "$BENCH" latency --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --count "$COUNT" \
        --platform-eventlog "$WORK/boot/platform.bin" --tether-eventlog "$WORK/boot/tether.cel"
done
"$BIN/tetherctl" device set-policy "$DEV" default >/dev/null

# The agent's added latency through its AI endpoint (token, a TPM-signed
# proof per request, libcurl), against the same upstream called directly.
UP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
AI_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -u "$top/bench/ai_latency.py" upstream "$UP_PORT" >"$WORK/upstream.log" 2>&1 &
UP_PID=$!
"$BIN/tether-agent" run --tcti "$SWTPM_TCTI" --state-dir "$WORK/device" --socket "$WORK/agent.sock" \
    --ai-listen "127.0.0.1:$AI_PORT" --ai-upstream "http://127.0.0.1:$UP_PORT/v1" 2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 1 100); do
    "$BIN/tether-agent" token --socket "$WORK/agent.sock" >/dev/null 2>&1 && break
    sleep 0.1
done
python3 "$top/bench/ai_latency.py" measure "http://127.0.0.1:$UP_PORT/v1" \
    "http://127.0.0.1:$AI_PORT/v1" "$COUNT"
kill "$AGENT_PID" "$UP_PID"
wait "$AGENT_PID" "$UP_PID" 2>/dev/null || true

# A few devices, a thread each; then many, driven by a few worker threads
# (other software TPMs: seeds from 100000).
seed=1000
for n in "$DEVICES" "$MANY_DEVICES"; do
    [ "$n" -gt 0 ] || continue
    BOOT=$("$BIN/tetherctl" bootstrap create --ttl 1h --uses "$n")
    "$BENCH" load --fleet "$URL" --ca "$WORK/fleet/ca.pem" --bootstrap-token "$BOOT" \
        --devices "$n" --workers "$((n < WORKERS ? n : WORKERS))" --seconds "$SECONDS_LOAD" \
        --server-pid "$FLEETD_PID" --seed "$seed"
    seed=100000
done

# Revocation: from the command to introspection answering false, and to a
# waiting feed client receiving the entry.
ms() { local d=$(($2 - $1)); printf '%d.%d' $((d / 1000000)) $(((d / 100000) % 10)); }
"$BIN/tetherctl" token create --role relying-party --name bench-gateway >"$WORK/rp.token"
TOKEN=$("$BENCH" token --tcti "$SWTPM_TCTI" --state-dir "$WORK/device")
introspect() {
    curl -sS --cacert "$WORK/fleet/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
        --data-urlencode "token=$TOKEN" "$URL/v1/introspect" |
        python3 -c 'import json, sys; print(str(json.load(sys.stdin)["active"]).lower())'
}
[ "$(introspect)" = true ] || { echo "bench: the fresh token is not active" >&2; exit 1; }
DEV=$("$BIN/tetherctl" --json device list | python3 -c 'import json, sys; print([d["id"] for d in json.load(sys.stdin)["devices"] if d["name"] == "bench-device"][0])')
last=$(curl -sS --cacert "$WORK/fleet/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
    "$URL/v1/revocations?after=0" | python3 -c 'import json, sys; print(json.load(sys.stdin)["last_seq"])')
( curl -sS --cacert "$WORK/fleet/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
    "$URL/v1/revocations?after=$last&wait=20" >/dev/null; date +%s%N >"$WORK/feed.done" ) &
FEED=$!
sleep 0.5
start=$(date +%s%N)
"$BIN/tetherctl" device revoke "$DEV" --reason "benchmark" >/dev/null
revoked=$(date +%s%N)
until [ "$(introspect)" = false ]; do :; done
inactive=$(date +%s%N)
wait "$FEED"
echo "revocation (tetherctl device revoke; its process start is included)"
echo "  command returned after              $(ms "$start" "$revoked") ms"
echo "  introspection inactive after        $(ms "$start" "$inactive") ms"
echo "  waiting feed client answered after  $(ms "$start" "$(cat "$WORK/feed.done")") ms"

# The exchange's store transaction from 1 and from 16 threads: the group
# commit's batches.
"$top/build/bench/bench_group_commit" --threads 16 --seconds 5

# Exchange latency against a store of many enrolled devices (bench/bulk.sh).
"$top/bench/bulk.sh"

# tether-gate with full authorization, against its upstream directly, and
# revoke to refused at the gateway (bench/gate.sh).
"$top/bench/gate.sh"
