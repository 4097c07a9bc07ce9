/* The fleet's token signing keys (fleet_keys.h). */
#include "fleet_keys.h"

#include <stdio.h>
#include <string.h>

#include "tether/log.h"

#define METADATA_PATH "/.well-known/oauth-authorization-server"

void tether_gate_fleet_keys_init(tether_gate_fleet_keys_t *keys)
{
    if (keys == NULL)
        return;
    memset(keys, 0, sizeof(*keys));
    for (size_t i = 0; i < TETHER_GATE_MAX_KEYS; i++)
        tether_ec_key_init(&keys->ec[i]);
    tether_gate_fleet_client_init(&keys->client);
}

tether_status_t tether_gate_fleet_keys_open(tether_gate_fleet_keys_t *keys, const char *fleet_url)
{
    int n;

    if (keys == NULL || fleet_url == NULL || keys->locks_ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = snprintf(keys->issuer, sizeof(keys->issuer), "%s", fleet_url);
    if (n < 0 || (size_t)n >= sizeof(keys->issuer))
        return TETHER_ERR_TOO_LARGE;
    if (pthread_rwlock_init(&keys->lock, NULL) != 0)
        return TETHER_ERR_NO_MEMORY;
    if (pthread_mutex_init(&keys->refresh_lock, NULL) != 0) {
        pthread_rwlock_destroy(&keys->lock);
        return TETHER_ERR_NO_MEMORY;
    }
    keys->locks_ready = true;
    return TETHER_OK;
}

tether_status_t tether_gate_fleet_keys_connect(tether_gate_fleet_keys_t *keys, const char *ca_file)
{
    tether_status_t rc;

    if (keys == NULL || ca_file == NULL || !keys->locks_ready || keys->connected)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = tether_gate_fleet_client_open(&keys->client, keys->issuer, ca_file,
                                       TETHER_HTTPS_DEFAULT_IO_TIMEOUT_MS);
    keys->connected = rc == TETHER_OK;
    return rc;
}

static void release_keys(tether_gate_fleet_keys_t *keys)
{
    for (size_t i = 0; i < keys->count; i++)
        tether_ec_key_free(&keys->ec[i]);
    memset(keys->keys, 0, sizeof(keys->keys));
    memset(keys->kid, 0, sizeof(keys->kid));
    keys->count = 0;
}

void tether_gate_fleet_keys_free(tether_gate_fleet_keys_t *keys)
{
    if (keys == NULL)
        return;
    release_keys(keys);
    tether_gate_fleet_client_free(&keys->client);
    if (keys->locks_ready) {
        pthread_rwlock_destroy(&keys->lock);
        pthread_mutex_destroy(&keys->refresh_lock);
    }
    memset(keys, 0, sizeof(*keys));
}

tether_status_t tether_gate_fleet_keys_set(tether_gate_fleet_keys_t *keys, const cJSON *jwks)
{
    tether_ec_key_t parsed[TETHER_GATE_MAX_KEYS];
    char kids[TETHER_GATE_MAX_KEYS][TETHER_GATE_KID_MAX + 1];
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(jwks, "keys"), *jwk;
    size_t count = 0;

    if (keys == NULL || !cJSON_IsArray(list))
        return TETHER_ERR_PARSE;
    cJSON_ArrayForEach(jwk, list)
    {
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
        if (count == TETHER_GATE_MAX_KEYS)
            break;
        if (!cJSON_IsString(kid) || kid->valuestring == NULL || kid->valuestring[0] == '\0' ||
            strlen(kid->valuestring) > TETHER_GATE_KID_MAX)
            continue;
        tether_ec_key_init(&parsed[count]);
        if (tether_jwk_parse(jwk, &parsed[count]) != TETHER_OK)
            continue;
        memcpy(kids[count], kid->valuestring, strlen(kid->valuestring) + 1);
        count++;
    }
    if (count == 0)
        return TETHER_ERR_PARSE;
    pthread_rwlock_wrlock(&keys->lock);
    release_keys(keys);
    for (size_t i = 0; i < count; i++) {
        keys->ec[i] = parsed[i];
        memcpy(keys->kid[i], kids[i], sizeof(kids[i]));
        keys->keys[i].kid = keys->kid[i];
        keys->keys[i].key = &keys->ec[i];
    }
    keys->count = count;
    pthread_rwlock_unlock(&keys->lock);
    return TETHER_OK;
}

tether_status_t tether_gate_fleet_keys_read_metadata(const tether_gate_fleet_keys_t *keys,
                                                     const cJSON *metadata,
                                                     const char **jwks_path,
                                                     const char **feed_path)
{
    const char *issuer;

    *jwks_path = NULL;
    *feed_path = NULL;
    if (keys == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    issuer = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(metadata, "issuer"));
    if (issuer == NULL || strcmp(issuer, keys->issuer) != 0) {
        tether_error("fleet", "the fleet's metadata names issuer %s, not %s: set fleet to the "
                              "fleet's issuer URL",
                     issuer != NULL ? issuer : "(none)", keys->issuer);
        return TETHER_ERR_WRONG_ISSUER;
    }
    *jwks_path = tether_gate_fleet_path(
        &keys->client, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(metadata, "jwks_uri")));
    *feed_path = tether_gate_fleet_path(
        &keys->client, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                           metadata, "tether_revocation_feed_endpoint")));
    if (*jwks_path == NULL || *feed_path == NULL ||
        strlen(*feed_path) >= sizeof(keys->feed_path)) {
        tether_error("fleet", "the fleet's metadata lacks jwks_uri or "
                              "tether_revocation_feed_endpoint under %s", keys->issuer);
        *jwks_path = NULL;
        *feed_path = NULL;
        return TETHER_ERR_PROTOCOL;
    }
    return TETHER_OK;
}

