/* Usage reconciliation (store_usage.h, "usage reconciliation"): the usage
 * document's parser (every refusal) and the agent's encoder that it must
 * read back; the store's comparisons at the exchange and at each usage
 * report (an honest device is never flagged, however late the gateways
 * report and across a restart; a token used by someone else is, once, with
 * the action asked for); the usage_unreported check; retention's cutoffs
 * (a token's rows kept until its usage window closed and the retention
 * passed). Real SQLite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fleet_fixture.h"
#include "retention.h"
#include "sqlite/store_sqlite_internal.h"
#include "store.h"
#include "tether/evidence.h"
#include "token_counts.h"
#include "usage_document.h"

#define NOW 1700000000
#define LIFE 300
#define DEV1 "dev_111111111111111111111111"
#define DEV2 "dev_222222222222222222222222"
#define JTI1 "0123456789abcdef0123456789abcdef" /* DEV1's, exp NOW + LIFE */
#define JTI2 "fedcba9876543210fedcba9876543210" /* DEV2's */

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    uint64_t counter;
    unsigned reports;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    tether_store_allow_t rows[2];

    if (f == NULL || fleet_fixture_open("reconcile", f->dir, f->db, &f->store) != 0)
        return -1;
    memset(rows, 0, sizeof(rows));
    strcpy(rows[0].id, DEV1);
    memset(rows[0].ek_sha256, '1', 64);
    strcpy(rows[0].name, "one");
    strcpy(rows[1].id, DEV2);
    memset(rows[1].ek_sha256, '2', 64);
    strcpy(rows[1].name, "two");
    if (tether_store_device_import(&f->store, rows, 2, NOW - 1000, NULL, NULL) != TETHER_OK ||
        tether_store_issued_token_add(&f->store, JTI1, DEV1, NOW + LIFE, NOW) != TETHER_OK ||
        tether_store_issued_token_add(&f->store, JTI2, DEV2, NOW + LIFE, NOW) != TETHER_OK)
        return -1;
    fleet_db_exec(f->db, "UPDATE devices SET status = 'active', last_seen_at = " "1700000000");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    fleet_fixture_close(f->dir, &f->store);
    free(f);
    return 0;
}

/* An exchange of DEV1 at now over a nonce issued at now - 1, with the
 * device's counts for JTI1 (proofs < 0: a document without it). */
static tether_store_exchange_decision_t exchange(fixture_t *f, int64_t now, int64_t proofs,
                                                 tether_store_usage_action_t action,
                                                 tether_store_exchange_result_t *result)
{
    tether_store_device_usage_t usage = {.jti = JTI1, .proofs = proofs, .requests = 0,
                                         .bearer = 2};
    tether_store_exchange_t ex;
    char jti[TETHER_STORE_JTI_SIZE];

    snprintf(jti, sizeof(jti), "e%031llu", (unsigned long long)++f->counter);
    fleet_fixture_exchange(&ex, DEV1, f->counter, "127.0.0.1", now, jti, LIFE);
    ex.usage = proofs >= 0 ? &usage : NULL;
    ex.usage_count = proofs >= 0 ? 1 : 0;
    ex.usage_action = action;
    assert_int_equal(tether_store_exchange_record(&f->store, &ex, now, result), TETHER_OK);
    return result->decision;
}

/* A gateway's report of requests on jti (of DEV1), received at now. */
static void report(fixture_t *f, const char *jti, int64_t requests, int64_t now,
                   tether_store_usage_action_t action, tether_store_usage_result_t *result)
{
    char id[32];

    snprintf(id, sizeof(id), "report-%010u", ++f->reports);
    fleet_fixture_usage_report(&f->store, "gate", id, jti, strcmp(jti, JTI2) == 0 ? DEV2 : DEV1,
                               requests, now, action, result);
}

static long long count(fixture_t *f, const char *sql)
{
    return fleet_db_count(f->db, sql);
}

/* ---- the document ---- */

