/* Unit tests for config: scalar forms, defaults, every key, and one test per kind of error,
 * each checking the exact "name:line:column:" prefix and the message. Run under valgrind
 * with CK_FORK=no to check that every error path frees what it built. */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "config.h"

static char err[2048];

static struct ferry_config *load(const char *yaml)
{
    return config_load_string(yaml, strlen(yaml), "t.yaml", err, sizeof err);
}

/* A valid config: one listener, one upstream. Tests prepend or replace lines. */
#define LISTENERS \
    "listeners:\n" \
    "  - name: web\n" \
    "    listen: 127.0.0.1:8080\n" \
    "    routes:\n" \
    "      - upstream: app\n"
#define UPSTREAMS \
    "upstreams:\n" \
    "  app:\n" \
    "    servers:\n" \
    "      - address: 127.0.0.1:9000\n"
#define MINIMAL LISTENERS UPSTREAMS
/* The test certificates are committed under tests/certs (see make.sh there). */
#define CERTS "tests/certs/"

/* ---- scalar forms ---------------------------------------------------------------------- */

START_TEST(test_dns_keys)
{
    struct ferry_config *c = load(MINIMAL "    dns:\n      resolvers: [\"127.0.0.1:5353\", \"[::1]:53\"]\n"
                                          "      min_refresh: 2s\n      max_refresh: 1m\n      timeout: 750ms\n");
    ck_assert_msg(c != NULL, "%s", err);
    const struct cfg_dns *d = c->upstreams[0].dns;
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->nresolvers, 2);
    ck_assert_int_eq(d->resolvers[0].ss_family, AF_INET);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&d->resolvers[0])->sin_port), 5353);
    ck_assert_int_eq(d->resolvers[1].ss_family, AF_INET6);
    ck_assert_uint_eq(d->min_refresh_ms, 2000);
    ck_assert_uint_eq(d->max_refresh_ms, 60000);
    ck_assert_uint_eq(d->timeout_ms, 750);
    config_unref(c);
    c = load(MINIMAL "    dns: {}\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->upstreams[0].dns->nresolvers, 0);
    ck_assert_uint_eq(c->upstreams[0].dns->min_refresh_ms, 1000);
    ck_assert_uint_eq(c->upstreams[0].dns->max_refresh_ms, 300000);
    config_unref(c);
}
END_TEST

