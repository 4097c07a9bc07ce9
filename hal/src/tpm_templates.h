/*
 * Public-area templates: the TCG EK templates and tether's own key templates.
 * Shared by the ESAPI implementation and the fake so both create the same
 * objects.
 */
#ifndef TETHER_TPM_TEMPLATES_H
#define TETHER_TPM_TEMPLATES_H

#include "tether/tpm.h"

/* TCG EK Credential Profile 2.x, templates L-1, L-2 and H-3. */
void tether_ek_template(tether_ek_type_t type, TPM2B_PUBLIC *tmpl);

/* AK: restricted ECDSA-SHA256 P-256 signing key; device key: the same but
 * unrestricted. Both fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth. */
void tether_key_template(tether_key_kind_t kind, TPM2B_PUBLIC *tmpl);

/* The NV counter's public area (TPM_NT_COUNTER, AUTHREAD|AUTHWRITE|NO_DA). */
void tether_counter_template(TPM2_HANDLE nv_index, TPM2B_NV_PUBLIC *tmpl);

#endif
