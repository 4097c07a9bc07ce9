/* tetherctl verbs of containment: reading the revocation feed, and
 * revoke-leaked, which finds tether access tokens in any text, checks which
 * are this fleet's with the keys it publishes, and revokes their devices.
 * A token is never printed whole: only its first CTL_LEAK_PREFIX_LEN
 * characters and its jti. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "tetherctl.h"
#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/json_strict.h"

#define SPANS_AT_ONCE 64
#define HEADER_MAX 1024   /* base64url characters of a JWS header worth decoding */
#define KID_MAX 128

/* ---- revocations ---------------------------------------------------------- */

int ctl_revocations(ctl_context_t *ctx, const char *arg)
{
    static const ctl_column_t columns[] = {
        {"SEQ", 0}, {"DEVICE", 0}, {"JTI", 0}, {"CREATED", 0}, {"REASON", 60},
    };
    const char *after_text = ctx->args->value[CTL_OPT_AFTER];
    const char *wait_text = ctx->args->value[CTL_OPT_WAIT];
    uint64_t after = 0, wait = 0;
    char path[96];
    ctl_table_t table;
    cJSON *json = NULL;
    const cJSON *list, *entry;
    char last_seq[32] = "";
    int count = 0;
    int code;

    (void)arg;
    if (after_text != NULL && ctl_uint_parse(after_text, 0, 1ULL << 53, &after) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "--after must be a revocation seq (a number)");
    if (wait_text != NULL &&
        ctl_uint_parse(wait_text, 0, TETHER_FLEET_FEED_MAX_WAIT, &wait) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "--wait must be a number of seconds from 0 to %d",
                        TETHER_FLEET_FEED_MAX_WAIT);
    snprintf(path, sizeof(path), TETHER_FLEET_PATH_REVOCATIONS "?after=%llu&wait=%llu",
             (unsigned long long)after, (unsigned long long)wait);
    /* The fleet says nothing while it waits: give it the wait and more. */
    if (wait > 0) {
        unsigned needed = (unsigned)(wait + 15) * 1000u;
        if (ctx->client.io_timeout_ms < needed)
            ctx->client.io_timeout_ms = needed;
        if (ctx->client.request_timeout_ms < needed + 15000u)
            ctx->client.request_timeout_ms = needed + 15000u;
    }
    ctl_table_init(&table, columns, sizeof(columns) / sizeof(columns[0]));
    if ((code = ctl_call(ctx, "GET", path, NULL, NULL, 0, &json)) != CTL_EXIT_OK)
        goto out;
    list = cJSON_GetObjectItemCaseSensitive(json, "revocations");
    if (!cJSON_IsArray(list) ||
        !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(json, "last_seq"))) {
        code = ctl_fail(ctx, CTL_EXIT_REMOTE,
                        "the answer has no \"revocations\" list and last_seq");
        goto out;
    }
    if (ctx->json) {
        code = ctl_print_raw_body(ctx);
        goto out;
    }
    cJSON_ArrayForEach(entry, list)
    {
        char created[40];
        const char *row[5] = {last_seq, NULL, NULL, created, NULL};
        const cJSON *jti = cJSON_GetObjectItemCaseSensitive(entry, "jti");

        ctl_format_value(cJSON_GetObjectItemCaseSensitive(entry, "seq"), last_seq,
                         sizeof(last_seq));
        row[1] = ctl_json_string(entry, "device_id");
        row[2] = cJSON_IsString(jti) ? jti->valuestring : "*";
        ctl_format_time(cJSON_GetObjectItemCaseSensitive(entry, "created_at"), created,
                        sizeof(created));
        row[4] = ctl_json_string(entry, "reason");
        if (ctl_table_add_row(&table, row) != TETHER_OK) {
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
            goto out;
        }
        count++;
    }
    ctl_table_print(&table, ctx->io->out);
    if (count >= TETHER_FLEET_FEED_PAGE) {
        fflush(ctx->io->out);
        fprintf(ctx->io->err,
                CTL_PROGRAM ": revocations: more may follow: tetherctl revocations --after %s\n",
                last_seq);
    }
out:
    ctl_table_free(&table);
    ctl_json_free(json);
    return code;
}

/* ---- the fleet's keys ----------------------------------------------------- */

