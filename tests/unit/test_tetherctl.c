/*
 * tetherctl's parts that need no server: the command line and the
 * environment, durations and other values, tables and device output, the
 * admin token file, and the usage errors of the whole program.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tether/cel.h"
#include "tether/eventlog.h"
#include "tether/fleet_policy.h"
#include "tetherctl.h"
#include "tether/secret_token.h"

#define EK_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/tether-ctl-unit-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int remove_dir(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- Command line and environment ------------------------------------ */

static tether_status_t parse(ctl_args_t *args, char *message, size_t size, int argc, ...)
{
    char *argv[16] = {"tetherctl"};
    va_list ap;

    assert_true(argc < 16);
    va_start(ap, argc);
    for (int i = 1; i <= argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    return ctl_args_parse(argc + 1, argv, args, message, size);
}

static void args_anywhere(void **state)
{
    ctl_args_t a;
    char m[CTL_MESSAGE_SIZE];

    (void)state;
    assert_int_equal(parse(&a, m, sizeof(m), 7, "--fleet", "https://f", "device", "revoke",
                           "dev_1", "--reason=stolen laptop", "--json"),
                     TETHER_OK);
    assert_int_equal(a.word_count, 3);
    assert_string_equal(a.words[0], "device");
    assert_string_equal(a.words[1], "revoke");
    assert_string_equal(a.words[2], "dev_1");
    assert_string_equal(a.value[CTL_OPT_FLEET], "https://f");
    assert_string_equal(a.value[CTL_OPT_REASON], "stolen laptop");
    assert_string_equal(a.value[CTL_OPT_JSON], "");
    assert_int_equal(a.given, CTL_OPT_BIT(CTL_OPT_FLEET) | CTL_OPT_BIT(CTL_OPT_REASON) |
                                  CTL_OPT_BIT(CTL_OPT_JSON));
    assert_null(a.value[CTL_OPT_CA]);

    /* "-" is a word (standard input); "--" ends the options; -h is --help. */
    assert_int_equal(parse(&a, m, sizeof(m), 6, "device", "import", "-h", "--", "--name", "-"),
                     TETHER_OK);
    assert_int_equal(a.word_count, 4);
    assert_string_equal(a.words[2], "--name");
    assert_string_equal(a.words[3], "-");
    assert_true(a.given & CTL_OPT_BIT(CTL_OPT_HELP));
    assert_null(a.value[CTL_OPT_NAME]);

    /* An empty value is still a value: the verb judges it. */
    assert_int_equal(parse(&a, m, sizeof(m), 2, "--reason=", "x"), TETHER_OK);
    assert_string_equal(a.value[CTL_OPT_REASON], "");
}

static void args_errors(void **state)
{
    ctl_args_t a;
    char m[CTL_MESSAGE_SIZE];

    (void)state;
    assert_int_equal(parse(&a, m, sizeof(m), 2, "device", "--bogus"), TETHER_ERR_PARSE);
    assert_string_equal(m, "unknown option --bogus");
    assert_int_equal(parse(&a, m, sizeof(m), 1, "-x"), TETHER_ERR_PARSE);
    assert_non_null(strstr(m, "unknown option -x"));
    assert_int_equal(parse(&a, m, sizeof(m), 2, "token", "--name"), TETHER_ERR_PARSE);
    assert_string_equal(m, "--name needs a value");
    assert_int_equal(parse(&a, m, sizeof(m), 4, "--name", "a", "--name", "b"), TETHER_ERR_PARSE);
    assert_string_equal(m, "--name is given twice");
    assert_int_equal(parse(&a, m, sizeof(m), 2, "--json", "--json"), TETHER_ERR_PARSE);
    assert_int_equal(parse(&a, m, sizeof(m), 1, "--json=yes"), TETHER_ERR_PARSE);
    assert_string_equal(m, "--json takes no value");
    /* A prefix of an option is not the option. */
    assert_int_equal(parse(&a, m, sizeof(m), 2, "--tok", "f"), TETHER_ERR_PARSE);
    assert_int_equal(parse(&a, m, sizeof(m), 9, "a", "b", "c", "d", "e", "f", "g", "h", "i"),
                     TETHER_ERR_PARSE);
    assert_non_null(strstr(m, "too many arguments"));
}

static const char *fake_env(const char *name)
{
    if (strcmp(name, CTL_ENV_FLEET) == 0)
        return "https://env.example";
    if (strcmp(name, CTL_ENV_CA) == 0)
        return "/env/ca.pem";
    if (strcmp(name, CTL_ENV_TOKEN_FILE) == 0)
        return ""; /* set but empty: unset */
    return NULL;
}

static void settings_precedence(void **state)
{
    ctl_args_t a;
    ctl_settings_t s;
    char m[CTL_MESSAGE_SIZE];

    (void)state;
    assert_int_equal(parse(&a, m, sizeof(m), 2, "--ca", "/flag/ca.pem"), TETHER_OK);
    ctl_settings_resolve(&a, fake_env, &s);
    assert_string_equal(s.fleet_url, "https://env.example"); /* from the environment */
    assert_string_equal(s.ca_file, "/flag/ca.pem");          /* the flag wins */
    assert_null(s.token_file);                               /* empty variable */

    assert_int_equal(parse(&a, m, sizeof(m), 2, "--token-file", "/flag/tok"), TETHER_OK);
    ctl_settings_resolve(&a, NULL, &s);
    assert_null(s.fleet_url);
    assert_null(s.ca_file);
    assert_string_equal(s.token_file, "/flag/tok");
}

/* ---- Values ----------------------------------------------------------- */

static void durations(void **state)
{
    static const struct {
        const char *text;
        unsigned seconds;
    } good[] = {
        {"90s", 90},      {"15m", 900},   {"1h", 3600},        {"2d", 172800},
        {"1h30m", 5400},  {"1d2h3m4s", 93784}, {"120", 120}, {"0h5m", 300},
        {"3660d", 3660u * 86400u},
    };
    static const char *const bad[] = {
        "", "0", "0s", "0h0m", "s", "h1", "1x", "1H", "1m1h", "1h1h", "1h30", "-5m", "+5m",
        "1.5h", " 1h", "1h ", "1 h", "5ms", "1hm",
    };
    unsigned s = 7;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(ctl_duration_parse(good[i].text, &s), TETHER_OK);
        assert_int_equal(s, good[i].seconds);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = 7;
        if (ctl_duration_parse(bad[i], &s) != TETHER_ERR_PARSE)
            fail_msg("duration \"%s\" was accepted", bad[i]);
        assert_int_equal(s, 0);
    }
    /* Bounded, never wrapping. */
    assert_int_equal(ctl_duration_parse("3661d", &s), TETHER_ERR_TOO_LARGE);
    assert_int_equal(ctl_duration_parse("99999999999999999999999s", &s), TETHER_ERR_TOO_LARGE);
    assert_int_equal(ctl_duration_parse("3660d1s", &s), TETHER_ERR_TOO_LARGE);
    assert_int_equal(ctl_duration_parse(NULL, &s), TETHER_ERR_INVALID_ARGUMENT);
}

