/* The policy document's strict reader and its one writer (fleet_policy.h):
 * the reader takes only the canonical byte form the writer produces. */
#include "tether/fleet_policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tether/bytes.h"
#include "tether/canonical_reader.h"
#include "tether/cidr.h"

static const char *const kind_names[TETHER_THRESHOLD_KIND_COUNT] = {
    [TETHER_THRESHOLD_REQUESTS_PER_MINUTE] = "requests_per_minute",
    [TETHER_THRESHOLD_TOKENS_PER_MINUTE] = "tokens_per_minute",
    [TETHER_THRESHOLD_SPEND_PER_HOUR] = "spend_per_hour",
    [TETHER_THRESHOLD_SPEND_PER_DAY] = "spend_per_day",
    [TETHER_THRESHOLD_REFUSED_MODELS] = "refused_models",
    [TETHER_THRESHOLD_SOURCE_NETWORKS] = "source_networks",
};

const char *tether_policy_threshold_kind_name(tether_policy_threshold_kind_t kind)
{
    if ((unsigned)kind >= TETHER_THRESHOLD_KIND_COUNT)
        return NULL;
    return kind_names[kind];
}

tether_status_t tether_policy_threshold_kind_parse(const char *name, size_t len,
                                                   tether_policy_threshold_kind_t *kind)
{
    *kind = TETHER_THRESHOLD_KIND_COUNT;
    for (unsigned i = 0; i < TETHER_THRESHOLD_KIND_COUNT; i++)
        if (strlen(kind_names[i]) == len && memcmp(kind_names[i], name, len) == 0) {
            *kind = (tether_policy_threshold_kind_t)i;
            return TETHER_OK;
        }
    return TETHER_ERR_NOT_FOUND;
}

bool tether_policy_name_valid(const char *name)
{
    size_t n;

    if (name == NULL)
        return false;
    n = strlen(name);
    return n >= 1 && n <= TETHER_POLICY_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n &&
           strchr("._-", name[0]) == NULL;
}

const char *tether_policy_action_name(tether_policy_action_t action)
{
    return action == TETHER_POLICY_ACTION_QUARANTINE ? "quarantine" : "alert";
}

/* Whether a threshold of kind counts events (a whole number) rather than
 * money. */
static bool kind_is_count(tether_policy_threshold_kind_t kind)
{
    return kind != TETHER_THRESHOLD_SPEND_PER_HOUR && kind != TETHER_THRESHOLD_SPEND_PER_DAY;
}

/* ---- reader ---- */

/* The shared cursor (tether/canonical_reader.h). */
typedef tether_canonical_reader_t reader_t;

static tether_status_t too_large(reader_t *r, const char *what, unsigned max)
{
    tether_canonical_fail(r, "more than %u %s", max, what);
    return TETHER_ERR_TOO_LARGE;
}

static bool is_digit(reader_t *r)
{
    return r->pos < r->len && r->data[r->pos] >= '0' && r->data[r->pos] <= '9';
}

/* A canonical decimal (see fleet_policy.h) into text and *micros. */
static tether_status_t decimal(reader_t *r, const char *name, bool whole_only,
                               char text[TETHER_POLICY_DECIMAL_MAX], int64_t *micros)
{
    size_t start = r->pos, whole = 0, fraction = 0;
    int64_t units = 0, part = 0;

    text[0] = '\0';
    *micros = 0;
    for (; is_digit(r); r->pos++, whole++) {
        if (whole == 12)
            return tether_canonical_fail(r, "%s has more than 12 digits", name);
        if (whole == 1 && r->data[start] == '0')
            return tether_canonical_fail(r, "%s has a leading zero", name);
        units = units * 10 + (r->data[r->pos] - '0');
    }
    if (whole == 0)
        return tether_canonical_fail(r, "%s is not a non-negative number", name);
    if (tether_canonical_take(r, ".")) {
        if (whole_only)
            return tether_canonical_fail(r, "%s is a whole number", name);
        for (; is_digit(r); r->pos++, fraction++) {
            if (fraction == 6)
                return tether_canonical_fail(r, "%s has more than 6 decimals", name);
            part = part * 10 + (r->data[r->pos] - '0');
        }
        if (fraction == 0 || r->data[r->pos - 1] == '0')
            return tether_canonical_fail(r, "%s has a fraction that is empty or ends in 0", name);
    }
    for (size_t i = fraction; i < 6; i++)
        part *= 10;
    memcpy(text, r->data + start, r->pos - start);
    text[r->pos - start] = '\0';
    *micros = units * 1000000 + part;
    return TETHER_OK;
}

