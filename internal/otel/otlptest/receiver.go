// Package otlptest is an OTLP/gRPC trace receiver for tests: a real gRPC
// server on loopback that keeps every span it is sent.
package otlptest

import (
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	common "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Span is a received span, flattened for assertions.
type Span struct {
	Name            string
	TraceID, SpanID string // lowercase hex
	ParentID        string // "" for a root span
	Kind            int32
	Start, End      time.Time
	Attrs           map[string]string // every value as text
	Error           bool
	Service         string            // the resource's service.name
	Resource        map[string]string // the resource's attributes
	Metadata        metadata.MD       // the export request's gRPC metadata
}

// Receiver collects spans.
type Receiver struct {
	collector.UnimplementedTraceServiceServer
	Addr string
	mu   sync.Mutex
	got  []Span
	srv  *grpc.Server
}

// Start serves a receiver on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Addr: ln.Addr().String(), srv: grpc.NewServer()}
	collector.RegisterTraceServiceServer(r.srv, r)
	go r.srv.Serve(ln)
	t.Cleanup(r.srv.Stop)
	return r
}

// Export is the OTLP trace service's one method.
func (r *Receiver) Export(ctx context.Context, req *collector.ExportTraceServiceRequest) (*collector.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				r.got = append(r.got, Span{
					Name:     s.Name,
					TraceID:  hex.EncodeToString(s.TraceId),
					SpanID:   hex.EncodeToString(s.SpanId),
					ParentID: hex.EncodeToString(s.ParentSpanId),
					Kind:     int32(s.Kind),
					Start:    time.Unix(0, int64(s.StartTimeUnixNano)),
					End:      time.Unix(0, int64(s.EndTimeUnixNano)),
					Attrs:    attrs(s.Attributes),
					Error:    s.GetStatus().GetCode() == 2,
					Service:  res["service.name"],
					Resource: res,
					Metadata: md,
				})
			}
		}
	}
	return &collector.ExportTraceServiceResponse{}, nil
}

func attrs(kvs []*common.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = text(kv.Value)
	}
	return m
}

func text(v *common.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *common.AnyValue_StringValue:
		return x.StringValue
	case *common.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *common.AnyValue_BoolValue:
		if x.BoolValue {
			return "true"
		}
		return "false"
	}
	return v.String()
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.got...)
}

// Wait returns the spans once n have arrived, or fails the test after
// timeout.
func (r *Receiver) Wait(t testing.TB, n int, timeout time.Duration) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if s := r.Spans(); len(s) >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spans after %v, want %d", len(r.Spans()), timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
