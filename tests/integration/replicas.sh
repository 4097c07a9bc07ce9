#!/usr/bin/env bash
# Two tether-fleetd replicas on one PostgreSQL store, every part a real
# process: one init, two run processes on two ports sharing the fleet
# directory's keys (a copy of it, the listen port changed, one issuer),
# swtpm TPMs, tetherctl, tether-agent, exchange_probe.
#   - a device and its clone (a copy of the TPM state) exchanging at the same
#     moment, one on each replica: exactly one accepted, the device
#     quarantined;
#   - a revocation made on replica A answers a long poll waiting on replica B;
#   - a one-use bootstrap token presented on both replicas at once enrols
#     one device only;
#   - an issuer key rotated on A is published and signs on B within a few
#     seconds (the replicas share the fleet directory's keys);
#   - one webhook receiver (webhook_receiver.py) and both replicas sending:
#     every alert is delivered once; the replica whose delivery the
#     receiver holds unanswered is SIGKILLed, and the other delivers it
#     once the claim's lease ends;
#   - replica B SIGKILLed while devices exchange through both: no accepted
#     counter is lost (the store's highest counter of each device is the one
#     its last accepted exchange got) and the devices carry on through A.
#   postgres.sh run replicas.sh FLEETD TETHERCTL AGENT PROBE
set -euo pipefail

FLEETD=$1 CTL=$2 AGENT=$3 PROBE=$4
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../../scripts/swtpm.sh"
export TETHER_TEST_STORE=postgresql
. "$here/fleet.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-replicas-test.XXXXXX")
DIR=$WORK/fleet
DIR_B=$WORK/fleet-b
PID=
PID_B=
RECEIVER=
SWTPM_PIDS=()
BACKGROUND=()
cleanup() {
    kill_pids "$PID" "$PID_B" "$RECEIVER" "${BACKGROUND[@]}" "${SWTPM_PIDS[@]}"
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "not ok - $*" >&2
    log_tail "fleetd A" "$WORK/fleetd.log" 15
    log_tail "fleetd B" "$WORK/fleetd-b.log" 15
    log_tail receiver "$WORK/received.jsonl" 15
    echo "replicas: $passed passed, 1 failed"
    exit 1
}

require_tools curl python3 psql ss

# new_tpm NAME: a fresh swtpm with its own manufacturer CA; sets TCTI_<NAME>.
new_tpm() {
    swtpm_start "$WORK/tpm-$1" >/dev/null || fail "swtpm $1"
    SWTPM_PIDS+=("$SWTPM_PID")
    eval "TCTI_$1=\$SWTPM_TCTI PID_$1=\$SWTPM_PID"
    cp "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" "$WORK/ca-$1-root.pem"
    cp "$SWTPM_CA_DIR/issuercert.pem" "$WORK/ca-$1-issuer.pem"
    EK_CAS+=(--ek-ca "$WORK/ca-$1-root.pem" --ek-ca "$WORK/ca-$1-issuer.pem")
}

# enrol NAME URL [AGENT-OPTIONS]: enrols TPM NAME through URL into
# $WORK/state-NAME; sets DEV_NAME, RC.
enrol() {
    local name=$1 url=$2 tcti
    shift 2
    eval "tcti=\$TCTI_$name"
    RC=0
    "$AGENT" enroll --tcti "$tcti" --state-dir "$WORK/state-$name" --fleet "$url" \
        --ca "$DIR/ca.pem" "$@" >"$WORK/enroll-$name.out" 2>&1 || RC=$?
    eval "DEV_$name=\$(sed -n 's/^enrolled: device \\([^ ]*\\) .*/\\1/p' \"\$WORK/enroll-$name.out\")"
}

allow() {
    local tcti ek
    eval "tcti=\$TCTI_$1"
    ek=$("$AGENT" selftest --tcti "$tcti" | sed -n 's/^EK SHA-256: *//p')
    "$CTL" device allow --ek-sha256 "$ek" --name "device-$1" >/dev/null
}

# exchange NAME [STATE]: one exchange; OUT's first word: ok/refused/...
exchange() {
    local tcti
    eval "tcti=\$TCTI_$1"
    OUT=$("$PROBE" "$tcti" exchange "${2:-$WORK/state-$1}" 2>&1) || true
}

# point STATE URL: the agent state directory talks to URL from now on.
point() {
    python3 - "$1/device.json" "$2" <<'PY'
import json, sys
state = json.load(open(sys.argv[1]))
state["fleet_url"] = sys.argv[2]
json.dump(state, open(sys.argv[1], "w"))
PY
}

device_status() { sql "SELECT status FROM devices WHERE id = '$1'"; }

