// rawrecorder: a raw TCP "backend" that records the exact bytes it receives, one file per
// connection (<dir>/conn-<N>.bin), and answers every request it can parse with
// "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok". Requests are framed minimally: the head
// ends at CRLFCRLF; a body is read by chunked framing when Transfer-Encoding mentions chunked,
// else by Content-Length. Anything unparseable closes the connection.
//
// Prints "LISTEN <addr>" on stdout line 1. Also appends one line per parsed request head to
// <dir>/requests.log: "<conn> <request line>".
//
// With -respond DIR, the answer to each request is the content of DIR/response.<METHOD> or
// else DIR/response (read at each request, so a test can change it between requests); when
// neither exists, the default "ok" response. If the answer's head has neither Content-Length
// nor Transfer-Encoding (a close-delimited body), the connection is closed after it.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

var (
	respond string
	dir     string
	connSeq int64
	logMu   sync.Mutex
	reqLog  *os.File
)

type teeReader struct {
	r io.Reader
	w io.Writer
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.w.Write(p[:n])
	}
	return n, err
}

type syncFile struct{ f *os.File }

func (s syncFile) Write(p []byte) (int, error) { return s.f.Write(p) }

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return line, err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func serve(c net.Conn) {
	defer c.Close()
	id := atomic.AddInt64(&connSeq, 1)
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("conn-%d.bin", id)))
	if err != nil {
		log.Printf("create: %v", err)
		return
	}
	defer f.Close()
	br := bufio.NewReader(&teeReader{r: c, w: syncFile{f}})
	for {
		reqLine, err := readLine(br)
		if err != nil {
			return
		}
		if reqLine == "" { // tolerate a stray CRLF between requests
			continue
		}
		var te string
		cl := int64(-1)
		for {
			h, err := readLine(br)
			if err != nil {
				return
			}
			if h == "" {
				break
			}
			i := strings.IndexByte(h, ':')
			if i < 0 {
				continue
			}
			name := strings.ToLower(strings.TrimSpace(h[:i]))
			val := strings.TrimSpace(h[i+1:])
			switch name {
			case "transfer-encoding":
				te += strings.ToLower(val) + ","
			case "content-length":
				n, err := strconv.ParseInt(val, 10, 64)
				if err == nil {
					cl = n
				}
			}
		}
		logMu.Lock()
		fmt.Fprintf(reqLog, "%d %s\n", id, reqLine)
		logMu.Unlock()
		if strings.Contains(te, "chunked") {
			for {
				sz, err := readLine(br)
				if err != nil {
					return
				}
				if j := strings.IndexByte(sz, ';'); j >= 0 {
					sz = sz[:j]
				}
				n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
				if err != nil {
					return
				}
				if n == 0 {
					for { // trailers
						t, err := readLine(br)
						if err != nil {
							return
						}
						if t == "" {
							break
						}
					}
					break
				}
				if _, err := io.CopyN(io.Discard, br, n+2); err != nil {
					return
				}
			}
		} else if cl > 0 {
			if _, err := io.CopyN(io.Discard, br, cl); err != nil {
				return
			}
		}
		method := reqLine
		if i := strings.IndexByte(method, ' '); i >= 0 {
			method = method[:i]
		}
		resp, closeAfter := answer(method)
		if _, err := c.Write(resp); err != nil {
			return
		}
		if closeAfter {
			return
		}
	}
}

func answer(method string) ([]byte, bool) {
	if respond != "" {
		for _, name := range []string{"response." + method, "response"} {
			b, err := os.ReadFile(filepath.Join(respond, name))
			if err != nil {
				continue
			}
			head := b
			if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
				head = b[:i]
			}
			lh := strings.ToLower(string(head))
			closeAfter := !strings.Contains(lh, "content-length:") && !strings.Contains(lh, "transfer-encoding:")
			// A file ending in "<<CLOSE>>" is sent without that marker, then the connection
			// is closed whatever the framing says (a backend dying mid-body).
			// "<<SILENT>>": accept the request and never answer.
			if bytes.Equal(b, []byte("<<SILENT>>")) {
				return nil, false
			}
			if bytes.HasSuffix(b, []byte("<<CLOSE>>")) {
				return b[:len(b)-len("<<CLOSE>>")], true
			}
			return b, closeAfter
		}
	}
	return []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "listen address")
	flag.StringVar(&dir, "dir", ".", "directory for recordings")
	flag.StringVar(&respond, "respond", "", "directory with response files (see above)")
	flag.Parse()
	if err := os.MkdirAll(dir, 0755); err != nil {
		log.Fatal(err)
	}
	var err error
	reqLog, err = os.OpenFile(filepath.Join(dir, "requests.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0644)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "LISTEN %s\n", ln.Addr().String())
	os.Stdout.Write(b.Bytes())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		ln.Close()
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go serve(c)
	}
}
