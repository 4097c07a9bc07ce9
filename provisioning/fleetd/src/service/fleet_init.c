/* tether-fleetd init: a new fleet directory, built aside and renamed in. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <mbedtls/x509_crt.h>

#include "files.h"
#include "fleet.h"
#include "tether/bytes.h"
#include "tether/file.h"
#include "tether/log.h"

#define EK_CA_MAX_BYTES (64 * 1024)
#define INITIAL_TOKEN_NAME "initial admin"

/* DIR must be absent or an empty directory: an existing fleet is never touched. */
static tether_status_t check_target(const char *dir)
{
    struct stat st;
    struct dirent *entry;
    DIR *d;
    bool empty = true;

    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT)
            return TETHER_OK;
        tether_error("init", "cannot inspect %s: %s", dir, strerror(errno));
        return TETHER_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        tether_error("init", "%s exists and is not a directory; choose another --dir", dir);
        return TETHER_ERR_CONFLICT;
    }
    if ((d = opendir(dir)) == NULL) {
        tether_error("init", "cannot read %s: %s", dir, strerror(errno));
        return TETHER_ERR_IO;
    }
    while (empty && (entry = readdir(d)) != NULL)
        empty = strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0;
    closedir(d);
    if (!empty) {
        tether_error("init", "%s is not empty (an existing fleet?): refusing to overwrite it; "
                             "choose an empty or new --dir", dir);
        return TETHER_ERR_CONFLICT;
    }
    return TETHER_OK;
}

/* The last path component, checked to be a plain file name for ek-ca/. */
static tether_status_t ek_ca_name(const char *path, char *out, size_t out_size)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    char relative[TETHER_CONFIG_PATH_MAX];

    if (base[0] == '\0' || base[0] == '.' ||
        snprintf(relative, sizeof(relative), TETHER_FLEET_EK_CA_DIR "/%s", base) >=
            (int)sizeof(relative) ||
        !tether_fleet_config_path_valid(relative) || strlen(base) >= out_size) {
        tether_error("init", "--ek-ca %s: the file name must use only A-Z a-z 0-9 . _ -", path);
        return TETHER_ERR_INVALID_ARGUMENT;
    }
    strcpy(out, base);
    return TETHER_OK;
}

/* Reads and parses an EK CA certificate (PEM or DER) and copies it in. */
static tether_status_t copy_ek_ca(const char *staging, const char *path, const char *name)
{
    char ek_dir[4096];
    mbedtls_x509_crt crt;
    uint8_t *data = NULL;
    size_t len = 0;
    tether_status_t rc;

    if ((rc = tether_file_read(path, EK_CA_MAX_BYTES, &data, &len)) != TETHER_OK) {
        tether_error("init", "cannot read --ek-ca %s: %s", path, tether_strerror(rc));
        return rc;
    }
    mbedtls_x509_crt_init(&crt);
    /* The PEM parser wants the terminating NUL counted; DER must not have it. */
    if (mbedtls_x509_crt_parse(&crt, data, len + 1) != 0 &&
        mbedtls_x509_crt_parse(&crt, data, len) != 0) {
        tether_error("init", "--ek-ca %s is not an X.509 certificate (PEM or DER)", path);
        rc = TETHER_ERR_PARSE;
    }
    mbedtls_x509_crt_free(&crt);
    if (rc == TETHER_OK)
        rc = tether_fleet_path(ek_dir, sizeof(ek_dir), staging, TETHER_FLEET_EK_CA_DIR);
    if (rc == TETHER_OK)
        rc = tether_fleet_file_write(ek_dir, name, data, len, 0644);
    free(data);
    return rc;
}

static tether_status_t write_ek_cas(const char *staging, const tether_fleet_init_options_t *opts,
                                    tether_fleet_config_t *config)
{
    char ek_dir[4096];
    char name[TETHER_CONFIG_PATH_MAX];
    tether_status_t rc;

    if (opts->ek_ca_count > TETHER_CONFIG_MAX_EK_CA) {
        tether_error("init", "at most %d --ek-ca files", TETHER_CONFIG_MAX_EK_CA);
        return TETHER_ERR_TOO_LARGE;
    }
    rc = tether_fleet_path(ek_dir, sizeof(ek_dir), staging, TETHER_FLEET_EK_CA_DIR);
    if (rc != TETHER_OK)
        return rc;
    if (mkdir(ek_dir, 0700) != 0) {
        tether_error("init", "cannot create %s: %s", ek_dir, strerror(errno));
        return TETHER_ERR_IO;
    }
    for (size_t i = 0; i < opts->ek_ca_count; i++) {
        if ((rc = ek_ca_name(opts->ek_ca_files[i], name, sizeof(name))) != TETHER_OK)
            return rc;
        if (snprintf(config->ek_ca[i], sizeof(config->ek_ca[i]), TETHER_FLEET_EK_CA_DIR "/%s",
                     name) >= (int)sizeof(config->ek_ca[i]))
            return TETHER_ERR_TOO_LARGE;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(config->ek_ca[j], config->ek_ca[i]) == 0) {
                tether_error("init", "two --ek-ca files are named %s; rename one", name);
                return TETHER_ERR_CONFLICT;
            }
        }
        if ((rc = copy_ek_ca(staging, opts->ek_ca_files[i], name)) != TETHER_OK)
            return rc;
        config->ek_ca_count = i + 1;
    }
    return tether_dir_sync(ek_dir);
}

