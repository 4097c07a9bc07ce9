/* Webhook delivery: the signature (against values computed with Python's
 * hmac), the backoff schedule, the body. The outbox is test_fleet_store's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature_known_answer),
        cmocka_unit_test(signature_bounds),
        cmocka_unit_test(backoff_schedule),
        cmocka_unit_test(body_carries_the_alert_and_its_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
