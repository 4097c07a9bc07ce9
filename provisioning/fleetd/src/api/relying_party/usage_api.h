/*
 * Usage as relying parties (AI gateways) saw it:
 *
 *   POST /v1/usage/reports   relying-party   a batched report (usage_report.h),
 *                                            counted once per report_id
 *   GET  /v1/usage           read            ?device=ID&since=T: totals per
 *                                            device, or per token of ID
 *
 * Who may call each, the body's media type and size and the query's names
 * are in the route table (router.c). Bodies and answers:
 * provisioning/fleetd/README.md, "Usage".
 */
#ifndef TETHER_FLEET_USAGE_API_H
#define TETHER_FLEET_USAGE_API_H

#include "route.h"

/* Both use call->router->store. */
void tether_usage_api_report(tether_route_call_t *call);
void tether_usage_api_list(tether_route_call_t *call);

#endif
