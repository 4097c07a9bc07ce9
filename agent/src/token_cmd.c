/*
 * tether-agent token: asks a running agent for the current access token over
 * its Unix socket and prints it, for scripts (TOKEN=$(tether-agent token ...)).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "token_cmd.h"
#include "tether/bytes.h"
#include "tether/https_client.h"
#include "tether/json_strict.h"

#define RESPONSE_MAX 16384

static void token_usage(FILE *out)
{
    fputs("Usage: tether-agent token --socket PATH [--status]\n"
          "\n"
          "Prints the access token held by the agent serving PATH, on one line.\n"
          "With --status, prints the agent's status (JSON) instead.\n"
          "Exit status: 0 printed, 1 no token or the agent refused, 2 bad usage.\n",
          out);
}

static int connect_unix(const char *path)
{
    struct sockaddr_un addr;
    int fd;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr.sun_path))
        return -1;
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tether_agent_token_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"socket", required_argument, NULL, 's'},
        {"status", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *request;
    int status_only = 0, c, fd = -1, code = 1;
    uint8_t *buf = NULL;
    size_t len = 0;
    tether_https_response_t resp;
    tether_http_limits_t limits = {.max_header_bytes = 4096, .max_body_bytes = RESPONSE_MAX};
    cJSON *body = NULL;
    const cJSON *token;

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
    if ((fd = connect_unix(path)) < 0) {
        fprintf(stderr, "tether-agent token: cannot connect to %s: %s (is 'tether-agent run' "
                        "serving there?)\n", path, strerror(errno));
        return 1;
    }
    request = status_only ? "GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n"
                          : "GET /v1/token HTTP/1.1\r\nHost: localhost\r\n\r\n";
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request) ||
        (buf = calloc(1, RESPONSE_MAX + 4096)) == NULL)
        goto io_error;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 5000) <= 0)
            goto io_error;
        n = recv(fd, buf + len, RESPONSE_MAX + 4096 - len, 0);
        if (n < 0)
            goto io_error;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == RESPONSE_MAX + 4096)
            goto io_error;
    }
    if (tether_http_response_parse(buf, len, true, &limits, &resp, NULL) != TETHER_OK)
        goto io_error;
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
    if (buf != NULL) {
        tether_wipe(buf, RESPONSE_MAX + 4096);
        free(buf);
    }
    cJSON_Delete(body);
    tether_https_response_free(&resp);
    if (fd >= 0)
        close(fd);
    return code;
}
