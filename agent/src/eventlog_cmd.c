/*
 * tether-agent eventlog: an operator's look at a device's boot. Parses a
 * firmware event log (firmware/, eventlog.h), replays it and prints each
 * event and the replayed PCRs, as text or (--json) as the library's JSON.
 * The text is drawn from that JSON, so both say the same thing and the
 * decoding has one owner: the firmware part.
 */
#include "eventlog_cmd.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/eventlog.h"

/* Bytes of raw data (an event's, a variable's value, a device path) shown
 * in text (--json has all of it). */
#define RAW_DATA_SHOWN 32

static void eventlog_usage(FILE *out)
{
    fputs("Usage: tether-agent eventlog FILE [--json]\n"
          "\n"
          "Prints the events of a TCG PC Client firmware event log (the binary format\n"
          "of /sys/kernel/security/tpm0/binary_bios_measurements, crypto-agile or\n"
          "SHA-1) and the PCR values per bank the log replays to. Reads no TPM.\n"
          "\n"
          "  --json       print one JSON object: format, spec_id, events, replay\n"
          "  -h, --help   show this help\n"
          "Exit status: 0 printed, 1 the log cannot be read or is refused, 2 bad usage.\n",
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

static void print_replay(const cJSON *replay)
{
    const cJSON *bank, *pcr;

    printf("PCRs replayed (startup locality %.0f):\n",
           cJSON_GetObjectItemCaseSensitive(replay, "startup_locality")->valuedouble);
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
    print_replay(cJSON_GetObjectItemCaseSensitive(root, "replay"));
}

int tether_agent_eventlog_main(int argc, char **argv)
{
    static const struct option long_options[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int as_json = 0, c, code = 1;
    const char *path;
    uint8_t *bytes = NULL;
    size_t len = 0;
    tether_eventlog_t log;
    tether_eventlog_failure_t failure;
    tether_eventlog_pcrs_t pcrs;
    tether_status_t rc;
    cJSON *root = NULL;
    char *json = NULL;

    tether_eventlog_init(&log);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = 1; break;
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
    if ((rc = tether_eventlog_parse(&log, bytes, len, &failure)) != TETHER_OK) {
        if (failure.error == TETHER_FIRMWARE_OK) /* not the log's fault: memory, say */
            fprintf(stderr, "tether-agent eventlog: cannot parse %s: %s\n", path,
                    tether_strerror(rc));
        else
            fprintf(stderr,
                    "tether-agent eventlog: %s is not a valid firmware event log: %s at event "
                    "%zu (byte %zu): %s\n",
                    path, tether_firmware_error_name(failure.error), failure.event,
                    failure.offset, failure.text);
        goto out;
    }
    if ((rc = tether_eventlog_replay(&log, &pcrs)) != TETHER_OK ||
        (rc = tether_eventlog_to_json(&log, &pcrs, &root)) != TETHER_OK) {
        fprintf(stderr, "tether-agent eventlog: cannot replay %s: %s\n", path,
                tether_strerror(rc));
        goto out;
    }
    if (as_json) {
        if ((json = cJSON_Print(root)) == NULL) {
            fprintf(stderr, "tether-agent eventlog: out of memory\n");
            goto out;
        }
        printf("%s\n", json);
    } else {
        print_text(root);
    }
    code = fflush(stdout) == 0 ? 0 : 1;
out:
    cJSON_free(json);
    cJSON_Delete(root);
    tether_eventlog_free(&log);
    free(bytes);
    return code;
}
