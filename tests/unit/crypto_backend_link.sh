#!/bin/sh
# crypto_backend_link.sh AGENT SERVER...: the agent verifies with mbedTLS and
# is not linked against OpenSSL's libcrypto (its own NEEDED entries and the
# symbols it imports; ldd also lists the libcrypto that libcurl brings, which
# the agent's code never calls), and each server imports libcrypto's ECDSA
# verification and signing (lib's tether_crypto_openssl).
set -eu
agent=$1
shift
status=0
if readelf -d "$agent" | grep -E 'NEEDED.*\[lib(crypto|ssl)\.so' >/dev/null; then
    echo "FAIL: $agent is linked against OpenSSL:" >&2
    readelf -d "$agent" | grep NEEDED >&2
    status=1
fi
if nm -D --undefined-only "$agent" | grep -E ' (EVP|OSSL|ECDSA|BN)_' >/dev/null; then
    echo "FAIL: $agent imports OpenSSL functions:" >&2
    nm -D --undefined-only "$agent" | grep -E ' (EVP|OSSL|ECDSA|BN)_' >&2
    status=1
fi
if ! nm -D --undefined-only "$agent" | grep -E ' mbedtls_ecdsa_verify' >/dev/null; then
    echo "FAIL: $agent does not verify with mbedTLS" >&2
    status=1
fi
for server in "$@"; do
    if ! nm -D --undefined-only "$server" | grep -E ' EVP_PKEY_verify(@|$)' >/dev/null; then
        echo "FAIL: $server does not verify with libcrypto (tether_crypto_openssl)" >&2
        status=1
    fi
    if ! nm -D --undefined-only "$server" | grep -E ' EVP_PKEY_sign(@|$)' >/dev/null; then
        echo "FAIL: $server does not sign with libcrypto (tether_crypto_openssl)" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] && echo "agent: mbedTLS only; servers: libcrypto's ECDSA verification and signing"
exit "$status"
