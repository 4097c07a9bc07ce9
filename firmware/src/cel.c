/* tether's own measurement log in the TCG Canonical Event Log's TLV
 * encoding (cel.h): the writer, the parser, the replay and the JSON. */
#include "tether/cel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"
#include "eventlog_json.h"

/* A TLV's value in a buffer: where it starts and how long it is. */
typedef struct tlv {
    uint8_t type;
    const uint8_t *value;
    size_t len;
} tlv_t;

/* A cursor over data[0..len); every read checks what is left first. */
typedef struct cursor {
    const uint8_t *data;
    size_t len, pos;
} cursor_t;

/* CEL's integers are big-endian (network order). */
static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const uint8_t *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

bool tether_cel_hash_of(uint16_t algorithm, tether_hash_alg_t *hash)
{
    switch (algorithm) {
    case TETHER_TPM_ALG_SHA1: *hash = TETHER_HASH_SHA1; return true;
    case TETHER_TPM_ALG_SHA256: *hash = TETHER_HASH_SHA256; return true;
    case TETHER_TPM_ALG_SHA384: *hash = TETHER_HASH_SHA384; return true;
    default: return false;
    }
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static bool name_bytes_valid(const uint8_t *b, size_t n)
{
    if (n == 0 || n > TETHER_CEL_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char((char)b[i]))
            return false;
    return true;
}

/* Absolute, printable ASCII (no control character, no DEL, no NUL). */
static bool path_bytes_valid(const uint8_t *b, size_t n)
{
    if (n == 0 || n > TETHER_CEL_PATH_MAX || b[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] > 0x7e)
            return false;
    return true;
}

bool tether_cel_name_valid(const char *name)
{
    return name != NULL && name_bytes_valid((const uint8_t *)name, strlen(name));
}

bool tether_cel_path_valid(const char *path)
{
    return path != NULL && path_bytes_valid((const uint8_t *)path, strnlen(path, TETHER_CEL_PATH_MAX + 1));
}

/* ---- writer ---------------------------------------------------------- */

static void put_header(uint8_t *out, uint8_t type, size_t len)
{
    out[0] = type;
    put_be32(out + 1, (uint32_t)len);
}

/* Appends a TLV to out[*pos..size); the caller sized out. */
static void put_tlv(uint8_t *out, size_t *pos, uint8_t type, const void *value, size_t len)
{
    put_header(out + *pos, type, len);
    memcpy(out + *pos + TETHER_CEL_TLV_HEADER, value, len);
    *pos += TETHER_CEL_TLV_HEADER + len;
}

/* A digest list TLV: one TLV per bank, typed by its TPM_ALG_ID. */
static void put_digests(uint8_t *out, size_t *pos, uint8_t type, uint32_t count,
                        const uint16_t *algorithms, const uint8_t (*digests)[TETHER_HASH_MAX_SIZE])
{
    size_t start = *pos, value_len = 0;
    tether_hash_alg_t hash;

    *pos += TETHER_CEL_TLV_HEADER;
    for (uint32_t i = 0; i < count; i++) {
        (void)tether_cel_hash_of(algorithms[i], &hash); /* checked by the caller */
        put_tlv(out, pos, (uint8_t)algorithms[i], digests[i], tether_hash_size(hash));
    }
    value_len = *pos - start - TETHER_CEL_TLV_HEADER;
    put_header(out + start, type, value_len);
}

/* The banks of m: 1 to TETHER_CEL_MAX_BANKS, each hashed by lib, none twice. */
static bool banks_valid(uint32_t count, const uint16_t *algorithms)
{
    tether_hash_alg_t hash;

    if (count == 0 || count > TETHER_CEL_MAX_BANKS)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        if (!tether_cel_hash_of(algorithms[i], &hash))
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (algorithms[j] == algorithms[i])
                return false;
    }
    return true;
}

