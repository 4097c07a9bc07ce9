/*
 * Logging to stderr, as text for people or as one JSON object per line for
 * daemons. Nothing secret may be passed to these functions.
 */
#ifndef TETHER_LOG_H
#define TETHER_LOG_H

typedef enum tether_log_level {
    TETHER_LOG_DEBUG = 0,
    TETHER_LOG_INFO,
    TETHER_LOG_WARN,
    TETHER_LOG_ERROR,
} tether_log_level_t;

typedef enum tether_log_format {
    TETHER_LOG_TEXT = 0, /* "tether-agent: error: message" */
    TETHER_LOG_JSON,     /* {"ts":"...","level":"error","component":"...","msg":"..."} */
} tether_log_format_t;

/* Process-wide settings; call before starting threads. The program name must
 * outlive every later log call (a string literal or argv[0]). */
void tether_log_setup(const char *program, tether_log_format_t format, tether_log_level_t min_level);

#if defined(__GNUC__)
#define TETHER_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TETHER_PRINTF(f, a)
#endif

/* component names the part that logs ("hal", "store", ...). */
void tether_log(tether_log_level_t level, const char *component, const char *fmt, ...)
    TETHER_PRINTF(3, 4);

#define tether_debug(c, ...) tether_log(TETHER_LOG_DEBUG, (c), __VA_ARGS__)
#define tether_info(c, ...) tether_log(TETHER_LOG_INFO, (c), __VA_ARGS__)
#define tether_warn(c, ...) tether_log(TETHER_LOG_WARN, (c), __VA_ARGS__)
#define tether_error(c, ...) tether_log(TETHER_LOG_ERROR, (c), __VA_ARGS__)

#endif
