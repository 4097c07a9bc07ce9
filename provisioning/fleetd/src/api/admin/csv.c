#include "csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "validate.h"

#define CSV_HEADER "ek_sha256,name"

typedef struct csv_line {
    const char *text;
    size_t len;
    size_t number;
} csv_line_t;

typedef struct csv_state {
    tether_csv_devices_t *csv;
    size_t capacity;
} csv_state_t;

void tether_csv_devices_init(tether_csv_devices_t *csv)
{
    if (csv != NULL)
        memset(csv, 0, sizeof(*csv));
}

void tether_csv_devices_free(tether_csv_devices_t *csv)
{
    if (csv == NULL)
        return;
    free(csv->rows);
    free(csv->lines);
    memset(csv, 0, sizeof(*csv));
}

static void add_error(tether_csv_devices_t *csv, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(tether_csv_devices_t *csv, size_t line, const char *fmt, ...)
{
    va_list ap;

    csv->errors_total++;
    if (csv->error_count >= TETHER_CSV_MAX_ERRORS)
        return;
    csv->errors[csv->error_count].line = line;
    va_start(ap, fmt);
    vsnprintf(csv->errors[csv->error_count].message,
              sizeof(csv->errors[csv->error_count].message), fmt, ap);
    va_end(ap);
    csv->error_count++;
}

static void trim(const char **text, size_t *len)
{
    while (*len > 0 && (**text == ' ' || **text == '\t')) {
        (*text)++;
        (*len)--;
    }
    while (*len > 0 && ((*text)[*len - 1] == ' ' || (*text)[*len - 1] == '\t'))
        (*len)--;
}

/* Takes the next line from data at *pos (without "\n" or "\r\n"). */
static bool next_line(const char *data, size_t len, size_t *pos, csv_line_t *line)
{
    const char *start = data + *pos;
    const char *end;

    if (*pos >= len)
        return false;
    end = memchr(start, '\n', len - *pos);
    line->text = start;
    line->len = end != NULL ? (size_t)(end - start) : len - *pos;
    *pos += line->len + (end != NULL ? 1 : 0);
    if (line->len > 0 && line->text[line->len - 1] == '\r')
        line->len--;
    line->number++;
    return true;
}

static tether_status_t grow(csv_state_t *st)
{
    size_t capacity = st->capacity == 0 ? 64 : st->capacity * 2;
    tether_store_allow_t *rows;
    size_t *lines;

    rows = realloc(st->csv->rows, capacity * sizeof(*rows));
    if (rows == NULL)
        return TETHER_ERR_NO_MEMORY;
    st->csv->rows = rows;
    lines = realloc(st->csv->lines, capacity * sizeof(*lines));
    if (lines == NULL)
        return TETHER_ERR_NO_MEMORY;
    st->csv->lines = lines;
    st->capacity = capacity;
    return TETHER_OK;
}

/* Checks one data line and appends it; errors are recorded, not returned. */
static tether_status_t parse_row(csv_state_t *st, const csv_line_t *line)
{
    tether_csv_devices_t *csv = st->csv;
    const char *comma = memchr(line->text, ',', line->len);
    const char *ek = line->text;
    const char *name;
    size_t ek_len, name_len;
    tether_store_allow_t row;
    tether_status_t rc;

    if (comma == NULL || memchr(comma + 1, ',', line->len - (size_t)(comma + 1 - line->text))) {
        add_error(csv, line->number, "expected 2 fields: ek_sha256,name");
        return TETHER_OK;
    }
    ek_len = (size_t)(comma - ek);
    name = comma + 1;
    name_len = line->len - ek_len - 1;
    trim(&ek, &ek_len);
    trim(&name, &name_len);
    memset(&row, 0, sizeof(row));
    if (tether_fleet_ek_sha256_normalize(ek, ek_len, row.ek_sha256) != TETHER_OK) {
        add_error(csv, line->number, "ek_sha256 must be 64 hex digits");
        return TETHER_OK;
    }
    if (!tether_fleet_name_valid(name, name_len)) {
        add_error(csv, line->number,
                  "name must be 1-%d characters of A-Z a-z 0-9 . _ : @ + - and inner spaces",
                  TETHER_STORE_NAME_MAX);
        return TETHER_OK;
    }
    memcpy(row.name, name, name_len);
    if (csv->count == st->capacity && (rc = grow(st)) != TETHER_OK)
        return rc;
    csv->rows[csv->count] = row;
    st->csv->lines[csv->count] = line->number;
    csv->count++;
    return TETHER_OK;
}

static bool header_ok(const csv_line_t *line)
{
    const char *text = line->text;
    size_t len = line->len;

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) { /* UTF-8 BOM from spreadsheets */
        text += 3;
        len -= 3;
    }
    trim(&text, &len);
    return len == sizeof(CSV_HEADER) - 1 && memcmp(text, CSV_HEADER, len) == 0;
}

