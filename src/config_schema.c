/* config_schema — the tables of keys (one per mapping kind) and the parsers of structured
 * values: listeners, listen addresses, routes, upstreams, servers. Checks that involve
 * several keys (max_request_line <= max_header_size, unique names and addresses, routes to
 * defined upstreams) run after the walk of the enclosing mapping.
 *
 * Bounds are documented in man/ferry.yaml.5: change both together.
 */
#include "config_schema.h"

#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "tls.h"

/* "workers: auto": one worker per online CPU, within 1..1024. */
uint32_t config_cpu_count(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > 1024 ? 1024 : (uint32_t)cpus;
}

static int parse_workers(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct ferry_config *cfg = base;
    const char *expect = "auto or an integer in 1..1024";
    const char *s = config_scalar(c, v, "workers", expect);
    uint64_t n;
    if (!s)
        return -1;
    if (strcmp(s, "auto") == 0) {
        cfg->workers = config_cpu_count();
        return 0;
    }
    if (config_parse_uint(s, &n) < 0)
        return config_fail(c, v, "invalid workers '%s'; expected %s", s, expect);
    if (n < 1 || n > 1024)
        return config_fail(c, v, "workers %llu is out of range; expected %s",
                           (unsigned long long)n, expect);
    cfg->workers = (uint32_t)n;
    return 0;
}


/* One listen address; rejects one used earlier in this or any previous listener, or by the
 * admin listener when the file names it first (parse_admin_listen checks the other order). */
static int parse_listen_one(struct config_ctx *c, yaml_node_t *n, struct cfg_listener *l, size_t j)
{
    const char *expect = "host:port with a numeric host, like 0.0.0.0:8080, [::]:8080 or *:8080";
    const char *s = config_scalar(c, n, "listen", expect);
    struct cfg_sockaddr *a = &l->addrs[j];
    if (!s)
        return -1;
    if (config_parse_sockaddr(s, &a->ss, &a->len) < 0)
        return config_fail(c, n, "invalid listen address '%s'; expected %s", s, expect);
    for (size_t k = 0; k < j; k++)
        if (config_same_sockaddr(&l->addrs[k].ss, &a->ss))
            return config_fail(c, n, "listen address '%s' is listed twice in this listener; "
                               "expected each address once", s);
    for (size_t i = 0; i < c->cur_listener; i++) {
        const struct cfg_listener *o = &c->cfg->listeners[i];
        for (size_t k = 0; k < o->naddrs; k++)
            if (config_same_sockaddr(&o->addrs[k].ss, &a->ss))
                return config_fail(c, n, "listen address '%s' is already used by listener '%s'; "
                                   "expected each address in one listener only", s, o->name);
    }
    const struct cfg_admin *adm = c->cfg->admin;
    if (adm && adm->addr.len && config_same_sockaddr(&adm->addr.ss, &a->ss))
        return config_fail(c, n, "listen address '%s' is already used by the admin listener; "
                           "expected an address of its own", s);
    if (!(a->text = strdup(s)))
        return config_oom(c, n);
    return 0;
}

static int parse_listen(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_listener *l = base;
    int seq = v->type == YAML_SEQUENCE_NODE;
    size_t n = seq ? config_seq_len(v) : 1;
    if (seq && n == 0)
        return config_fail(c, v, "'listen' is empty; expected at least one address like "
                           "0.0.0.0:8080");
    if (v->type == YAML_MAPPING_NODE)
        return config_fail(c, v, "'listen' is a mapping; expected an address string or a sequence "
                           "of them");
    if (!(l->addrs = calloc(n, sizeof *l->addrs)))
        return config_oom(c, v);
    l->naddrs = n;
    for (size_t j = 0; j < n; j++)
        if (parse_listen_one(c, seq ? config_seq_item(c, v, j) : v, l, j) < 0)
            return -1;
    return 0;
}

static const char *check_path(const char *s)
{
    return s[0] == '/' ? NULL : "a path prefix starting with /";
}

static const char *check_hash_key(const char *s)
{
    if (!strcmp(s, "client_ip") || (!strncmp(s, "header:", 7) && s[7])
        || (!strncmp(s, "cookie:", 7) && s[7]))
        return NULL;
    return "header:NAME, cookie:NAME or client_ip";
}

#define AT(st, m) .off = offsetof(struct st, m), .width = sizeof(((struct st *)0)->m)
#define DUR(k, st, m, d, lo) \
    { .key = (k), .type = T_DURATION, AT(st, m), .def = (d), .min = (lo), .max = MAX_DURATION }
#define UINT(k, st, m, d, lo, hi) \
    { .key = (k), .type = T_UINT, AT(st, m), .def = (d), .min = (lo), .max = (hi) }
#define RESERVED(k) { .key = (k), .type = T_UNSUPPORTED }
#define SCHEMA(what, fields) { what, fields, sizeof(fields) / sizeof((fields)[0]) }

static const struct field route_fields[] = {
    { .key = "host", .type = T_STRING, AT(cfg_route, host) },
    { .key = "path", .type = T_STRING, AT(cfg_route, path), .check = check_path },
    { .key = "upstream", .type = T_STRING, AT(cfg_route, upstream_name), .flags = F_REQUIRED,
      .expect = "the name of an upstream" },
    { .key = "timeout", .type = T_DURATION, AT(cfg_route, timeout_ms), .max = MAX_DURATION,
      .has_off = offsetof(struct cfg_route, has_timeout) },
};
static const struct schema route_schema = SCHEMA("route", route_fields);

