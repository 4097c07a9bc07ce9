/*
 * tetherctl internals, shared by tetherctl_*.c and tests/unit/test_tetherctl.c.
 * Not a public interface: tetherctl is a client of fleetd's admin API over
 * HTTPS and links none of the server's code.
 *
 *   tetherctl_cli.c      the verb table, help texts, dispatch (ctl_run)
 *   tetherctl_args.c     command line, environment, durations, ids (pure)
 *   tetherctl_files.c    the admin token file and input files
 *   tetherctl_output.c   tables, "key: value" lines, times, messages
 *   tetherctl_client.c   the HTTPS request and the exit code of its answer
 *   tetherctl_devices.c  device verbs
 *   tetherctl_tokens.c   bootstrap tokens, admin tokens, alerts
 *   tetherctl_revocation.c  the revocation feed, revoke-leaked
 *   tetherctl_usage.c    usage and spend as relying parties reported them
 *   policies.c           fleet policies and a device's policy
 *   tetherctl_main.c     main()
 */
#ifndef TETHER_TETHERCTL_H
#define TETHER_TETHERCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "tether/error.h"
#include "tether/fleet_policy.h"
#include "tether/fleet_vocabulary.h"
#include "tether/https_client.h"
#include "tether/jose.h"
#include "tether/log.h"
#include "tether/secret_token.h"

#define CTL_PROGRAM "tetherctl"

/* Exit codes (documented in provisioning/tetherctl/README.md; scripts rely on them). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_REMOTE 1  /* the fleet refused or failed; or the output could not be written */
#define CTL_EXIT_USAGE 2   /* command line, environment or local files wrong; nothing sent */
#define CTL_EXIT_CONNECT 3 /* the fleet could not be reached over TLS */

#define CTL_ENV_FLEET "TETHER_FLEET_URL"
#define CTL_ENV_CA "TETHER_CA"
#define CTL_ENV_TOKEN_FILE "TETHER_ADMIN_TOKEN_FILE"

/* ---- Command line (tetherctl_args.c) ---------------------------------- */

typedef enum ctl_option {
    /* global */
    CTL_OPT_FLEET = 0,
    CTL_OPT_CA,
    CTL_OPT_TOKEN_FILE,
    CTL_OPT_JSON,
    CTL_OPT_HELP,
    CTL_OPT_VERSION,
    /* per verb */
    CTL_OPT_EK_SHA256,
    CTL_OPT_NAME,
    CTL_OPT_REASON,
    CTL_OPT_TTL,
    CTL_OPT_USES,
    CTL_OPT_ROLE,
    CTL_OPT_AFTER,
    CTL_OPT_WAIT,
    CTL_OPT_DRY_RUN,
    CTL_OPT_DEVICE,
    CTL_OPT_SINCE,
    CTL_OPT_FOLLOW,
    CTL_OPT_MODELS,
    CTL_OPT_COST_CEILING,
    CTL_OPT_TOKEN_LIFETIME,
    CTL_OPT_THRESHOLD,   /* repeatable */
    CTL_OPT_SOURCE_CIDR, /* repeatable */
    CTL_OPT_FROM_EVENTLOG, /* repeatable */
    CTL_OPT_REPLACE_REFERENCE,
    CTL_OPT__COUNT
} ctl_option_t;

#define CTL_OPT_BIT(o) (1u << (unsigned)(o))
#define CTL_OPTS_GLOBAL                                                                      \
    (CTL_OPT_BIT(CTL_OPT_FLEET) | CTL_OPT_BIT(CTL_OPT_CA) | CTL_OPT_BIT(CTL_OPT_TOKEN_FILE) | \
     CTL_OPT_BIT(CTL_OPT_JSON) | CTL_OPT_BIT(CTL_OPT_HELP) | CTL_OPT_BIT(CTL_OPT_VERSION))

#define CTL_MAX_WORDS 8
#define CTL_MAX_REPEATS 64 /* values of repeatable options, all together */
#define CTL_MESSAGE_SIZE 512

/* The command line split into options and words. Pointers point into argv
 * and live as long as it. Options may appear anywhere, before or after the
 * verb, as "--name value" or "--name=value"; "--" ends them. A repeatable
 * option (--threshold, --source-cidr, --from-eventlog) may be given again: value holds its
 * first value, repeats every value of every repeatable option in order.
 * --version is a flag, or takes a number when one follows it ("policy show
 * NAME --version 2"). */
