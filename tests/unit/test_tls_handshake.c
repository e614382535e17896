/* Unit tests for tls_handshake: handshakes on a real socket, driven by an event loop, against
 * an OpenSSL peer in another thread.
 * Server side (tls_handshake_accept): a finished handshake hands over an SSL that reads and
 * writes the socket and still holds what the client sent right after its Finished; a flight
 * larger than the socket's buffer leaves in parts; a client speaking plain HTTP gets an
 * alert and a reason; a client that hangs up, or dribbles its ClientHello past the deadline,
 * ends the handshake; an abandoned handshake closes the socket without a callback.
 * Client side (tls_handshake_connect, as updial uses it): TLS 1.3 and 1.2 against a server
 * that writes right after its handshake (the bytes reach the handed-over SSL, session
 * tickets on the way are taken); a certificate for another name, a server that wants a
 * client certificate, one that hangs up and one that never answers each end it with a
 * reason. Certificates: tests/certs; run from the top of the tree. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tls.h"
#include "tls_handshake.h"

#define CERTS "tests/certs/"

enum client_mode { C_TLS13, C_TLS12, C_PLAIN_HTTP, C_BAD_HELLO, C_HANGUP, C_DRIBBLE, C_SILENT };

struct client {
    int fd;
    enum client_mode mode;
    char got[256];      /* what the client read back */
    size_t ngot;
    int ok;             /* C_TLS*: handshake done and "ok" read back */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads until EOF (or 5 s) into k->got. */
static void read_to_eof(struct client *k)
{
    double end = now_s() + 5;
    while (now_s() < end) {
        struct pollfd p = { k->fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0)
            continue;
        char buf[4096];
        ssize_t n = read(k->fd, buf, sizeof buf);
        if (n <= 0)
            return;
        size_t room = sizeof k->got - k->ngot;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(k->got + k->ngot, buf, take);
        k->ngot += take;
    }
}

static void *client_main(void *arg)
{
    struct client *k = arg;
    if (k->mode == C_PLAIN_HTTP || k->mode == C_BAD_HELLO) {
        static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        /* A handshake record holding a ClientHello of 4 bytes that cannot be one. */
        static const char hello[] = "\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00";
        const char *out = k->mode == C_PLAIN_HTTP ? req : hello;
        size_t len = k->mode == C_PLAIN_HTTP ? sizeof req - 1 : sizeof hello - 1;
        if (send(k->fd, out, len, MSG_NOSIGNAL) == (ssize_t)len)
            read_to_eof(k);
    } else if (k->mode == C_HANGUP) {
        shutdown(k->fd, SHUT_WR);
    } else if (k->mode == C_DRIBBLE) {
        /* A TLS record header announcing 512 bytes, then a byte every 20 ms (10 s in all):
         * each read makes progress, so only a deadline from the start ends it. */
        static const unsigned char hdr[] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
        double end = now_s() + 10;
        for (size_t i = 0; now_s() < end; i++) {
            unsigned char b = i < sizeof hdr ? hdr[i] : 0;
            if (send(k->fd, &b, 1, MSG_NOSIGNAL) != 1)
                break;   /* (no SIGPIPE when the server closed since the last poll) */
            struct pollfd p = { k->fd, POLLIN, 0 };
            if (poll(&p, 1, 20) > 0 && read(k->fd, &b, 1) <= 0)
                break;   /* closed by the server */
        }
    } else if (k->mode == C_SILENT) {
        read_to_eof(k);
    } else {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        int v = k->mode == C_TLS13 ? TLS1_3_VERSION : TLS1_2_VERSION;
        SSL_CTX_set_min_proto_version(ctx, v);
        SSL_CTX_set_max_proto_version(ctx, v);
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, k->fd);
        char buf[8];
        /* The request follows the Finished at once, as browsers and Go send it. */
        if (SSL_connect(ssl) == 1 && SSL_write(ssl, "GET", 3) == 3 &&
            SSL_read(ssl, buf, sizeof buf) == 2 && memcmp(buf, "ok", 2) == 0)
            k->ok = 1;
        SSL_shutdown(ssl);
        SSL_free(ssl);
        SSL_CTX_free(ctx);
    }
    return NULL;
}

