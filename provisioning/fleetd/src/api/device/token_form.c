/* The strict application/x-www-form-urlencoded parser of POST /v1/token
 * (token_form.h). */
#include "token_form.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "tether/bytes.h"

#define NAME_MAX_BYTES 32

typedef struct field {
    const char *name;
    size_t offset; /* of the value's buffer (or span) in tether_token_form_t */
    size_t size;   /* of that buffer, NUL included (of a span: its most characters + 1) */
    bool (*valid)(const char *value, size_t len);
    bool required;
    /* A span: the raw value is kept in place, never percent-decoded (an
     * event log's base64url needs no escape; copying up to half a
     * megabyte per exchange would buy nothing). */
    bool span;
} field_t;

/* Visible ASCII without quotes or backslashes: URIs and names. */
static bool visible(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool base64url_chars(const char *value, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* A SHA-256 in lowercase hex: one spelling per hash, so the fleet compares
 * them as text. */
static bool sha256_hex(const char *value, size_t len)
{
    if (len != TETHER_EVENTLOG_WIRE_SHA256_HEX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* base64url without padding: 4n + 1 characters encode no byte count. */
static bool base64url_bytes(const char *value, size_t len)
{
    return len % 4 != 1 && base64url_chars(value, len);
}

/* scope = scope-token *( SP scope-token ), scope-token = 1*( %x21 / %x23-5B
 * / %x5D-7E ) (RFC 6749 section 3.3). */
static bool scope_syntax(const char *value, size_t len)
{
    size_t token = 0;

    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? value[i] : ' ';
        if (c == ' ') {
            if (token == 0)
                return false;
            token = 0;
        } else if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
            return false;
        } else {
            token++;
        }
    }
    return true;
}

static const field_t fields[] = {
    {"grant_type", offsetof(tether_token_form_t, grant_type), TETHER_TOKEN_FORM_VALUE_MAX + 1,
     visible, true, false},
    {"subject_token", offsetof(tether_token_form_t, subject_token),
     TETHER_EVIDENCE_MAX_TOKEN + 1, base64url_chars, true, false},
    {"subject_token_type", offsetof(tether_token_form_t, subject_token_type),
     TETHER_TOKEN_FORM_VALUE_MAX + 1, visible, true, false},
    {"scope", offsetof(tether_token_form_t, scope), TETHER_TOKEN_FORM_VALUE_MAX + 1, scope_syntax,
     false, false},
    {"audience", offsetof(tether_token_form_t, audience), TETHER_TOKEN_FORM_VALUE_MAX + 1, visible,
     false, false},
    {TETHER_EVENTLOG_WIRE_PLATFORM_SHA256, offsetof(tether_token_form_t, platform_log_sha256),
     TETHER_EVENTLOG_WIRE_SHA256_HEX + 1, sha256_hex, false, false},
    {TETHER_EVENTLOG_WIRE_TETHER_SHA256, offsetof(tether_token_form_t, tether_log_sha256),
     TETHER_EVENTLOG_WIRE_SHA256_HEX + 1, sha256_hex, false, false},
    {TETHER_EVENTLOG_WIRE_PLATFORM_LOG, offsetof(tether_token_form_t, platform_log),
     TETHER_TOKEN_FORM_PLATFORM_LOG_MAX + 1, base64url_bytes, false, true},
    {TETHER_EVENTLOG_WIRE_TETHER_LOG, offsetof(tether_token_form_t, tether_log),
     TETHER_TOKEN_FORM_TETHER_LOG_MAX + 1, base64url_bytes, false, true},
};

#define FIELD_COUNT (sizeof(fields) / sizeof(fields[0]))

/* Bytes a form may carry unescaped: RFC 3986 unreserved and the
 * sub-delimiters and pchar punctuation that mean nothing in a form ('&',
 * '=' and '+' do, '%' starts an escape). */
static bool raw_allowed(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-._~*:/@!$'(),;?", c) != NULL;
}

/* Decodes in[0..len) into out (at most out_max bytes and a NUL); *out_len
 * gets the count. -1: a bad byte or escape; -2: too long. */
static int decode(const char *in, size_t len, char *out, size_t out_max, size_t *out_len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3)
                return -1;
            hi = tether_hex_digit(in[i + 1]);
            lo = tether_hex_digit(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
            /* Decoded, a value is printable ASCII: no NUL, control or
             * 8-bit byte reaches a claim, a log line or the evidence
             * parser. */
            if (c < 0x20 || c > 0x7e)
                return -1;
        } else if (c == '+') {
            c = ' ';
        } else if (!raw_allowed(c)) {
            return -1;
        }
        if (o >= out_max)
            return -2;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *out_len = o;
    return 0;
}

static const field_t *find_field(const char *name)
{
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    }
    return NULL;
}

/* A span's value, raw: base64url characters only (so no escape). */
static tether_status_t parse_span(const field_t *field, const char *value, size_t len,
                                  tether_token_form_span_t *span, char *why, size_t why_size)
{
    if (len > field->size - 1)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "%s is longer than %zu characters", field->name, field->size - 1);
    if (len > 0 && !field->valid(value, len))
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "%s is not base64url without padding (and is never "
                              "percent-encoded)",
                              field->name);
    span->data = len > 0 ? value : NULL;
    span->len = len;
    return TETHER_OK;
}

