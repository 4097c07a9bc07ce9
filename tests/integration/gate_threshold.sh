#!/usr/bin/env bash
# Anomaly thresholds with real processes (issue 9, "Anomaly thresholds"):
# swtpm, tether-fleetd, a device enrolled by tether-agent with its AI
# endpoint in front of tether-gate (usage reported every second) in front
# of openai_upstream.py. The device follows a policy with
# requests_per_minute=20:quarantine and sends 40 requests. Asserts:
# - the device is quarantined (tetherctl device show), once, with one
#   threshold_exceeded alert carrying the kind, value, observed figure,
#   window and action;
# - the gateway refuses the device within 1 s of the quarantine (printed).
#   gate_threshold.sh FLEETD TETHERCTL AGENT GATE   (through run_with_swtpm.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/gate_device.sh" gate_threshold "$@"

# --- the fleet, the device on its policy, the upstream, the gateway, the agent --------------
fleet_with_device
DEV=$(json_get "$("$CTL" --json device list)" 'j["devices"][0]["id"]')
"$CTL" policy create spiky --models 'gpt-4o*' --threshold requests_per_minute=20:quarantine \
    >/dev/null || fail "tetherctl policy create"
"$CTL" device set-policy "$DEV" spiky >/dev/null || fail "tetherctl device set-policy"
# The gateway serves the fleet policy's name, without a ceiling of its own.
start_gate spiky
ai_ready
[ "$RC" = 200 ] || fail "a chat through the agent and the gateway: HTTP $RC"
pass "swtpm, fleetd, the device on policy spiky (requests_per_minute=20:quarantine), the agent's AI endpoint, tether-gate reporting every second"

# --- 40 requests within a minute ----------------------------------------------------------
served=1
for i in $(seq 2 40); do
    RC=$(ai_chat)
    [ "$RC" = 200 ] && served=$((served + 1))
done
[ "$served" -gt 20 ] || fail "only $served of 40 requests served before the reports could count them"
# The quarantine comes with the gateway's next report (every second).
await_quarantine_refused "40 requests"
pass "40 requests ($served served): quarantined"
OUT=$("$CTL" --json alerts)
[ "$(json_get "$OUT" "[(a['details']['kind'], a['details']['value'], a['details']['observed'] > 20, a['details']['window_seconds'], a['details']['action']) for a in j['alerts'] if a['kind'] == 'threshold_exceeded']")" = \
    "[('requests_per_minute', 20, True, 60, 'quarantine')]" ] || fail "the threshold_exceeded alert"
observed=$(json_get "$OUT" "[a['details']['observed'] for a in j['alerts'] if a['kind'] == 'threshold_exceeded'][0]")
pass "one threshold_exceeded alert: requests_per_minute observed $observed over 60 s, value 20, action quarantine"
pass "the gateway refuses the device $refused_ms ms after tetherctl sees it quarantined"
echo "gate_threshold: $passed passed"
