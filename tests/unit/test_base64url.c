#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tether/base64url.h"
#include "tether/error.h"

struct vector {
    const char *bytes;
    size_t len;
    const char *text;
};

/* RFC 4648 section 10 test vectors, without the '=' padding (the base64 and
 * base64url alphabets agree on all of them). */
static const struct vector rfc4648_section10[] = {
    {"", 0, ""},          {"f", 1, "Zg"},           {"fo", 2, "Zm8"},         {"foo", 3, "Zm9v"},
    {"foob", 4, "Zm9vYg"}, {"fooba", 5, "Zm9vYmE"}, {"foobar", 6, "Zm9vYmFy"},
};

/* RFC 4648 section 9 examples ("FPucA9l+", "FPucA9k=", "FPucAw==" in base64),
 * which use the characters that differ in base64url ('+' becomes '-'). */
static const struct vector rfc4648_section9[] = {
    {"\x14\xfb\x9c\x03\xd9\x7e", 6, "FPucA9l-"},
    {"\x14\xfb\x9c\x03\xd9", 5, "FPucA9k"},
    {"\x14\xfb\x9c\x03", 4, "FPucAw"},
    {"\xfb\xff\xfe", 3, "-__-"}, /* 62 63 63 62: both url-safe characters */
};

static void check_vector(const struct vector *v)
{
    char text[32];
    uint8_t bytes[32];
    size_t len = 99;

    assert_int_equal(tether_base64url_encode((const uint8_t *)v->bytes, v->len, text, sizeof(text),
                                             &len),
                     TETHER_OK);
    assert_string_equal(text, v->text);
    assert_int_equal(len, strlen(v->text));
    assert_int_equal(TETHER_BASE64URL_ENCODED_LEN(v->len), strlen(v->text));
    assert_int_equal(TETHER_BASE64URL_DECODED_LEN(strlen(v->text)), v->len);
    assert_int_equal(tether_base64url_decode(v->text, strlen(v->text), bytes, sizeof(bytes), &len),
                     TETHER_OK);
    assert_int_equal(len, v->len);
    if (v->len > 0)
        assert_memory_equal(bytes, v->bytes, v->len);
}

static void rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc4648_section10) / sizeof(rfc4648_section10[0]); i++)
        check_vector(&rfc4648_section10[i]);
    for (size_t i = 0; i < sizeof(rfc4648_section9) / sizeof(rfc4648_section9[0]); i++)
        check_vector(&rfc4648_section9[i]);
}

/* Every byte value, at every position modulo 3, survives a round trip and
 * is written with the url-safe alphabet only. */
static void round_trip_all_bytes(void **state)
{
    uint8_t in[256 + 2], back[sizeof(in)];
    char text[TETHER_BASE64URL_ENCODED_LEN(sizeof(in)) + 1];
    size_t text_len = 0, back_len = 0;

    (void)state;
    for (size_t shift = 0; shift < 3; shift++) {
        for (size_t i = 0; i < sizeof(in); i++)
            in[i] = (uint8_t)(i + shift * 85);
        for (size_t len = 0; len <= sizeof(in); len += (len < 10 ? 1 : 37)) {
            assert_int_equal(tether_base64url_encode(in, len, text, sizeof(text), &text_len),
                             TETHER_OK);
            assert_int_equal(text_len, TETHER_BASE64URL_ENCODED_LEN(len));
            assert_int_equal(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                          "0123456789-_"),
                             text_len);
            assert_int_equal(tether_base64url_decode(text, text_len, back, sizeof(back), &back_len),
                             TETHER_OK);
            assert_int_equal(back_len, len);
            if (len > 0)
                assert_memory_equal(back, in, len);
        }
    }
}

static void assert_rejected(const char *text, size_t len)
{
    uint8_t out[16];
    size_t out_len = 99;

    memset(out, 0xa5, sizeof(out));
    assert_int_equal(tether_base64url_decode(text, len, out, sizeof(out), &out_len),
                     TETHER_ERR_PARSE);
    assert_int_equal(out_len, 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0); /* wiped */
}