static void document_round_trip(void **state)
{
    tether_token_counts_t c;
    tether_usage_document_t doc;
    uint8_t out[TETHER_USAGE_DOCUMENT_MAX];
    size_t len = 0;
    char why[256];

    (void)state;
    tether_token_counts_init(&c);
    assert_int_equal(tether_token_counts_add(&c, JTI1, TETHER_TOKEN_COUNT_ISSUED), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, JTI1, TETHER_TOKEN_COUNT_PROOF), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, JTI1, TETHER_TOKEN_COUNT_REQUEST), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, JTI1, TETHER_TOKEN_COUNT_BEARER), TETHER_OK);
    assert_int_equal(tether_token_counts_add(&c, "has\"quote", TETHER_TOKEN_COUNT_PROOF),
                     TETHER_OK); /* left out: it would need escaping */
    assert_int_equal(tether_token_counts_add(&c, JTI2, TETHER_TOKEN_COUNT_ISSUED), TETHER_OK);
    assert_int_equal(tether_usage_document(&c, 4, 5, out, sizeof(out), &len), TETHER_OK);
    assert_int_equal(len, strlen("{\"version\":1,\"exchanges\":4,\"token_requests\":5,\"tokens\":["
                                 "{\"jti\":\"" JTI1 "\",\"proofs\":1,\"requests\":1,\"bearer\":1},"
                                 "{\"jti\":\"" JTI2 "\",\"proofs\":0,\"requests\":0,\"bearer\":0}]}"));
    assert_memory_equal(out,
                        "{\"version\":1,\"exchanges\":4,\"token_requests\":5,\"tokens\":["
                        "{\"jti\":\"" JTI1 "\",\"proofs\":1,\"requests\":1,\"bearer\":1},"
                        "{\"jti\":\"" JTI2 "\",\"proofs\":0,\"requests\":0,\"bearer\":0}]}",
                        len);
    assert_int_equal(tether_usage_document_parse(out, len, &doc, why, sizeof(why)), TETHER_OK);
    assert_int_equal(doc.version, 1);
    assert_int_equal(doc.exchanges, 4);
    assert_int_equal(doc.token_requests, 5);
    assert_int_equal(doc.token_count, 2);
    assert_string_equal(doc.tokens[0].jti, JTI1);
    assert_int_equal(doc.tokens[0].proofs, 1);
    assert_int_equal(doc.tokens[0].requests, 1);
    assert_int_equal(doc.tokens[0].bearer, 1);
    /* Too small a buffer is refused, not cut. */
    assert_int_equal(tether_usage_document(&c, 4, 5, out, 40, &len), TETHER_ERR_TOO_LARGE);
    assert_int_equal(len, 0);
    /* The largest document fits the evidence. */
    tether_token_counts_init(&c);
    for (int i = 0; i < TETHER_TOKEN_COUNTS_MAX; i++) {
        char jti[TETHER_TOKEN_JTI_MAX + 1];

        memset(jti, 'a' + i, TETHER_TOKEN_JTI_MAX);
        jti[TETHER_TOKEN_JTI_MAX] = '\0';
        for (int k = 0; k < 3; k++)
            assert_int_equal(tether_token_counts_add(&c, jti, (tether_token_count_kind_t)k),
                             TETHER_OK);
        c.entries[i].proofs = c.entries[i].requests = c.entries[i].bearer = UINT64_MAX;
    }
    assert_int_equal(tether_usage_document(&c, UINT64_MAX, UINT64_MAX, out, sizeof(out), &len),
                     TETHER_OK);
    assert_true(len <= TETHER_EVIDENCE_MAX_USAGE);
    assert_int_equal(tether_usage_document_parse(out, len, &doc, why, sizeof(why)), TETHER_OK);
    assert_int_equal(doc.tokens[7].proofs, TETHER_USAGE_DOCUMENT_COUNT_MAX);
}

static void refused(const char *text, tether_status_t expect, const char *why_part)
{
    tether_usage_document_t doc;
    char why[256];

    memset(&doc, 0xa5, sizeof(doc));
    assert_int_equal(tether_usage_document_parse((const uint8_t *)text, strlen(text), &doc, why,
                                                 sizeof(why)),
                     expect);
    if (strstr(why, why_part) == NULL)
        fail_msg("%s: \"%s\" does not say \"%s\"", text, why, why_part);
    assert_int_equal(doc.token_count, 0); /* nothing half-read is left */
    assert_int_equal(doc.exchanges, 0);
}

#define HEAD "{\"version\":1,\"exchanges\":1,\"token_requests\":0,\"tokens\":["
#define T(jti) "{\"jti\":\"" jti "\",\"proofs\":1,\"requests\":0,\"bearer\":0}"

