/* tetherctl: one admin API request over the pinned-CA HTTPS client, and
 * what its answer means for the exit code and the messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tetherctl.h"
#include "tether/bytes.h"
#include "tether/json_strict.h"

void ctl_context_init(ctl_context_t *ctx, const ctl_io_t *io, const ctl_args_t *args,
                      const char *verb)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->io = io;
    ctx->args = args;
    ctx->verb = verb;
    ctx->json = (args->given & CTL_OPT_BIT(CTL_OPT_JSON)) != 0;
    ctl_settings_resolve(args, io->getenv_fn, &ctx->settings);
    tether_https_client_init(&ctx->client);
    tether_https_response_init(&ctx->response);
}

void ctl_context_free(ctl_context_t *ctx)
{
    if (ctx == NULL)
        return;
    tether_https_response_free(&ctx->response);
    tether_https_client_free(&ctx->client);
    tether_wipe(ctx, sizeof(*ctx));
}

int ctl_fail(ctl_context_t *ctx, int code, const char *fmt, ...)
{
    char message[CTL_MESSAGE_SIZE];
    char clean[CTL_MESSAGE_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* Messages quote the server and file names: keep them to one line of
     * printable text. */
    ctl_text_shorten(message, 0, clean, sizeof(clean));
    fflush(ctx->io->out);
    if (ctx->verb != NULL)
        fprintf(ctx->io->err, CTL_PROGRAM ": %s: %s\n", ctx->verb, clean);
    else
        fprintf(ctx->io->err, CTL_PROGRAM ": %s\n", clean);
    return code;
}

/* Reads the token and sets up TLS: everything that can fail before a byte
 * is sent, all of it the caller's to fix (exit 2). */
static int connect_setup(ctl_context_t *ctx)
{
    char token[TETHER_SECRET_TOKEN_SIZE];
    char message[CTL_MESSAGE_SIZE];
    tether_status_t rc;
    int code = CTL_EXIT_USAGE;

    if (ctx->settings.fleet_url == NULL)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "no fleet URL: pass --fleet https://HOST:PORT or set " CTL_ENV_FLEET);
    if (ctx->settings.ca_file == NULL)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "no CA file to check the fleet's certificate with: pass --ca FILE or "
                        "set " CTL_ENV_CA);
    if (ctx->settings.token_file == NULL)
        return ctl_fail(ctx, CTL_EXIT_USAGE,
                        "no admin token: pass --token-file FILE or set " CTL_ENV_TOKEN_FILE);
    rc = ctl_token_file_read(ctx->settings.token_file, token, message, sizeof(message));
    if (rc != TETHER_OK) {
        ctl_fail(ctx, CTL_EXIT_USAGE, "%s", message);
        goto out;
    }
    if ((size_t)snprintf(ctx->authorization, sizeof(ctx->authorization),
                         "Authorization: Bearer %s", token) >= sizeof(ctx->authorization)) {
        ctl_fail(ctx, CTL_EXIT_USAGE, "the admin token is too long");
        goto out;
    }
    rc = tether_https_client_setup(&ctx->client, ctx->settings.fleet_url, ctx->settings.ca_file);
    if (rc != TETHER_OK) {
        ctl_fail(ctx, CTL_EXIT_USAGE, "%s", ctx->client.error);
        goto out;
    }
    ctx->connected = true;
    code = CTL_EXIT_OK;
out:
    tether_wipe(token, sizeof(token));
    if (code != CTL_EXIT_OK)
        tether_wipe(ctx->authorization, sizeof(ctx->authorization));
    return code;
}

/* The server's refusal: one line with the status, the error code and its
 * description; with --json the body on stdout too. */
static int refused(ctl_context_t *ctx, const char *method, const char *path, cJSON **json)
{
    const tether_https_response_t *resp = &ctx->response;
    const char *error = NULL, *description = NULL;
    cJSON *body = NULL;

    if (resp->body_len > 0 &&
        tether_json_parse_object((const char *)resp->body, resp->body_len, &body) == TETHER_OK) {
        error = ctl_json_string(body, "error");
        description = ctl_json_string(body, "error_description");
        if (ctx->json && ctl_print_raw_body(ctx) != CTL_EXIT_OK) {
            ctl_json_free(body);
            return CTL_EXIT_REMOTE;
        }
    }
    if (error != NULL)
        ctl_fail(ctx, CTL_EXIT_REMOTE, "HTTP %d %s: %s", resp->status, error,
                 description != NULL ? description : "(no description)");
    else
        ctl_fail(ctx, CTL_EXIT_REMOTE,
                 "HTTP %d for %s %s, without a tether error in the answer (is %s tether-fleetd?)",
                 resp->status, method, path, ctx->client.url.authority);
    if (json != NULL)
        *json = body;
    else
        ctl_json_free(body);
    return CTL_EXIT_REMOTE;
}

