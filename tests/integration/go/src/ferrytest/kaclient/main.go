// kaclient: a raw persistent HTTP/1.1 client. It sends -n requests over ONE TCP connection
// (net.Conn + bufio; no net/http Transport, hence no hidden retries or liveness probes),
// waiting a gap between requests (cycling through -gap). When a request fails the failure is
// counted and a new connection is opened for the next request.
//
// Prints one line per request and a final summary "ok=N err=M"; exits 1 if any failed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	addr := flag.String("url", "127.0.0.1:8080", "host:port (a leading http:// is ignored)")
	n := flag.Int("n", 10, "number of requests")
	gaps := flag.String("gap", "1s", "comma separated list of gaps, cycled")
	method := flag.String("method", "GET", "GET | POST | alt (GET and POST alternate)")
	path := flag.String("path", "/", "path for GET")
	postPath := flag.String("post-path", "/echo", "path for POST")
	host := flag.String("host", "", "Host header (default: -url)")
	timeout := flag.Duration("timeout", 5*time.Second, "per request timeout")
	flag.Parse()

	target := strings.TrimPrefix(*addr, "http://")
	target = strings.TrimSuffix(target, "/")
	if *host == "" {
		*host = target
	}
	var gapList []time.Duration
	for _, g := range strings.Split(*gaps, ",") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		d, err := time.ParseDuration(g)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad gap %q: %v\n", g, err)
			os.Exit(2)
		}
		gapList = append(gapList, d)
	}
	if len(gapList) == 0 {
		gapList = []time.Duration{0}
	}

	var conn net.Conn
	var br *bufio.Reader
	connects := 0
	dial := func() error {
		c, err := net.DialTimeout("tcp", target, *timeout)
		if err != nil {
			return err
		}
		conn = c
		br = bufio.NewReader(c)
		connects++
		return nil
	}

	ok, errs := 0, 0
	for i := 0; i < *n; i++ {
		gap := time.Duration(0)
		if i > 0 {
			gap = gapList[(i-1)%len(gapList)]
			time.Sleep(gap)
		}
		m := *method
		if m == "alt" {
			if i%2 == 0 {
				m = "GET"
			} else {
				m = "POST"
			}
		}
		start := time.Now()
		fresh := false
		if conn == nil {
			if err := dial(); err != nil {
				errs++
				fmt.Printf("req=%d method=%s gap=%v err=%q\n", i, m, gap, "dial: "+err.Error())
				continue
			}
			fresh = true
		}
		var req string
		body := fmt.Sprintf("body-%d", i)
		if m == "POST" {
			req = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
				*postPath, *host, len(body), body)
		} else {
			req = fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", m, *path, *host)
		}
		conn.SetDeadline(time.Now().Add(*timeout))
		err := func() error {
			if _, err := io.WriteString(conn, req); err != nil {
				return fmt.Errorf("write: %v", err)
			}
			hreq, _ := http.NewRequest(m, "http://"+target+*path, nil)
			resp, err := http.ReadResponse(br, hreq)
			if err != nil {
				return fmt.Errorf("read: %v", err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("body: %v", err)
			}
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d body %q", resp.StatusCode, string(b))
			}
			if m == "POST" && *postPath == "/echo" && string(b) != body {
				return fmt.Errorf("echo mismatch: %q", string(b))
			}
			if resp.Close {
				// The server announced the close: not an error, but reconnect next time.
				conn.Close()
				conn = nil
			}
			return nil
		}()
		el := time.Since(start)
		if err != nil {
			errs++
			fmt.Printf("req=%d method=%s gap=%v fresh=%v elapsed=%v err=%q\n", i, m, gap, fresh, el.Round(time.Millisecond), err.Error())
			if conn != nil {
				conn.Close()
				conn = nil
			}
			continue
		}
		ok++
		fmt.Printf("req=%d method=%s gap=%v fresh=%v elapsed=%v status=200\n", i, m, gap, fresh, el.Round(time.Millisecond))
	}
	if conn != nil {
		conn.Close()
	}
	fmt.Printf("connects=%d\n", connects)
	fmt.Printf("ok=%d err=%d\n", ok, errs)
	if errs > 0 {
		os.Exit(1)
	}
}