struct server {
    struct event_base *base;
    SSL *ssl;
    const char *why;   /* NULL, or <reason> */
    char reason[160];
    int calls;
};

static void done_cb(SSL *ssl, const char *why, void *arg)
{
    struct server *s = arg;
    s->ssl = ssl;
    s->why = NULL;
    if (why) {   /* valid during the call only */
        snprintf(s->reason, sizeof s->reason, "%s", why);
        s->why = s->reason;
    }
    s->calls++;
    event_base_loopbreak(s->base);
}

static void give_up_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* A handed-over <ssl> reads and writes socket <fd> itself: <want>, which the peer sent right
 * after its last handshake message, is read through it, and "ok" is written back. */
static void expect_handed_over(SSL *ssl, int fd, const char *want)
{
    char buf[8];
    int n = -1;
    for (int i = 0; i < 100 && n <= 0; i++) {
        n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) {
            ck_assert_int_eq(SSL_get_error(ssl, n), SSL_ERROR_WANT_READ);
            struct pollfd p = { SSL_get_fd(ssl), POLLIN, 0 };
            poll(&p, 1, 100);
        }
    }
    ck_assert_int_eq(n, (int)strlen(want));
    ck_assert_int_eq(memcmp(buf, want, strlen(want)), 0);
    ck_assert_int_eq(BIO_method_type(SSL_get_wbio(ssl)), BIO_TYPE_SOCKET);
    ck_assert_int_eq(SSL_get_fd(ssl), fd);
    ck_assert_int_eq(SSL_write(ssl, "ok", 2), 2);
}

static struct cfg_tls_cert certs[] = { { CERTS "localhost.crt", CERTS "localhost.key" } };

static struct tls_server *make_server(struct cfg_tls_cert *c)
{
    char err[256];
    struct cfg_tls cfg = {
        .certs = c, .ncerts = 1, .min_version = TLS_V1_2, .session_tickets = 1,
        .session_cache_size = 1024, .session_timeout_ms = 3600000,
        .ticket_key_rotation_ms = 12 * 3600000ULL, .handshake_timeout_ms = 10000,
    };
    struct tls_server *t = tls_server_new(&cfg, err, sizeof err);
    ck_assert_msg(t != NULL, "tls_server_new: %s", err);
    return t;
}

/* Runs one handshake of <t> against a client in <mode>; <sndbuf> > 0 shrinks the server's
 * send buffer. The server's SSL (or NULL) and reason are in <s>; the client is joined. */
static void run(struct tls_server *t, struct client *k, struct server *s, uint64_t timeout_ms,
                int sndbuf)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
    if (sndbuf) {
        ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
        int got = 0;
        socklen_t gl = sizeof got;
        ck_assert_int_eq(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &got, &gl), 0);
        ck_assert_int_lt(got, 8 * 1024);   /* well under the flight: sends must be partial */
    }
    k->fd = sv[1];
    memset(s, 0, sizeof *s);
    s->base = event_base_new();
    ck_assert_ptr_nonnull(s->base);
    SSL *ssl = tls_server_ssl_new(t);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_ptr_nonnull(tls_handshake_accept(s->base, sv[0], ssl, timeout_ms, done_cb, s));
    struct event *guard = evtimer_new(s->base, give_up_cb, s->base);
    struct timeval tv = { 15, 0 };
    evtimer_add(guard, &tv);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, client_main, k), 0);
    event_base_dispatch(s->base);
    ck_assert_int_eq(s->calls, 1);
    if (s->ssl)
        /* What the client sent after its Finished (much of the time already in OpenSSL's
         * read-ahead buffer, not in the socket). */
        expect_handed_over(s->ssl, sv[0], "GET");
    pthread_join(th, NULL);
    if (s->ssl) {
        SSL_free(s->ssl);
        close(sv[0]);
    } else {
        /* The handshake closed the server's end: after any alert, the client's sees EOF. */
        char b[512];
        ssize_t n;
        for (int i = 0; i < 100 && (n = read(sv[1], b, sizeof b)) > 0; i++)
            ;
        ck_assert_int_le(n, 0);
    }
    close(sv[1]);
    event_free(guard);
    event_base_free(s->base);
    ERR_clear_error();
}

