/*
 * TPM2_MakeCredential in software (lib/src/credential.c): KDFa/KDFe known
 * answers, MakeCredential known answers with the randomness fixed, round
 * trips through the software ActivateCredential, tampering and bad input.
 *
 * Where the expected values come from:
 *
 * - KDFa: the TPM reference implementation's own self-test vector (TCG TPM
 *   2.0 reference code, KdfTestData.h, as shipped in libtpms
 *   src/tpm2/KdfTestData.h: key 271FA08B..., label "KDFSELFTESTLABEL" with
 *   its NUL, 160 bits) for SHA-1/256/384/512, and the KDFa example of
 *   github.com/chrisfenner/tpm-test-vectors (README.md, "27_SHA256_116", an
 *   output that is not a whole number of bytes).
 * - KDFe: github.com/chrisfenner/tpm-test-vectors vectors/kdfe.json (made
 *   with go-tpm's KDFe), entries named below.
 * - MakeCredential: the seed and the encrypted secret come from
 *   tpm-test-vectors' "labeled encapsulation" vectors for label IDENTITY,
 *   which that project validated with TPM2_ActivateCredential on a TPM
 *   simulator: ecc_labeled_encaps.json 12_P256_SHA256_256_restricted and
 *   55_P384_SHA384_256_restricted, rsa_labeled_encaps.json
 *   24_2048_SHA384_256_restricted. Their EK public areas, ephemeral keys and
 *   OAEP seeds are fed in through tether_credential_make_rng(). The rest of
 *   each credential blob (symKey, encIdentity, HMAC) was computed for this
 *   test with the OpenSSL 3 command line only, from the vector's seed:
 *
 *     symkey=$(openssl kdf -keylen $((BITS/8)) -kdfopt mac:HMAC \
 *         -kdfopt digest:$DG -kdfopt hexkey:$SEED -kdfopt salt:STORAGE \
 *         -kdfopt hexinfo:$NAME -binary KBKDF | xxd -p -c 1000)
 *     hmackey=$(openssl kdf -keylen $DIGEST_LEN -kdfopt mac:HMAC \
 *         -kdfopt digest:$DG -kdfopt hexkey:$SEED -kdfopt salt:INTEGRITY \
 *         -binary KBKDF | xxd -p -c 1000)
 *     enc=$(printf '%04x%s' $SECRET_LEN $SECRET | xxd -r -p | openssl enc \
 *         -aes-$BITS-cfb -K $symkey -iv 00000000000000000000000000000000 |
 *         xxd -p -c 1000)
 *     mac=$(printf '%s%s' $enc $NAME | xxd -r -p | openssl dgst -$DG \
 *         -mac HMAC -macopt hexkey:$hmackey -binary | xxd -p -c 1000)
 *     blob = DIGEST_LEN (2 bytes) || mac || enc
 *
 *   (OpenSSL's KBKDF in counter mode with HMAC is KDFa: it puts the 0x00
 *   after the label and the output length in bits after the context.) The
 *   transcribed vectors were also checked against a direct Python (hashlib)
 *   implementation of KDFa, KDFe, P-256/P-384 point arithmetic and OAEP
 *   before use. Names and secrets: NAME = nameAlg || H("tether test AK
 *   P-256") (and "... P-384", "... RSA"), secrets are ASCII strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <tss2/tss2_mu.h>

#include "credential_internal.h"
#include "tether/bytes.h"
#include "tether/credential.h"
#include "tether/mbedtls_bridge.h"
#include "tether/error.h"
#include "tether/random.h"

/* ---------------------------------------------------------------- helpers */

static size_t unhex(const char *hex, uint8_t *out, size_t out_size)
{
    size_t len = 0;

    assert_int_equal(tether_hex_decode(hex, strlen(hex), out, out_size, &len), TETHER_OK);
    return len;
}

static void assert_hex_equal(const uint8_t *got, size_t got_len, const char *expected_hex)
{
    uint8_t expected[1024];
    size_t len = unhex(expected_hex, expected, sizeof(expected));

    assert_int_equal(got_len, len);
    assert_memory_equal(got, expected, len);
}

static void public_from_hex(const char *hex, TPM2B_PUBLIC *pub)
{
    uint8_t buf[sizeof(TPMT_PUBLIC)];
    size_t len = unhex(hex, buf, sizeof(buf)), offset = 0;

    memset(pub, 0, sizeof(*pub));
    assert_int_equal(Tss2_MU_TPMT_PUBLIC_Unmarshal(buf, len, &offset, &pub->publicArea),
                     TSS2_RC_SUCCESS);
    assert_int_equal(offset, len);
    pub->size = (uint16_t)len;
}

static void name_from_hex(const char *hex, TPM2B_NAME *name)
{
    memset(name, 0, sizeof(*name));
    name->size = (uint16_t)unhex(hex, name->name, sizeof(name->name));
}

static bool all_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;

    for (size_t i = 0; i < len; i++)
        if (p[i] != 0)
            return false;
    return true;
}

/* An f_rng that hands out fixed bytes first (each draw must fit in what is
 * left) and then real randomness, for the blinding draws that never change
 * a result. */
typedef struct fixed_rng {
    const uint8_t *bytes;
    size_t len;
    size_t used;
} fixed_rng_t;

static int fixed_rng(void *p_rng, unsigned char *buf, size_t len)
{
    fixed_rng_t *rng = p_rng;

    if (rng->used < rng->len) {
        if (len > rng->len - rng->used)
            return -1;
        memcpy(buf, rng->bytes + rng->used, len);
        rng->used += len;
        return 0;
    }
    return tether_random_mbedtls(NULL, buf, len);
}

static int failing_rng(void *p_rng, unsigned char *buf, size_t len)
{
    (void)p_rng;
    (void)buf;
    (void)len;
    return -1;
}

/* ------------------------------------------------------------------ KDFs */

typedef struct kdf_vector {
    const char *name;
    TPMI_ALG_HASH alg;
    const char *secret; /* key (KDFa) or Z (KDFe), hex */
    const char *label;
    const char *u, *v;
    uint32_t bits;
    const char *result;
} kdf_vector_t;