typedef struct ctl_args {
    const char *value[CTL_OPT__COUNT]; /* NULL when absent; "" for a flag given */
    unsigned given;                    /* CTL_OPT_BIT of every option given */
    const char *words[CTL_MAX_WORDS];  /* verb words and arguments, in order */
    size_t word_count;
    const char *repeats[CTL_MAX_REPEATS];
    ctl_option_t repeat_options[CTL_MAX_REPEATS]; /* whose value repeats[i] is */
    size_t repeat_count;
} ctl_args_t;

/* The name of an option without dashes ("token-file"). */
const char *ctl_option_name(ctl_option_t option);

/* Parses argv[1..argc). TETHER_ERR_PARSE with message set for an unknown
 * option, a missing value, an option given twice or too many words. */
TETHER_MUST_CHECK tether_status_t ctl_args_parse(int argc, char *const *argv, ctl_args_t *args,
                                                 char *message, size_t message_size);

typedef const char *(*ctl_getenv_fn)(const char *name);

/* Where to connect and which token to send: a flag wins over its
 * environment variable; an empty variable counts as unset. Fields are NULL
 * when given neither way. */
typedef struct ctl_settings {
    const char *fleet_url;
    const char *ca_file;
    const char *token_file;
} ctl_settings_t;

void ctl_settings_resolve(const ctl_args_t *args, ctl_getenv_fn getenv_fn,
                          ctl_settings_t *settings);

/* The largest duration accepted (ten years): far beyond any server limit,
 * and far from overflow. */
#define CTL_DURATION_MAX (10u * 366u * 86400u)

/* A duration: one or more NUMBER UNIT pairs, units s, m, h, d, each at most
 * once and from largest to smallest ("90s", "15m", "1h30m", "2d"); a bare
 * number is seconds. Zero and anything over CTL_DURATION_MAX are refused.
 * TETHER_ERR_PARSE or TETHER_ERR_TOO_LARGE. */
TETHER_MUST_CHECK tether_status_t ctl_duration_parse(const char *text, unsigned *seconds);

/* A start time for --since: a duration (as ctl_duration_parse: "1h",
 * "2d") counts back from now; "YYYY-MM-DDTHH:MM:SSZ" is that UTC time.
 * *since gets Unix seconds (never before 0). TETHER_ERR_PARSE otherwise. */
TETHER_MUST_CHECK tether_status_t ctl_since_parse(const char *text, int64_t now,
                                                  int64_t *since);

/* A decimal number from min to max without sign, spaces or leading zeros
 * (beyond "0" itself). */
TETHER_MUST_CHECK tether_status_t ctl_uint_parse(const char *text, uint64_t min, uint64_t max,
                                                 uint64_t *value);

/* A comma-separated list of admin roles ("fleet,security,read"): each of
 * read, fleet, security, relying-party at most once. names gets them in the
 * order given (static strings). */
TETHER_MUST_CHECK tether_status_t ctl_roles_parse(const char *text,
                                                  const char *names[TETHER_ROLE_COUNT],
                                                  size_t *count);

/* 64 hex digits, either case. */
bool ctl_ek_sha256_valid(const char *text);

/* An id to put in a request path: 1..64 of A-Z a-z 0-9 '_' '-', so that it
 * stays one path segment whatever the user typed. */
bool ctl_path_id_valid(const char *text);

/* ---- Files (tetherctl_files.c) ------------------------------------------ */

#define CTL_TOKEN_FILE_MAX 1024
#define CTL_INPUT_FILE_MAX (1024u * 1024u) /* the largest body fleetd can be set to take */

/*
 * Reads the admin token from path into token (NUL-terminated): one
 * tthr_adm_ token, trailing whitespace (a newline) ignored, format and
 * checksum checked. Follows symlinks (mounted secrets are symlinks) and
 * accepts pipes ("--token-file <(pass show fleet)"). A regular file that its
 * group or others may read or write is refused (TETHER_ERR_STATE), as OpenSSH
 * refuses such private keys. Errors: TETHER_ERR_NOT_FOUND, TETHER_ERR_IO,
 * TETHER_ERR_STATE, TETHER_ERR_TOO_LARGE (over CTL_TOKEN_FILE_MAX),
 * TETHER_ERR_PARSE or TETHER_ERR_VERIFY (not an admin token), each with
 * message set (never holding the file's content). token and every buffer
 * that held the file's bytes are wiped on failure; the caller wipes token.
 */
