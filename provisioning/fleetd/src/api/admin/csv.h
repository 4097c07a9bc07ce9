/*
 * The device import: CSV text with the header "ek_sha256,name" and one
 * device per line (RFC 4180 without quoting: neither field may hold a comma
 * or a quote). Pure: no I/O, no store; the input is untrusted (fuzzed).
 * Every row is checked before anything is returned, so a caller applies all
 * rows or none.
 */
#ifndef TETHER_FLEET_CSV_H
#define TETHER_FLEET_CSV_H

#include <stddef.h>

#include "store.h"
#include "tether/error.h"

#define TETHER_CSV_MAX_ROWS 10000
#define TETHER_CSV_MAX_LINE 512
#define TETHER_CSV_MAX_ERRORS 20 /* errors kept; errors_total counts them all */

typedef struct tether_csv_error {
    size_t line; /* 1-based; the header is line 1 */
    char message[96];
} tether_csv_error_t;

/* Rows have ek_sha256 (lowercase) and name set; id is left empty. */
typedef struct tether_csv_devices {
    tether_store_allow_t *rows;
    size_t *lines; /* lines[i]: the line rows[i] came from */
    size_t count;
    tether_csv_error_t errors[TETHER_CSV_MAX_ERRORS];
    size_t error_count;
    size_t errors_total;
} tether_csv_devices_t;

void tether_csv_devices_init(tether_csv_devices_t *csv);

/* Parses len bytes of data (no NUL needed). TETHER_OK: rows holds every
 * device (at least one) and there is no error. TETHER_ERR_PARSE: the errors
 * say which lines are wrong and rows is empty. TETHER_ERR_NO_MEMORY. */
TETHER_MUST_CHECK tether_status_t tether_csv_devices_parse(const char *data, size_t len,
                                                           tether_csv_devices_t *csv);

/* Frees the rows; accepts NULL. */
void tether_csv_devices_free(tether_csv_devices_t *csv);

#endif