/* TPM reference self-test (KdfTestData.h) and tpm-test-vectors README. */
static const kdf_vector_t kdfa_vectors[] = {
    {"reference self-test SHA-1", TPM2_ALG_SHA1, "271fa08bbdc5060ec3dfa928ff9b73123a12da0c",
     "KDFSELFTESTLABEL", "ce244f395dca7391", "da504031ddf12e83", 160,
     "55b5a7184aa07423c47dae766c26a2377d7cf851"},
    {"reference self-test SHA-256", TPM2_ALG_SHA256, "271fa08bbdc5060ec3dfa928ff9b73123a12da0c",
     "KDFSELFTESTLABEL", "ce244f395dca7391", "da504031ddf12e83", 160,
     "bb0259e1c8ba607e6a2cd704b69a902e9ade84c4"},
    {"reference self-test SHA-384", TPM2_ALG_SHA384, "271fa08bbdc5060ec3dfa928ff9b73123a12da0c",
     "KDFSELFTESTLABEL", "ce244f395dca7391", "da504031ddf12e83", 160,
     "1dce70c9113eb2dba47bd9cfc72bf46f45b09312"},
    {"reference self-test SHA-512", TPM2_ALG_SHA512, "271fa08bbdc5060ec3dfa928ff9b73123a12da0c",
     "KDFSELFTESTLABEL", "ce244f395dca7391", "da504031ddf12e83", 160,
     "8be2c1b85b78569b9fa759f5857c56d684810fd3"},
    {"27_SHA256_116", TPM2_ALG_SHA256, "aff14e568afc0ea51eea748c8915df067c7700", "IDENTITY",
     "ce4edfb881540700e300", "68ddb4a0e59d74cd34dfe631d91e1ea3fbc95865440adedff7e9d011890fba", 116,
     "019ed5e0956338ddda4413ecee5cf2"},
};

/* tpm-test-vectors vectors/kdfe.json, by name. */
static const kdf_vector_t kdfe_vectors[] = {
    {"04_SHA1_253", TPM2_ALG_SHA1, "", "STORAGE", "", "c0227aff", 253,
     "0f10d821af67e1ec776b390f3b4572bb433efd2b94fa7842d879d24d825ed2f9"},
    {"30_SHA256_109", TPM2_ALG_SHA256, "c3e3c34e82ccfa82d8999bf2635bb7cd01f3d65f03ff", "CFB",
     "55576a51c0e45b86557535e9ea50d5e7f4a80bb426e7ff", "dffdece923181dc335c1e936ff", 109,
     "1106264c89948737c140d2f5b40e"},
    {"44_SHA256_659", TPM2_ALG_SHA256, "ffe8361b9fdfe01398db23a1b2a1bc35ffe737", "IDENTITY", "",
     "ff26e2f76cb6fbf1", 659,
     "007d2cb3d906980fbce09d1bfe42b8d3c827c2d9fed082e0344e40c80f08c0a9eb629068d66164fbf03b3e18"
     "124f8ae3400647cf06f6c43be3740a49ec96c25f9115cff6625822878a451c601fa6bf749d2321"},
    {"55_SHA384_133", TPM2_ALG_SHA384, "b53dfac9155409c1479600", "STORAGE",
     "00456e4f18d91cf140fb5aa3c93553aae61e5424e945a94cb77b1747f34d",
     "00384c4d9f30a334abea3230fcb16c5460819c57fd7c", 133, "0935e9f44383ba2d6a7b5cb5782b5b6dbf"},
    {"70_SHA384_675", TPM2_ALG_SHA384,
     "f35c5045fa68f7a0bbe2445109a7a8737f63d7b918e586a50d583b666452d22dff", "XOR", "a795344cff", "",
     675,
     "033580e2217398267903d18be2e79d513dc50c461124aa310ea4483e4edef6f6e3de4706d4ea48e81a6f72ef"
     "c1cc1c17a47daa990a39fb7f1b198c2f4ed9140b5ce7a6cc88a075af2a6656caa4c32ba4886dde5a45"},
};

typedef tether_status_t (*kdf_fn)(TPMI_ALG_HASH, const uint8_t *, size_t, const char *,
                                  const uint8_t *, size_t, const uint8_t *, size_t, uint32_t,
                                  uint8_t *, size_t);

static void run_kdf_vectors(kdf_fn kdf, const kdf_vector_t *vectors, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const kdf_vector_t *t = &vectors[i];
        uint8_t secret[128], u[128], v[128], out[256];
        size_t secret_len = unhex(t->secret, secret, sizeof(secret));
        size_t u_len = unhex(t->u, u, sizeof(u)), v_len = unhex(t->v, v, sizeof(v));
        size_t out_len = t->bits / 8 + (t->bits % 8 != 0);

        print_message("  %s\n", t->name);
        memset(out, 0xee, sizeof(out));
        /* Empty inputs go in as NULL, which the API allows. */
        assert_int_equal(kdf(t->alg, secret_len ? secret : NULL, secret_len, t->label,
                             u_len ? u : NULL, u_len, v_len ? v : NULL, v_len, t->bits, out,
                             out_len),
                         TETHER_OK);
        assert_hex_equal(out, out_len, t->result);
        assert_int_equal(out[out_len], 0xee); /* nothing past (bits + 7) / 8 */
    }
}

static void kdfa_known_answers(void **state)
{
    (void)state;
    run_kdf_vectors(tether_credential_kdfa, kdfa_vectors,
                    sizeof(kdfa_vectors) / sizeof(kdfa_vectors[0]));
}

static void kdfe_known_answers(void **state)
{
    (void)state;
    run_kdf_vectors(tether_credential_kdfe, kdfe_vectors,
                    sizeof(kdfe_vectors) / sizeof(kdfe_vectors[0]));
}

