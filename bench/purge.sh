#!/usr/bin/env bash
# The retention purge's cost (bench/README.md, "Retention purge"): a fleet
# whose store gets a backlog of expired tokens past their retention (each
# with its device's counts and a relying party's usage row, as a fleet that
# ran without a purge holds them), written in one transaction by SQL; the
# purge in fleetd's service loop works it off at the fleet's defaults
# (purge_batch_rows 1000, purge_pause_milliseconds 20). Prints, per round:
# the rows purged per second (wall clock, from the first batch seen in
# /metrics to the last; the time in the purge's transactions beside it), and the exchange latency of a few simulated
# devices (bench_exchange load, one worker) before the backlog, while the
# purge runs, and after it.
#   bench/purge.sh [BUILD-DIR]                                    SQLite
#   tests/integration/postgres.sh run bench/purge.sh [BUILD-DIR]  PostgreSQL
# BENCH_PURGE_TOKENS (the backlog, default 1000000: about 1 GiB of disk on
# SQLite), BENCH_ROUNDS (default 2), BENCH_BULK_REAL (devices exchanging,
# default 4), BENCH_SECONDS (each load, default 15). Everything listens on
# 127.0.0.1 and is removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$top/build}
TOKENS=${BENCH_PURGE_TOKENS:-1000000}
ROUNDS=${BENCH_ROUNDS:-2}
REAL=${BENCH_BULK_REAL:-4}
SECONDS_LOAD=${BENCH_SECONDS:-15}
FLEETD=$BUILD/bin/tether-fleetd
CTL=$BUILD/bin/tetherctl
BENCH=$BUILD/bench/bench_exchange
fail() {
    echo "bench/purge.sh: $*" >&2
    exit 1
}
[ -x "$FLEETD" ] && [ -x "$CTL" ] && [ -x "$BENCH" ] || fail "build tether first (cmake --build $BUILD)"
STORE=sqlite
[ -n "${TETHER_TEST_PG_URL:-}" ] && STORE=postgresql
export TETHER_TEST_STORE=$STORE
. "$top/tests/integration/fleet.sh"
scratch_fleet bench-purge
PORT=$(free_port)
"$BENCH" fake-ca "$WORK/simulated-vendor.pem"
store_args=()
[ "$STORE" = postgresql ] && store_args=(--store "$TETHER_TEST_PG_URL")
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" --ek-ca "$WORK/simulated-vendor.pem" \
    "${store_args[@]}" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
# The simulated devices all enrol from 127.0.0.1.
sed -i 's/^enroll_rate_per_minute = .*/enroll_rate_per_minute = 60000/; s/^enroll_burst = .*/enroll_burst = 10000/' \
    "$DIR/fleetd.conf"
export TETHER_FLEET_URL=https://127.0.0.1:$PORT TETHER_CA=$DIR/ca.pem
export TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd
"$CTL" device allow --ek-sha256 "$(printf 'f%.0s' $(seq 64))" --name backlog >/dev/null
OWNER=$(sql "SELECT id FROM devices WHERE name = 'backlog'")

