#!/usr/bin/env bash
# The attested token exchange end to end, every part a real process: swtpm
# TPMs, tether-fleetd over TLS with SQLite, tetherctl, tether-agent (enroll,
# run, token), exchange_probe for single exchanges and captured evidence,
# curl for raw replays, openssl (through jwt_tool.py) to check signatures.
#   exchange.sh FLEETD TETHERCTL AGENT PROBE     (through run_with_swtpm.sh)
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/swtpm.sh"
. "$here/fleet.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-exchange-test.XXXXXX")
DIR=$WORK/fleet
PID=
AGENT_PID=
SWTPM_PIDS=()
cleanup() {
    kill_pids "$AGENT_PID" "$PID" "${SWTPM_PIDS[@]}"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 15
    log_tail agent "$WORK/agent.log" 15
    echo "exchange: $passed passed, 1 failed"
    exit 1
}

# new_tpm NAME: a fresh swtpm with its own manufacturer CA; sets TCTI_<NAME>.
new_tpm() {
    swtpm_start "$WORK/tpm-$1" >/dev/null || fail "swtpm $1"
    SWTPM_PIDS+=("$SWTPM_PID")
    eval "TCTI_$1=\$SWTPM_TCTI PID_$1=\$SWTPM_PID"
    cp "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" "$WORK/ca-$1-root.pem"
    cp "$SWTPM_CA_DIR/issuercert.pem" "$WORK/ca-$1-issuer.pem"
}

# stop_tpm NAME / restart_tpm NAME: an orderly TPM2_Shutdown first, as an
# operating system sends at power-off (power_loss below is the other way).
stop_tpm() {
    local pid tcti
    eval "pid=\$PID_$1 tcti=\$TCTI_$1"
    TPM2TOOLS_TCTI=$tcti TSS2_LOG=all+NONE tpm2_shutdown || fail "TPM2_Shutdown on $1"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}
restart_tpm() {
    swtpm_launch "$WORK/tpm-$1" || fail "restart swtpm $1"
    SWTPM_PIDS+=("$SWTPM_PID")
    eval "TCTI_$1=\$SWTPM_TCTI PID_$1=\$SWTPM_PID"
}

# enrol NAME: allows the EK of TPM NAME and enrols it into $WORK/state-NAME.
enrol() {
    local tcti ek
    eval "tcti=\$TCTI_$1"
    ek=$("$AGENT" selftest --tcti "$tcti" | sed -n 's/^EK SHA-256: *//p')
    "$CTL" device allow --ek-sha256 "$ek" --name "device-$1" >/dev/null
    "$AGENT" enroll --tcti "$tcti" --state-dir "$WORK/state-$1" --fleet "$URL" --ca "$DIR/ca.pem" \
        >"$WORK/enroll-$1.out" 2>&1 || fail "enrol $1: $(cat "$WORK/enroll-$1.out")"
    eval "DEV_$1=\$(sed -n 's/^enrolled: device \\([^ ]*\\) .*/\\1/p' \"\$WORK/enroll-$1.out\")"
}

# exchange NAME [STATE]: one exchange with TPM NAME; sets OUT (first word:
# ok/refused/retry/failed).
exchange() {
    local tcti
    eval "tcti=\$TCTI_$1"
    OUT=$("$PROBE" "$tcti" exchange "${2:-$WORK/state-$1}") || true
}

# malleate FILE OUT: the captured evidence with its quote signature's s
# replaced by n - s (P-256): the same signature spelt otherwise, as anyone
# who saw the evidence on its way can make it.
malleate() {
    python3 - "$1" "$2" <<'PY'
import base64, json, sys
def b64d(t): return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
def b64e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
ev = json.loads(b64d(open(sys.argv[1]).read().strip()))
sig = bytearray(b64d(ev["quote_signature"]))  # sigAlg, hash, TPM2B r, TPM2B s
r_len = int.from_bytes(sig[4:6], "big")
at = 6 + r_len
s_len = int.from_bytes(sig[at:at + 2], "big")
s = int.from_bytes(sig[at + 2:at + 2 + s_len], "big")
sig[at:] = (32).to_bytes(2, "big") + (n - s).to_bytes(32, "big")
ev["quote_signature"] = b64e(bytes(sig))
open(sys.argv[2], "w").write(b64e(json.dumps(ev, separators=(",", ":")).encode()))
PY
}