static void since_times(void **state)
{
    int64_t since = -1;

    (void)state;
    assert_int_equal(ctl_since_parse("1h", 1700000000, &since), TETHER_OK);
    assert_int_equal(since, 1700000000 - 3600);
    assert_int_equal(ctl_since_parse("2d", 1000, &since), TETHER_OK);
    assert_int_equal(since, 0);
    assert_int_equal(ctl_since_parse("2023-11-14T22:13:20Z", 0, &since), TETHER_OK);
    assert_int_equal(since, 1700000000);
    assert_int_equal(ctl_since_parse("2023-11-14T22:13:20", 0, &since), TETHER_ERR_PARSE);
    assert_int_equal(ctl_since_parse("2023-11-14T22:13:20Zx", 0, &since), TETHER_ERR_PARSE);
    assert_int_equal(ctl_since_parse("1960-01-01T00:00:00Z", 0, &since), TETHER_ERR_PARSE);
    assert_int_equal(ctl_since_parse("yesterday", 0, &since), TETHER_ERR_PARSE);
    assert_int_equal(ctl_since_parse("", 0, &since), TETHER_ERR_PARSE);
    assert_int_equal(since, 0);
    assert_int_equal(ctl_since_parse(NULL, 0, &since), TETHER_ERR_INVALID_ARGUMENT);
}

static void numbers_roles_ids(void **state)
{
    const char *roles[TETHER_ROLE_COUNT];
    char bad[sizeof(EK_A)];
    size_t n = 0;
    uint64_t v = 0;

    (void)state;
    assert_int_equal(ctl_uint_parse("1000", 1, 1000, &v), TETHER_OK);
    assert_int_equal(v, 1000);
    assert_int_equal(ctl_uint_parse("0", 0, 5, &v), TETHER_OK);
    assert_int_equal(v, 0);
    assert_int_equal(ctl_uint_parse("1001", 1, 1000, &v), TETHER_ERR_TOO_LARGE);
    assert_int_equal(ctl_uint_parse("0", 1, 1000, &v), TETHER_ERR_PARSE);
    assert_int_equal(ctl_uint_parse("07", 0, 1000, &v), TETHER_ERR_PARSE);
    assert_int_equal(ctl_uint_parse("-1", 0, 1000, &v), TETHER_ERR_PARSE);
    assert_int_equal(ctl_uint_parse("5 ", 0, 1000, &v), TETHER_ERR_PARSE);
    assert_int_equal(ctl_uint_parse("", 0, 1000, &v), TETHER_ERR_PARSE);

    assert_int_equal(ctl_roles_parse("fleet,security,read", roles, &n), TETHER_OK);
    assert_int_equal(n, 3);
    assert_string_equal(roles[0], "fleet");
    assert_string_equal(roles[2], "read");
    assert_int_equal(ctl_roles_parse("read", roles, &n), TETHER_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ctl_roles_parse("read,read", roles, &n), TETHER_ERR_PARSE);
    assert_int_equal(ctl_roles_parse("admin", roles, &n), TETHER_ERR_PARSE);
    assert_int_equal(ctl_roles_parse("read,", roles, &n), TETHER_ERR_PARSE);
    assert_int_equal(ctl_roles_parse("", roles, &n), TETHER_ERR_PARSE);
    assert_int_equal(ctl_roles_parse("Read", roles, &n), TETHER_ERR_PARSE);

    assert_true(ctl_ek_sha256_valid(EK_A));
    assert_true(ctl_ek_sha256_valid("ABCDEF0123456789abcdef0123456789"
                                    "ABCDEF0123456789abcdef0123456789"));
    assert_false(ctl_ek_sha256_valid(EK_A "a"));
    strcpy(bad, EK_A);
    bad[10] = 'g';
    assert_false(ctl_ek_sha256_valid(bad));
    assert_false(ctl_ek_sha256_valid(NULL));

    assert_true(ctl_path_id_valid("dev_0123456789abcdef01234567"));
    assert_false(ctl_path_id_valid(".."));
    assert_false(ctl_path_id_valid("dev/../x"));
    assert_false(ctl_path_id_valid("dev%2f"));
    assert_false(ctl_path_id_valid("dev?x=1"));
    assert_false(ctl_path_id_valid(""));
    assert_false(ctl_path_id_valid(NULL));
}

