// benchclient: the two loads of bench/run.sh that wrk and h2load cannot give.
//
//	benchclient conn -addr 127.0.0.1:P [-tls] [-resume] -c 8 -d 5s
//	    a new TCP (and TLS) connection per request, C at a time, for D: dial, handshake (full,
//	    or resumed from a session cache with -resume), one keep-alive GET, read the response by
//	    Content-Length, close from the client side (so a server's lingering close costs
//	    nothing). Prints "requests=N errors=E resumed=R p50_us=X p99_us=Y seconds=S".
//	benchclient idle -addr 127.0.0.1:P -n 10000
//	    opens N connections, one GET each (response read), then keeps them all open and idle;
//	    prints "open=N ok=K failed=F" and waits for stdin to close (or SIGTERM).
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

func oneRequest(addr string, cfg *tls.Config) (resumed bool, err error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	var c net.Conn = raw
	if cfg != nil {
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return false, err
		}
		resumed = tc.ConnectionState().DidResume
		c = tc
	}
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		return resumed, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return resumed, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return resumed, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resumed, nil
}

func connMode(args []string) {
	fs := flag.NewFlagSet("conn", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:21100", "")
	useTLS := fs.Bool("tls", false, "")
	resume := fs.Bool("resume", false, "")
	conc := fs.Int("c", 8, "")
	dur := fs.Duration("d", 5*time.Second, "")
	fs.Parse(args)
	var ok, errs, res int64
	var mu sync.Mutex
	var lats []int64
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cfg *tls.Config
			if *useTLS {
				cfg = &tls.Config{InsecureSkipVerify: true, ServerName: "localhost",
					NextProtos: []string{"http/1.1"}}
				if *resume {
					cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
				}
			}
			local := make([]int64, 0, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				r, err := oneRequest(*addr, cfg)
				if err != nil {
					atomic.AddInt64(&errs, 1)
					continue
				}
				local = append(local, int64(time.Since(t0)/time.Microsecond))
				atomic.AddInt64(&ok, 1)
				if r {
					atomic.AddInt64(&res, 1)
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	pct := func(p float64) int64 {
		if len(lats) == 0 {
			return 0
		}
		return lats[int(p*float64(len(lats)-1))]
	}
	fmt.Printf("requests=%d errors=%d resumed=%d p50_us=%d p99_us=%d seconds=%.3f\n",
		ok, errs, res, pct(0.50), pct(0.99), secs)
}

func idleMode(args []string) {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:21100", "")
	n := fs.Int("n", 10000, "")
	fs.Parse(args)
	conns := make([]net.Conn, 0, *n)
	ok, failed := 0, 0
	buf := make([]byte, 4096)
	for i := 0; i < *n; i++ {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			failed++
			continue
		}
		conns = append(conns, c)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			failed++
			continue
		}
		br := bufio.NewReaderSize(c, 512)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			failed++
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.SetDeadline(time.Time{})
		ok++
	}
	_ = buf
	fmt.Printf("open=%d ok=%d failed=%d\n", len(conns), ok, failed)
	os.Stdout.Sync()
	io.Copy(io.Discard, os.Stdin) // hold until stdin closes
	for _, c := range conns {
		c.Close()
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchclient conn|idle [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "conn":
		connMode(os.Args[2:])
	case "idle":
		idleMode(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", os.Args[1])
		os.Exit(2)
	}
}
