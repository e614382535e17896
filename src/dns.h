/* dns — server names: resolved when a configuration loads, then re-resolved on their TTL
 * (main thread, libevent's evdns) so that upstream groups follow address changes.
 *
 * A refresh asks for A and AAAA. Each family keeps its last good answer when its query
 * fails; a refresh that yields no address at all keeps the whole last answer. A name found
 * in /etc/hosts (and no resolvers: configured) is not re-resolved: the file is read again
 * at a reload. */
#ifndef FERRY_DNS_H
#define FERRY_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

struct event_base;

/* At most this many addresses are taken from one name (more are ignored, with a warning). */
#define DNS_MAX_ADDRS 64

/* Resolves <host> (A and AAAA) for config loading: through <dns>'s resolvers when it names
 * some (evdns on a private loop, bounded by its timeout), else getaddrinfo (files, then
 * DNS). *addrs (malloc'd, sorted, port set) has *n >= 1 entries; -1 with the reason. */
int dns_resolve_sync(const char *host, uint16_t port, const struct cfg_dns *dns,
                     struct cfg_addr **addrs, size_t *n, char *err, size_t errlen);
/* The same for an SRV name (RFC 2782): the records of the lowest priority, each target's
 * addresses with the record's port and weight (from the answer's additional section, or
 * looked up). Asked of <dns>'s resolvers, else of /etc/resolv.conf's nameservers. */
int dns_resolve_srv_sync(const char *name, const struct cfg_dns *dns, struct cfg_addr **addrs,
                         size_t *n, char *err, size_t errlen);

socklen_t dns_sockaddr_len(const struct sockaddr_storage *ss);
uint16_t dns_sockaddr_port(const struct sockaddr_storage *ss);   /* host order */
/* "192.0.2.1:80" or "[2001:db8::1]:80". */
void dns_format(const struct sockaddr_storage *ss, char *buf, size_t len);

struct dns;
typedef void (*dns_changed_fn)(void *arg);

/* Starts refreshing the server names of <cfg> (which must outlive it), from their load-time
 * answers. <changed> runs on <base>'s thread, once per loop turn in which answers changed.
 * NULL when <cfg> has no names (dns_answer then returns the load-time ones). */
struct dns *dns_start(struct event_base *base, const struct ferry_config *cfg,
                      dns_changed_fn changed, void *arg);
void dns_stop(struct dns *d);

/* The current addresses of server <s> of upstream <u> of <cfg> (a name): sorted, with the
 * port. <d> may be NULL. */
size_t dns_answer(const struct dns *d, const struct ferry_config *cfg, size_t u, size_t s,
                  const struct cfg_addr **addrs);

/* SRV wire format, for tests: builds a query (length, 0 when <len> is too small) and parses
 * an answer to query <id> into at most <max> records of the lowest priority. */
struct dns_srv_rec {
    uint16_t port, weight;
    uint32_t ttl;
    char target[256];
};
struct dns_srv_add {                /* an address from the additional section */
    char name[256];
    struct sockaddr_storage ss;     /* port 0 */
    uint32_t ttl;
};
struct dns_srv_answer {
    int rcode;
    size_t nrec, nadd;
    struct dns_srv_rec rec[DNS_MAX_ADDRS];
    struct dns_srv_add add[DNS_MAX_ADDRS];
};
size_t dns_srv_query(uint8_t *buf, size_t len, uint16_t id, const char *name);
int dns_srv_parse(const uint8_t *msg, size_t len, uint16_t id, struct dns_srv_answer *out);

#endif
