/* The policy document's strict reader and its writer: canonical documents
 * round-trip byte for byte, and every refusal is named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "tether/fleet_policy.h"

#define HEAD "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o*\",\"llama3:8b\"],"
#define TOKENS HEAD "\"cost_ceiling\":12.5,\"lifetime_seconds\":300}"
#define FULL                                                                                  \
    TOKENS ",\"thresholds\":[{\"kind\":\"requests_per_minute\",\"value\":20,"                 \
           "\"action\":\"quarantine\"},{\"kind\":\"spend_per_day\",\"value\":0.75,"           \
           "\"action\":\"alert\"},{\"kind\":\"source_networks\",\"value\":1,"                 \
           "\"action\":\"quarantine\"}],\"sources\":[\"10.0.0.0/8\",\"192.168.1.0/24\","      \
           "\"fd00::/8\"]}"
#define MINIMAL TOKENS ",\"thresholds\":[],\"sources\":[]}"
/* The measured_boot section (digests D1 < D2 < D3). */
#define D1 "\"1111111111111111111111111111111111111111111111111111111111111111\""
#define D2 "\"2222222222222222222222222222222222222222222222222222222222222222\""
#define D3 "\"3333333333333333333333333333333333333333333333333333333333333333\""
#define MB TOKENS ",\"thresholds\":[],\"sources\":[],\"measured_boot\":{"
#define MB_PCRS MB "\"pcrs\":[0,4,7,13],\"exact\":[]"
#define MB_LISTS MB_PCRS ",\"secure_boot\":false,\"variables\":{},"
#define MB_FULL                                                                               \
    MB "\"pcrs\":[0,4,7,13],\"exact\":[{\"pcr\":0,\"value\":" D1 "},{\"pcr\":13,\"value\":" D2  \
       "}],\"secure_boot\":true,\"variables\":{\"PK\":" D1 ",\"dbx\":" D2                       \
       "},\"applications\":[" D1 "," D2 "],\"ipl\":[" D3 "],\"files\":[{\"name\":\"agent\","     \
       "\"digests\":[" D1 "," D2 "]},{\"name\":\"app.conf\",\"digests\":[" D3 "]}]}}"
#define MB_MINIMAL MB "\"pcrs\":[4],\"exact\":[],\"secure_boot\":false,\"variables\":{}," \
                      "\"applications\":[],\"ipl\":[],\"files\":[]}}"

static tether_status_t parse(const char *text, tether_policy_document_t *doc, char *why,
                             size_t why_size)
{
    return tether_policy_document_parse((const uint8_t *)text, strlen(text), doc, why, why_size);
}

/* Parses text, writes it back and expects the same bytes. */
static void round_trip(const char *text, tether_policy_document_t *doc)
{
    char why[256], again[TETHER_POLICY_DOCUMENT_MAX + 1];
    size_t len = 1;

    assert_int_equal(parse(text, doc, why, sizeof(why)), TETHER_OK);
    assert_string_equal(why, "");
    assert_int_equal(tether_policy_document_write(doc, again, sizeof(again), &len), TETHER_OK);
    assert_int_equal(len, strlen(text));
    assert_string_equal(again, text);
}

static void full_document_read(void **state)
{
    tether_policy_document_t doc;
    const tether_policy_threshold_t *t;

    (void)state;
    round_trip(FULL, &doc);
    assert_int_equal(doc.model_count, 2);
    assert_string_equal(doc.models[0], "gpt-4o*");
    assert_string_equal(doc.models[1], "llama3:8b");
    assert_string_equal(doc.cost_ceiling, "12.5");
    assert_int_equal(doc.lifetime_seconds, 300);
    t = &doc.thresholds[TETHER_THRESHOLD_REQUESTS_PER_MINUTE];
    assert_true(t->set);
    assert_int_equal(t->micros, 20000000);
    assert_int_equal(t->action, TETHER_POLICY_ACTION_QUARANTINE);
    t = &doc.thresholds[TETHER_THRESHOLD_SPEND_PER_DAY];
    assert_true(t->set);
    assert_string_equal(t->value, "0.75");
    assert_int_equal(t->micros, 750000);
    assert_int_equal(t->action, TETHER_POLICY_ACTION_ALERT);
    assert_false(doc.thresholds[TETHER_THRESHOLD_TOKENS_PER_MINUTE].set);
    assert_int_equal(doc.source_count, 3);
    assert_int_equal(doc.sources[0].family, AF_INET);
    assert_int_equal(doc.sources[0].prefix, 8);
    assert_int_equal(doc.sources[2].family, AF_INET6);
}

