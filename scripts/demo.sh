#!/usr/bin/env bash
# The main job: tether end to end on a software TPM, from a fresh machine.
#
# Installs what is missing, builds, starts a software TPM (swtpm, with EK
# certificates from a private local CA) and tether-fleetd on 127.0.0.1,
# enrols the device, runs tether-agent, shows a token obtained and decoded.
# Then an app on the device uses an AI endpoint: tether-gate in front of an
# OpenAI-compatible stand-in, reached through the agent's local endpoint
# with the stock OpenAI client (the answer streamed); the token copied off
# the device and replayed without its key is refused; a spend ceiling stops
# the app; the device's policy gets measured boot from its golden boot logs,
# its AI app changes and its exchange is refused naming the file until the
# policy admits the new digest; the device is revoked and the gateway
# refuses it within a second (introspection flips to inactive too). The
# device is reinstated and enrols again; its token, handed out as a bearer
# token and used through a second gateway that accepts bearer tokens more
# times than the device made, gets it quarantined at its next exchange
# (usage reconciliation), and it is reinstated again; then its TPM and
# agent state are cloned to a second swtpm and agent
# and the clone is caught and the device quarantined. Everything is removed
# at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/swtpm.sh"

bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'
[ -t 1 ] || bold= dim= off=
step=0
say() { step=$((step + 1)); printf '\n%s%d. %s%s\n' "$bold" "$step" "$*" "$off"; }
note() { printf '   %s\n' "$*"; }
show() { # show TEXT, or show < output
    if [ $# -gt 0 ]; then printf '%s\n' "$*"; else cat; fi | sed "s/^/   $dim/; s/\$/$off/"
}

say "Installing the Debian packages tether needs (if any are missing)"
"$top/scripts/bootstrap.sh"

say "Building tether"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc 2>/dev/null || echo 2)" \
    --target tether-agent tether-fleetd tetherctl tether-gate >/dev/null
BIN=$top/build/bin
note "built tether-agent, tether-fleetd, tetherctl and tether-gate in $BIN"
# The stock client libraries the app and the attacker use (the tests' own).
NODE_DIR=$top/build/tests/node
. "$top/tests/integration/node_packages.sh"
node_install "$NODE_DIR" openai jose ||
    { echo "demo: npm could not install openai and jose (see $NODE_DIR/npm.log)" >&2; exit 1; }
