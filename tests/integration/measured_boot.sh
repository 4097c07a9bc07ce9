#!/usr/bin/env bash
# Measured boot in the token exchange, end to end (issue 10, "In the
# exchange"): a real swtpm whose PCRs hold what firmware would have extended
# for a real platform log (firmware/tests/data/event-arch-linux.bin: its
# StartupLocality is 0, as swtpm's PCR 0 starts), tether-agent measure's
# own log at PCR 13, tether-fleetd, tetherctl and tether-agent run.
#   - the device's policy made from its golden logs (tetherctl policy create
#     --from-eventlog): the exchange is accepted, the fleet receives both
#     logs; the next exchange sends hashes only (the fleet holds the logs);
#   - the platform log with one event's digest changed: refused
#     eventlog_replay_mismatch naming the quoted PCRs and the event that differs
#     from the log the fleet accepted last, an alert written, counted in
#     /metrics, the device's state unchanged; the true log again: accepted;
#   - after a reboot (swtpm restarted: PCRs reset) with a file tether
#     measures changed: refused measurement_not_allowed naming tether's log,
#     until tetherctl policy update --from-eventlog admits the new digest;
#     then accepted;
#   - with unchanged logs, the scheduled refresh over the next challenge the
#     last token brought (its measured_boot member names the logs the fleet
#     holds) is one request, POST /v1/token with the logs' hashes only.
#   measured_boot.sh FLEETD TETHERCTL AGENT   (it runs its own swtpm, to restart it)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
. "$here/../../scripts/swtpm.sh"
require_tools python3 curl sqlite3 tpm2_pcrextend

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-measured-boot-test.XXXXXX")
DIR=$WORK/fleet
PID=
AGENT_PID=
cleanup() {
    kill_pids "$AGENT_PID" "$PID"
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 15
    log_tail agent "$WORK/agent.log" 15
    echo "measured_boot: $passed passed, 1 failed"
    exit 1
}

GOLDEN=$here/../../firmware/tests/data/event-arch-linux.bin
PLATFORM=$WORK/platform.bin # the agent's --platform-eventlog
CEL=$WORK/measurements.cel  # tether-agent measure's log
mkdir -p "$WORK/app"
printf '#!/bin/sh\necho app 1\n' >"$WORK/app/run"
printf 'ai-app %s\n' "$WORK/app/run" >"$WORK/measure.conf"
cp "$GOLDEN" "$PLATFORM"
"$AGENT" eventlog --json "$GOLDEN" >"$WORK/golden.json" || fail "eventlog --json of the golden log"

# held_logs: the logs the fleet holds for the device, as KIND:BYTES,...
# (the SQL reads the same on SQLite and PostgreSQL).
held_logs() {
    sql "SELECT log || ':' || length(bytes) FROM device_eventlogs ORDER BY log" | paste -sd, -
}

# refused_alerts CODE POLICY: how many measured_boot_refused alerts of the
# device name CODE and POLICY.
refused_alerts() {
    sql "SELECT details FROM alerts WHERE kind = 'measured_boot_refused' AND device_id = '$DEVICE'" |
        python3 -c 'import json, sys; ds = [json.loads(l) for l in sys.stdin]; print(sum(d.get("code") == sys.argv[1] and d.get("policy") == sys.argv[2] for d in ds))' "$1" "$2"
}

# boot: the firmware's extends (the golden log) and tether's measurements.
boot() {
    # shellcheck disable=SC2046 # one argument per event
    TPM2TOOLS_TCTI=$SWTPM_TCTI tpm2_pcrextend $(python3 "$here/eventlog_extend.py" args "$WORK/golden.json") ||
        fail "extending the golden log's digests"
    rm -f "$CEL"
    "$AGENT" measure --tcti "$SWTPM_TCTI" --config "$WORK/measure.conf" --log "$CEL" \
        >"$WORK/measure.out" 2>&1 || fail "tether-agent measure: $(cat "$WORK/measure.out")"
}

