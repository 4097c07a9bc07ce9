#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "tether/secure_memory.h"

static void buffer_life(void **state)
{
    tether_secure_buffer_t buf;

    (void)state;
    assert_int_equal(tether_secure_buffer_alloc(&buf, 5000, 1), TETHER_OK);
    assert_non_null(buf.data);
    assert_int_equal(buf.size, 5000);
    assert_true(buf.mapped >= 5000 && buf.mapped % 4096 == 0);
    for (size_t i = 0; i < buf.size; i++)
        assert_int_equal(buf.data[i], 0);
    memset(buf.data, 0xa5, buf.size);
    tether_secure_buffer_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.size, 0);
    tether_secure_buffer_free(&buf); /* twice is fine */
    assert_int_equal(tether_secure_buffer_alloc(&buf, 0, 1), TETHER_ERR_INVALID_ARGUMENT);
}

static void locked_when_the_limit_allows(void **state)
{
    struct rlimit lim;
    tether_secure_buffer_t buf;

    (void)state;
    assert_int_equal(getrlimit(RLIMIT_MEMLOCK, &lim), 0);
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= 65536) {
        assert_int_equal(tether_secure_buffer_alloc(&buf, 4096, 0), TETHER_OK);
        assert_true(buf.locked);
        tether_secure_buffer_free(&buf);
    }
    /* With no memlock allowance, locking fails and is reported unless the
     * caller accepts unlocked memory. */
    lim.rlim_cur = 0;
    assert_int_equal(setrlimit(RLIMIT_MEMLOCK, &lim), 0);
    if (geteuid() != 0) { /* root may lock regardless of the limit */
        assert_int_equal(tether_secure_buffer_alloc(&buf, 4096, 0), TETHER_ERR_NO_MEMORY);
        assert_int_equal(tether_secure_buffer_alloc(&buf, 4096, 1), TETHER_OK);
        assert_false(buf.locked);
        tether_secure_buffer_free(&buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buffer_life),
        cmocka_unit_test(locked_when_the_limit_allows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
