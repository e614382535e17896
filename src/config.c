/* config — YAML file -> immutable configuration generation: the generic machinery.
 *
 * Like nginx's ngx_command_t, every mapping kind (top level, listener, route, upstream,
 * server) is described by one table of fields (config_schema.c): key, type, offset into the
 * struct, default, bounds, allowed names, flags. One generic walker, config_walk(), applies
 * the defaults, looks every key up in the table, rejects unknown, duplicate and
 * not-yet-supported keys, converts and range-checks the value and stores it at the offset.
 * Keys whose value is a structure (listeners, routes, servers...) have a T_CUSTOM parser
 * that calls the walker again.
 *
 * Errors: the first one found wins; it reads "PATH:LINE:COL: what; expected what" from the
 * offending node's start mark, and loading stops. The partly built generation is then freed
 * by config_unref, which copes with any half-filled state (arrays are calloc'd and their
 * counts set before they are filled).
 */
#include "config_schema.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ------------------------------------------------------------------------- */

int config_failm(struct config_ctx *c, yaml_mark_t m, const char *fmt, ...)
{
    if (c->failed || !c->err || c->errlen == 0) {
        c->failed = 1;
        return -1;
    }
    c->failed = 1;
    int n = snprintf(c->err, c->errlen, "%s:%zu:%zu: ", c->name, m.line + 1, m.column + 1);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int config_oom(struct config_ctx *c, yaml_node_t *n)
{
    return config_fail(c, n, "out of memory; expected enough memory for the configuration");
}

/* ---- scalar forms ------------------------------------------------------------------- */

/* Leading decimal digits of <s> (at least one) into <out>; <end> gets the rest. */
static int parse_digits(const char *s, const char **end, uint64_t *out)
{
    uint64_t n = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (p == s)
        return -1;
    *end = p;
    *out = n;
    return 0;
}

int config_parse_uint(const char *s, uint64_t *out)
{
    const char *end;
    return parse_digits(s, &end, out) < 0 || *end ? -1 : 0;
}

int config_parse_duration(const char *s, uint64_t *ms)
{
    static const struct { const char *unit; uint64_t mult; } units[] = {
        { "ms", 1 }, { "s", MS_S }, { "m", MS_M }, { "h", MS_H }, { "d", MS_D },
    };
    uint64_t n;
    const char *end;
    if (!s || parse_digits(s, &end, &n) < 0)
        return -1;
    if (*end == '\0') {             /* a bare number: only 0 is unambiguous */
        if (n != 0)
            return -1;
        *ms = 0;
        return 0;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (n > UINT64_MAX / units[i].mult)
                return -1;
            *ms = n * units[i].mult;
            return 0;
        }
    }
    return -1;
}

int config_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n, mult = 1;
    const char *end;
    if (!s || parse_digits(s, &end, &n) < 0)
        return -1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = KIB; break;
    case 'm': case 'M': mult = MIB; break;
    case 'g': case 'G': mult = 1024 * MIB; break;
    default: return -1;
    }
    if (*end && end[1])
        return -1;
    if (n > UINT64_MAX / mult)
        return -1;
    *bytes = n * mult;
    return 0;
}

int config_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port, int *bracketed)
{
    const char *h = s, *colon;
    size_t hlen;
    *bracketed = 0;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        *bracketed = 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return -1;              /* an IPv6 address needs brackets */
    }
    if (hlen == 0 || hlen >= hostsz)
        return -1;
    uint64_t p;
    if (config_parse_uint(colon + 1, &p) < 0 || p == 0 || p > 65535)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int config_same_sockaddr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port
           && !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr);
}

int config_parse_sockaddr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    uint16_t port;
    int bracketed;
    if (!s || config_split_hostport(s, host, sizeof host, &port, &bracketed) < 0)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (bracketed) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof *sin6;
        return 0;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    if (strcmp(host, "*") == 0)
        sin->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return -1;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    *len = sizeof *sin;
    return 0;
}

