/* tls — server-side TLS for listeners (OpenSSL 3).
 *
 * One SSL_CTX per configured certificate. The first is the default: every connection starts
 * on it, and the SNI callback moves it to the context whose leaf certificate matches the
 * requested name (subjectAltName DNS entries with wildcards, or the CN when there is no SAN,
 * as X509_check_host does). All contexts are configured alike (versions, ciphers, ALPN,
 * tickets) because OpenSSL reads some settings from the context the connection ends up on
 * and others from the one it started on.
 *
 * Session resumption. OpenSSL keeps sessions (server-side cache) and calls the ticket-key
 * callback through the context a connection started on, the default one, so sessions resume
 * whatever certificate SNI picked; the session id context is the same on every context so a
 * session is accepted after SSL_set_SSL_CTX too. Ticket keys are ferry's own: random, one
 * current key that encrypts and decrypts and the previous one that only decrypts (a ticket
 * under it is accepted and renewed), so tickets survive one rotation. The keys are read
 * under a read lock on the handshake path and replaced under the write lock by
 * tls_server_rotate_tickets; nothing here runs per request.
 *
 * Errors: every failing call's OpenSSL error queue is read into the message and cleared, so a
 * later SSL_get_error on the same thread never sees a stale entry.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* TLS 1.2: forward secrecy and AEAD only, ECDSA first (cheaper), server's order wins (but for
 * ChaCha20, as below). */
#define DEFAULT_CIPHERS \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* TLS 1.3: AES-128-GCM first, as Mozilla's, BoringSSL's and Go's orders. OpenSSL's own order
 * puts AES-256-GCM-SHA384 first: 14 AES rounds instead of 10 on every record, and a key
 * schedule and transcript on SHA-384, which CPUs with SHA extensions do not accelerate
 * (SHA-256 they do). A client that lists ChaCha20 first (no AES hardware) gets it
 * (SSL_OP_PRIORITIZE_CHACHA). */
#define DEFAULT_CIPHERSUITES \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* Same for every context of every listener: sessions are only ever offered back to the
 * tls_server (cache, ticket keys) that issued them. */
static const unsigned char sid_ctx[] = "ferry";

struct ticket_key {
    unsigned char name[16];     /* sent in the clear in the ticket: which key to use */
    unsigned char aes[32];      /* AES-256-CBC */
    unsigned char hmac[32];     /* HMAC-SHA256 */
};

struct tls_server {
    SSL_CTX **ctxs;             /* [0] is the default */
    size_t nctxs;
    unsigned char *alpn;        /* server preference, wire format (length-prefixed names) */
    size_t alpnlen;
    pthread_rwlock_t lock;      /* guards keys and have_prev */
    struct ticket_key keys[2];  /* [0] current, [1] previous */
    int have_prev;
};

static int ctx_index = -1;      /* SSL_CTX ex_data slot holding the tls_server */
static pthread_once_t ctx_index_once = PTHREAD_ONCE_INIT;

