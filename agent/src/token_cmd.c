/*
 * tether-agent token: asks a running agent for the current access token over
 * its Unix socket and prints it, for scripts (TOKEN=$(tether-agent token ...)).
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
    tether_socket_t sock;
    tether_transport_t transport;
    tether_http_client_request_t req;
    tether_http_client_failure_t failure;
    tether_https_response_t resp;
    const tether_http_limits_t limits = {.max_header_bytes = 4096, .max_body_bytes = RESPONSE_MAX};
    cJSON *body = NULL;
    const cJSON *token;

    tether_https_response_init(&resp);
    tether_socket_init(&sock, IO_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
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
    if (tether_socket_connect_unix(&sock, path) != TETHER_OK) {
        fprintf(stderr, "tether-agent token: cannot connect to %s: %s (is 'tether-agent run' "
                        "serving there?)\n", path,
                sock.error_number != 0 ? strerror(sock.error_number) : "path too long");
        return 1;
    }
    /* The agent answers one request per connection, like the fleet. */
    transport = tether_socket_transport(&sock);
    req = (tether_http_client_request_t){.method = "GET",
                                         .authority = "localhost",
                                         .prefix = "",
                                         .path = status_only ? "/v1/status" : "/v1/token"};
    if (tether_http_client_exchange(&transport, &req, &limits, &resp, &failure) != TETHER_OK) {
        fprintf(stderr, "tether-agent token: no valid answer from the agent at %s: %s\n", path,
                failure.transport_error == TETHER_SOCKET_TIMEOUT ? "it did not answer in time"
                                                                  : failure.text);
        goto out;
    }
    if (status_only) {
        printf("%s\n", (const char *)resp.body);
        code = resp.status == 200 ? 0 : 1;
        goto out;
    }
    if (tether_json_parse_object((const char *)resp.body, resp.body_len, &body) != TETHER_OK)
        goto io_error;
    token = cJSON_GetObjectItemCaseSensitive(body, resp.status == 200 ? "access_token"
                                                                      : "error_description");
    if (resp.status != 200 || !cJSON_IsString(token)) {
        fprintf(stderr, "tether-agent token: no token (HTTP %d): %s\n", resp.status,
                cJSON_IsString(token) ? token->valuestring : "no description");
        goto out;
    }
    printf("%s\n", token->valuestring);
    tether_wipe(token->valuestring, strlen(token->valuestring));
    code = 0;
    goto out;
io_error:
    fprintf(stderr, "tether-agent token: no valid answer from the agent at %s\n", path);
out:
    cJSON_Delete(body);
    tether_https_response_free(&resp);
    tether_socket_close(&sock);
    return code;
}
