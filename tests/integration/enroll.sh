#!/usr/bin/env bash
# Enrolment end to end, every part a real process: two swtpm TPMs (one from
# run_with_swtpm.sh, one started here, each with its own manufacturer CA),
# tether-fleetd over TLS on loopback with SQLite, tetherctl as the operator,
# tether-agent as the device, enroll_probe for requests a broken or hostile
# device would send, curl for raw HTTP.
#   enroll.sh FLEETD TETHERCTL AGENT PROBE     (through run_with_swtpm.sh)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/swtpm.sh"
. "$here/fleet.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-enroll-test.XXXXXX")
DIR=$WORK/fleet
PID=
OTHER_PID=
cleanup() {
    kill_pids "$PID" "$OTHER_PID"
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 15
    echo "enroll: $passed passed, 1 failed"
    exit 1
}

# The fleet's whole database as text: a refusal must leave it unchanged.
snapshot() { db_snapshot; }

stop_fleetd() {
    kill -TERM "$PID"
    wait "$PID" || fail "tether-fleetd did not exit cleanly on SIGTERM"
    PID=
}

expect_refusal() { # NAME TEXT BEFORE-SNAPSHOT
    [ "$RC" -eq 1 ] || fail "$1: agent exit status $RC, expected 1"
    grep -q "$2" "$WORK/$1.err" || fail "$1: no '$2' in: $(cat "$WORK/$1.err")"
    [ "$(snapshot)" = "$3" ] || fail "$1: the fleet's database changed"
    pass "$1 refused ($2), nothing changed"
}

# post PATH FILE: raw POST with curl; sets STATUS and BODY.
post() {
    STATUS=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
        -H 'Content-Type: application/json' --data-binary "@$2" "$URL$1") || STATUS=curl-failed
    BODY=$(cat "$WORK/body")
}

expect_post_refusal() { # NAME STATUS ERROR BEFORE-SNAPSHOT
    [ "$STATUS" = "$2" ] || fail "$1: HTTP $STATUS, expected $2 ($BODY)"
    [ "$(json_get "$BODY" 'd["error"]')" = "$3" ] || fail "$1: error is not $3: $BODY"
    [ "$(snapshot)" = "$4" ] || fail "$1: the fleet's database changed"
    pass "$1 refused (HTTP $2 $3), nothing changed"
}

TPM_A=$TETHER_TEST_TCTI
CA_A=$TETHER_TEST_SWTPM_CA
swtpm_start "$WORK/tpm-b" || fail "second swtpm"
TPM_B=$SWTPM_TCTI
CA_B=$SWTPM_CA_DIR
for m in a b; do
    ca=$CA_A
    [ $m = b ] && ca=$CA_B
    cp "$ca/swtpm-localca-rootca-cert.pem" "$WORK/manufacturer-$m-root.pem"
    cp "$ca/issuercert.pem" "$WORK/manufacturer-$m-issuer.pem"
done

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" \
    --ek-ca "$WORK/manufacturer-a-root.pem" --ek-ca "$WORK/manufacturer-a-issuer.pem" \
    --ek-ca "$WORK/manufacturer-b-root.pem" --ek-ca "$WORK/manufacturer-b-issuer.pem" \
    >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd

