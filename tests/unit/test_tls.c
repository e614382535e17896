/* Unit tests for tls: certificate and key checks with their messages, cipher checks, and
 * real handshakes between an OpenSSL client and tls_server_ssl_new over an in-memory BIO
 * pair: ALPN by the server's preference, SNI choosing the certificate, session resumption
 * by tickets and by the server-side cache for TLS 1.2 and 1.3, across a ticket-key
 * rotation. Certificates: tests/certs (see make.sh there); run from the top of the tree. */
#include <check.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls.h"

#define CERTS "tests/certs/"

static char err[512];

/* ---- certificate and key checks ------------------------------------------------------- */

START_TEST(test_check_cert_key)
{
    static const struct { const char *cert, *key, *msg; } bad[] = {
        { CERTS "nope.crt", CERTS "localhost.key",
          "cannot load certificate " CERTS "nope.crt: No such file or directory" },
        { CERTS "localhost.crt", CERTS "nope.key",
          "cannot load private key " CERTS "nope.key: No such file or directory" },
        { CERTS "localhost.crt", CERTS "mismatch.key",
          "private key " CERTS "mismatch.key does not match certificate " CERTS "localhost.crt" },
        { CERTS "localhost.crt", CERTS "alt.key",
          "private key " CERTS "alt.key does not match certificate " CERTS "localhost.crt" },
        { CERTS "localhost.key", CERTS "localhost.key",
          "cannot load certificate " CERTS "localhost.key: no PEM data found" },
        { CERTS "localhost.crt", CERTS "localhost.crt",
          "cannot load private key " CERTS "localhost.crt: no PEM private key found" },
        { CERTS "localhost.crt", CERTS "encrypted.key",
          "cannot load private key " CERTS "encrypted.key: the key is encrypted" },
        { CERTS "make.sh", CERTS "localhost.key",
          "cannot load certificate " CERTS "make.sh: no PEM data found" },
        { CERTS, CERTS "localhost.key", "cannot load certificate " CERTS ": " },
    };
    ck_assert_int_eq(tls_check_cert_key(CERTS "localhost.crt", CERTS "localhost.key", err,
                                        sizeof err), 0);
    ck_assert_int_eq(tls_check_cert_key(CERTS "alt.crt", CERTS "alt.key", err, sizeof err), 0);
    ck_assert_uint_eq(ERR_peek_error(), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(tls_check_cert_key(bad[i].cert, bad[i].key, err, sizeof err), -1);
        ck_assert_msg(strncmp(err, bad[i].msg, strlen(bad[i].msg)) == 0, "want '%s', got '%s'",
                      bad[i].msg, err);
        ck_assert_msg(ERR_peek_error() == 0, "%s: OpenSSL errors left queued", bad[i].cert);
    }
}
END_TEST

