#!/usr/bin/env bash
# Test harness: a private swtpm on free loopback ports.
#
# Source this file, then:
#   swtpm_start DIR      manufactures a TPM 2.0 in DIR (EK certificates signed
#                        by a private local CA in DIR/ca) and starts swtpm.
#                        Sets SWTPM_TCTI, SWTPM_PORT, SWTPM_PID, SWTPM_CA_DIR.
#   swtpm_stop           shuts the TPM down in order and stops swtpm.
#   swtpm_clone SRC DST  copies a stopped or running TPM's state to DST.
# Nothing outside DIR is read or written: no /var/lib or /etc state.

swtpm_write_ca_config() {
    local dir=$1
    mkdir -p "$dir/ca"
    cat >"$dir/ca/swtpm-localca.conf" <<CONF
statedir = $dir/ca
signingkey = $dir/ca/signkey.pem
issuercert = $dir/ca/issuercert.pem
certserial = $dir/ca/certserial
CONF
    cat >"$dir/ca/swtpm-localca.options" <<CONF
--platform-manufacturer tether-test
--platform-version 2.1
--platform-model swtpm
CONF
    cat >"$dir/swtpm_setup.conf" <<CONF
create_certs_tool = swtpm_localca
create_certs_tool_config = $dir/ca/swtpm-localca.conf
create_certs_tool_options = $dir/ca/swtpm-localca.options
active_pcr_banks = ${SWTPM_PCR_BANKS:-sha256}
CONF
}

# swtpm_manufacture DIR: a fresh TPM state in DIR/state with RSA-2048 and
# ECC P-384 EK certificates in NV, and the PCR banks SWTPM_PCR_BANKS names
# (comma-separated; sha256 when unset).
swtpm_manufacture() {
    local dir=$1
    mkdir -p "$dir/state"
    swtpm_write_ca_config "$dir"
    if ! swtpm_setup --tpm2 --tpm-state "$dir/state" --create-ek-cert \
        --config "$dir/swtpm_setup.conf" --pcr-banks "${SWTPM_PCR_BANKS:-sha256}" \
        --logfile "$dir/swtpm_setup.log" >/dev/null 2>&1; then
        echo "swtpm.sh: swtpm_setup failed; its log:" >&2
        cat "$dir/swtpm_setup.log" >&2
        return 1
    fi
}

# swtpm_launch DIR: starts swtpm on DIR/state, retrying other ports when the
# chosen one is taken. swtpm listens on PORT, its control channel on PORT+1.
swtpm_launch() {
    local dir=$1 attempt port i
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        rm -f "$dir/swtpm.pid"
        swtpm socket --tpm2 --tpmstate dir="$dir/state" \
            --server type=tcp,port="$port",bindaddr=127.0.0.1 \
            --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
            --flags not-need-init,startup-clear \
            --log file="$dir/swtpm.log" >/dev/null 2>&1 &
        SWTPM_PID=$!
        for i in $(seq 1 100); do
            if ! kill -0 "$SWTPM_PID" 2>/dev/null; then
                break
            fi
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                SWTPM_PORT=$port
                SWTPM_TCTI="swtpm:host=127.0.0.1,port=$port"
                export SWTPM_PID SWTPM_PORT SWTPM_TCTI
                return 0
            fi
            sleep 0.05
        done
        kill "$SWTPM_PID" 2>/dev/null || true
        wait "$SWTPM_PID" 2>/dev/null || true
    done
    echo "swtpm.sh: could not start swtpm on a free port; its log:" >&2
    cat "$dir/swtpm.log" >&2
    return 1
}

swtpm_start() {
    local dir=$1
    swtpm_manufacture "$dir" || return 1
    SWTPM_CA_DIR=$dir/ca
    export SWTPM_CA_DIR
    swtpm_launch "$dir"
}

# An orderly TPM2_Shutdown first, as an operating system sends at power-off:
# without it the TPM's clock is not "safe" after a restart of this state, and
# a fleet refuses its attestations.
swtpm_stop() {
    if [ -n "${SWTPM_PID:-}" ]; then
        TPM2TOOLS_TCTI=${SWTPM_TCTI:-} TSS2_LOG=all+NONE tpm2_shutdown >/dev/null 2>&1 || true
        kill "$SWTPM_PID" 2>/dev/null || true
        wait "$SWTPM_PID" 2>/dev/null || true
        SWTPM_PID=
    fi
}

swtpm_clone() {
    mkdir -p "$2/state"
    cp -a "$1/state/." "$2/state/"
}
