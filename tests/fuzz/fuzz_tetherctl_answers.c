/*
 * tetherctl's reading of tether-fleetd's answers: every verb that reads an
 * answer, run through ctl_run as on the command line, against a fleet
 * whose every answer is the input. tether_https_request and
 * tether_https_client_setup are wrapped (-Wl,--wrap): nothing goes to the
 * network. The first byte picks the verb and --json, the second the
 * status, the rest is the body. Output goes to /dev/null: the point is
 * what the tables, the field lists and the refusal lines do with any body.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tether/bytes.h"
#include "tether/https_client.h"
#include "tether/secret_token.h"
#include "tetherctl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
tether_status_t __wrap_tether_https_client_setup(tether_https_client_t *client, const char *url,
                                                 const char *ca_file);
tether_status_t __wrap_tether_https_request(tether_https_client_t *client, const char *method,
                                            const char *path, const char *content_type,
                                            const uint8_t *body, size_t body_len,
                                            const char *const *extra_headers,
                                            tether_https_response_t *resp);

#define DEVICE "dev_111111111111111111111111"
#define LEAK_FILE "(leak file)" /* replaced by leak_file */

/* The verbs that read an answer, with their operands. */
static const char *const verbs[][6] = {
    {"device", "list"},
    {"device", "show", DEVICE},
    {"device", "allow", "--ek-sha256",
     "0000000000000000000000000000000000000000000000000000000000000000", "--name", "d1"},
    {"device", "revoke", DEVICE, "--reason", "stolen"},
    {"device", "quarantine", DEVICE},
    {"device", "reinstate", DEVICE},
    {"bootstrap", "create"},
    {"token", "create", "--role", "read", "--name", "ci"},
    {"token", "list"},
    {"token", "revoke", "7"},
    {"key", "list"},
    {"key", "rotate"},
    {"alerts"},
    {"revocations", "--after", "3"},
    {"revoke-leaked", "--dry-run", LEAK_FILE},
    {"usage", "--device", DEVICE},
};
#define VERB_COUNT (sizeof(verbs) / sizeof(verbs[0]))

static char token_file[64], leak_file[64];
static const uint8_t *answer;
static size_t answer_len;
static int answer_status;
static FILE *sink;

static const char *no_environment(const char *name)
{
    (void)name;
    return NULL;
}

static void write_file(char *path, const char *text)
{
    int fd = mkstemp(path);

    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0)
        abort();
}

static void remove_files(void)
{
    unlink(token_file);
    unlink(leak_file);
}

/* An admin token file (mode 0600, as mkstemp makes it) and a text holding
 * a token for revoke-leaked to check against the answer as a JWKS, in the
 * working directory (run_fuzzer.cmake's run folder); removed at exit. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char token[TETHER_SECRET_TOKEN_SIZE];

    (void)argc;
    (void)argv;
    if (tether_secret_token_generate(TETHER_SECRET_ADMIN, token, sizeof(token)) != TETHER_OK)
        abort();
    snprintf(token_file, sizeof(token_file), "fuzz_tetherctl_token.XXXXXX");
    write_file(token_file, token);
    tether_wipe(token, sizeof(token));
    snprintf(leak_file, sizeof(leak_file), "fuzz_tetherctl_leak.XXXXXX");
    write_file(leak_file, "log line: Authorization: Bearer "
                          "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0."
                          "eyJpc3MiOiJodHRwczovL2ZsZWV0LmV4YW1wbGU6ODQ0MyIsInN1YiI6ImRldl8x"
                          "MTExMTExMTExMTExMTExMTExMTExMTExMSIsImp0aSI6ImFiYyJ9."
                          "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl\n");
    if ((sink = fopen("/dev/null", "w")) == NULL || atexit(remove_files) != 0)
        abort();
    return 0;
}

tether_status_t __wrap_tether_https_client_setup(tether_https_client_t *client, const char *url,
                                                 const char *ca_file)
{
    (void)client;
    (void)url;
    (void)ca_file;
    return TETHER_OK;
}

/* Every request gets the input's answer, as tether_https_request hands an
 * answer over: a heap body of body_len bytes and a NUL. */
tether_status_t __wrap_tether_https_request(tether_https_client_t *client, const char *method,
                                            const char *path, const char *content_type,
                                            const uint8_t *body, size_t body_len,
                                            const char *const *extra_headers,
                                            tether_https_response_t *resp)
{
    (void)client;
    (void)method;
    (void)path;
    (void)content_type;
    (void)body;
    (void)body_len;
    (void)extra_headers;
    tether_https_response_free(resp);
    if ((resp->body = malloc(answer_len + 1)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    memcpy(resp->body, answer, answer_len);
    resp->body[answer_len] = '\0';
    resp->body_len = answer_len;
    resp->status = answer_status;
    return TETHER_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[16];
    const char *const *verb;
    ctl_io_t io = {no_environment, sink, sink};
    int argc = 0;

    if (size < 2 || size > 256 * 1024)
        return 0;
    verb = verbs[(data[0] >> 1) % VERB_COUNT];
    /* 200 most of the time, else any status a peer may send. */
    answer_status = data[1] < 128 ? 200 : 100 + (data[1] - 128) * 4;
    answer = data + 2;
    answer_len = size - 2;
    argv[argc++] = "tetherctl";
    argv[argc++] = "--fleet";
    argv[argc++] = "https://fleet.example:8443";
    argv[argc++] = "--ca";
    argv[argc++] = "/nonexistent/ca.pem";
    argv[argc++] = "--token-file";
    argv[argc++] = token_file;
    if (data[0] & 1)
        argv[argc++] = "--json";
    for (size_t i = 0; i < 6 && verb[i] != NULL; i++)
        argv[argc++] = strcmp(verb[i], LEAK_FILE) == 0 ? leak_file : (char *)verb[i];
    argv[argc] = NULL;
    (void)ctl_run(argc, argv, &io);
    return 0;
}
