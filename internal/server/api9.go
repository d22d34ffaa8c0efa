package server

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/status"
)

// apiHandler answers an api location as nginx Plus's versioned API: the
// root lists the versions (with ?json, the single document the dashboard
// reads), /9/... the data at Plus's paths, and
// /9/http/websocket/sessions?key=K the cluster's sessions of a key, which
// DELETE closes when the location has api write=on.
func (x *exchange) apiHandler() bool {
	rest := x.req.Path
	if x.loc != nil && x.loc.Regex == nil {
		rest = strings.TrimPrefix(rest, strings.TrimSuffix(x.loc.Path, "/"))
	}
	version, parts, aerr := status.ParseAPIPath(rest)
	if aerr == nil && version != 0 && strings.Join(parts, "/") == "http/websocket/sessions" {
		return x.apiSessions()
	}
	if aerr == nil && version != 0 && len(parts) >= 4 && parts[0] == "http" && parts[1] == "upstreams" && parts[3] == "servers" {
		return x.apiUpstreamServers(parts[2], parts[4:])
	}
	if aerr == nil && version != 0 && len(parts) >= 3 && len(parts) <= 4 && strings.Join(parts[:3], "/") == "http/websocket/captures" {
		id := ""
		if len(parts) == 4 {
			id = parts[3]
		}
		return x.apiCaptures(id)
	}
	if x.req.Method != "GET" && x.req.Method != "HEAD" {
		return x.apiAnswer(&status.APIError{Status: 405, Code: "MethodNotSupported", Text: "method not supported"}, nil)
	}
	var b strings.Builder
	switch {
	case aerr != nil:
	case version == 0 && x.req.RawQuery == "json":
		status.WriteJSON(&b, x.conn.srv.Snapshot())
	case version == 0:
		status.WriteAPIRoot(&b)
	case len(parts) == 1 && parts[0] == "cluster":
		x.apiCluster(&b)
	default:
		aerr = status.WriteAPI9(&b, x.conn.srv.Snapshot(), parts)
	}
	return x.apiAnswer(aerr, &b)
}

// apiCluster writes the cluster store's state: whether one is configured,
// its address (password hidden), whether sync zones are shared now or
// falling back to local zones, the live instances, outages and round trips.
func (x *exchange) apiCluster(b *strings.Builder) {
	doc := map[string]any{"configured": false}
	if st := x.conn.srv.cluster.Load(); st != nil {
		doc = map[string]any{"configured": true, "store": st.Config().String(), "id": st.ID(), "shared": st.Up(),
			"instances": st.Instances(), "fallbacks": st.Fallbacks(), "round_trips": st.RoundTrips()}
	}
	json.NewEncoder(b).Encode(doc)
}

// apiAnswer sends an APIError, or body with 200.
func (x *exchange) apiAnswer(aerr *status.APIError, body *strings.Builder) bool {
	hdr := apiHeader()
	if aerr != nil {
		var b strings.Builder
		aerr.WriteJSON(&b)
		if aerr.Status == 405 {
			hdr = append(hdr, http1.Field{Name: "Allow", Value: "GET, HEAD"})
		}
		return x.respond(aerr.Status, hdr, b.String())
	}
	return x.respond(200, hdr, body.String())
}

// apiHeader is the header of every api answer.
func apiHeader() http1.Header {
	return http1.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "Cache-Control", Value: "no-store"}}
}

// apiSessions lists (GET) or closes (DELETE, with code, reason and an
// optional ban=TIME) the sessions of ?key= across the cluster.
func (x *exchange) apiSessions() bool {
	st := x.conn.srv.cluster.Load()
	q, err := url.ParseQuery(x.req.RawQuery)
	key := q.Get("key")
	switch {
	case x.req.Method == "DELETE" && !x.lc.Cluster.APIWrite:
		return x.apiAnswer(&status.APIError{Status: 405, Code: "MethodDisabled", Text: "method disabled: the api location needs write=on"}, nil)
	case x.req.Method != "GET" && x.req.Method != "HEAD" && x.req.Method != "DELETE":
		return x.apiAnswer(&status.APIError{Status: 405, Code: "MethodNotSupported", Text: "method not supported"}, nil)
	case st == nil:
		return x.apiAnswer(&status.APIError{Status: 404, Code: "ClusterStoreNotConfigured", Text: "sessions need a cluster_store"}, nil)
	case err != nil || key == "":
		return x.apiAnswer(&status.APIError{Status: 400, Code: "KeyRequired", Text: "the key argument is required"}, nil)
	}
	var b strings.Builder
	if x.req.Method != "DELETE" {
		list, err := st.Sessions(key)
		if err != nil {
			return x.apiStoreFailed(err)
		}
		json.NewEncoder(&b).Encode(list)
		return x.apiAnswer(nil, &b)
	}
	code, reason, ban, aerr := closeArgs(q)
	if aerr != nil {
		return x.apiAnswer(aerr, nil)
	}
	n, err := st.CloseSessions(key, code, reason, ban)
	if err != nil {
		return x.apiStoreFailed(err)
	}
	x.log.Printf(errlog.Notice, x.conn.id, "api: closing %d sessions with code %d, ban %v, client: %s", n, code, ban, x.vc.Remote.Addr())
	json.NewEncoder(&b).Encode(map[string]any{"sessions": n, "code": code, "reason": reason, "ban_seconds": int64(ban / time.Second)})
	return x.apiAnswer(nil, &b)
}

func (x *exchange) apiStoreFailed(err error) bool {
	x.log.Printf(errlog.Error, x.conn.id, "api: cluster store: %v", err)
	return x.apiAnswer(&status.APIError{Status: 503, Code: "ClusterStoreUnavailable", Text: "the cluster store did not answer"}, nil)
}

// closeArgs reads DELETE's code (default 1000; 1000, 1001, 1008 or
// 3000-4999, the codes an endpoint may send for such a reason), reason
// (UTF-8, at most 123 bytes, what a close frame holds) and ban (an nginx
// time, e.g. 10m).
func closeArgs(q url.Values) (code uint16, reason string, ban time.Duration, aerr *status.APIError) {
	bad := func(text string) *status.APIError {
		return &status.APIError{Status: 400, Code: "InvalidArgument", Text: text}
	}
	code = 1000
	if v := q.Get("code"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || !(n == 1000 || n == 1001 || n == 1008 || n >= 3000 && n <= 4999) {
			return 0, "", 0, bad("code must be 1000, 1001, 1008 or 3000-4999")
		}
		code = uint16(n)
	}
	reason = q.Get("reason")
	if len(reason) > 123 || !utf8.ValidString(reason) {
		return 0, "", 0, bad("reason must be UTF-8 of at most 123 bytes")
	}
	if v := q.Get("ban"); v != "" {
		d, err := config.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, "", 0, bad("ban must be a time such as 30s or 10m")
		}
		ban = d
	}
	return code, reason, ban, nil
}
