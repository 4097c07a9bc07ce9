/*
 * TPMS_ATTEST (TPM2 Part 2, 10.12.12) parsed from the bytes a TPM signed,
 * with bounds checks: the structures that carry quotes, certifications and
 * NV certifications.
 */
#ifndef TETHER_ATTEST_H
#define TETHER_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include <tss2/tss2_tpm2_types.h>

#include "tether/error.h"

/* Parses attest (as signed) into out. TETHER_ERR_PARSE when the bytes do not
 * unmarshal exactly (no trailing bytes), when magic is not TPM_GENERATED_VALUE
 * or when type is not expected_type (pass 0 to accept any attestation type). */
TETHER_MUST_CHECK tether_status_t tether_attest_parse(const uint8_t *attest, size_t len,
                                                      TPMI_ST_ATTEST expected_type,
                                                      TPMS_ATTEST *out);

#endif