# post_evidence FILE: POST /v1/token with a captured subject_token.
post_evidence() {
    STATUS=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
        --data-urlencode "grant_type=urn:ietf:params:oauth:grant-type:token-exchange" \
        --data-urlencode "subject_token_type=urn:tether:params:oauth:token-type:tpm-evidence-v1" \
        --data-urlencode "subject_token@$1" "$URL/v1/token") || STATUS=curl-failed
    BODY=$(cat "$WORK/body")
}

# body_token: the access_token of the last answer in $WORK/body.
body_token() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$WORK/body"; }

device_status() { json_get "$("$CTL" --json device show "$1")" 'd.get("status", d.get("device", {}).get("status"))'; }

introspect() { # TOKEN -> prints active true/false
    curl -sS --max-time 10 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
        --data-urlencode "token=$1" "$URL/v1/introspect" |
        python3 -c 'import json, sys; print(str(json.load(sys.stdin)["active"]).lower())'
}

# --- the fleet and the first device --------------------------------------------
TCTI_A=$TETHER_TEST_TCTI
cp "$TETHER_TEST_SWTPM_CA/swtpm-localca-rootca-cert.pem" "$WORK/ca-A-root.pem"
cp "$TETHER_TEST_SWTPM_CA/issuercert.pem" "$WORK/ca-A-issuer.pem"
for name in B C D E; do new_tpm $name; done
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
ek_cas=()
for name in A B C D E; do ek_cas+=(--ek-ca "$WORK/ca-$name-root.pem" --ek-ca "$WORK/ca-$name-issuer.pem"); done
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" "${ek_cas[@]}" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
# The shortest lifetime the fleet allows, so that refreshes happen in seconds.
echo "token_lifetime_seconds = 30" >>"$DIR/fleetd.conf"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd
"$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
for name in A B C D E; do enrol $name; done
pass "fleet up, five devices enrolled"

# --- the agent: a token over the Unix socket, checked by openssl -------------------
echo "# callers besides the agent's own user: none yet" >"$WORK/agent.conf"
"$AGENT" run --tcti "$TCTI_A" --state-dir "$WORK/state-A" --socket "$WORK/agent.sock" \
    --config "$WORK/agent.conf" \
    2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 1 100); do
    TOKEN=$("$AGENT" token --socket "$WORK/agent.sock" 2>/dev/null) && break
    kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent exited"
    sleep 0.1
done
[ -n "${TOKEN:-}" ] || fail "no token from the agent within 10 s"
[ "$(stat -c %a "$WORK/agent.sock")" = 660 ] || fail "socket mode is not 0660"
curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json" >"$WORK/jwks.json"
claims=$(python3 "$here/jwt_tool.py" verify "$WORK/jwks.json" "$TOKEN") ||
    fail "the token's signature does not verify with the published key: $claims"
[ "$(json_get "$claims" 'd["header"]["typ"]')" = at+jwt ] || fail "typ: $claims"
[ "$(json_get "$claims" 'd["claims"]["sub"]')" = "$DEV_A" ] || fail "sub: $claims"
[ "$(json_get "$claims" 'd["claims"]["exp"] - d["claims"]["iat"]')" = 30 ] || fail "lifetime: $claims"
for claim in iss aud client_id nbf jti scope cnf tether; do
    json_get "$claims" "d['claims']['$claim']" >/dev/null || fail "no $claim claim: $claims"
done
[ "$(json_get "$claims" 'd["claims"]["tether"]["counter"] > 1')" = True ] || fail "counter claim"
[ "$(introspect "$TOKEN")" = true ] || fail "introspection of a fresh token"
pass "agent token over the socket: at+jwt, ES256 verified by openssl, RFC 9068 claims, introspection active"