cp "$top/tests/integration/device_app.mjs" "$top/tests/integration/gate_client.mjs" "$NODE_DIR/"
note "the app's OpenAI client and the attacker's JOSE library: npm's openai and jose in $NODE_DIR"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-demo.XXXXXX")
FLEETD_PID= AGENT_PID= CLONE_TPM_PID= GATE_PID= UPSTREAM_PID=
cleanup() {
    for p in "$AGENT_PID" "$GATE_PID" "$UPSTREAM_PID" "$FLEETD_PID" "$CLONE_TPM_PID"; do
        # A process stopped by the signal makes wait fail: no reason to stop cleaning.
        [ -n "$p" ] && kill "$p" 2>/dev/null && { wait "$p" 2>/dev/null || true; }
    done
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
claims() { python3 -c 'import base64, json, sys; t = sys.stdin.read().strip().split("."); dec = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))); print(json.dumps({"header": dec(t[0]), "claims": dec(t[1])}, indent=2))'; }
introspect() {
    curl -sS --cacert "$WORK/fleet/ca.pem" -H "Authorization: Bearer $(cat "$WORK/gateway.token")" \
        --data-urlencode "token=$1" "$URL/v1/introspect" | json 'str(d["active"]).lower()'
}

say "Manufacturing the device's TPM: swtpm with RSA and ECC EK certificates"
swtpm_start "$WORK/tpm"
DEVICE_TPM=$SWTPM_TCTI
note "the device's TPM listens on 127.0.0.1:$SWTPM_PORT; its manufacturer CA is a throwaway local CA"

say "Creating the fleet: tether-fleetd init, trusting that TPM manufacturer"
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
cp "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" "$WORK/vendor-root.pem"
cp "$SWTPM_CA_DIR/issuercert.pem" "$WORK/vendor-issuer.pem"
"$BIN/tether-fleetd" init --dir "$WORK/fleet" --listen "127.0.0.1:$PORT" \
    --ek-ca "$WORK/vendor-root.pem" --ek-ca "$WORK/vendor-issuer.pem" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
echo "token_lifetime_seconds = 300" >>"$WORK/fleet/fleetd.conf"
"$BIN/tether-fleetd" run --dir "$WORK/fleet" 2>"$WORK/fleetd.log" &
FLEETD_PID=$!
for _ in $(seq 1 100); do
    curl -s --max-time 1 --cacert "$WORK/fleet/ca.pem" "$URL/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
export TETHER_FLEET_URL=$URL TETHER_CA=$WORK/fleet/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
"$BIN/tetherctl" token create --role relying-party --name ai-gateway >"$WORK/gateway.token"
note "fleetd serves HTTPS on $URL; its CA is what devices and tetherctl pin"
note "the first admin token was printed once and is stored only as a hash"

say "Allowing the device: its EK's SHA-256 goes on the fleet's allow list"
EK=$("$BIN/tether-agent" selftest --tcti "$DEVICE_TPM" | sed -n 's/^EK SHA-256: *//p')
"$BIN/tetherctl" device allow --ek-sha256 "$EK" --name edge-gateway-1 | show
note "EK SHA-256 $EK, read from the TPM and checked against its certificate"

say "Enrolling: tether-agent enroll creates the AK, device key and counter in the TPM"
"$BIN/tether-agent" enroll --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --fleet "$URL" \
    --ca "$WORK/fleet/ca.pem" | show
note "the fleet checked the EK certificate chain, the AK's attributes and the device key's"
note "certification, and the device proved its TPM by TPM2_ActivateCredential"
note "the state directory holds only public data and TPM-wrapped blobs:"
ls -l "$WORK/device" | tail -n +2 | show
"$BIN/tetherctl" device list | show

say "Running the agent: it proves itself with a TPM quote and counter, gets a token"
# The device's agent with any options beyond its TPM, state and socket (its
# log appended to agent.log), and the wait for its first token (in TOKEN).
start_agent() {
    "$BIN/tether-agent" run --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --socket "$WORK/agent.sock" \
        "$@" 2>>"$WORK/agent.log" &
    AGENT_PID=$!
}
wait_token() {
    TOKEN=
    for _ in $(seq 1 100); do
        TOKEN=$("$BIN/tether-agent" token --socket "$WORK/agent.sock" 2>/dev/null) && return 0
        sleep 0.1
    done
}
start_agent
wait_token
note "a local app asks the agent over its Unix socket (tether-agent token --socket ...):"
show "${TOKEN:0:60}..."
note "the token, decoded (RFC 9068: ES256, typ at+jwt, bound to the device key by cnf.jkt):"
printf '%s' "$TOKEN" | claims | show
note "it lives $(printf '%s' "$TOKEN" | claims | json 'd["claims"]["exp"] - d["claims"]["iat"]') seconds; nothing of it was written to disk"

say "A relying party (an AI gateway) asks the fleet about the token: RFC 7662 introspection"
note "active: $(introspect "$TOKEN")"

say "An AI gateway: tether-gate in front of an OpenAI-compatible endpoint"
python3 "$top/tests/integration/openai_upstream.py" "$WORK/upstream.port" "$WORK/upstream.jsonl" \
    --chunk-pause 0.15 2>"$WORK/upstream.log" &
UPSTREAM_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/upstream.port" ] && break; sleep 0.05; done
UPSTREAM=http://127.0.0.1:$(cat "$WORK/upstream.port")/v1
printf 'sk-provider-demo-key\n' >"$WORK/provider.key"
chmod 600 "$WORK/provider.key" "$WORK/gateway.token"
GATE_PORT=$(free_port)
GATE=http://127.0.0.1:$GATE_PORT
"$BIN/tether-gate" init --dir "$WORK/gate" --listen "127.0.0.1:$GATE_PORT" --fleet "$URL" \
    --fleet-ca "$WORK/fleet/ca.pem" --rp-token-file "$WORK/gateway.token" --upstream "$UPSTREAM" \
    --upstream-key-file "$WORK/provider.key" --audience tether --models 'gpt-4o*' \
    --price gpt-4o-mini=0.15:0.6 --spend-per-day 0.05 >/dev/null
# Every proof must answer a server nonce; a request without max_tokens may
# cost at most 16 completion tokens.
sed -i -e 's/^dpop_nonce = no$/dpop_nonce = yes/' -e 's/^max_tokens = .*/max_tokens = 16/' \
    "$WORK/gate/gate.conf"
"$BIN/tether-gate" check --dir "$WORK/gate" | show
"$BIN/tether-gate" run --dir "$WORK/gate" >"$WORK/usage.jsonl" 2>"$WORK/gate.log" &
GATE_PID=$!
note "tether-gate on $GATE, in front of a stand-in upstream speaking the OpenAI wire"
note "format on $UPSTREAM (tests/integration/openai_upstream.py); the provider's API key"
note "lives in the gateway's directory only. What the gateway asks of every request:"
grep -E '^(audience|dpop_nonce|price|models|spend_per_day|max_tokens) ' "$WORK/gate/gate.conf" | show

say "The device's agent serves apps a local OpenAI-compatible endpoint"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
AI_PORT=$(free_port)
# Where the device's boot logs are (read only when its policy asks for
# measured boot, below).
BOOT=$WORK/boot
mkdir -p "$BOOT"
run_ai_agent() {
    start_agent --ai-listen "127.0.0.1:$AI_PORT" --ai-upstream "$GATE/v1" \
        --platform-eventlog "$BOOT/binary_bios_measurements" --tether-eventlog "$BOOT/measurements.cel"
}
run_ai_agent
wait_token
# The gateway answers 503 until it holds the fleet's keys and revocation feed.
for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AI_PORT/v1/models")" = 200 ] && break
    sleep 0.1
