/*
 * exchange_probe: one attested exchange, done the way tether-agent does it,
 * but step by step so that exchange.sh can capture, replay and count.
 *
 *   exchange_probe TCTI evidence STATE_DIR   challenge + TPM evidence; prints
 *                                            the subject_token
 *   exchange_probe TCTI exchange STATE_DIR   a whole exchange; prints
 *                                            "ok EXPIRES_IN TOKEN" or
 *                                            "refused|retry|failed CODE REASON"
 *   exchange_probe TCTI refresh-early STATE_DIR
 *                                            an exchange, then a refresh over
 *                                            the next challenge it brought as
 *                                            if its window were open (fleetd
 *                                            refuses it as not yet valid and
 *                                            the refresh asks for a
 *                                            challenge); prints as exchange
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exchange.h"
#include "state.h"

int main(int argc, char **argv)
{
    static const char *const outcomes[] = {"ok", "retry", "refused", "failed"};
    tether_agent_state_t state;
    tether_https_client_t client;
    tether_tpm_t tpm;
    tether_usage_t usage = {0, 0, NULL, NULL, {NULL, NULL}};
    tether_exchange_result_t result;
    tether_secure_buffer_t token;
    char ca[PATH_MAX], why[256];
    char *subject_token = NULL, *eventlog_params = NULL;
    int rc = 1;

    if (argc != 4 || (strcmp(argv[2], "evidence") != 0 && strcmp(argv[2], "exchange") != 0 &&
                      strcmp(argv[2], "refresh-early") != 0)) {
        fprintf(stderr, "usage: exchange_probe TCTI evidence|exchange|refresh-early STATE_DIR\n");
        return 2;
    }
    tether_tpm_init(&tpm);
    tether_https_client_init(&client);
    memset(&token, 0, sizeof(token));
    if (tether_agent_state_load(argv[3], &state, why, sizeof(why)) != TETHER_OK) {
        fprintf(stderr, "exchange_probe: %s: %s\n", argv[3], why);
        return 1;
    }
    snprintf(ca, sizeof(ca), "%s/%s", argv[3], TETHER_STATE_CA_FILE);
    client.keep_alive = true; /* as the agent */
    if (tether_https_client_setup(&client, state.fleet_url, ca) != TETHER_OK ||
        tether_tpm_open_esapi(&tpm, argv[1]) != TETHER_OK ||
        tether_secure_buffer_alloc(&token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK) {
        fprintf(stderr, "exchange_probe: setup: %s %s\n", client.error, tpm.last_error);
        goto out;
    }
    if (strcmp(argv[2], "evidence") == 0) {
        if (tether_agent_exchange_evidence(&client, &tpm, NULL, &state, &usage, &subject_token,
                                           &eventlog_params, &result) != 0) {
            printf("%s %s %s\n", outcomes[result.outcome], result.code, result.reason);
            goto out;
        }
        printf("%s\n", subject_token);
        rc = 0;
        goto out;
    }
    if (strcmp(argv[2], "refresh-early") == 0) {
        tether_next_challenge_t next;
        const tether_exchange_context_t ctx = {
            .client = &client, .tpm = &tpm, .state = &state, .next = &next};

        memset(&next, 0, sizeof(next));
        tether_agent_refresh(&ctx, &usage, &token, &result);
        if (result.outcome != TETHER_EXCHANGE_OK || !next.held) {
            printf("%s %s %s (first exchange, next challenge %s)\n", outcomes[result.outcome],
                   result.code, result.reason, next.held ? "held" : "missing");
            goto out;
        }
        next.opens_ms = (int64_t)tether_socket_now_ms();
        tether_agent_refresh(&ctx, &usage, &token, &result);
        tether_next_challenge_forget(&next);
    } else {
        tether_agent_exchange(&client, &tpm, NULL, &state, &usage, &token, &result);
    }
    if (result.outcome == TETHER_EXCHANGE_OK) {
        printf("ok %u %s\n", result.expires_in, (const char *)token.data);
        rc = 0;
    } else {
        printf("%s %s %s\n", outcomes[result.outcome], result.code, result.reason);
    }
out:
    free(subject_token);
    free(eventlog_params);
    tether_secure_buffer_free(&token);
    tether_https_client_free(&client);
    tether_tpm_close(&tpm);
    return rc;
}
