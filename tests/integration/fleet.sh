#!/usr/bin/env bash
# Helpers shared by the integration tests that run a real tether-fleetd
# (fleetd_admin.sh, tetherctl.sh, revocation.sh, enroll.sh, exchange.sh).
#
# Source this file after setting FLEETD; the functions below read the
# script's WORK (its scratch directory), DIR (the fleet directory), PORT and
# PID (the running tether-fleetd) at call time, and call the script's own
# fail MESSAGE, which reports and exits.
#   require_tools TOOL...    exits unless every TOOL is on PATH
#   scratch_fleet NAME       sets WORK (a new scratch directory), DIR and an
#                            empty PID, with a trap that kills PID and
#                            removes WORK at exit
#   free_port                prints a free loopback TCP port
#   kill_pids PID...         SIGKILLs and reaps each PID still running
#   pass MESSAGE             "ok - MESSAGE", counted in passed
#   log_tail NAME FILE N     the last N lines of a log, on stderr
#   json_get JSON EXPR       a Python expression on JSON parsed (as d and j)
#   sql SQL                  sqlite3 on the fleet's database (psql on its
#                            PostgreSQL store, the same '|'-separated rows)
#   sql_in DIR SQL           the same on the fleet in DIR
#   db_snapshot              every row of the fleet's store, as text
#   store_holds TEXT         whether TEXT is anywhere in the fleet's store
#   start_fleetd [DIR PORT LOG PIDVAR]
#                            starts tether-fleetd, waits for /v1/health
#   sigterm_wait PID         SIGTERM, then up to 10 s for PID to exit
#   enroll NAME TCTI STATE-DIR [AGENT-OPTIONS...]
#                            tether-agent enroll ($AGENT) with $URL and
#                            $DIR/ca.pem; output in $WORK/NAME.out/.err, its
#                            exit status in RC

# TETHER_TEST_STORE=postgresql (the *_pg tests, run under postgres.sh run):
# FLEETD becomes fleetd_pg.sh, which gives every fleet the test inits a
# fresh database on the test's PostgreSQL server.
if [ "${TETHER_TEST_STORE:-sqlite}" = postgresql ]; then
    if [ -z "${TETHER_TEST_PG_URL:-}" ]; then
        echo "FAIL: TETHER_TEST_STORE=postgresql runs under tests/integration/postgres.sh run"
        exit 1
    fi
    export TETHER_TEST_FLEETD_BIN=$FLEETD
    FLEETD=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/fleetd_pg.sh
fi

require_tools() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null; then
            echo "FAIL: $tool is not installed (scripts/bootstrap.sh installs it)"
            exit 1
        fi
    done
}

scratch_fleet() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-$1-test.XXXXXX")
    DIR=$WORK/fleet
    PID=
    trap 'kill_pids "$PID"; rm -rf "$WORK"' EXIT
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# kill_pids PID...: for cleanup at exit; empty PIDs are skipped.
kill_pids() {
    local p
    for p in "$@"; do
        if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
}

passed=0
pass() {
    echo "ok - $*"
    passed=$((passed + 1))
}

# log_tail NAME FILE LINES: for fail; a missing FILE prints only the heading.
log_tail() {
    echo "--- $1 log (tail):" >&2
    tail -n "$3" "$2" >&2 2>/dev/null || true
}

