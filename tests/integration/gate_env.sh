# Shared by tests/integration/gate_proxy.sh and bench/gate_proxy.sh (sourced):
# a throwaway PKI, the OpenAI-compatible stand-in and gate_proxy_probe on
# loopback. The caller sets work (a private directory) and pids (an array
# of processes it stops on exit).
gate_env_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for_file() { # FILE
    local i
    for i in $(seq 100); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

# A CA ($work/ca.pem) and the probe's certificate for 127.0.0.1
# ($work/gate.pem, $work/gate.key), and a provider key ($work/provider.key).
gate_pki() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=tether gate test CA" -keyout "$work/ca.key" -out "$work/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
        >/dev/null 2>&1 &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
            -keyout "$work/gate.key" -out "$work/gate.csr" >/dev/null 2>&1 &&
        printf 'subjectAltName=DNS:127.0.0.1,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
            >"$work/gate.ext" &&
        openssl x509 -req -in "$work/gate.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
            -CAcreateserial -days 2 -extfile "$work/gate.ext" -out "$work/gate.pem" \
            >/dev/null 2>&1 &&
        printf 'sk-provider-test-key\n' >"$work/provider.key" &&
        chmod 600 "$work/provider.key"
}

# The stand-in, pausing SECONDS between stream chunks; sets upstream (its
# API root) and records requests in $work/received.jsonl.
start_upstream() { # SECONDS
    python3 "$gate_env_dir/openai_upstream.py" "$work/upstream.port" "$work/received.jsonl" \
        --chunk-pause "$1" 2>"$work/upstream.log" &
    pids+=($!)
    wait_for_file "$work/upstream.port" || return 1
    upstream=http://127.0.0.1:$(cat "$work/upstream.port")/v1
}

# gate_proxy_probe in front of the stand-in; its stderr in $work/NAME.log.
# Sets gate_url (its API root).
start_probe() { # PROBE NAME SPEND_PER_DAY
    local port
    port=$(free_port)
    "$1" "$work/gate.pem" "$work/gate.key" "$port" "$upstream" "$work/provider.key" "$3" \
        >/dev/null 2>"$work/$2.log" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q '^listening' "$work/$2.log" 2>/dev/null && break
        sleep 0.05
    done
    gate_url=https://127.0.0.1:$port/v1
}