/* Writes a new key's PEM (0600); pk stays set up for signing. */
static tether_status_t write_key(const char *staging, const char *name, mbedtls_pk_context *pk)
{
    tether_fleet_pem_t pem = {NULL, 0};
    tether_status_t rc = tether_fleet_key_generate(pk);

    if (rc == TETHER_OK)
        rc = tether_fleet_key_pem(pk, &pem);
    if (rc == TETHER_OK)
        rc = tether_fleet_file_write(staging, name, pem.data, pem.len, 0600);
    tether_fleet_pem_free(&pem);
    return rc;
}

static tether_status_t write_pki(const char *staging, const tether_fleet_config_t *config)
{
    mbedtls_pk_context issuer, ca, server;
    tether_fleet_pem_t ca_pem = {NULL, 0}, server_pem = {NULL, 0};
    tether_status_t rc;

    mbedtls_pk_init(&issuer);
    mbedtls_pk_init(&ca);
    mbedtls_pk_init(&server);
    if ((rc = write_key(staging, TETHER_FLEET_ISSUER_KEY_FILE, &issuer)) != TETHER_OK ||
        (rc = write_key(staging, TETHER_FLEET_CA_KEY_FILE, &ca)) != TETHER_OK ||
        (rc = write_key(staging, TETHER_FLEET_TLS_KEY_FILE, &server)) != TETHER_OK ||
        (rc = tether_fleet_ca_create(&ca, &ca_pem)) != TETHER_OK ||
        (rc = tether_fleet_server_cert_create(&ca, &server, config->listen_host, &server_pem)) !=
            TETHER_OK)
        goto out;
    if ((rc = tether_fleet_file_write(staging, TETHER_FLEET_CA_FILE, ca_pem.data, ca_pem.len,
                                      0644)) != TETHER_OK)
        goto out;
    rc = tether_fleet_file_write(staging, TETHER_FLEET_TLS_CERT_FILE, server_pem.data,
                                 server_pem.len, 0644);
out:
    tether_fleet_pem_free(&ca_pem);
    tether_fleet_pem_free(&server_pem);
    mbedtls_pk_free(&issuer);
    mbedtls_pk_free(&ca);
    mbedtls_pk_free(&server);
    return rc;
}

static tether_status_t write_config(const char *staging, const tether_fleet_config_t *config)
{
    char *text = NULL;
    tether_status_t rc = tether_fleet_config_format(config, &text);
    /* A database password in the file keeps it from group and others. */
    mode_t mode = config->store[0] != '\0' && tether_store_url_has_password(config->store) ? 0600
                                                                                          : 0644;

    if (rc == TETHER_OK)
        rc = tether_fleet_file_write(staging, TETHER_CONFIG_FILE, text, strlen(text), mode);
    free(text);
    return rc;
}

static int count_token(void *arg, const tether_store_admin_token_t *token)
{
    (void)token;
    (*(size_t *)arg)++;
    return 1; /* one is enough */
}

/* Creates the database (SQLite in the staging directory, or the schema in
 * the PostgreSQL database store names) and the first admin token (only
 * its hash is kept). A PostgreSQL database that holds a fleet already is
 * left alone: TETHER_ERR_CONFLICT. */
static tether_status_t write_store(const char *staging, const char *store_url,
                                   char token[TETHER_SECRET_TOKEN_SIZE])
{
    char path[4096];
    uint8_t hash[TETHER_SECRET_HASH_SIZE];
    tether_store_t store;
    size_t tokens = 0;
    tether_status_t rc;

    tether_store_init(&store);
    if (store_url != NULL)
        rc = tether_store_open_postgresql(&store, store_url, 1);
    else if ((rc = tether_fleet_path(path, sizeof(path), staging, TETHER_FLEET_DB_FILE)) ==
             TETHER_OK)
        rc = tether_store_open_sqlite(&store, path);
    if (rc != TETHER_OK ||
        (rc = tether_store_admin_token_list(&store, count_token, &tokens)) != TETHER_OK)
        goto out;
    if (tokens > 0) {
        tether_error("init", "the PostgreSQL database already holds a fleet (it has admin "
                             "tokens): give --store an empty database");
        rc = TETHER_ERR_CONFLICT;
        goto out;
    }
    if ((rc = tether_secret_token_generate(TETHER_SECRET_ADMIN, token, TETHER_SECRET_TOKEN_SIZE)) !=
            TETHER_OK ||
        (rc = tether_secret_token_hash(token, strlen(token), hash)) != TETHER_OK)
        goto out;
    rc = tether_store_admin_token_create(&store, hash, TETHER_ROLE_ALL, INITIAL_TOKEN_NAME,
                                         (int64_t)time(NULL), NULL);
out:
    tether_store_free(&store);
    tether_wipe(hash, sizeof(hash));
    return rc;
}

