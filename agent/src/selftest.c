/*
 * tether-agent selftest: is the TPM reachable, who made it, which EK does
 * tether use, and does a quote made by a fresh AK verify in software?
 */
#include "selftest.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/x509_crt.h>

#include "options.h"
#include "tether/attest.h"
#include "tether/bytes.h"
#include "tether/enroll.h"
#include "tether/random.h"
#include "tether/tpm.h"
#include "tether/tpm2_public.h"

typedef struct selftest_options {
    const char *tcti;
    tether_ek_type_t ek_type;
    unsigned long quotes;
} selftest_options_t;

static void selftest_usage(FILE *out)
{
    fputs("Usage: tether-agent selftest [--tcti TCTI] [--ek any|p256|p384|rsa] [--quotes N]\n"
          "\n"
          "Reports the TPM's manufacturer, firmware and PCR banks, selects the EK whose\n"
          "certificate is in NV and checks the EK against it (its SHA-256 is what a\n"
          "fleet's allow list holds), then creates an AK under\n"
          "the EK and runs N quote round trips (quote with a random nonce, verify the\n"
          "signature, the nonce and the signer in software).\n"
          "\n"
          "  --tcti TCTI    tpm2-tss TCTI configuration, e.g. device:/dev/tpmrm0 or\n"
          "                 swtpm:host=127.0.0.1,port=2321 (default: the TSS default)\n"
          "  --ek TYPE      EK to use: any (first with a certificate; default), p256,\n"
          "                 p384 or rsa\n"
          "  --quotes N     quote round trips to run (default 1, at most 100000)\n"
          "  -h, --help     show this help\n"
          "\n"
          "Exit status: 0 when every check passed, 1 when one failed, 2 on bad usage.\n",
          out);
}

