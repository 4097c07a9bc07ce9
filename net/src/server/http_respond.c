#include "tether/http_handler.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "http_stream_server.h"
#include "tether/bytes.h"
#include "tether/http_server.h"

/* Used when even the error cannot be built (out of memory). */
static const char fallback_error[] =
    "{\"error\":\"server_error\",\"error_description\":\"out of memory\"}";

static void free_body(tether_http_response_t *response)
{
    if (response->body != NULL) {
        tether_wipe(response->body, strlen(response->body));
        free(response->body);
        response->body = NULL;
    }
}

void tether_http_response_clear(tether_http_response_t *response)
{
    if (response == NULL)
        return;
    free_body(response);
    for (size_t i = 0; i < response->header_count && i < TETHER_HTTP_MAX_RESPONSE_HEADERS; i++) {
        if (response->headers[i].value != NULL)
            tether_wipe(response->headers[i].value, strlen(response->headers[i].value));
        free(response->headers[i].value);
    }
    if (response->park.release != NULL)
        response->park.release(response->park.arg);
    tether_http_stream_abandon(response->stream);
    memset(response, 0, sizeof(*response));
}

static void respond_fallback(tether_http_response_t *response)
{
    response->status = 500;
    response->body = malloc(sizeof(fallback_error));
    if (response->body != NULL)
        memcpy(response->body, fallback_error, sizeof(fallback_error));
}

void tether_http_respond_json(tether_http_response_t *response, unsigned status, cJSON *json)
{
    char *text = json != NULL ? cJSON_PrintUnformatted(json) : NULL;

    if (json != NULL) {
        /* Responses may hold a new secret token: do not leave it in freed memory. */
        for (cJSON *item = json->child; item != NULL; item = item->next) {
            if (cJSON_IsString(item) && item->valuestring != NULL)
                tether_wipe(item->valuestring, strlen(item->valuestring));
        }
        cJSON_Delete(json);
    }
    free_body(response);
    if (text == NULL) {
        respond_fallback(response);
        return;
    }
    response->status = status;
    response->body = text;
}

void tether_http_respond_error(tether_http_response_t *response, unsigned status,
                               const char *code, const char *description)
{
    cJSON *json = cJSON_CreateObject();

    if (json == NULL || cJSON_AddStringToObject(json, "error", code) == NULL ||
        cJSON_AddStringToObject(json, "error_description", description) == NULL) {
        cJSON_Delete(json);
        free_body(response);
        respond_fallback(response);
        return;
    }
    tether_http_respond_json(response, status, json);
}

tether_status_t tether_http_response_add_header(tether_http_response_t *response, const char *name,
                                                const char *value)
{
    size_t len;

    if (response == NULL || name == NULL || value == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = strlen(value);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)value[i] < 0x20 || (unsigned char)value[i] == 0x7f)
            return TETHER_ERR_INVALID_ARGUMENT;
    if (response->header_count >= TETHER_HTTP_MAX_RESPONSE_HEADERS)
        return TETHER_ERR_TOO_LARGE;
    if ((response->headers[response->header_count].value = malloc(len + 1)) == NULL)
        return TETHER_ERR_NO_MEMORY;
    memcpy(response->headers[response->header_count].value, value, len + 1);
    response->headers[response->header_count++].name = name;
    return TETHER_OK;
}

const char *tether_http_request_header(const tether_http_request_t *request, const char *name)
{
    if (request == NULL || name == NULL || request->header == NULL)
        return NULL;
    return request->header(request, name);
}

tether_status_t tether_http_listen_parse(const char *text, char *host, size_t host_size,
                                         uint16_t *port, bool *ipv6)
{
    char literal[INET6_ADDRSTRLEN];
    unsigned char addr[16];
    unsigned long value = 0;
    const char *port_text;
    size_t host_len, digits;
    bool v6;

    if (text == NULL || host == NULL || port == NULL || ipv6 == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    v6 = text[0] == '[';
    if (v6) {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return TETHER_ERR_PARSE;
        host_len = (size_t)(close - text - 1);
        port_text = close + 2;
        text++;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL)
            return TETHER_ERR_PARSE;
        host_len = (size_t)(colon - text);
        port_text = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof(literal) || host_len >= host_size)
        return TETHER_ERR_PARSE;
    memcpy(literal, text, host_len);
    literal[host_len] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, literal, addr) != 1)
        return TETHER_ERR_PARSE;
    digits = strlen(port_text);
    if (digits == 0)
        return TETHER_ERR_PARSE;
    for (size_t i = 0; i < digits; i++) {
        if (port_text[i] < '0' || port_text[i] > '9')
            return TETHER_ERR_PARSE;
        value = value * 10 + (unsigned long)(port_text[i] - '0');
        if (value > 65535)
            return TETHER_ERR_PARSE;
    }
    if (value == 0)
        return TETHER_ERR_PARSE;
    memcpy(host, literal, host_len + 1);
    *port = (uint16_t)value;
    *ipv6 = v6;
    return TETHER_OK;
}