static bool model_byte(uint8_t c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != ',';
}

static bool kind_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

static bool cidr_byte(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '.' || c == ':' || c == '/';
}

/* A JSON string of up to max bytes that allowed admits (no escapes: none
 * of the bytes a policy string may hold needs one). */
static tether_status_t string(reader_t *r, const char *name, bool (*allowed)(uint8_t), size_t max,
                              char *out)
{
    size_t n = 0;

    out[0] = '\0';
    if (!tether_canonical_take(r, "\""))
        return tether_canonical_fail(r, "%s is not a string", name);
    for (; r->pos < r->len && r->data[r->pos] != '"'; r->pos++, n++) {
        if (!allowed(r->data[r->pos]))
            return tether_canonical_fail(r, "%s holds a character it may not", name);
        if (n == max)
            return tether_canonical_fail(r, "%s is longer than %zu bytes", name, max);
        out[n] = (char)r->data[r->pos];
    }
    out[n] = '\0';
    if (n == 0)
        return tether_canonical_fail(r, "%s is empty", name);
    return tether_canonical_expect(r, "\"");
}

static tether_status_t tokens(reader_t *r, tether_policy_document_t *doc)
{
    int64_t lifetime = 0, ignored = 0;
    char text[TETHER_POLICY_DECIMAL_MAX];
    tether_status_t rc;

    if ((rc = tether_canonical_expect(r, "\"tokens\":{\"models\":[")) != TETHER_OK)
        return rc;
    do {
        if (doc->model_count == TETHER_POLICY_MAX_MODELS)
            return too_large(r, "models", TETHER_POLICY_MAX_MODELS);
        if ((rc = string(r, "a model", model_byte, TETHER_POLICY_MODEL_MAX,
                         doc->models[doc->model_count])) != TETHER_OK)
            return rc;
        if (doc->model_count > 0 &&
            strcmp(doc->models[doc->model_count - 1], doc->models[doc->model_count]) >= 0)
            return tether_canonical_fail(r, "models are not in strictly ascending order");
        doc->model_count++;
    } while (tether_canonical_take(r, ","));
    if ((rc = tether_canonical_expect(r, "],\"cost_ceiling\":")) != TETHER_OK ||
        (rc = decimal(r, "cost_ceiling", false, doc->cost_ceiling, &ignored)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"lifetime_seconds\":")) != TETHER_OK ||
        (rc = decimal(r, "lifetime_seconds", true, text, &lifetime)) != TETHER_OK)
        return rc;
    if (lifetime < (int64_t)TETHER_POLICY_LIFETIME_MIN * 1000000 ||
        lifetime > (int64_t)TETHER_POLICY_LIFETIME_MAX * 1000000)
        return tether_canonical_fail(r, "lifetime_seconds is outside %d..%d",
                                     TETHER_POLICY_LIFETIME_MIN, TETHER_POLICY_LIFETIME_MAX);
    doc->lifetime_seconds = (unsigned)(lifetime / 1000000);
    return tether_canonical_expect(r, "}");
}

static tether_status_t threshold(reader_t *r, tether_policy_document_t *doc, int *last)
{
    char name[32];
    tether_policy_threshold_kind_t kind;
    tether_policy_threshold_t *t;
    tether_status_t rc;

    if ((rc = tether_canonical_expect(r, "{\"kind\":")) != TETHER_OK ||
        (rc = string(r, "kind", kind_byte, sizeof(name) - 1, name)) !=
            TETHER_OK)
        return rc;
    if (tether_policy_threshold_kind_parse(name, strlen(name), &kind) != TETHER_OK)
        return tether_canonical_fail(r, "unknown threshold kind %s", name);
    if ((int)kind <= *last)
        return tether_canonical_fail(r, "threshold %s is repeated or out of order", name);
    *last = (int)kind;
    t = &doc->thresholds[kind];
    if ((rc = tether_canonical_expect(r, ",\"value\":")) != TETHER_OK ||
        (rc = decimal(r, "value", kind_is_count(kind), t->value, &t->micros)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"action\":\"")) != TETHER_OK)
        return rc;
    if (t->micros == 0)
        return tether_canonical_fail(r, "threshold %s is 0", name);
    if (tether_canonical_take(r, "quarantine\""))
        t->action = TETHER_POLICY_ACTION_QUARANTINE;
    else if (tether_canonical_take(r, "alert\""))
        t->action = TETHER_POLICY_ACTION_ALERT;
    else
        return tether_canonical_fail(r, "an action is \"alert\" or \"quarantine\"");
    t->set = true;
    return tether_canonical_expect(r, "}");
}