static int parse_options(int argc, char **argv, selftest_options_t *opts)
{
    static const struct option long_options[] = {
        TETHER_AGENT_TCTI_LONG_OPTION,
        {"ek", required_argument, NULL, 'e'},
        {"quotes", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opts->tcti = NULL;
    opts->ek_type = TETHER_EK_ANY;
    opts->quotes = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        char *end = NULL;

        switch (c) {
        case TETHER_AGENT_TCTI_OPTION:
            opts->tcti = optarg;
            break;
        case 'e':
            if (strcmp(optarg, "any") == 0)
                opts->ek_type = TETHER_EK_ANY;
            else if (strcmp(optarg, "p256") == 0)
                opts->ek_type = TETHER_EK_ECC_P256;
            else if (strcmp(optarg, "p384") == 0)
                opts->ek_type = TETHER_EK_ECC_P384;
            else if (strcmp(optarg, "rsa") == 0)
                opts->ek_type = TETHER_EK_RSA2048;
            else {
                fprintf(stderr, "tether-agent selftest: --ek must be any, p256, p384 or rsa\n");
                return 2;
            }
            break;
        case 'q':
            opts->quotes = strtoul(optarg, &end, 10);
            if (end == optarg || *end != '\0' || opts->quotes == 0 || opts->quotes > 100000) {
                fprintf(stderr, "tether-agent selftest: --quotes must be 1..100000\n");
                return 2;
            }
            break;
        case 'h':
            selftest_usage(stdout);
            return 0;
        default:
            selftest_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "tether-agent selftest: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return -1;
}

static const char *hash_name(TPMI_ALG_HASH alg)
{
    switch (alg) {
    case TPM2_ALG_SHA1: return "sha1";
    case TPM2_ALG_SHA256: return "sha256";
    case TPM2_ALG_SHA384: return "sha384";
    case TPM2_ALG_SHA512: return "sha512";
    case TPM2_ALG_SM3_256: return "sm3_256";
    default: return "unknown";
    }
}

static void print_info(const tether_tpm_info_t *info)
{
    printf("TPM manufacturer: %s\n", info->manufacturer);
    printf("TPM vendor:       %s\n", info->vendor);
    printf("TPM firmware:     %u.%u.%u.%u\n", info->firmware_version_1 >> 16,
           info->firmware_version_1 & 0xffff, info->firmware_version_2 >> 16,
           info->firmware_version_2 & 0xffff);
    printf("TPM spec:         1.%02u\n", info->spec_revision % 100);
    printf("PCR banks:       ");
    for (size_t i = 0; i < info->pcr_bank_count; i++)
        printf(" %s", hash_name(info->pcr_banks[i]));
    printf("\n");
}

static int print_ek(const tether_ek_t *ek)
{
    mbedtls_x509_crt crt;
    char subject[512], issuer[512], hash_hex[65];
    uint8_t hash[32];
    int ok;

    mbedtls_x509_crt_init(&crt);
    ok = mbedtls_x509_crt_parse_der(&crt, ek->cert_der, ek->cert_len) == 0 &&
         mbedtls_x509_dn_gets(subject, sizeof(subject), &crt.subject) >= 0 &&
         mbedtls_x509_dn_gets(issuer, sizeof(issuer), &crt.issuer) >= 0;
    ok = ok && tether_ek_sha256(&ek->public_area.publicArea, hash) == TETHER_OK &&
         tether_hex_encode(hash, sizeof(hash), hash_hex, sizeof(hash_hex)) == TETHER_OK;
    if (ok) {
        printf("EK type:          %s (certificate at NV 0x%08x)\n", tether_ek_type_name(ek->type),
               tether_ek_cert_nv_index(ek->type));
        printf("EK SHA-256:       %s\n", hash_hex);
        printf("EK certificate:   subject \"%s\", issuer \"%s\"\n", subject, issuer);
        printf("EK check:         public key matches the certificate\n");
    }
    mbedtls_x509_crt_free(&crt);
    return ok ? 0 : -1;
}

/* One quote with a fresh nonce, checked as a verifier would check it. */
static tether_status_t quote_round_trip(tether_tpm_t *tpm, tether_tpm_handle_t ak,
                                        const TPM2B_PUBLIC *ek_public,
                                        const TPM2B_PUBLIC *ak_public,
                                        const TPML_PCR_SELECTION *pcrs, const char **why)
{
    tether_tpm_attestation_t quote;
    uint8_t nonce[32];
    TPMS_ATTEST attest;
    TPM2B_NAME ek_qn, ak_qn;
    tether_status_t rc;

    if ((rc = tether_random_bytes(nonce, sizeof(nonce))) != TETHER_OK) {
        *why = "no random bytes";
        return rc;
    }
    if ((rc = tether_tpm_quote(tpm, ak, pcrs, nonce, sizeof(nonce), &quote)) != TETHER_OK) {
        *why = tpm->last_error;
        return rc;
    }
    if ((rc = tether_tpm2_verify_signature(&ak_public->publicArea, quote.attest.attestationData,
                                           quote.attest.size, &quote.signature)) != TETHER_OK) {
        *why = "the quote's signature does not verify with the AK";
        return rc;
    }
    if ((rc = tether_attest_parse(quote.attest.attestationData, quote.attest.size,
                                  TPM2_ST_ATTEST_QUOTE, &attest)) != TETHER_OK) {
        *why = "the quote is not a TPMS_ATTEST of type quote";
        return rc;
    }
    if (attest.extraData.size != sizeof(nonce) ||
        !tether_ct_equal(attest.extraData.buffer, nonce, sizeof(nonce))) {
        *why = "the quote does not carry the nonce";
        return TETHER_ERR_VERIFY;
    }
    /* The signer is named by its qualified name: endorsement hierarchy, EK, AK. */
    if ((rc = tether_tpm2_qualified_name(NULL, TPM2_RH_ENDORSEMENT, &ek_public->publicArea,
                                         &ek_qn)) != TETHER_OK ||
        (rc = tether_tpm2_qualified_name(&ek_qn, 0, &ak_public->publicArea, &ak_qn)) != TETHER_OK) {
        *why = "cannot compute the AK's qualified name";
        return rc;
    }
    if (attest.qualifiedSigner.size != ak_qn.size ||
        memcmp(attest.qualifiedSigner.name, ak_qn.name, ak_qn.size) != 0) {
        *why = "the quote names another signer than the AK";
        return TETHER_ERR_VERIFY;
    }
    return TETHER_OK;
}

int tether_agent_selftest_main(int argc, char **argv)
{
    selftest_options_t opts;
    tether_tpm_t tpm;
    tether_tpm_info_t info;
    tether_ek_t ek;
    tether_tpm_key_blob_t ak_blob;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    TPML_PCR_SELECTION pcrs = {.count = 1};
    const char *why = NULL;
    char open_error[300];
    tether_status_t rc;
    int code;

    if ((code = parse_options(argc, argv, &opts)) >= 0)
        return code;
    tether_tpm_init(&tpm);
    memset(&ek, 0, sizeof(ek));
    code = 1;
    if (tether_agent_tpm_open(&tpm, opts.tcti, open_error, sizeof(open_error)) != TETHER_OK) {
        fprintf(stderr, "tether-agent selftest: %s\n", open_error);
        goto out;
    }
    if ((rc = tether_tpm_get_info(&tpm, &info)) != TETHER_OK)
        goto fail;
    print_info(&info);
    if ((rc = tether_ek_open(&tpm, opts.ek_type, &ek)) != TETHER_OK)
        goto fail;
    if (print_ek(&ek) != 0) {
        fprintf(stderr, "tether-agent selftest: cannot print the EK certificate\n");
        goto out;
    }
    if ((rc = tether_tpm_create_key(&tpm, ek.handle, TETHER_KEY_AK, &ak_blob)) != TETHER_OK ||
        (rc = tether_tpm_load_key(&tpm, ek.handle, &ak_blob, &ak)) != TETHER_OK)
        goto fail;

    /* PCRs 0-7 of the SHA-256 bank, or of the first bank the TPM has. */
    pcrs.pcrSelections[0].hash = TPM2_ALG_SHA256;
    if (info.pcr_bank_count > 0) {
        int has_sha256 = 0;
        for (size_t i = 0; i < info.pcr_bank_count; i++)
            has_sha256 |= info.pcr_banks[i] == TPM2_ALG_SHA256;
        if (!has_sha256)
            pcrs.pcrSelections[0].hash = info.pcr_banks[0];
    }
    pcrs.pcrSelections[0].sizeofSelect = 3;
    pcrs.pcrSelections[0].pcrSelect[0] = 0xff;
    for (unsigned long i = 0; i < opts.quotes; i++) {
        if ((rc = quote_round_trip(&tpm, ak, &ek.public_area, &ak_blob.public_area, &pcrs, &why)) != TETHER_OK) {
            fprintf(stderr, "tether-agent selftest: quote %lu failed: %s\n", i + 1, why);
            goto out;
        }
    }
    printf("Quote:            %lu round trip%s over %s PCRs 0-7 verified (signature, nonce, signer)\n",
           opts.quotes, opts.quotes == 1 ? "" : "s", hash_name(pcrs.pcrSelections[0].hash));
    printf("Result:           ok\n");
    code = 0;
    goto out;
fail:
    fprintf(stderr, "tether-agent selftest: %s: %s\n", tether_strerror(rc),
            tpm.last_error[0] ? tpm.last_error : "no details");
out:
    if (ak != TETHER_TPM_HANDLE_NONE)
        (void)tether_tpm_flush(&tpm, ak);
    tether_ek_free(&tpm, &ek);
    tether_tpm_close(&tpm);
    return code;
}