/* Measured boot's parameters come as a set: both hashes or neither, and a
 * log only beside its hash (the fleet checks the bytes against it). */
static tether_status_t check_measured_boot(const tether_token_form_t *form, char *why,
                                           size_t why_size)
{
    bool platform = form->platform_log_sha256[0] != '\0';
    bool tether = form->tether_log_sha256[0] != '\0';

    if (platform != tether)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              TETHER_EVENTLOG_WIRE_PLATFORM_SHA256
                              " and " TETHER_EVENTLOG_WIRE_TETHER_SHA256 " come together");
    if (form->platform_log.len > 0 && !platform)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              TETHER_EVENTLOG_WIRE_PLATFORM_LOG
                              " comes only with " TETHER_EVENTLOG_WIRE_PLATFORM_SHA256);
    if (form->tether_log.len > 0 && !tether)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              TETHER_EVENTLOG_WIRE_TETHER_LOG
                              " comes only with " TETHER_EVENTLOG_WIRE_TETHER_SHA256);
    return TETHER_OK;
}

/* One "name=value" pair. */
static tether_status_t parse_pair(const char *pair, size_t len, tether_token_form_t *form,
                                  unsigned *seen, char *why, size_t why_size)
{
    const char *equals = memchr(pair, '=', len);
    char name[NAME_MAX_BYTES + 1];
    const field_t *field;
    size_t name_len = 0, value_len = 0;
    char *value;
    unsigned bit;
    int d;

    if (len == 0)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "the form has an empty parameter (\"&&\", or '&' at either end)");
    if (equals == NULL)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "the form has a parameter without '='");
    d = decode(pair, (size_t)(equals - pair), name, NAME_MAX_BYTES, &name_len);
    if (d != 0 || name_len == 0 || strlen(name) != name_len ||
        (field = find_field(name)) == NULL)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "the form has an unknown parameter: this endpoint takes grant_type, "
                              "subject_token, subject_token_type, scope, audience and the "
                              "measured-boot parameters (platform_log_sha256, "
                              "tether_log_sha256, platform_log, tether_log)");
    bit = 1u << (unsigned)(field - fields);
    if (*seen & bit)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "%s appears more than once",
                              field->name);
    *seen |= bit;
    if (field->span)
        return parse_span(field, equals + 1, len - (size_t)(equals - pair) - 1,
                          (tether_token_form_span_t *)(void *)((char *)form + field->offset), why,
                          why_size);
    value = (char *)form + field->offset;
    d = decode(equals + 1, len - (size_t)(equals - pair) - 1, value, field->size - 1, &value_len);
    if (d == -2)
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "%s is longer than %zu bytes",
                              field->name, field->size - 1);
    if (d != 0)
        return tether_explain(TETHER_ERR_PARSE, why, why_size,
                              "%s is not properly percent-encoded printable ASCII", field->name);
    if (value_len > 0 && !field->valid(value, value_len))
        return tether_explain(TETHER_ERR_PARSE, why, why_size, "%s holds characters it may not",
                              field->name);
    if (value == form->subject_token)
        form->subject_token_len = value_len;
    return TETHER_OK;
}

tether_status_t tether_token_form_parse(const char *body, size_t len, tether_token_form_t *form,
                                        char *why, size_t why_size)
{
    unsigned seen = 0;
    size_t pos = 0;
    tether_status_t rc = TETHER_OK;

    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (form == NULL || (body == NULL && len > 0))
        return tether_explain(TETHER_ERR_INVALID_ARGUMENT, why, why_size, "no form");
    memset(form, 0, sizeof(*form));
    if (len > TETHER_TOKEN_FORM_MAX_BODY)
        return tether_explain(TETHER_ERR_TOO_LARGE, why, why_size,
                              "the form is longer than %d bytes", (int)TETHER_TOKEN_FORM_MAX_BODY);
    if (len == 0)
        return tether_explain(
            TETHER_ERR_PARSE, why, why_size,
            "the body is empty: send grant_type, subject_token and subject_token_type");
    for (;;) {
        const char *amp = memchr(body + pos, '&', len - pos);
        size_t end = amp != NULL ? (size_t)(amp - body) : len;

        if ((rc = parse_pair(body + pos, end - pos, form, &seen, why, why_size)) != TETHER_OK)
            goto out;
        if (end == len)
            break;
        pos = end + 1;
    }
    for (size_t i = 0; i < FIELD_COUNT; i++) {
        if (fields[i].required && ((char *)form + fields[i].offset)[0] == '\0') {
            rc = tether_explain(TETHER_ERR_PARSE, why, why_size, "%s is missing", fields[i].name);
            goto out;
        }
    }
    rc = check_measured_boot(form, why, why_size);
out:
    if (rc != TETHER_OK)
        tether_wipe(form, sizeof(*form));
    return rc;
}
