/* tether-gate's reading of OpenAI-compatible traffic (gateway/src/proxy):
 * request inspection and rewriting, the SSE reader, usage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "tether/gate/openai_request.h"
#include "tether/gate/sse.h"
#include "tether/gate/usage.h"

/* ---- request inspection ------------------------------------------------------ */

static tether_status_t inspect(tether_gate_endpoint_t endpoint, const char *body,
                               tether_gate_request_t *request, char *why, size_t why_size)
{
    return tether_gate_request_inspect(endpoint, (const uint8_t *)body, strlen(body), 256,
                                       request, why, why_size);
}

static cJSON *forwarded(const tether_gate_request_t *request)
{
    cJSON *json = cJSON_ParseWithLength(request->body, request->body_len);

    assert_non_null(json);
    return json;
}

static void endpoints_by_path(void **state)
{
    tether_gate_endpoint_t e = TETHER_GATE_EMBEDDINGS;

    (void)state;
    assert_true(tether_gate_endpoint_from_path("/v1/chat/completions", &e));
    assert_int_equal(e, TETHER_GATE_CHAT_COMPLETIONS);
    assert_true(tether_gate_endpoint_from_path("/v1/completions", &e));
    assert_int_equal(e, TETHER_GATE_COMPLETIONS);
    assert_true(tether_gate_endpoint_from_path("/v1/embeddings", &e));
    assert_int_equal(e, TETHER_GATE_EMBEDDINGS);
    assert_false(tether_gate_endpoint_from_path("/v1/chat/completions/", &e));
    assert_false(tether_gate_endpoint_from_path("/v1/models", &e));
    assert_false(tether_gate_endpoint_from_path(NULL, &e));
}

static void injects_default_max_tokens(void **state)
{
    const char *body = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    tether_gate_request_t r;
    char why[200] = "";
    cJSON *json;

    (void)state;
    assert_int_equal(inspect(TETHER_GATE_CHAT_COMPLETIONS, body, &r, why, sizeof(why)), TETHER_OK);
    assert_string_equal(r.model, "gpt-4o");
    assert_false(r.stream);
    assert_int_equal(r.prompt_bound, strlen(body));
    assert_int_equal(r.completion_bound, 256);
    json = forwarded(&r);
    assert_int_equal(cJSON_GetObjectItem(json, "max_tokens")->valueint, 256);
    assert_null(cJSON_GetObjectItem(json, "stream_options"));
    cJSON_Delete(json);
    tether_gate_request_free(&r);

    /* "max_tokens": null is no limit either */
    body = "{\"model\":\"m\",\"max_tokens\":null,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(inspect(TETHER_GATE_CHAT_COMPLETIONS, body, &r, why, sizeof(why)), TETHER_OK);
    json = forwarded(&r);
    assert_int_equal(cJSON_GetObjectItem(json, "max_tokens")->valueint, 256);
    cJSON_Delete(json);
    tether_gate_request_free(&r);
}

static void keeps_a_body_that_needs_nothing(void **state)
{
    const char *body = "{\"model\":\"m\", \"max_completion_tokens\": 40, \"n\": 3,"
                       " \"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"hi\"}]}]}";
    tether_gate_request_t r;
    char why[200] = "";

    (void)state;
    assert_int_equal(inspect(TETHER_GATE_CHAT_COMPLETIONS, body, &r, why, sizeof(why)), TETHER_OK);
    /* the client's bytes, untouched */
    assert_int_equal(r.body_len, strlen(body));
    assert_memory_equal(r.body, body, r.body_len);
    /* three choices of 40 */
    assert_int_equal(r.completion_bound, 120);
    tether_gate_request_free(&r);
}

