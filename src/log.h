/* log — the error log (levelled, one write(2) per line so threads never interleave) and
 * access logs (one fd per path, shared by all workers, O_APPEND). */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>
#include <stdint.h>
#include "config.h"

/* Opens <path> ("stderr" or NULL = standard error) as the error log. Returns 0 or -1 with
 * errno set; on failure the previous log stays in use. */
int log_open(const char *path, enum log_level level);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) do { if (log_enabled(LOG_DEBUG_L)) log_msg(LOG_DEBUG_L, __VA_ARGS__); } while (0)
#define log_info(...)  log_msg(LOG_INFO_L, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN_L, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR_L, __VA_ARGS__)

/* An access log destination. Opened once per path per generation; written by any thread. */
struct access_log;
struct access_log *access_log_open(const char *path, char *err, size_t errlen);
void access_log_write(struct access_log *al, const char *line, size_t len);
void access_log_close(struct access_log *al);

/* SIGUSR1: reopens the error log (when it is a file) and every open access log file by path,
 * each dup2()ed over its old descriptor so that writers in any thread switch atomically.
 * Files that cannot be reopened keep their old descriptor and are logged. 0, or -1 if any
 * failed. Main thread. */
int log_reopen_all(void);

/* Milliseconds on the monotonic clock. In a thread that marks its loop turns, the clock as
 * first read in the current turn (read again after many calls in one turn). */
uint64_t now_ms(void);

/* The clock read now; in a thread that marks its turns, the turn's reading moves to it. */
uint64_t now_ms_fresh(void);

/* The calling thread's loop is about to wait: the next now_ms() reads the clock again, and
 * the ones after it in the same turn return that reading. */
void now_ms_new_turn(void);

/* The calling thread stops marking turns: every now_ms() reads the clock. */
void now_ms_no_turns(void);

#endif
