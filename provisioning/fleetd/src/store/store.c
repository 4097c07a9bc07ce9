/* The store's dispatch layer: each call to its implementation's operation. */
#include "store.h"
#include "store_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "tether/bytes.h"

void tether_store_init(tether_store_t *store)
{
    if (store == NULL)
        return;
    memset(store, 0, sizeof(*store));
    /* Default attributes: neither can fail on Linux (no resources taken). */
    (void)pthread_mutex_init(&store->group_commit.lock, NULL);
    (void)pthread_cond_init(&store->group_commit.finished, NULL);
}

tether_status_t tether_store_open(tether_store_t *store, const char *location,
                                  unsigned connections)
{
    return tether_store_is_postgresql(location)
               ? tether_store_open_postgresql(store, location, connections)
               : tether_store_open_sqlite(store, location);
}

void tether_store_free(tether_store_t *store)
{
    if (store == NULL)
        return;
    if (store->ops != NULL && store->impl != NULL)
        store->ops->close(store->impl);
    pthread_cond_destroy(&store->group_commit.finished);
    pthread_mutex_destroy(&store->group_commit.lock);
    tether_wipe(store, sizeof(*store));
}

tether_status_t tether_store_schema_version(tether_store_t *store, int *version)
{
    return STORE_CALL(store, schema_version, version);
}

tether_status_t tether_store_admin_token_create(tether_store_t *store,
                                                const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                unsigned roles, const char *name, int64_t now,
                                                int64_t *id)
{
    return STORE_CALL(store, admin_token_create, hash, roles, name, now, id);
}

tether_status_t tether_store_admin_token_find(tether_store_t *store,
                                              const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                              tether_store_admin_token_t *token)
{
    return STORE_CALL(store, admin_token_find, hash, token);
}

tether_status_t tether_store_admin_token_recover(tether_store_t *store,
                                                 const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                 unsigned roles, const char *name, int64_t uid,
                                                 int64_t now, int64_t *id)
{
    return STORE_CALL(store, admin_token_recover, hash, roles, name, uid, now, id);
}

tether_status_t tether_store_admin_token_revoke(tether_store_t *store, int64_t id, int64_t now,
                                                unsigned *last_roles)
{
    return STORE_CALL(store, admin_token_revoke, id, now, last_roles);
}

tether_status_t tether_store_admin_token_list(tether_store_t *store,
                                              tether_store_admin_token_cb cb, void *arg)
{
    return STORE_CALL(store, admin_token_list, cb, arg);
}

tether_status_t tether_store_device_import(tether_store_t *store, const tether_store_allow_t *rows,
                                           size_t count, int64_t now, size_t *created,
                                           size_t *conflict_index)
{
    return STORE_CALL(store, device_import, rows, count, now, created, conflict_index);
}

tether_status_t tether_store_device_get(tether_store_t *store, const char *id,
                                        tether_store_device_t *device)
{
    return STORE_CALL(store, device_get, id, device);
}

tether_status_t tether_store_device_find_ek(tether_store_t *store, const char *ek_sha256,
                                            tether_store_device_t *device)
{
    return STORE_CALL(store, device_find_ek, ek_sha256, device);
}

tether_status_t tether_store_device_list(tether_store_t *store, tether_store_device_cb cb,
                                         void *arg)
{
    return STORE_CALL(store, device_list, cb, arg);
}

tether_status_t tether_store_device_counts(tether_store_t *store,
                                           uint64_t counts[TETHER_STORE_DEVICE_STATUSES])
{
    if (counts != NULL)
        memset(counts, 0, TETHER_STORE_DEVICE_STATUSES * sizeof(counts[0]));
    return STORE_CALL(store, device_counts, counts);
}