void ctl_jwks_free(ctl_jwks_t *jwks)
{
    if (jwks == NULL)
        return;
    for (size_t i = 0; i < jwks->count; i++) {
        tether_ec_key_t *key = (tether_ec_key_t *)jwks->keys[i].key; /* owned here */

        free((char *)jwks->keys[i].kid);
        tether_ec_key_free(key);
        free(key);
    }
    free(jwks->keys);
    memset(jwks, 0, sizeof(*jwks));
}

tether_status_t ctl_jwks_parse(const cJSON *jwks, ctl_jwks_t *out)
{
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(jwks, "keys");
    const cJSON *jwk;
    int size;

    if (out == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof(*out));
    if (!cJSON_IsArray(keys))
        return TETHER_ERR_PARSE;
    size = cJSON_GetArraySize(keys);
    if (size == 0)
        return TETHER_OK;
    if ((out->keys = calloc((size_t)size, sizeof(*out->keys))) == NULL)
        return TETHER_ERR_NO_MEMORY;
    cJSON_ArrayForEach(jwk, keys)
    {
        const cJSON *kid = cJSON_GetObjectItemCaseSensitive(jwk, "kid");
        tether_ec_key_t *pk;
        char *kid_copy;

        if (!cJSON_IsString(kid) || kid->valuestring == NULL || kid->valuestring[0] == '\0' ||
            strlen(kid->valuestring) > KID_MAX) {
            out->skipped++;
            continue;
        }
        if ((pk = malloc(sizeof(*pk))) == NULL)
            goto oom;
        tether_ec_key_init(pk);
        if (tether_jwk_parse(jwk, pk) != TETHER_OK) {
            free(pk);
            out->skipped++; /* another key type: never one of tether's signing keys */
            continue;
        }
        if ((kid_copy = strdup(kid->valuestring)) == NULL) {
            tether_ec_key_free(pk);
            free(pk);
            goto oom;
        }
        out->keys[out->count].kid = kid_copy;
        out->keys[out->count].key = pk;
        out->count++;
    }
    return TETHER_OK;
oom:
    ctl_jwks_free(out);
    return TETHER_ERR_NO_MEMORY;
}

/* ---- checking one candidate ------------------------------------------------ */