done
note "tether-agent run ... --ai-listen 127.0.0.1:$AI_PORT --ai-upstream $GATE/v1"
note "an app sets its base URL to http://127.0.0.1:$AI_PORT/v1 and any API key; the agent"
note "drops the app's key, adds the token and a DPoP proof signed by the TPM for each request"
note "(answering the gateway's nonce challenge), and streams the answer back"

say "An app on the device asks a question with the stock OpenAI client (npm openai)"
APP=http://127.0.0.1:$AI_PORT/v1
show 'new OpenAI({ baseURL: "'"$APP"'", apiKey: "sk-app-secret-never-forwarded" })'
show '  .chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [...] })'
note "the answer, as it arrives:"
printf '   %s' "$dim"
node "$NODE_DIR/device_app.mjs" "$APP" print 2>"$WORK/stream.txt" ||
    { printf '%s\n' "$off"; echo "demo: the app got no answer: $(cat "$WORK/stream.txt")" >&2; exit 1; }
printf '%s' "$off"
note "$(cat "$WORK/stream.txt")"
note "the gateway's usage line for it (no prompt, no answer, no token):"
for _ in $(seq 1 50); do
    grep -q '"path":"/v1/chat/completions".*"refusal":null' "$WORK/usage.jsonl" && break
    sleep 0.05
done
grep '"path":"/v1/chat/completions".*"refusal":null' "$WORK/usage.jsonl" | tail -n 1 | show
note "what the upstream received as credentials: $(python3 -c 'import json, sys
seen = {json.loads(l)["headers"].get("authorization") for l in open(sys.argv[1])}
print(", ".join(sorted(seen)))' "$WORK/upstream.jsonl") (the gateway's provider key, nothing else)"

say "An attacker copies the token off the device and replays it without the device's key"
node "$NODE_DIR/gate_client.mjs" keygen "$WORK/attacker.jwk" >/dev/null
replay() { # replay AUTHORIZATION [DPOP_PROOF]: the token sent straight to the gateway
    local status
    status=$(curl -s -D "$WORK/replay.head" -o "$WORK/replay.body" -w '%{http_code}' \
        -H "Authorization: $1" ${2:+-H "DPoP: $2"} -H 'Content-Type: application/json' \
        --data '{"model":"gpt-4o-mini","messages":[]}' "$GATE/v1/chat/completions")
    tr -d '\r' <"$WORK/replay.head" | grep -E '^(HTTP/|WWW-Authenticate)' | show
    show "$(json 'd["tether_error"]' <"$WORK/replay.body")"
    [ "$status" = 401 ] || { echo "demo: the replayed token was not refused (HTTP $status)" >&2; exit 1; }
}
note "with a DPoP proof signed by the attacker's own key (npm jose):"
replay "DPoP $TOKEN" "$(node "$NODE_DIR/gate_client.mjs" proof "$WORK/attacker.jwk" POST \
    "$GATE/v1/chat/completions" "$TOKEN")"
note "as a plain Bearer token:"
replay "Bearer $TOKEN"
note "the token names the device key's thumbprint (cnf.jkt); only the TPM can sign with it"

