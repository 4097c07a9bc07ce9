/* The fleet's token signing keys (issuer_keys.h). */
#include "issuer_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "files.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"

#define PEM_FILE_MAX (16 * 1024)

void tether_issuer_keys_init(tether_issuer_keys_t *keys)
{
    if (keys != NULL)
        memset(keys, 0, sizeof(*keys));
}

static void key_free(tether_issuer_key_t *key)
{
    if (key == NULL)
        return;
    tether_ec_key_free(&key->pk);
    tether_wipe(key, sizeof(*key));
    free(key);
}

static void keys_clear(tether_issuer_keys_t *keys)
{
    for (size_t i = 0; i < keys->count; i++)
        key_free(keys->keys[i]);
    free(keys->keys);
    free(keys->jwt);
    keys->keys = NULL;
    keys->jwt = NULL;
    keys->count = 0;
}

void tether_issuer_keys_free(tether_issuer_keys_t *keys)
{
    if (keys == NULL)
        return;
    keys_clear(keys);
    free(keys->dir);
    if (keys->lock_ready)
        pthread_mutex_destroy(&keys->lock);
    tether_wipe(keys, sizeof(*keys));
}

/* Whether a token signed by this key may still be live at now. */
static bool published(const tether_store_issuer_key_t *row, int64_t now)
{
    return row->retired_at == 0 || now <= row->not_after;
}

/* Parses a PEM private key and checks that it is P-256 with this kid. */
static tether_status_t key_from_pem(const uint8_t *pem, size_t len, const char *kid,
                                    tether_ec_key_t *pk, char *kid_out)
{
    char thumbprint[TETHER_JWK_THUMBPRINT_SIZE];

    if (tether_ec_key_parse_pem(pk, (const char *)pem, len) != TETHER_OK)
        return TETHER_ERR_PARSE;
    if (tether_jwk_thumbprint_key(pk, thumbprint, sizeof(thumbprint)) != TETHER_OK)
        return TETHER_ERR_CRYPTO;
    if (kid != NULL && strcmp(thumbprint, kid) != 0)
        return TETHER_ERR_VERIFY;
    if (kid_out != NULL)
        memcpy(kid_out, thumbprint, sizeof(thumbprint));
    return TETHER_OK;
}

/* Loads dir/file into pk, checking the kid (NULL: any; kid_out gets it). */
static tether_status_t load_key_file(const char *dir, const char *file, const char *kid,
                                     tether_ec_key_t *pk, char *kid_out)
{
    char path[4096];
    uint8_t *pem = NULL;
    size_t len = 0;
    tether_status_t rc;

    if (!tether_fleet_config_path_valid(file)) {
        tether_error("keys", "issuer key file \"%.60s\" is not a path inside the fleet directory",
                     file);
        return TETHER_ERR_PARSE;
    }
    if ((rc = tether_fleet_path(path, sizeof(path), dir, file)) != TETHER_OK)
        return rc;
    if ((rc = tether_file_read(path, PEM_FILE_MAX, &pem, &len)) != TETHER_OK) {
        tether_error("keys", "cannot read the issuer key %s: %s", path, tether_strerror(rc));
        return rc;
    }
    rc = key_from_pem(pem, len, kid, pk, kid_out);
    if (rc == TETHER_ERR_VERIFY)
        tether_error("keys", "%s holds another key than kid %s: restore the right file", path,
                     kid);
    else if (rc != TETHER_OK)
        tether_error("keys", "%s is not an EC P-256 private key in PEM", path);
    tether_wipe(pem, len);
    free(pem);
    return rc;
}

/* Room for one more key in keys and jwt (so that adding one cannot fail
 * after the store has committed it). */
