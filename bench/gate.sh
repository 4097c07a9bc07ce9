#!/usr/bin/env bash
# tether-gate with full authorization (bench/README.md, "tether-gate"): a
# real tether-fleetd (keys, revocation feed), a real `tether-gate run` in
# front of an OpenAI-compatible upstream, and bench_gate_load (its own
# process: N simulated devices, a DPoP proof per request) calling the
# upstream directly and through tether-gate in one run, then revoking
# devices one after another under load. Everything listens on 127.0.0.1
# and is removed at the end.
# Options through the environment: BENCH_COUNT (requests per kind for the
# latency, default 300), BENCH_SECONDS (each load, default 5),
# BENCH_CLIENTS (default 8), BENCH_DEVICES (devices loading, default 16),
# BENCH_REVOCATIONS (devices revoked, default 50), BENCH_UPSTREAM (c:
# bench_upstream, the default; python: tests/integration/openai_upstream.py
# without pauses, which takes a core at about 5,000 requests/s).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${BENCH_COUNT:-300}
SECONDS_LOAD=${BENCH_SECONDS:-5}
CLIENTS=${BENCH_CLIENTS:-8}
DEVICES=${BENCH_DEVICES:-16}
REVOCATIONS=${BENCH_REVOCATIONS:-50}
UPSTREAM=${BENCH_UPSTREAM:-c}

cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j 2 --target tether-fleetd tetherctl tether-gate bench_gate_load \
    bench_upstream >/dev/null
FLEETD=$top/build/bin/tether-fleetd
CTL=$top/build/bin/tetherctl
GATE=$top/build/bin/tether-gate

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-gate.XXXXXX")
DIR=$WORK/fleet
PID=
GPID=
UPID=
fail() {
    echo "bench/gate.sh: $*" >&2
    tail -n 20 "$WORK/gate.log" >&2 2>/dev/null || true
    exit 1
}
. "$top/tests/integration/fleet.sh"
cleanup() {
    kill_pids "$GPID" "$UPID" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT
# gate_fleet.sh sources its neighbours through $here, as the tests set it.
here=$top/tests/integration
. "$top/tests/integration/gate_fleet.sh"

# The fleet and its devices (allowed, as the gateway needs nothing more of
# them than their ids: their tokens are signed with the fleet's issuer key).
gate_start_fleet
for i in $(seq "$((DEVICES + REVOCATIONS))"); do
    "$CTL" device allow --name "bench-$i" \
        --ek-sha256 "$(printf 'bench-%s' "$i" | sha256sum | cut -d' ' -f1)" >/dev/null
done
"$CTL" --json device list | python3 -c '
import json, sys
devices = [d for d in json.load(sys.stdin)["devices"] if d["name"].startswith("bench-")]
for d in sorted(devices, key=lambda d: int(d["name"][6:])):
    print(d["id"])' >"$WORK/devices"
KID=$(curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["keys"][0]["kid"])')

# The upstream.
case $UPSTREAM in
python)
    python3 "$top/tests/integration/openai_upstream.py" "$WORK/upstream.port" /dev/null \
        --chunk-pause 0 2>"$WORK/upstream.log" &
    ;;
c) "$top/build/bench/bench_upstream" "$WORK/upstream.port" 2>"$WORK/upstream.log" & ;;
*) fail "BENCH_UPSTREAM must be c or python" ;;
esac
UPID=$!
for _ in $(seq 100); do [ -s "$WORK/upstream.port" ] && break; sleep 0.05; done
[ -s "$WORK/upstream.port" ] || fail "the upstream did not start"
UPSTREAM_URL=http://127.0.0.1:$(cat "$WORK/upstream.port")/v1

# tether-gate: the replay cache sized for the run's proofs (README: size it
# for the requests of dpop_max_age_seconds at peak).
GPORT=$(free_port)
printf 'sk-bench-provider-key\n' >"$WORK/provider.key"
chmod 600 "$WORK/provider.key"
"$GATE" init --dir "$WORK/gate" --listen "127.0.0.1:$GPORT" --fleet "$URL" \
    --fleet-ca "$DIR/ca.pem" --rp-token-file "$WORK/rp.token" --upstream "$UPSTREAM_URL" \
    --upstream-key-file "$WORK/provider.key" --models 'gpt-4o*' \
    --price gpt-4o-mini=0.15:0.6 >/dev/null || fail "tether-gate init"
sed -i 's/^replay_cache_entries = .*/replay_cache_entries = 1048576/' "$WORK/gate/gate.conf"
"$GATE" check --dir "$WORK/gate" >/dev/null || fail "tether-gate check"
"$GATE" run --dir "$WORK/gate" >"$WORK/usage.jsonl" 2>"$WORK/gate.log" &
GPID=$!
# Ready once it has read the revocation feed (the keys come with a token's
# first kid).
for _ in $(seq 100); do
    curl -s --max-time 1 "http://127.0.0.1:$GPORT/metrics" 2>/dev/null |
        grep -q '^tether_gate_revocation_feed_age_seconds [0-9]' && break
    kill -0 "$GPID" 2>/dev/null || fail "tether-gate exited at start"
    sleep 0.1
done

echo "== tether-gate ($(nproc) cores; upstream: $UPSTREAM; $(date -u +%Y-%m-%dT%H:%MZ))"
"$top/build/bench/bench_gate_load" --gate "http://127.0.0.1:$GPORT/v1" \
    --direct "$UPSTREAM_URL" --fleet "$URL" --issuer-key "$DIR/issuer-key.pem" --kid "$KID" \
    --devices "$WORK/devices" --gate-pid "$GPID" --upstream-pid "$UPID" \
    --revoke "$REVOCATIONS" --tetherctl "$CTL" --count "$COUNT" --seconds "$SECONDS_LOAD" \
    --clients "$CLIENTS"
