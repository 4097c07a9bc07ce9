/* Revocations and the feed follower (revocations.h). */
#include "revocations.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tether/bytes.h"
#include "tether/crypto.h"
#include "tether/log.h"

#define ID_MAX 128 /* bytes of a device id or jti taken from the feed */

int64_t tether_gate_mono_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec + 1; /* never 0, which means "never" */
}

int64_t tether_gate_wall_seconds(void)
{
    return (int64_t)time(NULL);
}

void tether_gate_revocations_init(tether_gate_revocations_t *revocations)
{
    if (revocations == NULL)
        return;
    memset(revocations, 0, sizeof(*revocations));
    tether_gate_table_init(&revocations->devices);
    tether_gate_table_init(&revocations->tokens);
}

tether_status_t tether_gate_revocations_open(tether_gate_revocations_t *revocations,
                                             size_t entries, uint32_t staleness_seconds)
{
    tether_status_t rc;

    if (revocations == NULL || staleness_seconds == 0 || revocations->lock_ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    /* A device's value: the latest created_at of its entries. */
    if ((rc = tether_gate_table_open(&revocations->devices, entries, sizeof(int64_t))) !=
            TETHER_OK ||
        (rc = tether_gate_table_open(&revocations->tokens, entries, 0)) != TETHER_OK)
        return rc;
    if (pthread_mutex_init(&revocations->lock, NULL) != 0)
        return TETHER_ERR_NO_MEMORY;
    revocations->lock_ready = true;
    revocations->staleness_seconds = staleness_seconds;
    return TETHER_OK;
}

void tether_gate_revocations_free(tether_gate_revocations_t *revocations)
{
    if (revocations == NULL)
        return;
    tether_gate_table_free(&revocations->devices);
    tether_gate_table_free(&revocations->tokens);
    if (revocations->lock_ready)
        pthread_mutex_destroy(&revocations->lock);
    memset(revocations, 0, sizeof(*revocations));
}

/* SHA-256(kind "\n" id): one key space per kind. */
static bool entry_key(const char *kind, const char *id, uint8_t key[TETHER_GATE_TABLE_KEY_SIZE])
{
    char text[ID_MAX + 16];
    int n = snprintf(text, sizeof(text), "%s\n%s", kind, id);

    return n > 0 && (size_t)n < sizeof(text) && tether_sha256(text, (size_t)n, key) == TETHER_OK;
}

static bool is_id(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring != NULL && item->valuestring[0] != '\0' &&
           strlen(item->valuestring) <= ID_MAX;
}

static bool is_seq(const cJSON *item)
{
    return cJSON_IsNumber(item) && item->valuedouble >= 0 && item->valuedouble <= 9007199254740991.0 &&
           (double)(uint64_t)item->valuedouble == item->valuedouble;
}

/* Lists the device as revoked at revoked_at, keeping the latest time when
 * it is listed already (revoked, reinstated, revoked again). */
static tether_gate_table_result_t revoke_device(tether_gate_table_t *devices,
                                               const uint8_t key[TETHER_GATE_TABLE_KEY_SIZE],
                                               int64_t revoked_at, int64_t now)
{
    int64_t known = 0;

    if (tether_gate_table_get(devices, key, now, &known) && known >= revoked_at)
        return TETHER_GATE_TABLE_HELD;
    return tether_gate_table_put(devices, key, TETHER_GATE_TABLE_FOREVER, now, &revoked_at) ==
                   TETHER_OK
               ? TETHER_GATE_TABLE_ADDED
               : TETHER_GATE_TABLE_FULL;
}

tether_status_t tether_gate_revocations_apply(tether_gate_revocations_t *revocations,
                                              const cJSON *page, int64_t now, int64_t mono_now)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(page, "revocations");
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(page, "last_seq"), *entry;
    uint8_t key[TETHER_GATE_TABLE_KEY_SIZE];
    bool overflow = false;
    size_t applied = 0;

    if (revocations == NULL || !revocations->lock_ready || !cJSON_IsArray(list) || !is_seq(last) ||
        (uint64_t)last->valuedouble < tether_gate_revocations_last_seq(revocations))
        return TETHER_ERR_PARSE;
    cJSON_ArrayForEach(entry, list)
    {
        const cJSON *device = cJSON_GetObjectItemCaseSensitive(entry, "device_id");
        const cJSON *jti = cJSON_GetObjectItemCaseSensitive(entry, "jti");
        if (!is_id(device) || !(cJSON_IsNull(jti) || is_id(jti)) ||
            !is_seq(cJSON_GetObjectItemCaseSensitive(entry, "created_at")))
            return TETHER_ERR_PARSE;
    }
    cJSON_ArrayForEach(entry, list)
    {
        const cJSON *device = cJSON_GetObjectItemCaseSensitive(entry, "device_id");
        const cJSON *jti = cJSON_GetObjectItemCaseSensitive(entry, "jti");
        tether_gate_table_result_t result;

        if (cJSON_IsNull(jti)) {
            result = entry_key("device", device->valuestring, key)
                         ? revoke_device(&revocations->devices, key,
                                         (int64_t)cJSON_GetObjectItemCaseSensitive(
                                             entry, "created_at")->valuedouble,
                                         now)
                         : TETHER_GATE_TABLE_FULL;
        } else {
            result = entry_key("token", jti->valuestring, key)
                         ? tether_gate_table_add(&revocations->tokens, key,
                                                 now + TETHER_GATE_REVOKED_TOKEN_SECONDS, now, NULL)
                         : TETHER_GATE_TABLE_FULL;
        }
        overflow |= result == TETHER_GATE_TABLE_FULL;
        applied++;
    }
    pthread_mutex_lock(&revocations->lock);
    revocations->last_seq = (uint64_t)last->valuedouble;
    revocations->last_contact = mono_now;
    revocations->overflow |= overflow;
    pthread_mutex_unlock(&revocations->lock);
    if (applied > 0)
        tether_info("revocations", "applied %zu revocation(s) up to seq %llu", applied,
                    (unsigned long long)last->valuedouble);
    if (overflow)
        tether_error("revocations", "the revocation lists are full: every request is refused "
                                    "until tether-gate restarts with more replay_cache_entries");
    return TETHER_OK;
}

