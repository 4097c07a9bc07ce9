/*
 * IP networks in CIDR notation, in one canonical text form: the fleet
 * policy's "sources", the tether.sources claim of tokens issued under it,
 * and tether-gate's check of a client's address against that claim.
 * Untrusted text (a policy from an admin, a claim) is read strictly: only
 * the text inet_ntop writes for the address, "/", the prefix without
 * leading zeros, host bits zero; so a network has one spelling.
 */
#ifndef TETHER_CIDR_H
#define TETHER_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/error.h"

/* INET6_ADDRSTRLEN (46, with the NUL) and "/128". */
#define TETHER_CIDR_TEXT_SIZE 50

typedef struct tether_cidr {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t address[16]; /* network byte order; 4 bytes used for AF_INET */
    unsigned prefix;     /* 0-32 or 0-128 */
} tether_cidr_t;

/* Parses the NUL-terminated text (canonical form only) into *cidr, zeroed
 * on entry and on refusal. TETHER_ERR_PARSE with a sentence in why that
 * starts with the text ("10.0.0.1/8 has host bits set"). */
TETHER_MUST_CHECK tether_status_t tether_cidr_parse(const char *text, tether_cidr_t *cidr,
                                                    char *why, size_t why_size);

/* The canonical text of cidr into out (TETHER_CIDR_TEXT_SIZE is enough);
 * TETHER_ERR_TOO_LARGE when out is short, TETHER_ERR_INVALID_ARGUMENT for
 * a family that is neither. */
TETHER_MUST_CHECK tether_status_t tether_cidr_format(const tether_cidr_t *cidr, char *out,
                                                     size_t size);

/* -1, 0 or 1 as a sorts before, with or after b: IPv4 first, then the
 * address bytes, then the prefix (the order canonical lists keep). */
int tether_cidr_compare(const tether_cidr_t *a, const tether_cidr_t *b);

/* Whether address (network byte order, 4 or 16 bytes per family) lies in
 * network. An IPv4-mapped IPv6 address is IPv6: it matches IPv6 networks
 * only. */
bool tether_cidr_contains(const tether_cidr_t *network, int family, const uint8_t *address);

/* Whether the text address (IPv4 or IPv6, inet_pton's forms) lies in one
 * of list[0..count); any address when count is 0. An address that does not
 * parse, or NULL (unknown), lies in none. */
bool tether_cidr_list_allows(const tether_cidr_t *list, size_t count, const char *address);

#endif