TETHER_MUST_CHECK tether_status_t ctl_token_file_read(const char *path,
                                                      char token[TETHER_SECRET_TOKEN_SIZE],
                                                      char *message, size_t message_size);

/* Reads a whole input file ("-": standard input) of at most max bytes into
 * a heap buffer (NUL after the data) freed by the caller. */
TETHER_MUST_CHECK tether_status_t ctl_input_read(const char *path, size_t max, char **data,
                                                 size_t *len, char *message, size_t message_size);

/* ---- Output (tetherctl_output.c) ---------------------------------------- */

/* Display columns of a UTF-8 string (code points; every character tetherctl
 * prints is one column wide). */
size_t ctl_text_width(const char *text);

/* Copies text to out for a terminal: bytes outside printable ASCII become
 * '?' (a name or message from the server cannot move the cursor or change
 * colours); over max_width columns (0: no limit) it is cut to max_width - 1
 * characters and "…". Always NUL-terminates (cut further if out_size is
 * short). */
void ctl_text_shorten(const char *text, size_t max_width, char *out, size_t out_size);

typedef struct ctl_column {
    const char *header;
    size_t max_width; /* 0: as wide as the widest cell */
} ctl_column_t;

/* A table printed with aligned columns: two spaces between columns, the
 * last column not padded (no trailing blanks). */
typedef struct ctl_table {
    const ctl_column_t *columns; /* static; column_count entries */
    size_t column_count;
    char **cells; /* rows * column_count heap strings, already shortened */
    size_t rows;
    size_t capacity; /* rows allocated */
} ctl_table_t;

void ctl_table_init(ctl_table_t *table, const ctl_column_t *columns, size_t column_count);
/* Adds a row of column_count values (NULL prints as "-"); copies them. */
TETHER_MUST_CHECK tether_status_t ctl_table_add_row(ctl_table_t *table,
                                                    const char *const *values);
void ctl_table_print(const ctl_table_t *table, FILE *out);
void ctl_table_free(ctl_table_t *table);

/* Unix seconds as "2024-05-01T12:00:00Z"; other values as the number. */
void ctl_format_time(const cJSON *item, char *out, size_t out_size);

/* A JSON value for people: strings as they are, integers without ".0",
 * true/false as yes/no, null as "-", arrays of strings joined with ",",
 * anything else as compact JSON. Not yet shortened or sanitised. */
void ctl_format_value(const cJSON *item, char *out, size_t out_size);

/* "label: value" with value sanitised; nothing when value is NULL or "". */
void ctl_print_field(FILE *out, const char *label, const char *value);

/* A device (the admin API's device object) as "label: value" lines: the
 * known fields in a fixed order, then any other non-null field the server
 * sends (e.g. enrolment details) under its own name. */
void ctl_print_device(FILE *out, const cJSON *device);

/* The string member name of object, or NULL. */
const char *ctl_json_string(const cJSON *object, const char *name);

/* Wipes every string and number in json, then deletes it: answers may hold
 * new tokens. Accepts NULL. */
void ctl_json_free(cJSON *json);

/* ---- Running a verb ------------------------------------------------------ */

typedef struct ctl_io {
    ctl_getenv_fn getenv_fn;
    FILE *out;
    FILE *err;
} ctl_io_t;

typedef struct ctl_context {
    const ctl_io_t *io;
    const ctl_args_t *args;
    const char *verb; /* "device revoke": the start of every message */
    const char *second_arg; /* the verb's second positional argument, or NULL */
    bool json;
    ctl_settings_t settings;
    bool connected; /* token read and client set up */
    /* "Authorization: Bearer tthr_adm_..." (secret: wiped by ctl_context_free). */
    char authorization[32 + TETHER_SECRET_TOKEN_SIZE];
    tether_https_client_t client; /* must not move after setup */
    tether_https_response_t response; /* the last answer (may hold a secret) */
} ctl_context_t;

void ctl_context_init(ctl_context_t *ctx, const ctl_io_t *io, const ctl_args_t *args,
                      const char *verb);
void ctl_context_free(ctl_context_t *ctx);

