package status

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// APIVersion is the newest version of nginx Plus's API that the api
// location answers; the root lists 1 to APIVersion, as Plus's does, and
// only APIVersion is served.
const APIVersion = 9

// APIError is an api answer other than 200, shaped as nginx Plus's.
type APIError struct {
	Status int
	Code   string // e.g. "PathNotFound"
	Text   string
}

// WriteJSON writes the error document.
func (e *APIError) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"status": e.Status, "text": e.Text, "code": e.Code}})
}

// ParseAPIPath splits the part of a request's path below the api location:
// "" or "/" is the root (parts nil, version 0); "/9/http/upstreams" is
// version 9 and [http upstreams]. A version that is not served, or a path
// that is not a number where the version stands, is an APIError.
func ParseAPIPath(rest string) (version int, parts []string, err *APIError) {
	rest = strings.Trim(rest, "/")
	if rest == "" {
		return 0, nil, nil
	}
	parts = strings.Split(rest, "/")
	v, perr := strconv.Atoi(parts[0])
	switch {
	case perr != nil:
		return 0, nil, &APIError{Status: 404, Code: "PathNotFound", Text: "path not found"}
	case v < 1 || v > APIVersion:
		return 0, nil, &APIError{Status: 404, Code: "UnknownVersion", Text: "unknown version"}
	case v < APIVersion:
		return 0, nil, &APIError{Status: 404, Code: "UnsupportedVersion", Text: "version " + parts[0] + " is not served: use " + strconv.Itoa(APIVersion)}
	}
	return v, parts[1:], nil
}

// WriteAPIRoot writes the root's list of versions.
func WriteAPIRoot(w io.Writer) error {
	vs := make([]int, APIVersion)
	for i := range vs {
		vs[i] = i + 1
	}
	return json.NewEncoder(w).Encode(vs)
}

// WriteAPI9 writes the read-only endpoint parts of version 9 at nginx
// Plus's paths: / (the sections), /nginx, /connections, /http,
// /http/requests, /http/upstreams[/NAME] and /http/websocket (its
// sessions, and /cluster, are answered by the server) and /resolvers[/ZONE].
// A path it does not
// know is an APIError.
func WriteAPI9(w io.Writer, s Snapshot, parts []string) *APIError {
	var doc any
	switch strings.Join(parts, "/") {
	case "":
		sections := []string{"nginx", "connections", "http", "cluster"}
		if len(s.Resolvers) > 0 { // listed when a resolver has a status_zone
			sections = []string{"nginx", "connections", "http", "resolvers", "cluster"}
		}
		doc = sections
	case "resolvers":
		doc = resolversDoc(s)
	case "nginx":
		load := s.LastReload
		if load.IsZero() {
			load = s.Started
		}
		doc = map[string]any{"version": s.Version, "build": "wsgate", "generation": s.Reloads,
			"load_timestamp": load, "timestamp": time.Now().UTC(), "pid": s.PID}
	case "connections":
		c := s.Connections
		doc = map[string]int64{"accepted": c.Accepted, "dropped": c.Accepted - c.Handled, "active": c.Active - c.Waiting, "idle": c.Waiting}
	case "http":
		doc = []string{"requests", "upstreams", "websocket"}
	case "http/requests":
		c := s.Connections
		doc = map[string]int64{"total": c.Requests, "current": c.Reading + c.Writing}
	case "http/websocket":
		doc = []string{"sessions"}
	default:
		if len(parts) == 2 && parts[0] == "resolvers" {
			if z, ok := resolversDoc(s)[parts[1]]; ok {
				json.NewEncoder(w).Encode(z)
				return nil
			}
			return &APIError{Status: 404, Code: "ResolverZoneNotFound", Text: "resolver zone not found"}
		}
		ups := upstreamsDoc(s)
		if len(parts) == 2 && parts[0] == "http" && parts[1] == "upstreams" {
			doc = ups
		} else if u, ok := ups[lastPart(parts)]; ok && len(parts) == 3 && parts[0] == "http" && parts[1] == "upstreams" {
			doc = u
		} else {
			return &APIError{Status: 404, Code: "PathNotFound", Text: "path not found"}
		}
	}
	json.NewEncoder(w).Encode(doc)
	return nil
}

func lastPart(parts []string) string { return parts[len(parts)-1] }

// upstreamsDoc is the upstreams part of the single document.
func upstreamsDoc(s Snapshot) map[string]jsonUpstream {
	var b bytes.Buffer
	WriteJSON(&b, s)
	var doc jsonStatus
	json.Unmarshal(b.Bytes(), &doc)
	return doc.Upstreams
}

// resolversDoc is nginx Plus's resolvers section: per status_zone, the
// questions sent and the answers' outcomes.
func resolversDoc(s Snapshot) map[string]any {
	out := map[string]any{}
	for zone, st := range s.Resolvers {
		out[zone] = map[string]any{
			"requests": map[string]uint64{"name": st.Name, "srv": st.SRV, "addr": 0},
			"responses": map[string]uint64{"noerror": st.NoError, "formerr": st.FormErr, "servfail": st.ServFail,
				"nxdomain": st.NXDomain, "notimp": st.NotImp, "refused": st.Refused, "timedout": st.TimedOut, "unknown": st.Other},
		}
	}
	return out
}