/* ---- Output ------------------------------------------------------------- */

/* Runs fn on a memory stream and returns what it wrote (freed by caller). */
static char *capture_table(const ctl_table_t *table)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    assert_non_null(out);
    ctl_table_print(table, out);
    fclose(out);
    return text;
}

static void table_widths(void **state)
{
    static const ctl_column_t columns[] = {{"ID", 0}, {"NAME", 0}, {"EK SHA-256", 17}};
    const char *row1[] = {"dev_1", "a-much-longer-name", EK_A};
    const char *row2[] = {"dev_22", NULL, "abc"};
    ctl_table_t t;
    char *text;

    (void)state;
    ctl_table_init(&t, columns, 3);
    assert_int_equal(ctl_table_add_row(&t, row1), TETHER_OK);
    assert_int_equal(ctl_table_add_row(&t, row2), TETHER_OK);
    text = capture_table(&t);
    /* Widths: the widest cell or header, two spaces between columns, the
     * last column unpadded; the EK cut to 16 hex digits and "…". */
    assert_string_equal(text, "ID      NAME                EK SHA-256\n"
                              "dev_1   a-much-longer-name  aaaaaaaaaaaaaaaa\xe2\x80\xa6\n"
                              "dev_22  -                   abc\n");
    free(text);
    ctl_table_free(&t);
    assert_null(t.cells);
}

static void table_header_only_and_hostile_cells(void **state)
{
    static const ctl_column_t columns[] = {{"A", 0}, {"B", 5}};
    const char *row[] = {"x\x1b[31mred\n", "\xc3\xa9t\xc3\xa9s"};
    ctl_table_t t;
    char *text;

    (void)state;
    ctl_table_init(&t, columns, 2);
    text = capture_table(&t);
    assert_string_equal(text, "A  B\n");
    free(text);
    /* Escape sequences and non-ASCII bytes from the server are neutralised
     * byte by byte, before cutting. */
    assert_int_equal(ctl_table_add_row(&t, row), TETHER_OK);
    text = capture_table(&t);
    assert_string_equal(text, "A           B\n"
                              "x?[31mred?  ??t?\xe2\x80\xa6\n");
    free(text);
    ctl_table_free(&t);
}

static void shorten_and_width(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(ctl_text_width("ab\xe2\x80\xa6"), 3);
    assert_int_equal(ctl_text_width(""), 0);
    ctl_text_shorten("abcdef", 6, out, sizeof(out));
    assert_string_equal(out, "abcdef");
    ctl_text_shorten("abcdefg", 6, out, sizeof(out));
    assert_string_equal(out, "abcde\xe2\x80\xa6");
    assert_int_equal(ctl_text_width(out), 6);
    ctl_text_shorten("abcdefg", 0, out, sizeof(out));
    assert_string_equal(out, "abcdefg");
    ctl_text_shorten("tab\there", 0, out, sizeof(out));
    assert_string_equal(out, "tab?here");
    /* A short output buffer still ends in a NUL. */
    ctl_text_shorten("abcdefghij", 0, out, 4);
    assert_string_equal(out, "abc");
    ctl_text_shorten(NULL, 0, out, sizeof(out));
    assert_string_equal(out, "");
}

static void values_and_times(void **state)
{
    cJSON *json = cJSON_Parse("{\"t\": 1714564800, \"f\": 1.5, \"neg\": -1, \"b\": true,"
                              " \"n\": null, \"r\": [\"read\", \"fleet\"],"
                              " \"o\": {\"k\": [7, 5]}}");
    char out[64];

    (void)state;
    assert_non_null(json);
    ctl_format_time(cJSON_GetObjectItem(json, "t"), out, sizeof(out));
    assert_string_equal(out, "2024-05-01T12:00:00Z");
    ctl_format_time(cJSON_GetObjectItem(json, "neg"), out, sizeof(out));
    assert_string_equal(out, "-1");
    ctl_format_time(cJSON_GetObjectItem(json, "n"), out, sizeof(out));
    assert_string_equal(out, "-");
    ctl_format_value(cJSON_GetObjectItem(json, "f"), out, sizeof(out));
    assert_string_equal(out, "1.5");
    ctl_format_value(cJSON_GetObjectItem(json, "b"), out, sizeof(out));
    assert_string_equal(out, "yes");
    ctl_format_value(cJSON_GetObjectItem(json, "r"), out, sizeof(out));
    assert_string_equal(out, "read,fleet");
    ctl_format_value(cJSON_GetObjectItem(json, "o"), out, sizeof(out));
    assert_string_equal(out, "{\"k\":[7,5]}");
    ctl_format_value(NULL, out, sizeof(out));
    assert_string_equal(out, "-");
    ctl_json_free(json);
}

static void device_lines(void **state)
{
    cJSON *device = cJSON_Parse(
        "{\"id\": \"dev_1\", \"name\": \"gw1\", \"ek_sha256\": \"" EK_A "\","
        " \"status\": \"revoked\", \"status_reason\": \"stolen\", \"allow_reenroll\": false,"
        " \"enrolled\": true, \"highest_counter\": 42, \"created_at\": 0,"
        " \"updated_at\": 1714564800, \"activated_at\": 1714564800, \"future\": null,"
        " \"ak_name\": \"000b\\u001b[2J\", \"counter_index\": \"0x01000100\"}");
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    (void)state;
    assert_non_null(device);
    ctl_print_device(out, device);
    fclose(out);
    assert_string_equal(text, "id: dev_1\n"
                              "name: gw1\n"
                              "status: revoked\n"
                              "status reason: stolen\n"
                              "ek sha256: " EK_A "\n"
                              "enrolled: yes\n"
                              "re-enrolment allowed: no\n"
                              "highest counter: 42\n"
                              "ak name: 000b?[2J\n"
                              "counter index: 0x01000100\n"
                              "created: 1970-01-01T00:00:00Z\n"
                              "updated: 2024-05-01T12:00:00Z\n"
                              "activated at: 2024-05-01T12:00:00Z\n");
    free(text);
    ctl_json_free(device);
}

