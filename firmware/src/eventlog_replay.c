/* The replay of a parsed log into PCR values per bank (eventlog.h). */
#include "tether/eventlog.h"

#include <string.h>

/* PC Client Platform TPM Profile: PCRs 17 to 22 (the DRTM's) start as all
 * ones at TPM2_Startup, every other PCR as zeros. */
#define DRTM_PCR_FIRST 17u
#define DRTM_PCR_LAST 22u

/* The lib hash of a TPM algorithm, false for a bank lib does not replay. */
static bool replayable(uint16_t algorithm, tether_hash_alg_t *hash)
{
    switch (algorithm) {
    case TETHER_TPM_ALG_SHA1: *hash = TETHER_HASH_SHA1; return true;
    case TETHER_TPM_ALG_SHA256: *hash = TETHER_HASH_SHA256; return true;
    case TETHER_TPM_ALG_SHA384: *hash = TETHER_HASH_SHA384; return true;
    default: return false;
    }
}

/* PCR = H(PCR || digest). */
static tether_status_t extend(tether_eventlog_bank_t *bank, uint32_t pcr, const uint8_t *digest)
{
    uint8_t joined[2 * TETHER_HASH_MAX_SIZE];

    memcpy(joined, bank->pcrs[pcr], bank->size);
    memcpy(joined + bank->size, digest, bank->size);
    bank->extended |= UINT32_C(1) << pcr;
    return tether_hash(bank->hash, joined, 2 * bank->size, bank->pcrs[pcr],
                       sizeof(bank->pcrs[pcr]));
}

/* The event's digest of the bank's algorithm, or NULL. */
static const uint8_t *digest_of(const tether_eventlog_event_t *ev, uint16_t algorithm)
{
    for (uint32_t i = 0; i < ev->digest_count; i++)
        if (ev->digests[i].algorithm == algorithm)
            return ev->digests[i].value;
    return NULL;
}

/* Sets the banks up at their TPM2_Startup values. */
static void start_banks(const tether_eventlog_t *log, tether_eventlog_pcrs_t *pcrs)
{
    for (uint32_t i = 0; i < log->algorithm_count; i++) {
        tether_eventlog_bank_t *bank = &pcrs->banks[pcrs->bank_count];

        if (!replayable(log->algorithms[i].id, &bank->hash) ||
            pcrs->bank_count == TETHER_EVENTLOG_MAX_BANKS)
            continue;
        bank->algorithm = log->algorithms[i].id;
        bank->size = tether_hash_size(bank->hash);
        for (uint32_t pcr = DRTM_PCR_FIRST; pcr <= DRTM_PCR_LAST; pcr++)
            memset(bank->pcrs[pcr], 0xFF, bank->size);
        pcrs->bank_count++;
    }
}

tether_status_t tether_eventlog_replay(const tether_eventlog_t *log, tether_eventlog_pcrs_t *pcrs)
{
    tether_status_t rc = TETHER_OK;

    if (pcrs != NULL)
        memset(pcrs, 0, sizeof(*pcrs));
    if (log == NULL || pcrs == NULL || log->events == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    start_banks(log, pcrs);
    for (size_t e = 0; e < log->event_count && rc == TETHER_OK; e++) {
        const tether_eventlog_event_t *ev = &log->events[e];

        if (ev->decoded == TETHER_EVENTLOG_DECODED_STARTUP_LOCALITY) {
            /* The parser let it through only before any extend of PCR 0. */
            pcrs->startup_locality = ev->fields.startup_locality;
            for (size_t b = 0; b < pcrs->bank_count; b++)
                pcrs->banks[b].pcrs[0][pcrs->banks[b].size - 1] = ev->fields.startup_locality;
        }
        if (ev->type == TETHER_EV_NO_ACTION)
            continue;
        for (size_t b = 0; b < pcrs->bank_count && rc == TETHER_OK; b++) {
            const uint8_t *digest = digest_of(ev, pcrs->banks[b].algorithm);

            if (digest == NULL)
                pcrs->banks[b].events_without_digest++;
            else
                rc = extend(&pcrs->banks[b], ev->pcr, digest);
        }
    }
    if (rc != TETHER_OK)
        memset(pcrs, 0, sizeof(*pcrs));
    return rc;
}
