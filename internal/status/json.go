package status

import (
	"encoding/json"
	"io"
	"time"
)

// The JSON document, shaped after nginx Plus's /api so that tools written
// for it need little change.
type jsonStatus struct {
	Version     string                  `json:"version"`
	PID         int                     `json:"pid"`
	Started     time.Time               `json:"started"`
	Reloads     int64                   `json:"reloads"`
	LastReload  *time.Time              `json:"last_reload"`
	Connections jsonConnections         `json:"connections"`
	Tunnels     int64                   `json:"tunnels"`
	Upstreams   map[string]jsonUpstream `json:"upstreams"`
	Locations   []jsonLocation          `json:"websocket_locations"`
}

type jsonConnections struct {
	Active   int64 `json:"active"`
	Reading  int64 `json:"reading"`
	Writing  int64 `json:"writing"`
	Waiting  int64 `json:"waiting"`
	Accepted int64 `json:"accepted"`
	Handled  int64 `json:"handled"`
	Requests int64 `json:"requests"`
}

type jsonUpstream struct {
	Peers []jsonPeer `json:"peers"`
}

type jsonPeer struct {
	Server           string     `json:"server"`
	Name             string     `json:"name"`
	State            string     `json:"state"`
	Backup           bool       `json:"backup"`
	Active           int64      `json:"active"`
	Weight           int        `json:"weight"`
	Fails            int        `json:"fails"`
	Health           string     `json:"health"`
	Requests         uint64     `json:"requests"`
	Failures         uint64     `json:"failures"`
	UnavailableUntil *time.Time `json:"unavailable_until"`
}

// WriteJSON writes s as one JSON object followed by a newline. Every key is
// always present; times are RFC 3339, and null when unset.
func WriteJSON(w io.Writer, s Snapshot) error {
	c := s.Connections
	doc := jsonStatus{
		Version:    s.Version,
		PID:        s.PID,
		Started:    s.Started,
		Reloads:    s.Reloads,
		LastReload: optionalTime(s.LastReload),
		Connections: jsonConnections{
			Active: c.Active, Reading: c.Reading, Writing: c.Writing, Waiting: c.Waiting,
			Accepted: c.Accepted, Handled: c.Handled, Requests: c.Requests,
		},
		Tunnels:   s.Tunnels,
		Upstreams: make(map[string]jsonUpstream, len(s.Upstreams)),
		Locations: jsonLocations(s.Locations),
	}
	for _, u := range s.Upstreams {
		peers := doc.Upstreams[u.Name].Peers
		if peers == nil {
			peers = make([]jsonPeer, 0, len(u.Peers))
		}
		for _, p := range u.Peers {
			health := "healthy"
			if !p.Healthy {
				health = "unhealthy"
			}
			peers = append(peers, jsonPeer{
				Server: p.Addr, Name: p.Name, State: peerStateName(p), Backup: p.Backup,
				Active: p.Active, Weight: p.Weight, Fails: p.Fails, Health: health,
				Requests: p.Picks, Failures: p.Failures,
				UnavailableUntil: optionalTime(p.UnavailableUntil),
			})
		}
		doc.Upstreams[u.Name] = jsonUpstream{Peers: peers}
	}
	return json.NewEncoder(w).Encode(doc)
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
