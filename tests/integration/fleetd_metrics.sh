#!/usr/bin/env bash
# Integration test of GET /metrics on a real tether-fleetd (loopback TLS, no
# TPM): who may read it, the exposition text (parsed by metrics_check.py and,
# where it is installed, by promtool), counts that follow the requests made,
# and that every metric the monitoring examples (packaging/monitoring: the
# Grafana dashboard and the Prometheus rules) refer to is one fleetd exports.
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
        -o /dev/null -w '%{http_code}' "$URL/v1/admin/devices" | grep -qx 201 ||
        fail "allowing device $ek"
done
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
