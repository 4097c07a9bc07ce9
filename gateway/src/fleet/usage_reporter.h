/*
 * tether-gate's usage reports to the fleet (POST /v1/usage/reports with the
 * relying-party token; provisioning/fleetd/README.md, "Usage"): what the
 * gateway saw per token, so the fleet sees usage per device and per token.
 *
 * Request threads count into a bounded table (_count, one lock, no I/O).
 * The reporter's thread, every interval seconds, turns the table into
 * reports of at most TETHER_GATE_USAGE_REPORT_ENTRIES entries, each with its
 * own report_id and its body kept as sent, and POSTs them in order. A report
 * that fails to arrive (fleetd unreachable, 5xx, 429) is kept and sent again
 * with the same id and body, which fleetd counts once; one fleetd refuses
 * (400, 409, 413, 422: it will never be accepted) is logged and dropped.
 * Memory is bounded: at most TETHER_GATE_USAGE_PENDING_MAX reports wait, and
 * while they do the table keeps counting; a token that finds the table full
 * is not counted (said in the log and in tether_gate_usage_dropped_total),
 * and no request ever waits for the fleet. On stop the thread ends and the
 * table and the waiting reports are sent once with a short deadline (no
 * report started after TETHER_GATE_USAGE_FLUSH_MS, each request bounded by
 * it: at most twice that in all).
 */
#ifndef TETHER_GATE_USAGE_REPORTER_H
#define TETHER_GATE_USAGE_REPORTER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet_client.h"
#include "revocations.h"
#include "tether/metrics.h"

#define TETHER_GATE_USAGE_PATH "/v1/usage/reports" /* under the fleet's base URL */
#define TETHER_GATE_USAGE_TOKENS_MAX 4096   /* tokens counted between two reports */
#define TETHER_GATE_USAGE_REPORT_ENTRIES 256 /* fleetd's bound per report */
#define TETHER_GATE_USAGE_PENDING_MAX 16    /* reports kept while the fleet is unreachable */
#define TETHER_GATE_USAGE_FLUSH_MS 3000     /* the flush at stop (see above) */
#define TETHER_GATE_USAGE_JTI_SIZE 33       /* fleetd's jti: 32 hex digits + NUL */
#define TETHER_GATE_USAGE_DEVICE_SIZE 29    /* fleetd's device id + NUL */
#define TETHER_GATE_USAGE_ID_SIZE 40        /* report ids: 16 hex, '-', 20 digits + NUL */
/* fleetd's bounds per entry (usage_report.h): an entry stops counting at
 * them rather than make a report fleetd would refuse. */
#define TETHER_GATE_USAGE_MAX_REQUESTS 1000000000ULL
#define TETHER_GATE_USAGE_MAX_TOKENS 1000000000000ULL
#define TETHER_GATE_USAGE_MAX_COST 1000000000000000ULL

/* What became of one request of a token after authorization. The two
 * refusals the fleet's thresholds watch (provisioning/fleetd/README.md,
 * "Anomaly thresholds") are counted in refused too, and in their own
 * figure. */
typedef enum tether_gate_usage_kind {
    TETHER_GATE_USAGE_FORWARDED = 0,  /* passed the ceilings: answered, or failed upstream */
    TETHER_GATE_USAGE_REFUSED,        /* refused by a ceiling or its body */
    TETHER_GATE_USAGE_REFUSED_MODEL,  /* the model outside the allow lists (model_not_allowed) */
    TETHER_GATE_USAGE_REFUSED_SOURCE, /* the client outside the token's sources */
} tether_gate_usage_kind_t;

/* One token's counts since the last report. */
typedef struct tether_gate_usage_count {
    char jti[TETHER_GATE_USAGE_JTI_SIZE];
    char device[TETHER_GATE_USAGE_DEVICE_SIZE];
    uint64_t requests;
    uint64_t refused;
    uint64_t refused_models;  /* of refused */
    uint64_t refused_sources; /* of refused */
    uint64_t prompt_tokens;
    uint64_t completion_tokens;
    uint64_t cost_micros;
    int64_t first_seen;
    int64_t last_seen;
} tether_gate_usage_count_t;

