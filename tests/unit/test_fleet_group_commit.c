/* The group commit of exchanges (store_exchange.h, tether_store_exchange_record):
 * exchanges from several threads queued behind a commit in flight are
 * recorded as one batch, with the results serial execution gives; a clone
 * in a batch quarantines its device only; a member that fails is undone
 * alone; a commit that fails fails every member and records nothing.
 * On both stores: the first commit is held until the others have queued,
 * so the batch is made by order, never by timing. On SQLite a commit hook
 * holds it (and fails the later ones); on PostgreSQL (integration
 * .fleet_group_commit_pg) a second connection holds device 0's row, which
 * the first exchange must update, until the others have queued, and a
 * deferred constraint trigger fails the commit of any other token. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "fleet_fixture.h"
#include "store.h"
#include "sqlite/store_sqlite_internal.h"

#define NOW 1700000000
#define LIFE 300
#define DEVICES 5
#define QUEUED 6        /* exchanges queued behind the first commit */
#define WAIT_MS 60000   /* bound on any wait for another thread */

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
} fixture_t;

/* One exchange of the test and what its caller got back. */
typedef struct call {
    tether_store_t *store;
    char device[TETHER_STORE_DEVICE_ID_SIZE];
    char jti[TETHER_STORE_JTI_SIZE];
    uint64_t counter;
    unsigned bytes; /* its fingerprint and nonce hash bytes, unique per call */
    tether_store_exchange_result_t result;
    tether_status_t status;
} call_t;

/* Holds the first commit until `queued` exchanges wait behind it; fails
 * the commits after it when fail_after_first is set. */
typedef struct gate {
    tether_store_t *store;
    pthread_mutex_t lock;
    size_t queued;
    unsigned commits; /* SQLite's, counted by its commit hook */
    bool fail_after_first;
} gate_t;

/* PostgreSQL: the commit of any token but the first exchange's fails (a
 * deferred constraint trigger runs at COMMIT). */
#define PG_FAIL_LATER_COMMITS                                                                 \
    "CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$"                  \
    " BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$;"                            \
    "CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON issued_tokens"                   \
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"                                             \
    " WHEN (NEW.jti <> '00000000000000000000000000001000')"                                   \
    " EXECUTE FUNCTION refuse_commit()"
#define PG_COMMITS_AGAIN                                                                      \
    "DROP TRIGGER refuse_commit ON issued_tokens; DROP FUNCTION refuse_commit()"

static void device_id(unsigned i, char id[TETHER_STORE_DEVICE_ID_SIZE])
{
    snprintf(id, TETHER_STORE_DEVICE_ID_SIZE, "dev_%024u", i);
}

static int open_fleet(fixture_t *f)
{
    tether_store_allow_t rows[DEVICES];

    if (fleet_fixture_open("group-commit", f->dir, f->db, &f->store) != 0)
        return -1;
    memset(rows, 0, sizeof(rows));
    for (unsigned i = 0; i < DEVICES; i++) {
        device_id(i, rows[i].id);
        memset(rows[i].ek_sha256, 'a' + (int)i, 64);
        snprintf(rows[i].name, sizeof(rows[i].name), "device-%u", i);
    }
    if (tether_store_device_import(&f->store, rows, DEVICES, NOW - 1000, NULL, NULL) != TETHER_OK)
        return -1;
    fleet_db_exec(f->db, "UPDATE devices SET status = 'active'");
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    if (f == NULL || open_fleet(f) != 0)
        return -1;
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

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void call_set(call_t *c, tether_store_t *store, unsigned device, uint64_t counter,
                     unsigned bytes, unsigned jti)
{
    memset(c, 0, sizeof(*c));
    c->store = store;
    device_id(device, c->device);
    snprintf(c->jti, sizeof(c->jti), "%032u", jti);
    c->counter = counter;
    c->bytes = bytes;
}

static void *record(void *arg)
{
    call_t *c = arg;
    tether_store_exchange_t ex;

    fleet_fixture_exchange(&ex, c->device, c->bytes, "127.0.0.1", NOW, c->jti, LIFE);
    ex.sighting.counter = c->counter;
    c->status = tether_store_exchange_record(c->store, &ex, NOW, &c->result);
    return NULL;
}

/* The exchanges of every test: device 0 first, alone (counter 1); then,
 * queued behind its commit, devices 1 to 4 (counters 11 to 14), a clone of
 * device 0 (counter 1 again over a fresh nonce), and an exchange of device
 * 3 (counter 30) naming device 0's token id: it fails on that after its
 * device row was written, which its savepoint must undo. */
static void calls_set(call_t *first, call_t queued[QUEUED], tether_store_t *store)
{
    call_set(first, store, 0, 1, 1, 1000);
    for (unsigned i = 1; i < DEVICES; i++)
        call_set(&queued[i - 1], store, i, 10 + i, 10 + i, 1000 + i);
    call_set(&queued[DEVICES - 1], store, 0, 1, 20, 2000);
    call_set(&queued[DEVICES], store, 3, 30, 30, 1000);
}

/* Waits (bounded) until `queued` exchanges wait behind the commit in
 * flight. */
static void wait_queued(gate_t *g)
{
    size_t waiting = 0;

    for (long ms = 0; ms < WAIT_MS && waiting < g->queued; ms++) {
        pthread_mutex_lock(&g->store->group_commit.lock);
        waiting = g->store->group_commit.waiting;
        pthread_mutex_unlock(&g->store->group_commit.lock);
        if (waiting < g->queued)
            sleep_ms(1);
    }
}

static int commit_hook(void *arg)
{
    gate_t *g = arg;
    unsigned commit;

    pthread_mutex_lock(&g->lock);
    commit = ++g->commits;
    pthread_mutex_unlock(&g->lock);
    if (commit > 1)
        return g->fail_after_first ? 1 : 0; /* non-zero: the commit fails */
    wait_queued(g);
    return 0;
}

static unsigned gate_commits(gate_t *g)
{
    unsigned n;

    pthread_mutex_lock(&g->lock);
    n = g->commits;
    pthread_mutex_unlock(&g->lock);
    return n;
}

static bool group_committing(tether_store_t *store)
{
    bool committing;

    pthread_mutex_lock(&store->group_commit.lock);
    committing = store->group_commit.committing;
    pthread_mutex_unlock(&store->group_commit.lock);
    return committing;
}

static void pg_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
}

