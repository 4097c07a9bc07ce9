#!/usr/bin/env bash
# Enrolment that a forger cannot disturb and a crash cannot break, every part
# a real process: three swtpm TPMs (each with its own manufacturer CA),
# tether-fleetd over TLS on loopback with SQLite, tetherctl as the operator,
# tether-agent as the devices, enroll_probe as the forger (requests with a
# victim's EK and a software AK, sent from another loopback address) and as
# an agent that is SIGKILLed right after the fleet activated it,
# exchange_probe for the exchange that shows a device works.
#   enroll_resilience.sh FLEETD TETHERCTL AGENT ENROLL_PROBE EXCHANGE_PROBE
#   (through run_with_swtpm.sh)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4 XPROBE=$5
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/swtpm.sh"
. "$here/fleet.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-enroll-resilience-test.XXXXXX")
DIR=$WORK/fleet
PID=
FORGER_PID=
SWTPM_PIDS=()
FORGER_ADDRESS=127.0.0.2
cleanup() {
    kill_pids "$FORGER_PID" "$PID" "${SWTPM_PIDS[@]}"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    echo "enroll_resilience: $passed passed, 1 failed"
    exit 1
}

# new_tpm NAME: a fresh swtpm with its own manufacturer CA; sets TCTI_<NAME>
# and EK_<NAME> (the EK's SHA-256).
new_tpm() {
    local ek
    swtpm_start "$WORK/tpm-$1" >/dev/null || fail "swtpm $1"
    SWTPM_PIDS+=("$SWTPM_PID")
    cp "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" "$WORK/ca-$1-root.pem"
    cp "$SWTPM_CA_DIR/issuercert.pem" "$WORK/ca-$1-issuer.pem"
    ek=$("$AGENT" selftest --tcti "$SWTPM_TCTI" | sed -n 's/^EK SHA-256: *//p')
    [ -n "$ek" ] || fail "no EK SHA-256 for TPM $1"
    eval "TCTI_$1=\$SWTPM_TCTI EK_$1=\$ek"
}

# forged_post FILE: POST /v1/enroll from the forger's address; prints the
# HTTP status, keeps the body in $WORK/forged-body and the head in
# $WORK/forged-head.
forged_post() {
    curl -sS --max-time 10 --interface "$FORGER_ADDRESS" --cacert "$DIR/ca.pem" \
        -D "$WORK/forged-head" -o "$WORK/forged-body" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary "@$1" "$URL/v1/enroll" ||
        echo curl-failed
}

# die_after_activation NAME TCTI STATE-DIR: the agent's enrolment steps up to
# the fleet's answer to the activation, then SIGKILL before device.json.
die_after_activation() {
    RC=0
    TETHER_TEST_TCTI=$2 "$PROBE" die-after-activation "$3" "$URL" "$DIR/ca.pem" \
        >"$WORK/$1.out" 2>"$WORK/$1.err" || RC=$?
    [ "$RC" -eq 137 ] || fail "$1: the probe did not die by SIGKILL (status $RC): $(cat "$WORK/$1.err")"
    grep -q '^activated: device dev_' "$WORK/$1.out" || fail "$1: not activated: $(cat "$WORK/$1.err")"
    [ -s "$3/enrolment.json" ] || fail "$1: no enrolment.json was left behind"
    [ ! -e "$3/device.json" ] || fail "$1: device.json was written"
}

# exchanges NAME TCTI STATE-DIR: one attested token exchange succeeds.
exchanges() {
    local out
    out=$("$XPROBE" "$2" exchange "$3") || true
    [ "${out%% *}" = ok ] || fail "$1: the exchange failed: $out"
}

status_of() { # DEVICE-ID
    json_get "$("$CTL" --json device list)" '[x["status"] for x in d["devices"] if x["id"] == "'"$1"'"][0]'
}

new_tpm A
new_tpm B
new_tpm C
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
cas=()
for t in A B C; do cas+=(--ek-ca "$WORK/ca-$t-root.pem" --ek-ca "$WORK/ca-$t-issuer.pem"); done
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" "${cas[@]}" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
grep -q '^enroll_max_pending_per_ek = 8$' "$DIR/fleetd.conf" &&
    grep -q '^enroll_rate_per_minute = 6$' "$DIR/fleetd.conf" &&
    grep -q '^enroll_burst = 20$' "$DIR/fleetd.conf" || fail "fleetd.conf lacks the enrolment limits"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd

