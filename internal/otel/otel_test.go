package otel

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/wsgate/wsgate/internal/otel/otlptest"
)

func TestParse(t *testing.T) {
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tc := Parse(good, "congo=t61rcWkgMzE")
	if !tc.Valid() || !tc.Sampled || tc.TraceIDString() != "4bf92f3577b34da6a3ce929d0e0e4736" || tc.SpanIDString() != "00f067aa0ba902b7" || tc.State != "congo=t61rcWkgMzE" {
		t.Fatalf("%+v", tc)
	}
	if got := tc.Traceparent(); got != good {
		t.Errorf("Traceparent() = %q", got)
	}
	for _, bad := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", // version 00 is exactly 55
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       // version ff is invalid
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",       // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       // zero span id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       // uppercase
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
	} {
		if tc := Parse(bad, "x=y"); tc.Valid() || tc.State != "" {
			t.Errorf("Parse(%q) = %+v, want the zero context", bad, tc)
		}
	}
	// A later version may carry more fields after a dash.
	if tc := Parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what", ""); !tc.Valid() || tc.Sampled {
		t.Errorf("version 01: %+v", tc)
	}
}

func TestGenerate(t *testing.T) {
	parent := Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=b")
	child := Generate(parent)
	if child.TraceID != parent.TraceID || child.SpanID == parent.SpanID || child.SpanID == [8]byte{} || child.Sampled || child.State != "a=b" {
		t.Fatalf("child %+v of %+v", child, parent)
	}
	root, other := Generate(TraceContext{}), Generate(TraceContext{})
	if !root.Valid() || root.TraceID == other.TraceID {
		t.Fatalf("new traces %+v %+v", root, other)
	}
	if p := root.Traceparent(); len(p) != 55 || !strings.HasSuffix(p, "-00") {
		t.Fatalf("traceparent %q", p)
	}
}

// TestExport: spans reach a real OTLP/gRPC receiver with the identifiers
// they were given, their parent, resource, headers and status.
func TestExport(t *testing.T) {
	r := otlptest.Start(t)
	e, err := NewExporter(&Config{Endpoint: r.Addr, Interval: 50 * time.Millisecond, BatchSize: 8, BatchCount: 2,
		ServiceName: "edge", Resource: [][2]string{{"deployment.environment", "test"}}, Headers: [][2]string{{"X-Token", "s3cret"}}})
	if err != nil {
		t.Fatal(err)
	}
	parent := Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	cur := Generate(parent)
	cur.Sampled = true
	start := time.Now().Add(-time.Second)
	e.Export(&Span{Name: "/ws", Parent: parent, Current: cur, Start: start, End: start.Add(time.Second),
		Attrs: []attribute.KeyValue{attribute.Int("http.status_code", 502)}, Error: true})
	root := Generate(TraceContext{})
	e.Export(&Span{Name: "/", Current: root, Start: start, End: start.Add(time.Millisecond)})
	got := r.Wait(t, 2, 10*time.Second)
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	byName := map[string]otlptest.Span{}
	for _, s := range got {
		byName[s.Name] = s
	}
	s := byName["/ws"]
	if s.TraceID != cur.TraceIDString() || s.SpanID != cur.SpanIDString() || s.ParentID != parent.SpanIDString() {
		t.Errorf("ids %s %s %s, want %s %s %s", s.TraceID, s.SpanID, s.ParentID, cur.TraceIDString(), cur.SpanIDString(), parent.SpanIDString())
	}
	if !s.Error || s.Attrs["http.status_code"] != "502" || s.Kind != 2 || !s.Start.Equal(start) {
		t.Errorf("span %+v", s)
	}
	if s.Service != "edge" || s.Resource["deployment.environment"] != "test" || strings.Join(s.Metadata.Get("x-token"), ",") != "s3cret" {
		t.Errorf("resource %v, metadata %v", s.Resource, s.Metadata)
	}
	if r := byName["/"]; r.TraceID != root.TraceIDString() || r.SpanID != root.SpanIDString() || r.ParentID != "" || r.Error {
		t.Errorf("root span %+v", r)
	}
}