static void streams_ask_for_usage(void **state)
{
    const char *bodies[] = {
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
        "\"content\":\"hi\"}]}",
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":10,\"stream_options\":{"
        "\"include_usage\":false},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":10,\"stream_options\":null,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
    };
    tether_gate_request_t r;
    char why[200] = "";

    (void)state;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cJSON *json;

        assert_int_equal(inspect(TETHER_GATE_CHAT_COMPLETIONS, bodies[i], &r, why, sizeof(why)),
                         TETHER_OK);
        assert_true(r.stream);
        json = forwarded(&r);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "stream_options"),
                                                     "include_usage")));
        assert_int_equal(cJSON_GetObjectItem(json, "max_tokens")->valueint, 10);
        cJSON_Delete(json);
        tether_gate_request_free(&r);
    }
}

/* The completion bound of a completions request that must be accepted. */
static uint64_t completion_bound(const char *body)
{
    tether_gate_request_t r;
    char why[200] = "";
    uint64_t bound;

    assert_int_equal(inspect(TETHER_GATE_COMPLETIONS, body, &r, why, sizeof(why)), TETHER_OK);
    bound = r.completion_bound;
    tether_gate_request_free(&r);
    return bound;
}

static void completions_count_every_choice_and_prompt(void **state)
{
    (void)state;
    /* 10 tokens x best_of 4 x 3 prompts */
    assert_int_equal(completion_bound("{\"model\":\"m\",\"prompt\":[\"a\",\"b\",\"c\"],"
                                      "\"max_tokens\":10,\"n\":2,\"best_of\":4}"),
                     120);
    /* one prompt as token ids */
    assert_int_equal(completion_bound("{\"model\":\"m\",\"prompt\":[1,2,3],\"max_tokens\":10}"), 10);
    /* both limits: the larger bounds it */
    assert_int_equal(completion_bound("{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":10,"
                                      "\"max_completion_tokens\":30}"),
                     30);
}

static void embeddings_have_no_completion(void **state)
{
    const char *body = "{\"model\":\"text-embedding-3-small\",\"input\":[\"a\",\"b\"]}";
    tether_gate_request_t r;
    char why[200] = "";

    (void)state;
    assert_int_equal(inspect(TETHER_GATE_EMBEDDINGS, body, &r, why, sizeof(why)), TETHER_OK);
    assert_int_equal(r.completion_bound, 0);
    assert_int_equal(r.prompt_bound, strlen(body));
    assert_memory_equal(r.body, body, r.body_len);
    tether_gate_request_free(&r);
    assert_int_equal(inspect(TETHER_GATE_EMBEDDINGS,
                             "{\"model\":\"e\",\"input\":\"a\",\"stream\":true}", &r, why,
                             sizeof(why)),
                     TETHER_ERR_PARSE);
}

static void refuses_what_it_cannot_bound(void **state)
{
    static const struct {
        const char *body;
        const char *why;
    } cases[] = {
        {"", "one JSON object"},
        {"[]", "one JSON object"},
        {"{\"model\":\"m\",\"model\":\"n\",\"messages\":[]}", "one JSON object"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model must"},
        {"{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model must"},
        {"{\"model\":7,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", "model must"},
        {"{\"model\":\"m\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"h\"}]}",
         "stream must"},
        {"{\"model\":\"m\",\"messages\":[]}", "messages must"},
        {"{\"model\":\"m\",\"messages\":\"hi\"}", "messages must"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}",
         "text content only"},
        {"{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"h\"}]}",
         "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"h\"}]}",
         "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":99999999999,\"messages\":[{\"role\":\"user\","
         "\"content\":\"h\"}]}",
         "max_tokens"},
        {"{\"model\":\"m\",\"max_tokens\":\"9\",\"messages\":[{\"role\":\"user\",\"content\":\"h\"}]}",
         "max_tokens"},
        {"{\"model\":\"m\",\"n\":1000,\"messages\":[{\"role\":\"user\",\"content\":\"h\"}]}", "n and"},
        {"{\"model\":\"m\",\"stream\":true,\"stream_options\":[],\"messages\":[{\"role\":\"user\","
         "\"content\":\"h\"}]}",
         "stream_options must"},
    };
    tether_gate_request_t r;
    char why[200];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why[0] = '\0';
        assert_int_equal(inspect(TETHER_GATE_CHAT_COMPLETIONS, cases[i].body, &r, why, sizeof(why)),
                         TETHER_ERR_PARSE);
        if (strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, why, cases[i].why);
        assert_null(r.body);
    }
    /* too many prompts in one completions batch */
    {
        char body[2048] = "{\"model\":\"m\",\"prompt\":[";
        for (int i = 0; i < 130; i++)
            strcat(body, i ? ",\"p\"" : "\"p\"");
        strcat(body, "]}");
        assert_int_equal(inspect(TETHER_GATE_COMPLETIONS, body, &r, why, sizeof(why)),
                         TETHER_ERR_PARSE);
        assert_non_null(strstr(why, "prompts"));
    }
}