/* ---- The admin token file ------------------------------------------------ */

static void write_file(const char *name, const char *content, size_t len, mode_t mode, char *path,
                       size_t size)
{
    FILE *f;

    snprintf(path, size, "%s/%s", dir, name);
    unlink(path); /* it may be read-only from the last write */
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static tether_status_t read_token(const char *content, size_t len, mode_t mode, char *token,
                                  char *message)
{
    char path[128];

    write_file("token", content, len, mode, path, sizeof(path));
    return ctl_token_file_read(path, token, message, CTL_MESSAGE_SIZE);
}

static void token_file(void **state)
{
    char good[TETHER_SECRET_TOKEN_SIZE], content[2 * CTL_TOKEN_FILE_MAX];
    char token[TETHER_SECRET_TOKEN_SIZE], message[CTL_MESSAGE_SIZE];
    char path[128], link_path[160];
    size_t n;

    (void)state;
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_ADMIN, good, sizeof(good)),
                     TETHER_OK);
    n = strlen(good);

    /* As written by tether-fleetd init > file: a trailing newline. */
    snprintf(content, sizeof(content), "%s\n", good);
    assert_int_equal(read_token(content, n + 1, 0600, token, message), TETHER_OK);
    assert_string_equal(token, good);
    assert_int_equal(read_token(good, n, 0400, token, message), TETHER_OK);
    snprintf(content, sizeof(content), "%s\r\n\n", good);
    assert_int_equal(read_token(content, n + 3, 0600, token, message), TETHER_OK);
    assert_string_equal(token, good);

    /* Wrong contents: refused, wiped, and never echoed. */
    snprintf(content, sizeof(content), " %s\n", good);
    assert_int_equal(read_token(content, n + 2, 0600, token, message), TETHER_ERR_PARSE);
    assert_string_equal(token, "");
    assert_null(strstr(message, good + 9));
    snprintf(content, sizeof(content), "%s\n%s\n", good, good);
    assert_int_equal(read_token(content, 2 * n + 2, 0600, token, message), TETHER_ERR_PARSE);
    assert_non_null(strstr(message, "does not hold one admin token"));
    memcpy(content, good, n);
    content[n - 1] = content[n - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(read_token(content, n, 0600, token, message), TETHER_ERR_VERIFY);
    assert_non_null(strstr(message, "checksum"));
    assert_null(strstr(message, good + 9));
    assert_int_equal(read_token("\n", 1, 0600, token, message), TETHER_ERR_PARSE);
    assert_non_null(strstr(message, "is empty"));
    assert_int_equal(tether_secret_token_generate(TETHER_SECRET_BOOTSTRAP, content, sizeof(good)),
                     TETHER_OK);
    assert_int_equal(read_token(content, strlen(content), 0600, token, message), TETHER_ERR_PARSE);
    assert_non_null(strstr(message, "bootstrap token"));

    /* Too large, even when it starts with a good token. */
    memset(content, '\n', sizeof(content));
    memcpy(content, good, n);
    assert_int_equal(read_token(content, CTL_TOKEN_FILE_MAX, 0600, token, message), TETHER_OK);
    assert_int_equal(read_token(content, CTL_TOKEN_FILE_MAX + 1, 0600, token, message),
                     TETHER_ERR_TOO_LARGE);
    assert_non_null(strstr(message, "larger than"));
    assert_string_equal(token, "");

    /* Group or others may access it: refused, saying how to fix it. */
    assert_int_equal(read_token(good, n, 0640, token, message), TETHER_ERR_STATE);
    assert_non_null(strstr(message, "mode 0640"));
    assert_non_null(strstr(message, "chmod 600"));
    assert_int_equal(read_token(good, n, 0604, token, message), TETHER_ERR_STATE);
    assert_int_equal(read_token(good, n, 0620, token, message), TETHER_ERR_STATE);
    assert_string_equal(token, "");

    /* Missing, a folder; a symlink to a private file is fine (mounted
     * secrets). */
    snprintf(path, sizeof(path), "%s/none", dir);
    assert_int_equal(ctl_token_file_read(path, token, message, sizeof(message)),
                     TETHER_ERR_NOT_FOUND);
    assert_non_null(strstr(message, "cannot open the admin token file"));
    assert_int_equal(ctl_token_file_read(dir, token, message, sizeof(message)), TETHER_ERR_IO);
    write_file("real", good, n, 0600, path, sizeof(path));
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    assert_int_equal(symlink(path, link_path), 0);
    assert_int_equal(ctl_token_file_read(link_path, token, message, sizeof(message)), TETHER_OK);
    assert_string_equal(token, good);
}

static void input_file(void **state)
{
    char path[128], message[CTL_MESSAGE_SIZE];
    char *data = NULL;
    size_t len = 0;

    (void)state;
    write_file("devices.csv", "ek_sha256,name\n", 15, 0644, path, sizeof(path));
    assert_int_equal(ctl_input_read(path, 100, &data, &len, message, sizeof(message)), TETHER_OK);
    assert_int_equal(len, 15);
    assert_string_equal(data, "ek_sha256,name\n");
    free(data);
    assert_int_equal(ctl_input_read(path, 14, &data, &len, message, sizeof(message)),
                     TETHER_ERR_TOO_LARGE);
    assert_null(data);
    snprintf(path, sizeof(path), "%s/none.csv", dir);
    assert_int_equal(ctl_input_read(path, 100, &data, &len, message, sizeof(message)),
                     TETHER_ERR_NOT_FOUND);
    assert_non_null(strstr(message, "none.csv"));
}