static tether_status_t source(reader_t *r, tether_policy_document_t *doc)
{
    char text[TETHER_CIDR_TEXT_SIZE], why[128];
    tether_policy_cidr_t *c;
    tether_status_t rc;

    if (doc->source_count == TETHER_POLICY_MAX_SOURCES)
        return too_large(r, "sources", TETHER_POLICY_MAX_SOURCES);
    c = &doc->sources[doc->source_count];
    if ((rc = string(r, "a source", cidr_byte, sizeof(text) - 1, text)) != TETHER_OK)
        return rc;
    if (tether_cidr_parse(text, c, why, sizeof(why)) != TETHER_OK)
        return tether_canonical_fail(r, "source %s", why);
    if (doc->source_count > 0 && tether_cidr_compare(&doc->sources[doc->source_count - 1], c) >= 0)
        return tether_canonical_fail(r, "sources are not in strictly ascending order");
    doc->source_count++;
    return TETHER_OK;
}

/* ---- the measured_boot section ---- */

static bool hex_byte(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool file_name_byte(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* A SHA-256 digest: 64 lowercase hex digits in a string. */
static tether_status_t digest(reader_t *r, const char *name,
                              uint8_t out[TETHER_MEASURED_BOOT_DIGEST_SIZE])
{
    char hex[2 * TETHER_MEASURED_BOOT_DIGEST_SIZE + 1];
    size_t len = 0;
    tether_status_t rc;

    if ((rc = string(r, name, hex_byte, sizeof(hex) - 1, hex)) != TETHER_OK)
        return rc;
    if (strlen(hex) != sizeof(hex) - 1 ||
        tether_hex_decode(hex, sizeof(hex) - 1, out, TETHER_MEASURED_BOOT_DIGEST_SIZE, &len) !=
            TETHER_OK)
        return tether_canonical_fail(r, "%s is not a SHA-256 digest (64 lowercase hex digits)",
                                     name);
    return TETHER_OK;
}

/* A PCR index, 0 to 23, in plain digits. */
static tether_status_t pcr_index(reader_t *r, uint32_t *pcr)
{
    char text[TETHER_POLICY_DECIMAL_MAX];
    int64_t micros = 0;
    tether_status_t rc;

    *pcr = 0;
    if ((rc = decimal(r, "a PCR", true, text, &micros)) != TETHER_OK)
        return rc;
    if (micros >= (int64_t)TETHER_MEASURED_BOOT_PCR_COUNT * 1000000)
        return tether_canonical_fail(r, "PCR %s is not one of 0 to 23", text);
    *pcr = (uint32_t)(micros / 1000000);
    return TETHER_OK;
}

/* ["hex",...]: 0 to max digests, strictly ascending. */
static tether_status_t digest_list(reader_t *r, const char *name,
                                   uint8_t (*list)[TETHER_MEASURED_BOOT_DIGEST_SIZE],
                                   size_t *count, unsigned max)
{
    tether_status_t rc;

    if ((rc = tether_canonical_expect(r, "[")) != TETHER_OK || tether_canonical_take(r, "]"))
        return rc;
    do {
        if (*count == max)
            return too_large(r, name, max);
        if ((rc = digest(r, name, list[*count])) != TETHER_OK)
            return rc;
        if (*count > 0 &&
            memcmp(list[*count - 1], list[*count], TETHER_MEASURED_BOOT_DIGEST_SIZE) >= 0)
            return tether_canonical_fail(r, "%s are not in strictly ascending order", name);
        (*count)++;
    } while (tether_canonical_take(r, ","));
    return tether_canonical_expect(r, "]");
}

/* "pcrs":[N,...],"exact":[{"pcr":N,"value":"hex"},...] */
static tether_status_t pcr_lists(reader_t *r, tether_measured_boot_reference_t *ref)
{
    uint32_t pcr = 0;
    int last = -1;
    tether_status_t rc;

    if ((rc = tether_canonical_expect(r, "\"pcrs\":[")) != TETHER_OK)
        return rc;
    do {
        if ((rc = pcr_index(r, &pcr)) != TETHER_OK)
            return rc;
        if ((int)pcr <= last)
            return tether_canonical_fail(r, "pcrs are not in strictly ascending order");
        last = (int)pcr;
        ref->pcr_mask |= UINT32_C(1) << pcr;
    } while (tether_canonical_take(r, ","));
    if ((rc = tether_canonical_expect(r, "],\"exact\":[")) != TETHER_OK ||
        tether_canonical_take(r, "]"))
        return rc;
    last = -1;
    do {
        if ((rc = tether_canonical_expect(r, "{\"pcr\":")) != TETHER_OK ||
            (rc = pcr_index(r, &pcr)) != TETHER_OK)
            return rc;
        if ((int)pcr <= last)
            return tether_canonical_fail(r, "exact PCRs are not in strictly ascending order");
        last = (int)pcr;
        ref->exact_mask |= UINT32_C(1) << pcr;
        if ((rc = tether_canonical_expect(r, ",\"value\":")) != TETHER_OK ||
            (rc = digest(r, "an exact PCR's value", ref->exact[pcr])) != TETHER_OK ||
            (rc = tether_canonical_expect(r, "}")) != TETHER_OK)
            return rc;
    } while (tether_canonical_take(r, ","));
    return tether_canonical_expect(r, "]");
}

/* "variables":{"PK":"hex","KEK":"hex","db":"hex","dbx":"hex"}, each
 * member optional, in that order. */
static tether_status_t variables(reader_t *r, tether_measured_boot_reference_t *ref)
{
    char member[16];
    bool first = true;
    tether_status_t rc;

    if ((rc = tether_canonical_expect(r, "\"variables\":{")) != TETHER_OK)
        return rc;
    for (unsigned v = 0; v < TETHER_MEASURED_BOOT_VARIABLE_COUNT; v++) {
        snprintf(member, sizeof(member), "%s\"%s\":", first ? "" : ",",
                 tether_measured_boot_variable_name((tether_measured_boot_variable_t)v));
        if (!tether_canonical_take(r, member))
            continue;
        if ((rc = digest(r, "a variable's digest", ref->variables[v])) != TETHER_OK)
            return rc;
        ref->variable_mask |= 1u << v;
        first = false;
    }
    return tether_canonical_expect(r, "}");
}

/* "files":[{"name":"N","digests":["hex",...]},...] */
static tether_status_t files(reader_t *r, tether_measured_boot_reference_t *ref)
{
    tether_status_t rc;

    if ((rc = tether_canonical_expect(r, "\"files\":[")) != TETHER_OK ||
        tether_canonical_take(r, "]"))
        return rc;
    do {
        tether_measured_boot_file_t *f = &ref->files[ref->file_count];

        if (ref->file_count == TETHER_MEASURED_BOOT_MAX_FILES)
            return too_large(r, "files", TETHER_MEASURED_BOOT_MAX_FILES);
        if ((rc = tether_canonical_expect(r, "{\"name\":")) != TETHER_OK ||
            (rc = string(r, "a file's name", file_name_byte, TETHER_MEASURED_BOOT_FILE_NAME_MAX,
                         f->name)) != TETHER_OK)
            return rc;
        if (ref->file_count > 0 && strcmp(ref->files[ref->file_count - 1].name, f->name) >= 0)
            return tether_canonical_fail(r, "files are not in strictly ascending order of name");
        if ((rc = tether_canonical_expect(r, ",\"digests\":")) != TETHER_OK ||
            (rc = digest_list(r, "a file's digests", f->digests, &f->digest_count,
                              TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS)) != TETHER_OK ||
            (rc = tether_canonical_expect(r, "}")) != TETHER_OK)
            return rc;
        if (f->digest_count == 0)
            return tether_canonical_fail(r, "file %s allows no digest", f->name);
        ref->file_count++;
    } while (tether_canonical_take(r, ","));
    return tether_canonical_expect(r, "]");
}

static tether_status_t measured_boot(reader_t *r, tether_measured_boot_reference_t *ref)
{
    char why[128];
    tether_status_t rc;

    if ((rc = pcr_lists(r, ref)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"secure_boot\":")) != TETHER_OK)
        return rc;
    if (tether_canonical_take(r, "true"))
        ref->require_secure_boot = true;
    else if (!tether_canonical_take(r, "false"))
        return tether_canonical_fail(r, "secure_boot is true or false");
    if ((rc = tether_canonical_expect(r, ",")) != TETHER_OK ||
        (rc = variables(r, ref)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"applications\":")) != TETHER_OK ||
        (rc = digest_list(r, "applications", ref->applications, &ref->application_count,
                          TETHER_MEASURED_BOOT_MAX_APPLICATIONS)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"ipl\":")) != TETHER_OK ||
        (rc = digest_list(r, "ipl", ref->ipl, &ref->ipl_count, TETHER_MEASURED_BOOT_MAX_IPL)) !=
            TETHER_OK ||
        (rc = tether_canonical_expect(r, ",")) != TETHER_OK || (rc = files(r, ref)) != TETHER_OK)
        return rc;
    if (!tether_measured_boot_reference_valid(ref, why, sizeof(why)))
        return tether_canonical_fail(r, "measured_boot: %s", why);
    return tether_canonical_expect(r, "}");
}

