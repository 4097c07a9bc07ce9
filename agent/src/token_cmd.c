/*
 * The commands that ask a running agent over its Unix socket, for scripts:
 * tether-agent token prints the current access token
 * (TOKEN=$(tether-agent token ...)), tether-agent dpop a DPoP proof for one
 * request (PROOF=$(tether-agent dpop ...)).
 */
#include "token_cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/bytes.h"
#include "tether/http_client.h"
#include "tether/json_strict.h"
#include "tether/transport.h"

#define RESPONSE_MAX 16384
#define IO_TIMEOUT_MS 5000u
#define REQUEST_TIMEOUT_MS 30000u

static void token_usage(FILE *out)
{
    fputs("Usage: tether-agent token --socket PATH [--status]\n"
          "\n"
          "Prints the access token held by the agent serving PATH, on one line.\n"
          "With --status, prints the agent's status (JSON) instead.\n"
          "Exit status: 0 printed, 1 no token or the agent refused, 2 bad usage.\n",
          out);
}

/* One request to the agent at path: the answer in *resp (status and a
 * bounded body). 0, or 1 after saying why on stderr as command. */
static int ask_agent(const char *command, const char *path,
                     const tether_http_client_request_t *req, tether_https_response_t *resp)
{
    const tether_http_limits_t limits = {.max_header_bytes = 4096, .max_body_bytes = RESPONSE_MAX};
    tether_socket_t sock;
    tether_transport_t transport;
    tether_http_client_failure_t failure;
    int code = 1;

    tether_socket_init(&sock, IO_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    if (tether_socket_connect_unix(&sock, path) != TETHER_OK) {
        fprintf(stderr, "tether-agent %s: cannot connect to %s: %s (is 'tether-agent run' "
                        "serving there?)\n", command, path,
                sock.error_number != 0 ? strerror(sock.error_number) : "path too long");
        goto out;
    }
    /* The agent answers one request per connection, like the fleet. */
    transport = tether_socket_transport(&sock);
    if (tether_http_client_exchange(&transport, req, &limits, resp, &failure) != TETHER_OK) {
        fprintf(stderr, "tether-agent %s: no valid answer from the agent at %s: %s\n", command,
                path, failure.transport_error == TETHER_SOCKET_TIMEOUT
                          ? "it did not answer in time"
                          : failure.text);
        goto out;
    }
    code = 0;
out:
    tether_socket_close(&sock);
    return code;
}

/* The member name of the agent's 200 answer in resp, wiped from the
 * parsed copy after printing; else the agent's error_description on
 * stderr. 0 printed, 1 not. */
static int print_member(const char *command, const char *path, const tether_https_response_t *resp,
                        const char *name)
{
    cJSON *body = NULL;
    const cJSON *value;
    int code = 1;

    if (tether_json_parse_object((const char *)resp->body, resp->body_len, &body) != TETHER_OK) {
        fprintf(stderr, "tether-agent %s: no valid answer from the agent at %s\n", command, path);
        goto out;
    }
    value = cJSON_GetObjectItemCaseSensitive(body, resp->status == 200 ? name
                                                                       : "error_description");
    if (resp->status != 200 || !cJSON_IsString(value)) {
        fprintf(stderr, "tether-agent %s: refused (HTTP %d): %s\n", command, resp->status,
                cJSON_IsString(value) ? value->valuestring : "no description");
        goto out;
    }
    printf("%s\n", value->valuestring);
    tether_wipe(value->valuestring, strlen(value->valuestring));
    code = 0;
out:
    if (resp->status == 200) {
        const cJSON *token = cJSON_GetObjectItemCaseSensitive(body, "access_token");
        if (cJSON_IsString(token))
            tether_wipe(token->valuestring, strlen(token->valuestring));
    }
    cJSON_Delete(body);
    return code;
}

int tether_agent_token_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"socket", required_argument, NULL, 's'},
        {"status", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int status_only = 0, c, code = 1;
    tether_http_client_request_t req;
    tether_https_response_t resp;

    tether_https_response_init(&resp);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'S': status_only = 1; break;
        case 'h': token_usage(stdout); return 0;
        default: token_usage(stderr); return 2;
        }
    }
    if (path == NULL || optind != argc) {
        token_usage(stderr);
        return 2;
    }
    req = (tether_http_client_request_t){.method = "GET",
                                         .authority = "localhost",
                                         .prefix = "",
                                         .path = status_only ? "/v1/status" : "/v1/token"};
    if (ask_agent("token", path, &req, &resp) != 0)
        goto out;
    if (status_only) {
        printf("%s\n", (const char *)resp.body);
        code = resp.status == 200 ? 0 : 1;
        goto out;
    }
    code = print_member("token", path, &resp, "access_token");
