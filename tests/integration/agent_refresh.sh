#!/usr/bin/env bash
# One request per refresh, counted at fleetd (its access log): tether-agent
# run, holding the next challenge of its last token, refreshes with POST
# /v1/token alone at the refresh the fleet scheduled; an agent that
# restarted asks POST /v1/challenge first; a next challenge used before its
# window is refused (nonce_not_yet_valid) and the refresh goes on over a
# new challenge (exchange_probe refresh-early).
#   agent_refresh.sh FLEETD TETHERCTL AGENT PROBE     (through run_with_swtpm.sh)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"

scratch_fleet agent-refresh
AGENT_PID=
trap 'kill_pids "$AGENT_PID" "$PID"; rm -rf "$WORK"' EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    log_tail agent "$WORK/agent.log" 10
    echo "agent_refresh: $passed passed, 1 failed"
    exit 1
}

# since MARK PATTERN: the fleetd log lines after line MARK matching PATTERN.
since() { tail -n "+$(($1 + 1))" "$WORK/fleetd.log" | grep -c -- "$2" || true; }
mark() { wc -l <"$WORK/fleetd.log"; }
exchanges() { json_get "$("$AGENT" token --socket "$WORK/agent.sock" --status)" 'd["exchanges"]'; }

start_agent() {
    "$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$WORK/agent.sock" \
        2>>"$WORK/agent.log" &
    AGENT_PID=$!
    wait_agent_token "$WORK/agent.sock"
}

fleet_with_device
# The shortest token life the fleet allows: the refresh comes at about 20 s.
"$CTL" policy update default --models "*" --token-lifetime 30 >/dev/null || fail "policy update"

# --- a fresh agent asks for a challenge, then holds the next one -------------------
before=$(mark)
start_agent
[ "$(since "$before" 'path=/v1/challenge status=200')" = 1 ] || fail "first exchange: no challenge"
[ "$(since "$before" 'path=/v1/token status=200')" = 1 ] || fail "first exchange: no token"
pass "a fresh agent's first exchange: POST /v1/challenge, then POST /v1/token"

# --- its scheduled refresh is one request --------------------------------------
before=$(mark)
for _ in $(seq 1 450); do
    [ "$(exchanges)" -ge 2 ] && break
    kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent exited"
    sleep 0.1
done
[ "$(exchanges)" -ge 2 ] || fail "no refresh within 45 s of a 30 s token"
[ "$(since "$before" 'path=/v1/challenge')" = 0 ] || fail "the refresh asked for a challenge"
[ "$(since "$before" 'path=/v1/token status=200')" = 1 ] || fail "the refresh: not one token request"
[ "$(since "$before" 'path=')" = 1 ] || fail "the refresh made more than one request"
pass "the scheduled refresh over the next challenge: exactly one request (POST /v1/token)"

# --- a restarted agent holds none: it asks for a challenge ----------------------
sigterm_wait "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=
before=$(mark)
start_agent
[ "$(since "$before" 'path=/v1/challenge status=200')" = 1 ] ||
    fail "a restarted agent did not ask for a challenge"
pass "a restarted agent asks POST /v1/challenge (the next challenge is kept in memory only)"
sigterm_wait "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=

# --- a next challenge used before its window: refused, then a new challenge --------
before=$(mark)
OUT=$("$PROBE" "$TETHER_TEST_TCTI" refresh-early "$WORK/state") || true
[ "${OUT%% *}" = ok ] || fail "refresh-early: $OUT"
[ "$(since "$before" 'outcome=nonce_not_yet_valid status=400')" = 1 ] ||
    fail "the early next challenge was not refused as not yet valid"
[ "$(since "$before" 'path=/v1/challenge status=200')" = 2 ] ||
    fail "the refused refresh did not go on over a new challenge"
[ "$(since "$before" 'path=/v1/token status=200')" = 2 ] || fail "refresh-early: tokens issued"
pass "a next challenge used early: refused nonce_not_yet_valid, the refresh goes on over a new challenge"

echo "agent_refresh: $passed passed, 0 failed"
