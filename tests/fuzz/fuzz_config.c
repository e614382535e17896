/* fuzz_config — config_load_string over the input. It must never crash or leak; a failure
 * must be reported as "fuzz.yaml:LINE:COLUMN: ..." like every configuration error.
 *
 * Three calls the loader makes are redirected at link time (-Wl,--wrap) so that a run stays
 * fast, deterministic and inside the tree: host names are resolved only when numeric or
 * "localhost" (no DNS traffic: configured dns resolvers are never asked), and certificate
 * files must be regular files below 1 MiB (never /dev/zero, a FIFO or a terminal). */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "dns.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)
#define NAME "fuzz.yaml"

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __real_tls_check_cert_key(const char *cert, const char *key, char *err, size_t errlen);
int __wrap_tls_check_cert_key(const char *cert, const char *key, char *err, size_t errlen);
int __real_dns_resolve_sync(const char *host, uint16_t port, const struct cfg_dns *dns,
                            struct sockaddr_storage **addrs, size_t *n, char *err, size_t errlen);
int __wrap_dns_resolve_sync(const char *host, uint16_t port, const struct cfg_dns *dns,
                            struct sockaddr_storage **addrs, size_t *n, char *err, size_t errlen);

/* Whatever resolvers the input names (any address), the lookup stays the local one. */
int __wrap_dns_resolve_sync(const char *host, uint16_t port, const struct cfg_dns *dns,
                            struct sockaddr_storage **addrs, size_t *n, char *err, size_t errlen)
{
    (void)dns;
    return __real_dns_resolve_sync(host, port, NULL, addrs, n, err, errlen);
}

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res)
{
    struct addrinfo h;
    if (hints)
        h = *hints;
    else {
        memset(&h, 0, sizeof h);
        h.ai_family = AF_UNSPEC;
    }
    if (!node || strcmp(node, "localhost") != 0)
        h.ai_flags |= AI_NUMERICHOST;
    return __real_getaddrinfo(node, service, &h, res);
}

static int small_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < (1 << 20);
}

int __wrap_tls_check_cert_key(const char *cert, const char *key, char *err, size_t errlen)
{
    if (!small_regular_file(cert) || !small_regular_file(key)) {
        snprintf(err, errlen, "fuzz: not a small regular file");
        return -1;
    }
    return __real_tls_check_cert_key(cert, key, err, errlen);
}

/* "NAME:<digits>:<digits>: " */
static int well_formed(const char *e)
{
    size_t n = strlen(NAME), i;
    if (strncmp(e, NAME ":", n + 1) != 0)
        return 0;
    e += n + 1;
    for (int part = 0; part < 2; part++) {
        for (i = 0; e[i] >= '0' && e[i] <= '9'; i++)
            ;
        if (i == 0 || e[i] != ':' || e[0] == '0')
            return 0;
        e += i + 1;
    }
    return e[0] == ' ' && e[1] != '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    memset(err, 'x', sizeof err);
    char *copy = malloc(size ? size : 1);   /* exact size, not NUL-terminated */
    CHECK(copy);
    memcpy(copy, data, size);
    struct ferry_config *cfg = config_load_string(copy, size, NAME, err, sizeof err);
    free(copy);
    if (cfg) {
        CHECK(cfg->nlisteners > 0);
        config_unref(cfg);
        return 0;
    }
    CHECK(memchr(err, '\0', sizeof err) != NULL);
    if (!well_formed(err)) {
        fprintf(stderr, "fuzz_config: malformed error message: [%s]\n", err);
        abort();
    }
    return 0;
}
