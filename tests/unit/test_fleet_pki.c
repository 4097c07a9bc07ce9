/* fleetd's TLS certificates, checked the way the device's mbedTLS client
 * checks them: chain to ca.pem and hostname (an IP literal) via CN/dNSName. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <mbedtls/x509_crt.h>

#include "pki.h"

static void verify_for(const char *host, const char *check_name, int expect_ok)
{
    mbedtls_pk_context ca_key, server_key;
    tether_fleet_pem_t ca = {NULL, 0}, server = {NULL, 0}, key = {NULL, 0};
    mbedtls_x509_crt ca_crt, server_crt;
    uint32_t flags = 0;

    mbedtls_pk_init(&ca_key);
    mbedtls_pk_init(&server_key);
    mbedtls_x509_crt_init(&ca_crt);
    mbedtls_x509_crt_init(&server_crt);
    assert_int_equal(tether_fleet_key_generate(&ca_key), TETHER_OK);
    assert_int_equal(tether_fleet_key_generate(&server_key), TETHER_OK);
    assert_int_equal(tether_fleet_key_pem(&server_key, &key), TETHER_OK);
    assert_non_null(strstr(key.data, "BEGIN EC PRIVATE KEY"));
    assert_int_equal(tether_fleet_ca_create(&ca_key, &ca), TETHER_OK);
    assert_int_equal(tether_fleet_server_cert_create(&ca_key, &server_key, host, &server),
                     TETHER_OK);
    assert_int_equal(mbedtls_x509_crt_parse(&ca_crt, (const unsigned char *)ca.data, ca.len + 1), 0);
    assert_int_equal(
        mbedtls_x509_crt_parse(&server_crt, (const unsigned char *)server.data, server.len + 1), 0);
    assert_int_equal(mbedtls_x509_crt_verify(&server_crt, &ca_crt, NULL, check_name, &flags, NULL,
                                             NULL) == 0,
                     expect_ok);
    /* The CA is a CA, the server certificate is not. */
    assert_true(ca_crt.ca_istrue);
    assert_false(server_crt.ca_istrue);
    mbedtls_x509_crt_free(&ca_crt);
    mbedtls_x509_crt_free(&server_crt);
    tether_fleet_pem_free(&ca);
    tether_fleet_pem_free(&server);
    tether_fleet_pem_free(&key);
    mbedtls_pk_free(&ca_key);
    mbedtls_pk_free(&server_key);
}

static void ipv4_host_verifies(void **state)
{
    (void)state;
    verify_for("127.0.0.1", "127.0.0.1", 1);
    verify_for("127.0.0.1", "127.0.0.2", 0);
}

static void ipv6_host_verifies(void **state)
{
    (void)state;
    verify_for("::1", "::1", 1);
}

static void san_der_shape(void **state)
{
    unsigned char buf[128];
    unsigned char *der = NULL;
    size_t len = 0;
    /* SEQUENCE { [2] "10.0.0.1", [7] 0a000001 } */
    static const unsigned char expected[] = {0x30, 0x10, 0x82, 0x08, '1', '0', '.', '0', '.',
                                             '0',  '.',  '1',  0x87, 0x04, 10, 0, 0, 1};

    (void)state;
    assert_int_equal(tether_fleet_san_der("10.0.0.1", buf, sizeof(buf), &der, &len), TETHER_OK);
    assert_int_equal(len, sizeof(expected));
    assert_memory_equal(der, expected, sizeof(expected));
    assert_int_equal(tether_fleet_san_der("host.example", buf, sizeof(buf), &der, &len),
                     TETHER_ERR_PARSE);
    assert_int_not_equal(tether_fleet_san_der("10.0.0.1", buf, 8, &der, &len), TETHER_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ipv4_host_verifies),
        cmocka_unit_test(ipv6_host_verifies),
        cmocka_unit_test(san_der_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