# scrape NAME{LABELS}: the sample's value in /metrics now (0 before it exists).
scrape() {
    local value
    value=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" \
        -H "Authorization: Bearer $(cat "$WORK/admin.token")" "$TETHER_FLEET_URL/metrics" |
        grep -F "$1 " | cut -d" " -f2) || true
    echo "${value:-0}"
}
# The issued tokens purged so far; the time in, and the number of, the
# store's purge transactions.
purged() { scrape 'tether_fleetd_purged_rows_total{table="issued_tokens"}'; }
purge_time() { scrape 'tether_fleetd_store_transaction_duration_seconds_sum{operation="purge"}'; }
purge_count() { scrape 'tether_fleetd_store_transaction_duration_seconds_count{operation="purge"}'; }
seed=1000
# load LABEL: bench_exchange load with REAL new devices; its figures, labelled.
load() {
    local boot
    boot=$("$CTL" bootstrap create --ttl 1h --uses "$REAL")
    "$BENCH" load --fleet "$TETHER_FLEET_URL" --ca "$DIR/ca.pem" --bootstrap-token "$boot" \
        --devices "$REAL" --workers 1 --seconds "$SECONDS_LOAD" --server-pid "$PID" \
        --seed "$seed" | sed "s/^/$1: /"
    seed=$((seed + 1000))
}
# backlog ROUND: TOKENS tokens of OWNER that expired 8 days ago (past the
# default 7-day retention and the usage window), with their rows.
backlog() {
    local exp=$(($(date +%s) - 8 * 86400)) jti gen
    jti="'p$1' || substr('000000000000000000000000000000' || i, -30, 30)"
    [ "$STORE" = postgresql ] && jti="'p$1' || lpad(i::text, 30, '0')"
    gen="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $TOKENS)"
    sql "BEGIN;
        $gen INSERT INTO issued_tokens (jti, device_id, counter, issued_at, exp, kid, scope, audience)
            SELECT $jti, '$OWNER', i, $((exp - 300)) + i / 5000, $exp + i / 5000, 'bench', 'ai.inference', 'tether' FROM n;
        $gen INSERT INTO device_usage (jti, device_id, proofs, requests, bearer, nonce_issued_at, final, reported_at)
            SELECT $jti, '$OWNER', 3, 3, 0, $exp + i / 5000, 1, $exp + i / 5000 FROM n;
        $gen INSERT INTO token_usage (relying_party, jti, device_id, reported_device_id, flagged, gateway,
            requests, refused, prompt_tokens, completion_tokens, cost_micros, first_seen, last_seen, received_at)
            SELECT 1, $jti, '$OWNER', '$OWNER', 0, 'bench', 3, 0, 300, 200, 1000, $((exp - 7200)) + i / 5000,
                $((exp - 7200)) + i / 5000, $((exp - 7200)) + i / 5000 FROM n;
        COMMIT;" >/dev/null
    # The backlog's write-ahead log into the database file now, not by the
    # first exchange that commits after it (SQLite's automatic checkpoint).
    [ "$STORE" = postgresql ] || sql "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
}

echo "== retention purge on $STORE: a backlog of $TOKENS expired tokens (with their counts and usage), $ROUNDS rounds ($(nproc) cores; load average $(cut -d' ' -f1 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%MZ))"
load "before the backlog, round 1"
for round in $(seq 1 "$ROUNDS"); do
    # Read before the backlog is written: a pass may start as soon as it is.
    base=$(purged)
    target=$((base + TOKENS))
    purge_before=$(purge_time)
    count_before=$(purge_count)
    start_insert=$(date +%s.%N)
    backlog "$round"
    echo "round $round: backlog written in $(python3 -c "import sys; print(round($(date +%s.%N) - $start_insert, 1))") s"
    # The next pass of the purge comes within 15 s (and the usage_unreported
    # check before it, which may take long on a large store).
    for _ in $(seq 1 1200); do
        [ "$(purged)" != "$base" ] && break
        sleep 0.1
    done
    first=$(date +%s.%N)
    [ "$(purged)" != "$base" ] || fail "the purge did not start within 120 s"
    load "during the purge, round $round"
    during_end=$(purged)
    [ "$during_end" -lt "$target" ] ||
        echo "round $round: the purge ended before the load did (its latency covers part of it)"
    while [ "$(purged)" -lt "$target" ]; do sleep 0.2; done
    last=$(date +%s.%N)
    python3 -c "print('round $round: $TOKENS tokens purged (and as many device_usage and token_usage rows) in %.1f s: %.0f tokens/s, %.0f rows/s; %.1f s of it in %d purge transactions' % ($last - $first, $TOKENS / ($last - $first), 3 * $TOKENS / ($last - $first), $(purge_time) - $purge_before, $(purge_count) - $count_before))"
    load "after the purge, round $round"
done
kill_pids "$PID"
PID=
