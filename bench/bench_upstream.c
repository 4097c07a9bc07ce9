/*
 * A fast OpenAI-compatible stand-in for bench/gate.sh: under load,
 * tests/integration/openai_upstream.py takes a whole core at about 5,000
 * requests/s, so it limits the direct figures and takes CPU from the
 * gateway on a small machine. Same answers as the Python stand-in, for
 * POST /v1/chat/completions only: the JSON completion with usage 11 + 7, or
 * when the body has "stream":true the same answer as server-sent events (one
 * per word, the stop event, the usage event when the body has
 * "include_usage":true, [DONE]), all at once. The body is matched as text,
 * as tether-gate and the benchmark write it (no spaces): a benchmark tool,
 * not a parser. HTTP/1.1 keep-alive on 127.0.0.1 (libmicrohttpd, two
 * threads); the port is written to PORT_FILE once listening.
 *
 *   bench_upstream PORT_FILE
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#define MAX_BODY 65536

static const char *const words[] = {"Tether", "keeps", "the", "key", "on", "the", "device."};
#define WORD_COUNT (sizeof(words) / sizeof(words[0]))
#define CHUNK "{\"id\":\"chatcmpl-standin\",\"object\":\"chat.completion.chunk\",\"created\":0," \
              "\"model\":\"gpt-4o-mini\","
#define USAGE "{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}"

static const char answer_json[] =
    "{\"id\":\"chatcmpl-standin\",\"object\":\"chat.completion\",\"created\":0,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\","
    "\"message\":{\"role\":\"assistant\",\"content\":\"Tether keeps the key on the device.\"}}],"
    "\"usage\":" USAGE "}";

static char stream_text[4096];       /* the events without the usage event */
static char stream_usage_text[4096]; /* with it */

typedef struct upload {
    char body[MAX_BODY + 1];
    size_t len;
    int too_large;
} upload_t;

static int append(char *out, size_t size, size_t *o, const char *text)
{
    int n = snprintf(out + *o, size - *o, "%s", text);

    if (n < 0 || (size_t)n >= size - *o)
        return -1;
    *o += (size_t)n;
    return 0;
}

/* The events, made once at start. */
static int make_streams(void)
{
    char event[512];
    size_t o = 0;

    if (append(stream_text, sizeof(stream_text), &o, ": stand-in stream\n\n") != 0)
        return -1;
    for (size_t i = 0; i < WORD_COUNT; i++) {
        snprintf(event, sizeof(event),
                 "data: " CHUNK "\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"%s%s\"},"
                 "\"finish_reason\":null}]}\n\n",
                 i == 0 ? "\"role\":\"assistant\"," : "", i == 0 ? "" : " ", words[i]);
        if (append(stream_text, sizeof(stream_text), &o, event) != 0)
            return -1;
    }
    if (append(stream_text, sizeof(stream_text), &o,
               "data: " CHUNK "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
               "\n\n") != 0)
        return -1;
    memcpy(stream_usage_text, stream_text, o + 1);
    if (append(stream_usage_text, sizeof(stream_usage_text), &o,
               "data: " CHUNK "\"choices\":[],\"usage\":" USAGE "}\n\n") != 0)
        return -1;
    o = strlen(stream_text);
    if (append(stream_text, sizeof(stream_text), &o, "data: [DONE]\n\n") != 0)
        return -1;
    o = strlen(stream_usage_text);
    return append(stream_usage_text, sizeof(stream_usage_text), &o, "data: [DONE]\n\n");
}

static enum MHD_Result respond(struct MHD_Connection *connection, unsigned status,
                               const char *type, const char *text)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result result;

    if (response == NULL)
        return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    upload_t *upload = *con_cls;

    (void)cls;
    (void)version;
    if (upload == NULL) {
        if ((upload = calloc(1, sizeof(*upload))) == NULL)
            return MHD_NO;
        *con_cls = upload;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (*upload_data_size > MAX_BODY - upload->len)
            upload->too_large = 1;
        else
            memcpy(upload->body + upload->len, upload_data, *upload_data_size);
        upload->len += upload->too_large ? 0 : *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    upload->body[upload->len] = '\0';
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/chat/completions") != 0)
        return respond(connection, 404, "application/json",
                       "{\"error\":{\"message\":\"no such path\"}}");
    if (upload->too_large)
        return respond(connection, 413, "application/json",
                       "{\"error\":{\"message\":\"body too large\"}}");
    if (strstr(upload->body, "\"stream\":true") == NULL)
        return respond(connection, 200, "application/json", answer_json);
    return respond(connection, 200, "text/event-stream",
                   strstr(upload->body, "\"include_usage\":true") != NULL ? stream_usage_text
                                                                          : stream_text);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)connection;
    (void)code;
    free(*con_cls);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct MHD_Daemon *daemon;
    const union MHD_DaemonInfo *info;
    char tmp[4096];
    sigset_t stop;
    int signal_number;
    FILE *f;

    if (argc != 2 || make_streams() != 0) {
        fprintf(stderr, "usage: bench_upstream PORT_FILE\n");
        return 2;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL); /* the daemon's threads inherit it */
    daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY, 0, NULL,
                              NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &address,
                              MHD_OPTION_THREAD_POOL_SIZE, 2u, MHD_OPTION_NOTIFY_COMPLETED,
                              on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 1024u,
                              MHD_OPTION_END);
    if (daemon == NULL || (info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT)) == NULL) {
        fprintf(stderr, "bench_upstream: cannot listen on 127.0.0.1\n");
        return 1;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
    if ((f = fopen(tmp, "w")) == NULL || fprintf(f, "%u", (unsigned)info->port) < 0 ||
        fclose(f) != 0 || rename(tmp, argv[1]) != 0) {
        fprintf(stderr, "bench_upstream: cannot write %s\n", argv[1]);
        MHD_stop_daemon(daemon);
        return 1;
    }
    sigwait(&stop, &signal_number);
    MHD_stop_daemon(daemon);
    return 0;
}
