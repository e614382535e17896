/* config — YAML file -> immutable, reference-counted configuration generation.
 *
 * The schema is one table per mapping (key, type, default, bounds, setter = offset into the
 * struct), so every key is parsed, defaulted and reported the same way. Every error names
 * file:line:column and what was expected. A generation is never modified after config_load
 * returns it; workers hold references and let go at a safe point.
 *
 * Durations are stored in milliseconds, sizes in bytes.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum log_level { LOG_DEBUG_L = 0, LOG_INFO_L, LOG_WARN_L, LOG_ERROR_L };

enum access_log_format { ACCESS_LOG_COMBINED = 0, ACCESS_LOG_JSON };

enum upstream_protocol { PROTO_HTTP1 = 0, PROTO_H2C, PROTO_H2, PROTO_AUTO };

enum balance_kind { BALANCE_ROUND_ROBIN = 0, BALANCE_LEAST_REQUEST, BALANCE_RANDOM, BALANCE_HASH };

/* A socket address with the text it came from (for logs and pool keys). */
struct cfg_sockaddr {
    char *text;                     /* as written in the file, e.g. "[::1]:8080" */
    struct sockaddr_storage ss;
    socklen_t len;
};

struct cfg_upstream;

struct cfg_tls_cert {
    char *cert;                     /* PEM chain: leaf first */
    char *key;                      /* PEM private key */
};

enum tls_version { TLS_V1_2 = 0, TLS_V1_3 };

/* A listener's tls: mapping. */
struct cfg_tls {
    struct cfg_tls_cert *certs;     /* first is the default; others chosen by SNI */
    size_t ncerts;
    enum tls_version min_version;   /* default TLSv1.2 */
    char **alpn;                    /* default [h2, http/1.1] */
    size_t nalpn;
    char *ciphers;                  /* TLS 1.2 cipher list; NULL = ferry's safe default */
    char *ciphersuites;             /* TLS 1.3 suites; NULL = OpenSSL's default */
    int session_tickets;            /* default 1 */
    uint32_t session_cache_size;    /* default 20480; 0 = no server-side cache */
    uint64_t session_timeout_ms;    /* default 1h */
    uint64_t ticket_key_rotation_ms;/* default 12h */
    uint64_t handshake_timeout_ms;  /* default 10s */
};

struct cfg_route {
    char *host;                     /* NULL = any host; matched case-insensitively, port ignored */
    char *path;                     /* NULL = any path; a prefix of the request path */
    char *upstream_name;
    struct cfg_upstream *upstream;  /* resolved at load time, never NULL */
    int has_timeout;                /* route overrides the upstream's read_timeout */
    uint64_t timeout_ms;            /* 0 = no read timeout (long streams) */
};

struct cfg_listener {
    char *name;
    struct cfg_sockaddr *addrs;
    size_t naddrs;
    int http2;                      /* h2c by prior knowledge and Upgrade (default 1) */
    uint32_t keepalive_requests;    /* default 1000; 0 = no limit */
    uint64_t keepalive_time_ms;     /* default 1h; 0 = no limit */
    uint64_t keepalive_timeout_ms;  /* default 75s; 0 disables keep-alive */
    uint64_t keepalive_header_timeout_ms; /* 0 = absent: no Keep-Alive header sent */
    uint64_t client_header_timeout_ms;    /* default 60s */
    uint64_t client_body_timeout_ms;      /* default 60s */
    uint64_t send_timeout_ms;             /* default 60s */
    uint32_t max_connections;             /* default 10000, per worker */
    uint64_t client_max_body_size;        /* default 1m; 0 = unlimited */
    uint32_t max_header_size;             /* whole request head, default 8k (431 beyond) */
    uint32_t max_request_line;            /* default 4k (414 beyond) */
    uint32_t max_headers;                 /* header fields per request, default 100 (431) */
    struct cfg_tls *tls;                  /* NULL = cleartext */
    uint32_t h2_max_concurrent_streams;   /* SETTINGS_MAX_CONCURRENT_STREAMS, default 128 */
    uint32_t h2_initial_window_size;      /* SETTINGS_INITIAL_WINDOW_SIZE, default 64k-1 */
    uint32_t h2_max_frame_size;           /* SETTINGS_MAX_FRAME_SIZE, default 16k */
    uint32_t h2_max_header_list_size;     /* SETTINGS_MAX_HEADER_LIST_SIZE, default 32k */
    char *access_log;                     /* NULL = off; "stderr" or a path */
    enum access_log_format access_log_format;
    struct cfg_route *routes;
    size_t nroutes;
};

