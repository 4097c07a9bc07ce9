/* The store's exchange and issuer-key operations: dispatch, the group
 * commit of exchanges (above every implementation, which runs a batch with
 * exchange_batch), and the rules every implementation shares (the clone
 * decision, the alert details). */
#include "store.h"
#include "store_backend.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "tether/bytes.h"

tether_store_exchange_decision_t tether_store_exchange_decide(
    const tether_store_exchange_device_t *row, const tether_store_exchange_t *exchange,
    bool nonce_used)
{
    if (row->device.status != TETHER_DEVICE_ACTIVE)
        return TETHER_STORE_EXCHANGE_NOT_ACTIVE;
    /* The same exchange again (the answer was lost): same counter, same
     * attested content. */
    if (row->has_last && row->device.has_counter &&
        exchange->sighting.counter == row->device.highest_counter &&
        tether_ct_equal(row->last_fingerprint, exchange->fingerprint,
                        TETHER_STORE_FINGERPRINT_SIZE))
        return TETHER_STORE_EXCHANGE_RETRY;
    /* Anyone who saw an exchange can send it again: that is no sign of a
     * second TPM state, and it must not take the device down. */
    if (nonce_used)
        return TETHER_STORE_EXCHANGE_NONCE_REUSED;
    /* Evidence made before the last accepted exchange was asked for (its
     * request lost, or withheld and sent now): no second TPM state either. */
    if (row->has_last && row->last_nonce_expires_at > 0 && row->device.has_counter &&
        exchange->sighting.counter <= row->device.highest_counter &&
        exchange->nonce_expires_at < row->last_nonce_expires_at)
        return TETHER_STORE_EXCHANGE_NONCE_SUPERSEDED;
    if (exchange->clock_regression)
        return TETHER_STORE_EXCHANGE_CLOCK_REGRESSION;
    /* A real TPM's counter only goes up: strictly above is the one way in.
     * Any other evidence over a fresh nonce at or below the highest counter
     * means a second TPM state with this device's keys. */
    if (!row->device.has_counter || exchange->sighting.counter > row->device.highest_counter)
        return TETHER_STORE_EXCHANGE_ACCEPT;
    return TETHER_STORE_EXCHANGE_CLONE;
}

/* An unsigned 64-bit integer as an exact JSON number (a double would round
 * above 2^53). */
static cJSON *add_u64(cJSON *object, const char *name, uint64_t value)
{
    char text[24];

    snprintf(text, sizeof(text), "%" PRIu64, value);
    return cJSON_AddRawToObject(object, name, text);
}

static cJSON *sighting_json(const tether_store_sighting_t *s)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *clock = cJSON_CreateObject();

    if (json == NULL || clock == NULL || add_u64(json, "counter", s->counter) == NULL ||
        add_u64(clock, "clock", s->clock.clock) == NULL ||
        add_u64(clock, "resetCount", s->clock.reset_count) == NULL ||
        add_u64(clock, "restartCount", s->clock.restart_count) == NULL ||
        cJSON_AddBoolToObject(clock, "safe", s->clock.safe) == NULL ||
        !cJSON_AddItemToObject(json, "clock_info", clock)) {
        cJSON_Delete(clock);
        cJSON_Delete(json);
        return NULL;
    }
    if (cJSON_AddStringToObject(json, "source_address",
                                s->address[0] != '\0' ? s->address : "-") == NULL ||
        cJSON_AddNumberToObject(json, "time", (double)s->at) == NULL) {
        cJSON_Delete(json);
        return NULL;
    }
    return json;
}

