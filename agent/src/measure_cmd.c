/*
 * tether-agent measure: tether's own measurements. Each file a config names
 * (the agent binary, its config, the application that uses the AI
 * endpoint) is hashed for every PCR bank the TPM has allocated; its record
 * goes to tether's log (TCG CEL, firmware/cel.h) and is synced, and only
 * then is TETHER_CEL_PCR extended with it. A run that stops between the two
 * leaves one record the PCR lacks: the next run finds it by replaying the
 * log against the PCR (tether_cel_assess), says so, drops it and measures
 * that file again. A log the PCR already covers whole is not measured twice:
 * measuring runs once per boot.
 */
#include "measure_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"
#include "tether/bytes.h"
#include "tether/file.h"

#define PREFIX "tether-agent measure: "

typedef struct measure_file {
    char name[TETHER_CEL_NAME_MAX + 1];
    char path[TETHER_CEL_PATH_MAX + 1];
} measure_file_t;

typedef struct measure_config {
    size_t count;
    measure_file_t files[TETHER_MEASURE_MAX_FILES];
} measure_config_t;

typedef struct measure_options {
    const char *tcti;
    const char *config;
    const char *log;
} measure_options_t;

/* The open log: its descriptor and what it holds now. */
typedef struct measure_log {
    int fd;
    const char *path;
    size_t size;
    tether_cel_t cel;
} measure_log_t;

static void measure_usage(FILE *out)
{
    fputs("Usage: tether-agent measure --config FILE [--log FILE] [--tcti TCTI]\n"
          "\n"
          "Measures tether's own files into PCR 13, once per boot: for each file the\n"
          "config names, its digest in every PCR bank the TPM has allocated is written\n"
          "to tether's log (TCG Canonical Event Log, TLV) and synced, then the PCR is\n"
          "extended. A run that stopped between the two is found on the next run (the\n"
          "log is replayed against the PCR), reported, and that file measured again.\n"
          "\n"
          "  --config FILE  one file a line: NAME /absolute/path (NAME of [A-Za-z0-9._-],\n"
          "                 at most 64; at most 16 files of at most 64 MiB each; lines\n"
          "                 starting with # are comments)\n"
          "  --log FILE     tether's log (default " TETHER_MEASURE_DEFAULT_LOG ")\n"
          "  --tcti TCTI    tpm2-tss TCTI configuration (default: the TSS default)\n"
          "  -h, --help     show this help\n"
          "\n"
          "Exit status: 0 measured, or already measured in this boot; 1 refused or\n"
          "failed (the message says why and what to do); 2 bad usage.\n",
          out);
}

