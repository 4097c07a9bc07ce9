#!/usr/bin/env bash
# Integration test of tether-fleetd's init and admin API: the real program,
# real SQLite, real TLS on a free loopback port, curl as the client.
# usage: fleetd_admin.sh PATH/TO/tether-fleetd
set -euo pipefail

FLEETD=${1:?usage: fleetd_admin.sh PATH/TO/tether-fleetd}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl sqlite3 python3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-fleetd-test.XXXXXX")
DIR=$WORK/fleet
PID=
cleanup() {
    kill_pids "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "--- last response: $STATUS $BODY" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
STATUS=
BODY=

# call METHOD PATH TOKEN [CONTENT-TYPE BODY]: sets STATUS and BODY. A
# non-empty EXTRA_HEADER is sent as one more header line.
EXTRA_HEADER=
call() {
    local args=(-sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -D "$WORK/headers"
                -w '%{http_code}' -X "$1")
    if [ -n "$3" ]; then args+=(-H "Authorization: Bearer $3"); fi
    if [ -n "$EXTRA_HEADER" ]; then args+=(-H "$EXTRA_HEADER"); fi
    if [ $# -ge 5 ]; then args+=(-H "Content-Type: $4" --data-binary "$5"); fi
    STATUS=$(curl "${args[@]}" "$URL$2") || STATUS=curl-failed
    BODY=$(cat "$WORK/body" 2>/dev/null || true)
}
expect() { [ "$STATUS" = "$1" ] || fail "$2: expected HTTP $1, got $STATUS"; pass "$2 ($1)"; }

# field NAME: a top-level field of BODY (JSON); a list prints its length.
field() { json_get "$BODY" "(lambda v: len(v) if isinstance(v, list) else v)(d['$1'])"; }

stop_fleetd() {
    local rc=0
    sigterm_wait "$PID"
    wait "$PID" || rc=$?
    PID=
    [ "$rc" -eq 0 ] || fail "tether-fleetd exited with $rc on SIGTERM"
    pass "SIGTERM: clean exit 0"
}

# --- help and init -----------------------------------------------------------
"$FLEETD" --help | grep -q "usage:" || fail "--help"
"$FLEETD" init --help | grep -q -- "--ek-ca" || fail "init --help"
"$FLEETD" run --help | grep -q -- "--dir" || fail "run --help"
if "$FLEETD" bogus >/dev/null 2>&1; then fail "unknown command accepted"; fi
if "$FLEETD" init >/dev/null 2>&1; then fail "init without --dir accepted"; fi
pass "help and usage errors"

# An EK CA to copy in: any certificate will do; use a throwaway fleet's CA.
"$FLEETD" init --dir "$WORK/other" --listen "127.0.0.1:1" >/dev/null
cp "$WORK/other/ca.pem" "$WORK/manufacturer-ca.pem"
echo "not a certificate" >"$WORK/bad-ca.pem"
if "$FLEETD" init --dir "$WORK/bad" --ek-ca "$WORK/bad-ca.pem" >/dev/null 2>&1; then
    fail "init accepted a bad --ek-ca"
fi
[ ! -e "$WORK/bad" ] || fail "failed init left $WORK/bad behind"
ls "$WORK" | grep -q "init-" && fail "failed init left a staging directory"
pass "init refuses a bad EK CA and leaves nothing behind"

"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" --ek-ca "$WORK/manufacturer-ca.pem" \
    >"$WORK/init.out"
[ "$(wc -l <"$WORK/init.out")" -eq 1 ] || fail "init printed more than one line"
ADMIN=$(cat "$WORK/init.out")
case "$ADMIN" in tthr_adm_*) ;; *) fail "init printed no admin token" ;; esac
[ "$(stat -c %a "$DIR")" = 700 ] || fail "DIR mode is not 0700"
for key in issuer-key.pem ca-key.pem tls-key.pem; do
    [ "$(stat -c %a "$DIR/$key")" = 600 ] || fail "$key mode is not 0600"
