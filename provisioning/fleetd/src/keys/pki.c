#include "pki.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/bignum.h>
#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509_crt.h>

#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/random.h"

#define PEM_MAX 4096
#define CA_SUBJECT "CN=tether fleet CA,O=tether"
#define CA_YEARS 20
#define SERVER_YEARS 10

void tether_fleet_pem_free(tether_fleet_pem_t *pem)
{
    if (pem == NULL)
        return;
    if (pem->data != NULL) {
        tether_wipe(pem->data, pem->len);
        free(pem->data);
    }
    pem->data = NULL;
    pem->len = 0;
}

static tether_status_t mbed_fail(const char *what, int ret)
{
    tether_error("pki", "%s failed: mbedTLS error -0x%04x", what, (unsigned)-ret);
    return TETHER_ERR_CRYPTO;
}

/* Copies the NUL-terminated PEM in buf into a malloc'd pem. */
static tether_status_t pem_take(const unsigned char *buf, tether_fleet_pem_t *pem)
{
    size_t len = strlen((const char *)buf);

    if ((pem->data = malloc(len + 1)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    memcpy(pem->data, buf, len + 1);
    pem->len = len;
    return TETHER_OK;
}

tether_status_t tether_fleet_key_generate(mbedtls_pk_context *pk)
{
    int ret;

    if (pk == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((ret = mbedtls_pk_setup(pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY))) != 0)
        return mbed_fail("pk setup", ret);
    ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*pk), tether_random_mbedtls,
                              NULL);
    return ret == 0 ? TETHER_OK : mbed_fail("P-256 key generation", ret);
}

tether_status_t tether_fleet_key_pem(mbedtls_pk_context *pk, tether_fleet_pem_t *pem)
{
    unsigned char buf[PEM_MAX];
    tether_status_t rc = TETHER_OK;
    int ret;

    if (pk == NULL || pem == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((ret = mbedtls_pk_write_key_pem(pk, buf, sizeof(buf))) != 0)
        rc = mbed_fail("writing the private key", ret);
    else
        rc = pem_take(buf, pem);
    tether_wipe(buf, sizeof(buf));
    return rc;
}

/* t as the "YYYYMMDDHHMMSS" UTC form mbedtls_x509write_crt_set_validity takes. */
static void validity_time(time_t t, char out[15])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 15, "%Y%m%d%H%M%S", &tm);
}

