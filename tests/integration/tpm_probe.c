/*
 * tether-tpm-probe: writes what hal produces into files in the formats
 * tpm2-tools and openssl read, so that interop.sh can check hal's output
 * with tools nobody here wrote. A test program, not a product.
 *
 *   tpm_probe ekpub TYPE OUT.pem      EK public key (created from template)
 *   tpm_probe ekcert TYPE OUT.der     EK certificate from NV
 *   tpm_probe quote DIR NONCE_HEX     AK quote over sha256:0-7: DIR/quote.msg,
 *                                     DIR/quote.sig (TPMT_SIGNATURE), DIR/ak.pem
 *   tpm_probe mkak DIR TYPE           AK under the EK: DIR/ek.pub (TPM2B_PUBLIC),
 *                                     DIR/ak.blob, DIR/ak.name (hex)
 *   tpm_probe activate DIR CRED OUT TYPE  ActivateCredential of a tpm2_makecredential
 *                                     file with DIR's AK; secret written to OUT
 *
 * TYPE is p256, p384 or rsa. The TPM is TETHER_TEST_TCTI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/pk.h>
#include <tss2/tss2_mu.h>

#include "tether/bytes.h"
#include "tether/mbedtls_bridge.h"
#include "tether/tpm.h"
#include "tether/tpm2_public.h"

static tether_tpm_t tpm;

static int die(const char *what)
{
    fprintf(stderr, "tpm_probe: %s: %s\n", what, tpm.last_error[0] ? tpm.last_error : "failed");
    return 1;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    FILE *f;
    int ok;

    snprintf(path, sizeof(path), "%s%s%s", dir, name[0] ? "/" : "", name);
    if ((f = fopen(path, "wb")) == NULL)
        return -1;
    ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static long read_file(const char *dir, const char *name, uint8_t *buf, size_t size)
{
    char path[4096];
    FILE *f;
    size_t len;

    snprintf(path, sizeof(path), "%s%s%s", dir, name[0] ? "/" : "", name);
    if ((f = fopen(path, "rb")) == NULL)
        return -1;
    len = fread(buf, 1, size, f);
    fclose(f);
    return len == size ? -1 : (long)len;
}

static int parse_type(const char *s, tether_ek_type_t *type)
{
    if (strcmp(s, "p256") == 0)
        *type = TETHER_EK_ECC_P256;
    else if (strcmp(s, "p384") == 0)
        *type = TETHER_EK_ECC_P384;
    else if (strcmp(s, "rsa") == 0)
        *type = TETHER_EK_RSA2048;
    else
        return -1;
    return 0;
}

static int write_pem(const TPMT_PUBLIC *pub, const char *path)
{
    mbedtls_pk_context pk;
    unsigned char pem[4096];
    int rc = -1;

    mbedtls_pk_init(&pk);
    if (tether_tpm2_public_to_pk(pub, &pk) == TETHER_OK &&
        mbedtls_pk_write_pubkey_pem(&pk, pem, sizeof(pem)) == 0)
        rc = write_file(path, "", pem, strlen((char *)pem));
    mbedtls_pk_free(&pk);
    return rc;
}

static int cmd_ekpub(tether_ek_type_t type, const char *out)
{
    tether_tpm_handle_t ek;
    TPM2B_PUBLIC pub;

    if (tether_tpm_create_ek(&tpm, type, &ek, &pub) != TETHER_OK)
        return die("create EK");
    (void)tether_tpm_flush(&tpm, ek);
    return write_pem(&pub.publicArea, out) == 0 ? 0 : die("write PEM");
}

static int cmd_ekcert(tether_ek_type_t type, const char *out)
{
    tether_ek_t ek;
    int rc;

    if (tether_ek_open(&tpm, type, &ek) != TETHER_OK)
        return die("open EK");
    rc = write_file(out, "", ek.cert_der, ek.cert_len);
    tether_ek_free(&tpm, &ek);
    return rc == 0 ? 0 : die("write certificate");
}

static int cmd_quote(const char *dir, const char *nonce_hex)
{
    tether_ek_t ek;
    tether_tpm_key_blob_t blob;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    tether_tpm_attestation_t quote;
    TPML_PCR_SELECTION pcrs = {.count = 1};
    uint8_t nonce[TETHER_TPM_MAX_QUALIFYING], sig[sizeof(TPMT_SIGNATURE)];
    size_t nonce_len, sig_len = 0;
    int rc = 1;

    if (tether_hex_decode(nonce_hex, strlen(nonce_hex), nonce, sizeof(nonce), &nonce_len) !=
        TETHER_OK)
        return die("nonce is not hex");
    pcrs.pcrSelections[0].hash = TPM2_ALG_SHA256;
    pcrs.pcrSelections[0].sizeofSelect = 3;
    pcrs.pcrSelections[0].pcrSelect[0] = 0xff;
    if (tether_ek_open(&tpm, TETHER_EK_ANY, &ek) != TETHER_OK)
        return die("open EK");
    if (tether_tpm_create_key(&tpm, ek.handle, TETHER_KEY_AK, &blob) != TETHER_OK ||
        tether_tpm_load_key(&tpm, ek.handle, &blob, &ak) != TETHER_OK ||
        tether_tpm_quote(&tpm, ak, &pcrs, nonce, nonce_len, &quote) != TETHER_OK) {
        rc = die("quote");
        goto out;
    }
    if (Tss2_MU_TPMT_SIGNATURE_Marshal(&quote.signature, sig, sizeof(sig), &sig_len) !=
            TSS2_RC_SUCCESS ||
        write_file(dir, "quote.msg", quote.attest.attestationData, quote.attest.size) != 0 ||
        write_file(dir, "quote.sig", sig, sig_len) != 0) {
        rc = die("write quote");
        goto out;
    }
    {
        char path[4096];
        snprintf(path, sizeof(path), "%s/ak.pem", dir);
        rc = write_pem(&blob.public_area.publicArea, path) == 0 ? 0 : die("write AK");
    }
out:
    (void)tether_tpm_flush(&tpm, ak);
    tether_ek_free(&tpm, &ek);
    return rc;
}

static int cmd_mkak(const char *dir, tether_ek_type_t type)
{
    tether_ek_t ek;
    tether_tpm_key_blob_t blob;
    uint8_t buf[4096];
    size_t len = 0;
    TPM2B_NAME name;
    char hex[2 * sizeof(name.name) + 1];
    int rc = 1;

    if (tether_ek_open(&tpm, type, &ek) != TETHER_OK)
        return die("open EK");
    if (tether_tpm_create_key(&tpm, ek.handle, TETHER_KEY_AK, &blob) != TETHER_OK) {
        rc = die("create AK");
        goto out;
    }
    if (Tss2_MU_TPM2B_PUBLIC_Marshal(&ek.public_area, buf, sizeof(buf), &len) != TSS2_RC_SUCCESS ||
        write_file(dir, "ek.pub", buf, len) != 0 ||
        tether_tpm_key_blob_marshal(&blob, buf, sizeof(buf), &len) != TETHER_OK ||
        write_file(dir, "ak.blob", buf, len) != 0 ||
        tether_tpm2_public_name(&blob.public_area.publicArea, &name) != TETHER_OK ||
        tether_hex_encode(name.name, name.size, hex, sizeof(hex)) != TETHER_OK ||
        write_file(dir, "ak.name", hex, strlen(hex)) != 0) {
        rc = die("write AK files");
        goto out;
    }
    rc = 0;
out:
    tether_ek_free(&tpm, &ek);
    return rc;
}

/* tpm2-tools' credential file: magic 0xBADCC0DE, version 1 (both big-endian
 * 32-bit), TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
static int cmd_activate(const char *dir, const char *cred_path, const char *out_path,
                        tether_ek_type_t type)
{
    uint8_t buf[4096];
    long len;
    size_t offset = 8;
    tether_tpm_key_blob_t blob;
    TPM2B_ID_OBJECT credential;
    TPM2B_ENCRYPTED_SECRET secret;
    TPM2B_DIGEST recovered;
    tether_ek_t ek;
    tether_tpm_handle_t ak = TETHER_TPM_HANDLE_NONE;
    int rc = 1;

    if ((len = read_file(cred_path, "", buf, sizeof(buf))) < 8 ||
        memcmp(buf, "\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) != 0 ||
        Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, (size_t)len, &offset, &credential) !=
            TSS2_RC_SUCCESS ||
        Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(buf, (size_t)len, &offset, &secret) !=
            TSS2_RC_SUCCESS)
        return die("parse credential file");
    if ((len = read_file(dir, "ak.blob", buf, sizeof(buf))) < 0 ||
        tether_tpm_key_blob_unmarshal(buf, (size_t)len, &blob) != TETHER_OK)
        return die("read AK blob");
    if (tether_ek_open(&tpm, type, &ek) != TETHER_OK)
        return die("open EK");
    if (tether_tpm_load_key(&tpm, ek.handle, &blob, &ak) != TETHER_OK ||
        tether_tpm_activate_credential(&tpm, ak, ek.handle, &credential, &secret, &recovered) !=
            TETHER_OK) {
        rc = die("activate credential");
        goto out;
    }
    rc = write_file(out_path, "", recovered.buffer, recovered.size) == 0 ? 0 : die("write secret");
out:
    (void)tether_tpm_flush(&tpm, ak);
    tether_ek_free(&tpm, &ek);
    return rc;
}

int main(int argc, char **argv)
{
    const char *tcti = getenv("TETHER_TEST_TCTI");
    tether_ek_type_t type = TETHER_EK_ANY;
    int rc = 2;

    if (argc < 3 || tcti == NULL) {
        fprintf(stderr, "usage: see the comment at the top of tpm_probe.c; needs TETHER_TEST_TCTI\n");
        return 2;
    }
    tether_tpm_init(&tpm);
    if (tether_tpm_open_esapi(&tpm, tcti) != TETHER_OK)
        return die("open TPM");
    if (strcmp(argv[1], "ekpub") == 0 && argc == 4 && parse_type(argv[2], &type) == 0)
        rc = cmd_ekpub(type, argv[3]);
    else if (strcmp(argv[1], "ekcert") == 0 && argc == 4 && parse_type(argv[2], &type) == 0)
        rc = cmd_ekcert(type, argv[3]);
    else if (strcmp(argv[1], "quote") == 0 && argc == 4)
        rc = cmd_quote(argv[2], argv[3]);
    else if (strcmp(argv[1], "mkak") == 0 && argc == 4 && parse_type(argv[3], &type) == 0)
        rc = cmd_mkak(argv[2], type);
    else if (strcmp(argv[1], "activate") == 0 && argc == 6 && parse_type(argv[5], &type) == 0)
        rc = cmd_activate(argv[2], argv[3], argv[4], type);
    else
        fprintf(stderr, "tpm_probe: bad command line\n");
    tether_tpm_close(&tpm);
    return rc;
}