static int parse_routes(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_listener *l = base;
    const char *expect = "a non-empty sequence of routes (mappings with upstream, host, path)";
    if (config_need(c, v, YAML_SEQUENCE_NODE, "routes", expect) < 0)
        return -1;
    if (config_seq_len(v) == 0)
        return config_fail(c, v, "'routes' is empty; expected %s", expect);
    if (!(l->routes = calloc(config_seq_len(v), sizeof *l->routes)))
        return config_oom(c, v);
    l->nroutes = config_seq_len(v);
    for (size_t i = 0; i < l->nroutes; i++)
        if (config_walk(c, config_seq_item(c, v, i), &route_schema, "route", &l->routes[i]) < 0)
            return -1;
    return 0;
}

/* ---- listener tls ---------------------------------------------------------------------- */

static const struct field cert_fields[] = {
    { .key = "cert", .type = T_STRING, AT(cfg_tls_cert, cert), .flags = F_REQUIRED,
      .expect = "the path of a PEM certificate chain" },
    { .key = "key", .type = T_STRING, AT(cfg_tls_cert, key), .flags = F_REQUIRED,
      .expect = "the path of the certificate's PEM private key" },
};
static const struct schema cert_schema = SCHEMA("certificate", cert_fields);

/* Every pair is loaded and checked now (then let go), so `ferry -t` reports a missing file
 * or a key that does not fit its certificate at the cert: line. */
static int parse_certificates(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_tls *t = base;
    const char *expect = "a non-empty sequence of certificates (mappings with cert and key)";
    char why[512];
    if (config_need(c, v, YAML_SEQUENCE_NODE, "certificates", expect) < 0)
        return -1;
    if (config_seq_len(v) == 0)
        return config_fail(c, v, "'certificates' is empty; expected %s", expect);
    if (!(t->certs = calloc(config_seq_len(v), sizeof *t->certs)))
        return config_oom(c, v);
    t->ncerts = config_seq_len(v);
    for (size_t i = 0; i < t->ncerts; i++) {
        yaml_node_t *m = config_seq_item(c, v, i);
        if (config_walk(c, m, &cert_schema, "certificate", &t->certs[i]) < 0)
            return -1;
        if (tls_check_cert_key(t->certs[i].cert, t->certs[i].key, why, sizeof why) < 0)
            return config_fail(c, config_map_get(c, m, "cert"), "%s; expected a readable PEM "
                               "certificate chain and its matching private key", why);
    }
    return 0;
}

static const char *const alpn_names[] = { "h2", "http/1.1", NULL };

static int set_alpn(struct config_ctx *c, yaml_node_t *n, struct cfg_tls *t, size_t i,
                    const char *name)
{
    if (!(t->alpn[i] = strdup(name)))
        return config_oom(c, n);
    return 0;
}

static int parse_alpn(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_tls *t = base;
    const char *expect = "a non-empty sequence of h2 | http/1.1 in the server's order of "
                         "preference, each at most once";
    if (config_need(c, v, YAML_SEQUENCE_NODE, "alpn", expect) < 0)
        return -1;
    if (config_seq_len(v) == 0)
        return config_fail(c, v, "'alpn' is empty; expected %s", expect);
    if (!(t->alpn = calloc(config_seq_len(v), sizeof *t->alpn)))
        return config_oom(c, v);
    t->nalpn = config_seq_len(v);
    for (size_t i = 0; i < t->nalpn; i++) {
        yaml_node_t *n = config_seq_item(c, v, i);
        const char *s = config_scalar(c, n, "alpn", expect);
        size_t k;
        if (!s)
            return -1;
        for (k = 0; alpn_names[k] && strcmp(alpn_names[k], s) != 0; k++)
            ;
        if (!alpn_names[k])
            return config_fail(c, n, "invalid alpn protocol '%s'; expected h2 or http/1.1", s);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t->alpn[j], s))
                return config_fail(c, n, "alpn protocol '%s' is listed twice; expected each "
                                   "protocol at most once", s);
        if (set_alpn(c, n, t, i, s) < 0)
            return -1;
    }
    return 0;
}

/* ciphers (TLS 1.2, OpenSSL syntax) or ciphersuites (TLS 1.3), checked by OpenSSL itself. */
static int parse_cipher_list(struct config_ctx *c, yaml_node_t *v, char **slot, int tls13)
{
    const char *key = tls13 ? "ciphersuites" : "ciphers";
    const char *expect = tls13
        ? "TLS 1.3 ciphersuites separated by ':', like TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
        : "an OpenSSL cipher list, like ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
    const char *s = config_scalar(c, v, key, expect);
    char why[256];
    if (!s)
        return -1;
    if (tls_check_ciphers(s, tls13, why, sizeof why) < 0)
        return config_fail(c, v, "invalid %s '%s': %s; expected %s", key, s, why, expect);
    free(*slot);
    if (!(*slot = strdup(s)))
        return config_oom(c, v);
    return 0;
}

static int parse_ciphers(struct config_ctx *c, yaml_node_t *v, void *base)
{
    return parse_cipher_list(c, v, &((struct cfg_tls *)base)->ciphers, 0);
}

static int parse_ciphersuites(struct config_ctx *c, yaml_node_t *v, void *base)
{
    return parse_cipher_list(c, v, &((struct cfg_tls *)base)->ciphersuites, 1);
}

