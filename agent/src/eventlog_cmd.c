/*
 * tether-agent eventlog: an operator's look at a device's boot. Parses a
 * firmware event log (firmware/, eventlog.h) or tether's own log (TCG CEL,
 * cel.h: told apart by its first bytes), replays it and prints each event
 * and the replayed PCRs, as text or (--json) as the library's JSON. The
 * text is drawn from that JSON, so both say the same thing and the decoding
 * has one owner: the firmware part. --check compares tether's log with the
 * TPM's PCR (tether_cel_assess, as measure does).
 */
#include "eventlog_cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure_cmd.h"
#include "options.h"
#include "tether/cel.h"
#include "tether/eventlog.h"

/* Bytes of raw data (an event's, a variable's value, a device path) shown
 * in text (--json has all of it). */
#define RAW_DATA_SHOWN 32

static void eventlog_usage(FILE *out)
{
    fputs("Usage: tether-agent eventlog FILE [--json] [--check [--tcti TCTI]]\n"
          "\n"
          "Prints the events of a TCG PC Client firmware event log (the binary format\n"
          "of /sys/kernel/security/tpm0/binary_bios_measurements, crypto-agile or\n"
          "SHA-1), or the records of tether's own log (TCG Canonical Event Log, TLV,\n"
          "written by 'tether-agent measure'), and the PCR values per bank the log\n"
          "replays to. Reads no TPM unless --check.\n"
          "\n"
          "  --json       print one JSON object: format, spec_id, events (records for\n"
          "               tether's log), replay (and check)\n"
          "  --check      tether's log only: compare its replay with PCR 13 of the TPM\n"
          "               and say where it stands (in step, last record pending, an\n"
          "               earlier boot's, out of step)\n"
          "  --tcti TCTI  the TPM for --check (default: the TSS default)\n"
          "  -h, --help   show this help\n"
          "Exit status: 0 printed (and, with --check, in step), 1 the log cannot be read\n"
          "or is refused, or --check found it not in step, 2 bad usage.\n",
          out);
}

/* Members of an event object printed on their own or skipped in text. */
static bool is_header_member(const char *name)
{
    static const char *const names[] = {"number", "pcr", "type", "type_value",
                                        "digests", "data_size", "data"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

/* "  name: hex", cut after RAW_DATA_SHOWN bytes. */
static void print_hex(const char *name, const char *hex)
{
    printf("  %s: %.*s%s\n", name, 2 * RAW_DATA_SHOWN, hex,
           strlen(hex) > 2 * RAW_DATA_SHOWN ? "..." : "");
}

/* One decoded field: "  prefix.name: value", objects member by member. */
static void print_field(const char *prefix, const cJSON *item)
{
    const cJSON *child;
    char path[64];

    snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", item->string);
    if (cJSON_IsObject(item)) {
        cJSON_ArrayForEach(child, item) print_field(path, child);
    } else if (cJSON_IsString(item) &&
               (strcmp(item->string, "data") == 0 || strcmp(item->string, "device_path") == 0)) {
        print_hex(path, item->valuestring);
    } else if (cJSON_IsString(item)) {
        printf("  %s: %s\n", path, item->valuestring);
    } else if (cJSON_IsBool(item)) {
        printf("  %s: %s\n", path, cJSON_IsTrue(item) ? "yes" : "no");
    } else if (cJSON_IsNumber(item)) {
        printf("  %s: %.0f\n", path, item->valuedouble);
    }
}

static void print_event(const cJSON *ev)
{
    const cJSON *digest, *member, *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    bool decoded = false;

    printf("event %.0f  PCR %.0f  %s  (%.0f bytes)\n",
           cJSON_GetObjectItemCaseSensitive(ev, "number")->valuedouble,
           cJSON_GetObjectItemCaseSensitive(ev, "pcr")->valuedouble,
           cJSON_GetObjectItemCaseSensitive(ev, "type")->valuestring,
           cJSON_GetObjectItemCaseSensitive(ev, "data_size")->valuedouble);
    cJSON_ArrayForEach(digest, cJSON_GetObjectItemCaseSensitive(ev, "digests"))
        printf("  %s: %s\n", cJSON_GetObjectItemCaseSensitive(digest, "algorithm")->valuestring,
               cJSON_GetObjectItemCaseSensitive(digest, "digest")->valuestring);
    cJSON_ArrayForEach(member, ev) {
        if (is_header_member(member->string))
            continue;
        print_field("", member);
        decoded = true;
    }
    if (!decoded && strlen(data->valuestring) > 0)
        print_hex("data", data->valuestring);
}

static void print_replay(const cJSON *replay, bool firmware)
{
    const cJSON *bank, *pcr;

    if (firmware)
        printf("PCRs replayed (startup locality %.0f):\n",
               cJSON_GetObjectItemCaseSensitive(replay, "startup_locality")->valuedouble);
    else
        printf("PCRs replayed:\n");
    cJSON_ArrayForEach(bank, replay) {
        if (!cJSON_IsObject(bank))
            continue;
        printf("  %s%s\n", bank->string,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(bank, "complete"))
                   ? ""
                   : " (incomplete: events without this bank's digest; not the TPM's values)");
        cJSON_ArrayForEach(pcr, cJSON_GetObjectItemCaseSensitive(bank, "pcrs"))
            printf("    %2s: %s\n", pcr->string, pcr->valuestring);
    }
}

static void print_text(const cJSON *root)
{
    const cJSON *ev;

    printf("format: %s\n", cJSON_GetObjectItemCaseSensitive(root, "format")->valuestring);
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(root, "events")) print_event(ev);
    print_replay(cJSON_GetObjectItemCaseSensitive(root, "replay"), true);
}