tether_status_t tether_cel_encode(uint64_t recnum, const tether_cel_measurement_t *m, uint8_t *out,
                                  size_t out_size, size_t *len,
                                  uint8_t event_digests[][TETHER_HASH_MAX_SIZE])
{
    uint8_t recnum_be[8], pcr_be[4];
    size_t pos = 0, content_start, name_len, path_len;
    tether_hash_alg_t hash;
    tether_status_t rc = TETHER_OK;

    if (len != NULL)
        *len = 0;
    if (m == NULL || out == NULL || len == NULL || event_digests == NULL ||
        out_size < TETHER_CEL_RECORD_MAX || !tether_cel_name_valid(m->name) ||
        !tether_cel_path_valid(m->path) || !banks_valid(m->bank_count, m->algorithms))
        return TETHER_ERR_INVALID_ARGUMENT;
    name_len = strlen(m->name);
    path_len = strlen(m->path);
    put_be64(recnum_be, recnum);
    put_be32(pcr_be, TETHER_CEL_PCR);
    put_tlv(out, &pos, TETHER_CEL_TYPE_RECNUM, recnum_be, sizeof(recnum_be));
    put_tlv(out, &pos, TETHER_CEL_TYPE_PCR, pcr_be, sizeof(pcr_be));
    /* The digests come after the content is known: leave their room. */
    content_start = pos + TETHER_CEL_TLV_HEADER;
    for (uint32_t i = 0; i < m->bank_count; i++) {
        (void)tether_cel_hash_of(m->algorithms[i], &hash);
        content_start += TETHER_CEL_TLV_HEADER + tether_hash_size(hash);
    }
    pos = content_start + TETHER_CEL_TLV_HEADER;
    put_tlv(out, &pos, TETHER_CEL_FIELD_NAME, m->name, name_len);
    put_tlv(out, &pos, TETHER_CEL_FIELD_PATH, m->path, path_len);
    put_digests(out, &pos, TETHER_CEL_FIELD_FILE_DIGESTS, m->bank_count, m->algorithms,
                m->file_digests);
    put_header(out + content_start, TETHER_CEL_CONTENT_TETHER,
               pos - content_start - TETHER_CEL_TLV_HEADER);
    for (uint32_t i = 0; i < m->bank_count && rc == TETHER_OK; i++) {
        (void)tether_cel_hash_of(m->algorithms[i], &hash);
        rc = tether_hash(hash, out + content_start, pos - content_start, event_digests[i],
                         TETHER_HASH_MAX_SIZE);
    }
    if (rc != TETHER_OK)
        return rc;
    *len = pos;
    pos = 8u + 4u + 2u * TETHER_CEL_TLV_HEADER; /* after recnum and pcr */
    put_digests(out, &pos, TETHER_CEL_TYPE_DIGESTS, m->bank_count, m->algorithms,
                (const uint8_t(*)[TETHER_HASH_MAX_SIZE])event_digests);
    return TETHER_OK;
}

/* ---- parser ---------------------------------------------------------- */

/* Reads a TLV header and its value. false when either runs past the end. */
static bool read_tlv(cursor_t *c, tlv_t *t)
{
    size_t len;

    if (c->len - c->pos < TETHER_CEL_TLV_HEADER)
        return false;
    len = get_be32(c->data + c->pos + 1);
    if (len > c->len - c->pos - TETHER_CEL_TLV_HEADER)
        return false;
    t->type = c->data[c->pos];
    t->value = c->data + c->pos + TETHER_CEL_TLV_HEADER;
    t->len = len;
    c->pos += TETHER_CEL_TLV_HEADER + len;
    return true;
}

typedef struct parse_state {
    tether_cel_t *log;
    tether_eventlog_failure_t *failure;
    size_t text_used;
} parse_state_t;

static tether_status_t refuse(parse_state_t *st, tether_firmware_error_t error, size_t record,
                              size_t offset, const char *why)
{
    if (st->failure != NULL) {
        st->failure->error = error;
        st->failure->event = record;
        st->failure->offset = offset;
        snprintf(st->failure->text, sizeof(st->failure->text), "%s", why);
    }
    return error == TETHER_FIRMWARE_TOO_MANY_EVENTS || error == TETHER_FIRMWARE_LOG_TOO_LARGE
               ? TETHER_ERR_TOO_LARGE
               : TETHER_ERR_PARSE;
}

/* A digest list's value: one TLV per bank, in bank order when banks is
 * given (bank_count of them), else any 1 to 3 distinct banks lib hashes,
 * which it records in rec. */
