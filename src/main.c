/* ferry — command line, process lifecycle and signals. The main thread loads the config,
 * binds the listening sockets, starts the workers and then only waits for signals. */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <getopt.h>
#include <nghttp2/nghttp2.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "admin.h"
#include "blockcache.h"
#include "deadline.h"
#include "dns.h"
#include "health.h"
#include "config.h"
#include "listener.h"
#include "metrics.h"
#include "log.h"
#include "notify.h"
#include "tls.h"
#include "updial.h"
#include "worker.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.0.0"
#endif

struct daemon_state {
    struct event_base *base;
    const char *config_path;
    struct runtime *rt;             /* current generation (main's reference) */
    struct worker *workers;
    uint32_t nworkers;
    uint32_t exited;            /* atomic: workers whose loop has ended */
    struct event *exited_ev;
    struct event *shutdown_timer;
    struct event **ticket_timers;   /* [listener]: session ticket key rotation */
    struct metrics_view view;       /* what the admin listener reads */
    struct admin *admin;
    int stopping;
    uint32_t swaps_pending;         /* atomic: workers yet to switch to the new generation */
    struct event *swapped_ev;
    int reloading;
    int reload_again;               /* SIGHUP during a reload: reload once more after it */
    struct notify_monitor *monitor;   /* sd_notify watchdog and STATUS=; NULL = none */
    struct health *health;            /* active health checks of the current generation */
    struct dns *dns;                  /* re-resolves the current configuration's names */
    int swap_is_reload;               /* the swap in progress: reload (1) or DNS change (0) */
    int rebuild_again;                /* DNS answers changed during a swap */
};

static struct daemon_state *the_daemon;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ferry [-c FILE] [-t] [-V] [-h]\n"
            "  -c, --config FILE  configuration file (default /etc/ferry/ferry.yaml)\n"
            "  -t, --test         check the configuration and exit (0 valid, 1 invalid)\n"
            "  -V, --version      print version and library versions\n"
            "  -h, --help         this text\n"
            "Signals: SIGTERM/SIGINT stop gracefully (in-flight requests finish, up to\n"
            "shutdown_timeout); a second one stops at once. SIGQUIT stops at once.\n"
            "SIGUSR1 reopens the log files. SIGHUP reloads the configuration.\n");
}

static void print_version(void)
{
    const nghttp2_info *ng = nghttp2_version(0);
    printf("ferry %s\n", FERRY_VERSION);
    printf("libevent %s\n", event_get_version());
    printf("nghttp2 %s\n", ng ? ng->version_str : "?");
    printf("%s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("libyaml %s\n", yaml_get_version_string());
}

/* libevent's own messages (evdns: "Nameserver ... has failed") belong in the error log; ferry
 * reports what matters about them itself, so below errors they are debug detail. */
static void libevent_log_cb(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_ERR)
        log_msg(LOG_ERROR_L, "libevent: %s", msg);
    else
        log_debug("libevent: %s", msg);
}

static void worker_exited(struct worker *w)
{
    /* Runs on the worker thread: hand over to the main loop (event_active is thread-safe). */
    __atomic_add_fetch(&the_daemon->exited, 1, __ATOMIC_ACQ_REL);
    event_active(the_daemon->exited_ev, 0, 0);
}

