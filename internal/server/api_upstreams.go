package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/status"
)

// maxAPIBody bounds the JSON body of a POST or PATCH.
const maxAPIBody = 64 << 10

// upstreamChange edits a server list; it returns what the api answers
// (with status) or an error, and leaves doc as it should become.
type upstreamChange func(doc *upstreamDoc) (status int, answer any, aerr *status.APIError)

// apiUpstreamServers answers /9/http/upstreams/NAME/servers[/ID]: GET
// lists or shows, and with api write=on POST adds, PATCH changes and
// DELETE removes a server, as nginx Plus. The upstream needs a zone.
func (x *exchange) apiUpstreamServers(name string, rest []string) bool {
	m := x.req.Method
	read := m == "GET" || m == "HEAD"
	allowed := read || (len(rest) == 0 && m == "POST") || (len(rest) == 1 && (m == "PATCH" || m == "DELETE"))
	switch {
	case len(rest) > 1:
		return x.apiAnswer(&status.APIError{Status: 404, Code: "PathNotFound", Text: "path not found"}, nil)
	case !allowed:
		allow := "GET, HEAD, POST"
		if len(rest) == 1 {
			allow = "GET, HEAD, PATCH, DELETE"
		}
		var b strings.Builder
		(&status.APIError{Status: 405, Code: "MethodNotSupported", Text: "method not supported"}).WriteJSON(&b)
		return x.respond(405, append(apiHeader(), http1.Field{Name: "Allow", Value: allow}), b.String())
	case !read && !x.lc.Cluster.APIWrite:
		return x.apiAnswer(&status.APIError{Status: 405, Code: "MethodDisabled", Text: "method disabled: the api location needs write=on"}, nil)
	}
	cu, aerr := x.dynamicUpstream(name)
	if aerr != nil {
		return x.apiAnswer(aerr, nil)
	}
	id := -1
	if len(rest) == 1 {
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 0 {
			return x.apiAnswer(serverNotFound(), nil)
		}
		id = n
	}
	if read {
		return x.apiShowServers(name, id)
	}
	var change upstreamChange
	switch m {
	case "POST":
		fields, ok, keep := x.apiFields()
		if !ok {
			return keep
		}
		change = addServer(cu, fields)
	case "PATCH":
		fields, ok, keep := x.apiFields()
		if !ok {
			return keep
		}
		change = patchServer(cu, id, fields)
	default:
		change = deleteServer(id)
	}
	code, answer, aerr := x.conn.srv.changeUpstream(name, change)
	if aerr != nil {
		if aerr.Status == 503 {
			x.log.Printf(errlog.Error, x.conn.id, "api: upstream \"%s\": the cluster store did not answer", name)
		}
		return x.apiAnswer(aerr, nil)
	}
	x.log.Printf(errlog.Notice, x.conn.id, "api: %s on the servers of upstream \"%s\", client: %s", m, name, x.vc.Remote.Addr())
	return x.apiJSON(code, answer)
}

// dynamicUpstream finds the running upstream name, which must have a zone.
func (x *exchange) dynamicUpstream(name string) (*config.Upstream, *status.APIError) {
	if x.rt.cfg.HTTP != nil {
		for _, cu := range x.rt.cfg.HTTP.Upstreams {
			if cu.Name != name {
				continue
			}
			if cu.Zone == "" {
				return nil, &status.APIError{Status: 400, Code: "UpstreamStatic", Text: "upstream \"" + name + "\" has no zone: its servers cannot change at run time"}
			}
			return cu, nil
		}
	}
	return nil, &status.APIError{Status: 404, Code: "UpstreamNotFound", Text: "upstream not found"}
}

func serverNotFound() *status.APIError {
	return &status.APIError{Status: 404, Code: "UpstreamServerNotFound", Text: "server not found"}
}

func formatError(text string) *status.APIError {
	return &status.APIError{Status: 400, Code: "UpstreamConfFormatError", Text: text}
}

// apiShowServers answers GET: the list, or the server id.
func (x *exchange) apiShowServers(name string, id int) bool {
	d := &x.conn.srv.dyn
	d.mu.Lock()
	var doc upstreamDoc
	if du := d.m[name]; du != nil {
		doc = du.doc
		doc.Servers = slices.Clone(doc.Servers)
	}
	d.mu.Unlock()
	if id < 0 {
		return x.apiJSON(200, nonNil(doc.Servers))
	}
	for _, a := range doc.Servers {
		if a.ID == id {
			return x.apiJSON(200, a)
		}
	}
	return x.apiAnswer(serverNotFound(), nil)
}

