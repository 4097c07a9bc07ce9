#!/usr/bin/env bash
# Usage reconciliation with real processes (issue 9, "Device-signed usage",
# "Reconciliation"): swtpm, tether-fleetd, a device enrolled by
# tether-agent with its AI endpoint in front of tether-gate A (DPoP, usage
# reported every 5 s: late), tether-gate B whose policy accepts bearer
# tokens (usage reported every second), both in front of
# openai_upstream.py. Asserts:
# - an honest device under steady use (200 requests through its AI
#   endpoint, exchanges asked meanwhile, an agent restart in the middle,
#   reports arriving late) is never flagged;
# - its token handed out over the socket (tether-agent token) and used
#   through gateway B more times than the device made: at the device's next
#   exchange it is quarantined (the agent's state refused, tetherctl device
#   show quarantined), the usage_mismatch alert has both figures, a
#   webhook receiver (webhook_receiver.py) gets that alert, signed, with
#   both figures, and gateway B refuses the token within 1 s.
#   gate_usage_mismatch.sh FLEETD TETHERCTL AGENT GATE   (through run_with_swtpm.sh)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/gate_device.sh" gate_usage_mismatch "$@"

# --- the fleet (with a webhook), the device, the upstream, two gateways, the agent ------------
fleet_with_device
sigterm_wait "$PID" # fleetd reads its webhooks at start
openssl rand -hex 32 >"$DIR/webhook.key"
chmod 600 "$DIR/webhook.key"
RPORT=$(free_port)
echo "webhook = name=security url=http://127.0.0.1:$RPORT/alerts secret=webhook.key timeout=5" \
    >>"$DIR/fleetd.conf"
python3 "$here/webhook_receiver.py" --secret "$DIR/webhook.key" --log "$WORK/webhooks.jsonl" \
    --port-file "$WORK/receiver.port" --port "$RPORT" &
UPID_RECEIVER=$!
trap 'kill_pids "$UPID_RECEIVER"; cleanup' EXIT
start_fleetd
grep -q '^usage_mismatch_action = quarantine$' "$DIR/fleetd.conf" ||
    fail "init does not write usage_mismatch_action = quarantine"
DEV=$(json_get "$("$CTL" --json device list)" 'j["devices"][0]["id"]')
"$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
chmod 600 "$WORK/rp.token"
start_upstream

# gate NAME REPORT_SECONDS ALLOW_BEARER: a gateway in $WORK/gate-NAME on
# GPORT_NAME, started (GPID_NAME).
gate() {
    local port
    port=$(free_port)
    gate_init "$WORK/gate-$1" "$port" "$2"
    sed -i -e "s/^allow_bearer = .*/allow_bearer = $3/" "$WORK/gate-$1/gate.conf"
    grep -q "^allow_bearer = $3$" "$WORK/gate-$1/gate.conf" || fail "gate.conf has no allow_bearer"
    "$GATE" run --dir "$WORK/gate-$1" >>"$WORK/usage-$1.jsonl" 2>>"$WORK/gate-$1.log" &
    eval "GPID_$1=$! GPORT_$1=$port"
}
gate A 5 no
gate B 1 yes

AI_PORT=$(free_port)
SOCK=$WORK/agent.sock
start_ai_agent "$GPORT_A"
status() { "$AGENT" token --socket "$SOCK" --status; }
ai_ready
[ "$RC" = 200 ] || fail "a chat through the agent and gateway A: HTTP $RC"
pass "swtpm, fleetd, the agent's AI endpoint, gateways A (DPoP) and B (bearer allowed), the stand-in"

mismatch_alerts() {
    json_get "$("$CTL" --json alerts)" 'len([a for a in j["alerts"] if a["kind"].startswith("usage_")])'
}

# --- an honest device under steady use -------------------------------------------------------
sent=1
for i in $(seq 200); do
    RC=$(ai_chat)
    [ "$RC" = 200 ] || fail "request $i through the agent: HTTP $RC"
    sent=$((sent + 1))
    case $i in
    50 | 150) exchange_now ;; # counts reported while gateway A holds reports back
    100)                       # a restart: the held token's last counts are lost
        sigterm_wait "$AGENT_PID"
        wait "$AGENT_PID" || fail "the agent exited with status $?"
        start_ai_agent "$GPORT_A"
        ;;
    esac
done
# Gateway A's last reports (5 s), then an exchange that carries the counts.
for _ in $(seq 100); do
    n=$(json_get "$("$CTL" --json usage --device "$DEV")" 'sum(u["requests"] for u in j["usage"])')
    [ "$n" -ge "$sent" ] && break
    sleep 0.1
done
[ "$n" -ge "$sent" ] || fail "the fleet counts $n of the $sent requests sent"
exchange_now
[ "$STATE" = ok ] || fail "the honest device was refused: $(status)"
[ "$(mismatch_alerts)" = 0 ] || fail "the honest device was flagged: $("$CTL" --json alerts)"
pass "an honest device: $sent requests through its AI endpoint, exchanges meanwhile, a restart, gateway reports up to 5 s late: never flagged"

