#!/usr/bin/env bash
# Stolen token, first use to quarantine (issue 9, "Measure"): a real
# tether-fleetd with a webhook (the tests' receiver), a device on swtpm
# enrolled and run by tether-agent on a policy with BENCH_LIFETIME s tokens,
# and a tether-gate whose policy accepts bearer tokens, reporting usage
# every BENCH_REPORT_SECONDS. The device's token is copied (`tether-agent
# token`) and used BENCH_USES times through that gateway; nothing else
# happens: the agent refreshes on its own schedule (about 2/3 of a
# lifetime after the token was issued), its usage document says it made 0
# requests with the token, and fleetd quarantines it at that exchange.
# Prints, from the stolen token's first use: the device's next exchange,
# the quarantine committed, the usage_mismatch alert delivered to the
# webhook, and the bound (next exchange + grace <= one token lifetime).
# usage: bench/stolen_token.sh [BUILD-DIR]   (default: build; starts its own swtpm)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$root/build}
if [ -z "${TETHER_TEST_TCTI:-}" ]; then
    exec "$root/tests/integration/run_with_swtpm.sh" "$0" "$BUILD"
fi
FLEETD=$BUILD/bin/tether-fleetd CTL=$BUILD/bin/tetherctl AGENT=$BUILD/bin/tether-agent
GATE=$BUILD/bin/tether-gate
LIFETIME=${BENCH_LIFETIME:-60}
REPORT_SECONDS=${BENCH_REPORT_SECONDS:-1}
USES=${BENCH_USES:-5}
for b in "$FLEETD" "$CTL" "$AGENT" "$GATE"; do
    [ -x "$b" ] || { echo "no $b: build first (cmake --build build)" >&2; exit 1; }
done
here=$root/tests/integration
. "$here/fleet.sh"
require_tools python3 curl openssl sqlite3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-stolen.XXXXXX")
DIR=$WORK/fleet
PID= AGENT_PID= GPID= UPID= RECEIVER=
trap 'kill_pids "$AGENT_PID" "$GPID" "$UPID" "$RECEIVER" "$PID"; rm -rf "$WORK"' EXIT
fail() {
    echo "FAIL: $*" >&2
    log_tail fleetd "$WORK/fleetd.log" 10
    log_tail agent "$WORK/agent.log" 10
    log_tail tether-gate "$WORK/gate.log" 10
    exit 1
}

# The fleet with a webhook (fleetd reads it at start: restarted), the
# device on policy bench.
fleet_with_device
sigterm_wait "$PID"
openssl rand -hex 32 >"$DIR/webhook.key"
chmod 600 "$DIR/webhook.key"
RPORT=$(free_port)
echo "webhook = name=bench url=http://127.0.0.1:$RPORT/alerts secret=webhook.key timeout=5" \
    >>"$DIR/fleetd.conf"
python3 "$here/webhook_receiver.py" --secret "$DIR/webhook.key" --log "$WORK/received.jsonl" \
    --port-file "$WORK/receiver.port" --port "$RPORT" &
RECEIVER=$!
start_fleetd
DEV=$(json_get "$("$CTL" --json device list)" 'j["devices"][0]["id"]')
"$CTL" policy create bench --models 'gpt-4o*' --token-lifetime "$LIFETIME" >/dev/null
"$CTL" device set-policy "$DEV" bench >/dev/null
"$CTL" token create --role relying-party --name gateway >"$WORK/rp.token"
chmod 600 "$WORK/rp.token"
start_upstream
GPORT=$(free_port)
gate_init "$WORK/gate" "$GPORT" "$REPORT_SECONDS"
printf '\n[policy bench]\nmodels = gpt-4o*\nallow_bearer = yes\n' >>"$WORK/gate/gate.conf"
"$GATE" run --dir "$WORK/gate" >/dev/null 2>>"$WORK/gate.log" &
GPID=$!
SOCK=$WORK/agent.sock
"$AGENT" run --tcti "$TETHER_TEST_TCTI" --state-dir "$WORK/state" --socket "$SOCK" \
    2>>"$WORK/agent.log" &
AGENT_PID=$!
wait_agent_token "$SOCK"

