/*
 * A bounded table of 32-byte keys (SHA-256 digests) that each expire at a
 * time, with an optional fixed-size value per key: the DPoP replay cache
 * (no value), the verified-token cache and the revocation lists.
 *
 * Open addressing with a bounded probe window: a key lives in one of the
 * TETHER_GATE_TABLE_PROBES slots after the slot its first bytes name, so a
 * lookup or an insert costs at most that many compares, and a key whose
 * window holds no free or expired slot is not stored (the table is "full"
 * for it). Expired slots are reused; nothing is ever dropped before its
 * expiry. Keys are digests, so their first bytes are uniform and an
 * attacker cannot aim at one window without a preimage. Thread-safe (one
 * mutex).
 */
#ifndef TETHER_GATE_TABLE_H
#define TETHER_GATE_TABLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_GATE_TABLE_KEY_SIZE 32
#define TETHER_GATE_TABLE_PROBES 64
#define TETHER_GATE_TABLE_FOREVER INT64_MAX

typedef enum tether_gate_table_result {
    TETHER_GATE_TABLE_ADDED, /* the key was not held (or had expired): now it is */
    TETHER_GATE_TABLE_HELD,  /* the key is held and unexpired: nothing changed */
    TETHER_GATE_TABLE_FULL,  /* not held, and no room in its window: nothing changed */
} tether_gate_table_result_t;

typedef struct tether_gate_table {
    pthread_mutex_t lock;
    bool lock_ready;
    size_t capacity;   /* a power of two, or 0 while not open */
    size_t value_size; /* bytes per value, may be 0 */
    uint8_t *keys;     /* capacity * TETHER_GATE_TABLE_KEY_SIZE */
    int64_t *expiry;   /* 0: never used; else the key's expiry (seconds) */
    uint8_t *values;   /* capacity * value_size, or NULL */
} tether_gate_table_t;

void tether_gate_table_init(tether_gate_table_t *table);

/* Allocates room for at least entries keys (rounded up to a power of two)
 * of value_size bytes each. */
TETHER_MUST_CHECK tether_status_t tether_gate_table_open(tether_gate_table_t *table,
                                                         size_t entries, size_t value_size);

/* Wipes and frees everything; accepts NULL and a table only initialised. */
void tether_gate_table_free(tether_gate_table_t *table);

/* Adds key until expiry unless it is held and unexpired at now (the replay
 * check and the record in one step). value (value_size bytes, or NULL) is
 * stored with a new key. */
tether_gate_table_result_t tether_gate_table_add(tether_gate_table_t *table,
                                                 const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE],
                                                 int64_t expiry, int64_t now, const void *value);

/* Stores key until expiry with value, replacing a held key's value and
 * expiry. TETHER_ERR_TOO_LARGE when its window is full (a cache may go on
 * without the entry). */
tether_status_t tether_gate_table_put(tether_gate_table_t *table,
                                                        const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE],
                                                        int64_t expiry, int64_t now,
                                                        const void *value);

/* Whether key is held and unexpired at now; its value is copied to value
 * (value_size bytes; may be NULL) when it is. */
bool tether_gate_table_get(tether_gate_table_t *table,
                           const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE], int64_t now,
                           void *value);

#endif
