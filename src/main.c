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
    struct runtime rt;
    struct worker *workers;
    uint32_t nworkers;
    uint32_t exited;            /* atomic: workers whose loop has ended */
    struct event *exited_ev;
    struct event *shutdown_timer;
    struct event **ticket_timers;   /* [listener]: session ticket key rotation */
    struct metrics_view view;       /* what the admin listener reads */
    struct admin *admin;
    int stopping;
    struct notify_monitor *monitor;   /* sd_notify watchdog and STATUS=; NULL = none */
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
            "SIGUSR1 reopens the log files. SIGHUP (reload) is not supported yet.\n");
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
    uint64_t ms = d->rt.cfg->shutdown_timeout_ms;
    log_info("signal %d: graceful stop (shutdown_timeout %llums)", (int)sig, (unsigned long long)ms);
    for (uint32_t i = 0; i < d->nworkers; i++)
        worker_request_drain(&d->workers[i]);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
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

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
    log_warn("signal %d (SIGHUP): reload is not supported by this version; restart to apply "
             "configuration changes", (int)sig);
}

/* Sockets passed by the service manager (socket activation), adopted by build_runtime. */
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
static int start_ticket_rotation(struct daemon_state *d)
{
    const struct ferry_config *cfg = d->rt.cfg;
    d->ticket_timers = calloc(cfg->nlisteners, sizeof *d->ticket_timers);
    if (!d->ticket_timers)
        return -1;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_tls *t = cfg->listeners[i].tls;
        if (!t || !t->session_tickets)
            continue;
        d->ticket_timers[i] = event_new(d->base, -1, EV_PERSIST, rotate_tickets_cb, d->rt.tls[i]);
        if (!d->ticket_timers[i])
            return -1;
        struct timeval tv = { (time_t)(t->ticket_key_rotation_ms / 1000),
                              (suseconds_t)(t->ticket_key_rotation_ms % 1000) * 1000 };
        event_add(d->ticket_timers[i], &tv);
    }
    return 0;
}

