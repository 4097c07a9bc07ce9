/*
 * The store's alerts.
 */
#ifndef TETHER_FLEET_STORE_ALERTS_H
#define TETHER_FLEET_STORE_ALERTS_H

#include "store_types.h"

typedef struct tether_store_alert {
    int64_t id;
    char device_id[TETHER_STORE_DEVICE_ID_SIZE];
    const char *kind;
    const char *details_json;
    int64_t created_at;
} tether_store_alert_t;

typedef int (*tether_store_alert_cb)(void *arg, const tether_store_alert_t *alert);

/* details_json must be a JSON text (not checked here). */
TETHER_MUST_CHECK tether_status_t tether_store_alert_add(tether_store_t *store,
                                                         const char *device_id, const char *kind,
                                                         const char *details_json, int64_t now);
/* Alerts with id > after_id, oldest first, at most limit. */
TETHER_MUST_CHECK tether_status_t tether_store_alert_list(tether_store_t *store, int64_t after_id,
                                                          unsigned limit, tether_store_alert_cb cb,
                                                          void *arg);

#endif