uint64_t tether_gate_revocations_last_seq(tether_gate_revocations_t *revocations)
{
    uint64_t seq;

    pthread_mutex_lock(&revocations->lock);
    seq = revocations->last_seq;
    pthread_mutex_unlock(&revocations->lock);
    return seq;
}

int64_t tether_gate_revocations_age(tether_gate_revocations_t *revocations, int64_t mono_now)
{
    int64_t last_contact = 0;

    if (revocations != NULL && revocations->lock_ready) {
        pthread_mutex_lock(&revocations->lock);
        last_contact = revocations->last_contact;
        pthread_mutex_unlock(&revocations->lock);
    }
    return last_contact == 0 ? -1 : mono_now - last_contact;
}

tether_gate_revocation_state_t tether_gate_revocations_check(
    tether_gate_revocations_t *revocations, const char *device, const char *jti,
    int64_t issued_at, int64_t now, int64_t mono_now)
{
    uint8_t key[TETHER_GATE_TABLE_KEY_SIZE];
    int64_t last_contact, revoked_at = 0;
    bool overflow;

    if (revocations == NULL || !revocations->lock_ready || device == NULL || jti == NULL)
        return TETHER_GATE_FEED_STALE;
    pthread_mutex_lock(&revocations->lock);
    last_contact = revocations->last_contact;
    overflow = revocations->overflow;
    pthread_mutex_unlock(&revocations->lock);
    if (overflow)
        return TETHER_GATE_FEED_OVERFLOW;
    if (last_contact == 0 || mono_now - last_contact > (int64_t)revocations->staleness_seconds)
        return TETHER_GATE_FEED_STALE;
    if (!entry_key("device", device, key) ||
        (tether_gate_table_get(&revocations->devices, key, now, &revoked_at) &&
         issued_at <= revoked_at))
        return TETHER_GATE_REVOKED_DEVICE;
    if (!entry_key("token", jti, key) || tether_gate_table_get(&revocations->tokens, key, now, NULL))
        return TETHER_GATE_REVOKED_TOKEN;
    return TETHER_GATE_NOT_REVOKED;
}

/* ---- the follower ----------------------------------------------------- */

void tether_gate_feed_follower_init(tether_gate_feed_follower_t *follower)
{
    if (follower == NULL)
        return;
    memset(follower, 0, sizeof(*follower));
    tether_gate_fleet_client_init(&follower->client);
    atomic_init(&follower->stop, false);
}