/* Printable ASCII of a JSON string, cut to fit out. */
static void copy_printable(char *out, size_t size, const char *text)
{
    size_t i = 0;

    for (; text != NULL && text[i] != '\0' && i + 1 < size; i++)
        out[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    out[i] = '\0';
}

/* The kid of the JWS's protected header, into kid (NUL-terminated). */
static tether_status_t header_kid(const char *token, size_t len, char *kid, size_t kid_size)
{
    const char *dot = memchr(token, '.', len);
    size_t seg = dot != NULL ? (size_t)(dot - token) : 0;
    uint8_t header[TETHER_BASE64URL_DECODED_LEN(HEADER_MAX) + 1];
    size_t header_len = 0;
    const cJSON *item;
    cJSON *json = NULL;
    tether_status_t rc;

    if (seg == 0 || seg > HEADER_MAX)
        return TETHER_ERR_PARSE;
    if ((rc = tether_base64url_decode(token, seg, header, sizeof(header), &header_len)) !=
        TETHER_OK)
        return rc;
    if ((rc = tether_json_parse_object((const char *)header, header_len, &json)) != TETHER_OK)
        return rc;
    item = cJSON_GetObjectItemCaseSensitive(json, "kid");
    if (!cJSON_IsString(item) || item->valuestring == NULL ||
        strlen(item->valuestring) >= kid_size)
        rc = TETHER_ERR_PARSE;
    else
        memcpy(kid, item->valuestring, strlen(item->valuestring) + 1);
    cJSON_Delete(json);
    return rc;
}

static const tether_ec_key_t *find_key(const tether_jwt_keyset_t *keys, const char *kid)
{
    for (size_t i = 0; keys != NULL && i < keys->count; i++) {
        if (strcmp(keys->keys[i].kid, kid) == 0)
            return keys->keys[i].key;
    }
    return NULL;
}

static bool nonempty_string(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring != NULL && item->valuestring[0] != '\0';
}

void ctl_leak_check(const char *token, size_t len, const tether_jwt_keyset_t *keys,
                    const char *issuer, ctl_leak_token_t *out)
{
    char kid[KID_MAX + 1], clean[KID_MAX + 1];
    uint8_t *payload = NULL;
    size_t payload_len = 0;
    const tether_ec_key_t *key;
    const cJSON *sub, *jti, *iss, *exp;
    cJSON *claims = NULL;
    tether_status_t rc;
    size_t line = out->line;

    memset(out, 0, sizeof(*out));
    out->line = line;
    memcpy(out->prefix, token, len < CTL_LEAK_PREFIX_LEN ? len : CTL_LEAK_PREFIX_LEN);
    out->verdict = CTL_LEAK_MALFORMED;
    if (header_kid(token, len, kid, sizeof(kid)) != TETHER_OK) {
        snprintf(out->why, sizeof(out->why), "no readable header with a kid");
        return;
    }
    if ((key = find_key(keys, kid)) == NULL) {
        copy_printable(clean, 24, kid);
        out->verdict = CTL_LEAK_NOT_OURS;
        snprintf(out->why, sizeof(out->why), "kid %.23s is not a key of this fleet", clean);
        return;
    }
    /* The signature first; nothing of the payload is believed before. */
    if ((payload = malloc(TETHER_JWS_MAX_LEN)) == NULL) {
        snprintf(out->why, sizeof(out->why), "out of memory");
        return;
    }
    rc = tether_jws_verify(token, len, key, NULL, payload, TETHER_JWS_MAX_LEN, &payload_len);
    if (rc == TETHER_ERR_VERIFY || rc == TETHER_ERR_UNSUPPORTED) {
        out->verdict = CTL_LEAK_NOT_OURS;
        snprintf(out->why, sizeof(out->why), "%s",
                 rc == TETHER_ERR_VERIFY ? "the signature does not verify with the fleet's key"
                                         : "not an ES256 signature");
        goto out;
    }
    if (rc != TETHER_OK ||
        tether_json_parse_object((const char *)payload, payload_len, &claims) != TETHER_OK) {
        snprintf(out->why, sizeof(out->why), "signed by the fleet's key, but not a JWT");
        goto out;
    }
    sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    jti = cJSON_GetObjectItemCaseSensitive(claims, "jti");
    iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    if (nonempty_string(jti))
        copy_printable(out->jti, sizeof(out->jti), jti->valuestring);
    if (cJSON_IsNumber(exp))
        out->exp = (int64_t)exp->valuedouble;
    if (!nonempty_string(sub) || !nonempty_string(jti)) {
        snprintf(out->why, sizeof(out->why), "signed by the fleet's key, but without sub or jti");
        goto out;
    }
    if (issuer != NULL && (!nonempty_string(iss) || strcmp(iss->valuestring, issuer) != 0)) {
        copy_printable(clean, 48, nonempty_string(iss) ? iss->valuestring : "(none)");
        out->verdict = CTL_LEAK_WRONG_ISSUER;
        snprintf(out->why, sizeof(out->why), "issuer %.47s is not this fleet's", clean);
        goto out;
    }
    copy_printable(out->device_id, sizeof(out->device_id), sub->valuestring);
    out->verdict = CTL_LEAK_OURS;
out:
    cJSON_Delete(claims);
    if (payload != NULL)
        tether_wipe(payload, TETHER_JWS_MAX_LEN);
    free(payload);
}

/* ---- revoke-leaked ---------------------------------------------------------- */

/* What was done about a token of ours. */
typedef enum leak_action {
    ACTION_NONE = 0,       /* not ours */
    ACTION_REVOKED,
    ACTION_ALREADY_REVOKED,
    ACTION_WOULD_REVOKE,   /* --dry-run */
    ACTION_DUPLICATE,      /* its device was handled for an earlier token */
    ACTION_UNKNOWN_DEVICE, /* the fleet has no such device */
    ACTION_FAILED,
} leak_action_t;

static const char *const action_names[] = {
    [ACTION_NONE] = NULL,
    [ACTION_REVOKED] = "revoked",
    [ACTION_ALREADY_REVOKED] = "already_revoked",
    [ACTION_WOULD_REVOKE] = "would_revoke",
    [ACTION_DUPLICATE] = "duplicate",
    [ACTION_UNKNOWN_DEVICE] = "unknown_device",
    [ACTION_FAILED] = "failed",
};

static const char *const verdict_names[] = {
    [CTL_LEAK_OURS] = "ours",
    [CTL_LEAK_NOT_OURS] = "not_ours",
    [CTL_LEAK_WRONG_ISSUER] = "wrong_issuer",
    [CTL_LEAK_MALFORMED] = "malformed",
};

typedef struct leak_entry {
    size_t offset, len; /* the candidate in the text (until the text is wiped) */
    ctl_leak_token_t token;
    leak_action_t action;
    size_t first_line; /* ACTION_DUPLICATE: the line of the token that handled the device */
    char detail[160];  /* ACTION_FAILED: the fleet's answer */
} leak_entry_t;

typedef struct leak_run {
    ctl_context_t *ctx;
    bool dry_run;
    leak_entry_t *entries;
    size_t count;
    size_t capacity;
    size_t revoked;
    bool failed;
} leak_run_t;

/* Finds every candidate in text; entries get them in order. */
static tether_status_t find_candidates(leak_run_t *run, const char *text, size_t len)
{
    tether_token_span_t spans[SPANS_AT_ONCE];
    size_t pos = 0, line = 1, counted_to = 0;

    while (pos < len) {
        size_t count = 0;
        tether_status_t rc =
            tether_secret_token_find_jwts(text + pos, len - pos, spans, SPANS_AT_ONCE, &count);

        if (rc != TETHER_OK && rc != TETHER_ERR_TOO_LARGE)
            return rc;
        for (size_t i = 0; i < count; i++) {
            size_t offset = pos + spans[i].offset;
            leak_entry_t *entry;

            for (; counted_to < offset; counted_to++)
                line += text[counted_to] == '\n' ? 1 : 0;
            if (run->count == run->capacity) {
                size_t capacity = run->capacity == 0 ? 16 : run->capacity * 2;
                leak_entry_t *grown = realloc(run->entries, capacity * sizeof(*grown));
                if (grown == NULL)
                    return TETHER_ERR_NO_MEMORY;
                run->entries = grown;
                run->capacity = capacity;
            }
            entry = &run->entries[run->count++];
            memset(entry, 0, sizeof(*entry));
            entry->offset = offset;
            entry->len = spans[i].len;
            entry->token.line = line;
        }
        if (rc != TETHER_ERR_TOO_LARGE || count == 0)
            break;
        pos += spans[count - 1].offset + spans[count - 1].len;
    }
    return TETHER_OK;
}

/* The fleet's refusal as one line for RESULT and stderr. */
static void refusal_text(ctl_context_t *ctx, const cJSON *json, char *out, size_t size)
{
    const char *error = ctl_json_string(json, "error");
    const char *description = ctl_json_string(json, "error_description");
    char clean[120];

    ctl_text_shorten(description != NULL ? description : "(no description)", 100, clean,
                     sizeof(clean));
    snprintf(out, size, "HTTP %d %s: %s", ctx->response.status,
             error != NULL ? error : "(no error code)", clean);
}

/* Revokes (or, dry, looks up) the device of a token of ours. */
static void act_on_device(leak_run_t *run, leak_entry_t *entry)
{
    ctl_context_t *ctx = run->ctx;
    char path[160], reason[96], jti_prefix[13];
    cJSON *request, *json = NULL;
    int code;
    size_t i;

    if (!ctl_path_id_valid(entry->token.device_id)) {
        entry->action = ACTION_UNKNOWN_DEVICE;
        return;
    }
    snprintf(path, sizeof(path), TETHER_FLEET_PATH_DEVICES "/%s%s", entry->token.device_id,
             run->dry_run ? "" : "/revoke");
    if (run->dry_run) {
        code = ctl_request(ctx, "GET", path, NULL, NULL, 0, CTL_CALL_QUIET, &json);
        if (code == CTL_EXIT_OK) {
            const char *status = ctl_json_string(json, "status");
            entry->action = status != NULL && strcmp(status, "revoked") == 0
                                ? ACTION_ALREADY_REVOKED
                                : ACTION_WOULD_REVOKE;
        }
    } else {
        /* The reason names the token by a jti prefix: enough to find it in
         * the fleet's records, printable ASCII as reasons must be. */
        for (i = 0; i < 12 && entry->token.jti[i] != '\0'; i++) {
            char c = entry->token.jti[i];
            jti_prefix[i] = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                             (c >= 'A' && c <= 'Z') || c == '-' || c == '_')
                                ? c
                                : '_';
        }
        jti_prefix[i] = '\0';
        snprintf(reason, sizeof(reason), "leaked token %s found by revoke-leaked", jti_prefix);
        request = cJSON_CreateObject();
        if (cJSON_AddStringToObject(request, "reason", reason) == NULL) {
            cJSON_Delete(request);
            entry->action = ACTION_FAILED;
            snprintf(entry->detail, sizeof(entry->detail), "out of memory");
            run->failed = true;
            return;
        }
        {
            char *body = cJSON_PrintUnformatted(request);
            cJSON_Delete(request);
            if (body == NULL) {
                entry->action = ACTION_FAILED;
                snprintf(entry->detail, sizeof(entry->detail), "out of memory");
                run->failed = true;
                return;
            }
            code = ctl_request(ctx, "POST", path, "application/json", body, strlen(body),
                               CTL_CALL_QUIET, &json);
            free(body);
        }
        if (code == CTL_EXIT_OK) {
            entry->action = ACTION_REVOKED;
            run->revoked++;
        }
    }
    if (code == CTL_EXIT_REMOTE && ctx->response.status == 409)
        entry->action = ACTION_ALREADY_REVOKED;
    else if (code == CTL_EXIT_REMOTE && ctx->response.status == 404)
        entry->action = ACTION_UNKNOWN_DEVICE;
    else if (code != CTL_EXIT_OK) {
        entry->action = ACTION_FAILED;
        run->failed = true;
        if (code == CTL_EXIT_REMOTE)
            refusal_text(ctx, json, entry->detail, sizeof(entry->detail));
        else
            snprintf(entry->detail, sizeof(entry->detail), "%.150s", ctx->client.error);
        /* Also on stderr, as every failure: the table may go to a file. */
        ctl_fail(ctx, code, "device %s: %s", entry->token.device_id, entry->detail);
    }
    ctl_json_free(json);
}