/* A handshake of <t> that succeeds, the request after it read and answered. */
static void expect_served(struct tls_server *t, enum client_mode mode, int sndbuf)
{
    struct client k = { .mode = mode };
    struct server s;
    run(t, &k, &s, 10000, sndbuf);
    ck_assert_ptr_null(s.why);
    ck_assert_int_eq(k.ok, 1);
}

START_TEST(test_handshake)
{
    struct tls_server *t = make_server(certs);
    expect_served(t, _i ? C_TLS12 : C_TLS13, 0);
    tls_server_free(t);
}
END_TEST

/* A self-signed certificate with enough names to make the server's flight ~20 KiB. */
static void write_big_cert(const char *crt, const char *key)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(pk);
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"big", -1, -1, 0);
    X509_set_issuer_name(x, n);
    static char san[24000];
    size_t len = 0;
    for (int i = 0; len + 64 < sizeof san; i++)
        len += (size_t)snprintf(san + len, sizeof san - len, "%sDNS:name-%05d.example.test",
                                i ? "," : "", i);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
    ck_assert_ptr_nonnull(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ck_assert_int_gt(X509_sign(x, pk, EVP_sha256()), 0);
    FILE *f = fopen(crt, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key, "w");
    ck_assert_ptr_nonnull(f);
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    ck_assert_int_gt(i2d_X509(x, NULL), 16 * 1024);
    X509_free(x);
    EVP_PKEY_free(pk);
}

START_TEST(test_flight_larger_than_socket_buffer)
{
    char crt[] = "/tmp/ferry-test-big-XXXXXX";
    int fd = mkstemp(crt);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char key[sizeof crt + 4];
    snprintf(key, sizeof key, "%s.key", crt);
    write_big_cert(crt, key);
    struct cfg_tls_cert big[] = { { crt, key } };
    struct tls_server *t = make_server(big);
    /* The smallest send buffer Linux allows (4,608 bytes): the flight needs several sends,
     * the rest waiting for the client to read. */
    expect_served(t, _i ? C_TLS12 : C_TLS13, 1);
    tls_server_free(t);
    unlink(crt);
    unlink(key);
}
END_TEST

/* Clients that end the handshake: what the server says, and what the client read. */
START_TEST(test_failures)
{
    static const struct { enum client_mode mode; const char *why; size_t ngot; } cases[] = {
        /* OpenSSL sends no alert to what is not TLS. */
        { C_PLAIN_HTTP, "http request", 0 },
        /* An alert leaves before the close: one record, type 21, 2 bytes, level fatal. */
        { C_BAD_HELLO, "length mismatch", 7 },
        { C_HANGUP, "connection closed", 0 },
    };
    struct tls_server *t = make_server(certs);
    struct client k = { .mode = cases[_i].mode };
    struct server s;
    run(t, &k, &s, 10000, 0);
    ck_assert_ptr_null(s.ssl);
    ck_assert_str_eq(s.why, cases[_i].why);
    ck_assert_uint_eq(k.ngot, cases[_i].ngot);
    if (cases[_i].ngot) {
        ck_assert_uint_eq((unsigned char)k.got[0], 21);
        ck_assert_uint_eq((unsigned char)k.got[5], 2);
    }
    tls_server_free(t);
}
END_TEST