static tether_status_t set_common(mbedtls_x509write_cert *crt, mbedtls_pk_context *subject_key,
                                  mbedtls_pk_context *issuer_key, int years)
{
    unsigned char serial_bytes[16];
    char not_before[15], not_after[15];
    mbedtls_mpi serial;
    time_t now = time(NULL);
    int ret;

    mbedtls_mpi_init(&serial);
    mbedtls_x509write_crt_set_version(crt, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(crt, subject_key);
    mbedtls_x509write_crt_set_issuer_key(crt, issuer_key);
    /* Positive 127-bit random serial (RFC 5280 4.1.2.2: unique, at most 20 octets). */
    if (tether_random_bytes(serial_bytes, sizeof(serial_bytes)) != TETHER_OK)
        return TETHER_ERR_CRYPTO;
    serial_bytes[0] = (unsigned char)((serial_bytes[0] & 0x7f) | 0x01);
    validity_time(now - 3600, not_before);
    validity_time(now + (time_t)years * 365 * 86400, not_after);
    if ((ret = mbedtls_mpi_read_binary(&serial, serial_bytes, sizeof(serial_bytes))) == 0 &&
        (ret = mbedtls_x509write_crt_set_serial(crt, &serial)) == 0 &&
        (ret = mbedtls_x509write_crt_set_validity(crt, not_before, not_after)) == 0 &&
        (ret = mbedtls_x509write_crt_set_issuer_name(crt, CA_SUBJECT)) == 0)
        ret = mbedtls_x509write_crt_set_authority_key_identifier(crt);
    mbedtls_mpi_free(&serial);
    return ret == 0 ? TETHER_OK : mbed_fail("certificate fields", ret);
}

static tether_status_t write_pem(mbedtls_x509write_cert *crt, tether_fleet_pem_t *pem)
{
    unsigned char buf[PEM_MAX];
    int ret = mbedtls_x509write_crt_pem(crt, buf, sizeof(buf), tether_random_mbedtls, NULL);

    if (ret != 0)
        return mbed_fail("writing the certificate", ret);
    return pem_take(buf, pem);
}

tether_status_t tether_fleet_ca_create(mbedtls_pk_context *ca_key, tether_fleet_pem_t *pem)
{
    mbedtls_x509write_cert crt;
    tether_status_t rc;
    int ret;

    if (ca_key == NULL || pem == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    mbedtls_x509write_crt_init(&crt);
    if ((rc = set_common(&crt, ca_key, ca_key, CA_YEARS)) != TETHER_OK)
        goto out;
    if ((ret = mbedtls_x509write_crt_set_subject_name(&crt, CA_SUBJECT)) != 0 ||
        (ret = mbedtls_x509write_crt_set_basic_constraints(&crt, 1, 0)) != 0 ||
        (ret = mbedtls_x509write_crt_set_subject_key_identifier(&crt)) != 0 ||
        (ret = mbedtls_x509write_crt_set_key_usage(
             &crt, MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)) != 0) {
        rc = mbed_fail("CA certificate fields", ret);
        goto out;
    }
    rc = write_pem(&crt, pem);
out:
    mbedtls_x509write_crt_free(&crt);
    return rc;
}

static int asn1_add(size_t *total, int ret)
{
    if (ret < 0)
        return ret;
    *total += (size_t)ret;
    return 0;
}

/* One GeneralName: [tag] IMPLICIT value (RFC 5280 4.2.1.6). */
static int write_general_name(unsigned char **p, unsigned char *start, unsigned char tag,
                              const unsigned char *value, size_t len, size_t *total)
{
    size_t part = 0;
    int ret;

    if ((ret = asn1_add(&part, mbedtls_asn1_write_raw_buffer(p, start, value, len))) != 0 ||
        (ret = asn1_add(&part, mbedtls_asn1_write_len(p, start, part))) != 0 ||
        (ret = asn1_add(&part, mbedtls_asn1_write_tag(p, start, tag))) != 0)
        return ret;
    *total += part;
    return 0;
}

tether_status_t tether_fleet_san_der(const char *host, unsigned char *buf, size_t size,
                                     unsigned char **der, size_t *der_len)
{
    unsigned char ip[16];
    size_t ip_len;
    unsigned char *p;
    size_t total = 0;
    int ret;

    if (host == NULL || buf == NULL || der == NULL || der_len == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (inet_pton(AF_INET, host, ip) == 1)
        ip_len = 4;
    else if (inet_pton(AF_INET6, host, ip) == 1)
        ip_len = 16;
    else
        return TETHER_ERR_PARSE;
    p = buf + size;
    /* ASN.1 is written backwards: the last GeneralName first. */
    if ((ret = write_general_name(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 7, ip, ip_len,
                                  &total)) != 0 ||
        (ret = write_general_name(&p, buf, MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2,
                                  (const unsigned char *)host, strlen(host), &total)) != 0 ||
        (ret = asn1_add(&total, mbedtls_asn1_write_len(&p, buf, total))) != 0 ||
        (ret = asn1_add(&total, mbedtls_asn1_write_tag(&p, buf, MBEDTLS_ASN1_CONSTRUCTED |
                                                                   MBEDTLS_ASN1_SEQUENCE))) != 0)
        return mbed_fail("subjectAltName encoding", ret);
    *der = p;
    *der_len = total;
    return TETHER_OK;
}

/* ExtKeyUsageSyntax ::= SEQUENCE OF KeyPurposeId, here { id-kp-serverAuth }. */
static tether_status_t set_server_auth(mbedtls_x509write_cert *crt)
{
    static const unsigned char der[] = {
        MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE, 10, MBEDTLS_ASN1_OID, 8,
        0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01};
    int ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                                  0, der, sizeof(der));
    return ret == 0 ? TETHER_OK : mbed_fail("extendedKeyUsage", ret);
}

static tether_status_t set_san(mbedtls_x509write_cert *crt, const char *host)
{
    unsigned char buf[128];
    unsigned char *der = NULL;
    size_t der_len = 0;
    tether_status_t rc;
    int ret;

    if ((rc = tether_fleet_san_der(host, buf, sizeof(buf), &der, &der_len)) != TETHER_OK)
        return rc;
    ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                              MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), 0,
                                              der, der_len);
    return ret == 0 ? TETHER_OK : mbed_fail("subjectAltName", ret);
}

tether_status_t tether_fleet_server_cert_create(mbedtls_pk_context *ca_key,
                                                mbedtls_pk_context *server_key, const char *host,
                                                tether_fleet_pem_t *pem)
{
    mbedtls_x509write_cert crt;
    char subject[96];
    tether_status_t rc;
    int ret;

    if (ca_key == NULL || server_key == NULL || host == NULL || pem == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (snprintf(subject, sizeof(subject), "CN=%s,O=tether", host) >= (int)sizeof(subject))
        return TETHER_ERR_TOO_LARGE;
    mbedtls_x509write_crt_init(&crt);
    if ((rc = set_common(&crt, server_key, ca_key, SERVER_YEARS)) != TETHER_OK)
        goto out;
    if ((ret = mbedtls_x509write_crt_set_subject_name(&crt, subject)) != 0 ||
        (ret = mbedtls_x509write_crt_set_basic_constraints(&crt, 0, -1)) != 0 ||
        (ret = mbedtls_x509write_crt_set_subject_key_identifier(&crt)) != 0 ||
        (ret = mbedtls_x509write_crt_set_key_usage(&crt, MBEDTLS_X509_KU_DIGITAL_SIGNATURE)) != 0) {
        rc = mbed_fail("server certificate fields", ret);
        goto out;
    }
    if ((rc = set_san(&crt, host)) != TETHER_OK || (rc = set_server_auth(&crt)) != TETHER_OK)
        goto out;
    rc = write_pem(&crt, pem);
out:
    mbedtls_x509write_crt_free(&crt);
    return rc;
}
