// loadclient: -c goroutines, each with its own http.Transport (so its own keep-alive
// connection), share -n requests, bounded by -deadline. Prints "ok=N err=M conns=K" where K
// is the number of new client connections opened (httptrace GotConn, !Reused).
// Exits 1 if any request failed or the deadline was hit. -unique appends "?i=N" (or "&i=N")
// to the URL, N = 1..n, so that every request has its own path. -stop-file PATH: no new
// request once PATH exists (checked every 20 ms; the requests not made are no errors), for
// load that runs "until the test is done" (-n then only bounds it).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/", "URL")
	c := flag.Int("c", 50, "concurrent clients")
	n := flag.Int("n", 1000, "total requests")
	deadline := flag.Duration("deadline", 60*time.Second, "overall deadline")
	method := flag.String("method", "GET", "GET or POST (POST sends a small body)")
	unique := flag.Bool("unique", false, "append i=N (1..n) to the query so that every request is distinct")
	stopFile := flag.String("stop-file", "", "stop issuing requests once this file exists")
	flag.Parse()

	var stopped int32
	if *stopFile != "" {
		go func() {
			for {
				if _, err := os.Stat(*stopFile); err == nil {
					atomic.StoreInt32(&stopped, 1)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	ctx, cancel := context.WithTimeout(context.Background(), *deadline)
	defer cancel()

	var next, ok, errs, conns int64
	var printed int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < *c; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{
				MaxIdleConns:        1,
				MaxIdleConnsPerHost: 1,
				MaxConnsPerHost:     1,
				DisableCompression:  true,
				IdleConnTimeout:     5 * time.Minute,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			trace := &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) {
					if !info.Reused {
						atomic.AddInt64(&conns, 1)
					}
				},
			}
			for {
				if atomic.LoadInt32(&stopped) != 0 {
					return
				}
				idx := atomic.AddInt64(&next, 1)
				if idx > int64(*n) {
					return
				}
				if ctx.Err() != nil {
					atomic.AddInt64(&errs, 1)
					continue
				}
				var body io.Reader
				if *method == "POST" {
					body = strings.NewReader("payload")
				}
				u := *url
				if *unique {
					sep := "?"
					if strings.Contains(u, "?") {
						sep = "&"
					}
					u = fmt.Sprintf("%s%si=%d", u, sep, idx)
				}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), *method, u, body)
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					atomic.AddInt64(&errs, 1)
					if atomic.AddInt64(&printed, 1) <= 10 {
						fmt.Fprintf(os.Stderr, "error: %v\n", err)
					}
					continue
				}
				atomic.AddInt64(&ok, 1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("elapsed=%v\n", time.Since(start).Round(time.Millisecond))
	fmt.Printf("ok=%d err=%d conns=%d\n", ok, errs, conns)
	if errs > 0 {
		os.Exit(1)
	}
}