tether_status_t tether_store_device_change_status(tether_store_t *store, const char *id,
                                                  tether_device_action_t action,
                                                  const char *reason, int64_t now,
                                                  tether_store_device_t *device)
{
    struct timespec start;
    tether_status_t rc;

    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = STORE_CALL(store, device_change_status, id, action, reason, now, device);
    tether_store_observe_since(store, "device_status", &start);
    /* Revoke and quarantine append to the feed in their transaction. */
    if (rc == TETHER_OK && action != TETHER_DEVICE_REINSTATE && store->revocation_hook != NULL)
        store->revocation_hook(store->revocation_hook_arg);
    return rc;
}

tether_status_t tether_store_bootstrap_token_create(tether_store_t *store,
                                                    const uint8_t hash[TETHER_STORE_HASH_SIZE],
                                                    int64_t expires_at, unsigned uses, int64_t now)
{
    return STORE_CALL(store, bootstrap_token_create, hash, expires_at, uses, now);
}

tether_status_t tether_store_enroll_authorize(tether_store_t *store, const char *ek_sha256,
                                              const uint8_t *bootstrap_hash, int64_t now,
                                              tether_enroll_decision_t *decision,
                                              tether_store_device_t *device)
{
    return STORE_CALL(store, enroll_authorize, ek_sha256, bootstrap_hash, now, decision, device);
}

tether_status_t tether_store_enrollment_add(tether_store_t *store,
                                            const tether_store_enrollment_t *enrollment,
                                            int64_t now,
                                            const tether_store_enrollment_bounds_t *bounds,
                                            int64_t *retry_after)
{
    return STORE_CALL(store, enrollment_add, enrollment, now, bounds, retry_after);
}

tether_status_t tether_store_enrollment_find(tether_store_t *store, const char *id, int64_t now,
                                             tether_store_enrollment_t *enrollment)
{
    return STORE_CALL(store, enrollment_find, id, now, enrollment);
}

tether_status_t tether_store_enrollment_delete(tether_store_t *store, const char *id)
{
    return STORE_CALL(store, enrollment_delete, id);
}

tether_status_t tether_store_enrollment_activate(tether_store_t *store, const char *id,
                                                 const char *new_device_id, int64_t now,
                                                 tether_enroll_decision_t *decision,
                                                 tether_store_device_t *device)
{
    struct timespec start;
    tether_status_t rc;

    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = STORE_CALL(store, enrollment_activate, id, new_device_id, now, decision, device);
    tether_store_observe_since(store, "enrollment_activate", &start);
    return rc;
}

tether_status_t tether_store_enrollment_completed(tether_store_t *store, const char *id,
                                                  tether_store_device_t *device)
{
    return STORE_CALL(store, enrollment_completed, id, device);
}

tether_enroll_decision_t tether_enroll_decide(const tether_store_device_t *device,
                                              bool token_presented,
                                              const tether_store_bootstrap_t *token, int64_t now)
{
    if (device != NULL) {
        /* A reinstated device is "allowed" with allow_reenroll set; a revoked
         * row that carries allow_reenroll is read the same way. Everything
         * else (active, quarantined, revoked) keeps the EK bound to its AK:
         * a second enrolment would let a clone take the device over. */
        if (device->status == TETHER_DEVICE_ALLOWED ||
            (device->status == TETHER_DEVICE_REVOKED && device->allow_reenroll))
            return TETHER_ENROLL_GRANT_ALLOW_LIST;
        return TETHER_ENROLL_ALREADY_ENROLLED;
    }
    if (!token_presented)
        return TETHER_ENROLL_NOT_ALLOWED;
    if (token == NULL)
        return TETHER_ENROLL_TOKEN_UNKNOWN;
    if (now >= token->expires_at)
        return TETHER_ENROLL_TOKEN_EXPIRED;
    if (token->uses_left <= 0)
        return TETHER_ENROLL_TOKEN_USED;
    return TETHER_ENROLL_GRANT_BOOTSTRAP;
}

bool tether_enroll_decision_granted(tether_enroll_decision_t decision)
{
    return decision == TETHER_ENROLL_GRANT_ALLOW_LIST || decision == TETHER_ENROLL_GRANT_BOOTSTRAP;
}