static bool read_digests(const tlv_t *list, tether_cel_record_t *rec, bool first,
                         const uint8_t **values)
{
    cursor_t c = {list->value, list->len, 0};
    uint32_t count = 0;
    tlv_t d;
    tether_hash_alg_t hash;

    while (c.pos < c.len) {
        if (!read_tlv(&c, &d) || count == TETHER_CEL_MAX_BANKS || !tether_cel_hash_of(d.type, &hash) ||
            d.len != tether_hash_size(hash))
            return false;
        if (first) {
            rec->algorithms[count] = d.type;
            for (uint32_t j = 0; j < count; j++)
                if (rec->algorithms[j] == d.type)
                    return false;
        } else if (count >= rec->bank_count || rec->algorithms[count] != d.type) {
            return false;
        }
        values[count++] = d.value;
    }
    if (first)
        rec->bank_count = count;
    return count > 0 && count == rec->bank_count;
}

/* Copies n bytes to the log's text as a NUL-terminated string. */
static const char *keep_text(parse_state_t *st, const uint8_t *b, size_t n)
{
    char *s = st->log->text + st->text_used;

    memcpy(s, b, n);
    s[n] = '\0';
    st->text_used += n + 1;
    return s;
}

/* The content TLV: name, path and file digests, in this order, nothing
 * else. */
static tether_status_t read_content(parse_state_t *st, const tlv_t *content,
                                    tether_cel_record_t *rec, size_t number)
{
    cursor_t c = {content->value, content->len, 0};
    tlv_t name, path, files;

    if (content->type != TETHER_CEL_CONTENT_TETHER)
        return refuse(st, TETHER_FIRMWARE_BAD_RECORD, number, rec->offset,
                      "the content type is not tether's");
    if (!read_tlv(&c, &name) || name.type != TETHER_CEL_FIELD_NAME ||
        !name_bytes_valid(name.value, name.len))
        return refuse(st, TETHER_FIRMWARE_BAD_EVENT_DATA, number, rec->offset,
                      "the name is missing or not 1 to 64 of [A-Za-z0-9._-]");
    if (!read_tlv(&c, &path) || path.type != TETHER_CEL_FIELD_PATH ||
        !path_bytes_valid(path.value, path.len))
        return refuse(st, TETHER_FIRMWARE_BAD_EVENT_DATA, number, rec->offset,
                      "the path is missing or not an absolute printable path");
    if (!read_tlv(&c, &files) || files.type != TETHER_CEL_FIELD_FILE_DIGESTS ||
        !read_digests(&files, rec, false, rec->file_digests))
        return refuse(st, TETHER_FIRMWARE_BAD_ALGORITHM, number, rec->offset,
                      "the file digests are missing or not those of the record's banks");
    if (c.pos != c.len)
        return refuse(st, TETHER_FIRMWARE_BAD_EVENT_DATA, number, rec->offset,
                      "bytes after the file digests in the content");
    rec->name = keep_text(st, name.value, name.len);
    rec->path = keep_text(st, path.value, path.len);
    return TETHER_OK;
}

/* Each digest is the hash of the content TLV (header and value). */
static tether_status_t check_digests(parse_state_t *st, const tether_cel_record_t *rec,
                                     const uint8_t *content, size_t content_len, size_t number)
{
    uint8_t expected[TETHER_HASH_MAX_SIZE];
    tether_hash_alg_t hash;
    tether_status_t rc = TETHER_OK;

    for (uint32_t i = 0; i < rec->bank_count && rc == TETHER_OK; i++) {
        (void)tether_cel_hash_of(rec->algorithms[i], &hash);
        if ((rc = tether_hash(hash, content, content_len, expected, sizeof(expected))) != TETHER_OK)
            break;
        if (!tether_ct_equal(expected, rec->digests[i], tether_hash_size(hash)))
            rc = refuse(st, TETHER_FIRMWARE_DIGEST_MISMATCH, number, rec->offset,
                        "a digest is not the hash of the record's content");
    }
    return rc;
}

