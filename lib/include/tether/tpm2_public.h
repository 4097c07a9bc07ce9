/*
 * TPM public areas and signatures checked in software: turning a TPMT_PUBLIC
 * into a P-256 key, comparing it with a certificate's key, verifying a
 * TPMT_SIGNATURE. Used by the device (EK certificate check) and by fleetd
 * (verifying what a TPM signed). Pure: no TPM is involved.
 */
#ifndef TETHER_TPM2_PUBLIC_H
#define TETHER_TPM2_PUBLIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tether/crypto.h"
#include "tether/error.h"

/* Sets key (initialised with tether_ec_key_init, still empty; freed by the
 * caller) to the public key of an ECC P-256 public area.
 * TETHER_ERR_UNSUPPORTED for other types or curves, TETHER_ERR_PARSE for a
 * coordinate that is not 32 bytes or a point not on the curve. On error key
 * stays empty. (tether/mbedtls_bridge.h converts any TPM key to mbedTLS.) */
TETHER_MUST_CHECK tether_status_t tether_tpm2_public_to_ec_key(const TPMT_PUBLIC *pub,
                                                               tether_ec_key_t *key);

/* TETHER_OK when the public area holds the same key as the certificate
 * (compared as SubjectPublicKeyInfo DER), TETHER_ERR_EK_MISMATCH otherwise,
 * TETHER_ERR_PARSE if the DER X.509 certificate does not parse. */
TETHER_MUST_CHECK tether_status_t tether_tpm2_public_matches_cert(const TPMT_PUBLIC *pub,
                                                                  const uint8_t *cert_der,
                                                                  size_t cert_len);

/* Verifies a TPM signature (ECDSA or RSASSA, SHA-256/384/512) over data with
 * the key in pub. TETHER_ERR_VERIFY if it does not verify, or if an ECDSA r
 * or s is not written as a TPM writes it: 1 to the order's byte size (32 for
 * P-256), either that full width or without a leading zero byte, and in
 * [1, n-1]. A high s (above n/2) is accepted: TPMs produce it, and neither
 * form of s is canonical for them (a caller that must tell two signatures of
 * one message apart compares what was signed, not the signature). */
TETHER_MUST_CHECK tether_status_t tether_tpm2_verify_signature(const TPMT_PUBLIC *pub,
                                                               const uint8_t *data, size_t len,
                                                               const TPMT_SIGNATURE *sig);

/* Computes an object's name: nameAlg || H_nameAlg(marshalled TPMT_PUBLIC)
 * (TPM2 Part 1, 16). */
TETHER_MUST_CHECK tether_status_t tether_tpm2_public_name(const TPMT_PUBLIC *pub, TPM2B_NAME *name);

/* Qualified name of an object (TPM2 Part 1, 16): nameAlg ||
 * H_nameAlg(parent's qualified name || object's name). For a primary object
 * pass parent_qn = NULL and the hierarchy handle (e.g. TPM2_RH_ENDORSEMENT),
 * whose qualified name is the handle itself. */
TETHER_MUST_CHECK tether_status_t tether_tpm2_qualified_name(const TPM2B_NAME *parent_qn,
                                                             TPM2_HANDLE hierarchy,
                                                             const TPMT_PUBLIC *pub,
                                                             TPM2B_NAME *qn);

/* The owner range of NV indices (TCG Registry of Reserved TPM 2.0 Handles
 * and Localities, 2.2): the only indices tether defines, and so the only
 * place an enrolled exchange counter may live. */
#define TETHER_NV_OWNER_FIRST 0x01000000u
#define TETHER_NV_OWNER_LAST 0x013fffffu

/* Whether index lies in the owner range. Takes any width so that a value
 * parsed from text is checked before it is narrowed to a TPM2_HANDLE. */
bool tether_nv_index_is_owner(uint64_t index);

/* Message digest type of a TPM hash algorithm, or MBEDTLS_MD_NONE. */
int tether_tpm2_md_type(TPMI_ALG_HASH alg);

#endif