/* One address a server name resolved to (port included). */
struct cfg_addr {
    struct sockaddr_storage ss;
    uint32_t weight;                /* SRV: the record's weight; 0 = the server's weight */
};

/* A server as configured. A runtime (see struct runtime) turns each into one server per
 * resolved address; for those, address is the "ip:port" text and name what was written. */
struct cfg_server {
    char *address;                  /* as written: "host:port", or the SRV name */
    char *host;                     /* host part (no brackets); the SRV name */
    const char *name;               /* runtime: the address as written; NULL in a config */
    uint16_t port;                  /* 0 for srv: each record has its own */
    uint32_t weight;                /* default 1 */
    int is_name;                    /* host is a name (resolved, then re-resolved: dns) */
    int is_srv;                     /* srv: given: SRV records give targets, ports, weights */
    struct sockaddr_storage ss;     /* numeric: the address; name: the first answer */
    socklen_t sslen;
    struct cfg_addr *addrs;         /* name: every address of the load-time answer */
    size_t naddrs;
};

/* An upstream's dns: mapping (how server names are re-resolved; defaults when absent). */
struct cfg_dns {
    struct sockaddr_storage *resolvers; /* NULL = the nameservers of /etc/resolv.conf */
    socklen_t *resolver_lens;
    size_t nresolvers;
    uint64_t min_refresh_ms;        /* default 1s: a shorter TTL is raised to this */
    uint64_t max_refresh_ms;        /* default 300s: a longer TTL is cut to this */
    uint64_t timeout_ms;            /* one query, default 2s */
};

/* An upstream's tls: mapping (ferry as a TLS client). */
struct cfg_upstream_tls {
    char *server_name;              /* SNI and verification name; NULL = the server's host */
    char *ca_file;                  /* NULL = the system's default trust store */
    int verify;                     /* default 1 */
    char *cert;                     /* client certificate (mTLS); NULL = none */
    char *key;
    uint64_t handshake_timeout_ms;  /* default 10s */
    int session_reuse;              /* default 1: resume sessions across connections */
};

enum health_type { HC_HTTP = 0, HC_TCP, HC_GRPC };

/* An upstream's health_check: mapping. Checks run once per process (main thread). */
struct cfg_health {
    enum health_type type;
    char *path;                     /* http: default "/" */
    char *method;                   /* http: default GET */
    char *host;                     /* http: Host / :authority; NULL = the server's address */
    uint16_t (*status)[2];          /* http: accepted status ranges [lo, hi]; default 200-399 */
    size_t nstatus;
    char *body;                     /* http: substring the body must contain; NULL = any */
    char *service;                  /* grpc: grpc.health.v1 service name, default "" */
    uint64_t interval_ms;           /* default 5s */
    uint64_t timeout_ms;            /* default 1s */
    uint64_t jitter_ms;             /* random extra delay per check, default 0 */
    uint32_t healthy_threshold;     /* rise, default 2 */
    uint32_t unhealthy_threshold;   /* fall, default 3 */
    int initial_healthy;            /* initial: healthy (default) | unhealthy */
    int panic;                      /* no server healthy: route to all (1) or 503 (0, default) */
};

/* An upstream's outlier_detection: mapping (passive, from real traffic). */
struct cfg_outlier {
    uint32_t consecutive_failures;  /* default 5 */
    int count_5xx;                  /* 5xx responses count as failures, default 1 */
    uint64_t base_ejection_ms;      /* default 30s; n-th ejection lasts n times this */
    uint64_t max_ejection_ms;       /* default 300s */
    uint32_t max_ejection_percent;  /* default 50 */
};

