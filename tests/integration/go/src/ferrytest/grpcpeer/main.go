// grpcpeer: a gRPC server and client (grpc-go, grpc.testing.TestService) for ferry's
// integration tests.
//
//	grpcpeer server -listen ADDR [-stats ADDR] [-tls CERT:KEY] [-max-streams N] [-id X]
//	                [-graceful-on-term]
//
// Prints "STATS host:port" then "LISTEN host:port" on stdout once listening. Implements
// TestService (EmptyCall, UnaryCall, StreamingOutputCall, StreamingInputCall, FullDuplexCall;
// HalfDuplexCall is left unimplemented) and the standard health service (SERVING). Every RPC:
//
//   - echoes each request metadata key starting with "x-echo-" back as a response header
//     (same key, same values, in order);
//   - sets trailers "x-trailer-id: <id>", "x-bin-trailer-bin: <fixed bytes>", and
//     "x-deadline: set|none" (whether a grpc-timeout reached the server);
//   - request metadata "x-sleep-ms: N" delays the answer by N ms (ends early, and is counted
//     as cancelled / deadline_exceeded, when the RPC's context ends);
//   - "x-want-status: N" makes the RPC fail with code N and the message of "x-want-message"
//     (ASCII) or "x-want-message-bin" (any bytes); streaming RPCs send their messages first;
//     "x-want-details: 1" attaches an errdetails.DebugInfo (grpc-status-details-bin).
//
// Response payloads are deterministic functions of the request payload, so a client can
// compare digests of what it received through ferry with what it received directly.
//
// The server counts accepted TCP connections (a wrapped net.Listener) and reads the HTTP/2
// frames on every connection as they pass (TLS, when -tls is given, is terminated below that
// reader, so it always sees plaintext frames). GET /stats on the -stats sidecar (HTTP/1.1)
// answers JSON: accepted, active (TCP connections), rpcs, active_rpcs, max_active_rpcs,
// cancelled, deadline_exceeded, pings_recv (non-ACK PINGs from the client), rst_recv,
// goaway_recv, goaway_sent, too_many_pings (GOAWAY frames sent with that debug data).
// /stats/reset zeroes everything but accepted and active and the *active gauges.
// /health/set?status=SERVING|NOT_SERVING|UNKNOWN|SERVICE_UNKNOWN[&service=NAME] sets what the
// health service answers for NAME (without service=: for "" and grpc.testing.TestService).
//
// SIGTERM: with -graceful-on-term GracefulStop() (GOAWAY, in-flight RPCs finish), else Stop();
// exit 0 either way. The keepalive enforcement policy is grpc-go's default (MinTime 5 min,
// no pings without streams), so a client pinging an idle connection too often gets
// GOAWAY ENHANCE_YOUR_CALM "too_many_pings".
//
//	grpcpeer client -target HOST:PORT [-tls-ca CA [-server-name NAME]] [-authority A] -mode M
//
// One grpc.ClientConn for the whole run (one HTTP/2 connection unless it breaks); the number
// of TCP connections dialled is printed as conns=N (stderr for transcript). Modes:
//
//	transcript            every RPC kind; prints a canonical, deterministic transcript
//	load                  -c C -n N [-hold-ms MS] [-gap-ms MS] [-size B] [-deadline D]
//	                      [-rpc-timeout D]: N unary RPCs from C workers; prints
//	                      "ok=N err=M conns=K" and "codes: Name=count ..."
//	concurrent-streams    -c C -hold-ms MS: C unary RPCs held open MS ms, all issued at once;
//	                      prints "ok=N err=M conns=K elapsed_ms=E"
//	cancel                [-kind server|bidi|unary|all]: starts the RPC, cancels it after the
//	                      first message (unary: after -hold-ms/2); prints what happened
//	call                  one UnaryCall [-hold-ms MS] [-want-status N] [-rpc-timeout D];
//	                      prints "code=N name=X message=...", headers and trailers
//	raw                   one UnaryCall made with golang.org/x/net/http2 (not grpc-go), so
//	                      the HTTP status, content-type and trailers-only shape are visible:
//	                      prints "HTTP <status>", "H k: v", "BODY n", "T k: v" [-hold-ms MS]
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	testpb "google.golang.org/grpc/test/grpc_testing"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpcpeer server|client [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		serverMain(os.Args[2:])
	case "client":
		os.Exit(clientMain(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "usage: grpcpeer server|client [flags]")
		os.Exit(2)
	}
}

// ---------------------------------------------------------------- payloads

// pattern returns n deterministic bytes depending on seed.
func pattern(seed uint32, n int) []byte {
	b := make([]byte, n)
	x := seed*2654435761 + 12345
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}

func seedOf(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// ---------------------------------------------------------------- server

type serverStats struct {
	Accepted         int64 `json:"accepted"`
	Active           int64 `json:"active"`
	RPCs             int64 `json:"rpcs"`
	ActiveRPCs       int64 `json:"active_rpcs"`
	MaxActiveRPCs    int64 `json:"max_active_rpcs"`
	Cancelled        int64 `json:"cancelled"`
	DeadlineExceeded int64 `json:"deadline_exceeded"`
	PingsRecv        int64 `json:"pings_recv"`
	RstRecv          int64 `json:"rst_recv"`
	GoawayRecv       int64 `json:"goaway_recv"`
	GoawaySent       int64 `json:"goaway_sent"`
	TooManyPings     int64 `json:"too_many_pings"`
}

var (
	st       serverStats
	serverID string
	connSeq  int64
	logMu    sync.Mutex
)

func logf(format string, a ...interface{}) {
	logMu.Lock()
	defer logMu.Unlock()
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]interface{}{time.Now().Format("15:04:05.000")}, a...)...)
}

