/* admin — the admin listener on the main thread: / (the status page), /metrics (Prometheus
 * text), /status (JSON), /healthz. Read-only: nothing served here changes state. libevent's
 * evhttp is enough for this low-rate, loopback-by-default endpoint; the proxy's own traffic
 * never touches it. */
#ifndef FERRY_ADMIN_H
#define FERRY_ADMIN_H

#include <stddef.h>

struct event_base;
struct cfg_admin;
struct metrics_view;
struct admin;

/* Binds cfg->addr and serves from <base>. <view> must outlive the admin. NULL with a
 * message in <err> when the address cannot be bound. */
struct admin *admin_start(struct event_base *base, const struct cfg_admin *cfg,
                          const struct metrics_view *view, char *err, size_t errlen);
void admin_stop(struct admin *a);

/* The status page, src/admin_page.html, made into src/admin_page.c by the Makefile:
 * <admin_page_len> bytes, then a NUL. */
extern const unsigned char admin_page[];   /* UTF-8 */
extern const size_t admin_page_len;

#endif