static void strict_decoding(void **state)
{
    (void)state;
    /* padding, in any amount */
    assert_rejected("Zg==", 4);
    assert_rejected("Zg=", 3);
    assert_rejected("Zm8=", 4);
    /* standard base64 characters */
    assert_rejected("FPucA9l+", 8);
    assert_rejected("FPuc/9l-", 8);
    /* whitespace anywhere */
    assert_rejected("Zm9v ", 5);
    assert_rejected(" Zm9v", 5);
    assert_rejected("Zm\n9v", 5);
    assert_rejected("Zm9v\r\n", 6);
    assert_rejected("Zm\t8", 4);
    /* other bytes, including NUL and high bytes */
    assert_rejected("Zm\0v", 4);
    assert_rejected("Zm\xc3\xa9", 4);
    assert_rejected("Zm9.", 4);
    /* a length of 4k+1 never encodes whole bytes */
    assert_rejected("Z", 1);
    assert_rejected("Zm9vY", 5);
    /* non-canonical: unused low bits set ("f" is "Zg"; "fo" is "Zm8") */
    assert_rejected("Zh", 2);
    assert_rejected("Zv", 2);
    assert_rejected("Zm9", 3);
    assert_rejected("Zm-", 3);
}

static void bounds(void **state)
{
    const uint8_t in[] = {'f', 'o', 'o', 'b'};
    char text[7];
    uint8_t out[3];
    size_t len = 99;

    (void)state;
    /* "Zm9vYg" needs 6 characters and the NUL */
    assert_int_equal(tether_base64url_encode(in, 4, text, 6, &len), TETHER_ERR_TOO_LARGE);
    assert_int_equal(tether_base64url_encode(in, 4, text, 7, &len), TETHER_OK);
    assert_int_equal(tether_base64url_encode(in, 4, text, 7, NULL), TETHER_OK);
    /* decoding "Zm9vYg" needs 4 bytes */
    assert_int_equal(tether_base64url_decode("Zm9vYg", 6, out, sizeof(out), &len),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    /* only len characters are read: no NUL needed */
    assert_int_equal(tether_base64url_decode("Zm9vXXXX", 4, out, sizeof(out), &len), TETHER_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "foo", 3);
    /* empty input, no buffer */
    assert_int_equal(tether_base64url_decode("", 0, NULL, 0, &len), TETHER_OK);
    assert_int_equal(len, 0);
    assert_int_equal(tether_base64url_encode(NULL, 0, text, 1, &len), TETHER_OK);
    assert_string_equal(text, "");
    /* arguments */
    assert_int_equal(tether_base64url_encode(NULL, 1, text, sizeof(text), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_base64url_encode(in, 1, NULL, 0, &len), TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_base64url_decode("Zg", 2, out, sizeof(out), NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_base64url_decode(NULL, 2, out, sizeof(out), &len),
                     TETHER_ERR_INVALID_ARGUMENT);
}

/* Binary members of wire-format objects: written and read back, and every
 * refusal names the member. */
static void json_members(void **state)
{
    static const uint8_t data[5] = {0xfb, 0xff, 0x00, 0x01, 0x02};
    cJSON *obj = cJSON_CreateObject();
    uint8_t buf[8];
    char why[80];
    size_t len = 99;

    (void)state;
    assert_non_null(obj);
    assert_int_equal(tether_base64url_add_member(obj, "blob", data, sizeof(data)), TETHER_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(obj, "blob")->valuestring, "-_8AAQI");
    assert_int_equal(tether_base64url_get_member(obj, "blob", buf, sizeof(buf), &len, why,
                                                 sizeof(why)),
                     TETHER_OK);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(buf, data, sizeof(data));

    /* missing, not a string */
    assert_int_equal(tether_base64url_get_member(obj, "other", buf, sizeof(buf), &len, why,
                                                 sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_int_equal(len, 0);
    assert_string_equal(why, "\"other\" is missing or not a string");
    assert_non_null(cJSON_AddNumberToObject(obj, "number", 7));
    assert_int_equal(tether_base64url_get_member(obj, "number", buf, sizeof(buf), &len, NULL, 0),
                     TETHER_ERR_PARSE);
    /* longer than the buffer, empty, not canonical: refused, the buffer wiped */
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(tether_base64url_get_member(obj, "blob", buf, 4, &len, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_string_equal(why, "\"blob\" is not base64url of 1 to 4 bytes");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(tether_base64url_add_member(obj, "empty", NULL, 0), TETHER_OK);
    assert_int_equal(tether_base64url_get_member(obj, "empty", buf, sizeof(buf), &len, NULL, 0),
                     TETHER_ERR_PARSE);
    assert_non_null(cJSON_AddStringToObject(obj, "padded", "-_8AAQI="));
    assert_int_equal(tether_base64url_get_member(obj, "padded", buf, sizeof(buf), &len, NULL, 0),
                     TETHER_ERR_PARSE);
    assert_int_equal(len, 0);
    cJSON_Delete(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors),
        cmocka_unit_test(round_trip_all_bytes),
        cmocka_unit_test(strict_decoding),
        cmocka_unit_test(bounds),
        cmocka_unit_test(json_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
