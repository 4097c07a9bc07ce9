/* The usage document's strict parser (usage_document.h): a reader of the
 * one canonical byte form, so nothing but that form can pass. */
#include "usage_document.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tether/canonical_reader.h"
#include "tether/evidence.h"

/* The shared cursor (tether/canonical_reader.h). */
typedef tether_canonical_reader_t reader_t;

/* A canonical decimal integer, 0 to TETHER_USAGE_DOCUMENT_COUNT_MAX. */
static tether_status_t integer(reader_t *r, const char *name, int64_t *out)
{
    int64_t n = 0;
    size_t start = r->pos;

    *out = 0;
    while (r->pos < r->len && isdigit(r->data[r->pos])) {
        if (r->pos > start && r->data[start] == '0')
            return tether_canonical_fail(r, "%s has a leading zero", name);
        if (n > (TETHER_USAGE_DOCUMENT_COUNT_MAX - (r->data[r->pos] - '0')) / 10)
            return tether_canonical_fail(r, "%s is above 2^53 - 1", name);
        n = n * 10 + (r->data[r->pos] - '0');
        r->pos++;
    }
    if (r->pos == start)
        return tether_canonical_fail(r, "%s is not a non-negative integer", name);
    *out = n;
    return TETHER_OK;
}

static tether_status_t jti(reader_t *r, char out[TETHER_USAGE_DOCUMENT_JTI_MAX + 1])
{
    size_t n = 0;

    out[0] = '\0';
    while (r->pos < r->len && r->data[r->pos] != '"') {
        uint8_t c = r->data[r->pos];

        if (!isalnum(c) && c != '-' && c != '_')
            return tether_canonical_fail(r, "a jti holds only A-Z a-z 0-9 - _");
        if (n == TETHER_USAGE_DOCUMENT_JTI_MAX)
            return tether_canonical_fail(r, "a jti is at most %d characters",
                                         TETHER_USAGE_DOCUMENT_JTI_MAX);
        out[n++] = (char)c;
        r->pos++;
    }
    out[n] = '\0';
    return n == 0 ? tether_canonical_fail(r, "a jti is empty") : TETHER_OK;
}

static tether_status_t token(reader_t *r, tether_usage_document_t *doc)
{
    tether_usage_document_token_t *t;
    tether_status_t rc;

    if (doc->token_count == TETHER_USAGE_DOCUMENT_MAX_TOKENS) {
        tether_canonical_fail(r, "more than %d tokens", TETHER_USAGE_DOCUMENT_MAX_TOKENS);
        return TETHER_ERR_TOO_LARGE;
    }
    t = &doc->tokens[doc->token_count];
    if ((rc = tether_canonical_expect(r, "{\"jti\":\"")) != TETHER_OK ||
        (rc = jti(r, t->jti)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, "\",\"proofs\":")) != TETHER_OK ||
        (rc = integer(r, "proofs", &t->proofs)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"requests\":")) != TETHER_OK ||
        (rc = integer(r, "requests", &t->requests)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"bearer\":")) != TETHER_OK ||
        (rc = integer(r, "bearer", &t->bearer)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, "}")) != TETHER_OK)
        return rc;
    for (size_t i = 0; i < doc->token_count; i++)
        if (strcmp(doc->tokens[i].jti, t->jti) == 0)
            return tether_canonical_fail(r, "jti %s is listed twice", t->jti);
    doc->token_count++;
    return TETHER_OK;
}

static tether_status_t version_1(reader_t *r, tether_usage_document_t *doc)
{
    tether_status_t rc;

    doc->version = 1;
    if ((rc = integer(r, "exchanges", &doc->exchanges)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"token_requests\":")) != TETHER_OK ||
        (rc = integer(r, "token_requests", &doc->token_requests)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"tokens\":[")) != TETHER_OK)
        return rc;
    if (tether_canonical_take(r, "]"))
        return TETHER_OK;
    do {
        if ((rc = token(r, doc)) != TETHER_OK)
            return rc;
    } while (tether_canonical_take(r, ","));
    return tether_canonical_expect(r, "]");
}

static tether_status_t version_0(reader_t *r, tether_usage_document_t *doc)
{
    tether_status_t rc;

    doc->version = 0;
    if ((rc = integer(r, "token_requests", &doc->token_requests)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"exchanges\":")) != TETHER_OK)
        return rc;
    return integer(r, "exchanges", &doc->exchanges);
}

tether_status_t tether_usage_document_parse(const uint8_t *data, size_t len,
                                            tether_usage_document_t *doc, char *why,
                                            size_t why_size)
{
    reader_t r = {
        .data = data, .len = len, .what = "usage document", .why = why, .why_size = why_size};
    tether_status_t rc;

    memset(doc, 0, sizeof(*doc));
    if (why_size > 0)
        why[0] = '\0';
    if (len > TETHER_EVIDENCE_MAX_USAGE) {
        tether_canonical_fail(&r, "%zu bytes, more than %d", len, TETHER_EVIDENCE_MAX_USAGE);
        return TETHER_ERR_TOO_LARGE;
    }
    if (data == NULL)
        return tether_canonical_fail(&r, "empty");
    if (tether_canonical_take(&r, "{\"version\":1,\"exchanges\":"))
        rc = version_1(&r, doc);
    else if (tether_canonical_take(&r, "{\"token_requests\":"))
        rc = version_0(&r, doc);
    else
        rc = tether_canonical_fail(
            &r, "not the canonical form of version 1 ({\"version\":1,\"exchanges\":...)");
    if (rc == TETHER_OK)
        rc = tether_canonical_expect(&r, "}");
    if (rc == TETHER_OK && r.pos != len)
        rc = tether_canonical_fail(&r, "bytes after the document");
    if (rc != TETHER_OK) /* no half-read document */
        memset(doc, 0, sizeof(*doc));
    return rc;
}