/* "tetherctl: VERB: message" on the error stream; returns code. */
int ctl_fail(ctl_context_t *ctx, int code, const char *fmt, ...) TETHER_PRINTF(3, 4);

/*
 * Sends one admin API request (reading the token file and setting up TLS
 * on the first call) and returns an exit code:
 *   CTL_EXIT_OK: a 2xx answer whose body is a JSON object, in *json
 *     (free with ctl_json_free); the raw body stays in ctx->response;
 *   CTL_EXIT_REMOTE: any other answer; one line on stderr with the HTTP
 *     status, error and error_description; with --json the server's body is
 *     also printed on stdout; *json holds the error object when there is one;
 *   CTL_EXIT_USAGE: missing settings, bad token file, URL or CA file;
 *   CTL_EXIT_CONNECT: no connection, TLS failure, or no valid HTTP answer.
 * path must already be safe (ids checked with ctl_path_id_valid).
 */
int ctl_call(ctl_context_t *ctx, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, cJSON **json);

/* ctl_call with flags:
 *   CTL_CALL_PUBLIC: the admin token is not sent (the fleet's public
 *     documents, /.well-known/...; the token file is still read, since the
 *     verbs that use this go on with admin calls);
 *   CTL_CALL_QUIET: a refusal (non-2xx) prints nothing and returns
 *     CTL_EXIT_REMOTE with *json set to the error object when there is one;
 *     ctx->response.status says which. Connection failures still print. */
#define CTL_CALL_PUBLIC 0x1u
#define CTL_CALL_QUIET 0x2u
int ctl_request(ctl_context_t *ctx, const char *method, const char *path,
                const char *content_type, const char *body, size_t body_len, unsigned flags,
                cJSON **json);

/* ctl_call with object (deleted here) as a JSON body. */
int ctl_post_json(ctl_context_t *ctx, const char *path, cJSON *object, cJSON **json);

/* GET path and find the array `member` in the answer, as the list verbs
 * do. Returns an exit code; on CTL_EXIT_OK, *list is the array for a table,
 * or NULL when --json already printed the answer as it came. *json is the
 * whole answer (deleted by the caller). */
int ctl_get_list(ctl_context_t *ctx, const char *path, const char *member, cJSON **json,
                 const cJSON **list);

/* With --json: writes the last answer's body and a newline to stdout and
 * returns CTL_EXIT_OK (CTL_EXIT_REMOTE if it cannot be written). */
int ctl_print_raw_body(ctl_context_t *ctx);

/* Writes a secret and a newline to out without leaving it in stdio's
 * buffer when out is a file descriptor. */
int ctl_write_secret(ctl_context_t *ctx, const char *secret, size_t len);

/* Flushes the output; CTL_EXIT_REMOTE with a message when it failed (a
 * closed pipe, a full disk). */
int ctl_finish_output(const ctl_io_t *io, int code);

/* Verbs (tetherctl_devices.c, tetherctl_tokens.c). arg is the verb's
 * positional argument (ID, FILE) or NULL. */
typedef int (*ctl_verb_fn)(ctl_context_t *ctx, const char *arg);

int ctl_device_list(ctl_context_t *ctx, const char *arg);
int ctl_device_show(ctl_context_t *ctx, const char *arg);
int ctl_device_allow(ctl_context_t *ctx, const char *arg);
int ctl_device_import(ctl_context_t *ctx, const char *arg);
int ctl_device_revoke(ctl_context_t *ctx, const char *arg);
int ctl_device_quarantine(ctl_context_t *ctx, const char *arg);
int ctl_device_reinstate(ctl_context_t *ctx, const char *arg);
int ctl_device_set_policy(ctl_context_t *ctx, const char *arg);
int ctl_bootstrap_create(ctl_context_t *ctx, const char *arg);
int ctl_token_create(ctl_context_t *ctx, const char *arg);
int ctl_token_list(ctl_context_t *ctx, const char *arg);
int ctl_token_revoke(ctl_context_t *ctx, const char *arg);
int ctl_alerts(ctl_context_t *ctx, const char *arg);
int ctl_key_list(ctl_context_t *ctx, const char *arg);   /* tetherctl_keys.c */
int ctl_key_rotate(ctl_context_t *ctx, const char *arg); /* tetherctl_keys.c */
int ctl_revocations(ctl_context_t *ctx, const char *arg);
int ctl_revoke_leaked(ctl_context_t *ctx, const char *arg);
int ctl_usage(ctl_context_t *ctx, const char *arg); /* tetherctl_usage.c */
int ctl_policy_create(ctl_context_t *ctx, const char *arg); /* policies.c */
int ctl_policy_update(ctl_context_t *ctx, const char *arg);
int ctl_policy_show(ctl_context_t *ctx, const char *arg);
int ctl_policy_list(ctl_context_t *ctx, const char *arg);

