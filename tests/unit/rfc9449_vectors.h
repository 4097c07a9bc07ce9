/* Published test vectors of RFC 9449 shared by the unit tests of lib's JOSE
 * (test_jose.c) and DPoP (test_dpop.c). */
#ifndef TETHER_TEST_RFC9449_VECTORS_H
#define TETHER_TEST_RFC9449_VECTORS_H

/* RFC 9449 section 4.1 (figure 3): a DPoP proof, an ES256 JWS whose header
 * carries the signer's JWK; section 6.1 gives that key's thumbprint. */
#define DPOP_PROOF                                                                                 \
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNo" \
    "UklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERW" \
    "clUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19"                                                         \
    ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGU" \
    "uY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"                                                      \
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
#define DPOP_JWK                                                                                   \
    "{\"kty\":\"EC\",\"x\":\"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs\",\"y\":"                 \
    "\"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA\",\"crv\":\"P-256\"}"
#define DPOP_JKT "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
#define DPOP_IAT 1562262616 /* the proof's iat */

#endif