# --- one fleet, two replicas -----------------------------------------------------
EK_CAS=()
for name in D E F G H I; do new_tpm $name; done
PORT=$(free_port)
PORT_B=$(free_port)
RPORT=$(free_port)
URL=https://127.0.0.1:$PORT
URL_B=https://127.0.0.1:$PORT_B
"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" "${EK_CAS[@]}" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
grep -q '^store = postgresql://' "$DIR/fleetd.conf" || fail "init did not write the store line"
# One issuer for both: a token from either replica is the fleet's.
echo "issuer = $URL" >>"$DIR/fleetd.conf"
# One webhook for both, every alert of the suite delivered to it.
echo "webhook = name=security url=http://127.0.0.1:$RPORT/hook secret=webhook.key" \
    >>"$DIR/fleetd.conf"
openssl rand -hex 32 >"$DIR/webhook.key"
chmod 600 "$DIR/webhook.key"
start_receiver
cp -a "$DIR" "$DIR_B"
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT_B/" "$DIR_B/fleetd.conf"
export TETHER_FLEET_URL=$URL TETHER_CA=$DIR/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
start_fleetd
start_fleetd "$DIR_B" "$PORT_B" "$WORK/fleetd-b.log" PID_B
"$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
pass "two replicas on one PostgreSQL store"

# The offline recovery finds the store through fleetd.conf.
"$FLEETD" admin-token --dir "$DIR" --roles read --name recovery >"$WORK/recovery.token" ||
    fail "admin-token on a PostgreSQL fleet"
grep -q '^tthr_adm_' "$WORK/recovery.token" || fail "admin-token printed no token"
[ "$(sql "SELECT count(*) FROM alerts WHERE kind = 'admin_token_minted'")" = 1 ] ||
    fail "the recovery token's audit alert is not in the store"
[ "$(sql "SELECT roles FROM admin_tokens WHERE name = 'recovery'")" = read ] ||
    fail "the recovery token is not in the store"
pass "tether-fleetd admin-token mints into the PostgreSQL store"

# --- a device and its clone at the same moment, one on each replica ----------------
allow D
enrol D "$URL"
[ "$RC" -eq 0 ] || fail "enrol D: $(cat "$WORK/enroll-D.out")"
exchange D
[ "${OUT%% *}" = ok ] || fail "D's first exchange: $OUT"
# The clone: a copy of the TPM state and of the agent state, talking to B.
TPM2TOOLS_TCTI=$TCTI_D TSS2_LOG=all+NONE tpm2_shutdown || fail "TPM2_Shutdown on D"
kill -TERM "$PID_D"
wait "$PID_D" 2>/dev/null || true
mkdir -p "$WORK/tpm-D2"
cp -a "$WORK/tpm-D/state" "$WORK/tpm-D2/"
cp -a "$WORK/state-D" "$WORK/state-D2"
point "$WORK/state-D2" "$URL_B"
swtpm_launch "$WORK/tpm-D" || fail "restart swtpm D"
SWTPM_PIDS+=("$SWTPM_PID")
TCTI_D=$SWTPM_TCTI
swtpm_launch "$WORK/tpm-D2" || fail "clone swtpm"
SWTPM_PIDS+=("$SWTPM_PID")
TCTI_D2=$SWTPM_TCTI
( exchange D; echo "$OUT" >"$WORK/race-original" ) &
race_a=$!
( exchange D2 "$WORK/state-D2"; echo "$OUT" >"$WORK/race-clone" ) &
race_b=$!
wait "$race_a" "$race_b" || true
original=$(cat "$WORK/race-original")
clone=$(cat "$WORK/race-clone")
accepted=0
for out in "$original" "$clone"; do
    [ "${out%% *}" = ok ] && accepted=$((accepted + 1))
done
[ "$accepted" = 1 ] || fail "the race accepted $accepted exchanges: A: $original / B: $clone"
[ "$(device_status "$DEV_D")" = quarantined ] || fail "device D not quarantined after the race"
# The loser is refused as a clone: its counter is not above the winner's
# (clone_detected), or its TPM clock is behind the winner's
# (clock_regression), whichever its evidence shows first.
[ "$(sql "SELECT count(*) FROM alerts WHERE device_id = '$DEV_D'
          AND kind IN ('clone_detected', 'clock_regression')")" = 1 ] ||
    fail "not one clone alert for D: $(sql "SELECT kind FROM alerts WHERE device_id = '$DEV_D'")"
pass "original and clone at once on two replicas: one accepted, the device quarantined"

# --- a revocation on A is in B's feed -------------------------------------------------
allow E
enrol E "$URL"
[ "$RC" -eq 0 ] || fail "enrol E: $(cat "$WORK/enroll-E.out")"
# A relying party waits on B's feed (a long poll) while the device is
# revoked on A: B reads the store's feed head again at least every second.
head=$(sql "SELECT coalesce(max(seq), 0) FROM revocations")
curl -sS --max-time 30 --cacert "$DIR/ca.pem" -H "Authorization: Bearer $(cat "$WORK/rp.token")" \
    -o "$WORK/poll-b.json" "$URL_B/v1/revocations?after=$head&wait=20" &
