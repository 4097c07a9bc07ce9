#!/usr/bin/env bash
# The whole chain of issue "AI endpoint access", every part a real process
# on loopback: swtpm, tether-fleetd over TLS, a device enrolled by
# tether-agent, the agent's AI endpoint (--ai-listen) in front of a real
# tether-gate (DPoP nonces on, a price table, a small spend ceiling) in
# front of openai_upstream.py, and an app on the device with the stock
# `openai` npm client (device_app.mjs). A recording relay (tcp_tap.py)
# between the agent and the gateway shows what reached the gateway.
# Asserts: answers streamed (chunks spread over the stream's time) and not;
# several streams at once; the app's API key reaching neither the gateway
# nor the upstream, which sees only the provider key; the agent's token
# replayed with another key's proof (npm "jose"), with no proof or as a
# Bearer token refused 401 with its WWW-Authenticate error; 403
# model_not_allowed; the spend ceiling's 429 with Retry-After and the spend
# at or under it; `tetherctl device revoke` refused through the agent (the
# time printed); no usage counted for any refusal.
#   gate_chain.sh FLEETD TETHERCTL AGENT GATE NODE_DIR   (through run_with_swtpm.sh)
set -euo pipefail

usage="usage: gate_chain.sh tether-fleetd tetherctl tether-agent tether-gate NODE_DIR"
FLEETD=${1:?$usage}
CTL=${2:?$usage}
AGENT=${3:?$usage}
GATE=${4:?$usage}
NODE_DIR=${5:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
. "$here/node_packages.sh"
require_tools python3 curl openssl node npm

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-gate-chain-test.XXXXXX")
DIR=$WORK/fleet
PID= AGENT_PID= GPID= UPID= TAP_PID=
cleanup() {
    kill_pids "$AGENT_PID" "$GPID" "$TAP_PID" "$UPID" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
fail() {
    echo "not ok - $*" >&2
    echo "--- last answer: $OUT" >&2
    log_tail fleetd "$WORK/fleetd.log" 10
    log_tail agent "$WORK/agent.log" 15
    log_tail tether-gate "$WORK/gate.log" 15
    log_tail "tether-gate usage" "$WORK/usage.jsonl" 10
    log_tail upstream "$WORK/upstream.log" 10
    echo "gate_chain: $passed passed, 1 failed"
    exit 1
}

node_install "$NODE_DIR" openai jose ||
    fail "npm could not install openai and jose into $NODE_DIR: $(tail -n 5 "$NODE_DIR/npm.log")"
cp "$here/device_app.mjs" "$here/gate_client.mjs" "$NODE_DIR/"
APP_KEY=sk-app-secret-never-forwarded # device_app.mjs's API key
app() { OUT=$(node "$NODE_DIR/device_app.mjs" "http://127.0.0.1:$AI_PORT/v1" "$@"); }

# models_when_ready: GET /v1/models through the agent into RC and
# $WORK/body, once the gateway answers other than 503 (it does until it
# holds the fleet's keys and the feed), within 10 s.
models_when_ready() {
    for _ in $(seq 100); do
        RC=$(curl -sS --max-time 5 -o "$WORK/body" -w '%{http_code}' "http://127.0.0.1:$AI_PORT/v1/models") ||
            RC=curl-failed
        [ "$RC" = 503 ] || [ "$RC" = curl-failed ] || break
        kill -0 "$GPID" 2>/dev/null || fail "tether-gate exited at start"
        sleep 0.1
    done
}
start_gate() {
    "$GATE" run --dir "$WORK/gate" >>"$WORK/usage.jsonl" 2>>"$WORK/gate.log" &
    GPID=$!
}
start_agent() {
    "$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$SOCK" \
        --ai-listen "127.0.0.1:$AI_PORT" --ai-upstream "$GURL/v1" 2>>"$WORK/agent.log" &
    AGENT_PID=$!
    wait_agent_token "$SOCK"
}

# --- the fleet, the device, the upstream, the gateway, the agent -------------------------
fleet_with_device
"$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
chmod 600 "$WORK/rp.token"

python3 "$here/openai_upstream.py" "$WORK/upstream.port" "$WORK/received.jsonl" \
    --chunk-pause 0.2 2>"$WORK/upstream.log" &
UPID=$!
printf 'sk-provider-test-key\n' >"$WORK/provider.key"
chmod 600 "$WORK/provider.key"
GPORT=$(free_port)
python3 "$here/tcp_tap.py" "$WORK/tap.port" "$GPORT" "$WORK/gate-received.bin" &
TAP_PID=$!
for f in upstream.port tap.port; do
    for _ in $(seq 100); do [ -s "$WORK/$f" ] && break; sleep 0.05; done
    [ -s "$WORK/$f" ] || fail "no $f: the stand-in upstream or the relay did not start"
done
GURL=http://127.0.0.1:$(cat "$WORK/tap.port") # the gateway, as the agent calls it

# fleetd's tokens name the audience "tether" and the policy "default". The
# ceiling, 0.15 a day: a chat request's worst case is its body (about 100
# bytes at 0.15 per 1000) and max_tokens 16 (at 0.6 per 1000), about 0.025;
# its usage (11 + 7 tokens) costs 0.00585. Four streams at once fit.
SPEND_CEILING=150000 # micro-units
COST=5850            # 11 * 150 + 7 * 600
"$GATE" init --dir "$WORK/gate" --listen "127.0.0.1:$GPORT" --fleet "$URL" --fleet-ca "$DIR/ca.pem" \
    --rp-token-file "$WORK/rp.token" --upstream "http://127.0.0.1:$(cat "$WORK/upstream.port")/v1" \
    --upstream-key-file "$WORK/provider.key" --audience tether --models 'gpt-4o*' \
    --price gpt-4o-mini=0.15:0.6 --spend-per-day 0.15 >/dev/null || fail "tether-gate init"
sed -i -e "s|^public_url = .*|public_url = $GURL|" -e 's/^dpop_nonce = no$/dpop_nonce = yes/' \
    -e 's/^max_tokens = .*/max_tokens = 16/' "$WORK/gate/gate.conf"
grep -q '^dpop_nonce = yes$' "$WORK/gate/gate.conf" || fail "gate.conf has no dpop_nonce to turn on"
"$GATE" check --dir "$WORK/gate" >"$WORK/check.out" 2>&1 || fail "tether-gate check: $(cat "$WORK/check.out")"
start_gate

AI_PORT=$(free_port)
SOCK=$WORK/agent.sock
start_agent
token_binding

models_when_ready
OUT=$(cat "$WORK/body")
[ "$RC" = 200 ] && [ "$(json_get "$OUT" 'sorted(m["id"] for m in j["data"])')" = "['gpt-4o', 'gpt-4o-mini']" ] ||
    fail "GET /v1/models through the agent: HTTP $RC"
pass "swtpm, fleetd, the agent, tether-gate and the stand-in upstream in a chain; the models the policy allows"

# --- answers ----------------------------------------------------------------------------------
answer="Tether keeps the key on the device."
app chat
[ "$(json_get "$OUT" 'j["content"], j["usage"]["prompt_tokens"], j["usage"]["completion_tokens"]')" = \
    "('$answer', 11, 7)" ] || fail "the stock openai client's answer through the agent"
pass "chat: the upstream's answer and usage through agent and gateway"
app stream
[ "$(json_get "$OUT" 'j["content"]')" = "$answer" ] || fail "the streamed answer"
# The stand-in pauses 0.2 s after each of its 7 words: a stream held whole
# anywhere in the chain would bring every chunk at once.
[ "$(json_get "$OUT" 'j["arrivals"][0] + 900 < j["arrivals"][-1]')" = True ] ||
    fail "the chunks came together, not as the upstream sent them"
pass "stream: $(json_get "$OUT" 'j["chunks"]') chunks as they came (first at $(json_get "$OUT" 'j["arrivals"][0]') ms, last at $(json_get "$OUT" 'j["arrivals"][-1]') ms)"

# Four streams at once, from one app: served one after another, each would
# begin after the previous one ended; served together, every stream has its
# first chunk before any stream has its last (each lasts 1.4 s upstream).
app streams-4
[ "$(json_get "$OUT" 'j["contents"] == [j["contents"][0]] * 4')" = True ] &&
    [ "$(json_get "$OUT" 'j["contents"][0]')" = "$answer" ] || fail "four streams at once: $OUT"
[ "$(json_get "$OUT" 'max(j["first"]) < min(j["last"])')" = True ] ||
    fail "four streams at once were served one after another: $OUT"
pass "4 streams at once through the agent, all open together (first chunks within $(json_get "$OUT" 'max(j["first"]) - min(j["first"])') ms)"

app chat gpt-3.5-turbo
[ "$(json_get "$OUT" 'j["status"], j["error"]')" = "(403, 'model_not_allowed')" ] ||
    fail "a model outside the allow list"
pass "a model outside the allow list: 403 model_not_allowed through the agent"

# --- the token copied off the device --------------------------------------------------------
CHAT=$GURL/v1/chat/completions
BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Who holds the key?"}]}'
# replay WHAT STATUS TETHER_ERROR OAUTH_ERROR HEADER...: the copied token sent
# straight to the gateway with HEADERs is refused as stated.
replay() {
    local what=$1 status=$2 code=$3 oauth=$4 rc
    shift 4
    rc=$(curl -sS --max-time 10 -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' \
        -H 'Content-Type: application/json' "$@" --data "$BODY" "$CHAT") || rc=curl-failed
    OUT=$(cat "$WORK/body")
    [ "$rc" = "$status" ] && [ "$(json_get "$OUT" 'j["tether_error"]')" = "$code" ] ||
        fail "$what: expected HTTP $status $code, got $rc"
    tr -d '\r' <"$WORK/headers" | grep -q "^WWW-Authenticate: DPoP error=\"$oauth\"" ||
        fail "$what: no WWW-Authenticate with error=\"$oauth\": $(cat "$WORK/headers")"
    pass "the token copied off the device, $what: $status $code, WWW-Authenticate error=\"$oauth\""
}
node "$NODE_DIR/gate_client.mjs" keygen "$WORK/other.jwk" >/dev/null || fail "jose keygen"
replay "with a proof by another key" 401 dpop_wrong_key invalid_dpop_proof \
    -H "Authorization: DPoP $TOKEN" -H "DPoP: $(node "$NODE_DIR/gate_client.mjs" proof "$WORK/other.jwk" POST "$CHAT" "$TOKEN")"
replay "with no proof" 401 dpop_missing invalid_dpop_proof -H "Authorization: DPoP $TOKEN"
replay "as a Bearer token" 401 bearer_not_allowed invalid_token -H "Authorization: Bearer $TOKEN"

# --- the spend ceiling --------------------------------------------------------------------
app until-refused
[ "$(json_get "$OUT" 'j.get("status"), j.get("error"), int(j.get("retry_after") or 0) > 0')" = \
    "(429, 'spend_limit_reached', True)" ] || fail "the spend ceiling through the agent"
LOOP_ANSWERS=$(json_get "$OUT" 'j["answered"]')
pass "the spend ceiling: 429 spend_limit_reached with Retry-After $(json_get "$OUT" 'j["retry_after"]') s after $LOOP_ANSWERS more answers"

# --- revocation ------------------------------------------------------------------------------
DEV=$(json_get "$("$CTL" --json device list)" 'j["devices"][0]["id"]')
t0=$(date +%s%N)
"$CTL" device revoke "$DEV" --reason "gate chain test" >/dev/null || fail "tetherctl device revoke"
revoked_ms=
for _ in $(seq 200); do
    RC=$(curl -sS --max-time 5 -o "$WORK/body" -w '%{http_code}' "http://127.0.0.1:$AI_PORT/v1/models") ||
        RC=curl-failed
    if [ "$RC" = 401 ]; then
        revoked_ms=$((($(date +%s%N) - t0) / 1000000))
        break
    fi
    sleep 0.05
done
OUT=$(cat "$WORK/body")
[ -n "$revoked_ms" ] && [ "$revoked_ms" -lt 10000 ] || fail "the revoked device still passes after 10 s: HTTP $RC"
grep -q '"refusal":"device_revoked"' "$WORK/usage.jsonl" || fail "the gateway's refusal is not device_revoked"
pass "tetherctl device revoke: the next request through the agent refused 401 device_revoked after $revoked_ms ms"
echo "# revoke to refused through the agent: $revoked_ms ms"

# --- what the gateway and the upstream received, the usage lines ------------------------------
if grep -qaF "$APP_KEY" "$WORK/gate-received.bin"; then fail "the app's API key reached the gateway"; fi
[ "$(grep -ac "^Authorization: DPoP $TOKEN" "$WORK/gate-received.bin")" -gt 0 ] ||
    fail "the gateway never saw the agent's DPoP token"
python3 - "$WORK/received.jsonl" "$TOKEN" "$APP_KEY" <<'PY' || fail "what the upstream received"
import json, sys
text = open(sys.argv[1]).read()
records = [json.loads(line) for line in text.splitlines()]
assert records, "nothing reached the upstream"
for r in records:
    h = r["headers"]
    assert h.get("authorization") == "Bearer sk-provider-test-key", h
    assert "dpop" not in h, h
for secret in sys.argv[2:]:
    assert secret not in text, "a credential of the device or the app reached the upstream"
assert not any((r["body"] or {}).get("model") == "gpt-3.5-turbo" for r in records)
PY
pass "the app's API key reached neither the gateway nor the upstream; the upstream saw only the provider key"

python3 - "$WORK/usage.jsonl" "$DEV" "$SPEND_CEILING" "$COST" "$((2 + 4 + LOOP_ANSWERS))" <<'PY' ||
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
dev, ceiling, cost, chats = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
answered = [l for l in lines if l["refusal"] is None]
refused = [l for l in lines if l["refusal"] is not None]
for l in refused:
    assert (l["prompt_tokens"], l["completion_tokens"], l["cost_micros"]) == (0, 0, 0), l
paid = [l for l in answered if l["path"] == "/v1/chat/completions"]
assert len(paid) == chats, "%d answered chats in the usage lines, %d answers" % (len(paid), chats)
for l in paid:
    assert (l["device"], l["prompt_tokens"], l["completion_tokens"], l["cost_micros"]) == \
        (dev, 11, 7, cost), l
spent = sum(l["cost_micros"] for l in answered)
assert spent <= ceiling, spent
codes = set(l["refusal"] for l in refused) - {"revocation_feed_stale", "fleet_keys_unavailable"}
expected = {"dpop_nonce_required", "dpop_wrong_key", "dpop_missing", "bearer_not_allowed",
            "model_not_allowed", "spend_limit_reached", "device_revoked"}
assert codes == expected, codes
print("# %d answered (%d chats), %d refused; spent %d of %d micro-units" %
      (len(answered), len(paid), len(refused), spent, ceiling))
PY
    fail "the usage lines"
pass "usage lines: every answer charged as the upstream reported, nothing for any refusal, spend at or under the ceiling"

if grep -qF "$TOKEN" "$WORK/agent.log" "$WORK/gate.log"; then fail "a log holds the token"; fi
sigterm_wait "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent's exit status after SIGTERM is not 0"
AGENT_PID=
sigterm_wait "$GPID"
wait "$GPID" || fail "tether-gate's exit status after SIGTERM is not 0"
GPID=
pass "no token in the logs; the agent and tether-gate stop on SIGTERM"

# --- reinstated ----------------------------------------------------------------------------
# The feed lists the revocation for good and has no reinstatement: a device
# the fleet reinstated passes again with the tokens issued after it, also
# through a gateway started afresh that reads the whole feed from the start.
"$CTL" device reinstate "$DEV" --reason "gate chain test: cleared" >/dev/null || fail "tetherctl device reinstate"
rm -rf "$WORK/state"
"$AGENT" enroll --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --fleet "$URL" \
    --ca "$DIR/ca.pem" >"$WORK/enroll.out" 2>&1 || fail "enrol again: $(cat "$WORK/enroll.out")"
OLD_TOKEN=$TOKEN
start_gate
start_agent
[ "$TOKEN" != "$OLD_TOKEN" ] || fail "the agent serves the token of before the revocation"
models_when_ready
[ "$RC" = 200 ] || fail "the reinstated device's new token refused through a fresh gateway: HTTP $RC $(cat "$WORK/body")"
pass "reinstated and enrolled again: its new token passes a gateway that read the revocation from the feed"
sigterm_wait "$AGENT_PID"
AGENT_PID=
sigterm_wait "$GPID"
GPID=
echo "gate_chain: $passed passed, 0 failed"