START_TEST(test_check_ciphers)
{
    ck_assert_int_eq(tls_check_ciphers("ECDHE-RSA-AES128-GCM-SHA256", 0, err, sizeof err), 0);
    ck_assert_int_eq(tls_check_ciphers("HIGH:!aNULL:!MD5", 0, err, sizeof err), 0);
    ck_assert_int_eq(tls_check_ciphers("NOPE", 0, err, sizeof err), -1);
    ck_assert_str_eq(err, "no cipher match");
    ck_assert_int_eq(tls_check_ciphers("TLS_AES_128_GCM_SHA256", 1, err, sizeof err), 0);
    ck_assert_int_eq(tls_check_ciphers("TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", 1,
                                       err, sizeof err), 0);
    ck_assert_int_eq(tls_check_ciphers("TLS_AES_128_GCM_SHA256:NOPE", 1, err, sizeof err), -1);
    ck_assert_str_eq(err, "unknown TLS 1.3 ciphersuite 'NOPE'");
    ck_assert_int_eq(tls_check_ciphers("ECDHE-RSA-AES128-GCM-SHA256", 1, err, sizeof err), -1);
    ck_assert_int_eq(tls_check_ciphers("TLS_AES_128_GCM_SHA256::", 1, err, sizeof err), -1);
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* ---- a server and a client ------------------------------------------------------------ */

static struct cfg_tls_cert two_certs[] = {
    { CERTS "localhost.crt", CERTS "localhost.key" },
    { CERTS "alt.crt", CERTS "alt.key" },
};

/* Defaults as config.c sets them; nalpn 0 means the default [h2, http/1.1]. */
static struct cfg_tls base_cfg(void)
{
    struct cfg_tls c = {
        .certs = two_certs, .ncerts = 2, .min_version = TLS_V1_2, .session_tickets = 1,
        .session_cache_size = 20480, .session_timeout_ms = 3600000,
        .ticket_key_rotation_ms = 12 * 3600000ULL, .handshake_timeout_ms = 10000,
    };
    return c;
}

static struct tls_server *server(const struct cfg_tls *cfg)
{
    struct tls_server *t = tls_server_new(cfg, err, sizeof err);
    ck_assert_msg(t != NULL, "tls_server_new: %s", err);
    ck_assert_uint_eq(ERR_peek_error(), 0);
    return t;
}

/* A client context trusting the test CA; <version> 0 = any, else the only version. */
static SSL_CTX *client_ctx(int version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, CERTS "ca.crt", NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (version) {
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
    }
    return ctx;
}

struct conn {
    SSL *c, *s;
};

/* A client SSL (SNI <sni> unless NULL, ALPN <alpn> in wire format unless NULL, resuming
 * <sess> unless NULL) and a server SSL, joined by a BIO pair. */
static struct conn connect_pair(struct tls_server *t, SSL_CTX *cctx, const char *sni,
                                const char *alpn, SSL_SESSION *sess)
{
    struct conn k = { SSL_new(cctx), tls_server_ssl_new(t) };
    BIO *cb, *sb;
    ck_assert_ptr_nonnull(k.c);
    ck_assert_ptr_nonnull(k.s);
    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(k.c, cb, cb);
    SSL_set_bio(k.s, sb, sb);
    SSL_set_connect_state(k.c);
    SSL_set_accept_state(k.s);
    if (sni) {
        ck_assert_int_eq(SSL_set_tlsext_host_name(k.c, sni), 1);
        ck_assert_int_eq(SSL_set1_host(k.c, sni), 1);
    }
    if (alpn)
        ck_assert_int_eq(SSL_set_alpn_protos(k.c, (const unsigned char *)alpn,
                                             (unsigned)strlen(alpn)), 0);
    if (sess)
        ck_assert_int_eq(SSL_set_session(k.c, sess), 1);
    return k;
}

static int step(SSL *ssl, int *done)
{
    if (*done)
        return 0;
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
        *done = 1;
        return 0;
    }
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

/* Runs both handshakes to the end, then server -> client data (the client reads the TLS 1.3
 * tickets on the way). 0, or -1 if either side failed. */
static int handshake(struct conn *k)
{
    int cdone = 0, sdone = 0;
    char buf[8];
    for (int i = 0; i < 50 && !(cdone && sdone); i++)
        if (step(k->c, &cdone) < 0 || step(k->s, &sdone) < 0)
            return -1;
    if (!cdone || !sdone)
        return -1;
    ck_assert_int_eq(SSL_write(k->s, "hi", 2), 2);
    ck_assert_int_eq(SSL_read(k->c, buf, sizeof buf), 2);
    ck_assert_int_eq(SSL_write(k->c, "ok", 2), 2);
    ck_assert_int_eq(SSL_read(k->s, buf, sizeof buf), 2);
    return 0;
}

/* Clean close (close_notify both ways, so the server keeps the session in its cache) and
 * free; returns the client's session, with a reference, when <want_session>. */
static SSL_SESSION *finish(struct conn *k, int want_session)
{
    SSL_SESSION *sess = want_session ? SSL_get1_session(k->c) : NULL;
    SSL_shutdown(k->c);
    SSL_shutdown(k->s);
    SSL_free(k->c);
    SSL_free(k->s);
    ERR_clear_error();
    return sess;
}

static const char *alpn_of(SSL *ssl, char *buf, size_t len)
{
    const unsigned char *p;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl, &p, &n);
    snprintf(buf, len, "%.*s", (int)n, n ? (const char *)p : "");
    return buf;
}

