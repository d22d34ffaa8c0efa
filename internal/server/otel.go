package server

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/otel"
	"github.com/wsgate/wsgate/internal/tunnel"
)

// What ngx_otel_module does: a trace context per request, sent upstream
// as traceparent, and a span per request (and per WebSocket session, ended
// when its tunnel closes) exported to the otel_exporter endpoint.

// otelExporter is the live exporter and the settings it was built from.
type otelExporter struct {
	conf *otel.Config
	exp  *otel.Exporter
}

// stageOtel builds an exporter for cfg unless the live one exports the
// same way; s.mu is held.
func (s *Server) stageOtel(cfg *config.Config, st *staged) error {
	var want *otel.Config
	if cfg.HTTP != nil && cfg.HTTP.Otel != nil && cfg.HTTP.Otel.Endpoint != "" {
		want = cfg.HTTP.Otel
	}
	cur := s.otel.Load()
	switch {
	case want == nil:
		return nil
	case cur != nil && cur.conf.Equal(want):
		st.otel = cur
		return nil
	}
	exp, err := otel.NewExporter(want)
	if err != nil {
		return err
	}
	st.otel, st.newOtel = &otelExporter{conf: want, exp: exp}, true
	return nil
}

// commitOtel makes st's exporter the live one; a replaced one sends what
// it holds in the background.
func (s *Server) commitOtel(st *staged) {
	if old := s.otel.Swap(st.otel); old != nil && old != st.otel {
		go shutdownOtel(old, s.log.Load())
	}
}

// rollbackOtel drops an exporter built for a configuration that failed.
func (s *Server) rollbackOtel(st *staged) {
	if st.newOtel {
		st.otel.exp.Shutdown(context.Background())
	}
}

// closeOtel sends the spans still queued when the server stops.
func (s *Server) closeOtel() {
	if old := s.otel.Swap(nil); old != nil {
		shutdownOtel(old, s.log.Load())
	}
}

// otelFlushWait bounds how long a stop or a reload waits for the
// collector to take the last spans.
const otelFlushWait = 5 * time.Second

func shutdownOtel(e *otelExporter, log *errlog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), otelFlushWait)
	defer cancel()
	if err := e.exp.Shutdown(ctx); err != nil {
		log.Printf(errlog.Warn, 0, "OTel export to \"%s\" failed: %v", e.conf.Endpoint, err)
	}
}

// otelState is a request's trace context: made when the location first
// needs it, for tracing, propagation or an $otel_* variable.
type otelState struct {
	parent, cur otel.TraceContext
}

// otelCtx returns the request's trace context, making it on first use:
// in the trace of the request's traceparent when the location extracts
// it, else in a new trace.
func (x *exchange) otelCtx() *otelState {
	if x.otel == nil {
		st := &otelState{}
		if x.lc.Otel.Context&config.OtelExtract != 0 {
			st.parent = otel.Parse(x.req.Header.Get("traceparent"), x.req.Header.Get("tracestate"))
		}
		st.cur = otel.Generate(st.parent)
		x.otel = st
	}
	return x.otel
}

// otelStart runs once, when the request enters its first location,
// before that location's rewrite phase: it decides whether
// the request is traced (otel_trace is "on" or "1") and, when the
// location injects, replaces the request's traceparent and tracestate,
// which the proxy then passes on.
func (x *exchange) otelStart() {
	if x.otelSeen {
		return // an internal redirect keeps the request's span
	}
	x.otelSeen = true
	o := &x.lc.Otel
	sampled := false
	if o.Trace != nil {
		v := o.Trace.Eval(x.vc)
		sampled = v == "on" || v == "1"
	}
	if o.Context == 0 && !sampled {
		return
	}
	st := x.otelCtx()
	st.cur.Sampled = sampled
	if o.Context&config.OtelInject == 0 {
		return
	}
	x.req.Header.Set("traceparent", st.cur.Traceparent())
	if st.cur.State != "" {
		x.req.Header.Set("tracestate", st.cur.State)
	} else {
		x.req.Header.Del("tracestate")
	}
}