# --- a stolen bearer token ---------------------------------------------------------------------
exchange_now
STOLEN=$TOKEN
JTI=$(python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["jti"])' "$STOLEN")
gate_b() { # the stolen token at gateway B: the HTTP status
    curl -sS --max-time 10 -o "$WORK/body" -w '%{http_code}' -H "Authorization: Bearer $STOLEN" \
        -H 'Content-Type: application/json' --data-binary "$CHAT_BODY" \
        "http://127.0.0.1:$GPORT_B/v1/chat/completions" || echo curl-failed
}
for _ in $(seq 100); do
    RC=$(gate_b)
    [ "$RC" = 503 ] || [ "$RC" = curl-failed ] || break
    sleep 0.1
done
[ "$RC" = 200 ] || fail "the bearer token at gateway B: HTTP $RC $(cat "$WORK/body")"
for i in 2 3 4 5; do
    RC=$(gate_b)
    [ "$RC" = 200 ] || fail "use $i of the stolen token: HTTP $RC"
done
for _ in $(seq 100); do
    n=$(json_get "$("$CTL" --json usage --device "$DEV")" "sum(u['requests'] for u in j['usage'] if u['jti'] == '$JTI')")
    [ "$n" = 5 ] && break
    sleep 0.1
done
[ "$n" = 5 ] || fail "gateway B's report of the stolen token: $n requests"
sleep 1.1 # the report strictly before the next nonce's second
# stolen_logs: on a failure from here, fleetd's exchange and usage lines,
# the agent's log and the fleet's usage of the stolen token.
stolen_logs() {
    echo "--- fleetd's exchange and usage lines (tail):" >&2
    grep -E 'exchange|usage' "$WORK/fleetd.log" | tail -n 20 >&2 || true
    log_tail agent "$WORK/agent.log" 30
    echo "--- tetherctl usage of $JTI: $("$CTL" --json usage --device "$DEV" | grep -o "[^{]*$JTI[^}]*")" >&2
}
# From the SIGHUP that starts the exchange to gateway B's first refusal:
# the exchange, its quarantine, the revocation feed and the gateway.
t0=$(date +%s%N)
kill -HUP "$AGENT_PID"
refused_ms=
for _ in $(seq 200); do
    RC=$(gate_b)
    if [ "$RC" = 401 ]; then
        refused_ms=$((($(date +%s%N) - t0) / 1000000))
        break
    fi
    sleep 0.02
done
[ -n "$refused_ms" ] && [ "$refused_ms" -le 1000 ] || {
    stolen_logs
    fail "gateway B still accepts the stolen token ${refused_ms:-4000+} ms after the SIGHUP: HTTP $RC"
}
for _ in $(seq 100); do
    STATE=$(json_get "$(status)" 'j["state"]')
    [ "$STATE" = refused ] && break
    sleep 0.1
done
[ "$STATE" = refused ] || { stolen_logs; fail "the device's next exchange was not refused: $(status)"; }
json_get "$(status)" 'j["last_error"]' | grep -q usage_mismatch || fail "the refusal: $(status)"
[ "$(json_get "$("$CTL" --json device show "$DEV")" 'j["status"]')" = quarantined ] ||
    fail "tetherctl device show: $("$CTL" --json device show "$DEV")"
OUT=$("$CTL" --json alerts)
[ "$(json_get "$OUT" "[(a['details']['jti'], a['details']['gateway_accepted'], a['details']['device_made'], a['details']['bearer_handouts']) for a in j['alerts'] if a['kind'] == 'usage_mismatch']")" = \
    "[('$JTI', 5, 0, 1)]" ] || fail "the usage_mismatch alert"
pass "a bearer token used 5 times through gateway B, made 0 times by the device: quarantined at its next exchange (agent refused, tetherctl device show quarantined), the alert with both figures"
# The webhook: the same alert, signature verified, both figures.
delivered() {
    python3 - "$WORK/webhooks.jsonl" "$JTI" <<'PY'
import json, sys
found = 0
try:
    for line in open(sys.argv[1]):
        r = json.loads(line)
        d = r.get("details") or {}
        if (r["kind"] == "usage_mismatch" and r["verified"] and r["status"] == 200 and
                (d.get("jti"), d.get("gateway_accepted"), d.get("device_made")) == (sys.argv[2], 5, 0)):
            found += 1
except FileNotFoundError:
    pass
print(found)
PY
}
for _ in $(seq 100); do
    [ "$(delivered)" = 1 ] && break
    sleep 0.1
done
[ "$(delivered)" = 1 ] || fail "the webhook receiver did not get the usage_mismatch alert: $(cat "$WORK/webhooks.jsonl" 2>/dev/null)"
pass "the webhook receiver got the usage_mismatch alert, signed, with both figures (gateways 5, device 0)"
pass "gateway B refuses the stolen token $refused_ms ms after the SIGHUP that started that exchange"
# fleetd's periodic usage_unreported check ran (every 15 s) without failing.
! grep -q 'usage_unreported check failed' "$WORK/fleetd.log" ||
    fail "the usage_unreported check failed: $(grep -m1 -B2 'usage_unreported check failed' "$WORK/fleetd.log")"
pass "fleetd's periodic usage_unreported check ran without an error"
echo "gate_usage_mismatch: $passed passed"
