/*
 * What tether-gate knows of the fleet's revocations, and the thread that
 * follows fleetd's revocation feed (GET /v1/revocations?after=SEQ&wait=N,
 * a long poll with the relying-party token; provisioning/fleetd/README.md).
 *
 * A device listed is refused for every token issued at or before the
 * revocation (the token's iat against the entry's created_at, both fleetd's
 * clock): a device the fleet reinstated later gets new tokens that pass,
 * while every token it held when it was revoked stays refused. The feed has
 * no reinstatement entries, so this holds when the gateway restarts and
 * reads the feed from the start. A token (jti) listed is refused for
 * TETHER_GATE_REVOKED_TOKEN_SECONDS, longer than any token of the fleet
 * lives. The lists are bounded: an entry that cannot be stored makes every
 * request refused (fail closed) rather than let a revoked one pass. Every
 * answer of the feed, even an empty one, is contact; without contact for
 * staleness seconds every request is refused until the feed is back.
 */
#ifndef TETHER_GATE_REVOCATIONS_H
#define TETHER_GATE_REVOCATIONS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "fleet_client.h"
#include "fleet_keys.h"
#include "gate_table.h"

#define TETHER_GATE_REVOKED_TOKEN_SECONDS (3600 + 300) /* fleetd's longest lifetime + skew */
#define TETHER_GATE_FEED_WAIT_SECONDS 5 /* each long poll; also bounds how long stopping takes */
#define TETHER_GATE_RP_TOKEN_MAX 256

typedef enum tether_gate_revocation_state {
    TETHER_GATE_NOT_REVOKED = 0,
    TETHER_GATE_REVOKED_DEVICE,
    TETHER_GATE_REVOKED_TOKEN,
    TETHER_GATE_FEED_STALE,    /* no contact for staleness seconds (or never) */
    TETHER_GATE_FEED_OVERFLOW, /* an entry could not be stored */
} tether_gate_revocation_state_t;

typedef struct tether_gate_revocations {
    tether_gate_table_t devices;
    tether_gate_table_t tokens;
    pthread_mutex_t lock; /* the fields below */
    bool lock_ready;
    uint64_t last_seq;
    int64_t last_contact; /* monotonic seconds; 0: never */
    bool overflow;
    uint32_t staleness_seconds;
} tether_gate_revocations_t;

void tether_gate_revocations_init(tether_gate_revocations_t *revocations);

/* Room for entries devices and entries tokens; staleness in seconds. */
TETHER_MUST_CHECK tether_status_t tether_gate_revocations_open(
    tether_gate_revocations_t *revocations, size_t entries, uint32_t staleness_seconds);

void tether_gate_revocations_free(tether_gate_revocations_t *revocations);

/* Applies one page of the feed ({"revocations": [{"seq", "device_id",
 * "jti"|null, "created_at", ...}], "last_seq"}) at wall-clock time now, and counts it as
 * contact at mono_now. TETHER_ERR_PARSE (nothing applied, no contact) for a
 * page that is not of that shape, or whose last_seq goes backwards. */
TETHER_MUST_CHECK tether_status_t tether_gate_revocations_apply(
    tether_gate_revocations_t *revocations, const cJSON *page, int64_t now, int64_t mono_now);

/* The next after= value. */
uint64_t tether_gate_revocations_last_seq(tether_gate_revocations_t *revocations);

/* Seconds since the feed was last reached at mono_now, or -1 before the
 * first contact (for /metrics). */
int64_t tether_gate_revocations_age(tether_gate_revocations_t *revocations, int64_t mono_now);

/* Whether a request of device with token jti, issued at issued_at (its
 * iat), may pass at wall-clock now and monotonic mono_now. */
tether_gate_revocation_state_t tether_gate_revocations_check(
    tether_gate_revocations_t *revocations, const char *device, const char *jti,
    int64_t issued_at, int64_t now, int64_t mono_now);

/* The thread that follows the feed. */
typedef struct tether_gate_feed_follower {
    tether_gate_revocations_t *revocations; /* borrowed; outlives the follower */
    tether_gate_fleet_keys_t *keys;         /* borrowed: the feed's path */
    tether_gate_fleet_client_t client;
    char rp_token[TETHER_GATE_RP_TOKEN_MAX + 1]; /* secret: wiped by _stop */
    pthread_t thread;
    bool running;
    atomic_bool stop;
} tether_gate_feed_follower_t;

void tether_gate_feed_follower_init(tether_gate_feed_follower_t *follower);

/* Starts following: rp_token is copied. */
TETHER_MUST_CHECK tether_status_t tether_gate_feed_follower_start(
    tether_gate_feed_follower_t *follower, tether_gate_revocations_t *revocations,
    tether_gate_fleet_keys_t *keys, const char *fleet_url, const char *ca_file,
    const char *rp_token);

/* Stops (within one long poll) and wipes; accepts a follower never started. */
void tether_gate_feed_follower_stop(tether_gate_feed_follower_t *follower);

/* Sleeps up to seconds, waking early (within 0.1 s) once *stop is set:
 * the fleet threads' wait between two rounds. */
void tether_gate_pause_unless_stopped(atomic_bool *stop, unsigned seconds);

/* Monotonic and wall-clock seconds. */
int64_t tether_gate_mono_seconds(void);
int64_t tether_gate_wall_seconds(void);

#endif
