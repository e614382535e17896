#include "dns.h"

#include <arpa/inet.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"

#define MS_DEFAULT_MIN_REFRESH 1000
#define MS_DEFAULT_MAX_REFRESH 300000
#define MS_DEFAULT_TIMEOUT 2000

/* ---- addresses ---------------------------------------------------------------------- */

socklen_t dns_sockaddr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

void dns_format(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}

uint16_t dns_sockaddr_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
}

/* Orders by family, address bytes, port, then weight. */
static int addr_cmp(const void *a, const void *b)
{
    const struct cfg_addr *x = a, *y = b;
    int c;
    if (x->ss.ss_family != y->ss.ss_family)
        return x->ss.ss_family < y->ss.ss_family ? -1 : 1;
    if (x->ss.ss_family == AF_INET6)
        c = memcmp(&((const struct sockaddr_in6 *)&x->ss)->sin6_addr,
                   &((const struct sockaddr_in6 *)&y->ss)->sin6_addr, sizeof(struct in6_addr));
    else
        c = memcmp(&((const struct sockaddr_in *)&x->ss)->sin_addr,
                   &((const struct sockaddr_in *)&y->ss)->sin_addr, sizeof(struct in_addr));
    if (c)
        return c;
    if (dns_sockaddr_port(&x->ss) != dns_sockaddr_port(&y->ss))
        return dns_sockaddr_port(&x->ss) < dns_sockaddr_port(&y->ss) ? -1 : 1;
    return x->weight < y->weight ? -1 : x->weight > y->weight;
}

/* Sorts and drops duplicate addresses (the first weight of one address stays). */
static size_t sort_unique(struct cfg_addr *a, size_t n)
{
    if (n == 0)
        return 0;
    qsort(a, n, sizeof *a, addr_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++) {
        struct cfg_addr x = a[i], y = a[k - 1];
        x.weight = y.weight = 0;
        if (addr_cmp(&x, &y) != 0)
            a[k++] = a[i];
    }
    return k;
}

static void set_v4(struct sockaddr_storage *ss, const void *addr, uint16_t port)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    s4->sin_family = AF_INET;
    memcpy(&s4->sin_addr, addr, sizeof s4->sin_addr);
    s4->sin_port = htons(port);
}

static void set_v6(struct sockaddr_storage *ss, const void *addr, uint16_t port)
{
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    s6->sin6_family = AF_INET6;
    memcpy(&s6->sin6_addr, addr, sizeof s6->sin6_addr);
    s6->sin6_port = htons(port);
}

/* ---- one A + AAAA lookup ------------------------------------------------------------ */

enum fam_state { FAM_PENDING = 0, FAM_OK, FAM_EMPTY, FAM_FAIL };

struct family_answer {
    enum fam_state state;
    int err;                        /* evdns error when FAIL */
    uint32_t ttl;
    size_t n;
    struct cfg_addr a[DNS_MAX_ADDRS];
};

struct lookup {
    uint16_t port;
    int pending;                    /* queries outstanding */
    int truncated;                  /* more than DNS_MAX_ADDRS in an answer */
    struct family_answer v4, v6;
    void (*done)(struct lookup *lk);
    void *owner;
};

/* One family's answer (evdns gives no type with an error, hence one callback per family). */
static void lookup_answer(struct lookup *lk, int v6, int result, int count, int ttl,
                          const void *addresses)
{
    struct family_answer *f = v6 ? &lk->v6 : &lk->v4;
    if (result == DNS_ERR_NONE && count > 0 && addresses) {
        size_t n = (size_t)count;
        if (n > DNS_MAX_ADDRS) {
            n = DNS_MAX_ADDRS;
            lk->truncated = 1;
        }
        for (size_t i = 0; i < n; i++) {
            f->a[i].weight = 0;
            if (v6)
                set_v6(&f->a[i].ss, (const unsigned char *)addresses + i * 16, lk->port);
            else
                set_v4(&f->a[i].ss, (const unsigned char *)addresses + i * 4, lk->port);
        }
        f->n = sort_unique(f->a, n);
        f->ttl = ttl > 0 ? (uint32_t)ttl : 0;
        f->state = FAM_OK;
    } else if (result == DNS_ERR_NONE || result == DNS_ERR_NOTEXIST || result == DNS_ERR_NODATA) {
        f->n = 0;
        f->state = FAM_EMPTY;
    } else {
        f->err = result;
        f->state = FAM_FAIL;
    }
    if (result == DNS_ERR_SHUTDOWN || result == DNS_ERR_CANCEL)
        return;   /* the owner is tearing down; it does not want to hear back */
    if (--lk->pending == 0 && lk->done)
        lk->done(lk);
}

static void lookup_cb4(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    lookup_answer(arg, 0, result, type == DNS_IPv4_A ? count : 0, ttl, addresses);
}

