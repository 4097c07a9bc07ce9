/*
 * lib over mbedTLS, for code that is built on mbedTLS itself: the software
 * fake TPM, tests and TPM probes. Not part of lib's public interface
 * (lib/include), which takes no mbedTLS type so that a server can verify with
 * another library; a target reaches this header only by linking
 * tether_lib_mbedtls.
 */
#ifndef TETHER_MBEDTLS_BRIDGE_H
#define TETHER_MBEDTLS_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <tss2/tss2_tpm2_types.h>

#include "tether/crypto.h"
#include "tether/error.h"

/* The mbedTLS context inside key (owned by key, valid until it is freed), or
 * NULL for an empty key. Only read it. */
const mbedtls_pk_context *tether_ec_key_pk(const tether_ec_key_t *key);

/* The certificates of set as one mbedTLS chain (owned by set, valid until
 * it is freed or added to), or NULL while it holds no certificate. Only
 * read it. */
mbedtls_x509_crt *tether_cert_set_chain(const tether_cert_set_t *set);

/* Sets up pk (initialised by the caller, freed by the caller) with the public
 * key of an RSA or ECC (P-256, P-384, P-521) public area.
 * TETHER_ERR_UNSUPPORTED for other types or curves, TETHER_ERR_PARSE for a
 * point not on the curve or an empty modulus. */
TETHER_MUST_CHECK tether_status_t tether_tpm2_public_to_pk(const TPMT_PUBLIC *pub,
                                                           mbedtls_pk_context *pk);

/* TETHER_OK when the public area holds the same key as pk (compared as
 * SubjectPublicKeyInfo DER), TETHER_ERR_EK_MISMATCH otherwise. */
TETHER_MUST_CHECK tether_status_t tether_tpm2_public_matches_pk(const TPMT_PUBLIC *pub,
                                                                mbedtls_pk_context *pk);

#endif
