#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tether/bytes.h"
#include "tether/error.h"

static void hex_round_trip(void **state)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xff};
    char hex[9];
    uint8_t out[4];
    size_t len = 0;

    (void)state;
    assert_int_equal(tether_hex_encode(in, sizeof(in), hex, sizeof(hex)), TETHER_OK);
    assert_string_equal(hex, "0001abff");
    assert_int_equal(tether_hex_decode("0001ABff", 8, out, sizeof(out), &len), TETHER_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(in, out, 4);
}

static void hex_bounds(void **state)
{
    const uint8_t in[] = {1, 2, 3};
    char hex[6];
    uint8_t out[2];
    size_t len = 99;

    (void)state;
    assert_int_equal(tether_hex_encode(in, sizeof(in), hex, sizeof(hex)), TETHER_ERR_TOO_LARGE);
    assert_int_equal(tether_hex_decode("abc", 3, out, sizeof(out), &len), TETHER_ERR_PARSE);
    assert_int_equal(len, 0);
    assert_int_equal(tether_hex_decode("0g", 2, out, sizeof(out), &len), TETHER_ERR_PARSE);
    assert_int_equal(tether_hex_decode("010203", 6, out, sizeof(out), &len), TETHER_ERR_TOO_LARGE);
    assert_int_equal(tether_hex_decode("", 0, out, sizeof(out), &len), TETHER_OK);
    assert_int_equal(len, 0);
}

static void ct_equal(void **state)
{
    (void)state;
    assert_true(tether_ct_equal("abcd", "abcd", 4));
    assert_false(tether_ct_equal("abcd", "abce", 4));
    assert_true(tether_ct_equal("x", "y", 0));
}

static void wipe(void **state)
{
    uint8_t buf[16];

    (void)state;
    memset(buf, 0xa5, sizeof(buf));
    tether_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    tether_wipe(NULL, 10); /* accepted */
}

static void strerror_total(void **state)
{
    (void)state;
    for (int s = 0; s < TETHER_ERR__COUNT; s++)
        assert_string_not_equal(tether_strerror((tether_status_t)s), "unknown error");
    assert_string_equal(tether_strerror((tether_status_t)-1), "unknown error");
    assert_string_equal(tether_strerror(TETHER_ERR__COUNT), "unknown error");
}

/* A refusal is one statement: the status comes back, the reason lands in
 * the caller's buffer, truncated and terminated, or nowhere. */
static void explain(void **state)
{
    char why[16];

    (void)state;
    memset(why, 'x', sizeof(why));
    assert_int_equal(tether_explain(TETHER_ERR_PARSE, why, sizeof(why), "member %s at %d", "x", 7),
                     TETHER_ERR_PARSE);
    assert_string_equal(why, "member x at 7");
    /* truncated to the buffer, always terminated */
    assert_int_equal(tether_explain(TETHER_ERR_TOO_LARGE, why, sizeof(why), "%s",
                                    "a reason longer than sixteen bytes"),
                     TETHER_ERR_TOO_LARGE);
    assert_string_equal(why, "a reason longer");
    /* no buffer, or an empty one: only the status */
    assert_int_equal(tether_explain(TETHER_ERR_VERIFY, NULL, 0, "ignored"), TETHER_ERR_VERIFY);
    why[0] = 'q';
    assert_int_equal(tether_explain(TETHER_OK, why, 0, "ignored"), TETHER_OK);
    assert_int_equal(why[0], 'q');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hex_round_trip), cmocka_unit_test(hex_bounds), cmocka_unit_test(ct_equal),
        cmocka_unit_test(wipe), cmocka_unit_test(strerror_total), cmocka_unit_test(explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
