/* The device import CSV parser: good files, bad rows by line, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "csv.h"

#define EK_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define EK_B "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
#define EK_C "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static tether_status_t parse(const char *text, tether_csv_devices_t *csv)
{
    tether_csv_devices_init(csv);
    return tether_csv_devices_parse(text, strlen(text), csv);
}

static void good_file(void **state)
{
    tether_csv_devices_t csv;

    (void)state;
    assert_int_equal(parse("ek_sha256,name\n" EK_A ",gateway-1\r\n" EK_B ", shelf 2 \n\n" EK_C
                           ",cam@site:3",
                           &csv),
                     TETHER_OK);
    assert_int_equal(csv.count, 3);
    assert_int_equal(csv.error_count, 0);
    assert_string_equal(csv.rows[0].ek_sha256, EK_A);
    assert_string_equal(csv.rows[0].name, "gateway-1");
    /* Hex is normalised to lowercase; spaces around fields are trimmed. */
    assert_string_equal(csv.rows[1].ek_sha256,
                        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_string_equal(csv.rows[1].name, "shelf 2");
    assert_string_equal(csv.rows[2].name, "cam@site:3");
    assert_int_equal(csv.lines[0], 2);
    assert_int_equal(csv.lines[2], 5);
    assert_string_equal(csv.rows[0].id, "");
    tether_csv_devices_free(&csv);
}

static void header_with_bom(void **state)
{
    tether_csv_devices_t csv;

    (void)state;
    assert_int_equal(parse("\xef\xbb\xbf" "ek_sha256,name\r\n" EK_A ",x\r\n", &csv), TETHER_OK);
    assert_int_equal(csv.count, 1);
    tether_csv_devices_free(&csv);
}

static void bad_header(void **state)
{
    tether_csv_devices_t csv;

    (void)state;
    assert_int_equal(parse("name,ek_sha256\n" EK_A ",x\n", &csv), TETHER_ERR_PARSE);
    assert_int_equal(csv.error_count, 1);
    assert_int_equal(csv.errors[0].line, 1);
    assert_null(csv.rows);
    assert_int_equal(csv.count, 0);
    tether_csv_devices_free(&csv);
    assert_int_equal(parse("", &csv), TETHER_ERR_PARSE);
    assert_int_equal(csv.errors[0].line, 1);
    tether_csv_devices_free(&csv);
}

static void bad_rows_by_line(void **state)
{
    tether_csv_devices_t csv;

    (void)state;
    assert_int_equal(parse("ek_sha256,name\n"
                           EK_A ",ok\n"                  /* 2 */
                           "abc,short\n"                 /* 3: short hex */
                           EK_B "\n"                     /* 4: one field */
                           EK_C ",a,b\n"                 /* 5: three fields */
                           EK_C ",bad/name\n"            /* 6: bad character */
                           EK_C ",\"quoted\"\n"          /* 7: quotes */
                           EK_C ",\n",                   /* 8: empty name */
                           &csv),
                     TETHER_ERR_PARSE);
    assert_int_equal(csv.errors_total, 6);
    assert_int_equal(csv.error_count, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(csv.errors[i].line, i + 3);
    assert_non_null(strstr(csv.errors[0].message, "64 hex"));
    assert_non_null(strstr(csv.errors[1].message, "2 fields"));
    /* Nothing is returned when anything is wrong: all or none. */
    assert_null(csv.rows);
    assert_int_equal(csv.count, 0);
    tether_csv_devices_free(&csv);
}

static void duplicates(void **state)
{
    tether_csv_devices_t csv;

    (void)state;
    assert_int_equal(parse("ek_sha256,name\n" EK_A ",one\n" EK_C ",two\n"
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,three\n",
                           &csv),
                     TETHER_ERR_PARSE);
    assert_int_equal(csv.error_count, 1);
    assert_int_equal(csv.errors[0].line, 4);
    assert_non_null(strstr(csv.errors[0].message, "line 2"));
    tether_csv_devices_free(&csv);
}

static void header_only(void **state)
{
    tether_csv_devices_t csv;

    (void)state;
    assert_int_equal(parse("ek_sha256,name\n", &csv), TETHER_ERR_PARSE);
    assert_non_null(strstr(csv.errors[0].message, "no devices"));
    tether_csv_devices_free(&csv);
}

static void nul_and_long_lines(void **state)
{
    static const char data[] = "ek_sha256,name\n" EK_A ",a\0b\n";
    tether_csv_devices_t csv;
    char *text;
    size_t len;

    (void)state;
    tether_csv_devices_init(&csv);
    assert_int_equal(tether_csv_devices_parse(data, sizeof(data) - 1, &csv), TETHER_ERR_PARSE);
    assert_int_equal(csv.errors[0].line, 2);
    tether_csv_devices_free(&csv);

    len = strlen("ek_sha256,name\n") + TETHER_CSV_MAX_LINE + 10;
    text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'x', len);
    memcpy(text, "ek_sha256,name\n", strlen("ek_sha256,name\n"));
    text[len] = '\0';
    assert_int_equal(parse(text, &csv), TETHER_ERR_PARSE);
    assert_non_null(strstr(csv.errors[0].message, "longer"));
    tether_csv_devices_free(&csv);
    free(text);
}

static void row_limit_and_error_cap(void **state)
{
    const size_t rows = TETHER_CSV_MAX_ROWS + 5;
    const size_t line_len = 64 + 4;
    size_t len = strlen("ek_sha256,name\n") + rows * line_len;
    char *text = malloc(len + 1);
    char *p;
    tether_csv_devices_t csv;

    (void)state;
    assert_non_null(text);
    p = text + sprintf(text, "ek_sha256,name\n");
    for (size_t i = 0; i < rows; i++)
        p += sprintf(p, "%064zx,d%zu\n", i, i % 10);
    *p = '\0';
    tether_csv_devices_init(&csv);
    assert_int_equal(tether_csv_devices_parse(text, (size_t)(p - text), &csv), TETHER_ERR_PARSE);
    assert_int_equal(csv.errors_total, 1);
    assert_int_equal(csv.errors[0].line, TETHER_CSV_MAX_ROWS + 2);
    tether_csv_devices_free(&csv);

    /* Many bad rows: every one is counted, the first few are kept. */
    p = text + sprintf(text, "ek_sha256,name\n");
    for (size_t i = 0; i < 100; i++)
        p += sprintf(p, "zz,bad\n");
    assert_int_equal(tether_csv_devices_parse(text, (size_t)(p - text), &csv), TETHER_ERR_PARSE);
    assert_int_equal(csv.errors_total, 100);
    assert_int_equal(csv.error_count, TETHER_CSV_MAX_ERRORS);
    tether_csv_devices_free(&csv);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_file),       cmocka_unit_test(header_with_bom),
        cmocka_unit_test(bad_header),      cmocka_unit_test(bad_rows_by_line),
        cmocka_unit_test(duplicates),      cmocka_unit_test(header_only),
        cmocka_unit_test(nul_and_long_lines), cmocka_unit_test(row_limit_and_error_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