/* ---- The whole program, without a server ---------------------------------- */

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

static const char *token_env_value;
static const char *token_env(const char *name)
{
    if (strcmp(name, CTL_ENV_TOKEN_FILE) == 0)
        return token_env_value;
    if (strcmp(name, CTL_ENV_FLEET) == 0)
        return "https://127.0.0.1:9";
    if (strcmp(name, CTL_ENV_CA) == 0)
        return "/nonexistent/ca.pem";
    return NULL;
}

typedef struct run_result {
    int code;
    char *out;
    char *err;
} run_result_t;

static run_result_t run_with(ctl_getenv_fn env, int argc, ...)
{
    char *argv[16] = {"tetherctl"};
    size_t out_size = 0, err_size = 0;
    run_result_t r = {0, NULL, NULL};
    ctl_io_t io;
    va_list ap;

    va_start(ap, argc);
    for (int i = 1; i <= argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    io.getenv_fn = env;
    io.out = open_memstream(&r.out, &out_size);
    io.err = open_memstream(&r.err, &err_size);
    assert_non_null(io.out);
    assert_non_null(io.err);
    r.code = ctl_run(argc + 1, argv, &io);
    fclose(io.out);
    fclose(io.err);
    return r;
}

static void run_free(run_result_t *r)
{
    free(r->out);
    free(r->err);
}

/* Exactly one line on stderr, starting with "tetherctl: ". */
static void assert_one_error_line(const run_result_t *r, const char *needle)
{
    assert_int_equal(strncmp(r->err, "tetherctl: ", 11), 0);
    assert_non_null(strchr(r->err, '\n'));
    assert_string_equal(strchr(r->err, '\n'), "\n");
    if (strstr(r->err, needle) == NULL)
        fail_msg("\"%s\" not in: %s", needle, r->err);
}

static void run_usage_errors(void **state)
{
    run_result_t r;

    (void)state;
    r = run_with(no_env, 0);
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "a command is required");
    run_free(&r);
    r = run_with(no_env, 1, "frobnicate");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "unknown command \"frobnicate\"");
    run_free(&r);
    r = run_with(no_env, 2, "device", "explode");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "unknown command \"device explode\"");
    run_free(&r);
    r = run_with(no_env, 2, "device", "show");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "device show: ID is missing");
    run_free(&r);
    r = run_with(no_env, 4, "device", "list", "extra", "--json");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "unexpected argument \"extra\"");
    run_free(&r);
    r = run_with(no_env, 3, "device", "revoke", "dev_1");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--reason is required");
    run_free(&r);
    r = run_with(no_env, 4, "device", "list", "--ttl", "1h");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--ttl does not apply to 'device list'");
    run_free(&r);
    /* Checked before any setting is needed. */
    r = run_with(no_env, 4, "bootstrap", "create", "--ttl", "1y");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "is not a duration");
    run_free(&r);
    r = run_with(no_env, 4, "bootstrap", "create", "--uses", "0");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--uses must be");
    run_free(&r);
    r = run_with(no_env, 6, "token", "create", "--role", "root", "--name", "x");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--role must list");
    run_free(&r);
    r = run_with(no_env, 3, "token", "revoke", "abc");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "not an admin token id");
    run_free(&r);
    r = run_with(no_env, 3, "device", "show", "../../etc");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "is not a device id");
    run_free(&r);
    r = run_with(no_env, 6, "device", "allow", "--ek-sha256", "12", "--name", "x");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--ek-sha256 must be");
    run_free(&r);
    r = run_with(no_env, 3, "alerts", "--after", "-1");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--after must be");
    run_free(&r);
    r = run_with(no_env, 3, "usage", "--device", "../admin");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--device must be a device id");
    run_free(&r);
    r = run_with(no_env, 3, "usage", "--since", "yesterday");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--since must be a duration");
    run_free(&r);
    r = run_with(no_env, 3, "usage", "--after", "1");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--after does not apply to 'usage'");
    run_free(&r);
    /* Settings missing, then a missing token file: exit 2, nothing sent. */
    r = run_with(no_env, 2, "device", "list");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "no fleet URL: pass --fleet");
    run_free(&r);
    r = run_with(no_env, 4, "device", "list", "--fleet", "https://127.0.0.1:9");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "--ca FILE or set TETHER_CA");
    run_free(&r);
    token_env_value = NULL;
    r = run_with(token_env, 2, "device", "list");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "no admin token: pass --token-file");
    run_free(&r);
    token_env_value = "/nonexistent/token";
    r = run_with(token_env, 2, "device", "list");
    assert_int_equal(r.code, CTL_EXIT_USAGE);
    assert_one_error_line(&r, "cannot open the admin token file /nonexistent/token");
    assert_string_equal(r.out, "");
    run_free(&r);
}