say "A spend ceiling: 0.05 a day for this device, in the price table's currency"
OUT=$(node "$NODE_DIR/device_app.mjs" "$APP" until-refused)
note "the app asked until refused: $(printf '%s' "$OUT" | json '"%d answers, then HTTP %s %s, Retry-After %s s (the end of the day, UTC)" % (d["answered"], d["status"], d["error"], d["retry_after"])')"
spend() { python3 -c 'import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("%.6f" % (sum(l["cost_micros"] for l in lines) / 1e6))' "$WORK/usage.jsonl"; }
note "spent $(spend) of 0.050000: each request reserves its worst case (its body, max_tokens)"
note "before it goes upstream and settles at the usage the upstream reports; refusals cost 0"
[ "$(printf '%s' "$OUT" | json 'd.get("status")')" = 429 ] || { echo "demo: the ceiling did not stop the app" >&2; exit 1; }

say "Measured boot: the device's policy gets reference values from its golden boot logs"
mb_start=$(date +%s%N)
DEV=$("$BIN/tetherctl" --json device list | json 'd["devices"][0]["id"]')
# What the firmware and tether-agent measure do at boot: a real platform log's
# digests extended into the TPM's PCRs, and the AI app measured into PCR 13.
boot_device() {
    cp "$top/firmware/tests/data/event-arch-linux.bin" "$BOOT/binary_bios_measurements"
    "$BIN/tether-agent" eventlog --json "$BOOT/binary_bios_measurements" >"$BOOT/platform.json"
    # shellcheck disable=SC2046 # one argument per event
    TPM2TOOLS_TCTI=$DEVICE_TPM tpm2_pcrextend \
        $(python3 "$top/tests/integration/eventlog_extend.py" args "$BOOT/platform.json")
    rm -f "$BOOT/measurements.cel"
    "$BIN/tether-agent" measure --tcti "$DEVICE_TPM" --config "$BOOT/measure.conf" \
        --log "$BOOT/measurements.cel" >/dev/null
}
agent_exchanged() { # agent_exchanged N: until fleetd has answered N token requests
    for _ in $(seq 1 100); do
        [ "$(grep -c 'exchange refused\|token issued' "$WORK/fleetd.log")" -ge "$1" ] && return 0
        sleep 0.1
    done
    echo "demo: the agent's exchange did not come" >&2
    exit 1
}
printf '#!/bin/sh\necho ai app 1.0\n' >"$BOOT/ai-app"
printf 'ai-app %s\n' "$BOOT/ai-app" >"$BOOT/measure.conf"
boot_device
"$BIN/tetherctl" policy create edge-measured --models '*' \
    --from-eventlog "$BOOT/binary_bios_measurements" --from-eventlog "$BOOT/measurements.cel" |
    grep -E '^(name|version|measured_boot|  )' | head -n 8 | show
"$BIN/tetherctl" device set-policy "$DEV" edge-measured | show
seen=$(grep -c 'exchange refused\|token issued' "$WORK/fleetd.log")
kill -HUP "$AGENT_PID"
agent_exchanged $((seen + 1))
note "the next exchange quotes PCRs 0-8 and 13 and sends both logs; fleetd replays them:"
grep 'measured boot: device=' "$WORK/fleetd.log" | tail -n 1 | sed 's/.*measured boot: //; s/"}$//' | show

say "The AI app on the device is replaced, and the device reboots: the exchange is refused"
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
swtpm_stop
swtpm_launch "$WORK/tpm"
DEVICE_TPM=$SWTPM_TCTI
printf '#!/bin/sh\necho ai app 1.1, or something else\n' >"$BOOT/ai-app"
boot_device
seen=$(grep -c 'exchange refused\|token issued' "$WORK/fleetd.log")
run_ai_agent
agent_exchanged $((seen + 1))
grep 'outcome=measurement_not_allowed' "$WORK/fleetd.log" | tail -n 1 |
    sed 's/.*outcome=\([a-z_]*\).*reason=measured boot: /\1: /; s/"}$//' | fold -s -w 90 | show
"$BIN/tetherctl" alerts | tail -n 1 | cut -c1-110 | show
note "no token: the app's requests stop at the agent until the fleet admits the new digest"

say "The fleet admits the new version: tetherctl policy update --from-eventlog"
"$BIN/tetherctl" policy update edge-measured --from-eventlog "$BOOT/measurements.cel" |
    grep -E '^(name|version)' | show