static void make_ctx_index(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* ---- errors ------------------------------------------------------------------------- */

/* The reason of the earliest queued error (the root cause; later ones are its consequences)
 * into <buf>, then empties the queue. System errors give strerror(errno); <fallback> when
 * the queue is empty. A few reasons are reworded for people who are not OpenSSL. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e, first = 0;
    int encrypted = 0;

    while ((e = ERR_get_error())) {
        if (!first)
            first = e;
        if (!ERR_SYSTEM_ERROR(e) && ERR_GET_LIB(e) == ERR_LIB_PEM
            && ERR_GET_REASON(e) == PEM_R_BAD_PASSWORD_READ)
            encrypted = 1;
    }
    if (encrypted)
        snprintf(buf, len, "the key is encrypted (ferry reads unencrypted keys only)");
    else if (!first)
        snprintf(buf, len, "%s", fallback);
    else if (ERR_SYSTEM_ERROR(first))
        snprintf(buf, len, "%s", strerror(ERR_GET_REASON(first)));
    else if (ERR_GET_LIB(first) == ERR_LIB_PEM && ERR_GET_REASON(first) == PEM_R_NO_START_LINE)
        snprintf(buf, len, "no PEM data found");
    else if (ERR_GET_LIB(first) == ERR_LIB_OSSL_DECODER
             && ERR_GET_REASON(first) == ERR_R_UNSUPPORTED)
        snprintf(buf, len, "no PEM private key found");
    else if (ERR_reason_error_string(first))
        snprintf(buf, len, "%s", ERR_reason_error_string(first));
    else
        snprintf(buf, len, "OpenSSL error %lx", first);
    ERR_clear_error();
    return buf;
}

/* ---- certificate and key ------------------------------------------------------------ */

/* Never asks for a passphrase (no terminal prompt from a daemon): encrypted keys fail. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/* Loads the chain <cert> and the key <key> into <ctx> and checks that they match.
 * 0, or -1 with a message naming the file. */
static int load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    char why[256];
    EVP_PKEY *pkey = NULL;
    BIO *bio;

    ERR_clear_error();
    errno = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "cannot load certificate %s: %s", cert,
                 ssl_reason(why, sizeof why, "no certificate found"));
        return -1;
    }
    /* Read the key ourselves rather than with SSL_CTX_use_PrivateKey_file: a key that does
     * not fit the certificate is then told apart from a file that cannot be read. */
    if (!(bio = BIO_new_file(key, "r"))
        || !(pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL))) {
        snprintf(err, errlen, "cannot load private key %s: %s", key,
                 ssl_reason(why, sizeof why, "no private key found"));
        BIO_free(bio);
        return -1;
    }
    BIO_free(bio);
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (!leaf || X509_check_private_key(leaf, pkey) != 1
        || SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        EVP_PKEY_free(pkey);
        snprintf(err, errlen, "private key %s does not match certificate %s", key, cert);
        return -1;
    }
    EVP_PKEY_free(pkey);
    return 0;
}

int tls_check_cert_key(const char *cert, const char *key, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot check %s: %s", cert,
                 ssl_reason(why, sizeof why, "out of memory"));
        return -1;
    }
    int rc = load_pair(ctx, cert, key, err, errlen);
    SSL_CTX_free(ctx);
    return rc;
}

/* Counts the ciphers of <ctx> usable with TLS 1.3 (<tls13>) or with TLS 1.2. */
static int count_ciphers(SSL_CTX *ctx, int tls13)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    int n = 0;
    for (int i = 0; sk && i < sk_SSL_CIPHER_num(sk); i++) {
        int is13 = !strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(sk, i)), "TLSv1.3");
        n += is13 == !!tls13;
    }
    return n;
}

int tls_check_ciphers(const char *list, int tls13, char *err, size_t errlen)
{
    char why[256], name[128];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int rc = -1;

    if (!ctx) {
        snprintf(err, errlen, "%s", ssl_reason(why, sizeof why, "out of memory"));
        return -1;
    }
    if (!tls13) {
        /* OpenSSL's syntax (keywords, !, +, @SECLEVEL): only the result can be checked. */
        if (SSL_CTX_set_cipher_list(ctx, list) == 1 && count_ciphers(ctx, 0) > 0)
            rc = 0;
        else
            snprintf(err, errlen, "%s", ssl_reason(why, sizeof why, "no cipher match"));
        goto out;
    }
    /* OpenSSL ignores unknown TLS 1.3 names: check them one by one. */
    for (const char *p = list, *end; ; p = end + 1) {
        end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= sizeof name) {
            snprintf(err, errlen, "empty or overlong name");
            goto out;
        }
        memcpy(name, p, len);
        name[len] = '\0';
        if (SSL_CTX_set_ciphersuites(ctx, name) != 1 || count_ciphers(ctx, 1) != 1) {
            ERR_clear_error();
            snprintf(err, errlen, "unknown TLS 1.3 ciphersuite '%s'", name);
            goto out;
        }
        if (!end)
            break;
    }
    rc = 0;
out:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

/* ---- callbacks ---------------------------------------------------------------------- */

static struct tls_server *server_of(SSL *ssl)
{
    return SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
}

/* SNI: the first context, in configuration order, whose leaf matches the name; none keeps
 * the default. Runs before the certificate is chosen and before ALPN. */