static const char *const tls_version_names[] = { "TLSv1.2", "TLSv1.3", NULL };

static const struct field tls_fields[] = {
    { .key = "certificates", .type = T_CUSTOM, .parse = parse_certificates, .flags = F_REQUIRED,
      .expect = "a non-empty sequence of certificates (mappings with cert and key)" },
    { .key = "min_version", .type = T_ENUM, AT(cfg_tls, min_version), .def = TLS_V1_2,
      .names = tls_version_names },
    { .key = "alpn", .type = T_CUSTOM, .parse = parse_alpn,
      .expect = "a sequence of h2 | http/1.1" },
    { .key = "ciphers", .type = T_CUSTOM, .parse = parse_ciphers,
      .expect = "an OpenSSL cipher list" },
    { .key = "ciphersuites", .type = T_CUSTOM, .parse = parse_ciphersuites,
      .expect = "TLS 1.3 ciphersuites" },
    { .key = "session_tickets", .type = T_BOOL, AT(cfg_tls, session_tickets), .def = 1 },
    UINT("session_cache_size", cfg_tls, session_cache_size, 20480, 0, 10000000),
    /* 7d: the longest ticket lifetime TLS 1.3 allows (RFC 8446, 4.6.1) */
    { .key = "session_timeout", .type = T_DURATION, AT(cfg_tls, session_timeout_ms),
      .def = MS_H, .min = MS_S, .max = 7 * MS_D },
    DUR("ticket_key_rotation", cfg_tls, ticket_key_rotation_ms, 12 * MS_H, MS_M),
    DUR("handshake_timeout", cfg_tls, handshake_timeout_ms, 10 * MS_S, 1),
};
static const struct schema tls_schema = SCHEMA("listener tls", tls_fields);

static int parse_tls(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_listener *l = base;
    struct cfg_tls *t;
    if (!(t = l->tls = calloc(1, sizeof *l->tls)))
        return config_oom(c, v);
    if (config_walk(c, v, &tls_schema, "listener tls", t) < 0)
        return -1;
    if (t->nalpn == 0) {                            /* absent: h2, then http/1.1 */
        if (!(t->alpn = calloc(2, sizeof *t->alpn)))
            return config_oom(c, v);
        t->nalpn = 2;
        if (set_alpn(c, v, t, 0, "h2") < 0 || set_alpn(c, v, t, 1, "http/1.1") < 0)
            return -1;
    }
    return 0;
}

static const char *const log_format_names[] = { "combined", "json", NULL };

static const struct field listener_fields[] = {
    { .key = "name", .type = T_STRING, AT(cfg_listener, name), .flags = F_REQUIRED,
      .expect = "a unique name" },
    { .key = "listen", .type = T_CUSTOM, .parse = parse_listen, .flags = F_REQUIRED,
      .expect = "an address like 0.0.0.0:8080 or a sequence of them" },
    { .key = "http2", .type = T_BOOL, AT(cfg_listener, http2), .def = 1 },
    UINT("keepalive_requests", cfg_listener, keepalive_requests, 1000, 0, 1000000000),
    DUR("keepalive_time", cfg_listener, keepalive_time_ms, MS_H, 0),
    DUR("keepalive_timeout", cfg_listener, keepalive_timeout_ms, 75 * MS_S, 0),
    DUR("keepalive_header_timeout", cfg_listener, keepalive_header_timeout_ms, 0, 0),
    DUR("client_header_timeout", cfg_listener, client_header_timeout_ms, 60 * MS_S, 1),
    DUR("client_body_timeout", cfg_listener, client_body_timeout_ms, 60 * MS_S, 1),
    DUR("send_timeout", cfg_listener, send_timeout_ms, 60 * MS_S, 1),
    UINT("max_connections", cfg_listener, max_connections, 10000, 1, 1000000),
    { .key = "client_max_body_size", .type = T_SIZE, AT(cfg_listener, client_max_body_size),
      .def = MIB, .max = NO_MAX },
    { .key = "max_header_size", .type = T_SIZE, AT(cfg_listener, max_header_size),
      .def = 8 * KIB, .min = KIB, .max = MIB },
    { .key = "max_request_line", .type = T_SIZE, AT(cfg_listener, max_request_line),
      .def = 4 * KIB, .min = 256, .max = MIB },
    UINT("max_headers", cfg_listener, max_headers, 100, 1, 128),
    { .key = "access_log", .type = T_STRING, AT(cfg_listener, access_log), .flags = F_OFF_NULL },
    { .key = "access_log_format", .type = T_ENUM, AT(cfg_listener, access_log_format),
      .names = log_format_names },
    { .key = "routes", .type = T_CUSTOM, .parse = parse_routes, .flags = F_REQUIRED,
      .expect = "a non-empty sequence of routes" },
    { .key = "tls", .type = T_CUSTOM, .parse = parse_tls,
      .expect = "a mapping with certificates" },
    UINT("h2_max_concurrent_streams", cfg_listener, h2_max_concurrent_streams, 128, 1, 10000),
    { .key = "h2_initial_window_size", .type = T_SIZE, AT(cfg_listener, h2_initial_window_size),
      .def = 65535, .min = 1, .max = 2147483647 },
    { .key = "h2_max_frame_size", .type = T_SIZE, AT(cfg_listener, h2_max_frame_size),
      .def = 16384, .min = 16384, .max = 16777215 },
    { .key = "h2_max_header_list_size", .type = T_SIZE, AT(cfg_listener, h2_max_header_list_size),
      .def = 32 * KIB, .min = KIB, .max = 16 * MIB },
};
static const struct schema listener_schema = SCHEMA("listener", listener_fields);