static int parse_options(int argc, char **argv, measure_options_t *o)
{
    static const struct option long_options[] = {
        TETHER_AGENT_TCTI_LONG_OPTION,
        {"config", required_argument, NULL, 'c'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    o->tcti = NULL;
    o->config = NULL;
    o->log = TETHER_MEASURE_DEFAULT_LOG;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (c) {
        case TETHER_AGENT_TCTI_OPTION: o->tcti = optarg; break;
        case 'c': o->config = optarg; break;
        case 'l': o->log = optarg; break;
        case 'h': measure_usage(stdout); return 0;
        default: measure_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, PREFIX "unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (o->config == NULL) {
        fprintf(stderr, PREFIX "--config FILE is required\n");
        measure_usage(stderr);
        return 2;
    }
    return -1;
}

/* ---- the config ------------------------------------------------------ */

/* Splits line into at most two words; false for another count. */
static bool two_words(char *line, char **first, char **second)
{
    char *save = NULL, *extra;

    *first = strtok_r(line, " \t\r", &save);
    *second = *first != NULL ? strtok_r(NULL, " \t\r", &save) : NULL;
    extra = *second != NULL ? strtok_r(NULL, " \t\r", &save) : NULL;
    return *second != NULL && extra == NULL;
}

static int load_config(const char *path, measure_config_t *config)
{
    uint8_t *data = NULL;
    size_t len = 0, line_no = 0;
    char *line, *save = NULL, *name, *file;
    tether_status_t rc;
    int code = -1;

    config->count = 0;
    if ((rc = tether_file_read(path, TETHER_FILE_MAX, &data, &len)) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot read the config %s: %s\n", path, tether_strerror(rc));
        goto out;
    }
    if (memchr(data, '\0', len) != NULL) {
        fprintf(stderr, PREFIX "%s holds a NUL byte: not a text config\n", path);
        goto out;
    }
    for (line = strtok_r((char *)data, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        line += strspn(line, " \t\r");
        if (*line == '#' || *line == '\0')
            continue;
        if (!two_words(line, &name, &file) || !tether_cel_name_valid(name) ||
            !tether_cel_path_valid(file)) {
            fprintf(stderr,
                    PREFIX "%s line %zu: expected 'NAME /absolute/path' (NAME: 1 to 64 of "
                           "[A-Za-z0-9._-]; the path printable, without spaces)\n",
                    path, line_no);
            goto out;
        }
        if (config->count == TETHER_MEASURE_MAX_FILES) {
            fprintf(stderr, PREFIX "%s names more than %u files\n", path,
                    TETHER_MEASURE_MAX_FILES);
            goto out;
        }
        for (size_t i = 0; i < config->count; i++) {
            if (strcmp(config->files[i].name, name) == 0) {
                fprintf(stderr, PREFIX "%s line %zu: the name '%s' is used twice\n", path,
                        line_no, name);
                goto out;
            }
        }
        snprintf(config->files[config->count].name, sizeof(config->files[0].name), "%s", name);
        snprintf(config->files[config->count].path, sizeof(config->files[0].path), "%s", file);
        config->count++;
    }
    if (config->count == 0) {
        fprintf(stderr, PREFIX "%s names no file to measure\n", path);
        goto out;
    }
    code = 0;
out:
    free(data);
    return code;
}

/* ---- the TPM --------------------------------------------------------- */

tether_status_t tether_agent_read_cel_pcr(tether_tpm_t *tpm, const uint16_t *algorithms,
                                          size_t bank_count, tether_eventlog_pcrs_t *pcrs)
{
    TPM2B_DIGEST value;
    tether_status_t rc = TETHER_OK;

    if (pcrs != NULL)
        memset(pcrs, 0, sizeof(*pcrs));
    if (tpm == NULL || algorithms == NULL || pcrs == NULL || bank_count == 0 ||
        bank_count > TETHER_CEL_MAX_BANKS)
        return TETHER_ERR_INVALID_ARGUMENT;
    for (size_t b = 0; b < bank_count && rc == TETHER_OK; b++) {
        tether_eventlog_bank_t *bank = &pcrs->banks[b];

        if (!tether_cel_hash_of(algorithms[b], &bank->hash)) {
            rc = TETHER_ERR_INVALID_ARGUMENT;
            break;
        }
        bank->algorithm = algorithms[b];
        bank->size = tether_hash_size(bank->hash);
        bank->extended = UINT32_C(1) << TETHER_CEL_PCR;
        if ((rc = tether_tpm_pcr_read(tpm, algorithms[b], TETHER_CEL_PCR, &value)) != TETHER_OK)
            break;
        if (value.size != bank->size) {
            rc = TETHER_ERR_TPM;
            break;
        }
        memcpy(bank->pcrs[TETHER_CEL_PCR], value.buffer, bank->size);
        pcrs->bank_count = b + 1;
    }
    if (rc != TETHER_OK)
        memset(pcrs, 0, sizeof(*pcrs));
    return rc;
}

/* The TPM's allocated banks, each one lib hashes. */
static int tpm_banks(tether_tpm_t *tpm, uint16_t *algorithms, size_t *count)
{
    tether_tpm_info_t info;
    tether_hash_alg_t hash;
    tether_status_t rc;

    *count = 0;
    if ((rc = tether_tpm_get_info(tpm, &info)) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot list the TPM's PCR banks: %s: %s\n", tether_strerror(rc),
                tpm->last_error);
        return -1;
    }
    for (size_t i = 0; i < info.pcr_bank_count; i++) {
        /* A bank left out of an extend keeps its value: it would then not
         * cover tether's files, and a verifier reading it would be told
         * nothing changed. */
        if (!tether_cel_hash_of(info.pcr_banks[i], &hash) || *count == TETHER_CEL_MAX_BANKS) {
            fprintf(stderr,
                    PREFIX "the TPM has a PCR bank (algorithm 0x%04x) tether cannot compute "
                           "digests for (it computes SHA-1, SHA-256 and SHA-384); nothing "
                           "measured\n",
                    (unsigned)info.pcr_banks[i]);
            return -1;
        }
        algorithms[(*count)++] = info.pcr_banks[i];
    }
    if (*count == 0) {
        fprintf(stderr, PREFIX "the TPM reports no allocated PCR bank; nothing measured\n");
        return -1;
    }
    return 0;
}

/* ---- the log file ---------------------------------------------------- */

static int log_read(measure_log_t *log, uint8_t **data)
{
    struct stat st;
    size_t done = 0;
    ssize_t n;
    int code = -1;

    *data = NULL;
    if (fstat(log->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, PREFIX "%s is not a regular file\n", log->path);
        goto out;
    }
    if ((uint64_t)st.st_size > TETHER_CEL_MAX_SIZE) {
        fprintf(stderr, PREFIX "%s is over the %u bytes a log may hold; move it away\n",
                log->path, (unsigned)TETHER_CEL_MAX_SIZE);
        goto out;
    }
    if ((*data = malloc((size_t)st.st_size + 1)) == NULL) {
        fprintf(stderr, PREFIX "out of memory\n");
        goto out;
    }
    while (done < (size_t)st.st_size) {
        n = pread(log->fd, *data + done, (size_t)st.st_size - done, (off_t)done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, PREFIX "cannot read %s: %s\n", log->path,
                    n < 0 ? strerror(errno) : "it shrank while read");
            goto out;
        }
        done += (size_t)n;
    }
    log->size = done;
    code = 0;
out:
    if (code != 0) {
        free(*data);
        *data = NULL;
    }
    return code;
}

/* Cuts the log to size bytes, durably. */
static int log_cut(measure_log_t *log, size_t size)
{
    if (ftruncate(log->fd, (off_t)size) != 0 || fsync(log->fd) != 0) {
        fprintf(stderr, PREFIX "cannot cut %s to %zu bytes: %s\n", log->path, size,
                strerror(errno));
        return -1;
    }
    log->size = size;
    return 0;
}

/* Parses the log; a last record cut short (a run stopped while writing
 * it, so before its extend) is dropped and said. */
static int log_load(measure_log_t *log)
{
    uint8_t *data = NULL;
    tether_eventlog_failure_t failure;
    tether_status_t rc;
    int code = -1;

    if (log_read(log, &data) != 0)
        goto out;
    rc = tether_cel_parse(&log->cel, data, log->size, &failure);
    if (rc == TETHER_ERR_PARSE && failure.error == TETHER_FIRMWARE_TRUNCATED) {
        printf("%s: record %zu is cut short at byte %zu (a run stopped while writing it, "
               "before extending PCR %u): dropping its %zu bytes\n",
               log->path, failure.event, failure.offset, TETHER_CEL_PCR,
               log->size - failure.offset);
        if (log_cut(log, failure.offset) != 0)
            goto out;
        rc = tether_cel_parse(&log->cel, data, log->size, &failure);
    }
    if (rc != TETHER_OK) {
        if (failure.error == TETHER_FIRMWARE_OK)
            fprintf(stderr, PREFIX "cannot parse %s: %s\n", log->path, tether_strerror(rc));
        else
            fprintf(stderr,
                    PREFIX "%s is not a valid tether log: %s at record %zu (byte %zu): %s. "
                           "Nothing measured; keep it for inspection and move it away\n",
                    log->path, tether_firmware_error_name(failure.error), failure.event,
                    failure.offset, failure.text);
        goto out;
    }
    code = 0;
out:
    free(data);
    return code;
}

/* Appends bytes at the end of the log and syncs them before returning. */
static int log_append(measure_log_t *log, const uint8_t *bytes, size_t len)
{
    size_t done = 0;
    ssize_t n;

    while (done < len) {
        n = pwrite(log->fd, bytes + done, len - done, (off_t)(log->size + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, PREFIX "cannot write to %s: %s\n", log->path, strerror(errno));
            return -1;
        }
        done += (size_t)n;
    }
    if (fsync(log->fd) != 0) {
        fprintf(stderr, PREFIX "cannot sync %s: %s\n", log->path, strerror(errno));
        return -1;
    }
    log->size += len;
    return 0;
}

static int log_open(measure_log_t *log, const char *path)
{
    char *dir_copy = NULL;
    tether_status_t rc;
    int code = -1;

    log->path = path;
    log->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (log->fd < 0) {
        fprintf(stderr, PREFIX "cannot open %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, PREFIX "%s is locked by another run of measure; nothing measured\n",
                path);
        goto out;
    }
    /* The file's name is as durable as its records. */
    if ((dir_copy = strdup(path)) == NULL ||
        (rc = tether_dir_sync(dirname(dir_copy))) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot sync the folder of %s\n", path);
        goto out;
    }
    code = 0;
out:
    free(dir_copy);
    return code;
}

/* ---- measuring ------------------------------------------------------- */

void tether_agent_describe_standing(char *out, size_t out_size, const tether_cel_t *log,
                                    tether_cel_standing_t standing)
{
    const tether_cel_record_t *last =
        log->record_count > 0 ? &log->records[log->record_count - 1] : NULL;

    switch (standing) {
    case TETHER_CEL_IN_STEP:
        snprintf(out, out_size, "PCR %u holds all %zu records of the log", TETHER_CEL_PCR,
                 log->record_count);
        break;
    case TETHER_CEL_LAST_PENDING:
        snprintf(out, out_size,
                 "record %zu (%s, %s) was written but never extended into PCR %u: a run of "
                 "measure stopped between the two; the next run drops it and measures that "
                 "file again",
                 log->record_count - 1, last->name, last->path, TETHER_CEL_PCR);
        break;
    case TETHER_CEL_EARLIER_BOOT:
        snprintf(out, out_size,
                 "PCR %u is reset: the log's %zu records are an earlier boot's; the next run "
                 "of measure starts the log over",
                 TETHER_CEL_PCR, log->record_count);
        break;
    case TETHER_CEL_OUT_OF_STEP:
        snprintf(out, out_size,
                 "PCR %u matches no point of the log: something else extended PCR %u, or the "
                 "log is not this boot's; keep the log for inspection and, after a reboot, "
                 "move it away",
                 TETHER_CEL_PCR, TETHER_CEL_PCR);
        break;
    }
}

/* The log's banks (those of its first record) are the TPM's, in order. */
static bool same_banks(const tether_cel_t *cel, const uint16_t *algorithms, size_t count)
{
    if (cel->record_count == 0)
        return true;
    if (cel->records[0].bank_count != count)
        return false;
    for (size_t b = 0; b < count; b++)
        if (cel->records[0].algorithms[b] != algorithms[b])
            return false;
    return true;
}

/* Brings the log in step with the PCR: drops a pending last record or an
 * earlier boot's records. *kept gets the records the PCR holds. */
static int resolve(measure_log_t *log, tether_tpm_t *tpm, const uint16_t *algorithms,
                   size_t bank_count, size_t *kept)
{
    tether_eventlog_pcrs_t pcrs;
    tether_cel_standing_t standing;
    tether_status_t rc;
    char why[512];

    *kept = 0;
    if (!same_banks(&log->cel, algorithms, bank_count)) {
        fprintf(stderr,
                PREFIX "%s was written for other PCR banks than the TPM has allocated: it is "
                       "another TPM's, or from before the banks changed; move it away\n",
                log->path);
        return -1;
    }
    if ((rc = tether_agent_read_cel_pcr(tpm, algorithms, bank_count, &pcrs)) != TETHER_OK ||
        (rc = tether_cel_assess(&log->cel, &pcrs, &standing, kept)) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot read PCR %u: %s: %s\n", TETHER_CEL_PCR,
                tether_strerror(rc), tpm->last_error);
        return -1;
    }
    tether_agent_describe_standing(why, sizeof(why), &log->cel, standing);
    switch (standing) {
    case TETHER_CEL_IN_STEP: return 0;
    case TETHER_CEL_LAST_PENDING:
        printf("%s: %s; dropping it now\n", log->path, why);
        return log_cut(log, log->cel.records[*kept].offset);
    case TETHER_CEL_EARLIER_BOOT:
        printf("%s: PCR %u is reset (a new boot): starting the log over\n", log->path,
               TETHER_CEL_PCR);
        return log_cut(log, 0);
    case TETHER_CEL_OUT_OF_STEP: break;
    }
    fprintf(stderr, PREFIX "%s: %s. Nothing measured\n", log->path, why);
    return -1;
}