static void lookup_cb6(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    lookup_answer(arg, 1, result, type == DNS_IPv6_AAAA ? count : 0, ttl, addresses);
}

/* Starts both queries; 0, or -1 when neither could be sent. */
static int lookup_start(struct lookup *lk, struct evdns_base *eb, const char *host, int flags)
{
    memset(&lk->v4, 0, sizeof lk->v4);
    memset(&lk->v6, 0, sizeof lk->v6);
    lk->truncated = 0;
    lk->pending = 2;
    /* The queries run on the loop, never inside these calls, so both are counted first. */
    if (!evdns_base_resolve_ipv4(eb, host, flags, lookup_cb4, lk)) {
        lk->v4.state = FAM_FAIL;
        lk->v4.err = DNS_ERR_UNKNOWN;
        lk->pending--;
    }
    if (!evdns_base_resolve_ipv6(eb, host, flags, lookup_cb6, lk)) {
        lk->v6.state = FAM_FAIL;
        lk->v6.err = DNS_ERR_UNKNOWN;
        lk->pending--;
    }
    return lk->pending > 0 ? 0 : -1;
}

static const char *lookup_error(const struct lookup *lk)
{
    if (lk->v4.state == FAM_FAIL)
        return evdns_err_to_string(lk->v4.err);
    if (lk->v6.state == FAM_FAIL)
        return evdns_err_to_string(lk->v6.err);
    return "no A or AAAA record";
}

static void set_evdns_options(struct evdns_base *eb, uint64_t timeout_ms)
{
    char t[32];
    snprintf(t, sizeof t, "%.3f", (double)timeout_ms / 1000.0);
    evdns_base_set_option(eb, "timeout:", t);
    evdns_base_set_option(eb, "attempts:", "2");
    /* Some service-discovery servers answer in the case they store, not the one asked. */
    evdns_base_set_option(eb, "randomize-case:", "0");
}

static int add_resolvers(struct evdns_base *eb, const struct cfg_dns *dns)
{
    for (size_t i = 0; i < dns->nresolvers; i++)
        if (evdns_base_nameserver_sockaddr_add(eb, (const struct sockaddr *)&dns->resolvers[i],
                                               dns->resolver_lens[i], 0) != 0)
            return -1;
    return 0;
}

static uint64_t query_timeout(const struct cfg_dns *dns)
{
    return dns && dns->timeout_ms ? dns->timeout_ms : MS_DEFAULT_TIMEOUT;
}

/* ---- SRV wire format (RFC 1035, 2782): evdns has no SRV query ------------------------ */

#define T_A 1
#define T_AAAA 28
#define T_SRV 33

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

size_t dns_srv_query(uint8_t *buf, size_t len, uint16_t id, const char *name)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl > 253 || len < 12 + nl + 2 + 4)
        return 0;
    memset(buf, 0, 12);
    buf[0] = (uint8_t)(id >> 8);
    buf[1] = (uint8_t)id;
    buf[2] = 0x01;                  /* RD */
    buf[5] = 1;                     /* QDCOUNT */
    size_t off = 12;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63)
            return 0;
        buf[off++] = (uint8_t)l;
        memcpy(buf + off, p, l);
        off += l;
        p += l;
        if (*p == '.')
            p++;
    }
    buf[off++] = 0;
    buf[off++] = 0;
    buf[off++] = T_SRV;
    buf[off++] = 0;
    buf[off++] = 1;                 /* IN */
    return off;
}

/* Reads the (possibly compressed) name at *off into <out> (dotted, no final dot) and moves
 * *off past it. -1 on a malformed name. */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *out, size_t outlen)
{
    size_t pos = *off, o = 0;
    int jumped = 0, hops = 0;
    for (;;) {
        if (pos >= len)
            return -1;
        uint8_t l = msg[pos];
        if ((l & 0xC0) == 0xC0) {
            if (pos + 1 >= len || ++hops > 32)
                return -1;
            if (!jumped)
                *off = pos + 2;
            jumped = 1;
            pos = (size_t)(l & 0x3F) << 8 | msg[pos + 1];
            continue;
        }
        if (l & 0xC0)
            return -1;
        pos++;
        if (l == 0)
            break;
        if (pos + l > len || o + l + 2 > outlen)
            return -1;
        if (o)
            out[o++] = '.';
        memcpy(out + o, msg + pos, l);
        o += l;
        pos += l;
    }
    out[o] = 0;
    if (!jumped)
        *off = pos;
    return 0;
}