static void exited_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon_state *d = arg;
    if (__atomic_load_n(&d->exited, __ATOMIC_ACQUIRE) >= d->nworkers)
        event_base_loopexit(d->base, NULL);
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon_state *d = arg;
    log_warn("shutdown_timeout reached: closing the remaining connections");
    for (uint32_t i = 0; i < d->nworkers; i++)
        worker_request_stop(&d->workers[i]);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct daemon_state *d = arg;
    if (d->stopping) {
        log_warn("signal %d again: stopping now", (int)sig);
        for (uint32_t i = 0; i < d->nworkers; i++)
            worker_request_stop(&d->workers[i]);
        return;
    }
    d->stopping = 1;
    notify_monitor_stopping(d->monitor);
    notify_send("STOPPING=1\nSTATUS=stopping: %llu connections left",
                (unsigned long long)notify_monitor_connections(d->monitor));
    uint64_t ms = d->rt->cfg->shutdown_timeout_ms;
    log_info("signal %d: graceful stop (shutdown_timeout %llums)", (int)sig, (unsigned long long)ms);
    for (uint32_t i = 0; i < d->nworkers; i++)
        worker_request_drain(&d->workers[i]);
    struct timeval tv = ms_timeval(ms);
    evtimer_add(d->shutdown_timer, &tv);
}

/* --- operations signals (SIGQUIT, SIGUSR1, SIGHUP) ------------------------------------ */

static void quit_cb(evutil_socket_t sig, short what, void *arg)
{
    struct daemon_state *d = arg;
    log_info("signal %d (SIGQUIT): stopping at once, closing every connection", (int)sig);
    if (!d->stopping) {
        d->stopping = 1;
        notify_monitor_stopping(d->monitor);
        notify_send("STOPPING=1\nSTATUS=stopping at once (SIGQUIT)");
    }
    for (uint32_t i = 0; i < d->nworkers; i++)
        worker_request_stop(&d->workers[i]);
}

static void reopen_logs_cb(evutil_socket_t sig, short what, void *arg)
{
    log_info("signal %d (SIGUSR1): reopening log files", (int)sig);
    log_reopen_all();
}

static int *passed_fds;
static size_t npassed_fds;

static void release_passed_fds(void)
{
    listener_close_passed(passed_fds, npassed_fds);
    free(passed_fds);
    passed_fds = NULL;
    npassed_fds = 0;
}

/* One socket per worker for <a>: a passed socket (the same one, dup()ed, for every worker) or
 * SO_REUSEPORT sockets bound here. */
static int open_listen_fd(const struct cfg_listener *l, size_t a, uint32_t w, int *adopted,
                          char *err, size_t errlen)
{
    if (w == 0) {
        *adopted = listener_take_passed(passed_fds, npassed_fds, &l->addrs[a]);
        if (*adopted >= 0)
            log_info("listener %s: adopted the socket passed by the service manager for %s",
                     l->name, l->addrs[a].text);
    }
    if (*adopted < 0)
        return listener_bind(&l->addrs[a], err, errlen);
    if (w == 0)
        return *adopted;
    int fd = fcntl(*adopted, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        snprintf(err, errlen, "cannot dup the passed socket for %s: %s", l->addrs[a].text,
                 strerror(errno));
    return fd;
}

static void rotate_tickets_cb(evutil_socket_t fd, short what, void *arg)
{
    tls_server_rotate_tickets(arg);
    log_debug("TLS session ticket keys rotated");
}

/* Ticket keys rotate on the main thread; workers only read them during handshakes. */
static void stop_ticket_rotation(struct daemon_state *d, const struct ferry_config *cfg)
{
    for (size_t i = 0; d->ticket_timers && i < cfg->nlisteners; i++)
        if (d->ticket_timers[i])
            event_free(d->ticket_timers[i]);
    free(d->ticket_timers);
    d->ticket_timers = NULL;
}

static int start_ticket_rotation(struct daemon_state *d)
{
    const struct ferry_config *cfg = d->rt->cfg;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers; sizeof *p is right */
    d->ticket_timers = calloc(cfg->nlisteners, sizeof *d->ticket_timers);
    if (!d->ticket_timers)
        return -1;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_tls *t = cfg->listeners[i].tls;
        if (!t || !t->session_tickets)
            continue;
        d->ticket_timers[i] = event_new(d->base, -1, EV_PERSIST, rotate_tickets_cb, d->rt->tls[i]);
        if (!d->ticket_timers[i])
            return -1;
        struct timeval tv = ms_timeval(t->ticket_key_rotation_ms);
        event_add(d->ticket_timers[i], &tv);
    }
    return 0;
}