// otelVar answers $otel_trace_id, $otel_span_id, $otel_parent_id and
// $otel_parent_sampled.
func (x *exchange) otelVar(name string) (string, bool) {
	st := x.otelCtx()
	switch name {
	case "otel_trace_id":
		return st.cur.TraceIDString(), true
	case "otel_span_id":
		return st.cur.SpanIDString(), true
	case "otel_parent_id":
		v := st.parent.SpanIDString()
		return v, v != ""
	}
	if st.parent.Sampled {
		return "1", true
	}
	return "0", true
}

// otelSpan returns the request's span, without its end, when the request
// is traced and an exporter is configured; nil otherwise.
func (x *exchange) otelSpan() *otel.Span {
	if x.otel == nil || !x.otel.cur.Sampled || x.conn.srv.otel.Load() == nil {
		return nil
	}
	name := ""
	if x.loc != nil {
		name = x.loc.Path
	}
	if t := x.lc.Otel.SpanName; t != nil {
		name = t.Eval(x.vc)
	}
	vc := x.vc
	attrs := make([]attribute.KeyValue, 0, 16+len(x.lc.Otel.Attrs))
	attrs = append(attrs,
		attribute.String("http.method", vc.Method),
		attribute.String("http.target", x.req.RequestURI),
		attribute.String("http.scheme", vc.Scheme),
		attribute.String("http.flavor", flavor(vc.Proto)),
		attribute.Int64("http.request_content_length", max(x.req.ContentLength, 0)),
		attribute.String("net.host.name", x.hostName()),
		attribute.String("net.sock.peer.addr", vc.Remote.Addr().String()),
		attribute.Int("net.sock.peer.port", int(vc.Remote.Port())),
	)
	if x.loc != nil && x.loc.Path != "" {
		attrs = append(attrs, attribute.String("http.route", x.loc.Path))
	}
	if ua := x.req.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, attribute.String("http.user_agent", ua))
	}
	if p := vc.Local.Port(); p != 0 && !((vc.Scheme == "https" && p == 443) || (vc.Scheme == "http" && p == 80)) {
		attrs = append(attrs, attribute.Int("net.host.port", int(p)))
	}
	for _, a := range x.lc.Otel.Attrs {
		attrs = append(attrs, attribute.String(a.Name, a.Value.Eval(vc)))
	}
	return &otel.Span{Name: name, Parent: x.otel.parent, Current: x.otel.cur, Start: vc.Start, Attrs: attrs}
}

// hostName is net.host.name: the server's first name, else the request's
// host, as nginx's module reports it.
func (x *exchange) hostName() string {
	if x.vc.ServerName != "" {
		return x.vc.ServerName
	}
	return x.vc.Host
}

func flavor(proto string) string {
	if len(proto) > 5 {
		return proto[5:]
	}
	return proto
}

// otelEnd exports the request's span at its log phase.
func (x *exchange) otelEnd() {
	sp := x.otelSpan()
	if sp == nil {
		return
	}
	status := x.vc.Status
	sp.End = x.vc.End
	sp.Attrs = append(sp.Attrs,
		attribute.Int64("http.response_content_length", x.bodySent),
		attribute.Int("http.status_code", status))
	sp.Error = status >= 500
	x.conn.srv.exportSpan(sp)
}

// exportSpan queues sp with the live exporter, if there still is one.
func (s *Server) exportSpan(sp *otel.Span) {
	if e := s.otel.Load(); e != nil {
		e.exp.Export(sp)
	}
}

// otelSessionEnd ends a WebSocket session's span when its tunnel closes:
// it spans the whole session and carries the close and message counts.
func otelSessionEnd(s *Server, sp *otel.Span, r *tunnel.Result) {
	sp.End = r.End
	sp.Attrs = append(sp.Attrs,
		attribute.Int("http.status_code", 101),
		attribute.Int64("http.response_content_length", r.FromBackend),
		attribute.Int64("websocket.bytes_received", r.FromClient),
		attribute.Int64("websocket.messages_received", r.MessagesFromClient),
		attribute.Int64("websocket.messages_sent", r.MessagesFromBackend),
		attribute.String("websocket.closed_by", r.ClosedBy.String()),
		attribute.String("websocket.close_reason", r.Reason.String()),
	)
	if r.CloseCode != 0 {
		sp.Attrs = append(sp.Attrs, attribute.Int("websocket.close_code", int(r.CloseCode)))
	}
	s.exportSpan(sp)
}
