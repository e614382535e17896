/* bench/floor.c — the least a proxy can do in scenario 1, to measure what is left for one.
 *
 * Not a proxy: each client connection gets its own backend connection, and bytes are passed
 * both ways as they come, with no parsing, no pool, no timeouts and no HTTP at all. Per
 * keep-alive request that is one recv and one send on each side plus a share of an
 * epoll_wait — the socket calls every HTTP proxy must make (ferry makes 4.1 per request,
 * HAProxy 4.3). Its CPU time per request in the same run as the proxies is therefore the
 * floor of "CPU µs per request" on this machine: the kernel's TCP work on loopback, which
 * no proxy's own code can remove.
 *
 *   floor LISTEN_PORT BACKEND_PORT      (both on 127.0.0.1; runs until killed)
 *
 * Single thread, level-triggered epoll. A send that does not take everything parks the rest
 * and stops reading the other side until the socket is writable (never happens with the
 * 12-byte responses of scenario 1, but the program stays correct). A connection that fails
 * or ends closes its partner. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384

struct end {
    int fd;
    struct end *peer;
    char *pend; /* bytes for this socket that it did not take yet */
    size_t npend, cap;
};

static int ep;

static void watch(struct end *e, int op, unsigned ev)
{
    struct epoll_event x = {.events = ev, .data.ptr = e};
    epoll_ctl(ep, op, e->fd, &x);
}

static void end_pair(struct end *e)
{
    struct end *p = e->peer;
    close(e->fd);
    close(p->fd);
    free(e->pend);
    free(p->pend);
    free(e < p ? e : p); /* the two ends are one allocation */
}

/* Sends <buf> to <to>; what it does not take waits for EPOLLOUT while <from> stops reading. */
static int pass(struct end *from, struct end *to, const char *buf, size_t n)
{
    ssize_t w = send(to->fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN)
        return -1;
    if (w < 0)
        w = 0;
    if ((size_t)w == n)
        return 0;
    size_t rest = n - (size_t)w;
    if (to->cap < rest) {
        char *nb = realloc(to->pend, rest);
        if (!nb)
            return -1;
        to->pend = nb;
        to->cap = rest;
    }
    memcpy(to->pend, buf + w, rest);
    to->npend = rest;
    watch(from, EPOLL_CTL_MOD, 0);
    watch(to, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
    return 0;
}

static int flush(struct end *e)
{
    ssize_t w = send(e->fd, e->pend, e->npend, MSG_NOSIGNAL);
    if (w < 0)
        return errno == EAGAIN ? 0 : -1;
    memmove(e->pend, e->pend + w, e->npend - (size_t)w);
    e->npend -= (size_t)w;
    if (e->npend == 0) {
        watch(e, EPOLL_CTL_MOD, EPOLLIN);
        watch(e->peer, EPOLL_CTL_MOD, EPOLLIN);
    }
    return 0;
}

static int listen_on(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* inherited by accepted sockets */
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        perror("floor: listen");
        exit(1);
    }
    return fd;
}

/* A blocking connect on loopback, then non-blocking: set-up cost is not what is measured. */
static int dial(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int on = 1;
    ioctl(fd, FIONBIO, &on);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: floor LISTEN_PORT BACKEND_PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(atoi(argv[1])), bport = atoi(argv[2]);
    static char buf[BUF];
    struct epoll_event evs[256], lx = {.events = EPOLLIN, .data.ptr = NULL};
    ep = epoll_create1(0);
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lx);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            struct end *e = evs[i].data.ptr;
            if (!e) {
                int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                if (c < 0)
                    continue;
                int b = dial(bport);
                struct end *pair = calloc(2, sizeof *pair);
                if (b < 0 || !pair) {
                    close(c);
                    if (b >= 0)
                        close(b);
                    free(pair);
                    continue;
                }
                pair[0] = (struct end){.fd = c, .peer = &pair[1]};
                pair[1] = (struct end){.fd = b, .peer = &pair[0]};
                watch(&pair[0], EPOLL_CTL_ADD, EPOLLIN);
                watch(&pair[1], EPOLL_CTL_ADD, EPOLLIN);
                continue;
            }
            if (e->npend && (evs[i].events & EPOLLOUT)) {
                if (flush(e) < 0) {
                    end_pair(e);
                    /* its partner may also be in this batch: stop the batch here */
                    break;
                }
                continue;
            }
            ssize_t r = recv(e->fd, buf, sizeof buf, 0);
            if (r < 0 && errno == EAGAIN)
                continue;
            if (r <= 0 || pass(e, e->peer, buf, (size_t)r) < 0) {
                end_pair(e);
                break;
            }
        }
    }
}