func nonNil(list []apiServer) []apiServer {
	if list == nil {
		return []apiServer{}
	}
	return list
}

// apiJSON answers v as JSON with code.
func (x *exchange) apiJSON(code int, v any) bool {
	var b strings.Builder
	json.NewEncoder(&b).Encode(v)
	return x.respond(code, apiHeader(), b.String())
}

// apiFields reads a JSON object body of at most maxAPIBody bytes; when it
// cannot, the 400 (or the body's own failure) is sent and ok is false.
func (x *exchange) apiFields() (fields map[string]json.RawMessage, ok bool, keep bool) {
	if x.req.ContentLength > maxAPIBody {
		x.close = true
		return nil, false, x.apiAnswer(&status.APIError{Status: 413, Code: "BodyTooLarge", Text: "request body too large"}, nil)
	}
	raw, err := io.ReadAll(io.LimitReader(x.clientBody(), maxAPIBody+1))
	if err != nil {
		return nil, false, x.bodyFailed(bodyStatus(err))
	}
	if len(raw) > maxAPIBody {
		x.close = true
		return nil, false, x.apiAnswer(&status.APIError{Status: 413, Code: "BodyTooLarge", Text: "request body too large"}, nil)
	}
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		x.logRequest(errlog.Info, "", "api: the body is not a JSON object")
		return nil, false, x.apiAnswer(formatError("the body must be a JSON object"), nil)
	}
	return fields, true, false
}

// changeUpstream applies change to the list of name: through the cluster
// store when there is one (its copy wins: a write that another instance
// beat is redone on the newer list), then to the running pool and the
// state file.
func (s *Server) changeUpstream(name string, change upstreamChange) (int, any, *status.APIError) {
	d := &s.dyn
	d.mu.Lock()
	defer d.mu.Unlock()
	du := d.m[name]
	if du == nil {
		return 0, nil, &status.APIError{Status: 404, Code: "UpstreamNotFound", Text: "upstream not found"}
	}
	st := s.cluster.Load()
	for range 10 {
		work := du.doc
		work.Servers = slices.Clone(work.Servers)
		code, answer, aerr := change(&work)
		if aerr != nil {
			return 0, nil, aerr
		}
		version := du.version
		if st != nil {
			raw, _ := json.Marshal(work)
			ok, v, cur, err := st.SetUpstream(name, du.version, raw)
			if err != nil {
				return 0, nil, &status.APIError{Status: 503, Code: "ClusterStoreUnavailable", Text: "the cluster store did not answer"}
			}
			if !ok {
				var newer upstreamDoc
				if json.Unmarshal(cur, &newer) != nil {
					return 0, nil, &status.APIError{Status: 500, Code: "UpstreamStoreCorrupt", Text: "the cluster store's server list is unreadable"}
				}
				du.version, du.doc = v, newer
				s.applyDoc(name, newer)
				continue
			}
			version = v
		}
		du.version, du.doc = version, work
		s.applyDoc(name, work)
		return code, answer, nil
	}
	return 0, nil, &status.APIError{Status: 409, Code: "UpstreamConflict", Text: "the server list kept changing; try again"}
}

// applyDoc runs the pool of name with doc and saves it; d.mu is held.
func (s *Server) applyDoc(name string, doc upstreamDoc) {
	s.mu.Lock()
	s.swapPool(name, doc)
	s.mu.Unlock()
	s.saveState(name, doc)
}

// addServer adds the server of fields (one per address of its host).
func addServer(cu *config.Upstream, fields map[string]json.RawMessage) upstreamChange {
	return func(doc *upstreamDoc) (int, any, *status.APIError) {
		base := apiServer{Weight: 1, MaxFails: 1, FailTimeout: "10s", SlowStart: "0s"}
		if _, ok := fields["server"]; !ok {
			return 0, nil, formatError("the server field is required")
		}
		addrs, aerr := setFields(cu, &base, fields)
		if aerr != nil {
			return 0, nil, aerr
		}
		var added []apiServer
		for _, a := range addrs {
			srv := base
			srv.ID, srv.Server = doc.NextID, a
			doc.NextID++
			doc.Servers = append(doc.Servers, srv)
			added = append(added, srv)
		}
		if len(added) == 1 {
			return 201, added[0], nil
		}
		return 201, added, nil
	}
}

