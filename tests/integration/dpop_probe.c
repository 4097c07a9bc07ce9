/*
 * Checks a DPoP proof as a gateway does (lib's verifier, RFC 9449 section
 * 4.3) against the access token it was made for: the proof against the
 * token's cnf.jkt (JKT, from the claims the caller verified with the
 * fleet's JWKS), this request's htm and htu, ath, iat within 60 s, and the
 * nonce if given.
 *
 *   dpop_probe JKT TOKEN PROOF METHOD URL [NONCE]
 *
 * Prints "ok JTI" (exit 0) or the refusal's name and reason (exit 1).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tether/dpop.h"

int main(int argc, char **argv)
{
    char htu[TETHER_DPOP_HTU_MAX + 1], why[256];
    tether_dpop_expect_t expect;
    tether_dpop_result_t result;
    tether_dpop_failure_t failure = TETHER_DPOP_OK;

    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: dpop_probe JKT TOKEN PROOF METHOD URL [NONCE]\n");
        return 2;
    }
    if (tether_dpop_htu_normalize(argv[5], strlen(argv[5]), htu, sizeof(htu)) != TETHER_OK) {
        fprintf(stderr, "dpop_probe: bad URL %s\n", argv[5]);
        return 2;
    }
    expect = (tether_dpop_expect_t){.htm = argv[4],
                                    .htu = htu,
                                    .access_token = argv[2],
                                    .access_token_len = strlen(argv[2]),
                                    .jkt = argv[1],
                                    .now = (int64_t)time(NULL),
                                    .max_age = 60,
                                    .leeway = 5};
    if (tether_dpop_verify(argv[3], strlen(argv[3]), &expect, &result, &failure, why,
                           sizeof(why)) != TETHER_OK) {
        printf("%s %s\n", tether_dpop_failure_name(failure), why);
        return 1;
    }
    if (argc == 7 && strcmp(result.nonce, argv[6]) != 0) {
        printf("dpop_wrong_nonce the proof carries nonce '%s'\n", result.nonce);
        return 1;
    }
    printf("ok %s\n", result.jti);
    return 0;
}