// frameReader follows the HTTP/2 frames of one direction of a connection as bytes pass.
type frameReader struct {
	mu      sync.Mutex
	skip    int // client preface bytes still to skip
	hdr     [9]byte
	hn      int
	inFrame bool
	left    int
	ftype   byte
	flags   byte
	sid     uint32
	keep    bool
	payload []byte
	on      func(ftype, flags byte, sid uint32, payload []byte)
}

func (r *frameReader) feed(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(b) > 0 {
		if r.skip > 0 {
			n := r.skip
			if n > len(b) {
				n = len(b)
			}
			r.skip -= n
			b = b[n:]
			continue
		}
		if !r.inFrame {
			n := copy(r.hdr[r.hn:], b)
			r.hn += n
			b = b[n:]
			if r.hn < 9 {
				continue
			}
			r.hn = 0
			r.left = int(r.hdr[0])<<16 | int(r.hdr[1])<<8 | int(r.hdr[2])
			r.ftype, r.flags = r.hdr[3], r.hdr[4]
			r.sid = binary.BigEndian.Uint32(r.hdr[5:9]) & 0x7fffffff
			r.keep = r.ftype == 0x6 || r.ftype == 0x7 || r.ftype == 0x3 // PING, GOAWAY, RST
			r.payload = r.payload[:0]
			r.inFrame = true
		}
		n := r.left
		if n > len(b) {
			n = len(b)
		}
		if r.keep {
			r.payload = append(r.payload, b[:n]...)
		}
		r.left -= n
		b = b[n:]
		if r.left == 0 {
			r.inFrame = false
			r.on(r.ftype, r.flags, r.sid, r.payload)
		}
	}
}

type sniffConn struct {
	net.Conn
	rd, wr *frameReader
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.rd.feed(p[:n])
	}
	return n, err
}

func (c *sniffConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.wr.feed(p[:n])
	}
	return n, err
}

var h2codes = []string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
	"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
	"HTTP_1_1_REQUIRED"}

func h2code(c uint32) string {
	if int(c) < len(h2codes) {
		return h2codes[c]
	}
	return strconv.Itoa(int(c))
}

// countingConn decrements the active count once when closed.
type countingConn struct {
	net.Conn
	id   int64
	once sync.Once
}

func (c *countingConn) Close() error {
	c.once.Do(func() {
		atomic.AddInt64(&st.Active, -1)
		logf("conn %d closed (%s)", c.id, c.Conn.RemoteAddr())
	})
	return c.Conn.Close()
}

// sniffListener: TCP accept (counted) -> optional TLS -> frame sniffer.
type sniffListener struct {
	net.Listener
	tlsCfg *tls.Config
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	id := atomic.AddInt64(&connSeq, 1)
	atomic.AddInt64(&st.Accepted, 1)
	atomic.AddInt64(&st.Active, 1)
	logf("conn %d accepted from %s", id, c.RemoteAddr())
	var conn net.Conn = &countingConn{Conn: c, id: id}
	if l.tlsCfg != nil {
		conn = tls.Server(conn, l.tlsCfg)
	}
	rd := &frameReader{skip: 24}
	rd.on = func(ftype, flags byte, sid uint32, p []byte) {
		switch ftype {
		case 0x6:
			if flags&1 == 0 {
				atomic.AddInt64(&st.PingsRecv, 1)
			}
		case 0x3:
			atomic.AddInt64(&st.RstRecv, 1)
			code := uint32(0)
			if len(p) >= 4 {
				code = binary.BigEndian.Uint32(p)
			}
			logf("conn %d: RST_STREAM received on stream %d: %s", id, sid, h2code(code))
		case 0x7:
			atomic.AddInt64(&st.GoawayRecv, 1)
			if len(p) >= 8 {
				logf("conn %d: GOAWAY received: last=%d %s debug=%q", id,
					binary.BigEndian.Uint32(p)&0x7fffffff, h2code(binary.BigEndian.Uint32(p[4:])), p[8:])
			}
		}
	}
	wr := &frameReader{}
	wr.on = func(ftype, flags byte, sid uint32, p []byte) {
		if ftype != 0x7 || len(p) < 8 {
			return
		}
		atomic.AddInt64(&st.GoawaySent, 1)
		dbg := p[8:]
		if strings.Contains(string(dbg), "too_many_pings") {
			atomic.AddInt64(&st.TooManyPings, 1)
		}
		logf("conn %d: GOAWAY sent: last=%d %s debug=%q", id,
			binary.BigEndian.Uint32(p)&0x7fffffff, h2code(binary.BigEndian.Uint32(p[4:])), dbg)
	}
	return &sniffConn{Conn: conn, rd: rd, wr: wr}, nil
}

