#!/usr/bin/env bash
# tether-gate's usage reports to a real tether-fleetd, with real processes:
# tether-gate in front of openai_upstream.py (the OpenAI-compatible
# stand-in), requests signed by the device's client (gate_dpop_client.mjs,
# DPoP with the npm "jose" package). Asserts, each within a bounded wait
# (polled, never a fixed sleep):
# - `tetherctl usage --json` shows, per jti, exactly the requests, refusals,
#   tokens and cost of the gateway's usage lines (the stand-in's usage);
# - a token the fleet did not issue is counted under the device named,
#   flagged, and raises a usage_device_mismatch alert;
# - a report sent twice with curl and the relying-party token (a retry
#   after a lost answer) is counted once; the same id with another body is
#   409; a malformed and an oversized report are refused with no change;
# - fleetd stopped while requests go on, then back: nothing is lost;
# - tether-gate stopped with SIGTERM right after a request sends it (the
#   flush), with a report interval far longer than the test.
#
# Access tokens are signed here with the fleet's issuer key file, as in
# gateway_proxy_e2e.sh (the attested exchange needs a TPM); the rows fleetd
# keeps for the tokens it issues are added with sqlite3 for two of them.
# usage: gate_usage_report.sh tether-fleetd tetherctl tether-gate NODE_DIR
set -euo pipefail

