/* h2_client — an upstream HTTP/2 connection (h2c, or h2 over TLS) on nghttp2: many exchanges
 * at once, one stream each, up to the peer's SETTINGS_MAX_CONCURRENT_STREAMS and the
 * upstream's cap.
 *
 * - GOAWAY: the connection takes no new stream; streams above the Last-Stream-ID (nghttp2
 *   closes them with REFUSED_STREAM) and streams the peer refused were not processed, so
 *   their exchanges are told UPERR_REFUSED and retried elsewhere whatever their method; the
 *   others run to completion, then the connection closes (reason goaway).
 * - Flow control follows the client: received DATA is acknowledged (WINDOW_UPDATE) only
 *   while the exchange is not paused, so a slow client slows its own stream, not the others.
 * - A connection silent for h2_read_idle_timeout is PINGed; no answer within h2_ping_timeout
 *   closes it. At most one PING per period in which the peer sent HEADERS or DATA, which is
 *   what grpc-go's default keepalive enforcement tolerates; a too_many_pings GOAWAY doubles
 *   the interval for the server.
 * - nghttp2 must not be re-entered: exchange and pool notifications that could start or end
 *   streams or close the connection are applied after nghttp2 returns (settle()).
 */
#ifndef FERRY_H2_CLIENT_H
#define FERRY_H2_CLIENT_H

#include "pool.h"

extern const struct upconn_ops h2u_ops;

#endif