/* Largest unit that divides <ms> exactly, for messages: 30d, 75s, 1500ms. */
static const char *fmt_duration(uint64_t ms, char *buf, size_t len)
{
    static const struct { const char *unit; uint64_t mult; } u[] = {
        { "d", MS_D }, { "h", MS_H }, { "m", MS_M }, { "s", MS_S },
    };
    for (size_t i = 0; ms && i < sizeof u / sizeof u[0]; i++)
        if (ms % u[i].mult == 0) {
            snprintf(buf, len, "%llu%s", (unsigned long long)(ms / u[i].mult), u[i].unit);
            return buf;
        }
    snprintf(buf, len, ms ? "%llums" : "%llu", (unsigned long long)ms);
    return buf;
}

const char *config_fmt_size(uint64_t b, char *buf, size_t len)
{
    const char *unit = "";
    if (b && b % MIB == 0) { b /= MIB; unit = "m"; }
    else if (b && b % KIB == 0) { b /= KIB; unit = "k"; }
    snprintf(buf, len, "%llu%s", (unsigned long long)b, unit);
    return buf;
}

static const char *fmt_value(enum ftype t, uint64_t v, char *buf, size_t len)
{
    if (t == T_DURATION)
        return fmt_duration(v, buf, len);
    if (t == T_SIZE)
        return config_fmt_size(v, buf, len);
    snprintf(buf, len, "%llu", (unsigned long long)v);
    return buf;
}

/* ---- YAML node helpers -------------------------------------------------------------- */

static const char *kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a sequence";
    default: return "a scalar";
    }
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *config_scalar(struct config_ctx *c, yaml_node_t *n, const char *key, const char *expect)
{
    if (n->type != YAML_SCALAR_NODE) {
        config_fail(c, n, "'%s' is %s; expected %s", key, kind(n), expect);
        return NULL;
    }
    if (is_null(n)) {
        config_fail(c, n, "'%s' has no value; expected %s", key, expect);
        return NULL;
    }
    const char *s = (const char *)n->data.scalar.value;
    if (strlen(s) != n->data.scalar.length) {
        config_fail(c, n, "'%s' contains a NUL byte; expected %s", key, expect);
        return NULL;
    }
    return s;
}

int config_need(struct config_ctx *c, yaml_node_t *n, yaml_node_type_t type, const char *key,
                const char *expect)
{
    if (n->type == type)
        return 0;
    return config_fail(c, n, "'%s' is %s; expected %s", key,
                       is_null(n) ? "empty" : kind(n), expect);
}

size_t config_seq_len(const yaml_node_t *n)
{
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *config_seq_item(struct config_ctx *c, yaml_node_t *n, size_t i)
{
    return yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
}

yaml_node_t *config_map_get(struct config_ctx *c, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        if (k && k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
            return yaml_document_get_node(c->doc, p->value);
    }
    return NULL;
}

/* ---- the generic walker ------------------------------------------------------------- */

static void store(void *base, const struct field *f, uint64_t v)
{
    char *p = (char *)base + f->off;
    if (f->width == sizeof(uint64_t)) {
        memcpy(p, &v, sizeof v);
    } else if (f->width == sizeof(uint32_t)) {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, sizeof x);
    }
}

static int set_string(struct config_ctx *c, yaml_node_t *n, void *base, const struct field *f,
                      const char *s)
{
    char **slot = (char **)((char *)base + f->off);
    free(*slot);
    *slot = NULL;
    if (s && !(*slot = strdup(s)))
        return config_oom(c, n);
    return 0;
}

