#!/usr/bin/env bash
# Integration test of tetherctl against a real tether-fleetd: real TLS on a
# free loopback port, real SQLite, every verb, the exit codes and messages.
# usage: tetherctl.sh PATH/TO/tether-fleetd PATH/TO/tetherctl
set -euo pipefail

FLEETD=${1:?usage: tetherctl.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
CTL=${2:?usage: tetherctl.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 sqlite3 timeout

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-ctl-test.XXXXXX")
DIR=$WORK/fleet
PID=
cleanup() {
    kill_pids "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
ERR=
RC=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last tetherctl: exit $RC" >&2
    echo "--- stdout: $OUT" >&2
    echo "--- stderr: $ERR" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT

SECRETS=() # admin tokens: never on stderr, and the caller's never on stdout
# ctl ARGS...: runs tetherctl (at most 30 s), sets OUT, ERR and RC.
ctl() {
    RC=0
    timeout 30 "$CTL" "$@" >"$WORK/out" 2>"$WORK/err" || RC=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
    for secret in "${SECRETS[@]}"; do
        if grep -qF "$secret" "$WORK/err"; then fail "an admin token was printed on stderr"; fi
    done
    if [ -n "${ADMIN:-}" ] && grep -qF "$ADMIN" "$WORK/out"; then
        fail "the caller's admin token was printed"
    fi
}
# expect CODE WHAT: the last run exited with CODE; a failure said so in one
# line on stderr starting with "tetherctl: ".
expect() {
    [ "$RC" = "$1" ] || fail "$2: expected exit $1, got $RC"
    if [ "$1" != 0 ]; then
        case "$ERR" in "tetherctl: "*) ;; *) fail "$2: stderr does not start with 'tetherctl: '" ;; esac
    fi
    pass "$2 (exit $1)"
}
err_has() { grep -qF -- "$1" <<<"$ERR" || fail "stderr lacks \"$1\""; }
out_has() { grep -qF -- "$1" <<<"$OUT" || fail "stdout lacks \"$1\""; }
# json EXPR: evaluates a Python expression on OUT parsed as JSON (as j).
json() { json_get "$OUT" "$1"; }

stop_fleetd() {
    sigterm_wait "$PID"
    wait "$PID" || fail "tether-fleetd did not stop cleanly"
    PID=
}

# --- help, version, usage errors (no fleet needed) -----------------------------
ctl --help
expect 0 "--help"
out_has "usage: tetherctl"
for verb in "device list" "device show" "device allow" "device import" "device revoke" \
    "device quarantine" "device reinstate" "bootstrap create" "token create" "token list" \
    "token revoke" "alerts" "device" "token" "bootstrap" "policy create" "policy update" \
    "policy show" "policy list" "device set-policy" "policy"; do
    # shellcheck disable=SC2086
    ctl $verb --help
    [ "$RC" = 0 ] || fail "$verb --help exited $RC"
    out_has "usage: tetherctl $verb"
done
pass "--help for every verb"
ctl --version
expect 0 "--version"
out_has "tetherctl "
ctl device frobnicate
expect 2 "unknown verb"
ctl device revoke dev_000000000000000000000000
expect 2 "revoke without --reason"
err_has "--reason is required"
ctl bootstrap create --ttl 5y
expect 2 "a bad duration"
ctl device list
expect 2 "no fleet configured"
err_has "TETHER_FLEET_URL"

# --- a fleet ---------------------------------------------------------------------
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
ADMIN=$(cat "$WORK/admin.token")
SECRETS+=("$ADMIN")
"$FLEETD" init --dir "$WORK/other" --listen "127.0.0.1:1" >/dev/null
start_fleetd
G=(--fleet "$URL" --ca "$DIR/ca.pem" --token-file "$WORK/admin.token")

EK1=$(printf '1%.0s' $(seq 64))
EK2=$(printf '2%.0s' $(seq 64))
EK3=$(printf '3%.0s' $(seq 64))
EK9=$(printf '9%.0s' $(seq 64))

# --- devices -----------------------------------------------------------------------
ctl "${G[@]}" device allow --ek-sha256 "$EK1" --name gw1
expect 0 "device allow"
out_has "(gw1) allowed to enrol"
ctl "${G[@]}" device allow --ek-sha256 "$EK1" --name gw1
expect 0 "device allow again (idempotent)"
out_has "already allowed"
ctl "${G[@]}" device allow --ek-sha256 "$EK1" --name other
expect 1 "the same EK under another name"
err_has "HTTP 409 conflict"

ctl "${G[@]}" device list --json
expect 0 "device list --json"
[ "$(json 'len(j["devices"])')" = 1 ] || fail "device list --json: one device expected"
[ "$(json 'j["devices"][0]["ek_sha256"]')" = "$EK1" ] || fail "device list --json: full EK"
DEV1=$(json 'j["devices"][0]["id"]')

# --- fleet policies ------------------------------------------------------------------
ctl "${G[@]}" policy create edge --models 'llama3:8b,gpt-4o*' --cost-ceiling 2.5 \
    --token-lifetime 120 --threshold requests_per_minute=20:quarantine --source-cidr 10.0.0.0/8
expect 0 "policy create"
out_has "version: 1"
out_has '"models":["gpt-4o*","llama3:8b"]'
ctl "${G[@]}" policy create edge --models x
expect 1 "policy create twice"
err_has "HTTP 409"
ctl "${G[@]}" policy update edge --models 'llama3:8b' --json
expect 0 "policy update"
[ "$(json 'j["version"], j["policy"]["tokens"]["models"]')" = "(2, ['llama3:8b'])" ] ||
    fail "policy update: version 2 with its models expected"
ctl "${G[@]}" policy show edge --version 1 --json
expect 0 "policy show --version 1"
[ "$(json 'j["version"], j["policy"]["tokens"]["lifetime_seconds"]')" = "(1, 120)" ] ||
    fail "policy show --version 1: the first version expected"
ctl "${G[@]}" policy show edge
expect 0 "policy show (current)"
out_has "version: 2"
ctl "${G[@]}" policy list
expect 0 "policy list"
out_has "NAME"
grep -qE '^edge +2 ' <<<"$OUT" || fail "policy list: edge at version 2 expected"
grep -qE '^default +1 ' <<<"$OUT" || fail "policy list: default at version 1 expected"
ctl "${G[@]}" device set-policy "$DEV1" edge
expect 0 "device set-policy"
out_has "follows policy edge (version 2"
ctl "${G[@]}" device set-policy "$DEV1" nosuch
expect 1 "device set-policy to an unknown policy"
err_has "HTTP 404"

# --- measured boot: reference values from a golden device's logs ---------------------
LOGS=$here/../../firmware/tests/data
ctl "${G[@]}" policy create golden --models x --from-eventlog "$LOGS/event-gce-ubuntu-2104-log.bin" \
    --json
expect 0 "policy create --from-eventlog"
[ "$(json 'len(j["policy"]["measured_boot"]["ipl"]), j["policy"]["measured_boot"]["pcrs"]')" = \
    "(73, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14])" ] ||
    fail "policy create --from-eventlog: the GCE log's 73 IPL digests and PCRs expected"
# a rollout: the new golden log's digests added, the rest of the version kept
ctl "${G[@]}" policy update golden --from-eventlog "$LOGS/event-moklisttrusted.bin" --json
expect 0 "policy update --from-eventlog"
[ "$(json 'j["version"], j["policy"]["tokens"]["models"], len(j["policy"]["measured_boot"]["ipl"]) > 73, j["policy"]["measured_boot"]["secure_boot"]')" = \
    "(2, ['x'], True, True)" ] ||
    fail "policy update --from-eventlog: version 2, models kept, IPL digests added expected"
ctl "${G[@]}" policy update golden --from-eventlog "$LOGS/event-moklisttrusted.bin" \
    --replace-reference --json
expect 0 "policy update --from-eventlog --replace-reference"
[ "$(json 'j["version"], len(j["policy"]["measured_boot"]["ipl"])')" = "(3, 55)" ] ||
    fail "policy update --replace-reference: the new log's 55 IPL digests alone expected"
# a new models list keeps the measured_boot section; --replace-reference alone drops it
ctl "${G[@]}" policy update golden --models y --json
expect 0 "policy update --models keeps measured_boot"
[ "$(json 'j["version"], j["policy"]["tokens"]["models"], len(j["policy"]["measured_boot"]["ipl"])')" = \
    "(4, ['y'], 55)" ] || fail "policy update --models: the measured_boot section kept expected"
ctl "${G[@]}" policy update golden --models y --replace-reference --json
expect 0 "policy update --models --replace-reference"
[ "$(json 'j["version"], "measured_boot" in j["policy"]')" = "(5, False)" ] ||
    fail "policy update --replace-reference: no measured_boot section expected"
ctl "${G[@]}" policy update golden --from-eventlog "$LOGS/event-uefi-sha1-log.bin"
expect 2 "policy update --from-eventlog with a SHA-1-only log"
err_has "does not carry a SHA-256 digest"
ctl "${G[@]}" policy update golden
expect 2 "policy update without --models or --from-eventlog"
err_has "--models or --from-eventlog is required"
ctl "${G[@]}" policy create bad --models x --frobnicate 1
expect 2 "policy create with a bad flag"
ctl "${G[@]}" policy create bad --models x --threshold requests_per_minute=20:explode
expect 2 "policy create with a bad threshold action"
err_has "ACTION is alert or quarantine"
ctl "${G[@]}" policy create bad --models x --token-lifetime 5
expect 1 "policy create with a document fleetd refuses"
err_has "HTTP 400"
err_has "lifetime_seconds"
ctl "${G[@]}" policy show bad
expect 1 "a refused policy was not written"

printf 'ek_sha256,name\n%s,gw2\n%s,gw3\n%s,gw1\n' "$EK2" "$EK3" "$EK1" >"$WORK/good.csv"
ctl "${G[@]}" device import "$WORK/good.csv"
expect 0 "device import"
out_has "2 devices newly allowed, 1 already allowed"
ctl "${G[@]}" device import "$WORK/good.csv" --json
expect 0 "device import again (idempotent)"
[ "$(json 'j["created"], j["unchanged"]')" = "(0, 3)" ] || fail "import again changed something"

printf 'ek_sha256,name\n%s,gw9\nnot-hex,gw10\n%s\n' "$EK9" "$EK2" >"$WORK/bad.csv"
ctl "${G[@]}" device import "$WORK/bad.csv"
expect 1 "device import with bad rows"
err_has "HTTP 400 invalid_request"
err_has "tetherctl: $WORK/bad.csv:3: ek_sha256 must be 64 hex digits"
err_has "tetherctl: $WORK/bad.csv:4: "
ctl "${G[@]}" --json device import - <"$WORK/bad.csv"
expect 1 "device import --json from stdin with bad rows"
[ "$(json '[e["line"] for e in j["errors"]]')" = "[3, 4]" ] || fail "import --json: errors by line"
printf 'ek_sha256,name\n%s,gw9\n%s,renamed\n' "$EK9" "$EK2" >"$WORK/conflict.csv"
ctl "${G[@]}" device import "$WORK/conflict.csv"
expect 1 "device import conflicting with a known device"
err_has "HTTP 409 conflict"
err_has "conflict.csv:3: "
ctl "${G[@]}" device import "$WORK/none.csv"
expect 2 "device import of a missing file"

ctl "${G[@]}" device list --json
[ "$(json 'len(j["devices"])')" = 3 ] || fail "refused imports applied rows"
[ "$(json 'sorted(d["name"] for d in j["devices"])')" = "['gw1', 'gw2', 'gw3']" ] ||
    fail "device names after the imports"
pass "nothing of a refused import was applied"

ctl "${G[@]}" device list
expect 0 "device list (table)"
head -n 1 <<<"$OUT" | grep -qE '^ID +NAME +STATUS +EK SHA-256 +UPDATED$' || fail "table header"
[ "$(wc -l <<<"$OUT")" = 4 ] || fail "table: a header and 3 rows expected"
grep -qE "^$DEV1 +gw1 +allowed +1111111111111111… +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" <<<"$OUT" ||
    fail "table row of gw1 (EK shortened to 16 digits and …)"
# Columns line up: every line has the NAME column at the same offset.
[ "$(awk '{ print index($0, $2) }' <<<"$OUT" | sort -u | wc -l)" = 1 ] || fail "columns not aligned"
pass "device list table: aligned, EK shortened"

ctl "${G[@]}" device show "$DEV1"
expect 0 "device show"
out_has "id: $DEV1"
out_has "name: gw1"
out_has "status: allowed"
out_has "ek sha256: $EK1"
ctl "${G[@]}" device show dev_000000000000000000000000
expect 1 "device show of an unknown device"
err_has "HTTP 404 not_found"
ctl "${G[@]}" device show "../admin/tokens"
expect 2 "device show with a path in the id"

# --- admin tokens and roles ---------------------------------------------------------
new_token() { # NAME ROLES FILE
    ctl "${G[@]}" token create --role "$2" --name "$1"
    expect 0 "token create $1 ($2)"
    [ "$(wc -l <<<"$OUT")" = 1 ] || fail "token create printed more than the token"
    grep -qE '^tthr_adm_[0-9A-Za-z]{38}$' <<<"$OUT" || fail "token create: not a tthr_adm_ token"
    printf '%s\n' "$OUT" >"$3"
    chmod 600 "$3"
    SECRETS+=("$OUT")
}
new_token reader read "$WORK/read.token"
new_token soc security,read "$WORK/security.token"
R=(--fleet "$URL" --ca "$DIR/ca.pem" --token-file "$WORK/read.token")
S=(--fleet "$URL" --ca "$DIR/ca.pem" --token-file "$WORK/security.token")

ctl "${R[@]}" device revoke "$DEV1" --reason stolen
expect 1 "a read token cannot revoke"
err_has "HTTP 403 insufficient_scope"
ctl "${R[@]}" device list
expect 0 "a read token lists devices"
ctl "${S[@]}" token create --role fleet --name escalate
expect 1 "no role escalation through token create"
err_has "HTTP 403"

ctl "${G[@]}" token list
expect 0 "token list (table)"
head -n 1 <<<"$OUT" | grep -qE '^ID +NAME +ROLES +CREATED +REVOKED$' || fail "token table header"
out_has "read,security"
ctl "${G[@]}" token list --json
expect 0 "token list --json"
[ "$(json 'len(j["tokens"])')" = 3 ] || fail "three admin tokens expected"
READ_ID=$(json '[t["id"] for t in j["tokens"] if t["name"] == "reader"][0]')
ctl "${G[@]}" token revoke "$READ_ID"
expect 0 "token revoke"
out_has "admin token $READ_ID revoked"
ctl "${R[@]}" device list
expect 1 "a revoked token is refused"
err_has "HTTP 401 invalid_token"
ctl "${G[@]}" token revoke "$READ_ID"
expect 1 "token revoke twice"
err_has "HTTP 409"
ctl "${G[@]}" token list --json
[ "$(json '[t["revoked_at"] is not None for t in j["tokens"] if t["id"] == '"$READ_ID"'][0]')" = True ] ||
    fail "token list does not show the revocation"

# --- revoke, quarantine, reinstate ------------------------------------------------
ctl "${S[@]}" device revoke "$DEV1" --reason "laptop stolen"
expect 0 "device revoke"
out_has "is now revoked"
ctl "${G[@]}" device show "$DEV1"
out_has "status: revoked"
out_has "status reason: laptop stolen"
ctl "${S[@]}" device revoke "$DEV1" --reason again
expect 1 "device revoke twice"
err_has "HTTP 409 conflict: the device is already revoked"
ctl "${S[@]}" device reinstate "$DEV1"
expect 0 "device reinstate (default reason)"
ctl "${G[@]}" device show "$DEV1" --json
[ "$(json 'j["status"], j["allow_reenroll"]')" = "('allowed', True)" ] || fail "reinstated device"
ctl "${S[@]}" device quarantine "$DEV1" --reason "counter went back"
expect 0 "device quarantine"
ctl "${G[@]}" device show "$DEV1"
out_has "status: quarantined"
out_has "status reason: counter went back"
ctl "${G[@]}" device revoke "$DEV1" --reason "x$(printf '\001')"
expect 1 "a reason the fleet refuses"
err_has "HTTP 400 invalid_request"

# --- bootstrap tokens, alerts ------------------------------------------------------
ctl "${G[@]}" bootstrap create
expect 0 "bootstrap create (defaults)"
[ "$(wc -l <<<"$OUT")" = 1 ] || fail "bootstrap create printed more than the token"
grep -qE '^tthr_boot_[0-9A-Za-z]{38}$' <<<"$OUT" || fail "bootstrap create: not a tthr_boot_ token"
BOOT=$OUT
[ -z "$ERR" ] || fail "bootstrap create wrote to stderr"
ctl "${G[@]}" bootstrap create --ttl 15m --uses 3 --json
expect 0 "bootstrap create --ttl 15m --uses 3 --json"
[ "$(json 'j["uses"]')" = 3 ] || fail "bootstrap uses"
[ "$(json 'j["token"].startswith("tthr_boot_")')" = True ] || fail "bootstrap --json token"
ctl "${G[@]}" bootstrap create --ttl 30s
expect 1 "bootstrap TTL under the fleet's minimum"
err_has "HTTP 400"
ctl "${R[@]}" bootstrap create
expect 1 "bootstrap create with a revoked token"

ctl "${S[@]}" alerts
expect 0 "alerts (none yet)"
head -n 1 <<<"$OUT" | grep -qE '^ID +DEVICE +KIND +CREATED +DETAILS$' || fail "alerts header"
ctl "${S[@]}" alerts --after 0 --json
expect 0 "alerts --after 0 --json"
[ "$(json 'j["alerts"]')" = "[]" ] || fail "alerts: empty list expected"
ctl "${G[@]}" alerts --after x
expect 2 "alerts with a bad cursor"
# fleetd records alerts itself (clone detection); here one is planted.
sql "INSERT INTO alerts (device_id, kind, details, created_at)
     VALUES ('$DEV1', 'clone', '{\"counter\": [7, 5]}', 1714564800)"
ctl "${S[@]}" alerts
expect 0 "alerts (one)"
grep -qE "^1 +$DEV1 +clone +2024-05-01T12:00:00Z +\{\"counter\":\[7,5\]\}$" <<<"$OUT" ||
    fail "alerts table row"
ctl "${S[@]}" alerts --after 1 --json
expect 0 "alerts --after 1"
[ "$(json 'len(j["alerts"])')" = 0 ] || fail "alerts --after 1: none expected"
ctl "${R[@]}" alerts
expect 1 "alerts with a revoked read token"

# --- the last-token rule; the offline recovery beside the running fleetd -----------
ctl "${G[@]}" token list --json
ADMIN_ID=$(json '[t["id"] for t in j["tokens"] if t["name"] == "initial admin"][0]')
ctl "${S[@]}" token revoke "$ADMIN_ID"
expect 1 "revoking the last active token with the fleet role"
err_has "HTTP 409 conflict: this is the last active admin token with the fleet role"
ctl "${G[@]}" device list
expect 0 "the token kept works"
RC=0
OUT=$("$FLEETD" admin-token --dir "$DIR" --roles fleet,security --name recovered 2>"$WORK/err") || RC=$?
ERR=$(cat "$WORK/err")
expect 0 "tether-fleetd admin-token while fleetd runs"
grep -qE '^tthr_adm_[0-9A-Za-z]{38}$' <<<"$OUT" || fail "admin-token: not a tthr_adm_ token"
err_has "minted on the fleet host"
printf '%s\n' "$OUT" >"$WORK/recovered.token"
chmod 600 "$WORK/recovered.token"
SECRETS+=("$OUT")
ctl --fleet "$URL" --ca "$DIR/ca.pem" --token-file "$WORK/recovered.token" token list
expect 0 "the minted token administers the running fleet"
ctl "${S[@]}" alerts --json
[ "$(json '(lambda a: (a["kind"], a["device_id"], a["details"]["name"], a["details"]["roles"]))(j["alerts"][-1])')" = \
    "('admin_token_minted', None, 'recovered', 'fleet,security')" ] || fail "admin-token: no audit alert"
RECOVERED_ID=$(json 'j["alerts"][-1]["details"]["token_id"]')
ctl "${S[@]}" alerts
out_has "admin_token_minted"
ctl "${S[@]}" token revoke "$RECOVERED_ID"
expect 0 "a token with a twin for each role may be revoked"

# --- configuration: environment, precedence, token files ----------------------------
RC=0
OUT=$(TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token \
    timeout 30 "$CTL" device list --json 2>"$WORK/err") || RC=$?
ERR=$(cat "$WORK/err")
expect 0 "settings from the environment"
[ "$(json 'len(j["devices"])')" = 3 ] || fail "environment: device list"
DOWN_PORT=$(free_port)
RC=0
OUT=$(TETHER_FLEET_URL=https://127.0.0.1:$DOWN_PORT TETHER_CA=$WORK/other/ca.pem \
    TETHER_ADMIN_TOKEN_FILE=$WORK/read.token \
    timeout 30 "$CTL" "${G[@]}" device list 2>"$WORK/err") || RC=$?
ERR=$(cat "$WORK/err")
expect 0 "flags win over the environment"

ctl "${G[@]:0:4}" --token-file <(cat "$WORK/admin.token") device list
expect 0 "the token from a pipe"
cp "$WORK/admin.token" "$WORK/open.token"
chmod 644 "$WORK/open.token"
ctl "${G[@]:0:4}" --token-file "$WORK/open.token" device list
expect 2 "a token file others can read is refused"
err_has "chmod 600"
ctl "${G[@]:0:4}" --token-file "$WORK/missing.token" device list
expect 2 "a missing token file"
err_has "cannot open the admin token file $WORK/missing.token"
printf 'tthr_adm_not-a-token\n' >"$WORK/bad.token"
chmod 600 "$WORK/bad.token"
ctl "${G[@]:0:4}" --token-file "$WORK/bad.token" device list
expect 2 "a token file without a token"
err_has "does not hold one admin token"

# --- connection failures -------------------------------------------------------------
ctl --fleet "$URL" --ca "$WORK/other/ca.pem" --token-file "$WORK/admin.token" device list
expect 3 "the wrong CA"
err_has "certificate is not signed by the CA in $WORK/other/ca.pem"
ctl --fleet "$URL" --ca "$WORK/bad.csv" --token-file "$WORK/admin.token" device list
expect 2 "a CA file that is not PEM"
ctl --fleet "https://127.0.0.1:$DOWN_PORT" --ca "$DIR/ca.pem" --token-file "$WORK/admin.token" \
    device list
expect 3 "the fleet is down"
err_has "refused"
ctl --fleet "http://127.0.0.1:$PORT" --ca "$DIR/ca.pem" --token-file "$WORK/admin.token" device list
expect 2 "a URL that is not https"

# --- secrets stay secret ----------------------------------------------------------
stop_fleetd
ctl "${G[@]}" device list
expect 3 "the fleet stopped"
for secret in "$ADMIN" "$(cat "$WORK/read.token")" "$(cat "$WORK/security.token")" "$BOOT"; do
    if grep -qF "$secret" "$WORK/fleetd.log"; then fail "a token was logged by fleetd"; fi
    if store_holds "$secret"; then
        fail "a token is stored in the clear"
    fi
done
pass "no token in the fleet's log or database"

echo "all tetherctl checks passed"
