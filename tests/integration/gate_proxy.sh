#!/usr/bin/env bash
# tether-gate's proxy stage end to end: the stock `openai` npm client calls
# gate_proxy_probe (the proxy over net's HTTPS server layer, no auth), which
# forwards to openai_upstream.py (a stand-in speaking the OpenAI wire format,
# SSE included) on loopback.
#   gate_proxy.sh PATH/TO/gate_proxy_probe NODE_DIR
# NODE_DIR: where the `openai` package is installed (npm install --prefix,
# once) under the build tree; a failure to install it fails the test.
# Every process it starts is stopped on exit.
set -u
probe=$1
node_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-gate-proxy.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
passed=0
failed=0

check() {
    local name=$1
    shift
    if "$@" >"$work/last.log" 2>&1; then
        echo "ok - $name"
        passed=$((passed + 1))
    else
        echo "not ok - $name"
        sed 's/^/    /' "$work/last.log"
        failed=$((failed + 1))
    fi
}

# ---- the stock client, installed once under the build tree
. "$here/node_packages.sh"
node_install "$node_dir" openai || {
    echo "FAIL: cannot install the openai npm package" >&2
    sed 's/^/    /' "$node_dir/npm.log" >&2
    exit 1
}
export NODE_PATH=$node_dir/node_modules

. "$here/gate_env.sh"
gate_pki || { echo "cannot make the test PKI"; exit 1; }
export NODE_EXTRA_CA_CERTS=$work/ca.pem
# the stand-in pauses 0.2 s between stream chunks
start_upstream 0.2 || { echo "the stand-in did not start"; exit 1; }

client() { # BASE MODE [MODEL]
    node "$here/gate_openai_client.cjs" "$@"
}

json_get() { # JSON EXPRESSION (python, on the parsed object j)
    python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

start_probe "$probe" probe 0
gate=$gate_url
answer="Tether keeps the key on the device."

# ---- answers, usage and what upstream received
out_chat=$(client "$gate" chat)
check "chat: the stand-in's answer and usage come back" \
    test "$(json_get "$out_chat" 'j["content"], j["usage"]["prompt_tokens"], j["usage"]["completion_tokens"]')" \
    = "('$answer', 11, 7)"
check "chat: settled with the stand-in's usage" \
    grep -q 'path=/v1/chat/completions stream=0 status=200 settled=1 usage_reported=1 prompt=11 completion=7' \
    "$work/probe.log"
check "chat: upstream got the default max_tokens (64)" \
    python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
assert r[-1]["path"]=="/v1/chat/completions" and r[-1]["body"]["max_tokens"]==64, r[-1]' \
    "$work/received.jsonl"

out_stream=$(client "$gate" stream)
check "stream: the answer comes back chunk by chunk with the usage" \
    test "$(json_get "$out_stream" 'j["content"], j["chunks"] >= 7, j["usage"]["prompt_tokens"], j["usage"]["completion_tokens"]')" \
    = "('$answer', True, 11, 7)"
# The stand-in pauses 0.2 s after each of 7 chunks: a proxy that buffered
# the stream would deliver the first chunk at the end.
check "stream: the first chunk arrives long before the end ($out_stream)" \
    test "$(json_get "$out_stream" 'j["first_ms"] + 900 < j["end_ms"]')" = True
check "stream: settled with the final usage chunk" \
    grep -q 'path=/v1/chat/completions stream=1 status=200 settled=1 usage_reported=1 prompt=11 completion=7' \
    "$work/probe.log"
check "stream: upstream was asked for the usage chunk" \
    python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
s=[x for x in r if x["body"] and x["body"].get("stream")]
assert s and s[-1]["body"]["stream_options"]["include_usage"] is True, s' \
    "$work/received.jsonl"

out=$(client "$gate" completions)
check "completions: answer and usage" \
    test "$(json_get "$out" 'j["content"], j["usage"]["completion_tokens"]')" = "('$answer', 7)"
out=$(client "$gate" embeddings)
check "embeddings: answer and usage" \
    test "$(json_get "$out" 'j["dimensions"], j["usage"]["prompt_tokens"]')" = "(3, 5)"
check "embeddings: settled with no completion" \
    grep -q 'path=/v1/embeddings stream=0 status=200 settled=1 usage_reported=1 prompt=5 completion=0' \
    "$work/probe.log"
out=$(client "$gate" models)
check "models: only the allowed ones are listed" \
    test "$(json_get "$out" 'j["models"]')" = "['gpt-4o', 'gpt-4o-mini', 'text-embedding-3-small']"
out=$(client "$gate" chat llama3)
check "a model outside the policy: 403 model_not_allowed" \
    test "$(json_get "$out" 'j["error"], j["code"]')" = "(403, 'model_not_allowed')"

# ---- the client's credentials never reach upstream
curl -sS --cacert "$work/ca.pem" -o /dev/null \
    -H 'Authorization: DPoP eyJ.client.token' -H 'DPoP: eyJ.client.proof' \
    -H 'Cookie: session=client' -H 'Content-Type: application/json' \
    --data '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' \
    "$gate/chat/completions"
check "upstream saw only the provider key, never a client credential" \
    python3 -c 'import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
assert len(r) == 6, len(r)  # the refused llama3 request never went
for x in r:
    h=x["headers"]
    assert h.get("authorization")=="Bearer sk-provider-test-key", h
    assert "dpop" not in h and "cookie" not in h, h
text=open(sys.argv[1]).read()
assert "sk-client-secret" not in text and "eyJ.client" not in text' \
    "$work/received.jsonl"
# ---- a client that leaves mid-stream: the upstream transfer is aborted at
# its next chunk, and the request is charged its worst case (upstream may
# have counted tokens the gateway never saw)
curl -sS -N --max-time 0.5 --cacert "$work/ca.pem" -H 'Content-Type: application/json' \
    --data '{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"bye"}]}' \
    -o /dev/null "$gate/chat/completions" 2>/dev/null
gone_outcome() {
    for _ in $(seq 40); do
        grep -q 'stream=1 status=200 settled=1 usage_reported=0 prompt=[0-9]* completion=64 ' \
            "$work/probe.log" && return 0
        sleep 0.05
    done
    return 1
}
check "a client gone mid-stream: the upstream transfer is aborted, worst case charged" \
    gone_outcome

check "the provider key is never logged" \
    bash -c '! grep -q sk-provider-test-key "$1"' _ "$work/probe.log"

# ---- the spend ceiling: 100 micro-units a day. A chat request's worst
# case (its body's bytes and 64 tokens at gpt-4o-mini's prices) is about
# 60, its real usage 6: requests pass until less than the worst case is
# left, then 429.
ceiling=100
start_probe "$probe" ceiling $ceiling
gate2=$gate_url
refused=""
for i in $(seq 30); do
    out=$(client "$gate2" chat)
    case $out in *'"error":429'*) refused=$out; break ;; esac