static const char *peer_cn(SSL *ssl, char *buf, size_t len)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    buf[0] = '\0';
    if (x)
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)len);
    return buf;
}

/* ---- ALPN ------------------------------------------------------------------------------ */

START_TEST(test_alpn)
{
    static const struct { const char *server[2]; size_t nserver; const char *offer; const char *want; } cases[] = {
        { { NULL }, 0, "\x02h2\x08http/1.1", "h2" },
        { { NULL }, 0, "\x08http/1.1\x02h2", "h2" },            /* the server's order wins */
        { { NULL }, 0, "\x08http/1.1", "http/1.1" },
        { { NULL }, 0, "\x06spdy/3", "" },                      /* no overlap: no ALPN */
        { { NULL }, 0, NULL, "" },                              /* none offered */
        { { "http/1.1", "h2" }, 2, "\x02h2\x08http/1.1", "http/1.1" },
        { { "h2" }, 1, "\x08http/1.1", "" },
        { { "http/1.1" }, 1, "\x02h2", "" },
    };
    char buf[32];
    SSL_CTX *cctx = client_ctx(0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cfg_tls cfg = base_cfg();
        cfg.alpn = (char **)cases[i].server;
        cfg.nalpn = cases[i].nserver;
        struct tls_server *t = server(&cfg);
        struct conn k = connect_pair(t, cctx, "localhost", cases[i].offer, NULL);
        ck_assert_msg(handshake(&k) == 0, "case %zu: handshake failed", i);
        ck_assert_msg(!strcmp(alpn_of(k.s, buf, sizeof buf), cases[i].want),
                      "case %zu: server chose '%s', want '%s'", i, buf, cases[i].want);
        ck_assert_str_eq(alpn_of(k.c, buf, sizeof buf), cases[i].want);
        ck_assert_int_eq(tls_negotiated_h2(k.s), !strcmp(cases[i].want, "h2"));
        finish(&k, 0);
        tls_server_free(t);
    }
    SSL_CTX_free(cctx);
}
END_TEST

/* ---- SNI ------------------------------------------------------------------------------- */

START_TEST(test_sni)
{
    static const struct { const char *sni, *cn; } cases[] = {
        { NULL, "localhost" },              /* no SNI: the default (first) certificate */
        { "localhost", "localhost" },
        { "alt.test", "alt.test" },
        { "ALT.test", "alt.test" },         /* names are case-insensitive */
        { "x.wild.test", "alt.test" },      /* *.wild.test */
        { "a.b.wild.test", "localhost" },   /* a wildcard covers one label */
        { "wild.test", "localhost" },
        { "unknown.example", "localhost" }, /* unknown: the default */
    };
    char buf[64];
    struct cfg_tls cfg = base_cfg();
    struct tls_server *t = server(&cfg);
    for (int v = 0; v < 2; v++) {
        SSL_CTX *cctx = client_ctx(v ? TLS1_3_VERSION : TLS1_2_VERSION);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            struct conn k = connect_pair(t, cctx, NULL, "\x02h2", NULL);
            if (cases[i].sni)
                ck_assert_int_eq(SSL_set_tlsext_host_name(k.c, cases[i].sni), 1);
            ck_assert_msg(handshake(&k) == 0, "%s: handshake failed", cases[i].sni);
            ck_assert_msg(!strcmp(peer_cn(k.c, buf, sizeof buf), cases[i].cn),
                          "TLS 1.%d SNI %s: got %s, want %s", 2 + v, cases[i].sni, buf,
                          cases[i].cn);
            ck_assert_int_eq(SSL_get_verify_result(k.c), X509_V_OK);   /* chain to the CA */
            ck_assert_int_eq(tls_negotiated_h2(k.s), 1);   /* ALPN on the switched context */
            finish(&k, 0);
        }
        SSL_CTX_free(cctx);
    }
    tls_server_free(t);
}
END_TEST