done
[ -f "$DIR/ek-ca/manufacturer-ca.pem" ] || fail "EK CA not copied"
grep -q "^ek_ca = ek-ca/manufacturer-ca.pem$" "$DIR/fleetd.conf" || fail "EK CA not configured"
if [ "${TETHER_TEST_STORE:-sqlite}" = postgresql ]; then
    grep -q "^store = postgresql://" "$DIR/fleetd.conf" || fail "store not configured"
    [ ! -e "$DIR/fleet.db" ] || fail "a SQLite database beside the PostgreSQL store"
else
    [ "$(sql "PRAGMA journal_mode")" = wal ] || fail "database not in WAL mode"
fi
[ "$(sql "SELECT roles FROM admin_tokens")" = "read,fleet,security" ] || fail "admin roles"
if store_holds "$ADMIN"; then fail "admin token stored in the clear"; fi
pass "init: one token line, modes, WAL (SQLite), hashed token"

before=$(cd "$DIR" && find . -type f -exec sha256sum {} + | sort)
if "$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/again.out" 2>"$WORK/again.err"; then
    fail "init overwrote an existing fleet"
fi
grep -q "refusing to overwrite" "$WORK/again.err" || fail "init gave no clear error"
[ ! -s "$WORK/again.out" ] || fail "refused init printed a token"
after=$(cd "$DIR" && find . -type f -exec sha256sum {} + | sort)
[ "$before" = "$after" ] || fail "refused init changed the fleet"
pass "init refuses to overwrite; nothing changed"

# --- serve -------------------------------------------------------------------
start_fleetd
call GET /v1/health ""
expect 200 "health"

# --- authentication and roles ----------------------------------------------
call GET /v1/admin/devices ""
expect 401 "no token"
grep -qi '^www-authenticate: Bearer' "$WORK/headers" || fail "no WWW-Authenticate"
call GET /v1/admin/devices "nope"
expect 401 "malformed token"
# The last character changed (to one it is not), so the checksum cannot match.
if [ "${ADMIN: -1}" = x ]; then bad_last=y; else bad_last=x; fi
call GET /v1/admin/devices "${ADMIN%?}$bad_last"
expect 401 "token with a bad checksum"
call GET /v1/admin/nothing-here "$ADMIN"
expect 404 "unknown endpoint"
call DELETE /v1/admin/devices "$ADMIN"
expect 405 "wrong method"
grep -qi '^allow: GET, POST' "$WORK/headers" || fail "no Allow header"

new_token() { # NAME ROLES-JSON -> prints the token
    call POST /v1/admin/tokens "$ADMIN" application/json "{\"name\": \"$1\", \"roles\": $2}"
    expect 201 "create admin token $1" >&2
    field token
}
READ=$(new_token reader '["read"]')
FLEET=$(new_token fleet-script '["fleet"]')
SECURITY=$(new_token soc '["security"]')
case "$READ" in tthr_adm_*) ;; *) fail "created token has the wrong format" ;; esac

EK1=$(printf '1%.0s' $(seq 64))
EK2=$(printf '2%.0s' $(seq 64))
EK3=$(printf '3%.0s' $(seq 64))
call POST /v1/admin/devices "$READ" application/json "{\"ek_sha256\": \"$EK1\", \"name\": \"gw1\"}"
expect 403 "read token cannot allow a device"
[ "$(sql "SELECT count(*) FROM devices")" = 0 ] || fail "403 changed state"
call GET /v1/admin/devices "$SECURITY"
expect 403 "security-only token cannot list devices"
call POST /v1/admin/tokens "$SECURITY" application/json '{"name": "x", "roles": ["fleet"]}'
expect 403 "no role escalation through token creation"
call GET /v1/admin/tokens "$FLEET"
expect 403 "fleet token cannot list admin tokens"

# --- devices -----------------------------------------------------------------
call POST /v1/admin/devices "$FLEET" application/json "{\"ek_sha256\": \"$EK1\", \"name\": \"gw1\"}"
expect 201 "allow device"
DEV1=$(field id)
[ "$(field status)" = allowed ] || fail "new device is not allowed"
call POST /v1/admin/devices "$FLEET" application/json "{\"ek_sha256\": \"$EK1\", \"name\": \"gw1\"}"
expect 200 "allow again is idempotent"
[ "$(field id)" = "$DEV1" ] || fail "allow again made a new device"
call POST /v1/admin/devices "$FLEET" application/json "{\"ek_sha256\": \"$EK1\", \"name\": \"other\"}"
expect 409 "same EK under another name"
call GET "/v1/admin/devices/$DEV1" "$READ"
expect 200 "show device"
[ "$(field ek_sha256)" = "$EK1" ] || fail "show device: wrong EK"
call GET /v1/admin/devices/dev_000000000000000000000000 "$READ"
expect 404 "unknown device"
call GET "/v1/admin/devices/..%2F..%2Fetc" "$READ"
expect 404 "malformed device id"

