/*
 * The body of POST /v1/enroll/activate (fleetd, from any network peer) on
 * arbitrary bytes. Accepted bodies must give a well-formed enrolment id;
 * refusals must come with a message and leave nothing behind.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enroll_request.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_enroll_activate_request_t req;
    char message[TETHER_ENROLL_MESSAGE_SIZE] = "";
    tether_status_t rc;

    rc = tether_enroll_parse_activate((const char *)data, size, &req, message, sizeof(message));
    if (rc == TETHER_OK) {
        if (!tether_fleet_enrollment_id_valid(req.enrollment_id, strlen(req.enrollment_id)))
            abort();
    } else if (rc != TETHER_ERR_PARSE || message[0] == '\0' || req.enrollment_id[0] != '\0') {
        abort();
    }
    return 0;
}
