#!/usr/bin/env bash
# Integration test of a stock relying party: Apache httpd with
# mod_auth_openidc (Debian's apache2 and libapache2-mod-auth-openidc) as the
# resource server in front of a static backend, against a real
# tether-fleetd (real TLS on free loopback ports, real SQLite; no TPM).
#
#   introspection (AuthType oauth20, OIDCOAuthIntrospectionEndpoint), with
#   the relying party authenticating as an OAuth client both ways RFC 6749
#   section 2.3.1 allows: client_secret_basic and client_secret_post. A
#   revoked device's tokens are refused: one never seen before at once, one
#   the module had cached within OIDCOAuthTokenIntrospectionInterval (1 s).
#
#   local JWKS verification (OIDCOAuthVerifyJwksUri): accepted until exp,
#   revocation or not; that is what the fleetd README says.
#
# Tokens of the fleet are signed with its issuer key file, with their
# issued_tokens rows (jwt_tool.py; the exchange itself is exchange.sh's).
# usage: relying_party_apache.sh PATH/TO/tether-fleetd PATH/TO/tetherctl
set -euo pipefail

FLEETD=${1:?usage: relying_party_apache.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
CTL=${2:?usage: relying_party_apache.sh PATH/TO/tether-fleetd PATH/TO/tetherctl}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 sqlite3 openssl timeout
APACHE=$(command -v apache2 || echo /usr/sbin/apache2)
MODULES=/usr/lib/apache2/modules
[ -x "$APACHE" ] && [ -f "$MODULES/mod_auth_openidc.so" ] ||
    { echo "FAIL: apache2 and libapache2-mod-auth-openidc are not installed (scripts/bootstrap.sh installs them)"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-apache-test.XXXXXX")
DIR=$WORK/fleet
A=$WORK/apache
PID=
HTTPD=
cleanup() {
    [ -n "$HTTPD" ] && kill -TERM "$HTTPD" 2>/dev/null && sigterm_wait "$HTTPD"
    kill_pids "$HTTPD" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
RC=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last request: HTTP $RC $OUT" >&2
    log_tail fleetd "$WORK/fleetd.log" 20
    log_tail apache "$A/error.log" 40
    exit 1
}

PORT=$(free_port)
URL=https://127.0.0.1:$PORT
ctl() { timeout 60 "$CTL" "$@"; }

# --- the fleet, the relying party's credentials, three devices ---------------------
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd
ctl --json token create --role relying-party --name apache >"$WORK/rp.json"
RP_ID=$(json_get "$(cat "$WORK/rp.json")" 'j["id"]')
RP_TOKEN=$(json_get "$(cat "$WORK/rp.json")" 'j["token"]')
rm "$WORK/rp.json"
for name in basic post jwks; do
    ctl device allow --ek-sha256 "$(printf '%s' "$name" | sha256sum | cut -c1-64)" --name "$name" >/dev/null
done
sql "UPDATE devices SET status = 'active'"
device() { sql "SELECT id FROM devices WHERE name = '$1'"; }
KID=$(json_get "$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json")" 'j["keys"][0]["kid"]')
ISSUER=$(json_get "$(curl -sS --max-time 10 --cacert "$DIR/ca.pem" "$URL/.well-known/oauth-authorization-server")" 'j["issuer"]')
# token DEVICE JTI EXP: a token of the fleet for DEVICE, recorded as issued.
token() {
    sql "INSERT INTO issued_tokens (jti, device_id, issued_at, exp) VALUES ('$2', '$1', $(($3 - 300)), $3)"
    python3 "$here/jwt_tool.py" sign "$DIR/issuer-key.pem" "$KID" \
        "$(python3 "$here/jwt_tool.py" claims "$ISSUER" "$1" "$2" "$3")"
}

# --- Apache: one virtual host per way of checking tokens -----------------------------
P_BASIC=$(free_port)
P_POST=$(free_port)
P_JWKS=$(free_port)
mkdir -p "$A/htdocs/api" "$A/run"
echo "hello from the backend" >"$A/htdocs/api/hello.txt"
cp "$DIR/ca.pem" "$A/ca.pem"
# Apache's workers drop to another user when started as root: they read
# the backend and the CA through WORK.
chmod 711 "$WORK"
chmod -R a+rX "$A/htdocs" "$A/ca.pem"
user=
[ "$(id -u)" = 0 ] && user="User nobody
Group $(id -gn nobody)"
introspection_host() { # PORT AUTH
    cat <<CONF
<VirtualHost 127.0.0.1:$1>
    OIDCOAuthIntrospectionEndpoint $URL/v1/introspect
    OIDCOAuthIntrospectionEndpointAuth $2
    OIDCOAuthClientID $RP_ID
    OIDCOAuthClientSecret $RP_TOKEN
    OIDCOAuthTokenExpiryClaim exp absolute mandatory
    <Location /api/>
        AuthType oauth20
        Require valid-user
        OIDCOAuthTokenIntrospectionInterval 1
    </Location>
</VirtualHost>
CONF
}
cat >"$A/httpd.conf" <<CONF
ServerName 127.0.0.1
ServerRoot $A
PidFile $A/httpd.pid
DefaultRuntimeDir $A/run
ErrorLog $A/error.log
LogLevel warn auth_openidc:info
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authn_core_module $MODULES/mod_authn_core.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule authz_user_module $MODULES/mod_authz_user.so
LoadModule auth_openidc_module $MODULES/mod_auth_openidc.so
$user
Listen 127.0.0.1:$P_BASIC
Listen 127.0.0.1:$P_POST
Listen 127.0.0.1:$P_JWKS
DocumentRoot $A/htdocs
OIDCCABundlePath $A/ca.pem
OIDCOAuthSSLValidateServer On
OIDCOAuthRemoteUserClaim sub
$(introspection_host "$P_BASIC" client_secret_basic)
$(introspection_host "$P_POST" client_secret_post)
<VirtualHost 127.0.0.1:$P_JWKS>
    OIDCOAuthVerifyJwksUri $URL/.well-known/jwks.json
    <Location /api/>
        AuthType oauth20
        Require valid-user
    </Location>
</VirtualHost>
CONF
chmod 600 "$A/httpd.conf" # the relying party's secret
"$APACHE" -d "$A" -f "$A/httpd.conf" -t 2>"$A/configtest.log" || { cat "$A/configtest.log" >&2; fail "apache2 -t refused the configuration"; }
"$APACHE" -d "$A" -f "$A/httpd.conf" -DFOREGROUND 2>>"$A/error.log" &
HTTPD=$!
for _ in $(seq 1 100); do
    curl -s --max-time 1 -o /dev/null "http://127.0.0.1:$P_JWKS/" && break
    kill -0 "$HTTPD" 2>/dev/null || fail "apache2 exited at start"
    sleep 0.1
done

# get PORT [TOKEN]: the backend through Apache; sets RC and OUT.
get() {
    local auth=()
    [ -n "${2:-}" ] && auth=(-H "Authorization: Bearer $2")
    RC=$(curl -sS --max-time 20 -o "$WORK/body" -w '%{http_code}' "${auth[@]}" \
        "http://127.0.0.1:$1/api/hello.txt") || RC=curl-failed
    OUT=$(cat "$WORK/body" 2>/dev/null || true)
}
accepted() { get "$@"; [ "$RC" = 200 ] && [ "$OUT" = "hello from the backend" ]; }
refused() { get "$@"; [ "$RC" = 401 ]; }
# refused_within SECONDS PORT TOKEN: polls until refused; prints the seconds it took.
refused_within() {
    local start
    start=$(date +%s)
    until refused "$2" "$3"; do
        [ $(($(date +%s) - start)) -le "$1" ] || return 1
        sleep 0.2
    done
    echo $(($(date +%s) - start))
}

EXP=$(($(date +%s) + 300))

# --- introspection, both client authentications ---------------------------------------
for mode in basic post; do
    port=P_${mode^^}
    port=${!port}
    dev=$(device "$mode")
    seen=$(token "$dev" "${mode}0000000000000000000000000001" "$EXP")
    unseen=$(token "$dev" "${mode}0000000000000000000000000002" "$EXP")
    refused "$port" || fail "$mode: no token: HTTP $RC"
    refused "$port" "not-a-token" || fail "$mode: garbage: HTTP $RC"
    accepted "$port" "$seen" || fail "$mode: a live token: HTTP $RC"
    accepted "$port" "$seen" || fail "$mode: a live token again: HTTP $RC"
    pass "client_secret_$mode: Apache introspects with the relying party's client id and secret: 200 for a live token, 401 without one"
    ctl device revoke "$dev" --reason "apache test ($mode)" >/dev/null
    refused "$port" "$unseen" || fail "$mode: a token of the revoked device, never seen before: HTTP $RC"
    pass "client_secret_$mode: a token of a revoked device is refused at once"
    took=$(refused_within 3 "$port" "$seen") ||
        fail "$mode: the cached token of a revoked device is still accepted after 3 s"
    pass "client_secret_$mode: the token the module had cached is refused within OIDCOAuthTokenIntrospectionInterval ($took s)"
done
grep -q "path=/v1/introspect status=200" "$WORK/fleetd.log" || fail "fleetd answered no introspection"
! grep -q "path=/v1/introspect status=40" "$WORK/fleetd.log" || fail "fleetd refused an introspection request"

# --- local JWKS verification: until exp --------------------------------------------------
dev=$(device jwks)
long=$(token "$dev" jwks000000000000000000000000001 "$EXP")
short=$(token "$dev" jwks000000000000000000000000002 $(($(date +%s) + 4)))
refused "$P_JWKS" || fail "jwks: no token: HTTP $RC"
accepted "$P_JWKS" "$long" || fail "jwks: a live token: HTTP $RC"
accepted "$P_JWKS" "$short" || fail "jwks: a token about to expire: HTTP $RC"
forged=$(python3 "$here/jwt_tool.py" sign "$DIR/tls-key.pem" "$KID" \
    "$(python3 "$here/jwt_tool.py" claims "$ISSUER" "$dev" jwks000000000000000000000000003 "$EXP")")
refused "$P_JWKS" "$forged" || fail "jwks: a token signed with another key: HTTP $RC"
ctl device revoke "$dev" --reason "apache test (jwks)" >/dev/null
accepted "$P_JWKS" "$long" || fail "jwks: HTTP $RC"
pass "OIDCOAuthVerifyJwksUri: a revoked device's token is still accepted (no introspection: it holds until exp)"
refused_within 10 "$P_JWKS" "$short" >/dev/null || fail "jwks: a token past its exp is still accepted"
pass "OIDCOAuthVerifyJwksUri: refused once exp has passed"
echo "# $passed checks passed"
