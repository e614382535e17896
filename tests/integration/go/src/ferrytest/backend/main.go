// backend: a net/http test server for ferry's integration tests.
//
// Prints "LISTEN <addr>" on stdout once listening. Endpoints:
//
//	/              200 "hello"
//	/echo          echoes the request body; X-Echo-Method, X-Echo-Length headers
//	/sha256        consumes the body; answers "<len> <hex sha256>"
//	/slowsink?kbps=N  reads the body at N KiB/s; answers "<len>"
//	/headers       JSON: method, host, proto, headers, transfer_encoding, content_length,
//	               body_len, trailers, remote
//	/status/N      status N with a short body
//	/sleep?ms=N    answers 200 "slept" after N ms
//	/big?bytes=N   streams N deterministic bytes (&chunked=1: no Content-Length)
//	/chunked       chunked response with trailers X-Trailer-One, X-Trailer-Sum
//	/reset         hijacks, writes partial headers+body, closes with RST (SO_LINGER 0)
//	               ?when=before: RST before any response byte
//	/close         200 with "Connection: close"
//	/stats         JSON {"accepted","active","requests","h2_requests","health_requests",
//	               "health_last" (method, Host, User-Agent and protocol of the last health
//	               request, space-separated)};
//	               /stats/reset zeroes counters ("accepted"/"active" are TCP connections,
//	               counted at the listener, so h2c connections taken over from net/http
//	               count too; "requests" leaves out /stats, the -health-path and /health/*)
//
// Health (for active health checks): -health-path PATH (e.g. /healthz) answers 200 "ok" and
// counts "health_requests"; GET /health/fail makes it answer 503 "failing", /health/ok 200
// "ok" again, /health/set?status=N&body=TEXT anything (each answers the new state);
// -health-fail starts failing. -delay D holds every response but /stats and health ones D
// (e.g. 50ms); -root-status N makes / answer N (default 200) with body "status N".
//
// -ka-hint VALUE adds "Keep-Alive: VALUE" (e.g. timeout=1) to every response.
//
// HTTP/2: -h2c serves h2c (prior knowledge and Upgrade: h2c) besides HTTP/1.1 on a cleartext
// listener; -tls CERT:KEY serves TLS with ALPN h2 and http/1.1 (-no-h2: http/1.1 only);
// -max-streams N sets SETTINGS_MAX_CONCURRENT_STREAMS. With TLS, /headers adds "tls_resumed"
// (tls.ConnectionState.DidResume), "tls_alpn", "tls_server_name" and "tls_version".
// -client-ca FILE (with -tls): mutual TLS, a client certificate signed by a CA of FILE is
// required and verified (tls.RequireAndVerifyClientCert); /headers adds "tls_client_cn" (the
// verified client certificate's subject CN, "" if none) and TLS handshake errors are logged
// to stderr ("http: TLS handshake error from ..."). -tls-max 1.2 caps the TLS version (with
// TLS 1.2 a rejected client certificate fails the client's handshake; with 1.3 the client
// completes its handshake first and learns of the rejection from an alert on its next read).
// -graceful-on-term: SIGTERM closes the listener at once, sends GOAWAY to h2 connections, lets
// in-flight requests finish (up to 30 s, h2c connections included) and exits 0.
//
// Every response carries X-Backend-Conn (connection number) and X-Backend-Conn-Req (request
// number on that connection) and X-Backend-Id (the -id flag).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

type connInfo struct {
	id   int64
	reqs int64
}

type ctxKey struct{}

var (
	accepted  int64
	active    int64
	requests  int64
	h2reqs    int64
	connSeq   int64
	backendID string
	healthReq int64

	healthMu     sync.Mutex
	healthStatus = 200
	healthBody   = "ok"
	healthLast   = ""
)

func setHealth(status int, body string) {
	healthMu.Lock()
	healthStatus, healthBody = status, body
	healthMu.Unlock()
}

func getHealth() (int, string) {
	healthMu.Lock()
	defer healthMu.Unlock()
	return healthStatus, healthBody
}

