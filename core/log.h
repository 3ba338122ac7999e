/* log: structured key=value lines on stderr, one write(2) per line so lines
 * from worker threads never interleave.
 *
 *   log_info("listening", "transport=grpc addr=%s", addr);
 *   -> ts=2026-11-23T10:00:00.123Z level=info msg="listening" transport=grpc addr=...
 *
 * The format string holds the key=value pairs; values with spaces must be
 * quoted by the caller (log_quote helps). Secrets never go through here. */
#ifndef GW_LOG_H
#define GW_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level lvl);
/* Parses "debug|info|warn|error"; returns -1 if unknown. */
int log_level_parse(const char *s, log_level *out);
int log_enabled(log_level lvl);
void log_write(log_level lvl, const char *msg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, msg, __VA_ARGS__); } while (0)
#define log_info(msg, ...) log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

/* Writes `s` as a double-quoted logfmt value into out (always NUL-terminated,
 * truncated to fit); returns out for use as a %s argument. */
const char *log_quote(char *out, unsigned outlen, const char *s);

#endif
