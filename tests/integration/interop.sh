#!/usr/bin/env bash
# Interoperability: what hal produces, checked by tools nobody here wrote.
#   interop.sh PATH/TO/tpm_probe
# Run through run_with_swtpm.sh (needs TETHER_TEST_TCTI, TETHER_TEST_SWTPM_CA).
set -u
probe=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/tether-interop.XXXXXX")
trap 'rm -rf "$work"' EXIT
export TPM2TOOLS_TCTI=$TETHER_TEST_TCTI TSS2_LOG=all+NONE
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

refuses() { ! "$@"; }

# 1. The EK public key hal derives from each TCG template equals tpm2_createek's.
ek_matches_createek() {
    local ours=$1 tools=$2
    "$probe" ekpub "$ours" "$work/ek-$ours.pem" &&
        tpm2_createek -G "$tools" -c "$work/ek.ctx" -u "$work/tools-ek-$ours.pem" -f pem &&
        tpm2_flushcontext -t &&
        cmp "$work/ek-$ours.pem" "$work/tools-ek-$ours.pem"
}
check "EK RSA-2048 (L-1) equals tpm2_createek -G rsa" ek_matches_createek rsa rsa
check "EK ECC P-256 (L-2) equals tpm2_createek -G ecc" ek_matches_createek p256 ecc
check "EK ECC P-384 (H-3) equals tpm2_createek -G ecc384" ek_matches_createek p384 ecc384

# 2. The EK certificate chain verifies with openssl against the swtpm local CA,
#    and not against another CA; the certified key is the EK hal created.
ek_cert_chain() {
    "$probe" ekcert "$1" "$work/ek-$1.der" &&
        openssl x509 -inform der -in "$work/ek-$1.der" -out "$work/ek-$1.crt" &&
        openssl verify -CAfile "$TETHER_TEST_SWTPM_CA/swtpm-localca-rootca-cert.pem" \
            -untrusted "$TETHER_TEST_SWTPM_CA/issuercert.pem" "$work/ek-$1.crt"
}
ek_cert_key_is_ek() {
    openssl x509 -in "$work/ek-$1.crt" -noout -pubkey >"$work/cert-key-$1.pem" &&
        cmp "$work/cert-key-$1.pem" "$work/ek-$1.pem"
}
ek_cert_other_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca \
        -keyout "$work/other.key" -out "$work/other.crt" -days 1 &&
        ! openssl verify -CAfile "$work/other.crt" "$work/ek-p384.crt"
}
check "EK certificate (P-384) chain verifies with openssl" ek_cert_chain p384
check "EK certificate (RSA) chain verifies with openssl" ek_cert_chain rsa
check "EK certificate (P-384) certifies the EK hal derives" ek_cert_key_is_ek p384
check "EK certificate (RSA) certifies the EK hal derives" ek_cert_key_is_ek rsa
check "EK certificate does not verify against another CA" ek_cert_other_ca

# 3. A quote made by hal verifies with tpm2_checkquote, PCR values included;
#    a wrong nonce or a changed quote does not.
nonce=$(openssl rand -hex 32)
quote_verifies() {
    "$probe" quote "$work" "$nonce" &&
        tpm2_pcrread -F serialized -o "$work/pcrs.bin" sha256:0,1,2,3,4,5,6,7 &&
        tpm2_checkquote -u "$work/ak.pem" -m "$work/quote.msg" -s "$work/quote.sig" \
            -f "$work/pcrs.bin" -g sha256 -q "$nonce"
}
quote_wrong_nonce() {
    refuses tpm2_checkquote -u "$work/ak.pem" -m "$work/quote.msg" -s "$work/quote.sig" \
        -f "$work/pcrs.bin" -g sha256 -q "$(openssl rand -hex 32)"
}
quote_tampered() {
    cp "$work/quote.msg" "$work/tampered.msg" &&
        printf '\x01' | dd of="$work/tampered.msg" bs=1 seek=20 conv=notrunc status=none &&
        refuses tpm2_checkquote -u "$work/ak.pem" -m "$work/tampered.msg" -s "$work/quote.sig" \
            -f "$work/pcrs.bin" -g sha256 -q "$nonce"
}
check "quote verifies with tpm2_checkquote" quote_verifies
check "tpm2_checkquote refuses the quote with another nonce" quote_wrong_nonce
check "tpm2_checkquote refuses a changed quote" quote_tampered

# 4. A credential made by tpm2_makecredential (in software, no TPM) activates
#    through hal for an RSA and an ECC EK; one bound to another name does not.
activate() {
    local type=$1 dir=$work/act-$1
    mkdir -p "$dir" &&
        "$probe" mkak "$dir" "$type" &&
        openssl rand 32 >"$dir/secret" &&
        tpm2_makecredential -T none -u "$dir/ek.pub" -s "$dir/secret" -n "$(cat "$dir/ak.name")" \
            -o "$dir/cred" &&
        "$probe" activate "$dir" "$dir/cred" "$dir/recovered" "$type" &&
        cmp "$dir/secret" "$dir/recovered"
}
activate_other_name() {
    local dir=$work/act-$1 other
    other=$(sed 's/.$/0/' "$dir/ak.name")
    [ "$other" = "$(cat "$dir/ak.name")" ] && other=$(sed 's/.$/1/' "$dir/ak.name")
    tpm2_makecredential -T none -u "$dir/ek.pub" -s "$dir/secret" -n "$other" -o "$dir/cred2" &&
        refuses "$probe" activate "$dir" "$dir/cred2" "$dir/recovered2" "$1"
}
check "tpm2_makecredential + hal ActivateCredential (RSA EK)" activate rsa
check "tpm2_makecredential + hal ActivateCredential (ECC P-384 EK)" activate p384
check "ActivateCredential refuses a credential for another name (RSA EK)" activate_other_name rsa
check "ActivateCredential refuses a credential for another name (ECC EK)" activate_other_name p384

# 5. tether-agent selftest end to end.
check "tether-agent selftest passes" "$(dirname "$probe")/../bin/tether-agent" selftest \
    --tcti "$TETHER_TEST_TCTI" --quotes 3

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
