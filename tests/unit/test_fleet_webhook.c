/* Webhook delivery: the signature (against values computed with Python's
 * hmac), the backoff schedule, the body, and the outbox in a real SQLite
 * store: the alerts trigger, sync, order, delivered, pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

#include "fleet_fixture.h"
#include "store.h"
#include "webhook.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define BODY "{\"delivery_id\":\"security:7\"}"

static void signature_known_answer(void **state)
{
    char out[TETHER_WEBHOOK_SIGNATURE_SIZE];

    (void)state;
    /* python3: hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256) */
    assert_int_equal(tether_webhook_sign((const uint8_t *)SECRET, strlen(SECRET), 1700000000,
                                         BODY, strlen(BODY), out, sizeof(out)),
                     TETHER_OK);
    assert_string_equal(out, "t=1700000000,v1=d3a83665fe637c1042c5ff8eb9c265f2d85cc67ec5fa8ba6"
                             "030b1891b5cc79da");
    /* The timestamp is signed: another one, another MAC (a replay cannot
     * move it forward). */
    assert_int_equal(tether_webhook_sign((const uint8_t *)SECRET, strlen(SECRET), 1700000001,
                                         BODY, strlen(BODY), out, sizeof(out)),
                     TETHER_OK);
    assert_string_equal(out, "t=1700000001,v1=70fd7c61ed0e50602c702f9850406914554363114374cdf0"
                             "2d64a6c75857d46e");
}

static void signature_bounds(void **state)
{
    char out[TETHER_WEBHOOK_SIGNATURE_SIZE];
    char small[40];

    (void)state;
    /* The largest timestamp fits the declared size. */
    assert_int_equal(tether_webhook_sign((const uint8_t *)SECRET, strlen(SECRET), INT64_MAX,
                                         BODY, strlen(BODY), out, sizeof(out)),
                     TETHER_OK);
    assert_int_equal(tether_webhook_sign((const uint8_t *)SECRET, strlen(SECRET), 1, BODY,
                                         strlen(BODY), small, sizeof(small)),
                     TETHER_ERR_TOO_LARGE);
    assert_string_equal(small, "");
    assert_int_equal(tether_webhook_sign(NULL, 0, 1, BODY, strlen(BODY), out, sizeof(out)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_webhook_sign((const uint8_t *)SECRET, strlen(SECRET), -1, BODY,
                                         strlen(BODY), out, sizeof(out)),
                     TETHER_ERR_INVALID_ARGUMENT);
}

static void backoff_schedule(void **state)
{
    (void)state;
    assert_int_equal(tether_webhook_backoff_ms(1), 500);
    assert_int_equal(tether_webhook_backoff_ms(2), 1000);
    assert_int_equal(tether_webhook_backoff_ms(3), 2000);
    assert_int_equal(tether_webhook_backoff_ms(10), 256000);
    /* Capped at 5 minutes, however long the webhook stays down. */
    assert_int_equal(tether_webhook_backoff_ms(11), 300000);
    assert_int_equal(tether_webhook_backoff_ms(1000), 300000);
    assert_int_equal(tether_webhook_backoff_ms(UINT32_MAX), 300000);
}

static void body_carries_the_alert_and_its_id(void **state)
{
    tether_store_alert_t alert = {42, "dev_0123456789abcdef01234567", "clone_detected",
                                  "{\"reason\":\"r\"}", 1700000000};
    char id[TETHER_WEBHOOK_DELIVERY_ID_SIZE];
    char *body = NULL;
    cJSON *json;

    (void)state;
    assert_int_equal(tether_webhook_body("security", &alert, &body, id), TETHER_OK);
    assert_string_equal(id, "security:42");
    json = cJSON_Parse(body);
    assert_non_null(json);
    assert_string_equal(cJSON_GetObjectItem(json, "delivery_id")->valuestring, "security:42");
    assert_string_equal(cJSON_GetObjectItem(json, "webhook")->valuestring, "security");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "alert"), "id")->valueint,
                     42);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "alert"),
                                                                "details"),
                                            "reason")
                            ->valuestring,
                        "r");
    cJSON_Delete(json);
    free(body);
}

