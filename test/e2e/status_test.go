package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const statusConf = `
error_log {{DIR}}/error.log info;
http {
    access_log off;
    upstream pool { server %s; }
    server {
        listen 127.0.0.1:%d;
        location /ws {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            websocket_allowed_origins https://ok.example;
        }
        location = /metrics { metrics; }
        location = /api { api; }
        location = /dashboard { dashboard; }
    }
}`

func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("metrics Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name
			for _, l := range m.Label {
				key += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key+",count"] = float64(m.Histogram.GetSampleCount())
			case m.Summary != nil:
				out[key+",count"] = float64(m.Summary.GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsAndAPI: /metrics parses, and its counters match what the test
// did: 3 upgrades, 1 rejected handshake, tunnels and bytes; /api reports
// the peer.
func TestMetricsAndAPI(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(statusConf, be.addr, port))
	base := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 3; i++ {
		c, _ := dial(t, "ws://"+base+"/ws", http.Header{"Origin": {"https://ok.example"}})
		echo(t, c, "hello") // 5 bytes each way in a 2-byte header frame
		if i < 2 {
			c.Close()
		}
	}
	if st, _, _ := dialFrom(t, "", "ws://"+base+"/ws", http.Header{"Origin": {"https://evil.example"}}); st != 403 {
		t.Fatalf("disallowed origin: %d", st)
	}
	var m map[string]float64
	waitFor(t, 5*time.Second, "two tunnels to be counted closed", func() bool {
		m = scrape(t, "http://"+base+"/metrics")
		return m["wsgate_tunnel_duration_seconds,count"] == 2
	})
	want := map[string]float64{
		"wsgate_handshakes_total,result=upgraded":                                      3,
		"wsgate_handshakes_total,result=rejected":                                      1,
		"wsgate_tunnels_active":                                                        1,
		"wsgate_upstream_peer_tunnels,peer=" + be.addr + ",upstream=pool":              1,
		"wsgate_upstream_peer_up,peer=" + be.addr + ",upstream=pool":                   1,
		"wsgate_upstream_peer_tunnels_closed_total,peer=" + be.addr + ",upstream=pool": 2,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if m["wsgate_tunnel_bytes_total,direction=backend_to_client"] < 14 || m["go_goroutines"] == 0 {
		t.Errorf("bytes %v goroutines %v", m["wsgate_tunnel_bytes_total,direction=backend_to_client"], m["go_goroutines"])
	}
	resp, err := http.Get("http://" + base + "/api?json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`"tunnels":\s*1`).Match(body) || !strings.Contains(string(body), `"pool"`) || !strings.Contains(string(body), be.addr) {
		t.Errorf("api: %s", body)
	}
}

// TestDashboardInChromium loads the dashboard in headless Chromium after
// opening WebSockets, and checks that the page shows the count; a
// screenshot is kept in test/e2e/artifacts (or $WSGATE_ARTIFACTS).
func TestDashboardInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is required (.ci/run installs Debian's package)")
	}
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(statusConf, be.addr, port))
	base := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 4; i++ {
		c, _ := dial(t, "ws://"+base+"/ws", nil)
		echo(t, c, "x")
	}
	args := func(extra ...string) []string {
		return append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=4000"}, extra...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), slow(60*time.Second))
	defer cancel()
	url := "http://" + base + "/dashboard"
	dom, err := exec.CommandContext(ctx, chromium, args("--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if !regexp.MustCompile(`id="tunnels"[^>]*>\s*4\s*<`).Match(dom) {
		t.Errorf("the dashboard does not show 4 open WebSockets:\n%s", dom)
	}
	dir := os.Getenv("WSGATE_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	os.MkdirAll(dir, 0o755)
	shot, _ := filepath.Abs(filepath.Join(dir, "dashboard.png"))
	os.Remove(shot)
	if out, err := exec.CommandContext(ctx, chromium, args("--window-size=1200,800", "--screenshot="+shot, url)...).CombinedOutput(); err != nil {
		t.Fatalf("screenshot: %v\n%s", err, out)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)
}