func incoming(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

func mdFirst(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// prologue sets the echo headers and the trailers of an RPC; returns the request metadata.
func prologue(ctx context.Context, setHeader, setTrailer func(metadata.MD) error) metadata.MD {
	md := incoming(ctx)
	hdr := metadata.MD{}
	for k, v := range md {
		if strings.HasPrefix(k, "x-echo-") {
			hdr[k] = append([]string(nil), v...)
		}
	}
	if len(hdr) > 0 {
		setHeader(hdr)
	}
	dl := "none"
	if _, ok := ctx.Deadline(); ok {
		dl = "set"
	}
	setTrailer(metadata.MD{
		"x-trailer-id":      {serverID},
		"x-bin-trailer-bin": {string([]byte{0x00, 0x01, 0xfe, 0xff, '\r', '\n', ',', ' ', 'x'})},
		"x-deadline":        {dl},
	})
	return md
}

// pause sleeps x-sleep-ms (or d) unless the RPC ends first.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func sleepOf(md metadata.MD) time.Duration {
	ms, _ := strconv.Atoi(mdFirst(md, "x-sleep-ms"))
	return time.Duration(ms) * time.Millisecond
}

// wantedError is the error asked for by x-want-status, or nil.
func wantedError(md metadata.MD) error {
	s := mdFirst(md, "x-want-status")
	if s == "" {
		return nil
	}
	code, err := strconv.Atoi(s)
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "bad x-want-status %q", s)
	}
	msg := mdFirst(md, "x-want-message")
	if v := md.Get("x-want-message-bin"); len(v) > 0 {
		msg = v[0]
	}
	stt := status.New(codes.Code(code), msg)
	if mdFirst(md, "x-want-details") == "1" {
		if d, err := stt.WithDetails(&errdetails.DebugInfo{
			StackEntries: []string{"frame one", "frame two ünï"},
			Detail:       "details for " + msg,
		}); err == nil {
			stt = d
		}
	}
	return stt.Err()
}

type testServer struct {
	testpb.UnimplementedTestServiceServer
}

func (testServer) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	md := prologue(ctx, func(m metadata.MD) error { return grpc.SetHeader(ctx, m) },
		func(m metadata.MD) error { return grpc.SetTrailer(ctx, m) })
	if err := pause(ctx, sleepOf(md)); err != nil {
		return nil, err
	}
	if err := wantedError(md); err != nil {
		return nil, err
	}
	return &testpb.Empty{}, nil
}

func (testServer) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md := prologue(ctx, func(m metadata.MD) error { return grpc.SetHeader(ctx, m) },
		func(m metadata.MD) error { return grpc.SetTrailer(ctx, m) })
	if err := pause(ctx, sleepOf(md)); err != nil {
		return nil, err
	}
	if err := wantedError(md); err != nil {
		return nil, err
	}
	body := req.GetPayload().GetBody()
	return &testpb.SimpleResponse{Payload: &testpb.Payload{
		Body: pattern(seedOf(body)+uint32(len(body)), int(req.GetResponseSize())),
	}}, nil
}

func (testServer) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	ctx := stream.Context()
	md := prologue(ctx, stream.SetHeader, func(m metadata.MD) error { stream.SetTrailer(m); return nil })
	if err := pause(ctx, sleepOf(md)); err != nil {
		return err
	}
	seed := seedOf(req.GetPayload().GetBody())
	for i, p := range req.GetResponseParameters() {
		if err := pause(ctx, time.Duration(p.GetIntervalUs())*time.Microsecond); err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{
			Body: pattern(seed+uint32(i), int(p.GetSize())),
		}}); err != nil {
			return err
		}
	}
	return wantedError(md)
}

func (testServer) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	ctx := stream.Context()
	md := prologue(ctx, stream.SetHeader, func(m metadata.MD) error { stream.SetTrailer(m); return nil })
	h := sha256.New()
	total := 0
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b := req.GetPayload().GetBody()
		h.Write(b)
		total += len(b)
	}
	if err := pause(ctx, sleepOf(md)); err != nil {
		return err
	}
	stream.SetTrailer(metadata.Pairs("x-input-sha256", hex.EncodeToString(h.Sum(nil))))
	if err := wantedError(md); err != nil {
		return err
	}
	return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
}

func (testServer) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	ctx := stream.Context()
	md := prologue(ctx, stream.SetHeader, func(m metadata.MD) error { stream.SetTrailer(m); return nil })
	if err := pause(ctx, sleepOf(md)); err != nil {
		return err
	}
	var h hash.Hash = sha256.New()
	for n := 0; ; n++ {
		req, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		b := req.GetPayload().GetBody()
		h.Write(b)
		seed := seedOf(b) + uint32(n)*1000
		for i, p := range req.GetResponseParameters() {
			if err := pause(ctx, time.Duration(p.GetIntervalUs())*time.Microsecond); err != nil {
				return err
			}
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{
				Body: pattern(seed+uint32(i), int(p.GetSize())),
			}}); err != nil {
				return err
			}
		}
	}
	stream.SetTrailer(metadata.Pairs("x-input-sha256", hex.EncodeToString(h.Sum(nil))))
	return wantedError(md)
}

func rpcBegin() {
	atomic.AddInt64(&st.RPCs, 1)
	n := atomic.AddInt64(&st.ActiveRPCs, 1)
	for {
		m := atomic.LoadInt64(&st.MaxActiveRPCs)
		if n <= m || atomic.CompareAndSwapInt64(&st.MaxActiveRPCs, m, n) {
			break
		}
	}
}

func rpcEnd(ctx context.Context, method string) {
	atomic.AddInt64(&st.ActiveRPCs, -1)
	switch ctx.Err() {
	case context.Canceled:
		atomic.AddInt64(&st.Cancelled, 1)
		logf("rpc %s cancelled", method)
	case context.DeadlineExceeded:
		atomic.AddInt64(&st.DeadlineExceeded, 1)
		logf("rpc %s deadline exceeded", method)
	}
}