static void minimal_document_read(void **state)
{
    tether_policy_document_t doc;

    (void)state;
    round_trip(MINIMAL, &doc);
    for (unsigned k = 0; k < TETHER_THRESHOLD_KIND_COUNT; k++)
        assert_false(doc.thresholds[k].set);
    assert_int_equal(doc.source_count, 0);
}

/* Each refusal with the words its sentence must carry. */
static const struct {
    const char *text;
    tether_status_t rc;
    const char *why;
} refusals[] = {
    {"", TETHER_ERR_PARSE, "canonical form of version 1"},
    {"{\"version\":2,\"tokens\":{}}", TETHER_ERR_PARSE, "canonical form of version 1"},
    {"{ \"version\":1}", TETHER_ERR_PARSE, "canonical form"},
    {"{\"version\":1,\"thresholds\":[]}", TETHER_ERR_PARSE, "expected \"tokens\""},
    {"{\"version\":1,\"tokens\":{\"models\":[],", TETHER_ERR_PARSE, "a model is not a string"},
    {HEAD "\"cost_ceiling\":1,\"lifetime_seconds\":300}}", TETHER_ERR_PARSE,
     "expected ,\"thresholds\":["},
    {"{\"version\":1,\"tokens\":{\"models\":[\"b\",\"a\"]", TETHER_ERR_PARSE, "ascending"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\",\"a\"]", TETHER_ERR_PARSE, "ascending"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"\"]", TETHER_ERR_PARSE, "a model is empty"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a b\"]", TETHER_ERR_PARSE, "a character it may not"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\\u0041\"]", TETHER_ERR_PARSE,
     "a character it may not"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"" /* 129 bytes */
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]",
     TETHER_ERR_PARSE, "longer than 128 bytes"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a,b\"]", TETHER_ERR_PARSE,
     "a character it may not"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":01,", TETHER_ERR_PARSE,
     "leading zero"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":-1,", TETHER_ERR_PARSE,
     "not a non-negative number"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":1.50,", TETHER_ERR_PARSE,
     "ends in 0"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":1.,", TETHER_ERR_PARSE,
     "empty or ends in 0"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":1.1234567,",
     TETHER_ERR_PARSE, "more than 6 decimals"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":1234567890123,",
     TETHER_ERR_PARSE, "more than 12 digits"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":0,\"lifetime_seconds\":29}",
     TETHER_ERR_PARSE, "outside 30..3600"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":0,"
     "\"lifetime_seconds\":3601}",
     TETHER_ERR_PARSE, "outside 30..3600"},
    {"{\"version\":1,\"tokens\":{\"models\":[\"a\"],\"cost_ceiling\":0,"
     "\"lifetime_seconds\":60.5}",
     TETHER_ERR_PARSE, "lifetime_seconds is a whole number"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"requests_per_hour\",\"value\":1,\"action\":\"alert\"}]",
     TETHER_ERR_PARSE, "unknown threshold kind requests_per_hour"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"spend_per_day\",\"value\":1,\"action\":\"alert\"},"
            "{\"kind\":\"spend_per_hour\",\"value\":1,\"action\":\"alert\"}]",
     TETHER_ERR_PARSE, "threshold spend_per_hour is repeated or out of order"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"spend_per_day\",\"value\":1,\"action\":\"alert\"},"
            "{\"kind\":\"spend_per_day\",\"value\":2,\"action\":\"alert\"}]",
     TETHER_ERR_PARSE, "repeated or out of order"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"requests_per_minute\",\"value\":1.5,",
     TETHER_ERR_PARSE, "value is a whole number"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"requests_per_minute\",\"value\":0,"
            "\"action\":\"alert\"}]",
     TETHER_ERR_PARSE, "threshold requests_per_minute is 0"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"requests_per_minute\",\"value\":5,"
            "\"action\":\"block\"}]",
     TETHER_ERR_PARSE, "\"alert\" or \"quarantine\""},
    {TOKENS ",\"thresholds\":[{\"value\":5}]", TETHER_ERR_PARSE, "expected {\"kind\":"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.0\"]}", TETHER_ERR_PARSE, "no /prefix"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.1/8\"]}", TETHER_ERR_PARSE,
     "host bits set"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.0/33\"]}", TETHER_ERR_PARSE,
     "prefix above 32"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.0/08\"]}", TETHER_ERR_PARSE,
     "not a plain number"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.0/\"]}", TETHER_ERR_PARSE,
     "not a plain number"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"010.0.0.0/8\"]}", TETHER_ERR_PARSE,
     "canonical form"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"fd00:0::/8\"]}", TETHER_ERR_PARSE,
     "canonical form"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"FD00::/8\"]}", TETHER_ERR_PARSE,
     "a character it may not"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"fd00::/129\"]}", TETHER_ERR_PARSE,
     "prefix above 128"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"fd00::/8\",\"10.0.0.0/8\"]}", TETHER_ERR_PARSE,
     "ascending"},
    {TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.0/8\",\"10.0.0.0/8\"]}", TETHER_ERR_PARSE,
     "ascending"},
    {TOKENS ",\"thresholds\":[{\"kind\":\"source_networks\",\"value\":1,"
            "\"action\":\"alert\"}],\"sources\":[]}",
     TETHER_ERR_PARSE, "needs at least one source"},
    {MINIMAL " ", TETHER_ERR_PARSE, "bytes after the document"},
    {TOKENS ",\"thresholds\":[],\"sources\":[],\"attestation\":{}}", TETHER_ERR_PARSE,
     "a section this fleetd does not know"},
    {MB "}}", TETHER_ERR_PARSE, "expected \"pcrs\":["},
    {MB "\"pcrs\":[],", TETHER_ERR_PARSE, "a PCR is not a non-negative number"},
    {MB "\"pcrs\":[24]", TETHER_ERR_PARSE, "PCR 24 is not one of 0 to 23"},
    {MB "\"pcrs\":[07]", TETHER_ERR_PARSE, "leading zero"},
    {MB "\"pcrs\":[7,4]", TETHER_ERR_PARSE, "pcrs are not in strictly ascending order"},
    {MB "\"pcrs\":[4,4]", TETHER_ERR_PARSE, "pcrs are not in strictly ascending order"},
    {MB "\"pcrs\":[0,4],\"exact\":[{\"pcr\":4,\"value\":" D1 "},{\"pcr\":0,", TETHER_ERR_PARSE,
     "exact PCRs are not in strictly ascending order"},
    {MB "\"pcrs\":[0],\"exact\":[{\"pcr\":0,\"value\":\"11\"}", TETHER_ERR_PARSE,
     "not a SHA-256 digest"},
    {MB "\"pcrs\":[0],\"exact\":[{\"pcr\":0,\"value\":"
        "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
     TETHER_ERR_PARSE, "a character it may not"},
    {MB "\"pcrs\":[0],\"exact\":[{\"pcr\":0,\"value\":"
        "\"11111111111111111111111111111111111111111111111111111111111111111\"}",
     TETHER_ERR_PARSE, "longer than 64 bytes"},
    {MB_PCRS ",\"secure_boot\":1", TETHER_ERR_PARSE, "secure_boot is true or false"},
    {MB_PCRS ",\"secure_boot\":false,\"variables\":{\"KEK\":" D1 ",\"PK\":", TETHER_ERR_PARSE,
     "expected }"},
    {MB_PCRS ",\"secure_boot\":false,\"variables\":{\"PK\":" D1 ",\"PK\":", TETHER_ERR_PARSE,
     "expected }"},
    {MB_PCRS ",\"secure_boot\":false,\"variables\":{\"pk\":", TETHER_ERR_PARSE, "expected }"},
    {MB_LISTS "\"applications\":[" D2 "," D1 "]", TETHER_ERR_PARSE,
     "applications are not in strictly ascending order"},
    {MB_LISTS "\"applications\":[" D1 "," D1 "]", TETHER_ERR_PARSE,
     "applications are not in strictly ascending order"},
    {MB_LISTS "\"applications\":[],\"ipl\":[" D3 "," D2 "]", TETHER_ERR_PARSE,
     "ipl are not in strictly ascending order"},
    {MB_LISTS "\"applications\":[],\"ipl\":[],\"files\":[{\"name\":\"b\",\"digests\":[" D1
              "]},{\"name\":\"a\",",
     TETHER_ERR_PARSE, "files are not in strictly ascending order of name"},
    {MB_LISTS "\"applications\":[],\"ipl\":[],\"files\":[{\"name\":\"a b\"", TETHER_ERR_PARSE,
     "a character it may not"},
    {MB_LISTS "\"applications\":[],\"ipl\":[],\"files\":[{\"name\":\"a\",\"digests\":[]}]",
     TETHER_ERR_PARSE, "file a allows no digest"},
    {MB_LISTS "\"applications\":[],\"ipl\":[],\"files\":[{\"name\":\"a\",\"digests\":[" D2 ","
              D1 "]}]",
     TETHER_ERR_PARSE, "a file's digests are not in strictly ascending order"},
    {MB "\"pcrs\":[4],\"exact\":[{\"pcr\":0,\"value\":" D1 "}],\"secure_boot\":false,"
        "\"variables\":{},\"applications\":[],\"ipl\":[],\"files\":[]}}",
     TETHER_ERR_PARSE, "a pinned PCR is not among the PCRs the quote covers"},
    {MB "\"pcrs\":[4],\"exact\":[],\"secure_boot\":true,\"variables\":{},\"applications\":[],"
        "\"ipl\":[],\"files\":[]}}",
     TETHER_ERR_PARSE, "need PCR 7 in pcr_mask"},
    {MB "\"pcrs\":[4],\"exact\":[],\"secure_boot\":false,\"variables\":{\"db\":" D1 "},"
        "\"applications\":[],\"ipl\":[],\"files\":[]}}",
     TETHER_ERR_PARSE, "need PCR 7 in pcr_mask"},
    {MB "\"pcrs\":[4],\"exact\":[],\"secure_boot\":false,\"variables\":{},\"applications\":[],"
        "\"ipl\":[],\"files\":[{\"name\":\"a\",\"digests\":[" D1 "]}]}}",
     TETHER_ERR_PARSE, "tether's files need PCR 13 in pcr_mask"},
    {MB "\"pcrs\":[4],\"exact\":[],\"secure_boot\":false,\"variables\":{},\"applications\":[],"
        "\"ipl\":[],\"files\":[]},\"attestation\":{}}",
     TETHER_ERR_PARSE, "a section this fleetd does not know"},
    {MB "\"pcrs\":[4],\"exact\":[],\"secure_boot\":false,\"variables\":{},\"applications\":[],"
        "\"ipl\":[],\"files\":[],\"extra\":[]}}",
     TETHER_ERR_PARSE, "expected }"},
    {TOKENS ",\"thresholds\":[],\"sources\":[]", TETHER_ERR_PARSE, "expected }"},
};

