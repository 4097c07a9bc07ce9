/* Per-source token buckets (source_limit.h). */
#include "source_limit.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"

/* A bucket counts in units of 1/60 attempt, so a whole second of refill at
 * rate_per_minute is exactly rate_per_minute units: integer arithmetic, no
 * rounding drift. */
#define UNITS_PER_ATTEMPT 60

struct tether_source_bucket {
    char key[TETHER_SOURCE_KEY_SIZE]; /* "" when the slot is free */
    int64_t units;
    int64_t at;       /* when units was last brought up to date */
    int64_t last_use; /* for the least-recently-used choice */
};

void tether_source_limit_init(tether_source_limit_t *limit)
{
    if (limit != NULL)
        memset(limit, 0, sizeof(*limit));
}

tether_status_t tether_source_limit_setup(tether_source_limit_t *limit, unsigned rate_per_minute,
                                          unsigned burst)
{
    if (limit == NULL || limit->buckets != NULL || rate_per_minute == 0 || burst == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    limit->buckets = calloc(TETHER_SOURCE_LIMIT_SLOTS, sizeof(*limit->buckets));
    if (limit->buckets == NULL)
        return TETHER_ERR_NO_MEMORY;
    if (pthread_mutex_init(&limit->lock, NULL) != 0) {
        free(limit->buckets);
        limit->buckets = NULL;
        return TETHER_ERR_NO_MEMORY;
    }
    limit->lock_ready = true;
    limit->rate_per_minute = rate_per_minute;
    limit->burst = burst;
    return TETHER_OK;
}

void tether_source_limit_free(tether_source_limit_t *limit)
{
    if (limit == NULL)
        return;
    if (limit->lock_ready)
        pthread_mutex_destroy(&limit->lock);
    if (limit->buckets != NULL) {
        tether_wipe(limit->buckets, TETHER_SOURCE_LIMIT_SLOTS * sizeof(*limit->buckets));
        free(limit->buckets);
    }
    tether_wipe(limit, sizeof(*limit));
}

void tether_source_key(const char *source, char key[TETHER_SOURCE_KEY_SIZE])
{
    struct in_addr v4;
    struct in6_addr v6;

    strcpy(key, "unknown");
    if (source == NULL)
        return;
    if (inet_pton(AF_INET, source, &v4) == 1) {
        inet_ntop(AF_INET, &v4, key, TETHER_SOURCE_KEY_SIZE);
    } else if (inet_pton(AF_INET6, source, &v6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&v6)) {
            memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
            inet_ntop(AF_INET, &v4, key, TETHER_SOURCE_KEY_SIZE);
            return;
        }
        memset(&v6.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &v6, key, TETHER_SOURCE_KEY_SIZE);
    }
}

/* The bucket of key, or a slot for it: a free one, else one whose bucket
 * has refilled (forgetting it changes nothing), else the least recently
 * used. Called with the lock held. */
static tether_source_bucket_t *find_slot(tether_source_limit_t *limit, const char *key,
                                         int64_t now, int64_t capacity)
{
    tether_source_bucket_t *free_slot = NULL, *full = NULL, *oldest = NULL;

    for (size_t i = 0; i < TETHER_SOURCE_LIMIT_SLOTS; i++) {
        tether_source_bucket_t *b = &limit->buckets[i];
        int64_t elapsed = now > b->at ? now - b->at : 0;

        if (b->key[0] == '\0') {
            if (free_slot == NULL)
                free_slot = b;
            continue;
        }
        if (strcmp(b->key, key) == 0)
            return b;
        if (full == NULL && b->units + elapsed * (int64_t)limit->rate_per_minute >= capacity)
            full = b;
        if (oldest == NULL || b->last_use < oldest->last_use)
            oldest = b;
    }
    return free_slot != NULL ? free_slot : full != NULL ? full : oldest;
}

bool tether_source_limit_take(tether_source_limit_t *limit, const char *source, int64_t now,
                              int64_t *retry_after)
{
    char key[TETHER_SOURCE_KEY_SIZE];
    tether_source_bucket_t *b;
    int64_t capacity, rate;
    bool admitted = false;

    if (retry_after != NULL)
        *retry_after = 0;
    if (limit == NULL || limit->buckets == NULL)
        return false;
    capacity = (int64_t)limit->burst * UNITS_PER_ATTEMPT;
    rate = limit->rate_per_minute;
    tether_source_key(source, key);
    pthread_mutex_lock(&limit->lock);
    b = find_slot(limit, key, now, capacity);
    if (strcmp(b->key, key) != 0) {
        strcpy(b->key, key);
        b->units = capacity;
        b->at = now;
    }
    if (now > b->at) {
        /* Bounded before multiplying: a long-idle bucket is simply full. */
        int64_t elapsed = now - b->at;
        b->units = elapsed >= capacity ? capacity : b->units + elapsed * rate;
        if (b->units > capacity)
            b->units = capacity;
        b->at = now;
    }
    b->last_use = now;
    if (b->units >= UNITS_PER_ATTEMPT) {
        b->units -= UNITS_PER_ATTEMPT;
        admitted = true;
    } else if (retry_after != NULL) {
        *retry_after = (UNITS_PER_ATTEMPT - b->units + rate - 1) / rate;
    }
    pthread_mutex_unlock(&limit->lock);
    return admitted;
}