start_agent() {
    "$AGENT" run --tcti "$SWTPM_TCTI" --state-dir "$WORK/state" --socket "$WORK/agent.sock" \
        --platform-eventlog "$PLATFORM" --tether-eventlog "$CEL" 2>>"$WORK/agent.log" &
    AGENT_PID=$!
}

stop_agent() {
    sigterm_wait "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
}

# count LINE-PATTERN: how many lines of fleetd's log match.
count() { grep -c -- "$1" "$WORK/fleetd.log" || true; }

# wait_count PATTERN N: until fleetd's log has N lines matching PATTERN (60 s:
# the agent backs off up to 60 s after a refusal, and is sent SIGHUP).
wait_count() {
    for _ in $(seq 1 600); do
        [ "$(count "$1")" -ge "$2" ] && return 0
        kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent exited"
        sleep 0.1
    done
    fail "fleetd's log did not reach $2 lines of '$1'"
}

SWTPM_DIR=$WORK/tpm
swtpm_start "$SWTPM_DIR" || fail "swtpm did not start"
export TETHER_TEST_TCTI=$SWTPM_TCTI TETHER_TEST_SWTPM_CA=$SWTPM_CA_DIR
fleet_with_device
DEVICE=$(sql "SELECT id FROM devices")
boot
pass "swtpm's PCRs hold the golden log's extends and tether's measurement of one file"

# --- the policy from the golden logs; the first exchange sends both logs ------
"$CTL" policy create golden --models '*' --from-eventlog "$GOLDEN" --from-eventlog "$CEL" >"$WORK/ctl.out" 2>&1 ||
    fail "policy create --from-eventlog: $(cat "$WORK/ctl.out")"
"$CTL" device set-policy "$DEVICE" golden >"$WORK/ctl.out" 2>&1 ||
    fail "device set-policy: $(cat "$WORK/ctl.out")"
start_agent
wait_agent_token "$WORK/agent.sock"
[ "$(count "measured boot: device=$DEVICE platform_log=received ([0-9]* bytes) tether_log=received")" = 1 ] ||
    fail "the first exchange did not bring both logs"
[ "$(held_logs)" = \
    "platform:$(stat -c %s "$GOLDEN"),tether:$(stat -c %s "$CEL")" ] ||
    fail "the fleet does not hold the device's two logs"
pass "policy from the golden logs: the exchange is accepted, the fleet keeps both logs"

# --- the next exchange: hashes only --------------------------------------------
kill -HUP "$AGENT_PID"
wait_count "measured boot: device=$DEVICE platform_log=held" 1
[ "$(count "platform_log=held ([0-9]* bytes) tether_log=held")" = 1 ] ||
    fail "the second exchange sent a log again"
grep -q "it holds both, hashes only" "$WORK/agent.log" || fail "the agent did not send hashes only"
pass "the second exchange sends the logs' hashes only, and is accepted"

# --- one event's digest changed: refused, named, alerted, nothing else -----
before=$(sql "SELECT status, highest_counter FROM devices WHERE id = '$DEVICE'")
python3 "$here/eventlog_extend.py" corrupt "$WORK/golden.json" "$GOLDEN" "$PLATFORM" 22 ||
    fail "corrupting event 22"
kill -HUP "$AGENT_PID"
wait_count "outcome=eventlog_replay_mismatch" 1
line=$(grep -m1 "outcome=eventlog_replay_mismatch" "$WORK/fleetd.log")
# The quote proves one digest over the selection (the fleet's PCRs 0-7, the
# policy's 0-8 and 13): the refusal names that selection.
case $line in *"status=400"*"PCRs 0x0021ff"*) ;; *) fail "the refusal does not name the quoted PCRs: $line" ;; esac
# The fleet holds the log it accepted last: the refusal names the first
# event that differs from it, the one changed.
case $line in *"first difference from the log accepted last (platform log, PCR "*", event 22, "*) ;;
*) fail "the refusal does not name the changed event: $line" ;; esac
[ "$(refused_alerts eventlog_replay_mismatch golden)" = 1 ] ||
    fail "no measured_boot_refused alert: $(sql "SELECT kind, details FROM alerts")"