int dns_srv_parse(const uint8_t *msg, size_t len, uint16_t id, struct dns_srv_answer *out)
{
    char name[256];
    memset(out, 0, sizeof *out);
    if (len < 12 || rd16(msg) != id || !(msg[2] & 0x80))
        return -1;
    out->rcode = msg[3] & 0x0F;
    size_t qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8), ar = rd16(msg + 10);
    size_t off = 12;
    for (size_t i = 0; i < qd; i++) {
        if (read_name(msg, len, &off, name, sizeof name) < 0 || off + 4 > len)
            return -1;
        off += 4;
    }
    uint16_t best = UINT16_MAX;
    for (size_t i = 0; i < an + ns + ar; i++) {
        if (read_name(msg, len, &off, name, sizeof name) < 0 || off + 10 > len)
            return -1;
        uint16_t type = rd16(msg + off), cls = rd16(msg + off + 2);
        uint32_t ttl = rd32(msg + off + 4);
        size_t rdlen = rd16(msg + off + 8);
        off += 10;
        if (off + rdlen > len)
            return -1;
        size_t rd = off;
        off += rdlen;
        if (cls != 1)
            continue;
        if (i < an && type == T_SRV && rdlen >= 7) {
            uint16_t prio = rd16(msg + rd);
            if (prio > best)
                continue;
            if (prio < best) {
                best = prio;
                out->nrec = 0;      /* only the most preferred records are used */
            }
            if (out->nrec >= DNS_MAX_ADDRS)
                continue;
            struct dns_srv_rec *r = &out->rec[out->nrec];
            size_t t = rd + 6;
            if (read_name(msg, len, &t, r->target, sizeof r->target) < 0)
                return -1;
            if (!strcmp(r->target, ""))
                continue;           /* "." : the service is decidedly not available */
            r->weight = rd16(msg + rd + 2);
            r->port = rd16(msg + rd + 4);
            r->ttl = ttl;
            if (r->port)
                out->nrec++;
        } else if (i >= an + ns && (type == T_A || type == T_AAAA) && out->nadd < DNS_MAX_ADDRS &&
                   rdlen == (type == T_A ? 4u : 16u)) {
            struct dns_srv_add *a = &out->add[out->nadd++];
            snprintf(a->name, sizeof a->name, "%s", name);
            if (type == T_A)
                set_v4(&a->ss, msg + rd, 0);
            else
                set_v6(&a->ss, msg + rd, 0);
            a->ttl = ttl;
        }
    }
    return 0;
}

/* The nameservers of /etc/resolv.conf (port 53), for SRV queries without resolvers:. */
static size_t resolv_conf_nameservers(struct sockaddr_storage *ns, socklen_t *lens, size_t max)
{
    FILE *f = fopen("/etc/resolv.conf", "r");
    char line[512];
    size_t n = 0;
    if (!f)
        return 0;
    while (n < max && fgets(line, sizeof line, f)) {
        char addr[128], text[160];
        if (sscanf(line, " nameserver %127s", addr) != 1)
            continue;
        snprintf(text, sizeof text, strchr(addr, ':') ? "[%s]:53" : "%s:53", addr);
        if (config_parse_sockaddr(text, &ns[n], &lens[n]) == 0)
            n++;
    }
    fclose(f);
    return n;
}

/* The nameservers SRV queries go to: the configured ones, else resolv.conf's. */
static size_t srv_nameservers(const struct cfg_dns *dns, struct sockaddr_storage *ns,
                              socklen_t *lens, size_t max)
{
    if (dns && dns->nresolvers) {
        size_t n = dns->nresolvers < max ? dns->nresolvers : max;
        memcpy(ns, dns->resolvers, n * sizeof *ns);
        memcpy(lens, dns->resolver_lens, n * sizeof *lens);
        return n;
    }
    return resolv_conf_nameservers(ns, lens, max);
}

/* Unpredictable, so that an off-path answer must guess it (and the port). */
static uint16_t query_id(void)
{
    uint16_t id;
    evutil_secure_rng_get_bytes(&id, sizeof id);
    return id;
}

static evutil_socket_t srv_send(const struct sockaddr_storage *ns, socklen_t nslen, uint16_t id,
                                const char *name)
{
    uint8_t q[300];
    size_t ql = dns_srv_query(q, sizeof q, id, name);
    if (ql == 0)
        return -1;
    evutil_socket_t fd = socket(ns->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)ns, nslen) < 0 || send(fd, q, ql, 0) != (ssize_t)ql) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The answer's records as addresses: a target's addresses from the additional section, or
 * from <looked> (lookups indexed by record, NULL = none). Sets *ttl to the shortest TTL. */