static void print_digests(const char *prefix, const cJSON *list)
{
    const cJSON *digest;

    cJSON_ArrayForEach(digest, list)
        printf("  %s%s: %s\n", prefix,
               cJSON_GetObjectItemCaseSensitive(digest, "algorithm")->valuestring,
               cJSON_GetObjectItemCaseSensitive(digest, "digest")->valuestring);
}

static void print_cel_text(const cJSON *root)
{
    const cJSON *rec, *check = cJSON_GetObjectItemCaseSensitive(root, "check");

    printf("format: %s\n", cJSON_GetObjectItemCaseSensitive(root, "format")->valuestring);
    cJSON_ArrayForEach(rec, cJSON_GetObjectItemCaseSensitive(root, "records")) {
        printf("record %.0f  PCR %.0f  %s  %s  %s\n",
               cJSON_GetObjectItemCaseSensitive(rec, "recnum")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(rec, "pcr")->valuedouble,
               cJSON_GetObjectItemCaseSensitive(rec, "content_type")->valuestring,
               cJSON_GetObjectItemCaseSensitive(rec, "name")->valuestring,
               cJSON_GetObjectItemCaseSensitive(rec, "path")->valuestring);
        print_digests("", cJSON_GetObjectItemCaseSensitive(rec, "digests"));
        print_digests("file ", cJSON_GetObjectItemCaseSensitive(rec, "file_digests"));
    }
    print_replay(cJSON_GetObjectItemCaseSensitive(root, "replay"), false);
    if (check != NULL)
        printf("check: %s: %s\n",
               cJSON_GetObjectItemCaseSensitive(check, "standing")->valuestring,
               cJSON_GetObjectItemCaseSensitive(check, "text")->valuestring);
}

/* --check: where the log stands against the TPM's PCR, added to root as
 * "check": {"standing", "records_in_pcr", "text"}. *in_step tells the
 * exit status. */
static int check_cel(const tether_cel_t *log, const char *tcti, cJSON *root, bool *in_step)
{
    tether_tpm_t tpm;
    tether_eventlog_pcrs_t pcrs;
    tether_cel_standing_t standing;
    const tether_cel_record_t *first = &log->records[0];
    size_t covered = 0;
    char why[512];
    cJSON *check;
    tether_status_t rc;
    int code = -1;

    *in_step = false;
    tether_tpm_init(&tpm);
    if (tether_agent_tpm_open(&tpm, tcti, why, sizeof(why)) != TETHER_OK) {
        fprintf(stderr, "tether-agent eventlog: cannot open the TPM: %s\n", why);
        goto out;
    }
    if ((rc = tether_agent_read_cel_pcr(&tpm, first->algorithms, first->bank_count, &pcrs)) !=
            TETHER_OK ||
        (rc = tether_cel_assess(log, &pcrs, &standing, &covered)) != TETHER_OK) {
        fprintf(stderr, "tether-agent eventlog: cannot read PCR %u in the log's banks: %s: %s\n",
                TETHER_CEL_PCR, tether_strerror(rc), tpm.last_error);
        goto out;
    }
    tether_agent_describe_standing(why, sizeof(why), log, standing);
    if ((check = cJSON_AddObjectToObject(root, "check")) == NULL ||
        cJSON_AddStringToObject(check, "standing", tether_cel_standing_name(standing)) == NULL ||
        cJSON_AddNumberToObject(check, "records_in_pcr", (double)covered) == NULL ||
        cJSON_AddStringToObject(check, "text", why) == NULL) {
        fprintf(stderr, "tether-agent eventlog: out of memory\n");
        goto out;
    }
    *in_step = standing == TETHER_CEL_IN_STEP;
    code = 0;
out:
    tether_tpm_close(&tpm);
    return code;
}