usage="usage: gate_usage_report.sh tether-fleetd tetherctl tether-gate NODE_DIR"
FLEETD=${1:?$usage}
CTL=${2:?$usage}
GATE=${3:?$usage}
NODE_DIR=${4:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 node npm openssl sqlite3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-gate-usage-test.XXXXXX")
DIR=$WORK/fleet
GDIR=$WORK/gate
PID=
GPID=
UPID=
cleanup() {
    kill_pids "$GPID" "$UPID" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last: $OUT" >&2
    log_tail tether-gate "$WORK/gate.log" 20
    log_tail tether-fleetd "$WORK/fleetd.log" 20
    exit 1
}

. "$here/gate_fleet.sh"
gate_install_jose "$here/gate_client.mjs" "$here/gate_dpop_client.mjs"

# --- the fleet, two devices, three tokens ---------------------------------------------
gate_start_fleet
DEV_A=$(gate_allow device-a)
DEV_B=$(gate_allow device-b)
KID=$(json_get "$(curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json")" 'j["keys"][0]["kid"]')
JKT=$(node "$NODE_DIR/gate_client.mjs" keygen "$WORK/device.jwk")
JA=aaaaaaaaaaaaaaaaaaaaaaaaaaaa0001
JA2=aaaaaaaaaaaaaaaaaaaaaaaaaaaa0002
JB=bbbbbbbbbbbbbbbbbbbbbbbbbbbb0001 # never issued by the fleet
TOKEN_A=$(gate_token "$DEV_A" "$JA" default)
TOKEN_A2=$(gate_token "$DEV_A" "$JA2" default)
TOKEN_B=$(gate_token "$DEV_B" "$JB" default)
now=$(date +%s)
sql "INSERT INTO issued_tokens (jti, device_id, issued_at, exp) VALUES
     ('$JA', '$DEV_A', $now, $((now + 600))), ('$JA2', '$DEV_A', $now, $((now + 600)))"

# --- the stand-in and the gateway (a report every second) -------------------------------
gate_start_upstream 0
GPORT=$(free_port)
GURL=http://127.0.0.1:$GPORT
gate_init "$GPORT"
grep -q '^usage_report_seconds = 5$' "$GDIR/gate.conf" || fail "init does not write usage_report_seconds"
sed -i 's/^usage_report_seconds = 5$/usage_report_seconds = 1/' "$GDIR/gate.conf"
"$GATE" check --dir "$GDIR" | grep -q ": ok$" || fail "check"
start_gate() {
    "$GATE" run --dir "$GDIR" >>"$WORK/usage.jsonl" 2>>"$WORK/gate.log" &
    GPID=$!
}
start_gate

gate_wait_ready "$TOKEN_A"

# --- requests, and what the fleet shows ------------------------------------------------
gate_client "$TOKEN_A" "$GURL" chat
gate_client "$TOKEN_A" "$GURL" chat
gate_client "$TOKEN_A" "$GURL" stream
gate_client "$TOKEN_A" "$GURL" chat llama3 # refused by the policy: counted as refused
[ "$(json_get "$OUT" 'j["status"]')" = 403 ] || fail "llama3 is not refused"
gate_client "$TOKEN_A2" "$GURL" embeddings
gate_client "$TOKEN_B" "$GURL" chat
[ "$(json_get "$OUT" 'j["status"]')" = 200 ] || fail "a chat request of device B"

# The fleet's view against the gateway's usage lines (and EXTRA: reports
# the test sent itself, as JSON {jti: [requests, refused, prompt,
# completion, cost]}): "ok" or what differs.
EXTRA='{}'
usage_matches() { # DEVICE
    local view
    view=$("$CTL" --json usage --device "$1") || return 1
    python3 - "$WORK/usage.jsonl" "$view" "$EXTRA" "$1" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
view, extra, device = json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
want = {}
for l in lines:
    if l["jti"] is None or l["device"] != device:
        continue
    w = want.setdefault(l["jti"], [0, 0, 0, 0, 0])
    w[0 if l["refusal"] is None else 1] += 1
    w[2] += l["prompt_tokens"]; w[3] += l["completion_tokens"]; w[4] += l["cost_micros"]
for jti, counts in extra.items():
    if jti in want or any(l["jti"] == jti and l["device"] == device for l in lines):
        want[jti] = [a + b for a, b in zip(want.get(jti, [0] * 5), counts)]
got = {u["jti"]: [u["requests"], u["refused"], u["prompt_tokens"], u["completion_tokens"],
                  u["cost_micros"]] for u in view["usage"]}
print("ok" if got == want else "want %s got %s" % (want, got))
PY
}
wait_usage() { # DEVICE WHAT
    local i
    for i in $(seq 150); do
        OUT=$(usage_matches "$1" || true)
        [ "$OUT" = ok ] && return 0
        sleep 0.1
    done
    fail "$2: the fleet's usage of $1 is not the gateway's within 15 s"
}
wait_usage "$DEV_A" "usage per token"
# The stand-in answers every chat with 11 + 7 tokens and an embedding with
# 5 (0.15 and 0.6 per 1000 for gpt-4o-mini, 0.02 for the embedding): A's
# first token made GET /v1/models, 2 chats and a stream, and had llama3
# refused.
VIEW=$("$CTL" --json usage --device "$DEV_A")
[ "$(json_get "$VIEW" '[(u["jti"], u["requests"], u["refused"], u["prompt_tokens"], u["completion_tokens"], u["cost_micros"], u["flagged"]) for u in j["usage"]]')" = \
    "[('$JA', 4, 1, 33, 21, 17550, False), ('$JA2', 1, 0, 5, 0, 100, False)]" ] ||
    fail "device A's tokens: $VIEW"
# Device B's request came last: its report may follow A's by an interval.
counted=
for _ in $(seq 150); do
    counted=$(json_get "$("$CTL" --json usage)" 'sum(u["requests"] for u in j["usage"])')
    [ "$counted" = "$(wc -l <"$WORK/received.jsonl")" ] && break
    sleep 0.1
done
[ "$counted" = "$(wc -l <"$WORK/received.jsonl")" ] ||
    fail "the requests counted ($counted) are not those the stand-in received within 15 s"
pass "tetherctl usage --json: per jti, exactly the requests, refusals, tokens and cost the stand-in reported"
wait_usage "$DEV_B" "a token the fleet never issued"
VIEW=$("$CTL" --json usage)
[ "$(json_get "$VIEW" '[(u["device_id"], u["tokens"], u["flagged"]) for u in j["usage"]]')" = \
    "$(python3 -c 'import sys; print(sorted([(sys.argv[1], 2, False), (sys.argv[2], 1, True)]))' "$DEV_A" "$DEV_B")" ] ||
    fail "usage per device: $VIEW"
ALERTS=$("$CTL" --json alerts)
[ "$(json_get "$ALERTS" '[(a["details"]["jti"], a["details"]["reported_device"]) for a in j["alerts"] if a["kind"] == "usage_device_mismatch"]')" = \
    "[('$JB', '$DEV_B')]" ] || fail "the mismatch alert: $ALERTS"
"$CTL" usage | grep -q "^DEVICE  *TOKENS  *REQUESTS" || fail "the usage table"
pass "per device, and a token the fleet never issued: counted under the device named, flagged, alerted"

# --- reports sent by the test: a retry counted once, refusals change nothing ---------------
report() { # ID REQUESTS: a report of JA2 on stdout
    printf '{"version":1,"gateway":"test","report_id":"%s","entries":[{"jti":"%s","device":"%s","requests":%s,"refused":0,"prompt_tokens":3,"completion_tokens":4,"cost_micros":5,"first_seen":%s,"last_seen":%s}]}' \
        "$1" "$JA2" "$DEV_A" "$2" "$(date +%s)" "$(date +%s)"
}
post_report() { # FILE [CURL-ARGS...]: "STATUS BODY"
    local file=$1
    shift
    curl -sS --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
        -H 'Content-Type: application/json' "$@" --data-binary "@$file" -w ' %{http_code}' \
        "$URL/v1/usage/reports"
}
report test-retry-0000000001 1 >"$WORK/report.json"
OUT=$(post_report "$WORK/report.json")
case $OUT in *'"status":"accepted"'*' 200') ;; *) fail "the test's report" ;; esac
OUT=$(post_report "$WORK/report.json")
case $OUT in *'"status":"duplicate"'*' 200') ;; *) fail "the report sent again" ;; esac
EXTRA="{\"$JA2\": [1, 0, 3, 4, 5]}"
OUT=$(usage_matches "$DEV_A")
[ "$OUT" = ok ] || fail "a report sent twice"
pass "a report sent twice (a retry after a lost answer) is counted once"