/* ---- SSE ------------------------------------------------------------------------ */

typedef struct events {
    char seen[8][64];
    size_t count;
} events_t;

static tether_status_t record(void *arg, const char *data, size_t data_len)
{
    events_t *events = arg;

    assert_int_equal(strlen(data), data_len);
    if (events->count < 8)
        snprintf(events->seen[events->count], sizeof(events->seen[0]), "%s", data);
    events->count++;
    return TETHER_OK;
}

static void feed_in_pieces(const char *stream, size_t piece, events_t *events,
                           tether_status_t expect)
{
    tether_sse_parser_t parser;
    tether_status_t rc = TETHER_OK;
    size_t len = strlen(stream);

    memset(events, 0, sizeof(*events));
    tether_sse_parser_init(&parser);
    assert_int_equal(tether_sse_parser_setup(&parser, record, events), TETHER_OK);
    for (size_t at = 0; at < len; at += piece)
        rc = tether_sse_parser_feed(&parser, (const uint8_t *)stream + at,
                                    len - at < piece ? len - at : piece);
    assert_int_equal(rc, expect);
    tether_sse_parser_free(&parser);
}

static void sse_events_in_any_split(void **state)
{
    /* LF, CRLF and CR line ends; comments; a multi-line event; a field with
     * no colon; "data:" without its space; ignored fields */
    const char *stream = "\xef\xbb\xbf: keep-alive\n"
                         "data: {\"a\":1}\n\n"
                         "event: x\r\nid: 7\r\ndata: one\r\ndata:two\r\n\r\n"
                         "data\rdata: z\r\r"
                         "retry: 10\n\n"
                         "data: [DONE]\n\n"
                         "data: cut short";
    events_t events;

    (void)state;
    for (size_t piece = 1; piece <= strlen(stream); piece++) {
        feed_in_pieces(stream, piece, &events, TETHER_OK);
        assert_int_equal(events.count, 4);
        assert_string_equal(events.seen[0], "{\"a\":1}");
        assert_string_equal(events.seen[1], "one\ntwo");
        assert_string_equal(events.seen[2], "\nz");
        assert_string_equal(events.seen[3], "[DONE]");
    }
}

static void sse_is_bounded_and_strict(void **state)
{
    events_t events;
    char *line = malloc(TETHER_SSE_MAX_EVENT_BYTES + 16);
    tether_sse_parser_t parser;
    const uint8_t nul[] = "data: a\0b\n\n";

    (void)state;
    assert_non_null(line);
    memcpy(line, "data: ", 6);
    memset(line + 6, 'x', TETHER_SSE_MAX_EVENT_BYTES);
    line[TETHER_SSE_MAX_EVENT_BYTES + 6] = '\0';
    feed_in_pieces(line, 4096, &events, TETHER_ERR_TOO_LARGE);
    assert_int_equal(events.count, 0);
    free(line);
    /* many short data lines add up to the same bound */
    {
        size_t lines = TETHER_SSE_MAX_EVENT_BYTES / 4 + 1; /* 4 bytes each: "123" and LF */
        char *many = malloc(lines * 10 + 1);
        assert_non_null(many);
        for (size_t i = 0; i < lines; i++)
            memcpy(many + i * 10, "data: 123\n", 10);
        many[lines * 10] = '\0';
        feed_in_pieces(many, 65536, &events, TETHER_ERR_TOO_LARGE);
        free(many);
    }
    /* a NUL fails the stream, and it stays failed */
    tether_sse_parser_init(&parser);
    assert_int_equal(tether_sse_parser_setup(&parser, record, &events), TETHER_OK);
    assert_int_equal(tether_sse_parser_feed(&parser, nul, sizeof(nul) - 1), TETHER_ERR_PARSE);
    assert_int_equal(tether_sse_parser_feed(&parser, (const uint8_t *)"data: ok\n\n", 10),
                     TETHER_ERR_PARSE);
    tether_sse_parser_free(&parser);
    /* half a byte order mark is not UTF-8 */
    feed_in_pieces("\xef\xbb" "data: x\n\n", 1, &events, TETHER_ERR_PARSE);
}

