package config

import (
	"strings"
	"testing"
	"time"
)

// TestOtelErrors: ngx_otel_module's directives refuse what nginx's module
// refuses, naming the line.
func TestOtelErrors(t *testing.T) {
	cases := map[string]string{
		`http { otel_exporter { interval 1s; } }`:                                  `"endpoint" is missing`,
		`http { otel_exporter { endpoint a:1; compression gzip; } }`:               `unknown directive "compression"`,
		`http { otel_exporter { endpoint a:1; batch_size 0; } }`:                   `invalid value "0" in "batch_size"`,
		`http { otel_exporter { endpoint a:1; interval soon; } }`:                  `invalid value "soon" in "interval"`,
		`http { otel_exporter { endpoint a:1; } otel_exporter { endpoint b:1; } }`: `duplicate`,
		`http { server { location / { otel_trace_context both; } } }`:              `it must be "extract", "inject", "propagate" or "ignore"`,
		`http { server { otel_trace on; otel_trace off; } }`:                       `"otel_trace" directive is duplicate`,
		`http { server { otel_service_name x; } }`:                                 `"otel_service_name" directive is not allowed here`,
		`http { server { location / { otel_span_attr k; } } }`:                     `invalid number of arguments`,
	}
	for src, want := range cases {
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", src, err, want)
		}
	}
}

// TestOtelSettings: exporter defaults, and per-location inheritance, with
// otel_span_attr inherited only by levels that write none.
func TestOtelSettings(t *testing.T) {
	cfg, err := load(t, `http {
    otel_exporter { endpoint 127.0.0.1:4317; batch_count 2; header X-A b; }
    otel_resource_attr env prod;
    otel_trace on;
    otel_trace_context propagate;
    otel_span_attr a $uri;
    server {
        location /in { }
        location /own { otel_trace off; otel_trace_context ignore; otel_span_attr b 1; otel_span_name x$uri; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.HTTP.Otel
	if c.Endpoint != "127.0.0.1:4317" || c.Interval != 5*time.Second || c.BatchSize != 512 || c.BatchCount != 2 ||
		c.ServiceName != "unknown_service:wsgate" || len(c.Headers) != 1 || len(c.Resource) != 1 {
		t.Fatalf("exporter %+v", c)
	}
	locs := map[string]*LocConf{}
	for _, l := range cfg.HTTP.Servers[0].Locations.Children {
		locs[l.Path] = l.Conf
	}
	in, own := locs["/in"].Otel, locs["/own"].Otel
	if in.Trace == nil || in.Context != OtelExtract|OtelInject || len(in.Attrs) != 1 || in.Attrs[0].Name != "a" || in.SpanName != nil {
		t.Errorf("/in: %+v", in)
	}
	if own.Trace != nil || own.Context != 0 || len(own.Attrs) != 1 || own.Attrs[0].Name != "b" || own.SpanName == nil {
		t.Errorf("/own: %+v", own)
	}
}
