/* notify — the service manager's side channel (sd_notify(3)): READY=1, STOPPING=1,
 * RELOADING=1, STATUS= lines and the watchdog keep-alive. Through libsystemd's sd_notify when
 * built with it (HAVE_LIBSYSTEMD), else by the datagram protocol directly (NOTIFY_SOCKET: a
 * path, or an abstract socket written "@name"). Without NOTIFY_SOCKET everything here is a
 * no-op. Main thread only. */
#ifndef FERRY_NOTIFY_H
#define FERRY_NOTIFY_H

#include <stdint.h>

struct event_base;
struct worker;

/* Sends one message, e.g. notify_send("READY=1\nSTATUS=serving %u listeners", n): newline-
 * separated VAR=value assignments. Returns 1 if sent, 0 when no NOTIFY_SOCKET is set, -1 on
 * error (nothing is logged: the caller decides). */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now>, as Type=notify-reload expects. */
int notify_reloading(void);

/* The watchdog interval asked for by the service manager (WATCHDOG_USEC, honoured only when
 * WATCHDOG_PID is unset or is this process), or 0 when the watchdog is off. */
uint64_t notify_watchdog_usec(void);

/* The monitor keeps the service manager informed while ferry runs: when the watchdog is on,
 * WATCHDOG=1 every WATCHDOG_USEC/2, sent only if every worker's event loop proved alive since
 * the previous one (each worker bumps a heartbeat counter from a timer on its own base); and
 * while stopping, "STATUS=stopping: N connections left" once a second. Started after the
 * workers are initialised (their bases exist); NULL when there is nothing to do (no
 * NOTIFY_SOCKET) or on allocation failure. */
struct notify_monitor;
struct notify_monitor *notify_monitor_start(struct event_base *main_base, struct worker *workers,
                                            uint32_t nworkers);
/* Downstream connections open in all workers, as of the last heartbeats (at most ~1 s old). */
uint64_t notify_monitor_connections(const struct notify_monitor *m);
/* A stop began: from now on the watchdog is kept fed by the main loop alone (workers that
 * finished their work end their loops) and STATUS= reports the connections left. */
void notify_monitor_stopping(struct notify_monitor *m);
/* Removes the timers; must run before the workers' bases are freed. NULL is fine. */
void notify_monitor_free(struct notify_monitor *m);

#endif
