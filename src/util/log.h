/*
 * log.h - leveled logging to stderr, one line per event.
 *
 * Messages follow PostgreSQL's style ("could not commit batch of %d
 * transfers: ..."). Never log a token, a password or a connection string.
 */
#ifndef LEDGER_UTIL_LOG_H
#define LEDGER_UTIL_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level g_log_level;

/* Parses "error|warn|info|debug"; returns -1 for anything else. */
int log_level_parse(const char *s);
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (g_log_level >= LOG_DEBUG)                                                              \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)

#endif