void tether_gate_pause_unless_stopped(atomic_bool *stop, unsigned seconds)
{
    struct timespec step = {0, 100 * 1000 * 1000};

    for (unsigned i = 0; i < seconds * 10 && !atomic_load(stop); i++)
        nanosleep(&step, NULL);
}

/* One long poll; TETHER_OK when a page was applied. */
static tether_status_t poll_once(tether_gate_feed_follower_t *follower)
{
    char feed[256], path[320];
    cJSON *page = NULL;
    tether_status_t rc;
    int n;

    /* The feed's path comes with the metadata: fetch it (rate-limited). */
    if (tether_gate_fleet_keys_feed_path(follower->keys, feed, sizeof(feed)) != TETHER_OK &&
        ((rc = tether_gate_fleet_keys_refresh(follower->keys, tether_gate_mono_seconds())) !=
             TETHER_OK ||
         (rc = tether_gate_fleet_keys_feed_path(follower->keys, feed, sizeof(feed))) != TETHER_OK))
        return rc;
    n = snprintf(path, sizeof(path), "%s?after=%llu&wait=%u", feed,
                 (unsigned long long)tether_gate_revocations_last_seq(follower->revocations),
                 TETHER_GATE_FEED_WAIT_SECONDS);
    if (n < 0 || (size_t)n >= sizeof(path))
        return TETHER_ERR_TOO_LARGE;
    if ((rc = tether_gate_fleet_get_json(&follower->client, path, follower->rp_token, &page)) !=
        TETHER_OK)
        goto out;
    rc = tether_gate_revocations_apply(follower->revocations, page, tether_gate_wall_seconds(),
                                       tether_gate_mono_seconds());
    if (rc != TETHER_OK)
        snprintf(follower->client.https.error, sizeof(follower->client.https.error),
                 "the revocation feed's answer is not a feed page");
out:
    cJSON_Delete(page);
    return rc;
}

static void *follow(void *arg)
{
    tether_gate_feed_follower_t *follower = arg;
    bool failing = false;

    while (!atomic_load(&follower->stop)) {
        if (poll_once(follower) == TETHER_OK) {
            if (failing)
                tether_info("revocations", "the revocation feed is reachable again");
            failing = false;
            continue;
        }
        if (!failing)
            tether_warn("revocations", "cannot follow the revocation feed: %s",
                        follower->client.https.error[0] != '\0' ? follower->client.https.error
                                                                : "no feed path yet");
        failing = true;
        tether_gate_pause_unless_stopped(&follower->stop, 1);
    }
    return NULL;
}

tether_status_t tether_gate_feed_follower_start(tether_gate_feed_follower_t *follower,
                                                tether_gate_revocations_t *revocations,
                                                tether_gate_fleet_keys_t *keys,
                                                const char *fleet_url, const char *ca_file,
                                                const char *rp_token)
{
    tether_status_t rc;
    size_t len;

    if (follower == NULL || revocations == NULL || keys == NULL || rp_token == NULL ||
        follower->running)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = strlen(rp_token);
    if (len == 0 || len > TETHER_GATE_RP_TOKEN_MAX)
        return TETHER_ERR_INVALID_ARGUMENT;
    memcpy(follower->rp_token, rp_token, len + 1);
    follower->revocations = revocations;
    follower->keys = keys;
    if ((rc = tether_gate_fleet_client_open(&follower->client, fleet_url, ca_file,
                                            (TETHER_GATE_FEED_WAIT_SECONDS + 10) * 1000)) !=
        TETHER_OK)
        return rc;
    if (pthread_create(&follower->thread, NULL, follow, follower) != 0)
        return TETHER_ERR_NO_MEMORY;
    follower->running = true;
    return TETHER_OK;
}

void tether_gate_feed_follower_stop(tether_gate_feed_follower_t *follower)
{
    if (follower == NULL)
        return;
    if (follower->running) {
        atomic_store(&follower->stop, true);
        pthread_join(follower->thread, NULL);
    }
    tether_gate_fleet_client_free(&follower->client);
    tether_wipe(follower->rp_token, sizeof(follower->rp_token));
    memset(follower, 0, sizeof(*follower));
}
