#!/usr/bin/env bash
# The agent as the device's AI endpoint (issue "AI endpoint access", the
# agent side). Real processes on loopback: swtpm, tether-fleetd over TLS,
# tether-agent holding a token with --ai-listen, a stand-in gateway
# (gate_standin.py) that checks each request's DPoP proof with lib's
# verifier (dpop_probe) against the token's cnf.jkt and challenges the
# first one for a nonce, and apps using the stock `openai` npm client.
#   agent_ai.sh FLEETD TETHERCTL AGENT DPOP_PROBE NODE_DIR   (through run_with_swtpm.sh)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4 NODE_DIR=$5
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools python3 curl openssl node npm

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-agent-ai-test.XXXXXX")
DIR=$WORK/fleet
PID=
AGENT_PID=
GATE_PID=
cleanup() {
    [ -n "$PID" ] && kill -CONT "$PID" 2>/dev/null
    kill_pids "$AGENT_PID" "$PID" "$GATE_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 10
    log_tail agent "$WORK/agent.log" 15
    log_tail gateway "$WORK/gate.out" 10
    echo "agent_ai: $passed passed, 1 failed"
    exit 1
}

# The stock OpenAI client, installed once into the build tree.
. "$here/node_packages.sh"
node_install "$NODE_DIR" openai || fail "cannot install the openai npm package into $NODE_DIR"
cp "$here/openai_app.mjs" "$NODE_DIR/openai_app.mjs"
app() { node "$NODE_DIR/openai_app.mjs" "http://127.0.0.1:$AI_PORT/v1"; }

SOCK=$WORK/agent.sock
status() { "$AGENT" token --socket "$SOCK" --status; }
run_agent() {
    "$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$SOCK" "$@"
}

# --- a real fleet and one enrolled device -------------------------------------------
fleet_with_device

# --- what the agent refuses at start -----------------------------------------------
AI_PORT=$(free_port)
GATE_PORT=$(free_port)
refused() { # refused REASON_PART ARGS...: the agent exits 1 saying why
    local part=$1
    shift
    if run_agent "$@" >"$WORK/refused.log" 2>&1; then fail "the agent ran with $*"; fi
    grep -q -- "$part" "$WORK/refused.log" || fail "no clear reason for $*: $(cat "$WORK/refused.log")"
}
refused "only for a gateway on a loopback" --ai-listen "127.0.0.1:$AI_PORT" \
    --ai-upstream http://192.0.2.1/v1
refused "needs --ai-ca" --ai-listen "127.0.0.1:$AI_PORT" --ai-upstream https://gate.example/v1
refused "only a loopback address" --ai-listen "0.0.0.0:$AI_PORT" \
    --ai-upstream "http://127.0.0.1:$GATE_PORT/v1"
pass "refused at start: plain http to a non-loopback gateway, https without --ai-ca, a non-loopback listener"

# --- the agent with its AI endpoint, the stand-in gateway behind it ----------------
"$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$SOCK" \
    --ai-listen "127.0.0.1:$AI_PORT" --ai-upstream "http://127.0.0.1:$GATE_PORT/v1" \
    2>"$WORK/agent.log" &
AGENT_PID=$!
wait_agent_token "$SOCK"
token_binding
GATE_LOG=$WORK/gate.jsonl
python3 -u "$here/gate_standin.py" "$GATE_PORT" "$JKT" "$PROBE" "$GATE_LOG" >"$WORK/gate.out" 2>&1 &
GATE_PID=$!
for _ in $(seq 1 50); do grep -q ready "$WORK/gate.out" && break; sleep 0.1; done
grep -q ready "$WORK/gate.out" || fail "the stand-in gateway did not start"

out=$(app 2>&1) || fail "the OpenAI client through the agent: $out"
[ "$(json_get "$out" 'd["models"]')" = "['stand-in-model']" ] || fail "models: $out"
[ "$(json_get "$out" 'd["plain"]')" = "The answer is 42." ] || fail "not streamed: $out"
[ "$(json_get "$out" 'd["streamed"]')" = "The answer is 42." ] || fail "streamed: $out"
pass "the stock openai client gets its answers through the agent, streamed and not"