static int parse_listeners(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct ferry_config *cfg = base;
    const char *expect = "a non-empty sequence of listeners";
    if (config_need(c, v, YAML_SEQUENCE_NODE, "listeners", expect) < 0)
        return -1;
    if (config_seq_len(v) == 0)
        return config_fail(c, v, "'listeners' is empty; expected %s", expect);
    if (!(cfg->listeners = calloc(config_seq_len(v), sizeof *cfg->listeners)))
        return config_oom(c, v);
    cfg->nlisteners = config_seq_len(v);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        struct cfg_listener *l = &cfg->listeners[i];
        yaml_node_t *m = config_seq_item(c, v, i), *n;
        c->cur_listener = i;
        if (config_walk(c, m, &listener_schema, "listener", l) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->listeners[j].name, l->name) == 0)
                return config_fail(c, config_map_get(c, m, "name"),
                                   "duplicate listener name '%s'; expected a unique name", l->name);
        if (l->max_request_line > l->max_header_size) {
            char b1[32], b2[32];
            if (!(n = config_map_get(c, m, "max_request_line")))
                l->max_request_line = l->max_header_size;   /* the default follows a small head */
            else
                return config_fail(c, n, "max_request_line %s is larger than max_header_size %s; "
                                   "expected 256..%s",
                                   config_fmt_size(l->max_request_line, b1, sizeof b1),
                                   config_fmt_size(l->max_header_size, b2, sizeof b2), b2);
        }
    }
    return 0;
}

/* address and srv are two ways to name a server: one of them. */
static int fail_address_and_srv(struct config_ctx *c, yaml_node_t *v)
{
    return config_fail(c, v, "a server needs either address or srv (not both); expected "
                       "address: host:port or srv: _service._tcp.name");
}

static int parse_address(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_server *sv = base;
    const char *expect = "host:port, like 127.0.0.1:9000, [::1]:9000 or backend.internal:9000";
    const char *s = config_scalar(c, v, "address", expect);
    char host[256];
    int bracketed;
    if (!s)
        return -1;
    if (sv->address)
        return fail_address_and_srv(c, v);
    if (config_split_hostport(s, host, sizeof host, &sv->port, &bracketed) < 0
        || !strcmp(host, "*"))
        return config_fail(c, v, "invalid server address '%s'; expected %s", s, expect);
    if (!(sv->address = strdup(s)) || !(sv->host = strdup(host)))
        return config_oom(c, v);
    if (config_parse_sockaddr(s, &sv->ss, &sv->sslen) == 0)
        return 0;
    if (bracketed)
        return config_fail(c, v, "invalid server address '%s'; expected %s", s, expect);
    /* A name: resolved once the whole upstream is read (its dns: may name resolvers). */
    sv->is_name = 1;
    return 0;
}

/* Every name of <u>'s servers, resolved now: a name nothing answers for is an error at its
 * line. The answer is the one the first runtime uses; dns.c refreshes it from then on. */
static int resolve_server_names(struct config_ctx *c, yaml_node_t *m, struct cfg_upstream *u)
{
    yaml_node_t *seq = config_map_get(c, m, "servers");
    for (size_t i = 0; i < u->nservers; i++) {
        struct cfg_server *sv = &u->servers[i];
        char why[256];
        if (!sv->is_name)
            continue;
        int rc = sv->is_srv
                     ? dns_resolve_srv_sync(sv->host, u->dns, &sv->addrs, &sv->naddrs, why, sizeof why)
                     : dns_resolve_sync(sv->host, sv->port, u->dns, &sv->addrs, &sv->naddrs, why,
                                        sizeof why);
        if (rc < 0) {
            yaml_node_t *at = seq ? config_map_get(c, config_seq_item(c, seq, i),
                                                   sv->is_srv ? "srv" : "address") : m;
            return config_fail(c, at ? at : m, "cannot resolve '%s': %s; expected a resolvable "
                               "host name or a numeric address", sv->host, why);
        }
        sv->ss = sv->addrs[0].ss;
        sv->sslen = dns_sockaddr_len(&sv->addrs[0].ss);
    }
    return 0;
}

/* srv: a DNS name whose SRV records give the servers (targets, ports, weights). */
static int parse_srv(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_server *sv = base;
    const char *expect = "an SRV name, like _api._tcp.service.consul";
    const char *s = config_scalar(c, v, "srv", expect);
    if (!s)
        return -1;
    if (sv->address)
        return fail_address_and_srv(c, v);
    size_t n = strlen(s);
    int ok = n > 0 && n <= 253 && s[0] != '.' && !strstr(s, "..");
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.';
    if (!ok)
        return config_fail(c, v, "invalid srv name '%s'; expected %s", s, expect);
    if (!(sv->address = strdup(s)) || !(sv->host = strdup(s)))
        return config_oom(c, v);
    sv->is_name = sv->is_srv = 1;
    return 0;
}