/* ---- Fleet policies (policies.c) ----------------------------------------- */

/* The canonical policy document (fleet_policy.h) the policy options of
 * args say, written into out (NUL-terminated, *len its length): --models
 * GLOB,... (sorted, each once), --cost-ceiling X (default 0: none),
 * --token-lifetime S (default 300), each --threshold KIND=VALUE:ACTION,
 * each --source-cidr CIDR, and a measured_boot section with the reference
 * values of each --from-eventlog FILE (a platform event log, or tether's
 * log, told apart by tether_cel_recognise). With current (a policy's
 * current version, for policy update; NULL for create), the section starts
 * from current's unless --replace-reference is given, and without --models
 * the tokens, thresholds and sources are current's. Only the syntax of each
 * option is checked here; fleetd's strict reader decides the rest and says
 * why it refuses. TETHER_ERR_PARSE with message set. */
TETHER_MUST_CHECK tether_status_t ctl_policy_document_build(const ctl_args_t *args,
                                                            const tether_policy_document_t *current,
                                                            char *out, size_t size, size_t *len,
                                                            char *message, size_t message_size);

/* ---- revoke-leaked (tetherctl_revocation.c) ------------------------------ */

#define CTL_LEAK_INPUT_MAX (16u * 1024u * 1024u) /* text scanned for tokens */
#define CTL_LEAK_PREFIX_LEN 12                   /* characters of a token ever printed */

/* What a candidate token turned out to be. */
typedef enum ctl_leak_verdict {
    CTL_LEAK_OURS = 0,     /* signed by a key the fleet publishes, with its issuer */
    CTL_LEAK_NOT_OURS,     /* another signer: nothing to revoke here */
    CTL_LEAK_WRONG_ISSUER, /* a key of ours, another issuer: not revoked, reported */
    CTL_LEAK_MALFORMED,    /* looked like a token, is not one */
} ctl_leak_verdict_t;

/* One candidate found in the text. Nothing here is secret: the token
 * itself stays in the input, of which only prefix is copied. */
typedef struct ctl_leak_token {
    size_t line;                           /* 1-based line of the text */
    char prefix[CTL_LEAK_PREFIX_LEN + 1];  /* the token's first characters */
    ctl_leak_verdict_t verdict;
    char jti[65];                          /* printable ASCII, cut at 64 */
    char device_id[65];                    /* sub; "" unless ours */
    int64_t exp;                           /* 0 when unknown */
    char why[96];                          /* for not ours / malformed */
} ctl_leak_token_t;

/*
 * Checks token[0..len) (a candidate from tether_secret_token_find_jwts)
 * against the fleet's keys: the JWS signature with the key its kid names
 * (expiry and audience are not checked: a leaked expired token still
 * identifies its device), the claims an access token must have, and iss
 * against issuer when issuer is not NULL. Pure: no I/O. Fills every field
 * of out but line.
 */
void ctl_leak_check(const char *token, size_t len, const tether_jwt_keyset_t *keys,
                    const char *issuer, ctl_leak_token_t *out);

/* Sets *keys (freed with ctl_jwks_free) to the EC P-256 keys with a kid of a
 * JWKS document ({"keys": [...]}); keys of other types are skipped and
 * counted in *skipped. TETHER_ERR_PARSE when jwks has no key list. */
typedef struct ctl_jwks {
    tether_jwt_key_t *keys;
    size_t count;
    size_t skipped;
} ctl_jwks_t;
TETHER_MUST_CHECK tether_status_t ctl_jwks_parse(const cJSON *jwks, ctl_jwks_t *out);
void ctl_jwks_free(ctl_jwks_t *jwks);

/* The whole program: parses argv, runs the verb, returns the exit code. */
int ctl_run(int argc, char *const *argv, const ctl_io_t *io);

#endif