static void act(leak_run_t *run)
{
    for (size_t i = 0; i < run->count; i++) {
        leak_entry_t *entry = &run->entries[i];

        if (entry->token.verdict != CTL_LEAK_OURS)
            continue;
        /* One device, one revocation: later tokens point to the first. */
        for (size_t j = 0; j < i; j++) {
            if (run->entries[j].token.verdict == CTL_LEAK_OURS &&
                strcmp(run->entries[j].token.device_id, entry->token.device_id) == 0) {
                entry->action = ACTION_DUPLICATE;
                entry->first_line = run->entries[j].token.line;
                break;
            }
        }
        if (entry->action == ACTION_NONE)
            act_on_device(run, entry);
    }
}

static void result_text(const leak_entry_t *entry, char *out, size_t size)
{
    const ctl_leak_token_t *t = &entry->token;

    switch (t->verdict) {
    case CTL_LEAK_NOT_OURS:
        snprintf(out, size, "not ours: %s", t->why);
        return;
    case CTL_LEAK_WRONG_ISSUER:
        snprintf(out, size, "not ours: %s", t->why);
        return;
    case CTL_LEAK_MALFORMED:
        snprintf(out, size, "malformed: %s", t->why);
        return;
    case CTL_LEAK_OURS:
        break;
    }
    switch (entry->action) {
    case ACTION_REVOKED:
        snprintf(out, size, "ours: device revoked");
        break;
    case ACTION_ALREADY_REVOKED:
        snprintf(out, size, "ours: device already revoked");
        break;
    case ACTION_WOULD_REVOKE:
        snprintf(out, size, "ours: device would be revoked (dry run)");
        break;
    case ACTION_DUPLICATE:
        snprintf(out, size, "ours: same device as line %zu", entry->first_line);
        break;
    case ACTION_UNKNOWN_DEVICE:
        snprintf(out, size, "ours: the fleet has no device %s", t->device_id);
        break;
    case ACTION_FAILED:
        snprintf(out, size, "ours: revoking failed: %s", entry->detail);
        break;
    case ACTION_NONE:
        snprintf(out, size, "ours");
        break;
    }
}