// patchServer changes the fields of server id.
func patchServer(cu *config.Upstream, id int, fields map[string]json.RawMessage) upstreamChange {
	return func(doc *upstreamDoc) (int, any, *status.APIError) {
		i := slices.IndexFunc(doc.Servers, func(a apiServer) bool { return a.ID == id })
		if i < 0 {
			return 0, nil, serverNotFound()
		}
		srv := doc.Servers[i]
		addrs, aerr := setFields(cu, &srv, fields)
		if aerr != nil {
			return 0, nil, aerr
		}
		if len(addrs) > 1 {
			return 0, nil, formatError("a server changed in place needs one address")
		}
		if len(addrs) == 1 {
			srv.Server = addrs[0]
		}
		doc.Servers[i] = srv
		return 200, srv, nil
	}
}

// deleteServer removes server id; the answer is the list left.
func deleteServer(id int) upstreamChange {
	return func(doc *upstreamDoc) (int, any, *status.APIError) {
		i := slices.IndexFunc(doc.Servers, func(a apiServer) bool { return a.ID == id })
		if i < 0 {
			return 0, nil, serverNotFound()
		}
		doc.Servers = slices.Delete(doc.Servers, i, i+1)
		return 200, nonNil(doc.Servers), nil
	}
}

// setFields copies fields into srv, checked as the server directive
// checks its parameters; it returns the addresses of a server field.
func setFields(cu *config.Upstream, srv *apiServer, fields map[string]json.RawMessage) ([]string, *status.APIError) {
	var addrs []string
	for k, raw := range fields {
		var err error
		switch k {
		case "server":
			var v string
			if err = json.Unmarshal(raw, &v); err == nil {
				var aerr *status.APIError
				if addrs, aerr = resolveServer(v); aerr != nil {
					return nil, aerr
				}
			}
		case "weight", "max_conns", "max_fails":
			err = intField(raw, k, srv)
		case "fail_timeout", "slow_start":
			err = durationField(raw, k, srv)
		case "route", "service":
			var v string
			if err = json.Unmarshal(raw, &v); err == nil && len(v) > 32 && k == "route" {
				err = errBadField
			}
			if k == "route" {
				srv.Route = v
			} else {
				srv.Service = v
			}
		case "backup":
			err = json.Unmarshal(raw, &srv.Backup)
		case "down":
			err = json.Unmarshal(raw, &srv.Down)
		case "drain":
			err = json.Unmarshal(raw, &srv.Drain)
		case "id":
			return nil, formatError("the id field cannot be set")
		default:
			return nil, formatError("unknown field \"" + k + "\"")
		}
		if err != nil {
			return nil, formatError("invalid value of \"" + k + "\"")
		}
	}
	if srv.Backup && cu.Method != "round_robin" && cu.Method != "least_conn" {
		return nil, formatError("the balancing method of the upstream does not support backup servers")
	}
	return addrs, nil
}

var errBadField = errors.New("invalid value")

// intField sets weight (at least 1), max_conns or max_fails (at least 0).
func intField(raw json.RawMessage, k string, srv *apiServer) error {
	var v int
	if err := json.Unmarshal(raw, &v); err != nil || v < 0 || (k == "weight" && v < 1) {
		return errBadField
	}
	switch k {
	case "weight":
		srv.Weight = v
	case "max_conns":
		srv.MaxConns = v
	default:
		srv.MaxFails = v
	}
	return nil
}

// durationField sets fail_timeout or slow_start from an nginx time.
func durationField(raw json.RawMessage, k string, srv *apiServer) error {
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	d, err := config.ParseDuration(v)
	if err != nil || d < 0 {
		return errBadField
	}
	if k == "fail_timeout" {
		srv.FailTimeout = fmtDuration(d)
	} else {
		srv.SlowStart = fmtDuration(d)
	}
	return nil
}

// resolveServer turns "host[:port]" (port 80 by default) into ip:port
// addresses, one per address of the host.
func resolveServer(v string) ([]string, *status.APIError) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		host, port = v, "80"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return nil, formatError("invalid server address \"" + v + "\"")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []string{net.JoinHostPort(ip.String(), port)}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, &status.APIError{Status: 400, Code: "UpstreamBadAddress", Text: "host not found: \"" + host + "\""}
	}
	var out []string
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.Unmap().String(), port))
	}
	return out, nil
}