static size_t srv_addresses(const struct dns_srv_answer *a, const struct lookup *looked,
                            struct cfg_addr *out, size_t max, uint32_t *ttl)
{
    size_t k = 0;
    for (size_t r = 0; r < a->nrec; r++) {
        const struct dns_srv_rec *rec = &a->rec[r];
        uint32_t w = rec->weight == 0 ? 1 : rec->weight > 1000 ? 1000 : rec->weight;
        if (rec->ttl < *ttl)
            *ttl = rec->ttl;
        for (size_t i = 0; i < a->nadd && k < max; i++)
            if (strcasecmp(a->add[i].name, rec->target) == 0) {
                out[k].ss = a->add[i].ss;
                set_port(&out[k].ss, rec->port);
                out[k++].weight = w;
                if (a->add[i].ttl < *ttl)
                    *ttl = a->add[i].ttl;
            }
        if (!looked)
            continue;
        const struct family_answer *fams[2] = { &looked[r].v4, &looked[r].v6 };
        for (int f = 0; f < 2; f++) {
            if (fams[f]->state != FAM_OK)
                continue;
            if (fams[f]->ttl < *ttl)
                *ttl = fams[f]->ttl;
            for (size_t i = 0; i < fams[f]->n && k < max; i++) {
                out[k] = fams[f]->a[i];
                set_port(&out[k].ss, rec->port);
                out[k++].weight = w;
            }
        }
    }
    return sort_unique(out, k);
}

static int srv_has_additional(const struct dns_srv_answer *a, size_t r)
{
    for (size_t i = 0; i < a->nadd; i++)
        if (strcasecmp(a->add[i].name, a->rec[r].target) == 0)
            return 1;
    return 0;
}

/* ---- resolution at load time -------------------------------------------------------- */

static void sync_done(struct lookup *lk) { (void)lk; }

static int resolve_with_resolvers(const char *host, uint16_t port, const struct cfg_dns *dns,
                                  struct cfg_addr **out, size_t *n, char *err, size_t errlen)
{
    struct event_base *base = event_base_new();
    struct evdns_base *eb = base ? evdns_base_new(base, 0) : NULL;
    struct lookup lk = { .port = port, .done = sync_done };
    int rc = -1;
    if (!eb) {
        snprintf(err, errlen, "cannot set up a DNS resolver");
        goto out;
    }
    set_evdns_options(eb, query_timeout(dns));
    if (add_resolvers(eb, dns) < 0) {
        snprintf(err, errlen, "cannot use the configured resolvers");
        goto out;
    }
    if (lookup_start(&lk, eb, host, DNS_QUERY_NO_SEARCH) < 0) {
        snprintf(err, errlen, "cannot send a DNS query");
        goto out;
    }
    /* evdns bounds each query (timeout x attempts); the loop ends when both have answered. */
    while (lk.pending > 0)
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            break;
    size_t total = lk.v4.n + lk.v6.n;
    if (lk.pending > 0 || total == 0) {
        snprintf(err, errlen, "%s", lookup_error(&lk));
        goto out;
    }
    if (!(*out = calloc(total, sizeof **out))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(*out, lk.v4.a, lk.v4.n * sizeof lk.v4.a[0]);
    memcpy(*out + lk.v4.n, lk.v6.a, lk.v6.n * sizeof lk.v6.a[0]);
    *n = total;
    rc = 0;
out:
    if (eb)
        evdns_base_free(eb, 1);
    if (base)
        event_base_free(base);
    return rc;
}

int dns_resolve_sync(const char *host, uint16_t port, const struct cfg_dns *dns,
                     struct cfg_addr **addrs, size_t *n, char *err, size_t errlen)
{
    *addrs = NULL;
    *n = 0;
    if (dns && dns->nresolvers)
        return resolve_with_resolvers(host, port, dns, addrs, n, err, errlen);
    char ports[8];
    snprintf(ports, sizeof ports, "%u", (unsigned)port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_NUMERICSERV };
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, ports, &hints, &res);
    if (rc != 0 || !res) {
        if (res)
            freeaddrinfo(res);
        snprintf(err, errlen, "%s", rc ? gai_strerror(rc) : "no address");
        return -1;
    }
    size_t cap = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        cap++;
    struct cfg_addr *a = calloc(cap, sizeof *a);
    size_t k = 0;
    for (struct addrinfo *ai = res; a && ai && k < DNS_MAX_ADDRS; ai = ai->ai_next)
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof a->ss)
            memcpy(&a[k++].ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    if (!a || k == 0) {
        free(a);
        snprintf(err, errlen, "%s", a ? "no IPv4 or IPv6 address" : "out of memory");
        return -1;
    }
    *addrs = a;
    *n = sort_unique(a, k);
    return 0;
}

