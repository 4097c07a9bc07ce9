#!/usr/bin/env bash
# Integration test of alert delivery to webhooks: a real tether-fleetd, real
# SQLite, alerts written by `tether-fleetd admin-token` (another process), a
# Python receiver that verifies the signature (webhook_receiver.py).
# Delivered signed within a bounded wait; retried with backoff after 500s
# and delivered once; none lost across a SIGKILL with the receiver down;
# `tetherctl alerts --follow` sees an alert written after it started.
# usage: webhooks.sh PATH/TO/tether-fleetd PATH/TO/tetherctl
set -euo pipefail

FLEETD=${1:?usage: webhooks.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
TETHERCTL=${2:?usage: webhooks.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl sqlite3 python3 openssl

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-webhooks-test.XXXXXX")
DIR=$WORK/fleet
PID=
RECEIVER=
FOLLOW=
TLS_RECEIVER=
cleanup() {
    kill_pids "$PID" "$RECEIVER" "$FOLLOW" "$TLS_RECEIVER"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 30
    log_tail receiver "$WORK/received.jsonl" 30
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
RPORT=$(free_port)

"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/init.out"
ADMIN=$(cat "$WORK/init.out")
grep -q "^# webhook = name=" "$DIR/fleetd.conf" || fail "init does not document the webhook key"
pass "init documents webhook lines"

# --- the configuration is checked before anything is served -----------------
cp "$DIR/fleetd.conf" "$WORK/fleetd.conf.orig"
echo "webhook = name=x url=http://10.0.0.1:80/ secret=webhook.key" >>"$DIR/fleetd.conf"
if "$FLEETD" run --dir "$DIR" 2>"$WORK/bad.log"; then fail "http to another host accepted"; fi
grep -q "loopback" "$WORK/bad.log" || fail "no reason for the refused http url: $(cat "$WORK/bad.log")"
pass "http:// to another host than loopback refused"

cp "$WORK/fleetd.conf.orig" "$DIR/fleetd.conf"
echo "webhook = name=security url=http://127.0.0.1:$RPORT/hooks/tether secret=webhook.key timeout=5" \
    >>"$DIR/fleetd.conf"
openssl rand -hex 32 >"$DIR/webhook.key"
chmod 644 "$DIR/webhook.key"
if "$FLEETD" run --dir "$DIR" 2>"$WORK/bad.log"; then fail "a secret open to others accepted"; fi
grep -q "chmod 600" "$WORK/bad.log" || fail "no fix named for the secret's mode: $(cat "$WORK/bad.log")"
grep -q "$(head -c 16 "$DIR/webhook.key")" "$WORK/bad.log" "$WORK/fleetd.log" 2>/dev/null &&
    fail "the secret was logged"
if "$FLEETD" check --dir "$DIR" >"$WORK/check.out" 2>"$WORK/check.err"; then
    fail "check passed a secret open to others"
fi
grep -q "chmod 600" "$WORK/check.err" || fail "check does not name the fix: $(cat "$WORK/check.err")"
chmod 600 "$DIR/webhook.key"
"$FLEETD" check --dir "$DIR" >"$WORK/check.out" 2>"$WORK/check.err" ||
    fail "check refused a good configuration: $(cat "$WORK/check.err")"
[ "$(cat "$WORK/check.out")" = "$DIR/fleetd.conf: ok" ] || fail "check printed $(cat "$WORK/check.out")"
pass "a webhook secret readable by others is refused by run and check, with the fix"

# --- an alert arrives signed -------------------------------------------------
start_receiver
start_fleetd
# The receiver's check is real: a wrong signature is refused.
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Tether-Signature: t=$(date +%s),v1=00" \
    -H "Tether-Delivery: forged:1" --data-binary '{}' "http://127.0.0.1:$RPORT/hooks/tether")
[ "$status" = 401 ] || fail "the receiver accepted a bad signature ($status)"
first=$(mint first)
wait_delivered "security:$first" 5
python3 - "$WORK/received.jsonl" "security:$first" <<'EOF' || fail "the delivery is not the alert"
import json, sys
line = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["delivery_id"] == sys.argv[2]][0]
assert line["verified"] and line["kind"] == "admin_token_minted", line
EOF
pass "alert $first delivered, signed, within 5 s"
# An alert fleetd writes itself (a usage report naming a token it never
# issued) wakes the sender at once.
rp=$("$FLEETD" admin-token --dir "$DIR" --roles relying-party --name gate 2>/dev/null)
report='{"version": 1, "gateway": "test", "report_id": "webhooks-test-0001", "entries": [{"jti": "0123456789abcdef0123456789abcdef", "device": "dev_000000000000000000000000", "requests": 1, "refused": 0, "prompt_tokens": 1, "completion_tokens": 1, "cost_micros": 1, "first_seen": 1700000000, "last_seen": 1700000000}]}'
curl -sS --cacert "$DIR/ca.pem" -H "Authorization: Bearer $rp" -H "Content-Type: application/json" \
    --data-binary "$report" "$URL/v1/usage/reports" | grep -q '"flagged":1' ||
    fail "the usage report raised no alert"
mismatch=$(sql "SELECT max(id) FROM alerts WHERE kind = 'usage_device_mismatch'")
wait_delivered "security:$mismatch" 10
pass "an alert fleetd writes itself (usage_device_mismatch) delivered within 10 s"
# Counted right after the receiver's 2xx: a scrape may come a moment early.
for _ in $(seq 1 20); do
    metrics=$(curl -s --cacert "$DIR/ca.pem" -H "Authorization: Bearer $ADMIN" "$URL/metrics")
    grep -q 'tether_fleetd_webhook_deliveries_total{webhook="security",outcome="delivered"} 3' \
        <<<"$metrics" && break
    sleep 0.1
done
grep -q 'tether_fleetd_webhook_deliveries_total{webhook="security",outcome="delivered"} 3' \
    <<<"$metrics" || fail "delivered not counted: $(grep webhook <<<"$metrics")"
grep -q 'tether_fleetd_webhook_delivery_latency_seconds_count{webhook="security"} 3' \
    <<<"$metrics" || fail "latency not observed"
pass "metrics count the delivery and its latency"

# --- https: the receiver's certificate checked against the webhook's CA ------
# The receiver serves the fleet's own TLS certificate (127.0.0.1, under
# ca.pem): a second webhook pins that CA. One with another CA gets nothing.
"$FLEETD" init --dir "$WORK/other" --listen "127.0.0.1:1" >/dev/null
cp "$WORK/other/ca.pem" "$DIR/wrong-ca.pem"
TPORT=$(free_port)
WPORT=$(free_port)
python3 "$here/webhook_receiver.py" --secret "$DIR/webhook.key" --log "$WORK/tls.jsonl" \
    --port-file "$WORK/tls.port" --port "$TPORT" --tls-cert "$DIR/tls-cert.pem" \
    --tls-key "$DIR/tls-key.pem" 2>>"$WORK/receiver.err" &
TLS_RECEIVER=$!
for _ in $(seq 1 50); do [ -s "$WORK/tls.port" ] && break; sleep 0.1; done
cat >>"$DIR/fleetd.conf" <<EOF
webhook = name=tls url=https://127.0.0.1:$TPORT/hook ca=ca.pem secret=webhook.key
webhook = name=wrong-ca url=https://127.0.0.1:$TPORT/hook ca=wrong-ca.pem secret=webhook.key
EOF
# stop_fleetd: SIGTERM, and a clean exit 0 (the senders stop too).
stop_fleetd() {
    sigterm_wait "$PID"
    wait "$PID" || fail "tether-fleetd did not exit 0 on SIGTERM"
    PID=
}
stop_fleetd
start_fleetd
tls_id=$(mint tls)
for _ in $(seq 1 50); do
    grep -q "\"tls:$tls_id\".*\"status\": 200" "$WORK/tls.jsonl" 2>/dev/null && break
    sleep 0.1
done
grep -q "\"tls:$tls_id\".*\"verified\": true.*\"status\": 200" "$WORK/tls.jsonl" ||
    fail "no verified delivery over https: $(cat "$WORK/tls.jsonl" 2>/dev/null)"
wait_delivered "security:$tls_id" 5
sleep 1
grep -q "wrong-ca:" "$WORK/tls.jsonl" && fail "a receiver outside the webhook's CA got an alert"
grep -q "wrong-ca: delivery wrong-ca:$tls_id failed" "$WORK/fleetd.log" ||
    fail "no log line for the certificate refused"
kill -TERM "$TLS_RECEIVER"
wait "$TLS_RECEIVER" || true
# Back to one webhook: the others' waiting deliveries are dropped, with a warning.
cp "$WORK/fleetd.conf.orig" "$DIR/fleetd.conf"
echo "webhook = name=security url=http://127.0.0.1:$RPORT/hooks/tether secret=webhook.key timeout=5" \
    >>"$DIR/fleetd.conf"
stop_fleetd
start_fleetd
grep -q "deliveries to webhooks no longer configured were dropped" "$WORK/fleetd.log" ||
    fail "no warning for the dropped deliveries"
[ "$(sql "SELECT count(*) FROM webhook_outbox")" = 0 ] || fail "rows of removed webhooks kept"
pass "https with the webhook's CA delivered; another CA refused; removed webhooks dropped"

# --- 500 three times, then 200: delivered once, with growing waits -----------
stop_receiver
start_receiver --fail 3
second=$(mint second)
wait_delivered "security:$second" 15
[ "$(received "security:$second" 500)" = 3 ] || fail "expected 3 refused attempts"
[ "$(received "security:$second")" = 1 ] || fail "delivered more than once"
python3 - "$WORK/received.jsonl" "security:$second" <<'EOF' || fail "attempts not backed off"
import json, sys
times = [json.loads(l)["received_at"] for l in open(sys.argv[1])
         if json.loads(l)["delivery_id"] == sys.argv[2]]
gaps = [b - a for a, b in zip(times, times[1:])]
# The schedule's waits, 0.5 s, 1 s, 2 s, are lower bounds (a busy machine
# only adds to them).
assert len(gaps) == 3 and gaps[0] >= 0.45 and gaps[1] >= 0.95 and gaps[2] >= 1.95, gaps
EOF
grep -q "security: delivery security:$second answered 500" "$WORK/fleetd.log" ||
    fail "no log line for the failing webhook"
pass "refused 3 times, retried with backoff, delivered once"

# --- tetherctl alerts --follow sees an alert written after it started --------
printf '%s\n' "$ADMIN" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token \
    "$TETHERCTL" alerts --follow --json --after "$second" >"$WORK/follow.out" 2>"$WORK/follow.err" &
FOLLOW=$!
# followed ID SECONDS: polls until the follower printed alert ID.
followed() {
    for _ in $(seq 1 $(($2 * 10))); do
        python3 -c 'import json, sys; sys.exit(0 if any(json.loads(l)["id"] == int(sys.argv[2]) for l in open(sys.argv[1])) else 1)' \
            "$WORK/follow.out" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "tetherctl alerts --follow did not print alert $1 within $2 s: $(cat "$WORK/follow.err")"
}
sleep 1
third=$(mint third)
followed "$third" 5
[ "$(wc -l <"$WORK/follow.out")" = 1 ] || fail "--follow printed older alerts too"
pass "tetherctl alerts --follow prints alert $third written after it started"

# --- none lost across a SIGKILL with the receiver down ------------------------
stop_receiver
ids=()
for i in 1 2 3 4 5; do ids+=("$(mint "kill-$i")"); done
sleep 1
[ "$(sql "SELECT count(*) FROM webhook_outbox")" = 5 ] || fail "the outbox does not hold 5 deliveries"
kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
PID=
[ "$(sql "SELECT count(*) FROM webhook_outbox")" = 5 ] || fail "deliveries lost with fleetd"
start_receiver
start_fleetd
for id in "${ids[@]}"; do wait_delivered "security:$id" 10; done
for id in "${ids[@]}"; do
    [ "$(received "security:$id")" = 1 ] || fail "security:$id delivered more than once"
done
[ "$(sql "SELECT count(*) FROM webhook_outbox")" = 0 ] || fail "the outbox is not empty"
pass "5 alerts written while the receiver was down survive a SIGKILL, each delivered once"
last=$(mint after-restart)
followed "${ids[4]}" 5
followed "$last" 15
python3 - "$WORK/follow.out" <<'EOF' || fail "--follow skipped or repeated alerts across the restart"
import json, sys
ids = [json.loads(l)["id"] for l in open(sys.argv[1])]
assert ids == list(range(ids[0], ids[0] + len(ids))), ids
EOF
kill -TERM "$FOLLOW"
rc=0
wait "$FOLLOW" || rc=$?
FOLLOW=
[ "$rc" = 0 ] || fail "tetherctl alerts --follow exited $rc on SIGTERM"
pass "--follow reconnected after the restart, in order, and stops on SIGTERM with 0"

stop_fleetd
pass "SIGTERM: clean exit with the sender running"
echo "# $passed checks passed"
