package config

import (
	"path/filepath"
	"strconv"

	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/otel"
	"github.com/wsgate/wsgate/internal/vars"
)

// The directives of nginx's ngx_otel_module. otel_exporter,
// otel_service_name and otel_resource_attr are http-level and fill
// HTTP.Otel; the others are per location, in LocConf.Otel.
var otelDirectives = map[string]dirSpec{
	"otel_exporter":      {ctx: cHTTP, block: true, fn: dOtelExporter},
	"otel_service_name":  {ctx: cHTTP, min: 1, max: 1, once: true, fn: dOtelServiceName},
	"otel_resource_attr": {ctx: cHTTP, min: 2, max: 2, fn: dOtelResourceAttr},
	"otel_trace":         {ctx: cHSL, min: 1, max: 1, fn: dOtelTrace},
	"otel_trace_context": {ctx: cHSL, min: 1, max: 1, fn: dOtelTraceContext},
	"otel_span_name":     {ctx: cHSL, min: 1, max: 1, fn: dOtelSpanName},
	"otel_span_attr":     {ctx: cHSL, min: 2, max: 2, fn: dOtelSpanAttr},
}

var otelMergers = map[string]func(c, p *LocConf){
	"otel_trace":         func(c, p *LocConf) { c.Otel.Trace = p.Otel.Trace },
	"otel_trace_context": func(c, p *LocConf) { c.Otel.Context = p.Otel.Context },
	"otel_span_name":     func(c, p *LocConf) { c.Otel.SpanName = p.Otel.SpanName },
	"otel_span_attr":     func(c, p *LocConf) { c.Otel.Attrs = p.Otel.Attrs },
}

// OtelLoc are a location's tracing settings.
type OtelLoc struct {
	// Trace is otel_trace: the request is traced when it evaluates to "on"
	// or "1"; nil is off.
	Trace *vars.Template
	// Context is otel_trace_context: OtelExtract, OtelInject, both
	// (propagate) or neither (ignore).
	Context  uint8
	SpanName *vars.Template // nil: the location's name
	Attrs    []OtelAttr     // otel_span_attr, evaluated when the span ends
}

// OtelAttr is one otel_span_attr.
type OtelAttr struct {
	Name  string
	Value *vars.Template
}

// otel_trace_context's bits.
const (
	OtelExtract uint8 = 1 << iota // take the trace and parent from traceparent
	OtelInject                    // send this span's traceparent upstream
)

// otelMain returns the http level's exporter settings, made with nginx's
// defaults at the first directive that needs them.
func (l *loader) otelMain() *otel.Config {
	h := l.cfg.HTTP
	if h.Otel == nil {
		h.Otel = &otel.Config{Interval: otel.DefaultInterval, BatchSize: otel.DefaultBatchSize,
			BatchCount: otel.DefaultBatchCount, ServiceName: otel.DefaultServiceName}
	}
	return h.Otel
}

// dOtelExporter reads the otel_exporter block: endpoint (required),
// interval, batch_size, batch_count, header and trusted_certificate.
func dOtelExporter(l *loader, d *conf.Directive, s *scope) error {
	c := l.otelMain()
	if c.Endpoint != "" {
		return conf.Errorf(d, "\"otel_exporter\" directive is duplicate")
	}
	for _, e := range d.Block {
		if err := otelExporterLine(l, c, e); err != nil {
			return err
		}
	}
	if c.Endpoint == "" {
		return conf.Errorf(d, "\"endpoint\" is missing in \"otel_exporter\"")
	}
	return nil
}

func otelExporterLine(l *loader, c *otel.Config, e *conf.Directive) error {
	want := map[string]int{"endpoint": 1, "interval": 1, "batch_size": 1, "batch_count": 1, "trusted_certificate": 1, "header": 2}
	n, ok := want[e.Name]
	if !ok {
		return conf.Errorf(e, "unknown directive \"%s\" in \"otel_exporter\"", e.Name)
	}
	if len(e.Args) != n || e.Block != nil {
		return conf.Errorf(e, "invalid number of arguments in \"%s\" directive", e.Name)
	}
	a := e.Args[0]
	var err error
	switch e.Name {
	case "endpoint":
		c.Endpoint = a
	case "interval":
		if c.Interval, err = ParseDuration(a); err != nil || c.Interval <= 0 {
			return conf.Errorf(e, "invalid value \"%s\" in \"interval\"", a)
		}
	case "batch_size", "batch_count":
		v, perr := strconv.Atoi(a)
		if perr != nil || v < 1 {
			return conf.Errorf(e, "invalid value \"%s\" in \"%s\"", a, e.Name)
		}
		if e.Name == "batch_size" {
			c.BatchSize = v
		} else {
			c.BatchCount = v
		}
	case "trusted_certificate":
		if !filepath.IsAbs(a) {
			a = filepath.Join(filepath.Dir(l.cfg.File), a)
		}
		c.TrustedCert = a
	case "header":
		c.Headers = append(c.Headers, [2]string{a, e.Args[1]})
	}
	return nil
}

func dOtelServiceName(l *loader, d *conf.Directive, s *scope) error {
	l.otelMain().ServiceName = d.Args[0]
	return nil
}

func dOtelResourceAttr(l *loader, d *conf.Directive, s *scope) error {
	c := l.otelMain()
	c.Resource = append(c.Resource, [2]string{d.Args[0], d.Args[1]})
	return nil
}

func dOtelTrace(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if t.IsConst() && t.Raw() == "off" {
		t = nil
	}
	s.lc.Otel.Trace = t
	return s.lc.mark(d, d.Name)
}

func dOtelTraceContext(l *loader, d *conf.Directive, s *scope) error {
	modes := map[string]uint8{"ignore": 0, "extract": OtelExtract, "inject": OtelInject, "propagate": OtelExtract | OtelInject}
	m, ok := modes[d.Args[0]]
	if !ok {
		return conf.Errorf(d, "invalid value \"%s\" in \"otel_trace_context\" directive, it must be \"extract\", \"inject\", \"propagate\" or \"ignore\"", d.Args[0])
	}
	s.lc.Otel.Context = m
	return s.lc.mark(d, d.Name)
}

func dOtelSpanName(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	s.lc.Otel.SpanName = t
	return s.lc.mark(d, d.Name)
}

// dOtelSpanAttr appends an attribute; like add_header, a level that
// writes any inherits none from above.
func dOtelSpanAttr(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[1])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	if !s.lc.set["otel_span_attr"] {
		s.lc.Otel.Attrs = nil
	}
	s.lc.Otel.Attrs = append(s.lc.Otel.Attrs, OtelAttr{Name: d.Args[0], Value: t})
	s.lc.set["otel_span_attr"] = true
	return nil
}