static const struct field server_fields[] = {
    { .key = "address", .type = T_CUSTOM, .parse = parse_address, .expect = "host:port" },
    { .key = "srv", .type = T_CUSTOM, .parse = parse_srv, .expect = "an SRV name" },
    UINT("weight", cfg_server, weight, 1, 1, 1000),
};
static const struct schema server_schema = SCHEMA("server", server_fields);

static int parse_servers(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_upstream *u = base;
    const char *expect = "a non-empty sequence of servers (mappings with address)";
    if (config_need(c, v, YAML_SEQUENCE_NODE, "servers", expect) < 0)
        return -1;
    if (config_seq_len(v) == 0)
        return config_fail(c, v, "'servers' is empty; expected %s", expect);
    if (!(u->servers = calloc(config_seq_len(v), sizeof *u->servers)))
        return config_oom(c, v);
    u->nservers = config_seq_len(v);
    for (size_t i = 0; i < u->nservers; i++) {
        yaml_node_t *m = config_seq_item(c, v, i);
        if (config_walk(c, m, &server_schema, "server", &u->servers[i]) < 0)
            return -1;
        if (!config_map_get(c, m, "address") == !config_map_get(c, m, "srv"))
            return fail_address_and_srv(c, m);
        for (size_t j = 0; j < i; j++)
            if (strcmp(u->servers[j].address, u->servers[i].address) == 0)
                return config_fail(c, config_map_get(c, m, "address"),
                                   "server '%s' is listed twice in upstream '%s'; expected each "
                                   "address once (use weight)", u->servers[i].address, u->name);
    }
    return 0;
}

/* ---- upstream tls ---------------------------------------------------------------------- */

static const struct field upstream_tls_fields[] = {
    { .key = "server_name", .type = T_STRING, AT(cfg_upstream_tls, server_name) },
    { .key = "ca_file", .type = T_STRING, AT(cfg_upstream_tls, ca_file) },
    { .key = "verify", .type = T_BOOL, AT(cfg_upstream_tls, verify), .def = 1 },
    { .key = "cert", .type = T_STRING, AT(cfg_upstream_tls, cert) },
    { .key = "key", .type = T_STRING, AT(cfg_upstream_tls, key) },
    DUR("handshake_timeout", cfg_upstream_tls, handshake_timeout_ms, 10 * MS_S, 1),
    { .key = "session_reuse", .type = T_BOOL, AT(cfg_upstream_tls, session_reuse), .def = 1 },
};
static const struct schema upstream_tls_schema = SCHEMA("upstream tls", upstream_tls_fields);

/* The files are read now (and let go) so that `ferry -t` reports them at their line. */
static int parse_upstream_tls(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_upstream *u = base;
    struct cfg_upstream_tls *t;
    char why[512];
    if (!(t = u->tls = calloc(1, sizeof *u->tls)))
        return config_oom(c, v);
    if (config_walk(c, v, &upstream_tls_schema, "upstream tls", t) < 0)
        return -1;
    if (!t->cert != !t->key)
        return config_fail(c, config_map_get(c, v, t->cert ? "cert" : "key"),
                           "upstream tls has %s without %s; expected both (a client certificate "
                           "and its key) or neither", t->cert ? "cert" : "key",
                           t->cert ? "key" : "cert");
    if (t->cert && tls_check_cert_key(t->cert, t->key, why, sizeof why) < 0)
        return config_fail(c, config_map_get(c, v, "cert"), "%s; expected a readable PEM "
                           "certificate chain and its matching private key", why);
    if (t->ca_file && tls_check_ca_file(t->ca_file, why, sizeof why) < 0)
        return config_fail(c, config_map_get(c, v, "ca_file"), "%s; expected a readable file of "
                           "PEM CA certificates", why);
    return 0;
}

/* ---- health_check and outlier_detection ------------------------------------------------- */

/* "200", "200-399": one status or a range, 100..599. */
static int parse_status_range(const char *s, uint16_t *lo, uint16_t *hi)
{
    unsigned a, b;
    char tail;
    if (sscanf(s, "%u-%u%c", &a, &b, &tail) == 2) {
    } else if (sscanf(s, "%u%c", &a, &tail) == 1)
        b = a;
    else
        return -1;
    if (a < 100 || b > 599 || a > b)
        return -1;
    *lo = (uint16_t)a;
    *hi = (uint16_t)b;
    return 0;
}

static int parse_expect_status(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_health *h = base;
    const char *expect = "a sequence of statuses or ranges like [\"200-399\", 404]";
    if (config_need(c, v, YAML_SEQUENCE_NODE, "expect_status", expect) < 0)
        return -1;
    size_t n = config_seq_len(v);
    if (n == 0)
        return config_fail(c, v, "'expect_status' is empty; expected %s", expect);
    free(h->status);
    if (!(h->status = calloc(n, sizeof *h->status)))
        return config_oom(c, v);
    h->nstatus = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = config_seq_item(c, v, i);
        const char *str = config_scalar(c, it, "expect_status", expect);
        if (!str)
            return -1;
        if (parse_status_range(str, &h->status[i][0], &h->status[i][1]) < 0)
            return config_fail(c, it, "invalid status or range '%s' in expect_status; expected "
                               "100..599 or LO-HI", str);
    }
    return 0;
}

static const char *const health_type_names[] = { "http", "tcp", "grpc", NULL };
static const char *const initial_names[] = { "unhealthy", "healthy", NULL };