/* ---- versions and ciphers ---------------------------------------------------------------- */

START_TEST(test_versions)
{
    char buf[64];
    struct cfg_tls cfg = base_cfg();
    SSL_CTX *c12 = client_ctx(TLS1_2_VERSION), *c13 = client_ctx(TLS1_3_VERSION);
    SSL_CTX *c11 = client_ctx(TLS1_1_VERSION);
    SSL_CTX_set_security_level(c11, 0);

    struct tls_server *t = server(&cfg);
    struct conn k = connect_pair(t, c12, "localhost", NULL, NULL);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_int_eq(SSL_version(k.s), TLS1_2_VERSION);
    ck_assert_str_eq(SSL_get_cipher_name(k.s), "ECDHE-ECDSA-AES128-GCM-SHA256");
    ck_assert_int_eq(SSL_get_current_compression(k.s) == NULL, 1);
    finish(&k, 0);
    k = connect_pair(t, c11, "localhost", NULL, NULL);
    ck_assert_int_eq(handshake(&k), -1);
    finish(&k, 0);
    tls_server_free(t);

    cfg.min_version = TLS_V1_3;
    cfg.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
    t = server(&cfg);
    k = connect_pair(t, c12, "localhost", NULL, NULL);
    ck_assert_int_eq(handshake(&k), -1);
    finish(&k, 0);
    k = connect_pair(t, c13, "alt.test", NULL, NULL);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_int_eq(SSL_version(k.s), TLS1_3_VERSION);
    ck_assert_str_eq(SSL_get_cipher_name(k.s), "TLS_CHACHA20_POLY1305_SHA256");
    ck_assert_str_eq(peer_cn(k.c, buf, sizeof buf), "alt.test");
    finish(&k, 0);
    tls_server_free(t);

    cfg = base_cfg();
    cfg.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
    t = server(&cfg);
    k = connect_pair(t, c12, "localhost", NULL, NULL);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_str_eq(SSL_get_cipher_name(k.s), "ECDHE-ECDSA-CHACHA20-POLY1305");
    finish(&k, 0);
    tls_server_free(t);

    SSL_CTX_free(c11);
    SSL_CTX_free(c12);
    SSL_CTX_free(c13);
}
END_TEST

/* TLS 1.3 suites: AES-128-GCM unless the client puts ChaCha20 first or the configuration
 * orders them otherwise; the clients here offer OpenSSL's order, AES-256-GCM first. */
START_TEST(test_cipher_order)
{
    static const struct { const char *server, *client, *want; int version; } cases[] = {
        { NULL, NULL, "TLS_AES_128_GCM_SHA256", TLS1_3_VERSION },
        { NULL, "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
          "TLS_CHACHA20_POLY1305_SHA256", TLS1_3_VERSION },
        { NULL, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
          "TLS_AES_256_GCM_SHA384", TLS1_3_VERSION },
        { "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", NULL, "TLS_AES_256_GCM_SHA384",
          TLS1_3_VERSION },
        { NULL, "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES256-GCM-SHA384",
          "ECDHE-ECDSA-CHACHA20-POLY1305", TLS1_2_VERSION },
        { NULL, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
          "ECDHE-ECDSA-AES256-GCM-SHA384", TLS1_2_VERSION },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cfg_tls cfg = base_cfg();
        cfg.ciphersuites = (char *)cases[i].server;
        struct tls_server *t = server(&cfg);
        SSL_CTX *cctx = client_ctx(cases[i].version);
        if (cases[i].client && cases[i].version == TLS1_3_VERSION)
            ck_assert_int_eq(SSL_CTX_set_ciphersuites(cctx, cases[i].client), 1);
        else if (cases[i].client)
            ck_assert_int_eq(SSL_CTX_set_cipher_list(cctx, cases[i].client), 1);
        struct conn k = connect_pair(t, cctx, "localhost", NULL, NULL);
        ck_assert_msg(handshake(&k) == 0, "case %zu: handshake failed", i);
        ck_assert_msg(!strcmp(SSL_get_cipher_name(k.s), cases[i].want),
                      "case %zu: got %s, want %s", i, SSL_get_cipher_name(k.s), cases[i].want);
        finish(&k, 0);
        SSL_CTX_free(cctx);
        tls_server_free(t);
    }
}
END_TEST