out:
    tether_https_response_free(&resp);
    return code;
}

static void dpop_usage(FILE *out)
{
    fputs("Usage: tether-agent dpop --socket PATH --method M --url U [--nonce N] [--json]\n"
          "\n"
          "Prints a DPoP proof (RFC 9449) for one HTTP request, signed inside the TPM\n"
          "with this device's key by the agent serving PATH, on one line. Send it in\n"
          "the request's DPoP header with 'Authorization: DPoP TOKEN'; a proof is for\n"
          "one request only. With --json, prints the agent's whole answer instead:\n"
          "{\"proof\",\"access_token\",\"token_type\",\"expires_in\"}, the proof with the\n"
          "token it is bound to.\n"
          "\n"
          "  --socket PATH   the agent's local API socket\n"
          "  --method M      the request's method, in upper case (GET, POST, ...)\n"
          "  --url U         the request's absolute http(s) URL\n"
          "  --nonce N       the server's DPoP-Nonce, when it asked for one\n"
          "  --json          print the whole answer, with the token\n"
          "  -h, --help      show this help\n"
          "Exit status: 0 printed, 1 no token or the agent refused, 2 bad usage.\n",
          out);
}

int tether_agent_dpop_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"socket", required_argument, NULL, 's'}, {"method", required_argument, NULL, 'm'},
        {"url", required_argument, NULL, 'u'},    {"nonce", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *method = NULL, *url = NULL, *nonce = NULL;
    int whole = 0, c, code = 1;
    cJSON *ask = NULL;
    char *json = NULL;
    tether_http_client_request_t req;
    tether_https_response_t resp;

    tether_https_response_init(&resp);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 's': path = optarg; break;
        case 'm': method = optarg; break;
        case 'u': url = optarg; break;
        case 'n': nonce = optarg; break;
        case 'j': whole = 1; break;
        case 'h': dpop_usage(stdout); return 0;
        default: dpop_usage(stderr); return 2;
        }
    }
    if (path == NULL || method == NULL || url == NULL || optind != argc) {
        dpop_usage(stderr);
        return 2;
    }
    /* The agent checks the fields and says what is wrong with them. */
    if ((ask = cJSON_CreateObject()) == NULL ||
        cJSON_AddStringToObject(ask, "method", method) == NULL ||
        cJSON_AddStringToObject(ask, "url", url) == NULL ||
        (nonce != NULL && cJSON_AddStringToObject(ask, "nonce", nonce) == NULL) ||
        (json = cJSON_PrintUnformatted(ask)) == NULL) {
        fprintf(stderr, "tether-agent dpop: out of memory\n");
        goto out;
    }
    req = (tether_http_client_request_t){.method = "POST",
                                         .authority = "localhost",
                                         .prefix = "",
                                         .path = "/v1/dpop",
                                         .content_type = "application/json",
                                         .body = (const uint8_t *)json,
                                         .body_len = strlen(json)};
    if (ask_agent("dpop", path, &req, &resp) != 0)
        goto out;
    if (whole && resp.status == 200) {
        printf("%s\n", (const char *)resp.body);
        code = 0;
        goto out;
    }
    code = print_member("dpop", path, &resp, "proof");
out:
    cJSON_free(json);
    cJSON_Delete(ask);
    tether_https_response_free(&resp);
    return code;
}
