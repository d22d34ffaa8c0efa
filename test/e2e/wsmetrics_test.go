package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const wsMetricsConf = `
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
            websocket_message_metrics on;
        }
        location = /metrics { metrics; }
        location = /api { api; }
    }
}`

// histogram is a scraped histogram: count, sum and cumulative buckets.
type histogram struct {
	count, sum float64
	le         map[float64]float64
}

// scrapeWS returns the counters and histograms of /metrics, keyed by name
// and sorted labels ("name{a=x,b=y}").
func scrapeWS(t *testing.T, url string) (map[string]float64, map[string]histogram) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	counters, hists := map[string]float64{}, map[string]histogram{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var ls []string
			for _, l := range m.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				counters[key] = m.Counter.GetValue()
			case m.Histogram != nil:
				h := histogram{count: float64(m.Histogram.GetSampleCount()), sum: m.Histogram.GetSampleSum(), le: map[float64]float64{}}
				for _, b := range m.Histogram.Bucket {
					h.le[b.GetUpperBound()] = float64(b.GetCumulativeCount())
				}
				hists[key] = h
			}
		}
	}
	return counters, hists
}

// TestWebSocketLocationMetrics: known traffic through a location with
// websocket_message_metrics shows in its histograms and counters exactly.
func TestWebSocketLocationMetrics(t *testing.T) {
	be := startBackend(t, "b1")
	port := freePort(t)
	startGate(t, fmt.Sprintf(wsMetricsConf, be.addr, port))
	c, _ := dial(t, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), nil)
	for _, n := range []int{10, 100, 5000} {
		echo(t, c, strings.Repeat("x", n))
	}
	c.SetWriteDeadline(time.Now().Add(slow(5 * time.Second)))
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.SetReadDeadline(time.Now().Add(slow(5 * time.Second)))
	if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("closing: %v", err)
	}
	c.Close()

	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	lbl := "location=/ws,upstream=pool"
	var counters map[string]float64
	var hists map[string]histogram
	waitFor(t, 10*time.Second, "the session counted", func() bool {
		counters, hists = scrapeWS(t, url)
		return counters["wsgate_websocket_location_sessions_ended_total{location=/ws,reason=peer,upstream=pool}"] == 1
	})
	if n := counters["wsgate_websocket_location_sessions_closed_total{code=1000,"+lbl+"}"]; n != 1 {
		t.Errorf("sessions closed with 1000: %v\n%v", n, counters)
	}
	for _, dir := range []string{"client_to_backend", "backend_to_client"} {
		sizes := hists["wsgate_websocket_location_message_bytes{direction="+dir+","+lbl+"}"]
		if sizes.count != 3 || sizes.sum != 5110 || sizes.le[64] != 1 || sizes.le[256] != 2 || sizes.le[4096] != 2 || sizes.le[16384] != 3 {
			t.Errorf("%s message sizes %+v, want 10, 100 and 5000 bytes", dir, sizes)
		}
		if gaps := hists["wsgate_websocket_location_message_interval_seconds{direction="+dir+","+lbl+"}"]; gaps.count != 2 {
			t.Errorf("%s intervals %+v, want 2", dir, gaps)
		}
	}
	if s := hists["wsgate_websocket_location_session_messages{"+lbl+"}"]; s.count != 1 || s.le[1] != 0 || s.le[10] != 1 {
		t.Errorf("messages per session %+v, want one session of 6", s)
	}

	// The dashboard's JSON has the same counts.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api?json", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Locations []struct {
			Location, Upstream string
			Sessions           int
			Reasons            map[string]int
			MessagesIn         int `json:"messages_in"`
			BytesIn            int `json:"bytes_in"`
		} `json:"websocket_locations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	raw, _ = json.Marshal(doc)
	if len(doc.Locations) != 1 {
		t.Fatalf("websocket_locations %s, want one", raw)
	}
	l := doc.Locations[0]
	if l.Location != "/ws" || l.Upstream != "pool" || l.Sessions != 1 || l.Reasons["peer"] != 1 || l.MessagesIn != 3 || l.BytesIn != 5110 {
		t.Errorf("websocket_locations %s", raw)
	}
}
