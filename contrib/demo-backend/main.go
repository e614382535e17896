// Command demo-backend is the tiny HTTP/1.1 server that `make demo` puts behind ferry.
// It answers every path with a few lines describing the request it received, so you can
// see what ferry forwarded (method, path, Host, X-Forwarded-For).
//
// Standard library only; built in GOPATH mode by contrib/demo.sh.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on (host:port)")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "Hello from the ferry demo backend on %s\n", *listen)
		fmt.Fprintf(w, "method: %s\n", r.Method)
		fmt.Fprintf(w, "path: %s\n", r.URL.RequestURI())
		fmt.Fprintf(w, "host: %s\n", r.Host)
		fmt.Fprintf(w, "x-forwarded-for: %s\n", r.Header.Get("X-Forwarded-For"))
		fmt.Fprintf(w, "protocol: %s\n", r.Proto)
	})

	srv := &http.Server{
		Addr:              *listen,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	log.Printf("demo-backend listening on http://%s/", *listen)
	log.Fatal(srv.ListenAndServe())
}