# json_get JSON EXPR: prints EXPR evaluated by Python with the parsed JSON
# bound to both d and j.
json_get() { python3 -c 'import json, sys; d = j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

sql() { sql_in "$DIR" "$@"; }

# sql_in FLEET-DIR SQL: sql on another fleet's store.
sql_in() {
    if [ "${TETHER_TEST_STORE:-sqlite}" = postgresql ]; then
        psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$(sed -n 's/^store = //p' "$1/fleetd.conf")" \
            -c "$2"
    else
        sqlite3 -cmd ".timeout 5000" "$1/fleet.db" "$2"
    fi
}

# db_snapshot: every row of the fleet's store as text, to compare before
# and after a refusal (on PostgreSQL each table's rows sorted, without the
# sequences, which a rolled-back insert advances).
db_snapshot() {
    if [ "${TETHER_TEST_STORE:-sqlite}" = postgresql ]; then
        local table
        for table in $(sql "SELECT table_name FROM information_schema.tables
                            WHERE table_schema = 'public' ORDER BY table_name"); do
            echo "[$table]"
            sql "SELECT r::text FROM \"$table\" r ORDER BY 1"
        done
    else
        sql .dump
    fi
}

# store_holds TEXT: whether TEXT is stored anywhere in the fleet's store
# (the SQLite file and its WAL, or any row of the PostgreSQL database).
store_holds() {
    if [ "${TETHER_TEST_STORE:-sqlite}" = postgresql ]; then
        db_snapshot | grep -qF "$1"
    else
        grep -qF "$1" "$DIR/fleet.db" "$DIR"/fleet.db-wal 2>/dev/null
    fi
}

# start_fleetd [DIR PORT LOG PIDVAR]: runs tether-fleetd on DIR (default
# $DIR) with its stderr appended to LOG (default $WORK/fleetd.log), stores
# its pid in the variable PIDVAR (default PID) at once, so that cleanup finds
# it, and returns once https://127.0.0.1:PORT/v1/health (default $PORT)
# answers; fails if it exits or does not answer within 10 s.
start_fleetd() {
    local dir=${1:-$DIR} port=${2:-$PORT} log=${3:-$WORK/fleetd.log} pidvar=${4:-PID} pid
    "$FLEETD" run --dir "$dir" 2>>"$log" &
    pid=$!
    printf -v "$pidvar" %s "$pid"
    for _ in $(seq 1 100); do
        if curl -s --max-time 1 --cacert "$dir/ca.pem" "https://127.0.0.1:$port/v1/health" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "tether-fleetd exited at start"
        sleep 0.1
    done
    fail "tether-fleetd did not answer within 10 s"
}

# sigterm_wait PID: sends SIGTERM and polls up to 10 s for PID to exit. It
# does not reap PID: the caller waits for it and judges its exit status.
sigterm_wait() {
    kill -TERM "$1"
    for _ in $(seq 1 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
}

enroll() {
    local name=$1 tcti=$2 state=$3
    shift 3
    RC=0
    "$AGENT" enroll --tcti "$tcti" --state-dir "$state" --fleet "$URL" --ca "$DIR/ca.pem" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" || RC=$?
}

# fleet_with_device: a fresh fleet in $DIR on a free port (PORT, URL, PID
# set; its admin token exported as tetherctl reads it) and the test's swtpm
# allowed and enrolled into $WORK/state. Needs FLEETD, CTL, AGENT.
fleet_with_device() {
    PORT=$(free_port)
    URL=https://127.0.0.1:$PORT
    "$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" \
        --ek-ca "$TETHER_TEST_SWTPM_CA/swtpm-localca-rootca-cert.pem" \
        --ek-ca "$TETHER_TEST_SWTPM_CA/issuercert.pem" >"$WORK/admin.token"
    chmod 600 "$WORK/admin.token"
    export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
    start_fleetd
    local ek
    ek=$("$AGENT" selftest --tcti "$TETHER_TEST_TCTI" | sed -n 's/^EK SHA-256: *//p')
    "$CTL" device allow --ek-sha256 "$ek" --name device >/dev/null
    "$AGENT" enroll --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --fleet "$URL" \
        --ca "$DIR/ca.pem" >"$WORK/enroll.out" 2>&1 || fail "enrol: $(cat "$WORK/enroll.out")"
}

# wait_agent_token SOCKET: sets TOKEN to the token the agent AGENT_PID
# serves on SOCKET, within 10 s.
wait_agent_token() {
    TOKEN=
    for _ in $(seq 1 100); do
        TOKEN=$("$AGENT" token --socket "$1" 2>/dev/null) && break
        kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent exited"
        sleep 0.1
    done
    [ -n "$TOKEN" ] || fail "no token from the agent within 10 s"
}

# token_binding: JKT and JTI of $TOKEN, from its claims once its signature
# verified with the fleet's JWKS (jwt_tool.py, through openssl).
token_binding() {
    local claims
    curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json" >"$WORK/jwks.json"
    claims=$(python3 "$here/jwt_tool.py" verify "$WORK/jwks.json" "$TOKEN") ||
        fail "the token's signature does not verify with the fleet's JWKS: $claims"
    JKT=$(json_get "$claims" 'd["claims"]["cnf"]["jkt"]')
    JTI=$(json_get "$claims" 'd["claims"]["jti"]')
}

# --- a device behind tether-gate (gate_usage_mismatch.sh, gate_threshold.sh) ----------------

# start_upstream: openai_upstream.py in the background (UPID), its port in
# $WORK/upstream.port, and the provider key file $WORK/provider.key.
start_upstream() {
    python3 "$here/openai_upstream.py" "$WORK/upstream.port" "$WORK/received.jsonl" \
        2>"$WORK/upstream.log" &
    UPID=$!
    for _ in $(seq 100); do [ -s "$WORK/upstream.port" ] && break; sleep 0.05; done
    [ -s "$WORK/upstream.port" ] || fail "the stand-in upstream did not start"
    printf 'sk-provider-test-key\n' >"$WORK/provider.key"
    chmod 600 "$WORK/provider.key"
}

# gate_init DIR PORT REPORT_SECONDS: a tether-gate directory in front of
# the upstream, on 127.0.0.1:PORT, reporting usage every REPORT_SECONDS
# with the relying-party token in $WORK/rp.token.
gate_init() {
    "$GATE" init --dir "$1" --listen "127.0.0.1:$2" --fleet "$URL" \
        --fleet-ca "$DIR/ca.pem" --rp-token-file "$WORK/rp.token" \
        --upstream "http://127.0.0.1:$(cat "$WORK/upstream.port")/v1" \
        --upstream-key-file "$WORK/provider.key" --audience tether --models 'gpt-4o*' \
        --price gpt-4o-mini=0.15:0.6 >/dev/null || fail "tether-gate init $1"
    sed -i -e "s/^usage_report_seconds = .*/usage_report_seconds = $3/" \
        -e "s|^public_url = .*|public_url = http://127.0.0.1:$2|" "$1/gate.conf"
    grep -q "^usage_report_seconds = $3$" "$1/gate.conf" || fail "gate.conf: usage_report_seconds"
}

# start_ai_agent GATE_PORT: tether-agent in the background (AGENT_PID) on
# the socket $SOCK with its AI endpoint on $AI_PORT in front of the gateway
# on GATE_PORT, until it holds a token.
start_ai_agent() {
    "$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$SOCK" \
        --ai-listen "127.0.0.1:$AI_PORT" --ai-upstream "http://127.0.0.1:$1/v1" \
        2>>"$WORK/agent.log" &
    AGENT_PID=$!
    wait_agent_token "$SOCK"
}

CHAT_BODY='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'
# ai_chat: a chat through the agent's AI endpoint on $AI_PORT: the HTTP status.
ai_chat() {
    curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$CHAT_BODY" "http://127.0.0.1:$AI_PORT/v1/chat/completions" ||
        echo curl-failed
}
# exchange_now: SIGHUP to the agent AGENT_PID, then until it holds a token
# other than TOKEN (or is refused): its state in STATE, the token in TOKEN.
exchange_now() {
    local old=$TOKEN
    kill -HUP "$AGENT_PID"
    for _ in $(seq 100); do
        STATE=$(json_get "$("$AGENT" token --socket "$SOCK" --status)" 'j["state"]')
        [ "$STATE" = refused ] && return 0
        TOKEN=$("$AGENT" token --socket "$SOCK" 2>/dev/null || true)
        [ -n "$TOKEN" ] && [ "$TOKEN" != "$old" ] && return 0
        sleep 0.1
    done
    fail "no new token 10 s after SIGHUP"
}

# await_quarantine_refused WHAT: device DEV quarantined within 5 s (after
# WHAT, for the message), then ai_chat until the gateway refuses it:
# refused_ms, from tetherctl seeing the quarantine, at most 1000.
await_quarantine_refused() {
    local quarantined_ns=
    for _ in $(seq 100); do
        if [ "$(json_get "$("$CTL" --json device show "$DEV")" 'j["status"]')" = quarantined ]; then
            quarantined_ns=$(date +%s%N)
            break
        fi
        sleep 0.05
    done
    [ -n "$quarantined_ns" ] || fail "the device is not quarantined 5 s after $1: $("$CTL" --json device show "$DEV")"
    refused_ms=
    for _ in $(seq 200); do
        RC=$(ai_chat)
        if [ "$RC" != 200 ]; then
            refused_ms=$((($(date +%s%N) - quarantined_ns) / 1000000))
            break
        fi
        sleep 0.02
    done
    [ -n "$refused_ms" ] && [ "$refused_ms" -le 1000 ] ||
        fail "the gateway still serves the device ${refused_ms:-4000+} ms after its quarantine: HTTP $RC"
}

# ai_ready: ai_chat until the chain answers (the gateway has the fleet's
# keys and feed); the last status in RC.
ai_ready() {
    for _ in $(seq 100); do
        RC=$(ai_chat)
        [ "$RC" = 503 ] || [ "$RC" = curl-failed ] || break
        sleep 0.1
    done
}

# --- a webhook receiver (webhook_receiver.py) and alerts for it: for suites
# that set here, FLEETD, DIR, WORK and RPORT and define fail ---------------------

# start_receiver [OPTIONS...]: the receiver on RPORT, its lines appended to
# $WORK/received.jsonl; returns once it listens.
start_receiver() {
    rm -f "$WORK/receiver.port"
    python3 "$here/webhook_receiver.py" --secret "$DIR/webhook.key" --log "$WORK/received.jsonl" \
        --port-file "$WORK/receiver.port" --port "$RPORT" "$@" 2>>"$WORK/receiver.err" &
    RECEIVER=$!
    for _ in $(seq 1 50); do
        [ -s "$WORK/receiver.port" ] && return 0
        sleep 0.1
    done
    fail "the webhook receiver did not start"
}
stop_receiver() {
    kill -TERM "$RECEIVER"
    wait "$RECEIVER" || true
    RECEIVER=
}

# mint: an admin token minted on the host, which writes an alert; prints
# the alert's id.
mint() {
    "$FLEETD" admin-token --dir "$DIR" --roles read --name "probe-$1" >/dev/null 2>>"$WORK/mint.err"
    sql "SELECT max(id) FROM alerts"
}

# received ID [STATUS]: how many requests for delivery ID were answered
# STATUS (default 200; "held": held unanswered, webhook_receiver.py --hold).
received() {
    python3 - "$WORK/received.jsonl" "$1" "${2:-200}" <<'EOF'
import json, sys
path, delivery, status = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    lines = [json.loads(l) for l in open(path)]
except FileNotFoundError:
    lines = []
print(sum(1 for l in lines if l["delivery_id"] == delivery and
          (l["held"] if status == "held" else l["status"] == int(status))))
EOF
}

# wait_delivered ID SECONDS: polls until delivery ID was answered 200.
wait_delivered() {
    for _ in $(seq 1 $(($2 * 10))); do
        [ "$(received "$1")" -ge 1 ] && return 0
        sleep 0.1
    done
    fail "delivery $1 did not arrive within $2 s"
}
