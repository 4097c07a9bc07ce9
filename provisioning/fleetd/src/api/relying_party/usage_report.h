/*
 * The body of POST /v1/usage/reports: what a relying party (tether-gate)
 * saw of each token since its last report. Parsed strictly: exactly one
 * JSON object (lib's tether_json_parse_object), no unknown or repeated
 * member, every member of its type and within its bounds. Pure (no I/O):
 * the input is untrusted and fuzzed (tests/fuzz/fuzz_usage_report.c).
 *
 *   {"version": 1, "gateway": NAME, "report_id": ID,
 *    "entries": [{"jti", "device", "requests", "refused", "prompt_tokens",
 *                 "completion_tokens", "cost_micros", "first_seen",
 *                 "last_seen"[, "refused_models"][, "refused_sources"]}, ...]}
 *
 * NAME 1 to 64 of [A-Za-z0-9._:/@+-] (tether-gate sends its audience),
 * ID 16 to 64 of [A-Za-z0-9_-], 1 to
 * TETHER_USAGE_REPORT_MAX_ENTRIES entries with distinct jtis. A jti is 32
 * lowercase hex digits (what fleetd issues), a device "dev_" and 24
 * lowercase hex digits; counts are integers from 0 to their bound below
 * (cost in millionths of the gateway's price-table currency: one integer
 * unit, never a fraction); first_seen <= last_seen, Unix seconds. The
 * optional refused_models (a model outside the allow lists) and
 * refused_sources (a client outside the token's sources) are 0 when
 * absent, 0 to TETHER_USAGE_MAX_REQUESTS, and part of refused: their sum
 * is at most refused. A relying party that predates them sends neither.
 */
#ifndef TETHER_FLEET_USAGE_REPORT_H
#define TETHER_FLEET_USAGE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tether/error.h"

#define TETHER_USAGE_REPORT_VERSION 1
#define TETHER_USAGE_REPORT_MAX_ENTRIES 256
/* 256 entries of at most about 300 bytes each, and the envelope. */
#define TETHER_USAGE_REPORT_MAX_BODY (96 * 1024)
#define TETHER_USAGE_REPORT_ID_MIN 16
#define TETHER_USAGE_REPORT_ID_SIZE TETHER_STORE_USAGE_REPORT_ID_SIZE
#define TETHER_USAGE_MAX_REQUESTS 1000000000LL      /* requests, refused: per entry */
#define TETHER_USAGE_MAX_TOKENS 1000000000000LL     /* prompt, completion: per entry */
#define TETHER_USAGE_MAX_COST 1000000000000000LL    /* micros (a billion units): per entry */
#define TETHER_USAGE_MAX_TIME 253402300799LL        /* 9999-12-31T23:59:59Z */
#define TETHER_USAGE_MESSAGE_SIZE 160

typedef struct tether_usage_report {
    char gateway[TETHER_STORE_NAME_MAX + 1];
    char report_id[TETHER_USAGE_REPORT_ID_SIZE];
    size_t entry_count;
    tether_store_usage_entry_t entries[TETHER_USAGE_REPORT_MAX_ENTRIES];
} tether_usage_report_t;

/* Parses body[0..len) (need not be NUL-terminated) into report (about
 * 30 KiB: allocate it). On TETHER_ERR_PARSE, message (a sentence for the
 * client) says what is wrong, naming the entry, and report is zeroed. */
TETHER_MUST_CHECK tether_status_t tether_usage_report_parse(const char *body, size_t len,
                                                            tether_usage_report_t *report,
                                                            char *message, size_t message_size);

#endif