START_TEST(test_duration)
{
    static const struct { const char *s; uint64_t ms; } ok[] = {
        { "500ms", 500 }, { "75s", 75000 }, { "5m", 300000 }, { "1h", 3600000 },
        { "2d", 172800000 }, { "0", 0 }, { "0s", 0 }, { "007s", 7000 },
    };
    static const char *bad[] = { "5", "", "s", "1x", "-1s", "1.5s", "1 s", "1S", "1sm", "ms",
                                 "99999999999999999999d", "999999999999999999d", " 1s" };
    uint64_t v;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(config_parse_duration(ok[i].s, &v) == 0, "%s", ok[i].s);
        ck_assert_uint_eq(v, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(config_parse_duration(bad[i], &v) == -1, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_size)
{
    static const struct { const char *s; uint64_t b; } ok[] = {
        { "512", 512 }, { "8k", 8192 }, { "8K", 8192 }, { "1m", 1048576 }, { "1g", 1073741824 },
        { "0", 0 },
    };
    static const char *bad[] = { "", "k", "8kb", "-1", "1.5m", "1t", "8 k",
                                 "99999999999999999999", "99999999999999999g" };
    uint64_t v;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(config_parse_size(ok[i].s, &v) == 0, "%s", ok[i].s);
        ck_assert_uint_eq(v, ok[i].b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(config_parse_size(bad[i], &v) == -1, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_sockaddr)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char buf[64];

    ck_assert_int_eq(config_parse_sockaddr("127.0.0.1:8080", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, sizeof buf);
    ck_assert_str_eq(buf, "127.0.0.1");

    ck_assert_int_eq(config_parse_sockaddr("*:81", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_ANY));

    ck_assert_int_eq(config_parse_sockaddr("[::]:8080", &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
    ck_assert_int_eq(config_parse_sockaddr("[::1]:65535", &ss, &len), 0);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 65535);

    static const char *bad[] = { "localhost:80", "::1:80", "1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536",
                                 "[::1]80", "[::1]", "[zz]:80", "[127.0.0.1]:80", ":80", "1.2.3.4:",
                                 "1.2.3.4:8o", "1.2.3:80", "", "[]:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(config_parse_sockaddr(bad[i], &ss, &len) == -1, "'%s' accepted", bad[i]);
}
END_TEST

/* ---- valid configurations ---------------------------------------------------------------- */

START_TEST(test_defaults)
{
    struct ferry_config *c = load(MINIMAL);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->refs, 1);
    ck_assert_str_eq(c->path, "t.yaml");
    ck_assert_uint_ge(c->workers, 1);
    ck_assert_str_eq(c->error_log, "stderr");
    ck_assert_int_eq(c->log_level, LOG_INFO_L);
    ck_assert_ptr_null(c->pid_file);
    ck_assert_uint_eq(c->shutdown_timeout_ms, 30000);
    ck_assert_uint_eq(c->max_idle_upstream_connections, 10000);

    ck_assert_uint_eq(c->nlisteners, 1);
    struct cfg_listener *l = &c->listeners[0];
    ck_assert_str_eq(l->name, "web");
    ck_assert_uint_eq(l->naddrs, 1);
    ck_assert_str_eq(l->addrs[0].text, "127.0.0.1:8080");
    ck_assert_int_eq(l->http2, 1);
    ck_assert_uint_eq(l->keepalive_requests, 1000);
    ck_assert_uint_eq(l->keepalive_time_ms, 3600000);
    ck_assert_uint_eq(l->keepalive_timeout_ms, 75000);
    ck_assert_uint_eq(l->keepalive_header_timeout_ms, 0);
    ck_assert_uint_eq(l->client_header_timeout_ms, 60000);
    ck_assert_uint_eq(l->client_body_timeout_ms, 60000);
    ck_assert_uint_eq(l->send_timeout_ms, 60000);
    ck_assert_uint_eq(l->max_connections, 10000);
    ck_assert_uint_eq(l->client_max_body_size, 1048576);
    ck_assert_uint_eq(l->max_header_size, 8192);
    ck_assert_uint_eq(l->max_request_line, 4096);
    ck_assert_uint_eq(l->max_headers, 100);
    ck_assert_ptr_null(l->access_log);
    ck_assert_int_eq(l->access_log_format, ACCESS_LOG_COMBINED);
    ck_assert_uint_eq(l->nroutes, 1);
    ck_assert_ptr_null(l->routes[0].host);
    ck_assert_ptr_null(l->routes[0].path);
    ck_assert_str_eq(l->routes[0].upstream_name, "app");
    ck_assert_ptr_eq(l->routes[0].upstream, &c->upstreams[0]);
    ck_assert_int_eq(l->routes[0].has_timeout, 0);
    ck_assert_ptr_null(l->tls);
    ck_assert_uint_eq(l->h2_max_concurrent_streams, 128);
    ck_assert_uint_eq(l->h2_initial_window_size, 65535);
    ck_assert_uint_eq(l->h2_max_frame_size, 16384);
    ck_assert_uint_eq(l->h2_max_header_list_size, 32768);

    ck_assert_uint_eq(c->nupstreams, 1);
    struct cfg_upstream *u = &c->upstreams[0];
    ck_assert_str_eq(u->name, "app");
    ck_assert_int_eq(u->protocol, PROTO_HTTP1);
    ck_assert_int_eq(u->balance, BALANCE_ROUND_ROBIN);
    ck_assert_ptr_null(u->hash_key);
    ck_assert_uint_eq(u->nservers, 1);
    ck_assert_str_eq(u->servers[0].address, "127.0.0.1:9000");
    ck_assert_str_eq(u->servers[0].host, "127.0.0.1");
    ck_assert_uint_eq(u->servers[0].port, 9000);
    ck_assert_uint_eq(u->servers[0].weight, 1);
    ck_assert_int_eq(u->servers[0].ss.ss_family, AF_INET);
    ck_assert_uint_eq(u->servers[0].sslen, sizeof(struct sockaddr_in));
    ck_assert_uint_eq(u->keepalive, 32);
    ck_assert_int_eq(u->keepalive_strict, 0);
    ck_assert_uint_eq(u->keepalive_requests, 1000);
    ck_assert_uint_eq(u->keepalive_time_ms, 3600000);
    ck_assert_uint_eq(u->keepalive_timeout_ms, 60000);
    ck_assert_uint_eq(u->min_idle, 0);
    ck_assert_uint_eq(u->max_connections, 0);
    ck_assert_uint_eq(u->max_queue, 1024);
    ck_assert_uint_eq(u->queue_timeout_ms, 1000);
    ck_assert_uint_eq(u->connect_timeout_ms, 5000);
    ck_assert_uint_eq(u->send_timeout_ms, 60000);
    ck_assert_uint_eq(u->read_timeout_ms, 60000);
    ck_assert_uint_eq(u->retries, 1);
    ck_assert_ptr_null(u->tls);
    ck_assert_uint_eq(u->max_concurrent_streams, 100);
    ck_assert_uint_eq(u->h2_read_idle_timeout_ms, 30000);
    ck_assert_uint_eq(u->h2_ping_timeout_ms, 15000);
    config_unref(c);
}
END_TEST

START_TEST(test_upstream_h2_tls)
{
    struct ferry_config *c = load(MINIMAL "    protocol: auto\n    max_concurrent_streams: 7\n"
                                  "    h2_read_idle_timeout: 0\n    h2_ping_timeout: 2s\n"
                                  "    tls:\n      server_name: api.test\n      ca_file: " CERTS "ca.crt\n"
                                  "      verify: false\n      cert: " CERTS "localhost.crt\n"
                                  "      key: " CERTS "localhost.key\n      handshake_timeout: 3s\n"
                                  "      session_reuse: false\n");
    ck_assert_msg(c != NULL, "%s", err);
    struct cfg_upstream *u = &c->upstreams[0];
    ck_assert_int_eq(u->protocol, PROTO_AUTO);
    ck_assert_uint_eq(u->max_concurrent_streams, 7);
    ck_assert_uint_eq(u->h2_read_idle_timeout_ms, 0);
    ck_assert_uint_eq(u->h2_ping_timeout_ms, 2000);
    ck_assert_ptr_nonnull(u->tls);
    ck_assert_str_eq(u->tls->server_name, "api.test");
    ck_assert_str_eq(u->tls->ca_file, CERTS "ca.crt");
    ck_assert_int_eq(u->tls->verify, 0);
    ck_assert_str_eq(u->tls->cert, CERTS "localhost.crt");
    ck_assert_uint_eq(u->tls->handshake_timeout_ms, 3000);
    ck_assert_int_eq(u->tls->session_reuse, 0);
    config_unref(c);
    c = load(MINIMAL "    protocol: h2\n    tls: {}\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->upstreams[0].tls->verify, 1);
    ck_assert_int_eq(c->upstreams[0].tls->session_reuse, 1);
    ck_assert_ptr_null(c->upstreams[0].tls->ca_file);
    config_unref(c);
}
END_TEST

START_TEST(test_health_outlier)
{
    struct ferry_config *c = load(MINIMAL "    balance: hash\n    hash_key: cookie:sid\n    min_idle: 2\n"
                                  "    health_check:\n      type: http\n      path: /healthz\n"
                                  "      expect_status: [\"200-299\", 418]\n      expect_body: ok\n"
                                  "      interval: 2s\n      timeout: 500ms\n      jitter: 100ms\n"
                                  "      healthy_threshold: 1\n      unhealthy_threshold: 4\n"
                                  "      initial: unhealthy\n      panic: true\n"
                                  "    outlier_detection:\n      consecutive_failures: 3\n"
                                  "      count_5xx: false\n      base_ejection_time: 10s\n");
    ck_assert_msg(c != NULL, "%s", err);
    struct cfg_upstream *u = &c->upstreams[0];
    ck_assert_int_eq(u->balance, BALANCE_HASH);
    ck_assert_str_eq(u->hash_key, "cookie:sid");
    ck_assert_uint_eq(u->min_idle, 2);
    struct cfg_health *h = u->health;
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->type, HC_HTTP);
    ck_assert_str_eq(h->path, "/healthz");
    ck_assert_str_eq(h->method, "GET");
    ck_assert_uint_eq(h->nstatus, 2);
    ck_assert_uint_eq(h->status[0][0], 200);
    ck_assert_uint_eq(h->status[0][1], 299);
    ck_assert_uint_eq(h->status[1][0], 418);
    ck_assert_uint_eq(h->status[1][1], 418);
    ck_assert_str_eq(h->body, "ok");
    ck_assert_uint_eq(h->interval_ms, 2000);
    ck_assert_uint_eq(h->timeout_ms, 500);
    ck_assert_uint_eq(h->jitter_ms, 100);
    ck_assert_uint_eq(h->healthy_threshold, 1);
    ck_assert_uint_eq(h->unhealthy_threshold, 4);
    ck_assert_int_eq(h->initial_healthy, 0);
    ck_assert_int_eq(h->panic, 1);
    ck_assert_uint_eq(u->outlier->consecutive_failures, 3);
    ck_assert_int_eq(u->outlier->count_5xx, 0);
    ck_assert_uint_eq(u->outlier->base_ejection_ms, 10000);
    ck_assert_uint_eq(u->outlier->max_ejection_ms, 300000);
    ck_assert_uint_eq(u->outlier->max_ejection_percent, 50);
    config_unref(c);
    /* Defaults. */
    c = load(MINIMAL "    health_check: {}\n");
    ck_assert_msg(c != NULL, "%s", err);
    h = c->upstreams[0].health;
    ck_assert_int_eq(h->type, HC_HTTP);
    ck_assert_str_eq(h->path, "/");
    ck_assert_uint_eq(h->nstatus, 1);
    ck_assert_uint_eq(h->status[0][0], 200);
    ck_assert_uint_eq(h->status[0][1], 399);
    ck_assert_uint_eq(h->interval_ms, 5000);
    ck_assert_uint_eq(h->timeout_ms, 1000);
    ck_assert_uint_eq(h->healthy_threshold, 2);
    ck_assert_uint_eq(h->unhealthy_threshold, 3);
    ck_assert_int_eq(h->initial_healthy, 1);
    ck_assert_int_eq(h->panic, 0);
    ck_assert_ptr_null(c->upstreams[0].outlier);
    config_unref(c);
}
END_TEST

START_TEST(test_every_key)
{
    const char *yaml =
        "workers: 3\n"
        "error_log: /var/log/ferry/error.log\n"
        "log_level: debug\n"
        "pid_file: /run/ferry.pid\n"
        "shutdown_timeout: 0\n"
        "max_idle_upstream_connections: 0\n"
        "listeners:\n"
        "  - name: web\n"
        "    listen: [\"0.0.0.0:8080\", \"[::]:8080\"]\n"
        "    http2: false\n"
        "    keepalive_requests: 0\n"
        "    keepalive_time: 0\n"
        "    keepalive_timeout: 0\n"
        "    keepalive_header_timeout: 70s\n"
        "    client_header_timeout: 500ms\n"
        "    client_body_timeout: 2m\n"
        "    send_timeout: 1d\n"
        "    max_connections: 5\n"
        "    client_max_body_size: 0\n"
        "    max_header_size: 16k\n"
        "    max_request_line: 16k\n"
        "    max_headers: 128\n"
        "    access_log: stderr\n"
        "    access_log_format: json\n"
        "    routes:\n"
        "      - host: api.example.com\n"
        "        path: /v1/\n"
        "        upstream: go-api\n"
        "        timeout: 0\n"
        "      - path: /static/\n"
        "        upstream: static\n"
        "        timeout: 10s\n"
        "      - upstream: go-api\n"
        "  - name: other\n"
        "    listen: \"*:8081\"\n"
        "    access_log: off\n"
        "    routes: [{upstream: static}]\n"
        "upstreams:\n"
        "  go-api:\n"
        "    protocol: http1\n"
        "    balance: random\n"
        "    hash_key: header:X-User-Id\n"
        "    servers:\n"
        "      - address: 127.0.0.1:9000\n"
        "        weight: 2\n"
        "      - address: localhost:9001\n"
        "      - address: \"[::1]:9002\"\n"
        "        weight: 1000\n"
        "    keepalive: 0\n"
        "    keepalive_requests: 7\n"
        "    keepalive_time: 5m\n"
        "    keepalive_timeout: 4s\n"
        "    min_idle: 0\n"
        "    max_connections: 10\n"
        "    max_queue: 0\n"
        "    queue_timeout: 250ms\n"
        "    connect_timeout: 1s\n"
        "    send_timeout: 2s\n"
        "    read_timeout: 0\n"
        "    retries: 10\n"
        "  static:\n"
        "    balance: least_request\n"
        "    servers: [{address: \"127.0.0.1:9100\"}]\n";
    struct ferry_config *c = load(yaml);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->workers, 3);
    ck_assert_str_eq(c->error_log, "/var/log/ferry/error.log");
    ck_assert_int_eq(c->log_level, LOG_DEBUG_L);
    ck_assert_str_eq(c->pid_file, "/run/ferry.pid");
    ck_assert_uint_eq(c->shutdown_timeout_ms, 0);
    ck_assert_uint_eq(c->max_idle_upstream_connections, 0);

    ck_assert_uint_eq(c->nlisteners, 2);
    struct cfg_listener *l = &c->listeners[0];
    ck_assert_uint_eq(l->naddrs, 2);
    ck_assert_str_eq(l->addrs[1].text, "[::]:8080");
    ck_assert_int_eq(l->addrs[1].ss.ss_family, AF_INET6);
    ck_assert_int_eq(l->http2, 0);
    ck_assert_uint_eq(l->keepalive_requests, 0);
    ck_assert_uint_eq(l->keepalive_time_ms, 0);
    ck_assert_uint_eq(l->keepalive_timeout_ms, 0);
    ck_assert_uint_eq(l->keepalive_header_timeout_ms, 70000);
    ck_assert_uint_eq(l->client_header_timeout_ms, 500);
    ck_assert_uint_eq(l->client_body_timeout_ms, 120000);
    ck_assert_uint_eq(l->send_timeout_ms, 86400000);
    ck_assert_uint_eq(l->max_connections, 5);
    ck_assert_uint_eq(l->client_max_body_size, 0);
    ck_assert_uint_eq(l->max_header_size, 16384);
    ck_assert_uint_eq(l->max_request_line, 16384);
    ck_assert_uint_eq(l->max_headers, 128);
    ck_assert_str_eq(l->access_log, "stderr");
    ck_assert_int_eq(l->access_log_format, ACCESS_LOG_JSON);
    ck_assert_uint_eq(l->nroutes, 3);
    ck_assert_str_eq(l->routes[0].host, "api.example.com");
    ck_assert_str_eq(l->routes[0].path, "/v1/");
    ck_assert_int_eq(l->routes[0].has_timeout, 1);
    ck_assert_uint_eq(l->routes[0].timeout_ms, 0);
    ck_assert_int_eq(l->routes[1].has_timeout, 1);
    ck_assert_uint_eq(l->routes[1].timeout_ms, 10000);
    ck_assert_int_eq(l->routes[2].has_timeout, 0);
    ck_assert_ptr_eq(l->routes[0].upstream, config_find_upstream(c, "go-api"));
    ck_assert_ptr_eq(l->routes[1].upstream, config_find_upstream(c, "static"));
    ck_assert_ptr_eq(l->routes[2].upstream, config_find_upstream(c, "go-api"));

    l = &c->listeners[1];
    ck_assert_str_eq(l->name, "other");
    ck_assert_str_eq(l->addrs[0].text, "*:8081");
    ck_assert_ptr_null(l->access_log);
    ck_assert_ptr_eq(l->routes[0].upstream, &c->upstreams[1]);

    struct cfg_upstream *u = config_find_upstream(c, "go-api");
    ck_assert_ptr_nonnull(u);
    ck_assert_int_eq(u->balance, BALANCE_RANDOM);
    ck_assert_str_eq(u->hash_key, "header:X-User-Id");
    ck_assert_uint_eq(u->nservers, 3);
    ck_assert_uint_eq(u->servers[0].weight, 2);
    ck_assert_str_eq(u->servers[1].host, "localhost");
    ck_assert_uint_eq(u->servers[1].port, 9001);
    ck_assert_uint_gt(u->servers[1].sslen, 0);
    ck_assert_str_eq(u->servers[2].host, "::1");
    ck_assert_int_eq(u->servers[2].ss.ss_family, AF_INET6);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in6 *)&u->servers[2].ss)->sin6_port), 9002);
    ck_assert_uint_eq(u->servers[2].weight, 1000);
    /* A name keeps every address of its load-time answer; numeric addresses are not names. */
    ck_assert_int_eq(u->servers[1].is_name, 1);
    ck_assert_uint_ge(u->servers[1].naddrs, 1);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&u->servers[1].addrs[0])->sin_port), 9001);
    ck_assert_int_eq(u->servers[0].is_name, 0);
    ck_assert_int_eq(u->servers[2].is_name, 0);
    ck_assert_ptr_null(u->dns);
    ck_assert_uint_eq(u->keepalive, 0);
    ck_assert_uint_eq(u->keepalive_requests, 7);
    ck_assert_uint_eq(u->keepalive_time_ms, 300000);
    ck_assert_uint_eq(u->keepalive_timeout_ms, 4000);
    ck_assert_uint_eq(u->min_idle, 0);
    ck_assert_uint_eq(u->max_connections, 10);
    ck_assert_uint_eq(u->max_queue, 0);
    ck_assert_uint_eq(u->queue_timeout_ms, 250);
    ck_assert_uint_eq(u->connect_timeout_ms, 1000);
    ck_assert_uint_eq(u->send_timeout_ms, 2000);
    ck_assert_uint_eq(u->read_timeout_ms, 0);
    ck_assert_uint_eq(u->retries, 10);
    ck_assert_int_eq(config_find_upstream(c, "static")->balance, BALANCE_LEAST_REQUEST);
    ck_assert_ptr_null(config_find_upstream(c, "nope"));
    config_unref(c);
}
END_TEST