/* file's digest in each bank into m (its name and path from file). */
static int hash_file(const measure_file_t *file, const uint16_t *algorithms, size_t bank_count,
                     tether_cel_measurement_t *m)
{
    uint8_t *data = NULL;
    size_t len = 0;
    tether_hash_alg_t hash;
    tether_status_t rc;
    int code = -1;

    memset(m, 0, sizeof(*m));
    m->name = file->name;
    m->path = file->path;
    m->bank_count = (uint32_t)bank_count;
    if ((rc = tether_file_read(file->path, TETHER_MEASURE_FILE_MAX, &data, &len)) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot read %s (%s): %s%s\n", file->path, file->name,
                tether_strerror(rc),
                rc == TETHER_ERR_TOO_LARGE ? " (a measured file is at most 64 MiB)" : "");
        goto out;
    }
    for (size_t b = 0; b < bank_count; b++) {
        m->algorithms[b] = algorithms[b];
        (void)tether_cel_hash_of(algorithms[b], &hash); /* tpm_banks kept only these */
        if ((rc = tether_hash(hash, data, len, m->file_digests[b], sizeof(m->file_digests[b]))) !=
            TETHER_OK) {
            fprintf(stderr, PREFIX "cannot hash %s: %s\n", file->path, tether_strerror(rc));
            goto out;
        }
    }
    code = 0;
