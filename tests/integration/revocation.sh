#!/usr/bin/env bash
# Integration test of revocation for relying parties against a real
# tether-fleetd (real TLS on a free loopback port, real SQLite; no TPM):
# the relying-party role, GET /v1/revocations and its long poll (woken by a
# revocation, ended by its wait, answered at shutdown, bounded), POST
# /v1/introspect, and tetherctl revocations and revoke-leaked.
#
# Tokens of the fleet are made here by signing with the fleet's own issuer
# key file (a stand-in for the attested exchange, which needs a TPM and is
# exercised by exchange.sh); foreign tokens with a random key.
# usage: revocation.sh PATH/TO/tether-fleetd PATH/TO/tetherctl
set -euo pipefail

FLEETD=${1:?usage: revocation.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
CTL=${2:?usage: revocation.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 sqlite3 openssl timeout

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-revocation-test.XXXXXX")
DIR=$WORK/fleet
PID=
BACKGROUND=()
cleanup() {
    for pid in "${BACKGROUND[@]}"; do kill "$pid" 2>/dev/null || true; done
    kill_pids "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
ERR=
RC=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last command: exit $RC" >&2
    echo "--- stdout: $OUT" >&2
    echo "--- stderr: $ERR" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
now_ms() { python3 -c 'import time; print(int(time.time() * 1000))'; }

# ctl ARGS...: runs tetherctl (at most 60 s), sets OUT, ERR and RC.
ctl() {
    RC=0
    timeout 60 "$CTL" "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
}
expect() {
    [ "$RC" = "$1" ] || fail "$2: expected exit $1, got $RC"
    pass "$2 (exit $1)"
}
out_has() { grep -qF -- "$1" <<<"$OUT" || fail "stdout lacks \"$1\""; }
err_has() { grep -qF -- "$1" <<<"$ERR" || fail "stderr lacks \"$1\""; }
# json EXPR [TEXT]: a Python expression on TEXT (default OUT) parsed as JSON (as j).
json() { json_get "${2:-$OUT}" "$1"; }

# api TOKENFILE METHOD PATH [CURL ARGS...]: sets OUT (body) and RC (HTTP status).
api() {
    local token=$1 method=$2 path=$3
    shift 3
    local auth=()
    [ -n "$token" ] && auth=(-H "Authorization: Bearer $(cat "$token")")
    RC=$(curl -sS --max-time 60 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
        -X "$method" "${auth[@]}" "$@" "$URL$path") || RC=curl-failed
    OUT=$(cat "$WORK/body" 2>/dev/null || true)
    ERR=
}
introspect() { # TOKENFILE TOKEN
    api "$1" POST /v1/introspect --data-urlencode "token=$2" --data-urlencode "token_type_hint=access_token"
}

stop_fleetd() {
    sigterm_wait "$PID"
    kill -0 "$PID" 2>/dev/null && fail "tether-fleetd did not stop within 10 s of SIGTERM"
    wait "$PID" || fail "tether-fleetd did not stop cleanly"
    PID=
}

# mkjwt KEY.pem KID CLAIMS_JSON: an ES256 at+jwt signed with openssl.
mkjwt() { python3 "$here/jwt_tool.py" sign "$@"; }
# claims SUB JTI EXP: the claims fleetd issues, with the fleet's issuer.
claims() { python3 "$here/jwt_tool.py" claims "$ISSUER" "$@"; }

# --- help, usage (no fleet needed) ---------------------------------------------------
for verb in revocations revoke-leaked; do
    ctl "$verb" --help
    expect 0 "$verb --help"
    out_has "usage: tetherctl $verb"
done
ctl revoke-leaked
expect 2 "revoke-leaked without FILE"
ctl revoke-leaked "$WORK/no-such-file"
expect 2 "revoke-leaked on a missing file"

# --- the fleet, the relying party's token ------------------------------------------
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd
ctl token create --role relying-party --name gateway
expect 0 "token create --role relying-party (by the first token: security grants it)"
grep -qE '^tthr_adm_[0-9A-Za-z]{38}$' <<<"$OUT" || fail "not an admin token"
echo "$OUT" >"$WORK/rp.token"
chmod 600 "$WORK/rp.token"
ctl token create --role fleet --name fleet-only
expect 0 "token create --role fleet"
echo "$OUT" >"$WORK/fleet.token"
chmod 600 "$WORK/fleet.token"
ctl token list
expect 0 "token list"
out_has "relying-party"

# --- the feed, empty; who may read it -------------------------------------------------
api "$WORK/rp.token" GET "/v1/revocations?after=0"
[ "$RC" = 200 ] || fail "feed: HTTP $RC"
[ "$(json 'j == {"revocations": [], "last_seq": 0}')" = True ] || fail "empty feed: $OUT"
pass "the feed is empty: {\"revocations\": [], \"last_seq\": 0}"
api "$WORK/fleet.token" GET "/v1/revocations?after=0"
[ "$RC" = 403 ] && [ "$(json 'j["error"]')" = insufficient_scope ] || fail "fleet-only token on the feed: HTTP $RC"
api "$WORK/fleet.token" POST /v1/introspect --data-urlencode "token=x"
[ "$RC" = 403 ] || fail "fleet-only token on introspection: HTTP $RC"
api "$WORK/admin.token" POST /v1/introspect --data-urlencode "token=x"
[ "$RC" = 403 ] || fail "an operator token (no relying-party) on introspection: HTTP $RC"
api "" GET "/v1/revocations?after=0"
[ "$RC" = 401 ] || fail "feed without a token: HTTP $RC"
api "" POST /v1/introspect --data-urlencode "token=x"
[ "$RC" = 401 ] || fail "introspection without a token: HTTP $RC"
api "$WORK/rp.token" GET "/v1/admin/devices"
[ "$RC" = 403 ] || fail "relying-party token on the admin API: HTTP $RC"
pass "403 for fleet-only and operator tokens, 401 without one, relying-party opens no admin endpoint"
TETHER_ADMIN_TOKEN_FILE=$WORK/fleet.token ctl revocations
expect 1 "tetherctl revocations with a fleet-only token"
err_has "HTTP 403 insufficient_scope"
TETHER_ADMIN_TOKEN_FILE=$WORK/rp.token ctl revocations
expect 0 "tetherctl revocations (empty)"
out_has "SEQ"
TETHER_ADMIN_TOKEN_FILE=$WORK/rp.token ctl --json revocations
expect 0 "tetherctl --json revocations"
[ "$(json 'j["last_seq"]')" = 0 ] || fail "--json last_seq"

# --- allow devices; a long poll woken by a revocation ------------------------------------
ctl device allow --ek-sha256 "$(printf 'a%.0s' $(seq 64))" --name device-a
expect 0 "device allow A"
ctl device allow --ek-sha256 "$(printf 'b%.0s' $(seq 64))" --name device-b
expect 0 "device allow B"
ctl device allow --ek-sha256 "$(printf 'c%.0s' $(seq 64))" --name device-c
expect 0 "device allow C"
ctl --json device list
DEV_A=$(json '[d["id"] for d in j["devices"] if d["name"] == "device-a"][0]')
DEV_B=$(json '[d["id"] for d in j["devices"] if d["name"] == "device-b"][0]')
DEV_C=$(json '[d["id"] for d in j["devices"] if d["name"] == "device-c"][0]')

WAIT=20
(
    start=$(now_ms)
    curl -sS --max-time 60 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
        -o "$WORK/poll.json" -w '%{http_code}' "$URL/v1/revocations?after=0&wait=$WAIT" >"$WORK/poll.status"
    end=$(now_ms)
    echo "$start $end" >"$WORK/poll.times"
) &
POLL=$!
BACKGROUND+=("$POLL")
sleep 1 # the request is parked by now (nothing for the test to measure on)
revoke_at=$(now_ms)
ctl device revoke "$DEV_A" --reason "stolen laptop"
expect 0 "device revoke A"
wait "$POLL" || fail "the long poll failed"
read -r poll_start poll_end <"$WORK/poll.times"
OUT=$(cat "$WORK/poll.json")
[ "$(cat "$WORK/poll.status")" = 200 ] || fail "long poll: HTTP $(cat "$WORK/poll.status")"
[ "$(json 'len(j["revocations"])')" = 1 ] || fail "the long poll did not return the revocation"
[ "$(json 'j["revocations"][0]["device_id"]')" = "$DEV_A" ] || fail "long poll: device"
[ "$(json 'j["revocations"][0]["jti"] is None and j["revocations"][0]["reason"] == "stolen laptop"')" = True ] ||
    fail "long poll: entry"
[ "$(json 'j["last_seq"]')" = 1 ] || fail "long poll: last_seq"
[ $((poll_end - poll_start)) -lt $((WAIT * 1000)) ] || fail "the long poll ran to its wait"
echo "# long poll answered $((poll_end - revoke_at)) ms after 'tetherctl device revoke' started" \
    "(tetherctl's own start and TLS included)"
pass "a waiting long poll returns the revocation before its wait expires"

TETHER_ADMIN_TOKEN_FILE=$WORK/rp.token ctl revocations
expect 0 "tetherctl revocations"
out_has "$DEV_A"
out_has "stolen laptop"
grep -qE "^1 +$DEV_A +\* " <<<"$OUT" || fail "revocations row: seq 1, device, jti '*'"
TETHER_ADMIN_TOKEN_FILE=$WORK/rp.token ctl revocations --after 1
expect 0 "tetherctl revocations --after 1"
[ "$(wc -l <<<"$OUT")" = 1 ] || fail "--after 1 printed rows"

# --- the wait expires; limits ---------------------------------------------------------------
api "$WORK/rp.token" GET "/v1/revocations?after=1&wait=2"
[ "$RC" = 200 ] && [ "$(json 'j == {"revocations": [], "last_seq": 1}')" = True ] ||
    fail "wait expiry: HTTP $RC $OUT"
pass "a long poll whose wait expires answers an empty list with last_seq = after"
TETHER_ADMIN_TOKEN_FILE=$WORK/rp.token ctl --json revocations --after 1 --wait 1
expect 0 "tetherctl revocations --after 1 --wait 1"
[ "$(json 'j["revocations"] == [] and j["last_seq"] == 1')" = True ] || fail "--wait 1 answer"
TETHER_ADMIN_TOKEN_FILE=$WORK/rp.token ctl revocations --wait 31
expect 2 "--wait over 30"
api "$WORK/rp.token" GET "/v1/revocations?after=x"
[ "$RC" = 400 ] || fail "after=x: HTTP $RC"
api "$WORK/rp.token" GET "/v1/revocations?since=1"
[ "$RC" = 400 ] || fail "unknown parameter: HTTP $RC"
# Other requests go on while clients wait (suspended, holding no worker thread).
pids=()
for _ in 1 2 3 4 5 6; do
    curl -sS --max-time 60 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
        -o /dev/null "$URL/v1/revocations?after=1&wait=8" &
    pids+=($!)
    BACKGROUND+=($!)
done
sleep 0.5
for _ in 1 2 3; do
    api "$WORK/rp.token" GET "/v1/revocations?after=0"
    [ "$RC" = 200 ] || fail "a request while six clients wait (more than the worker threads): HTTP $RC"
done
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
pass "requests are served while more clients wait than there are worker threads"

# --- introspection -----------------------------------------------------------------------------
introspect "$WORK/rp.token" "not-a-token"
[ "$RC" = 200 ] && [ "$OUT" = '{"active":false}' ] || fail "introspection of garbage: HTTP $RC $OUT"
api "$WORK/rp.token" POST /v1/introspect -H "Content-Type: application/json" -d '{"token":"x"}'
[ "$RC" = 415 ] || fail "introspection with JSON: HTTP $RC"
api "$WORK/rp.token" POST /v1/introspect --data-urlencode "token_type_hint=access_token"
[ "$RC" = 400 ] && [ "$(json 'j["error"]')" = invalid_request ] || fail "introspection without token: HTTP $RC"
pass "introspection: {\"active\":false} for garbage, 415, 400"

openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/attacker.pem" 2>/dev/null
HAVE_KEYS=false
api "" GET /.well-known/jwks.json
if [ "$RC" = 200 ]; then
    HAVE_KEYS=true
    KID=$(json 'j["keys"][0]["kid"]')
    api "" GET /.well-known/oauth-authorization-server
    [ "$RC" = 200 ] || fail "metadata: HTTP $RC"
    ISSUER=$(json 'j["issuer"]')
else
    echo "# the fleet publishes no JWKS yet: the checks with tokens of the fleet are skipped"
    ISSUER=$URL
fi
EXP=$(($(date +%s) + 300))
if $HAVE_KEYS; then
    # A token of device C as the exchange would issue it: the fleet's key,
    # the issued_tokens row, the device active (what enrolment leaves).
    JTI_C=cccccccccccccccccccccccccccccccc
    TOKEN_C=$(mkjwt "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_C" "$JTI_C" "$EXP")")
    sql "UPDATE devices SET status = 'active' WHERE id = '$DEV_C';
        INSERT INTO issued_tokens (jti, device_id, issued_at, exp) VALUES ('$JTI_C', '$DEV_C', $((EXP - 300)), $EXP);"
    introspect "$WORK/rp.token" "$TOKEN_C"
    [ "$RC" = 200 ] || fail "introspection: HTTP $RC"
    [ "$(json 'j["active"] and j["sub"] == "'"$DEV_C"'" and j["jti"] == "'"$JTI_C"'" and j["token_type"] == "Bearer"')" = True ] ||
        fail "introspection of a live token: $OUT"
    for claim in iss aud client_id scope exp iat nbf cnf tether; do
        json "j['$claim']" >/dev/null || fail "introspection answer lacks $claim: $OUT"
    done
    ctl device revoke "$DEV_C" --reason "introspection test"
    expect 0 "device revoke C"
    introspect "$WORK/rp.token" "$TOKEN_C"
    [ "$OUT" = '{"active":false}' ] || fail "introspection right after the revocation: $OUT"
    # A foreign key under the fleet's kid: a forgery.
    FORGED=$(mkjwt "$WORK/attacker.pem" "$KID" "$(claims "$DEV_C" "$JTI_C" "$EXP")")
    introspect "$WORK/rp.token" "$FORGED"
    [ "$OUT" = '{"active":false}' ] || fail "introspection of a forgery: $OUT"
    pass "introspection: active with the claims, inactive at once after 'device revoke', forgery inactive"
fi

# --- revoke-leaked --------------------------------------------------------------------------------
seq_before=2
$HAVE_KEYS || seq_before=1
FOREIGN=$(mkjwt "$WORK/attacker.pem" attacker-key "$(claims "$DEV_B" dddddddddddddddddddddddddddddddd "$EXP")")
{
    echo "2024-05-01T12:00:00Z gateway: request from 10.0.0.7"
    echo "Authorization: Bearer $FOREIGN"
    echo "nothing to see here"
} >"$WORK/foreign.log"
ctl revoke-leaked "$WORK/foreign.log"
expect 0 "revoke-leaked on a foreign token"
out_has "not ours"
grep -qE "^2 +eyJ" <<<"$OUT" || fail "revoke-leaked: the token's line"
grep -qF "$FOREIGN" "$WORK/out" "$WORK/err" && fail "revoke-leaked printed a whole token"
ctl --json device show "$DEV_B"
[ "$(json 'j["status"]')" = allowed ] || fail "device B changed"
api "$WORK/rp.token" GET "/v1/revocations?after=0"
[ "$(json 'j["last_seq"]')" = "$seq_before" ] || fail "the feed changed: $OUT"
ctl --json revoke-leaked - <"$WORK/foreign.log"
expect 0 "revoke-leaked --json from standard input"
[ "$(json 'j["tokens"][0]["verdict"] == "not_ours" and j["devices_revoked"] == 0')" = True ] ||
    fail "revoke-leaked --json: $OUT"
ctl revoke-leaked - <<<"no token here"
expect 0 "revoke-leaked on a text without tokens"
out_has "0 tokens found"
pass "revoke-leaked: a token signed by another key is not ours, nothing is revoked"

if $HAVE_KEYS; then
    # Two tokens of B (one long expired: it still names its device) and one
    # of A (revoked already), in a chat export.
    OLD_B=$(mkjwt "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_B" bbbbbbbbbbbbbbbb0000000000000001 1000000000)")
    NEW_B=$(mkjwt "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_B" bbbbbbbbbbbbbbbb0000000000000002 "$EXP")")
    TOK_A=$(mkjwt "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_A" aaaaaaaaaaaaaaaa0000000000000001 "$EXP")")
    {
        echo "[09:14] alice: here's the token from the gateway logs: $OLD_B"
        echo "[09:15] bob: and mine \"$NEW_B\", also $FOREIGN"
        echo "[09:16] carol: old one: $TOK_A."
    } >"$WORK/chat.txt"
    ctl revoke-leaked "$WORK/chat.txt" --dry-run
    expect 0 "revoke-leaked --dry-run"
    out_has "would be revoked (dry run)"
    ctl --json device show "$DEV_B"
    [ "$(json 'j["status"]')" = allowed ] || fail "--dry-run revoked device B"
    ctl revoke-leaked "$WORK/chat.txt"
    expect 0 "revoke-leaked"
    echo "$OUT" | sed 's/^/#   /'
    for token in "$OLD_B" "$NEW_B" "$TOK_A" "$FOREIGN"; do
        if grep -qF "$token" "$WORK/out" "$WORK/err"; then fail "revoke-leaked printed a whole token"; fi
    done
    grep -qE "^1 +eyJ.* bbbbbbbbbbbbbbbb0000000000000001 +$DEV_B +ours: device revoked" <<<"$OUT" ||
        fail "the expired token of B: not revoked"
    grep -qE "^2 .* $DEV_B +ours: same device as line 1" <<<"$OUT" || fail "B's second token"
    grep -qE "^2 .* not ours" <<<"$OUT" || fail "the foreign token"
    grep -qE "^3 .* $DEV_A +ours: device already revoked" <<<"$OUT" || fail "A's token"
    out_has "4 tokens found, 3 of this fleet (2 devices): 1 revoked now, 1 already revoked"
    ctl --json device show "$DEV_B"
    [ "$(json 'j["status"]')" = revoked ] || fail "device B is not revoked"
    [ "$(json 'j["status_reason"]')" = "leaked token bbbbbbbbbbbb found by revoke-leaked" ] ||
        fail "reason: $(json 'j["status_reason"]')"
    api "$WORK/rp.token" GET "/v1/revocations?after=$seq_before"
    [ "$(json '[(r["device_id"], r["reason"]) for r in j["revocations"]]')" = \
        "[('$DEV_B', 'leaked token bbbbbbbbbbbb found by revoke-leaked')]" ] ||
        fail "one feed entry for B: $OUT"
    ctl --json revoke-leaked "$WORK/chat.txt"
    expect 0 "revoke-leaked again (--json)"
    [ "$(json '[t["result"] for t in j["tokens"]]')" = \
        "['already_revoked', 'duplicate', None, 'already_revoked']" ] || fail "second run: $OUT"
    [ "$(json 'j["issuer_checked"] and j["devices_revoked"] == 0')" = True ] || fail "second run counts"
    pass "revoke-leaked: tokens of the fleet (expired too) revoke their device once, with the jti in the reason"
fi

# --- the bound on waiting clients ------------------------------------------------------------------
stop_fleetd
sed -i 's/^max_connections = .*/max_connections = 4/' "$DIR/fleetd.conf"
grep -q '^max_connections = 4$' "$DIR/fleetd.conf" || fail "could not set max_connections"
start_fleetd
pids=()
for _ in 1 2; do # max_connections / 2 may wait
    curl -sS --max-time 60 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
        -o /dev/null "$URL/v1/revocations?after=100&wait=30" &
    pids+=($!)
    BACKGROUND+=($!)
done
sleep 1
api "$WORK/rp.token" GET "/v1/revocations?after=100&wait=30" -D "$WORK/headers"
[ "$RC" = 503 ] && [ "$(json 'j["error"]')" = temporarily_unavailable ] || fail "a third waiter: HTTP $RC $OUT"
grep -qi '^Retry-After: 1' "$WORK/headers" || fail "503 without Retry-After"
pass "waiting clients are bounded (503 temporarily_unavailable with Retry-After beyond)"

# --- shutdown with clients waiting -----------------------------------------------------------------
stop_fleetd
for pid in "${pids[@]}"; do
    wait "$pid" || fail "a client waiting at shutdown got no answer"
done
pass "SIGTERM with clients waiting: fleetd stops at once, each gets its answer"
grep -q '"status=200' "$WORK/fleetd.log" || true
for secret in "$(cat "$WORK/admin.token")" "$(cat "$WORK/rp.token")" "$FOREIGN" "${TOKEN_C:-}" "${NEW_B:-}"; do
    [ -n "$secret" ] || continue
    if grep -qF "$secret" "$WORK/fleetd.log"; then fail "a token was logged by fleetd"; fi
done
pass "no token in fleetd's log"
