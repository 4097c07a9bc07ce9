#!/usr/bin/env bash
# Exchange latency against a large fleet store (bench/README.md, "Figures:
# fleetd exchange throughput"): for each store size, a new fleet whose
# fleet.db gets that many enrolled devices from bench_bulk_devices (one
# transaction), then tether-fleetd and a few simulated devices enrolled
# for real, exchanging one at a time (bench_exchange load, one worker).
# Everything listens on 127.0.0.1 and is removed at the end.
# On PostgreSQL under tests/integration/postgres.sh run bench/bulk.sh: each
# fleet gets a fresh database on that server (fleet.sh's fleetd_pg.sh) and
# bench_bulk_devices the URL its fleetd.conf names.
# Options through the environment: BENCH_BULK_DEVICES (the large store,
# default 100000; 1000000 for issue 11's figure, about 1 GiB of disk),
# BENCH_BULK_SMALL (the store compared with, default 1000), BENCH_BULK_REAL
# (simulated devices exchanging, default 4), BENCH_SECONDS (each run,
# default 10).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
LARGE=${BENCH_BULK_DEVICES:-100000}
SMALL=${BENCH_BULK_SMALL:-1000}
REAL=${BENCH_BULK_REAL:-4}
SECONDS_LOAD=${BENCH_SECONDS:-10}

cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j 2 --target tether-fleetd tetherctl bench_exchange \
    bench_bulk_devices >/dev/null
FLEETD=$top/build/bin/tether-fleetd
if [ -n "${TETHER_TEST_PG_URL:-}" ]; then
    export TETHER_TEST_STORE=postgresql
fi
CTL=$top/build/bin/tetherctl
BENCH=$top/build/bench/bench_exchange
fail() {
    echo "bench/bulk.sh: $*" >&2
    exit 1
}
. "$top/tests/integration/fleet.sh"
scratch_fleet bench-bulk
"$BENCH" fake-ca "$WORK/simulated-vendor.pem"

echo "exchange latency against a store of $SMALL and of $LARGE enrolled devices ($REAL real ones)"
for size in "$SMALL" "$LARGE"; do
    DIR=$WORK/fleet-$size
    PORT=$(free_port)
    "$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" \
        --ek-ca "$WORK/simulated-vendor.pem" >"$WORK/admin.token"
    chmod 600 "$WORK/admin.token"
    STORE=$(sed -n 's/^store = //p' "$DIR/fleetd.conf")
    "$top/build/bench/bench_bulk_devices" "${STORE:-$DIR/fleet.db}" "$size"
    start_fleetd "$DIR" "$PORT" "$WORK/fleetd-$size.log"
    BOOT=$(TETHER_FLEET_URL=https://127.0.0.1:$PORT TETHER_CA=$DIR/ca.pem \
        TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token "$CTL" bootstrap create --ttl 1h --uses "$REAL")
    "$BENCH" load --fleet "https://127.0.0.1:$PORT" --ca "$DIR/ca.pem" --bootstrap-token "$BOOT" \
        --devices "$REAL" --workers 1 --seconds "$SECONDS_LOAD" --server-pid "$PID"
    kill_pids "$PID"
    PID=
done