static void kdf_bad_input(void **state)
{
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint8_t out[32];

    (void)state;
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_SHA256, key, sizeof(key), "L", NULL, 0, NULL,
                                            0, 257, out, sizeof(out)),
                     TETHER_ERR_TOO_LARGE);
    assert_true(all_zero(out, sizeof(out))); /* wiped on error */
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_SHA256, key, sizeof(key), NULL, NULL, 0,
                                            NULL, 0, 128, out, sizeof(out)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_SHA256, key, sizeof(key), "L", NULL, 0, NULL,
                                            0, 0, out, sizeof(out)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_SHA256, NULL, 4, "L", NULL, 0, NULL, 0, 128,
                                            out, sizeof(out)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_kdfe(TPM2_ALG_SHA256, key, sizeof(key), "L", NULL, 3, NULL,
                                            0, 128, out, sizeof(out)),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_kdfe(TPM2_ALG_SHA256, key, sizeof(key), "L", NULL, 0, NULL,
                                            0, 128, NULL, 16),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_kdfe(TPM2_ALG_SM3_256, key, sizeof(key), "L", NULL, 0,
                                            NULL, 0, 128, out, sizeof(out)),
                     TETHER_ERR_UNSUPPORTED);
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_NULL, key, sizeof(key), "L", NULL, 0, NULL,
                                            0, 128, out, sizeof(out)),
                     TETHER_ERR_UNSUPPORTED);
}

/* KDFa binds the requested length (the [bits]32 field), so fewer bits is
 * not a prefix of more; KDFe has no such field. */
static void kdfa_bits_are_bound(void **state)
{
    static const uint8_t key[16] = {0};
    uint8_t a[32], b[32];

    (void)state;
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_SHA256, key, sizeof(key), "STORAGE", NULL, 0,
                                            NULL, 0, 256, a, sizeof(a)),
                     TETHER_OK);
    assert_int_equal(tether_credential_kdfa(TPM2_ALG_SHA256, key, sizeof(key), "STORAGE", NULL, 0,
                                            NULL, 0, 128, b, sizeof(b)),
                     TETHER_OK);
    assert_memory_not_equal(a, b, 16);
    /* KDFe has no bit count: a shorter output is a prefix. */
    assert_int_equal(tether_credential_kdfe(TPM2_ALG_SHA256, key, sizeof(key), "IDENTITY", NULL,
                                            0, NULL, 0, 256, a, sizeof(a)),
                     TETHER_OK);
    assert_int_equal(tether_credential_kdfe(TPM2_ALG_SHA256, key, sizeof(key), "IDENTITY", NULL,
                                            0, NULL, 0, 128, b, sizeof(b)),
                     TETHER_OK);
    assert_memory_equal(a, b, 16);
}

/* ------------------------------------------- MakeCredential known answers */

typedef struct make_vector {
    const char *name;
    const char *ek_public; /* marshalled TPMT_PUBLIC */
    uint16_t aes_bits;     /* 0: as in ek_public */
    const char *randomness;
    const char *object_name;
    const char *secret;
    const char *encrypted_secret;
    const char *credential_blob;
} make_vector_t;

#define P256_EK                                                                                 \
    "0023000b0003046000000006010000430010000300100020fe4cf1f3e8f583c19e1af6190a7c20751658914a" \
    "93cd77efb871cb1557377560002007b6b7c55bea1d17b1a9d96f367cf315b2942d517fd8642e9d9157036831" \
    "c4d5"
#define P256_EPHEMERAL "9efafbaf83563f8ac5a27815eae1017ca78c92f9cde976b1a2e0ad95b8a19bc1"
#define P256_CIPHERTEXT                                                                         \
    "002017ca41bd94c7f12436cf135ff1852408ef6a1ee1989e4e6250ef73c348dd6fa90020346f6016d6f6a2ef" \
    "8e07df6d7b53b362005fc21cda1e1ab25e61f38a87e017b8"
#define P256_NAME "000b7ae953c2d42f90d7da681e450f4a848949263c4ec1a66245d3efee0280980dca"
#define SECRET_32 "7465746865722d63726564656e7469616c2d6b6e6f776e2d616e737765722121"

