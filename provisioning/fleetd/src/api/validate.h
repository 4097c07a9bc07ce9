/*
 * Checks of the small values the admin API and the import accept. Names and
 * reasons end up in logs, JSON and terminals, so they are kept to a small,
 * printable alphabet.
 */
#ifndef TETHER_FLEET_VALIDATE_H
#define TETHER_FLEET_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tether/error.h"

/* 1..TETHER_STORE_NAME_MAX bytes of [A-Za-z0-9._:@+-] and inner spaces. */
bool tether_fleet_name_valid(const char *name, size_t len);

/* 1..TETHER_STORE_REASON_MAX bytes of printable ASCII. */
bool tether_fleet_reason_valid(const char *reason, size_t len);

/* 64 hex digits (either case) into lowercase in out; TETHER_ERR_PARSE otherwise. */
TETHER_MUST_CHECK tether_status_t tether_fleet_ek_sha256_normalize(
    const char *hex, size_t len, char out[TETHER_STORE_EK_SHA256_SIZE]);

/* A number in a path or query (an id, a sequence number): decimal digits
 * only, without sign, spaces or leading zeros ("0" itself is fine), at most
 * max. One spelling per number, so that "01" cannot pass for 1. */
bool tether_fleet_decimal_parse(const char *text, uint64_t max, uint64_t *value);

/* "dev_" followed by 24 lowercase hex digits. */
bool tether_fleet_device_id_valid(const char *id, size_t len);

/* A new random device id. */
TETHER_MUST_CHECK tether_status_t tether_fleet_device_id_new(char out[TETHER_STORE_DEVICE_ID_SIZE]);

/* "enr_" followed by 32 lowercase hex digits: a started enrolment. */
bool tether_fleet_enrollment_id_valid(const char *id, size_t len);

/* A new random enrolment id (128 bits). */
TETHER_MUST_CHECK tether_status_t tether_fleet_enrollment_id_new(
    char out[TETHER_STORE_ENROLLMENT_ID_SIZE]);

#endif
