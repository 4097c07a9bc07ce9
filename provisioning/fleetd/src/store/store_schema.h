/*
 * The SQL schema, as ordered migrations: tether_store_migrations[v] brings a
 * database from version v to v + 1. Never edit a released migration; append.
 */
#ifndef TETHER_FLEET_STORE_SCHEMA_H
#define TETHER_FLEET_STORE_SCHEMA_H

#include <stddef.h>

extern const char *const tether_store_migrations[];
extern const size_t tether_store_migration_count;

#endif