func serverMain(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	statsAddr := fs.String("stats", "127.0.0.1:0", "HTTP/1.1 sidecar serving /stats")
	tlsPair := fs.String("tls", "", "CERT:KEY: serve TLS (ALPN h2)")
	maxStreams := fs.Uint("max-streams", 0, "MaxConcurrentStreams (0 = grpc-go default)")
	id := fs.String("id", "g", "server id (trailer x-trailer-id)")
	graceful := fs.Bool("graceful-on-term", false, "SIGTERM: GracefulStop instead of Stop")
	fs.Parse(args)
	serverID = *id

	var tlsCfg *tls.Config
	if *tlsPair != "" {
		i := strings.LastIndex(*tlsPair, ":")
		if i < 0 {
			log.Fatalf("-tls wants CERT:KEY")
		}
		cert, err := tls.LoadX509KeyPair((*tlsPair)[:i], (*tlsPair)[i+1:])
		if err != nil {
			log.Fatalf("tls: %v", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	sln, err := net.Listen("tcp", *statsAddr)
	if err != nil {
		log.Fatalf("listen stats: %v", err)
	}

	opts := []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (interface{}, error) {
			rpcBegin()
			resp, err := h(ctx, req)
			rpcEnd(ctx, info.FullMethod)
			return resp, err
		}),
		grpc.StreamInterceptor(func(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			rpcBegin()
			err := h(srv, ss)
			rpcEnd(ss.Context(), info.FullMethod)
			return err
		}),
	}
	if *maxStreams > 0 {
		opts = append(opts, grpc.MaxConcurrentStreams(uint32(*maxStreams)))
	}
	// TLS is terminated by sniffListener (below the frame reader), so no grpc credentials.
	srv := grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(srv, testServer{})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("grpc.testing.TestService", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)

	mux := http.NewServeMux()
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		s := serverStats{
			Accepted: atomic.LoadInt64(&st.Accepted), Active: atomic.LoadInt64(&st.Active),
			RPCs: atomic.LoadInt64(&st.RPCs), ActiveRPCs: atomic.LoadInt64(&st.ActiveRPCs),
			MaxActiveRPCs: atomic.LoadInt64(&st.MaxActiveRPCs), Cancelled: atomic.LoadInt64(&st.Cancelled),
			DeadlineExceeded: atomic.LoadInt64(&st.DeadlineExceeded), PingsRecv: atomic.LoadInt64(&st.PingsRecv),
			RstRecv: atomic.LoadInt64(&st.RstRecv), GoawayRecv: atomic.LoadInt64(&st.GoawayRecv),
			GoawaySent: atomic.LoadInt64(&st.GoawaySent), TooManyPings: atomic.LoadInt64(&st.TooManyPings),
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&s)
	})
	mux.HandleFunc("/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range []*int64{&st.RPCs, &st.Cancelled, &st.DeadlineExceeded, &st.PingsRecv,
			&st.RstRecv, &st.GoawayRecv, &st.GoawaySent, &st.TooManyPings} {
			atomic.StoreInt64(p, 0)
		}
		atomic.StoreInt64(&st.MaxActiveRPCs, atomic.LoadInt64(&st.ActiveRPCs))
		io.WriteString(w, "reset\n")
	})
	mux.HandleFunc("/health/set", func(w http.ResponseWriter, r *http.Request) {
		v, ok := healthpb.HealthCheckResponse_ServingStatus_value[r.URL.Query().Get("status")]
		if !ok {
			http.Error(w, "status: want SERVING, NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN", 400)
			return
		}
		svcs := []string{"", "grpc.testing.TestService"}
		if _, given := r.URL.Query()["service"]; given {
			svcs = []string{r.URL.Query().Get("service")}
		}
		for _, svc := range svcs {
			hs.SetServingStatus(svc, healthpb.HealthCheckResponse_ServingStatus(v))
		}
		logf("health: %v -> %s", svcs, healthpb.HealthCheckResponse_ServingStatus(v))
		fmt.Fprintf(w, "%s\n", healthpb.HealthCheckResponse_ServingStatus(v))
	})
	go http.Serve(sln, mux)

	fmt.Printf("STATS %s\n", sln.Addr())
	fmt.Printf("LISTEN %s\n", ln.Addr())
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-sig
		if *graceful {
			logf("SIGTERM: GracefulStop")
			srv.GracefulStop()
		} else {
			logf("SIGTERM: Stop")
			srv.Stop()
		}
		close(done)
	}()
	if err := srv.Serve(&sniffListener{Listener: ln, tlsCfg: tlsCfg}); err != nil {
		logf("serve: %v", err)
	}
	<-done
	os.Exit(0)
}

// ---------------------------------------------------------------- client

type clientOpts struct {
	target, tlsCA, serverName, authority, mode, kind string
	c, n, size, holdMs, gapMs, wantStatus            int
	deadline, rpcTimeout                             time.Duration
}

var dials int64

func dialOptions(o *clientOpts) ([]grpc.DialOption, *tls.Config, error) {
	opts := []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			atomic.AddInt64(&dials, 1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)),
	}
	var tcfg *tls.Config
	if o.tlsCA != "" {
		pem, err := ioutil.ReadFile(o.tlsCA)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, errors.New("no certificate in " + o.tlsCA)
		}
		tcfg = &tls.Config{RootCAs: pool, ServerName: o.serverName}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(tcfg)))
	} else {
		opts = append(opts, grpc.WithInsecure())
	}
	if o.authority != "" {
		opts = append(opts, grpc.WithAuthority(o.authority))
	}
	return opts, tcfg, nil
}