/* Why a log was refused: its own fault (where and why), or not (memory). */
static void report_refusal(const char *path, const char *kind, const char *unit,
                           tether_status_t rc, const tether_eventlog_failure_t *failure)
{
    if (failure->error == TETHER_FIRMWARE_OK)
        fprintf(stderr, "tether-agent eventlog: cannot parse %s: %s\n", path,
                tether_strerror(rc));
    else
        fprintf(stderr, "tether-agent eventlog: %s is not a valid %s: %s at %s %zu (byte %zu): %s\n",
                path, kind, tether_firmware_error_name(failure->error), unit, failure->event,
                failure->offset, failure->text);
}

/* A firmware event log: parsed and replayed into *root. */
static int load_firmware(const char *path, const uint8_t *bytes, size_t len, cJSON **root)
{
    tether_eventlog_t log;
    tether_eventlog_failure_t failure;
    tether_eventlog_pcrs_t pcrs;
    tether_status_t rc;
    int code = -1;

    tether_eventlog_init(&log);
    if ((rc = tether_eventlog_parse(&log, bytes, len, &failure)) != TETHER_OK) {
        report_refusal(path, "firmware event log", "event", rc, &failure);
        goto out;
    }
    if ((rc = tether_eventlog_replay(&log, &pcrs)) != TETHER_OK ||
        (rc = tether_eventlog_to_json(&log, &pcrs, root)) != TETHER_OK) {
        fprintf(stderr, "tether-agent eventlog: cannot replay %s: %s\n", path,
                tether_strerror(rc));
        goto out;
    }
    code = 0;
out:
    tether_eventlog_free(&log);
    return code;
}

/* tether's own log: parsed, replayed, (--check) compared with the TPM, into
 * *root. */
static int load_cel(const char *path, const uint8_t *bytes, size_t len, bool check,
                    const char *tcti, cJSON **root, bool *in_step)
{
    tether_cel_t log;
    tether_eventlog_failure_t failure;
    tether_eventlog_pcrs_t pcrs;
    tether_status_t rc;
    int code = -1;

    *in_step = true;
    tether_cel_init(&log);
    if ((rc = tether_cel_parse(&log, bytes, len, &failure)) != TETHER_OK) {
        report_refusal(path, "tether log", "record", rc, &failure);
        goto out;
    }
    if ((rc = tether_cel_replay(&log, log.record_count, NULL, 0, &pcrs)) != TETHER_OK ||
        (rc = tether_cel_to_json(&log, &pcrs, root)) != TETHER_OK) {
        fprintf(stderr, "tether-agent eventlog: cannot replay %s: %s\n", path,
                tether_strerror(rc));
        goto out;
    }
    if (check && check_cel(&log, tcti, *root, in_step) != 0)
        goto out;
    code = 0;
out:
    tether_cel_free(&log);
    return code;
}

int tether_agent_eventlog_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"json", no_argument, NULL, 'j'},
        {"check", no_argument, NULL, 'k'},
        TETHER_AGENT_TCTI_LONG_OPTION,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, c, code = 1;
    bool check = false, cel = false, in_step = true;
    const char *path, *tcti = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    tether_status_t rc;
    cJSON *root = NULL;
    char *json = NULL;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = 1; break;
        case 'k': check = true; break;
        case TETHER_AGENT_TCTI_OPTION: tcti = optarg; break;
        case 'h': eventlog_usage(stdout); return 0;
        default: eventlog_usage(stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        eventlog_usage(stderr);
        return 2;
    }
    path = argv[optind];
    if ((rc = tether_eventlog_read_file(path, &bytes, &len)) != TETHER_OK) {
        fprintf(stderr, "tether-agent eventlog: cannot read %s: %s%s\n", path,
                tether_strerror(rc),
                rc == TETHER_ERR_TOO_LARGE ? " (a firmware event log is at most 1 MiB)" : "");
        goto out;
    }
    cel = tether_cel_recognise(bytes, len);
    if (check && !cel) {
        fprintf(stderr, "tether-agent eventlog: --check compares tether's own log (written by "
                        "'tether-agent measure') with the TPM; %s is not one\n",
                path);
        code = 2;
        goto out;
    }
    if (cel ? load_cel(path, bytes, len, check, tcti, &root, &in_step) != 0
            : load_firmware(path, bytes, len, &root) != 0)
        goto out;
    if (as_json) {
        if ((json = cJSON_Print(root)) == NULL) {
            fprintf(stderr, "tether-agent eventlog: out of memory\n");
            goto out;
        }
        printf("%s\n", json);
    } else if (cel) {
        print_cel_text(root);
    } else {
        print_text(root);
    }
    code = fflush(stdout) == 0 && in_step ? 0 : 1;
out:
    cJSON_free(json);
    cJSON_Delete(root);
    free(bytes);
    return code;
}