/* Runs first alone and queued behind its commit, from threads, under the
 * gate, which is removed again before returning. */
static void run_batched(fixture_t *f, gate_t *g, call_t *first, call_t *queued)
{
    const char *url = fleet_fixture_pg_url();
    sqlite3 *db = url == NULL ? ((sqlite_store_t *)f->store.impl)->db : NULL;
    PGconn *holder = NULL;
    pthread_t threads[1 + QUEUED];

    g->store = &f->store;
    g->queued = QUEUED;
    g->commits = 0;
    pthread_mutex_init(&g->lock, NULL);
    if (db != NULL) {
        sqlite3_commit_hook(db, commit_hook, g);
    } else {
        if (g->fail_after_first)
            fleet_db_exec(f->db, PG_FAIL_LATER_COMMITS);
        holder = PQconnectdb(url);
        assert_int_equal(PQstatus(holder), CONNECTION_OK);
        pg_exec(holder, "BEGIN");
        pg_exec(holder,
                "SELECT 1 FROM devices WHERE id = 'dev_000000000000000000000000' FOR UPDATE");
    }
    assert_int_equal(pthread_create(&threads[0], NULL, record, first), 0);
    if (db != NULL) {
        for (long ms = 0; ms < WAIT_MS && gate_commits(g) == 0; ms++)
            sleep_ms(1);
        assert_int_equal(gate_commits(g), 1); /* the first commit is held */
    } else {
        /* Its batch is in flight, held at device 0's row. */
        for (long ms = 0; ms < WAIT_MS && !group_committing(&f->store); ms++)
            sleep_ms(1);
        assert_true(group_committing(&f->store));
    }
    for (size_t i = 0; i < QUEUED; i++)
        assert_int_equal(pthread_create(&threads[1 + i], NULL, record, &queued[i]), 0);
    if (holder != NULL) {
        wait_queued(g);
        pg_exec(holder, "ROLLBACK");
        PQfinish(holder);
    }
    for (size_t i = 0; i < 1 + QUEUED; i++)
        pthread_join(threads[i], NULL);
    if (db != NULL)
        sqlite3_commit_hook(db, NULL, NULL);
    else if (g->fail_after_first)
        fleet_db_exec(f->db, PG_COMMITS_AGAIN);
    pthread_mutex_destroy(&g->lock);
}

static void assert_device(tether_store_t *store, unsigned i, tether_device_status_t status,
                          bool has_counter, uint64_t highest)
{
    tether_store_exchange_device_t row;
    char id[TETHER_STORE_DEVICE_ID_SIZE];

    device_id(i, id);
    assert_int_equal(tether_store_exchange_device_get(store, id, &row), TETHER_OK);
    assert_int_equal(row.device.status, status);
    assert_int_equal(row.device.has_counter, has_counter);
    if (has_counter)
        assert_int_equal(row.device.highest_counter, highest);
}