static tether_status_t reserve(tether_issuer_keys_t *keys)
{
    tether_issuer_key_t **list;
    tether_jwt_key_t *jwt;

    if ((list = realloc(keys->keys, (keys->count + 1) * sizeof(*list))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    keys->keys = list;
    if ((jwt = realloc(keys->jwt, (keys->count + 1) * sizeof(*jwt))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    keys->jwt = jwt;
    return TETHER_OK;
}

typedef struct rows {
    tether_store_issuer_key_t *rows;
    size_t count;
    bool failed;
} rows_t;

static int collect_row(void *arg, const tether_store_issuer_key_t *key)
{
    rows_t *r = arg;
    tether_store_issuer_key_t *more = realloc(r->rows, (r->count + 1) * sizeof(*more));

    if (more == NULL) {
        r->failed = true;
        return 1;
    }
    r->rows = more;
    r->rows[r->count++] = *key;
    return 0;
}

/* A fleet made before issuer_keys existed: its init key becomes the first. */
static tether_status_t record_first_key(tether_issuer_keys_t *keys, int64_t now)
{
    tether_store_issuer_key_t row;
    tether_ec_key_t pk;
    tether_status_t rc;

    memset(&row, 0, sizeof(row));
    tether_ec_key_init(&pk);
    rc = load_key_file(keys->dir, TETHER_ISSUER_FIRST_KEY_FILE, NULL, &pk, row.kid);
    tether_ec_key_free(&pk);
    if (rc != TETHER_OK)
        return rc;
    snprintf(row.file, sizeof(row.file), "%s", TETHER_ISSUER_FIRST_KEY_FILE);
    row.created_at = now;
    rc = tether_store_issuer_key_add_first(keys->store, &row);
    if (rc == TETHER_OK)
        tether_info("keys", "issuer key %s (%s) recorded as the signing key", row.kid, row.file);
    /* Another fleetd on the same store recorded one first: fine. */
    return rc == TETHER_ERR_CONFLICT ? TETHER_OK : rc;
}

static tether_status_t load_rows(tether_issuer_keys_t *keys, const rows_t *r, int64_t now)
{
    size_t active = 0;
    tether_status_t rc;

    for (size_t i = 0; i < r->count; i++)
        active += r->rows[i].retired_at == 0 ? 1 : 0;
    if (active != 1) {
        tether_error("keys", "the store has %zu signing keys (issuer_keys rows without "
                             "retired_at); exactly one is needed", active);
        return TETHER_ERR_STATE;
    }
    for (size_t i = 0; i < r->count; i++) {
        const tether_store_issuer_key_t *row = &r->rows[i];
        tether_issuer_key_t *key;

        if (!published(row, now))
            continue;
        if ((rc = reserve(keys)) != TETHER_OK)
            return rc;
        if ((key = calloc(1, sizeof(*key))) == NULL)
            return TETHER_ERR_NO_MEMORY;
        key->row = *row;
        tether_ec_key_init(&key->pk);
        rc = load_key_file(keys->dir, row->file, row->kid, &key->pk, NULL);
        if (rc != TETHER_OK && row->retired_at != 0) {
            /* Its tokens will fail verification; signing goes on. */
            tether_warn("keys", "retired issuer key %s is not loaded: tokens it signed no longer "
                                "verify", row->kid);
            key_free(key);
            continue;
        }
        if (rc != TETHER_OK) {
            key_free(key);
            return rc;
        }
        if (row->retired_at == 0)
            keys->active = keys->count;
        keys->keys[keys->count++] = key;
    }
    return TETHER_OK;
}

/* The keys' arrays, moved from one set to another. */
static void keys_move(tether_issuer_keys_t *to, tether_issuer_keys_t *from)
{
    to->keys = from->keys;
    to->jwt = from->jwt;
    to->count = from->count;
    to->active = from->active;
    from->keys = NULL;
    from->jwt = NULL;
    from->count = 0;
}

/* With the lock held: another replica's rotation. The store's rows are
 * read at most every TETHER_ISSUER_KEYS_REFRESH_SECONDS; when its active
 * kid is not the loaded one, every key is loaded again, or, when that
 * fails (the new file is not in this directory), the loaded keys stay and
 * the log says what to copy. */
static void refresh_locked(tether_issuer_keys_t *keys, int64_t now)
{
    tether_issuer_keys_t next;
    rows_t r = {NULL, 0, false};
    struct timespec mono;
    const tether_store_issuer_key_t *active = NULL;

    clock_gettime(CLOCK_MONOTONIC, &mono);
    if (mono.tv_sec - keys->checked_at.tv_sec < TETHER_ISSUER_KEYS_REFRESH_SECONDS)
        return;
    keys->checked_at = mono;
    if (tether_store_issuer_key_list(keys->store, collect_row, &r) != TETHER_OK || r.failed)
        goto out;
    for (size_t i = 0; i < r.count; i++)
        active = r.rows[i].retired_at == 0 ? &r.rows[i] : active;
    if (active == NULL || keys->count == 0 ||
        strcmp(active->kid, keys->keys[keys->active]->row.kid) == 0)
        goto out;
    memset(&next, 0, sizeof(next));
    next.dir = keys->dir;
    next.store = keys->store;
    if (load_rows(&next, &r, now) != TETHER_OK) {
        tether_error("keys", "issuer key %s (%s) signs on another replica and is not in this "
                             "fleet directory: copy its issuer-keys/ here; signing goes on "
                             "with %s",
                     active->kid, active->file, keys->keys[keys->active]->row.kid);
        keys_clear(&next);
        goto out;
    }
    tether_warn("keys", "issuer key %s is the signing key now (rotated on another replica)",
                active->kid);
    keys_clear(keys);
    keys_move(keys, &next);
out:
    free(r.rows);
}

tether_status_t tether_issuer_keys_open(tether_issuer_keys_t *keys, const char *dir,
                                        tether_store_t *store, const char *issuer, int64_t now)
{
    rows_t r = {NULL, 0, false};
    tether_status_t rc;

    if (keys == NULL || dir == NULL || store == NULL || issuer == NULL || keys->dir != NULL ||
        strlen(issuer) >= sizeof(keys->issuer))
        return TETHER_ERR_INVALID_ARGUMENT;
    if (pthread_mutex_init(&keys->lock, NULL) != 0)
        return TETHER_ERR_NO_MEMORY;
    keys->lock_ready = true;
    if ((keys->dir = strdup(dir)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    keys->store = store;
    strcpy(keys->issuer, issuer);
    rc = tether_store_issuer_key_list(store, collect_row, &r);
    if (rc == TETHER_OK && r.failed)
        rc = TETHER_ERR_NO_MEMORY;
    if (rc == TETHER_OK && r.count == 0) {
        if ((rc = record_first_key(keys, now)) == TETHER_OK)
            rc = tether_store_issuer_key_list(store, collect_row, &r);
        if (rc == TETHER_OK && r.failed)
            rc = TETHER_ERR_NO_MEMORY;
    }
    if (rc == TETHER_OK)
        rc = load_rows(keys, &r, now);
    clock_gettime(CLOCK_MONOTONIC, &keys->checked_at);
    free(r.rows);
    return rc;
}

/* ---- rotation ---- */

/* Writes a new key as DIR/issuer-keys/KID.pem; row gets kid and file. */
static tether_status_t new_key_file(const tether_issuer_keys_t *keys, tether_ec_key_t *pk,
                                    tether_store_issuer_key_t *row)
{
    char key_dir[4096], name[TETHER_STORE_KID_SIZE + 8];
    char pem[TETHER_EC_KEY_PEM_MAX];
    size_t pem_len = 0;
    tether_status_t rc;

    if ((rc = tether_ec_key_generate(pk)) != TETHER_OK ||
        (rc = tether_jwk_thumbprint_key(pk, row->kid, sizeof(row->kid))) != TETHER_OK ||
        (rc = tether_ec_key_write_pem(pk, pem, sizeof(pem), &pem_len)) != TETHER_OK ||
        (rc = tether_fleet_path(key_dir, sizeof(key_dir), keys->dir, TETHER_ISSUER_KEYS_DIR)) !=
            TETHER_OK)
        goto out;
    if ((rc = tether_dir_ensure_private(key_dir)) != TETHER_OK) {
        tether_error("keys", "cannot create %s (mode 0700): %s", key_dir, tether_strerror(rc));
        goto out;
    }
    snprintf(name, sizeof(name), "%s.pem", row->kid);
    snprintf(row->file, sizeof(row->file), "%s/%s", TETHER_ISSUER_KEYS_DIR, name);
    rc = tether_fleet_file_write(key_dir, name, pem, pem_len, 0600);
out:
    tether_wipe(pem, sizeof(pem));
    return rc;
}

static void remove_key_file(const tether_issuer_keys_t *keys, const char *file)
{
    char path[4096];

    if (tether_fleet_path(path, sizeof(path), keys->dir, file) == TETHER_OK &&
        tether_file_wipe_remove(path) != TETHER_OK)
        tether_warn("keys", "cannot remove %s, a key never used", path);
}

tether_status_t tether_issuer_keys_rotate(tether_issuer_keys_t *keys, int64_t now,
                                          tether_store_issuer_key_t *active,
                                          tether_store_issuer_key_t *retired)
{
    tether_store_issuer_key_t old;
    tether_issuer_key_t *key;
    tether_status_t rc;

    if (keys == NULL || keys->dir == NULL)
        return TETHER_ERR_STATE;
    if ((key = calloc(1, sizeof(*key))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    tether_ec_key_init(&key->pk);
    memset(&old, 0, sizeof(old));
    pthread_mutex_lock(&keys->lock);
    if ((rc = reserve(keys)) != TETHER_OK || (rc = new_key_file(keys, &key->pk, &key->row)) !=
                                                 TETHER_OK)
        goto out;
    key->row.created_at = now;
    if ((rc = tether_store_issuer_key_rotate(keys->store, &key->row, now, &old)) != TETHER_OK) {
        remove_key_file(keys, key->row.file);
        goto out;
    }
    for (size_t i = 0; i < keys->count; i++) {
        if (strcmp(keys->keys[i]->row.kid, old.kid) == 0)
            keys->keys[i]->row = old;
    }
    keys->active = keys->count;
    keys->keys[keys->count++] = key;
    tether_warn("keys", "issuer key %s is the signing key now; %s retired, published until %lld",
                key->row.kid, old.kid, (long long)old.not_after);
    if (active != NULL)
        *active = key->row;
    if (retired != NULL)
        *retired = old;
    key = NULL;
out:
    pthread_mutex_unlock(&keys->lock);
    key_free(key);
    return rc;
}

/* ---- signing ---- */

void tether_issuer_keys_lock(tether_issuer_keys_t *keys)
{
    pthread_mutex_lock(&keys->lock);
    refresh_locked(keys, (int64_t)time(NULL));
}

void tether_issuer_keys_unlock(tether_issuer_keys_t *keys)
{
    pthread_mutex_unlock(&keys->lock);
}

const char *tether_issuer_keys_active_kid(const tether_issuer_keys_t *keys)
{
    if (keys == NULL || keys->count == 0)
        return NULL;
    return keys->keys[keys->active]->row.kid;
}

tether_status_t tether_issuer_keys_sign_locked(tether_issuer_keys_t *keys, const char *kid,
                                               const cJSON *claims, char *out, size_t out_size,
                                               size_t *out_len, const char **kid_used)
{
    tether_issuer_key_t *key;

    if (keys == NULL || keys->count == 0)
        return TETHER_ERR_STATE;
    key = keys->keys[keys->active];
    for (size_t i = 0; kid != NULL && i < keys->count; i++) {
        if (strcmp(keys->keys[i]->row.kid, kid) == 0)
            key = keys->keys[i];
    }
    if (kid_used != NULL)
        *kid_used = key->row.kid;
    return tether_jwt_sign(key->row.kid, claims, &key->pk, out, out_size, out_len);
}

/* ---- verification ---- */

tether_status_t tether_issuer_keys_acquire(tether_issuer_keys_t *keys, int64_t now,
                                           tether_jwt_keyset_t *set, const char **issuer)
{
    size_t n = 0;

    if (keys == NULL || set == NULL || keys->dir == NULL)
        return TETHER_ERR_STATE;
    pthread_mutex_lock(&keys->lock);
    refresh_locked(keys, now);
    for (size_t i = 0; i < keys->count; i++) {
        if (!published(&keys->keys[i]->row, now))
            continue;
        keys->jwt[n].kid = keys->keys[i]->row.kid;
        keys->jwt[n].key = &keys->keys[i]->pk;
        n++;
    }
    set->keys = keys->jwt;
    set->count = n;
    if (issuer != NULL)
        *issuer = keys->issuer;
    return TETHER_OK;
}

void tether_issuer_keys_release(tether_issuer_keys_t *keys)
{
    if (keys != NULL && keys->dir != NULL)
        pthread_mutex_unlock(&keys->lock);
}

tether_status_t tether_issuer_keys_verify(tether_issuer_keys_t *keys, const char *token,
                                          size_t len, tether_jwt_expect_t *expect,
                                          cJSON **claims_out)
{
    tether_jwt_keyset_t set;
    const char *issuer = NULL;
    tether_status_t rc;

    if (claims_out != NULL)
        *claims_out = NULL;
    if (expect == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((rc = tether_issuer_keys_acquire(keys, expect->now, &set, &issuer)) != TETHER_OK)
        return rc;
    expect->issuer = issuer;
    rc = tether_jwt_verify(token, len, &set, expect, claims_out);
    tether_issuer_keys_release(keys);
    return rc;
}

tether_status_t tether_issuer_keys_jwks(tether_issuer_keys_t *keys, int64_t now, cJSON **jwks)
{
    tether_jwt_keyset_t set;
    cJSON *json = NULL, *array;
    tether_status_t rc;

    if (jwks == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *jwks = NULL;
    if ((rc = tether_issuer_keys_acquire(keys, now, &set, NULL)) != TETHER_OK)
        return rc;
    if ((json = cJSON_CreateObject()) == NULL ||
        (array = cJSON_AddArrayToObject(json, "keys")) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    for (size_t i = 0; i < set.count; i++) {
        cJSON *jwk = NULL;
        /* tether_jwk_write writes the public part only. */
        if ((rc = tether_jwk_write(set.keys[i].key, &jwk)) != TETHER_OK)
            goto out;
        if (cJSON_AddStringToObject(jwk, "kid", set.keys[i].kid) == NULL ||
            cJSON_AddStringToObject(jwk, "use", "sig") == NULL ||
            cJSON_AddStringToObject(jwk, "alg", "ES256") == NULL ||
            !cJSON_AddItemToArray(array, jwk)) {
            cJSON_Delete(jwk);
            rc = TETHER_ERR_NO_MEMORY;
            goto out;
        }
    }
    *jwks = json;
    json = NULL;
out:
    tether_issuer_keys_release(keys);
    cJSON_Delete(json);
    return rc;
}
