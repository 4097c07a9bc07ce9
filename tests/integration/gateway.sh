#!/usr/bin/env bash
# Integration test of tether-gate against a real tether-fleetd (real TLS on
# loopback, real SQLite; no TPM): init, check, run; every refusal of a
# request with its status and tether error code; /authz for nginx
# auth_request (gateway/examples/nginx.conf, with Debian's nginx in front of
# a tiny backend) and Envoy ext_authz; key rotation without a restart; a
# revocation seen within a second; server nonces; a stale feed; HTTPS.
#
# Access tokens are signed here with the fleet's own issuer key file (a
# stand-in for the attested exchange, which needs a TPM), carrying a cnf.jkt
# of a key this test holds; DPoP proofs are made by the npm "jose" package
# (installed into NODE_DIR by npm on first use).
# usage: gateway.sh tether-fleetd tetherctl tether-gate NODE_DIR
set -euo pipefail

FLEETD=${1:?usage: gateway.sh tether-fleetd tetherctl tether-gate NODE_DIR}
CTL=${2:?usage: gateway.sh tether-fleetd tetherctl tether-gate NODE_DIR}
GATE=${3:?usage: gateway.sh tether-fleetd tetherctl tether-gate NODE_DIR}
NODE_DIR=${4:?usage: gateway.sh tether-fleetd tetherctl tether-gate NODE_DIR}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 node npm nginx timeout

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-gateway-test.XXXXXX")
DIR=$WORK/fleet
GDIR=$WORK/gate
PID=
GPID=
NGINX_PID=
BPID=
# nginx's workers outlive a master killed with SIGKILL: it is asked to stop.
stop_nginx() {
    if [ -n "$NGINX_PID" ]; then
        kill -TERM "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
        NGINX_PID=
    fi
}
cleanup() {
    stop_nginx
    kill_pids "$GPID" "$PID" "$BPID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
RC=
HEADERS=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last: $RC $OUT" >&2
    log_tail fleetd "$WORK/fleetd.log" 10
    log_tail tether-gate "$WORK/gate.log" 20
    exit 1
}

# --- the JOSE library -------------------------------------------------------------
. "$here/gate_fleet.sh"
gate_install_jose "$here/gate_client.mjs"
jose() { node "$NODE_DIR/gate_client.mjs" "$@"; }

# --- the fleet --------------------------------------------------------------------
gate_start_fleet
"$CTL" device allow --ek-sha256 "$(printf 'a%.0s' $(seq 64))" --name device-a >/dev/null
"$CTL" device allow --ek-sha256 "$(printf 'b%.0s' $(seq 64))" --name device-b >/dev/null
DEVICES=$("$CTL" --json device list)
DEV_A=$(json_get "$DEVICES" '[d["id"] for d in j["devices"] if d["name"] == "device-a"][0]')
DEV_B=$(json_get "$DEVICES" '[d["id"] for d in j["devices"] if d["name"] == "device-b"][0]')
KID=$(json_get "$(curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json")" 'j["keys"][0]["kid"]')

# --- keys and tokens ----------------------------------------------------------------
JKT=$(jose keygen "$WORK/device.jwk")
jose keygen "$WORK/other.jwk" >/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/forger.pem" 2>/dev/null
AUD=tether-gate
# claims SUB JTI EXP [AUD]: what fleetd issues, bound to the device key.
claims() {
    python3 -c 'import json, sys, time
sub, jti, exp, iss, aud, jkt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
now = int(time.time())
print(json.dumps({"iss": iss, "sub": sub, "aud": aud, "client_id": sub, "scope": "ai.inference",
                  "iat": min(now, exp - 60), "nbf": min(now, exp - 60), "exp": exp, "jti": jti,
                  "cnf": {"jkt": jkt},
                  "tether": {"counter": 1, "policy": "default", "models": ["*"], "cost_ceiling": 0}}))' \
        "$1" "$2" "$3" "$URL" "${4:-$AUD}" "$JKT"
}
EXP=$(($(date +%s) + 600))
TOKEN_A=$(jose token "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_A" aaaa0001 "$EXP")")
TOKEN_A2=$(jose token "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_A" aaaa0002 "$EXP")")
EXPIRED=$(jose token "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_A" aaaa0003 $(($(date +%s) - 120)))")
WRONG_AUD=$(jose token "$DIR/issuer-key.pem" "$KID" "$(claims "$DEV_A" aaaa0004 "$EXP" other-gateway)")
FORGED=$(jose token "$WORK/forger.pem" "$KID" "$(claims "$DEV_A" aaaa0005 "$EXP")")

