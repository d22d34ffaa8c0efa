package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigs(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"nginx", fmt.Sprintf(nginxConf, "/tmp/x", 9001, 9002), []string{
			"pid /tmp/x/nginx.pid;", "server 127.0.0.1:9001;", "listen 127.0.0.1:9002;", "worker_connections 20000;",
			`proxy_set_header Connection "upgrade";`, "proxy_set_header Upgrade $http_upgrade;",
		}},
		{"haproxy", fmt.Sprintf(haproxyConf, 9001, 9002), []string{
			"bind 127.0.0.1:9002", "server b1 127.0.0.1:9001", "nbthread 1", "maxconn 9000", "timeout tunnel 1h",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.text, "%!") {
				t.Fatalf("template has a formatting error:\n%s", tt.text)
			}
			for _, w := range tt.want {
				if !strings.Contains(tt.text, w) {
					t.Errorf("config lacks %q", w)
				}
			}
		})
	}
}

// TestSmokeDirect runs the whole harness, smoke-sized, against the echo
// backend alone: it builds the harness, starts and stops real processes and
// writes the markdown and the chart.
func TestSmokeDirect(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the harness")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	r := &runner{warmup: 100 * time.Millisecond, window: 300 * time.Millisecond, settle: 100 * time.Millisecond, idleSteps: []int{0, 10}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := r.main(ctx, []string{"direct"}, 1, true, out, false)
	r.procs.stopAll()
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| direct | ", "## Handshakes", "![", "bench.png"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if st, err := os.Stat(filepath.Join(filepath.Dir(out), "bench.png")); err != nil || st.Size() == 0 {
		t.Fatalf("chart: %v", err)
	}
	if strings.Contains(string(md), "Failures during this run") {
		t.Fatalf("smoke run had failures:\n%s", md)
	}
}