out:
    free(data);
    return code;
}

/* Writes record recnum for file (synced), then extends the PCR with it. */
static int measure_one(measure_log_t *log, tether_tpm_t *tpm, size_t recnum,
                       const measure_file_t *file, const uint16_t *algorithms, size_t bank_count)
{
    tether_cel_measurement_t m;
    uint8_t record[TETHER_CEL_RECORD_MAX], digests[TETHER_CEL_MAX_BANKS][TETHER_HASH_MAX_SIZE];
    char hex[2 * TETHER_HASH_MAX_SIZE + 1] = "";
    TPML_DIGEST_VALUES values;
    size_t len = 0;
    tether_status_t rc;
    int code = -1;

    memset(&values, 0, sizeof(values));
    if (hash_file(file, algorithms, bank_count, &m) != 0)
        goto out;
    if ((rc = tether_cel_encode(recnum, &m, record, sizeof(record), &len, digests)) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot encode the record of %s: %s\n", file->path,
                tether_strerror(rc));
        goto out;
    }
    if (log_append(log, record, len) != 0)
        goto out;
    values.count = (uint32_t)bank_count;
    for (size_t b = 0; b < bank_count; b++) {
        tether_hash_alg_t hash;

        (void)tether_cel_hash_of(algorithms[b], &hash);
        values.digests[b].hashAlg = algorithms[b];
        memcpy(&values.digests[b].digest, digests[b], tether_hash_size(hash));
        if (algorithms[b] == TETHER_TPM_ALG_SHA256)
            (void)tether_hex_encode(m.file_digests[b], 32, hex, sizeof(hex));
    }
    if ((rc = tether_tpm_pcr_extend(tpm, TETHER_CEL_PCR, &values)) != TETHER_OK) {
        fprintf(stderr,
                PREFIX "record %zu (%s) is in %s but PCR %u was not extended: %s: %s. The next "
                       "run drops the record and measures %s again\n",
                recnum, file->name, log->path, TETHER_CEL_PCR, tether_strerror(rc),
                tpm->last_error, file->path);
        goto out;
    }
    printf("measured %s %s%s%s\n", file->name, file->path, hex[0] != '\0' ? " sha256:" : "", hex);
    code = 0;