static const struct field health_fields[] = {
    { .key = "type", .type = T_ENUM, AT(cfg_health, type), .names = health_type_names },
    { .key = "path", .type = T_STRING, AT(cfg_health, path), .check = check_path, .sdef = "/" },
    { .key = "method", .type = T_STRING, AT(cfg_health, method), .sdef = "GET" },
    { .key = "host", .type = T_STRING, AT(cfg_health, host) },
    { .key = "expect_status", .type = T_CUSTOM, .parse = parse_expect_status,
      .expect = "a sequence of statuses or ranges" },
    { .key = "expect_body", .type = T_STRING, AT(cfg_health, body) },
    { .key = "service", .type = T_STRING, AT(cfg_health, service) },
    DUR("interval", cfg_health, interval_ms, 5 * MS_S, 10),
    DUR("timeout", cfg_health, timeout_ms, MS_S, 1),
    DUR("jitter", cfg_health, jitter_ms, 0, 0),
    UINT("healthy_threshold", cfg_health, healthy_threshold, 2, 1, 1000),
    UINT("unhealthy_threshold", cfg_health, unhealthy_threshold, 3, 1, 1000),
    { .key = "initial", .type = T_ENUM, AT(cfg_health, initial_healthy), .def = 1,
      .names = initial_names },
    { .key = "panic", .type = T_BOOL, AT(cfg_health, panic), .def = 0 },
};
static const struct schema health_schema = SCHEMA("health_check", health_fields);

static int parse_health(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_upstream *u = base;
    struct cfg_health *h;
    if (!(h = u->health = calloc(1, sizeof *u->health)))
        return config_oom(c, v);
    if (config_walk(c, v, &health_schema, "health_check", h) < 0)
        return -1;
    if (!h->status) {
        if (!(h->status = calloc(1, sizeof *h->status)))
            return config_oom(c, v);
        h->status[0][0] = 200;
        h->status[0][1] = 399;
        h->nstatus = 1;
    }
    if (h->timeout_ms > h->interval_ms) {
        /* Point at whichever of the two was written (the other took its default). */
        yaml_node_t *at = config_map_get(c, v, "timeout");
        if (!at)
            at = config_map_get(c, v, "interval");
        return config_fail(c, at ? at : v, "health_check timeout is longer than its interval "
                           "(%llums > %llums); expected at most the interval",
                           (unsigned long long)h->timeout_ms, (unsigned long long)h->interval_ms);
    }
    return 0;
}

static const struct field outlier_fields[] = {
    UINT("consecutive_failures", cfg_outlier, consecutive_failures, 5, 1, 1000),
    { .key = "count_5xx", .type = T_BOOL, AT(cfg_outlier, count_5xx), .def = 1 },
    DUR("base_ejection_time", cfg_outlier, base_ejection_ms, 30 * MS_S, 1),
    DUR("max_ejection_time", cfg_outlier, max_ejection_ms, 300 * MS_S, 1),
    UINT("max_ejection_percent", cfg_outlier, max_ejection_percent, 50, 0, 100),
};
static const struct schema outlier_schema = SCHEMA("outlier_detection", outlier_fields);

static int parse_outlier(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_upstream *u = base;
    if (!(u->outlier = calloc(1, sizeof *u->outlier)))
        return config_oom(c, v);
    return config_walk(c, v, &outlier_schema, "outlier_detection", u->outlier);
}

static int parse_dns_resolvers(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_dns *d = base;
    const char *expect = "a sequence of numeric nameserver addresses, like [\"127.0.0.1:53\"]";
    if (config_need(c, v, YAML_SEQUENCE_NODE, "resolvers", expect) < 0)
        return -1;
    size_t n = config_seq_len(v);
    if (n == 0 || n > 8)
        return config_fail(c, v, "'resolvers' has %zu entries; expected %s (1 to 8)", n, expect);
    d->resolvers = calloc(n, sizeof *d->resolvers);
    d->resolver_lens = calloc(n, sizeof *d->resolver_lens);
    if (!d->resolvers || !d->resolver_lens)
        return config_oom(c, v);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = config_seq_item(c, v, i);
        const char *s = config_scalar(c, it, "resolvers", expect);
        if (!s)
            return -1;
        if (config_parse_sockaddr(s, &d->resolvers[i], &d->resolver_lens[i]) < 0 ||
            !strncmp(s, "*", 1))
            return config_fail(c, it, "invalid resolver address '%s'; expected %s", s, expect);
        d->nresolvers = i + 1;
    }
    return 0;
}

static const struct field dns_fields[] = {
    { .key = "resolvers", .type = T_CUSTOM, .parse = parse_dns_resolvers,
      .expect = "a sequence of nameserver addresses" },
    DUR("min_refresh", cfg_dns, min_refresh_ms, MS_S, 100),
    DUR("max_refresh", cfg_dns, max_refresh_ms, 300 * MS_S, 100),
    DUR("timeout", cfg_dns, timeout_ms, 2 * MS_S, 100),
};
static const struct schema dns_schema = SCHEMA("dns", dns_fields);

static int parse_dns(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_upstream *u = base;
    if (!(u->dns = calloc(1, sizeof *u->dns)))
        return config_oom(c, v);
    if (config_walk(c, v, &dns_schema, "dns", u->dns) < 0)
        return -1;
    if (u->dns->min_refresh_ms > u->dns->max_refresh_ms) {
        yaml_node_t *at = config_map_get(c, v, "min_refresh");
        return config_fail(c, at ? at : v, "dns min_refresh is longer than max_refresh "
                           "(%llums > %llums); expected min_refresh <= max_refresh",
                           (unsigned long long)u->dns->min_refresh_ms,
                           (unsigned long long)u->dns->max_refresh_ms);
    }
    return 0;
}