int ctl_request(ctl_context_t *ctx, const char *method, const char *path,
                const char *content_type, const char *body, size_t body_len, unsigned flags,
                cJSON **json)
{
    const char *headers[2] = {NULL, NULL};
    cJSON *answer = NULL;
    tether_status_t rc;
    int code;

    if (json != NULL)
        *json = NULL;
    if (!ctx->connected && (code = connect_setup(ctx)) != CTL_EXIT_OK)
        return code;
    headers[0] = (flags & CTL_CALL_PUBLIC) ? NULL : ctx->authorization;
    rc = tether_https_request(&ctx->client, method, path, content_type, (const uint8_t *)body,
                              body_len, headers, &ctx->response);
    if (rc != TETHER_OK)
        return ctl_fail(ctx, rc == TETHER_ERR_INVALID_ARGUMENT ? CTL_EXIT_USAGE : CTL_EXIT_CONNECT,
                        "%s", ctx->client.error);
    if (ctx->response.status < 200 || ctx->response.status > 299) {
        if (!(flags & CTL_CALL_QUIET))
            return refused(ctx, method, path, json);
        if (json != NULL && ctx->response.body_len > 0 &&
            tether_json_parse_object((const char *)ctx->response.body, ctx->response.body_len,
                                     json) != TETHER_OK)
            *json = NULL;
        return CTL_EXIT_REMOTE;
    }
    if (tether_json_parse_object((const char *)ctx->response.body, ctx->response.body_len,
                                 &answer) != TETHER_OK)
        return ctl_fail(ctx, CTL_EXIT_REMOTE,
                        "HTTP %d, but the answer is not a JSON object (is %s tether-fleetd?)",
                        ctx->response.status, ctx->client.url.authority);
    if (json != NULL)
        *json = answer;
    else
        ctl_json_free(answer);
    return CTL_EXIT_OK;
}

int ctl_call(ctl_context_t *ctx, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, cJSON **json)
{
    return ctl_request(ctx, method, path, content_type, body, body_len, 0, json);
}

int ctl_post_json(ctl_context_t *ctx, const char *path, cJSON *object, cJSON **json)
{
    char *text = object != NULL ? cJSON_PrintUnformatted(object) : NULL;
    int code;

    cJSON_Delete(object);
    if (text == NULL) {
        if (json != NULL)
            *json = NULL;
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "out of memory");
    }
    code = ctl_call(ctx, "POST", path, "application/json", text, strlen(text), json);
    free(text);
    return code;
}

/* Writes len bytes to fd, or through stdio when out has no descriptor. */
static bool write_out(FILE *out, const char *data, size_t len)
{
    int fd;

    if (fflush(out) != 0)
        return false;
    fd = fileno(out);
    if (fd < 0)
        return fwrite(data, 1, len, out) == len;
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

int ctl_write_secret(ctl_context_t *ctx, const char *secret, size_t len)
{
    /* Straight to the descriptor: stdio's buffer is not wiped. */
    if (!write_out(ctx->io->out, secret, len) || !write_out(ctx->io->out, "\n", 1))
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "cannot write the output: %s", strerror(errno));
    return CTL_EXIT_OK;
}

int ctl_get_list(ctl_context_t *ctx, const char *path, const char *member, cJSON **json,
                 const cJSON **list)
{
    int code;

    *list = NULL;
    if ((code = ctl_call(ctx, "GET", path, NULL, NULL, 0, json)) != CTL_EXIT_OK)
        return code;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(*json, member)))
        return ctl_fail(ctx, CTL_EXIT_REMOTE, "the answer has no \"%s\" list", member);
    if (ctx->json)
        return ctl_print_raw_body(ctx);
    *list = cJSON_GetObjectItemCaseSensitive(*json, member);
    return CTL_EXIT_OK;
}

int ctl_print_raw_body(ctl_context_t *ctx)
{
    return ctl_write_secret(ctx, (const char *)ctx->response.body, ctx->response.body_len);
}

int ctl_finish_output(const ctl_io_t *io, int code)
{
    if (fflush(io->out) != 0 || ferror(io->out)) {
        fprintf(io->err, CTL_PROGRAM ": cannot write the output: %s\n", strerror(errno));
        return code == CTL_EXIT_OK ? CTL_EXIT_REMOTE : code;
    }
    return code;
}