static void apply_defaults(const struct schema *s, void *base)
{
    for (size_t i = 0; i < s->nfields; i++) {
        const struct field *f = &s->fields[i];
        if (f->type == T_STRING)
            *(char **)((char *)base + f->off) = f->sdef ? strdup(f->sdef) : NULL;
        else if (f->width)
            store(base, f, f->def);
    }
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];
    if (lb >= 64 || la >= 64)
        return 64;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int unknown_key(struct config_ctx *c, yaml_node_t *k, const struct schema *s, const char *key)
{
    const char *best = NULL;
    size_t bestd = 3;               /* suggest only close spellings */
    char list[768] = "";
    size_t used = 0;
    for (size_t i = 0; i < s->nfields; i++) {
        const struct field *f = &s->fields[i];
        if (f->type == T_UNSUPPORTED)
            continue;
        size_t d = edit_distance(key, f->key);
        if (d < bestd) { bestd = d; best = f->key; }
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", f->key);
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    if (best)
        return config_fail(c, k, "unknown key '%s' in %s; expected '%s'", key, s->what, best);
    return config_fail(c, k, "unknown key '%s' in %s; expected one of: %s", key, s->what, list);
}

/* What a value of field <f> should look like, for messages: "an integer in 0..10". */
static void describe(const struct field *f, char *buf, size_t len)
{
    char b1[32], b2[32];
    size_t used = 0;

    switch (f->type) {
    case T_BOOL:
        snprintf(buf, len, "true or false");
        break;
    case T_UINT:
        snprintf(buf, len, "an integer in %llu..%llu",
                 (unsigned long long)f->min, (unsigned long long)f->max);
        break;
    case T_DURATION:
        snprintf(buf, len, "a duration like 75s (units ms, s, m, h, d) in %s..%s",
                 fmt_duration(f->min, b1, sizeof b1), fmt_duration(f->max, b2, sizeof b2));
        break;
    case T_SIZE:
        if (f->max == NO_MAX)
            snprintf(buf, len, "a size like 512, 8k, 1m or 1g");
        else
            snprintf(buf, len, "a size like 512, 8k, 1m or 1g in %s..%s",
                     config_fmt_size(f->min, b1, sizeof b1),
                     config_fmt_size(f->max, b2, sizeof b2));
        break;
    case T_ENUM:
        buf[0] = '\0';
        for (size_t i = 0; f->names[i] && (!f->supported || i < f->supported) && used < len; i++)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? " | "
                                     : f->supported == 1 ? "" : "one of ", f->names[i]);
        break;
    default:
        snprintf(buf, len, "%s", f->flags & F_OFF_NULL ? "a path, stderr or off" : "a string");
        break;
    }
}

/* Converts, checks and stores the value <v> of field <f> (not T_UNSUPPORTED) into <base>. */
static int parse_value(struct config_ctx *c, const struct field *f, yaml_node_t *v, void *base)
{
    char expect[320], b1[32], b2[32], b3[32];
    const char *s;
    uint64_t n = 0;

    if (f->type == T_CUSTOM)
        return f->parse(c, v, base);
    describe(f, expect, sizeof expect);
    if (!(s = config_scalar(c, v, f->key, expect)))
        return -1;

    switch (f->type) {
    case T_BOOL:
        if (strcmp(s, "true") != 0 && strcmp(s, "false") != 0)
            return config_fail(c, v, "invalid boolean '%s' for %s; expected %s", s, f->key, expect);
        store(base, f, s[0] == 't');
        return 0;
    case T_UINT:
    case T_DURATION:
    case T_SIZE: {
        static const char *const what[] = { [T_UINT] = "integer", [T_DURATION] = "duration",
                                            [T_SIZE] = "size" };
        int bad = f->type == T_UINT ? config_parse_uint(s, &n)
                : f->type == T_DURATION ? config_parse_duration(s, &n) : config_parse_size(s, &n);
        if (bad)
            return config_fail(c, v, "invalid %s '%s' for %s; expected %s",
                               what[f->type], s, f->key, expect);
        if (n < f->min || n > f->max)
            return config_fail(c, v, "%s %s is out of range; expected %s..%s", f->key,
                               fmt_value(f->type, n, b3, sizeof b3),
                               fmt_value(f->type, f->min, b1, sizeof b1),
                               fmt_value(f->type, f->max, b2, sizeof b2));
        store(base, f, n);
        return 0;
    }
    case T_ENUM:
        for (size_t i = 0; f->names[i]; i++) {
            if (strcmp(s, f->names[i]) != 0)
                continue;
            if (f->supported && i >= f->supported)
                return config_fail(c, v, "%s '%s' is not supported yet; expected %s",
                                   f->key, s, expect);
            store(base, f, i);
            return 0;
        }
        return config_fail(c, v, "invalid %s '%s'; expected %s", f->key, s, expect);
    default: {                                        /* T_STRING */
        const char *why = *s ? (f->check ? f->check(s) : NULL) : "a non-empty string";
        if (why)
            return config_fail(c, v, "invalid %s '%s'; expected %s", f->key, s, why);
        return set_string(c, v, base, f, (f->flags & F_OFF_NULL) && !strcmp(s, "off") ? NULL : s);
    }
    }
}