static int build_runtime(struct runtime *rt, struct ferry_config *cfg)
{
    char err[512];
    rt->cfg = cfg;
    rt->servers = calloc(cfg->nupstreams, sizeof *rt->servers);
    rt->access_logs = calloc(cfg->nlisteners, sizeof *rt->access_logs);
    rt->listen_fds = calloc(cfg->nlisteners, sizeof *rt->listen_fds);
    rt->tls = calloc(cfg->nlisteners, sizeof *rt->tls);
    rt->tls_up = calloc(cfg->nupstreams, sizeof *rt->tls_up);
    if (!rt->servers || !rt->access_logs || !rt->listen_fds || !rt->tls || !rt->tls_up)
        return -1;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const struct cfg_upstream *u = &cfg->upstreams[i];
        rt->servers[i] = calloc(u->nservers, sizeof **rt->servers);
        if (!rt->servers[i])
            return -1;
        if (u->tls) {
            rt->tls_up[i] = tls_client_new(u->tls, u->protocol, updial_tls_session, err, sizeof err);
            if (!rt->tls_up[i]) {
                log_error("upstream %s: %s", u->name, err);
                return -1;
            }
        }
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const struct cfg_listener *l = &cfg->listeners[i];
        if (l->access_log) {
            rt->access_logs[i] = access_log_open(l->access_log, err, sizeof err);
            if (!rt->access_logs[i]) {
                log_error("listener %s: %s", l->name, err);
                return -1;
            }
        }
        if (l->tls) {
            rt->tls[i] = tls_server_new(l->tls, err, sizeof err);
            if (!rt->tls[i]) {
                log_error("listener %s: %s", l->name, err);
                return -1;
            }
        }
        rt->listen_fds[i] = malloc(l->naddrs * cfg->workers * sizeof(int));
        if (!rt->listen_fds[i])
            return -1;
        for (size_t a = 0; a < l->naddrs; a++) {
            int adopted = -1;
            for (uint32_t w = 0; w < cfg->workers; w++) {
                int fd = open_listen_fd(l, a, w, &adopted, err, sizeof err);
                if (fd < 0) {
                    log_error("listener %s: %s", l->name, err);
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
    for (size_t i = 0; rt->access_logs && i < cfg->nlisteners; i++)
        access_log_close(rt->access_logs[i]);
    free(rt->access_logs);
    for (size_t i = 0; rt->listen_fds && i < cfg->nlisteners; i++)
        free(rt->listen_fds[i]);
    free(rt->listen_fds);
    for (size_t i = 0; rt->tls && i < cfg->nlisteners; i++)
        tls_server_free(rt->tls[i]);
    free(rt->tls);
    for (size_t i = 0; rt->tls_up && i < cfg->nupstreams; i++)
        tls_client_free(rt->tls_up[i]);
    free(rt->tls_up);
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

    struct daemon_state d;
    memset(&d, 0, sizeof d);
    the_daemon = &d;
    int status = 1;
    d.base = event_base_new();
    if (!d.base || build_runtime(&d.rt, cfg) < 0)
        goto out;
    release_passed_fds();   /* the ones no listen address wanted */
    if (cfg->pid_file && write_pid_file(cfg->pid_file) < 0) {
        log_error("cannot write pid_file %s: %s", cfg->pid_file, strerror(errno));
        goto out;
    }
    if (start_ticket_rotation(&d) < 0)
        goto out;
    d.exited_ev = event_new(d.base, -1, 0, exited_cb, &d);
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
        if (worker_init(&d.workers[i], (int)i, &d.rt) < 0) {
            log_error("cannot set up worker %u", i);
            d.nworkers = i + 1;
            goto out_workers;
        }
        d.workers[i].exited = worker_exited;
        d.nworkers = i + 1;
    }
    d.view = (struct metrics_view){ .rt = &d.rt, .workers = d.workers, .nworkers = d.nworkers,
                                    .started = time(NULL), .generation = 1 };
    if (cfg->admin) {
        char aerr[512];
        d.admin = admin_start(d.base, cfg->admin, &d.view, aerr, sizeof aerr);
        if (!d.admin) {
            log_error("admin: %s", aerr);
            goto out_workers;
        }
        log_info("admin listener on %s (/metrics, /status, /healthz)", cfg->admin->addr.text);
    }
    for (uint32_t i = 0; i < d.nworkers; i++)
        if (worker_start(&d.workers[i]) < 0) {
            log_error("cannot start worker thread %u", i);
            goto out_workers;
        }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        for (size_t a = 0; a < cfg->listeners[i].naddrs; a++)
            log_info("listener %s on %s", cfg->listeners[i].name, cfg->listeners[i].addrs[a].text);
    log_info("ferry %s started: %u workers, config %s", FERRY_VERSION, cfg->workers, path);
    d.monitor = notify_monitor_start(d.base, d.workers, d.nworkers);
    if (notify_send("READY=1\nSTATUS=serving %zu listeners with %u workers", cfg->nlisteners,
                    cfg->workers) < 0)
        log_warn("sd_notify to NOTIFY_SOCKET failed: %s", strerror(errno));
    event_base_dispatch(d.base);
    status = 0;
    log_info("ferry stopped");

out_workers:
    admin_stop(d.admin);   /* it reads the workers' pools: gone before they are */
    d.admin = NULL;
    notify_monitor_free(d.monitor);   /* its timers live on the workers' bases */
    if (status != 0)
        for (uint32_t i = 0; i < d.nworkers; i++)
            if (d.workers[i].thread)
                worker_request_stop(&d.workers[i]);
    for (uint32_t i = 0; i < d.nworkers; i++)
        worker_join_and_free(&d.workers[i]);
    free(d.workers);
out_sig:
    for (int i = 0; i < 5; i++)
        if (sigs[i])
            event_free(sigs[i]);
    if (d.exited_ev)
        event_free(d.exited_ev);
    if (d.shutdown_timer)
        event_free(d.shutdown_timer);
out:
    for (size_t i = 0; d.ticket_timers && i < cfg->nlisteners; i++)
        if (d.ticket_timers[i])
            event_free(d.ticket_timers[i]);
    free(d.ticket_timers);
    if (cfg->pid_file && status == 0)
        unlink(cfg->pid_file);
    release_passed_fds();
    free_runtime(&d.rt);
    if (d.base)
        event_base_free(d.base);
    config_unref(cfg);
    return status;
}