/* A 32-byte secret key file (fleet.h: enroll.key, nonce.key): made here,
 * never shown; run makes the ones a fleet made by an older init lacks. */
static tether_status_t write_secret_key(const char *staging, const char *name)
{
    uint8_t key[32];
    tether_status_t rc = tether_fleet_key_file_load(staging, name, key, sizeof(key), true);

    _Static_assert(TETHER_ENROLL_KEY_SIZE == 32 && TETHER_NONCE_KEY_SIZE == 32,
                   "both secret keys are 32 bytes");
    tether_wipe(key, sizeof(key));
    return rc;
}

static tether_status_t populate(const char *staging, const tether_fleet_init_options_t *opts,
                                char token[TETHER_SECRET_TOKEN_SIZE])
{
    tether_fleet_config_t config;
    tether_status_t rc;

    tether_fleet_config_init(&config);
    if (opts->listen != NULL &&
        tether_fleet_config_set_listen(&config, opts->listen) != TETHER_OK) {
        tether_error("init", "--listen %s: expected IPv4:PORT or [IPv6]:PORT", opts->listen);
        return TETHER_ERR_INVALID_ARGUMENT;
    }
    if (opts->store != NULL) {
        /* The URL is not repeated: it may hold a password. */
        if (strlen(opts->store) >= sizeof(config.store) ||
            !tether_fleet_config_store_valid(opts->store)) {
            tether_error("init", "--store: expected a postgresql:// URL without spaces, at "
                                 "most %zu bytes",
                         sizeof(config.store) - 1);
            return TETHER_ERR_INVALID_ARGUMENT;
        }
        snprintf(config.store, sizeof(config.store), "%s", opts->store);
    }
    if ((rc = write_ek_cas(staging, opts, &config)) != TETHER_OK ||
        (rc = write_pki(staging, &config)) != TETHER_OK ||
        (rc = write_secret_key(staging, TETHER_FLEET_ENROLL_KEY_FILE)) != TETHER_OK ||
        (rc = write_secret_key(staging, TETHER_FLEET_NONCE_KEY_FILE)) != TETHER_OK ||
        (rc = write_config(staging, &config)) != TETHER_OK ||
        (rc = write_store(staging, opts->store, token)) != TETHER_OK)
        return rc;
    return tether_dir_sync(staging);
}

/* The directory that holds dir ("." for a bare name). */
static void parent_of(const char *dir, char *out, size_t out_size)
{
    const char *slash = strrchr(dir, '/');

    if (slash == NULL)
        snprintf(out, out_size, ".");
    else if (slash == dir)
        snprintf(out, out_size, "/");
    else
        snprintf(out, out_size, "%.*s", (int)(slash - dir), dir);
}

tether_status_t tether_fleet_init(const tether_fleet_init_options_t *opts,
                                  char token[TETHER_SECRET_TOKEN_SIZE])
{
    char dir[4096];
    char staging[4096 + 16];
    char parent[4096];
    size_t len;
    tether_status_t rc;

    if (opts == NULL || opts->dir == NULL || token == NULL ||
        (opts->ek_ca_files == NULL && opts->ek_ca_count > 0))
        return TETHER_ERR_INVALID_ARGUMENT;
    len = strlen(opts->dir);
    while (len > 1 && opts->dir[len - 1] == '/')
        len--;
    if (len == 0 || len >= sizeof(dir))
        return TETHER_ERR_INVALID_ARGUMENT;
    memcpy(dir, opts->dir, len);
    dir[len] = '\0';
    if ((rc = check_target(dir)) != TETHER_OK)
        return rc;
    snprintf(staging, sizeof(staging), "%s.init-XXXXXX", dir);
    if (mkdtemp(staging) == NULL) {
        tether_error("init", "cannot create a directory beside %s: %s", dir, strerror(errno));
        return TETHER_ERR_IO;
    }
    rc = populate(staging, opts, token);
    /* rename() replaces an empty directory and fails on a non-empty one, so
     * a fleet created meanwhile by someone else is not overwritten either. */
    if (rc == TETHER_OK && rename(staging, dir) != 0) {
        int err = errno;
        rc = err == ENOTEMPTY || err == EEXIST ? TETHER_ERR_CONFLICT : TETHER_ERR_IO;
        tether_error("init", "cannot move the new fleet to %s: %s", dir, strerror(err));
    }
    if (rc != TETHER_OK) {
        tether_fleet_dir_remove(staging);
        tether_wipe(token, TETHER_SECRET_TOKEN_SIZE);
        return rc;
    }
    parent_of(dir, parent, sizeof(parent));
    if (tether_dir_sync(parent) != TETHER_OK)
        tether_warn("init", "cannot sync %s; the new fleet may not survive a power cut", parent);
    return rc;
}
