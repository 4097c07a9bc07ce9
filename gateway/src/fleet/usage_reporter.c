/* tether-gate's usage reports to the fleet (usage_reporter.h). */
#include "usage_reporter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/bytes.h"
#include "tether/log.h"
#include "tether/random.h"

#define SLOT_COUNT (2 * TETHER_GATE_USAGE_TOKENS_MAX) /* a power of two, half full at most */
#define HEX "0123456789abcdef"

void tether_gate_usage_reporter_init(tether_gate_usage_reporter_t *reporter)
{
    if (reporter == NULL)
        return;
    memset(reporter, 0, sizeof(*reporter));
    tether_gate_fleet_client_init(&reporter->client);
    atomic_init(&reporter->stop, false);
}

static void clear_slots(tether_gate_usage_reporter_t *reporter)
{
    for (size_t i = 0; i < SLOT_COUNT; i++)
        reporter->slots[i] = -1;
}

tether_status_t tether_gate_usage_reporter_open(tether_gate_usage_reporter_t *reporter,
                                                tether_metrics_t *registry, const char *gateway)
{
    const tether_metric_def_t reports = {
        "tether_gate_usage_reports_total",
        "Usage reports to the fleet by outcome (sent: the fleet has it; failed: not delivered, "
        "kept and sent again; refused: the fleet refused it, dropped).",
        TETHER_METRIC_COUNTER, {"outcome", NULL}, NULL, 0, 4};
    const tether_metric_def_t pending = {
        "tether_gate_usage_entries_pending",
        "Token entries counted and not yet delivered to the fleet.", TETHER_METRIC_GAUGE,
        {NULL}, NULL, 0, 1};
    const tether_metric_def_t dropped = {
        "tether_gate_usage_dropped_total",
        "Requests not counted for the usage reports: the table of tokens was full while "
        "reports waited for the fleet.",
        TETHER_METRIC_COUNTER, {NULL}, NULL, 0, 1};
    tether_metric_t *metric = NULL;
    uint8_t random[8];
    tether_status_t rc;
    size_t len;

    if (reporter == NULL || registry == NULL || gateway == NULL || reporter->lock_ready)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = strlen(gateway);
    if (len == 0 || len >= sizeof(reporter->gateway))
        return TETHER_ERR_INVALID_ARGUMENT;
    memcpy(reporter->gateway, gateway, len + 1);
    if ((rc = tether_random_bytes(random, sizeof(random))) != TETHER_OK)
        return rc;
    for (size_t i = 0; i < sizeof(random); i++) {
        reporter->id_prefix[2 * i] = HEX[random[i] >> 4];
        reporter->id_prefix[2 * i + 1] = HEX[random[i] & 0xf];
    }
    reporter->counts = calloc(TETHER_GATE_USAGE_TOKENS_MAX, sizeof(*reporter->counts));
    reporter->taken = calloc(TETHER_GATE_USAGE_TOKENS_MAX, sizeof(*reporter->taken));
    reporter->slots = calloc(SLOT_COUNT, sizeof(*reporter->slots));
    if (reporter->counts == NULL || reporter->taken == NULL || reporter->slots == NULL)
        return TETHER_ERR_NO_MEMORY;
    clear_slots(reporter);
    if ((rc = tether_metrics_add(registry, &reports, &reporter->reports)) != TETHER_OK ||
        (rc = tether_metrics_add(registry, &pending, &metric)) != TETHER_OK)
        return rc;
    reporter->pending_gauge = tether_metric_series(metric, NULL, NULL);
    if ((rc = tether_metrics_add(registry, &dropped, &metric)) != TETHER_OK)
        return rc;
    reporter->dropped_total = tether_metric_series(metric, NULL, NULL);
    if (pthread_mutex_init(&reporter->lock, NULL) != 0)
        return TETHER_ERR_NO_MEMORY;
    reporter->lock_ready = true;
    return TETHER_OK;
}

/* fleetd's syntax (lowercase hex of a fixed length): anything else would
 * make fleetd refuse the whole report. */
static bool hex_of_length(const char *text, size_t len)
{
    return strlen(text) == len && strspn(text, HEX) == len;
}