static void refusals_named(void **state)
{
    tether_policy_document_t doc;
    static const tether_policy_document_t zero;
    char why[256];

    (void)state;
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        tether_status_t rc = parse(refusals[i].text, &doc, why, sizeof(why));

        if (rc != refusals[i].rc || strstr(why, refusals[i].why) == NULL)
            fail_msg("case %zu (%s): rc %d, why \"%s\"", i, refusals[i].text, rc, why);
        assert_memory_equal(&doc, &zero, sizeof(doc));
    }
}

static void bounds_refused_as_too_large(void **state)
{
    char text[TETHER_POLICY_DOCUMENT_MAX + 64], why[256];
    tether_policy_document_t doc;
    size_t used;

    (void)state;
    /* 33 models */
    used = (size_t)snprintf(text, sizeof(text), "{\"version\":1,\"tokens\":{\"models\":[");
    for (int i = 0; i < TETHER_POLICY_MAX_MODELS + 1; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s\"m%02d\"", i ? "," : "", i);
    assert_int_equal(parse(text, &doc, why, sizeof(why)), TETHER_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than 32 models"));
    /* 33 sources */
    used = (size_t)snprintf(text, sizeof(text), "%s", TOKENS ",\"thresholds\":[],\"sources\":[");
    for (int i = 0; i < TETHER_POLICY_MAX_SOURCES + 1; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, "%s\"10.%d.0.0/16\"",
                                 i ? "," : "", i);
    snprintf(text + used, sizeof(text) - used, "]}");
    assert_int_equal(parse(text, &doc, why, sizeof(why)), TETHER_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than 32 sources"));
    /* more bytes than a document may have, even with a valid start */
    memset(text, ' ', sizeof(text));
    memcpy(text, MINIMAL, strlen(MINIMAL));
    assert_int_equal(tether_policy_document_parse((const uint8_t *)text,
                                                  TETHER_POLICY_DOCUMENT_MAX + 1, &doc, why,
                                                  sizeof(why)),
                     TETHER_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than 49152"));
}

static void writer_refuses_short_buffer(void **state)
{
    tether_policy_document_t doc;
    char out[64];
    size_t len = 7;

    (void)state;
    assert_int_equal(parse(FULL, &doc, NULL, 0), TETHER_OK);
    assert_int_equal(tether_policy_document_write(&doc, out, sizeof(out), &len),
                     TETHER_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
}

static void cidr_contains(void **state)
{
    tether_policy_document_t doc;
    uint8_t v4[4], v6[16];

    (void)state;
    assert_int_equal(parse(TOKENS ",\"thresholds\":[],\"sources\":[\"10.0.0.0/8\","
                                  "\"192.168.1.128/25\",\"fc00::/7\"]}",
                           &doc, NULL, 0),
                     TETHER_OK);
    assert_int_equal(inet_pton(AF_INET, "10.200.3.4", v4), 1);
    assert_true(tether_cidr_contains(&doc.sources[0], AF_INET, v4));
    assert_false(tether_cidr_contains(&doc.sources[1], AF_INET, v4));
    assert_int_equal(inet_pton(AF_INET, "192.168.1.200", v4), 1);
    assert_true(tether_cidr_contains(&doc.sources[1], AF_INET, v4));
    assert_int_equal(inet_pton(AF_INET, "192.168.1.127", v4), 1);
    assert_false(tether_cidr_contains(&doc.sources[1], AF_INET, v4));
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", v4), 1);
    assert_false(tether_cidr_contains(&doc.sources[0], AF_INET, v4));
    assert_int_equal(inet_pton(AF_INET6, "fdff::1", v6), 1);
    assert_true(tether_cidr_contains(&doc.sources[2], AF_INET6, v6));
    assert_false(tether_cidr_contains(&doc.sources[0], AF_INET6, v6));
    assert_int_equal(inet_pton(AF_INET6, "fe00::1", v6), 1);
    assert_false(tether_cidr_contains(&doc.sources[2], AF_INET6, v6));
}

static void measured_boot_read(void **state)
{
    tether_policy_document_t doc;
    const tether_measured_boot_reference_t *ref = &doc.measured_boot;

    (void)state;
    round_trip(MB_FULL, &doc);
    assert_true(doc.has_measured_boot);
    assert_int_equal(ref->pcr_mask, 0x2091);
    assert_int_equal(ref->exact_mask, 0x2001);
    assert_int_equal(ref->exact[0][0], 0x11);
    assert_int_equal(ref->exact[13][31], 0x22);
    assert_true(ref->require_secure_boot);
    assert_int_equal(ref->variable_mask,
                     1u << TETHER_MEASURED_BOOT_PK | 1u << TETHER_MEASURED_BOOT_DBX);
    assert_int_equal(ref->variables[TETHER_MEASURED_BOOT_DBX][0], 0x22);
    assert_int_equal(ref->application_count, 2);
    assert_int_equal(ref->ipl_count, 1);
    assert_int_equal(ref->ipl[0][5], 0x33);
    assert_int_equal(ref->file_count, 2);
    assert_string_equal(ref->files[0].name, "agent");
    assert_int_equal(ref->files[0].digest_count, 2);
    assert_string_equal(ref->files[1].name, "app.conf");
    round_trip(MB_MINIMAL, &doc);
    assert_true(doc.has_measured_boot);
    assert_int_equal(doc.measured_boot.pcr_mask, 0x10);
    round_trip(MINIMAL, &doc);
    assert_false(doc.has_measured_boot);
}

/* Fills list with count distinct ascending digests, from first. */
static void fill_digests(uint8_t (*list)[TETHER_MEASURED_BOOT_DIGEST_SIZE], size_t count,
                         uint8_t first)
{
    for (size_t i = 0; i < count; i++) {
        memset(list[i], 0xee, TETHER_MEASURED_BOOT_DIGEST_SIZE);
        list[i][0] = (uint8_t)(first + i / 256);
        list[i][1] = (uint8_t)(i % 256);
    }
}

/* Every list at its bound, every string at its longest: the writer's
 * document fits TETHER_POLICY_DOCUMENT_MAX and reads back the same; one
 * more IPL digest is refused as too large. */
static void largest_document_fits(void **state)
{
    static tether_policy_document_t doc, again;
    static char text[TETHER_POLICY_DOCUMENT_MAX + 1], bigger[TETHER_POLICY_DOCUMENT_MAX + 128];
    tether_measured_boot_reference_t *ref = &doc.measured_boot;
    char why[256];
    size_t len = 0;
    char *ipl_end;

    (void)state;
    memset(&doc, 0, sizeof(doc));
    for (size_t i = 0; i < TETHER_POLICY_MAX_MODELS; i++) {
        memset(doc.models[i], 'm', TETHER_POLICY_MODEL_MAX);
        snprintf(doc.models[i], 4, "%03zu", i);
        doc.models[i][3] = 'm';
    }
    doc.model_count = TETHER_POLICY_MAX_MODELS;
    snprintf(doc.cost_ceiling, sizeof(doc.cost_ceiling), "123456789012.123456");
    doc.lifetime_seconds = TETHER_POLICY_LIFETIME_MAX;
    for (unsigned k = 0; k < TETHER_THRESHOLD_KIND_COUNT; k++) {
        doc.thresholds[k].set = true;
        snprintf(doc.thresholds[k].value, sizeof(doc.thresholds[k].value), "123456789012");
        doc.thresholds[k].action = TETHER_POLICY_ACTION_QUARANTINE;
    }
    for (size_t i = 0; i < TETHER_POLICY_MAX_SOURCES; i++) {
        doc.sources[i].family = AF_INET6;
        memset(doc.sources[i].address, 0xff, 16);
        doc.sources[i].address[15] = (uint8_t)(0xd0 + i);
        doc.sources[i].prefix = 128;
    }
    doc.source_count = TETHER_POLICY_MAX_SOURCES;
    doc.has_measured_boot = true;
    ref->pcr_mask = ref->exact_mask = 0xffffff;
    fill_digests(ref->exact, TETHER_MEASURED_BOOT_PCR_COUNT, 0xa0);
    ref->require_secure_boot = true;
    ref->variable_mask = 0xf;
    fill_digests(ref->variables, TETHER_MEASURED_BOOT_VARIABLE_COUNT, 0xb0);
    ref->application_count = TETHER_MEASURED_BOOT_MAX_APPLICATIONS;
    fill_digests(ref->applications, ref->application_count, 0xc0);
    ref->ipl_count = TETHER_MEASURED_BOOT_MAX_IPL;
    fill_digests(ref->ipl, ref->ipl_count, 0x10);
    ref->file_count = TETHER_MEASURED_BOOT_MAX_FILES;
    for (size_t i = 0; i < ref->file_count; i++) {
        memset(ref->files[i].name, 'f', TETHER_MEASURED_BOOT_FILE_NAME_MAX);
        ref->files[i].name[0] = (char)('a' + i);
        ref->files[i].digest_count = TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS;
        fill_digests(ref->files[i].digests, TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS, 0xd0);
    }
    assert_true(tether_measured_boot_reference_valid(ref, why, sizeof(why)));
    assert_int_equal(tether_policy_document_write(&doc, text, sizeof(text), &len), TETHER_OK);
    print_message("largest document: %zu bytes\n", len);
    assert_int_equal(tether_policy_document_parse((const uint8_t *)text, len, &again, why,
                                                  sizeof(why)),
                     TETHER_OK);
    assert_memory_equal(&again.measured_boot, ref, sizeof(*ref));
    /* one IPL digest more, before the list's end */
    ipl_end = strstr(text, "],\"files\"");
    assert_non_null(ipl_end);
    len = (size_t)(ipl_end - text);
    memcpy(bigger, text, len);
    len += (size_t)snprintf(bigger + len, sizeof(bigger) - len, ",\"%064d\"", 0);
    memcpy(bigger + len, ipl_end, strlen(ipl_end) + 1);
    assert_int_equal(tether_policy_document_parse((const uint8_t *)bigger, strlen(bigger), &again,
                                                  why, sizeof(why)),
                     TETHER_ERR_TOO_LARGE);
    assert_non_null(strstr(why, "more than 256 ipl"));
}

/* One past each measured_boot list's bound: refused as too large. */
static void measured_boot_bounds(void **state)
{
    static char text[TETHER_POLICY_DOCUMENT_MAX];
    static const struct {
        const char *before; /* the section up to the list */
        unsigned count;     /* items written */
        bool files;         /* items are files, not digests */
        const char *why;
    } cases[] = {
        {MB_LISTS "\"applications\":[", TETHER_MEASURED_BOOT_MAX_APPLICATIONS + 1, false,
         "more than 64 applications"},
        {MB_LISTS "\"applications\":[],\"ipl\":[],\"files\":[{\"name\":\"a\",\"digests\":[",
         TETHER_MEASURED_BOOT_MAX_FILE_DIGESTS + 1, false, "more than 8 a file's digests"},
        {MB_LISTS "\"applications\":[],\"ipl\":[],\"files\":[", TETHER_MEASURED_BOOT_MAX_FILES + 1,
         true, "more than 16 files"},
    };
    tether_policy_document_t doc;
    char why[256];

    (void)state;
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t used = (size_t)snprintf(text, sizeof(text), "%s", cases[c].before);

        for (unsigned i = 0; i < cases[c].count; i++) {
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s", i ? "," : "");
            if (cases[c].files)
                used += (size_t)snprintf(text + used, sizeof(text) - used,
                                         "{\"name\":\"f%02u\",\"digests\":[" D1 "]}", i);
            else
                used += (size_t)snprintf(text + used, sizeof(text) - used, "\"%064x\"", i + 1);
        }
        assert_int_equal(parse(text, &doc, why, sizeof(why)), TETHER_ERR_TOO_LARGE);
        if (strstr(why, cases[c].why) == NULL)
            fail_msg("case %zu: \"%s\" not in \"%s\"", c, cases[c].why, why);
    }
}

static void kind_names(void **state)
{
    tether_policy_threshold_kind_t kind;

    (void)state;
    for (unsigned k = 0; k < TETHER_THRESHOLD_KIND_COUNT; k++) {
        const char *name = tether_policy_threshold_kind_name((tether_policy_threshold_kind_t)k);

        assert_non_null(name);
        assert_int_equal(tether_policy_threshold_kind_parse(name, strlen(name), &kind), TETHER_OK);
        assert_int_equal(kind, k);
    }
    assert_null(tether_policy_threshold_kind_name(TETHER_THRESHOLD_KIND_COUNT));
    assert_int_equal(tether_policy_threshold_kind_parse("spend_per", 9, &kind),
                     TETHER_ERR_NOT_FOUND);
    assert_int_equal(kind, TETHER_THRESHOLD_KIND_COUNT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_document_read),
        cmocka_unit_test(minimal_document_read),
        cmocka_unit_test(refusals_named),
        cmocka_unit_test(bounds_refused_as_too_large),
        cmocka_unit_test(writer_refuses_short_buffer),
        cmocka_unit_test(cidr_contains),
        cmocka_unit_test(kind_names),
        cmocka_unit_test(measured_boot_read),
        cmocka_unit_test(largest_document_fits),
        cmocka_unit_test(measured_boot_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
