/*
 * The store's measured-boot event logs.
 */
#ifndef TETHER_FLEET_STORE_EVENTLOGS_H
#define TETHER_FLEET_STORE_EVENTLOGS_H

#include "store_types.h"

/* ---- measured boot's event logs (store_sqlite_eventlogs.c,
 * store_pg_eventlogs.c; schema version 14) ---- */

/* The logs a device sends when its policy has a measured_boot section. */
typedef enum tether_store_eventlog_kind {
    TETHER_STORE_EVENTLOG_PLATFORM = 0, /* the platform's TCG PC Client log */
    TETHER_STORE_EVENTLOG_TETHER = 1,   /* tether's Canonical Event Log */
} tether_store_eventlog_kind_t;

/* The last accepted log of one kind of a device. */
typedef struct tether_store_eventlog {
    uint8_t sha256[32]; /* SHA-256 of bytes */
    uint8_t *bytes;     /* heap (tether_store_eventlog_free); NULL when not asked or empty */
    size_t len;
} tether_store_eventlog_t;

/* The device's last accepted log of kind, with its bytes when with_bytes;
 * TETHER_ERR_NOT_FOUND without one. *log is zeroed on entry; release it
 * with tether_store_eventlog_free. */
TETHER_MUST_CHECK tether_status_t tether_store_eventlog_get(tether_store_t *store,
                                                           const char *device_id,
                                                           tether_store_eventlog_kind_t kind,
                                                           bool with_bytes,
                                                           tether_store_eventlog_t *log);

/* Keeps bytes[0..len) (sha256 its SHA-256, which the caller computed) as
 * the device's last accepted log of kind, replacing the one before. */
TETHER_MUST_CHECK tether_status_t tether_store_eventlog_put(tether_store_t *store,
                                                           const char *device_id,
                                                           tether_store_eventlog_kind_t kind,
                                                           const uint8_t sha256[32],
                                                           const uint8_t *bytes, size_t len,
                                                           int64_t now);

/* Frees log->bytes and zeroes *log; accepts NULL. */
void tether_store_eventlog_free(tether_store_eventlog_t *log);

#endif