static tether_status_t read_record(parse_state_t *st, cursor_t *c, size_t number)
{
    tether_cel_record_t *rec = &st->log->records[number];
    const tether_cel_record_t *first = &st->log->records[0];
    tlv_t recnum, pcr, digests, content;
    size_t content_offset;
    tether_status_t rc;

    rec->offset = c->pos;
    if (!read_tlv(c, &recnum) || !read_tlv(c, &pcr) || !read_tlv(c, &digests)) {
        c->pos = rec->offset;
        return refuse(st, TETHER_FIRMWARE_TRUNCATED, number, rec->offset,
                      "the record runs past the end of the log");
    }
    content_offset = c->pos;
    if (!read_tlv(c, &content)) {
        c->pos = rec->offset;
        return refuse(st, TETHER_FIRMWARE_TRUNCATED, number, rec->offset,
                      "the record's content runs past the end of the log");
    }
    rec->end = c->pos;
    if (recnum.type != TETHER_CEL_TYPE_RECNUM || recnum.len != 8 ||
        (rec->recnum = get_be64(recnum.value)) != number)
        return refuse(st, TETHER_FIRMWARE_BAD_RECORD, number, rec->offset,
                      "the record does not start with its number (8 bytes, one more than the "
                      "last)");
    if (pcr.type != TETHER_CEL_TYPE_PCR || pcr.len != 4)
        return refuse(st, TETHER_FIRMWARE_BAD_RECORD, number, rec->offset,
                      "the record's second field is not a 4-byte PCR index");
    if ((rec->pcr = get_be32(pcr.value)) != TETHER_CEL_PCR)
        return refuse(st, TETHER_FIRMWARE_BAD_PCR, number, rec->offset,
                      "the record extends another PCR than tether's");
    if (number > 0) { /* every record carries the first one's banks */
        memcpy(rec->algorithms, first->algorithms, sizeof(rec->algorithms));
        rec->bank_count = first->bank_count;
    }
    if (digests.type != TETHER_CEL_TYPE_DIGESTS ||
        !read_digests(&digests, rec, number == 0, rec->digests))
        return refuse(st, TETHER_FIRMWARE_BAD_ALGORITHM, number, rec->offset,
                      "the digests are not 1 to 3 distinct SHA-1, SHA-256 or SHA-384 digests, "
                      "the same banks in every record");
    if ((rc = read_content(st, &content, rec, number)) != TETHER_OK)
        return rc;
    return check_digests(st, rec, c->data + content_offset, rec->end - content_offset, number);
}

void tether_cel_init(tether_cel_t *log)
{
    if (log != NULL)
        memset(log, 0, sizeof(*log));
}

void tether_cel_free(tether_cel_t *log)
{
    if (log == NULL)
        return;
    free(log->bytes);
    free(log->text);
    free(log->records);
    memset(log, 0, sizeof(*log));
}

bool tether_cel_recognise(const uint8_t *data, size_t len)
{
    static const uint8_t recnum_header[] = {TETHER_CEL_TYPE_RECNUM, 0, 0, 0, 8};
    static const uint8_t pcr_header[] = {TETHER_CEL_TYPE_PCR, 0, 0, 0, 4};

    return data != NULL && len >= 2 * TETHER_CEL_TLV_HEADER + 8 &&
           memcmp(data, recnum_header, sizeof(recnum_header)) == 0 &&
           memcmp(data + TETHER_CEL_TLV_HEADER + 8, pcr_header, sizeof(pcr_header)) == 0;
}