# The agent holds no token since the refusal: one now is the admitted
# exchange's (the SIGHUP's, or a retry of its backoff that came first).
kill -HUP "$AGENT_PID"
wait_token
[ -n "$TOKEN" ] || { echo "demo: the admitted device got no token" >&2; exit 1; }
note "accepted: $(grep 'measured boot: device=' "$WORK/fleetd.log" | tail -n 1 | sed 's/.*measured boot: //; s/"}$//')"
note "(the platform log was unchanged: only its hash was sent)"
"$BIN/tetherctl" device set-policy "$DEV" default >/dev/null
for _ in $(seq 1 100); do
    "$BIN/tether-agent" token --socket "$WORK/agent.sock" >/dev/null 2>&1 && break
    sleep 0.1
done
note "measured boot took $(( ($(date +%s%N) - mb_start) / 1000000 )) ms of the demo; the device is back on the default policy"

say "The security team revokes the device: the gateway refuses it within a second"
DEV=$("$BIN/tetherctl" --json device list | json 'd["devices"][0]["id"]')
start_ns=$(date +%s%N)
"$BIN/tetherctl" device revoke "$DEV" --reason "demo: credential leak suspected" | show
for _ in $(seq 1 200); do
    status=$(curl -s -o "$WORK/revoked.body" -w '%{http_code}' "$APP/models")
    [ "$status" = 401 ] && break
    sleep 0.02
done
took_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
note "the app's next request through the agent: HTTP $status $(json 'd["tether_error"]' <"$WORK/revoked.body"), $took_ms ms after the command"
[ "$status" = 401 ] || { echo "demo: the revoked device still passes the gateway" >&2; exit 1; }
note "tether-gate follows the fleet's revocation feed (a long poll): no token has to expire,"
note "and the gateway asks the fleet nothing per request"
active=$(introspect "$TOKEN")
note "a relying party that introspects the token (RFC 7662) is told active: $active"
[ "$active" = false ] || { echo "demo: the revoked token is still active" >&2; exit 1; }

say "The operator reinstates the device and it enrols again"
"$BIN/tetherctl" device reinstate "$DEV" --reason "demo: investigated, cleared" | show
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
rm -rf "$WORK/device"
"$BIN/tether-agent" enroll --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --fleet "$URL" \
    --ca "$WORK/fleet/ca.pem" | show

# --- usage reconciliation (issue 9): a stolen bearer token, caught by the counts -----------
say "A bearer token stolen from the device, used where DPoP is not checked"
start_agent
wait_token
# A second gateway whose policy accepts bearer tokens, as a stock JWT gateway
# does, reporting its usage to the fleet every second.
BEARER_PORT=$(free_port)
"$BIN/tether-gate" init --dir "$WORK/gate-bearer" --listen "127.0.0.1:$BEARER_PORT" --fleet "$URL" \
    --fleet-ca "$WORK/fleet/ca.pem" --rp-token-file "$WORK/gateway.token" --upstream "$UPSTREAM" \
    --upstream-key-file "$WORK/provider.key" --audience tether --models 'gpt-4o*' \
    --price gpt-4o-mini=0.15:0.6 >/dev/null
sed -i -e 's/^allow_bearer = no$/allow_bearer = yes/' \
    -e 's/^usage_report_seconds = .*/usage_report_seconds = 1/' "$WORK/gate-bearer/gate.conf"
"$BIN/tether-gate" run --dir "$WORK/gate-bearer" >/dev/null 2>"$WORK/gate-bearer.log" &
BEARER_GATE_PID=$!
trap 'kill "$BEARER_GATE_PID" 2>/dev/null; cleanup' EXIT
stolen() { # the copied token as a bearer token at the second gateway: the HTTP status
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' "http://127.0.0.1:$BEARER_PORT/v1/chat/completions" \
        --data '{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
}
uses=0
for _ in $(seq 1 100); do [ "$(stolen)" = 200 ] && uses=1 && break; sleep 0.1; done
for _ in 2 3 4; do [ "$(stolen)" = 200 ] && uses=$((uses + 1)); done
[ "$uses" = 4 ] || { echo "demo: the second gateway did not accept the copied token" >&2; exit 1; }
note "the token handed out on the device (tether-agent token), used $uses times through a gateway"
note "that accepts bearer tokens: every request passes, the device itself made none"
JTI=$(printf '%s' "$TOKEN" | claims | json 'd["claims"]["jti"]')
for _ in $(seq 1 50); do
    [ "$("$BIN/tetherctl" --json usage --device "$DEV" | json "sum(u['requests'] for u in d['usage'] if u['jti'] == '$JTI')")" = "$uses" ] && break
    sleep 0.1
done
sleep 1.1 # the report lands strictly before the next exchange's nonce (a second's resolution)
note "the gateway reported $uses requests on the token; the device's next exchange carries its"
note "own counts, signed by its TPM (here now: SIGHUP asks the agent to refresh)"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 50); do
    state=$("$BIN/tether-agent" token --socket "$WORK/agent.sock" --status | json 'd["state"]')
    [ "$state" = refused ] && break
    sleep 0.1
