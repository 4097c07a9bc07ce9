/* Usage reports of relying parties: the report parser (every refusal), the
 * store's accumulation (a report id counted once, a mismatch flagged, a
 * refusal changes nothing) and POST /v1/usage/reports and GET /v1/usage
 * through the route table, over a real SQLite store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "admin_api.h"
#include "fleet_fixture.h"
#include "relying_party_api.h"
#include "route.h"
#include "store.h"
#include "usage_report.h"

#define NOW 1700000000
#define DEV1 "dev_111111111111111111111111"
#define DEV2 "dev_222222222222222222222222"
#define JTI1 "0123456789abcdef0123456789abcdef"
#define JTI2 "fedcba9876543210fedcba9876543210"
#define JTI3 "00000000000000000000000000000003" /* never issued */
#define RID1 "r-0000000000000001"
#define RID2 "r-0000000000000002"
#define JSON_TYPE "application/json"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    tether_admin_api_t admin;
    tether_rp_api_t rp;
    tether_router_t router;
    char rp_token[TETHER_SECRET_TOKEN_SIZE];
    char rp_token2[TETHER_SECRET_TOKEN_SIZE];
    char read[TETHER_SECRET_TOKEN_SIZE];
    char authorization[128];
    tether_http_response_t response;
    cJSON *json;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    tether_store_allow_t rows[2];

    if (f == NULL || fleet_fixture_open("usage", f->dir, f->db, &f->store) != 0)
        return -1;
    tether_admin_api_init(&f->admin, &f->store, 3600);
    tether_rp_api_init(&f->rp, &f->store);
    f->router = (tether_router_t){.store = &f->store, .admin = &f->admin, .relying_party = &f->rp};
    fleet_fixture_admin_token(&f->store, f->rp_token, TETHER_ROLE_RELYING_PARTY);
    fleet_fixture_admin_token(&f->store, f->rp_token2, TETHER_ROLE_RELYING_PARTY);
    fleet_fixture_admin_token(&f->store, f->read, TETHER_ROLE_READ);
    memset(rows, 0, sizeof(rows));
    strcpy(rows[0].id, DEV1);
    memset(rows[0].ek_sha256, '1', 64);
    strcpy(rows[0].name, "one");
    strcpy(rows[1].id, DEV2);
    memset(rows[1].ek_sha256, '2', 64);
    strcpy(rows[1].name, "two");
    if (tether_store_device_import(&f->store, rows, 2, NOW - 1000, NULL, NULL) != TETHER_OK ||
        tether_store_issued_token_add(&f->store, JTI1, DEV1, NOW + 300, NOW - 60) != TETHER_OK ||
        tether_store_issued_token_add(&f->store, JTI2, DEV1, NOW + 300, NOW - 30) != TETHER_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    cJSON_Delete(f->json);
    tether_http_response_clear(&f->response);
    tether_rp_api_free(&f->rp);
    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

/* One entry's JSON. */
static void entry_json(char *out, size_t size, const char *jti, const char *device,
                       long long requests, long long prompt, long long cost)
{
    snprintf(out, size,
             "{\"jti\":\"%s\",\"device\":\"%s\",\"requests\":%lld,\"refused\":1,"
             "\"prompt_tokens\":%lld,\"completion_tokens\":7,\"cost_micros\":%lld,"
             "\"first_seen\":%d,\"last_seen\":%d}",
             jti, device, requests, prompt, cost, NOW - 5, NOW);
}

/* A report of one or two entries (jti2 NULL: one). */
static void report_json(char *out, size_t size, const char *report_id, const char *jti,
                        const char *device, const char *jti2)
{
    char e1[400], e2[400] = "";

    entry_json(e1, sizeof(e1), jti, device, 3, 100, 2500);
    if (jti2 != NULL) {
        e2[0] = ',';
        entry_json(e2 + 1, sizeof(e2) - 1, jti2, DEV1, 1, 10, 40);
    }
    snprintf(out, size,
             "{\"version\":1,\"gateway\":\"gate-1\",\"report_id\":\"%s\",\"entries\":[%s%s]}",
             report_id, e1, e2);
}

/* ---- the parser ---- */

#define ENVELOPE "\"version\":1,\"gateway\":\"g\",\"report_id\":\"" RID1 "\""
#define ENTRY_HEAD "{\"jti\":\"" JTI1 "\",\"device\":\"" DEV1 "\","
#define ENTRY_TAIL                                                                            \
    "\"prompt_tokens\":1,\"completion_tokens\":1,\"cost_micros\":1,\"first_seen\":1,"        \
    "\"last_seen\":2}"
#define ONE(entry) "{" ENVELOPE ",\"entries\":[" entry "]}"
#define GOOD_ENTRY ENTRY_HEAD "\"requests\":1,\"refused\":0," ENTRY_TAIL

static void parser_reads_a_report(void **state)
{
    tether_usage_report_t *report = malloc(sizeof(*report));
    char body[1024], message[TETHER_USAGE_MESSAGE_SIZE];

    (void)state;
    assert_non_null(report);
    report_json(body, sizeof(body), RID1, JTI1, DEV1, JTI2);
    assert_int_equal(tether_usage_report_parse(body, strlen(body), report, message,
                                               sizeof(message)),
                     TETHER_OK);
    assert_string_equal(report->gateway, "gate-1");
    assert_string_equal(report->report_id, RID1);
    assert_int_equal(report->entry_count, 2);
    assert_string_equal(report->entries[0].jti, JTI1);
    assert_string_equal(report->entries[0].device_id, DEV1);
    assert_int_equal(report->entries[0].requests, 3);
    assert_int_equal(report->entries[0].refused, 1);
    assert_int_equal(report->entries[0].prompt_tokens, 100);
    assert_int_equal(report->entries[0].completion_tokens, 7);
    assert_int_equal(report->entries[0].cost_micros, 2500);
    assert_int_equal(report->entries[0].first_seen, NOW - 5);
    assert_int_equal(report->entries[0].last_seen, NOW);
    assert_string_equal(report->entries[1].jti, JTI2);
    assert_int_equal(report->entries[1].cost_micros, 40);
    /* tether-gate names itself by its audience, which may be a URL. */
    snprintf(body, sizeof(body),
             "{\"version\":1,\"gateway\":\"https://gate.example:8443\",\"report_id\":\"" RID2
             "\",\"entries\":[" GOOD_ENTRY "]}");
    assert_int_equal(tether_usage_report_parse(body, strlen(body), report, message,
                                               sizeof(message)),
                     TETHER_OK);
    assert_string_equal(report->gateway, "https://gate.example:8443");
    /* Without the optional refusal counts they are 0 (above); with them,
     * read (tether-gate sends them when not 0). */
    assert_int_equal(report->entries[0].refused_models, 0);
    assert_int_equal(report->entries[0].refused_sources, 0);
    snprintf(body, sizeof(body),
             ONE(ENTRY_HEAD "\"requests\":1,\"refused\":5,\"refused_models\":3,"
                            "\"refused_sources\":2," ENTRY_TAIL));
    assert_int_equal(tether_usage_report_parse(body, strlen(body), report, message,
                                               sizeof(message)),
                     TETHER_OK);
    assert_int_equal(report->entries[0].refused, 5);
    assert_int_equal(report->entries[0].refused_models, 3);
    assert_int_equal(report->entries[0].refused_sources, 2);
    free(report);
}

/* Refused with a message holding expect, and the report zeroed. */
static void refused(const char *body, size_t len, const char *expect)
{
    tether_usage_report_t *report = malloc(sizeof(*report));
    char message[TETHER_USAGE_MESSAGE_SIZE] = "";

    assert_non_null(report);
    memset(report, 0x5a, sizeof(*report));
    if (tether_usage_report_parse(body, len, report, message, sizeof(message)) !=
        TETHER_ERR_PARSE)
        fail_msg("accepted: %.200s", body);
    if (strstr(message, expect) == NULL)
        fail_msg("message \"%s\" lacks \"%s\" for %.200s", message, expect, body);
    assert_int_equal(report->entry_count, 0);
    assert_int_equal(report->report_id[0], '\0');
    free(report);
}


static void parser_refusals(void **state)
{
    static const struct {
        const char *body;
        const char *expect;
    } cases[] = {
        {"", "one JSON object"},
        {"[]", "one JSON object"},
        {"{\"version\":1} x", "one JSON object"},
        {"{\"version\":1,\"version\":1}", "one JSON object"},
        {"{" ENVELOPE ",\"entries\":[],\"extra\":1}", "unknown field \"extra\""},
        {"{\"version\":1,\"gateway\":\"g\",\"entries\":[" GOOD_ENTRY "]}",
         "\"report_id\" is required"},
        {"{\"version\":2,\"gateway\":\"g\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "version must be 1 (the only version"},
        {"{\"version\":0,\"gateway\":\"g\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "version must be 1"},
        {"{\"version\":-1,\"gateway\":\"g\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "\"version\" must be an integer"},
        {"{\"version\":\"1\",\"gateway\":\"g\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "\"version\" must be an integer"},
        {"{\"version\":1,\"gateway\":\"\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "\"gateway\" must be a name"},
        {"{\"version\":1,\"gateway\":\"a\\nb\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "\"gateway\" must be a name"},
        {"{\"version\":1,\"gateway\":\"gate one\",\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "\"gateway\" must be a name"},
        {"{\"version\":1,\"gateway\":\"g12345678901234567890123456789012345678901234567890123456789012345\","
         "\"report_id\":\"" RID1 "\",\"entries\":[]}",
         "\"gateway\" must be a name"},
        {"{\"version\":1,\"gateway\":\"g\",\"report_id\":\"short\",\"entries\":[]}",
         "\"report_id\" must be 16-64"},
        {"{\"version\":1,\"gateway\":\"g\",\"report_id\":\"r 000000000000000001\",\"entries\":[]}",
         "\"report_id\" must be 16-64"},
        {"{\"version\":1,\"gateway\":\"g\",\"report_id\":"
         "\"r00000000000000000000000000000000000000000000000000000000000000001\","
         "\"entries\":[]}",
         "\"report_id\" must be 16-64"},
        {"{" ENVELOPE ",\"entries\":{}}", "array of 1 to 256"},
        {"{" ENVELOPE ",\"entries\":[]}", "array of 1 to 256"},
        {ONE("1"), "entry 0 must be a JSON object"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"model\":\"x\"," ENTRY_TAIL),
         "entry 0: unknown field \"model\""},
        {ONE(ENTRY_HEAD "\"requests\":1," ENTRY_TAIL), "entry 0: field \"refused\" is required"},
        {ONE("{\"jti\":\"0123456789ABCDEF0123456789abcdef\",\"device\":\"" DEV1
             "\",\"requests\":1,\"refused\":0," ENTRY_TAIL),
         "entry 0: \"jti\" must be a token id"},
        {ONE("{\"jti\":\"0123456789abcdef\",\"device\":\"" DEV1
             "\",\"requests\":1,\"refused\":0," ENTRY_TAIL),
         "entry 0: \"jti\" must be a token id"},
        {ONE("{\"jti\":1,\"device\":\"" DEV1 "\",\"requests\":1,\"refused\":0," ENTRY_TAIL),
         "entry 0: \"jti\" must be a token id"},
        {ONE("{\"jti\":\"" JTI1 "\",\"device\":\"dev_11111111111111111111111G\","
             "\"requests\":1,\"refused\":0," ENTRY_TAIL),
         "entry 0: \"device\" must be a device id"},
        {ONE(ENTRY_HEAD "\"requests\":-1,\"refused\":0," ENTRY_TAIL),
         "entry 0: \"requests\" must be an integer from 0 to 1000000000"},
        {ONE(ENTRY_HEAD "\"requests\":1.5,\"refused\":0," ENTRY_TAIL),
         "\"requests\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1000000001,\"refused\":0," ENTRY_TAIL),
         "\"requests\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":\"1\",\"refused\":0," ENTRY_TAIL),
         "\"requests\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":1e300," ENTRY_TAIL),
         "\"refused\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"prompt_tokens\":1000000000001,"
                        "\"completion_tokens\":1,\"cost_micros\":1,\"first_seen\":1,"
                        "\"last_seen\":2}"),
         "\"prompt_tokens\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"prompt_tokens\":1,"
                        "\"completion_tokens\":null,\"cost_micros\":1,\"first_seen\":1,"
                        "\"last_seen\":2}"),
         "\"completion_tokens\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"prompt_tokens\":1,"
                        "\"completion_tokens\":1,\"cost_micros\":1000000000000001,"
                        "\"first_seen\":1,\"last_seen\":2}"),
         "\"cost_micros\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"prompt_tokens\":1,"
                        "\"completion_tokens\":1,\"cost_micros\":1,\"first_seen\":1,"
                        "\"last_seen\":253402300800}"),
         "\"last_seen\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"prompt_tokens\":1,"
                        "\"completion_tokens\":1,\"cost_micros\":1,\"first_seen\":3,"
                        "\"last_seen\":2}"),
         "entry 0: first_seen is after last_seen"},
        {ONE(GOOD_ENTRY "," GOOD_ENTRY), "entry 1: jti repeats entry 0"},
        /* The optional refusal counts: integers within the bound, part of
         * refused. */
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":2,\"refused_models\":1.5,"
                        ENTRY_TAIL),
         "entry 0: \"refused_models\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":2,\"refused_sources\":-1,"
                        ENTRY_TAIL),
         "entry 0: \"refused_sources\" must be an integer"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":2,\"refused_models\":2,"
                        "\"refused_sources\":1," ENTRY_TAIL),
         "entry 0: refused_models and refused_sources add up to more than refused"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":0,\"refused_models\":1," ENTRY_TAIL),
         "add up to more than refused"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":2,\"refused_models\":1,"
                        "\"refused_models\":1," ENTRY_TAIL),
         "repeated fields"},
        {ONE(ENTRY_HEAD "\"requests\":1,\"refused\":2,\"refused_model\":1," ENTRY_TAIL),
         "entry 0: unknown field \"refused_model\""},
    };
    char *many;
    size_t used;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        refused(cases[i].body, strlen(cases[i].body), cases[i].expect);
    /* A NUL inside the body, and no body at all. */
    refused("{\"version\":1}\0", 14, "one JSON object");
    refused(NULL, 0, "one JSON object");
    /* 257 entries (distinct jtis), and a body past the byte bound. */
    many = malloc(TETHER_USAGE_REPORT_MAX_BODY + 2);
    assert_non_null(many);
    used = (size_t)sprintf(many, "{" ENVELOPE ",\"entries\":[");
    for (int i = 0; i <= TETHER_USAGE_REPORT_MAX_ENTRIES; i++)
        used += (size_t)sprintf(many + used,
                                "%s{\"jti\":\"%032x\",\"device\":\"" DEV1
                                "\",\"requests\":1,\"refused\":0," ENTRY_TAIL,
                                i == 0 ? "" : ",", i);
    used += (size_t)sprintf(many + used, "]}");
    refused(many, used, "array of 1 to 256");
    memset(many, ' ', TETHER_USAGE_REPORT_MAX_BODY + 1);
    memcpy(many, ONE(GOOD_ENTRY), strlen(ONE(GOOD_ENTRY)));
    refused(many, TETHER_USAGE_REPORT_MAX_BODY + 1, "at most 98304 bytes");
    free(many);
}