static int servername_cb(SSL *ssl, int *alert, void *arg)
{
    struct tls_server *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    (void)alert;

    if (!name || t->nctxs < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->nctxs; i++) {
        X509 *leaf = SSL_CTX_get0_certificate(t->ctxs[i]);
        if (X509_check_host(leaf, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1) {
            if (i > 0 && !SSL_set_SSL_CTX(ssl, t->ctxs[i]))
                break;
            ERR_clear_error();
            return SSL_TLSEXT_ERR_OK;
        }
    }
    ERR_clear_error();
    return SSL_TLSEXT_ERR_OK;
}

/* ALPN: the first protocol of the server's list that the client offers. No overlap: no
 * ALPN in the answer, and the connection goes on as HTTP/1.1. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    struct tls_server *t = arg;
    (void)ssl;

    for (size_t i = 0; i < t->alpnlen; i += 1 + (size_t)t->alpn[i]) {
        const unsigned char *want = &t->alpn[i + 1];
        unsigned char wlen = t->alpn[i];
        for (unsigned int j = 0; j < inlen && j + 1u + in[j] <= inlen; j += 1u + in[j]) {
            if (in[j] == wlen && !memcmp(&in[j + 1], want, wlen)) {
                *out = &in[j + 1];
                *outlen = wlen;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int set_mac_key(EVP_MAC_CTX *hctx, unsigned char *key)
{
    static char sha256[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
        OSSL_PARAM_construct_end(),
    };
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* Ticket keys (RFC 5077 layout, as OpenSSL's own): <enc> 1 encrypts a new ticket with the
 * current key; 0 finds the key named in a ticket: 1 = current, 2 = previous (valid, but
 * please issue a new ticket), 0 = unknown (full handshake), -1 = error. */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_server *t = server_of(ssl);
    int rc = -1;

    if (!t || pthread_rwlock_rdlock(&t->lock) != 0)
        return -1;
    if (enc) {
        struct ticket_key *k = &t->keys[0];
        memcpy(key_name, k->name, sizeof k->name);
        if (RAND_bytes(iv, 16) == 1
            && EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1
            && set_mac_key(hctx, k->hmac) == 1)
            rc = 1;
    } else {
        rc = 0;
        for (int i = 0; i < 1 + t->have_prev; i++) {
            struct ticket_key *k = &t->keys[i];
            if (memcmp(key_name, k->name, sizeof k->name) != 0)
                continue;
            rc = EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv) == 1
                 && set_mac_key(hctx, k->hmac) == 1 ? (i == 0 ? 1 : 2) : -1;
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

static int new_key(struct ticket_key *k)
{
    return RAND_bytes(k->name, sizeof k->name) == 1 && RAND_bytes(k->aes, sizeof k->aes) == 1
           && RAND_bytes(k->hmac, sizeof k->hmac) == 1 ? 0 : -1;
}

/* ---- the server --------------------------------------------------------------------- */

/* Configures <ctx> from <cfg> (everything but the certificate). 0, or -1 with <err>. */
static int setup_ctx(struct tls_server *t, SSL_CTX *ctx, const struct cfg_tls *cfg,
                     char *err, size_t errlen)
{
    char why[256];
    uint64_t opts = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                    | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA;
    if (!cfg->session_tickets)
        opts |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, opts);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);

    if (!SSL_CTX_set_min_proto_version(ctx, cfg->min_version == TLS_V1_3 ? TLS1_3_VERSION
                                                                         : TLS1_2_VERSION)) {
        snprintf(err, errlen, "cannot set the TLS version: %s",
                 ssl_reason(why, sizeof why, "unsupported"));
        return -1;
    }
    if (SSL_CTX_set_cipher_list(ctx, cfg->ciphers ? cfg->ciphers : DEFAULT_CIPHERS) != 1) {
        snprintf(err, errlen, "invalid ciphers '%s': %s", cfg->ciphers ? cfg->ciphers
                 : DEFAULT_CIPHERS, ssl_reason(why, sizeof why, "no cipher match"));
        return -1;
    }
    const char *suites = cfg->ciphersuites ? cfg->ciphersuites : DEFAULT_CIPHERSUITES;
    if (SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
        snprintf(err, errlen, "invalid ciphersuites '%s': %s", suites,
                 ssl_reason(why, sizeof why, "no cipher match"));
        return -1;
    }

    if (cfg->session_cache_size) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, (long)cfg->session_cache_size);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    /* Seconds, rounded up; also the TLS 1.3 ticket lifetime hint. */
    SSL_CTX_set_timeout(ctx, (long)((cfg->session_timeout_ms + 999) / 1000));
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1) != 1
        || !SSL_CTX_set_ex_data(ctx, ctx_index, t)) {
        snprintf(err, errlen, "cannot set up TLS: %s",
                 ssl_reason(why, sizeof why, "out of memory"));
        return -1;
    }
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, t);
    return 0;
}

