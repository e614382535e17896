/* h1_client — an upstream HTTP/1.1 connection: writes requests, parses responses with
 * h1_parse, relays bodies with backpressure, and decides whether the connection is clean
 * enough to go back to its pool. One exchange at a time; the stream handle is the
 * connection. */
#ifndef FERRY_H1_CLIENT_H
#define FERRY_H1_CLIENT_H

#include "pool.h"

extern const struct upconn_ops h1c_ops;

#endif
