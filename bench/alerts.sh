#!/usr/bin/env bash
# Alert to webhook delivery latency: a real tether-fleetd with one webhook
# (the tests' receiver, tests/integration/webhook_receiver.py, over plain
# HTTP on loopback, verifying every signature). BENCH_ALERTS alerts are
# written into the fleet's store by another process (as `tether-fleetd
# admin-token` writes its audit alert), one every BENCH_INTERVAL_MS, each
# timed from its commit to the receiver reading the request; then as many
# written by fleetd itself (usage reports naming a token it never issued),
# timed from before the report's request. Prints p50, p99 and max of each
# (goal: p99 <= 1 s), then the time to drain a burst of BENCH_BURST
# alerts written at once.
# usage: bench/alerts.sh [BUILD-DIR]   (default: build)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$root/build}
FLEETD=$BUILD/bin/tether-fleetd
ALERTS=${BENCH_ALERTS:-200}
INTERVAL_MS=${BENCH_INTERVAL_MS:-20}
BURST=${BENCH_BURST:-100}
[ -x "$FLEETD" ] || { echo "no $FLEETD: build first (cmake --build build)" >&2; exit 1; }

fail() {
    echo "FAIL: $*" >&2
    tail -n 20 "$WORK/fleetd.log" >&2 2>/dev/null || true
    exit 1
}
. "$root/tests/integration/fleet.sh"
require_tools curl python3 openssl

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-alerts.XXXXXX")
DIR=$WORK/fleet
PID=
RECEIVER=
trap 'kill_pids "$PID" "$RECEIVER"; rm -rf "$WORK"' EXIT
PORT=$(free_port)
RPORT=$(free_port)

"$FLEETD" init --dir "$DIR" --listen "127.0.0.1:$PORT" >/dev/null
openssl rand -hex 32 >"$DIR/webhook.key"
chmod 600 "$DIR/webhook.key"
echo "webhook = name=bench url=http://127.0.0.1:$RPORT/alerts secret=webhook.key timeout=5" \
    >>"$DIR/fleetd.conf"
python3 "$root/tests/integration/webhook_receiver.py" --secret "$DIR/webhook.key" \
    --log "$WORK/received.jsonl" --port-file "$WORK/receiver.port" --port "$RPORT" &
RECEIVER=$!
for _ in $(seq 1 50); do [ -s "$WORK/receiver.port" ] && break; sleep 0.1; done
start_fleetd

# A relying party's token: its usage reports raise alerts inside fleetd.
RP_TOKEN=$("$FLEETD" admin-token --dir "$DIR" --roles relying-party --name bench 2>/dev/null)

python3 - "$DIR/fleet.db" "$WORK/received.jsonl" "$ALERTS" "$INTERVAL_MS" "$BURST" \
    "https://127.0.0.1:$PORT" "$DIR/ca.pem" "$RP_TOKEN" <<'EOF'
import json, os, sqlite3, ssl, sys, time, urllib.request

db_path, log_path, count, interval_ms, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5])
url, ca, rp_token = sys.argv[6], sys.argv[7], sys.argv[8]
db = sqlite3.connect(db_path, timeout=5, isolation_level=None)
tls = ssl.create_default_context(cafile=ca)


def write_alert(kind):
    db.execute("BEGIN IMMEDIATE")
    cur = db.execute("INSERT INTO alerts (device_id, kind, details, created_at) "
                     "VALUES (NULL, ?, '{}', ?)", (kind, int(time.time())))
    db.execute("COMMIT")
    return cur.lastrowid, time.time()


def wait_for(ids, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            got = {}
            for line in open(log_path):
                r = json.loads(line)
                if r.get("status") == 200 and r.get("alert_id") in ids:
                    got.setdefault(r["alert_id"], r["received_at"])
            if len(got) == len(ids):
                return got
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit("FAIL: %d of %d deliveries missing after %d s" % (len(ids) - len(got), len(ids),
                                                               seconds))


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100.0 * len(sorted_values)))]


written = {}
for i in range(count):
    alert_id, at = write_alert("bench_paced")
    written[alert_id] = at
    time.sleep(interval_ms / 1000.0)
received = wait_for(set(written), 60)
latency = sorted((received[i] - written[i]) * 1000 for i in written)
print("alerts written by another process, %d one every %d ms: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
      "(goal: p99 <= 1000 ms)" % (count, interval_ms, pct(latency, 50), pct(latency, 99),
                                   latency[-1]))
# Alerts fleetd writes itself: a usage report naming a token it never
# issued (usage_device_mismatch), which wakes the sender at once. Measured
# from before the request (an upper bound: the TLS handshake included).
reported = {}
for i in range(count):
    jti = os.urandom(16).hex()
    body = json.dumps({"version": 1, "gateway": "bench", "report_id": "bench-%016d" % i,
                       "entries": [{"jti": jti, "device": "dev_000000000000000000000000",
                                    "requests": 1, "refused": 0, "prompt_tokens": 1,
                                    "completion_tokens": 1, "cost_micros": 1,
                                    "first_seen": 1700000000, "last_seen": 1700000000}]})
    request = urllib.request.Request(url + "/v1/usage/reports", data=body.encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer " + rp_token})
    sent = time.time()
    with urllib.request.urlopen(request, context=tls) as answer:
        if json.load(answer).get("flagged") != 1:
            sys.exit("FAIL: the usage report raised no alert")
    reported[db.execute("SELECT max(id) FROM alerts").fetchone()[0]] = sent
    time.sleep(interval_ms / 1000.0)
received = wait_for(set(reported), 60)
latency = sorted((received[i] - reported[i]) * 1000 for i in reported)
print("alerts written by fleetd (usage reports), %d one every %d ms: p50 %.1f ms, p99 %.1f ms, "
      "max %.1f ms" % (count, interval_ms, pct(latency, 50), pct(latency, 99), latency[-1]))
burst_written = {}
start = time.time()
for i in range(burst):
    alert_id, at = write_alert("bench_burst")
    burst_written[alert_id] = at
received = wait_for(set(burst_written), 120)
drained = max(received.values()) - start
latency = sorted((received[i] - burst_written[i]) * 1000 for i in burst_written)
print("burst of %d alerts written at once: all delivered in %.0f ms (%.0f deliveries/s), "
      "p50 %.1f ms, p99 %.1f ms" % (burst, drained * 1000, burst / drained, pct(latency, 50),
                                    pct(latency, 99)))
duplicates = [json.loads(l) for l in open(log_path) if json.loads(l).get("duplicate")]
if duplicates:
    sys.exit("FAIL: %d duplicate deliveries" % len(duplicates))
EOF
