/*
 * The fleet's own keys and certificates, made with mbedTLS at init: the
 * issuer signing key (ES256 access tokens), a TLS CA (what devices and
 * tetherctl pin) and the HTTPS server certificate for the listen address.
 * PEM buffers handed out are malloc'd and NUL-terminated; key PEMs are
 * secret: the caller wipes them (tether_fleet_pem_free does).
 */
#ifndef TETHER_FLEET_PKI_H
#define TETHER_FLEET_PKI_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/pk.h>

#include "tether/error.h"

typedef struct tether_fleet_pem {
    char *data; /* NUL-terminated */
    size_t len; /* without the NUL */
} tether_fleet_pem_t;

/* Wipes and frees; accepts NULL and empty. */
void tether_fleet_pem_free(tether_fleet_pem_t *pem);

/* Generates an ECC P-256 key into pk (initialised by the caller). */
TETHER_MUST_CHECK tether_status_t tether_fleet_key_generate(mbedtls_pk_context *pk);

/* The private key as SEC1 "EC PRIVATE KEY" PEM. */
TETHER_MUST_CHECK tether_status_t tether_fleet_key_pem(mbedtls_pk_context *pk,
                                                       tether_fleet_pem_t *pem);

/* A self-signed CA certificate for ca_key (CN "tether fleet CA"). */
TETHER_MUST_CHECK tether_status_t tether_fleet_ca_create(mbedtls_pk_context *ca_key,
                                                         tether_fleet_pem_t *pem);

/* A TLS server certificate for server_key, issued by ca_key, naming host (an
 * IP literal) as CN, as a dNSName (mbedTLS 2.28 clients match only CN and
 * dNSName) and as an iPAddress (what curl, OpenSSL and browsers match). */
TETHER_MUST_CHECK tether_status_t tether_fleet_server_cert_create(mbedtls_pk_context *ca_key,
                                                                  mbedtls_pk_context *server_key,
                                                                  const char *host,
                                                                  tether_fleet_pem_t *pem);

/* The DER of a subjectAltName extension value with one dNSName and one
 * iPAddress for host, written at the end of buf; *der points into buf. */
TETHER_MUST_CHECK tether_status_t tether_fleet_san_der(const char *host, unsigned char *buf,
                                                       size_t size, unsigned char **der,
                                                       size_t *der_len);

#endif
