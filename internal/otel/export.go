package otel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/credentials"
)

// Config is otel_exporter's block with the http-level otel_service_name
// and otel_resource_attr. Two configurations that are equal export the
// same way: a reload that keeps them keeps the exporter.
type Config struct {
	// Endpoint is host:port, or a URL whose https scheme asks for TLS.
	Endpoint    string
	TrustedCert string      // PEM file of CAs for an https endpoint; the system's without it
	Headers     [][2]string // sent with every export (authentication tokens)
	Interval    time.Duration
	BatchSize   int
	BatchCount  int
	ServiceName string
	Resource    [][2]string
}

// Defaults are nginx's: an export at least every 5 s, of at most 512
// spans, with 4 batches pending before spans are dropped.
const (
	DefaultInterval   = 5 * time.Second
	DefaultBatchSize  = 512
	DefaultBatchCount = 4
	// DefaultServiceName names wsgate, where nginx says
	// "unknown_service:nginx".
	DefaultServiceName = "unknown_service:wsgate"
)

// Equal reports whether c and d export the same way.
func (c *Config) Equal(d *Config) bool {
	if c == nil || d == nil {
		return c == d
	}
	return c.Endpoint == d.Endpoint && c.TrustedCert == d.TrustedCert && c.Interval == d.Interval &&
		c.BatchSize == d.BatchSize && c.BatchCount == d.BatchCount && c.ServiceName == d.ServiceName &&
		slices.Equal(c.Headers, d.Headers) && slices.Equal(c.Resource, d.Resource)
}

// Exporter sends finished spans to an OTLP/gRPC endpoint in batches, in
// the background: Export never waits for the network, and spans beyond
// the pending batches are dropped, as nginx drops them.
type Exporter struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
}

// NewExporter builds an exporter for c. It does not connect: a collector
// that is down costs only the spans it misses.
func NewExporter(c *Config) (*Exporter, error) {
	endpoint, secure := strings.CutPrefix(c.Endpoint, "https://")
	endpoint = strings.TrimPrefix(endpoint, "http://")
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(endpoint)}
	if secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TrustedCert != "" {
			pem, err := os.ReadFile(c.TrustedCert)
			if err != nil {
				return nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificate in %q", c.TrustedCert)
			}
		}
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tc)))
	} else {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	if len(c.Headers) > 0 {
		h := make(map[string]string, len(c.Headers))
		for _, kv := range c.Headers {
			h[strings.ToLower(kv[0])] = kv[1]
		}
		opts = append(opts, otlptracegrpc.WithHeaders(h))
	}
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", c.ServiceName)}
	for _, kv := range c.Resource {
		attrs = append(attrs, attribute.String(kv[0], kv[1]))
	}
	bsp := sdktrace.NewBatchSpanProcessor(exp,
		sdktrace.WithBatchTimeout(c.Interval),
		sdktrace.WithMaxExportBatchSize(c.BatchSize),
		sdktrace.WithMaxQueueSize(c.BatchSize*c.BatchCount))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(bsp),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), // otel_trace decides
		sdktrace.WithIDGenerator(presetIDs{}),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return &Exporter{tp: tp, tracer: tp.Tracer("wsgate")}, nil
}

// Span is a finished span: a request, or a WebSocket session.
type Span struct {
	Name       string
	Parent     TraceContext // zero when the trace starts here
	Current    TraceContext
	Start, End time.Time
	Attrs      []attribute.KeyValue
	Error      bool // a 5xx answer
}

// Export queues s for the next batch.
func (e *Exporter) Export(s *Span) {
	ctx := context.WithValue(context.Background(), idsKey{}, s.Current)
	if s.Parent.Valid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: s.Parent.TraceID, SpanID: s.Parent.SpanID, Remote: true,
			TraceFlags: flags(s.Parent.Sampled),
		}))
	}
	_, span := e.tracer.Start(ctx, s.Name, trace.WithTimestamp(s.Start),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(s.Attrs...))
	if s.Error {
		span.SetStatus(codes.Error, "")
	}
	span.End(trace.WithTimestamp(s.End))
}

func flags(sampled bool) trace.TraceFlags {
	if sampled {
		return trace.FlagsSampled
	}
	return 0
}

// Shutdown exports what is queued, waiting at most until ctx ends.
func (e *Exporter) Shutdown(ctx context.Context) error {
	err := e.tp.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("spans left unexported: %w", err)
	}
	return err
}

// presetIDs gives each span the identifiers its request already showed
// ($otel_span_id, the traceparent sent upstream): the SDK would invent
// its own.
type presetIDs struct{}

type idsKey struct{}

func (presetIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tc, _ := ctx.Value(idsKey{}).(TraceContext)
	return tc.TraceID, tc.SpanID
}

func (presetIDs) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	tc, _ := ctx.Value(idsKey{}).(TraceContext)
	return tc.SpanID
}