START_TEST(test_deadline)
{
    struct tls_server *t = make_server(certs);
    struct client k = { .mode = _i ? C_DRIBBLE : C_SILENT };
    struct server s;
    double t0 = now_s();
    run(t, &k, &s, 300, 0);
    double took = now_s() - t0;
    ck_assert_ptr_null(s.ssl);
    ck_assert_str_eq(s.why, "handshake_timeout");
    /* The dribbling client would take 10 s to finish its ClientHello. */
    ck_assert_msg(took >= 0.29 && took < 5, "handshake ended after %.2f s", took);
    tls_server_free(t);
}
END_TEST

START_TEST(test_abort)
{
    struct tls_server *t = make_server(certs);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    struct server s = { .base = event_base_new() };
    struct tls_handshake *a = tls_handshake_accept(s.base, sv[0], tls_server_ssl_new(t), 10000,
                                            done_cb, &s);
    ck_assert_ptr_nonnull(a);
    tls_handshake_abort(a);
    ck_assert_int_eq(event_base_loop(s.base, EVLOOP_NONBLOCK), 1);   /* nothing left */
    ck_assert_int_eq(s.calls, 0);
    char b;
    ck_assert_int_eq(read(sv[1], &b, 1), 0);   /* the server's end is closed */
    close(sv[1]);
    event_base_free(s.base);
    tls_server_free(t);
}
END_TEST

/* ---- the client side ------------------------------------------------------------------ */

enum server_mode { S_TLS13, S_TLS12, S_WANT_CERT, S_HANGUP, S_SILENT };

struct peer {
    int fd;
    enum server_mode mode;
    int ok;            /* the handshake finished and "ok" was read back */
};

/* An OpenSSL server with tests/certs/localhost: on a finished handshake it writes "hi" at
 * once (as an HTTP/2 server sends SETTINGS), then waits for "ok". */
static void *server_main(void *arg)
{
    struct peer *p = arg;
    if (p->mode == S_HANGUP) {
        char b[512];
        (void)read(p->fd, b, sizeof b);   /* the ClientHello */
        shutdown(p->fd, SHUT_RDWR);
        return NULL;
    }
    if (p->mode == S_SILENT) {
        char b[512];
        while (read(p->fd, b, sizeof b) > 0)
            ;
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int v = p->mode == S_TLS13 ? TLS1_3_VERSION : TLS1_2_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_use_certificate_chain_file(ctx, CERTS "localhost.crt");
    SSL_CTX_use_PrivateKey_file(ctx, CERTS "localhost.key", SSL_FILETYPE_PEM);
    if (p->mode == S_WANT_CERT) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_load_verify_locations(ctx, CERTS "ca.crt", NULL);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, p->fd);
    char buf[8];
    if (SSL_accept(ssl) == 1 && SSL_write(ssl, "hi", 2) == 2 &&
        SSL_read(ssl, buf, sizeof buf) == 2 && memcmp(buf, "ok", 2) == 0)
        p->ok = 1;
    SSL_shutdown(ssl);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return NULL;
}

static int sessions;   /* resumable sessions the client context received */

static void on_session(void *app, SSL_SESSION *sess)
{
    (void)app;
    sessions++;
    SSL_SESSION_free(sess);
}

/* Runs one client handshake for <name> against a server in <mode>; the client's SSL (or
 * NULL) and reason are in <c>. On success "hi" is read through the handed-over SSL and
 * answered. */