/* The devices, alerts and tokens the exchanges of calls_set leave. */
static void assert_outcome(tether_store_t *store, const char *db)
{
    assert_device(store, 0, TETHER_DEVICE_QUARANTINED, true, 1);
    assert_device(store, 1, TETHER_DEVICE_ACTIVE, true, 11);
    assert_device(store, 2, TETHER_DEVICE_ACTIVE, true, 12);
    assert_device(store, 3, TETHER_DEVICE_ACTIVE, true, 13);
    assert_device(store, 4, TETHER_DEVICE_ACTIVE, true, 14);
    assert_int_equal(fleet_db_count(db, "SELECT count(*) FROM alerts"), 1);
    assert_int_equal(fleet_db_count(db, "SELECT count(*) FROM issued_tokens"), DEVICES);
}

static void batch_equals_serial(void **state)
{
    fixture_t *f = *state, serial;
    call_t first, queued[QUEUED], alone, one_by_one[QUEUED];
    gate_t gate = {.fail_after_first = false};
    uint64_t batches = 0, exchanges = 0;

    calls_set(&first, queued, &f->store);
    run_batched(f, &gate, &first, queued);
    /* The first commit alone, then one batch of all that queued. */
    tether_store_group_commit_counts(&f->store, &batches, &exchanges);
    assert_int_equal(batches, 2);
    assert_int_equal(exchanges, 1 + QUEUED);
    if (fleet_fixture_pg_url() == NULL)
        assert_int_equal(gate.commits, 2);
    /* What that is: device 0 accepted, then its clone quarantines it and
     * only it; devices 1 to 4 accepted; the exchange naming a token id
     * already issued fails alone, its device row write undone. Read
     * before the second fleet opens: on PostgreSQL it empties the same
     * database. */
    assert_outcome(&f->store, f->db);
    assert_int_equal(
        fleet_db_count(f->db, "SELECT count(*) FROM issued_tokens WHERE revoked = 1"), 1);

    /* The same exchanges one after the other, in a second fleet. */
    assert_int_equal(open_fleet(&serial), 0);
    calls_set(&alone, one_by_one, &serial.store);
    record(&alone);
    for (size_t i = 0; i < QUEUED; i++)
        record(&one_by_one[i]);
    assert_int_equal(first.status, alone.status);
    assert_int_equal(first.result.decision, alone.result.decision);
    for (size_t i = 0; i < QUEUED; i++) {
        assert_int_equal(queued[i].status, one_by_one[i].status);
        if (queued[i].status == TETHER_OK) {
            assert_int_equal(queued[i].result.decision, one_by_one[i].result.decision);
            assert_int_equal(queued[i].result.status, one_by_one[i].result.status);
        }
    }

    assert_int_equal(first.status, TETHER_OK);
    assert_int_equal(first.result.decision, TETHER_STORE_EXCHANGE_ACCEPT);
    for (unsigned i = 0; i < DEVICES - 1; i++) {
        assert_int_equal(queued[i].status, TETHER_OK);
        assert_int_equal(queued[i].result.decision, TETHER_STORE_EXCHANGE_ACCEPT);
    }
    assert_int_equal(queued[DEVICES - 1].status, TETHER_OK);
    assert_int_equal(queued[DEVICES - 1].result.decision, TETHER_STORE_EXCHANGE_CLONE);
    assert_int_equal(queued[DEVICES].status, TETHER_ERR_CONFLICT);
    assert_outcome(&serial.store, serial.db);
    fleet_fixture_close(serial.dir, &serial.store);
}

static void failed_commit_fails_every_member(void **state)
{
    fixture_t *f = *state;
    call_t first, queued[QUEUED];
    gate_t gate = {.fail_after_first = true};

    calls_set(&first, queued, &f->store);
    run_batched(f, &gate, &first, queued);
    assert_int_equal(first.status, TETHER_OK);
    assert_int_equal(first.result.decision, TETHER_STORE_EXCHANGE_ACCEPT);
    for (size_t i = 0; i < QUEUED; i++)
        assert_int_equal(queued[i].status, TETHER_ERR_STORE);
    /* Nothing of the batch was recorded: device 0 not quarantined, no
     * counter advanced, no alert, one token. */
    assert_device(&f->store, 0, TETHER_DEVICE_ACTIVE, true, 1);
    for (unsigned i = 1; i < DEVICES; i++)
        assert_device(&f->store, i, TETHER_DEVICE_ACTIVE, false, 0);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM alerts"), 0);
    assert_int_equal(fleet_db_count(f->db, "SELECT count(*) FROM issued_tokens"), 1);

    /* The store carries on: the same exchanges again, one at a time. */
    for (size_t i = 0; i < QUEUED; i++)
        record(&queued[i]);
    assert_int_equal(queued[0].result.decision, TETHER_STORE_EXCHANGE_ACCEPT);
    assert_int_equal(queued[DEVICES - 1].result.decision, TETHER_STORE_EXCHANGE_CLONE);
    assert_int_equal(queued[DEVICES].status, TETHER_ERR_CONFLICT);
    assert_device(&f->store, 0, TETHER_DEVICE_QUARANTINED, true, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(batch_equals_serial, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_fails_every_member, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