tether_status_t tether_cel_parse(tether_cel_t *log, const uint8_t *data, size_t len,
                                 tether_eventlog_failure_t *failure)
{
    parse_state_t st = {log, failure, 0};
    cursor_t c = {NULL, len, 0};
    tether_status_t rc = TETHER_OK;

    if (failure != NULL)
        memset(failure, 0, sizeof(*failure));
    if (log == NULL || (data == NULL && len > 0) || log->bytes != NULL || log->records != NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (len > TETHER_CEL_MAX_SIZE)
        return refuse(&st, TETHER_FIRMWARE_LOG_TOO_LARGE, 0, 0, "the log is over its bound");
    /* One byte more so an empty log still owns buffers; names and paths are
     * shorter than the record holding them. */
    if ((log->bytes = malloc(len + 1)) == NULL || (log->text = malloc(len + 1)) == NULL ||
        (log->records = calloc(TETHER_CEL_MAX_RECORDS, sizeof(*log->records))) == NULL) {
        rc = TETHER_ERR_NO_MEMORY;
        goto out;
    }
    if (len > 0)
        memcpy(log->bytes, data, len);
    log->size = len;
    c.data = log->bytes;
    while (c.pos < c.len && rc == TETHER_OK) {
        if (log->record_count == TETHER_CEL_MAX_RECORDS) {
            rc = refuse(&st, TETHER_FIRMWARE_TOO_MANY_EVENTS, log->record_count, c.pos,
                        "more records than a log may hold");
            break;
        }
        if ((rc = read_record(&st, &c, log->record_count)) == TETHER_OK)
            log->record_count++;
    }
out:
    if (rc != TETHER_OK)
        tether_cel_free(log);
    return rc;
}

/* ---- replay ---------------------------------------------------------- */

tether_status_t tether_cel_replay(const tether_cel_t *log, size_t count, const uint16_t *algorithms,
                                  size_t bank_count, tether_eventlog_pcrs_t *pcrs)
{
    uint8_t joined[2 * TETHER_HASH_MAX_SIZE];
    tether_status_t rc = TETHER_OK;

    if (pcrs != NULL)
        memset(pcrs, 0, sizeof(*pcrs));
    if (log == NULL || pcrs == NULL || count > log->record_count)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (log->record_count > 0) {
        algorithms = log->records[0].algorithms;
        bank_count = log->records[0].bank_count;
    }
    if (algorithms == NULL || !banks_valid((uint32_t)bank_count, algorithms))
        return TETHER_ERR_INVALID_ARGUMENT;
    for (size_t b = 0; b < bank_count; b++) {
        tether_eventlog_bank_t *bank = &pcrs->banks[b];

        (void)tether_cel_hash_of(algorithms[b], &bank->hash);
        bank->algorithm = algorithms[b];
        bank->size = tether_hash_size(bank->hash);
        bank->extended = UINT32_C(1) << TETHER_CEL_PCR;
        for (size_t r = 0; r < count && rc == TETHER_OK; r++) {
            memcpy(joined, bank->pcrs[TETHER_CEL_PCR], bank->size);
            memcpy(joined + bank->size, log->records[r].digests[b], bank->size);
            rc = tether_hash(bank->hash, joined, 2 * bank->size, bank->pcrs[TETHER_CEL_PCR],
                             sizeof(bank->pcrs[TETHER_CEL_PCR]));
        }
    }
    pcrs->bank_count = bank_count;
    if (rc != TETHER_OK)
        memset(pcrs, 0, sizeof(*pcrs));
    return rc;
}

/* ---- standing against the TPM ---------------------------------------- */

/* Whether the first count records replay to tpm's values in every bank. */
static tether_status_t replays_to(const tether_cel_t *log, size_t count,
                                  const tether_eventlog_pcrs_t *tpm, bool *equal)
{
    uint16_t algorithms[TETHER_CEL_MAX_BANKS];
    tether_eventlog_pcrs_t replay;
    tether_status_t rc;

    *equal = false;
    for (size_t b = 0; b < tpm->bank_count && b < TETHER_CEL_MAX_BANKS; b++)
        algorithms[b] = tpm->banks[b].algorithm;
    if ((rc = tether_cel_replay(log, count, algorithms, tpm->bank_count, &replay)) != TETHER_OK)
        return rc;
    if (replay.bank_count != tpm->bank_count)
        return TETHER_ERR_INVALID_ARGUMENT;
    *equal = true;
    for (size_t b = 0; b < replay.bank_count; b++) {
        if (replay.banks[b].algorithm != tpm->banks[b].algorithm)
            return TETHER_ERR_INVALID_ARGUMENT;
        *equal = *equal && memcmp(replay.banks[b].pcrs[TETHER_CEL_PCR],
                                  tpm->banks[b].pcrs[TETHER_CEL_PCR], replay.banks[b].size) == 0;
    }
    return TETHER_OK;
}

tether_status_t tether_cel_assess(const tether_cel_t *log, const tether_eventlog_pcrs_t *tpm,
                                  tether_cel_standing_t *standing, size_t *covered)
{
    size_t n;
    bool equal = false;
    tether_status_t rc;

    if (standing != NULL)
        *standing = TETHER_CEL_OUT_OF_STEP;
    if (covered != NULL)
        *covered = 0;
    if (log == NULL || tpm == NULL || standing == NULL || covered == NULL ||
        log->records == NULL || tpm->bank_count > TETHER_CEL_MAX_BANKS)
        return TETHER_ERR_INVALID_ARGUMENT;
    n = log->record_count;
    if ((rc = replays_to(log, n, tpm, &equal)) != TETHER_OK)
        goto out;
    if (equal) {
        *standing = TETHER_CEL_IN_STEP;
        *covered = n;
        goto out;
    }
    if (n >= 1) {
        if ((rc = replays_to(log, n - 1, tpm, &equal)) != TETHER_OK)
            goto out;
        if (equal) {
            *standing = TETHER_CEL_LAST_PENDING;
            *covered = n - 1;
            goto out;
        }
    }
    if ((rc = replays_to(log, 0, tpm, &equal)) != TETHER_OK)
        goto out;
    *standing = equal ? TETHER_CEL_EARLIER_BOOT : TETHER_CEL_OUT_OF_STEP;
out:
    return rc;
}

const char *tether_cel_standing_name(tether_cel_standing_t standing)
{
    switch (standing) {
    case TETHER_CEL_IN_STEP: return "in_step";
    case TETHER_CEL_LAST_PENDING: return "last_pending";
    case TETHER_CEL_EARLIER_BOOT: return "earlier_boot";
    case TETHER_CEL_OUT_OF_STEP: return "out_of_step";
    }
    return "internal_error";
}

/* ---- JSON ------------------------------------------------------------ */

static bool add_digest_list(cJSON *obj, const char *name, const tether_cel_record_t *rec,
                            const uint8_t *const *values)
{
    cJSON *list = cJSON_AddArrayToObject(obj, name);
    tether_hash_alg_t hash;

    if (list == NULL)
        return false;
    for (uint32_t i = 0; i < rec->bank_count; i++) {
        cJSON *d = tether_eventlog_json_append_algorithm(list, rec->algorithms[i]);

        (void)tether_cel_hash_of(rec->algorithms[i], &hash);
        if (d == NULL || !tether_eventlog_json_add_hex(d, "digest", values[i], tether_hash_size(hash)))
            return false;
    }
    return true;
}

static bool add_record(cJSON *records, const tether_cel_record_t *rec)
{
    cJSON *obj = cJSON_CreateObject();

    if (obj == NULL || !cJSON_AddItemToArray(records, obj)) {
        cJSON_Delete(obj);
        return false;
    }
    return cJSON_AddNumberToObject(obj, "recnum", (double)rec->recnum) != NULL &&
           cJSON_AddNumberToObject(obj, "pcr", rec->pcr) != NULL &&
           cJSON_AddStringToObject(obj, "content_type", "tether") != NULL &&
           cJSON_AddStringToObject(obj, "name", rec->name) != NULL &&
           cJSON_AddStringToObject(obj, "path", rec->path) != NULL &&
           add_digest_list(obj, "digests", rec, rec->digests) &&
           add_digest_list(obj, "file_digests", rec, rec->file_digests);
}

tether_status_t tether_cel_to_json(const tether_cel_t *log, const tether_eventlog_pcrs_t *pcrs,
                                   cJSON **out)
{
    cJSON *root = NULL, *records;
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    if (out != NULL)
        *out = NULL;
    if (log == NULL || out == NULL || log->records == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    if ((root = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(root, "format", "tcg_cel_tlv") == NULL ||
        (records = cJSON_AddArrayToObject(root, "records")) == NULL)
        goto out;
    for (size_t r = 0; r < log->record_count; r++)
        if (!add_record(records, &log->records[r]))
            goto out;
    rc = tether_eventlog_json_finish(root, pcrs, out);
    root = NULL;
out:
    cJSON_Delete(root);
    return rc;
}