[ "$(sql "SELECT status, highest_counter FROM devices WHERE id = '$DEVICE'")" = "$before" ] ||
    fail "the refusal changed the device's state"
curl -s --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/admin.token")" \
    "$URL/metrics" >"$WORK/metrics.txt"
grep -q '^tether_fleetd_exchanges_total{outcome="eventlog_replay_mismatch"} [1-9]' "$WORK/metrics.txt" ||
    fail "/metrics does not count the refusal: $(grep exchanges_total "$WORK/metrics.txt")"
[ "$(held_logs)" = \
    "platform:$(stat -c %s "$GOLDEN"),tether:$(stat -c %s "$CEL")" ] ||
    fail "a refused log replaced the one the fleet holds"
pass "a platform log with one event's digest changed: refused eventlog_replay_mismatch, alerted, counted, nothing else changed"

cp "$GOLDEN" "$PLATFORM"
issued=$(count "token issued: device=$DEVICE")
kill -HUP "$AGENT_PID"
wait_count "token issued: device=$DEVICE" $((issued + 1))
pass "the true log again: accepted"

# --- reboot with a file tether measures changed -----------------------------
stop_agent
swtpm_stop
swtpm_launch "$SWTPM_DIR" || fail "swtpm did not restart"
printf '#!/bin/sh\necho app 2\n' >"$WORK/app/run"
boot
start_agent
wait_count "outcome=measurement_not_allowed" 1
line=$(grep -m1 "outcome=measurement_not_allowed" "$WORK/fleetd.log")
case $line in *"tether log, PCR 13"*) ;; *) fail "the refusal does not name tether's log: $line" ;; esac
"$AGENT" token --socket "$WORK/agent.sock" >/dev/null 2>&1 && fail "the agent holds a token"
pass "after a reboot with a measured file changed: refused measurement_not_allowed naming tether's log"

"$CTL" policy update golden --from-eventlog "$CEL" >"$WORK/ctl.out" 2>&1 ||
    fail "policy update --from-eventlog: $(cat "$WORK/ctl.out")"
issued=$(count "token issued: device=$DEVICE")
kill -HUP "$AGENT_PID"
wait_count "token issued: device=$DEVICE" $((issued + 1))
wait_agent_token "$WORK/agent.sock"
pass "policy update --from-eventlog admits the new digest: accepted"

# --- the scheduled refresh: one request, hashes only --------------------------
# The shortest token life the fleet allows: the refresh comes at about 20 s.
"$CTL" policy update golden --models '*' --token-lifetime 30 >"$WORK/ctl.out" 2>&1 ||
    fail "policy update --token-lifetime: $(cat "$WORK/ctl.out")"
tokens=$(count 'path=/v1/token status=200')
kill -HUP "$AGENT_PID"
wait_count 'path=/v1/token status=200' $((tokens + 1))
before=$(wc -l <"$WORK/fleetd.log")
hashes_only=$(grep -c "it holds both, hashes only" "$WORK/agent.log" || true)
wait_count 'path=/v1/token status=200' $((tokens + 2))
refresh=$(tail -n "+$((before + 1))" "$WORK/fleetd.log")
[ "$(grep -c 'path=' <<<"$refresh")" = 1 ] || fail "the refresh made more than one request"
[ "$(grep -c 'path=/v1/challenge' <<<"$refresh")" = 0 ] || fail "the refresh asked for a challenge"
[ "$(grep -c "measured boot: device=$DEVICE platform_log=held ([0-9]* bytes) tether_log=held" <<<"$refresh")" = 1 ] ||
    fail "the refresh sent a log's bytes"
[ "$(grep -c "it holds both, hashes only" "$WORK/agent.log")" = $((hashes_only + 1)) ] ||
    fail "the agent did not send the hashes only"
pass "the scheduled refresh over the next challenge: one request (POST /v1/token), the logs' hashes only"

echo "measured_boot: $passed passed"