# --- refused input changes nothing --------------------------------------------
count=$(sql "SELECT count(*) FROM devices")
call POST /v1/admin/devices "$FLEET" application/json '{"ek_sha256": '
expect 400 "malformed JSON"
[ "$(field error)" = invalid_request ] || fail "malformed JSON: error code"
call POST /v1/admin/devices "$FLEET" application/json "{\"ek_sha256\": \"$EK2\", \"name\": \"gw2\", \"admin\": true}"
expect 400 "unknown JSON field"
call POST /v1/admin/devices "$FLEET" application/json "{\"ek_sha256\": \"$EK2\", \"name\": 7}"
expect 400 "wrong JSON type"
call POST /v1/admin/devices "$FLEET" application/json "{\"ek_sha256\": \"$EK2\", \"name\": \"$(printf 'n%.0s' $(seq 65))\"}"
expect 400 "name too long"
call POST /v1/admin/devices "$FLEET" text/plain "{\"ek_sha256\": \"$EK2\", \"name\": \"gw2\"}"
expect 415 "wrong content type"
call GET "/v1/admin/devices?limit=5" "$READ"
expect 400 "unknown query parameter"
python3 -c 'import sys; sys.stdout.write("{\"name\": \"" + "x" * 70000 + "\"}")' >"$WORK/big.json"
# With Expect: 100-continue the client waits for the verdict before sending
# the body (up to --max-time, however slow the loaded server); without it, a
# 413 sent while the body is still in flight ends in a connection reset on
# the client's side, which is a race, not a refusal.
STATUS=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
    -H "Authorization: Bearer $FLEET" -H "Content-Type: application/json" \
    -H "Expect: 100-continue" --expect100-timeout 60 \
    --data-binary "@$WORK/big.json" "$URL/v1/admin/devices") ||
    STATUS=curl-failed
expect 413 "oversized body (Content-Length)"
STATUS=$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" -o "$WORK/body" -w '%{http_code}' \
    -H "Authorization: Bearer $FLEET" -H "Content-Type: application/json" \
    -H "Expect: 100-continue" --expect100-timeout 60 \
    -H "Transfer-Encoding: chunked" --data-binary "@$WORK/big.json" "$URL/v1/admin/devices") ||
    STATUS=curl-failed
expect 413 "oversized body (chunked)"
[ "$(sql "SELECT count(*) FROM devices")" = "$count" ] || fail "refused input changed devices"
pass "refused input left the database unchanged"

# --- import --------------------------------------------------------------------
CSV=$(printf 'ek_sha256,name\n%s,gw2\n%s,gw3\n%s,gw1\n' "$EK2" "$EK3" "$EK1")
call POST /v1/admin/devices/import "$FLEET" text/csv "$CSV"
expect 200 "import"
[ "$(field created)" = 2 ] && [ "$(field unchanged)" = 1 ] || fail "import counts: $BODY"
call POST /v1/admin/devices/import "$FLEET" text/csv "$CSV"
expect 200 "import again"
[ "$(field created)" = 0 ] || fail "import is not idempotent"
BAD=$(printf 'ek_sha256,name\n%s,gw9\nnot-hex,gw10\n%s\n' "$(printf '9%.0s' $(seq 64))" "$EK2")
call POST /v1/admin/devices/import "$FLEET" text/csv "$BAD"
expect 400 "import with bad rows"
python3 -c 'import json, sys; e = json.loads(sys.argv[1])["errors"]; assert [x["line"] for x in e] == [3, 4], e' "$BODY" ||
    fail "bad rows not reported by line"