static const make_vector_t make_vectors[] = {
    {"P-256, SHA-256, AES-256 (12_P256_SHA256_256_restricted)", P256_EK, 0, P256_EPHEMERAL,
     P256_NAME, SECRET_32, P256_CIPHERTEXT,
     "002066fd3ee8f4b14687cfb73dd011a19429755149551c09468e17b24d54e168e250c2dfbfcb7966bf647b8a07"
     "b7b32779ad824f10fe6fe13309a55b5f0989e57bd399a8"},
    /* The same EK with AES-128, as in the L-2 template: the seed does not
     * depend on the symmetric key size, only symKey does. */
    {"P-256, SHA-256, AES-128", P256_EK, 128, P256_EPHEMERAL, P256_NAME, SECRET_32,
     P256_CIPHERTEXT,
     "0020310e214ac84c033a8287b31c5d9f141b5e522baf359994bb2d8bf3eecde8a325d5ddd303bee9852cc034"
     "50cfb4d1432d5bc4cc02a600507748f2feb2bc2a570e9455"},
    {"P-384, SHA-384, AES-256 (55_P384_SHA384_256_restricted)",
     "0023000c0003046000000006010000430010000400100030460ab9b0744c7c90b1243b1fd38f09a724edbab8"
     "3336f36c56f8b241b83f4e24930b7dbc5a90f2a5d29bbb30aed4782f0030d791757c8585dbfd1832126a14bd"
     "9a807fae3f9c7f3239f20e632f70018f1eefab5f1cd8506a2675a48661f7696d35f2",
     0,
     "831d5d1b087ca69230a5c9bf8b2778b5464462a40fd47dba43d445945840320526bd97639b73228e412a26c3"
     "1a18d32c",
     "000b28be498d186bed77e19e68e3c3a4b35c405d01124c5ad28168364c6e060a9f42",
     "7465746865722073686f72742073656372657421",
     "003092512628468bf96172119916c801609ef4c529627634a1452ccd42446b0df37ab297ac97d8fd3cd377f2"
     "72f1c562747a00308cd102d4ef0c85ccf5a975ee6f2f1d247f3c9bfab6628174fed18b320c9d9a7bbf1d54ef"
     "e30a3de88a91f8c58000ed71",
     "0030879c89cd5f735fa9ebb2ebdd1cc0616f1dc1767caf498bfbdc92ae4f8950af3e2e33e1e8603d19d27de1"
     "465f2a1de042fc2fc1c073174abe6e88734867f3a68fae2c32cd7e65"},
    /* Randomness: the seed, then OAEP's seed. */
    {"RSA-2048, SHA-384, AES-256 (24_2048_SHA384_256_restricted)",
     "0001000c00030460000000060100004300100800000000000100803dbf62c1cc6c54037724706b0c5c4b916a"
     "e4feb833cd72b6a0bbe9054254e6a7b95d0292fbd72d713c348a20245a9b48d13ae2b665171d82409a2012c2"
     "e61cbabdbef39180ace9bf74cb36e727507799638b4e47ee177c7611c12ea499c25469d209150cb8416369a5"
     "c0065faafac40fe7fb430da65f494ad37e68a664f27e5112dbf4229e7fb9cd772ef52ffd8c905158dae703c6"
     "5ac306fd1932c8815cedc0eec9dab49b743e19515fe214220ca30990f1a22fbc72a0bb53022fe47a413e04f0"
     "7b295cbd5af2892a48cd5dc8ceb7197c66445b8e3fc6c5ac940fe28dec985244c13ee5337e76298965c264fa"
     "29ea571f06594637c51935e850a24b707ad9",
     0,
     "005c417a39fb86235bb502cbb44bac37ce484ffdfcc12bc47f535e7af2c739eae3710b90ebc5c921cfb3b1bc"
     "f4765dbb"
     "ffee4aff997d5820991fce77ba5b84d7baa7aa9e5fabaa33972d092f2a38b1dcd2d8cd13b6ace469c040efb1"
     "f71a9540",
     "000c4c21d9988bf3374eead821376c6f3c7dd026d14a4a9cd7423ca2f8d5d366b717dbc4d8c33fd02bf562a1"
     "912a7f3b89ab",
     "612034382d627974652061637469766174696f6e2073656372657420666f722061205348412d33383420454b"
     "2e2e2e",
     "38b93b39423a2d1aabcc472ebe40426fe22874768115b6d042eeb0d405a8eb7ac8447768fd7a4da783a43b62"
     "6d96f4731751be8c18cc04e6ba70b52a3fdf97538f3fdb68ef6e866d65bf4930e0b73517a34eb8acbf07e23f"
     "6e9589aaa29f272e149d3b866c9c930e9336e6a23d8a49d967a1606a212811b71a93f42a0288ffa0b582aaad"
     "701f60c64d805cb74418a40cf714e17972e9328228e4055c85499e8d9033584cd6be5da1ebeb1a691c1a99ca"
     "8e74b558dc9764660c302525a7f09a0e38fbd50360c14a207d9897da6880dbb84d903bf4adc126ceb40ab0f3"
     "c2ab9784768cd6e66cf74862c95e50a012bd618fe64f1b17e550fe2205c7216b2fedd80f",
     "003093b10705822905059f1faa8ed379574414132d0ffe6a7356c5c2450f2a715b8e52f4a2cdb10e5c605320"
     "855fc9ab89f42bc90e9db92093b4614d453985eb24653405cce3eef1ba5fbb1b6086b8ae900d968540140b88"
     "be2d99c234dec37b26e369"},
};

static void make_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(make_vectors) / sizeof(make_vectors[0]); i++) {
        const make_vector_t *t = &make_vectors[i];
        uint8_t randomness[128], secret[64];
        size_t secret_len = unhex(t->secret, secret, sizeof(secret));
        fixed_rng_t rng = {randomness, unhex(t->randomness, randomness, sizeof(randomness)), 0};
        TPM2B_ENCRYPTED_SECRET encrypted;
        TPM2B_ID_OBJECT blob;
        TPM2B_PUBLIC ek;
        TPM2B_NAME name;

        print_message("  %s\n", t->name);
        public_from_hex(t->ek_public, &ek);
        if (t->aes_bits != 0)
            ek.publicArea.parameters.asymDetail.symmetric.keyBits.aes = t->aes_bits;
        name_from_hex(t->object_name, &name);
        assert_int_equal(tether_credential_make_rng(&ek, &name, secret, secret_len, &blob,
                                                    &encrypted, fixed_rng, &rng),
                         TETHER_OK);
        assert_int_equal(rng.used, rng.len); /* every fixed byte was drawn */
        assert_hex_equal(encrypted.secret, encrypted.size, t->encrypted_secret);
        assert_hex_equal(blob.credential, blob.size, t->credential_blob);
    }
}

/* ------------------------------------------------ keys for round trips */

typedef struct ek_key {
    mbedtls_pk_context pk;
    TPM2B_PUBLIC pub;
} ek_key_t;

typedef struct fixture {
    ek_key_t rsa[2];  /* TCG L-1 shape: RSA 2048, SHA-256, AES-128-CFB */
    ek_key_t p256[2]; /* L-2: P-256, SHA-256, AES-128-CFB */
    ek_key_t p384;    /* H-3: P-384, SHA-384, AES-256-CFB */
    TPM2B_NAME name;  /* an AK name (SHA-256) */
    TPM2B_NAME name384;
} fixture_t;

/* The EK templates' shape (TCG EK Credential Profile 2.x, B.3.3, B.3.4,
 * B.4.5); unique is filled from the key. */
static void ek_template(TPM2B_PUBLIC *pub, TPMI_ALG_PUBLIC type, TPMI_ALG_HASH name_alg,
                        uint16_t aes_bits, TPMI_ECC_CURVE curve)
{
    TPMT_PUBLIC *p = &pub->publicArea;

    memset(pub, 0, sizeof(*pub));
    p->type = type;
    p->nameAlg = name_alg;
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    p->parameters.asymDetail.symmetric.algorithm = TPM2_ALG_AES;
    p->parameters.asymDetail.symmetric.keyBits.aes = aes_bits;
    p->parameters.asymDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p->parameters.asymDetail.scheme.scheme = TPM2_ALG_NULL;
    if (type == TPM2_ALG_RSA) {
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
    } else {
        p->parameters.eccDetail.curveID = curve;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    }
}