# Streamed as it comes: the stand-in sends its four events 0.4 s apart.
[ "$(json_get "$out" 'd["last_ms"] - d["first_ms"] >= 900')" = True ] ||
    fail "the stream came at once, not as sent: $out"
pass "the stream reaches the app event by event (first at $(json_get "$out" 'd["first_ms"]') ms, last at $(json_get "$out" 'd["last_ms"]') ms)"

# What the gateway saw: a DPoP token and a valid proof on each request, never
# the app's key; one nonce challenge, answered by the agent, then remembered.
n=$(wc -l <"$GATE_LOG")
g() { python3 -c 'import json, sys; e = [json.loads(l) for l in open(sys.argv[1])]; print(eval(sys.argv[2]))' "$GATE_LOG" "$1"; }
[ "$(g 'all(x["scheme"] == "DPoP" and x["authorization_headers"] == 1 for x in e)')" = True ] ||
    fail "a request without one DPoP Authorization: $(cat "$GATE_LOG")"
[ "$(g 'any(x["app_secret_seen"] for x in e)')" = False ] ||
    fail "the app's API key reached the gateway: $(cat "$GATE_LOG")"
[ "$(g "all(x['token'] == '$TOKEN' for x in e)")" = True ] || fail "a request carried another token"
[ "$(g '[x["verdict"] for x in e]')" = "['dpop_wrong_nonce', 'ok', 'ok', 'ok']" ] ||
    fail "expected one nonce challenge, then valid proofs: $(g '[x["verdict"] for x in e]')"
pass "the gateway saw $n requests: the app's key never, a DPoP token and a valid TPM proof on each; the nonce challenge was answered once and the nonce kept"

# Counted per token: every request sent upstream and every proof.
[ "$(json_get "$(status)" "[(t['proofs'], t['requests']) for t in d['tokens'] if t['jti'] == '$JTI']")" = "[($n, $n)]" ] ||
    fail "$n requests and proofs for $JTI, the status says: $(status)"
pass "GET /v1/status counts $n proofs and $n requests for the token's jti"

# --- several apps at once, while an exchange with the fleet waits -----------------
kill -STOP "$PID"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 50); do
    [ "$(json_get "$(status)" 'd["exchanging"]')" = True ] && break
    sleep 0.1
done
[ "$(json_get "$(status)" 'd["exchanging"]')" = True ] || fail "no exchange under way: $(status)"
t0=$(date +%s%3N)
apps=()
for i in 1 2 3 4; do
    app >"$WORK/app$i.out" 2>&1 &
    apps+=($!)
done
wait_ok=0
for p in "${apps[@]}"; do wait "$p" && wait_ok=$((wait_ok + 1)); done
took=$(($(date +%s%3N) - t0))
[ "$wait_ok" = 4 ] || fail "apps failed: $(cat "$WORK"/app*.out)"
for i in 1 2 3 4; do
    [ "$(json_get "$(cat "$WORK/app$i.out")" 'd["streamed"]')" = "The answer is 42." ] ||
        fail "app $i: $(cat "$WORK/app$i.out")"
done
[ "$(json_get "$(status)" 'd["exchanging"]')" = True ] || fail "the exchange ended during the apps' calls"
# Each app's stream alone takes 1.2 s: four in turn would take 4.8 s.
[ "$took" -lt 4000 ] || fail "4 apps took $took ms: served one after another"
kill -CONT "$PID"
pass "4 apps served at once in $took ms while an exchange waits on a stalled fleet"

# --- stop: the endpoint closes, no token in the log ---------------------------------
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent's exit status after SIGTERM is not 0"
AGENT_PID=
if grep -q "$TOKEN" "$WORK/agent.log"; then fail "the token is in the agent's log"; fi
if curl -s --max-time 2 "http://127.0.0.1:$AI_PORT/v1/models" >/dev/null; then
    fail "the AI endpoint answers after the agent stopped"
fi
pass "SIGTERM: exit 0, the AI endpoint closed, no token in the log"

echo "agent_ai: $passed passed, 0 failed"