static void run_help_and_version(void **state)
{
    static const char *const verbs[][2] = {
        {"device", "list"}, {"device", "show"},    {"device", "allow"},     {"device", "import"},
        {"device", "revoke"}, {"device", "quarantine"}, {"device", "reinstate"},
        {"bootstrap", "create"}, {"token", "create"}, {"token", "list"}, {"token", "revoke"},
    };
    run_result_t r;

    (void)state;
    r = run_with(no_env, 1, "--help");
    assert_int_equal(r.code, CTL_EXIT_OK);
    assert_non_null(strstr(r.out, "usage: tetherctl"));
    assert_non_null(strstr(r.out, CTL_ENV_TOKEN_FILE));
    assert_string_equal(r.err, "");
    run_free(&r);
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        char expected[64];
        r = run_with(no_env, 3, verbs[i][0], verbs[i][1], "--help");
        assert_int_equal(r.code, CTL_EXIT_OK);
        snprintf(expected, sizeof(expected), "usage: tetherctl %s %s", verbs[i][0], verbs[i][1]);
        assert_non_null(strstr(r.out, expected));
        run_free(&r);
    }
    r = run_with(no_env, 2, "-h", "alerts");
    assert_int_equal(r.code, CTL_EXIT_OK);
    assert_non_null(strstr(r.out, "usage: tetherctl alerts [--after ID]"));
    run_free(&r);
    r = run_with(no_env, 2, "usage", "--help");
    assert_int_equal(r.code, CTL_EXIT_OK);
    assert_non_null(strstr(r.out, "usage: tetherctl usage [--device ID] [--since T]"));
    run_free(&r);
    r = run_with(no_env, 2, "token", "--help");
    assert_int_equal(r.code, CTL_EXIT_OK);
    assert_non_null(strstr(r.out, "token revoke ID"));
    assert_null(strstr(r.out, "device list"));
    run_free(&r);
    r = run_with(no_env, 1, "--version");
    assert_int_equal(r.code, CTL_EXIT_OK);
    assert_int_equal(strncmp(r.out, "tetherctl ", 10), 0);
    run_free(&r);
}

/* ---- Fleet policies ---------------------------------------------------- */

/* Repeatable options keep every value in order; --version is a flag or
 * takes the number after it. */
static void args_repeats_and_version(void **state)
{
    ctl_args_t a;
    char m[CTL_MESSAGE_SIZE];

    (void)state;
    assert_int_equal(parse(&a, m, sizeof(m), 9, "policy", "create", "p", "--threshold",
                           "requests_per_minute=1:alert", "--source-cidr=10.0.0.0/8",
                           "--threshold", "spend_per_day=5:quarantine", "--json"),
                     TETHER_OK);
    assert_int_equal(a.repeat_count, 3);
    assert_int_equal(a.repeat_options[0], CTL_OPT_THRESHOLD);
    assert_string_equal(a.repeats[0], "requests_per_minute=1:alert");
    assert_int_equal(a.repeat_options[1], CTL_OPT_SOURCE_CIDR);
    assert_string_equal(a.repeats[1], "10.0.0.0/8");
    assert_string_equal(a.repeats[2], "spend_per_day=5:quarantine");
    assert_string_equal(a.value[CTL_OPT_THRESHOLD], "requests_per_minute=1:alert");
    assert_int_equal(a.word_count, 3);
    assert_int_equal(parse(&a, m, sizeof(m), 4, "policy", "show", "--version", "2"), TETHER_OK);
    assert_string_equal(a.value[CTL_OPT_VERSION], "2");
    assert_int_equal(a.word_count, 2);
    assert_int_equal(parse(&a, m, sizeof(m), 3, "--version", "policy", "list"), TETHER_OK);
    assert_string_equal(a.value[CTL_OPT_VERSION], "");
    assert_int_equal(a.word_count, 2);
    /* Non-repeatable options are still refused twice. */
    assert_int_equal(parse(&a, m, sizeof(m), 4, "--models", "a", "--models", "b"),
                     TETHER_ERR_PARSE);
    assert_string_equal(m, "--models is given twice");
}

/* ctl_policy_document_build on a parsed command line; *len matches out. */
static tether_status_t build(const ctl_args_t *a, char *out, size_t size, char *m)
{
    size_t len = 0;
    tether_status_t rc = ctl_policy_document_build(a, NULL, out, size, &len, m, CTL_MESSAGE_SIZE);

    assert_int_equal(len, rc == TETHER_OK ? strlen(out) : 0);
    return rc;
}

/* The options make fleet_policy.h's canonical document, which its strict
 * reader accepts as it is. */
static void policy_document_from_options(void **state)
{
    char out[TETHER_POLICY_DOCUMENT_MAX + 1], m[CTL_MESSAGE_SIZE], why[256];
    tether_policy_document_t doc;
    ctl_args_t a;

    (void)state;
    assert_int_equal(parse(&a, m, sizeof(m), 1, "--models=llama3:8b,gpt-4o*,llama3:8b"),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_OK);
    assert_string_equal(out, "{\"version\":1,\"tokens\":{\"models\":[\"gpt-4o*\",\"llama3:8b\"],"
                             "\"cost_ceiling\":0,\"lifetime_seconds\":300},\"thresholds\":[],"
                             "\"sources\":[]}");
    assert_int_equal(parse(&a, m, sizeof(m), 12, "--models", "*", "--cost-ceiling", "12.5",
                           "--token-lifetime", "60", "--threshold",
                           "spend_per_day=5:quarantine", "--threshold",
                           "requests_per_minute=20:alert", "--source-cidr", "fd00::/8"),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_OK);
    assert_string_equal(out, "{\"version\":1,\"tokens\":{\"models\":[\"*\"],\"cost_ceiling\":12.5,"
                             "\"lifetime_seconds\":60},\"thresholds\":[{\"kind\":"
                             "\"requests_per_minute\",\"value\":20,\"action\":\"alert\"},"
                             "{\"kind\":\"spend_per_day\",\"value\":5,\"action\":\"quarantine\"}],"
                             "\"sources\":[\"fd00::/8\"]}");
    assert_int_equal(tether_policy_document_parse((const uint8_t *)out, strlen(out), &doc, why,
                                                  sizeof(why)),
                     TETHER_OK);
    assert_int_equal(doc.lifetime_seconds, 60);
    assert_int_equal(doc.source_count, 1);
}