snapshot() { sql "SELECT * FROM token_usage ORDER BY jti; SELECT count(*) FROM usage_reports"; }
BEFORE=$(snapshot)
report test-retry-0000000001 2 >"$WORK/other.json"
OUT=$(post_report "$WORK/other.json")
case $OUT in *'"error":"report_id_reused"'*' 409') ;; *) fail "another report under a used id" ;; esac
report test-malformed-000001 -1 >"$WORK/bad.json"
OUT=$(post_report "$WORK/bad.json")
case $OUT in *'"error":"invalid_request"'*'"requests\" must be an integer'*' 400') ;;
*) fail "a malformed report" ;; esac
python3 -c 'import sys; sys.stdout.write("{\"version\":1,\"entries\":[" + " " * 100000 + "]}")' >"$WORK/big.json"
# The client waits for the verdict before sending the body (Expect:
# 100-continue, however long the loaded server takes): a 413 sent while the
# body is still in flight ends in a connection reset, a race, not a refusal.
OUT=$(post_report "$WORK/big.json" -H 'Expect: 100-continue' --expect100-timeout 60)
case $OUT in *'"error":"payload_too_large"'*' 413') ;; *) fail "an oversized report" ;; esac
OUT=$(curl -sS --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/admin.token")" \
    -H 'Content-Type: application/json' --data-binary "@$WORK/report.json" -w ' %{http_code}' \
    "$URL/v1/usage/reports")
case $OUT in *'"error":"insufficient_scope"'*' 403') ;; *) fail "a report without the relying-party role" ;; esac
[ "$(snapshot)" = "$BEFORE" ] || fail "a refused report changed the store"
pass "an id reused (409), a malformed (400) and an oversized (413) report, and one without the role (403): refused, nothing changed"

# --- fleetd away for a while: nothing lost -------------------------------------------------
sigterm_wait "$PID"
wait "$PID" || fail "tether-fleetd exited with status $?"
PID=
gate_client "$TOKEN_A" "$GURL" chat
[ "$(json_get "$OUT" 'j["status"]')" = 200 ] || fail "a request while the fleet is away"
gate_client "$TOKEN_A2" "$GURL" chat
failed=0
for _ in $(seq 100); do
    failed=$(curl -sS --max-time 5 "$GURL/metrics" |
        sed -n 's/^tether_gate_usage_reports_total{outcome="failed"} //p')
    [ "${failed:-0}" -ge 1 ] 2>/dev/null && break
    sleep 0.1
done
[ "${failed:-0}" -ge 1 ] || fail "no failed delivery counted while the fleet was away"
start_fleetd
wait_usage "$DEV_A" "after the fleet came back"
pass "fleetd stopped and back: the reports kept by the gateway arrive, nothing lost ($failed failed deliveries)"

curl -sS --max-time 5 -o "$WORK/metrics.txt" "$GURL/metrics" || fail "GET /metrics"
python3 - "$WORK/metrics.txt" <<'PY' || fail "the usage report metrics"
samples = {}
for line in open(__import__("sys").argv[1]):
    if not line.startswith("#") and line.strip():
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
assert samples['tether_gate_usage_reports_total{outcome="sent"}'] >= 2, samples
assert samples["tether_gate_usage_entries_pending"] == 0, samples
assert samples["tether_gate_usage_dropped_total"] == 0, samples
PY
pass "/metrics: usage reports sent and failed, entries pending, none dropped"

# --- SIGTERM sends what is left --------------------------------------------------------------
sigterm_wait "$GPID"
wait "$GPID" || fail "tether-gate exited with status $?"
GPID=
sed -i 's/^usage_report_seconds = 1$/usage_report_seconds = 60/' "$GDIR/gate.conf"
start_gate
gate_wait_ready "$TOKEN_A"
gate_client "$TOKEN_A" "$GURL" chat
sigterm_wait "$GPID"
wait "$GPID" || fail "tether-gate exited with status $?"
GPID=
OUT=$(usage_matches "$DEV_A")
[ "$OUT" = ok ] || fail "the usage of the last requests was not sent at stop"
pass "tether-gate stopped with SIGTERM: the last usage is sent before it exits"
echo "$passed passed"
