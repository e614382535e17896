#include "tls_handshake.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "blockcache.h"
#include "deadline.h"
#include "tls.h"

struct tls_handshake {
    SSL *ssl;
    BIO *out;               /* the SSL's write BIO during the handshake (memory; the SSL's) */
    evutil_socket_t fd;
    struct event *io;       /* persistent, for EV_READ or (the socket full) EV_WRITE */
    struct event *timer;    /* the handshake deadline */
    tls_handshake_done_fn done;
    void *arg;
    int client;             /* the client side (an upstream connection) */
};

static void io_cb(evutil_socket_t fd, short what, void *arg);

/* Persistent: waiting for the next flight costs no epoll_ctl. Writability is waited for only
 * while the socket is full, and reading stops meanwhile (OpenSSL needs its output sent
 * before any more input can help). */
static int wait_for(struct tls_handshake *a, short what)
{
    if ((event_get_events(a->io) & (EV_READ | EV_WRITE)) == what)
        return 0;
    event_del(a->io);
    if (event_assign(a->io, event_get_base(a->io), a->fd, (short)(what | EV_PERSIST), io_cb, a) < 0)
        return -1;
    return event_add(a->io, NULL);
}

/* Frees everything of <a> but, on success, the SSL and the socket; then the callback. */
static void end(struct tls_handshake *a, const char *why)
{
    tls_handshake_done_fn done = a->done;
    void *arg = a->arg;
    SSL *ssl = a->ssl;
    if (why) {
        SSL_free(ssl);
        evutil_closesocket(a->fd);
        ssl = NULL;
    }
    ERR_clear_error();   /* the next connection's SSL_get_error reads the same queue */
    event_free(a->io);
    event_free(a->timer);
    bc_free(a);
    done(ssl, why, arg);
}

/* Sends what OpenSSL wrote into memory: 1 when all of it has left, 0 when the socket is
 * full (the rest waits for writability), -1 on a socket error. */
static int send_out(struct tls_handshake *a)
{
    char *p = NULL;
    long n;
    while ((n = BIO_get_mem_data(a->out, &p)) > 0) {
        ssize_t s = send(a->fd, p, (size_t)n, MSG_NOSIGNAL);
        if (s < 0 && errno == EINTR)
            continue;
        if (s < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        if (s == n) {
            (void)BIO_reset(a->out);
            return 1;
        }
        /* Partly taken (a long certificate chain into a small send buffer): a memory BIO
         * gives up its front only by copying it out. */
        char skip[4096];
        for (size_t left = (size_t)s; left;) {
            int k = BIO_read(a->out, skip, left < sizeof skip ? (int)left : (int)sizeof skip);
            if (k <= 0)
                return -1;
            left -= (size_t)k;
        }
    }
    return 1;
}

/* From here the SSL writes the socket itself: a sockio writes a record per write(2), and a
 * memory BIO would only add a copy. */
static void finish(struct tls_handshake *a)
{
    BIO *sock = BIO_new_socket(a->fd, BIO_NOCLOSE);
    if (!sock) {
        end(a, "out of memory");
        return;
    }
    SSL_set0_wbio(a->ssl, sock);   /* frees the memory BIO */
    a->out = NULL;
    end(a, NULL);
}

static const char *failure(struct tls_handshake *a, int err, char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    /* A server whose certificate we refuse: say why (expired, wrong name, unknown CA). */
    if (a->client && SSL_get_verify_result(a->ssl) != X509_V_OK)
        return tls_client_failure(a->ssl, buf, len);
    /* A peer that hangs up mid-handshake (a port scan, a health check of the TCP port, a
     * backend going away) is no TLS error. */
    if (err != SSL_ERROR_SSL || !e || ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return "connection closed";
    const char *r = ERR_reason_error_string(e);
    return r ? r : "handshake failed";
}

/* After a send: what is left waits for writability; a finished handshake is handed over;
 * otherwise the peer's next flight is awaited. */
static void after_send(struct tls_handshake *a, int sent)
{
    if (sent < 0) {
        end(a, "connection closed");
        return;
    }
    if (sent && SSL_is_init_finished(a->ssl)) {
        finish(a);
        return;
    }
    if (wait_for(a, sent ? EV_READ : EV_WRITE) < 0)
        end(a, "out of memory");
}

static void step(struct tls_handshake *a)
{
    ERR_clear_error();
    int r = SSL_do_handshake(a->ssl);
    int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(a->ssl, r);
    int sent = send_out(a);   /* a failure's alert too */
    char buf[160];   /* the reason, alive until the callback has returned */
    if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ)
        end(a, failure(a, err, buf, sizeof buf));
    else
        after_send(a, sent);
}

static void io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tls_handshake *a = arg;
    (void)fd;
    /* Writable: only the rest of a flight was waiting, OpenSSL itself was not. */
    if (what & EV_WRITE)
        after_send(a, send_out(a));
    else
        step(a);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    end(arg, "handshake_timeout");
}

static struct tls_handshake *start(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                                   uint64_t timeout_ms, int client, tls_handshake_done_fn done,
                                   void *arg)
{
    struct tls_handshake *a = bc_calloc(1, sizeof *a);
    BIO *in = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *out = BIO_new(BIO_s_mem());
    if (a && in && out && (a->io = event_new(base, fd, EV_READ | EV_PERSIST, io_cb, a)) &&
        (a->timer = evtimer_new(base, timeout_cb, a))) {
        struct timeval tv = ms_timeval(timeout_ms);
        /* A server has nothing to try before the ClientHello is readable. */
        if (event_add(a->timer, &tv) == 0 && event_add(a->io, NULL) == 0) {
            SSL_set_bio(ssl, in, out);
            SSL_set_read_ahead(ssl, 1);
            if (client)
                SSL_set_connect_state(ssl);
            else
                SSL_set_accept_state(ssl);
            a->ssl = ssl;
            a->out = out;
            a->fd = fd;
            a->done = done;
            a->arg = arg;
            a->client = client;
            /* A client speaks first: its ClientHello is made and sent from the loop, so
             * that the callback never runs before the caller has the handle. */
            if (client)
                event_active(a->io, EV_READ, 0);
            return a;
        }
    }
    BIO_free(in);
    BIO_free(out);
    if (a) {
        if (a->io)
            event_free(a->io);
        if (a->timer)
            event_free(a->timer);
        bc_free(a);
    }
    return NULL;
}

struct tls_handshake *tls_handshake_accept(struct event_base *base, evutil_socket_t fd, SSL *ssl,
                                           uint64_t timeout_ms, tls_handshake_done_fn done,
                                           void *arg)
{
    return start(base, fd, ssl, timeout_ms, 0, done, arg);
}

struct tls_handshake *tls_handshake_connect(struct event_base *base, evutil_socket_t fd,
                                            SSL *ssl, uint64_t timeout_ms,
                                            tls_handshake_done_fn done, void *arg)
{
    return start(base, fd, ssl, timeout_ms, 1, done, arg);
}

void tls_handshake_abort(struct tls_handshake *a)
{
    SSL_free(a->ssl);
    evutil_closesocket(a->fd);
    event_free(a->io);
    event_free(a->timer);
    bc_free(a);
}
