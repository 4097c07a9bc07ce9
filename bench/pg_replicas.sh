#!/usr/bin/env bash
# The exchange throughput with the fleet's store on PostgreSQL: bench_exchange
# load against one tether-fleetd, then against two fleetd replicas on the
# same database with the load split between them (half the devices and half
# the workers each, two load processes at once); first with a few devices,
# a worker each, then with many driven by a few workers. Prints each load's
# figures (bench/README.md, "The store on PostgreSQL, one and two
# replicas"). Runs under a throwaway server:
#   tests/integration/postgres.sh run bench/pg_replicas.sh [BUILD-DIR]
# BENCH_DEVICES (default 8, even), BENCH_MANY_DEVICES (default 1000, even; 0
# skips them), BENCH_WORKERS (default 16) and BENCH_SECONDS (default 10) as
# run.sh. The devices enrol BENCH_ENROL_WORKERS at a time (default 2; each
# replica half of them): on PostgreSQL every enrolment uses the one
# bootstrap token's row, and 16 at once lose their transaction past its 8
# attempts (HTTP 500; bench_exchange tries a refused enrolment again).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$top/build}
BIN=$BUILD/bin
BENCH=$BUILD/bench/bench_exchange
DEVICES=${BENCH_DEVICES:-8}
MANY_DEVICES=${BENCH_MANY_DEVICES:-1000}
WORKERS=${BENCH_WORKERS:-16}
ENROL_WORKERS=${BENCH_ENROL_WORKERS:-2}
SECONDS_LOAD=${BENCH_SECONDS:-10}
if [ -z "${TETHER_TEST_PG_URL:-}" ]; then
    echo "pg_replicas.sh runs under tests/integration/postgres.sh run" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-pg.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start DIR PORT: tether-fleetd run on DIR, its pid appended to PIDS, once
# it answers.
start() {
    "$BIN/tether-fleetd" run --dir "$1" 2>>"$WORK/fleetd-$2.log" &
    PIDS+=("$!")
    for _ in $(seq 1 100); do
        curl -s --max-time 1 --cacert "$1/ca.pem" "https://127.0.0.1:$2/v1/health" >/dev/null 2>&1 &&
            return 0
        sleep 0.1
    done
    echo "fleetd on port $2 did not start: $(tail -5 "$WORK/fleetd-$2.log")" >&2
    exit 1
}

# load PORT PID DEVICES WORKERS SEED ENROL: bench_exchange load against the
# fleetd on PORT, DEVICES new devices (software TPMs from seed SEED) enrolled
# ENROL at a time, then driven by at most WORKERS threads; a load that fails
# prints the replicas' errors.
load() {
    local boot workers=$(($3 < $4 ? $3 : $4))
    boot=$("$BIN/tetherctl" bootstrap create --ttl 1h --uses "$3")
    "$BENCH" load --fleet "https://127.0.0.1:$1" --ca "$WORK/a/ca.pem" --bootstrap-token "$boot" \
        --devices "$3" --workers "$workers" --seconds "$SECONDS_LOAD" --server-pid "$2" \
        --seed "$5" --enrol-workers "$(($6 < workers ? $6 : workers))" && return 0
    echo "the load on port $1 failed; the replicas' logs:" >&2
    grep -h -i 'error\|warn' "$WORK"/fleetd-*.log | tail -20 >&2
    return 1
}

# replicas DEVICES WORKERS SEED: both replicas at once, half of DEVICES and
# of WORKERS each (seeds SEED and SEED + DEVICES).
replicas() {
    local half=$(($1 / 2)) workers=$((($2 + 1) / 2)) enrol=$(((ENROL_WORKERS + 1) / 2))
    local status=0 load_a load_b
    echo "-- two fleetd replicas, $half devices each"
    load "$PORT_A" "${PIDS[0]}" "$half" "$workers" "$3" "$enrol" >"$WORK/load-a.txt" &
    load_a=$!
    load "$PORT_B" "${PIDS[1]}" "$half" "$workers" "$(($3 + $1))" "$enrol" >"$WORK/load-b.txt" &
    load_b=$!
    wait "$load_a" || status=$?
    wait "$load_b" || status=$?
    echo "replica A:"
    cat "$WORK/load-a.txt"
    echo "replica B:"
    cat "$WORK/load-b.txt"
    [ "$status" = 0 ] || exit 1
}

PORT_A=$(free_port)
PORT_B=$(free_port)
"$BENCH" fake-ca "$WORK/simulated-vendor.pem"
"$BIN/tether-fleetd" init --dir "$WORK/a" --listen "127.0.0.1:$PORT_A" \
    --store "$TETHER_TEST_PG_URL" --ek-ca "$WORK/simulated-vendor.pem" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
# The simulated devices all enrol from 127.0.0.1; one issuer for both replicas.
sed -i 's/^enroll_rate_per_minute = .*/enroll_rate_per_minute = 60000/; s/^enroll_burst = .*/enroll_burst = 10000/' \
    "$WORK/a/fleetd.conf"
echo "issuer = https://127.0.0.1:$PORT_A" >>"$WORK/a/fleetd.conf"
cp -a "$WORK/a" "$WORK/b"
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT_B/" "$WORK/b/fleetd.conf"
export TETHER_FLEET_URL=https://127.0.0.1:$PORT_A TETHER_CA=$WORK/a/ca.pem
export TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token

echo "== exchange throughput on PostgreSQL ($(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ))"
start "$WORK/a" "$PORT_A"
echo "-- one fleetd, $DEVICES devices"
load "$PORT_A" "${PIDS[0]}" "$DEVICES" "$DEVICES" 1000 "$ENROL_WORKERS"
if [ "$MANY_DEVICES" -gt 0 ]; then
    echo "-- one fleetd, $MANY_DEVICES devices"
    load "$PORT_A" "${PIDS[0]}" "$MANY_DEVICES" "$WORKERS" 100000 "$ENROL_WORKERS"
fi
start "$WORK/b" "$PORT_B"
replicas "$DEVICES" "$DEVICES" 2000
if [ "$MANY_DEVICES" -gt 0 ]; then
    replicas "$MANY_DEVICES" "$WORKERS" 200000
fi