/* The listening socket of the running generation <old> for address <a> of a listener, if
 * it has one: a reload keeps the same sockets (nothing queued in them is lost). */
static int old_listen_fd(const struct runtime *old, const struct cfg_sockaddr *a, uint32_t w)
{
    if (!old)
        return -1;
    const struct ferry_config *oc = old->cfg;
    for (size_t i = 0; i < oc->nlisteners; i++)
        for (size_t k = 0; k < oc->listeners[i].naddrs; k++) {
            const struct cfg_sockaddr *o = &oc->listeners[i].addrs[k];
            if (o->len == a->len && memcmp(&o->ss, &a->ss, a->len) == 0)
                return old->listen_fds[i][k * oc->workers + w];
        }
    return -1;
}

/* Learned idle timeouts and PING backoffs outlive a reload for servers still configured. */
static void carry_server_state(struct runtime *rt, const struct runtime *old)
{
    for (size_t u = 0; old && u < rt->cfg->nupstreams; u++) {
        const struct cfg_upstream *nu = &rt->ups[u];
        const struct cfg_upstream *oc = config_find_upstream(old->cfg, nu->name);
        size_t ou = oc ? (size_t)(oc - old->cfg->upstreams) : 0;
        for (size_t s = 0; oc && s < nu->nservers; s++)
            for (size_t k = 0; k < old->ups[ou].nservers; k++)
                if (strcmp(old->ups[ou].servers[k].address, nu->servers[s].address) == 0)
                    rt->servers[u][s] = old->servers[ou][k];
        if (!nu->health)
            for (size_t s = 0; s < nu->nservers; s++) {
                /* No checks any more: nothing could bring a server that was down back. */
                rt->servers[u][s].down = 0;
                rt->servers[u][s].rise = rt->servers[u][s].fall = 0;
            }
    }
}

static void close_listen_fds(struct runtime *rt)
{
    const struct ferry_config *cfg = rt->cfg;
    for (size_t i = 0; rt->listen_fds && i < cfg->nlisteners; i++)
        for (size_t k = 0; rt->listen_fds[i] && k < cfg->listeners[i].naddrs * cfg->workers; k++)
            if (rt->listen_fds[i][k] >= 0)
                close(rt->listen_fds[i][k]);
}

/* rt->ups: each server name becomes one server per address of its current answer; an
 * address a group already has (two names, or a name and a numeric entry) counts once. */
static int expand_upstreams(struct runtime *rt, const struct dns *dns)
{
    const struct ferry_config *cfg = rt->cfg;
    if (!(rt->ups = calloc(cfg->nupstreams, sizeof *rt->ups)))
        return -1;
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        const struct cfg_upstream *cu = &cfg->upstreams[u];
        struct cfg_upstream *ru = &rt->ups[u];
        size_t cap = 0;
        const struct cfg_addr *a;
        for (size_t s = 0; s < cu->nservers; s++)
            cap += cu->servers[s].is_name ? dns_answer(dns, cfg, u, s, &a) : 1;
        *ru = *cu;
        ru->nservers = 0;
        if (!(ru->servers = calloc(cap ? cap : 1, sizeof *ru->servers)))
            return -1;
        for (size_t s = 0; s < cu->nservers; s++) {
            const struct cfg_server *cs = &cu->servers[s];
            const struct cfg_addr numeric = { .ss = cs->ss, .weight = 0 };
            size_t na = 1;
            a = &numeric;
            if (cs->is_name)
                na = dns_answer(dns, cfg, u, s, &a);
            for (size_t i = 0; i < na; i++) {
                int dup = 0;
                for (size_t k = 0; k < ru->nservers && !dup; k++)
                    dup = config_same_sockaddr(&ru->servers[k].ss, &a[i].ss);
                if (dup)
                    continue;
                struct cfg_server *e = &ru->servers[ru->nservers];
                char text[INET6_ADDRSTRLEN + 8];
                *e = *cs;
                e->addrs = NULL;
                e->naddrs = 0;
                e->name = cs->address;
                e->ss = a[i].ss;
                e->sslen = dns_sockaddr_len(&a[i].ss);
                if (a[i].weight)
                    e->weight = a[i].weight;   /* SRV */
                if (cs->is_srv)
                    e->port = dns_sockaddr_port(&a[i].ss);
                dns_format(&a[i].ss, text, sizeof text);
                if (!(e->address = strdup(cs->is_name ? text : cs->address)))
                    return -1;
                ru->nservers++;
            }
        }
    }
    return 0;
}