tether_status_t tether_store_alert_add(tether_store_t *store, const char *device_id,
                                       const char *kind, const char *details_json, int64_t now)
{
    return STORE_CALL(store, alert_add, device_id, kind, details_json, now);
}

tether_status_t tether_store_alert_list(tether_store_t *store, int64_t after_id, unsigned limit,
                                        tether_store_alert_cb cb, void *arg)
{
    return STORE_CALL(store, alert_list, after_id, limit, cb, arg);
}

tether_status_t tether_store_webhook_sync(tether_store_t *store, const char *const *names,
                                          size_t count, int64_t now, uint64_t *dropped)
{
    return STORE_CALL(store, webhook_sync, names, count, now, dropped);
}

tether_status_t tether_store_webhook_claim(tether_store_t *store, const char *webhook,
                                           int64_t now_ms, int64_t lease_ms,
                                           tether_store_delivery_cb cb, void *arg)
{
    tether_store_webhook_pending_t waiting;
    tether_status_t rc = STORE_CALL(store, webhook_claim, webhook, now_ms, lease_ms, cb, arg);

    /* Nothing claimed: none waits, or the oldest is claimed. */
    if (rc == TETHER_ERR_NOT_FOUND &&
        (rc = tether_store_webhook_pending(store, webhook, &waiting)) == TETHER_OK)
        rc = waiting.count > 0 ? TETHER_ERR_CONFLICT : TETHER_ERR_NOT_FOUND;
    return rc;
}

tether_status_t tether_store_webhook_retry_at(tether_store_t *store, const char *webhook,
                                              int64_t alert_id, int64_t until_ms)
{
    return STORE_CALL(store, webhook_retry_at, webhook, alert_id, until_ms);
}

tether_status_t tether_store_webhook_delivered(tether_store_t *store, const char *webhook,
                                               int64_t alert_id)
{
    return STORE_CALL(store, webhook_delivered, webhook, alert_id);
}

tether_status_t tether_store_webhook_pending(tether_store_t *store, const char *webhook,
                                             tether_store_webhook_pending_t *pending)
{
    return STORE_CALL(store, webhook_pending, webhook, pending);
}

tether_status_t tether_store_issued_token_add(tether_store_t *store, const char *jti,
                                              const char *device_id, int64_t exp, int64_t now)
{
    return STORE_CALL(store, issued_token_add, jti, device_id, exp, now);
}

tether_status_t tether_store_issued_token_revoked(tether_store_t *store, const char *jti,
                                                  bool *revoked)
{
    return STORE_CALL(store, issued_token_revoked, jti, revoked);
}

tether_status_t tether_store_revocation_list(tether_store_t *store, int64_t after_seq,
                                             unsigned limit, tether_store_revocation_cb cb,
                                             void *arg)
{
    return STORE_CALL(store, revocation_list, after_seq, limit, cb, arg);
}

tether_status_t tether_store_token_state(tether_store_t *store, const char *jti,
                                         tether_store_token_state_t *state)
{
    return STORE_CALL(store, token_state, jti, state);
}

tether_status_t tether_store_revocation_head(tether_store_t *store, int64_t *seq)
{
    return STORE_CALL(store, revocation_head, seq);
}

tether_status_t tether_store_usage_report_record(tether_store_t *store,
                                                const tether_store_usage_report_t *report,
                                                int64_t now, tether_store_usage_result_t *result)
{
    struct timespec start;
    tether_status_t rc;

    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = STORE_CALL(store, usage_report_record, report, now, result);
    tether_store_observe_since(store, "usage_report", &start);
    /* A quarantine for a token used by someone else appended to the feed. */
    if (rc == TETHER_OK && result->quarantined && store->revocation_hook != NULL)
        store->revocation_hook(store->revocation_hook_arg);
    return rc;
}

tether_status_t tether_store_usage_unreported_check(tether_store_t *store, int64_t now,
                                                    int64_t grace, size_t *alerted)
{
    return STORE_CALL(store, usage_unreported_check, now, grace, alerted);
}