# Local callers: SO_PEERCRED decides. Let any user reach the socket file,
# so that the agent's own check is what refuses user nobody.
chmod 0711 "$WORK"
chmod 0666 "$WORK/agent.sock"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$AGENT" token --socket "$WORK/agent.sock"; }
if nobody >/dev/null 2>"$WORK/nobody.err"; then fail "user nobody got the token"; fi
grep -q "HTTP 403" "$WORK/nobody.err" || fail "nobody was not refused by the agent: $(cat "$WORK/nobody.err")"
echo "allow_uid = 65534" >>"$WORK/agent.conf"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 50); do nobody >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(nobody)" != "" ] || fail "nobody still refused after allow_uid and SIGHUP"
chmod 0660 "$WORK/agent.sock"
chmod 0700 "$WORK"
pass "local callers: a user not allowed gets 403 (SO_PEERCRED); allowed after a config reload"

status=$("$AGENT" token --socket "$WORK/agent.sock" --status)
[ "$(json_get "$status" 'd["state"]')" = ok ] || fail "agent status: $status"

# --- key rotation: tokens signed by the old key stay valid until they expire ---
kid() { json_get "$(python3 "$here/jwt_tool.py" verify "$1" "$2")" 'd["header"]["kid"]'; }
OLD_TOKEN=$TOKEN
old_kid=$(kid "$WORK/jwks.json" "$OLD_TOKEN")
"$CTL" key rotate >/dev/null
curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json" >"$WORK/jwks2.json"
[ "$(json_get "$(cat "$WORK/jwks2.json")" 'len(d["keys"])')" = 2 ] || fail "JWKS after rotation"
python3 "$here/jwt_tool.py" verify "$WORK/jwks2.json" "$OLD_TOKEN" >/dev/null ||
    fail "a token of the old key no longer verifies with the published keys"
[ "$(introspect "$OLD_TOKEN")" = true ] || fail "introspection of an old-key token"
# refresh: SIGHUP makes the agent exchange; waits (10 s at most) for that
# exchange and sets TOKEN to the agent's token.
refresh() {
    local before
    before=$(json_get "$("$AGENT" token --socket "$WORK/agent.sock" --status)" 'd["exchanges"]')
    kill -HUP "$AGENT_PID"
    for _ in $(seq 1 100); do
        [ "$(json_get "$("$AGENT" token --socket "$WORK/agent.sock" --status)" 'd["exchanges"]')" -gt "$before" ] && break
        sleep 0.1
    done
    TOKEN=$("$AGENT" token --socket "$WORK/agent.sock")
}
refresh
new_kid=$(kid "$WORK/jwks2.json" "$TOKEN")
[ -n "$new_kid" ] && [ "$new_kid" != "$old_kid" ] || fail "the new token is not signed by the new key"
pass "key rotation: new tokens use the new key, old-key tokens verify until they expire"

# --- fleet policies: the agent's next token carries its device's policy -------------
# (lifetime 30 as the fleet's default, which the checks below rely on)
"$CTL" policy create agents --models 'llama3:8b' --token-lifetime 30 >/dev/null
"$CTL" policy update agents --models 'gpt-4o*,llama3:8b' --cost-ceiling 5 --token-lifetime 30 >/dev/null
"$CTL" device set-policy "$DEV_A" agents >/dev/null
refresh
claims=$(python3 "$here/jwt_tool.py" verify "$WORK/jwks2.json" "$TOKEN") || fail "policy token: $claims"
[ "$(json_get "$claims" 'd["claims"]["tether"]["policy"], d["claims"]["tether"]["policy_version"], d["claims"]["tether"]["models"], d["claims"]["tether"]["cost_ceiling"]')" = \
    "('agents', 2, ['gpt-4o*', 'llama3:8b'], 5)" ] || fail "the token does not carry policy agents version 2: $claims"
pass "tetherctl device set-policy: the agent's next token carries the policy's name, version 2 and models"


