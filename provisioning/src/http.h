/*
 * What fleetd's request handlers see and produce, with no HTTP library in
 * sight: the server (http_server.c) fills a request, a handler fills a
 * response. Handlers are called from several threads at once.
 */
#ifndef TETHER_FLEET_HTTP_H
#define TETHER_FLEET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define TETHER_HTTP_MAX_QUERY 4

typedef struct tether_http_query {
    const char *key;
    const char *value; /* "" when absent */
} tether_http_query_t;

/* Every pointer lives until the handler returns. */
typedef struct tether_http_request {
    const char *method;
    const char *path;          /* percent-decoded, without the query */
    const char *authorization; /* NULL when absent */
    const char *content_type;  /* NULL when absent */
    const uint8_t *body;
    size_t body_len;
    tether_http_query_t query[TETHER_HTTP_MAX_QUERY];
    size_t query_count;
    bool query_overflow; /* more parameters than TETHER_HTTP_MAX_QUERY */
} tether_http_request_t;

typedef struct tether_http_response {
    unsigned status;
    char *body;                   /* malloc'd JSON text; wiped and freed by the server */
    const char *www_authenticate; /* static string or NULL */
    const char *allow;            /* static string or NULL (for 405) */
} tether_http_response_t;

typedef void (*tether_http_handler_fn)(void *arg, const tether_http_request_t *request,
                                       tether_http_response_t *response);

/* Sets status and body to the JSON of json (deleted here). Falls back to a
 * 500 error when printing fails. */
void tether_http_respond_json(tether_http_response_t *response, unsigned status, cJSON *json);

/* {"error": code, "error_description": description} with the status. */
void tether_http_respond_error(tether_http_response_t *response, unsigned status,
                               const char *code, const char *description);

/* Wipes and frees the body; leaves the response empty. */
void tether_http_response_clear(tether_http_response_t *response);

#endif
