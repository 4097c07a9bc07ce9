/*
 * The revocation feed as relying parties read it (GET /v1/revocations,
 * DESIGN.md "Revocation and containment"): pages of the revocations table
 * in seq order, and the feed's head for requests waiting for news.
 *
 * Waiting requests ask tether_revocation_feed_head whether anything is newer
 * than what they have. The head is read from the store at most about twice
 * a second whatever the number of waiters, and at once after
 * tether_revocation_feed_notify (a revocation committed by this process);
 * revocations written by another process sharing the database are seen at
 * the next read, within about a second.
 */
#ifndef TETHER_FLEET_REVOCATION_FEED_H
#define TETHER_FLEET_REVOCATION_FEED_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "store.h"
#include "tether/error.h"

#define TETHER_FEED_HEAD_MAX_AGE_MS 500 /* how old a head read may be before it is read again */

typedef struct tether_revocation_feed {
    tether_store_t *store; /* borrowed */
    pthread_mutex_t lock;
    int64_t head;            /* highest seq read from the store */
    struct timespec read_at; /* CLOCK_MONOTONIC */
    bool fresh;              /* head was read and nothing was notified since */
} tether_revocation_feed_t;

/* store must outlive the feed. */
void tether_revocation_feed_init(tether_revocation_feed_t *feed, tether_store_t *store);
void tether_revocation_feed_free(tether_revocation_feed_t *feed);

/* A revocation was committed here: the next head read goes to the store.
 * Any thread; does not block on the store. */
void tether_revocation_feed_notify(tether_revocation_feed_t *feed);

/* The highest seq in the feed, as read from the store within
 * TETHER_FEED_HEAD_MAX_AGE_MS and after the last notify. */
TETHER_MUST_CHECK tether_status_t tether_revocation_feed_head(tether_revocation_feed_t *feed,
                                                              int64_t *head);

/* The answer to GET /v1/revocations?after=after: {"revocations": [{"seq",
 * "device_id", "jti" (null: every token of the device), "reason",
 * "created_at"}...], "last_seq"}, at most TETHER_FLEET_FEED_PAGE entries in
 * ascending seq; last_seq is the last entry's seq, or after when there is
 * none. *count (may be NULL) gets the number of entries. */
TETHER_MUST_CHECK tether_status_t tether_revocation_feed_page(tether_store_t *store, int64_t after,
                                                              cJSON **answer, size_t *count);

#endif