tether_status_t tether_store_usage_list(tether_store_t *store, const char *device_id,
                                        int64_t since, unsigned limit, tether_store_usage_cb cb,
                                        void *arg)
{
    return STORE_CALL(store, usage_list, device_id, since, limit, cb, arg);
}

tether_status_t tether_store_policy_write(tether_store_t *store, const char *name,
                                          const char *document, bool create, int64_t now,
                                          int64_t *version)
{
    return STORE_CALL(store, policy_write, name, document, create, now, version);
}

tether_status_t tether_store_policy_get(tether_store_t *store, const char *name, int64_t version,
                                        tether_store_policy_t *policy)
{
    return STORE_CALL(store, policy_get, name, version, policy);
}

tether_status_t tether_store_policy_list(tether_store_t *store, tether_store_policy_cb cb,
                                         void *arg)
{
    return STORE_CALL(store, policy_list, cb, arg);
}

tether_status_t tether_store_device_set_policy(tether_store_t *store, const char *id,
                                               const char *name, int64_t now)
{
    return STORE_CALL(store, device_set_policy, id, name, now);
}

tether_status_t tether_store_device_policy(tether_store_t *store, const char *id,
                                           tether_store_policy_t *policy)
{
    return STORE_CALL(store, device_policy, id, policy);
}

tether_status_t tether_store_eventlog_get(tether_store_t *store, const char *device_id,
                                          tether_store_eventlog_kind_t kind, bool with_bytes,
                                          tether_store_eventlog_t *log)
{
    return STORE_CALL(store, eventlog_get, device_id, (int)kind, with_bytes, log);
}

tether_status_t tether_store_eventlog_put(tether_store_t *store, const char *device_id,
                                          tether_store_eventlog_kind_t kind,
                                          const uint8_t sha256[32], const uint8_t *bytes,
                                          size_t len, int64_t now)
{
    return STORE_CALL(store, eventlog_put, device_id, (int)kind, sha256, bytes, len, now);
}

const char *tether_store_eventlog_kind_name(int kind)
{
    switch (kind) {
    case TETHER_STORE_EVENTLOG_PLATFORM:
        return "platform";
    case TETHER_STORE_EVENTLOG_TETHER:
        return "tether";
    default:
        return NULL;
    }
}

void tether_store_eventlog_free(tether_store_eventlog_t *log)
{
    if (log == NULL)
        return;
    free(log->bytes);
    memset(log, 0, sizeof(*log));
}

void tether_store_set_revocation_hook(tether_store_t *store, tether_store_revocation_hook_fn fn,
                                      void *arg)
{
    if (store == NULL)
        return;
    store->revocation_hook = fn;
    store->revocation_hook_arg = arg;
}

void tether_store_set_alert_hook(tether_store_t *store, void (*fn)(void *arg), void *arg)
{
    if (store != NULL && store->ops != NULL)
        store->ops->set_alert_hook(store->impl, fn, arg);
}

void tether_store_set_metrics(tether_store_t *store, tether_metric_t *histogram)
{
    if (store != NULL)
        store->transaction_seconds = histogram;
}

void tether_store_set_pool_metrics(tether_store_t *store,
                                   const tether_store_pool_metrics_t *metrics)
{
    if (store != NULL && store->ops != NULL && store->ops->set_pool_metrics != NULL &&
        metrics != NULL)
        store->ops->set_pool_metrics(store->impl, metrics);
}

void tether_store_observe_since(tether_store_t *store, const char *operation,
                                const struct timespec *start)
{
    struct timespec end;

    if (store == NULL || store->transaction_seconds == NULL)
        return;
    clock_gettime(CLOCK_MONOTONIC, &end);
    tether_metric_observe(tether_metric_series(store->transaction_seconds, operation, NULL),
                          (double)(end.tv_sec - start->tv_sec) +
                              (double)(end.tv_nsec - start->tv_nsec) / 1e9);
}

