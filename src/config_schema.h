/* config_schema — internals shared by config.c (the generic walker, scalar forms, loading)
 * and config_schema.c (the tables of keys and the parsers of structured values). Not part of
 * the public interface: only those two files include it.
 */
#ifndef FERRY_CONFIG_SCHEMA_H
#define FERRY_CONFIG_SCHEMA_H

#include <yaml.h>

#include "config.h"

#define MS_S 1000ULL
#define MS_M (60 * MS_S)
#define MS_H (60 * MS_M)
#define MS_D (24 * MS_H)
#define MAX_DURATION (30 * MS_D)
#define KIB 1024ULL
#define MIB (1024 * KIB)
#define NO_MAX UINT64_MAX

/* State of one load; passed to every parser. */
struct config_ctx {
    const char *name;           /* path or name used in messages */
    yaml_document_t *doc;
    struct ferry_config *cfg;
    char *err;
    size_t errlen;
    int failed;
    size_t cur_listener;        /* index of the listener being parsed (listen checks) */
};

/* How a field's value is parsed and stored. */
enum ftype {
    T_BOOL,         /* true | false, stored as int */
    T_UINT,         /* decimal integer in min..max */
    T_DURATION,     /* config_parse_duration, milliseconds in min..max */
    T_SIZE,         /* config_parse_size, bytes in min..max */
    T_ENUM,         /* one of names[], stored as its index */
    T_STRING,       /* non-empty string, strdup'd; optional check() */
    T_CUSTOM,       /* parse() does everything */
    T_UNSUPPORTED,  /* reserved for a later version: always an error */
};

enum { F_REQUIRED = 1, F_OFF_NULL = 2 /* T_STRING: "off" stores NULL */ };

/* One key of one mapping kind: the unit of the schema tables (cf. nginx ngx_command_t). */
struct field {
    const char *key;
    enum ftype type;
    size_t off, width;          /* where and how wide the value is stored */
    uint64_t def, min, max;     /* numeric default and bounds */
    const char *sdef;           /* T_STRING default */
    const char *const *names;   /* T_ENUM: NULL-terminated */
    size_t supported;           /* T_ENUM: only the first N names work yet (0 = all) */
    int (*parse)(struct config_ctx *, yaml_node_t *, void *base);      /* T_CUSTOM */
    const char *(*check)(const char *s);  /* T_STRING: NULL if fine, else what is expected */
    const char *expect;         /* T_CUSTOM: what the value should be */
    unsigned flags;
    size_t has_off;             /* if non-zero: an int set to 1 when the key is present */
};

/* A mapping kind: its name in messages and its fields (at most 64). */
struct schema {
    const char *what;           /* "listener", "upstream"... for messages */
    const struct field *fields;
    size_t nfields;
};


/* Records the first error as "NAME:LINE:COL: message" at mark <m>; later calls are ignored.
 * Always returns -1, so parsers can `return config_fail(...)`. */
int config_failm(struct config_ctx *c, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A NULL node (a key looked up but absent) reports at 1:1 rather than crash. */
#define config_fail(c, node, ...) \
    config_failm((c), (node) ? (node)->start_mark : (yaml_mark_t){ 0, 0, 0 }, __VA_ARGS__)
int config_oom(struct config_ctx *c, yaml_node_t *n);

int config_parse_uint(const char *s, uint64_t *out);        /* decimal digits only */
/* "host:port" or "[v6]:port" -> <host> without brackets, port 1..65535. */
int config_split_hostport(const char *s, char *host, size_t hostsz, uint16_t *port, int *bracketed);
const char *config_fmt_size(uint64_t b, char *buf, size_t len);    /* 8192 -> "8k" */

/* The text of scalar <n>, or NULL after an error naming <key> and <expect> (not a scalar,
 * null/empty, embedded NUL). */
const char *config_scalar(struct config_ctx *c, yaml_node_t *n, const char *key, const char *expect);
/* 0 if <n> has node type <type>, else -1 with a "wrong type" error. */
int config_need(struct config_ctx *c, yaml_node_t *n, yaml_node_type_t type, const char *key,
                const char *expect);
size_t config_seq_len(const yaml_node_t *n);
yaml_node_t *config_seq_item(struct config_ctx *c, yaml_node_t *n, size_t i);
yaml_node_t *config_map_get(struct config_ctx *c, yaml_node_t *map, const char *key);  /* value or NULL */

/* Walks mapping <map> against schema <s>, filling <base> (<label> names it in messages).
 * Defaults are applied first, so even on error every string field is owned by <base>. */
int config_walk(struct config_ctx *c, yaml_node_t *map, const struct schema *s, const char *label,
                void *base);

/* config_schema.c */
extern const struct schema config_root_schema;
uint32_t config_cpu_count(void);
/* After the walk: points every route at its upstream, or fails at the route's upstream. */
int config_resolve_routes(struct config_ctx *c, yaml_node_t *root);

#endif