/* One SRV query, blocking, over the nameservers in turn (two rounds). */
static int srv_query_sync(const char *name, const struct cfg_dns *dns, struct dns_srv_answer *ans,
                          char *err, size_t errlen)
{
    struct sockaddr_storage ns[8];
    socklen_t lens[8];
    size_t nns = srv_nameservers(dns, ns, lens, 8);
    if (nns == 0) {
        snprintf(err, errlen, "no nameserver to ask (resolvers, or /etc/resolv.conf)");
        return -1;
    }
    snprintf(err, errlen, "request timed out");
    for (size_t attempt = 0; attempt < 2 * nns; attempt++) {
        uint16_t id = query_id();
        evutil_socket_t fd = srv_send(&ns[attempt % nns], lens[attempt % nns], id, name);
        if (fd < 0) {
            snprintf(err, errlen, "cannot send the SRV query");
            continue;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint8_t buf[4096];
        ssize_t r = poll(&p, 1, (int)query_timeout(dns)) == 1 ? recv(fd, buf, sizeof buf, 0) : -1;
        close(fd);
        if (r <= 0)
            continue;
        if (dns_srv_parse(buf, (size_t)r, id, ans) < 0) {
            snprintf(err, errlen, "malformed SRV answer");
            continue;
        }
        if (ans->rcode == 0 && ans->nrec > 0)
            return 0;
        snprintf(err, errlen, "%s", ans->rcode == 3 ? "name does not exist" :
                 ans->rcode ? "server failure or refusal" : "no SRV record");
        if (ans->rcode == 0 || ans->rcode == 3)
            return -1;              /* an answer: asking another server would not change it */
    }
    return -1;
}

int dns_resolve_srv_sync(const char *name, const struct cfg_dns *dns, struct cfg_addr **addrs,
                         size_t *n, char *err, size_t errlen)
{
    struct dns_srv_answer *ans = calloc(1, sizeof *ans);
    struct lookup *looked = calloc(DNS_MAX_ADDRS, sizeof *looked);
    struct cfg_addr *out = calloc(DNS_MAX_ADDRS, sizeof *out);
    int rc = -1;
    *addrs = NULL;
    *n = 0;
    if (!ans || !looked || !out) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (srv_query_sync(name, dns, ans, err, errlen) < 0)
        goto done;
    for (size_t r = 0; r < ans->nrec; r++) {
        struct cfg_addr *t = NULL;
        size_t nt = 0;
        char why[128];
        if (srv_has_additional(ans, r))
            continue;
        /* A target the answer gave no address for: its A and AAAA records. */
        if (dns_resolve_sync(ans->rec[r].target, ans->rec[r].port, dns, &t, &nt, why,
                             sizeof why) == 0) {
            looked[r].v4.state = FAM_OK;
            looked[r].v4.n = nt < DNS_MAX_ADDRS ? nt : DNS_MAX_ADDRS;
            looked[r].v4.ttl = UINT32_MAX;
            memcpy(looked[r].v4.a, t, looked[r].v4.n * sizeof *t);
        }
        free(t);
    }
    uint32_t ttl = UINT32_MAX;
    size_t k = srv_addresses(ans, looked, out, DNS_MAX_ADDRS, &ttl);
    if (k == 0) {
        snprintf(err, errlen, "no address for any SRV target");
        goto done;
    }
    *addrs = out;
    *n = k;
    out = NULL;
    rc = 0;
done:
    free(out);
    free(looked);
    free(ans);
    return rc;
}

/* ---- refreshing ---------------------------------------------------------------------- */

struct dns_group {                  /* one upstream with names */
    struct evdns_base *eb;          /* NULL: no nameserver known, names stay as loaded */
    const struct cfg_upstream *up;
    int flags;                      /* evdns query flags */
    struct sockaddr_storage ns[8];  /* for SRV queries */
    socklen_t nslen[8];
    size_t nns;
};

struct dns_name {
    struct dns *d;
    struct dns_group *g;
    size_t u, s;
    const struct cfg_server *srv;
    struct cfg_addr *addrs;         /* the current answer, sorted */
    size_t naddrs;
    struct event *timer;
    struct lookup lk;
    unsigned fails;                 /* refreshes failed in a row */
    int inflight;
    /* SRV: the query in flight, then the lookups of targets without addresses */
    struct event *srv_ev;
    evutil_socket_t srv_fd;
    uint16_t srv_id;
    unsigned srv_try;
    struct dns_srv_answer *srv_ans;
    struct lookup *srv_lk;          /* [DNS_MAX_ADDRS], by record */
    int srv_pending;
};

struct dns {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct dns_group *groups;       /* [nupstreams], eb NULL where unused */
    struct dns_name *names;
    size_t nnames;
    struct event *notify_ev;
    dns_changed_fn changed;
    void *arg;
};

static uint64_t min_refresh(const struct cfg_upstream *up)
{
    return up->dns ? up->dns->min_refresh_ms : MS_DEFAULT_MIN_REFRESH;
}

static uint64_t max_refresh(const struct cfg_upstream *up)
{
    return up->dns ? up->dns->max_refresh_ms : MS_DEFAULT_MAX_REFRESH;
}

static void arm(struct dns_name *n, uint64_t ms)
{
    struct timeval tv = ms_timeval(ms);
    evtimer_add(n->timer, &tv);
}

/* Is <name> in the hosts file? Such names are what getaddrinfo answered from the file,
 * which no DNS server knows. */
static int in_hosts_file(const char *name)
{
    FILE *f = fopen("/etc/hosts", "r");
    char line[1024];
    int found = 0;
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *save = NULL;
        char *tok = strtok_r(line, " \t\r\n", &save);   /* the address */
        while (tok && (tok = strtok_r(NULL, " \t\r\n", &save)))
            if (strcasecmp(tok, name) == 0)
                found = 1;
    }
    fclose(f);
    return found;
}