static uint32_t jti_hash(const char *jti)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *jti != '\0'; jti++)
        h = (h ^ (uint8_t)*jti) * 16777619u;
    return h;
}

/* The entries waiting (the table and the reports), for the gauge; with
 * the lock held. */
static void update_gauge(tether_gate_usage_reporter_t *reporter)
{
    tether_metric_gauge_set(reporter->pending_gauge,
                            (int64_t)(reporter->count_n + reporter->pending_total));
}

/* a + b within max: false (nothing added) past it. */
static bool add_within(uint64_t *a, uint64_t b, uint64_t max)
{
    if (b > max || *a > max - b)
        return false;
    *a += b;
    return true;
}

void tether_gate_usage_reporter_count(tether_gate_usage_reporter_t *reporter, const char *device,
                                      const char *jti, tether_gate_usage_kind_t kind,
                                      uint64_t prompt_tokens,
                                      uint64_t completion_tokens, uint64_t cost_micros,
                                      int64_t now)
{
    tether_gate_usage_count_t *c = NULL, next;
    uint32_t slot;

    if (reporter == NULL || !reporter->lock_ready || device == NULL || jti == NULL ||
        !hex_of_length(jti, TETHER_GATE_USAGE_JTI_SIZE - 1) ||
        strncmp(device, "dev_", 4) != 0 || !hex_of_length(device + 4, 24))
        return;
    pthread_mutex_lock(&reporter->lock);
    slot = jti_hash(jti) & (SLOT_COUNT - 1);
    while (reporter->slots[slot] >= 0 &&
           strcmp(reporter->counts[reporter->slots[slot]].jti, jti) != 0)
        slot = (slot + 1) & (SLOT_COUNT - 1);
    if (reporter->slots[slot] >= 0) {
        c = &reporter->counts[reporter->slots[slot]];
    } else if (reporter->count_n < TETHER_GATE_USAGE_TOKENS_MAX) {
        c = &reporter->counts[reporter->count_n];
        memset(c, 0, sizeof(*c));
        memcpy(c->jti, jti, TETHER_GATE_USAGE_JTI_SIZE);
        memcpy(c->device, device, TETHER_GATE_USAGE_DEVICE_SIZE);
        c->first_seen = now;
        c->last_seen = now;
    }
    if (c == NULL)
        goto dropped;
    next = *c;
    if (!add_within(kind == TETHER_GATE_USAGE_FORWARDED ? &next.requests : &next.refused, 1,
                    TETHER_GATE_USAGE_MAX_REQUESTS) ||
        (kind == TETHER_GATE_USAGE_REFUSED_MODEL &&
         !add_within(&next.refused_models, 1, TETHER_GATE_USAGE_MAX_REQUESTS)) ||
        (kind == TETHER_GATE_USAGE_REFUSED_SOURCE &&
         !add_within(&next.refused_sources, 1, TETHER_GATE_USAGE_MAX_REQUESTS)) ||
        !add_within(&next.prompt_tokens, prompt_tokens, TETHER_GATE_USAGE_MAX_TOKENS) ||
        !add_within(&next.completion_tokens, completion_tokens, TETHER_GATE_USAGE_MAX_TOKENS) ||
        !add_within(&next.cost_micros, cost_micros, TETHER_GATE_USAGE_MAX_COST))
        goto dropped;
    next.first_seen = now < next.first_seen ? now : next.first_seen;
    next.last_seen = now > next.last_seen ? now : next.last_seen;
    *c = next;
    if (reporter->slots[slot] < 0) {
        reporter->slots[slot] = (int32_t)reporter->count_n++;
        update_gauge(reporter);
    }
    pthread_mutex_unlock(&reporter->lock);
    return;
dropped:
    reporter->dropped++;
    tether_metric_add(reporter->dropped_total, 1);
    pthread_mutex_unlock(&reporter->lock);
}

/* refused_models and refused_sources are optional members of an entry:
 * sent only when not 0, so a report without such refusals is what a
 * fleetd that predates them reads too. */
static bool add_optional_count(cJSON *item, const char *name, uint64_t value)
{
    return value == 0 || cJSON_AddNumberToObject(item, name, (double)value) != NULL;
}