func clientMain(args []string) int {
	o := &clientOpts{}
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	fs.StringVar(&o.target, "target", "", "HOST:PORT")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "CA file: use TLS and verify with it")
	fs.StringVar(&o.serverName, "server-name", "", "TLS server name (SNI, verification)")
	fs.StringVar(&o.authority, "authority", "", ":authority (default: target)")
	fs.StringVar(&o.mode, "mode", "transcript", "transcript|load|concurrent-streams|cancel|call|raw")
	fs.StringVar(&o.kind, "kind", "all", "cancel: server|bidi|unary|all")
	fs.IntVar(&o.c, "c", 1, "concurrency")
	fs.IntVar(&o.n, "n", 1, "number of RPCs (load)")
	fs.IntVar(&o.size, "size", 16, "response size (load, call)")
	fs.IntVar(&o.holdMs, "hold-ms", 0, "server-side delay of each RPC (x-sleep-ms)")
	fs.IntVar(&o.gapMs, "gap-ms", 0, "load: pause between a worker's RPCs")
	fs.IntVar(&o.wantStatus, "want-status", -1, "call: ask the server to fail with this code")
	fs.DurationVar(&o.deadline, "deadline", 60*time.Second, "overall limit of the run")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", 0, "per-RPC deadline (grpc-timeout); 0 = none")
	fs.Parse(args)
	if o.target == "" {
		fmt.Fprintln(os.Stderr, "client: -target is required")
		return 2
	}
	opts, tcfg, err := dialOptions(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 2
	}
	if o.mode == "raw" {
		return rawCall(o, tcfg)
	}
	cc, err := grpc.Dial(o.target, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		return 1
	}
	defer cc.Close()
	// The overall limit cancels the RPCs still running; it is not a deadline, so RPCs carry no
	// grpc-timeout unless -rpc-timeout (or the transcript) asks for one.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(o.deadline, cancel)
	switch o.mode {
	case "transcript":
		rc := transcript(ctx, cc)
		fmt.Fprintf(os.Stderr, "conns=%d\n", atomic.LoadInt64(&dials))
		return rc
	case "load":
		return load(ctx, cc, o, false)
	case "concurrent-streams":
		o.n = o.c
		return load(ctx, cc, o, true)
	case "cancel":
		return cancelMode(ctx, cc, o)
	case "call":
		return oneCall(ctx, cc, o)
	}
	fmt.Fprintln(os.Stderr, "client: unknown mode", o.mode)
	return 2
}

// ---- transcript

type tw struct{ lines []string }

func (t *tw) p(format string, a ...interface{}) { t.lines = append(t.lines, fmt.Sprintf(format, a...)) }

func fmtVal(k, v string) string {
	if strings.HasSuffix(k, "-bin") {
		return "hex:" + hex.EncodeToString([]byte(v))
	}
	return strconv.QuoteToASCII(v)
}

