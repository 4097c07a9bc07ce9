/*
 * The agent's reading of tether-fleetd's answers: the exchange's challenge
 * (POST /v1/challenge) and token (POST /v1/token, with the jti the agent
 * takes from the token it got, and the next challenge), enrolment's credential
 * challenge (POST /v1/enroll) and the refusals both read
 * (fleet_refusal.c). The first byte picks the refusal's status (400..655,
 * any status a peer may send), the rest is the body every reader gets, as
 * the HTTP client hands it over: body_len bytes followed by a NUL.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll.h"
#include "exchange.h"
#include "fleet_refusal.h"
#include "token_counts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a challenge (asked for, or the next one a token brings) says once
 * read: one SHA-256 selection, and the hashes the fleet holds, "" or 64
 * lowercase hex digits, only when it asked for measured boot. */
static void challenge_check(const TPML_PCR_SELECTION *pcrs, const tether_agent_measured_boot_t *mb)
{
    if (pcrs->count != 1 || pcrs->pcrSelections[0].hash != TPM2_ALG_SHA256 ||
        pcrs->pcrSelections[0].sizeofSelect != 3)
        abort();
    if ((!mb->asked && (mb->platform_held[0] != '\0' || mb->tether_held[0] != '\0')) ||
        (strlen(mb->platform_held) != 0 &&
         strspn(mb->platform_held, "0123456789abcdef") != TETHER_EVENTLOG_WIRE_SHA256_HEX) ||
        (strlen(mb->tether_held) != 0 &&
         strspn(mb->tether_held, "0123456789abcdef") != TETHER_EVENTLOG_WIRE_SHA256_HEX))
        abort();
}

static void challenge(const uint8_t *body, size_t len)
{
    uint8_t nonce[TETHER_NONCE_SIZE];
    TPML_PCR_SELECTION pcrs;
    tether_agent_measured_boot_t mb;

    if (tether_agent_exchange_read_challenge(body, len, nonce, &pcrs, &mb) != TETHER_OK) {
        if (mb.asked || mb.platform_held[0] != '\0' || mb.tether_held[0] != '\0')
            abort();
        return;
    }
    challenge_check(&pcrs, &mb);
}

/* The jti of a token the fleet handed over: printable, within its bound. */
static void token_jti(const char *token, size_t len)
{
    char jti[TETHER_TOKEN_JTI_MAX + 1];
    size_t n;

    if (tether_token_jti(token, len, jti) != TETHER_OK) {
        if (jti[0] != '\0')
            abort();
        return;
    }
    n = strnlen(jti, sizeof(jti));
    if (n == 0 || n > TETHER_TOKEN_JTI_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (jti[i] < 0x21 || jti[i] > 0x7e)
            abort();
}

static void token_answer(const uint8_t *body, size_t len)
{
    static unsigned char storage[TETHER_TOKEN_MAX + 1];
    tether_secure_buffer_t token = {.data = storage, .size = sizeof(storage)};
    unsigned expires_in = 99;

    memset(storage, 'x', sizeof(storage));
    if (tether_agent_exchange_read_token(body, len, &token, &expires_in) != TETHER_OK) {
        /* The token held stays. */
        if (expires_in != 0 || storage[0] != 'x' || storage[TETHER_TOKEN_MAX] != 'x')
            abort();
        return;
    }
    if (storage[0] == '\0' || memchr(storage, '\0', sizeof(storage)) == NULL || expires_in < 1 ||
        expires_in > 86400)
        abort();
    token_jti((const char *)storage, strlen((const char *)storage));
}

/* The next challenge: held only with a window that opens before it closes,
 * its selection and measured-boot member as a challenge's; nothing of it
 * kept when it is not held. */
static void next_challenge(const uint8_t *body, size_t len)
{
    tether_next_challenge_t next;
    tether_status_t rc = tether_agent_exchange_read_next(body, len, 1000000, &next);

    if (rc != TETHER_OK) {
        if (next.held || next.measured_boot.asked || next.measured_boot.platform_held[0] != '\0' ||
            next.measured_boot.tether_held[0] != '\0')
            abort();
        return;
    }
    if (!next.held || next.opens_ms < 1000000 || next.closes_ms <= next.opens_ms)
        abort();
    challenge_check(&next.pcrs, &next.measured_boot);
}

static void enrolment_challenge(const uint8_t *body, size_t len)
{
    static tether_agent_pending_t pending;

    memset(&pending, 0, sizeof(pending));
    if (tether_agent_enroll_read_challenge(body, len, &pending) != TETHER_OK)
        return;
    if (pending.enrollment_id[0] == '\0' ||
        memchr(pending.enrollment_id, '\0', sizeof(pending.enrollment_id)) == NULL ||
        pending.credential_blob.size > sizeof(pending.credential_blob.credential) ||
        pending.encrypted_secret.size > sizeof(pending.encrypted_secret.secret))
        abort();
}

static void refusal(int status, uint8_t *body, size_t len)
{
    tether_https_response_t resp;
    tether_fleet_refusal_t refusal;

    tether_https_response_init(&resp);
    resp.status = status;
    resp.body = body;
    resp.body_len = len;
    tether_fleet_refusal_parse(&resp, &refusal);
    if (refusal.status != status ||
        memchr(refusal.error, '\0', sizeof(refusal.error)) == NULL ||
        memchr(refusal.tether_error, '\0', sizeof(refusal.tether_error)) == NULL ||
        memchr(refusal.description, '\0', sizeof(refusal.description)) == NULL ||
        tether_fleet_refusal_code(&refusal, "http_error")[0] == '\0' ||
        tether_fleet_refusal_description(&refusal)[0] == '\0')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *body;
    size_t len;

    if (size < 1 || size > 65536)
        return 0;
    len = size - 1;
    if ((body = malloc(len + 1)) == NULL)
        return 0;
    memcpy(body, data + 1, len);
    body[len] = '\0';
    challenge(body, len);
    token_answer(body, len);
    next_challenge(body, len);
    token_jti((const char *)body, len);
    enrolment_challenge(body, len);
    refusal(400 + data[0], body, len);
    free(body);
    return 0;
}