/* The test certificates are committed under tests/certs (see make.sh there); the unit tests
 * run from the top of the tree, like `make unit-check`. */
#define TLS_LISTENER(tls) \
    "listeners:\n" \
    "  - name: web\n" \
    "    listen: 127.0.0.1:8443\n" \
    "    routes: [{upstream: app}]\n" \
    "    tls:\n" tls \
    UPSTREAMS
#define ONE_CERT \
    "      certificates:\n" \
    "        - cert: " CERTS "localhost.crt\n" \
    "          key: " CERTS "localhost.key\n"

START_TEST(test_tls_defaults)
{
    struct ferry_config *c = load(TLS_LISTENER(ONE_CERT));
    ck_assert_msg(c != NULL, "%s", err);
    struct cfg_tls *t = c->listeners[0].tls;
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->ncerts, 1);
    ck_assert_str_eq(t->certs[0].cert, CERTS "localhost.crt");
    ck_assert_str_eq(t->certs[0].key, CERTS "localhost.key");
    ck_assert_int_eq(t->min_version, TLS_V1_2);
    ck_assert_uint_eq(t->nalpn, 2);
    ck_assert_str_eq(t->alpn[0], "h2");
    ck_assert_str_eq(t->alpn[1], "http/1.1");
    ck_assert_ptr_null(t->ciphers);
    ck_assert_ptr_null(t->ciphersuites);
    ck_assert_int_eq(t->session_tickets, 1);
    ck_assert_uint_eq(t->session_cache_size, 20480);
    ck_assert_uint_eq(t->session_timeout_ms, 3600000);
    ck_assert_uint_eq(t->ticket_key_rotation_ms, 12 * 3600000);
    ck_assert_uint_eq(t->handshake_timeout_ms, 10000);
    config_unref(c);
}
END_TEST

