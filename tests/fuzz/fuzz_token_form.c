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
static char encoded[3 * sizeof(tether_token_form_t) + 128];

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
        strstr(form.scope, "  ") != NULL || form.scope[0] == ' ')
        abort();
    o = append(o, "grant_type", form.grant_type);
    o = append(o, "subject_token", form.subject_token);
    o = append(o, "subject_token_type", form.subject_token_type);
    o = append(o, "scope", form.scope);
    o = append(o, "audience", form.audience);
    if (tether_token_form_parse(encoded, o, &again, why, sizeof(why)) != TETHER_OK ||
        memcmp(&form, &again, sizeof(form)) != 0)
        abort();
    return 0;
}