int config_walk(struct config_ctx *c, yaml_node_t *map, const struct schema *s, const char *label,
                void *base)
{
    uint64_t seen = 0;

    apply_defaults(s, base);
    if (map->type != YAML_MAPPING_NODE)
        return config_fail(c, map, "%s is %s; expected a mapping", label,
                           is_null(map) ? "empty" : kind(map));
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        if (k->type != YAML_SCALAR_NODE)
            return config_fail(c, k, "a key in %s is %s; expected a key name", label, kind(k));
        const char *key = (const char *)k->data.scalar.value;
        size_t i;
        for (i = 0; i < s->nfields && strcmp(s->fields[i].key, key) != 0; i++)
            ;
        if (i == s->nfields)
            return unknown_key(c, k, s, key);
        const struct field *f = &s->fields[i];
        if (seen & (1ULL << i))
            return config_fail(c, k, "duplicate key '%s' in %s; expected each key at most once",
                               key, label);
        seen |= 1ULL << i;
        if (f->type == T_UNSUPPORTED)
            return config_fail(c, k, "key '%s' is not supported by this version of ferry yet; "
                               "expected it to be removed (reserved for a later version)", key);
        if (parse_value(c, f, v, base) < 0)
            return -1;
        if (f->has_off)
            *(int *)((char *)base + f->has_off) = 1;
    }
    for (size_t i = 0; i < s->nfields; i++) {
        const struct field *f = &s->fields[i];
        if ((f->flags & F_REQUIRED) && !(seen & (1ULL << i)))
            return config_fail(c, map, "%s is missing required key '%s'; expected %s",
                               label, f->key, f->expect ? f->expect : "a value");
    }
    return 0;
}

/* ---- load --------------------------------------------------------------------------- */

static int yaml_error(struct config_ctx *c, yaml_parser_t *p)
{
    yaml_mark_t m = p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        m.line = 0;
        m.column = 0;
        return config_failm(c, m, "cannot read YAML: %s at byte %zu; expected UTF-8 text",
                            p->problem ? p->problem : "error", p->problem_offset);
    }
    if (p->error == YAML_MEMORY_ERROR)
        return config_failm(c, m, "out of memory; expected enough memory for the configuration");
    if (p->context)             /* e.g. "while parsing a flow sequence" + where it started */
        return config_failm(c, m, "YAML syntax error: %s %s started at line %zu column %zu; "
                            "expected valid YAML", p->problem, p->context,
                            p->context_mark.line + 1, p->context_mark.column + 1);
    return config_failm(c, m, "YAML syntax error: %s; expected valid YAML",
                        p->problem ? p->problem : "unknown");
}

#define EXPECT_ROOT "a mapping with listeners and upstreams"

static struct ferry_config *load(yaml_parser_t *parser, const char *name, char *err, size_t errlen)
{
    struct config_ctx c = { .name = name, .err = err, .errlen = errlen };
    yaml_document_t doc, extra;
    yaml_mark_t none = { 0, 0, 0 };
    yaml_node_t *root;

