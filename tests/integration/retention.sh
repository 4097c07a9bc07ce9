#!/usr/bin/env bash
# Integration test of the retention purge on a real tether-fleetd (real TLS
# on a free loopback port, its real store: SQLite, or PostgreSQL with
# TETHER_TEST_STORE=postgresql; no TPM). A fleet with a one-hour token
# retention and a one-day alert retention is given a backlog written into
# its store as the exchange and the usage reports would have: tokens whose
# retention ended, with their device counts, usage alerts and relying
# parties' usage, old alerts, and tokens still inside their retention. The
# purge in fleetd's service loop (its first pass 15 s after the start)
# deletes the backlog in batches and counts it in /metrics; what is inside
# stays, and introspection, revocation and usage reports answer as before.
#
# Tokens of the fleet are signed with its own issuer key file, as in
# revocation.sh (the exchange needs a TPM and is exercised by exchange.sh).
# usage: retention.sh PATH/TO/tether-fleetd PATH/TO/tetherctl
set -euo pipefail

FLEETD=${1:?usage: retention.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
CTL=${2:?usage: retention.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 sqlite3 openssl timeout
scratch_fleet retention

OUT=
RC=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last answer: $RC $OUT" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
json() { json_get "${2:-$OUT}" "$1"; }
ctl() {
    RC=0
    OUT=$(timeout 60 "$CTL" "$@" 2>"$WORK/err") || RC=$?
}
# api TOKENFILE METHOD PATH [CURL ARGS...]: sets OUT (body) and RC (HTTP status).
api() {
    local token=$1 method=$2 path=$3
    shift 3
    RC=$(curl -sS --max-time 60 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
        -X "$method" -H "Authorization: Bearer $(cat "$token")" "$@" "$URL$path") || RC=curl-failed
    OUT=$(cat "$WORK/body" 2>/dev/null || true)
}
introspect() { api "$WORK/rp.token" POST /v1/introspect --data-urlencode "token=$1"; }
mkjwt() { python3 "$here/jwt_tool.py" sign "$DIR/issuer-key.pem" "$KID" "$(python3 "$here/jwt_tool.py" claims "$ISSUER" "$@")"; }
# report ID JTI LAST_SEEN: one usage report entry of DEV's; sets OUT and RC.
report() {
    api "$WORK/rp.token" POST /v1/usage/reports -H "Content-Type: application/json" --data-binary \
        '{"version": 1, "gateway": "test", "report_id": "'"$1"'", "entries": [{"jti": "'"$2"'", "device": "'"$DEV"'", "requests": 1, "refused": 0, "prompt_tokens": 1, "completion_tokens": 1, "cost_micros": 1, "first_seen": '"$3"', "last_seen": '"$3"'}]}'
}
# sample NAME{LABELS}: its value in the scrape in $WORK/scrape.txt.
sample() { grep -F "$1 " "$WORK/scrape.txt" | awk '{print $2}'; }

# --- the fleet, its retention keys -------------------------------------------------------
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
for line in "token_retention_hours = 168" "alert_retention_days = 30" "purge_batch_rows = 1000" \
    "purge_pause_milliseconds = 20"; do
    grep -qx "$line" "$DIR/fleetd.conf" || fail "init did not write \"$line\""
done
pass "init writes the retention keys with their defaults"
sed -i -e 's/^token_retention_hours = .*/token_retention_hours = 1/' \
    -e 's/^alert_retention_days = .*/alert_retention_days = 1/' \
    -e 's/^purge_batch_rows = .*/purge_batch_rows = 100/' \
    -e 's/^purge_pause_milliseconds = .*/purge_pause_milliseconds = 0/' "$DIR/fleetd.conf"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
"$FLEETD" admin-token --dir "$DIR" --roles relying-party --name gate >"$WORK/rp.token" 2>/dev/null
chmod 600 "$WORK/rp.token"
start_fleetd
ctl device allow --ek-sha256 "$(printf 'a%.0s' $(seq 64))" --name device-a
[ "$RC" = 0 ] || fail "device allow"
ctl --json device list
DEV=$(json '[d["id"] for d in j["devices"] if d["name"] == "device-a"][0]')
api "$WORK/admin.token" GET /.well-known/jwks.json
KID=$(json 'j["keys"][0]["kid"]')
api "$WORK/admin.token" GET /.well-known/oauth-authorization-server
ISSUER=$(json 'j["issuer"]')

# --- the backlog -------------------------------------------------------------------------
# A token's usage window closes 60 s (the gateways' leeway) and one token
# lifetime (300 s) after its exp; it is kept an hour after that. OLD tokens
# expired 3 hours ago; KEPT ones 30 minutes ago; LIVE is valid.
NOW=$(date +%s)
OLD_EXP=$((NOW - 3 * 3600))
KEPT_EXP=$((NOW - 1800))
LIVE_EXP=$((NOW + 300))
OLD_COUNT=250
KEPT=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee1
LIVE=eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee2
OLD_ONE=$(printf 'a%031d' 7)
sql "UPDATE devices SET status = 'active' WHERE id = '$DEV'"
# Each statement generates its rows with a recursive CTE (both stores).
gen() { echo "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $OLD_COUNT) $1"; }
old_jti="'a' || substr('0000000000000000000000000000000' || i, -31, 31)"
[ "${TETHER_TEST_STORE:-sqlite}" = postgresql ] && old_jti="'a' || lpad(i::text, 31, '0')"
sql "$(gen "INSERT INTO issued_tokens (jti, device_id, issued_at, exp) SELECT $old_jti, '$DEV', $((OLD_EXP - 300)), $OLD_EXP + i FROM n")"
sql "$(gen "INSERT INTO device_usage (jti, device_id, proofs, requests, bearer, nonce_issued_at, final, reported_at) SELECT $old_jti, '$DEV', 1, 1, 0, $OLD_EXP, 1, $OLD_EXP FROM n")"
sql "$(gen "INSERT INTO usage_alerts (jti, kind, created_at) SELECT $old_jti, 'usage_unreported', $OLD_EXP + 400 FROM n")"
sql "$(gen "INSERT INTO token_usage (relying_party, jti, device_id, reported_device_id, flagged, gateway, requests, refused, prompt_tokens, completion_tokens, cost_micros, first_seen, last_seen, received_at) SELECT 1, $old_jti, '$DEV', '$DEV', 0, 'test', 1, 0, 1, 1, 1, $((OLD_EXP - 3600 - 400)), $((OLD_EXP - 3600 - 400)), $((OLD_EXP - 3600 - 400)) FROM n")"
sql "$(gen "INSERT INTO alerts (device_id, kind, details, created_at) SELECT '$DEV', 'old_test_alert', '{}', $((NOW - 2 * 86400)) FROM n")"
sql "INSERT INTO issued_tokens (jti, device_id, issued_at, exp) VALUES
        ('$KEPT', '$DEV', $((KEPT_EXP - 300)), $KEPT_EXP), ('$LIVE', '$DEV', $NOW, $LIVE_EXP);
     INSERT INTO device_usage (jti, device_id, proofs, requests, bearer, nonce_issued_at, final, reported_at)
        VALUES ('$KEPT', '$DEV', 3, 3, 0, $((KEPT_EXP + 100)), 1, $((KEPT_EXP + 100)));
     INSERT INTO alerts (device_id, kind, details, created_at) VALUES ('$DEV', 'recent_test_alert', '{}', $((NOW - 3600)))"
[ "$(sql "SELECT count(*) FROM issued_tokens")" = $((OLD_COUNT + 2)) ] || fail "the backlog was not written"
pass "a backlog of $OLD_COUNT tokens (counts, usage alerts, usage) and $OLD_COUNT alerts past their retention"

# --- the purge -----------------------------------------------------------------------------
# Its first pass comes 15 s after the start; poll up to 120 s (a loaded machine).
for _ in $(seq 1 240); do
    [ "$(sql "SELECT count(*) FROM issued_tokens")" = 2 ] &&
        [ "$(sql "SELECT count(*) FROM alerts WHERE kind = 'old_test_alert'")" = 0 ] && break
    sleep 0.5
done
[ "$(sql "SELECT count(*) FROM issued_tokens")" = 2 ] || fail "the expired tokens were not purged"
[ "$(sql "SELECT count(*) FROM alerts WHERE kind = 'old_test_alert'")" = 0 ] || fail "old alerts stayed"
[ "$(sql "SELECT count(*) FROM device_usage")" = 1 ] || fail "device_usage: $(sql "SELECT jti FROM device_usage")"
[ "$(sql "SELECT count(*) FROM usage_alerts")" = 0 ] || fail "usage alerts of purged tokens stayed"
[ "$(sql "SELECT count(*) FROM token_usage")" = 0 ] || fail "token usage past its cutoff stayed"
[ "$(sql "SELECT count(*) FROM issued_tokens WHERE jti IN ('$KEPT', '$LIVE')")" = 2 ] ||
    fail "a token inside its retention was purged"
[ "$(sql "SELECT proofs FROM device_usage WHERE jti = '$KEPT'")" = 3 ] || fail "the kept token lost its counts"
[ "$(sql "SELECT count(*) FROM alerts WHERE kind = 'recent_test_alert'")" = 1 ] || fail "a recent alert was purged"
pass "purged in batches of 100: what passed its retention went, what is inside stayed"
api "$WORK/admin.token" GET /metrics
[ "$RC" = 200 ] || fail "/metrics: HTTP $RC"
cp "$WORK/body" "$WORK/scrape.txt"
for table in issued_tokens device_usage usage_alerts token_usage alerts; do
    value=$(sample "tether_fleetd_purged_rows_total{table=\"$table\"}")
    [ "$value" = "$OLD_COUNT" ] || fail "purged rows of $table in /metrics: '$value'"
done
# Batches of 100: at least three transactions for 250 rows.
[ "$(sample 'tether_fleetd_store_transaction_duration_seconds_count{operation="purge"}')" -ge 3 ] ||
    fail "the purge's transactions are not timed, or not in batches"
pass "/metrics: tether_fleetd_purged_rows_total $OLD_COUNT for each of the five tables"

# --- introspection, usage reports, revocation still answer right ---------------------------
introspect "$(mkjwt "$DEV" "$LIVE" "$LIVE_EXP")"
[ "$RC" = 200 ] && [ "$(json 'j["active"] and j["jti"] == "'"$LIVE"'"')" = True ] ||
    fail "introspection of the live token"
introspect "$(mkjwt "$DEV" "$OLD_ONE" "$((OLD_EXP + 7))")"
[ "$OUT" = '{"active":false}' ] || fail "introspection of a purged token"
introspect "$(mkjwt "$DEV" "$KEPT" "$KEPT_EXP")"
[ "$OUT" = '{"active":false}' ] || fail "introspection of an expired kept token"
pass "introspection: the live token active, an expired one (purged or kept) inactive"
report retention-test-0001 "$LIVE" "$NOW"
[ "$RC" = 200 ] && [ "$(json 'j["status"] == "accepted" and j["flagged"] == 0')" = True ] ||
    fail "a usage report of the live token"
report retention-test-0002 "$KEPT" "$((KEPT_EXP - 10))"
[ "$RC" = 200 ] && [ "$(json 'j["flagged"] == 0')" = True ] || fail "a late usage report of the kept token"
pass "usage reports: the live and the kept token are the fleet's (not flagged)"
ctl device revoke "$DEV" --reason "retention test"
[ "$RC" = 0 ] || fail "device revoke"
introspect "$(mkjwt "$DEV" "$LIVE" "$LIVE_EXP")"
[ "$OUT" = '{"active":false}' ] || fail "introspection after the revocation"
[ "$(sql "SELECT revoked FROM issued_tokens WHERE jti = '$LIVE'")" = 1 ] || fail "the live token is not marked"
api "$WORK/rp.token" GET "/v1/revocations?after=0"
[ "$(json 'len(j["revocations"]) == 1 and j["revocations"][0]["device_id"] == "'"$DEV"'"')" = True ] ||
    fail "the revocation feed"
pass "revocation: the live token marked, inactive at once, the feed's entry"

sigterm_wait "$PID"
wait "$PID" || fail "tether-fleetd did not stop cleanly"
PID=
echo "retention: $passed checks passed"