python3 - "$DIR/fleet.db" "$WORK/received.jsonl" "$WORK/fleetd.log" "$TOKEN" \
    "http://127.0.0.1:$GPORT/v1/chat/completions" "$DEV" "$LIFETIME" "$REPORT_SECONDS" \
    "$USES" <<'PY'
import base64, datetime, json, sqlite3, sys, time, urllib.error, urllib.request

db_path, received, fleetd_log, token, url, device = sys.argv[1:7]
lifetime, report_seconds, uses = int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
payload = token.split(".")[1]
claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})


def use():
    request = urllib.request.Request(url, data=body.encode(), headers={
        "Authorization": "Bearer " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


first_use = None
for _ in range(200):  # the gateway fetches the fleet's keys and feed first
    started = time.time()
    if use() == 200:
        first_use = started
        break
    time.sleep(0.05)
if first_use is None:
    sys.exit("FAIL: the stolen token is not accepted by the bearer gateway")
for i in range(uses - 1):
    if use() != 200:
        sys.exit("FAIL: use %d of the stolen token refused" % (i + 2))

db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=5)
deadline = first_use + lifetime * 2
quarantined = None
while time.time() < deadline and quarantined is None:
    row = db.execute("SELECT status FROM devices WHERE id = ?", (device,)).fetchone()
    if row and row[0] == "quarantined":
        quarantined = time.time()
    else:
        time.sleep(0.01)
if quarantined is None:
    sys.exit("FAIL: the device is not quarantined within two token lifetimes")
delivered = None
while time.time() < quarantined + 10 and delivered is None:
    for line in open(received):
        r = json.loads(line)
        if r.get("kind") == "usage_mismatch" and r.get("status") == 200:
            delivered = r["received_at"]
    time.sleep(0.01)
if delivered is None:
    sys.exit("FAIL: no usage_mismatch alert delivered within 10 s of the quarantine")
# The device's exchange: fleetd's answer to it (403 usage_mismatch) and,
# from its duration, when the request came.
exchange_start = exchange_end = None
for line in open(fleetd_log):
    r = json.loads(line)
    if "path=/v1/token status=403" in r.get("msg", ""):
        end = datetime.datetime.strptime(r["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        duration = float(r["msg"].split("duration_ms=")[1].split()[0]) / 1000
        exchange_start, exchange_end = end - duration, end
if exchange_start is None:
    sys.exit("FAIL: no refused exchange in fleetd's log")
alert = json.loads(db.execute("SELECT details FROM alerts WHERE kind = 'usage_mismatch'")
                   .fetchone()[0])
refresh = claims["iat"] + lifetime * 2 / 3
print("stolen token, first use to quarantine: token lifetime %d s, gateway reports every %d s"
      % (lifetime, report_seconds))
print("  token issued (iat)                   %+8.2f s" % (claims["iat"] - first_use))
print("  first use (bearer, gateway B)        %+8.2f s   (%d uses)" % (0.0, uses))
print("  device's next exchange (request)     %+8.2f s   (refresh schedule: iat + 2/3 "
      "lifetime = %+.2f s, with 5%% jitter)" % (exchange_start - first_use, refresh - first_use))
print("  quarantine committed (answer 403)    %+8.2f s   (exchange %.0f ms)"
      % (exchange_end - first_use, (exchange_end - exchange_start) * 1000))
print("  quarantine seen in the store         %+8.2f s" % (quarantined - first_use))
print("  webhook delivered (usage_mismatch)   %+8.2f s   (%.0f ms after the commit)"
      % (delivered - first_use, (delivered - exchange_end) * 1000))
print("  alert: gateway_accepted %s, device_made %s, bearer_handouts %s"
      % (alert["gateway_accepted"], alert["device_made"], alert["bearer_handouts"]))
bound = claims["iat"] + lifetime  # next exchange (<= iat + 2/3 L + jitter) + grace (R)
print("  bound: first use to quarantine <= next exchange + grace (%d s) <= one lifetime "
      "(%d s from iat): %s" % (report_seconds, lifetime,
                               "holds" if exchange_end <= bound else "EXCEEDED"))
PY
