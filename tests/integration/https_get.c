/*
 * GETs one path with the HTTPS client and writes the body to stdout:
 *   https_get [options] CA_FILE BASE_URL PATH
 *     -t MS    connect, I/O and request timeout (default: the client's)
 *     -m N     largest body accepted, in bytes
 *     -H LINE  an extra header line ("Name: value"), may be repeated
 *     -v       debug log on stderr
 * Exit status: 0 for a response (its status on stderr as "status N"), 1 on
 * failure with the client's message on stderr, 2 for bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tether/https_client.h"
#include "tether/log.h"

static void usage(void)
{
    fprintf(stderr,
            "usage: https_get [-t MS] [-m BYTES] [-H LINE]... [-v] CA_FILE BASE_URL PATH\n");
}

int main(int argc, char **argv)
{
    const char *headers[TETHER_HTTPS_MAX_EXTRA_HEADERS + 1] = {NULL};
    tether_https_client_t client;
    tether_https_response_t resp;
    tether_log_level_t level = TETHER_LOG_INFO;
    unsigned long timeout = 0, max_body = 0;
    size_t header_count = 0;
    tether_status_t rc = TETHER_OK;
    int opt, status = 1;

    while ((opt = getopt(argc, argv, "t:m:H:v")) != -1) {
        switch (opt) {
        case 't':
            timeout = strtoul(optarg, NULL, 10);
            break;
        case 'm':
            max_body = strtoul(optarg, NULL, 10);
            break;
        case 'H':
            if (header_count >= TETHER_HTTPS_MAX_EXTRA_HEADERS) {
                usage();
                return 2;
            }
            headers[header_count++] = optarg;
            break;
        case 'v':
            level = TETHER_LOG_DEBUG;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (argc - optind != 3) {
        usage();
        return 2;
    }
    tether_log_setup("https_get", TETHER_LOG_TEXT, level);

    tether_https_client_init(&client);
    tether_https_response_init(&resp);
    if (timeout > 0) {
        client.connect_timeout_ms = (unsigned)timeout;
        client.io_timeout_ms = (unsigned)timeout;
        client.request_timeout_ms = (unsigned)timeout * 3;
    }
    if (max_body > 0)
        client.limits.max_body_bytes = max_body;
    if ((rc = tether_https_client_setup(&client, argv[optind + 1], argv[optind])) != TETHER_OK)
        goto out;
    if ((rc = tether_https_request(&client, "GET", argv[optind + 2], NULL, NULL, 0, headers,
                                   &resp)) != TETHER_OK)
        goto out;
    fprintf(stderr, "status %d\n", resp.status);
    fwrite(resp.body, 1, resp.body_len, stdout);
    status = 0;

out:
    if (status != 0)
        fprintf(stderr, "https_get: %s [%s]\n", client.error, tether_strerror(rc));
    tether_https_response_free(&resp);
    tether_https_client_free(&client);
    return status;
}