static void policy_document_refusals(void **state)
{
    char out[TETHER_POLICY_DOCUMENT_MAX + 1], small[16], m[CTL_MESSAGE_SIZE];
    ctl_args_t a;
    static const struct {
        const char *option;
        const char *value;
        const char *message;
    } cases[] = {
        {"--models", "a,,b", "each model is 1 to 128 bytes"},
        {"--cost-ceiling", "-1", "--cost-ceiling: \"-1\" is not a decimal"},
        {"--token-lifetime", "5m", "--token-lifetime \"5m\" is not a number of seconds"},
        {"--threshold", "requests_per_minute:1", "KIND=VALUE:ACTION"},
        {"--threshold", "bogus=1:alert", "KIND=VALUE:ACTION"},
        {"--threshold", "spend_per_day=5:explode", "ACTION is alert or quarantine"},
        {"--threshold", "spend_per_day=123456789012345678901:alert", "is not a decimal"},
        {"--source-cidr", "10.0.0.0", "is not ADDRESS/PREFIX"},
        {"--source-cidr", "10.0.0.0/33", "is not ADDRESS/PREFIX"},
        {"--source-cidr", "host.example/8", "is not ADDRESS/PREFIX"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* --models once: the case's own, or a good one before the case. */
        bool models = strcmp(cases[i].option, "--models") == 0;

        assert_int_equal(parse(&a, m, sizeof(m), models ? 2 : 4, cases[i].option,
                               cases[i].value, "--models", "x"),
                         TETHER_OK);
        assert_int_equal(build(&a, out, sizeof(out), m), TETHER_ERR_PARSE);
        if (strstr(m, cases[i].message) == NULL)
            fail_msg("%s %s: \"%s\" not in: %s", cases[i].option, cases[i].value,
                     cases[i].message, m);
    }
    assert_int_equal(parse(&a, m, sizeof(m), 0),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_ERR_PARSE);
    assert_string_equal(m, "--models is required");
    assert_int_equal(parse(&a, m, sizeof(m), 6, "--models", "x", "--threshold",
                           "spend_per_day=1:alert", "--threshold", "spend_per_day=2:alert"),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_ERR_PARSE);
    assert_string_equal(m, "--threshold: spend_per_day is given twice");
    assert_int_equal(parse(&a, m, sizeof(m), 2, "--models", "x"),
                     TETHER_OK);
    assert_int_equal(build(&a, small, sizeof(small), m), TETHER_ERR_TOO_LARGE);
}

#define LOG_GCE EVENTLOG_DATA_DIR "/event-gce-ubuntu-2104-log.bin"
#define LOG_MOK EVENTLOG_DATA_DIR "/event-moklisttrusted.bin"

/* Writes tether's log of one file, "agent", whose bytes hash to fill
 * repeated, into dir; its path into path. */
static void write_cel(char *path, size_t size, uint8_t fill)
{
    tether_cel_measurement_t m = {.name = "agent", .path = "/usr/bin/tether-agent",
                                  .bank_count = 1, .algorithms = {TETHER_TPM_ALG_SHA256}};
    uint8_t record[TETHER_CEL_RECORD_MAX], digests[1][TETHER_HASH_MAX_SIZE];
    size_t len = 0;
    FILE *f;

    memset(m.file_digests[0], fill, 32);
    assert_int_equal(tether_cel_encode(0, &m, record, sizeof(record), &len, digests), TETHER_OK);
    snprintf(path, size, "%s/measurements-%02x.cel", dir, fill);
    assert_non_null(f = fopen(path, "wb"));
    assert_int_equal(fwrite(record, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The document a's options make over current (policy update), read back
 * into *next by the strict reader. */
static void build_over(const ctl_args_t *a, const tether_policy_document_t *current,
                       tether_policy_document_t *next)
{
    static char out[TETHER_POLICY_DOCUMENT_MAX + 1];
    char m[CTL_MESSAGE_SIZE], why[256];
    size_t len = 0;

    if (ctl_policy_document_build(a, current, out, sizeof(out), &len, m, sizeof(m)) != TETHER_OK)
        fail_msg("build: %s", m);
    if (tether_policy_document_parse((const uint8_t *)out, len, next, why, sizeof(why)) !=
        TETHER_OK)
        fail_msg("read back: %s", why);
}

/* --from-eventlog: a platform log and tether's log make a measured_boot
 * section the strict reader accepts; an update adds to the current one,
 * --replace-reference starts over; unreadable and SHA-1-only logs are
 * refused with the file named. */
static void policy_document_from_eventlogs(void **state)
{
    static char out[TETHER_POLICY_DOCUMENT_MAX + 1];
    static tether_policy_document_t doc, next;
    char m[CTL_MESSAGE_SIZE], why[256], cel_a[128], cel_b[128];
    const tether_measured_boot_reference_t *ref = &next.measured_boot;
    ctl_args_t a;

    (void)state;
    write_cel(cel_a, sizeof(cel_a), 0xaa);
    write_cel(cel_b, sizeof(cel_b), 0xbb);
    assert_int_equal(parse(&a, m, sizeof(m), 6, "--models", "x", "--from-eventlog", LOG_GCE,
                           "--from-eventlog", cel_a),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_OK);
    assert_int_equal(tether_policy_document_parse((const uint8_t *)out, strlen(out), &doc, why,
                                                  sizeof(why)),
                     TETHER_OK);
    assert_true(doc.has_measured_boot);
    assert_int_equal(doc.measured_boot.pcr_mask, 0x43ff | 1u << 13);
    assert_int_equal(doc.measured_boot.application_count, 2);
    assert_int_equal(doc.measured_boot.ipl_count, 73);
    assert_false(doc.measured_boot.require_secure_boot); /* disabled in that log */
    assert_int_equal(doc.measured_boot.variable_mask, 0xf);
    assert_int_equal(doc.measured_boot.file_count, 1);
    assert_string_equal(doc.measured_boot.files[0].name, "agent");

    /* update: another golden log and a new version of the agent, added */
    assert_int_equal(parse(&a, m, sizeof(m), 4, "--from-eventlog", LOG_MOK, "--from-eventlog",
                           cel_b),
                     TETHER_OK);
    build_over(&a, &doc, &next);
    assert_string_equal(next.models[0], "x"); /* the rest as it stood */
    assert_int_equal(ref->file_count, 1);
    assert_int_equal(ref->files[0].digest_count, 2);
    assert_true(ref->application_count > doc.measured_boot.application_count);
    assert_true(ref->ipl_count > doc.measured_boot.ipl_count);
    for (size_t i = 0; i < doc.measured_boot.ipl_count; i++) {
        bool kept = false;

        for (size_t j = 0; j < ref->ipl_count; j++)
            kept = kept || memcmp(ref->ipl[j], doc.measured_boot.ipl[i], 32) == 0;
        assert_true(kept);
    }
    assert_true(ref->require_secure_boot); /* enabled in the new log */

    /* --replace-reference: the new logs' values alone */
    assert_int_equal(parse(&a, m, sizeof(m), 5, "--models", "y", "--from-eventlog", cel_b,
                           "--replace-reference"),
                     TETHER_OK);
    build_over(&a, &doc, &next);
    assert_string_equal(next.models[0], "y");
    assert_int_equal(ref->pcr_mask, 1u << 13);
    assert_int_equal(ref->application_count, 0);
    assert_int_equal(ref->files[0].digest_count, 1);
    assert_int_equal(ref->files[0].digests[0][0], 0xbb);
    /* --models alone keeps the current measured_boot section as it is */
    assert_int_equal(parse(&a, m, sizeof(m), 2, "--models", "z"), TETHER_OK);
    build_over(&a, &doc, &next);
    assert_string_equal(next.models[0], "z");
    assert_true(next.has_measured_boot);
    assert_memory_equal(ref, &doc.measured_boot, sizeof(*ref));
    /* ... and with --replace-reference, no section */
    assert_int_equal(parse(&a, m, sizeof(m), 3, "--models", "z", "--replace-reference"),
                     TETHER_OK);
    build_over(&a, &doc, &next);
    assert_false(next.has_measured_boot);

    assert_int_equal(parse(&a, m, sizeof(m), 4, "--models", "x", "--from-eventlog",
                           "/nonexistent/log.bin"),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_ERR_PARSE);
    assert_non_null(strstr(m, "--from-eventlog /nonexistent/log.bin: "));
    assert_int_equal(parse(&a, m, sizeof(m), 4, "--models", "x", "--from-eventlog",
                           EVENTLOG_DATA_DIR "/event-uefi-sha1-log.bin"),
                     TETHER_OK);
    assert_int_equal(build(&a, out, sizeof(out), m), TETHER_ERR_PARSE);
    assert_non_null(strstr(m, "event-uefi-sha1-log.bin: the platform log does not carry a "
                              "SHA-256 digest"));
}

/* The policy verbs' command lines are checked before anything is sent. */
static void run_policy_usage_errors(void **state)
{
    static const struct {
        int argc;
        char *argv[6];
        const char *message;
    } cases[] = {
        {4, {"device", "set-policy", "dev_1", "--json"}, "device set-policy: ID NAME is missing"},
        {3, {"policy", "create", "edge"}, "policy create: --models is required"},
        {5, {"policy", "list", "--version", "2", "--json"},
         "--version takes no value with 'policy list'"},
        {5, {"policy", "create", "edge", "--models", "x,,y"},
         "policy create: --models: each model is 1 to 128 bytes"},
        {5, {"policy", "update", "Edge!", "--models", "x"}, "\"Edge!\" is not a policy name"},
        {5, {"policy", "show", "edge", "--version", "0"}, "--version \"0\" is not a version"},
        {3, {"policy", "update", "edge"}, "policy update: --models or --from-eventlog is required"},
        {6, {"policy", "update", "edge", "--from-eventlog", "log.bin", "--cost-ceiling=1"},
         "policy update: without --models, --from-eventlog changes only the measured_boot "
         "section"},
        {6, {"policy", "create", "edge", "--models", "x", "--replace-reference"},
         "--replace-reference does not apply to 'policy create'"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *const *v = cases[i].argv;
        run_result_t r = run_with(no_env, cases[i].argc, v[0], v[1], v[2], v[3], v[4], v[5]);

        assert_int_equal(r.code, CTL_EXIT_USAGE);
        assert_one_error_line(&r, cases[i].message);
        run_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(args_anywhere),
        cmocka_unit_test(args_errors),
        cmocka_unit_test(settings_precedence),
        cmocka_unit_test(durations),
        cmocka_unit_test(since_times),
        cmocka_unit_test(numbers_roles_ids),
        cmocka_unit_test(table_widths),
        cmocka_unit_test(table_header_only_and_hostile_cells),
        cmocka_unit_test(shorten_and_width),
        cmocka_unit_test(values_and_times),
        cmocka_unit_test(device_lines),
        cmocka_unit_test_setup_teardown(token_file, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(input_file, make_dir, remove_dir),
        cmocka_unit_test(run_usage_errors),
        cmocka_unit_test(run_help_and_version),
        cmocka_unit_test(args_repeats_and_version),
        cmocka_unit_test(policy_document_from_options),
        cmocka_unit_test(policy_document_refusals),
        cmocka_unit_test_setup_teardown(policy_document_from_eventlogs, make_dir, remove_dir),
        cmocka_unit_test(run_policy_usage_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
