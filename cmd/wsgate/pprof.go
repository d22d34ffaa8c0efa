//go:build linux && pprof

package main

// Built only with -tags pprof, for profiling the data path under the bench
// harness: WSGATE_PPROF=127.0.0.1:6060 serves net/http/pprof there, and
// /debug/heapdump, a heap dump (runtime/debug.WriteHeapDump, after a
// collection) for bench/cmd/heapspans. Release builds carry none of it.

import (
	"io"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
)

func init() {
	if addr := os.Getenv("WSGATE_PPROF"); addr != "" {
		http.HandleFunc("/debug/heapdump", serveHeapDump)
		go http.ListenAndServe(addr, nil)
	}
}

// serveHeapDump writes the heap dump to a temporary file, which
// WriteHeapDump needs, and sends it.
func serveHeapDump(w http.ResponseWriter, r *http.Request) {
	f, err := os.CreateTemp("", "wsgate-heap-*.dump")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	runtime.GC()
	debug.WriteHeapDump(f.Fd())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, f)
}
