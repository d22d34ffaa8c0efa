package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/otel/otlptest"
)

const otelConf = `
error_log {{DIR}}/error.log info;
http {
    otel_exporter { endpoint %s; interval 100ms; header X-Token abc; }
    otel_service_name edge-test;
    otel_resource_attr deployment.environment e2e;
    log_format ids '$uri $otel_trace_id $otel_span_id $otel_parent_id $otel_parent_sampled';
    access_log {{DIR}}/ids.log ids;
    server {
        listen 127.0.0.1:%d;
        proxy_http_version 1.1;
        location /prop { otel_trace on; otel_trace_context propagate; otel_span_attr user $arg_user; proxy_pass http://%[3]s; }
        location /parent { otel_trace $otel_parent_sampled; otel_trace_context propagate; proxy_pass http://%[3]s; }
        location /off { otel_trace_context extract; proxy_pass http://%[3]s; }
        location /fail { otel_trace on; return 503; }
        location /ws {
            otel_trace on;
            otel_trace_context inject;
            otel_span_name "session $uri";
            proxy_pass http://%[3]s;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
    }
}`

// TestOtel: ngx_otel_module's tracing against a real OTLP/gRPC receiver.
// The backend receives the request's own span as its parent; the spans
// carry the trace of the client's traceparent, the default and custom
// attributes, the resource and the exporter's headers; otel_trace decides
// which requests are exported, including by the parent's sampled flag; a
// WebSocket session's span lasts until its tunnel closes and carries its
// message counts and close code.
func TestOtel(t *testing.T) {
	recv := otlptest.Start(t)
	be := startBackend(t, "b")
	port := freePort(t)
	g := startGate(t, fmt.Sprintf(otelConf, recv.Addr, port, be.addr))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	send := func(path, traceparent string) int {
		t.Helper()
		h := ""
		if traceparent != "" {
			h = "traceparent: " + traceparent + "\r\ntracestate: vendor=x\r\n"
		}
		status, _, _ := rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: front.test\r\nUser-Agent: otel-test\r\n"+h+"Connection: close\r\n\r\n")
		return status
	}
	const (
		trace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
		sampled = "00-" + trace + "-" + parent + "-01"
		notSamp = "00-" + trace + "-" + parent + "-00"
	)
	send("/off", sampled)        // not traced: no span, headers passed as they came
	send("/parent?not", notSamp) // the parent was not sampled: no span
	if s := send("/prop?user=ann", sampled); s != 200 {
		t.Fatalf("/prop: %d", s)
	}
	send("/parent?yes", sampled)
	if s := send("/fail", ""); s != 503 {
		t.Fatalf("/fail: %d", s)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", http.Header{"Traceparent": {sampled}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		echo(t, ws, fmt.Sprint("m", i))
	}
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
	ws.ReadMessage()
	ws.Close()

	recv.Wait(t, 4, slow(15*time.Second))
	time.Sleep(300 * time.Millisecond) // three more export intervals: a span that should not be there would be
	spans := recv.Spans()
	byRoute := map[string]otlptest.Span{}
	for _, s := range spans {
		byRoute[s.Attrs["http.route"]] = s
	}
	if len(spans) != 4 || byRoute["/off"].Name != "" {
		t.Fatalf("%d spans %v, want /prop, /parent, /fail and /ws", len(spans), byRoute)
	}

	// What the backend saw: the request's own span as the parent.
	be.mu.Lock()
	plain := append([]http.Header(nil), be.plain...)
	wsHeader := be.wsHeader.Clone()
	be.mu.Unlock()
	if len(plain) != 4 {
		t.Fatalf("backend got %d requests, want 4", len(plain))
	}
	if got := plain[0].Get("Traceparent"); got != sampled || plain[0].Get("Tracestate") != "vendor=x" {
		t.Errorf("/off: the backend got traceparent %q, want the client's %q", got, sampled)
	}
	if got := plain[1].Get("Traceparent"); !strings.HasPrefix(got, "00-"+trace+"-") || !strings.HasSuffix(got, "-00") || strings.Contains(got, parent) {
		t.Errorf("/parent, not sampled: backend traceparent %q", got)
	}
	prop := byRoute["/prop"]
	if got, want := plain[2].Get("Traceparent"), "00-"+trace+"-"+prop.SpanID+"-01"; got != want || plain[2].Get("Tracestate") != "vendor=x" {
		t.Errorf("/prop: backend traceparent %q tracestate %q, want %q and the client's", got, plain[2].Get("Tracestate"), want)
	}
	if prop.TraceID != trace || prop.ParentID != parent || prop.Name != "/prop" || prop.Kind != 2 || prop.Error {
		t.Errorf("/prop span %+v", prop)
	}
	for k, v := range map[string]string{"http.method": "GET", "http.target": "/prop?user=ann", "http.status_code": "200", "http.scheme": "http",
		"http.flavor": "1.1", "http.user_agent": "otel-test", "user": "ann", "net.host.port": fmt.Sprint(port), "net.sock.peer.addr": "127.0.0.1"} {
		if prop.Attrs[k] != v {
			t.Errorf("/prop attribute %s = %q, want %q", k, prop.Attrs[k], v)
		}
	}
	if prop.Service != "edge-test" || prop.Resource["deployment.environment"] != "e2e" || strings.Join(prop.Metadata.Get("x-token"), "") != "abc" {
		t.Errorf("resource %v, metadata %v", prop.Resource, prop.Metadata)
	}
	if f := byRoute["/fail"]; !f.Error || f.Attrs["http.status_code"] != "503" || f.ParentID != "" {
		t.Errorf("/fail span %+v", f)
	}

	// The session's span: in a new trace (inject does not extract),
	// named by otel_span_name, ended by the close.
	s := byRoute["/ws"]
	if s.Name != "session /ws" || s.TraceID == trace || s.ParentID != "" {
		t.Errorf("session span %+v", s)
	}
	if got, want := wsHeader.Get("Traceparent"), "00-"+s.TraceID+"-"+s.SpanID+"-01"; got != want {
		t.Errorf("the backend's handshake carried traceparent %q, want %q", got, want)
	}
	if s.Attrs["websocket.messages_received"] != "3" || s.Attrs["websocket.messages_sent"] != "3" || s.Attrs["websocket.close_code"] != "1000" || s.Attrs["http.status_code"] != "101" {
		t.Errorf("session attributes %v", s.Attrs)
	}

	// The variables show the same identifiers.
	logged := readFile(g.dir + "/ids.log")
	if want := fmt.Sprintf("/prop %s %s %s 1", trace, prop.SpanID, parent); !strings.Contains(logged, want) {
		t.Errorf("access log:\n%s\nwant a line %q", logged, want)
	}
}
