/* Integer members of untrusted JSON, shared by the request and usage readers. */
#ifndef TETHER_GATE_JSON_INTEGER_H
#define TETHER_GATE_JSON_INTEGER_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Whether item is a JSON number holding an integer from min to max (max at
 * most 2^53, where doubles stop being exact); *value gets it, or 0. */
static inline bool tether_gate_json_integer(const cJSON *item, uint64_t min, uint64_t max,
                                            uint64_t *value)
{
    double v = cJSON_IsNumber(item) ? item->valuedouble : -1.0;
    bool ok = v >= (double)min && v <= (double)max && floor(v) == v;

    *value = ok ? (uint64_t)v : 0;
    return ok;
}

#endif