/* Builds what the workers need for <cfg>: access logs, TLS contexts, server states and the
 * listening sockets (kept from <old> where the address is the same, else adopted from the
 * service manager or bound). With <lender> (a runtime of the same cfg), its access logs and
 * TLS contexts are shared instead of made anew. -1 with the reason logged. */
static int build_runtime(struct runtime *rt, struct ferry_config *cfg, const struct runtime *old,
                         const struct dns *dns, struct runtime *lender)
{
    char err[512];
    rt->cfg = cfg;
    if (expand_upstreams(rt, dns) < 0)
        return -1;
    if (lender) {
        rt->lender = lender->lender ? lender->lender : lender;
        runtime_ref(rt->lender);
        rt->access_logs = rt->lender->access_logs;
        rt->tls = rt->lender->tls;
        rt->tls_up = rt->lender->tls_up;
    }
    /* NOLINTBEGIN(bugprone-sizeof-expression): arrays of pointers; sizeof *p is right */
    rt->servers = calloc(cfg->nupstreams, sizeof *rt->servers);
    rt->listen_fds = calloc(cfg->nlisteners, sizeof *rt->listen_fds);
    if (!lender) {
        rt->access_logs = calloc(cfg->nlisteners, sizeof *rt->access_logs);
        rt->tls = calloc(cfg->nlisteners, sizeof *rt->tls);
        rt->tls_up = calloc(cfg->nupstreams, sizeof *rt->tls_up);
    }
    /* NOLINTEND(bugprone-sizeof-expression) */
    if (!rt->servers || !rt->access_logs || !rt->listen_fds || !rt->tls || !rt->tls_up)
        return -1;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct cfg_upstream *u = &cfg->upstreams[i];
        rt->servers[i] = calloc(rt->ups[i].nservers ? rt->ups[i].nservers : 1,
                                sizeof **rt->servers);
        if (!rt->servers[i])
            return -1;
        if (u->tls && !lender) {
            rt->tls_up[i] = tls_client_new(u->tls, u->protocol, updial_tls_session, err, sizeof err);
            if (!rt->tls_up[i]) {
                log_error("upstream %s: %s", u->name, err);
                return -1;
            }
        }
    }
    carry_server_state(rt, old);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        rt->listen_fds[i] = malloc(l->naddrs * cfg->workers * sizeof(int));
        if (!rt->listen_fds[i])
            return -1;
        for (size_t k = 0; k < l->naddrs * cfg->workers; k++)
            rt->listen_fds[i][k] = -1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (l->access_log && !lender) {
            rt->access_logs[i] = access_log_open(l->access_log, err, sizeof err);
            if (!rt->access_logs[i]) {
                log_error("listener %s: %s", l->name, err);
                return -1;
            }
        }
        if (l->tls && !lender) {
            rt->tls[i] = tls_server_new(l->tls, err, sizeof err);
            if (!rt->tls[i]) {
                log_error("listener %s: %s", l->name, err);
                return -1;
            }
        }
        for (size_t a = 0; a < l->naddrs; a++) {
            int adopted = -1;
            for (uint32_t w = 0; w < cfg->workers; w++) {
                int ofd = old_listen_fd(old, &l->addrs[a], w);
                int fd = ofd >= 0 ? fcntl(ofd, F_DUPFD_CLOEXEC, 0)
                                  : open_listen_fd(l, a, w, &adopted, err, sizeof err);
                if (fd < 0) {
                    log_error("listener %s: %s", l->name,
                              ofd >= 0 ? strerror(errno) : err);
                    return -1;
                }
                rt->listen_fds[i][a * cfg->workers + w] = fd;
            }
        }
    }
    return 0;
}