/* ---- shared by the implementations (store_backend.h) ---- */

/* The roles column's text for a valid, non-empty set of known roles. */
tether_status_t tether_store_admin_token_roles(const uint8_t *hash, unsigned roles,
                                               const char *name, char role_text[64])
{
    if (hash == NULL || name == NULL || (roles & ~TETHER_ROLE_KNOWN) != 0 || roles == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_roles_format(roles, role_text, 64);
}

/* Which status an action leads to, or TETHER_ERR_CONFLICT from this one. */
tether_status_t tether_store_status_after(tether_device_action_t action,
                                          tether_device_status_t from,
                                          tether_device_status_t *to)
{
    switch (action) {
    case TETHER_DEVICE_REVOKE:
        *to = TETHER_DEVICE_REVOKED;
        return from == TETHER_DEVICE_REVOKED ? TETHER_ERR_CONFLICT : TETHER_OK;
    case TETHER_DEVICE_QUARANTINE:
        *to = TETHER_DEVICE_QUARANTINED;
        return from == TETHER_DEVICE_REVOKED || from == TETHER_DEVICE_QUARANTINED
                   ? TETHER_ERR_CONFLICT
                   : TETHER_OK;
    case TETHER_DEVICE_REINSTATE:
        *to = TETHER_DEVICE_ALLOWED;
        return from == TETHER_DEVICE_REVOKED || from == TETHER_DEVICE_QUARANTINED
                   ? TETHER_OK
                   : TETHER_ERR_CONFLICT;
    }
    return TETHER_ERR_INVALID_ARGUMENT;
}

/* names as a JSON array: one statement takes the set. */
tether_status_t tether_store_webhook_names_json(const char *const *names, size_t count,
                                               char **out)
{
    cJSON *array = cJSON_CreateArray();
    tether_status_t rc = array != NULL ? TETHER_OK : TETHER_ERR_NO_MEMORY;

    *out = NULL;
    for (size_t i = 0; rc == TETHER_OK && i < count; i++) {
        size_t len = names[i] != NULL ? strlen(names[i]) : 0;

        if (len == 0 || len > TETHER_STORE_WEBHOOK_NAME_MAX)
            rc = TETHER_ERR_INVALID_ARGUMENT;
        else if (!cJSON_AddItemToArray(array, cJSON_CreateString(names[i])))
            rc = TETHER_ERR_NO_MEMORY;
    }
    if (rc == TETHER_OK && (*out = cJSON_PrintUnformatted(array)) == NULL)
        rc = TETHER_ERR_NO_MEMORY;
    cJSON_Delete(array);
    return rc;
}

const char *tether_store_purge_table_name(tether_store_purge_table_t table)
{
    static const char *const names[TETHER_STORE_PURGE_TABLES] = {
        [TETHER_STORE_PURGE_ISSUED_TOKENS] = "issued_tokens",
        [TETHER_STORE_PURGE_DEVICE_USAGE] = "device_usage",
        [TETHER_STORE_PURGE_USAGE_ALERTS] = "usage_alerts",
        [TETHER_STORE_PURGE_TOKEN_USAGE] = "token_usage",
        [TETHER_STORE_PURGE_ALERTS] = "alerts",
    };

    return (unsigned)table < TETHER_STORE_PURGE_TABLES ? names[table] : NULL;
}

tether_status_t tether_store_purge(tether_store_t *store, const tether_store_purge_t *purge,
                                   uint64_t purged[TETHER_STORE_PURGE_TABLES])
{
    struct timespec start;
    tether_status_t rc;

    if (purged != NULL)
        memset(purged, 0, TETHER_STORE_PURGE_TABLES * sizeof(*purged));
    if (purge == NULL || purged == NULL || purge->batch == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    clock_gettime(CLOCK_MONOTONIC, &start);
    rc = STORE_CALL(store, purge, purge, purged);
    tether_store_observe_since(store, "purge", &start);
    return rc;
}
