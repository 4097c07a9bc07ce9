#!/usr/bin/env bash
# Integration test of GET /metrics on a real tether-fleetd (loopback TLS, no
# TPM): who may read it, the exposition text (parsed by metrics_check.py and,
# where it is installed, by promtool), counts that follow the requests made,
# and that every metric the monitoring examples (packaging/monitoring: the
# Grafana dashboard and the Prometheus rules) refer to is one fleetd exports.
# The store's own series: transaction latency by operation on both stores;
# on PostgreSQL (TETHER_TEST_STORE=postgresql, fleetd_metrics_pg) the pool's
# connections, waits and retried transactions, a retry made to happen by a
# concurrent transaction holding the row the request changes.
# usage: fleetd_metrics.sh PATH/TO/tether-fleetd
set -euo pipefail

FLEETD=${1:?usage: fleetd_metrics.sh PATH/TO/tether-fleetd}
here=$(cd "$(dirname "$0")" && pwd)
MONITORING=$(cd "$here/../../packaging/monitoring" && pwd)
. "$here/fleet.sh"
require_tools curl python3

scratch_fleet metrics
fail() {
    echo "FAIL: $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
ADMIN=$(cat "$WORK/admin.token")
start_fleetd

# get PATH [TOKEN]: the status; the body in $WORK/body, the head in $WORK/head.
get() {
    local auth=()
    [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
    curl -s --cacert "$DIR/ca.pem" -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' \
        "${auth[@]}" "$URL$1"
}
# sample LINE: the scrape has exactly this sample line.
sample() { grep -qxF "$1" "$WORK/scrape.txt" || fail "no sample \"$1\" in the scrape"; }

[ "$(get /metrics)" = 401 ] || fail "/metrics answered without a token"
grep -q '"error":"unauthorized"' "$WORK/body" || fail "no JSON 401: $(cat "$WORK/body")"
FLEET_ONLY=$(curl -s --cacert "$DIR/ca.pem" -H "Authorization: Bearer $ADMIN" \
    -H 'Content-Type: application/json' -d '{"name": "fleet-only", "roles": ["fleet"]}' \
    "$URL/v1/admin/tokens")
FLEET_ONLY=$(json_get "$FLEET_ONLY" 'd["token"]')
[ "$(get /metrics "$FLEET_ONLY")" = 403 ] || fail "/metrics answered a token without the read role"
pass "/metrics: 401 without a token, 403 without the read role"

# Requests whose counts the scrape must show, and two devices allowed (the
# gauge of devices by status is counted at the first scrape).
for ek in 01 02; do
    curl -s --cacert "$DIR/ca.pem" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' \
        -d "{\"ek_sha256\": \"$(printf "$ek%.0s" $(seq 1 32))\", \"name\": \"device-$ek\"}" \
        -o "$WORK/device-$ek.json" -w '%{http_code}' "$URL/v1/admin/devices" | grep -qx 201 ||
        fail "allowing device $ek"
done
DEVICE_01=$(json_get "$(cat "$WORK/device-01.json")" 'd["id"]')
[ "$(get /v1/health)" = 200 ] || fail "health"
[ "$(get /no/such/path)" = 404 ] || fail "404"
curl -s --cacert "$DIR/ca.pem" -H 'Content-Type: application/json' -d '{"device_id": "nobody"}' \
    "$URL/v1/challenge" >/dev/null
[ "$(get /metrics "$ADMIN")" = 200 ] || fail "/metrics refused the read role: $(cat "$WORK/body")"
tr -d '\r' <"$WORK/head" | grep -qix 'content-type: text/plain; version=0.0.4; charset=utf-8' ||
    fail "not the exposition format's media type: $(cat "$WORK/head")"
cp "$WORK/body" "$WORK/scrape.txt"
pass "/metrics with the read role: 200, text/plain; version=0.0.4"

python3 "$here/metrics_check.py" exposition "$WORK/scrape.txt" >"$WORK/families" ||
    fail "the scrape does not parse as the exposition format"
pass "the scrape parses: $(wc -l <"$WORK/families") families"
if command -v promtool >/dev/null; then
    promtool check metrics <"$WORK/scrape.txt" || fail "promtool check metrics"
    promtool check rules "$MONITORING/tether-rules.yml" >/dev/null || fail "promtool check rules"
    promtool check config --syntax-only "$MONITORING/prometheus.yml" >/dev/null ||
        fail "promtool check config"
    pass "promtool: the scrape, the rules and the scrape config are valid"
else
    echo "# promtool not installed (Debian: prometheus): the scrape checked by metrics_check.py only"
fi

sample 'tether_fleetd_challenges_total{outcome="unknown_device"} 1'
sample 'tether_http_requests_total{route="/v1/challenge",status_class="4xx"} 1'
sample 'tether_http_requests_total{route="/v1/health",status_class="2xx"} 2'
sample 'tether_http_requests_total{route="unmatched",status_class="4xx"} 1'
sample 'tether_http_requests_total{route="/metrics",status_class="4xx"} 2'
sample 'tether_http_request_duration_seconds_count{route="/v1/challenge"} 1'
sample 'tether_http_connections_refused_total{reason="per_source"} 0'
sample 'tether_fleetd_clone_alerts_total{signal="counter_not_increasing"} 0'
sample 'tether_fleetd_devices{status="allowed"} 2'
sample 'tether_fleetd_devices{status="active"} 0'
sample 'tether_fleetd_devices{status="quarantined"} 0'
grep -qx 'tether_http_connections_open [1-9][0-9]*' "$WORK/scrape.txt" ||
    fail "no open connection counted while scraping"
grep -qx "tether_fleetd_build_info{version=\"[0-9.]*\"} 1" "$WORK/scrape.txt" || fail "no build info"
start=$(sed -n 's/^process_start_time_seconds //p' "$WORK/scrape.txt")
now=$(date +%s)
[ -n "$start" ] && [ "$start" -le "$now" ] && [ "$start" -gt $((now - 600)) ] ||
    fail "process_start_time_seconds $start is not this process's start"
pass "the counts follow the requests made"

# value NAME{LABELS}: the scrape's value of that series (empty: none).
value() { awk -v s="$1" '$1 == s { print $2 }' "$WORK/scrape.txt"; }
# revoke ID: the device revoked by the admin API (a timed store
# transaction, device_status); its HTTP status.
revoke() {
    curl -s --cacert "$DIR/ca.pem" -H "Authorization: Bearer $ADMIN" \
        -H 'Content-Type: application/json' -d '{"reason": "metrics test"}' -o /dev/null \
        -w '%{http_code}' "$URL/v1/admin/devices/$1/revoke"
}
# scrape: GET /metrics into $WORK/scrape.txt.
scrape() {
    [ "$(get /metrics "$ADMIN")" = 200 ] || fail "/metrics: $(cat "$WORK/body")"
    cp "$WORK/body" "$WORK/scrape.txt"
}
histogram=tether_fleetd_store_transaction_duration_seconds
before=$(value "${histogram}_count{operation=\"device_status\"}")
if [ "${TETHER_TEST_STORE:-sqlite}" = postgresql ]; then
    # The pool: its size is the server's threads and the background
    # connections; every connection is in use or idle.
    size=$(value tether_fleetd_store_pool_size)
    [ -n "$size" ] && [ "$size" -gt 0 ] || fail "no pool size: $(grep store_ "$WORK/scrape.txt")"
    [ "$(($(value 'tether_fleetd_store_connections{state="in_use"}') +
        $(value 'tether_fleetd_store_connections{state="idle"}')))" = "$size" ] ||
        fail "connections in use and idle do not add up to the pool's $size"
    [ "$(value tether_fleetd_store_connection_waits_total)" = 0 ] || fail "waits before any load"
    sample 'tether_fleetd_store_retries_total{operation="record exchanges"} 0'
    # A concurrent transaction (psql, fed through a pipe) updates device 01's
    # row and holds it; the revocation's transaction read the row before and
    # waits for it, and once psql commits PostgreSQL aborts it (40001): it is
    # tried again and succeeds. No timing: psql commits only after fleetd's
    # statement is seen waiting on the lock.
    STORE_URL=$(sed -n 's/^store = //p' "$DIR/fleetd.conf")
    mkfifo "$WORK/psql.in"
    psql -X -q -v ON_ERROR_STOP=1 -d "$STORE_URL" <"$WORK/psql.in" >"$WORK/psql.out" 2>&1 &
    PSQL=$!
    exec 3>"$WORK/psql.in"
    echo "BEGIN; UPDATE devices SET updated_at = updated_at + 1 WHERE id = '$DEVICE_01';
          SELECT 'held';" >&3
    for _ in $(seq 1 100); do grep -q held "$WORK/psql.out" && break; sleep 0.1; done
    grep -q held "$WORK/psql.out" || fail "psql did not take the row: $(cat "$WORK/psql.out")"
    revoke "$DEVICE_01" >"$WORK/revoke.status" &
    REVOKE=$!
    for _ in $(seq 1 200); do
        [ "$(sql "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                  AND datname = current_database()")" -gt 0 ] && break
        sleep 0.1
    done
    scrape
    in_use=$(value 'tether_fleetd_store_connections{state="in_use"}')
    [ "$in_use" -ge 1 ] || fail "no connection in use while the revocation waits on the row"
    echo "COMMIT;" >&3
    exec 3>&-
    wait "$PSQL" || fail "psql: $(cat "$WORK/psql.out")"
    wait "$REVOKE"
    [ "$(cat "$WORK/revoke.status")" = 200 ] || fail "the revocation: $(cat "$WORK/revoke.status")"
    scrape
    sample 'tether_fleetd_store_retries_total{operation="change device status"} 1'
    pass "the pool: $size connections, $in_use in use while a request waited; the serialization failure retried and counted"
else
    [ "$(revoke "$DEVICE_01")" = 200 ] || fail "the revocation"
    scrape
    ! grep '^tether_fleetd_store_\(connections\|pool_size\|retries\)' "$WORK/scrape.txt" ||
        fail "pool series on SQLite, which has no pool"
    pass "no pool series on SQLite"
fi
[ "$(value "${histogram}_count{operation=\"device_status\"}")" = "$((${before:-0} + 1))" ] ||
    fail "the revocation's store transaction was not timed: $(grep "^${histogram}_count" "$WORK/scrape.txt")"
pass "the store's transactions are timed by operation"

python3 "$here/metrics_check.py" references "$WORK/scrape.txt" \
    "$MONITORING/grafana-fleetd.json" "$MONITORING/tether-rules.yml" ||
    fail "the monitoring examples refer to a metric fleetd does not export"
grep -q "job_name: tether-fleetd" "$MONITORING/prometheus.yml" &&
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
job = [v for v in d["templating"]["list"] if v["name"] == "job"][0]
sys.exit(job["current"]["value"] != "tether-fleetd")' "$MONITORING/grafana-fleetd.json" ||
    fail "the dashboard's default job is not the scrape example's job"
pass "the dashboard and the rules refer only to metrics fleetd exports"

echo "all $passed checks passed"
