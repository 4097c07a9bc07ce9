#!/usr/bin/env bash
# The main job: tether end to end on a software TPM, from a fresh machine.
#
# Installs what is missing, builds, starts a software TPM (swtpm, with EK
# certificates from a private local CA) and tether-fleetd on 127.0.0.1,
# enrols the device, runs tether-agent, shows a token obtained and decoded,
# revokes the device and shows introspection flip to inactive, then clones
# the TPM and agent state to a second swtpm and agent and shows the clone
# caught and the device quarantined. Everything is removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/swtpm.sh"

bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'
[ -t 1 ] || bold= dim= off=
step=0
say() { step=$((step + 1)); printf '\n%s%d. %s%s\n' "$bold" "$step" "$*" "$off"; }
note() { printf '   %s\n' "$*"; }
show() { # show TEXT, or show < output
    if [ $# -gt 0 ]; then printf '%s\n' "$*"; else cat; fi | sed "s/^/   $dim/; s/\$/$off/"
}

say "Installing the Debian packages tether needs (if any are missing)"
"$top/scripts/bootstrap.sh"

say "Building tether"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc 2>/dev/null || echo 2)" \
    --target tether-agent tether-fleetd tetherctl >/dev/null
BIN=$top/build/bin
note "built tether-agent, tether-fleetd and tetherctl in $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-demo.XXXXXX")
FLEETD_PID= AGENT_PID= CLONE_TPM_PID=
cleanup() {
    for p in "$AGENT_PID" "$FLEETD_PID" "$CLONE_TPM_PID"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

json() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
claims() { python3 -c 'import base64, json, sys; t = sys.stdin.read().strip().split("."); dec = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))); print(json.dumps({"header": dec(t[0]), "claims": dec(t[1])}, indent=2))'; }
introspect() {
    curl -sS --cacert "$WORK/fleet/ca.pem" -H "Authorization: Bearer $(cat "$WORK/gateway.token")" \
        --data-urlencode "token=$1" "$URL/v1/introspect" | json 'str(d["active"]).lower()'
}

say "Manufacturing the device's TPM: swtpm with RSA and ECC EK certificates"
swtpm_start "$WORK/tpm"
DEVICE_TPM=$SWTPM_TCTI
note "the device's TPM listens on 127.0.0.1:$SWTPM_PORT; its manufacturer CA is a throwaway local CA"

say "Creating the fleet: tether-fleetd init, trusting that TPM manufacturer"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=https://127.0.0.1:$PORT
cp "$SWTPM_CA_DIR/swtpm-localca-rootca-cert.pem" "$WORK/vendor-root.pem"
cp "$SWTPM_CA_DIR/issuercert.pem" "$WORK/vendor-issuer.pem"
"$BIN/tether-fleetd" init --dir "$WORK/fleet" --listen "127.0.0.1:$PORT" \
    --ek-ca "$WORK/vendor-root.pem" --ek-ca "$WORK/vendor-issuer.pem" >"$WORK/admin.token"
chmod 600 "$WORK/admin.token"
echo "token_lifetime_seconds = 300" >>"$WORK/fleet/fleetd.conf"
"$BIN/tether-fleetd" run --dir "$WORK/fleet" 2>"$WORK/fleetd.log" &
FLEETD_PID=$!
for _ in $(seq 1 100); do
    curl -s --max-time 1 --cacert "$WORK/fleet/ca.pem" "$URL/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
export TETHER_FLEET_URL=$URL TETHER_CA=$WORK/fleet/ca.pem TETHER_ADMIN_TOKEN_FILE=$WORK/admin.token
"$BIN/tetherctl" token create --role relying-party --name ai-gateway >"$WORK/gateway.token"
note "fleetd serves HTTPS on $URL; its CA is what devices and tetherctl pin"
note "the first admin token was printed once and is stored only as a hash"

say "Allowing the device: its EK's SHA-256 goes on the fleet's allow list"
EK=$("$BIN/tether-agent" selftest --tcti "$DEVICE_TPM" | sed -n 's/^EK SHA-256: *//p')
"$BIN/tetherctl" device allow --ek-sha256 "$EK" --name edge-gateway-1 | show
note "EK SHA-256 $EK, read from the TPM and checked against its certificate"

say "Enrolling: tether-agent enroll creates the AK, device key and counter in the TPM"
"$BIN/tether-agent" enroll --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --fleet "$URL" \
    --ca "$WORK/fleet/ca.pem" | show
note "the fleet checked the EK certificate chain, the AK's attributes and the device key's"
note "certification, and the device proved its TPM by TPM2_ActivateCredential"
note "the state directory holds only public data and TPM-wrapped blobs:"
ls -l "$WORK/device" | tail -n +2 | show
"$BIN/tetherctl" device list | show

say "Running the agent: it proves itself with a TPM quote and counter, gets a token"
"$BIN/tether-agent" run --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --socket "$WORK/agent.sock" \
    2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 1 100); do
    TOKEN=$("$BIN/tether-agent" token --socket "$WORK/agent.sock" 2>/dev/null) && break
    sleep 0.1