/* ---- usage ----------------------------------------------------------------------- */

static void usage_from_json(void **state)
{
    tether_gate_usage_t u;
    const char *ok = "{\"id\":\"x\",\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,"
                     "\"total_tokens\":46}}";
    const char *embedding = "{\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}}";

    (void)state;
    memset(&u, 0, sizeof(u));
    assert_int_equal(tether_gate_usage_read(ok, strlen(ok), &u), TETHER_OK);
    assert_true(u.found);
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 34);
    memset(&u, 0, sizeof(u));
    assert_int_equal(tether_gate_usage_read(embedding, strlen(embedding), &u), TETHER_OK);
    assert_int_equal(u.prompt_tokens, 5);
    assert_int_equal(u.completion_tokens, 0);
    memset(&u, 0, sizeof(u));
    assert_int_equal(tether_gate_usage_read("{\"usage\":null}", 14, &u), TETHER_OK);
    assert_false(u.found);
    assert_int_equal(tether_gate_usage_read("{\"usage\":{\"prompt_tokens\":-1}}", 30, &u),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_usage_read("{\"usage\":{\"completion_tokens\":1}}", 33, &u),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_usage_read("{\"usage\":{\"prompt_tokens\":1e300}}", 33, &u),
                     TETHER_ERR_PARSE);
    assert_int_equal(tether_gate_usage_read("{\"usage\":{\"prompt_tokens\":1},\"usage\":null}", 42,
                                            &u),
                     TETHER_ERR_PARSE);
    assert_false(u.found);
}

static void usage_from_a_stream(void **state)
{
    const char *stream =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}],\"usage\":null}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n"
        "data: [DONE]\n\n";
    tether_sse_parser_t parser;
    tether_gate_usage_t u;

    (void)state;
    for (size_t piece = 1; piece < strlen(stream); piece += 7) {
        memset(&u, 0, sizeof(u));
        tether_sse_parser_init(&parser);
        assert_int_equal(tether_sse_parser_setup(&parser, tether_gate_usage_on_event, &u),
                         TETHER_OK);
        for (size_t at = 0; at < strlen(stream); at += piece) {
            size_t n = strlen(stream) - at < piece ? strlen(stream) - at : piece;
            assert_int_equal(tether_sse_parser_feed(&parser, (const uint8_t *)stream + at, n),
                             TETHER_OK);
        }
        assert_true(u.found);
        assert_true(u.done);
        assert_int_equal(u.prompt_tokens, 9);
        assert_int_equal(u.completion_tokens, 2);
        /* nothing may follow [DONE] */
        assert_int_equal(tether_sse_parser_feed(&parser, (const uint8_t *)"data: {}\n\n", 10),
                         TETHER_ERR_PROTOCOL);
        tether_sse_parser_free(&parser);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(endpoints_by_path),
        cmocka_unit_test(injects_default_max_tokens),
        cmocka_unit_test(keeps_a_body_that_needs_nothing),
        cmocka_unit_test(streams_ask_for_usage),
        cmocka_unit_test(completions_count_every_choice_and_prompt),
        cmocka_unit_test(embeddings_have_no_completion),
        cmocka_unit_test(refuses_what_it_cannot_bound),
        cmocka_unit_test(sse_events_in_any_split),
        cmocka_unit_test(sse_is_bounded_and_strict),
        cmocka_unit_test(usage_from_json),
        cmocka_unit_test(usage_from_a_stream),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