static void free_runtime(struct runtime *rt)
{
    const struct ferry_config *cfg = rt->cfg;
    for (size_t i = 0; rt->servers && i < cfg->nupstreams; i++)
        free(rt->servers[i]);
    free(rt->servers);
    for (size_t i = 0; rt->ups && i < cfg->nupstreams; i++) {
        for (size_t s = 0; s < rt->ups[i].nservers; s++)
            free(rt->ups[i].servers[s].address);
        free(rt->ups[i].servers);
    }
    free(rt->ups);
    for (size_t i = 0; rt->listen_fds && i < cfg->nlisteners; i++)
        free(rt->listen_fds[i]);
    free(rt->listen_fds);
    if (rt->lender) {
        runtime_unref(rt->lender);   /* the access logs and TLS contexts are its own */
    } else {
        for (size_t i = 0; rt->access_logs && i < cfg->nlisteners; i++)
            access_log_close(rt->access_logs[i]);
        free(rt->access_logs);
        for (size_t i = 0; rt->tls && i < cfg->nlisteners; i++)
            tls_server_free(rt->tls[i]);
        free(rt->tls);
        for (size_t i = 0; rt->tls_up && i < cfg->nupstreams; i++)
            tls_client_free(rt->tls_up[i]);
        free(rt->tls_up);
    }
    config_unref(rt->cfg);
    free(rt);
}

static void reload(struct daemon_state *d);
static void switch_runtime(struct daemon_state *d, struct runtime *rt);
static void dns_changed(void *arg);

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    struct daemon_state *d = arg;
    if (d->stopping)
        return;
    if (d->reloading) {
        d->reload_again = 1;   /* a burst of SIGHUPs: one more reload once this one is done */
        return;
    }
    log_info("signal %d (SIGHUP): reloading %s", (int)sig, d->config_path);
    reload(d);
}

static void reload_failed(struct daemon_state *d, const char *why)
{
    d->view.reloads_failed++;
    d->view.last_reload_at = time(NULL);
    snprintf(d->view.last_reload_error, sizeof d->view.last_reload_error, "%s", why);
    log_error("reload failed: %s; still serving generation %llu", why,
              (unsigned long long)d->rt->generation);
    notify_send("READY=1\nSTATUS=reload failed (generation %llu still serving): %s",
                (unsigned long long)d->rt->generation, why);
}

/* Things a running process cannot change: the new file is applied without them. */
static void keep_process_settings(struct daemon_state *d, struct ferry_config *cfg)
{
    const struct ferry_config *cur = d->rt->cfg;
    if (cfg->workers != d->nworkers) {
        log_warn("reload: workers %u -> %u needs a restart; keeping %u", d->nworkers, cfg->workers,
                 d->nworkers);
        cfg->workers = d->nworkers;
    }
    if (strcmp(cfg->error_log, cur->error_log) != 0)
        log_warn("reload: error_log %s -> %s needs a restart", cur->error_log, cfg->error_log);
    if (!cfg->pid_file != !cur->pid_file || (cfg->pid_file && strcmp(cfg->pid_file, cur->pid_file) != 0))
        log_warn("reload: pid_file changes need a restart");
    if (!cfg->admin != !cur->admin ||
        (cfg->admin && (cfg->admin->addr.len != cur->admin->addr.len ||
                        memcmp(&cfg->admin->addr.ss, &cur->admin->addr.ss, cfg->admin->addr.len) != 0)))
        log_warn("reload: admin listener changes need a restart");
    if (cfg->log_level != cur->log_level)
        log_set_level(cfg->log_level);
}