static int print_table(leak_run_t *run)
{
    static const ctl_column_t columns[] = {
        {"LINE", 0}, {"TOKEN", 0}, {"JTI", 0}, {"DEVICE", 0}, {"RESULT", 0},
    };
    ctl_context_t *ctx = run->ctx;
    ctl_table_t table;
    size_t ours = 0, devices = 0, already = 0;
    int code = CTL_EXIT_OK;

    ctl_table_init(&table, columns, sizeof(columns) / sizeof(columns[0]));
    for (size_t i = 0; i < run->count; i++) {
        const leak_entry_t *entry = &run->entries[i];
        char line[24], prefix[CTL_LEAK_PREFIX_LEN + 8], result[320];
        const char *row[5] = {line, prefix, entry->token.jti[0] != '\0' ? entry->token.jti : NULL,
                              entry->token.device_id[0] != '\0' ? entry->token.device_id : NULL,
                              result};

        snprintf(line, sizeof(line), "%zu", entry->token.line);
        snprintf(prefix, sizeof(prefix), "%s...", entry->token.prefix);
        result_text(entry, result, sizeof(result));
        if (ctl_table_add_row(&table, row) != TETHER_OK) {
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
            goto out;
        }
        ours += entry->token.verdict == CTL_LEAK_OURS ? 1 : 0;
        devices += entry->token.verdict == CTL_LEAK_OURS && entry->action != ACTION_DUPLICATE;
        already += entry->action == ACTION_ALREADY_REVOKED ? 1 : 0;
    }
    ctl_table_print(&table, ctx->io->out);
    fprintf(ctx->io->out, "%zu token%s found, %zu of this fleet (%zu device%s): %zu %s, %zu "
                          "already revoked\n",
            run->count, run->count == 1 ? "" : "s", ours, devices, devices == 1 ? "" : "s",
            run->dry_run ? devices - already : run->revoked,
            run->dry_run ? "would be revoked" : "revoked now", already);
out:
    ctl_table_free(&table);
    return code;
}