# --- init, check --------------------------------------------------------------------
GPORT=$(free_port)
GURL=http://127.0.0.1:$GPORT
GATE_TLS=() # curl's options for the gateway: none while it serves plain HTTP
"$GATE" --help | grep -q "usage: tether-gate COMMAND" || fail "tether-gate --help"
for cmd in init run check; do
    "$GATE" "$cmd" --help | grep -q "usage: tether-gate $cmd" || fail "tether-gate $cmd --help"
done
pass "--help for tether-gate and each command"
"$GATE" init --dir "$GDIR" --listen "127.0.0.1:$GPORT" --fleet "$URL" --fleet-ca "$DIR/ca.pem" \
    --rp-token-file "$WORK/rp.token" --upstream http://127.0.0.1:9/v1 --audience "$AUD" \
    --models 'gpt-4o*,llama-*' --requests-per-minute 60 --spend-per-day 5.50 \
    --price gpt-4o-mini=0.15:0.6 >/dev/null || fail "init"
RC=0; OUT=$("$GATE" init --dir "$GDIR" --listen "127.0.0.1:$GPORT" --fleet "$URL" \
    --fleet-ca "$DIR/ca.pem" --rp-token-file "$WORK/rp.token" --upstream http://127.0.0.1:9/v1 2>&1) || RC=$?
[ "$RC" = 1 ] && grep -q "never replaced" <<<"$OUT" || fail "init over an existing configuration"
grep -q '^price = gpt-4o-mini=0.15:0.6$' "$GDIR/gate.conf" && grep -q '^spend_per_day = 5.5$' "$GDIR/gate.conf" &&
    grep -q '^models = gpt-4o\*,llama-\*$' "$GDIR/gate.conf" || fail "init did not write the flags"
"$GATE" check --dir "$GDIR" | grep -q ": ok$" || fail "check of what init wrote"
pass "init writes a configuration that check accepts, and never replaces one"
chmod 644 "$WORK/rp.token"
RC=0; OUT=$("$GATE" check --dir "$GDIR" 2>&1) || RC=$?
[ "$RC" = 1 ] && grep -q "rp.token: must be owned by this user (uid [0-9]*) with mode 0600 or 0400" <<<"$OUT" ||
    fail "check with a readable RP token file"
grep -q tthr_adm <<<"$OUT" && fail "check printed the RP token"
chmod 600 "$WORK/rp.token"
cp "$GDIR/gate.conf" "$WORK/gate.conf.good"
printf 'bogus_key = 1\n' >>"$GDIR/gate.conf"
RC=0; OUT=$("$GATE" check --dir "$GDIR" 2>&1) || RC=$?
LINES=$(wc -l <"$GDIR/gate.conf")
[ "$RC" = 1 ] && grep -qF "gate.conf:$LINES: unknown key 'bogus_key' in [policy default]" <<<"$OUT" ||
    fail "check names the bad line: $OUT"
cp "$WORK/gate.conf.good" "$GDIR/gate.conf"
pass "check: the secret file's mode (never its content), FILE:LINE: message"

# --- run ----------------------------------------------------------------------------
# start_gate: runs tether-gate on GDIR and waits for it to answer.
start_gate() {
    "$GATE" run --dir "$GDIR" 2>>"$WORK/gate.log" &
    GPID=$!
    for _ in $(seq 1 100); do
        curl -s --max-time 1 "${GATE_TLS[@]}" -o /dev/null "$GURL/authz" && return 0
        kill -0 "$GPID" 2>/dev/null || fail "tether-gate exited at start"
        sleep 0.1
    done
    fail "tether-gate did not answer within 10 s"
}
stop_gate() {
    sigterm_wait "$GPID"
    kill -0 "$GPID" 2>/dev/null && fail "tether-gate did not stop within 10 s of SIGTERM"
    wait "$GPID" || fail "tether-gate exited with status $?"
    GPID=
}

# authz METHOD PATH TOKEN PROOF [CURL ARGS...]: the Envoy form (POST
# /authz/PATH); sets RC, OUT, HEADERS. An empty TOKEN or PROOF is not sent.
authz() {
    local method=$1 path=$2 token=$3 proof=$4
    shift 4
    local args=()
    [ -n "$token" ] && args+=(-H "Authorization: DPoP $token")
    [ -n "$proof" ] && args+=(-H "DPoP: $proof")
    RC=$(curl -sS --max-time 10 "${GATE_TLS[@]}" -X "$method" -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' \
        "${args[@]}" "$@" "$GURL/authz$path") || RC=curl-failed
    OUT=$(cat "$WORK/body")
    HEADERS=$(tr -d '\r' <"$WORK/headers")
}
proof() { jose proof "$@"; }
# refused STATUS CODE WHAT: the last answer was STATUS with tether_error CODE.
refused() {
    [ "$RC" = "$1" ] || fail "$3: expected HTTP $1, got $RC"
    [ "$(json_get "$OUT" 'j["tether_error"]')" = "$2" ] || fail "$3: expected $2"
    pass "$3: $1 $2"
}
chat=/v1/chat/completions

# first_answer: a request of device A once the gateway has the fleet's keys
# and the feed's first answer (503 until then, right after its start).
first_answer() {
    for _ in $(seq 1 50); do
        authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A")"
        [ "$RC" = 503 ] || break
        sleep 0.2
    done
}

start_gate
first_answer
[ "$RC" = 200 ] || fail "a valid token and proof: HTTP $RC"
grep -qi "^X-Tether-Device: $DEV_A$" <<<"$HEADERS" && grep -qi "^X-Tether-Policy: default$" <<<"$HEADERS" ||
    fail "the allowed answer lacks X-Tether-Device or X-Tether-Policy"
pass "Envoy ext_authz form: 200 with X-Tether-Device and X-Tether-Policy"

# nginx auth_request form.
P=$(proof "$WORK/device.jwk" GET "$GURL/v1/models" "$TOKEN_A")
RC=$(curl -sS -o "$WORK/body" -w '%{http_code}' -H "Authorization: DPoP $TOKEN_A" -H "DPoP: $P" \
    -H "X-Original-Method: GET" -H "X-Original-URI: /v1/models?limit=5" "$GURL/authz")
[ "$RC" = 200 ] || fail "nginx auth_request form: HTTP $RC"
pass "nginx auth_request form: 200 (the query is not part of htu)"
RC=$(curl -sS -o "$WORK/body" -w '%{http_code}' -H "Authorization: DPoP $TOKEN_A" -H "DPoP: $P" "$GURL/authz")
OUT=$(cat "$WORK/body")
refused 400 authz_no_original_request "auth_request without X-Original-*"

# --- every refusal --------------------------------------------------------------------
authz POST $chat "" ""
refused 401 token_missing "no Authorization"
grep -q '^WWW-Authenticate: DPoP algs="ES256"$' <<<"$HEADERS" || fail "challenge without a token"
authz POST $chat "$FORGED" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$FORGED")"
refused 401 token_bad_signature "a forged token (another key under the fleet's kid)"
grep -q '^WWW-Authenticate: DPoP error="invalid_token", error_description="[^"]*", algs="ES256"$' <<<"$HEADERS" ||
    fail "the challenge of a bad token: $HEADERS"
authz POST $chat "$EXPIRED" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$EXPIRED")"
refused 401 token_expired "an expired token"
authz POST $chat "$WRONG_AUD" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$WRONG_AUD")"
refused 401 token_wrong_audience "a token for another audience"
authz POST $chat "$TOKEN_A" ""
refused 401 dpop_missing "a DPoP token without a proof"
[ "$(json_get "$OUT" 'j["error"]')" = invalid_dpop_proof ] || fail "dpop_missing's OAuth error"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/other.jwk" POST "$GURL$chat" "$TOKEN_A")"
refused 401 dpop_wrong_key "a proof by another key"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" GET "$GURL$chat" "$TOKEN_A")"
refused 401 dpop_wrong_htm "a proof for another method"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL/v1/embeddings" "$TOKEN_A")"
refused 401 dpop_wrong_htu "a proof for another URL"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A" -300)"
refused 401 dpop_stale "a proof with an old iat"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A2")"
refused 401 dpop_wrong_ath "a proof for another token"
P=$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A")
authz POST $chat "$TOKEN_A" "$P"
[ "$RC" = 200 ] || fail "a fresh proof: HTTP $RC"
authz POST $chat "$TOKEN_A" "$P"
refused 401 dpop_replayed "the same proof again (replayed jti)"
RC=$(curl -sS -o "$WORK/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN_A" "$GURL/authz$chat")
OUT=$(cat "$WORK/body")
refused 401 bearer_not_allowed "the token as a bearer token"
grep -q tthr_adm "$WORK/gate.log" && fail "the log holds the RP token"
grep -qF "${TOKEN_A:0:40}" "$WORK/gate.log" && fail "the log holds an access token"
pass "the log holds no token"

# --- key rotation without a restart -------------------------------------------------------
"$CTL" key rotate >/dev/null || fail "tetherctl key rotate"
NEW_KID=$(json_get "$(curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json")" \
    '[k["kid"] for k in j["keys"] if k["kid"] != "'"$KID"'"][0]')
NEW_KEY=$(ls "$DIR"/issuer-keys/"$NEW_KID".pem)
TOKEN_NEW=$(jose token "$NEW_KEY" "$NEW_KID" "$(claims "$DEV_A" aaaa0010 "$EXP")")
authz POST $chat "$TOKEN_NEW" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_NEW")"
[ "$RC" = 200 ] || fail "a token of the rotated key: HTTP $RC $OUT"
pass "tetherctl key rotate: a token of the new key passes without a restart"
# The retired key is published only while tokens fleetd issued with it
# live; the test's tokens are not in its database, so new ones use the new key.
TOKEN_B=$(jose token "$NEW_KEY" "$NEW_KID" "$(claims "$DEV_B" bbbb0001 "$EXP")")
TOKEN_A=$TOKEN_NEW

# --- revocation within a second ------------------------------------------------------------
authz POST $chat "$TOKEN_B" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_B")"
[ "$RC" = 200 ] || fail "device B before its revocation: HTTP $RC"
# Proofs made ahead, so the loop below measures the gateway, not node.
for i in $(seq 1 20); do proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_B" >"$WORK/proof.$i"; done
"$CTL" device revoke "$DEV_B" --reason "gateway test" >/dev/null || fail "device revoke"
START=$(python3 -c 'import time; print(time.time())')
SEEN=
for i in $(seq 1 20); do
    authz POST $chat "$TOKEN_B" "$(cat "$WORK/proof.$i")"
    if [ "$RC" = 401 ]; then SEEN=$i; break; fi
    sleep 0.1
done
[ -n "$SEEN" ] || fail "device B still passes 2 s after its revocation"
refused 401 device_revoked "device B after tetherctl device revoke"
python3 -c 'import sys, time; print("# revoke -> refused at the gateway: %.0f ms (bound 2000)" % ((time.time() - float(sys.argv[1])) * 1000))' "$START"

# --- nginx auth_request in front (gateway/examples/nginx.conf) -------------------------------
stop_gate
NPORT=$(free_port)
BPORT=$(free_port)
NURL=http://127.0.0.1:$NPORT
sed -i "s|^public_url = .*|public_url = $NURL|" "$GDIR/gate.conf"
start_gate
# A tiny backend that answers with the request headers it received.
python3 -c 'import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$BPORT" &
BPID=$!
for _ in $(seq 1 50); do
    curl -s --max-time 1 -o /dev/null -X POST "http://127.0.0.1:$BPORT/" && break
    sleep 0.1
done
mkdir -p "$WORK/nginx/logs"
sed -e "s/127.0.0.1:8480/127.0.0.1:$GPORT/; s/127.0.0.1:8000/127.0.0.1:$BPORT/; s/listen 127.0.0.1:8080/listen 127.0.0.1:$NPORT/" \
    "$here/../../gateway/examples/nginx.conf" >"$WORK/nginx/nginx.conf"
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" \
    -g "daemon off; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/logs/error.log;" \
    </dev/null >/dev/null 2>&1 &
NGINX_PID=$!
for _ in $(seq 1 50); do
    curl -s --max-time 1 -o /dev/null "$NURL/v1/" && break
    sleep 0.1
done
# via_nginx TOKEN PROOF: POST /v1/chat/completions through nginx.
via_nginx() {
    RC=$(curl -sS --max-time 10 -X POST -D "$WORK/headers" -o "$WORK/body" -w '%{http_code}' \
        -H "Authorization: DPoP $1" ${2:+-H "DPoP: $2"} "$NURL$chat") || RC=curl-failed
    OUT=$(cat "$WORK/body")
    HEADERS=$(tr -d '\r' <"$WORK/headers")
}
via_nginx "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$NURL$chat" "$TOKEN_A")"
[ "$RC" = 200 ] || { tail -n 5 "$WORK/nginx/logs/error.log" >&2; fail "through nginx: HTTP $RC"; }
[ "$(json_get "$OUT" 'j.get("x-tether-device")')" = "$DEV_A" ] || fail "the backend got no X-Tether-Device: $OUT"
[ "$(json_get "$OUT" '"authorization" in j or "dpop" in j')" = False ] ||
    fail "the device's credentials reached the backend: $OUT"
pass "nginx auth_request: the backend answers, sees X-Tether-Device, never the token or proof"
via_nginx "$TOKEN_A" ""
[ "$RC" = 401 ] || fail "through nginx without a proof: HTTP $RC"
grep -q '^WWW-Authenticate: DPoP error="invalid_dpop_proof"' <<<"$HEADERS" ||
    fail "nginx did not pass the DPoP challenge on: $HEADERS"
via_nginx "$TOKEN_B" "$(proof "$WORK/device.jwk" POST "$NURL$chat" "$TOKEN_B")"
[ "$RC" = 401 ] || fail "a revoked device through nginx: HTTP $RC"
pass "nginx auth_request: 401 with the DPoP challenge without a proof, and for a revoked device"
stop_nginx
kill_pids "$BPID"

# --- server nonces -----------------------------------------------------------------------------
stop_gate
sed -i "s|^public_url = .*|public_url = $GURL|" "$GDIR/gate.conf"
sed -i 's/^dpop_nonce = no$/dpop_nonce = yes/; s/^feed_staleness_seconds = 60$/feed_staleness_seconds = 5/' "$GDIR/gate.conf"
start_gate
first_answer
[ "$RC" = 401 ] && [ "$(json_get "$OUT" 'j["error"]')" = use_dpop_nonce ] || fail "no nonce: HTTP $RC $OUT"
refused 401 dpop_nonce_required "a proof without the server's nonce"
NONCE=$(sed -n 's/^DPoP-Nonce: //Ip' <<<"$HEADERS")
[ -n "$NONCE" ] || fail "use_dpop_nonce without a DPoP-Nonce header"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A" 0 "${NONCE:0:40}x")"
refused 401 dpop_nonce_required "a proof with a forged nonce"
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A" 0 "$NONCE")"
[ "$RC" = 200 ] || fail "a proof with the server's nonce: HTTP $RC $OUT"
grep -qi '^DPoP-Nonce: ' <<<"$HEADERS" || fail "no fresh nonce with the answer"
pass "a proof with the server's nonce passes, and the answer carries a fresh one"

# --- the feed goes stale ---------------------------------------------------------------------
sigterm_wait "$PID"
wait "$PID" 2>/dev/null || true
PID=
sleep 7
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A" 0 "$NONCE")"
refused 503 revocation_feed_stale "fleetd unreachable beyond feed_staleness_seconds"
grep -qi '^Retry-After: ' <<<"$HEADERS" || fail "503 without Retry-After"

# --- HTTPS with a certificate and key ---------------------------------------------------------
stop_gate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$GDIR/gate-key.pem" -out "$GDIR/gate-cert.pem" 2>/dev/null
GURL=https://127.0.0.1:$GPORT
GATE_TLS=(--cacert "$GDIR/gate-cert.pem")
sed -i "s|^# tls_cert = .*|tls_cert = gate-cert.pem|; s|^# tls_key = .*|tls_key = gate-key.pem|; s|^public_url = .*|public_url = $GURL|" \
    "$GDIR/gate.conf"
"$GATE" check --dir "$GDIR" | grep -q ": ok$" || fail "check with tls_cert and tls_key"
start_gate
authz POST $chat "$TOKEN_A" "$(proof "$WORK/device.jwk" POST "$GURL$chat" "$TOKEN_A" 0 "$NONCE")"
refused 503 fleet_keys_unavailable "over HTTPS (tls_cert, tls_key), started while the fleet is down"
stop_gate
pass "tether-gate stops on SIGTERM"
echo "# $passed checks passed"