static void document_refusals(void **state)
{
    static const char v0[] = "{\"token_requests\":3,\"exchanges\":9}";
    tether_usage_document_t doc;
    char why[256], many[2048], *big;
    size_t used;

    (void)state;
    assert_int_equal(tether_usage_document_parse((const uint8_t *)v0, strlen(v0), &doc, why,
                                                 sizeof(why)),
                     TETHER_OK);
    assert_int_equal(doc.version, 0);
    assert_int_equal(doc.exchanges, 9);
    assert_int_equal(tether_usage_document_parse(NULL, 0, &doc, why, sizeof(why)),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(why, "empty"));
    refused("", TETHER_ERR_PARSE, "canonical form");
    refused("{\"version\":2,\"exchanges\":1}", TETHER_ERR_PARSE, "canonical form");
    refused("{ \"version\":1}", TETHER_ERR_PARSE, "canonical form");
    refused(HEAD "]", TETHER_ERR_PARSE, "expected }");
    refused(HEAD "]}}", TETHER_ERR_PARSE, "bytes after");
    refused(HEAD "]}\n", TETHER_ERR_PARSE, "bytes after");
    refused("{\"version\":1,\"exchanges\":,", TETHER_ERR_PARSE, "exchanges is not");
    refused("{\"version\":1,\"exchanges\":007,", TETHER_ERR_PARSE, "leading zero");
    refused("{\"version\":1,\"exchanges\":9007199254740992,", TETHER_ERR_PARSE, "2^53");
    refused("{\"version\":1,\"exchanges\":99999999999999999999999,", TETHER_ERR_PARSE, "2^53");
    refused("{\"version\":1,\"exchanges\":1e3,", TETHER_ERR_PARSE, "expected ,\"token_requests\"");
    refused(HEAD T("a") "," T("a") "]}", TETHER_ERR_PARSE, "listed twice");
    refused(HEAD T("") "]}", TETHER_ERR_PARSE, "empty");
    refused(HEAD T("a b") "]}", TETHER_ERR_PARSE, "A-Z a-z 0-9");
    refused(HEAD T("a\\u0041") "]}", TETHER_ERR_PARSE, "A-Z a-z 0-9");
    refused(HEAD T("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") "]}",
            TETHER_ERR_PARSE, "at most 64");
    refused(HEAD "{\"jti\":\"a\",\"proofs\":1,\"bearer\":0,\"requests\":0}]}", TETHER_ERR_PARSE,
            "expected ,\"requests\"");
    refused(HEAD "{\"jti\":\"a\",\"proofs\":-1,\"requests\":0,\"bearer\":0}]}", TETHER_ERR_PARSE,
            "proofs is not");
    refused(HEAD T("a") ",]}", TETHER_ERR_PARSE, "expected {\"jti\"");
    refused("{\"token_requests\":1,\"exchanges\":1,\"tokens\":[]}", TETHER_ERR_PARSE, "expected }");
    used = (size_t)snprintf(many, sizeof(many), HEAD);
    for (int i = 0; i <= TETHER_USAGE_DOCUMENT_MAX_TOKENS; i++)
        used += (size_t)snprintf(many + used, sizeof(many) - used, "%s{\"jti\":\"t%d\",\"proofs\":1,"
                                 "\"requests\":0,\"bearer\":0}", i == 0 ? "" : ",", i);
    snprintf(many + used, sizeof(many) - used, "]}");
    refused(many, TETHER_ERR_TOO_LARGE, "more than 16 tokens");
    big = malloc(TETHER_EVIDENCE_MAX_USAGE + 2);
    assert_non_null(big);
    memset(big, ' ', TETHER_EVIDENCE_MAX_USAGE + 1);
    big[TETHER_EVIDENCE_MAX_USAGE + 1] = '\0';
    refused(big, TETHER_ERR_TOO_LARGE, "more than 4096");
    free(big);
}

/* ---- the store ---- */

/* Steady use with reports late and in pieces, the device's counts as it
 * reports them, and an agent restart that loses a token's last counts:
 * never an alert. */