static void reload(struct daemon_state *d)
{
    char err[1024];
    notify_reloading();
    struct ferry_config *cfg = config_load(d->config_path, err, sizeof err);
    if (!cfg) {
        reload_failed(d, err);
        return;
    }
    keep_process_settings(d, cfg);
    struct dns *dns = dns_start(d->base, cfg, dns_changed, d);
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt || build_runtime(rt, cfg, d->rt, dns, NULL) < 0) {
        if (rt) {
            close_listen_fds(rt);
            free_runtime(rt);
        } else
            config_unref(cfg);
        dns_stop(dns);
        release_passed_fds();
        reload_failed(d, "the new configuration could not be set up (see the errors above)");
        return;
    }
    release_passed_fds();
    dns_stop(d->dns);   /* the new configuration's names start from their fresh answers */
    d->dns = dns;
    d->rebuild_again = 0;
    d->swap_is_reload = 1;
    switch_runtime(d, rt);
    d->view.loaded_at = time(NULL);
}

/* Hands <rt> (built from the current runtime) to the workers; swapped_cb ends it. */
static void switch_runtime(struct daemon_state *d, struct runtime *rt)
{
    rt->refs = 1;
    rt->generation = d->rt->generation + 1;
    d->reloading = 1;
    __atomic_store_n(&d->swaps_pending, d->nworkers, __ATOMIC_RELEASE);
    struct runtime *old = d->rt;
    /* A DNS rebuild (same configuration) shares the TLS contexts: their ticket key
     * schedule goes on as it was. */
    if (rt->cfg != old->cfg) {
        stop_ticket_rotation(d, old->cfg);
        d->rt = rt;
        if (start_ticket_rotation(d) < 0)
            log_warn("reload: cannot schedule TLS ticket key rotation");
    }
    d->rt = rt;
    health_stop(d->health);   /* server states carry over: counts and verdicts go on */
    d->health = health_start(d->base, rt, d->workers, d->nworkers);
    for (uint32_t i = 0; i < d->nworkers; i++)
        worker_request_swap(&d->workers[i], rt);
    d->view.rt = rt;
    d->view.generation = rt->generation;
    runtime_unref(old);
}

/* DNS answers changed: the same configuration with the new server sets. Pools of addresses
 * still answered carry over with their connections; the others drain. */
static void rebuild(struct daemon_state *d)
{
    struct ferry_config *cfg = d->rt->cfg;
    config_ref(cfg);
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt || build_runtime(rt, cfg, d->rt, d->dns, d->rt) < 0) {
        if (rt) {
            close_listen_fds(rt);
            free_runtime(rt);
        } else
            config_unref(cfg);
        log_error("DNS change: cannot set up the new server sets; generation %llu keeps "
                  "serving", (unsigned long long)d->rt->generation);
        return;
    }
    d->swap_is_reload = 0;
    switch_runtime(d, rt);
}

static void dns_changed(void *arg)
{
    struct daemon_state *d = arg;
    if (d->stopping)
        return;
    if (d->reloading) {
        d->rebuild_again = 1;   /* after the swap in progress */
        return;
    }
    rebuild(d);
}

static void worker_swapped(struct worker *w)
{
    /* Worker thread: count, and let the main loop finish the reload. */
    if (__atomic_sub_fetch(&the_daemon->swaps_pending, 1, __ATOMIC_ACQ_REL) == 0)
        event_active(the_daemon->swapped_ev, 0, 0);
}