/* The ALPN list in wire format, server's order. */
static int build_alpn(struct tls_server *t, const struct cfg_tls *cfg)
{
    static const char *const def[] = { "h2", "http/1.1" };
    const char *const *names = cfg->nalpn ? (const char *const *)cfg->alpn : def;
    size_t n = cfg->nalpn ? cfg->nalpn : 2, len = 0;

    for (size_t i = 0; i < n; i++)
        len += 1 + strlen(names[i]);
    if (!(t->alpn = malloc(len ? len : 1)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (l == 0 || l > 255)
            return -1;
        t->alpn[t->alpnlen++] = (unsigned char)l;
        memcpy(&t->alpn[t->alpnlen], names[i], l);
        t->alpnlen += l;
    }
    return 0;
}

struct tls_server *tls_server_new(const struct cfg_tls *cfg, char *err, size_t errlen)
{
    struct tls_server *t;

    if (errlen)
        err[0] = '\0';
    if (!cfg || cfg->ncerts == 0) {
        snprintf(err, errlen, "no certificate configured");
        return NULL;
    }
    pthread_once(&ctx_index_once, make_ctx_index);
    if (ctx_index < 0 || !(t = calloc(1, sizeof *t))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (new_key(&t->keys[0]) < 0) {
        snprintf(err, errlen, "cannot make a session ticket key: no random bytes");
        goto fail;
    }
    if (build_alpn(t, cfg) < 0) {
        snprintf(err, errlen, "invalid ALPN protocol list");
        goto fail;
    }
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers; sizeof *p is right */
    if (!(t->ctxs = calloc(cfg->ncerts, sizeof *t->ctxs))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < cfg->ncerts; i++) {
        char why[256];
        if (!(t->ctxs[i] = SSL_CTX_new(TLS_server_method()))) {
            snprintf(err, errlen, "cannot create a TLS context: %s",
                     ssl_reason(why, sizeof why, "out of memory"));
            goto fail;
        }
        t->nctxs = i + 1;
        if (setup_ctx(t, t->ctxs[i], cfg, err, errlen) < 0
            || load_pair(t->ctxs[i], cfg->certs[i].cert, cfg->certs[i].key, err, errlen) < 0)
            goto fail;
    }
    ERR_clear_error();
    return t;
fail:
    ERR_clear_error();
    tls_server_free(t);
    return NULL;
}

void tls_server_free(struct tls_server *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nctxs; i++)
        SSL_CTX_free(t->ctxs[i]);
    free(t->ctxs);
    free(t->alpn);
    OPENSSL_cleanse(t->keys, sizeof t->keys);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

SSL *tls_server_ssl_new(struct tls_server *t)
{
    SSL *ssl = SSL_new(t->ctxs[0]);
    if (!ssl)
        ERR_clear_error();
    return ssl;
}

int tls_negotiated_h2(const SSL *ssl)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && !memcmp(p, "h2", 2);
}

void tls_server_rotate_tickets(struct tls_server *t)
{
    struct ticket_key k;
    if (new_key(&k) < 0) {          /* no entropy: keep the current key rather than none */
        ERR_clear_error();
        return;
    }
    if (pthread_rwlock_wrlock(&t->lock) != 0) {
        OPENSSL_cleanse(&k, sizeof k);
        return;
    }
    t->keys[1] = t->keys[0];
    t->keys[0] = k;
    t->have_prev = 1;
    pthread_rwlock_unlock(&t->lock);
    OPENSSL_cleanse(&k, sizeof k);
}

/* ---- client side (upstream TLS) ------------------------------------------------------ */

/* One per TLS upstream, shared by every worker. Sessions are not kept here: OpenSSL gives
 * each new one to the on_session callback of the connection that received it (TLS 1.3
 * sends them after the handshake), and the caller keeps it per server and worker. */
struct tls_client {
    SSL_CTX *ctx;
    const struct cfg_upstream_tls *cfg;
    tls_session_fn on_session;
};

static int ssl_app_index = -1;  /* SSL ex_data slot: the caller's connection */
static pthread_once_t ssl_app_once = PTHREAD_ONCE_INIT;

static void make_ssl_app_index(void)
{
    ssl_app_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static int client_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_client *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    void *app = SSL_get_ex_data(ssl, ssl_app_index);
    if (!t || !t->on_session || !app || !SSL_SESSION_is_resumable(sess))
        return 0;
    t->on_session(app, sess);
    return 1;     /* the callback took our reference */
}

int tls_check_ca_file(const char *path, char *err, size_t errlen)
{
    char why[256];
    X509_STORE *st = X509_STORE_new();
    ERR_clear_error();
    errno = 0;
    if (!st || X509_STORE_load_file(st, path) != 1) {
        snprintf(err, errlen, "cannot load CA file %s: %s", path,
                 ssl_reason(why, sizeof why, "no certificate found"));
        X509_STORE_free(st);
        return -1;
    }
    X509_STORE_free(st);
    return 0;
}

struct tls_client *tls_client_new(const struct cfg_upstream_tls *cfg, enum upstream_protocol proto,
                                  tls_session_fn on_session, char *err, size_t errlen)
{
    char why[256];
    pthread_once(&ctx_index_once, make_ctx_index);
    pthread_once(&ssl_app_once, make_ssl_app_index);
    struct tls_client *t = calloc(1, sizeof *t);
    if (!t || !(t->ctx = SSL_CTX_new(TLS_client_method()))) {
        snprintf(err, errlen, "cannot create a TLS client context: %s",
                 ssl_reason(why, sizeof why, "out of memory"));
        free(t);
        return NULL;
    }
    t->cfg = cfg;
    t->on_session = on_session;
    SSL_CTX_set_ex_data(t->ctx, ctx_index, t);
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Offered in this order: a backend that follows the client's order (nginx's default)
     * picks AES-128-GCM rather than OpenSSL's first, AES-256-GCM-SHA384. */
    SSL_CTX_set_ciphersuites(t->ctx, DEFAULT_CIPHERSUITES);
    ERR_clear_error();
    if (cfg->verify) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        int ok = cfg->ca_file ? SSL_CTX_load_verify_file(t->ctx, cfg->ca_file)
                              : SSL_CTX_set_default_verify_paths(t->ctx);
        if (ok != 1) {
            snprintf(err, errlen, "cannot load CA file %s: %s",
                     cfg->ca_file ? cfg->ca_file : "(system default)",
                     ssl_reason(why, sizeof why, "no certificate found"));
            goto fail;
        }
    } else
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_NONE, NULL);
    if (cfg->cert && load_pair(t->ctx, cfg->cert, cfg->key, err, errlen) < 0)
        goto fail;
    /* Wire format: length-prefixed names. */
    static const unsigned char alpn_h2[] = "\x02h2";
    static const unsigned char alpn_h1[] = "\x08http/1.1";
    static const unsigned char alpn_auto[] = "\x02h2\x08http/1.1";
    const unsigned char *alpn = proto == PROTO_H2 ? alpn_h2 : proto == PROTO_AUTO ? alpn_auto : alpn_h1;
    size_t alpnlen = proto == PROTO_H2 ? 3 : proto == PROTO_AUTO ? 12 : 9;
    if (SSL_CTX_set_alpn_protos(t->ctx, alpn, (unsigned)alpnlen) != 0) {
        snprintf(err, errlen, "cannot set ALPN: %s", ssl_reason(why, sizeof why, "unknown"));
        goto fail;
    }
    if (cfg->session_reuse) {
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(t->ctx, client_new_session_cb);
    } else {
        SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(t->ctx, SSL_OP_NO_TICKET);
    }
    return t;
fail:
    SSL_CTX_free(t->ctx);
    free(t);
    return NULL;
}

void tls_client_free(struct tls_client *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ctx);
    free(t);
}

SSL *tls_client_ssl_new(struct tls_client *t, const char *host, SSL_SESSION *session, void *app)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl)
        return NULL;
    const char *name = t->cfg->server_name ? t->cfg->server_name : host;
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
    /* RFC 6066: no IP literals in SNI. An address is verified against the certificate's
     * IP entries instead of a DNS name. */
    if ((!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1) ||
        (t->cfg->verify && (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                                  : SSL_set1_host(ssl, name)) != 1)) {
        ERR_clear_error();
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_ex_data(ssl, ssl_app_index, app);
    if (session)
        SSL_set_session(ssl, session);
    return ssl;
}

void tls_client_ssl_detach(SSL *ssl)
{
    SSL_set_ex_data(ssl, ssl_app_index, NULL);
}

const char *tls_client_failure(SSL *ssl, char *buf, size_t len)
{
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        ERR_clear_error();
        snprintf(buf, len, "certificate verification failed: %s", X509_verify_cert_error_string(v));
        return buf;
    }
    return ssl_reason(buf, len, "handshake failed");
}