START_TEST(test_tls_every_key)
{
    struct ferry_config *c = load(TLS_LISTENER(
        "      certificates:\n"
        "        - cert: " CERTS "localhost.crt\n"
        "          key: " CERTS "localhost.key\n"
        "        - {cert: " CERTS "alt.crt, key: " CERTS "alt.key}\n"
        "      min_version: TLSv1.3\n"
        "      alpn: [http/1.1]\n"
        "      ciphers: ECDHE-ECDSA-AES256-GCM-SHA384:HIGH:!aNULL\n"
        "      ciphersuites: TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n"
        "      session_tickets: false\n"
        "      session_cache_size: 0\n"
        "      session_timeout: 5m\n"
        "      ticket_key_rotation: 1m\n"
        "      handshake_timeout: 3s\n"
        "    h2_max_concurrent_streams: 10000\n"
        "    h2_initial_window_size: 1m\n"
        "    h2_max_frame_size: 16777215\n"
        "    h2_max_header_list_size: 16m\n"));
    ck_assert_msg(c != NULL, "%s", err);
    struct cfg_listener *l = &c->listeners[0];
    struct cfg_tls *t = l->tls;
    ck_assert_uint_eq(t->ncerts, 2);
    ck_assert_str_eq(t->certs[1].cert, CERTS "alt.crt");
    ck_assert_str_eq(t->certs[1].key, CERTS "alt.key");
    ck_assert_int_eq(t->min_version, TLS_V1_3);
    ck_assert_uint_eq(t->nalpn, 1);
    ck_assert_str_eq(t->alpn[0], "http/1.1");
    ck_assert_str_eq(t->ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384:HIGH:!aNULL");
    ck_assert_str_eq(t->ciphersuites, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    ck_assert_int_eq(t->session_tickets, 0);
    ck_assert_uint_eq(t->session_cache_size, 0);
    ck_assert_uint_eq(t->session_timeout_ms, 300000);
    ck_assert_uint_eq(t->ticket_key_rotation_ms, 60000);
    ck_assert_uint_eq(t->handshake_timeout_ms, 3000);
    ck_assert_uint_eq(l->h2_max_concurrent_streams, 10000);
    ck_assert_uint_eq(l->h2_initial_window_size, 1048576);
    ck_assert_uint_eq(l->h2_max_frame_size, 16777215);
    ck_assert_uint_eq(l->h2_max_header_list_size, 16777216);
    config_unref(c);
}
END_TEST

START_TEST(test_workers_auto_and_small_head)
{
    struct ferry_config *c = load("workers: auto\n" MINIMAL);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_ge(c->workers, 1);
    ck_assert_uint_le(c->workers, 1024);
    config_unref(c);

    /* the max_request_line default (4k) follows a smaller max_header_size */
    c = load("listeners:\n"
             "  - name: web\n"
             "    listen: 127.0.0.1:8080\n"
             "    max_header_size: 1k\n"
             "    routes: [{upstream: app}]\n" UPSTREAMS);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->listeners[0].max_header_size, 1024);
    ck_assert_uint_eq(c->listeners[0].max_request_line, 1024);
    config_unref(c);
}
END_TEST

START_TEST(test_anchors_and_order)
{
    /* upstreams before listeners, YAML anchors and aliases, comments */
    struct ferry_config *c = load(
        "# comment\n"
        "upstreams:\n"
        "  a: &up\n"
        "    servers: [{address: \"127.0.0.1:9000\"}]\n"
        "  b: *up\n"
        "listeners:\n"
        "  - name: x\n"
        "    listen: 127.0.0.1:1\n"
        "    routes: [{upstream: b, path: /b}, {upstream: a}]\n");
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_uint_eq(c->nupstreams, 2);
    ck_assert_ptr_eq(c->listeners[0].routes[0].upstream, &c->upstreams[1]);
    config_unref(c);
}
END_TEST

START_TEST(test_refcount)
{
    struct ferry_config *c = load(MINIMAL);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_eq(config_ref(c), c);
    ck_assert_int_eq(c->refs, 2);
    config_unref(c);
    ck_assert_int_eq(c->refs, 1);
    config_unref(c);
    config_unref(NULL);
}
END_TEST

START_TEST(test_files)
{
    struct ferry_config *c = config_load("conf/ferry.yaml", err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(c->listeners[0].name, "web");
    ck_assert_uint_eq(c->listeners[0].naddrs, 2);
    ck_assert_str_eq(c->upstreams[0].name, "demo");
    ck_assert_uint_eq(c->upstreams[0].keepalive, 32);
    config_unref(c);

    ck_assert_ptr_null(config_load("conf/does-not-exist.yaml", err, sizeof err));
    ck_assert_msg(strstr(err, "conf/does-not-exist.yaml: cannot open: No such file") == err, "%s", err);

    /* the path is kept as given, for messages */
    c = config_load("tests/unit/../../conf/examples/minimal.yaml", err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(c->path, "tests/unit/../../conf/examples/minimal.yaml");
    ck_assert_int_eq(c->listeners[0].addrs[0].ss.ss_family, AF_INET);
    config_unref(c);

    c = config_load("conf/examples/gateway.yaml", err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    config_unref(c);
}
END_TEST

START_TEST(test_truncated_error)
{
    char small[12];
    ck_assert_ptr_null(config_load_string("x: [", 4, "t.yaml", small, sizeof small));
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_ptr_null(config_load_string("x: [", 4, "t.yaml", NULL, 0));
}
END_TEST

/* ---- errors: one per kind, exact position and message ------------------------------------- */

#define MINIMAL_H2(line) \
    "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    " line "\n" \
    "    routes: [{upstream: app}]\n" UPSTREAMS

static const struct bad {
    const char *name;
    const char *yaml;
    const char *where;  /* expected prefix after "t.yaml:" */
    const char *what;   /* expected substring */
} bad[] = {
    { "syntax", "listeners: [\n" UPSTREAMS, "3:6:", "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence started at line 1 column 12" },
    { "syntax_tab", "listeners:\n\t- name: x\n", "2:1:", "YAML syntax error" },
    { "empty_document", "# nothing\n", "1:1:", "the configuration is empty" },
    { "root_sequence", "- a\n- b\n", "1:1:", "the configuration is a sequence; expected a mapping" },
    { "two_documents", MINIMAL "---\n" MINIMAL, "10:1:", "a second YAML document; expected exactly one" },
    { "unknown_top", "listners: []\n" MINIMAL, "1:1:", "unknown key 'listners' in the top level; expected 'listeners'" },
    { "unknown_far", MINIMAL "colour: blue\n", "10:1:", "unknown key 'colour' in the top level; expected one of: workers, error_log" },
    { "unknown_listener", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    keepalive_timout: 5s\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "4:5:", "unknown key 'keepalive_timout' in listener; expected 'keepalive_timeout'" },
    { "unknown_route", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n"
      "    routes: [{upstream: app, prefix: /}]\n" UPSTREAMS, "4:30:", "unknown key 'prefix' in route" },
    { "unknown_server", LISTENERS UPSTREAMS "        wieght: 2\n", "10:9:", "unknown key 'wieght' in server; expected 'weight'" },
    { "admin_bad_listen", "admin:\n  listen: localhost:9901\n" MINIMAL, "2:11:",
      "invalid admin listen address 'localhost:9901'; expected host:port with a numeric host" },
    { "admin_no_listen", "admin:\n  port: 9901\n" MINIMAL, "2:3:",
      "unknown key 'port'" },
    { "admin_same_listen_after", MINIMAL "admin:\n  listen: 127.0.0.1:8080\n", "11:11:",
      "admin address '127.0.0.1:8080' is already used by listener 'web'" },
    { "admin_same_listen_before", "admin: {listen: \"127.0.0.1:8080\"}\n" MINIMAL, "4:13:",
      "listen address '127.0.0.1:8080' is already used by the admin listener" },
    { "tls_empty_map", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    tls: {}\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "4:10:",
      "listener tls is missing required key 'certificates'; expected a non-empty sequence" },
    { "tls_scalar", TLS_LISTENER("      on\n"), "6:7:", "listener tls is a scalar; expected a mapping" },
    { "tls_certificates_empty", TLS_LISTENER("      certificates: []\n"), "6:21:",
      "'certificates' is empty; expected a non-empty sequence of certificates" },
    { "tls_certificate_no_key", TLS_LISTENER("      certificates:\n        - cert: " CERTS "localhost.crt\n"),
      "7:11:", "certificate is missing required key 'key'; expected the path of the certificate's PEM private key" },
    { "tls_missing_cert", TLS_LISTENER("      certificates:\n        - cert: " CERTS "nope.crt\n"
      "          key: " CERTS "localhost.key\n"), "7:17:",
      "cannot load certificate " CERTS "nope.crt: No such file or directory; expected a readable PEM "
      "certificate chain and its matching private key" },
    { "tls_missing_key", TLS_LISTENER("      certificates:\n        - cert: " CERTS "localhost.crt\n"
      "          key: " CERTS "nope.key\n"), "7:17:",
      "cannot load private key " CERTS "nope.key: No such file or directory; expected a readable" },
    { "tls_not_pem", TLS_LISTENER("      certificates:\n        - cert: " CERTS "make.sh\n"
      "          key: " CERTS "localhost.key\n"), "7:17:",
      "cannot load certificate " CERTS "make.sh: no PEM data found; expected" },
    { "tls_key_mismatch", TLS_LISTENER(ONE_CERT "        - cert: " CERTS "alt.crt\n"
      "          key: " CERTS "mismatch.key\n"), "9:17:",
      "private key " CERTS "mismatch.key does not match certificate " CERTS "alt.crt; expected a "
      "readable PEM certificate chain and its matching private key" },
    { "tls_min_version", TLS_LISTENER(ONE_CERT "      min_version: TLSv1.1\n"), "9:20:",
      "invalid min_version 'TLSv1.1'; expected one of TLSv1.2 | TLSv1.3" },
    { "tls_alpn_bad", TLS_LISTENER(ONE_CERT "      alpn: [h2, spdy/3]\n"), "9:18:",
      "invalid alpn protocol 'spdy/3'; expected h2 or http/1.1" },
    { "tls_alpn_twice", TLS_LISTENER(ONE_CERT "      alpn: [h2, http/1.1, h2]\n"), "9:28:",
      "alpn protocol 'h2' is listed twice; expected each protocol at most once" },
    { "tls_alpn_empty", TLS_LISTENER(ONE_CERT "      alpn: []\n"), "9:13:", "'alpn' is empty; expected" },
    { "tls_alpn_scalar", TLS_LISTENER(ONE_CERT "      alpn: h2\n"), "9:13:",
      "'alpn' is a scalar; expected a non-empty sequence of h2 | http/1.1" },
    { "tls_ciphers", TLS_LISTENER(ONE_CERT "      ciphers: NOT-A-CIPHER\n"), "9:16:",
      "invalid ciphers 'NOT-A-CIPHER': no cipher match; expected an OpenSSL cipher list" },
    { "tls_ciphersuites", TLS_LISTENER(ONE_CERT "      ciphersuites: TLS_AES_128_GCM_SHA256:TLS_NOPE\n"),
      "9:21:", "invalid ciphersuites 'TLS_AES_128_GCM_SHA256:TLS_NOPE': unknown TLS 1.3 ciphersuite "
      "'TLS_NOPE'; expected TLS 1.3 ciphersuites" },
    { "tls_rotation", TLS_LISTENER(ONE_CERT "      ticket_key_rotation: 59s\n"), "9:28:",
      "ticket_key_rotation 59s is out of range; expected 1m..30d" },
    { "tls_session_timeout", TLS_LISTENER(ONE_CERT "      session_timeout: 8d\n"), "9:24:",
      "session_timeout 8d is out of range; expected 1s..7d" },
    { "tls_cache_size", TLS_LISTENER(ONE_CERT "      session_cache_size: 10000001\n"), "9:27:",
      "session_cache_size 10000001 is out of range; expected 0..10000000" },
    { "tls_unknown", TLS_LISTENER(ONE_CERT "      min_verison: TLSv1.3\n"), "9:7:",
      "unknown key 'min_verison' in listener tls; expected 'min_version'" },
    { "h2_streams", MINIMAL_H2("h2_max_concurrent_streams: 0"), "4:32:",
      "h2_max_concurrent_streams 0 is out of range; expected 1..10000" },
    { "h2_window", MINIMAL_H2("h2_initial_window_size: 2g"), "4:29:",
      "h2_initial_window_size 2048m is out of range; expected 1..2147483647" },
    { "h2_frame", MINIMAL_H2("h2_max_frame_size: 16383"), "4:24:",
      "h2_max_frame_size 16383 is out of range; expected 16k..16777215" },
    { "h2_header_list", MINIMAL_H2("h2_max_header_list_size: 17m"), "4:30:",
      "h2_max_header_list_size 17m is out of range; expected 1k..16m" },
    { "health_bad_type", MINIMAL "    health_check:\n      type: udp\n", "11:13:",
      "invalid type 'udp'; expected one of http | tcp | grpc" },
    { "health_bad_status", MINIMAL "    health_check:\n      expect_status: [\"200-99\"]\n", "11:23:",
      "invalid status or range '200-99' in expect_status" },
    { "health_timeout_long", MINIMAL "    health_check:\n      interval: 1s\n      timeout: 2s\n", "12:16:",
      "health_check timeout is longer than its interval (2000ms > 1000ms)" },
    { "health_timeout_default", MINIMAL "    health_check: {interval: 300ms}\n", "10:30:",
      "health_check timeout is longer than its interval (1000ms > 300ms)" },
    { "health_grpc_h1", MINIMAL "    health_check: {type: grpc}\n", "10:19:",
      "health_check type grpc needs HTTP/2 in upstream 'app'" },
    { "health_unknown", MINIMAL "    health_check: {uri: /}\n", "10:20:", "unknown key 'uri' in health_check" },
    { "protocol_bad", MINIMAL "    protocol: http3\n", "10:15:", "invalid protocol 'http3'; expected one of http1 | h2c | h2 | auto" },
    { "h2_needs_tls", MINIMAL "    protocol: h2\n", "10:15:", "protocol h2 needs a tls mapping in upstream 'app'" },
    { "auto_needs_tls", MINIMAL "    protocol: auto\n", "10:15:", "protocol auto needs a tls mapping" },
    { "h2c_with_tls", MINIMAL "    protocol: h2c\n    tls: {}\n", "11:10:", "has protocol h2c (cleartext) and a tls mapping" },
    { "up_tls_cert_no_key", MINIMAL "    tls:\n      cert: " CERTS "localhost.crt\n", "11:13:", "upstream tls has cert without key" },
    { "up_tls_bad_ca", MINIMAL "    tls:\n      ca_file: /nonexistent/ca.pem\n", "11:16:", "cannot load CA file /nonexistent/ca.pem" },
    { "up_tls_unknown", MINIMAL "    tls:\n      sni: x\n", "11:7:", "unknown key 'sni' in upstream tls" },
    { "up_mcs_zero", MINIMAL "    max_concurrent_streams: 0\n", "10:29:", "max_concurrent_streams 0 is out of range" },
    { "up_ping_timeout_zero", MINIMAL "    h2_ping_timeout: 0\n", "10:22:", "h2_ping_timeout" },
    { "outlier_pct", MINIMAL "    outlier_detection: {max_ejection_percent: 101}\n", "10:47:",
      "max_ejection_percent 101 is out of range; expected 0..100" },
    { "dns_resolver_name", MINIMAL "    dns: {resolvers: [\"localhost:53\"]}\n", "10:23:",
      "invalid resolver address 'localhost:53'; expected a sequence of numeric nameserver addresses" },
    { "dns_resolvers_empty", MINIMAL "    dns: {resolvers: []}\n", "10:22:", "'resolvers' has 0 entries" },
    { "dns_resolvers_scalar", MINIMAL "    dns: {resolvers: 127.0.0.1:53}\n", "10:22:", "'resolvers' is a scalar" },
    { "dns_min_over_max", MINIMAL "    dns: {min_refresh: 10s, max_refresh: 5s}\n", "10:24:",
      "dns min_refresh is longer than max_refresh (10000ms > 5000ms)" },
    { "dns_refresh_tiny", MINIMAL "    dns: {min_refresh: 10ms}\n", "10:24:", "min_refresh" },
    { "srv_and_address", LISTENERS "upstreams:\n  app:\n    servers:\n      - {address: 127.0.0.1:80, srv: _a._tcp.x}\n",
      "9:38:", "a server needs either address or srv (not both)" },
    { "srv_bad_name", LISTENERS "upstreams:\n  app:\n    servers:\n      - srv: \"_a._tcp..x\"\n",
      "9:14:", "invalid srv name '_a._tcp..x'; expected an SRV name" },
    { "dns_unknown", MINIMAL "    dns: {ttl: 5s}\n", "10:11:", "unknown key 'ttl' in dns" },
    { "listeners_scalar", "listeners: web\n" UPSTREAMS, "1:12:", "'listeners' is a scalar; expected a non-empty sequence" },
    { "listeners_null", "listeners:\n" UPSTREAMS, "1:11:", "'listeners' is empty; expected a non-empty sequence" },
    { "listeners_empty", "listeners: []\n" UPSTREAMS, "1:12:", "'listeners' is empty; expected a non-empty sequence" },
    { "listener_scalar", "listeners:\n  - web\n" UPSTREAMS, "2:5:", "listener is a scalar; expected a mapping" },
    { "routes_empty", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes: []\n" UPSTREAMS,
      "4:13:", "'routes' is empty" },
    { "servers_empty", LISTENERS "upstreams:\n  app:\n    servers: []\n", "8:14:", "'servers' is empty" },
    { "upstreams_empty", LISTENERS "upstreams: {}\n", "6:12:", "'upstreams' is empty" },
    { "upstream_null", LISTENERS "upstreams:\n  app:\n", "7:7:", "upstream 'app' is empty; expected a mapping" },
    { "missing_listeners", UPSTREAMS, "1:1:", "the configuration is missing required key 'listeners'" },
    { "missing_upstreams", LISTENERS, "1:1:", "the configuration is missing required key 'upstreams'" },
    { "missing_name", "listeners:\n  - listen: 127.0.0.1:8080\n    routes: [{upstream: app}]\n" UPSTREAMS,
      "2:5:", "listener is missing required key 'name'" },
    { "missing_routes", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n" UPSTREAMS,
      "2:5:", "listener is missing required key 'routes'" },
    { "missing_upstream", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes:\n      - path: /\n"
      UPSTREAMS, "5:9:", "route is missing required key 'upstream'" },
    { "missing_address", LISTENERS "upstreams:\n  app:\n    servers:\n      - weight: 1\n", "9:9:",
      "a server needs either address or srv (not both)" },
    { "missing_servers", LISTENERS "upstreams:\n  app:\n    keepalive: 1\n", "8:5:",
      "upstream 'app' is missing required key 'servers'" },
    { "undefined_upstream", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes:\n"
      "      - path: /a\n        upstream: nope\n" UPSTREAMS, "6:19:", "route to undefined upstream 'nope'; expected one of: app" },
    { "duplicate_key", MINIMAL "    keepalive: 1\n    keepalive: 2\n", "11:5:", "duplicate key 'keepalive' in upstream 'app'" },
    { "duplicate_top", MINIMAL UPSTREAMS, "10:1:", "duplicate key 'upstreams' in the configuration" },
    { "duplicate_listener", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes: [{upstream: app}]\n"
      "  - name: web\n    listen: 127.0.0.1:8081\n    routes: [{upstream: app}]\n" UPSTREAMS,
      "5:11:", "duplicate listener name 'web'" },
    { "duplicate_listen", "listeners:\n  - name: a\n    listen: 0.0.0.0:8080\n    routes: [{upstream: app}]\n"
      "  - name: b\n    listen: [\"127.0.0.1:8081\", \"*:8080\"]\n    routes: [{upstream: app}]\n" UPSTREAMS,
      "6:32:", "listen address '*:8080' is already used by listener 'a'" },
    { "duplicate_listen_same", "listeners:\n  - name: a\n    listen: [\"[::1]:80\", \"[0::1]:80\"]\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "3:26:", "listed twice in this listener" },
    { "duplicate_upstream", LISTENERS "upstreams:\n  app:\n    servers: [{address: \"127.0.0.1:1\"}]\n"
      "  app:\n    servers: [{address: \"127.0.0.1:2\"}]\n", "9:3:", "duplicate upstream 'app'" },
    { "duplicate_server", MINIMAL "      - address: 127.0.0.1:9000\n", "10:18:",
      "server '127.0.0.1:9000' is listed twice in upstream 'app'" },
    { "duration_bare", MINIMAL "    keepalive_timeout: 60\n", "10:24:",
      "invalid duration '60' for keepalive_timeout; expected a duration like 75s" },
    { "duration_unit", MINIMAL "    read_timeout: 5x\n", "10:19:", "invalid duration '5x' for read_timeout" },
    { "duration_range", "shutdown_timeout: 31d\n" MINIMAL, "1:19:",
      "shutdown_timeout 31d is out of range; expected 0..30d" },
    { "duration_zero", MINIMAL "    connect_timeout: 0\n", "10:22:",
      "connect_timeout 0 is out of range; expected 1ms..30d" },
    { "size_bad", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    client_max_body_size: 1mb\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "4:27:", "invalid size '1mb' for client_max_body_size; expected a size like" },
    { "size_range", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    max_header_size: 2m\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "4:22:", "max_header_size 2m is out of range; expected 1k..1m" },
    { "request_line", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    max_request_line: 4k\n"
      "    max_header_size: 2k\n    routes: [{upstream: app}]\n" UPSTREAMS, "4:23:",
      "max_request_line 4k is larger than max_header_size 2k; expected 256..2k" },
    { "int_bad", MINIMAL "    retries: many\n", "10:14:", "invalid integer 'many' for retries; expected an integer in 0..10" },
    { "int_negative", MINIMAL "    keepalive: -1\n", "10:16:", "invalid integer '-1' for keepalive" },
    { "int_range", MINIMAL "    retries: 11\n", "10:14:", "retries 11 is out of range; expected 0..10" },
    { "weight_range", MINIMAL "        weight: 0\n", "10:17:", "weight 0 is out of range; expected 1..1000" },
    { "max_headers", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    max_headers: 129\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "4:18:", "max_headers 129 is out of range; expected 1..128" },
    { "bool", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    http2: yes\n"
      "    routes: [{upstream: app}]\n" UPSTREAMS, "4:12:", "invalid boolean 'yes' for http2; expected true or false" },
    { "enum", "log_level: verbose\n" MINIMAL, "1:12:",
      "invalid log_level 'verbose'; expected one of debug | info | warn | error" },
    { "enum_balance", MINIMAL "    balance: weighted\n", "10:14:",
      "expected one of round_robin | least_request | random" },
    { "hash_key_bad", MINIMAL "    balance: hash\n    hash_key: body\n", "11:15:",
      "invalid hash_key 'body'; expected header:NAME, cookie:NAME or client_ip" },
    { "workers_zero", "workers: 0\n" MINIMAL, "1:10:", "workers 0 is out of range; expected auto or an integer in 1..1024" },
    { "workers_word", "workers: many\n" MINIMAL, "1:10:", "invalid workers 'many'; expected auto" },
    { "listen_hostname", "listeners:\n  - name: web\n    listen: localhost:8080\n    routes: [{upstream: app}]\n"
      UPSTREAMS, "3:13:", "invalid listen address 'localhost:8080'; expected host:port with a numeric host" },
    { "listen_map", "listeners:\n  - name: web\n    listen: {a: 1}\n    routes: [{upstream: app}]\n"
      UPSTREAMS, "3:13:", "'listen' is a mapping; expected an address string or a sequence" },
    { "listen_empty", "listeners:\n  - name: web\n    listen: []\n    routes: [{upstream: app}]\n"
      UPSTREAMS, "3:13:", "'listen' is empty" },
    { "path", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes: [{path: api, upstream: app}]\n"
      UPSTREAMS, "4:21:", "invalid path 'api'; expected a path prefix starting with /" },
    { "host_empty", "listeners:\n  - name: web\n    listen: 127.0.0.1:8080\n    routes: [{host: \"\", upstream: app}]\n"
      UPSTREAMS, "4:21:", "invalid host ''; expected a non-empty string" },
    { "hash_key", MINIMAL "    hash_key: \"header:\"\n", "10:15:",
      "invalid hash_key 'header:'; expected header:NAME, cookie:NAME or client_ip" },
    { "unresolvable", LISTENERS "upstreams:\n  app:\n    servers:\n      - address: nonexistent.invalid:80\n",
      "9:18:", "cannot resolve 'nonexistent.invalid'" },
    { "address_no_port", LISTENERS "upstreams:\n  app:\n    servers:\n      - address: 127.0.0.1\n",
      "9:18:", "invalid server address '127.0.0.1'; expected host:port" },
    { "min_idle", MINIMAL "    max_connections: 2\n    min_idle: 3\n", "11:15:",
      "min_idle 3 is larger than max_connections 2; expected 0..2" },
    { "null_value", "pid_file:\n" MINIMAL, "1:10:", "'pid_file' has no value; expected a string" },
    { "mapping_for_int", MINIMAL "    keepalive: {a: 1}\n", "10:16:", "'keepalive' is a mapping; expected an integer" },
    { "sequence_key", "? [a]\n: b\n" MINIMAL, "1:3:", "a key in the configuration is a sequence; expected a key name" },
    { "nul_byte", "pid_file: \"a\\0b\"\n" MINIMAL, "1:11:", "'pid_file' contains a NUL byte" },
    { "bad_utf8", "pid_file: \xff\xfe\n" MINIMAL, "1:1:", "cannot read YAML" },
    { "undefined_alias", "pid_file: *nope\n" MINIMAL, "1:11:", "YAML syntax error" },
};

START_TEST(test_errors)
{
    const struct bad *b = &bad[_i];
    char want[128];
    struct ferry_config *c = load(b->yaml);
    ck_assert_msg(c == NULL, "%s: accepted", b->name);
    snprintf(want, sizeof want, "t.yaml:%s ", b->where);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s: want %s, got: %s", b->name, want, err);
    ck_assert_msg(strstr(err, b->what) != NULL, "%s: want '%s', got: %s", b->name, b->what, err);
    ck_assert_msg(strstr(err, "; expected ") != NULL, "%s: no '; expected': %s", b->name, err);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("scalars");
    tcase_add_test(tc, test_duration);
    tcase_add_test(tc, test_dns_keys);
    tcase_add_test(tc, test_size);
    tcase_add_test(tc, test_sockaddr);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_upstream_h2_tls);
    tcase_add_test(tc, test_health_outlier);
    tcase_add_test(tc, test_every_key);
    tcase_add_test(tc, test_tls_defaults);
    tcase_add_test(tc, test_tls_every_key);
    tcase_add_test(tc, test_workers_auto_and_small_head);
    tcase_add_test(tc, test_anchors_and_order);
    tcase_add_test(tc, test_refcount);
    tcase_add_test(tc, test_files);
    tcase_add_test(tc, test_truncated_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_errors, 0, (int)(sizeof bad / sizeof bad[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