RENAME=$(printf 'ek_sha256,name\n%s,gw9\n%s,renamed\n' "$(printf '9%.0s' $(seq 64))" "$EK2")
call POST /v1/admin/devices/import "$FLEET" text/csv "$RENAME"
expect 409 "import conflicting with a known device"
[ "$(sql "SELECT count(*) FROM devices")" = 3 ] || fail "a refused import changed devices"
call GET /v1/admin/devices "$READ"
expect 200 "list devices"
[ "$(field devices)" = 3 ] || fail "device list has $(field devices) entries"

# --- revoke, quarantine, reinstate ------------------------------------------
now=$(date +%s)
sql "INSERT INTO issued_tokens (jti, device_id, issued_at, exp) VALUES
     ('live', '$DEV1', $now, $((now + 300))), ('old', '$DEV1', $((now - 900)), $((now - 600)))"
call POST "/v1/admin/devices/$DEV1/revoke" "$FLEET" application/json '{"reason": "stolen"}'
expect 403 "fleet token cannot revoke"
call POST "/v1/admin/devices/$DEV1/revoke" "$SECURITY" application/json '{}'
expect 400 "revoke without a reason"
call POST "/v1/admin/devices/$DEV1/revoke" "$SECURITY" application/json '{"reason": "stolen"}'
expect 200 "revoke"
[ "$(field status)" = revoked ] || fail "device not revoked"
[ "$(sql "SELECT revoked FROM issued_tokens WHERE jti = 'live'")" = 1 ] || fail "live token not revoked"
[ "$(sql "SELECT revoked FROM issued_tokens WHERE jti = 'old'")" = 0 ] || fail "expired token touched"
[ "$(sql "SELECT count(*) FROM revocations WHERE device_id = '$DEV1'")" = 1 ] || fail "no feed entry"
call POST "/v1/admin/devices/$DEV1/revoke" "$SECURITY" application/json '{"reason": "again"}'
expect 409 "revoke twice"
call POST "/v1/admin/devices/$DEV1/reinstate" "$SECURITY" application/json '{"reason": "found"}'
expect 200 "reinstate"
[ "$(field status)" = allowed ] && [ "$(field allow_reenroll)" = True ] || fail "reinstate: $BODY"
# Gateways refuse tokens issued at or before the second of the device's
# last feed entry: the reinstatement (and so every token after it) comes in
# a later second than the revocation, however quickly it followed.
[ "$(sql "SELECT count(*) FROM devices d WHERE d.id = '$DEV1' AND d.updated_at >
          (SELECT max(created_at) FROM revocations r WHERE r.device_id = d.id)")" = 1 ] ||
    fail "reinstated in the revocation's second: $(sql "SELECT updated_at FROM devices WHERE id = '$DEV1'") vs $(sql "SELECT created_at FROM revocations WHERE device_id = '$DEV1'")"
call POST "/v1/admin/devices/$DEV1/quarantine" "$SECURITY" application/json '{"reason": "clone?"}'
expect 200 "quarantine"
[ "$(sql "SELECT count(*) FROM revocations")" = 2 ] || fail "quarantine: no feed entry"
call POST /v1/admin/devices/dev_000000000000000000000000/revoke "$SECURITY" application/json '{"reason": "x"}'
expect 404 "revoke an unknown device"

# --- alerts, bootstrap tokens, admin tokens ------------------------------------
sql "INSERT INTO alerts (device_id, kind, details, created_at) VALUES ('$DEV1', 'clone', '{\"counter\": [7, 5]}', $now)"
call GET /v1/admin/alerts "$SECURITY"
expect 200 "list alerts"
[ "$(field alerts)" = 1 ] || fail "alerts: $BODY"
call GET "/v1/admin/alerts?after=1" "$SECURITY"
expect 200 "list alerts after"
[ "$(field alerts)" = 0 ] || fail "alerts after 1: $BODY"
call GET "/v1/admin/alerts?after=x" "$SECURITY"
expect 400 "alerts with a bad cursor"
call GET /v1/admin/alerts "$READ"
expect 403 "read token cannot list alerts"