/* The JSON text of one report of entries[0..n). */
static tether_status_t report_body(const tether_gate_usage_reporter_t *reporter,
                                   const char *report_id, const tether_gate_usage_count_t *entries,
                                   size_t n, char **body)
{
    cJSON *json = cJSON_CreateObject(), *list = NULL;
    tether_status_t rc = TETHER_ERR_NO_MEMORY;

    *body = NULL;
    if (json == NULL || cJSON_AddNumberToObject(json, "version", 1) == NULL ||
        cJSON_AddStringToObject(json, "gateway", reporter->gateway) == NULL ||
        cJSON_AddStringToObject(json, "report_id", report_id) == NULL ||
        (list = cJSON_AddArrayToObject(json, "entries")) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const tether_gate_usage_count_t *e = &entries[i];
        cJSON *item = cJSON_CreateObject();

        if (item == NULL || !cJSON_AddItemToArray(list, item)) {
            cJSON_Delete(item);
            goto out;
        }
        /* Every count is below 2^53: a JSON number carries it exactly. */
        if (cJSON_AddStringToObject(item, "jti", e->jti) == NULL ||
            cJSON_AddStringToObject(item, "device", e->device) == NULL ||
            cJSON_AddNumberToObject(item, "requests", (double)e->requests) == NULL ||
            cJSON_AddNumberToObject(item, "refused", (double)e->refused) == NULL ||
            !add_optional_count(item, "refused_models", e->refused_models) ||
            !add_optional_count(item, "refused_sources", e->refused_sources) ||
            cJSON_AddNumberToObject(item, "prompt_tokens", (double)e->prompt_tokens) == NULL ||
            cJSON_AddNumberToObject(item, "completion_tokens", (double)e->completion_tokens) ==
                NULL ||
            cJSON_AddNumberToObject(item, "cost_micros", (double)e->cost_micros) == NULL ||
            cJSON_AddNumberToObject(item, "first_seen", (double)e->first_seen) == NULL ||
            cJSON_AddNumberToObject(item, "last_seen", (double)e->last_seen) == NULL)
            goto out;
    }
    if ((*body = cJSON_PrintUnformatted(json)) != NULL)
        rc = TETHER_OK;
out:
    cJSON_Delete(json);
    return rc;
}

size_t tether_gate_usage_reporter_batch(tether_gate_usage_reporter_t *reporter)
{
    size_t n, needed, made = 0, taken = 0;

    if (reporter == NULL || !reporter->lock_ready)
        return 0;
    pthread_mutex_lock(&reporter->lock);
    n = reporter->count_n;
    needed = (n + TETHER_GATE_USAGE_REPORT_ENTRIES - 1) / TETHER_GATE_USAGE_REPORT_ENTRIES;
    if (n == 0 || reporter->pending_n + needed > TETHER_GATE_USAGE_PENDING_MAX) {
        pthread_mutex_unlock(&reporter->lock);
        return 0;
    }
    {
        tether_gate_usage_count_t *full = reporter->counts;

        reporter->counts = reporter->taken;
        reporter->taken = full;
    }
    reporter->count_n = 0;
    clear_slots(reporter);
    pthread_mutex_unlock(&reporter->lock);
    /* pending is the reporter thread's own: built without the lock. */
    for (size_t at = 0; at < n; at += TETHER_GATE_USAGE_REPORT_ENTRIES) {
        tether_gate_usage_batch_t *b = &reporter->pending[reporter->pending_n];
        size_t count = n - at < TETHER_GATE_USAGE_REPORT_ENTRIES
                           ? n - at
                           : TETHER_GATE_USAGE_REPORT_ENTRIES;

        snprintf(b->report_id, sizeof(b->report_id), "%s-%020llu", reporter->id_prefix,
                 (unsigned long long)++reporter->sequence);
        if (report_body(reporter, b->report_id, reporter->taken + at, count, &b->body) !=
            TETHER_OK) {
            tether_error("usage", "%zu usage entries lost: out of memory", n - at);
            break;
        }
        b->len = strlen(b->body);
        b->entries = count;
        reporter->pending_n++;
        made++;
        taken += count;
    }
    pthread_mutex_lock(&reporter->lock);
    reporter->pending_total += taken;
    update_gauge(reporter);
    pthread_mutex_unlock(&reporter->lock);
    return made;
}

