#!/usr/bin/env bash
# The refusals tether-gate counts for the fleet's thresholds, with real
# processes (issue 9, "Anomaly thresholds": models outside the allow list
# tried N times; a source network outside the policy's list at the
# gateway): swtpm, tether-fleetd, a device enrolled by tether-agent with
# its AI endpoint in front of tether-gate (usage reported every second) in
# front of openai_upstream.py. Asserts:
# - on policy fenced (sources 10.0.0.0/8, source_networks=1:alert) the
#   device's token carries tether.sources; the gateway, which sees
#   127.0.0.1, refuses it with 403 source_network_refused, counts it, and
#   fleetd alerts on the gateway's sighting (apart from the exchange's own
#   alert for the same address);
# - on policy picky (refused_models=3:quarantine) three requests for a
#   model outside the allow list (403 model_not_allowed) quarantine the
#   device, with one threshold_exceeded alert, and the gateway refuses the
#   device within 1 s of the quarantine (printed).
#   gate_refusals.sh FLEETD TETHERCTL AGENT GATE   (through run_with_swtpm.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/gate_device.sh" gate_refusals "$@"

# alerts_of KIND PYTHON: the threshold_exceeded alerts of KIND, as PYTHON
# over each alert a (a list, sorted by its text).
alerts_of() {
    OUT=$("$CTL" --json alerts)
    json_get "$OUT" "sorted([$2 for a in j['alerts'] if a['kind'] == 'threshold_exceeded' and a['details']['kind'] == '$1'], key=str)"
}

# --- the fleet, two policies, the upstream, the gateway, the agent ------------------------
fleet_with_device
DEV=$(json_get "$("$CTL" --json device list)" 'j["devices"][0]["id"]')
"$CTL" policy create fenced --models 'gpt-4o*' --threshold source_networks=1:alert \
    --source-cidr 10.0.0.0/8 >/dev/null || fail "tetherctl policy create fenced"
"$CTL" policy create picky --models 'gpt-4o*' --threshold refused_models=3:quarantine \
    >/dev/null || fail "tetherctl policy create picky"
"$CTL" device set-policy "$DEV" fenced >/dev/null || fail "tetherctl device set-policy"
start_gate fenced picky
pass "swtpm, fleetd, the device on policy fenced, the agent's AI endpoint, tether-gate reporting every second"

# --- a source network outside the token's sources, at the gateway -------------------------
token_binding
claims=$(python3 "$here/jwt_tool.py" verify "$WORK/jwks.json" "$TOKEN")
[ "$(json_get "$claims" 'd["claims"]["tether"]["sources"]')" = "['10.0.0.0/8']" ] ||
    fail "the token's tether.sources: $claims"
ai_ready
[ "$RC" = 403 ] || fail "a chat from 127.0.0.1 with a token for 10.0.0.0/8: HTTP $RC"
grep -q '"refusal":"source_network_refused"' "$WORK/usage.jsonl" ||
    fail "no usage line with the refusal source_network_refused: $(tail -3 "$WORK/usage.jsonl")"
for _ in $(seq 100); do
    [ "$(alerts_of source_networks "a['details']['observed']")" = "['127.0.0.1']" ] || break
    sleep 0.05
done
[ "$(alerts_of source_networks "(a['details']['observed'], a['details']['value'], a['details']['window_seconds'], a['details']['action'], 'refused by gateways' in a['details']['reason'])")" = \
    "[('127.0.0.1', 1, 3600, 'alert', False), (1, 1, 3600, 'alert', True)]" ] ||
    fail "the source_networks alerts: the gateway's and the exchange's"
[ "$(json_get "$("$CTL" --json device show "$DEV")" 'j["status"]')" = active ] ||
    fail "action alert quarantined the device"
pass "tether.sources [10.0.0.0/8]: the gateway refuses 127.0.0.1 (403 source_network_refused), counts it, and fleetd alerts (and the exchange from 127.0.0.1 alerted on its own)"

# --- a model outside the allow list, tried three times ---------------------------------------
"$CTL" device set-policy "$DEV" picky >/dev/null || fail "tetherctl device set-policy picky"
exchange_now
[ "$STATE" = ok ] || fail "the exchange under policy picky: $STATE"
ai_ready
[ "$RC" = 200 ] || fail "a chat under policy picky: HTTP $RC"
for i in 1 2 3; do
    RC=$(CHAT_BODY='{"model":"llama3:8b","messages":[{"role":"user","content":"hi"}]}' ai_chat)
    [ "$RC" = 403 ] || fail "request $i for llama3:8b: HTTP $RC"
done
[ "$(grep -c '"refusal":"model_not_allowed"' "$WORK/usage.jsonl")" = 3 ] ||
    fail "the usage lines of the three refusals"
await_quarantine_refused "3 requests for a model outside the allow list"
pass "3 requests for llama3:8b (403 model_not_allowed): quarantined"
[ "$(alerts_of refused_models "(a['details']['observed'], a['details']['value'], a['details']['window_seconds'], a['details']['action'])")" = \
    "[(3, 3, 3600, 'quarantine')]" ] || fail "the refused_models alert"
pass "one threshold_exceeded alert: refused_models observed 3 over 3600 s, value 3, action quarantine"
pass "the gateway refuses the device $refused_ms ms after tetherctl sees it quarantined"
echo "gate_refusals: $passed passed"
