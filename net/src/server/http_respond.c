#include "tether/http_handler.h"

#include <stdlib.h>
#include <string.h>

#include "http_stream_server.h"
#include "tether/bytes.h"

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