poll=$!
BACKGROUND+=("$poll")
sleep 1
"$CTL" device revoke "$DEV_E" --reason "stolen on site A" >/dev/null
wait "$poll" || fail "the long poll on B failed"
BACKGROUND=()
[ "$(json_get "$(cat "$WORK/poll-b.json")" '[r["device_id"] for r in d["revocations"]]')" = \
  "['$DEV_E']" ] || fail "B's long poll did not answer with A's revocation: $(cat "$WORK/poll-b.json")"
pass "a revocation made on replica A answers a long poll waiting on replica B"

# --- a one-use bootstrap token on both replicas at once ---------------------------------
"$CTL" bootstrap create --ttl 10m --uses 1 >"$WORK/boot.token"
cp "$WORK/boot.token" "$WORK/boot-b.token"
( enrol F "$URL" --bootstrap-token-file "$WORK/boot.token"; echo "$RC" >"$WORK/boot-F" ) &
boot_a=$!
( enrol G "$URL_B" --bootstrap-token-file "$WORK/boot-b.token"; echo "$RC" >"$WORK/boot-G" ) &
boot_b=$!
wait "$boot_a" "$boot_b" || true
enrolled=0
for name in F G; do
    [ "$(cat "$WORK/boot-$name")" = 0 ] && enrolled=$((enrolled + 1))
done
[ "$enrolled" = 1 ] || fail "a one-use bootstrap token enrolled $enrolled devices"
[ "$(sql "SELECT uses_left FROM bootstrap_tokens")" = 0 ] || fail "the token has uses left"
[ "$(sql "SELECT count(*) FROM devices WHERE status = 'active'")" = 1 ] ||
    fail "not one active device after the bootstrap race"
pass "a one-use bootstrap token used on both replicas at once enrols one device"

# --- an issuer key rotated on A signs on B ---------------------------------------------
winner=F
[ "$(cat "$WORK/boot-F")" = 0 ] || winner=G
"$CTL" key rotate >/dev/null
kid=$(sql "SELECT kid FROM issuer_keys WHERE retired_at IS NULL")
# The fleet directory's keys are shared by the replicas (here: copied).
cp -a "$DIR/issuer-keys" "$DIR_B/"
jwks_b() { curl -sS --max-time 10 --cacert "$DIR/ca.pem" "$URL_B/.well-known/jwks.json"; }
seen=
for _ in $(seq 1 150); do
    if jwks_b | grep -q "\"$kid\""; then
        seen=1
        break
    fi
    sleep 0.1
done
[ -n "$seen" ] || fail "replica B never published the key rotated on A: $(jwks_b)"
cp -a "$WORK/state-$winner" "$WORK/state-$winner-b"
point "$WORK/state-$winner-b" "$URL_B"
exchange $winner "$WORK/state-$winner-b"
[ "${OUT%% *}" = ok ] || fail "an exchange on B after the rotation: $OUT"
header=$(echo "$OUT" | cut -d' ' -f3 | cut -d. -f1)
python3 - "$header" "$kid" <<'PY' || fail "B signed with another key than the one rotated on A"
import base64, json, sys
header = sys.argv[1] + "=" * (-len(sys.argv[1]) % 4)
sys.exit(0 if json.loads(base64.urlsafe_b64decode(header))["kid"] == sys.argv[2] else 1)
PY
pass "an issuer key rotated on replica A is published and signs on replica B"

# --- webhook deliveries, both replicas sending ------------------------------------------
# Alerts written by another process (admin-token) are found by both
# replicas' senders at their 0.1 s poll, about at once: each delivery is
# claimed by one of them. Every alert of the suite is delivered once.
for i in $(seq 1 20); do mint "both-$i" >/dev/null; done
drained=
for _ in $(seq 1 600); do
    if [ "$(sql "SELECT count(*) FROM webhook_outbox")" = 0 ]; then
        drained=1
        break
    fi
    sleep 0.1
done
[ -n "$drained" ] || fail "the outbox did not drain: $(sql "SELECT count(*) FROM webhook_outbox") left"
sql "SELECT id FROM alerts ORDER BY id" >"$WORK/alert-ids"
python3 - "$WORK/received.jsonl" "$WORK/alert-ids" <<'PY' || fail "not every alert delivered once"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
alerts = sorted("security:" + l.strip() for l in open(sys.argv[2]) if l.strip())
delivered = sorted(l["delivery_id"] for l in lines if l["status"] == 200)
if len(alerts) < 20 or delivered != alerts or any(l["duplicate"] for l in lines):
    sys.exit(f"{len(alerts)} alerts, {len(delivered)} deliveries answered 200, "
             f"{sum(l['duplicate'] for l in lines)} duplicates")