/* ---- the outbox ---- */

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char path[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL || fleet_fixture_open("webhook", f->dir, f->path, &f->store) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

static void take(void *arg, const tether_store_delivery_t *delivery)
{
    *(tether_store_delivery_t *)arg = *delivery;
    ((tether_store_delivery_t *)arg)->alert.kind = NULL; /* lives only in the callback */
    ((tether_store_delivery_t *)arg)->alert.details_json = NULL;
}

static int64_t next_id(tether_store_t *store, const char *webhook)
{
    tether_store_delivery_t d;
    tether_status_t rc;

    memset(&d, 0, sizeof(d));
    rc = tether_store_webhook_next(store, webhook, take, &d);
    return rc == TETHER_OK ? d.alert.id : rc == TETHER_ERR_NOT_FOUND ? 0 : -1;
}

static uint64_t pending(tether_store_t *store, const char *webhook)
{
    tether_store_webhook_pending_t p;

    assert_int_equal(tether_store_webhook_pending(store, webhook, &p), TETHER_OK);
    return p.count;
}

static void every_alert_gets_a_row_per_webhook(void **state)
{
    fixture_t *f = *state;
    const char *names[] = {"security", "oncall"};
    uint64_t dropped = 1;

    /* Written before any webhook: nobody to deliver to. */
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "early", "{}", 100), TETHER_OK);
    assert_int_equal(tether_store_webhook_sync(&f->store, names, 2, 100, &dropped), TETHER_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(next_id(&f->store, "security"), 0);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "first", "{}", 101), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "second", "{\"a\":1}", 102),
                     TETHER_OK);
    /* An alert inserted by other SQL than alert_add (another process, a
     * store operation of its own) is covered by the trigger all the same. */
    fleet_db_exec(f->path, "INSERT INTO alerts (device_id, kind, details, created_at) "
                           "VALUES (NULL, 'raw', '{}', 103)");
    assert_int_equal(pending(&f->store, "security"), 3);
    assert_int_equal(pending(&f->store, "oncall"), 3);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM webhook_outbox "
                                             "WHERE created_ms > 1600000000000"),
                     6);
    /* In alert order, per webhook; delivered rows go, once. */
    assert_int_equal(next_id(&f->store, "security"), 2);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security", 2), TETHER_OK);
    assert_int_equal(tether_store_webhook_delivered(&f->store, "security", 2),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(next_id(&f->store, "security"), 3);
    assert_int_equal(next_id(&f->store, "oncall"), 2);
    assert_int_equal(pending(&f->store, "security"), 2);
    assert_int_equal(pending(&f->store, "oncall"), 3);
}

static void a_removed_webhook_loses_its_rows(void **state)
{
    fixture_t *f = *state;
    const char *both[] = {"security", "oncall"};
    const char *one[] = {"security"};
    uint64_t dropped = 0;

    assert_int_equal(tether_store_webhook_sync(&f->store, both, 2, 100, &dropped), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "a", "{}", 101), TETHER_OK);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "b", "{}", 102), TETHER_OK);
    /* Syncing the same set again changes nothing. */
    assert_int_equal(tether_store_webhook_sync(&f->store, both, 2, 104, &dropped), TETHER_OK);
    assert_int_equal(dropped, 0);
    assert_int_equal(pending(&f->store, "oncall"), 2);
    assert_int_equal(tether_store_webhook_sync(&f->store, one, 1, 105, &dropped), TETHER_OK);
    assert_int_equal(dropped, 2);
    assert_int_equal(pending(&f->store, "oncall"), 0);
    assert_int_equal(pending(&f->store, "security"), 2);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "c", "{}", 106), TETHER_OK);
    assert_int_equal(pending(&f->store, "oncall"), 0);
    assert_int_equal(pending(&f->store, "security"), 3);
    /* None at all: alerts are only stored. */
    assert_int_equal(tether_store_webhook_sync(&f->store, NULL, 0, 107, &dropped), TETHER_OK);
    assert_int_equal(dropped, 3);
    assert_int_equal(tether_store_alert_add(&f->store, NULL, "d", "{}", 108), TETHER_OK);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM webhook_outbox"), 0);
}

static void sync_refuses_bad_names(void **state)
{
    fixture_t *f = *state;
    const char *empty[] = {""};
    const char *long_name[] = {"a23456789012345678901234567890123"};
    uint64_t dropped = 7;

    assert_int_equal(tether_store_webhook_sync(&f->store, empty, 1, 100, &dropped),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(dropped, 0);
    assert_int_equal(tether_store_webhook_sync(&f->store, long_name, 1, 100, &dropped),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(fleet_db_count(f->path, "SELECT count(*) FROM webhooks"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature_known_answer),
        cmocka_unit_test(signature_bounds),
        cmocka_unit_test(backoff_schedule),
        cmocka_unit_test(body_carries_the_alert_and_its_id),
        cmocka_unit_test_setup_teardown(every_alert_gets_a_row_per_webhook, setup, teardown),
        cmocka_unit_test_setup_teardown(a_removed_webhook_loses_its_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(sync_refuses_bad_names, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
