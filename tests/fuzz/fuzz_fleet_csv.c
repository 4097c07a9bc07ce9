/*
 * fleetd's device import CSV on arbitrary bytes: success means at least one
 * row, every row well formed (64 lowercase hex digits, a valid name) and
 * no errors; failure means no rows and at least one error with a line
 * number inside the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rows(const tether_csv_devices_t *csv)
{
    char ek[TETHER_STORE_EK_SHA256_SIZE];

    if (csv->count == 0 || csv->errors_total != 0 || csv->rows == NULL || csv->lines == NULL)
        abort();
    for (size_t i = 0; i < csv->count; i++) {
        if (tether_fleet_ek_sha256_normalize(csv->rows[i].ek_sha256, strlen(csv->rows[i].ek_sha256),
                                             ek) != TETHER_OK ||
            strcmp(ek, csv->rows[i].ek_sha256) != 0 ||
            !tether_fleet_name_valid(csv->rows[i].name, strlen(csv->rows[i].name)) ||
            csv->lines[i] < 2 || (i > 0 && csv->lines[i] <= csv->lines[i - 1]))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_csv_devices_t csv;
    size_t lines = 1;
    tether_status_t rc;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    tether_csv_devices_init(&csv);
    rc = tether_csv_devices_parse((const char *)data, size, &csv);
    if (rc == TETHER_OK) {
        check_rows(&csv);
    } else if (rc == TETHER_ERR_PARSE) {
        if (csv.rows != NULL || csv.count != 0 || csv.error_count == 0 ||
            csv.error_count > TETHER_CSV_MAX_ERRORS || csv.errors_total < csv.error_count)
            abort();
        for (size_t i = 0; i < csv.error_count; i++)
            if (csv.errors[i].line == 0 || csv.errors[i].line > lines)
                abort();
    } else if (rc != TETHER_ERR_NO_MEMORY) {
        abort();
    }
    tether_csv_devices_free(&csv);
    return 0;
}