func (t *tw) md(what string, md metadata.MD, onlyEcho bool) {
	keys := make([]string, 0, len(md))
	for k := range md {
		if onlyEcho && !strings.HasPrefix(k, "x-echo-") {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := make([]string, len(md[k]))
		for i, v := range md[k] {
			vals[i] = fmtVal(k, v)
		}
		t.p("  %s %s = [%s]", what, k, strings.Join(vals, ", "))
	}
}

func (t *tw) msg(i int, b []byte) { t.p("  msg %d size=%d sha=%s", i, len(b), digest(b)) }

func (t *tw) status(err error, withMessage bool) {
	s := status.Convert(err)
	if withMessage {
		t.p("  status %d %s message=%s", int(s.Code()), s.Code(), strconv.QuoteToASCII(s.Message()))
	} else {
		t.p("  status %d %s", int(s.Code()), s.Code())
	}
	for _, d := range s.Details() {
		switch v := d.(type) {
		case *errdetails.DebugInfo:
			t.p("  detail DebugInfo stack=%q detail=%s", v.GetStackEntries(), strconv.QuoteToASCII(v.GetDetail()))
		default:
			t.p("  detail %T %v", d, d)
		}
	}
}

func transcript(ctx context.Context, cc *grpc.ClientConn) int {
	tc := testpb.NewTestServiceClient(cc)
	t := &tw{}
	var hdr, trl metadata.MD
	unary := func(name string, md metadata.MD, req *testpb.SimpleRequest, extra ...grpc.CallOption) {
		t.p("== %s", name)
		c := ctx
		if md != nil {
			c = metadata.NewOutgoingContext(ctx, md)
		}
		hdr, trl = nil, nil
		opts := append([]grpc.CallOption{grpc.Header(&hdr), grpc.Trailer(&trl)}, extra...)
		resp, err := tc.UnaryCall(c, req, opts...)
		t.md("header", hdr, true)
		if err == nil {
			t.msg(0, resp.GetPayload().GetBody())
		}
		t.md("trailer", trl, false)
		t.status(err, true)
	}
	payload := func(seed uint32, n int) *testpb.Payload { return &testpb.Payload{Body: pattern(seed, n)} }

	// EmptyCall
	t.p("== empty")
	hdr, trl = nil, nil
	_, err := tc.EmptyCall(ctx, &testpb.Empty{}, grpc.Header(&hdr), grpc.Trailer(&trl))
	t.md("header", hdr, true)
	t.md("trailer", trl, false)
	t.status(err, true)

	unary("unary-small", nil, &testpb.SimpleRequest{ResponseSize: 200, Payload: payload(1, 100)})
	unary("unary-empty-response", nil, &testpb.SimpleRequest{ResponseSize: 0, Payload: payload(2, 10)})
	unary("unary-large", nil, &testpb.SimpleRequest{ResponseSize: 1 << 20, Payload: payload(3, 1<<20)})
	unary("unary-gzip", nil, &testpb.SimpleRequest{ResponseSize: 70000, Payload: payload(4, 70000)},
		grpc.UseCompressor("gzip"))
	long := strings.Repeat("abcdefghij", 200)
	md := metadata.MD{
		"x-echo-plain":    {"hello world"},
		"x-echo-multi":    {"one", "two", "three"},
		"x-echo-spaces":   {"a  b\tc"},
		"x-echo-long":     {long},
		"x-echo-empty":    {""},
		"x-echo-bin-bin":  {string([]byte{0, 1, 2, 0xff, 0xfe, '\r', '\n', ',', ':'}), "second"},
		"x-echo-utf8-bin": {"ünïcødé ✓ 100%"},
		"x-not-echoed":    {"nope"},
	}
	unary("unary-metadata", md, &testpb.SimpleRequest{ResponseSize: 10, Payload: payload(5, 10)})
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	t.p("== unary-with-deadline")
	hdr, trl = nil, nil
	resp, err := tc.UnaryCall(dctx, &testpb.SimpleRequest{ResponseSize: 5}, grpc.Header(&hdr), grpc.Trailer(&trl))
	dcancel()
	if err == nil {
		t.msg(0, resp.GetPayload().GetBody())
	}
	t.md("trailer", trl, false)
	t.status(err, true)

	// errors
	unary("error-trailers-only", metadata.MD{
		"x-want-status":      {"5"},
		"x-want-message-bin": {"ünïcødé 100% sûr / 日本語 %2F %% \t end"},
	}, &testpb.SimpleRequest{ResponseSize: 10})
	unary("error-after-headers", metadata.MD{
		"x-echo-ctx":     {"abc"},
		"x-want-status":  {"9"},
		"x-want-message": {"plain 50% message, with: punctuation"},
	}, &testpb.SimpleRequest{ResponseSize: 10})
	unary("error-details", metadata.MD{
		"x-want-status":  {"3"},
		"x-want-message": {"invalid argument with details"},
		"x-want-details": {"1"},
	}, &testpb.SimpleRequest{ResponseSize: 10})
	unary("error-empty-message", metadata.MD{"x-want-status": {"7"}}, &testpb.SimpleRequest{})

	// server streaming
	sstream := func(name string, md metadata.MD, sizes []int32, intervalUs int32) {
		t.p("== %s", name)
		c := ctx
		if md != nil {
			c = metadata.NewOutgoingContext(ctx, md)
		}
		req := &testpb.StreamingOutputCallRequest{Payload: payload(6, 50)}
		for _, s := range sizes {
			req.ResponseParameters = append(req.ResponseParameters,
				&testpb.ResponseParameters{Size: s, IntervalUs: intervalUs})
		}
		s, err := tc.StreamingOutputCall(c, req)
		if err != nil {
			t.status(err, true)
			return
		}
		h, herr := s.Header()
		if herr == nil {
			t.md("header", h, true)
		}
		for i := 0; ; i++ {
			m, err := s.Recv()
			if err != nil {
				t.md("trailer", s.Trailer(), false)
				if err == io.EOF {
					err = nil
				}
				t.status(err, true)
				break
			}
			t.msg(i, m.GetPayload().GetBody())
		}
	}
	sstream("server-stream", metadata.MD{"x-echo-s": {"1"}}, []int32{0, 1, 10, 1000, 65536, 100000, 7, 300000}, 0)
	sstream("server-stream-paced", nil, []int32{100, 100, 100, 100, 100}, 20000)
	sstream("server-stream-error", metadata.MD{"x-want-status": {"10"}, "x-want-message": {"aborted midway"}},
		[]int32{10, 20, 30}, 0)

	// client streaming
	t.p("== client-stream")
	cs, err := tc.StreamingInputCall(metadata.NewOutgoingContext(ctx, metadata.MD{"x-echo-c": {"2"}}))
	if err != nil {
		t.status(err, true)
	} else {
		for i := 0; i < 20; i++ {
			if err := cs.Send(&testpb.StreamingInputCallRequest{Payload: payload(uint32(100+i), (i*9973)%40000)}); err != nil {
				break // the error is reported by CloseAndRecv
			}
		}
		r, err := cs.CloseAndRecv()
		if h, herr := cs.Header(); herr == nil {
			t.md("header", h, true)
		}
		if err == nil {
			t.p("  aggregated_payload_size=%d", r.GetAggregatedPayloadSize())
		}
		t.md("trailer", cs.Trailer(), false)
		t.status(err, true)
	}

	// bidi ping-pong: each request's answers are read before the next request is sent
	t.p("== bidi-pingpong")
	bs, err := tc.FullDuplexCall(metadata.NewOutgoingContext(ctx, metadata.MD{"x-echo-b": {"3"}}))
	if err != nil {
		t.status(err, true)
	} else {
		n := 0
		var ferr error
		var msgs []string
	rounds:
		for r := 0; r < 10; r++ {
			req := &testpb.StreamingOutputCallRequest{Payload: payload(uint32(200+r), r*100),
				ResponseParameters: []*testpb.ResponseParameters{{Size: int32(r * 1000)}, {Size: int32(r + 1)}}}
			if err := bs.Send(req); err != nil {
				break
			}
			for k := 0; k < 2; k++ {
				m, err := bs.Recv()
				if err != nil {
					ferr = err
					break rounds
				}
				b := m.GetPayload().GetBody()
				msgs = append(msgs, fmt.Sprintf("  msg %d size=%d sha=%s", n, len(b), digest(b)))
				n++
			}
		}
		if h, herr := bs.Header(); herr == nil {
			t.md("header", h, true)
		}
		t.lines = append(t.lines, msgs...)
		if ferr == nil {
			bs.CloseSend()
			_, ferr = bs.Recv()
		}
		if ferr == io.EOF {
			ferr = nil
		}
		t.md("trailer", bs.Trailer(), false)
		t.status(ferr, true)
	}

	// bidi with concurrent sender and receiver, more data than any window
	t.p("== bidi-concurrent")
	bs, err = tc.FullDuplexCall(ctx)
	if err != nil {
		t.status(err, true)
	} else {
		go func() {
			for r := 0; r < 100; r++ {
				if err := bs.Send(&testpb.StreamingOutputCallRequest{Payload: payload(uint32(300+r), 5000),
					ResponseParameters: []*testpb.ResponseParameters{{Size: 20000}}}); err != nil {
					return
				}
			}
			bs.CloseSend()
		}()
		h := sha256.New()
		n, total := 0, 0
		var ferr error
		for {
			m, err := bs.Recv()
			if err != nil {
				if err != io.EOF {
					ferr = err
				}
				break
			}
			h.Write(m.GetPayload().GetBody())
			total += len(m.GetPayload().GetBody())
			n++
		}
		t.p("  msgs=%d bytes=%d sha=%s", n, total, hex.EncodeToString(h.Sum(nil))[:16])
		t.md("trailer", bs.Trailer(), false)
		t.status(ferr, true)
	}

	// unimplemented method / unknown service
	t.p("== unimplemented-method")
	hs, err := tc.HalfDuplexCall(ctx)
	if err == nil {
		hs.CloseSend()
		_, err = hs.Recv()
	}
	t.status(err, true)
	t.p("== unknown-service")
	err = cc.Invoke(ctx, "/nope.Nope/Call", &testpb.Empty{}, &testpb.Empty{})
	t.status(err, true)

	// health
	t.p("== health")
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: "grpc.testing.TestService"})
	if err == nil {
		t.p("  serving_status=%s", hr.GetStatus())
	}
	t.status(err, true)

	// deadline exceeded: who notices first (client, server, proxy) may vary: code only
	t.p("== deadline-exceeded")
	dctx, dcancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = tc.UnaryCall(metadata.NewOutgoingContext(dctx, metadata.MD{"x-sleep-ms": {"5000"}}),
		&testpb.SimpleRequest{ResponseSize: 5})
	dcancel()
	t.status(err, false)

	// the connection still works afterwards
	unary("unary-after", nil, &testpb.SimpleRequest{ResponseSize: 33, Payload: payload(7, 33)})

	for _, l := range t.lines {
		fmt.Println(l)
	}
	return 0
}

