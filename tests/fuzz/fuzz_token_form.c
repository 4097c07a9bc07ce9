/*
 * The body of POST /v1/token (fleetd, from any network peer) on arbitrary
 * bytes. An accepted form must hold what the parser promises (the required
 * parameters, printable values of their syntax) and read back the same
 * once encoded again; a refusal must come with a reason and leave the form
 * wiped.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tether_token_form_t form, again;
/* The logs are re-encoded raw, as they must come. */
static char encoded[3 * sizeof(tether_token_form_t) + TETHER_TOKEN_FORM_PLATFORM_LOG_MAX +
                    TETHER_TOKEN_FORM_TETHER_LOG_MAX + 128];

static bool printable(const char *value)
{
    for (; *value != '\0'; value++)
        if (*value < 0x20 || *value > 0x7e)
            return false;
    return true;
}

/* Appends "&name=" and value with every byte but [A-Za-z0-9] escaped. */
static size_t append(size_t o, const char *name, const char *value)
{
    if (value[0] == '\0')
        return o;
    o += (size_t)snprintf(encoded + o, sizeof(encoded) - o, "%s%s=", o > 0 ? "&" : "", name);
    for (; *value != '\0'; value++) {
        unsigned char c = (unsigned char)*value;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            encoded[o++] = (char)c;
        else
            o += (size_t)snprintf(encoded + o, sizeof(encoded) - o, "%%%02X", c);
    }
    encoded[o] = '\0';
    return o;
}

/* Appends "&name=" and a span as it is. */
static size_t append_span(size_t o, const char *name, const tether_token_form_span_t *span)
{
    if (span->len == 0)
        return o;
    o += (size_t)snprintf(encoded + o, sizeof(encoded) - o, "%s%s=", o > 0 ? "&" : "", name);
    memcpy(encoded + o, span->data, span->len);
    o += span->len;
    encoded[o] = '\0';
    return o;
}

/* A log hash: "" or 64 lowercase hex digits. */
static bool hash_ok(const char *hash)
{
    size_t len = strlen(hash);
    return len == 0 || (len == TETHER_EVENTLOG_WIRE_SHA256_HEX &&
                        strspn(hash, "0123456789abcdef") == TETHER_EVENTLOG_WIRE_SHA256_HEX);
}

/* A log span: inside the body, base64url without padding, beside its hash. */
static bool span_ok(const tether_token_form_span_t *span, const char *hash, size_t max,
                    const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;

    if (span->len == 0)
        return span->data == NULL;
    if (hash[0] == '\0' || span->len > max || span->len % 4 == 1 || span->data < body ||
        span->len > size || span->data > body + (size - span->len))
        return false;
    /* The body is not NUL-terminated: every character by count. */
    for (size_t i = 0; i < span->len; i++)
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                   span->data[i]) == NULL ||
            span->data[i] == '\0')
            return false;
    return true;
}

static bool same_span(const tether_token_form_span_t *a, const tether_token_form_span_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[TETHER_TOKEN_FORM_WHY_SIZE] = "";
    tether_status_t rc = tether_token_form_parse((const char *)data, size, &form, why, sizeof(why));
    size_t o = 0;

    if (rc != TETHER_OK) {
        const uint8_t *p = (const uint8_t *)&form;
        if ((rc != TETHER_ERR_PARSE && rc != TETHER_ERR_TOO_LARGE) || why[0] == '\0')
            abort();
        for (size_t i = 0; i < sizeof(form); i++)
            if (p[i] != 0)
                abort();
        return 0;
    }
    if (form.grant_type[0] == '\0' || form.subject_token_type[0] == '\0' ||
        form.subject_token_len == 0 || form.subject_token_len != strlen(form.subject_token) ||
        !printable(form.grant_type) || !printable(form.subject_token_type) ||
        !printable(form.subject_token) || !printable(form.scope) || !printable(form.audience) ||
        strchr(form.audience, ' ') != NULL || strchr(form.grant_type, ' ') != NULL ||
        strspn(form.subject_token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_") != form.subject_token_len ||
        strstr(form.scope, "  ") != NULL || form.scope[0] == ' ' ||
        !hash_ok(form.platform_log_sha256) || !hash_ok(form.tether_log_sha256) ||
        (form.platform_log_sha256[0] == '\0') != (form.tether_log_sha256[0] == '\0') ||
        !span_ok(&form.platform_log, form.platform_log_sha256, TETHER_TOKEN_FORM_PLATFORM_LOG_MAX,
                 data, size) ||
        !span_ok(&form.tether_log, form.tether_log_sha256, TETHER_TOKEN_FORM_TETHER_LOG_MAX, data,
                 size))
        abort();
    o = append(o, "grant_type", form.grant_type);
    o = append(o, "subject_token", form.subject_token);
    o = append(o, "subject_token_type", form.subject_token_type);
    o = append(o, "scope", form.scope);
    o = append(o, "audience", form.audience);
    o = append(o, TETHER_EVENTLOG_WIRE_PLATFORM_SHA256, form.platform_log_sha256);
    o = append(o, TETHER_EVENTLOG_WIRE_TETHER_SHA256, form.tether_log_sha256);
    o = append_span(o, TETHER_EVENTLOG_WIRE_PLATFORM_LOG, &form.platform_log);
    o = append_span(o, TETHER_EVENTLOG_WIRE_TETHER_LOG, &form.tether_log);
    /* The spans point into their own bodies: their contents are compared. */
    if (tether_token_form_parse(encoded, o, &again, why, sizeof(why)) != TETHER_OK ||
        memcmp(&form, &again, offsetof(tether_token_form_t, platform_log)) != 0 ||
        !same_span(&form.platform_log, &again.platform_log) ||
        !same_span(&form.tether_log, &again.tether_log))
        abort();
    return 0;
}