/* ---- the store ---- */

typedef struct usage_lines {
    size_t count;
    tether_store_usage_row_t rows[4];
    char devices[4][TETHER_STORE_DEVICE_ID_SIZE];
    char jtis[4][TETHER_STORE_JTI_SIZE];
} usage_lines_t;

static int collect(void *arg, const tether_store_usage_row_t *row)
{
    usage_lines_t *lines = arg;

    assert_true(lines->count < 4);
    lines->rows[lines->count] = *row;
    snprintf(lines->devices[lines->count], TETHER_STORE_DEVICE_ID_SIZE, "%s", row->device_id);
    snprintf(lines->jtis[lines->count], TETHER_STORE_JTI_SIZE, "%s",
             row->jti != NULL ? row->jti : "");
    lines->count++;
    return 0;
}

static void list(fixture_t *f, const char *device, int64_t since, usage_lines_t *lines)
{
    memset(lines, 0, sizeof(*lines));
    assert_int_equal(tether_store_usage_list(&f->store, device, since, 10, collect, lines),
                     TETHER_OK);
}

/* A report of one entry through the store, as the API would record it. */
static tether_status_t record(fixture_t *f, int64_t relying_party, const char *report_id,
                              const char *jti, const char *device, uint8_t body_byte,
                              int64_t now, tether_store_usage_result_t *result)
{
    tether_store_usage_entry_t entry = {.requests = 3, .refused = 1, .prompt_tokens = 100,
                                        .completion_tokens = 7, .cost_micros = 2500,
                                        .first_seen = now - 5, .last_seen = now};
    tether_store_usage_report_t report = {.relying_party = relying_party, .gateway = "gate-1",
                                          .report_id = report_id, .entries = &entry,
                                          .entry_count = 1};

    snprintf(entry.jti, sizeof(entry.jti), "%s", jti);
    snprintf(entry.device_id, sizeof(entry.device_id), "%s", device);
    memset(report.body_sha256, body_byte, sizeof(report.body_sha256));
    return tether_store_usage_report_record(&f->store, &report, now, result);
}

