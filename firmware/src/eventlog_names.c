/* Names of event types and digest algorithms (eventlog.h), as the TCG
 * specifications and tpm2_eventlog spell them. */
#include "tether/eventlog.h"

#include <stddef.h>

static const struct {
    uint32_t type;
    const char *name;
} type_names[] = {
    {TETHER_EV_PREBOOT_CERT, "EV_PREBOOT_CERT"},
    {TETHER_EV_POST_CODE, "EV_POST_CODE"},
    {TETHER_EV_UNUSED, "EV_UNUSED"},
    {TETHER_EV_NO_ACTION, "EV_NO_ACTION"},
    {TETHER_EV_SEPARATOR, "EV_SEPARATOR"},
    {TETHER_EV_ACTION, "EV_ACTION"},
    {TETHER_EV_EVENT_TAG, "EV_EVENT_TAG"},
    {TETHER_EV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS"},
    {TETHER_EV_S_CRTM_VERSION, "EV_S_CRTM_VERSION"},
    {TETHER_EV_CPU_MICROCODE, "EV_CPU_MICROCODE"},
    {TETHER_EV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS"},
    {TETHER_EV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES"},
    {TETHER_EV_COMPACT_HASH, "EV_COMPACT_HASH"},
    {TETHER_EV_IPL, "EV_IPL"},
    {TETHER_EV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA"},
    {TETHER_EV_NONHOST_CODE, "EV_NONHOST_CODE"},
    {TETHER_EV_NONHOST_CONFIG, "EV_NONHOST_CONFIG"},
    {TETHER_EV_NONHOST_INFO, "EV_NONHOST_INFO"},
    {TETHER_EV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    {TETHER_EV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    {TETHER_EV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT"},
    {TETHER_EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    {TETHER_EV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER"},
    {TETHER_EV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    {TETHER_EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT"},
    {TETHER_EV_EFI_ACTION, "EV_EFI_ACTION"},
    {TETHER_EV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    {TETHER_EV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES"},
    {TETHER_EV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    {TETHER_EV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2"},
    {TETHER_EV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2"},
    {TETHER_EV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT"},
    {TETHER_EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY"},
    {TETHER_EV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    {TETHER_EV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
};

static const struct {
    uint16_t algorithm;
    const char *name;
} algorithm_names[] = {
    {TETHER_TPM_ALG_SHA1, "sha1"},         {TETHER_TPM_ALG_SHA256, "sha256"},
    {TETHER_TPM_ALG_SHA384, "sha384"},     {TETHER_TPM_ALG_SHA512, "sha512"},
    {TETHER_TPM_ALG_SM3_256, "sm3_256"},   {TETHER_TPM_ALG_SHA3_256, "sha3_256"},
    {TETHER_TPM_ALG_SHA3_384, "sha3_384"}, {TETHER_TPM_ALG_SHA3_512, "sha3_512"},
};

const char *tether_eventlog_type_name(uint32_t type)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return NULL;
}

const char *tether_eventlog_algorithm_name(uint16_t algorithm)
{
    for (size_t i = 0; i < sizeof(algorithm_names) / sizeof(algorithm_names[0]); i++)
        if (algorithm_names[i].algorithm == algorithm)
            return algorithm_names[i].name;
    return NULL;
}
