/* lib's canonical CIDR networks (cidr.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "tether/cidr.h"

static void parse_ok(const char *text, tether_cidr_t *c)
{
    char why[128] = "", again[TETHER_CIDR_TEXT_SIZE];

    if (tether_cidr_parse(text, c, why, sizeof(why)) != TETHER_OK)
        fail_msg("%s refused: %s", text, why);
    /* The canonical text is written back byte for byte. */
    assert_int_equal(tether_cidr_format(c, again, sizeof(again)), TETHER_OK);
    assert_string_equal(again, text);
}

/* Only inet_ntop's address text, a plain prefix within the family's bits
 * and host bits zero pass; the refusal names the text and the reason, and
 * leaves the network zeroed. */
static void parse_is_canonical_only(void **state)
{
    static const struct {
        const char *text, *why;
    } refused[] = {
        {"10.0.0.0", "10.0.0.0 has no /prefix"},
        {"10.0.0.1/8", "10.0.0.1/8 has host bits set"},
        {"10.0.0.0/08", "a prefix that is not a plain number"},
        {"10.0.0.0/", "a prefix that is not a plain number"},
        {"10.0.0.0/+8", "a prefix that is not a plain number"},
        {"10.0.0.0/33", "10.0.0.0 has a prefix above 32"},
        {"::/129", ":: has a prefix above 128"},
        {"010.0.0.0/8", "not an address in its canonical form"},
        {"FD00::/8", "not an address in its canonical form"},
        {"fd00:0::/8", "not an address in its canonical form"},
        {"::ffff:0a00:0/104", "not an address in its canonical form"},
        {"10.0.0.0/8/8", "a prefix that is not a plain number"},
        {"2001:db8::1/127", "2001:db8::1/127 has host bits set"},
        {"", " has no /prefix"},
    };
    tether_cidr_t c;
    char why[128];

    (void)state;
    parse_ok("0.0.0.0/0", &c);
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 0);
    parse_ok("10.1.2.128/25", &c);
    parse_ok("255.255.255.255/32", &c);
    parse_ok("::/0", &c);
    assert_int_equal(c.family, AF_INET6);
    parse_ok("::1/128", &c);
    parse_ok("::ffff:10.0.0.0/104", &c);
    parse_ok("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", &c);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        memset(&c, 0x5a, sizeof(c));
        why[0] = '\0';
        assert_int_equal(tether_cidr_parse(refused[i].text, &c, why, sizeof(why)),
                         TETHER_ERR_PARSE);
        if (strstr(why, refused[i].why) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", refused[i].text, why, refused[i].why);
        assert_int_equal(c.family, 0);
        assert_int_equal(c.prefix, 0);
    }
    assert_int_equal(tether_cidr_parse(NULL, &c, why, sizeof(why)), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_cidr_format(&c, why, sizeof(why)), TETHER_ERR_INVALID_ARGUMENT);
    parse_ok("10.0.0.0/8", &c);
    assert_int_equal(tether_cidr_format(&c, why, 10), TETHER_ERR_TOO_LARGE);
    assert_string_equal(why, "");
}

/* IPv4 first, then the address bytes, then the prefix. */
static void order(void **state)
{
    tether_cidr_t a, b;

    (void)state;
    parse_ok("192.0.2.0/24", &a);
    parse_ok("::/0", &b);
    assert_int_equal(tether_cidr_compare(&a, &b), -1);
    assert_int_equal(tether_cidr_compare(&b, &a), 1);
    parse_ok("10.0.0.0/8", &b);
    assert_int_equal(tether_cidr_compare(&b, &a), -1);
    parse_ok("10.0.0.0/16", &a);
    assert_int_equal(tether_cidr_compare(&b, &a), -1);
    assert_int_equal(tether_cidr_compare(&a, &a), 0);
}

/* The edges of prefixes, whole-byte and not, in both families; a mapped
 * IPv4 address is IPv6; no list allows anything, a list refuses what no
 * network holds, an unknown or unreadable address. */
static void membership(void **state)
{
    static const struct {
        const char *network, *address;
        bool inside;
    } cases[] = {
        {"10.1.0.0/16", "10.1.0.0", true},      {"10.1.0.0/16", "10.1.255.255", true},
        {"10.1.0.0/16", "10.0.255.255", false}, {"10.1.0.0/16", "10.2.0.0", false},
        {"10.1.2.128/25", "10.1.2.128", true},  {"10.1.2.128/25", "10.1.2.255", true},
        {"10.1.2.128/25", "10.1.2.127", false}, {"127.0.0.1/32", "127.0.0.1", true},
        {"127.0.0.1/32", "127.0.0.2", false},   {"0.0.0.0/0", "203.0.113.9", true},
        {"0.0.0.0/0", "::1", false},            {"::/0", "10.0.0.1", false},
        {"::/0", "2001:db8::1", true},          {"2001:db8::/127", "2001:db8::1", true},
        {"2001:db8::/127", "2001:db8::2", false}, {"fc00::/7", "fdff::1", true},
        {"fd00::/8", "fe00::1", false},         {"10.0.0.0/8", "::ffff:10.1.2.3", false},
        {"::ffff:10.0.0.0/104", "::ffff:10.1.2.3", true},
        {"10.0.0.0/8", "10.0.0.1 ", false},     {"10.0.0.0/8", "", false},
    };
    tether_cidr_t list[2];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        parse_ok(cases[i].network, &list[0]);
        if (tether_cidr_list_allows(list, 1, cases[i].address) != cases[i].inside)
            fail_msg("%s in %s: expected %d", cases[i].address, cases[i].network,
                     cases[i].inside);
    }
    assert_true(tether_cidr_list_allows(list, 0, "192.0.2.1"));
    assert_true(tether_cidr_list_allows(list, 0, NULL));
    parse_ok("10.0.0.0/8", &list[0]);
    parse_ok("fd00::/8", &list[1]);
    assert_true(tether_cidr_list_allows(list, 2, "fd00::5"));
    assert_true(tether_cidr_list_allows(list, 2, "10.9.9.9"));
    assert_false(tether_cidr_list_allows(list, 2, "192.0.2.1"));
    assert_false(tether_cidr_list_allows(list, 2, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parse_is_canonical_only),
        cmocka_unit_test(order),
        cmocka_unit_test(membership),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