typedef struct csv_key {
    const char *ek;
    size_t index;
} csv_key_t;

static int compare_key(const void *a, const void *b)
{
    const csv_key_t *ka = a;
    const csv_key_t *kb = b;
    int c = strcmp(ka->ek, kb->ek);

    if (c != 0)
        return c;
    return ka->index < kb->index ? -1 : ka->index > kb->index;
}

/* Reports every EK that appears more than once (sorted, so O(n log n)). */
static tether_status_t find_duplicates(csv_state_t *st)
{
    tether_csv_devices_t *csv = st->csv;
    csv_key_t *keys;

    if (csv->count < 2)
        return TETHER_OK;
    if ((keys = malloc(csv->count * sizeof(*keys))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    for (size_t i = 0; i < csv->count; i++) {
        keys[i].ek = csv->rows[i].ek_sha256;
        keys[i].index = i;
    }
    qsort(keys, csv->count, sizeof(*keys), compare_key);
    for (size_t i = 1; i < csv->count; i++) {
        if (strcmp(keys[i].ek, keys[i - 1].ek) == 0)
            add_error(csv, st->csv->lines[keys[i].index], "duplicate ek_sha256 (also on line %zu)",
                      st->csv->lines[keys[i - 1].index]);
    }
    free(keys);
    return TETHER_OK;
}

static tether_status_t parse_lines(csv_state_t *st, const char *data, size_t len)
{
    tether_csv_devices_t *csv = st->csv;
    csv_line_t line = {NULL, 0, 0};
    size_t pos = 0;
    tether_status_t rc = TETHER_OK;

    if (!next_line(data, len, &pos, &line) || !header_ok(&line)) {
        add_error(csv, 1, "the first line must be the header: " CSV_HEADER);
        return TETHER_OK;
    }
    while (rc == TETHER_OK && next_line(data, len, &pos, &line)) {
        if (line.len == 0)
            continue;
        if (line.len > TETHER_CSV_MAX_LINE) {
            add_error(csv, line.number, "line longer than %d bytes", TETHER_CSV_MAX_LINE);
        } else if (memchr(line.text, '\0', line.len) != NULL || memchr(line.text, '"', line.len)) {
            add_error(csv, line.number, "quotes and NUL bytes are not accepted");
        } else if (csv->count + csv->errors_total >= TETHER_CSV_MAX_ROWS) {
            add_error(csv, line.number, "more than %d devices in one import", TETHER_CSV_MAX_ROWS);
            break;
        } else {
            rc = parse_row(st, &line);
        }
    }
    if (rc == TETHER_OK && csv->count == 0 && csv->errors_total == 0)
        add_error(csv, line.number, "no devices after the header");
    return rc == TETHER_OK ? find_duplicates(st) : rc;
}

tether_status_t tether_csv_devices_parse(const char *data, size_t len, tether_csv_devices_t *csv)
{
    csv_state_t st = {csv, 0};
    tether_status_t rc;

    if (csv == NULL || (data == NULL && len > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    tether_csv_devices_free(csv);
    if (data == NULL)
        data = "";
    rc = parse_lines(&st, data, len);
    if (rc == TETHER_OK && csv->errors_total > 0)
        rc = TETHER_ERR_PARSE;
    if (rc != TETHER_OK) {
        free(csv->rows);
        free(csv->lines);
        csv->rows = NULL;
        csv->lines = NULL;
        csv->count = 0;
    }
    return rc;
}