/* The upstream side offers AES-128-GCM first: a backend that follows the client's order (as
 * this OpenSSL server, and nginx by default) takes it. */
START_TEST(test_client_cipher_order)
{
    struct cfg_upstream_tls ucfg = { .ca_file = CERTS "ca.crt", .verify = 1,
                                     .handshake_timeout_ms = 10000, .session_reuse = 1 };
    struct tls_client *tc = tls_client_new(&ucfg, PROTO_HTTP1, NULL, err, sizeof err);
    ck_assert_msg(tc != NULL, "tls_client_new: %s", err);
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(sctx, CERTS "localhost.crt"), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(sctx, CERTS "localhost.key", SSL_FILETYPE_PEM),
                     1);
    struct conn k = { tls_client_ssl_new(tc, "localhost", NULL, NULL), SSL_new(sctx) };
    ck_assert_ptr_nonnull(k.c);
    BIO *cb, *sb;
    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(k.c, cb, cb);
    SSL_set_bio(k.s, sb, sb);
    SSL_set_connect_state(k.c);
    SSL_set_accept_state(k.s);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_int_eq(SSL_version(k.s), TLS1_3_VERSION);
    ck_assert_str_eq(SSL_get_cipher_name(k.s), "TLS_AES_128_GCM_SHA256");
    ck_assert_int_eq(SSL_get_verify_result(k.c), X509_V_OK);
    tls_client_ssl_detach(k.c);
    finish(&k, 0);
    SSL_CTX_free(sctx);
    tls_client_free(tc);
}
END_TEST

START_TEST(test_new_errors)
{
    struct cfg_tls_cert certs[] = { two_certs[0], { CERTS "alt.crt", CERTS "mismatch.key" } };
    struct cfg_tls cfg = base_cfg();
    cfg.certs = certs;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_str_eq(err, "private key " CERTS "mismatch.key does not match certificate "
                     CERTS "alt.crt");
    cfg.ncerts = 0;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_str_eq(err, "no certificate configured");
    cfg = base_cfg();
    cfg.ciphers = "NOPE";
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_str_eq(err, "invalid ciphers 'NOPE': no cipher match");
    ck_assert_uint_eq(ERR_peek_error(), 0);
    tls_server_free(NULL);
}
END_TEST

/* ---- session resumption ------------------------------------------------------------------ */

