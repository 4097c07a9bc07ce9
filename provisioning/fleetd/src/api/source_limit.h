/*
 * Per-source token buckets: how many times one client may do something
 * costly for an unauthenticated caller (POST /v1/enroll: a certificate
 * chain, a MakeCredential and a write). Each source has a bucket of `burst`
 * attempts, refilled at `rate_per_minute`; an attempt takes one, and an
 * empty bucket refuses until the next refill.
 *
 * A source is an IPv4 address, or an IPv6 /64 (one subscriber's prefix: a
 * host that owns a /64 would otherwise get a fresh bucket per address).
 * At most TETHER_SOURCE_LIMIT_SLOTS sources are tracked; when all are in
 * use, a full bucket (the same as none) or else the least recently used one
 * makes room. That bounds memory; a caller with thousands of addresses is
 * bounded by the per-EK limit of the enrolment, not by this.
 *
 * Safe to use from several threads at once.
 */
#ifndef TETHER_FLEET_SOURCE_LIMIT_H
#define TETHER_FLEET_SOURCE_LIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

#define TETHER_SOURCE_LIMIT_SLOTS 4096
#define TETHER_SOURCE_KEY_SIZE 46 /* INET6_ADDRSTRLEN */

typedef struct tether_source_bucket tether_source_bucket_t;

typedef struct tether_source_limit {
    pthread_mutex_t lock;
    bool lock_ready;
    unsigned rate_per_minute;
    unsigned burst;
    tether_source_bucket_t *buckets; /* TETHER_SOURCE_LIMIT_SLOTS, owned */
} tether_source_limit_t;

/* The source of a client address as text: an IPv4 address as is, an IPv6
 * address cut to its /64 (an IPv4-mapped one read as IPv4), NULL or
 * anything else "unknown". */
void tether_source_key(const char *address, char key[TETHER_SOURCE_KEY_SIZE]);

/* Cannot fail; the limit admits nothing until it is set up. */
void tether_source_limit_init(tether_source_limit_t *limit);

/* rate_per_minute and burst at least 1. TETHER_ERR_NO_MEMORY or
 * TETHER_ERR_INVALID_ARGUMENT. */
TETHER_MUST_CHECK tether_status_t tether_source_limit_setup(tether_source_limit_t *limit,
                                                            unsigned rate_per_minute,
                                                            unsigned burst);

/* Releases everything and wipes the struct; accepts NULL. */
void tether_source_limit_free(tether_source_limit_t *limit);

/*
 * One attempt by source (the client's IP address as text; NULL or
 * unparsable: one shared bucket for unknown sources) at now (seconds, any
 * clock that does not go back; a step back counts as no time passing).
 * True when admitted; false when the source's bucket is empty, with
 * *retry_after (may be NULL) the seconds until it holds an attempt again.
 */
TETHER_MUST_CHECK bool tether_source_limit_take(tether_source_limit_t *limit, const char *source,
                                                int64_t now, int64_t *retry_after);

#endif
