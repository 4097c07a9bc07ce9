#include "tether/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static const char *log_program = "tether";
static tether_log_format_t log_format = TETHER_LOG_TEXT;
static tether_log_level_t log_min_level = TETHER_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tether_log_setup(const char *program, tether_log_format_t format, tether_log_level_t min_level)
{
    if (program != NULL)
        log_program = program;
    log_format = format;
    log_min_level = min_level;
}

/* Escapes a message for a JSON string (RFC 8259 section 7) into out. */
static void json_escape(const char *in, char *out, size_t out_size)
{
    size_t o = 0;

    for (; *in != '\0' && o + 7 < out_size; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, out_size - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

void tether_log(tether_log_level_t level, const char *component, const char *fmt, ...)
{
    char message[1024];
    va_list ap;

    if (level < log_min_level || level > TETHER_LOG_ERROR)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    if (log_format == TETHER_LOG_JSON) {
        char escaped[sizeof(message) * 6 + 1];
        char ts[32];
        struct timespec now;
        struct tm tm;

        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        json_escape(message, escaped, sizeof(escaped));
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n",
                ts, now.tv_nsec / 1000000L, level_names[level], component ? component : "-", escaped);
    } else {
        fprintf(stderr, "%s: %s: %s\n", log_program, level_names[level], message);
    }
}