static void describe(const struct cfg_addr *a, size_t n, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && off + 2 < len; i++) {
        char one[INET6_ADDRSTRLEN + 8];
        dns_format(&a[i].ss, one, sizeof one);
        int w = a[i].weight ? snprintf(buf + off, len - off, "%s%s weight %u", i ? ", " : "", one,
                                       a[i].weight)
                            : snprintf(buf + off, len - off, "%s%s", i ? ", " : "", one);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
}

/* A family that failed keeps what it had; the others take their new answer. */
static size_t merge(const struct dns_name *n, struct cfg_addr *out)
{
    size_t k = 0;
    const struct family_answer *fams[2] = { &n->lk.v4, &n->lk.v6 };
    const int famid[2] = { AF_INET, AF_INET6 };
    for (int f = 0; f < 2; f++) {
        if (fams[f]->state == FAM_FAIL) {
            for (size_t i = 0; i < n->naddrs && k < (size_t)2 * DNS_MAX_ADDRS; i++)
                if (n->addrs[i].ss.ss_family == famid[f])
                    out[k++] = n->addrs[i];
        } else {
            memcpy(out + k, fams[f]->a, fams[f]->n * sizeof fams[f]->a[0]);
            k += fams[f]->n;
        }
    }
    return sort_unique(out, k);
}

/* The end of a refresh: <k> new addresses (0 = failed, <why>), next in <ttl_ms>. */
static void refresh_result(struct dns_name *n, const struct cfg_addr *merged, size_t k,
                           const char *why, uint64_t ttl_ms, int truncated)
{
    struct dns *d = n->d;
    const struct cfg_upstream *up = n->g->up;
    n->inflight = 0;
    if (k == 0) {
        /* Nothing usable: the last good answer stays (a name that vanished is a failure). */
        if (n->fails++ == 0)
            log_warn("upstream %s server %s: DNS refresh failed (%s); keeping its %zu "
                     "address%s", up->name, n->srv->address, why, n->naddrs,
                     n->naddrs == 1 ? "" : "es");
        uint64_t back = min_refresh(up) << (n->fails < 16 ? n->fails : 16);
        arm(n, back < max_refresh(up) ? back : max_refresh(up));
        return;
    }
    if (n->fails)
        log_info("upstream %s server %s: DNS answers again after %u failed refresh%s",
                 up->name, n->srv->address, n->fails, n->fails == 1 ? "" : "es");
    n->fails = 0;
    if (truncated)
        log_warn("upstream %s server %s: more than %d addresses; using the first %d",
                 up->name, n->srv->address, DNS_MAX_ADDRS, DNS_MAX_ADDRS);
    if (k != n->naddrs || memcmp(merged, n->addrs, k * sizeof merged[0]) != 0) {
        struct cfg_addr *a = calloc(k, sizeof *a);
        if (a) {
            char was[512], now[512];
            describe(n->addrs, n->naddrs, was, sizeof was);
            describe(merged, k, now, sizeof now);
            log_info("upstream %s server %s: DNS answer changed: %s (was %s)", up->name,
                     n->srv->address, now, was);
            memcpy(a, merged, k * sizeof *a);
            free(n->addrs);
            n->addrs = a;
            n->naddrs = k;
            event_active(d->notify_ev, 0, 0);
        }
    }
    /* The next refresh when the shortest TTL runs out, within min/max_refresh. */
    if (ttl_ms < min_refresh(up))
        ttl_ms = min_refresh(up);
    if (ttl_ms > max_refresh(up))
        ttl_ms = max_refresh(up);
    arm(n, ttl_ms);
}

static void refresh_done(struct lookup *lk)
{
    struct dns_name *n = lk->owner;
    int failed = lk->v4.state == FAM_FAIL && lk->v6.state == FAM_FAIL;
    struct cfg_addr merged[2 * DNS_MAX_ADDRS];
    size_t k = failed ? 0 : merge(n, merged);
    uint64_t ttl_ms = UINT64_MAX;
    if (lk->v4.state == FAM_OK)
        ttl_ms = (uint64_t)lk->v4.ttl * 1000;
    if (lk->v6.state == FAM_OK && (uint64_t)lk->v6.ttl * 1000 < ttl_ms)
        ttl_ms = (uint64_t)lk->v6.ttl * 1000;
    refresh_result(n, merged, k, lookup_error(lk), ttl_ms, lk->truncated);
}