static int print_json(leak_run_t *run, bool issuer_checked)
{
    cJSON *json = cJSON_CreateObject();
    cJSON *tokens = cJSON_AddArrayToObject(json, "tokens");
    char *text = NULL;
    int code;

    for (size_t i = 0; tokens != NULL && i < run->count; i++) {
        const leak_entry_t *entry = &run->entries[i];
        const ctl_leak_token_t *t = &entry->token;
        cJSON *item = cJSON_CreateObject();

        if (item == NULL || !cJSON_AddItemToArray(tokens, item)) {
            cJSON_Delete(item);
            tokens = NULL;
            break;
        }
        cJSON_AddNumberToObject(item, "line", (double)t->line);
        cJSON_AddStringToObject(item, "prefix", t->prefix);
        cJSON_AddStringToObject(item, "verdict", verdict_names[t->verdict]);
        if (t->jti[0] != '\0')
            cJSON_AddStringToObject(item, "jti", t->jti);
        else
            cJSON_AddNullToObject(item, "jti");
        if (t->device_id[0] != '\0')
            cJSON_AddStringToObject(item, "device_id", t->device_id);
        else
            cJSON_AddNullToObject(item, "device_id");
        if (t->exp != 0)
            cJSON_AddNumberToObject(item, "exp", (double)t->exp);
        else
            cJSON_AddNullToObject(item, "exp");
        if (action_names[entry->action] != NULL)
            cJSON_AddStringToObject(item, "result", action_names[entry->action]);
        else
            cJSON_AddNullToObject(item, "result");
        if (t->why[0] != '\0' || entry->detail[0] != '\0')
            cJSON_AddStringToObject(item, "detail", t->why[0] != '\0' ? t->why : entry->detail);
    }
    if (tokens == NULL || cJSON_AddNumberToObject(json, "devices_revoked", (double)run->revoked) ==
                              NULL ||
        cJSON_AddBoolToObject(json, "issuer_checked", issuer_checked) == NULL ||
        cJSON_AddBoolToObject(json, "dry_run", run->dry_run) == NULL ||
        (text = cJSON_Print(json)) == NULL) {
        cJSON_Delete(json);
        return ctl_fail(run->ctx, CTL_EXIT_REMOTE, "out of memory");
    }
    cJSON_Delete(json);
    code = fputs(text, run->ctx->io->out) < 0 || fputc('\n', run->ctx->io->out) == EOF
               ? CTL_EXIT_REMOTE
               : CTL_EXIT_OK;
    free(text);
    return code;
}