# --- the EK's identity, from the agent and from tools nobody here wrote ------
EK_A=$("$AGENT" selftest --tcti "$TPM_A" | sed -n 's/^EK SHA-256: *//p')
TPM2TOOLS_TCTI=$TPM_A TSS2_LOG=all+NONE tpm2_nvread 0x01c00016 -o "$WORK/ek-a.der" >/dev/null
ek_openssl=$(openssl x509 -inform der -in "$WORK/ek-a.der" -noout -pubkey |
    openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
[ -n "$EK_A" ] && [ "$EK_A" = "$ek_openssl" ] || fail "EK SHA-256: agent $EK_A, openssl $ek_openssl"
pass "the agent's EK SHA-256 equals openssl's over the EK certificate"

# --- refusals ----------------------------------------------------------------
before=$(snapshot)
enroll not-allowed "$TPM_A" "$WORK/state-a"
expect_refusal not-allowed device_not_allowed "$before"
[ ! -e "$WORK/state-a/device.json" ] || fail "a refused enrolment wrote device.json"

printf 'tthr_boot_notavalidtokenatallxxxxxxxxxxxxxx0000000\n' >"$WORK/bad.token"
enroll bad-token "$TPM_A" "$WORK/state-a" --bootstrap-token-file "$WORK/bad.token"
expect_refusal bad-token "valid bootstrap token" "$before"

"$PROBE" request ok >"$WORK/ok.json"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["bootstrap_token"] = "tthr_boot_" + "A" * 38; json.dump(d, open(sys.argv[2], "w"))' \
    "$WORK/ok.json" "$WORK/malformed-token.json"
post /v1/enroll "$WORK/malformed-token.json"
expect_post_refusal "malformed bootstrap token" 401 invalid_bootstrap_token "$before"

"$CTL" bootstrap create --ttl 1m --uses 1 >"$WORK/expired.token"
grep -q '^tthr_boot_' "$WORK/expired.token" || fail "bootstrap create printed no token"
# An hour later: the fleet's minimum lifetime is a minute, so move the
# expiry into the past instead of waiting.
sql "UPDATE bootstrap_tokens SET expires_at = expires_at - 3600"
before=$(snapshot)
enroll expired-token "$TPM_A" "$WORK/state-a" --bootstrap-token-file "$WORK/expired.token"
expect_refusal expired-token bootstrap_token_expired "$before"
[ -s "$WORK/expired.token" ] || fail "an unused bootstrap token file was removed"

for mode in ak-unrestricted ak-exportable certify-other-key; do
    "$PROBE" request "$mode" >"$WORK/$mode.json"
    post /v1/enroll "$WORK/$mode.json"
    expect_post_refusal "$mode" 400 invalid_attestation "$before"
done
"$PROBE" request ek-cert-mismatch >"$WORK/mismatch.json"
post /v1/enroll "$WORK/mismatch.json"
expect_post_refusal "EK certificate of another key" 400 ek_certificate_mismatch "$before"

# A fleet that trusts another manufacturer refuses this TPM's EK certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-vendor \
    -keyout "$WORK/other-vendor.key" -out "$WORK/other-vendor.pem" -days 1 2>/dev/null
OTHER_PORT=$(free_port)
"$FLEETD" init --dir "$WORK/other-fleet" --listen "127.0.0.1:$OTHER_PORT" \
    --ek-ca "$WORK/other-vendor.pem" >/dev/null
start_fleetd "$WORK/other-fleet" "$OTHER_PORT" "$WORK/other-fleetd.log" OTHER_PID
STATUS=$(curl -sS --max-time 10 --cacert "$WORK/other-fleet/ca.pem" -o "$WORK/body" \
    -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$WORK/ok.json" \
    "https://127.0.0.1:$OTHER_PORT/v1/enroll")
[ "$STATUS" = 403 ] && grep -q untrusted_ek_certificate "$WORK/body" ||
    fail "unknown manufacturer CA: HTTP $STATUS $(cat "$WORK/body")"
[ "$(sql_in "$WORK/other-fleet" 'SELECT count(*) FROM devices')" = 0 ] ||
    fail "the other fleet created a device"
kill -TERM "$OTHER_PID"
wait "$OTHER_PID" || true
OTHER_PID=
pass "EK certificate from an unknown manufacturer CA refused (HTTP 403)"

# A wrong activation proof: the device is allowed, the credential is
# answered with random bytes; the pending enrolment is dropped.
"$CTL" device allow --ek-sha256 "$EK_A" --name gateway-a >/dev/null
before=$(snapshot)
post /v1/enroll "$WORK/ok.json"
[ "$STATUS" = 200 ] || fail "enrol of an allowed device: HTTP $STATUS $BODY"
enrollment_id=$(json_get "$BODY" 'd["enrollment_id"]')
proof=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
printf '{"enrollment_id":"%s","proof":"%s"}' "$enrollment_id" "$proof" >"$WORK/activate.json"
post /v1/enroll/activate "$WORK/activate.json"
expect_post_refusal "wrong activation proof" 403 activation_failed "$before"
post /v1/enroll/activate "$WORK/activate.json"
[ "$STATUS" = 400 ] || fail "a dropped enrolment could be activated again: HTTP $STATUS"
pass "a dropped enrolment cannot be retried"

# --- success from the allow list (ECC P-384 EK) ------------------------------
enroll allowed "$TPM_A" "$WORK/state-a" --name gateway-a
[ "$RC" -eq 0 ] || fail "allowed device: $(cat "$WORK/allowed.err")"
grep -q '^enrolled: device dev_' "$WORK/allowed.out" || fail "no enrolled line"
[ "$(stat -c %a "$WORK/state-a")" = 700 ] || fail "state dir mode"
[ "$(stat -c %a "$WORK/state-a/device.json")" = 600 ] || fail "device.json mode"
cmp -s "$WORK/state-a/fleet-ca.pem" "$DIR/ca.pem" || fail "fleet CA not kept"
devices=$("$CTL" --json device list)
q='[x for x in d["devices"] if x["ek_sha256"] == "'$EK_A'"][0]'
[ "$(json_get "$devices" "$q[\"status\"]")" = active ] || fail "device not active: $devices"
[ -n "$(json_get "$devices" "$q[\"ak_name\"]")" ] || fail "no AK name: $devices"
json_get "$devices" "$q[\"counter_index\"]" | grep -qi '0x01000100\|16777472' ||
    fail "no counter index: $devices"
DEV_A=$(json_get "$devices" "$q[\"id\"]")
pass "enrolled from the allow list: active, with EK hash, AK name and counter index"

before=$(snapshot)
enroll twice "$TPM_A" "$WORK/state-a2"
expect_refusal twice already_enrolled "$before"
enroll twice-local "$TPM_A" "$WORK/state-a"
[ "$RC" -eq 1 ] && grep -q "already holds an enrolment" "$WORK/twice-local.err" ||
    fail "enrol over an existing state directory"
pass "enrolling over an existing state directory refused locally"

# --- success with a bootstrap token (RSA EK on the second TPM) ----------------
"$CTL" bootstrap create --ttl 10m --uses 1 >"$WORK/boot.token"
cp "$WORK/boot.token" "$WORK/boot.token.copy"
enroll bootstrap-rsa "$TPM_B" "$WORK/state-b" --ek rsa --name gateway-b \
    --bootstrap-token-file "$WORK/boot.token"
[ "$RC" -eq 0 ] || fail "bootstrap enrolment: $(cat "$WORK/bootstrap-rsa.err")"
grep -q "RSA 2048" "$WORK/bootstrap-rsa.out" || fail "not the RSA EK: $(cat "$WORK/bootstrap-rsa.out")"
[ ! -e "$WORK/boot.token" ] || fail "the bootstrap token file was not removed"
pass "enrolled with a bootstrap token and an RSA EK; token file removed"

before=$(snapshot)
enroll used-token "$TPM_B" "$WORK/state-b2" --ek p384 --bootstrap-token-file "$WORK/boot.token.copy"
expect_refusal used-token bootstrap_token_used "$before"

# --- nothing secret in the state directories ---------------------------------
for s in "$WORK/state-a" "$WORK/state-b"; do
    if grep -rqE 'PRIVATE KEY|tthr_boot_|tthr_adm_' "$s"; then fail "secret material in $s"; fi
    [ "$(ls "$s" | sort | tr '\n' ' ')" = "device.json fleet-ca.pem " ] || fail "unexpected files in $s"
done
pass "state directories hold only device.json and the fleet CA, no secret"

# --- restart keeps the enrolled devices --------------------------------------
stop_fleetd
start_fleetd
devices=$("$CTL" --json device list)
[ "$(json_get "$devices" 'sum(1 for x in d["devices"] if x["status"] == "active")')" = 2 ] ||
    fail "after restart: $devices"
pass "fleetd restart keeps both enrolled devices"

# --- revoked: no re-enrolment until an operator allows it again --------------
"$CTL" device revoke "$DEV_A" --reason "lost in transit" >/dev/null
before=$(snapshot)
enroll revoked "$TPM_A" "$WORK/state-a3"
expect_refusal revoked already_enrolled "$before"
"$CTL" device reinstate "$DEV_A" >/dev/null
enroll reinstated "$TPM_A" "$WORK/state-a3"
[ "$RC" -eq 0 ] || fail "re-enrolment after reinstate: $(cat "$WORK/reinstated.err")"
grep -q "$DEV_A" "$WORK/reinstated.out" || fail "re-enrolment made a new device id"
pass "re-enrolment after revoke only once an operator reinstated the device"

echo "enroll: $passed passed, 0 failed"