/* ---- SRV refresh: the query, then lookups of targets without addresses --------------- */

static void srv_close(struct dns_name *n)
{
    if (n->srv_ev) {
        event_free(n->srv_ev);
        n->srv_ev = NULL;
    }
    if (n->srv_fd >= 0) {
        close(n->srv_fd);
        n->srv_fd = -1;
    }
}

static void srv_finish(struct dns_name *n, const char *why)
{
    struct cfg_addr out[DNS_MAX_ADDRS];
    uint32_t ttl = UINT32_MAX;
    size_t k = 0;
    srv_close(n);
    if (!why) {
        for (size_t r = 0; r < n->srv_ans->nrec; r++)
            if (n->srv_lk[r].v4.state == FAM_FAIL && n->srv_lk[r].v6.state == FAM_FAIL)
                why = "a target's address lookup failed";
        if (!why && !(k = srv_addresses(n->srv_ans, n->srv_lk, out, DNS_MAX_ADDRS, &ttl)))
            why = "no address for any SRV target";
    }
    refresh_result(n, out, why ? 0 : k, why, (uint64_t)ttl * 1000, 0);
}

static void srv_target_done(struct lookup *lk)
{
    struct dns_name *n = lk->owner;
    if (--n->srv_pending == 0)
        srv_finish(n, NULL);
}

static void srv_send_next(struct dns_name *n);

static void srv_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_name *n = arg;
    uint8_t buf[4096];
    ssize_t r = (what & EV_READ) ? recv(fd, buf, sizeof buf, 0) : -1;
    struct dns_srv_answer *a = n->srv_ans;
    if (r <= 0 || dns_srv_parse(buf, (size_t)r, n->srv_id, a) < 0 ||
        (a->rcode != 0 && a->rcode != 3)) {
        srv_close(n);
        if (++n->srv_try < 2 * n->g->nns) {
            srv_send_next(n);       /* timeout, garbage, SERVFAIL, REFUSED: the next server */
            return;
        }
        srv_finish(n, r <= 0 ? "request timed out" : "server failure or refusal");
        return;
    }
    srv_close(n);
    if (a->rcode == 3 || a->nrec == 0) {
        srv_finish(n, a->rcode == 3 ? "name does not exist" : "no SRV record");
        return;
    }
    /* Targets the answer gave no address for: their A and AAAA records. */
    memset(n->srv_lk, 0, DNS_MAX_ADDRS * sizeof *n->srv_lk);
    n->srv_pending = 1;
    for (size_t i = 0; i < a->nrec; i++) {
        if (srv_has_additional(a, i))
            continue;
        struct lookup *lk = &n->srv_lk[i];
        lk->port = a->rec[i].port;
        lk->owner = n;
        lk->done = srv_target_done;
        n->srv_pending++;
        if (lookup_start(lk, n->g->eb, a->rec[i].target, DNS_QUERY_NO_SEARCH) < 0)
            n->srv_pending--;
    }
    if (--n->srv_pending == 0)
        srv_finish(n, NULL);
}

static void srv_send_next(struct dns_name *n)
{
    size_t i = n->srv_try % n->g->nns;
    n->srv_id = query_id();
    n->srv_fd = srv_send(&n->g->ns[i], n->g->nslen[i], n->srv_id, n->srv->host);
    if (n->srv_fd < 0 ||
        !(n->srv_ev = event_new(n->d->base, n->srv_fd, EV_READ, srv_read_cb, n))) {
        srv_close(n);
        srv_finish(n, "cannot send the SRV query");
        return;
    }
    uint64_t ms = query_timeout(n->g->up->dns);
    struct timeval tv = ms_timeval(ms);
    event_add(n->srv_ev, &tv);
}

static void refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns_name *n = arg;
    if (n->inflight)
        return;
    n->inflight = 1;
    if (n->srv->is_srv) {
        n->srv_try = 0;
        srv_send_next(n);
        return;
    }
    n->lk.port = n->srv->port;
    n->lk.done = refresh_done;
    n->lk.owner = n;
    if (lookup_start(&n->lk, n->g->eb, n->srv->host, n->g->flags) < 0)
        refresh_done(&n->lk);
}

static void notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct dns *d = arg;
    if (d->changed)
        d->changed(d->arg);
}

