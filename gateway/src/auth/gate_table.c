/* A bounded table of expiring digest keys (gate_table.h). */
#include "gate_table.h"

#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"

void tether_gate_table_init(tether_gate_table_t *table)
{
    if (table != NULL)
        memset(table, 0, sizeof(*table));
}

tether_status_t tether_gate_table_open(tether_gate_table_t *table, size_t entries,
                                       size_t value_size)
{
    size_t capacity = TETHER_GATE_TABLE_PROBES;

    if (table == NULL || entries == 0 || entries > ((size_t)1 << 26) || table->capacity != 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    while (capacity < entries)
        capacity <<= 1;
    table->keys = calloc(capacity, TETHER_GATE_TABLE_KEY_SIZE);
    table->expiry = calloc(capacity, sizeof(*table->expiry));
    table->values = value_size > 0 ? calloc(capacity, value_size) : NULL;
    if (table->keys == NULL || table->expiry == NULL || (value_size > 0 && table->values == NULL) ||
        pthread_mutex_init(&table->lock, NULL) != 0) {
        free(table->keys);
        free(table->expiry);
        free(table->values);
        memset(table, 0, sizeof(*table));
        return TETHER_ERR_NO_MEMORY;
    }
    table->lock_ready = true;
    table->capacity = capacity;
    table->value_size = value_size;
    return TETHER_OK;
}

void tether_gate_table_free(tether_gate_table_t *table)
{
    if (table == NULL)
        return;
    if (table->keys != NULL)
        tether_wipe(table->keys, table->capacity * TETHER_GATE_TABLE_KEY_SIZE);
    if (table->values != NULL)
        tether_wipe(table->values, table->capacity * table->value_size);
    free(table->keys);
    free(table->expiry);
    free(table->values);
    if (table->lock_ready)
        pthread_mutex_destroy(&table->lock);
    memset(table, 0, sizeof(*table));
}

static size_t first_slot(const tether_gate_table_t *table, const uint8_t *key)
{
    uint64_t h = 0;

    for (int i = 0; i < 8; i++)
        h = (h << 8) | key[i];
    return (size_t)h & (table->capacity - 1);
}

/* Under the lock: the slot holding key unexpired, or SIZE_MAX; *free_slot
 * gets the first never-used or expired slot of the window (SIZE_MAX when
 * none). The whole window is searched, so a key stored after an expired
 * slot that has since been reused is still found. */
static size_t find(const tether_gate_table_t *table, const uint8_t *key, int64_t now,
                   size_t *free_slot)
{
    size_t slot = first_slot(table, key);

    *free_slot = SIZE_MAX;
    for (size_t i = 0; i < TETHER_GATE_TABLE_PROBES; i++, slot = (slot + 1) & (table->capacity - 1)) {
        int64_t expiry = table->expiry[slot];
        if (expiry == 0 || expiry <= now) {
            if (*free_slot == SIZE_MAX)
                *free_slot = slot;
            continue;
        }
        if (memcmp(table->keys + slot * TETHER_GATE_TABLE_KEY_SIZE, key,
                   TETHER_GATE_TABLE_KEY_SIZE) == 0)
            return slot;
    }
    return SIZE_MAX;
}

static void store(tether_gate_table_t *table, size_t slot, const uint8_t *key, int64_t expiry,
                  const void *value)
{
    memcpy(table->keys + slot * TETHER_GATE_TABLE_KEY_SIZE, key, TETHER_GATE_TABLE_KEY_SIZE);
    table->expiry[slot] = expiry;
    if (table->value_size > 0) {
        uint8_t *dst = table->values + slot * table->value_size;
        if (value != NULL)
            memcpy(dst, value, table->value_size);
        else
            memset(dst, 0, table->value_size);
    }
}

tether_gate_table_result_t tether_gate_table_add(tether_gate_table_t *table,
                                                 const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE],
                                                 int64_t expiry, int64_t now, const void *value)
{
    tether_gate_table_result_t result;
    size_t slot, free_slot;

    if (table == NULL || table->capacity == 0 || key == NULL || expiry <= now)
        return TETHER_GATE_TABLE_FULL;
    pthread_mutex_lock(&table->lock);
    slot = find(table, key, now, &free_slot);
    if (slot != SIZE_MAX) {
        result = TETHER_GATE_TABLE_HELD;
    } else if (free_slot == SIZE_MAX) {
        result = TETHER_GATE_TABLE_FULL;
    } else {
        store(table, free_slot, key, expiry, value);
        result = TETHER_GATE_TABLE_ADDED;
    }
    pthread_mutex_unlock(&table->lock);
    return result;
}

tether_status_t tether_gate_table_put(tether_gate_table_t *table,
                                      const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE],
                                      int64_t expiry, int64_t now, const void *value)
{
    tether_status_t rc = TETHER_OK;
    size_t slot, free_slot;

    if (table == NULL || table->capacity == 0 || key == NULL || expiry <= now)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&table->lock);
    slot = find(table, key, now, &free_slot);
    if (slot == SIZE_MAX)
        slot = free_slot;
    if (slot == SIZE_MAX)
        rc = TETHER_ERR_TOO_LARGE;
    else
        store(table, slot, key, expiry, value);
    pthread_mutex_unlock(&table->lock);
    return rc;
}

bool tether_gate_table_get(tether_gate_table_t *table,
                           const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE], int64_t now, void *value)
{
    size_t slot, free_slot;

    if (table == NULL || table->capacity == 0 || key == NULL)
        return false;
    pthread_mutex_lock(&table->lock);
    slot = find(table, key, now, &free_slot);
    if (slot != SIZE_MAX && value != NULL && table->value_size > 0)
        memcpy(value, table->values + slot * table->value_size, table->value_size);
    pthread_mutex_unlock(&table->lock);
    return slot != SIZE_MAX;
}
