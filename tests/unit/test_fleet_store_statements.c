/* The SQLite store's statement cache (store_sqlite_db.c): a statement is
 * prepared once and reused by its SQL text; one busy stepping (a list whose
 * reader runs the same statement) gets a statement of its own, and texts
 * whose hashes name the same slot each keep one; a reused statement runs
 * with the new call's arguments. Real SQLite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_fixture.h"
#include "store.h"
#include "sqlite/store_sqlite_internal.h"

/* One row per value of a recursive count: 1 .. ?1. */
#define COUNT_SQL                                                                             \
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "           \
    "SELECT i FROM n"
#define ECHO_SQL "SELECT ?"

typedef struct fixture {
    char dir[FLEET_FIXTURE_DIR_SIZE];
    char db[FLEET_FIXTURE_PATH_SIZE];
    tether_store_t store;
    sqlite_store_t *s;
} fixture_t;

static int setup(void **state)
{
    static fixture_t f;

    memset(&f, 0, sizeof(f));
    if (fleet_fixture_open("statements", f.dir, f.db, &f.store) != 0)
        return -1;
    f.s = f.store.impl;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    fleet_fixture_close(f->dir, &f->store);
    return 0;
}

static int64_t count_rows(sqlite_store_t *s, int64_t n)
{
    int64_t last = 0;

    assert_int_equal(tether_sqlite_query_one(s, "test", "SELECT max(i) FROM (" COUNT_SQL ")",
                                             SQL_ARGS(SQL_INT(n)), tether_sqlite_read_int64,
                                             &last),
                     TETHER_OK);
    return last;
}

/* The cached statement is the one used again, with the new arguments. */
static void reused_with_new_bindings(void **state)
{
    fixture_t *f = *state;
    int64_t value = 0;

    pthread_mutex_lock(&f->s->lock);
    for (int64_t n = 1; n <= 50; n++)
        assert_int_equal(count_rows(f->s, n), n);
    /* a text bound once, then NULL: the old binding is gone */
    assert_int_equal(tether_sqlite_query_one(f->s, "test", ECHO_SQL, SQL_ARGS(SQL_INT(7)),
                                             tether_sqlite_read_int64, &value),
                     TETHER_OK);
    assert_int_equal(value, 7);
    assert_int_equal(tether_sqlite_query_one(f->s, "test", ECHO_SQL, SQL_ARGS(SQL_NULL),
                                             tether_sqlite_read_int64, &value),
                     TETHER_OK);
    assert_int_equal(value, 0);
    pthread_mutex_unlock(&f->s->lock);
}

/* A list whose reader runs the statement the list is stepping: the
 * reader's call must get a statement of its own, or the list's would be
 * reset under it. */
#define PAIR_SQL "SELECT ? UNION ALL SELECT ?"

typedef struct nested {
    sqlite_store_t *s;
    int64_t rows[4], seen[4];
    size_t count;
} nested_t;

static tether_status_t read_nested(tether_sqlite_list_t *list, sqlite3_stmt *row, bool *stop)
{
    nested_t *n = list->arg;
    int64_t value = 0;

    (void)stop;
    if (n->count == 4)
        return TETHER_ERR_TOO_LARGE;
    n->rows[n->count] = sqlite3_column_int64(row, 0);
    assert_int_equal(tether_sqlite_query_one(n->s, "test", PAIR_SQL,
                                             SQL_ARGS(SQL_INT(n->rows[n->count] * 10),
                                                      SQL_INT(0)),
                                             tether_sqlite_read_int64, &value),
                     TETHER_OK);
    n->seen[n->count++] = value;
    return TETHER_OK;
}

static void busy_statement_not_shared(void **state)
{
    fixture_t *f = *state;
    nested_t n = {.s = f->s};
    tether_sqlite_list_t list = {.read = read_nested, .arg = &n};
    int64_t value = 0;

    /* cached first, so that the list steps the cached statement */
    pthread_mutex_lock(&f->s->lock);
    assert_int_equal(tether_sqlite_query_one(f->s, "test", PAIR_SQL,
                                             SQL_ARGS(SQL_INT(5), SQL_INT(6)),
                                             tether_sqlite_read_int64, &value),
                     TETHER_OK);
    pthread_mutex_unlock(&f->s->lock);
    assert_int_equal(value, 5);
    assert_int_equal(tether_sqlite_list(f->s, "test", PAIR_SQL, SQL_ARGS(SQL_INT(1), SQL_INT(2)),
                                        &list),
                     TETHER_OK);
    assert_int_equal(n.count, 2);
    assert_int_equal(n.rows[0], 1);
    assert_int_equal(n.rows[1], 2);
    assert_int_equal(n.seen[0], 10);
    assert_int_equal(n.seen[1], 20);
    pthread_mutex_lock(&f->s->lock);
    assert_int_equal(count_rows(f->s, 9), 9); /* the cache still serves after */
    pthread_mutex_unlock(&f->s->lock);
}

/* Texts whose hashes share a slot: each answers its own. */
static void slot_shared_by_two_texts(void **state)
{
    fixture_t *f = *state;
    char texts[TETHER_SQLITE_CACHED_STATEMENTS + 1][32];
    int64_t value = 0;

    pthread_mutex_lock(&f->s->lock);
    /* 65 texts into 64 slots: at least two share one */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i <= TETHER_SQLITE_CACHED_STATEMENTS; i++) {
            snprintf(texts[i], sizeof(texts[i]), "SELECT %d + ?", i * 1000);
            assert_int_equal(tether_sqlite_query_one(f->s, "test", texts[i],
                                                     SQL_ARGS(SQL_INT(round)),
                                                     tether_sqlite_read_int64, &value),
                             TETHER_OK);
            assert_int_equal(value, i * 1000 + round);
        }
    pthread_mutex_unlock(&f->s->lock);
}

/* Whether a statement of text is kept in the cache. */
static bool kept(const sqlite_store_t *s, const char *text)
{
    for (size_t i = 0; i < TETHER_SQLITE_CACHED_STATEMENTS; i++)
        if (s->statements[i].stmt != NULL && strcmp(sqlite3_sql(s->statements[i].stmt), text) == 0)
            return true;
    return false;
}

/* Half as many texts as slots, some sharing the slot their hash names:
 * each keeps a statement (the probe sequence), so none is prepared anew at
 * each use. */
static void texts_sharing_a_slot_all_kept(void **state)
{
    fixture_t *f = *state;
    char texts[TETHER_SQLITE_CACHED_STATEMENTS / 2][32];
    int64_t value = 0;

    pthread_mutex_lock(&f->s->lock);
    for (int i = 0; i < TETHER_SQLITE_CACHED_STATEMENTS / 2; i++) {
        snprintf(texts[i], sizeof(texts[i]), "SELECT %d + ?", i * 1000);
        assert_int_equal(tether_sqlite_query_one(f->s, "test", texts[i], SQL_ARGS(SQL_INT(1)),
                                                 tether_sqlite_read_int64, &value),
                         TETHER_OK);
        assert_int_equal(value, i * 1000 + 1);
    }
    for (int i = 0; i < TETHER_SQLITE_CACHED_STATEMENTS / 2; i++)
        assert_true(kept(f->s, texts[i]));
    pthread_mutex_unlock(&f->s->lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reused_with_new_bindings, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_statement_not_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(slot_shared_by_two_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(texts_sharing_a_slot_all_kept, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
