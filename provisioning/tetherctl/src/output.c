/* tetherctl: output for people (aligned tables, "label: value" lines, times)
 * and the care that text from the server needs before it reaches a
 * terminal. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tetherctl.h"
#include "tether/bytes.h"

#define ELLIPSIS "\xe2\x80\xa6" /* U+2026, one column */
#define ELLIPSIS_LEN 3
#define CELL_MAX 1024 /* bytes of one shortened cell */

size_t ctl_text_width(const char *text)
{
    size_t width = 0;

    if (text == NULL)
        return 0;
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if ((*p & 0xc0) != 0x80) /* not a UTF-8 continuation byte */
            width++;
    }
    return width;
}

void ctl_text_shorten(const char *text, size_t max_width, char *out, size_t out_size)
{
    size_t o = 0, width = 0, len;
    bool cut;

    if (out == NULL || out_size == 0)
        return;
    out[0] = '\0';
    if (text == NULL)
        return;
    len = strlen(text);
    /* Every byte becomes one column once sanitised. */
    cut = max_width > 0 && len > max_width;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (cut && width + 1 >= max_width)
            break;
        if (o + 1 >= out_size)
            break;
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        width++;
    }
    if (cut && o + ELLIPSIS_LEN < out_size) {
        memcpy(out + o, ELLIPSIS, ELLIPSIS_LEN);
        o += ELLIPSIS_LEN;
    }
    out[o] = '\0';
}

void ctl_table_init(ctl_table_t *table, const ctl_column_t *columns, size_t column_count)
{
    memset(table, 0, sizeof(*table));
    table->columns = columns;
    table->column_count = column_count;
}