static void store_counts_a_report_once(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;
    usage_lines_t lines;
    char *before;

    assert_int_equal(record(f, 1, RID1, JTI1, DEV1, 0xa1, NOW, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_USAGE_ACCEPTED);
    assert_int_equal(result.flagged, 0);
    /* The retry of the same report: nothing more is counted. */
    before = fleet_db_snapshot(f->db);
    assert_int_equal(record(f, 1, RID1, JTI1, DEV1, 0xa1, NOW + 1, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_USAGE_DUPLICATE);
    /* The same id with another body: refused, nothing changes. */
    assert_int_equal(record(f, 1, RID1, JTI1, DEV1, 0xb2, NOW + 1, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_USAGE_ID_REUSED);
    {
        char *after = fleet_db_snapshot(f->db);
        assert_string_equal(before, after);
        free(after);
    }
    free(before);
    /* A new report adds; another relying party's report of the same id is
     * its own. */
    assert_int_equal(record(f, 1, RID2, JTI1, DEV1, 0xc3, NOW + 10, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_USAGE_ACCEPTED);
    assert_int_equal(record(f, 2, RID1, JTI1, DEV1, 0xa1, NOW + 20, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_USAGE_ACCEPTED);
    list(f, NULL, 0, &lines);
    assert_int_equal(lines.count, 1);
    assert_string_equal(lines.devices[0], DEV1);
    assert_int_equal(lines.rows[0].tokens, 1);
    assert_int_equal(lines.rows[0].requests, 9);
    assert_int_equal(lines.rows[0].refused, 3);
    assert_int_equal(lines.rows[0].prompt_tokens, 300);
    assert_int_equal(lines.rows[0].completion_tokens, 21);
    assert_int_equal(lines.rows[0].cost_micros, 7500);
    assert_int_equal(lines.rows[0].first_seen, NOW - 5);
    assert_int_equal(lines.rows[0].last_seen, NOW + 20);
    assert_false(lines.rows[0].flagged);
    /* Per token, and since. */
    list(f, DEV1, 0, &lines);
    assert_int_equal(lines.count, 1);
    assert_string_equal(lines.jtis[0], JTI1);
    assert_int_equal(lines.rows[0].requests, 9);
    list(f, NULL, NOW + 21, &lines);
    assert_int_equal(lines.count, 0);
}

static void store_flags_a_token_of_another_device(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;
    usage_lines_t lines;

    /* JTI1 was issued to DEV1: reported under DEV2 it counts for DEV1. */
    assert_int_equal(record(f, 1, RID1, JTI1, DEV2, 0xa1, NOW, &result), TETHER_OK);
    assert_int_equal(result.decision, TETHER_STORE_USAGE_ACCEPTED);
    assert_int_equal(result.flagged, 1);
    /* A jti the fleet never issued counts under the device named. */
    assert_int_equal(record(f, 1, RID2, JTI3, DEV2, 0xb2, NOW, &result), TETHER_OK);
    assert_int_equal(result.flagged, 1);
    list(f, NULL, 0, &lines);
    assert_int_equal(lines.count, 2);
    assert_string_equal(lines.devices[0], DEV1);
    assert_true(lines.rows[0].flagged);
    assert_string_equal(lines.devices[1], DEV2);
    assert_true(lines.rows[1].flagged);
    assert_int_equal(fleet_db_alerts(f->db,
                                     "kind = 'usage_device_mismatch' AND device_id = '" DEV1 "'",
                                     "{\"reported_device\": \"" DEV2 "\"}"),
                     1);
    assert_int_equal(fleet_db_alerts(f->db,
                                     "kind = 'usage_device_mismatch' AND device_id IS NULL",
                                     "{\"jti\": \"" JTI3 "\"}"),
                     1);
}

static void store_refuses_totals_past_the_bound(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;
    char *before, *after;

    assert_int_equal(record(f, 1, RID1, JTI1, DEV1, 0xa1, NOW, &result), TETHER_OK);
    fleet_db_exec(f->db, "UPDATE token_usage SET cost_micros = 9007199254740000");
    before = fleet_db_snapshot(f->db);
    assert_int_equal(record(f, 1, RID2, JTI1, DEV1, 0xb2, NOW, &result), TETHER_ERR_TOO_LARGE);
    after = fleet_db_snapshot(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void store_forgets_old_report_ids(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t result;

    assert_int_equal(record(f, 1, RID1, JTI1, DEV1, 0xa1, NOW, &result), TETHER_OK);
    assert_int_equal(record(f, 1, RID2, JTI1, DEV1, 0xb2,
                            NOW + TETHER_STORE_USAGE_REPORT_RETENTION, &result),
                     TETHER_OK);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM usage_reports"), 2);
    assert_int_equal(record(f, 1, "r-0000000000000003", JTI1, DEV1, 0xc3,
                            NOW + TETHER_STORE_USAGE_REPORT_RETENTION + 1, &result),
                     TETHER_OK);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM usage_reports WHERE "
                                           "report_id = '" RID1 "'"),
                     0);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM usage_reports"), 2);
}

/* ---- the endpoints ---- */

static unsigned call(fixture_t *f, const char *method, const char *path, const char *query_key,
                     const char *query_value, const char *token, const char *body,
                     size_t body_len)
{
    tether_http_request_t request;

    memset(&request, 0, sizeof(request));
    request.method = method;
    request.path = path;
    if (query_key != NULL) {
        request.query[0].key = query_key;
        request.query[0].value = query_value;
        request.query_count = 1;
    }
    snprintf(f->authorization, sizeof(f->authorization), "Bearer %s", token);
    request.authorization = f->authorization;
    request.content_type = body != NULL ? JSON_TYPE : NULL;
    request.body = (const uint8_t *)body;
    request.body_len = body_len;
    return fleet_fixture_route(&f->router, &request, &f->response, &f->json, false);
}

static unsigned post(fixture_t *f, const char *token, const char *body)
{
    return call(f, "POST", "/v1/usage/reports", NULL, NULL, token, body, strlen(body));
}

static const char *member(fixture_t *f, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(f->json, name);

    return cJSON_IsString(item) ? item->valuestring : "";
}

static double usage_number(fixture_t *f, int line, const char *name)
{
    const cJSON *lines = cJSON_GetObjectItemCaseSensitive(f->json, "usage");

    return cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(lines, line), name)->valuedouble;
}

static void endpoint_counts_and_lists(void **state)
{
    fixture_t *f = *state;
    char body[1024];

    report_json(body, sizeof(body), RID1, JTI1, DEV1, JTI2);
    assert_int_equal(post(f, f->rp_token, body), 200);
    assert_string_equal(member(f, "status"), "accepted");
    assert_string_equal(member(f, "report_id"), RID1);
    /* The retry after a lost answer. */
    assert_int_equal(post(f, f->rp_token, body), 200);
    assert_string_equal(member(f, "status"), "duplicate");
    assert_int_equal(call(f, "GET", "/v1/usage", NULL, NULL, f->read, NULL, 0), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "usage")), 1);
    assert_int_equal((int)usage_number(f, 0, "tokens"), 2);
    assert_int_equal((int)usage_number(f, 0, "requests"), 4);
    assert_int_equal((int)usage_number(f, 0, "prompt_tokens"), 110);
    assert_int_equal((int)usage_number(f, 0, "cost_micros"), 2540);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(f->json, "truncated")));
    assert_int_equal(call(f, "GET", "/v1/usage", "device", DEV1, f->read, NULL, 0), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "usage")), 2);
    assert_int_equal((int)usage_number(f, 1, "requests"), 1);
    assert_int_equal(call(f, "GET", "/v1/usage", "since", "1700000001", f->read, NULL, 0), 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f->json, "usage")), 0);
}

