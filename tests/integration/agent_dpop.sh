#!/usr/bin/env bash
# DPoP proofs signed by the device's TPM (issue "AI endpoint access", the
# agent side). Real processes on loopback: swtpm, tether-fleetd over TLS,
# tether-agent holding a token; each proof from `tether-agent dpop` is
# checked as a gateway checks it (dpop_probe: lib's verifier) against the
# cnf.jkt of the token, whose signature jwt_tool.py verifies with the
# fleet's JWKS through openssl.
#   agent_dpop.sh FLEETD TETHERCTL AGENT DPOP_PROBE     (through run_with_swtpm.sh)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools python3 curl openssl

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-agent-dpop-test.XXXXXX")
DIR=$WORK/fleet
PID=
AGENT_PID=
cleanup() {
    kill_pids "$AGENT_PID" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 10
    log_tail agent "$WORK/agent.log" 15
    echo "agent_dpop: $passed passed, 1 failed"
    exit 1
}

SOCK=$WORK/agent.sock
GATE=https://gate.example/v1/chat/completions
dpop() { "$AGENT" dpop --socket "$SOCK" "$@"; }
status() { "$AGENT" token --socket "$SOCK" --status; }

# --- a real fleet, one enrolled device, the agent holding a token ------------------
fleet_with_device
"$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$SOCK" \
    2>"$WORK/agent.log" &
AGENT_PID=$!
wait_agent_token "$SOCK"
token_binding
pass "the agent holds a token from the real fleet, bound to the device key ($JKT)"

# --- a proof from the CLI verifies against the token's cnf.jkt ---------------------
proof=$(dpop --method POST --url "$GATE" 2>"$WORK/dpop.err") || fail "dpop: $(cat "$WORK/dpop.err")"
out=$("$PROBE" "$JKT" "$TOKEN" "$proof" POST "$GATE") || fail "the proof is refused: $out"
jti1=${out#ok }
pass "tether-agent dpop: the proof verifies (signature, jwk thumbprint = cnf.jkt, htm, htu, ath, iat)"

# The probe refuses what a gateway refuses: another method, another URL.
out=$("$PROBE" "$JKT" "$TOKEN" "$proof" GET "$GATE") && fail "a proof for POST passed as GET"
[ "${out%% *}" = dpop_wrong_htm ] || fail "wrong htm: $out"
out=$("$PROBE" "$JKT" "$TOKEN" "$proof" POST https://gate.example/v1/embeddings) &&
    fail "a proof for one URL passed for another"
[ "${out%% *}" = dpop_wrong_htu ] || fail "wrong htu: $out"
pass "the same proof is refused for another method (dpop_wrong_htm) and URL (dpop_wrong_htu)"

# The server's nonce goes into the proof; the default port and case of the
# URL are normalised by the verifier.
proof=$(dpop --method GET --url "HTTPS://Gate.Example:443/v1/models" --nonce "n0nce-42") ||
    fail "dpop with a nonce"
out=$("$PROBE" "$JKT" "$TOKEN" "$proof" GET https://gate.example/v1/models n0nce-42) ||
    fail "the proof with a nonce is refused: $out"
jti2=${out#ok }
[ "$jti1" != "$jti2" ] || fail "two proofs share the jti $jti1"
pass "--nonce: the proof carries the server's nonce; each proof has its own jti"

# --json: the proof with the token it is bound to.
answer=$(dpop --method POST --url "$GATE" --json) || fail "dpop --json"
[ "$(json_get "$answer" 'd["access_token"]')" = "$TOKEN" ] || fail "--json: not the token held"
[ "$(json_get "$answer" 'd["token_type"]')" = DPoP ] || fail "--json: token_type: $answer"
out=$("$PROBE" "$JKT" "$TOKEN" "$(json_get "$answer" 'd["proof"]')" POST "$GATE") ||
    fail "the --json proof is refused: $out"
pass "--json: the proof and the token it is bound to"

# --- the counts per token, in the status --------------------------------------------
st=$(status)
[ "$(json_get "$st" "[t['proofs'] for t in d['tokens'] if t['jti'] == '$JTI']")" = "[3]" ] ||
    fail "3 proofs signed for token $JTI, the status says: $st"
pass "GET /v1/status counts 3 proofs for the token's jti"

# --- bad requests: a clear refusal, nothing signed -----------------------------------
if err=$(dpop --method post --url "$GATE" 2>&1); then fail "a lower-case method was signed"; fi
echo "$err" | grep -q "upper case" || fail "no reason for the refused method: $err"
if err=$(dpop --method GET --url /v1/models 2>&1); then fail "a relative URL was signed"; fi
echo "$err" | grep -q "absolute http or https URL" || fail "no reason for the refused URL: $err"
code=$(curl -sS -o "$WORK/bad.json" -w '%{http_code}' --unix-socket "$SOCK" \
    -H 'Content-Type: application/json' --data '{"method":"GET","url":"https://g/","x":1}' \
    http://localhost/v1/dpop)
[ "$code" = 400 ] || fail "an unknown member: HTTP $code $(cat "$WORK/bad.json")"
code=$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/v1/dpop)
[ "$code" = 405 ] || fail "GET /v1/dpop: HTTP $code"
[ "$(json_get "$(status)" "[t['proofs'] for t in d['tokens'] if t['jti'] == '$JTI']")" = "[3]" ] ||
    fail "refused requests were counted: $(status)"
pass "bad requests get 400/405 with a reason; none is signed or counted"

# --- no proof once the agent has stopped -------------------------------------------
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent's exit status after SIGTERM is not 0"
AGENT_PID=
if grep -q "$TOKEN" "$WORK/agent.log"; then fail "the token is in the agent's log"; fi
if err=$("$AGENT" dpop --socket "$SOCK" --method GET --url "$GATE" 2>&1); then
    fail "a proof from a stopped agent"
fi
pass "no token or proof in the agent's log; no proof once the agent has stopped"

echo "agent_dpop: $passed passed, 0 failed"