static tether_status_t document(reader_t *r, tether_policy_document_t *doc)
{
    int last = -1;
    tether_status_t rc;

    if (!tether_canonical_take(r, "{\"version\":1,"))
        return tether_canonical_fail(
            r, "not the canonical form of version 1 ({\"version\":1,\"tokens\":...)");
    if ((rc = tokens(r, doc)) != TETHER_OK ||
        (rc = tether_canonical_expect(r, ",\"thresholds\":[")) != TETHER_OK)
        return rc;
    if (!tether_canonical_take(r, "]")) {
        do {
            if ((rc = threshold(r, doc, &last)) != TETHER_OK)
                return rc;
        } while (tether_canonical_take(r, ","));
        if ((rc = tether_canonical_expect(r, "]")) != TETHER_OK)
            return rc;
    }
    if ((rc = tether_canonical_expect(r, ",\"sources\":[")) != TETHER_OK)
        return rc;
    if (!tether_canonical_take(r, "]")) {
        do {
            if ((rc = source(r, doc)) != TETHER_OK)
                return rc;
        } while (tether_canonical_take(r, ","));
        if ((rc = tether_canonical_expect(r, "]")) != TETHER_OK)
            return rc;
    }
    if (doc->thresholds[TETHER_THRESHOLD_SOURCE_NETWORKS].set && doc->source_count == 0)
        return tether_canonical_fail(r, "a source_networks threshold needs at least one source");
    if (tether_canonical_take(r, ",\"measured_boot\":{")) {
        if ((rc = measured_boot(r, &doc->measured_boot)) != TETHER_OK)
            return rc;
        doc->has_measured_boot = true;
    }
    if (tether_canonical_take(r, ",\""))
        return tether_canonical_fail(r, "a section this fleetd does not know");
    return tether_canonical_expect(r, "}");
}