done
note "a local app asks the agent over its Unix socket (tether-agent token --socket ...):"
show "${TOKEN:0:60}..."
note "the token, decoded (RFC 9068: ES256, typ at+jwt, bound to the device key by cnf.jkt):"
printf '%s' "$TOKEN" | claims | show
note "it lives $(printf '%s' "$TOKEN" | claims | json 'd["claims"]["exp"] - d["claims"]["iat"]') seconds; nothing of it was written to disk"

say "A relying party (an AI gateway) asks the fleet about the token: RFC 7662 introspection"
note "active: $(introspect "$TOKEN")"

say "The security team revokes the device: tetherctl device revoke"
start_ns=$(date +%s%N)
"$BIN/tetherctl" device revoke "$("$BIN/tetherctl" --json device list | json 'd["devices"][0]["id"]')" \
    --reason "demo: credential leak suspected" | show
active=$(introspect "$TOKEN")
note "introspection now says active: $active ($(( ($(date +%s%N) - start_ns) / 1000000 )) ms after the command)"
[ "$active" = false ] || { echo "demo: the revoked token is still active" >&2; exit 1; }

say "The operator reinstates the device and it enrols again"
DEV=$("$BIN/tetherctl" --json device list | json 'd["devices"][0]["id"]')
"$BIN/tetherctl" device reinstate "$DEV" --reason "demo: investigated, cleared" | show
kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
rm -rf "$WORK/device"
"$BIN/tether-agent" enroll --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --fleet "$URL" \
    --ca "$WORK/fleet/ca.pem" | show

say "An attacker copies the device: the TPM state and the agent state, to a second machine"
swtpm_stop
cp -a "$WORK/tpm" "$WORK/clone-tpm"
cp -a "$WORK/device" "$WORK/clone-device"
swtpm_launch "$WORK/tpm"
DEVICE_TPM=$SWTPM_TCTI
ORIGINAL_TPM_PID=$SWTPM_PID
swtpm_launch "$WORK/clone-tpm"
CLONE_TPM=$SWTPM_TCTI
CLONE_TPM_PID=$SWTPM_PID
SWTPM_PID=$ORIGINAL_TPM_PID
note "two TPMs now hold the same keys and the same counter value"

say "The clone asks for a token first: its evidence is perfect, so it gets one"
"$BIN/tether-agent" run --tcti "$CLONE_TPM" --state-dir "$WORK/clone-device" \
    --socket "$WORK/clone.sock" 2>"$WORK/clone.log" &
CLONE_AGENT=$!
for _ in $(seq 1 100); do
    "$BIN/tether-agent" token --socket "$WORK/clone.sock" >/dev/null 2>&1 && break
    sleep 0.1
done
note "clone: $("$BIN/tether-agent" token --socket "$WORK/clone.sock" --status | json 'd["state"]')"

say "The real device asks next: its counter is not above what the fleet accepted"
"$BIN/tether-agent" run --tcti "$DEVICE_TPM" --state-dir "$WORK/device" --socket "$WORK/agent.sock" \
    2>"$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 1 100); do
    state=$("$BIN/tether-agent" token --socket "$WORK/agent.sock" --status 2>/dev/null | json 'd["state"]' 2>/dev/null) || true
    [ "$state" = refused ] && break
    sleep 0.1
done
note "device agent: $("$BIN/tether-agent" token --socket "$WORK/agent.sock" --status | json 'd["last_error"]')"
note "two TPM states with the same keys exist: the fleet quarantined the device and revoked"
note "every token it held, the clone's included. What the security team sees:"
"$BIN/tetherctl" device show "$DEV" | show
"$BIN/tetherctl" alerts | show
kill -HUP "$CLONE_AGENT"
sleep 1
note "the clone, asking again: $("$BIN/tether-agent" token --socket "$WORK/clone.sock" --status | json 'd.get("last_error", d["state"])')"
kill "$CLONE_AGENT"; wait "$CLONE_AGENT" 2>/dev/null || true

say "Done. Cleaning up: every process stopped, every file removed."