static void endpoint_refusals_change_nothing(void **state)
{
    fixture_t *f = *state;
    char body[1024], *before, *after, *big;

    report_json(body, sizeof(body), RID1, JTI1, DEV1, NULL);
    assert_int_equal(post(f, f->rp_token, body), 200);
    before = fleet_db_snapshot(f->db);
    /* Only a relying party reports; only read sees. */
    assert_int_equal(post(f, f->read, body), 403);
    assert_int_equal(call(f, "GET", "/v1/usage", NULL, NULL, f->rp_token, NULL, 0), 403);
    /* Malformed. */
    assert_int_equal(post(f, f->rp_token, "{\"version\":1}"), 400);
    assert_string_equal(member(f, "error"), "invalid_request");
    /* The same id, another report. */
    report_json(body, sizeof(body), RID1, JTI2, DEV1, NULL);
    assert_int_equal(post(f, f->rp_token, body), 409);
    assert_string_equal(member(f, "error"), "report_id_reused");
    /* Over the route's bound. */
    big = calloc(1, TETHER_USAGE_REPORT_MAX_BODY + 2);
    assert_non_null(big);
    memset(big, ' ', TETHER_USAGE_REPORT_MAX_BODY + 1);
    assert_int_equal(post(f, f->rp_token, big), 413);
    free(big);
    /* Query values. */
    assert_int_equal(call(f, "GET", "/v1/usage", "device", "dev_1", f->read, NULL, 0), 400);
    assert_int_equal(call(f, "GET", "/v1/usage", "since", "-1", f->read, NULL, 0), 400);
    assert_int_equal(call(f, "GET", "/v1/usage", "until", "1", f->read, NULL, 0), 400);
    after = fleet_db_snapshot(f->db);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parser_reads_a_report),
        cmocka_unit_test(parser_refusals),
        cmocka_unit_test_setup_teardown(store_counts_a_report_once, setup, teardown),
        cmocka_unit_test_setup_teardown(store_flags_a_token_of_another_device, setup, teardown),
        cmocka_unit_test_setup_teardown(store_refuses_totals_past_the_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(store_forgets_old_report_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(endpoint_counts_and_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(endpoint_refusals_change_nothing, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
