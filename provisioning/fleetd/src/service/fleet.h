/*
 * A fleet directory and the two things fleetd does with it: create it
 * (init) and serve it (run).
 *
 *   DIR/               0700
 *     fleetd.conf      the configuration (config.h)
 *     fleet.db         the SQLite store (WAL), unless fleetd.conf names a
 *                      PostgreSQL store
 *     issuer-key.pem   ES256 key that signs access tokens (0600)
 *     ca.pem           TLS CA that devices and tetherctl pin
 *     ca-key.pem       its key (0600)
 *     enroll.key       32 random bytes: the activation secrets of enrolments
 *                      are HMACs under it (0600; made at init, or at the
 *                      first run of a fleet made before enrolment existed)
 *     nonce.key        32 random bytes: the MAC key of exchange nonces
 *                      (0600; made like enroll.key)
 *     issuer-keys/     issuer keys made by rotations, KID.pem (0700, files
 *                      0600); the store's issuer_keys table says which signs
 *     tls-cert.pem     HTTPS server certificate for the listen address
 *     tls-key.pem      its key (0600)
 *     ek-ca/           TPM manufacturer CAs copied at init
 *     (webhooks)       the secret (0600) and CA files that fleetd.conf's
 *                      webhook lines name, made by the operator (webhook.h)
 */
#ifndef TETHER_FLEET_FLEET_H
#define TETHER_FLEET_FLEET_H

#include <stddef.h>

#include "admin_api.h"
#include "config.h"
#include "discovery_api.h"
#include "enroll_api.h"
#include "exchange_api.h"
#include "fleet_metrics.h"
#include "tether/http_server.h"
#include "issuer_keys.h"
#include "pki.h"
#include "relying_party_api.h"
#include "route.h"
#include "store.h"
#include "tether/crypto.h"
#include "tether/error.h"
#include "tether/secret_token.h"
#include "usage_check.h"
#include "webhook.h"

#define TETHER_FLEET_DB_FILE "fleet.db"
#define TETHER_FLEET_ISSUER_KEY_FILE "issuer-key.pem"
#define TETHER_FLEET_CA_FILE "ca.pem"
#define TETHER_FLEET_CA_KEY_FILE "ca-key.pem"
#define TETHER_FLEET_TLS_CERT_FILE "tls-cert.pem"
#define TETHER_FLEET_TLS_KEY_FILE "tls-key.pem"
#define TETHER_FLEET_EK_CA_DIR "ek-ca"
#define TETHER_FLEET_ENROLL_KEY_FILE "enroll.key"
#define TETHER_FLEET_NONCE_KEY_FILE "nonce.key"

typedef struct tether_fleet_init_options {
    const char *dir;                /* must not exist, or be an empty directory */
    const char *listen;             /* NULL: 127.0.0.1:8443 */
    const char *const *ek_ca_files; /* certificates to copy into DIR/ek-ca/ */
    size_t ek_ca_count;
    const char *store; /* NULL: SQLite in DIR/fleet.db; else a PostgreSQL URL */
} tether_fleet_init_options_t;

/* Creates a fleet in a sibling staging directory and renames it into place,
 * so a failure leaves nothing behind and an existing fleet is never touched
 * (TETHER_ERR_CONFLICT). token gets the first admin token (roles read,
 * fleet, security); the caller prints and wipes it. */
TETHER_MUST_CHECK tether_status_t tether_fleet_init(const tether_fleet_init_options_t *opts,
                                                    char token[TETHER_SECRET_TOKEN_SIZE]);

/* The offline recovery (tether-fleetd admin-token): mints an admin token
 * with roles (a non-empty set of known roles) and name (validated by the
 * caller) straight into DIR's store, with an audit alert in the same
 * transaction (tether_store_admin_token_recover) and a log line; it works
 * beside a running fleetd (WAL, busy timeout). DIR must be a directory and
 * DIR/fleet.db a regular file, both owned by the user running this, DIR
 * closed to group and others and the database not writable by them:
 * TETHER_ERR_STATE otherwise, TETHER_ERR_NOT_FOUND without a database (none
 * is created), each with a log line saying what to do. A fleet without
 * DIR/fleet.db whose fleetd.conf names a PostgreSQL store gets the token
 * there (DIR's checks the same). token gets the
 * token (the caller prints and wipes it; wiped on error), *id its id. */
TETHER_MUST_CHECK tether_status_t tether_fleet_admin_token_mint(
    const char *dir, unsigned roles, const char *name, char token[TETHER_SECRET_TOKEN_SIZE],
    int64_t *id);

/* Reads DIR/fleetd.conf over the defaults already in config
 * (tether_fleet_config_init first); problems are logged under component. */
TETHER_MUST_CHECK tether_status_t tether_fleet_config_load(const char *component, const char *dir,
                                                           tether_fleet_config_t *config);

/* A running fleetd: init / open / free. */
typedef struct tether_fleet_service {
    tether_fleet_config_t config;
    tether_store_t store;
    tether_admin_api_t api;
    tether_cert_set_t ek_cas; /* every certificate of every ek_ca file: trust anchors */
    tether_enroll_api_t enroll;
    tether_token_policy_t token_policy; /* from config */
    tether_issuer_keys_t issuer_keys;
    tether_exchange_api_t exchange;   /* /v1/challenge, /v1/token */
    tether_discovery_api_t discovery; /* /.well-known/ */
    tether_rp_api_t relying_party; /* introspection and the revocation feed */
    tether_fleet_metrics_t metrics; /* GET /metrics; the server and handlers count into it */
    tether_router_t router;        /* the route table over the APIs above */
    tether_http_server_t server;
    tether_fleet_pem_t tls_cert;
    tether_fleet_pem_t tls_key;
    tether_usage_check_t usage_check; /* the periodic usage_unreported check */
    tether_webhook_sender_t webhooks; /* alerts to the configured webhooks */
} tether_fleet_service_t;

void tether_fleet_service_init(tether_fleet_service_t *service);

/* Reads DIR's configuration and keys, opens the store (applying
 * migrations) and starts serving. service must not move until freed. */
TETHER_MUST_CHECK tether_status_t tether_fleet_service_open(tether_fleet_service_t *service,
                                                            const char *dir);

/* tether-fleetd check: reads DIR's configuration and every file it names
 * as open does (the TLS certificate and key, the EK CAs, the webhooks'
 * secrets and CAs) without opening the store or serving; each problem is
 * logged. Free the service after. */
TETHER_MUST_CHECK tether_status_t tether_fleet_service_check(tether_fleet_service_t *service,
                                                             const char *dir);

/* Stops serving and closes everything; accepts NULL. */
void tether_fleet_service_free(tether_fleet_service_t *service);

#endif
