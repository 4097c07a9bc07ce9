#include "enroll_request.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tether/base64url.h"
#include "tether/bytes.h"
#include "tether/json_strict.h"
#include "validate.h"

static tether_status_t parse_members(const cJSON *json, tether_enroll_activate_request_t *req,
                                     char *message, size_t size)
{
    const cJSON *id = NULL;
    const cJSON *proof = NULL;
    size_t len = 0;

    /* tether_json_parse_object already refused repeated members. */
    for (const cJSON *item = json->child; item != NULL; item = item->next) {
        if (item->string != NULL && strcmp(item->string, "enrollment_id") == 0)
            id = item;
        else if (item->string != NULL && strcmp(item->string, "proof") == 0)
            proof = item;
        else
            return tether_explain(TETHER_ERR_PARSE, message, size, "unknown field \"%.40s\"",
                                  item->string != NULL ? item->string : "");
    }
    if (!cJSON_IsString(id) || id->valuestring == NULL)
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "field \"enrollment_id\" is required and must be a string");
    if (!cJSON_IsString(proof) || proof->valuestring == NULL)
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "field \"proof\" is required and must be a string");
    if (!tether_fleet_enrollment_id_valid(id->valuestring, strlen(id->valuestring)))
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "enrollment_id must be the \"enr_...\" id the enrolment answer gave");
    if (tether_base64url_decode(proof->valuestring, strlen(proof->valuestring), req->proof,
                                sizeof(req->proof), &len) != TETHER_OK ||
        len != sizeof(req->proof))
        return tether_explain(TETHER_ERR_PARSE, message, size,
                              "proof must be the base64url (unpadded) of %d bytes",
                              TETHER_ENROLL_PROOF_SIZE);
    memcpy(req->enrollment_id, id->valuestring, TETHER_STORE_ENROLLMENT_ID_SIZE);
    return TETHER_OK;
}

tether_status_t tether_enroll_parse_activate(const char *body, size_t len,
                                             tether_enroll_activate_request_t *req, char *message,
                                             size_t message_size)
{
    cJSON *json = NULL;
    tether_status_t rc;

    if (req == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    memset(req, 0, sizeof(*req));
    if (body == NULL || len == 0)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "the body must be a JSON object");
    if (len > TETHER_ENROLL_ACTIVATE_MAX_JSON)
        return tether_explain(TETHER_ERR_PARSE, message, message_size,
                              "the body is larger than %d bytes", TETHER_ENROLL_ACTIVATE_MAX_JSON);
    if (tether_json_parse_object(body, len, &json) != TETHER_OK)
        return tether_explain(
            TETHER_ERR_PARSE, message, message_size,
            "the body must be exactly one JSON object in UTF-8, without NUL characters "
            "or repeated fields");
    rc = parse_members(json, req, message, message_size);
    cJSON_Delete(json);
    if (rc != TETHER_OK)
        tether_wipe(req, sizeof(*req));
    return rc;
}
