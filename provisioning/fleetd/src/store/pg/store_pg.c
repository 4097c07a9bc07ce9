/*
 * The store on PostgreSQL, for several fleetd replicas sharing one
 * database: a pool of connections (one per HTTP worker thread and the
 * background tasks), every change in a SERIALIZABLE transaction retried on
 * a serialization failure or deadlock (store_pg_db.c), the schema as
 * numbered migrations mirroring SQLite's (store_pg_schema.c).
 *
 * This file is the life cycle (open, close, the table of operations); the
 * operations are in a file per subject, as for SQLite:
 * store_pg_admin_tokens.c, store_pg_devices.c, store_pg_enrollment.c,
 * store_pg_exchange.c,
 * store_pg_policies.c, store_pg_reconcile.c, store_pg_thresholds.c,
 * store_pg_usage.c, store_pg_webhooks.c, each following the rules of its
 * SQLite counterpart (what is not SQL is shared: store_backend.h).
 */
#include "store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_pg_internal.h"
#include "tether/bytes.h"
#include "tether/log.h"

static tether_status_t op_schema_version(void *impl, int *version)
{
    tether_pg_t db;
    tether_status_t rc;

    if (version == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *version = 0;
    if ((rc = tether_pg_acquire(impl, &db)) != TETHER_OK)
        return rc;
    rc = tether_pg_read_version(&db, version);
    tether_pg_release(&db);
    return rc;
}

static void op_set_alert_hook(void *impl, void (*fn)(void *arg), void *arg)
{
    pg_store_t *s = impl;

    pthread_mutex_lock(&s->lock);
    s->alert_hook = fn;
    s->alert_hook_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

/* The gauges start from the pool as it is; acquire and release move them
 * (store_pg_db.c). */
static void op_set_pool_metrics(void *impl, const tether_store_pool_metrics_t *metrics)
{
    pg_store_t *s = impl;

    pthread_mutex_lock(&s->lock);
    s->metrics = *metrics;
    tether_metric_gauge_set(s->metrics.size, (int64_t)s->count);
    tether_metric_gauge_set(s->metrics.in_use, (int64_t)s->in_use);
    tether_metric_gauge_set(s->metrics.idle, (int64_t)(s->count - s->in_use));
    pthread_mutex_unlock(&s->lock);
}

static void op_close(void *impl)
{
    pg_store_t *s = impl;

    if (s == NULL)
        return;
    tether_pg_pool_close(s);
    pthread_cond_destroy(&s->released);
    pthread_mutex_destroy(&s->lock);
    tether_wipe(s, sizeof(*s));
    free(s);
}

static const tether_store_ops_t pg_ops = {
    .close = op_close,
    .schema_version = op_schema_version,
    .set_alert_hook = op_set_alert_hook,
    .set_pool_metrics = op_set_pool_metrics,
    .admin_token_create = tether_pg_admin_token_create,
    .admin_token_find = tether_pg_admin_token_find,
    .admin_token_recover = tether_pg_admin_token_recover,
    .admin_token_revoke = tether_pg_admin_token_revoke,
    .admin_token_list = tether_pg_admin_token_list,
    .device_import = tether_pg_device_import,
    .device_get = tether_pg_device_get,
    .device_find_ek = tether_pg_device_find_ek,
    .device_list = tether_pg_device_list,
    .device_counts = tether_pg_device_counts,
    .device_change_status = tether_pg_device_change_status,
    .bootstrap_token_create = tether_pg_bootstrap_token_create,
    .enroll_authorize = tether_pg_enroll_authorize,
    .enrollment_add = tether_pg_enrollment_add,
    .enrollment_find = tether_pg_enrollment_find,
    .enrollment_delete = tether_pg_enrollment_delete,
    .enrollment_activate = tether_pg_enrollment_activate,
    .enrollment_completed = tether_pg_enrollment_completed,
    .alert_add = tether_pg_alert_add,
    .alert_list = tether_pg_alert_list,
    .issued_token_add = tether_pg_issued_token_add,
    .issued_token_revoked = tether_pg_issued_token_revoked,
    .revocation_list = tether_pg_revocation_list,
    .token_state = tether_pg_token_state,
    .revocation_head = tether_pg_revocation_head,
    .policy_write = tether_pg_policy_write,
    .policy_get = tether_pg_policy_get,
    .policy_list = tether_pg_policy_list,
    .device_set_policy = tether_pg_device_set_policy,
    .device_policy = tether_pg_device_policy,
    .eventlog_get = tether_pg_eventlog_get,
    .eventlog_put = tether_pg_eventlog_put,
    .webhook_sync = tether_pg_webhook_sync,
    .webhook_claim = tether_pg_webhook_claim,
    .webhook_retry_at = tether_pg_webhook_retry_at,
    .webhook_delivered = tether_pg_webhook_delivered,
    .webhook_pending = tether_pg_webhook_pending,
    .exchange_device_get = tether_pg_exchange_device_get,
    .exchange_batch = tether_pg_exchange_batch,
    .issued_token_get = tether_pg_issued_token_get,
    .issuer_key_list = tether_pg_issuer_key_list,
    .issuer_key_add_first = tether_pg_issuer_key_add_first,
    .issuer_key_rotate = tether_pg_issuer_key_rotate,
    .usage_report_record = tether_pg_usage_report_record,
    .usage_unreported_check = tether_pg_usage_unreported_check,
    .usage_list = tether_pg_usage_list,
    .purge = tether_pg_purge,
};

bool tether_store_is_postgresql(const char *location)
{
    return location != NULL && (strncmp(location, "postgresql://", 13) == 0 ||
                                strncmp(location, "postgres://", 11) == 0);
}

bool tether_store_url_has_password(const char *url)
{
    PQconninfoOption *options = PQconninfoParse(url, NULL);
    bool found = false;

    /* Unparseable: libpq will refuse it, so it carries nothing usable, but
     * the caller treats it as secret to be safe. */
    if (options == NULL)
        return true;
    for (PQconninfoOption *o = options; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0')
            found = true;
    }
    PQconninfoFree(options);
    return found;
}

tether_status_t tether_store_open_postgresql(tether_store_t *store, const char *url,
                                             unsigned connections)
{
    pg_store_t *s = NULL;
    tether_status_t rc;

    if (store == NULL || !tether_store_is_postgresql(url) || connections == 0 ||
        store->ops != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->released, NULL);
    if ((rc = tether_pg_pool_open(s, url, connections)) != TETHER_OK ||
        (rc = tether_pg_migrate(s)) != TETHER_OK)
        goto out;
    store->ops = &pg_ops;
    store->impl = s;
    s = NULL;
out:
    op_close(s);
    return rc;
}