/* Drops the oldest waiting report (delivered, or refused for good). */
static void pending_pop(tether_gate_usage_reporter_t *reporter)
{
    size_t entries = reporter->pending[0].entries;

    cJSON_free(reporter->pending[0].body);
    memmove(&reporter->pending[0], &reporter->pending[1],
            (reporter->pending_n - 1) * sizeof(reporter->pending[0]));
    reporter->pending_n--;
    memset(&reporter->pending[reporter->pending_n], 0, sizeof(reporter->pending[0]));
    pthread_mutex_lock(&reporter->lock);
    reporter->pending_total -= entries;
    update_gauge(reporter);
    pthread_mutex_unlock(&reporter->lock);
}

/* Whether fleetd refused the report for good: sending it again cannot
 * help (malformed, too large, an id reused, totals past the bound). */
static bool refused_for_good(int status)
{
    return status == 400 || status == 409 || status == 413 || status == 422;
}

/* Sends the waiting reports in order; stops at the first not delivered
 * (TETHER_ERR_NETWORK or the client's error; why explains), or before a
 * report once the monotonic clock passed deadline (seconds; 0: none), with
 * TETHER_ERR_TIMEOUT. */
static tether_status_t send_pending(tether_gate_usage_reporter_t *reporter, int64_t deadline,
                                    char *why, size_t why_size)
{
    while (reporter->pending_n > 0) {
        tether_gate_usage_batch_t *b = &reporter->pending[0];
        const cJSON *description;
        cJSON *answer = NULL;
        int status = 0;
        tether_status_t rc;

        if (deadline != 0 && tether_gate_mono_seconds() >= deadline) {
            snprintf(why, why_size, "the deadline passed");
            return TETHER_ERR_TIMEOUT;
        }
        rc = tether_gate_fleet_post_json(&reporter->client, TETHER_GATE_USAGE_PATH,
                                         reporter->rp_token, b->body, b->len, &status, &answer);
        description = cJSON_GetObjectItemCaseSensitive(answer, "error_description");
        if (rc == TETHER_OK && status == 200) {
            tether_metric_add(tether_metric_series(reporter->reports, "sent", NULL), 1);
            tether_debug("usage", "usage report %s delivered: %zu entries", b->report_id,
                         b->entries);
            cJSON_Delete(answer);
            pending_pop(reporter);
            continue;
        }
        if (rc == TETHER_OK && refused_for_good(status)) {
            tether_metric_add(tether_metric_series(reporter->reports, "refused", NULL), 1);
            tether_error("usage", "the fleet refused usage report %s (%zu entries dropped): "
                                  "status %d: %s",
                         b->report_id, b->entries, status,
                         cJSON_IsString(description) ? description->valuestring : "-");
            cJSON_Delete(answer);
            pending_pop(reporter);
            continue;
        }
        tether_metric_add(tether_metric_series(reporter->reports, "failed", NULL), 1);
        if (rc == TETHER_OK)
            snprintf(why, why_size, "the fleet answered status %d: %s", status,
                     cJSON_IsString(description) ? description->valuestring : "-");
        else
            snprintf(why, why_size, "%s", reporter->client.https.error[0] != '\0'
                                              ? reporter->client.https.error
                                              : tether_strerror(rc));
        cJSON_Delete(answer);
        return rc != TETHER_OK ? rc : TETHER_ERR_NETWORK;
    }
    return TETHER_OK;
}

/* Says once per interval how many requests found the table full. */
static void report_dropped(tether_gate_usage_reporter_t *reporter)
{
    uint64_t dropped;

    pthread_mutex_lock(&reporter->lock);
    dropped = reporter->dropped;
    reporter->dropped = 0;
    pthread_mutex_unlock(&reporter->lock);
    if (dropped > 0)
        tether_warn("usage", "%llu requests not counted for the usage reports: %d tokens "
                             "counted and %zu reports waiting for the fleet (the bounds)",
                    (unsigned long long)dropped, TETHER_GATE_USAGE_TOKENS_MAX,
                    reporter->pending_n);
}