PY
pass "both replicas sending to one webhook: each of $(wc -l <"$WORK/alert-ids") alerts delivered once"

# --- a replica killed mid-delivery ------------------------------------------------------
# The receiver holds its answer to the next delivery; the replica sending it
# (the one connected to the receiver) holds the claim, and the other does not
# send it meanwhile. Killed, its claim ends with the lease (the webhook's
# timeout, 10 s, and 5 s) and the other replica delivers it.
stop_receiver
start_receiver --hold 1
held=security:$(mint held)
for _ in $(seq 1 300); do
    [ "$(received "$held" held)" = 1 ] && break
    sleep 0.1
done
[ "$(received "$held" held)" = 1 ] || fail "delivery $held never reached the receiver"
holder=$(ss -Htnp state established dst "127.0.0.1:$RPORT" | grep -o 'pid=[0-9]*' | head -n 1)
holder=${holder#pid=}
[ -n "$holder" ] && { [ "$holder" = "$PID" ] || [ "$holder" = "$PID_B" ]; } ||
    fail "no replica is connected to the receiver (${holder:-none})"
sleep 2
[ "$(received "$held")" = 0 ] || fail "delivery $held was sent again while its claim was held"
kill -KILL "$holder"
wait "$holder" 2>/dev/null || true
wait_delivered "$held" 60
[ "$(received "$held")" = 1 ] || fail "delivery $held answered 200 $(received "$held") times"
if [ "$holder" = "$PID" ]; then
    PID=
    start_fleetd
else
    PID_B=
    start_fleetd "$DIR_B" "$PORT_B" "$WORK/fleetd-b.log" PID_B
fi
pass "the replica sending a held delivery killed: the other delivered it once its claim ended"

# --- replica B killed while devices exchange through both --------------------------------
# Devices H and I each exchange in a loop, one exchange at a time (a device
# exchanging on two replicas at once is a clone), alternating between A and
# B; B is killed after a few of its exchanges were accepted.
for name in H I; do
    allow $name
    enrol $name "$URL"
    [ "$RC" -eq 0 ] || fail "enrol $name: $(cat "$WORK/enroll-$name.out")"
    cp -a "$WORK/state-$name" "$WORK/state-$name-b"
    point "$WORK/state-$name-b" "$URL_B"
done
load() { # NAME: 60 exchanges, each outcome's first two words to $WORK/load-NAME
    for i in $(seq 1 60); do
        if [ $((i % 2)) = 0 ]; then exchange "$1"; else exchange "$1" "$WORK/state-$1-b"; fi
        echo "$OUT" | cut -d' ' -f1-3 >>"$WORK/load-$1"
    done
}
for name in H I; do
    load $name &
    BACKGROUND+=($!)
done
for _ in $(seq 1 600); do
    [ "$(cat "$WORK"/load-* 2>/dev/null | grep -c '^ok' || true)" -ge 8 ] && break
    sleep 0.1
done
kill -KILL "$PID_B"
wait "$PID_B" 2>/dev/null || true
PID_B=
for name in H I; do echo "killed" >>"$WORK/load-$name"; done
wait "${BACKGROUND[@]}" || true
BACKGROUND=()
for name in H I; do
    eval "dev=\$DEV_$name"
    after=$(sed -n '/^killed/,$p' "$WORK/load-$name" | grep -c '^ok' || true)
    [ "$after" -ge 2 ] || fail "device $name did not carry on through A: $(tail -n 4 "$WORK/load-$name")"
    # Every exchange answered ok was committed: its token is in the store,
    # and the highest counter the store keeps is the newest of them.
    sed -n 's/^ok [0-9]* //p' "$WORK/load-$name" >"$WORK/tokens-$name"
    python3 - "$WORK/tokens-$name" >"$WORK/jtis-$name" <<'PY'
import base64, json, sys
for line in open(sys.argv[1]):
    payload = line.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    print(json.loads(base64.urlsafe_b64decode(payload))["jti"])
PY
    answered=$(wc -l <"$WORK/jtis-$name")
    list=$(sed "s/.*/'&'/" "$WORK/jtis-$name" | paste -sd, -)
    [ "$(sql "SELECT count(*) FROM issued_tokens WHERE jti IN ($list)")" = "$answered" ] ||
        fail "device $name: an accepted exchange's token is not in the store"
    [ "$(sql "SELECT max(counter) FROM issued_tokens WHERE jti IN ($list)")" = \
      "$(sql "SELECT highest_counter FROM devices WHERE id = '$dev'")" ] ||
        fail "device $name: the store's highest counter is not its last accepted exchange's"
    [ "$(device_status "$dev")" = active ] || fail "device $name is $(device_status "$dev")"
done
pass "replica B killed under load: no accepted counter lost, the devices carry on through A"

echo "replicas: $passed passed"
