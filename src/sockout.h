/* sockout — direct writes for plain-socket bufferevents.
 *
 * A bufferevent watches its socket for writability whenever its output buffer holds data:
 * one epoll_ctl to add EPOLLOUT when a response is queued and another to remove it once
 * written, per message and per side — two thirds of the syscalls a proxied keep-alive
 * request cost. A sockout keeps the bufferevent's EV_WRITE disabled and writes the output
 * itself, once per loop turn in which something was queued (head and body of a response
 * leave in one writev). Only when the socket does not take everything (EAGAIN) is EV_WRITE
 * enabled, and libevent's own path (send_timeout, errors, the write callback) carries on
 * until the buffer is empty again.
 *
 * TLS bufferevents write through OpenSSL and do not use this. */
#ifndef FERRY_SOCKOUT_H
#define FERRY_SOCKOUT_H

#include <event2/bufferevent.h>

struct sockout;

/* Takes over <bev>'s callbacks (as bufferevent_setcb): <write_cb> is called as libevent
 * would, when the output drained to its low watermark, whether it was written directly or
 * by libevent. EV_WRITE is left disabled. NULL on allocation failure. */
struct sockout *sockout_new(struct event_base *base, struct bufferevent *bev,
                            bufferevent_data_cb read_cb, bufferevent_data_cb write_cb,
                            bufferevent_event_cb event_cb, void *arg);

/* Detaches from the bufferevent (before it is freed or handed to another owner). Output not
 * yet written stays in the buffer with EV_WRITE enabled, so whoever owns the bufferevent
 * next gets it written. NULL is allowed. */
void sockout_free(struct sockout *so);

#endif