// countingListener counts accepted and open TCP connections. Counting at the listener (not
// with http.Server.ConnState) keeps h2c connections, which net/http hands over by Hijack,
// counted as active until they are really closed.
type countingListener struct {
	net.Listener
}

type countedConn struct {
	net.Conn
	once sync.Once
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	atomic.AddInt64(&accepted, 1)
	atomic.AddInt64(&active, 1)
	return &countedConn{Conn: c}, nil
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { atomic.AddInt64(&active, -1) })
	return err
}

// CloseWrite lets net/http half-close an HTTP/1.1 connection as it does on a *net.TCPConn.
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// tcpConn finds the *net.TCPConn under a (possibly wrapped) connection.
func tcpConn(c net.Conn) *net.TCPConn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case *countedConn:
			c = v.Conn
		case *tls.Conn:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

func pattern(off int64, buf []byte) {
	for i := range buf {
		buf[i] = byte((off + int64(i)) % 251)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	idle := flag.Duration("idle-timeout", 0, "http.Server.IdleTimeout (0 = none)")
	id := flag.String("id", "b", "backend id reported in X-Backend-Id")
	quiet := flag.Bool("quiet", true, "no per-request logging")
	kaHint := flag.String("ka-hint", "", "if set, every response carries \"Keep-Alive: <value>\"")
	useH2C := flag.Bool("h2c", false, "serve h2c (prior knowledge and Upgrade) besides HTTP/1.1")
	tlsFlag := flag.String("tls", "", "CERT:KEY: serve TLS with ALPN h2, http/1.1")
	noH2 := flag.Bool("no-h2", false, "with -tls: offer only http/1.1 by ALPN (no HTTP/2)")
	clientCA := flag.String("client-ca", "", "with -tls: require a client certificate signed by a CA of this PEM file")
	tlsMax := flag.String("tls-max", "", "with -tls: highest TLS version, 1.2 or 1.3 (default: Go's, 1.3)")
	maxStreams := flag.Uint("max-streams", 0, "HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (0 = Go's default, 250)")
	graceful := flag.Bool("graceful-on-term", false, "SIGTERM: close the listener, GOAWAY, drain up to 30s, exit 0")
	healthPath := flag.String("health-path", "", "serve a health endpoint at this path (200 \"ok\"; /health/fail, /health/ok flip it)")
	healthFail := flag.Bool("health-fail", false, "with -health-path: start failing (503 \"failing\")")
	delay := flag.Duration("delay", 0, "hold every response (but /stats and health ones) this long")
	rootStatus := flag.Int("root-status", 200, "status of / (other than 200: body \"status N\")")
	flag.Parse()
	backendID = *id
	if *healthFail {
		setHealth(503, "failing")
	}

	rawLn, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	var ln net.Listener = countingListener{rawLn}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		if *rootStatus != 200 {
			w.WriteHeader(*rootStatus)
			fmt.Fprintf(w, "status %d\n", *rootStatus)
			return
		}
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), 400)
			return
		}
		w.Header().Set("X-Echo-Method", r.Method)
		w.Header().Set("X-Echo-Length", strconv.Itoa(len(body)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	})
	mux.HandleFunc("/sha256", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, "read body: "+err.Error(), 400)
			return
		}
		fmt.Fprintf(w, "%d %s\n", n, hex.EncodeToString(h.Sum(nil)))
	})
	mux.HandleFunc("/slowsink", func(w http.ResponseWriter, r *http.Request) {
		kbps, _ := strconv.Atoi(r.URL.Query().Get("kbps"))
		if kbps <= 0 {
			kbps = 1024
		}
		buf := make([]byte, 16*1024)
		var n int64
		start := time.Now()
		for {
			c, err := r.Body.Read(buf)
			n += int64(c)
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, "read body: "+err.Error(), 400)
				return
			}
			due := time.Duration(float64(n) / float64(kbps*1024) * float64(time.Second))
			if d := due - time.Since(start); d > 0 {
				time.Sleep(d)
			}
		}
		fmt.Fprintf(w, "%d\n", n)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		out := map[string]interface{}{
			"method":            r.Method,
			"host":              r.Host,
			"proto":             r.Proto,
			"uri":               r.RequestURI,
			"headers":           r.Header,
			"transfer_encoding": r.TransferEncoding,
			"content_length":    r.ContentLength,
			"body_len":          n,
			"trailers":          r.Trailer,
			"remote":            r.RemoteAddr,
		}
		if r.TLS != nil {
			out["tls_resumed"] = r.TLS.DidResume
			out["tls_alpn"] = r.TLS.NegotiatedProtocol
			out["tls_server_name"] = r.TLS.ServerName
			out["tls_version"] = map[uint16]string{tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3"}[r.TLS.Version]
			cn := ""
			if len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
				cn = r.TLS.VerifiedChains[0][0].Subject.CommonName
			}
			out["tls_client_cn"] = cn
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		code, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		if err != nil || code < 100 || code > 999 {
			http.Error(w, "bad status", 400)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d\n", code)
	})
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slept")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n, _ := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		if r.URL.Query().Get("chunked") != "1" {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		buf := make([]byte, 64*1024)
		var off int64
		for off < n {
			c := int64(len(buf))
			if n-off < c {
				c = n - off
			}
			pattern(off, buf[:c])
			if _, err := w.Write(buf[:c]); err != nil {
				return
			}
			off += c
		}
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Trailer-One, X-Trailer-Sum")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		sum := 0
		for i := 0; i < 5; i++ {
			s := fmt.Sprintf("chunk-%d\n", i)
			sum += len(s)
			io.WriteString(w, s)
			fl.Flush()
		}
		w.Header().Set("X-Trailer-One", "one")
		w.Header().Set("X-Trailer-Sum", strconv.Itoa(sum))
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Connection", "close")
		io.WriteString(w, "closing")
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "no hijack", 500)
			return
		}
		conn, bw, err := hj.Hijack()
		if err != nil {
			return
		}
		if r.URL.Query().Get("when") != "before" {
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
			bw.WriteString(strings.Repeat("x", 1000))
			bw.Flush()
			time.Sleep(100 * time.Millisecond)
		}
		if tc := tcpConn(conn); tc != nil {
			tc.SetLinger(0)
		}
		conn.Close()
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		healthMu.Lock()
		last, _ := json.Marshal(healthLast)
		healthMu.Unlock()
		fmt.Fprintf(w, "{\"accepted\": %d, \"active\": %d, \"requests\": %d, \"h2_requests\": %d, \"health_requests\": %d, \"health_last\": %s}\n",
			atomic.LoadInt64(&accepted), atomic.LoadInt64(&active), atomic.LoadInt64(&requests),
			atomic.LoadInt64(&h2reqs), atomic.LoadInt64(&healthReq), last)
	})
	mux.HandleFunc("/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		atomic.StoreInt64(&accepted, 0)
		atomic.StoreInt64(&requests, 0)
		atomic.StoreInt64(&h2reqs, 0)
		atomic.StoreInt64(&healthReq, 0)
		io.WriteString(w, "reset\n")
	})

	if *healthPath != "" {
		mux.HandleFunc(*healthPath, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			healthMu.Lock()
			healthLast = r.Method + " " + r.Host + " " + r.UserAgent() + " " + r.Proto
			healthMu.Unlock()
			code, body := getHealth()
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(code)
			io.WriteString(w, body)
		})
		mux.HandleFunc("/health/", func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/health/fail":
				setHealth(503, "failing")
			case "/health/ok":
				setHealth(200, "ok")
			case "/health/set":
				code, err := strconv.Atoi(r.URL.Query().Get("status"))
				if err != nil || code < 100 || code > 999 {
					http.Error(w, "bad status", 400)
					return
				}
				setHealth(code, r.URL.Query().Get("body"))
			default:
				http.NotFound(w, r)
				return
			}
			code, body := getHealth()
			fmt.Fprintf(w, "%d %s\n", code, body)
		})
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ci, _ := r.Context().Value(ctxKey{}).(*connInfo)
		isHealth := *healthPath != "" && (r.URL.Path == *healthPath || strings.HasPrefix(r.URL.Path, "/health/"))
		if *healthPath != "" && r.URL.Path == *healthPath {
			atomic.AddInt64(&healthReq, 1)
		}
		if !strings.HasPrefix(r.URL.Path, "/stats") && !isHealth {
			atomic.AddInt64(&requests, 1)
			if r.ProtoMajor == 2 {
				atomic.AddInt64(&h2reqs, 1)
			}
			if *delay > 0 {
				select {
				case <-time.After(*delay):
				case <-r.Context().Done():
				}
			}
		}
		if ci != nil {
			n := atomic.AddInt64(&ci.reqs, 1)
			w.Header().Set("X-Backend-Conn", strconv.FormatInt(ci.id, 10))
			w.Header().Set("X-Backend-Conn-Req", strconv.FormatInt(n, 10))
		}
		w.Header().Set("X-Backend-Id", backendID)
		if *kaHint != "" {
			w.Header().Set("Keep-Alive", *kaHint)
		}
		if !*quiet {
			log.Printf("%s %s %s conn=%v", r.Method, r.RequestURI, r.Proto, ci)
		}
		mux.ServeHTTP(w, r)
	})

	srv := &http.Server{
		Handler:     handler,
		IdleTimeout: *idle,
		ErrorLog:    log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, &connInfo{id: atomic.AddInt64(&connSeq, 1)})
		},
	}
	if *idle == 0 {
		// IdleTimeout 0 falls back to ReadTimeout (0 too): no idle limit.
		srv.IdleTimeout = 0
	}

	h2s := &http2.Server{MaxConcurrentStreams: uint32(*maxStreams)}
	if *tlsFlag != "" {
		certFile, keyFile, _ := strings.Cut(*tlsFlag, ":")
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			log.Fatalf("tls: %v", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		switch *tlsMax {
		case "":
		case "1.2":
			srv.TLSConfig.MaxVersion = tls.VersionTLS12
		case "1.3":
			srv.TLSConfig.MaxVersion = tls.VersionTLS13
		default:
			log.Fatalf("-tls-max: want 1.2 or 1.3, got %q", *tlsMax)
		}
		if *clientCA != "" {
			pem, err := os.ReadFile(*clientCA)
			if err != nil {
				log.Fatalf("client-ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				log.Fatalf("client-ca: no PEM certificate in %s", *clientCA)
			}
			srv.TLSConfig.ClientCAs = pool
			srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
			srv.ErrorLog = log.New(os.Stderr, "", log.LstdFlags)
		}
		if *noH2 {
			srv.TLSConfig.NextProtos = []string{"http/1.1"}
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		} else if err := http2.ConfigureServer(srv, h2s); err != nil { // NextProtos h2, http/1.1
			log.Fatalf("http2: %v", err)
		}
		ln = tls.NewListener(ln, srv.TLSConfig)
	} else if *clientCA != "" {
		log.Fatalf("-client-ca needs -tls")
	} else if *useH2C {
		// ConfigureServer registers h2s with srv.Shutdown, so hijacked h2c connections get a
		// graceful GOAWAY too.
		if err := http2.ConfigureServer(srv, h2s); err != nil {
			log.Fatalf("http2: %v", err)
		}
		srv.Handler = h2c.NewHandler(handler, h2s)
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "LISTEN %s\n", ln.Addr().String())
	out.Flush()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-sigs
		grace := 5 * time.Second
		if *graceful {
			grace = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		// Shutdown closes the listener first (a restarted backend can bind the port at once),
		// GOAWAYs the h2 connections it knows of and waits for the HTTP/1.1 ones.
		srv.Shutdown(ctx)
		if *graceful {
			// h2c connections were hijacked from net/http: wait for them to close (the h2
			// server closes each 1 s after its last stream finished).
			for atomic.LoadInt64(&active) > 0 && ctx.Err() == nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
		close(done)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("serve: %v", err)
	}
	<-done
}