static void swapped_cb(evutil_socket_t fd, short what, void *arg)
{
    struct daemon_state *d = arg;
    d->reloading = 0;
    if (d->swap_is_reload) {
        d->view.reloads_ok++;
        d->view.last_reload_at = time(NULL);
        d->view.last_reload_error[0] = 0;
        log_info("reload: generation %llu serving (%zu listeners, %zu upstreams)",
                 (unsigned long long)d->rt->generation, d->rt->cfg->nlisteners,
                 d->rt->cfg->nupstreams);
        notify_send("READY=1\nSTATUS=serving generation %llu: %zu listeners with %u workers",
                    (unsigned long long)d->rt->generation, d->rt->cfg->nlisteners, d->nworkers);
    } else {
        d->view.dns_updates++;
        log_info("DNS change: generation %llu serving the new server sets",
                 (unsigned long long)d->rt->generation);
    }
    if (d->stopping)
        return;
    if (d->reload_again) {
        d->reload_again = 0;
        log_info("reloading again (SIGHUP during the reload)");
        reload(d);
    } else if (d->rebuild_again) {
        d->rebuild_again = 0;
        rebuild(d);
    }
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "%ld\n", (long)getpid());
    return fclose(f);
}

int main(int argc, char **argv)
{
    bc_install();   /* before libevent or OpenSSL allocate (config_load may resolve names, load keys) */
    const char *path = "/etc/ferry/ferry.yaml";
    int test_only = 0;
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' }, { "test", no_argument, NULL, 't' },
        { "version", no_argument, NULL, 'V' },      { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 't': test_only = 1; break;
        case 'V': print_version(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ferry: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 1;
    }

    /* Before anything else opens a descriptor: the passed ones are 3.. (socket activation). */
    if (!test_only)
        npassed_fds = listener_passed_fds(&passed_fds);
    char err[1024];
    struct ferry_config *cfg = config_load(path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "ferry: %s\n", err);
        if (test_only)
            fprintf(stderr, "ferry: configuration file %s test failed\n", path);
        return 1;
    }
    if (test_only) {
        printf("ferry: configuration file %s test is successful\n", path);
        config_unref(cfg);
        return 0;
    }
    if (log_open(cfg->error_log, cfg->log_level) < 0) {
        fprintf(stderr, "ferry: cannot open error_log %s: %s\n", cfg->error_log, strerror(errno));
        config_unref(cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    event_set_log_callback(libevent_log_cb);

    struct daemon_state d;
    memset(&d, 0, sizeof d);
    the_daemon = &d;
    d.config_path = path;
    runtime_free_fn = free_runtime;
    int status = 1;
    char *pid_file = NULL;
    d.base = event_base_new();
    d.rt = calloc(1, sizeof *d.rt);
    if (!d.base || !d.rt) {
        config_unref(cfg);
        goto out;
    }
    d.rt->refs = 1;
    d.rt->generation = 1;
    d.dns = dns_start(d.base, cfg, dns_changed, &d);
    if (build_runtime(d.rt, cfg, NULL, d.dns, NULL) < 0) {
        close_listen_fds(d.rt);
        goto out;
    }
    release_passed_fds();   /* the ones no listen address wanted */
    /* The pid file is the one of the start: a reload does not move it. */
    pid_file = cfg->pid_file ? strdup(cfg->pid_file) : NULL;
    if (cfg->pid_file && write_pid_file(cfg->pid_file) < 0) {
        log_error("cannot write pid_file %s: %s", cfg->pid_file, strerror(errno));
        goto out;
    }
    if (start_ticket_rotation(&d) < 0)
        goto out;
    d.exited_ev = event_new(d.base, -1, 0, exited_cb, &d);
    d.swapped_ev = event_new(d.base, -1, 0, swapped_cb, &d);
    d.shutdown_timer = evtimer_new(d.base, shutdown_timeout_cb, &d);
    struct event *sigs[5] = {
        evsignal_new(d.base, SIGTERM, signal_cb, &d),
        evsignal_new(d.base, SIGINT, signal_cb, &d),
        evsignal_new(d.base, SIGQUIT, quit_cb, &d),
        evsignal_new(d.base, SIGUSR1, reopen_logs_cb, &d),
        evsignal_new(d.base, SIGHUP, hup_cb, &d),
    };
    for (int i = 0; i < 5; i++)
        if (sigs[i])
            event_add(sigs[i], NULL);

    d.workers = calloc(cfg->workers, sizeof *d.workers);
    if (!d.workers)
        goto out_sig;
    for (uint32_t i = 0; i < cfg->workers; i++) {
        if (worker_init(&d.workers[i], (int)i, d.rt) < 0) {
            log_error("cannot set up worker %u", i);
            d.nworkers = i + 1;
            goto out_workers;
        }
        d.workers[i].exited = worker_exited;
        d.workers[i].swapped = worker_swapped;
        d.nworkers = i + 1;
    }
    d.view = (struct metrics_view){ .rt = d.rt, .workers = d.workers, .nworkers = d.nworkers,
                                    .started = time(NULL), .generation = 1,
                                    .loaded_at = time(NULL) };
    if (cfg->admin) {
        char aerr[512];
        d.admin = admin_start(d.base, cfg->admin, &d.view, aerr, sizeof aerr);
        if (!d.admin) {
            log_error("admin: %s", aerr);
            goto out_workers;
        }
        log_info("admin listener on %s (/metrics, /status, /healthz)", cfg->admin->addr.text);
    }
    /* The monitor's heartbeat timers go on the workers' bases, which have no lock: they are
     * added here, before the worker threads start (see worker.h). */
    d.monitor = notify_monitor_start(d.base, d.workers, d.nworkers);
    for (uint32_t i = 0; i < d.nworkers; i++)
        if (worker_start(&d.workers[i]) < 0) {
            log_error("cannot start worker thread %u", i);
            goto out_workers;
        }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        for (size_t a = 0; a < cfg->listeners[i].naddrs; a++)
            log_info("listener %s on %s", cfg->listeners[i].name, cfg->listeners[i].addrs[a].text);
    log_info("ferry %s started: %u workers, config %s", FERRY_VERSION, cfg->workers, path);
    d.health = health_start(d.base, d.rt, d.workers, d.nworkers);
    if (notify_send("READY=1\nSTATUS=serving %zu listeners with %u workers", cfg->nlisteners,
                    cfg->workers) < 0)
        log_warn("sd_notify to NOTIFY_SOCKET failed: %s", strerror(errno));
    event_base_dispatch(d.base);
    status = 0;
    log_info("ferry stopped");

out_workers:
    health_stop(d.health);
    d.health = NULL;
    admin_stop(d.admin);   /* it reads the workers' pools: gone before they are */
    d.admin = NULL;
    if (status != 0)
        for (uint32_t i = 0; i < d.nworkers; i++)
            if (d.workers[i].thread)
                worker_request_stop(&d.workers[i]);
    for (uint32_t i = 0; i < d.nworkers; i++)
        worker_join(&d.workers[i]);
    /* Its timers live on the workers' bases: freed once no worker thread runs them (the
     * bases have no lock), before the bases go. */
    notify_monitor_free(d.monitor);
    for (uint32_t i = 0; i < d.nworkers; i++)
        worker_join_and_free(&d.workers[i]);
    free(d.workers);
out_sig:
    for (int i = 0; i < 5; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (d.exited_ev)
        event_free(d.exited_ev);
    if (d.swapped_ev)
        event_free(d.swapped_ev);
    if (d.shutdown_timer)
        event_free(d.shutdown_timer);
out:
    dns_stop(d.dns);
    if (d.rt && d.rt->cfg)
        stop_ticket_rotation(&d, d.rt->cfg);
    if (pid_file && status == 0)
        unlink(pid_file);
    free(pid_file);
    release_passed_fds();
    if (d.rt)
        runtime_unref(d.rt);   /* the last reference: workers are gone */
    if (d.base)
        event_base_free(d.base);
    bc_thread_flush();
    return status;
}