/* Loop index: bit 0 = TLS 1.3, bit 1 = tickets off (the server-side cache resumes). */
START_TEST(test_resume)
{
    int version = _i & 1 ? TLS1_3_VERSION : TLS1_2_VERSION, tickets = !(_i & 2);
    struct cfg_tls cfg = base_cfg();
    cfg.session_tickets = tickets;
    struct tls_server *t = server(&cfg);
    SSL_CTX *cctx = client_ctx(version);
    char buf[64];

    struct conn k = connect_pair(t, cctx, "localhost", "\x02h2", NULL);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_int_eq(SSL_session_reused(k.s), 0);
    SSL_SESSION *sess = finish(&k, 1);
    ck_assert_ptr_nonnull(sess);
    ck_assert_int_eq(SSL_SESSION_is_resumable(sess), 1);

    /* resumed, with ALPN chosen again */
    k = connect_pair(t, cctx, "localhost", "\x02h2", sess);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(SSL_session_reused(k.c) && SSL_session_reused(k.s),
                  "TLS 1.%d tickets %d: not resumed", version == TLS1_3_VERSION ? 3 : 2, tickets);
    ck_assert_int_eq(tls_negotiated_h2(k.s), 1);
    SSL_SESSION_free(sess);
    sess = finish(&k, 1);

    /* still resumed after one rotation of the ticket keys */
    tls_server_rotate_tickets(t);
    k = connect_pair(t, cctx, "localhost", NULL, sess);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(SSL_session_reused(k.s), "not resumed after a rotation");
    SSL_SESSION_free(sess);
    sess = finish(&k, 1);

    /* a session from the alt.test certificate resumes with SNI alt.test */
    SSL_SESSION_free(sess);
    k = connect_pair(t, cctx, "alt.test", NULL, NULL);
    ck_assert_int_eq(handshake(&k), 0);
    sess = finish(&k, 1);
    k = connect_pair(t, cctx, "alt.test", NULL, sess);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(SSL_session_reused(k.s), "not resumed with SNI alt.test");
    ck_assert_str_eq(peer_cn(k.c, buf, sizeof buf), "alt.test");
    finish(&k, 0);

    SSL_SESSION_free(sess);
    SSL_CTX_free(cctx);
    tls_server_free(t);
}
END_TEST

/* With tickets only (no cache): a ticket survives one rotation, and is then renewed under
 * the new key; a ticket two rotations old is refused (full handshake). A server with neither
 * tickets nor cache never resumes. */
START_TEST(test_ticket_rotation)
{
    int version = _i ? TLS1_3_VERSION : TLS1_2_VERSION;
    struct cfg_tls cfg = base_cfg();
    cfg.session_cache_size = 0;
    struct tls_server *t = server(&cfg);
    SSL_CTX *cctx = client_ctx(version);

    struct conn k = connect_pair(t, cctx, "localhost", NULL, NULL);
    ck_assert_int_eq(handshake(&k), 0);
    SSL_SESSION *sess = finish(&k, 1);          /* ticket under key 0 */
    SSL_SESSION *renewed = NULL;

    tls_server_rotate_tickets(t);               /* current key 1, previous key 0 */
    k = connect_pair(t, cctx, "localhost", NULL, sess);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(SSL_session_reused(k.s), "not resumed after one rotation");
    renewed = finish(&k, 1);                    /* a new ticket, under key 1 */
    ck_assert_ptr_ne(renewed, sess);

    tls_server_rotate_tickets(t);               /* current key 2, previous key 1 */
    k = connect_pair(t, cctx, "localhost", NULL, sess);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(!SSL_session_reused(k.s), "resumed with a key two rotations old");
    finish(&k, 0);
    k = connect_pair(t, cctx, "localhost", NULL, renewed);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(SSL_session_reused(k.s), "the renewed ticket does not resume");
    finish(&k, 0);
    SSL_SESSION_free(sess);
    SSL_SESSION_free(renewed);
    tls_server_free(t);

    cfg.session_tickets = 0;
    t = server(&cfg);
    k = connect_pair(t, cctx, "localhost", NULL, NULL);
    ck_assert_int_eq(handshake(&k), 0);
    sess = finish(&k, 1);
    k = connect_pair(t, cctx, "localhost", NULL, sess);
    ck_assert_int_eq(handshake(&k), 0);
    ck_assert_msg(!SSL_session_reused(k.s), "resumed without tickets or cache");
    finish(&k, 0);
    SSL_SESSION_free(sess);
    tls_server_free(t);
    SSL_CTX_free(cctx);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("checks");
    tcase_add_test(tc, test_check_cert_key);
    tcase_add_test(tc, test_check_ciphers);
    tcase_add_test(tc, test_new_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("handshake");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_alpn);
    tcase_add_test(tc, test_sni);
    tcase_add_test(tc, test_versions);
    tcase_add_test(tc, test_cipher_order);
    tcase_add_test(tc, test_client_cipher_order);
    tcase_add_loop_test(tc, test_resume, 0, 4);
    tcase_add_loop_test(tc, test_ticket_rotation, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
