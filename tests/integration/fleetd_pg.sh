#!/usr/bin/env bash
# tether-fleetd for the integration tests on PostgreSQL (fleet.sh with
# TETHER_TEST_STORE=postgresql, under postgres.sh run): every 'init' gets a
# fresh database on the test's server, so each fleet a test makes has its
# own store; every other command runs as it is.
set -euo pipefail

if [ "${1:-}" = init ]; then
    base=${TETHER_TEST_PG_URL%/*}
    db=fleet_$(date +%s%N)_$$
    psql -X -q -v ON_ERROR_STOP=1 -d "$TETHER_TEST_PG_URL" -c "CREATE DATABASE $db" >/dev/null
    exec "$TETHER_TEST_FLEETD_BIN" "$@" --store "$base/$db"
fi
exec "$TETHER_TEST_FLEETD_BIN" "$@"