tether_status_t tether_store_sighting_details(const char *reason,
                                              const tether_store_sighting_t *last,
                                              const tether_store_sighting_t *now, char **out)
{
    cJSON *json = NULL, *item = NULL;
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    if (reason == NULL || now == NULL || out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if ((json = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(json, "reason", reason) == NULL)
        goto out;
    item = last != NULL ? sighting_json(last) : cJSON_CreateNull();
    if (item == NULL || !cJSON_AddItemToObject(json, "last_accepted", item))
        goto out;
    item = sighting_json(now);
    if (item == NULL || !cJSON_AddItemToObject(json, "this", item))
        goto out;
    item = NULL;
    if ((*out = cJSON_PrintUnformatted(json)) != NULL)
        rc = TETHER_OK;
out:
    if (rc != TETHER_OK)
        cJSON_Delete(item);
    cJSON_Delete(json);
    return rc;
}

tether_status_t tether_store_exchange_device_get(tether_store_t *store, const char *id,
                                                 tether_store_exchange_device_t *device)
{
    return STORE_CALL(store, exchange_device_get, id, device);
}

/* One caller of tether_store_exchange_record, queued for a group commit;
 * on its own stack until its batch has been committed. */
struct tether_store_exchange_waiter {
    tether_store_exchange_item_t item;
    struct tether_store_exchange_waiter *next;
    bool done; /* item.status is final: its batch was committed or failed */
};

/* Takes up to TETHER_STORE_GROUP_COMMIT_MAX waiters off the queue's head
 * into batch (arrival order) and runs them as one transaction, without the
 * queue's lock held, so that exchanges arriving meanwhile queue for the next
 * one. Called and returns with g->lock held. */
static void run_batch(tether_store_t *store, tether_store_group_commit_t *g)
{
    struct tether_store_exchange_waiter *batch[TETHER_STORE_GROUP_COMMIT_MAX];
    tether_store_exchange_item_t items[TETHER_STORE_GROUP_COMMIT_MAX];
    size_t count = 0;

    while (g->head != NULL && count < TETHER_STORE_GROUP_COMMIT_MAX) {
        batch[count] = g->head;
        items[count] = g->head->item;
        g->head = g->head->next;
        count++;
    }
    if (g->head == NULL)
        g->tail = NULL;
    g->waiting -= count;
    g->committing = true;
    pthread_mutex_unlock(&g->lock);

    store->ops->exchange_batch(store->impl, items, count);

    pthread_mutex_lock(&g->lock);
    for (size_t i = 0; i < count; i++) {
        batch[i]->item.status = items[i].status;
        batch[i]->done = true;
    }
    g->batches++;
    g->exchanges += count;
    g->committing = false;
    pthread_cond_broadcast(&g->finished);
}

tether_status_t tether_store_exchange_record(tether_store_t *store,
                                             const tether_store_exchange_t *exchange, int64_t now,
                                             tether_store_exchange_result_t *result)
{
    struct tether_store_exchange_waiter self = {
        .item = {.exchange = exchange, .now = now, .result = result, .status = TETHER_ERR_STORE},
    };
    tether_store_group_commit_t *g;
    struct timespec start;

    if (store == NULL || store->ops == NULL || store->ops->exchange_batch == NULL)
        return TETHER_ERR_STATE;
    if (exchange == NULL || result == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    g = &store->group_commit;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&g->lock);
    if (g->tail != NULL)
        g->tail->next = &self;
    else
        g->head = &self;
    g->tail = &self;
    g->waiting++;
    /* The thread that finds no commit running leads the next one, with
     * every exchange queued by then; the others wait for theirs. */
    while (!self.done) {
        if (!g->committing)
            run_batch(store, g);
        else
            pthread_cond_wait(&g->finished, &g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    tether_store_observe_since(store, "exchange", &start);

    /* A quarantine appended to the revocation feed in its transaction. */
    if (self.item.status == TETHER_OK &&
        (result->decision == TETHER_STORE_EXCHANGE_CLONE ||
         result->decision == TETHER_STORE_EXCHANGE_CLOCK_REGRESSION ||
         result->decision == TETHER_STORE_EXCHANGE_USAGE_MISMATCH ||
         result->decision == TETHER_STORE_EXCHANGE_SOURCE_REFUSED) &&
        store->revocation_hook != NULL)
        store->revocation_hook(store->revocation_hook_arg);
    return self.item.status;
}

void tether_store_group_commit_counts(tether_store_t *store, uint64_t *batches,
                                      uint64_t *exchanges)
{
    *batches = 0;
    *exchanges = 0;
    if (store == NULL)
        return;
    pthread_mutex_lock(&store->group_commit.lock);
    *batches = store->group_commit.batches;
    *exchanges = store->group_commit.exchanges;
    pthread_mutex_unlock(&store->group_commit.lock);
}

tether_status_t tether_store_issued_token_get(tether_store_t *store, const char *jti,
                                              tether_store_issued_token_t *token)
{
    return STORE_CALL(store, issued_token_get, jti, token);
}

tether_status_t tether_store_issuer_key_list(tether_store_t *store, tether_store_issuer_key_cb cb,
                                             void *arg)
{
    return STORE_CALL(store, issuer_key_list, cb, arg);
}

tether_status_t tether_store_issuer_key_add_first(tether_store_t *store,
                                                  const tether_store_issuer_key_t *key)
{
    return STORE_CALL(store, issuer_key_add_first, key);
}

tether_status_t tether_store_issuer_key_rotate(tether_store_t *store,
                                               const tether_store_issuer_key_t *key, int64_t now,
                                               tether_store_issuer_key_t *retired)
{
    return STORE_CALL(store, issuer_key_rotate, key, now, retired);
}

/* ---- shared by the implementations (store_backend.h) ---- */

bool tether_store_exchange_valid(const tether_store_exchange_t *ex)
{
    if (ex->device_id == NULL)
        return false;
    if (ex->clock_regression)
        return true;
    if (ex->usage == NULL && ex->usage_count > 0)
        return false;
    for (size_t i = 0; i < ex->usage_count; i++)
        if (ex->usage[i].jti == NULL || ex->usage[i].proofs < 0 || ex->usage[i].requests < 0 ||
            ex->usage[i].bearer < 0)
            return false;
    return ex->jti != NULL && ex->kid != NULL && ex->scope != NULL && ex->audience != NULL &&
           ex->pcr_digest_len <= TETHER_STORE_DIGEST_MAX;
}

const char *tether_store_clone_alert_kind(tether_store_exchange_decision_t decision)
{
    return decision == TETHER_STORE_EXCHANGE_CLONE ? "clone_detected" : "clock_regression";
}

tether_status_t tether_store_clone_reason(const tether_store_exchange_t *ex,
                                          const tether_store_exchange_device_t *row,
                                          tether_store_exchange_decision_t decision,
                                          char reason[TETHER_STORE_REASON_MAX + 1],
                                          char **details)
{
    if (decision == TETHER_STORE_EXCHANGE_CLONE)
        snprintf(reason, TETHER_STORE_REASON_MAX + 1,
                 "clone detected: exchange counter %" PRIu64
                 " is not above the highest accepted %" PRIu64
                 " (a second TPM state holds this device's keys)",
                 ex->sighting.counter, row->device.highest_counter);
    else
        snprintf(reason, TETHER_STORE_REASON_MAX + 1,
                 "clone suspected: the TPM clock went back (clock_regression) at exchange "
                 "counter %" PRIu64 " (a second TPM state holds this device's keys)",
                 ex->sighting.counter);
    return tether_store_sighting_details(reason, row->has_last ? &row->last : NULL,
                                         &ex->sighting, details);
}

bool tether_store_issuer_key_valid(const tether_store_issuer_key_t *key)
{
    return key != NULL && memchr(key->kid, '\0', sizeof(key->kid)) != NULL &&
           strlen(key->kid) == TETHER_STORE_KID_SIZE - 1 &&
           memchr(key->file, '\0', sizeof(key->file)) != NULL && key->file[0] != '\0';
}