# --- fleetd killed in the middle of exchanges; nothing accepted is lost ----------
for i in $(seq 1 60); do exchange B; echo "$OUT" >>"$WORK/b-exchanges.log"; done &
LOOP=$!
sleep 1
kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
wait "$LOOP" || true
start_fleetd
highest=$(sql "SELECT highest_counter FROM devices WHERE id = '$DEV_B'")
max_token_counter=0
while read -r outcome _ token; do
    [ "$outcome" = ok ] || continue
    c=$(python3 -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["tether"]["counter"])' "$token")
    [ "$c" -gt "$max_token_counter" ] && max_token_counter=$c
done <"$WORK/b-exchanges.log"
[ "$highest" -ge "$max_token_counter" ] ||
    fail "a token with counter $max_token_counter left fleetd but the database holds $highest"
grep -q '^retry' "$WORK/b-exchanges.log" || fail "the kill did not land in the middle of the exchanges"
exchange B
[ "${OUT%% *}" = ok ] || fail "device B after the fleet's restart: $OUT"
pass "fleetd SIGKILLed mid-exchange: every issued counter durable ($max_token_counter <= $highest), exchanges go on"

# The agent recovers by itself: ask it to refresh while the fleet is down.
before=$(json_get "$("$AGENT" token --socket "$WORK/agent.sock" --status)" 'd["exchanges"]')
kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
kill -HUP "$AGENT_PID"
sleep 2
status=$("$AGENT" token --socket "$WORK/agent.sock" --status)
[ "$(json_get "$status" '"last_error" in d')" = True ] || fail "no error while the fleet was down: $status"
start_fleetd
for _ in $(seq 1 150); do
    status=$("$AGENT" token --socket "$WORK/agent.sock" --status)
    [ "$(json_get "$status" 'd["exchanges"]')" -gt "$before" ] && break
    sleep 0.2
done
[ "$(json_get "$status" 'd["exchanges"] > '"$before"' and d["state"] == "ok"')" = True ] ||
    fail "the agent did not recover after the fleet came back: $status"
pass "the agent backs off while the fleet is down and recovers by itself"

# Fails closed: with the fleet gone past the token's expiry, no token.
kill -KILL "$PID"
wait "$PID" 2>/dev/null || true
left=$(json_get "$("$AGENT" token --socket "$WORK/agent.sock" --status)" 'd["expires_in"]')
sleep $((left + 1))
if "$AGENT" token --socket "$WORK/agent.sock" >/dev/null 2>"$WORK/expired.err"; then
    fail "the agent handed out a token after its expiry"
fi
grep -q "HTTP 503" "$WORK/expired.err" || fail "no 503 after expiry: $(cat "$WORK/expired.err")"
[ "$(json_get "$("$AGENT" token --socket "$WORK/agent.sock" --status)" 'd["has_token"]')" = False ] ||
    fail "the agent still holds a token"
start_fleetd
kill -HUP "$AGENT_PID"
for _ in $(seq 1 100); do "$AGENT" token --socket "$WORK/agent.sock" >/dev/null 2>&1 && break; sleep 0.1; done
TOKEN=$("$AGENT" token --socket "$WORK/agent.sock") || fail "no token after the fleet came back"
pass "fails closed: no token once it expired while the fleet was down (waited ${left} s); back after"

# --- replayed evidence, byte-identical retry ---------------------------------------
printf %s "$("$PROBE" "$TCTI_C" evidence "$WORK/state-C")" >"$WORK/ev1"
post_evidence "$WORK/ev1"
[ "$STATUS" = 200 ] || fail "first evidence: $STATUS $BODY"
jti1=$(python3 -c 'import base64, json, sys; p = json.load(open(sys.argv[1]))["access_token"].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["jti"])' "$WORK/body")
post_evidence "$WORK/ev1"
[ "$STATUS" = 200 ] || fail "byte-identical retry: $STATUS $BODY"
jti2=$(python3 -c 'import base64, json, sys; p = json.load(open(sys.argv[1]))["access_token"].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["jti"])' "$WORK/body")
[ "$jti1" = "$jti2" ] || fail "a retry got a new token id"
[ "$(device_status "$DEV_C")" = active ] || fail "a retry raised an alarm"
pass "a byte-identical retry gets the same token, no alarm"
TOKEN_C1=$(body_token)
malleate "$WORK/ev1" "$WORK/ev1-malleated"
post_evidence "$WORK/ev1-malleated"
[ "$STATUS" = 200 ] || fail "the evidence with s replaced by n - s: $STATUS $BODY"
# The same token: its header and claims (jti, iat, exp) byte for byte. fleetd
# signs with libcrypto's hedged ECDSA nonce, so the signature is a new one,
# and it verifies with the fleet's JWKS.
TOKEN_C2=$(body_token)
[ "${TOKEN_C2%.*}" = "${TOKEN_C1%.*}" ] || fail "the malleated evidence got another token"
curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json" >"$WORK/jwks.json"
python3 "$here/jwt_tool.py" verify "$WORK/jwks.json" "$TOKEN_C2" >/dev/null ||
    fail "the token issued again for the malleated evidence does not verify with the fleet's JWKS"