# --- forged enrolments while real devices enrol ------------------------------
# The forger has each victim's public EK and certificate; its AK is software.
TETHER_TEST_TCTI=$TCTI_A "$PROBE" request ok >"$WORK/victim-A.json"
TETHER_TEST_TCTI=$TCTI_B "$PROBE" request ok >"$WORK/victim-B.json"
TETHER_TEST_TCTI=$TCTI_C "$PROBE" forge "$WORK/victim-A.json" >"$WORK/forged-A.json"
TETHER_TEST_TCTI=$TCTI_C "$PROBE" forge "$WORK/victim-B.json" >"$WORK/forged-B.json"
"$CTL" device allow --ek-sha256 "$EK_A" --name device-A >/dev/null
"$CTL" device allow --ek-sha256 "$EK_B" --name device-B >/dev/null

# Alone, a forgery passes every check before activation, and fails there.
[ "$(forged_post "$WORK/forged-A.json")" = 200 ] || fail "a forged request was refused: $(cat "$WORK/forged-body")"
enrollment_id=$(json_get "$(cat "$WORK/forged-body")" 'd["enrollment_id"]')
proof=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
printf '{"enrollment_id":"%s","proof":"%s"}' "$enrollment_id" "$proof" >"$WORK/forged-activate.json"
STATUS=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@$WORK/forged-activate.json" \
    "$URL/v1/enroll/activate")
[ "$STATUS" = 403 ] && grep -q activation_failed "$WORK/body" ||
    fail "a forged enrolment's activation: HTTP $STATUS $(cat "$WORK/body")"
pass "a forged enrolment is accepted until activation, and cannot be activated"

# A loop of forgeries against both victims, from another address, while
# both devices enrol. (Both are on the allow list: a device that enrols with
# a bootstrap token is out of a forger's reach, who lacks the token.)
(
    while :; do
        for v in A B; do
            forged_post "$WORK/forged-$v.json" >>"$WORK/forger.codes"
            echo >>"$WORK/forger.codes"
        done
    done
) &
FORGER_PID=$!
for _ in $(seq 1 100); do
    [ -f "$WORK/forger.codes" ] && [ "$(wc -l <"$WORK/forger.codes")" -ge 6 ] && break
    sleep 0.1
done
enroll real-A "$TCTI_A" "$WORK/state-A" &
pid_a=$!
enroll real-B "$TCTI_B" "$WORK/state-B" &
pid_b=$!
rc_a=0 rc_b=0
wait "$pid_a" || rc_a=$?
wait "$pid_b" || rc_b=$?
grep -q '^enrolled: device dev_' "$WORK/real-A.out" || fail "device A under forgery: $(cat "$WORK/real-A.err")"
grep -q '^enrolled: device dev_' "$WORK/real-B.out" || fail "device B under forgery: $(cat "$WORK/real-B.err")"
[ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ] || fail "an agent exited with $rc_a / $rc_b"
kill_pids "$FORGER_PID"
FORGER_PID=
DEV_A=$(sed -n 's/^enrolled: device \([^ ]*\) .*/\1/p' "$WORK/real-A.out")
DEV_B=$(sed -n 's/^enrolled: device \([^ ]*\) .*/\1/p' "$WORK/real-B.out")
[ "$(status_of "$DEV_A")" = active ] && [ "$(status_of "$DEV_B")" = active ] ||
    fail "devices not active: $("$CTL" --json device list)"
[ "$(sql "SELECT count(*) FROM devices WHERE ek_sha256 IN ('$EK_A', '$EK_B')")" = 2 ] ||
    fail "one device per EK expected: $(sql 'SELECT id, ek_sha256, status FROM devices')"
grep -q 200 "$WORK/forger.codes" || fail "the forger never got in: $(sort "$WORK/forger.codes" | uniq -c)"
grep -q 429 "$WORK/forger.codes" || fail "the forger was never bounded: $(sort "$WORK/forger.codes" | uniq -c)"
pass "both real devices enrolled through a loop of forgeries ($(grep -c . "$WORK/forger.codes") forged requests: $(sort "$WORK/forger.codes" | uniq -c | tr -s ' \n' ' '))"
exchanges A "$TCTI_A" "$WORK/state-A"
exchanges B "$TCTI_B" "$WORK/state-B"
pass "both exchange tokens"