tether_status_t ctl_table_add_row(ctl_table_t *table, const char *const *values)
{
    char cell[CELL_MAX];
    size_t base;

    if (table == NULL || values == NULL || table->column_count == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    if (table->rows == table->capacity) {
        size_t capacity = table->capacity == 0 ? 16 : table->capacity * 2;
        char **cells;
        if (capacity > SIZE_MAX / sizeof(char *) / table->column_count)
            return TETHER_ERR_NO_MEMORY;
        cells = realloc(table->cells, capacity * table->column_count * sizeof(char *));
        if (cells == NULL)
            return TETHER_ERR_NO_MEMORY;
        table->cells = cells;
        table->capacity = capacity;
    }
    base = table->rows * table->column_count;
    for (size_t c = 0; c < table->column_count; c++) {
        ctl_text_shorten(values[c] != NULL ? values[c] : "-", table->columns[c].max_width, cell,
                         sizeof(cell));
        if ((table->cells[base + c] = strdup(cell)) == NULL) {
            while (c-- > 0)
                free(table->cells[base + c]);
            return TETHER_ERR_NO_MEMORY;
        }
    }
    table->rows++;
    return TETHER_OK;
}

static void print_cell(FILE *out, const char *text, size_t width, bool last)
{
    fputs(text, out);
    if (last)
        return;
    for (size_t w = ctl_text_width(text); w < width + 2; w++)
        fputc(' ', out);
}

void ctl_table_print(const ctl_table_t *table, FILE *out)
{
    size_t widths[16];
    size_t n = table->column_count;

    if (n == 0 || n > sizeof(widths) / sizeof(widths[0])) /* tables here have 5 */
        return;
    for (size_t c = 0; c < n; c++) {
        widths[c] = ctl_text_width(table->columns[c].header);
        for (size_t r = 0; r < table->rows; r++) {
            size_t w = ctl_text_width(table->cells[r * n + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    for (size_t c = 0; c < n; c++)
        print_cell(out, table->columns[c].header, widths[c], c + 1 == n);
    fputc('\n', out);
    for (size_t r = 0; r < table->rows; r++) {
        for (size_t c = 0; c < n; c++)
            print_cell(out, table->cells[r * n + c], widths[c], c + 1 == n);
        fputc('\n', out);
    }
}

void ctl_table_free(ctl_table_t *table)
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < table->rows * table->column_count; i++)
        free(table->cells[i]);
    free(table->cells);
    memset(table, 0, sizeof(*table));
}

/* A JSON number that is an integer JSON carries exactly (|n| <= 2^53). */
static bool json_integer(const cJSON *item, long long *value)
{
    double d;

    if (!cJSON_IsNumber(item))
        return false;
    d = item->valuedouble;
    if (!isfinite(d) || floor(d) != d || fabs(d) > 9007199254740992.0)
        return false;
    *value = (long long)d;
    return true;
}

void ctl_format_time(const cJSON *item, char *out, size_t out_size)
{
    long long seconds;
    struct tm tm;
    time_t t;

    if (out_size == 0)
        return;
    /* Years 1970 to 9999: four-digit years only. */
    if (json_integer(item, &seconds) && seconds >= 0 && seconds <= 253402300799LL) {
        t = (time_t)seconds;
        if (gmtime_r(&t, &tm) != NULL && strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
            return;
    }
    ctl_format_value(item, out, out_size);
}

void ctl_format_value(const cJSON *item, char *out, size_t out_size)
{
    long long n;
    char *text;

    if (out_size == 0)
        return;
    if (item == NULL || cJSON_IsNull(item)) {
        snprintf(out, out_size, "-");
    } else if (cJSON_IsString(item) && item->valuestring != NULL) {
        snprintf(out, out_size, "%s", item->valuestring);
    } else if (cJSON_IsBool(item)) {
        snprintf(out, out_size, "%s", cJSON_IsTrue(item) ? "yes" : "no");
    } else if (json_integer(item, &n)) {
        snprintf(out, out_size, "%lld", n);
    } else if (cJSON_IsArray(item)) {
        const cJSON *element;
        size_t o = 0;
        bool strings = true;

        cJSON_ArrayForEach(element, item)
        {
            if (!cJSON_IsString(element))
                strings = false;
        }
        if (!strings)
            goto compact;
        out[0] = '\0';
        cJSON_ArrayForEach(element, item)
        {
            int w = snprintf(out + o, out_size - o, "%s%s", o > 0 ? "," : "",
                             element->valuestring);
            if (w < 0 || (size_t)w >= out_size - o)
                break;
            o += (size_t)w;
        }
    } else {
        goto compact;
    }
    return;
compact:
    text = cJSON_PrintUnformatted(item);
    snprintf(out, out_size, "%s", text != NULL ? text : "?");
    free(text);
}

void ctl_print_field(FILE *out, const char *label, const char *value)
{
    char clean[CELL_MAX];

    if (value == NULL || value[0] == '\0')
        return;
    ctl_text_shorten(value, 0, clean, sizeof(clean));
    fprintf(out, "%s: %s\n", label, clean);
}

const char *ctl_json_string(const cJSON *object, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void ctl_print_device(FILE *out, const cJSON *device)
{
    /* The fields of provisioning/fleetd/README.md's device, in reading order;
     * enrolment details (AK name, counter NV index) are null until the
     * device enrols. */
    static const struct {
        const char *field;
        const char *label;
    } known[] = {
        {"id", "id"},
        {"name", "name"},
        {"status", "status"},
        {"status_reason", "status reason"},
        {"ek_sha256", "ek sha256"},
        {"enrolled", "enrolled"},
        {"allow_reenroll", "re-enrolment allowed"},
        {"highest_counter", "highest counter"},
        {"ak_name", "ak name"},
        {"counter_index", "counter index"},
        {"created_at", "created"},
        {"updated_at", "updated"},
    };
    char value[CELL_MAX];
    const cJSON *item;

    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        item = cJSON_GetObjectItemCaseSensitive(device, known[i].field);
        if (item == NULL || cJSON_IsNull(item))
            continue;
        if (ends_with(known[i].field, "_at"))
            ctl_format_time(item, value, sizeof(value));
        else
            ctl_format_value(item, value, sizeof(value));
        ctl_print_field(out, known[i].label, value);
    }
    /* Fields added by later servers (enrolment: AK name, counter index...). */
    cJSON_ArrayForEach(item, device)
    {
        char label[80];
        size_t i = 0;

        if (item->string == NULL || cJSON_IsNull(item))
            continue;
        while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i].field, item->string) != 0)
            i++;
        if (i < sizeof(known) / sizeof(known[0]))
            continue;
        ctl_text_shorten(item->string, 60, label, sizeof(label));
        for (char *p = label; *p != '\0'; p++) {
            if (*p == '_')
                *p = ' ';
        }
        if (ends_with(item->string, "_at"))
            ctl_format_time(item, value, sizeof(value));
        else
            ctl_format_value(item, value, sizeof(value));
        ctl_print_field(out, label, value);
    }
}

static void wipe_json(cJSON *json)
{
    for (cJSON *item = json; item != NULL; item = item->next) {
        if (item->valuestring != NULL)
            tether_wipe(item->valuestring, strlen(item->valuestring));
        item->valuedouble = 0;
        item->valueint = 0;
        if (item->child != NULL)
            wipe_json(item->child);
    }
}

void ctl_json_free(cJSON *json)
{
    if (json == NULL)
        return;
    /* The root's siblings are not its own: wipe from its children down. */
    if (json->valuestring != NULL)
        tether_wipe(json->valuestring, strlen(json->valuestring));
    wipe_json(json->child);
    cJSON_Delete(json);
}