[ "$(device_status "$DEV_C")" = active ] || fail "a malleated retry raised an alarm"
pass "the same evidence with s replaced by n - s is the same exchange: the same token, no alarm"
alerts_before=$(sql "SELECT count(*) FROM alerts")
exchange C
[ "${OUT%% *}" = ok ] || fail "device C: $OUT"
for replay in ev1 ev1-malleated; do
    post_evidence "$WORK/$replay"
    [ "$STATUS" = 400 ] && grep -q '"tether_error":"nonce_reused"' "$WORK/body" ||
        fail "$replay replayed after a newer exchange: $STATUS $BODY"
done
[ "$(device_status "$DEV_C")" = active ] || fail "a replay changed device C"
[ "$(sql "SELECT count(*) FROM alerts")" = "$alerts_before" ] || fail "a replay raised an alert"
[ "$(introspect "$TOKEN_C1")" = true ] || fail "a replay revoked the device's token"
exchange C
[ "${OUT%% *}" = ok ] || fail "device C after the replays: $OUT"
pass "old evidence replayed after a newer exchange (as sent, or malleated): nonce_reused," \
    "device active, tokens valid, no alert"

# --- power loss: the TPM killed, restarted on its state without TPM2_Shutdown ----
reset_before=$(sql "SELECT last_reset_count FROM devices WHERE id = '$DEV_C'")
kill -KILL "$PID_C"
wait "$PID_C" 2>/dev/null || true
restart_tpm C
exchange C
[ "${OUT%% *}" = ok ] || fail "device C after a power loss: $OUT"
[ "$(sql "SELECT last_clock_safe FROM devices WHERE id = '$DEV_C'")" = 0 ] ||
    fail "the TPM's clock was safe after the power loss: the test did not test it"
[ "$(sql "SELECT last_reset_count FROM devices WHERE id = '$DEV_C'")" -gt "$reset_before" ] ||
    fail "no TPM Reset recorded after the power loss"
exchange C
[ "${OUT%% *}" = ok ] || fail "device C's second exchange on the same boot: $OUT"
[ "$(device_status "$DEV_C")" = active ] || fail "device C is not active after the power loss"
pass "swtpm SIGKILLed, restarted without TPM2_Shutdown: unsafe clock after a TPM Reset, tokens at once"

# --- clones: copy of the TPM state and of the agent state ------------------------
clone_tpm() { # NAME -> NAME2 running on a copy of NAME's state
    stop_tpm "$1"
    mkdir -p "$WORK/tpm-${1}2"
    cp -a "$WORK/tpm-$1/state" "$WORK/tpm-${1}2/"
    cp -a "$WORK/state-$1" "$WORK/state-${1}2"
    restart_tpm "$1"
    swtpm_launch "$WORK/tpm-${1}2" || fail "clone swtpm"
    SWTPM_PIDS+=("$SWTPM_PID")
    eval "TCTI_${1}2=\$SWTPM_TCTI"
}
clone_tpm D
exchange D2
[ "${OUT%% *}" = ok ] || fail "the clone's first exchange: $OUT"
exchange D
[ "$OUT" != "${OUT#refused clone_detected}" ] || fail "the original after its clone: $OUT"
[ "$(device_status "$DEV_D")" = quarantined ] || fail "device D not quarantined"
exchange D2
[ "${OUT%% *}" = refused ] || fail "the clone after quarantine: $OUT"
alerts=$("$CTL" --json alerts)
[ "$(json_get "$alerts" 'sum(1 for a in d["alerts"] if a["device_id"] == "'"$DEV_D"'")')" -ge 1 ] ||
    fail "no alert for D: $alerts"
