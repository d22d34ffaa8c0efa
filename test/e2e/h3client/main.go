// Command h3client makes HTTP/3 requests for the e2e tests, in a process
// of its own: quic-go's client races with itself when it opens streams in
// 0-RTT data (the server's transport parameters arrive while the request's
// streams are being opened), which the race detector of a test binary
// reports as the test's failure. Built without -race, it keeps that race
// out of the tests while wsgate itself still runs under the detector.
//
// It reads one method per line on stdin (GET, or GET0RTT for a request in
// 0-RTT data when a session ticket allows it) and answers each with one
// line on stdout: the response's status code, or "error: " and the reason.
// All requests share one TLS session cache, so a request after the first
// can resume its session. The certificate is not verified.
//
//	h3client https://localhost:8443/
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/quic-go/quic-go/http3"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: h3client URL  (methods on stdin: GET or GET0RTT)")
		os.Exit(2)
	}
	cache := tls.NewLRUClientSessionCache(4)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		method := strings.TrimSpace(in.Text())
		if method == "GET0RTT" {
			method = http3.MethodGet0RTT
		}
		status, err := fetch(os.Args[1], method, cache)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(status)
	}
}

// fetch makes one request on a connection of its own and reads the whole
// response.
func fetch(url, method string, cache tls.ClientSessionCache) (int, error) {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		ServerName:         "localhost",
		ClientSessionCache: cache,
	}}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