static void honest_device_never_flagged(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_store_usage_result_t u;

    /* 5 requests reported before the exchange at NOW + 200 (6 made). */
    report(f, JTI1, 2, NOW + 10, TETHER_STORE_USAGE_QUARANTINE, &u);
    report(f, JTI1, 3, NOW + 150, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(exchange(f, NOW + 200, 6, TETHER_STORE_USAGE_QUARANTINE, &r),
                     TETHER_STORE_EXCHANGE_ACCEPT);
    /* Requests made after the device counted, reported at once and late
     * (up to and past the token's expiry): not compared with a count that
     * could not hold them. */
    report(f, JTI1, 1, NOW + 199, TETHER_STORE_USAGE_QUARANTINE, &u);
    report(f, JTI1, 30, NOW + 205, TETHER_STORE_USAGE_QUARANTINE, &u);
    report(f, JTI1, 4, NOW + 320, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(u.mismatches, 0);
    /* The next exchange before the expiry carries 41. */
    assert_int_equal(exchange(f, NOW + 330, 41, TETHER_STORE_USAGE_QUARANTINE, &r),
                     TETHER_STORE_EXCHANGE_ACCEPT);
    /* The agent restarts: its next documents lack JTI1, whose last
     * requests the gateways report late. */
    report(f, JTI1, 2, NOW + 340, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(exchange(f, NOW + 500, -1, TETHER_STORE_USAGE_QUARANTINE, &r),
                     TETHER_STORE_EXCHANGE_ACCEPT);
    assert_int_equal(r.usage_mismatches, 0);
    report(f, JTI1, 1, NOW + 510, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(u.mismatches, 0);
    /* It exchanged after the expiry: not unreported either. */
    {
        size_t alerted = 9;

        assert_int_equal(tether_store_usage_unreported_check(&f->store, NOW + 5000, LIFE,
                                                             &alerted),
                         TETHER_OK);
        assert_int_equal(alerted, 0);
    }
    assert_int_equal(count(f, "SELECT count(*) FROM alerts"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM devices WHERE status = 'active'"), 2);
    assert_int_equal(count(f, "SELECT proofs FROM device_usage WHERE jti = '" JTI1 "'"), 41);
}

/* A final count (reported after the token expired) is compared with every
 * late report as it arrives; the alert comes once, with both figures. */
static void late_report_above_final_count(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_store_usage_result_t u;

    report(f, JTI1, 5, NOW + 100, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(exchange(f, NOW + LIFE + TETHER_STORE_USAGE_LEEWAY + 2, 5,
                              TETHER_STORE_USAGE_QUARANTINE, &r),
                     TETHER_STORE_EXCHANGE_ACCEPT);
    assert_int_equal(count(f, "SELECT final FROM device_usage WHERE jti = '" JTI1 "'"), 1);
    report(f, JTI1, 2, NOW + 400, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(u.mismatches, 1);
    assert_true(u.quarantined);
    assert_int_equal(fleet_db_alerts(f->db, "kind = 'usage_mismatch' AND device_id = '" DEV1 "'",
                                     "{\"gateway_accepted\": 7, \"device_made\": 5, "
                                     "\"bearer_handouts\": 2, \"final\": true}"),
                     1);
    assert_int_equal(count(f, "SELECT count(*) FROM devices WHERE id = '" DEV1 "'"
                              " AND status = 'quarantined'"),
                     1);
    assert_int_equal(count(f, "SELECT count(*) FROM revocations WHERE device_id = '" DEV1 "'"),
                     1);
    /* Once per token. */
    report(f, JTI1, 2, NOW + 410, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(u.mismatches, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM alerts"), 1);
}

/* usage_mismatch_action = alert: the alert, the exchange accepted. */
static void alert_only(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_store_usage_result_t u;

    report(f, JTI1, 9, NOW + 100, TETHER_STORE_USAGE_ALERT, &u);
    assert_int_equal(exchange(f, NOW + 200, 4, TETHER_STORE_USAGE_ALERT, &r),
                     TETHER_STORE_EXCHANGE_ACCEPT);
    assert_int_equal(r.usage_mismatches, 1);
    assert_string_equal(r.mismatch.jti, JTI1);
    assert_int_equal(r.mismatch.gateway_accepted, 9);
    assert_int_equal(r.mismatch.device_made, 4);
    assert_false(r.mismatch.final);
    assert_int_equal(
        fleet_db_alerts(f->db, "kind = 'usage_mismatch'", "{\"action\": \"alert\"}"), 1);
    assert_int_equal(count(f, "SELECT count(*) FROM devices WHERE status = 'active'"), 2);
    assert_int_equal(count(f, "SELECT count(*) FROM revocations"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM issued_tokens WHERE device_id = '" DEV1 "'"),
                     2);
}

/* Quarantine at the exchange: no token issued, every live token revoked,
 * the counter not advanced; the document's tokens of other devices are
 * ignored. */
static void quarantine_at_exchange(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_store_usage_result_t u;

    report(f, JTI1, 9, NOW + 100, TETHER_STORE_USAGE_QUARANTINE, &u);
    report(f, JTI2, 50, NOW + 100, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(exchange(f, NOW + 200, 8, TETHER_STORE_USAGE_QUARANTINE, &r),
                     TETHER_STORE_EXCHANGE_USAGE_MISMATCH);
    assert_int_equal(r.status, TETHER_DEVICE_QUARANTINED);
    assert_int_equal(count(f, "SELECT count(*) FROM issued_tokens WHERE device_id = '" DEV1 "'"),
                     1);
    assert_int_equal(count(f, "SELECT revoked FROM issued_tokens WHERE jti = '" JTI1 "'"), 1);
    assert_int_equal(count(f, "SELECT revoked FROM issued_tokens WHERE jti = '" JTI2 "'"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM devices WHERE id = '" DEV1 "' AND "
                              "highest_counter IS NULL"),
                     1);
    /* The device's counts are kept (the evidence of the mismatch). */
    assert_int_equal(count(f, "SELECT proofs FROM device_usage WHERE jti = '" JTI1 "'"), 8);
    assert_int_equal(count(f, "SELECT count(*) FROM device_usage WHERE jti = '" JTI2 "'"), 0);
}

/* A stolen token still in use: a report before the nonce, then one during
 * the exchange (after the nonce). The requests reported before the nonce
 * are compared, though the token's latest report came after it. */
static void report_during_exchange(void **state)
{
    fixture_t *f = *state;
    tether_store_exchange_result_t r;
    tether_store_usage_result_t u;

    report(f, JTI1, 5, NOW + 100, TETHER_STORE_USAGE_QUARANTINE, &u);
    report(f, JTI1, 3, NOW + 199, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(u.mismatches, 0); /* the device has not reported the token yet */
    /* The nonce at NOW + 199: the second report is not covered. */
    assert_int_equal(exchange(f, NOW + 200, 0, TETHER_STORE_USAGE_QUARANTINE, &r),
                     TETHER_STORE_EXCHANGE_USAGE_MISMATCH);
    assert_int_equal(r.usage_mismatches, 1);
    assert_string_equal(r.mismatch.jti, JTI1);
    assert_int_equal(r.mismatch.gateway_accepted, 5);
    assert_int_equal(r.mismatch.device_made, 0);
    assert_int_equal(r.status, TETHER_DEVICE_QUARANTINED);
}

/* A device that stops exchanging while gateways used its token: one
 * usage_unreported alert once the grace period has passed. */
static void unreported_after_grace(void **state)
{
    fixture_t *f = *state;
    tether_store_usage_result_t u;
    size_t alerted = 9;
    int64_t due = NOW + LIFE + TETHER_STORE_USAGE_LEEWAY + LIFE;

    report(f, JTI1, 3, NOW + 100, TETHER_STORE_USAGE_QUARANTINE, &u);
    assert_int_equal(tether_store_usage_unreported_check(&f->store, due, LIFE, &alerted),
                     TETHER_OK);
    assert_int_equal(alerted, 0);
    assert_int_equal(tether_store_usage_unreported_check(&f->store, due + 1, LIFE, &alerted),
                     TETHER_OK);
    assert_int_equal(alerted, 1);
    assert_int_equal(fleet_db_alerts(f->db,
                                     "kind = 'usage_unreported' AND device_id = '" DEV1 "'",
                                     "{\"gateway_accepted\": 3}"),
                     1);
    assert_int_equal(tether_store_usage_unreported_check(&f->store, due + 100, LIFE, &alerted),
                     TETHER_OK);
    assert_int_equal(alerted, 0);
    assert_int_equal(count(f, "SELECT count(*) FROM devices WHERE status = 'active'"), 2);
}

/* A backlog of tokens whose window closed days before the check (after a
 * start, the check's first window is the report retention): a batch per
 * check, each token alerted once, those of later batches too although
 * their window closed long before the checks that alerted the others. */
static void unreported_backlog_once(void **state)
{
    enum { BACKLOG = TETHER_STORE_UNREPORTED_BATCH + TETHER_STORE_UNREPORTED_BATCH / 2 };
    fixture_t *f = *state;
    tether_store_usage_result_t u;
    size_t alerted = 9;
    int64_t late = NOW + 2 * 86400;

    for (int i = 0; i < BACKLOG; i++) {
        char jti[TETHER_STORE_JTI_SIZE];

        snprintf(jti, sizeof(jti), "b%031d", i);
        assert_int_equal(tether_store_issued_token_add(&f->store, jti, DEV1, NOW + LIFE + i, NOW),
                         TETHER_OK);
        report(f, jti, 1, NOW + 100, TETHER_STORE_USAGE_ALERT, &u);
    }
    assert_int_equal(tether_store_usage_unreported_check(&f->store, late, LIFE, &alerted),
                     TETHER_OK);
    assert_int_equal(alerted, TETHER_STORE_UNREPORTED_BATCH);
    assert_int_equal(count(f, "SELECT max(exp) FROM issued_tokens WHERE jti IN (SELECT jti "
                              "FROM usage_alerts WHERE kind = 'usage_unreported')"),
                     NOW + LIFE + TETHER_STORE_UNREPORTED_BATCH - 1);
    assert_int_equal(tether_store_usage_unreported_check(&f->store, late + 15, LIFE, &alerted),
                     TETHER_OK);
    assert_int_equal(alerted, BACKLOG - TETHER_STORE_UNREPORTED_BATCH);
    assert_int_equal(tether_store_usage_unreported_check(&f->store, late + 30, LIFE, &alerted),
                     TETHER_OK);
    assert_int_equal(alerted, 0);
    assert_int_equal(count(f, "SELECT count(DISTINCT jti) FROM usage_alerts "
                              "WHERE kind = 'usage_unreported' AND jti LIKE 'b%'"),
                     BACKLOG);
    assert_int_equal(fleet_db_alerts(f->db, "kind = 'usage_unreported'", "{}"), BACKLOG);
}

/* The check's statement is index-driven on SQLite: issued_tokens by exp,
 * token_usage by jti, no table scanned (PostgreSQL plans by its figures:
 * not asserted on a small table). */
static void unreported_plan_uses_indexes(void **state)
{
    fixture_t *f = *state;
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char sql[2048];
    bool by_exp = false, by_jti = false;

    if (fleet_fixture_pg_url() != NULL)
        skip();
    assert_true((size_t)snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s",
                                 tether_sqlite_unreported_sql) < sizeof(sql));
    assert_int_equal(sqlite3_open_v2(f->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        const char *detail = (const char *)sqlite3_column_text(stmt, 3);

        assert_non_null(detail);
        assert_null(strstr(detail, "SCAN"));
        by_exp = by_exp || strstr(detail, "USING INDEX issued_tokens_exp") != NULL;
        by_jti = by_jti || strstr(detail, "USING INDEX token_usage_jti") != NULL;
    }
    assert_true(by_exp);
    assert_true(by_jti);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
}

/* ---- retention (retention.h) ---- */

#define RETAIN 3600

static void purge_at(fixture_t *f, int64_t now, uint64_t purged[TETHER_STORE_PURGE_TABLES])
{
    const tether_retention_t retention = {.token_seconds = RETAIN, .alert_seconds = 86400,
                                          .batch = 100, .pause_ms = 0};
    tether_store_purge_t batch;

    tether_retention_batch(&retention, now, LIFE, &batch);
    assert_int_equal(tether_store_purge(&f->store, &batch, purged), TETHER_OK);
}

/* A token's rows are kept for the retention after its usage window
 * (exp, the gateways' leeway, the usage_unreported check's grace); a
 * relying party's usage row until a longest token life after that; a
 * batch is followed by another only when one of its own tables was full. */
static void retention_cutoffs(void **state)
{
    const tether_retention_t retention = {.token_seconds = RETAIN, .alert_seconds = 86400,
                                          .batch = 10, .pause_ms = 5};
    uint64_t full_tokens[TETHER_STORE_PURGE_TABLES] = {10, 3, 4, 0, 0};
    uint64_t full_usage[TETHER_STORE_PURGE_TABLES] = {0, 0, 0, 10, 0};
    uint64_t full_alerts[TETHER_STORE_PURGE_TABLES] = {0, 0, 0, 0, 10};
    /* A token has several usage alerts and its counts: no sign of more. */
    uint64_t partial[TETHER_STORE_PURGE_TABLES] = {9, 9, 12, 9, 9};
    tether_store_purge_t batch;

    (void)state;
    tether_retention_batch(&retention, NOW, LIFE, &batch);
    assert_int_equal(batch.tokens_before, NOW - TETHER_STORE_USAGE_LEEWAY - LIFE - RETAIN);
    assert_int_equal(batch.usage_before, batch.tokens_before - TETHER_POLICY_LIFETIME_MAX -
                                             2 * TETHER_STORE_USAGE_LEEWAY);
    assert_int_equal(batch.alerts_before, NOW - 86400);
    assert_int_equal(batch.batch, 10);
    assert_true(tether_retention_more(&retention, full_tokens));
    assert_true(tether_retention_more(&retention, full_usage));
    assert_true(tether_retention_more(&retention, full_alerts));
    assert_false(tether_retention_more(&retention, partial));
}

/* Until its retention ends a token keeps its counts: a late report is
 * still compared with the device's final count. One second later its rows
 * go (its usage alert too); a report naming it then is one about a token
 * the fleet does not know: counted and flagged. */
static void kept_until_retention_ends(void **state)
{
    fixture_t *f = *state;
    int64_t last = NOW + LIFE + TETHER_STORE_USAGE_LEEWAY + LIFE + RETAIN;
    uint64_t purged[TETHER_STORE_PURGE_TABLES];
    tether_store_exchange_result_t r;
    tether_store_usage_result_t u;

    report(f, JTI1, 5, NOW + 100, TETHER_STORE_USAGE_ALERT, &u);
    assert_int_equal(exchange(f, NOW + LIFE + TETHER_STORE_USAGE_LEEWAY + 2, 5,
                              TETHER_STORE_USAGE_ALERT, &r),
                     TETHER_STORE_EXCHANGE_ACCEPT);
    purge_at(f, last, purged);
    assert_int_equal(purged[TETHER_STORE_PURGE_ISSUED_TOKENS], 0);
    assert_int_equal(count(f, "SELECT final FROM device_usage WHERE jti = '" JTI1 "'"), 1);
    report(f, JTI1, 2, last, TETHER_STORE_USAGE_ALERT, &u);
    assert_int_equal(u.mismatches, 1);
    assert_int_equal(u.flagged, 0);

    purge_at(f, last + 1, purged);
    assert_int_equal(purged[TETHER_STORE_PURGE_ISSUED_TOKENS], 2); /* JTI1 and JTI2 */
    assert_int_equal(purged[TETHER_STORE_PURGE_DEVICE_USAGE], 1);
    assert_int_equal(purged[TETHER_STORE_PURGE_USAGE_ALERTS], 1);
    assert_int_equal(count(f, "SELECT count(*) FROM issued_tokens WHERE jti = '" JTI1 "'"), 0);
    assert_int_equal(count(f, "SELECT count(*) FROM usage_alerts"), 0);
    /* The exchange's own token is younger. */
    assert_int_equal(count(f, "SELECT count(*) FROM issued_tokens"), 1);
    /* The relying party's row waits for its own cutoff. */
    assert_int_equal(count(f, "SELECT count(*) FROM token_usage WHERE jti = '" JTI1 "'"), 1);
    report(f, JTI1, 1, last + 2, TETHER_STORE_USAGE_ALERT, &u);
    assert_int_equal(u.flagged, 1);
    assert_int_equal(u.mismatches, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(document_round_trip),
        cmocka_unit_test(document_refusals),
        cmocka_unit_test_setup_teardown(honest_device_never_flagged, setup, teardown),
        cmocka_unit_test_setup_teardown(late_report_above_final_count, setup, teardown),
        cmocka_unit_test_setup_teardown(alert_only, setup, teardown),
        cmocka_unit_test_setup_teardown(quarantine_at_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(report_during_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(unreported_after_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(unreported_backlog_once, setup, teardown),
        cmocka_unit_test_setup_teardown(unreported_plan_uses_indexes, setup, teardown),
        cmocka_unit_test(retention_cutoffs),
        cmocka_unit_test_setup_teardown(kept_until_retention_ends, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
