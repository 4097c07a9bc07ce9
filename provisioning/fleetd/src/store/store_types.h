/*
 * The fleet store's sizes and what every subject's header shares
 * (store.h includes them all).
 */
#ifndef TETHER_FLEET_STORE_TYPES_H
#define TETHER_FLEET_STORE_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

/* The store handle (store.h). */
typedef struct tether_store tether_store_t;

#define TETHER_STORE_HASH_SIZE 32                  /* SHA-256 of a secret token */
#define TETHER_STORE_DEVICE_ID_SIZE 29             /* "dev_" + 24 hex digits + NUL */
#define TETHER_STORE_EK_SHA256_SIZE 65             /* 64 lowercase hex digits + NUL */
#define TETHER_STORE_NAME_MAX 64                   /* device and token names, bytes */
#define TETHER_STORE_REASON_MAX 256                /* status reasons, bytes */
#define TETHER_STORE_ENROLLMENT_ID_SIZE 37         /* "enr_" + 32 hex digits + NUL */
#define TETHER_STORE_AK_NAME_MAX 68                /* bytes: the largest TPM2B_NAME */
#define TETHER_STORE_SOURCE_SIZE 46                /* a source address, text (INET6_ADDRSTRLEN) */

#define TETHER_STORE_BLOB_MAX 2048      /* a marshalled TPM structure of the device row */
#define TETHER_STORE_DIGEST_MAX 64      /* the PCR reference digest */
#define TETHER_STORE_FINGERPRINT_SIZE 32 /* tether_evidence_fingerprint() */
#define TETHER_STORE_NONCE_HASH_SIZE 32  /* SHA-256 of a challenge nonce */
#define TETHER_STORE_ADDRESS_SIZE 46    /* INET6_ADDRSTRLEN */
#define TETHER_STORE_JTI_SIZE 33        /* 32 lowercase hex digits + NUL */
#define TETHER_STORE_KID_SIZE 44        /* an RFC 7638 thumbprint (43 characters) + NUL */
#define TETHER_STORE_CLAIM_MAX 512      /* scope and audience of an issued token, bytes */
#define TETHER_STORE_KEY_FILE_MAX 128   /* an issuer key's file, relative to the fleet dir */

/* Bytes borrowed for the length of one call. */
typedef struct tether_store_blob {
    const uint8_t *data;
    size_t len;
} tether_store_blob_t;

/* Row callbacks for listings (tether_store_*_cb, declared in each
 * subject's header); a non-zero return stops the listing. They run
 * with the store locked: they must not call the store. */

#endif
