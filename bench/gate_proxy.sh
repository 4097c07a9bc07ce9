#!/usr/bin/env bash
# tether-gate's proxy overhead: the OpenAI-compatible stand-in
# (tests/integration/openai_upstream.py, no pauses) called directly and
# through gate_proxy_probe (the proxy stage over net's HTTPS server layer,
# no authorization), in one run. Prints the figures of bench_gate_proxy.
# Options through the environment: BENCH_COUNT (requests per kind, default
# 300), BENCH_SECONDS (load, default 5), BENCH_CLIENTS (default 8).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
COUNT=${BENCH_COUNT:-300}
SECONDS_LOAD=${BENCH_SECONDS:-5}
CLIENTS=${BENCH_CLIENTS:-8}

cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j 2 --target gate_proxy_probe bench_gate_proxy >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/tether-bench-gate.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in ${pids[@]+"${pids[@]}"}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
. "$top/tests/integration/gate_env.sh"
gate_pki
start_upstream 0
start_probe "$top/build/tests/gate_proxy_probe" probe 0
"$top/build/bench/bench_gate_proxy" "$upstream" "$gate_url" "$work/ca.pem" "$COUNT" \
    "$SECONDS_LOAD" "$CLIENTS"