json_get "$alerts" '[a for a in d["alerts"] if a["device_id"] == "'"$DEV_D"'"][0]["details"]' |
    grep -q counter || fail "the alert does not show both sightings: $alerts"
"$CTL" device show "$DEV_D" | grep -qi clone || fail "device show does not say why"
pass "clone exchanges first, original second: caught, quarantined, alert with both sightings"

clone_tpm E
exchange E
[ "${OUT%% *}" = ok ] || fail "the original's exchange: $OUT"
exchange E2
[ "$OUT" != "${OUT#refused clone_detected}" ] || fail "the clone after the original: $OUT"
[ "$(device_status "$DEV_E")" = quarantined ] || fail "device E not quarantined"
pass "original exchanges first, clone second: caught and quarantined"

# A TPM rolled back to an older snapshot of itself.
stop_tpm B
cp -a "$WORK/tpm-B/state" "$WORK/tpm-B-snapshot"
restart_tpm B
exchange B
[ "${OUT%% *}" = ok ] || fail "B before the rollback: $OUT"
stop_tpm B
rm -rf "$WORK/tpm-B/state"
cp -a "$WORK/tpm-B-snapshot" "$WORK/tpm-B/state"
restart_tpm B
exchange B
[ "$OUT" != "${OUT#refused clone_detected}" ] || fail "the rolled-back TPM: $OUT"
pass "a TPM state rolled back to an older snapshot is caught"

# --- revocation: introspection and the feed, and the agent stops asking -----------
seq_before=$(json_get "$(curl -sS --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" "$URL/v1/revocations?after=0")" 'd["last_seq"]')
TOKEN=$("$AGENT" token --socket "$WORK/agent.sock")
[ "$(introspect "$TOKEN")" = true ] || fail "introspection before revocation"
curl -sS --max-time 20 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
    "$URL/v1/revocations?after=$seq_before&wait=15" >"$WORK/feed.json" &
FEED=$!
sleep 0.3
"$CTL" device revoke "$DEV_A" --reason "integration test" >/dev/null
[ "$(introspect "$TOKEN")" = false ] || fail "introspection after revocation"
wait "$FEED"
grep -q "$DEV_A" "$WORK/feed.json" || fail "the long-poll did not return the revocation: $(cat "$WORK/feed.json")"
pass "revocation: introspection inactive at once, the waiting feed returns it"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 100); do
    status=$("$AGENT" token --socket "$WORK/agent.sock" --status)
    [ "$(json_get "$status" 'd["state"]')" = refused ] && break
    sleep 0.1
done
[ "$(json_get "$status" 'd["state"]')" = refused ] || fail "agent state after revocation: $status"
if "$AGENT" token --socket "$WORK/agent.sock" >/dev/null 2>&1; then fail "a revoked agent handed out a token"; fi
grep -q "device_revoked" "$WORK/agent.log" || fail "the agent did not say why"
pass "the revoked agent holds no token and says why"

# --- nothing secret left on the device --------------------------------------------
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" || fail "the agent did not exit cleanly on SIGTERM"
AGENT_PID=
[ ! -e "$WORK/agent.sock" ] || fail "the socket file was left behind"
for f in "$WORK"/state-*/* "$WORK/agent.log"; do
    if grep -q "$TOKEN" "$f" || grep -qE 'PRIVATE KEY|eyJ[A-Za-z0-9_-]{20,}\.' "$f"; then
        fail "a token or private key in $f"
    fi
done
pass "no token and no private key in the state directories or the agent's log"

echo "exchange: $passed passed, 0 failed"
