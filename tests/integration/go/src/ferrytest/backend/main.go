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
//	/stats         JSON {"accepted","active","requests"}; /stats/reset zeroes counters
//
// -ka-hint VALUE adds "Keep-Alive: VALUE" (e.g. timeout=1) to every response.
//
// Every response carries X-Backend-Conn (connection number) and X-Backend-Conn-Req (request
// number on that connection) and X-Backend-Id (the -id flag).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
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
)

type connInfo struct {
	id   int64
	reqs int64
}

type ctxKey struct{}

var (
	accepted int64
	active   int64
	requests int64
	connSeq  int64
	backendID string
)

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
	flag.Parse()
	backendID = *id

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
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
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"accepted\": %d, \"active\": %d, \"requests\": %d}\n",
			atomic.LoadInt64(&accepted), atomic.LoadInt64(&active), atomic.LoadInt64(&requests))
	})
	mux.HandleFunc("/stats/reset", func(w http.ResponseWriter, r *http.Request) {
		atomic.StoreInt64(&accepted, 0)
		atomic.StoreInt64(&requests, 0)
		io.WriteString(w, "reset\n")
	})

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ci, _ := r.Context().Value(ctxKey{}).(*connInfo)
		if !strings.HasPrefix(r.URL.Path, "/stats") {
			atomic.AddInt64(&requests, 1)
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

	var mu sync.Mutex
	states := map[net.Conn]http.ConnState{}
	srv := &http.Server{
		Handler:     handler,
		IdleTimeout: *idle,
		ErrorLog:    log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, ctxKey{}, &connInfo{id: atomic.AddInt64(&connSeq, 1)})
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch s {
			case http.StateNew:
				atomic.AddInt64(&accepted, 1)
				atomic.AddInt64(&active, 1)
			case http.StateClosed, http.StateHijacked:
				if _, ok := states[c]; ok {
					atomic.AddInt64(&active, -1)
				}
				delete(states, c)
				return
			}
			states[c] = s
		},
	}
	if *idle == 0 {
		// IdleTimeout 0 falls back to ReadTimeout (0 too): no idle limit.
		srv.IdleTimeout = 0
	}

	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "LISTEN %s\n", ln.Addr().String())
	out.Flush()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		close(done)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Fatalf("serve: %v", err)
	}
	<-done
}
