/* The rules of usage reconciliation and anomaly thresholds that both
 * stores share (store_backend.h): the texts of their alerts and
 * quarantines and the rate thresholds' windows. */
#include <inttypes.h>
#include <stdio.h>

#include "store_backend.h"
#include "tether/fleet_vocabulary.h"

const tether_store_rate_kind_t tether_store_rate_kinds[TETHER_STORE_RATE_KIND_COUNT] = {
    {TETHER_THRESHOLD_REQUESTS_PER_MINUTE, "requests", 60, false, NULL, NULL},
    {TETHER_THRESHOLD_TOKENS_PER_MINUTE, "tokens", 60, false, NULL, NULL},
    {TETHER_THRESHOLD_SPEND_PER_HOUR, "cost_micros", 3600, true, NULL, NULL},
    {TETHER_THRESHOLD_SPEND_PER_DAY, "cost_micros", 86400, true, NULL, NULL},
    {TETHER_THRESHOLD_REFUSED_MODELS, "refused_models", 3600, false,
     "requests for a model outside the allow lists refused by gateways", NULL},
    {TETHER_THRESHOLD_SOURCE_NETWORKS, "refused_sources", 3600, false,
     "requests from outside the policy's sources refused by gateways",
     "source_networks_gateway"},
};

bool tether_store_rate_applies(const tether_store_rate_kind_t *k,
                               const tether_store_usage_entry_t *e)
{
    if (k->tries == NULL)
        return true;
    return (k->kind == TETHER_THRESHOLD_REFUSED_MODELS ? e->refused_models : e->refused_sources) >
           0;
}

bool tether_store_rate_crosses(const tether_store_rate_kind_t *k,
                               const tether_policy_threshold_t *t, int64_t observed)
{
    int64_t value = k->money ? t->micros : t->micros / 1000000;

    return k->tries != NULL ? observed >= value : observed > value;
}

const char *tether_store_crossing_mark(const tether_store_crossing_t *c)
{
    return c->mark != NULL ? c->mark : tether_policy_threshold_kind_name(c->kind);
}

void tether_store_usage_mismatch_text(const tether_store_usage_comparison_t *c,
                                      tether_store_usage_action_t action,
                                      char reason[TETHER_STORE_REASON_MAX + 1],
                                      char details[TETHER_STORE_DETAILS_MAX])
{
    snprintf(reason, TETHER_STORE_REASON_MAX + 1,
             "usage mismatch: gateways accepted %" PRId64 " requests on token %.32s, the device "
             "made %" PRId64 " (another party holds the token)",
             c->gateway_accepted, c->jti, c->device_made);
    snprintf(details, TETHER_STORE_DETAILS_MAX,
             "{\"reason\":\"%s\",\"jti\":\"%s\",\"gateway_accepted\":%" PRId64
             ",\"device_made\":%" PRId64 ",\"bearer_handouts\":%" PRId64
             ",\"final\":%s,\"action\":\"%s\"}",
             reason, c->jti, c->gateway_accepted, c->device_made, c->bearer,
             c->final ? "true" : "false",
             action == TETHER_STORE_USAGE_QUARANTINE ? "quarantine" : "alert");
}

void tether_store_unreported_details(const tether_store_unreported_t *u,
                                     char details[TETHER_STORE_DETAILS_MAX])
{
    snprintf(details, TETHER_STORE_DETAILS_MAX,
             "{\"jti\":\"%.32s\",\"gateway_accepted\":%" PRId64 ",\"exp\":%" PRId64
             ",\"last_exchange\":%" PRId64 "}",
             u->jti, u->gateway_accepted, u->exp, u->last_exchange);
}

void tether_store_unreported_window(const tether_store_unreported_cursor_t *cursor, int64_t now,
                                    int64_t grace, int64_t *from, int64_t *to)
{
    int64_t oldest = now - TETHER_STORE_USAGE_REPORT_RETENTION;

    *from = cursor->set && cursor->from > oldest ? cursor->from : oldest;
    *to = now - grace - TETHER_STORE_USAGE_LEEWAY;
}

void tether_store_unreported_advance(tether_store_unreported_cursor_t *cursor, int64_t to,
                                     size_t count, int64_t last_exp)
{
    int64_t next = count == TETHER_STORE_UNREPORTED_BATCH ? last_exp : to;

    if (!cursor->set || next > cursor->from)
        cursor->from = next;
    cursor->set = true;
}

void tether_store_rate_crossing(tether_store_crossing_t *c, const char *device_id,
                                const tether_store_rate_kind_t *k,
                                const tether_policy_threshold_t *t, int64_t observed, int64_t end,
                                char figure[32], char reason[TETHER_STORE_REASON_MAX + 1])
{
    if (k->money)
        snprintf(figure, 32, "%" PRId64 ".%06" PRId64, observed / 1000000, observed % 1000000);
    else
        snprintf(figure, 32, "%" PRId64, observed);
    if (k->tries != NULL)
        snprintf(reason, TETHER_STORE_REASON_MAX + 1,
                 "threshold %s reached: %s %s over the %" PRId64 " s ending at %" PRId64
                 ", the policy's value is %s",
                 tether_policy_threshold_kind_name(k->kind), figure, k->tries, k->window, end,
                 t->value);
    else
        snprintf(reason, TETHER_STORE_REASON_MAX + 1,
                 "threshold %s exceeded: %s over the %" PRId64 " s ending at %" PRId64
                 ", the policy allows %s",
                 tether_policy_threshold_kind_name(k->kind), figure, k->window, end, t->value);
    *c = (tether_store_crossing_t){.device_id = device_id, .kind = k->kind, .threshold = t,
                                   .observed = figure, .window = k->window, .end = end,
                                   .reason = reason, .mark = k->mark};
}

void tether_store_source_crossing(tether_store_crossing_t *c, const tether_store_exchange_t *ex,
                                  int64_t now, char address[TETHER_STORE_ADDRESS_SIZE + 2],
                                  char reason[TETHER_STORE_REASON_MAX + 1])
{
    /* inet_ntop's text or "-": nothing to escape. */
    snprintf(address, TETHER_STORE_ADDRESS_SIZE + 2, "\"%s\"", ex->sighting.address);
    snprintf(reason, TETHER_STORE_REASON_MAX + 1,
             "threshold source_networks exceeded: an exchange from %s, outside the policy's "
             "sources",
             ex->sighting.address);
    *c = (tether_store_crossing_t){.device_id = ex->device_id,
                                   .kind = TETHER_THRESHOLD_SOURCE_NETWORKS,
                                   .threshold = ex->source_threshold, .observed = address,
                                   .window = TETHER_STORE_SOURCE_ALERT_WINDOW, .end = now,
                                   .reason = reason};
}

void tether_store_crossing_details(const tether_store_crossing_t *c,
                                   char details[TETHER_STORE_DETAILS_MAX])
{
    snprintf(details, TETHER_STORE_DETAILS_MAX,
             "{\"reason\":\"%s\",\"kind\":\"%s\",\"value\":%s,\"observed\":%s,"
             "\"window_seconds\":%" PRId64 ",\"window_end\":%" PRId64 ",\"action\":\"%s\"}",
             c->reason, tether_policy_threshold_kind_name(c->kind), c->threshold->value,
             c->observed, c->window, c->end, tether_policy_action_name(c->threshold->action));
}
