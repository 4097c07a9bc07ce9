# Shared by tests/integration/gateway.sh and gateway_proxy_e2e.sh (sourced
# after fleet.sh, with FLEETD, CTL, NODE_DIR, DIR, WORK, here and fail set).
#   gate_install_jose FILE...  the npm "jose" package into NODE_DIR (once),
#                              and the test's node scripts FILE... beside it
#   gate_start_fleet           a new fleet in DIR on a free PORT (URL), run;
#                              tetherctl set up by the environment, and a
#                              relying-party token in $WORK/rp.token
#   gate_allow NAME            allows device NAME (EK hash: SHA-256 of NAME);
#                              prints its id
#   gate_token DEVICE JTI POLICY  an access token as fleetd issues them, signed
#                              with the fleet's issuer key file (KID and JKT
#                              set), models "gpt-4o*", "llama3", "text-embedding-*"
#   gate_start_upstream PAUSE  openai_upstream.py pausing PAUSE s between stream
#                              chunks (UPID; requests in $WORK/received.jsonl)
#   gate_init PORT             tether-gate init in GDIR on 127.0.0.1:PORT in front
#                              of it: models gpt-4o* and text-embedding-*, their
#                              prices, the provider key $WORK/provider.key
#   gate_client TOKEN BASE MODE [MODEL]  one request of the device's client
#                              (gate_dpop_client.mjs, key $WORK/device.jwk); its
#                              JSON line in OUT
#   gate_wait_ready TOKEN      until tether-gate (GPID) at GURL has the fleet's
#                              keys and feed: GET /v1/models answered other
#                              than 503 (that answer in OUT); fails after 10 s

. "$here/node_packages.sh"

gate_install_jose() {
    node_install "$NODE_DIR" jose || fail "npm could not install jose into $NODE_DIR"
    cp "$@" "$NODE_DIR/"
}

gate_start_fleet() {
    PORT=$(free_port)
    URL=https://127.0.0.1:$PORT
    "$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >"$WORK/admin.token"
    chmod 600 "$WORK/admin.token"
    export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
    start_fleetd
    "$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
    chmod 600 "$WORK/rp.token"
}

gate_allow() {
    "$CTL" device allow --name "$1" \
        --ek-sha256 "$(python3 -c 'import hashlib, sys; print(hashlib.sha256(sys.argv[1].encode()).hexdigest())' "$1")" \
        >/dev/null
    "$CTL" --json device list | python3 -c 'import json, sys
print([d["id"] for d in json.load(sys.stdin)["devices"] if d["name"] == sys.argv[1]][0])' "$1"
}

gate_token() {
    node "$NODE_DIR/gate_client.mjs" token "$DIR/issuer-key.pem" "$KID" "$(python3 -c '
import json, sys, time
now = int(time.time())
sub, jti, policy, iss, jkt = sys.argv[1:6]
print(json.dumps({"iss": iss, "sub": sub, "aud": "tether-gate", "client_id": sub,
                  "scope": "ai.inference", "iat": now, "nbf": now, "exp": now + 600,
                  "jti": jti, "cnf": {"jkt": jkt},
                  "tether": {"counter": 1, "policy": policy,
                             "models": ["gpt-4o*", "llama3", "text-embedding-*"]}}))' \
        "$1" "$2" "$3" "$URL" "$JKT")"
}

gate_start_upstream() {
    python3 "$here/openai_upstream.py" "$WORK/upstream.port" "$WORK/received.jsonl" \
        --chunk-pause "$1" 2>"$WORK/upstream.log" &
    UPID=$!
    for _ in $(seq 100); do [ -s "$WORK/upstream.port" ] && break; sleep 0.05; done
    [ -s "$WORK/upstream.port" ] || fail "the stand-in did not start"
}

gate_init() {
    printf 'sk-provider-test-key\n' >"$WORK/provider.key"
    chmod 600 "$WORK/provider.key"
    "$GATE" init --dir "$GDIR" --listen "127.0.0.1:$1" --fleet "$URL" --fleet-ca "$DIR/ca.pem" \
        --rp-token-file "$WORK/rp.token" --upstream "http://127.0.0.1:$(cat "$WORK/upstream.port")/v1" \
        --upstream-key-file "$WORK/provider.key" --models 'gpt-4o*,text-embedding-*' \
        --price gpt-4o-mini=0.15:0.6 --price 'text-embedding-3-small=0.02:0' >/dev/null || fail "init"
}

gate_client() { OUT=$(node "$NODE_DIR/gate_dpop_client.mjs" "$WORK/device.jwk" "$@"); }

gate_wait_ready() {
    for _ in $(seq 100); do
        gate_client "$1" "$GURL" models || fail "the client failed"
        [ "$(json_get "$OUT" 'j["status"]')" = 503 ] || return 0
        kill -0 "$GPID" 2>/dev/null || fail "tether-gate exited at start"
        sleep 0.1
    done
    fail "tether-gate did not serve within 10 s"
}
