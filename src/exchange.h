/* exchange — one request and its response, between a downstream session (the client side,
 * HTTP/1.1 now, HTTP/2 later) and an upstream connection taken from a pool.
 *
 * The exchange owns neither side. The downstream session creates it, feeds it the request
 * (head, body pieces, end) and frees it after ops->done. The upstream connection is attached
 * while the request is on it and detaches itself (returning to its pool or closing) when the
 * response ends or fails. Both sides report to the exchange through the functions below;
 * the exchange decides routing, retries, error responses and backpressure.
 */
#ifndef FERRY_EXCHANGE_H
#define FERRY_EXCHANGE_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http_msg.h"

struct evbuffer;
struct worker;
struct listener_rt;
struct exchange;
struct upconn;

/* What a downstream session must offer an exchange. <s> is the session. */
struct downstream_ops {
    /* The response head; <has_body>, <content_length> (-1 unknown) describe its body. */
    void (*response_head)(void *s, const struct http_head *h, int has_body, int64_t content_length);
    /* Moves all of <data> to the client. */
    void (*response_body)(void *s, struct evbuffer *data);
    /* Response complete; <trailers> may be NULL. */
    void (*response_end)(void *s, const struct http_head *trailers);
    /* Response broken after its head was sent: the client must see a cut, not a hang. */
    void (*response_abort)(void *s);
    /* Stop/resume reading the request body (upstream side is full / drained). */
    void (*pause_request)(void *s, int pause);
    /* Bytes of response queued towards the client and not yet written. */
    size_t (*response_pending)(void *s);
    /* The exchange has finished; the session may free it now or later. */
    void (*done)(void *s, struct exchange *ex);
};

enum upstream_error {
    UPERR_NONE = 0,
    UPERR_CONNECT,          /* connect refused/unreachable: request never reached the wire */
    UPERR_CONNECT_TIMEOUT,
    UPERR_RESET,            /* closed or reset by the backend */
    UPERR_READ_TIMEOUT,
    UPERR_SEND_TIMEOUT,
    UPERR_BAD_RESPONSE,     /* malformed response from the backend */
    UPERR_QUEUE_FULL,
    UPERR_QUEUE_TIMEOUT,
    UPERR_NO_SERVER,
    UPERR_REFUSED,          /* h2: refused or above a GOAWAY's last stream: not processed */
};
const char *upstream_error_str(enum upstream_error e);

/* A client's address, and its text form made once per connection (X-Forwarded-For, logs,
 * the hash key of every request on it). */
struct peer_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } addr;
    char ip[INET6_ADDRSTRLEN];
};
void peer_addr_set(struct peer_addr *p, const struct sockaddr *sa);

struct exchange_init {
    struct worker *w;
    struct listener_rt *listener;
    const struct downstream_ops *ops;
    void *session;
    struct http_head *req;            /* moved into the exchange */
    int has_body;
    int64_t content_length;           /* -1 = unknown (chunked) */
    const struct peer_addr *client;
    const char *request_line;         /* for the access log; copied */
    size_t request_line_len;
};

/* Creates the exchange and starts it (route, balance, acquire a connection). It may
 * answer at once (404, 503) through ops before returning. NULL on ENOMEM. */
struct exchange *exchange_start(const struct exchange_init *init);

/* Downstream -> exchange. */
void exchange_request_body(struct exchange *ex, struct evbuffer *data);
void exchange_request_end(struct exchange *ex, const struct http_head *trailers);
/* The client went away or its request broke: drop the upstream side, no response. */
void exchange_downstream_abort(struct exchange *ex);
/* The client side drained its output below the low mark. */
void exchange_downstream_drained(struct exchange *ex);
void exchange_free(struct exchange *ex);

/* Upstream connection -> exchange. */
void exchange_attach(struct exchange *ex, struct upconn *c);
void exchange_upstream_head(struct exchange *ex, const struct http_head *h, int has_body,
                            int64_t content_length);
void exchange_upstream_body(struct exchange *ex, struct evbuffer *data);
/* The connection has already detached itself when this is called. */
void exchange_upstream_end(struct exchange *ex, const struct http_head *trailers);
/* The connection failed and has detached (and will close). <sent_any> = request bytes may
 * have reached the backend; <got_any> = response bytes were received. */
void exchange_upstream_error(struct exchange *ex, enum upstream_error err, int sent_any,
                             int got_any, int reused);
void exchange_upstream_drained(struct exchange *ex);

/* Read by the upstream connection when it writes the request. */
int exchange_is_grpc(const struct exchange *ex);
const struct http_head *exchange_request_head(const struct exchange *ex);
int exchange_request_has_body(const struct exchange *ex, int64_t *content_length);
const char *exchange_client_ip(const struct exchange *ex);
uint64_t exchange_read_timeout_ms(const struct exchange *ex);

#endif
