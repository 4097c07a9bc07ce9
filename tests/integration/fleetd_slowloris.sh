#!/usr/bin/env bash
# Integration test of the HTTP server's defence against clients that hold
# connections (slowloris): a real tether-fleetd on loopback with its default
# connection limits and a short request-head deadline, attacked from
# 127.0.0.1 by slow_clients.py while 127.0.0.2 asks for /v1/health.
# usage: fleetd_slowloris.sh PATH/TO/tether-fleetd
set -euo pipefail

FLEETD=${1:?usage: fleetd_slowloris.sh PATH/TO/tether-fleetd}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3

scratch_fleet slowloris
fail() {
    echo "FAIL: $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    exit 1
}

PORT=$(free_port)
HEAD_TIMEOUT=3
COUNT=40 # of each kind: more than the default share of one source

"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
for setting in "max_connections = 1024" "max_connections_per_source = 32" \
               "connection_timeout_seconds = 30" "request_head_timeout_seconds = 10"; do
    grep -qx "$setting" "$DIR/fleetd.conf" || fail "init did not write the default \"$setting\""
done
pass "init writes the connection limits with their defaults"
PER_SOURCE=$(sed -n 's/^max_connections_per_source = //p' "$DIR/fleetd.conf")
sed -i "s/^request_head_timeout_seconds = .*/request_head_timeout_seconds = $HEAD_TIMEOUT/" \
    "$DIR/fleetd.conf"

start_fleetd
python3 "$here/slow_clients.py" "$PORT" "$DIR/ca.pem" "$COUNT" "$PER_SOURCE" "$HEAD_TIMEOUT" ||
    fail "slow clients"
pass "slow clients: health answered, one source held its share, stalled heads closed"
grep -q "sent no complete request head" "$WORK/fleetd.log" || fail "no log line for the closed connections"
pass "the closed connections are logged"
# Both refusals counted in the server layer's metrics.
curl -s --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/admin.token")" \
    "https://127.0.0.1:$PORT/metrics" >"$WORK/scrape.txt" || fail "no /metrics"
for reason in per_source head_deadline; do
    grep -qx "tether_http_connections_refused_total{reason=\"$reason\"} [1-9][0-9]*" \
        "$WORK/scrape.txt" || fail "no $reason refusal counted: $(grep refused "$WORK/scrape.txt")"
done
pass "the refusals are counted (per_source, head_deadline)"

sed -i "s/^max_connections = .*/max_connections = 10000/" "$DIR/fleetd.conf"
rc=0
sigterm_wait "$PID"
wait "$PID" || rc=$?
PID=
[ "$rc" -eq 0 ] || fail "tether-fleetd exited with $rc on SIGTERM after the attack"
pass "SIGTERM after the attack: clean exit 0"
if (ulimit -n 256 && "$FLEETD" run --dir "$DIR") 2>"$WORK/nofile.err"; then
    fail "fleetd started with more connections than its open-file limit allows"
fi
grep -q "lower max_connections or raise the limit" "$WORK/nofile.err" ||
    fail "no clear error for the open-file limit: $(cat "$WORK/nofile.err")"
pass "max_connections beyond the open-file limit is refused at start"

echo "all $passed checks passed"