# Beyond its bucket the forger's address is refused before any work.
for _ in $(seq 1 25); do
    code=$(forged_post "$WORK/forged-A.json")
    [ "$code" = 429 ] && grep -q rate_limited "$WORK/forged-body" && break
done
grep -q rate_limited "$WORK/forged-body" || fail "no rate_limited refusal: $(cat "$WORK/forged-body")"
grep -qi '^Retry-After: [1-9]' "$WORK/forged-head" || fail "429 without Retry-After: $(cat "$WORK/forged-head")"
pass "attempts from one address beyond enroll_burst: 429 rate_limited with Retry-After"
STATUS=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
    -H 'Content-Type: application/json' --data-binary "@$WORK/forged-A.json" "$URL/v1/enroll")
[ "$STATUS" = 409 ] || fail "another address is not limited by the forger's bucket: HTTP $STATUS $(cat "$WORK/body")"
pass "another address is not: 409 already_enrolled"

# --- killed between activation and saving -----------------------------------
"$CTL" device allow --ek-sha256 "$EK_C" --name device-C >/dev/null
die_after_activation crash-C "$TCTI_C" "$WORK/state-C"
DEV_C=$(sed -n 's/^activated: device \(dev_[^ ]*\)$/\1/p' "$WORK/crash-C.out")
[ "$(status_of "$DEV_C")" = active ] || fail "device C not active after the crash"
uses_before=$(sql 'SELECT sum(uses_left) FROM bootstrap_tokens')
enroll resumed-C "$TCTI_C" "$WORK/state-C"
[ "$RC" -eq 0 ] || fail "resume after the crash: $(cat "$WORK/resumed-C.err")"
grep -q resuming "$WORK/resumed-C.err" || fail "the agent did not resume: $(cat "$WORK/resumed-C.err")"
grep -q "^enrolled: device $DEV_C " "$WORK/resumed-C.out" || fail "another device id: $(cat "$WORK/resumed-C.out")"
[ "$(ls "$WORK/state-C" | sort | tr '\n' ' ')" = "device.json fleet-ca.pem " ] ||
    fail "unexpected files in the state directory: $(ls "$WORK/state-C")"
grep -q 'activation repeated' "$WORK/fleetd.log" || fail "fleetd did not log the repeated activation"
[ "$(sql 'SELECT sum(uses_left) FROM bootstrap_tokens')" = "$uses_before" ] || fail "a bootstrap use changed"
[ "$(sql "SELECT count(*) FROM devices WHERE ek_sha256 = '$EK_C'")" = 1 ] || fail "device C twice"
exchanges C "$TCTI_C" "$WORK/state-C"
pass "SIGKILL after activation: enroll again resumes, the same device, and it exchanges"

# The fleet forgot the enrolment meanwhile (an operator revoked and
# reinstated the device): enroll again starts over cleanly.
"$CTL" device revoke "$DEV_A" --reason "test: lost" >/dev/null
"$CTL" device reinstate "$DEV_A" >/dev/null
die_after_activation crash-A "$TCTI_A" "$WORK/state-A2"
"$CTL" device revoke "$DEV_A" --reason "test: lost again" >/dev/null
"$CTL" device reinstate "$DEV_A" >/dev/null
enroll restarted-A "$TCTI_A" "$WORK/state-A2"
[ "$RC" -eq 0 ] || fail "start over: $(cat "$WORK/restarted-A.err")"
grep -q "starting over" "$WORK/restarted-A.err" || fail "the agent did not start over: $(cat "$WORK/restarted-A.err")"
grep -q "^enrolled: device $DEV_A " "$WORK/restarted-A.out" || fail "start over: $(cat "$WORK/restarted-A.out")"
[ "$(ls "$WORK/state-A2" | sort | tr '\n' ' ')" = "device.json fleet-ca.pem " ] ||
    fail "unexpected files after starting over: $(ls "$WORK/state-A2")"
exchanges A "$TCTI_A" "$WORK/state-A2"
pass "an enrolment the fleet no longer holds: enroll again starts over and the device exchanges"

echo "enroll_resilience: $passed passed, 0 failed"