/* A report as sent, kept until fleetd has it. */
typedef struct tether_gate_usage_batch {
    char report_id[TETHER_GATE_USAGE_ID_SIZE];
    char *body; /* the JSON text, NUL-terminated */
    size_t len;
    size_t entries;
} tether_gate_usage_batch_t;

typedef struct tether_gate_usage_reporter {
    /* Counting (request threads, under lock). */
    pthread_mutex_t lock;
    bool lock_ready;
    tether_gate_usage_count_t *counts; /* TETHER_GATE_USAGE_TOKENS_MAX */
    int32_t *slots;                    /* open addressing over counts: index or -1 */
    size_t count_n;
    uint64_t dropped;                  /* requests not counted since the last warning */
    size_t pending_total;              /* entries in the waiting reports */
    /* Reporting (the reporter's thread; after it stopped, _stop). */
    tether_gate_usage_count_t *taken; /* the table taken at a report */
    tether_gate_usage_batch_t pending[TETHER_GATE_USAGE_PENDING_MAX];
    size_t pending_n;
    char gateway[65];                 /* the name reports carry: the gateway's audience */
    char id_prefix[17];               /* random at each start: ids never repeat */
    uint64_t sequence;
    /* Metrics (in the monitor's registry). */
    tether_metric_t *reports;              /* {outcome}: sent, failed, refused */
    tether_metric_series_t *pending_gauge; /* entries waiting, table included */
    tether_metric_series_t *dropped_total;
    /* The thread. */
    tether_gate_fleet_client_t client;
    char rp_token[TETHER_GATE_RP_TOKEN_MAX + 1]; /* secret: wiped by _stop */
    unsigned interval_seconds;
    pthread_t thread;
    bool running;
    atomic_bool stop;
} tether_gate_usage_reporter_t;

void tether_gate_usage_reporter_init(tether_gate_usage_reporter_t *reporter);

/* Allocates the table and registers the metrics in registry (which must
 * outlive the reporter); gateway is the name reports carry (1-64
 * characters of [A-Za-z0-9._:/-], the gateway's audience). Counting works
 * from here on; nothing is sent before _start. */
TETHER_MUST_CHECK tether_status_t tether_gate_usage_reporter_open(
    tether_gate_usage_reporter_t *reporter, tether_metrics_t *registry, const char *gateway);

/* One request of a token after authorization, at wall-clock now, by what
 * became of it, with what it was charged. Never blocks on I/O; accepts a
 * NULL reporter. */
void tether_gate_usage_reporter_count(tether_gate_usage_reporter_t *reporter, const char *device,
                                      const char *jti, tether_gate_usage_kind_t kind,
                                      uint64_t prompt_tokens,
                                      uint64_t completion_tokens, uint64_t cost_micros,
                                      int64_t now);

/* Turns the table into reports when there is room for them among the
 * waiting ones (the reporter's thread; public for tests); the number of
 * reports made. Out of memory loses the entries (logged). */
size_t tether_gate_usage_reporter_batch(tether_gate_usage_reporter_t *reporter);

/* Starts the thread: a report every interval_seconds to fleet_url with its
 * CA pinned; rp_token is copied. */
TETHER_MUST_CHECK tether_status_t tether_gate_usage_reporter_start(
    tether_gate_usage_reporter_t *reporter, const char *fleet_url, const char *ca_file,
    const char *rp_token, unsigned interval_seconds);

/* Stops the thread, sends what is left once (within about twice
 * TETHER_GATE_USAGE_FLUSH_MS), frees and wipes. Accepts a reporter never
 * opened or started. */
void tether_gate_usage_reporter_stop(tether_gate_usage_reporter_t *reporter);

#endif
