#include "tether/gate/sse.h"

#include <stdlib.h>
#include <string.h>

#include "tether/bytes.h"

static const uint8_t bom[3] = {0xef, 0xbb, 0xbf};

void tether_sse_parser_init(tether_sse_parser_t *parser)
{
    if (parser != NULL)
        memset(parser, 0, sizeof(*parser));
}

tether_status_t tether_sse_parser_setup(tether_sse_parser_t *parser, tether_sse_event_fn on_event,
                                        void *arg)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (parser == NULL || on_event == NULL || parser->line != NULL)
        goto out;
    rc = TETHER_ERR_NO_MEMORY;
    parser->line = malloc(TETHER_SSE_MAX_EVENT_BYTES + 1);
    parser->data = malloc(TETHER_SSE_MAX_EVENT_BYTES + 1);
    if (parser->line == NULL || parser->data == NULL)
        goto out;
    parser->at_start = true;
    parser->on_event = on_event;
    parser->arg = arg;
    rc = TETHER_OK;
out:
    if (rc != TETHER_OK && parser != NULL && rc != TETHER_ERR_INVALID_ARGUMENT)
        tether_sse_parser_free(parser);
    return rc;
}

void tether_sse_parser_free(tether_sse_parser_t *parser)
{
    if (parser == NULL)
        return;
    if (parser->line != NULL) {
        tether_wipe(parser->line, TETHER_SSE_MAX_EVENT_BYTES + 1);
        free(parser->line);
    }
    if (parser->data != NULL) {
        tether_wipe(parser->data, TETHER_SSE_MAX_EVENT_BYTES + 1);
        free(parser->data);
    }
    tether_wipe(parser, sizeof(*parser));
}

/* The blank line: the event's data, without its last LF, goes out. */
static tether_status_t dispatch(tether_sse_parser_t *parser)
{
    tether_status_t rc = TETHER_OK;

    if (parser->has_data) {
        parser->data_len--; /* every data line appended an LF */
        parser->data[parser->data_len] = '\0';
        parser->events++;
        rc = parser->on_event(parser->arg, parser->data, parser->data_len);
    }
    parser->has_data = false;
    parser->data_len = 0;
    return rc;
}

/* A line ends: a blank one dispatches, a comment (":...") or another
 * field is ignored, a data field appends its value and an LF. */
static tether_status_t end_line(tether_sse_parser_t *parser)
{
    const char *line = parser->line;
    size_t len = parser->line_len;
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon != NULL ? (size_t)(colon - line) : len;
    const char *value = colon != NULL ? colon + 1 : line + len;
    size_t value_len = len - (size_t)(value - line);
    tether_status_t rc = TETHER_OK;

    parser->line_len = 0;
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    if (len == 0) {
        rc = dispatch(parser);
    } else if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (value_len + 1 > TETHER_SSE_MAX_EVENT_BYTES - parser->data_len) {
            rc = TETHER_ERR_TOO_LARGE;
        } else {
            memcpy(parser->data + parser->data_len, value, value_len);
            parser->data_len += value_len;
            parser->data[parser->data_len++] = '\n';
            parser->has_data = true;
        }
    }
    return rc;
}

/* A UTF-8 byte order mark may open the stream, and is skipped. Returns
 * whether the byte was part of it. */
static bool skip_bom(tether_sse_parser_t *parser, uint8_t c, tether_status_t *rc)
{
    if (parser->bom_seen < sizeof(bom) && c == bom[parser->bom_seen]) {
        parser->bom_seen++;
        parser->at_start = parser->bom_seen < sizeof(bom);
        return true;
    }
    parser->at_start = false;
    if (parser->bom_seen > 0)
        *rc = TETHER_ERR_PARSE; /* half a BOM: not UTF-8 */
    return false;
}

tether_status_t tether_sse_parser_feed(tether_sse_parser_t *parser, const uint8_t *bytes,
                                       size_t len)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (parser == NULL || parser->line == NULL || (bytes == NULL && len > 0))
        return rc;
    rc = parser->failed;
    for (size_t i = 0; i < len && rc == TETHER_OK; i++) {
        uint8_t c = bytes[i];

        if (parser->at_start && (skip_bom(parser, c, &rc) || rc != TETHER_OK))
            continue;
        if (parser->after_cr) {
            parser->after_cr = false;
            if (c == '\n')
                continue;
        }
        if (c == '\r' || c == '\n') {
            parser->after_cr = c == '\r';
            rc = end_line(parser);
        } else if (c == '\0') {
            rc = TETHER_ERR_PARSE;
        } else if (parser->line_len >= TETHER_SSE_MAX_EVENT_BYTES) {
            rc = TETHER_ERR_TOO_LARGE;
        } else {
            parser->line[parser->line_len++] = (char)c;
        }
    }
    parser->failed = rc;
    return rc;
}
