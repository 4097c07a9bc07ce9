#!/usr/bin/env bash
# tether-gate end to end with real processes: a real tether-fleetd (keys,
# revocation feed), tether-gate as the proxy, and openai_upstream.py (the
# OpenAI-compatible stand-in, SSE included). The device's client
# (gate_dpop_client.mjs) signs a DPoP proof per request with the npm "jose"
# package. Asserts: answers streamed (first chunk long before the end) and
# not; usage settled as the stand-in reported it; the client's credentials
# never reach the stand-in; 403 model_not_allowed; the spend ceiling's 429
# with Retry-After and the spend at or under it; a revoked device refused;
# no usage counted for any refusal; /metrics parses and counts all of it.
#
# Access tokens are signed here with the fleet's issuer key file, as in
# gateway.sh (the attested exchange needs a TPM).
# usage: gateway_proxy_e2e.sh tether-fleetd tetherctl tether-gate NODE_DIR
set -euo pipefail

usage="usage: gateway_proxy_e2e.sh tether-fleetd tetherctl tether-gate NODE_DIR"
FLEETD=${1:?$usage}
CTL=${2:?$usage}
GATE=${3:?$usage}
NODE_DIR=${4:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/fleet.sh"
require_tools curl python3 node npm openssl

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tether-gate-e2e-test.XXXXXX")
DIR=$WORK/fleet
GDIR=$WORK/gate
PID=
GPID=
UPID=
cleanup() {
    kill_pids "$GPID" "$UPID" "$PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

OUT=
fail() {
    echo "FAIL: $*" >&2
    echo "--- last: $OUT" >&2
    log_tail tether-gate "$WORK/gate.log" 20
    log_tail usage "$WORK/usage.jsonl" 10
    exit 1
}

. "$here/gate_fleet.sh"
gate_install_jose "$here/gate_client.mjs" "$here/gate_dpop_client.mjs"

# --- the fleet, two devices, their tokens -----------------------------------------
gate_start_fleet
DEV_A=$(gate_allow device-a)
DEV_B=$(gate_allow device-b)
KID=$(json_get "$(curl -sS --cacert "$DIR/ca.pem" "$URL/.well-known/jwks.json")" 'j["keys"][0]["kid"]')
JKT=$(node "$NODE_DIR/gate_client.mjs" keygen "$WORK/device.jwk")
# The gateway's policy allows no llama.
TOKEN_A=$(gate_token "$DEV_A" jti-a-0001 default)
TOKEN_B=$(gate_token "$DEV_B" jti-b-0001 tight)

# --- the stand-in and the gateway -------------------------------------------------
gate_start_upstream 0.2
GPORT=$(free_port)
GURL=http://127.0.0.1:$GPORT
gate_init "$GPORT"
# A second policy: 0.1 a day. A chat request's worst case (its body's
# bytes and 64 tokens) is about 0.056, its usage (11 + 7 tokens) 0.00585.
printf '\n[policy tight]\nmodels = gpt-4o*\nspend_per_day = 0.1\nmax_tokens = 64\n' >>"$GDIR/gate.conf"
SPEND_CEILING=100000 # micro-units
"$GATE" check --dir "$GDIR" | grep -q ": ok$" || fail "check"
"$GATE" run --dir "$GDIR" >"$WORK/usage.jsonl" 2>"$WORK/gate.log" &
GPID=$!

# The gateway answers 503 until it has the fleet's keys and the feed.
gate_wait_ready "$TOKEN_A"
[ "$(json_get "$OUT" 'j["status"], j["models"]')" = "(200, ['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small'])" ] ||
    fail "models: the stand-in's list filtered by the token's and the policy's globs"
pass "GET /v1/models through the gateway lists only the models both allow"

# --- answers ------------------------------------------------------------------------
answer="Tether keeps the key on the device."
gate_client "$TOKEN_A" "$GURL" chat
[ "$(json_get "$OUT" 'j["status"], j["content"], j["usage"]')" = \
    "(200, '$answer', {'prompt_tokens': 11, 'completion_tokens': 7, 'total_tokens': 18})" ] ||
    fail "chat through the gateway"
pass "chat: the stand-in's answer and usage"
gate_client "$TOKEN_A" "$GURL" stream
[ "$(json_get "$OUT" 'j["status"], j["content"], j["usage"]["completion_tokens"], j["chunks"] >= 7')" = \
    "(200, '$answer', 7, True)" ] || fail "stream through the gateway"
# The stand-in pauses 0.2 s after each of 7 chunks: a buffered stream would
# deliver its first chunk at the end.
[ "$(json_get "$OUT" 'j["first_ms"] + 900 < j["end_ms"]')" = True ] ||
    fail "the stream's first chunk came at its end"
pass "stream: chunk by chunk (first at $(json_get "$OUT" 'j["first_ms"]') ms, end at $(json_get "$OUT" 'j["end_ms"]') ms), usage chunk passed on"
gate_client "$TOKEN_A" "$GURL" embeddings
[ "$(json_get "$OUT" 'j["status"], j["usage"]["prompt_tokens"]')" = "(200, 5)" ] || fail "embeddings"
pass "embeddings: answer and usage"

# --- refusals -----------------------------------------------------------------------
gate_client "$TOKEN_A" "$GURL" chat llama3
[ "$(json_get "$OUT" 'j["status"], j["code"]')" = "(403, 'model_not_allowed')" ] ||
    fail "a model the policy does not allow"
pass "a model outside the policy's allow list: 403 model_not_allowed"
OUT=$(curl -sS -w ' %{http_code}' -H "Authorization: DPoP $TOKEN_A" -H 'Content-Type: application/json' \
    --data '{"model":"gpt-4o-mini","messages":[]}' "$GURL/v1/chat/completions")
case $OUT in *'"tether_error":"dpop_missing"'*' 401') ;; *) fail "a token without a proof" ;; esac
pass "a token without its DPoP proof: 401 dpop_missing"

