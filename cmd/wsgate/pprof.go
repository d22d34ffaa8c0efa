//go:build linux && pprof

package main

// Built only with -tags pprof, for profiling the data path under the bench
// harness: WSGATE_PPROF=127.0.0.1:6060 serves net/http/pprof there. Release
// builds carry none of it.

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("WSGATE_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