static const char *const protocol_names[] = { "http1", "h2c", "h2", "auto", NULL };
static const char *const balance_names[] = { "round_robin", "least_request", "random", "hash",
                                             NULL };

static const struct field upstream_fields[] = {
    { .key = "protocol", .type = T_ENUM, AT(cfg_upstream, protocol), .names = protocol_names },
    { .key = "balance", .type = T_ENUM, AT(cfg_upstream, balance), .names = balance_names },
    { .key = "hash_key", .type = T_STRING, AT(cfg_upstream, hash_key), .check = check_hash_key },
    { .key = "servers", .type = T_CUSTOM, .parse = parse_servers, .flags = F_REQUIRED,
      .expect = "a non-empty sequence of servers" },
    UINT("keepalive", cfg_upstream, keepalive, 32, 0, 100000),
    { .key = "keepalive_strict", .type = T_BOOL, AT(cfg_upstream, keepalive_strict), .def = 0 },
    UINT("keepalive_requests", cfg_upstream, keepalive_requests, 1000, 0, 1000000000),
    DUR("keepalive_time", cfg_upstream, keepalive_time_ms, MS_H, 0),
    DUR("keepalive_timeout", cfg_upstream, keepalive_timeout_ms, 60 * MS_S, 1),
    UINT("min_idle", cfg_upstream, min_idle, 0, 0, 100000),
    UINT("max_connections", cfg_upstream, max_connections, 0, 0, 1000000),
    UINT("max_queue", cfg_upstream, max_queue, 1024, 0, 1000000),
    DUR("queue_timeout", cfg_upstream, queue_timeout_ms, MS_S, 1),
    DUR("connect_timeout", cfg_upstream, connect_timeout_ms, 5 * MS_S, 1),
    DUR("send_timeout", cfg_upstream, send_timeout_ms, 60 * MS_S, 1),
    DUR("read_timeout", cfg_upstream, read_timeout_ms, 60 * MS_S, 0),
    UINT("retries", cfg_upstream, retries, 1, 0, 10),
    { .key = "buffer_size", .type = T_SIZE, AT(cfg_upstream, buffer_size),
      .def = 256 * KIB, .min = 4 * KIB, .max = 64 * MIB },
    { .key = "tls", .type = T_CUSTOM, .parse = parse_upstream_tls,
      .expect = "a mapping (server_name, ca_file, verify, cert, key, handshake_timeout)" },
    UINT("max_concurrent_streams", cfg_upstream, max_concurrent_streams, 100, 1, 1u << 31),
    DUR("h2_read_idle_timeout", cfg_upstream, h2_read_idle_timeout_ms, 30 * MS_S, 0),
    DUR("h2_ping_timeout", cfg_upstream, h2_ping_timeout_ms, 15 * MS_S, 1),
    { .key = "health_check", .type = T_CUSTOM, .parse = parse_health,
      .expect = "a mapping (type, path, expect_status, interval, timeout, ...)" },
    { .key = "outlier_detection", .type = T_CUSTOM, .parse = parse_outlier,
      .expect = "a mapping (consecutive_failures, base_ejection_time, ...)" },
    { .key = "dns", .type = T_CUSTOM, .parse = parse_dns,
      .expect = "a mapping (resolvers, min_refresh, max_refresh, timeout)" },
};
static const struct schema upstream_schema = SCHEMA("upstream", upstream_fields);

static int parse_upstreams(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct ferry_config *cfg = base;
    const char *expect = "a non-empty mapping of upstream names to upstreams";
    if (config_need(c, v, YAML_MAPPING_NODE, "upstreams", expect) < 0)
        return -1;
    size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
    if (n == 0)
        return config_fail(c, v, "'upstreams' is empty; expected %s", expect);
    if (!(cfg->upstreams = calloc(n, sizeof *cfg->upstreams)))
        return config_oom(c, v);
    cfg->nupstreams = n;
    for (size_t i = 0; i < n; i++) {
        struct cfg_upstream *u = &cfg->upstreams[i];
        yaml_node_t *k = yaml_document_get_node(c->doc, v->data.mapping.pairs.start[i].key);
        yaml_node_t *m = yaml_document_get_node(c->doc, v->data.mapping.pairs.start[i].value);
        const char *name = config_scalar(c, k, "upstreams", "an upstream name");
        char label[160];
        if (!name)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(cfg->upstreams[j].name, name) == 0)
                return config_fail(c, k, "duplicate upstream '%s'; expected each upstream name "
                                   "once", name);
        if (!(u->name = strdup(name)))
            return config_oom(c, k);
        snprintf(label, sizeof label, "upstream '%.128s'", name);
        if (config_walk(c, m, &upstream_schema, label, u) < 0)
            return -1;
        if (resolve_server_names(c, m, u) < 0)
            return -1;
        if ((u->protocol == PROTO_H2 || u->protocol == PROTO_AUTO) && !u->tls)
            return config_fail(c, config_map_get(c, m, "protocol"),
                               "protocol %s needs a tls mapping in upstream '%s'; expected tls: "
                               "(or protocol h2c for HTTP/2 over cleartext)",
                               u->protocol == PROTO_H2 ? "h2" : "auto", name);
        if (u->protocol == PROTO_H2C && u->tls)
            return config_fail(c, config_map_get(c, m, "tls"),
                               "upstream '%s' has protocol h2c (cleartext) and a tls mapping; "
                               "expected protocol h2 or auto for HTTP/2 over TLS", name);
        if (u->min_idle > u->keepalive)
            return config_fail(c, config_map_get(c, m, "min_idle"),
                               "min_idle %u is larger than keepalive %u (idle connections kept); "
                               "expected 0..%u", u->min_idle, u->keepalive, u->keepalive);
        if (u->health && u->health->service && strlen(u->health->service) > 120)
            return config_fail(c, config_map_get(c, m, "health_check"),
                               "health_check service name is longer than 120 bytes; expected a "
                               "shorter grpc.health.v1 service name");
        if (u->health && u->health->type == HC_GRPC && u->protocol == PROTO_HTTP1)
            return config_fail(c, config_map_get(c, m, "health_check"),
                               "health_check type grpc needs HTTP/2 in upstream '%s'; expected "
                               "protocol h2c, h2 or auto", name);
        if (u->max_connections && u->min_idle > u->max_connections)
            return config_fail(c, config_map_get(c, m, "min_idle"),
                               "min_idle %u is larger than max_connections %u; expected 0..%u",
                               u->min_idle, u->max_connections, u->max_connections);
    }
    return 0;
}

