# The start of a test of one enrolled device behind tether-gate
# (gate_threshold.sh, gate_refusals.sh, gate_usage_mismatch.sh), sourced
# with the test's name and its command line:
#   . "$here/gate_device.sh" NAME "$@"
# Sets FLEETD CTL AGENT GATE from the command line (tether-fleetd tetherctl
# tether-agent tether-gate), sources fleet.sh, makes WORK (and DIR in it),
# and defines fail (the fleet's, the agent's and each gateway's
# $WORK/gate*.log, then "NAME: N passed, 1 failed") and the cleanup of PID
# AGENT_PID UPID, the gateways GPID (or GPID_A and GPID_B) and WORK at
# exit.
gate_device_name=$1
shift
usage="usage: $gate_device_name.sh tether-fleetd tetherctl tether-agent tether-gate"
FLEETD=${1:?$usage}
CTL=${2:?$usage}
AGENT=${3:?$usage}
GATE=${4:?$usage}
. "$here/fleet.sh"
require_tools python3 curl openssl

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-$gate_device_name-test.XXXXXX")
DIR=$WORK/fleet
PID= AGENT_PID= GPID= GPID_A= GPID_B= UPID=
cleanup() {
    kill_pids "$AGENT_PID" "$GPID" "$GPID_A" "$GPID_B" "$UPID" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
fail() {
    echo "not ok - $*" >&2
    echo "--- last: $OUT" >&2
    log_tail fleetd "$WORK/fleetd.log" 15
    log_tail agent "$WORK/agent.log" 15
    for log in "$WORK"/gate*.log; do
        [ -e "$log" ] && log_tail "tether-gate ($(basename "$log"))" "$log" 10
    done
    echo "$gate_device_name: $passed passed, 1 failed"
    exit 1
}

# start_gate POLICY...: a relying-party token, the upstream stand-in and
# tether-gate in $WORK/gate on GPORT (GPID; usage lines in
# $WORK/usage.jsonl, reports every second) serving each fleet policy named
# with models gpt-4o* and no ceiling of its own; then the device's agent
# with its AI endpoint on AI_PORT in front of it (SOCK), holding a token.
start_gate() {
    local name
    "$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
    chmod 600 "$WORK/rp.token"
    start_upstream
    GPORT=$(free_port)
    gate_init "$WORK/gate" "$GPORT" 1
    for name in "$@"; do
        printf '\n[policy %s]\nmodels = gpt-4o*\n' "$name" >>"$WORK/gate/gate.conf"
    done
    "$GATE" run --dir "$WORK/gate" >>"$WORK/usage.jsonl" 2>>"$WORK/gate.log" &
    GPID=$!
    AI_PORT=$(free_port)
    SOCK=$WORK/agent.sock
    start_ai_agent "$GPORT"
}