static void run_client(enum server_mode mode, const char *name, uint64_t timeout_ms,
                       struct server *c, struct peer *p)
{
    char err[256];
    struct cfg_upstream_tls cfg = { .server_name = (char *)name, .ca_file = CERTS "ca.crt",
                                    .verify = 1, .handshake_timeout_ms = timeout_ms,
                                    .session_reuse = 1 };
    struct tls_client *tc = tls_client_new(&cfg, PROTO_HTTP1, on_session, err, sizeof err);
    ck_assert_msg(tc != NULL, "tls_client_new: %s", err);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(evutil_make_socket_nonblocking(sv[0]), 0);
    memset(p, 0, sizeof *p);
    p->fd = sv[1];
    p->mode = mode;
    memset(c, 0, sizeof *c);
    c->base = event_base_new();
    SSL *ssl = tls_client_ssl_new(tc, "127.0.0.1", NULL, c);
    ck_assert_ptr_nonnull(ssl);
    ck_assert_ptr_nonnull(tls_handshake_connect(c->base, sv[0], ssl, timeout_ms, done_cb, c));
    ck_assert_int_eq(c->calls, 0);   /* never called back before the caller has the handle */
    struct event *guard = evtimer_new(c->base, give_up_cb, c->base);
    struct timeval tv = { 15, 0 };
    evtimer_add(guard, &tv);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, server_main, p), 0);
    event_base_dispatch(c->base);
    ck_assert_int_eq(c->calls, 1);
    if (c->ssl)
        expect_handed_over(c->ssl, sv[0], "hi");
    pthread_join(th, NULL);
    if (c->ssl) {
        SSL_free(c->ssl);
        close(sv[0]);
    }
    close(sv[1]);
    event_free(guard);
    event_base_free(c->base);
    tls_client_free(tc);
    ERR_clear_error();
}

START_TEST(test_connect)
{
    struct server c;
    struct peer p;
    sessions = 0;
    run_client(_i ? S_TLS12 : S_TLS13, "localhost", 10000, &c, &p);
    ck_assert_ptr_null(c.why);
    ck_assert_int_eq(p.ok, 1);
    /* TLS 1.2: the ticket comes within the handshake; TLS 1.3: after it, read by the
     * SSL_read that took "hi". */
    ck_assert_int_ge(sessions, 1);
}
END_TEST

START_TEST(test_connect_failures)
{
    static const struct { enum server_mode mode; const char *name, *why; } cases[] = {
        { S_TLS13, "other.test", "certificate verification failed: " },
        /* TLS 1.2: the server refuses during the handshake, with an alert. */
        { S_WANT_CERT, "localhost", "alert" },
        { S_HANGUP, "localhost", "connection closed" },
    };
    struct server c;
    struct peer p;
    run_client(cases[_i].mode, cases[_i].name, 10000, &c, &p);
    ck_assert_ptr_null(c.ssl);
    ck_assert_ptr_nonnull(c.why);
    ck_assert_msg(strstr(c.why, cases[_i].why), "why: %s", c.why);
    ck_assert_int_eq(p.ok, 0);
}
END_TEST

START_TEST(test_connect_deadline)
{
    struct server c;
    struct peer p;
    double t0 = now_s();
    run_client(S_SILENT, "localhost", 300, &c, &p);
    double took = now_s() - t0;
    ck_assert_ptr_null(c.ssl);
    ck_assert_str_eq(c.why, "handshake_timeout");
    ck_assert_msg(took >= 0.29 && took < 5, "handshake ended after %.2f s", took);
}
END_TEST

static Suite *tls_handshake_suite(void)
{
    Suite *s = suite_create("tls_handshake");
    TCase *tc = tcase_create("handshake");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_handshake, 0, 2);
    tcase_add_loop_test(tc, test_flight_larger_than_socket_buffer, 0, 2);
    tcase_add_loop_test(tc, test_failures, 0, 3);
    tcase_add_loop_test(tc, test_deadline, 0, 2);
    tcase_add_test(tc, test_abort);
    suite_add_tcase(s, tc);
    tc = tcase_create("connect");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_connect, 0, 2);
    tcase_add_loop_test(tc, test_connect_failures, 0, 3);
    tcase_add_test(tc, test_connect_deadline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* A failing case must fail its checks, not kill the runner on a write to a closed end. */
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(tls_handshake_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