static void group_init(struct dns *d, struct dns_group *g, const struct cfg_upstream *up)
{
    g->up = up;
    g->nns = srv_nameservers(up->dns, g->ns, g->nslen, 8);
    if (up->dns && up->dns->nresolvers) {
        g->eb = evdns_base_new(d->base, 0);
        g->flags = DNS_QUERY_NO_SEARCH;
        if (g->eb && add_resolvers(g->eb, up->dns) < 0) {
            evdns_base_free(g->eb, 0);
            g->eb = NULL;
        }
    } else {
        /* /etc/resolv.conf: its nameservers, search list and ndots. */
        g->eb = evdns_base_new(d->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        if (g->eb && evdns_base_count_nameservers(g->eb) == 0) {
            evdns_base_free(g->eb, 0);
            g->eb = NULL;
        }
    }
    if (!g->eb || g->nns == 0) {
        log_warn("upstream %s: no DNS nameserver to ask; its server names keep the addresses "
                 "they had when the configuration was loaded", up->name);
        if (g->eb)
            evdns_base_free(g->eb, 0);
        g->eb = NULL;
        return;
    }
    set_evdns_options(g->eb, query_timeout(up->dns));
}

struct dns *dns_start(struct event_base *base, const struct ferry_config *cfg,
                      dns_changed_fn changed, void *arg)
{
    size_t nnames = 0;
    for (size_t u = 0; u < cfg->nupstreams; u++)
        for (size_t s = 0; s < cfg->upstreams[u].nservers; s++)
            nnames += cfg->upstreams[u].servers[s].is_name;
    if (nnames == 0)
        return NULL;
    struct dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->base = base;
    d->cfg = cfg;
    d->changed = changed;
    d->arg = arg;
    d->groups = calloc(cfg->nupstreams, sizeof *d->groups);
    d->names = calloc(nnames, sizeof *d->names);
    d->notify_ev = event_new(base, -1, 0, notify_cb, d);
    if (!d->groups || !d->names || !d->notify_ev)
        goto fail;
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        const struct cfg_upstream *up = &cfg->upstreams[u];
        int has_names = 0;
        for (size_t s = 0; s < up->nservers; s++)
            has_names |= up->servers[s].is_name;
        if (has_names)
            group_init(d, &d->groups[u], up);
        for (size_t s = 0; s < up->nservers; s++) {
            const struct cfg_server *srv = &up->servers[s];
            if (!srv->is_name)
                continue;
            struct dns_name *n = &d->names[d->nnames++];
            n->d = d;
            n->g = &d->groups[u];
            n->u = u;
            n->s = s;
            n->srv = srv;
            n->srv_fd = -1;
            if (!(n->addrs = calloc(srv->naddrs, sizeof *n->addrs)))
                goto fail;
            memcpy(n->addrs, srv->addrs, srv->naddrs * sizeof *n->addrs);
            n->naddrs = srv->naddrs;
            if (!(n->timer = evtimer_new(base, refresh_cb, n)))
                goto fail;
            if (srv->is_srv && (!(n->srv_ans = calloc(1, sizeof *n->srv_ans)) ||
                                !(n->srv_lk = calloc(DNS_MAX_ADDRS, sizeof *n->srv_lk))))
                goto fail;
            if (!n->g->eb ||
                (!srv->is_srv && !(up->dns && up->dns->nresolvers) && in_hosts_file(srv->host)))
                continue;   /* static until the next reload */
            /* The load-time answer came without a TTL: the first refresh comes soon. */
            arm(n, min_refresh(up));
        }
    }
    return d;
fail:
    log_error("cannot set up DNS refreshing: out of memory");
    dns_stop(d);
    return NULL;
}

void dns_stop(struct dns *d)
{
    if (!d)
        return;
    /* Pending queries are failed with DNS_ERR_SHUTDOWN, which lookup_answer ignores. */
    for (size_t u = 0; d->groups && u < d->cfg->nupstreams; u++)
        if (d->groups[u].eb)
            evdns_base_free(d->groups[u].eb, 1);
    for (size_t i = 0; d->names && i < d->nnames; i++) {
        struct dns_name *n = &d->names[i];
        if (n->timer)
            event_free(n->timer);
        srv_close(n);
        free(n->srv_ans);
        free(n->srv_lk);
        free(n->addrs);
    }
    if (d->notify_ev)
        event_free(d->notify_ev);
    free(d->names);
    free(d->groups);
    free(d);
}

size_t dns_answer(const struct dns *d, const struct ferry_config *cfg, size_t u, size_t s,
                  const struct cfg_addr **addrs)
{
    for (size_t i = 0; d && i < d->nnames; i++)
        if (d->names[i].u == u && d->names[i].s == s) {
            *addrs = d->names[i].addrs;
            return d->names[i].naddrs;
        }
    *addrs = cfg->upstreams[u].servers[s].addrs;
    return cfg->upstreams[u].servers[s].naddrs;
}