    if (err && errlen)
        err[0] = '\0';
    if (!yaml_parser_load(parser, &doc)) {
        yaml_error(&c, parser);
        return NULL;
    }
    c.doc = &doc;
    if (!(c.cfg = calloc(1, sizeof *c.cfg)) || !(c.cfg->path = strdup(name))) {
        config_failm(&c, none, "out of memory; expected enough memory for the configuration");
        goto out;
    }
    c.cfg->refs = 1;
    if (!(root = yaml_document_get_root_node(&doc))) {
        config_failm(&c, none, "the configuration is empty; expected %s", EXPECT_ROOT);
        goto out;
    }
    if (is_null(root)) {
        config_fail(&c, root, "the configuration is empty; expected %s", EXPECT_ROOT);
        goto out;
    }
    if (config_walk(&c, root, &config_root_schema, "the configuration", c.cfg) < 0
        || config_resolve_routes(&c, root) < 0)
        goto out;
    if (c.cfg->workers == 0)                        /* absent: same as "auto" */
        c.cfg->workers = config_cpu_count();
    if (!yaml_parser_load(parser, &extra)) {
        yaml_error(&c, parser);
        goto out;
    }
    if (yaml_document_get_root_node(&extra))
        config_failm(&c, extra.start_mark, "a second YAML document; expected exactly one document");
    yaml_document_delete(&extra);
out:
    yaml_document_delete(&doc);
    if (c.failed) {
        config_unref(c.cfg);
        return NULL;
    }
    return c.cfg;
}

struct ferry_config *config_load_string(const char *yaml, size_t len, const char *name,
                                        char *err, size_t errlen)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    struct ferry_config *cfg = load(&parser, name, err, errlen);
    yaml_parser_delete(&parser);
    return cfg;
}

struct ferry_config *config_load(const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s; expected a readable configuration file",
                 path, strerror(errno));
        return NULL;
    }
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    yaml_parser_set_input_file(&parser, f);
    struct ferry_config *cfg = load(&parser, path, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    return cfg;
}

struct ferry_config *config_ref(struct ferry_config *cfg)
{
    __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

static void free_listener(struct cfg_listener *l)
{
    free(l->name);
    for (size_t i = 0; i < l->naddrs; i++)
        free(l->addrs[i].text);
    free(l->addrs);
    free(l->access_log);
    for (size_t i = 0; i < l->nroutes; i++) {
        free(l->routes[i].host);
        free(l->routes[i].path);
        free(l->routes[i].upstream_name);
    }
    free(l->routes);
    if (l->tls) {
        for (size_t i = 0; i < l->tls->ncerts; i++) {
            free(l->tls->certs[i].cert);
            free(l->tls->certs[i].key);
        }
        free(l->tls->certs);
        for (size_t i = 0; i < l->tls->nalpn; i++)
            free(l->tls->alpn[i]);
        free(l->tls->alpn);
        free(l->tls->ciphers);
        free(l->tls->ciphersuites);
        free(l->tls);
    }
}

void config_unref(struct ferry_config *cfg)
{
    if (!cfg || __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        free_listener(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        struct cfg_upstream *u = &cfg->upstreams[i];
        for (size_t j = 0; j < u->nservers; j++) {
            free(u->servers[j].address);
            free(u->servers[j].host);
            free(u->servers[j].addrs);
        }
        if (u->dns) {
            free(u->dns->resolvers);
            free(u->dns->resolver_lens);
            free(u->dns);
        }
        free(u->servers);
        free(u->name);
        free(u->hash_key);
        if (u->health) {
            free(u->health->path);
            free(u->health->method);
            free(u->health->host);
            free(u->health->status);
            free(u->health->body);
            free(u->health->service);
            free(u->health);
        }
        free(u->outlier);
        if (u->tls) {
            free(u->tls->server_name);
            free(u->tls->ca_file);
            free(u->tls->cert);
            free(u->tls->key);
            free(u->tls);
        }
    }
    free(cfg->upstreams);
    if (cfg->admin)
        free(cfg->admin->addr.text);
    free(cfg->admin);
    free(cfg->path);
    free(cfg->error_log);
    free(cfg->pid_file);
    free(cfg);
}

struct cfg_upstream *config_find_upstream(const struct ferry_config *cfg, const char *name)
{
    for (size_t i = 0; cfg && name && i < cfg->nupstreams; i++)
        if (strcmp(cfg->upstreams[i].name, name) == 0)
            return &cfg->upstreams[i];
    return NULL;
}
