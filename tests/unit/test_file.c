#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>

#include "tether/file.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/tether-unit-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in_dir(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static int entries_in_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void write_read_replace(void **state)
{
    char path[128];
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;

    (void)state;
    path_in_dir(path, sizeof(path), "blob");
    assert_int_equal(tether_file_write_atomic(path, "first", 5, 0600), TETHER_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(tether_file_write_atomic(path, "second!", 7, 0640), TETHER_OK);
    assert_int_equal(tether_file_read(path, 100, &data, &len), TETHER_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(data, "second!", 7);
    assert_int_equal(data[7], '\0');
    free(data);
    /* No temporary file is left behind. */
    assert_int_equal(entries_in_dir(), 1);
    assert_int_equal(tether_file_read(path, 6, &data, &len), TETHER_ERR_TOO_LARGE);
    assert_null(data);
}

/* Both readers, tether_file_read and tether_file_read_to_end. */
static void read_errors(void **state)
{
    static tether_status_t (*const readers[])(const char *, size_t, uint8_t **, size_t *) = {
        tether_file_read, tether_file_read_to_end};
    char missing[128], link[128];
    uint8_t *data = NULL;
    size_t len = 0;

    (void)state;
    path_in_dir(missing, sizeof(missing), "missing");
    path_in_dir(link, sizeof(link), "link");
    assert_int_equal(symlink("/etc/hostname", link), 0);
    for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
        assert_int_equal(readers[i](missing, 100, &data, &len), TETHER_ERR_NOT_FOUND);
        /* A folder is not a file. */
        assert_int_equal(readers[i](dir, 100, &data, &len), TETHER_ERR_IO);
        /* Symbolic links are not followed. */
        assert_int_equal(readers[i](link, 100, &data, &len), TETHER_ERR_IO);
    }
    assert_int_equal(tether_file_write_atomic("/nonexistent-folder/x", "a", 1, 0600), TETHER_ERR_IO);
}

/* A procfs file reports size 0: read to its end, within the bound. */
static void read_to_end(void **state)
{
    uint8_t *data = NULL;
    size_t len = 0;

    (void)state;
    assert_int_equal(tether_file_read("/proc/self/status", 65536, &data, &len), TETHER_OK);
    assert_int_equal(len, 0);
    free(data);
    assert_int_equal(tether_file_read_to_end("/proc/self/status", 65536, &data, &len), TETHER_OK);
    assert_true(len > 0 && strncmp((const char *)data, "Name:", 5) == 0);
    assert_int_equal(data[len], '\0');
    free(data);
    assert_int_equal(tether_file_read_to_end("/proc/self/status", 10, &data, &len),
                     TETHER_ERR_TOO_LARGE);
    assert_null(data);
    assert_int_equal(len, 0);
}

static void create_once_never_replaces(void **state)
{
    char path[128];
    uint8_t *data = NULL;
    size_t len = 0;
    struct stat st;

    (void)state;
    path_in_dir(path, sizeof(path), "key");
    assert_int_equal(tether_file_create_once(path, "first", 5, 0600), TETHER_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A second writer loses quietly: the first file stays. */
    assert_int_equal(tether_file_create_once(path, "second", 6, 0600), TETHER_OK);
    assert_int_equal(tether_file_read(path, 100, &data, &len), TETHER_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "first", 5);
    free(data);
    assert_int_equal(entries_in_dir(), 1);
    assert_int_equal(tether_dir_sync(dir), TETHER_OK);
    assert_int_equal(tether_dir_sync(path), TETHER_ERR_IO);
}

static void wipe_remove(void **state)
{
    char path[128];

    (void)state;
    path_in_dir(path, sizeof(path), "secret");
    assert_int_equal(tether_file_write_atomic(path, "tthr_boot_secret", 16, 0600), TETHER_OK);
    assert_int_equal(tether_file_wipe_remove(path), TETHER_OK);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(tether_file_wipe_remove(path), TETHER_OK); /* already gone */
}

static void private_dir(void **state)
{
    char path[128];
    struct stat st;

    (void)state;
    path_in_dir(path, sizeof(path), "state");
    assert_int_equal(tether_dir_ensure_private(path), TETHER_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(tether_dir_ensure_private(path), TETHER_OK);
    assert_int_equal(chmod(path, 0777), 0);
    assert_int_equal(tether_dir_ensure_private(path), TETHER_ERR_STATE);
    path_in_dir(path, sizeof(path), "file");
    assert_int_equal(tether_file_write_atomic(path, "x", 1, 0600), TETHER_OK);
    assert_int_equal(tether_dir_ensure_private(path), TETHER_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(write_read_replace, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(read_errors, make_dir, remove_dir),
        cmocka_unit_test(read_to_end),
        cmocka_unit_test_setup_teardown(create_once_never_replaces, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(wipe_remove, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(private_dir, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