out:
    return code;
}

int tether_agent_measure_main(int argc, char **argv)
{
    measure_options_t opts;
    measure_config_t *config = NULL;
    measure_log_t log = {.fd = -1};
    tether_tpm_t tpm;
    uint16_t algorithms[TETHER_CEL_MAX_BANKS];
    size_t bank_count = 0, kept = 0;
    char why[512];
    int code;

    tether_tpm_init(&tpm);
    tether_cel_init(&log.cel);
    if ((code = parse_options(argc, argv, &opts)) >= 0)
        return code;
    code = 1;
    if ((config = calloc(1, sizeof(*config))) == NULL) {
        fprintf(stderr, PREFIX "out of memory\n");
        goto out;
    }
    if (load_config(opts.config, config) != 0)
        goto out;
    if (tether_agent_tpm_open(&tpm, opts.tcti, why, sizeof(why)) != TETHER_OK) {
        fprintf(stderr, PREFIX "cannot open the TPM: %s\n", why);
        goto out;
    }
    if (tpm_banks(&tpm, algorithms, &bank_count) != 0 || log_open(&log, opts.log) != 0 ||
        log_load(&log) != 0 || resolve(&log, &tpm, algorithms, bank_count, &kept) != 0)
        goto out;
    /* The records the PCR holds must be this config's first files. */
    for (size_t r = 0; r < kept; r++) {
        if (r >= config->count || strcmp(log.cel.records[r].name, config->files[r].name) != 0 ||
            strcmp(log.cel.records[r].path, config->files[r].path) != 0) {
            fprintf(stderr,
                    PREFIX "%s holds records of another config (record %zu: %s %s) and PCR %u "
                           "holds them: measure with the config of this boot, or reboot\n",
                    log.path, r, log.cel.records[r].name, log.cel.records[r].path,
                    TETHER_CEL_PCR);
            goto out;
        }
    }
    if (kept == config->count) {
        printf("already measured in this boot: PCR %u holds the %zu records of %s; nothing "
               "to do\n",
               TETHER_CEL_PCR, kept, log.path);
        code = 0;
        goto out;
    }
    for (size_t r = kept; r < config->count; r++)
        if (measure_one(&log, &tpm, r, &config->files[r], algorithms, bank_count) != 0)
            goto out;
    code = fflush(stdout) == 0 ? 0 : 1;
out:
    if (log.fd >= 0)
        close(log.fd);
    tether_cel_free(&log.cel);
    tether_tpm_close(&tpm);
    free(config);
    return code;
}
