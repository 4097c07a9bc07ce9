/*
 * Text in event data (firmware's ASCII and UTF-16 strings, UEFI variable
 * names) decoded to UTF-8, for eventlog.c only.
 */
#ifndef TETHER_FIRMWARE_EVENTLOG_TEXT_H
#define TETHER_FIRMWARE_EVENTLOG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes that hold the decoded text of every event of a log of log_size
 * bytes: each event yields at most one text, from its own data, of at most
 * 1.5 bytes of UTF-8 per byte of UTF-16 (ASCII: 1 per byte) plus a NUL;
 * an event's header is more than 2 bytes, so 2 bytes a log byte suffice. */
size_t tether_eventlog_text_capacity(size_t log_size);

/* Converts units UTF-16LE code units at in to NUL-terminated UTF-8 in out
 * (out_size bytes); *out_len gets its length without the NUL. false for a
 * NUL or control character, an unpaired surrogate, a character outside
 * printable ASCII when ascii_only, or an out too small. */
bool tether_eventlog_utf16_to_utf8(const uint8_t *in, size_t units, bool ascii_only, char *out,
                                   size_t out_size, size_t *out_len);

/* Decodes data as text when it is text: printable ASCII, or UTF-16LE of
 * printable ASCII (firmware's strings), each with optional trailing NULs.
 * The same contract as tether_eventlog_utf16_to_utf8; false when data is not
 * such text. */
bool tether_eventlog_text_decode(const uint8_t *data, size_t size, char *out, size_t out_size,
                                 size_t *out_len);

#endif