// ---- load / concurrent-streams

func load(ctx context.Context, cc *grpc.ClientConn, o *clientOpts, barrier bool) int {
	tc := testpb.NewTestServiceClient(cc)
	var next, ok, bad int64
	var mu sync.Mutex
	codesSeen := map[string]int{}
	firstErrs := 0
	start := make(chan struct{})
	var wg sync.WaitGroup
	md := metadata.MD{}
	if o.holdMs > 0 {
		md.Set("x-sleep-ms", strconv.Itoa(o.holdMs))
	}
	if barrier {
		// connect first so that every RPC starts at (nearly) the same moment
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		tc.EmptyCall(wctx, &testpb.Empty{}, grpc.WaitForReady(true))
		wcancel()
	}
	t0 := time.Now()
	for w := 0; w < o.c; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			<-start
			for first := true; ; first = false {
				i := atomic.AddInt64(&next, 1)
				if int(i) > o.n || ctx.Err() != nil {
					return
				}
				if !first && o.gapMs > 0 {
					select {
					case <-time.After(time.Duration(o.gapMs) * time.Millisecond):
					case <-ctx.Done():
						return
					}
				}
				c := metadata.NewOutgoingContext(ctx, md)
				var cancel context.CancelFunc = func() {}
				if o.rpcTimeout > 0 {
					c, cancel = context.WithTimeout(c, o.rpcTimeout)
				}
				body := pattern(uint32(i), 32)
				resp, err := tc.UnaryCall(c, &testpb.SimpleRequest{ResponseSize: int32(o.size),
					Payload: &testpb.Payload{Body: body}})
				cancel()
				if err == nil && len(resp.GetPayload().GetBody()) == o.size &&
					digest(resp.GetPayload().GetBody()) == digest(pattern(seedOf(body)+32, o.size)) {
					atomic.AddInt64(&ok, 1)
					continue
				}
				atomic.AddInt64(&bad, 1)
				name := "BadPayload"
				if err != nil {
					name = status.Code(err).String()
				}
				mu.Lock()
				codesSeen[name]++
				if firstErrs < 5 {
					firstErrs++
					fmt.Fprintf(os.Stderr, "rpc %d: %v\n", i, err)
				}
				mu.Unlock()
			}
		}(w)
	}
	close(start)
	wg.Wait()
	el := time.Since(t0)
	if barrier {
		fmt.Printf("ok=%d err=%d conns=%d elapsed_ms=%d\n", ok, bad, atomic.LoadInt64(&dials), el.Milliseconds())
	} else {
		fmt.Printf("ok=%d err=%d conns=%d\n", ok, bad, atomic.LoadInt64(&dials))
	}
	names := make([]string, 0, len(codesSeen))
	for k := range codesSeen {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := []string{}
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", k, codesSeen[k]))
	}
	fmt.Printf("codes: %s\n", strings.Join(parts, " "))
	if bad > 0 || int(ok) != o.n {
		return 1
	}
	return 0
}

// ---- cancel

