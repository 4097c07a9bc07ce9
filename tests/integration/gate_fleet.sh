# Shared by tests/integration/gateway.sh and gateway_proxy_e2e.sh (sourced
# after fleet.sh, with FLEETD, CTL, NODE_DIR, DIR, WORK, here and fail set).
#   gate_install_jose FILE...  the npm "jose" package into NODE_DIR (once),
#                              and the test's node scripts FILE... beside it
#   gate_start_fleet           a new fleet in DIR on a free PORT (URL), run;
#                              tetherctl set up by the environment, and a
#                              relying-party token in $WORK/rp.token

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