static const char *const log_level_names[] = { "debug", "info", "warn", "error", NULL };

static int parse_admin_listen(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct cfg_admin *a = base;
    const char *expect = "host:port with a numeric host, like 127.0.0.1:9901";
    const char *s = config_scalar(c, v, "listen", expect);
    if (!s)
        return -1;
    if (config_parse_sockaddr(s, &a->addr.ss, &a->addr.len) < 0)
        return config_fail(c, v, "invalid admin listen address '%s'; expected %s", s, expect);
    for (size_t i = 0; i < c->cfg->nlisteners; i++)
        for (size_t k = 0; k < c->cfg->listeners[i].naddrs; k++)
            if (config_same_sockaddr(&c->cfg->listeners[i].addrs[k].ss, &a->addr.ss))
                return config_fail(c, v, "admin address '%s' is already used by listener '%s'; "
                                   "expected an address of its own", s, c->cfg->listeners[i].name);
    if (!(a->addr.text = strdup(s)))
        return config_oom(c, v);
    return 0;
}

static const struct field admin_fields[] = {
    { .key = "listen", .type = T_CUSTOM, .parse = parse_admin_listen, .flags = F_REQUIRED,
      .expect = "an address like 127.0.0.1:9901" },
};
static const struct schema admin_schema = SCHEMA("admin", admin_fields);

static int parse_admin(struct config_ctx *c, yaml_node_t *v, void *base)
{
    struct ferry_config *cfg = base;
    if (!(cfg->admin = calloc(1, sizeof *cfg->admin)))
        return config_oom(c, v);
    return config_walk(c, v, &admin_schema, "admin", cfg->admin);
}

static const struct field root_fields[] = {
    { .key = "workers", .type = T_CUSTOM, .parse = parse_workers },
    { .key = "error_log", .type = T_STRING, AT(ferry_config, error_log), .sdef = "stderr" },
    { .key = "log_level", .type = T_ENUM, AT(ferry_config, log_level), .def = LOG_INFO_L,
      .names = log_level_names },
    { .key = "pid_file", .type = T_STRING, AT(ferry_config, pid_file) },
    DUR("shutdown_timeout", ferry_config, shutdown_timeout_ms, 30 * MS_S, 0),
    UINT("max_idle_upstream_connections", ferry_config, max_idle_upstream_connections,
         10000, 0, 10000000),
    { .key = "listeners", .type = T_CUSTOM, .parse = parse_listeners, .flags = F_REQUIRED,
      .expect = "a non-empty sequence of listeners" },
    { .key = "upstreams", .type = T_CUSTOM, .parse = parse_upstreams, .flags = F_REQUIRED,
      .expect = "a mapping of upstream names to upstreams" },
    { .key = "admin", .type = T_CUSTOM, .parse = parse_admin,
      .expect = "a mapping with listen: address" },
};
const struct schema config_root_schema = SCHEMA("the top level", root_fields);

/* Every route names a defined upstream; done after the walk because upstreams may come
 * after listeners in the file. */
int config_resolve_routes(struct config_ctx *c, yaml_node_t *root)
{
    struct ferry_config *cfg = c->cfg;
    yaml_node_t *ls = config_map_get(c, root, "listeners");
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        yaml_node_t *rs = config_map_get(c, config_seq_item(c, ls, i), "routes");
        for (size_t j = 0; j < cfg->listeners[i].nroutes; j++) {
            struct cfg_route *r = &cfg->listeners[i].routes[j];
            if ((r->upstream = config_find_upstream(cfg, r->upstream_name)))
                continue;
            char names[512] = "";
            size_t used = 0;
            for (size_t k = 0; k < cfg->nupstreams && used < sizeof names; k++)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s",
                                         k ? ", " : "", cfg->upstreams[k].name);
            return config_fail(c, config_map_get(c, config_seq_item(c, rs, j), "upstream"),
                               "route to undefined upstream '%s'; expected one of: %s",
                               r->upstream_name, names);
        }
    }
    return 0;
}