/* The fleet's verification keys and issuer. *issuer is NULL (and the issuer
 * not checked) when the fleet publishes no metadata. */
static int fetch_keys(ctl_context_t *ctx, ctl_jwks_t *jwks, char **issuer)
{
    cJSON *json = NULL;
    const char *text;
    int code;

    *issuer = NULL;
    code = ctl_request(ctx, "GET", TETHER_FLEET_PATH_JWKS, NULL, NULL, 0,
                       CTL_CALL_PUBLIC | CTL_CALL_QUIET, &json);
    if (code == CTL_EXIT_REMOTE) {
        char refusal[240];
        refusal_text(ctx, json, refusal, sizeof(refusal));
        ctl_json_free(json);
        return ctl_fail(ctx, CTL_EXIT_REMOTE,
                        "the fleet's keys (" TETHER_FLEET_PATH_JWKS ") could not be read: %s",
                        refusal);
    }
    if (code != CTL_EXIT_OK)
        return code;
    if (ctl_jwks_parse(json, jwks) != TETHER_OK || jwks->count == 0) {
        ctl_json_free(json);
        ctl_jwks_free(jwks);
        return ctl_fail(ctx, CTL_EXIT_REMOTE,
                        "the fleet's " TETHER_FLEET_PATH_JWKS " holds no EC P-256 key with a kid");
    }
    ctl_json_free(json);
    json = NULL;
    code = ctl_request(ctx, "GET", TETHER_FLEET_PATH_METADATA, NULL, NULL, 0,
                       CTL_CALL_PUBLIC | CTL_CALL_QUIET, &json);
    if (code == CTL_EXIT_OK && (text = ctl_json_string(json, "issuer")) != NULL &&
        text[0] != '\0') {
        if ((*issuer = strdup(text)) == NULL)
            code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
    } else if (code == CTL_EXIT_OK || code == CTL_EXIT_REMOTE) {
        fflush(ctx->io->out);
        fprintf(ctx->io->err,
                CTL_PROGRAM ": %s: the fleet publishes no issuer (" TETHER_FLEET_PATH_METADATA
                            "): tokens are checked by signature only\n",
                ctx->verb);
        code = CTL_EXIT_OK;
    }
    ctl_json_free(json);
    if (code != CTL_EXIT_OK)
        ctl_jwks_free(jwks);
    return code;
}

int ctl_revoke_leaked(ctl_context_t *ctx, const char *arg)
{
    char message[CTL_MESSAGE_SIZE];
    leak_run_t run;
    ctl_jwks_t jwks;
    tether_jwt_keyset_t keys;
    char *text = NULL, *issuer = NULL;
    size_t len = 0;
    bool json_output = ctx->json;
    int code;

    memset(&run, 0, sizeof(run));
    memset(&jwks, 0, sizeof(jwks));
    run.ctx = ctx;
    run.dry_run = (ctx->args->given & CTL_OPT_BIT(CTL_OPT_DRY_RUN)) != 0;
    if (ctl_input_read(arg, CTL_LEAK_INPUT_MAX, &text, &len, message, sizeof(message)) !=
        TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_USAGE, "%s", message);
    /* The calls below print their own errors; --json is this verb's output,
     * never the fleet's answers. */
    ctx->json = false;
    if (find_candidates(&run, text, len) != TETHER_OK) {
        code = ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
        goto out;
    }
    if (run.count > 0) {
        if ((code = fetch_keys(ctx, &jwks, &issuer)) != CTL_EXIT_OK)
            goto out;
        keys.keys = jwks.keys;
        keys.count = jwks.count;
        for (size_t i = 0; i < run.count; i++)
            ctl_leak_check(text + run.entries[i].offset, run.entries[i].len, &keys, issuer,
                           &run.entries[i].token);
    }
    /* The text holds the tokens: gone before anything is sent. */
    tether_wipe(text, len);
    act(&run);
    code = json_output ? print_json(&run, issuer != NULL) : print_table(&run);
    if (code == CTL_EXIT_OK && run.failed)
        code = CTL_EXIT_REMOTE;
out:
    ctx->json = json_output;
    if (text != NULL)
        tether_wipe(text, len);
    free(text);
    free(issuer);
    free(run.entries);
    ctl_jwks_free(&jwks);
    return code;
}