call POST /v1/admin/bootstrap-tokens "$FLEET" application/json '{"ttl_seconds": 600, "uses": 2}'
expect 201 "create bootstrap token"
BOOT=$(field token)
case "$BOOT" in tthr_boot_*) ;; *) fail "bootstrap token format" ;; esac
[ "$(sql "SELECT uses_left FROM bootstrap_tokens")" = 2 ] || fail "bootstrap token not stored"
call POST /v1/admin/bootstrap-tokens "$FLEET" application/json '{"ttl_seconds": 999999999}'
expect 400 "bootstrap TTL over the limit"

call GET /v1/admin/tokens "$SECURITY"
expect 200 "list admin tokens"
[ "$(field tokens)" = 4 ] || fail "admin tokens: $BODY"
READ_ID=$(sql "SELECT id FROM admin_tokens WHERE name = 'reader'")
call DELETE "/v1/admin/tokens/$READ_ID" "$SECURITY"
expect 200 "revoke admin token"
call GET /v1/admin/devices "$READ"
expect 401 "revoked admin token"
call DELETE "/v1/admin/tokens/$READ_ID" "$SECURITY"
expect 409 "revoke an admin token twice"
call DELETE /v1/admin/tokens/999 "$SECURITY"
expect 404 "revoke an unknown admin token"

for secret in "$ADMIN" "$READ" "$FLEET" "$SECURITY" "$BOOT"; do
    if store_holds "$secret"; then
        fail "a secret token is stored in the clear"
    fi
    if grep -qF "$secret" "$WORK/fleetd.log"; then fail "a secret token was logged"; fi
done
pass "no secret in the database or the log"
grep -q '"msg":"method=POST path=/v1/admin/devices status=201 duration_ms=[0-9.]* remote=127.0.0.1"' \
    "$WORK/fleetd.log" || fail "no JSON request log line"
pass "JSON request log lines"

# --- the HTTP layer's refusals are JSON errors ------------------------------------
# expect_error STATUS CODE WHAT: the last answer is STATUS with a JSON error CODE.
expect_error() {
    expect "$1" "$3"
    grep -qi '^content-type: application/json' "$WORK/headers" || fail "$3: not JSON"
    [ "$(field error)" = "$2" ] || fail "$3: error is not $2"
}
long=$(printf 'a%.0s' $(seq 5000))
call GET "/v1/admin/devices/$long" "$ADMIN"
expect_error 414 uri_too_long "a 5000-byte request target"
EXTRA_HEADER="X-Padding: $(printf 'p%.0s' $(seq 20000))"
call GET /v1/health ""
EXTRA_HEADER=
expect_error 431 request_header_fields_too_large "20000 bytes of header fields"
call GET /.well-known/jwks.json ""
expect 200 "JWKS"
call GET /.well-known/jwks.json%00 ""
expect_error 400 invalid_request "a NUL (%00) after the JWKS path"
call GET "/v1/admin/devices/$DEV1%00x" "$ADMIN"
expect_error 400 invalid_request "a NUL (%00) in a device id"
call GET "/v1/revocations?after=1%00" "$ADMIN"
expect_error 400 invalid_request "a NUL (%00) in a query value"
call GET "/v1/revocations?after=1" "$ADMIN"
expect 200 "revocation feed after 1"
call GET "/v1/revocations?after=01" "$ADMIN"
expect_error 400 invalid_request "a revocation seq with a leading zero"
call GET "/v1/admin/alerts?after=01" "$ADMIN"
expect_error 400 invalid_request "an alert id with a leading zero"
call DELETE "/v1/admin/tokens/0$READ_ID" "$SECURITY"
expect_error 404 not_found "an admin token id with a leading zero"
call GET "/v1/admin/devices/$(printf 'd%.0s' $(seq 64))" "$ADMIN"
expect_error 404 not_found "a 64-character device id"
[ "$(field error_description)" = "no device with this id" ] || fail "64-character id: wrong error"

# --- restart keeps everything ---------------------------------------------------
stop_fleetd
start_fleetd
call GET /v1/admin/devices "$ADMIN"
expect 200 "list after restart"
[ "$(field devices)" = 3 ] || fail "devices lost in the restart"
call GET "/v1/admin/devices/$DEV1" "$ADMIN"
[ "$(field status)" = quarantined ] || fail "status lost in the restart"
call GET /v1/admin/devices "$READ"
expect 401 "revoked admin token stays revoked after restart"
stop_fleetd

echo "all fleetd admin checks passed"