done
check "the spend ceiling stops the client with 429 spend_limit_reached ($refused)" \
    test "$(json_get "${refused:-{\}}" 'j.get("error"), j.get("code"), int(j.get("retry_after") or 0) > 0')" \
    = "(429, 'spend_limit_reached', True)"
spend=$(curl -sS --cacert "$work/ca.pem" "${gate2%/v1}/probe/spend")
charged=$(awk '/settled=1/ { for (i = 1; i <= NF; i++) if ($i ~ /^cost=/) { sub("cost=", "", $i); s += $i } } END { print s + 0 }' \
    "$work/ceiling.log")
check "spend stays at or under the ceiling and equals the settled usage ($spend, charged $charged)" \
    test "$(json_get "$spend" "j['spent'] <= $ceiling and j['spent'] == $charged and j['reserved'] == 0 and j['spent'] > 0")" = True

# ---- an upstream that is not there: 502, and the reservation given back
live_upstream=$upstream
upstream=http://127.0.0.1:$(free_port)/v1
start_probe "$probe" nowhere 1000
gate3=$gate_url
upstream=$live_upstream
out=$(client "$gate3" chat)
check "no upstream: 502 upstream_unavailable" \
    test "$(json_get "$out" 'j["error"], j["code"]')" = "(502, 'upstream_unavailable')"
out=$(client "$gate3" stream)
check "no upstream, streaming: 502 upstream_unavailable" \
    test "$(json_get "$out" 'j["error"], j["code"]')" = "(502, 'upstream_unavailable')"
spend=$(curl -sS --cacert "$work/ca.pem" "${gate3%/v1}/probe/spend")
check "no upstream: nothing charged, nothing left reserved ($spend)" \
    test "$(json_get "$spend" "j['spent'] == 0 and j['reserved'] == 0")" = True

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