done
note "device agent: $("$BIN/tether-agent" token --socket "$WORK/agent.sock" --status | json 'd["last_error"]')"
"$BIN/tetherctl" --json alerts | json '"\n".join("%s: %s, token %s: gateways accepted %s, the device made %s (bearer hand-outs %s), action %s" % (a["kind"], a["device_id"], a["details"]["jti"], a["details"]["gateway_accepted"], a["details"]["device_made"], a["details"]["bearer_handouts"], a["details"]["action"]) for a in d["alerts"] if a["kind"] == "usage_mismatch")' | show
"$BIN/tetherctl" --json device show "$DEV" | json '"device %s: %s (%s)" % (d["id"], d["status"], d["status_reason"])' | show
[ "$state" = refused ] || { echo "demo: the stolen token's device was not quarantined" >&2; exit 1; }
kill "$BEARER_GATE_PID" "$AGENT_PID"; wait "$BEARER_GATE_PID" "$AGENT_PID" 2>/dev/null || true
trap cleanup EXIT
AGENT_PID=
note "cleared: the operator reinstates the device and it enrols again"
"$BIN/tetherctl" device reinstate "$DEV" --reason "demo: bearer token revoked, app fixed" >/dev/null
rm -rf "$WORK/device"
"$BIN/tether-agent" enroll --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --fleet "$URL" \
    --ca "$WORK/fleet/ca.pem" >"$WORK/enroll.log" 2>&1 ||
    { cat "$WORK/enroll.log" >&2; echo "demo: the device could not enrol again" >&2; exit 1; }
# --- end of usage reconciliation --------------------------------------------------------------

say "An attacker copies the device: the TPM state and the agent state, to a second machine"
swtpm_stop
cp -a "$WORK/tpm" "$WORK/clone-tpm"
cp -a "$WORK/device" "$WORK/clone-device"
swtpm_launch "$WORK/tpm"
DEVICE_TPM=$SWTPM_TCTI
ORIGINAL_TPM_PID=$SWTPM_PID
swtpm_launch "$WORK/clone-tpm"
CLONE_TPM=$SWTPM_TCTI
CLONE_TPM_PID=$SWTPM_PID
SWTPM_PID=$ORIGINAL_TPM_PID
note "two TPMs now hold the same keys and the same counter value"

say "The clone asks for a token first: its evidence is perfect, so it gets one"
"$BIN/tether-agent" run --tcti "$CLONE_TPM" --state-dir "$WORK/clone-device" \
    --socket "$WORK/clone.sock" 2>"$WORK/clone.log" &
CLONE_AGENT=$!
for _ in $(seq 1 100); do
    "$BIN/tether-agent" token --socket "$WORK/clone.sock" >/dev/null 2>&1 && break
    sleep 0.1
done
note "clone: $("$BIN/tether-agent" token --socket "$WORK/clone.sock" --status | json 'd["state"]')"

say "The real device asks next: its counter is not above what the fleet accepted"
start_agent
for _ in $(seq 1 100); do
    state=$("$BIN/tether-agent" token --socket "$WORK/agent.sock" --status 2>/dev/null | json 'd["state"]' 2>/dev/null) || true
    [ "$state" = refused ] && break
    sleep 0.1
done
note "device agent: $("$BIN/tether-agent" token --socket "$WORK/agent.sock" --status | json 'd["last_error"]')"
note "two TPM states with the same keys exist: the fleet quarantined the device and revoked"
note "every token it held, the clone's included. What the security team sees:"
"$BIN/tetherctl" device show "$DEV" | show
"$BIN/tetherctl" alerts | show
kill -HUP "$CLONE_AGENT"
sleep 1
note "the clone, asking again: $("$BIN/tether-agent" token --socket "$WORK/clone.sock" --status | json 'd.get("last_error", d["state"])')"
kill "$CLONE_AGENT"; wait "$CLONE_AGENT" 2>/dev/null || true

say "Done. Cleaning up: every process stopped, every file removed."