static void *report_loop(void *arg)
{
    tether_gate_usage_reporter_t *reporter = arg;
    char why[300];
    bool failing = false;

    while (!atomic_load(&reporter->stop)) {
        tether_gate_pause_unless_stopped(&reporter->stop, reporter->interval_seconds);
        if (atomic_load(&reporter->stop))
            break;
        report_dropped(reporter);
        tether_gate_usage_reporter_batch(reporter);
        if (send_pending(reporter, 0, why, sizeof(why)) == TETHER_OK) {
            if (failing)
                tether_info("usage", "usage reports reach the fleet again");
            failing = false;
        } else {
            if (!failing)
                tether_warn("usage", "cannot deliver usage reports (kept, %zu waiting): %s",
                            reporter->pending_n, why);
            failing = true;
        }
    }
    return NULL;
}

tether_status_t tether_gate_usage_reporter_start(tether_gate_usage_reporter_t *reporter,
                                                 const char *fleet_url, const char *ca_file,
                                                 const char *rp_token, unsigned interval_seconds)
{
    tether_status_t rc;
    size_t len;

    if (reporter == NULL || !reporter->lock_ready || reporter->running || rp_token == NULL ||
        interval_seconds == 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    len = strlen(rp_token);
    if (len == 0 || len > TETHER_GATE_RP_TOKEN_MAX)
        return TETHER_ERR_INVALID_ARGUMENT;
    memcpy(reporter->rp_token, rp_token, len + 1);
    reporter->interval_seconds = interval_seconds;
    if ((rc = tether_gate_fleet_client_open(&reporter->client, fleet_url, ca_file,
                                            (interval_seconds + 10) * 1000)) != TETHER_OK)
        return rc;
    if (pthread_create(&reporter->thread, NULL, report_loop, reporter) != 0)
        return TETHER_ERR_NO_MEMORY;
    reporter->running = true;
    return TETHER_OK;
}

/* The last delivery at stop: the table and the waiting reports, once: no
 * report is started after TETHER_GATE_USAGE_FLUSH_MS, and each request
 * takes at most that long. */
static void flush(tether_gate_usage_reporter_t *reporter)
{
    int64_t deadline = tether_gate_mono_seconds() + (TETHER_GATE_USAGE_FLUSH_MS + 999) / 1000;
    char why[300] = "";
    tether_status_t rc;

    reporter->client.https.connect_timeout_ms = TETHER_GATE_USAGE_FLUSH_MS;
    reporter->client.https.io_timeout_ms = TETHER_GATE_USAGE_FLUSH_MS;
    reporter->client.https.request_timeout_ms = TETHER_GATE_USAGE_FLUSH_MS;
    /* Two rounds at most: a table the waiting reports left no room for
     * fits once they are delivered. */
    do {
        tether_gate_usage_reporter_batch(reporter);
        rc = send_pending(reporter, deadline, why, sizeof(why));
    } while (rc == TETHER_OK && reporter->count_n > 0);
    report_dropped(reporter);
    if (reporter->pending_n > 0 || reporter->count_n > 0)
        tether_warn("usage", "stopping with %zu usage entries not delivered to the fleet: %s",
                    reporter->pending_total + reporter->count_n, why);
}

void tether_gate_usage_reporter_stop(tether_gate_usage_reporter_t *reporter)
{
    if (reporter == NULL)
        return;
    if (reporter->running) {
        atomic_store(&reporter->stop, true);
        pthread_join(reporter->thread, NULL);
        flush(reporter);
    }
    for (size_t i = 0; i < reporter->pending_n; i++)
        cJSON_free(reporter->pending[i].body);
    free(reporter->counts);
    free(reporter->taken);
    free(reporter->slots);
    if (reporter->lock_ready)
        pthread_mutex_destroy(&reporter->lock);
    tether_gate_fleet_client_free(&reporter->client);
    tether_wipe(reporter->rp_token, sizeof(reporter->rp_token));
    memset(reporter, 0, sizeof(*reporter));
}