refused=
for _ in $(seq 30); do
    gate_client "$TOKEN_B" "$GURL" chat
    [ "$(json_get "$OUT" 'j["status"]')" = 200 ] || { refused=$OUT; break; }
done
[ "$(json_get "${refused:-{\}}" 'j.get("status"), j.get("code"), int(j.get("retry_after") or 0) > 0')" = \
    "(429, 'spend_limit_reached', True)" ] || fail "the spend ceiling: $refused"
pass "the spend ceiling: 429 spend_limit_reached with Retry-After"

"$CTL" device revoke "$DEV_A" --reason "gateway e2e test" >/dev/null || fail "device revoke"
for _ in $(seq 30); do
    gate_client "$TOKEN_A" "$GURL" chat
    [ "$(json_get "$OUT" 'j["status"]')" = 401 ] && break
    sleep 0.1
done
[ "$(json_get "$OUT" 'j["status"], j["code"]')" = "(401, 'device_revoked')" ] || fail "a revoked device"
pass "a revoked device: 401 device_revoked"

# --- what the stand-in received -------------------------------------------------------
python3 - "$WORK/received.jsonl" "$TOKEN_A" "$TOKEN_B" <<'PY' || fail "what the stand-in received"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
text = open(sys.argv[1]).read()
for r in records:
    h = r["headers"]
    assert h.get("authorization") == "Bearer sk-provider-test-key", h
    assert "dpop" not in h, h
for token in sys.argv[2:]:
    assert token not in text and token.split(".")[2] not in text
# Refused requests never went: no llama3, and only chat/stream/embeddings/models.
assert not any((r["body"] or {}).get("model") == "llama3" for r in records)
PY
pass "the stand-in saw only the provider key: never the client's Authorization, DPoP or token"

# --- usage lines ------------------------------------------------------------------------
python3 - "$WORK/usage.jsonl" "$DEV_A" "$DEV_B" "$SPEND_CEILING" <<'PY' || fail "the usage lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
dev_a, dev_b, ceiling = sys.argv[2], sys.argv[3], int(sys.argv[4])
answered = [l for l in lines if l["refusal"] is None]
refused = [l for l in lines if l["refusal"] is not None]
for l in answered:
    assert l["status"] == 200, l
    if l["path"] == "/v1/models":
        assert (l["prompt_tokens"], l["completion_tokens"], l["cost_micros"]) == (0, 0, 0), l
    elif l["path"] == "/v1/embeddings":
        assert (l["prompt_tokens"], l["completion_tokens"]) == (5, 0), l
    else:
        assert (l["prompt_tokens"], l["completion_tokens"]) == (11, 7), l
        assert l["cost_micros"] == 11 * 150 + 7 * 600, l  # 0.15 and 0.6 per 1000
    assert l["jti"] in ("jti-a-0001", "jti-b-0001") and l["latency_ms"] >= 0, l