/* Under refresh_lock: the metadata (issuer check, jwks_uri, feed) and the
 * JWKS. */
static tether_status_t fetch(tether_gate_fleet_keys_t *keys)
{
    cJSON *metadata = NULL, *jwks = NULL;
    const char *jwks_path, *feed_path;
    tether_status_t rc;

    if ((rc = tether_gate_fleet_get_json(&keys->client, METADATA_PATH, NULL, &metadata)) !=
            TETHER_OK ||
        (rc = tether_gate_fleet_keys_read_metadata(keys, metadata, &jwks_path, &feed_path)) !=
            TETHER_OK)
        goto out;
    if ((rc = tether_gate_fleet_get_json(&keys->client, jwks_path, NULL, &jwks)) != TETHER_OK)
        goto out;
    if ((rc = tether_gate_fleet_keys_set(keys, jwks)) != TETHER_OK) {
        tether_error("fleet", "the fleet's JWKS holds no EC P-256 key with a kid");
        goto out;
    }
    pthread_rwlock_wrlock(&keys->lock);
    memcpy(keys->feed_path, feed_path, strlen(feed_path) + 1);
    pthread_rwlock_unlock(&keys->lock);
    tether_info("fleet", "fleet keys fetched: %zu key(s)", tether_gate_fleet_keys_count(keys));
out:
    if (rc != TETHER_OK && keys->client.https.error[0] != '\0')
        tether_warn("fleet", "cannot fetch the fleet's keys: %s", keys->client.https.error);
    cJSON_Delete(metadata);
    cJSON_Delete(jwks);
    return rc;
}

tether_status_t tether_gate_fleet_keys_refresh(tether_gate_fleet_keys_t *keys, int64_t mono_now)
{
    tether_status_t rc;

    if (keys == NULL || !keys->locks_ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_mutex_lock(&keys->refresh_lock);
    if (!keys->connected ||
        (keys->last_fetch != 0 && mono_now - keys->last_fetch < TETHER_GATE_KEYS_REFRESH_SECONDS)) {
        rc = TETHER_ERR_STATE;
    } else {
        keys->last_fetch = mono_now;
        rc = fetch(keys);
    }
    pthread_mutex_unlock(&keys->refresh_lock);
    return rc;
}

static tether_status_t verify_held(tether_gate_fleet_keys_t *keys, const char *token, size_t len,
                                   const tether_jwt_expect_t *expect, cJSON **claims_out)
{
    tether_jwt_keyset_t set;
    tether_status_t rc;

    pthread_rwlock_rdlock(&keys->lock);
    set.keys = keys->keys;
    set.count = keys->count;
    rc = keys->count == 0 ? TETHER_ERR_UNKNOWN_KEY
                          : tether_jwt_verify(token, len, &set, expect, claims_out);
    pthread_rwlock_unlock(&keys->lock);
    return rc;
}

tether_status_t tether_gate_fleet_keys_verify(tether_gate_fleet_keys_t *keys, const char *token,
                                              size_t len, const tether_jwt_expect_t *expect,
                                              int64_t mono_now, cJSON **claims_out)
{
    tether_status_t rc;

    if (claims_out != NULL)
        *claims_out = NULL;
    if (keys == NULL || !keys->locks_ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    rc = verify_held(keys, token, len, expect, claims_out);
    if (rc == TETHER_ERR_UNKNOWN_KEY && tether_gate_fleet_keys_refresh(keys, mono_now) == TETHER_OK)
        rc = verify_held(keys, token, len, expect, claims_out);
    return rc;
}

tether_status_t tether_gate_fleet_keys_feed_path(tether_gate_fleet_keys_t *keys, char *out,
                                                 size_t out_size)
{
    tether_status_t rc = TETHER_OK;
    int n;

    if (keys == NULL || out == NULL || out_size == 0 || !keys->locks_ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    pthread_rwlock_rdlock(&keys->lock);
    if (keys->feed_path[0] == '\0') {
        rc = TETHER_ERR_STATE;
    } else {
        n = snprintf(out, out_size, "%s", keys->feed_path);
        if (n < 0 || (size_t)n >= out_size)
            rc = TETHER_ERR_TOO_LARGE;
    }
    pthread_rwlock_unlock(&keys->lock);
    return rc;
}

size_t tether_gate_fleet_keys_count(tether_gate_fleet_keys_t *keys)
{
    size_t count;

    if (keys == NULL || !keys->locks_ready)
        return 0;
    pthread_rwlock_rdlock(&keys->lock);
    count = keys->count;
    pthread_rwlock_unlock(&keys->lock);
    return count;
}