tether_status_t tether_policy_document_parse(const uint8_t *data, size_t len,
                                             tether_policy_document_t *doc, char *why,
                                             size_t why_size)
{
    reader_t r = {
        .data = data, .len = len, .what = "policy document", .why = why, .why_size = why_size};
    tether_status_t rc;

    memset(doc, 0, sizeof(*doc));
    if (why_size > 0)
        why[0] = '\0';
    if (len > TETHER_POLICY_DOCUMENT_MAX) {
        tether_canonical_fail(&r, "%zu bytes, more than %d", len, TETHER_POLICY_DOCUMENT_MAX);
        return TETHER_ERR_TOO_LARGE;
    }
    if (data == NULL)
        rc = tether_canonical_fail(&r, "empty");
    else
        rc = document(&r, doc);
    if (rc == TETHER_OK && r.pos != len)
        rc = tether_canonical_fail(&r, "bytes after the document");
    if (rc != TETHER_OK) /* no half-read document */
        memset(doc, 0, sizeof(*doc));
    return rc;
}

/* ---- writer ---- */

typedef struct writer {
    char *out;
    size_t size;
    size_t used;
    bool overflow;
} writer_t;

static void put(writer_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(writer_t *w, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (w->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(w->out + w->used, w->size - w->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= w->size - w->used)
        w->overflow = true;
    else
        w->used += (size_t)n;
}

static void put_digest(writer_t *w, const char *before, const uint8_t *digest)
{
    char hex[2 * TETHER_MEASURED_BOOT_DIGEST_SIZE + 1];

    if (tether_hex_encode(digest, TETHER_MEASURED_BOOT_DIGEST_SIZE, hex, sizeof(hex)) !=
        TETHER_OK)
        w->overflow = true;
    put(w, "%s\"%s\"", before, hex);
}

static void put_digest_list(writer_t *w, const uint8_t (*list)[TETHER_MEASURED_BOOT_DIGEST_SIZE],
                            size_t count)
{
    put(w, "[");
    for (size_t i = 0; i < count; i++)
        put_digest(w, i == 0 ? "" : ",", list[i]);
    put(w, "]");
}

static void put_measured_boot(writer_t *w, const tether_measured_boot_reference_t *ref)
{
    bool first = true;

    put(w, ",\"measured_boot\":{\"pcrs\":[");
    for (uint32_t pcr = 0; pcr < TETHER_MEASURED_BOOT_PCR_COUNT; pcr++)
        if ((ref->pcr_mask & (UINT32_C(1) << pcr)) != 0) {
            put(w, "%s%u", first ? "" : ",", (unsigned)pcr);
            first = false;
        }
    put(w, "],\"exact\":[");
    first = true;
    for (uint32_t pcr = 0; pcr < TETHER_MEASURED_BOOT_PCR_COUNT; pcr++)
        if ((ref->exact_mask & (UINT32_C(1) << pcr)) != 0) {
            put(w, "%s{\"pcr\":%u,\"value\":", first ? "" : ",", (unsigned)pcr);
            put_digest(w, "", ref->exact[pcr]);
            put(w, "}");
            first = false;
        }
    put(w, "],\"secure_boot\":%s,\"variables\":{", ref->require_secure_boot ? "true" : "false");
    first = true;
    for (unsigned v = 0; v < TETHER_MEASURED_BOOT_VARIABLE_COUNT; v++)
        if ((ref->variable_mask & (1u << v)) != 0) {
            put(w, "%s\"%s\":", first ? "" : ",",
                tether_measured_boot_variable_name((tether_measured_boot_variable_t)v));
            put_digest(w, "", ref->variables[v]);
            first = false;
        }
    put(w, "},\"applications\":");
    put_digest_list(w, ref->applications, ref->application_count);
    put(w, ",\"ipl\":");
    put_digest_list(w, ref->ipl, ref->ipl_count);
    put(w, ",\"files\":[");
    for (size_t i = 0; i < ref->file_count; i++) {
        put(w, "%s{\"name\":\"%s\",\"digests\":", i == 0 ? "" : ",", ref->files[i].name);
        put_digest_list(w, ref->files[i].digests, ref->files[i].digest_count);
        put(w, "}");
    }
    put(w, "]}");
}

tether_status_t tether_policy_document_write(const tether_policy_document_t *doc, char *out,
                                             size_t size, size_t *len)
{
    writer_t w = {.out = out, .size = size};
    char network[TETHER_CIDR_TEXT_SIZE];
    bool first = true;

    *len = 0;
    if (size == 0)
        return TETHER_ERR_TOO_LARGE;
    out[0] = '\0';
    put(&w, "{\"version\":1,\"tokens\":{\"models\":[");
    for (size_t i = 0; i < doc->model_count; i++)
        put(&w, "%s\"%s\"", i == 0 ? "" : ",", doc->models[i]);
    put(&w, "],\"cost_ceiling\":%s,\"lifetime_seconds\":%u},\"thresholds\":[", doc->cost_ceiling,
        doc->lifetime_seconds);
    for (unsigned k = 0; k < TETHER_THRESHOLD_KIND_COUNT; k++) {
        const tether_policy_threshold_t *t = &doc->thresholds[k];

        if (!t->set)
            continue;
        put(&w, "%s{\"kind\":\"%s\",\"value\":%s,\"action\":\"%s\"}", first ? "" : ",",
            kind_names[k], t->value, tether_policy_action_name(t->action));
        first = false;
    }
    put(&w, "],\"sources\":[");
    for (size_t i = 0; i < doc->source_count; i++) {
        if (tether_cidr_format(&doc->sources[i], network, sizeof(network)) != TETHER_OK)
            w.overflow = true;
        put(&w, "%s\"%s\"", i == 0 ? "" : ",", network);
    }
    put(&w, "]");
    if (doc->has_measured_boot)
        put_measured_boot(&w, &doc->measured_boot);
    put(&w, "}");
    if (w.overflow) {
        out[0] = '\0';
        return TETHER_ERR_TOO_LARGE;
    }
    *len = w.used;
    return TETHER_OK;
}

bool tether_policy_source_allowed(const tether_policy_document_t *doc, const char *address)
{
    return tether_cidr_list_allows(doc->sources, doc->source_count, address);
}