for l in refused:
    assert (l["prompt_tokens"], l["completion_tokens"], l["cost_micros"]) == (0, 0, 0), l
# revocation_feed_stale: the gateway's first answers, before the feed's first page.
codes = sorted(set(l["refusal"] for l in refused) - {"revocation_feed_stale"})
assert codes == ["device_revoked", "dpop_missing", "model_not_allowed", "spend_limit_reached"], codes
spent_b = sum(l["cost_micros"] for l in answered if l["device"] == dev_b)
assert 0 < spent_b <= ceiling, spent_b
for l in lines:
    text = json.dumps(l)
    assert "Who holds the key" not in text and "eyJ" not in text, l
print("answered %d, refused %d, device B spent %d of %d" % (len(answered), len(refused), spent_b, ceiling))
PY
pass "one usage line per request: usage as the stand-in's, nothing counted for refusals, spend at or under the ceiling"

# --- /metrics -----------------------------------------------------------------------------
curl -sS --max-time 5 -o "$WORK/metrics.txt" "$GURL/metrics" || fail "GET /metrics"
python3 "$here/metrics_check.py" exposition "$WORK/metrics.txt" >/dev/null || fail "the scrape does not parse"
python3 - "$WORK/metrics.txt" "$WORK/usage.jsonl" "$here/../../packaging/monitoring/prometheus.yml" \
    <<'PY' || fail "what /metrics counts"
import json, re, sys
samples = {}
for line in open(sys.argv[1]):
    if not line.startswith("#") and line.strip():
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
lines = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
answered = [l for l in lines if l["refusal"] is None]
assert samples['tether_gate_requests_total{outcome="answered",code="2xx"}'] == len(answered), samples
for code in ("model_not_allowed", "spend_limit_reached", "device_revoked", "dpop_missing"):
    n = sum(1 for l in lines if l["refusal"] == code)
    assert samples['tether_gate_requests_total{outcome="refused",code="%s"}' % code] == n, code
assert samples["tether_gate_spend_micros_total"] == sum(l["cost_micros"] for l in answered)
assert samples['tether_gate_tokens_total{kind="completion"}'] == sum(l["completion_tokens"] for l in answered)
assert samples['tether_gate_tokens_total{kind="prompt"}'] == sum(l["prompt_tokens"] for l in answered)
assert samples["tether_gate_authorization_duration_seconds_count"] == len(lines)
assert samples["tether_gate_upstream_duration_seconds_count"] == len(answered)
assert 0 <= samples["tether_gate_revocation_feed_age_seconds"] < 60
assert any(k.startswith("tether_http_requests_total") for k in samples), "the server's own metrics"
# Every tether-gate metric that the Prometheus example names exists.
names = set(re.findall(r"tether_gate_[a-z_]+", open(sys.argv[3]).read()))
families = {k.split("{")[0] for k in samples}
assert names and all(n in families or n + "_count" in families for n in names), names - families
PY
pass "/metrics parses and counts requests by outcome and code, spend, tokens, durations, the feed's age"
python3 "$here/metrics_check.py" references "$WORK/metrics.txt" \
    "$here/../../packaging/monitoring/grafana-tether-gate.json" ||
    fail "the Grafana dashboard names a metric tether-gate does not export"
python3 -c 'import json, sys
job = [v for v in json.load(open(sys.argv[1]))["templating"]["list"] if v["name"] == "job"][0]
sys.exit(job["current"]["value"] != "tether-gate")' "$here/../../packaging/monitoring/grafana-tether-gate.json" ||
    fail "the dashboard's default job is not the scrape example's job"
pass "the Grafana dashboard refers only to metrics tether-gate exports"

sigterm_wait "$GPID"
wait "$GPID" || fail "tether-gate exited with status $?"
GPID=
pass "tether-gate stops on SIGTERM"
echo "$passed passed"