static void make_rsa_ek(ek_key_t *k)
{
    mbedtls_pk_init(&k->pk);
    assert_int_equal(mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
    assert_int_equal(
        mbedtls_rsa_gen_key(mbedtls_pk_rsa(k->pk), tether_random_mbedtls, NULL, 2048, 65537), 0);
    ek_template(&k->pub, TPM2_ALG_RSA, TPM2_ALG_SHA256, 128, 0);
    k->pub.publicArea.unique.rsa.size = 256;
    assert_int_equal(mbedtls_rsa_export_raw(mbedtls_pk_rsa(k->pk),
                                            k->pub.publicArea.unique.rsa.buffer, 256, NULL, 0,
                                            NULL, 0, NULL, 0, NULL, 0),
                     0);
}

static void make_ecc_ek(ek_key_t *k, mbedtls_ecp_group_id group, TPMI_ECC_CURVE curve,
                        TPMI_ALG_HASH name_alg, uint16_t aes_bits, size_t coordinate_len)
{
    mbedtls_ecp_keypair *ec;
    TPMS_ECC_POINT *q = &k->pub.publicArea.unique.ecc;

    mbedtls_pk_init(&k->pk);
    assert_int_equal(mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    ec = mbedtls_pk_ec(k->pk);
    assert_int_equal(mbedtls_ecp_gen_key(group, ec, tether_random_mbedtls, NULL), 0);
    ek_template(&k->pub, TPM2_ALG_ECC, name_alg, aes_bits, curve);
    /* A TPM pads both coordinates to the size of the field. */
    q->x.size = (uint16_t)coordinate_len;
    q->y.size = (uint16_t)coordinate_len;
    assert_int_equal(mbedtls_mpi_write_binary(&ec->Q.X, q->x.buffer, coordinate_len), 0);
    assert_int_equal(mbedtls_mpi_write_binary(&ec->Q.Y, q->y.buffer, coordinate_len), 0);
}

static int fixture_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    make_rsa_ek(&f->rsa[0]);
    make_rsa_ek(&f->rsa[1]);
    make_ecc_ek(&f->p256[0], MBEDTLS_ECP_DP_SECP256R1, TPM2_ECC_NIST_P256, TPM2_ALG_SHA256, 128,
                32);
    make_ecc_ek(&f->p256[1], MBEDTLS_ECP_DP_SECP256R1, TPM2_ECC_NIST_P256, TPM2_ALG_SHA256, 128,
                32);
    make_ecc_ek(&f->p384, MBEDTLS_ECP_DP_SECP384R1, TPM2_ECC_NIST_P384, TPM2_ALG_SHA384, 256, 48);
    name_from_hex(P256_NAME, &f->name);
    name_from_hex("000c4c21d9988bf3374eead821376c6f3c7dd026d14a4a9cd7423ca2f8d5d366b717dbc4d8c33fd02"
                  "bf562a1912a7f3b89ab",
                  &f->name384);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture_t *f = *state;

    mbedtls_pk_free(&f->rsa[0].pk);
    mbedtls_pk_free(&f->rsa[1].pk);
    mbedtls_pk_free(&f->p256[0].pk);
    mbedtls_pk_free(&f->p256[1].pk);
    mbedtls_pk_free(&f->p384.pk);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ round trips */

static void round_trip(const ek_key_t *k, const TPM2B_NAME *name, size_t secret_len)
{
    uint8_t secret[64], out[64];
    TPM2B_ENCRYPTED_SECRET encrypted, encrypted2;
    TPM2B_ID_OBJECT blob, blob2;
    size_t out_len = 0;

    assert_int_equal(tether_random_bytes(secret, secret_len), TETHER_OK);
    assert_int_equal(
        tether_credential_make(&k->pub, name, secret, secret_len, &blob, &encrypted), TETHER_OK);
    memset(out, 0, sizeof(out));
    assert_int_equal(tether_credential_activate_soft(&k->pk, &k->pub, name, &blob, &encrypted, out,
                                                     sizeof(out), &out_len),
                     TETHER_OK);
    assert_int_equal(out_len, secret_len);
    assert_memory_equal(out, secret, secret_len);

    /* A fresh seed every time. */
    assert_int_equal(
        tether_credential_make(&k->pub, name, secret, secret_len, &blob2, &encrypted2), TETHER_OK);
    assert_int_equal(blob.size, blob2.size);
    assert_memory_not_equal(blob.credential, blob2.credential, blob.size);
    assert_memory_not_equal(encrypted.secret, encrypted2.secret, encrypted.size);
}

static void round_trip_rsa(void **state)
{
    fixture_t *f = *state;

    round_trip(&f->rsa[0], &f->name, 32);
    round_trip(&f->rsa[0], &f->name, 1);
    round_trip(&f->rsa[0], &f->name384, 17);
}

static void round_trip_p256(void **state)
{
    fixture_t *f = *state;

    round_trip(&f->p256[0], &f->name, 32);
    round_trip(&f->p256[0], &f->name, 1);
    round_trip(&f->p256[1], &f->name384, 20);
}

static void round_trip_p384(void **state)
{
    fixture_t *f = *state;

    round_trip(&f->p384, &f->name, 48);
    round_trip(&f->p384, &f->name384, 32);
    round_trip(&f->p384, &f->name, 1);
}

/* The blob layout of TPM2 Part 2, TPMS_ID_OBJECT. */
static void blob_layout(void **state)
{
    fixture_t *f = *state;
    static const uint8_t secret[20] = {1, 2, 3};
    TPM2B_ENCRYPTED_SECRET encrypted;
    TPM2B_ID_OBJECT blob;

    assert_int_equal(tether_credential_make(&f->p384.pub, &f->name, secret, sizeof(secret), &blob,
                                            &encrypted),
                     TETHER_OK);
    assert_int_equal(blob.size, 2 + 48 + 2 + sizeof(secret));
    assert_int_equal(blob.credential[0], 0x00);
    assert_int_equal(blob.credential[1], 48);
    /* TPMS_ECC_POINT with both coordinates padded to 48 bytes. */
    assert_int_equal(encrypted.size, 2 + 48 + 2 + 48);
    assert_int_equal(encrypted.secret[0], 0x00);
    assert_int_equal(encrypted.secret[1], 48);
    assert_int_equal(encrypted.secret[50], 0x00);
    assert_int_equal(encrypted.secret[51], 48);

    assert_int_equal(tether_credential_make(&f->rsa[0].pub, &f->name, secret, sizeof(secret),
                                            &blob, &encrypted),
                     TETHER_OK);
    assert_int_equal(blob.size, 2 + 32 + 2 + sizeof(secret));
    assert_int_equal(encrypted.size, 256);
}

/* ---------------------------------------------------------------- tamper */

static void expect_refused(const ek_key_t *k, const TPM2B_NAME *name, const TPM2B_ID_OBJECT *blob,
                           const TPM2B_ENCRYPTED_SECRET *encrypted, tether_status_t expected)
{
    uint8_t out[64];
    size_t out_len = 99;
    tether_status_t rc;

    memset(out, 0x55, sizeof(out));
    rc = tether_credential_activate_soft(&k->pk, &k->pub, name, blob, encrypted, out, sizeof(out),
                                         &out_len);
    assert_int_not_equal(rc, TETHER_OK);
    if (expected != TETHER_OK) /* TETHER_OK: any error will do */
        assert_int_equal(rc, expected);
    assert_int_equal(out_len, 0);
    assert_true(all_zero(out, sizeof(out)));
}

static void tamper(const ek_key_t *k, const TPM2B_NAME *name, size_t point_len)
{
    static const uint8_t secret[24] = "tamper with any byte....";
    TPM2B_ENCRYPTED_SECRET encrypted, bad_secret;
    TPM2B_ID_OBJECT blob, bad_blob;
    TPM2B_NAME bad_name;

    assert_int_equal(
        tether_credential_make(&k->pub, name, secret, sizeof(secret), &blob, &encrypted),
        TETHER_OK);

    /* Blob: bytes 0-1 are the HMAC's size (a parse or a verify error),
     * everything after is covered by the HMAC. */
    for (size_t i = 0; i < blob.size; i++) {
        bad_blob = blob;
        bad_blob.credential[i] ^= 0x01;
        expect_refused(k, name, &bad_blob, &encrypted, i < 2 ? TETHER_OK : TETHER_ERR_VERIFY);
    }
    bad_blob = blob;
    bad_blob.size--;
    expect_refused(k, name, &bad_blob, &encrypted, TETHER_ERR_VERIFY);
    bad_blob = blob;
    bad_blob.size++;
    expect_refused(k, name, &bad_blob, &encrypted, TETHER_ERR_VERIFY);

    /* Encrypted secret: RSA ciphertext bytes fail OAEP; for ECC the two
     * size fields are a parse error and a changed coordinate is off the
     * curve. */
    for (size_t i = 0; i < encrypted.size; i++) {
        bool size_field = point_len != 0 && (i < 2 || i == 2 + point_len || i == 3 + point_len);

        bad_secret = encrypted;
        bad_secret.secret[i] ^= 0x80;
        expect_refused(k, name, &blob, &bad_secret, size_field ? TETHER_OK : TETHER_ERR_VERIFY);
    }
    bad_secret = encrypted;
    bad_secret.size--;
    expect_refused(k, name, &blob, &bad_secret, TETHER_ERR_PARSE);

    /* Name: the algorithm is checked first; the digest is bound by the HMAC
     * and by symKey. */
    for (size_t i = 0; i < name->size; i++) {
        bad_name = *name;
        bad_name.name[i] ^= 0x01;
        expect_refused(k, &bad_name, &blob, &encrypted, i < 2 ? TETHER_OK : TETHER_ERR_VERIFY);
    }
}

static void tamper_rsa(void **state)
{
    fixture_t *f = *state;

    tamper(&f->rsa[0], &f->name, 0);
}

static void tamper_p256(void **state)
{
    fixture_t *f = *state;

    tamper(&f->p256[0], &f->name, 32);
}

static void tamper_p384(void **state)
{
    fixture_t *f = *state;

    tamper(&f->p384, &f->name384, 48);
}

/* A blob for one EK is useless with another; a key that is not the EK's is
 * refused before anything is decrypted. */
static void wrong_ek(void **state)
{
    fixture_t *f = *state;
    static const uint8_t secret[16] = "for EK number 0";
    TPM2B_ENCRYPTED_SECRET encrypted;
    TPM2B_ID_OBJECT blob;
    uint8_t out[64];
    size_t out_len;

    for (int type = 0; type < 2; type++) {
        ek_key_t *ek = type == 0 ? f->rsa : f->p256;

        assert_int_equal(tether_credential_make(&ek[0].pub, &f->name, secret, sizeof(secret),
                                                &blob, &encrypted),
                         TETHER_OK);
        /* The other EK's own key and public area: the seed does not come back. */
        expect_refused(&ek[1], &f->name, &blob, &encrypted, TETHER_ERR_VERIFY);
        /* A private key that is not the public area's. */
        assert_int_equal(tether_credential_activate_soft(&ek[1].pk, &ek[0].pub, &f->name, &blob,
                                                         &encrypted, out, sizeof(out), &out_len),
                         TETHER_ERR_EK_MISMATCH);
    }
    /* Key type differs from the public area's type. */
    assert_int_equal(tether_credential_activate_soft(&f->p256[0].pk, &f->rsa[0].pub, &f->name,
                                                     &blob, &encrypted, out, sizeof(out),
                                                     &out_len),
                     TETHER_ERR_EK_MISMATCH);
    assert_int_equal(tether_credential_activate_soft(&f->rsa[0].pk, &f->p256[0].pub, &f->name,
                                                     &blob, &encrypted, out, sizeof(out),
                                                     &out_len),
                     TETHER_ERR_EK_MISMATCH);
}

static void activate_bad_input(void **state)
{
    fixture_t *f = *state;
    static const uint8_t secret[32] = "thirty-two bytes of secret data";
    TPM2B_ENCRYPTED_SECRET encrypted;
    TPM2B_ID_OBJECT blob;
    uint8_t out[32];
    size_t out_len = 7;
    const ek_key_t *k = &f->p256[0];

    assert_int_equal(
        tether_credential_make(&k->pub, &f->name, secret, sizeof(secret), &blob, &encrypted),
        TETHER_OK);
    memset(out, 0x55, sizeof(out));
    assert_int_equal(tether_credential_activate_soft(&k->pk, &k->pub, &f->name, &blob, &encrypted,
                                                     out, sizeof(out) - 1, &out_len),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(out_len, 0);
    assert_true(all_zero(out, sizeof(out) - 1));
    assert_int_equal(tether_credential_activate_soft(&k->pk, &k->pub, &f->name, &blob, &encrypted,
                                                     out, sizeof(out), NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_activate_soft(NULL, &k->pub, &f->name, &blob, &encrypted,
                                                     out, sizeof(out), &out_len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_activate_soft(&k->pk, NULL, &f->name, &blob, &encrypted,
                                                     out, sizeof(out), &out_len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_activate_soft(&k->pk, &k->pub, NULL, &blob, &encrypted, out,
                                                     sizeof(out), &out_len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_activate_soft(&k->pk, &k->pub, &f->name, NULL, &encrypted,
                                                     out, sizeof(out), &out_len),
                     TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_activate_soft(&k->pk, &k->pub, &f->name, &blob, NULL, out,
                                                     sizeof(out), &out_len),
                     TETHER_ERR_INVALID_ARGUMENT);
    blob.size = sizeof(blob.credential) + 1;
    expect_refused(k, &f->name, &blob, &encrypted, TETHER_ERR_PARSE);
    blob.size = 1;
    expect_refused(k, &f->name, &blob, &encrypted, TETHER_ERR_PARSE);
    encrypted.size = sizeof(encrypted.secret) + 1;
    expect_refused(k, &f->name, &blob, &encrypted, TETHER_ERR_PARSE);
}

/* ------------------------------------------------------------- bad input */

static void expect_make(const TPM2B_PUBLIC *ek, const TPM2B_NAME *name, const uint8_t *secret,
                        size_t secret_len, tether_status_t expected)
{
    TPM2B_ENCRYPTED_SECRET encrypted;
    TPM2B_ID_OBJECT blob;

    memset(&blob, 0xaa, sizeof(blob));
    memset(&encrypted, 0xaa, sizeof(encrypted));
    assert_int_equal(tether_credential_make(ek, name, secret, secret_len, &blob, &encrypted),
                     expected);
    if (expected != TETHER_OK) { /* outputs zeroed on error */
        assert_true(all_zero(&blob, sizeof(blob)));
        assert_true(all_zero(&encrypted, sizeof(encrypted)));
    }
}

static void make_bad_ek(void **state)
{
    fixture_t *f = *state;
    static const uint8_t secret[32] = {42};
    TPM2B_PUBLIC ek;

    /* The reference: these are fine. */
    expect_make(&f->rsa[0].pub, &f->name, secret, 32, TETHER_OK);
    expect_make(&f->p256[0].pub, &f->name, secret, 32, TETHER_OK);
    expect_make(&f->p384.pub, &f->name, secret, 32, TETHER_OK);
    expect_make(NULL, &f->name, secret, 32, TETHER_ERR_INVALID_ARGUMENT);

#define EK_CASE(base, change, expected)                  \
    do {                                                 \
        ek = (base);                                     \
        change;                                          \
        expect_make(&ek, &f->name, secret, 32, expected); \
    } while (0)

    /* Type, nameAlg. */
    EK_CASE(f->p256[0].pub, ek.publicArea.type = TPM2_ALG_KEYEDHASH, TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->p256[0].pub, ek.publicArea.type = TPM2_ALG_SYMCIPHER, TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->p256[0].pub, ek.publicArea.nameAlg = TPM2_ALG_SHA1, TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->p256[0].pub, ek.publicArea.nameAlg = TPM2_ALG_SHA512, TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->rsa[0].pub, ek.publicArea.nameAlg = TPM2_ALG_NULL, TETHER_ERR_UNSUPPORTED);
    /* Attributes: a restricted decryption key only. */
    EK_CASE(f->p256[0].pub, ek.publicArea.objectAttributes &= ~TPMA_OBJECT_RESTRICTED,
            TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->rsa[0].pub, ek.publicArea.objectAttributes &= ~TPMA_OBJECT_DECRYPT,
            TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->rsa[0].pub, ek.publicArea.objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT,
            TETHER_ERR_INVALID_ARGUMENT);
    /* Symmetric definition. */
    EK_CASE(f->p256[0].pub,
            ek.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->p256[0].pub,
            ek.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_CAMELLIA,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->rsa[0].pub, ek.publicArea.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CBC,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->rsa[0].pub, ek.publicArea.parameters.rsaDetail.symmetric.keyBits.aes = 129,
            TETHER_ERR_UNSUPPORTED);
    /* RSA parameters. */
    EK_CASE(f->rsa[0].pub, ek.publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_OAEP,
            TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->rsa[0].pub, ek.publicArea.parameters.rsaDetail.keyBits = 3072,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->rsa[0].pub, ek.publicArea.parameters.rsaDetail.exponent = 3,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->rsa[0].pub, ek.publicArea.unique.rsa.size = 255, TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->rsa[0].pub, ek.publicArea.unique.rsa.size = 0, TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->rsa[0].pub, memset(ek.publicArea.unique.rsa.buffer, 0, 256),
            TETHER_ERR_INVALID_ARGUMENT);
    /* Exponent written out as 65537 is the same key. */
    EK_CASE(f->rsa[0].pub, ek.publicArea.parameters.rsaDetail.exponent = 65537, TETHER_OK);
    /* ECC parameters. */
    EK_CASE(f->p256[0].pub, ek.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P521,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->p256[0].pub, ek.publicArea.parameters.eccDetail.curveID = TPM2_ECC_BN_P256,
            TETHER_ERR_UNSUPPORTED);
    EK_CASE(f->p256[0].pub, ek.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_KDF2,
            TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->p256[0].pub, ek.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDH,
            TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->p256[0].pub, ek.publicArea.unique.ecc.x.size = 0, TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->p256[0].pub, ek.publicArea.unique.ecc.y.size = 33, TETHER_ERR_INVALID_ARGUMENT);
    EK_CASE(f->p256[0].pub, ek.publicArea.unique.ecc.y.buffer[31] ^= 1,
            TETHER_ERR_INVALID_ARGUMENT); /* not on the curve */
    /* A P-256 point declared as P-384. */
    EK_CASE(f->p256[0].pub, ek.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P384,
            TETHER_ERR_INVALID_ARGUMENT);
#undef EK_CASE
}

static void make_bad_name_and_secret(void **state)
{
    fixture_t *f = *state;
    static const uint8_t secret[49] = {42};
    TPM2B_NAME name;

    expect_make(&f->p256[0].pub, NULL, secret, 32, TETHER_ERR_INVALID_ARGUMENT);
    name = f->name;
    name.size = 0;
    expect_make(&f->p256[0].pub, &name, secret, 32, TETHER_ERR_INVALID_ARGUMENT);
    name = f->name;
    name.size = 33; /* SHA-256 name one byte short */
    expect_make(&f->p256[0].pub, &name, secret, 32, TETHER_ERR_INVALID_ARGUMENT);
    name = f->name;
    name.size = sizeof(name.name) + 1;
    expect_make(&f->p256[0].pub, &name, secret, 32, TETHER_ERR_INVALID_ARGUMENT);
    name = f->name;
    name.name[1] = 0x04; /* SHA-1 */
    name.size = 22;
    expect_make(&f->p256[0].pub, &name, secret, 32, TETHER_ERR_UNSUPPORTED);
    name = f->name;
    name.name[0] = 0x40; /* a handle, not an object name */
    name.size = 4;
    expect_make(&f->p256[0].pub, &name, secret, 32, TETHER_ERR_UNSUPPORTED);
    /* A SHA-512 name is fine. */
    memset(&name, 0, sizeof(name));
    name.size = 66;
    name.name[1] = 0x0d;
    expect_make(&f->p256[0].pub, &name, secret, 32, TETHER_OK);

    /* Secret: 1 to digest size of the EK nameAlg (TPM2 Part 3, 12.6). */
    expect_make(&f->p256[0].pub, &f->name, NULL, 32, TETHER_ERR_INVALID_ARGUMENT);
    expect_make(&f->p256[0].pub, &f->name, secret, 0, TETHER_ERR_INVALID_ARGUMENT);
    expect_make(&f->p256[0].pub, &f->name, secret, 33, TETHER_ERR_INVALID_ARGUMENT);
    expect_make(&f->rsa[0].pub, &f->name, secret, 33, TETHER_ERR_INVALID_ARGUMENT);
    expect_make(&f->p384.pub, &f->name, secret, 48, TETHER_OK);
    expect_make(&f->p384.pub, &f->name, secret, 49, TETHER_ERR_INVALID_ARGUMENT);
}

static void make_bad_outputs_and_rng(void **state)
{
    fixture_t *f = *state;
    static const uint8_t secret[32] = {42};
    TPM2B_ENCRYPTED_SECRET encrypted;
    TPM2B_ID_OBJECT blob;

    assert_int_equal(
        tether_credential_make(&f->p256[0].pub, &f->name, secret, 32, NULL, &encrypted),
        TETHER_ERR_INVALID_ARGUMENT);
    assert_int_equal(tether_credential_make(&f->p256[0].pub, &f->name, secret, 32, &blob, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
    /* A failing generator is a crypto error, with nothing left behind. */
    for (int i = 0; i < 2; i++) {
        const TPM2B_PUBLIC *ek = i == 0 ? &f->rsa[0].pub : &f->p256[0].pub;

        memset(&blob, 0xaa, sizeof(blob));
        memset(&encrypted, 0xaa, sizeof(encrypted));
        assert_int_equal(tether_credential_make_rng(ek, &f->name, secret, 32, &blob, &encrypted,
                                                    failing_rng, NULL),
                         TETHER_ERR_CRYPTO);
        assert_true(all_zero(&blob, sizeof(blob)));
        assert_true(all_zero(&encrypted, sizeof(encrypted)));
    }
    assert_int_equal(tether_credential_make_rng(&f->p256[0].pub, &f->name, secret, 32, &blob,
                                                &encrypted, NULL, NULL),
                     TETHER_ERR_INVALID_ARGUMENT);
}

/* An ephemeral scalar out of range ([1, n-1]) is drawn again. */
static void make_redraws_bad_scalar(void **state)
{
    uint8_t randomness[64], secret[32];
    size_t secret_len = unhex(SECRET_32, secret, sizeof(secret));
    TPM2B_ENCRYPTED_SECRET encrypted;
    TPM2B_ID_OBJECT blob;
    TPM2B_PUBLIC ek;
    TPM2B_NAME name;
    fixed_rng_t rng = {randomness, sizeof(randomness), 0};

    (void)state;
    memset(randomness, 0xff, 32); /* >= n for P-256 */
    unhex(P256_EPHEMERAL, randomness + 32, 32);
    public_from_hex(P256_EK, &ek);
    name_from_hex(P256_NAME, &name);
    assert_int_equal(tether_credential_make_rng(&ek, &name, secret, secret_len, &blob, &encrypted,
                                                fixed_rng, &rng),
                     TETHER_OK);
    assert_int_equal(rng.used, rng.len);
    assert_hex_equal(encrypted.secret, encrypted.size, P256_CIPHERTEXT);
    assert_hex_equal(blob.credential, blob.size, make_vectors[0].credential_blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kdfa_known_answers),
        cmocka_unit_test(kdfe_known_answers),
        cmocka_unit_test(kdf_bad_input),
        cmocka_unit_test(kdfa_bits_are_bound),
        cmocka_unit_test(make_known_answers),
        cmocka_unit_test(make_redraws_bad_scalar),
        cmocka_unit_test(round_trip_rsa),
        cmocka_unit_test(round_trip_p256),
        cmocka_unit_test(round_trip_p384),
        cmocka_unit_test(blob_layout),
        cmocka_unit_test(tamper_rsa),
        cmocka_unit_test(tamper_p256),
        cmocka_unit_test(tamper_p384),
        cmocka_unit_test(wrong_ek),
        cmocka_unit_test(activate_bad_input),
        cmocka_unit_test(make_bad_ek),
        cmocka_unit_test(make_bad_name_and_secret),
        cmocka_unit_test(make_bad_outputs_and_rng),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown);
}