func cancelMode(ctx context.Context, cc *grpc.ClientConn, o *clientOpts) int {
	tc := testpb.NewTestServiceClient(cc)
	kinds := []string{o.kind}
	if o.kind == "all" {
		kinds = []string{"server", "bidi", "unary"}
	}
	rc := 0
	for _, k := range kinds {
		cctx, cancel := context.WithCancel(ctx)
		var got int
		var err error
		switch k {
		case "server":
			req := &testpb.StreamingOutputCallRequest{}
			for i := 0; i < 100; i++ {
				req.ResponseParameters = append(req.ResponseParameters,
					&testpb.ResponseParameters{Size: 100, IntervalUs: 100000})
			}
			var s testpb.TestService_StreamingOutputCallClient
			if s, err = tc.StreamingOutputCall(cctx, req); err == nil {
				if _, err = s.Recv(); err == nil {
					got++
					cancel()
					for err == nil {
						if _, err = s.Recv(); err == nil {
							got++
						}
					}
				}
			}
		case "bidi":
			var s testpb.TestService_FullDuplexCallClient
			if s, err = tc.FullDuplexCall(cctx); err == nil {
				params := []*testpb.ResponseParameters{{Size: 10}}
				for i := 0; i < 100; i++ {
					params = append(params, &testpb.ResponseParameters{Size: 10, IntervalUs: 100000})
				}
				if err = s.Send(&testpb.StreamingOutputCallRequest{ResponseParameters: params}); err == nil {
					if _, err = s.Recv(); err == nil {
						got++
						cancel()
						for err == nil {
							if _, err = s.Recv(); err == nil {
								got++
							}
						}
					}
				}
			}
		case "unary":
			hold := o.holdMs
			if hold <= 0 {
				hold = 10000
			}
			time.AfterFunc(300*time.Millisecond, cancel)
			_, err = tc.UnaryCall(metadata.NewOutgoingContext(cctx, metadata.Pairs("x-sleep-ms", strconv.Itoa(hold))),
				&testpb.SimpleRequest{ResponseSize: 1})
		default:
			fmt.Fprintln(os.Stderr, "cancel: unknown -kind", k)
			cancel()
			return 2
		}
		cancel()
		code := status.Code(err)
		fmt.Printf("cancel %s: got=%d code=%d %s\n", k, got, int(code), code)
		if code != codes.Canceled {
			rc = 1
		}
	}
	fmt.Printf("conns=%d\n", atomic.LoadInt64(&dials))
	return rc
}

// ---- call

func oneCall(ctx context.Context, cc *grpc.ClientConn, o *clientOpts) int {
	tc := testpb.NewTestServiceClient(cc)
	md := metadata.MD{}
	if o.holdMs > 0 {
		md.Set("x-sleep-ms", strconv.Itoa(o.holdMs))
	}
	if o.wantStatus >= 0 {
		md.Set("x-want-status", strconv.Itoa(o.wantStatus))
		md.Set("x-want-message", "wanted")
	}
	c := metadata.NewOutgoingContext(ctx, md)
	if o.rpcTimeout > 0 {
		var cancel context.CancelFunc
		c, cancel = context.WithTimeout(c, o.rpcTimeout)
		defer cancel()
	}
	var hdr, trl metadata.MD
	t0 := time.Now()
	resp, err := tc.UnaryCall(c, &testpb.SimpleRequest{ResponseSize: int32(o.size)}, grpc.Header(&hdr), grpc.Trailer(&trl))
	el := time.Since(t0)
	s := status.Convert(err)
	fmt.Printf("code=%d name=%s message=%s elapsed_ms=%d\n", int(s.Code()), s.Code(),
		strconv.QuoteToASCII(s.Message()), el.Milliseconds())
	if err == nil {
		fmt.Printf("msg size=%d\n", len(resp.GetPayload().GetBody()))
	}
	t := &tw{}
	t.md("header", hdr, false)
	t.md("trailer", trl, false)
	for _, l := range t.lines {
		fmt.Println(strings.TrimSpace(l))
	}
	fmt.Printf("conns=%d\n", atomic.LoadInt64(&dials))
	return 0
}

// ---- raw: one UnaryCall over golang.org/x/net/http2, to see the HTTP-level shape

func rawCall(o *clientOpts, tcfg *tls.Config) int {
	tr := &http2.Transport{}
	scheme := "https"
	if tcfg == nil {
		scheme = "http"
		tr.AllowHTTP = true
		tr.DialTLS = func(network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.DialTimeout(network, addr, 5*time.Second)
		}
	} else {
		tr.TLSClientConfig = tcfg
	}
	host := o.target
	if o.authority != "" {
		host = o.authority
	}
	// an empty SimpleRequest: one uncompressed gRPC message of length 0
	req, _ := http.NewRequest("POST", scheme+"://"+o.target+"/grpc.testing.TestService/UnaryCall",
		strings.NewReader("\x00\x00\x00\x00\x00"))
	req.Host = host
	req.Header.Set("content-type", "application/grpc")
	req.Header.Set("te", "trailers")
	if o.holdMs > 0 {
		req.Header.Set("x-sleep-ms", strconv.Itoa(o.holdMs))
	}
	if o.wantStatus >= 0 {
		req.Header.Set("x-want-status", strconv.Itoa(o.wantStatus))
		req.Header.Set("x-want-message", "wanted")
	}
	if o.rpcTimeout > 0 {
		req.Header.Set("grpc-timeout", fmt.Sprintf("%dm", o.rpcTimeout.Milliseconds()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.deadline)
	defer cancel()
	resp, err := (&http.Client{Transport: tr}).Do(req.WithContext(ctx))
	if err != nil {
		fmt.Printf("ERROR %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	fmt.Printf("HTTP %d\n", resp.StatusCode)
	printHeader := func(what string, h http.Header) {
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			for _, v := range h[k] {
				fmt.Printf("%s %s: %s\n", what, strings.ToLower(k), v)
			}
		}
	}
	printHeader("H", resp.Header)
	n, err := io.Copy(ioutil.Discard, resp.Body)
	fmt.Printf("BODY %d\n", n)
	if err != nil {
		fmt.Printf("BODYERROR %v\n", err)
	}
	printHeader("T", resp.Trailer)
	return 0
}