struct cfg_upstream {
    char *name;
    enum upstream_protocol protocol;    /* h2 and auto need tls */
    enum balance_kind balance;
    char *hash_key;                     /* balance hash: "header:NAME", "cookie:NAME",
                                           "client_ip"; NULL = client_ip */
    struct cfg_server *servers;
    size_t nservers;
    uint32_t keepalive;                 /* idle conns per server per worker, default 32 */
    int keepalive_strict;               /* 1: keepalive caps idle conns (nginx); 0 (default):
                                           the cap follows recent peak demand (pool.c) */
    uint32_t keepalive_requests;        /* default 1000; 0 = no limit */
    uint64_t keepalive_time_ms;         /* default 1h; 0 = no limit */
    uint64_t keepalive_timeout_ms;      /* default 60s */
    uint32_t min_idle;                  /* default 0 */
    uint32_t max_connections;           /* per server per worker, 0 = unlimited */
    uint32_t max_queue;                 /* waiters per server per worker when full, default 1024 */
    uint64_t queue_timeout_ms;          /* default 1s */
    uint64_t connect_timeout_ms;        /* default 5s */
    uint64_t send_timeout_ms;           /* default 60s */
    uint64_t read_timeout_ms;           /* default 60s; 0 = none */
    uint32_t retries;                   /* default 1 */
    uint32_t buffer_size;               /* body bytes held per direction before the
                                           reading side pauses, default 256k */
    struct cfg_upstream_tls *tls;       /* NULL = cleartext */
    struct cfg_health *health;          /* NULL = no active checks */
    struct cfg_outlier *outlier;        /* NULL = no passive ejection */
    uint32_t max_concurrent_streams;    /* h2: streams per connection, default 100 (and at
                                           most the peer's SETTINGS value) */
    uint64_t h2_read_idle_timeout_ms;   /* h2: PING after this much silence, default 30s;
                                           0 = never */
    uint64_t h2_ping_timeout_ms;        /* h2: unanswered PING closes, default 15s */
    struct cfg_dns *dns;                /* NULL = defaults (see cfg_dns) */
};

/* The admin listener: /metrics, /status, /healthz. */
struct cfg_admin {
    struct cfg_sockaddr addr;
};

struct ferry_config {
    int refs;                           /* atomic; see config_ref/config_unref */
    char *path;                         /* the file it was loaded from */
    uint32_t workers;                   /* resolved: "auto" becomes the CPU count */
    char *error_log;                    /* "stderr" (default) or a path */
    enum log_level log_level;           /* default info */
    char *pid_file;                     /* NULL = none */
    uint64_t shutdown_timeout_ms;       /* default 30s */
    uint32_t max_idle_upstream_connections; /* process-wide idle cap, default 10000; 0 = none */
    struct cfg_admin *admin;            /* NULL = off */
    struct cfg_listener *listeners;
    size_t nlisteners;
    struct cfg_upstream *upstreams;
    size_t nupstreams;
};

/* Loads and validates <path>. Returns a generation with one reference, or NULL with a
 * message "path:line:column: what was wrong; what was expected" in <err> (always
 * NUL-terminated, truncated to <errlen>). Nothing else is touched: no sockets, no files
 * other than <path> and the TLS certificates and keys it names (read to check them, not
 * kept). */
struct ferry_config *config_load(const char *path, char *err, size_t errlen);

/* Same, from a string in memory; <name> is used in messages in place of the path. */
struct ferry_config *config_load_string(const char *yaml, size_t len, const char *name,
                                        char *err, size_t errlen);

struct ferry_config *config_ref(struct ferry_config *cfg);
void config_unref(struct ferry_config *cfg);   /* frees at zero; NULL is allowed */

struct cfg_upstream *config_find_upstream(const struct ferry_config *cfg, const char *name);

/* Parsers for scalar forms, exposed for unit tests. Return 0 on success, -1 if malformed. */
int config_parse_duration(const char *s, uint64_t *ms);   /* "500ms" "75s" "5m" "1h" "0" "2d" */
int config_parse_size(const char *s, uint64_t *bytes);    /* "512" "8k" "1m" "1g" */
/* "host:port", "[v6]:port", "*:port" (= 0.0.0.0); numeric hosts only, port 1..65535
 * (listen addresses). */
int config_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len);
/* Same family, address and port. */
int config_same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b);

#endif
