package config

import (
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/conf"
	"github.com/wsgate/wsgate/internal/vars"
)

// ClusterStore is a cluster_store directive.
type ClusterStore struct {
	cluster.Config
	File string
	Line int
}

// clusterDirectives are the directives that make several instances act
// as one.
var clusterDirectives = map[string]dirSpec{
	"cluster_store":         {ctx: cMain | cHTTP, min: 1, max: 3, fn: dClusterStore},
	"websocket_session_key": {ctx: cHSL, min: 1, max: 1, fn: dSessionKey},
	"cluster_rebalance":     {ctx: cHTTP, max: 2, fn: dClusterRebalance},
}

// dClusterRebalance reads "cluster_rebalance [threshold=P%] [rate=N/s]",
// with websocket_rebalance's parameters and defaults.
func dClusterRebalance(l *loader, d *conf.Directive, s *scope) error {
	if l.cfg.HTTP.ClusterRebalance != nil {
		return conf.Errorf(d, "\"cluster_rebalance\" directive is duplicate")
	}
	rb, err := rebalanceArgs(d)
	if err != nil {
		return err
	}
	l.cfg.HTTP.ClusterRebalance = rb
	return nil
}

// dClusterStore reads "cluster_store URL [timeout=T] [password=P]".
// Errors never repeat a password.
func dClusterStore(l *loader, d *conf.Directive, s *scope) error {
	if l.cfg.Cluster != nil {
		return conf.Errorf(d, "\"cluster_store\" directive is duplicate")
	}
	c := &ClusterStore{Config: cluster.Config{URL: d.Args[0], Timeout: cluster.DefaultTimeout}, File: d.File, Line: d.Line}
	for _, a := range d.Args[1:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "timeout":
			t, err := ParseDuration(v)
			if err != nil || t <= 0 || t > time.Minute {
				return conf.Errorf(d, "invalid timeout \"%s\" in \"cluster_store\" directive, it must be between 1ms and 1m", v)
			}
			c.Timeout = t
		case "password":
			if v == "" {
				return conf.Errorf(d, "empty password in \"cluster_store\" directive")
			}
			c.Password = v
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", cluster.RedactURL(redactParam(a)))
		}
	}
	if err := c.Check(); err != nil {
		return conf.Errorf(d, "%v", err)
	}
	l.cfg.Cluster = c
	return nil
}

// redactParam hides the value of an unknown parameter: a misspelt
// password= must not reach the error log.
func redactParam(a string) string {
	if k, _, ok := strings.Cut(a, "="); ok {
		return k + "=xxxxx"
	}
	return a
}

// ClusterLoc are a location's settings for cluster-wide sessions and the
// writable api.
type ClusterLoc struct {
	// SessionKey is websocket_session_key: the WebSockets of this location
	// are registered in the cluster store under its value (none when it is
	// empty), and a banned value is refused at the handshake.
	SessionKey *vars.Template
	// APIWrite is api write=on: the api accepts DELETE. It needs an access
	// restriction on the location.
	APIWrite bool
	apiFile  string
	apiLine  int
}

func init() {
	mergers["websocket_session_key"] = func(c, p *LocConf) { c.Cluster.SessionKey = p.Cluster.SessionKey }
}

func dSessionKey(l *loader, d *conf.Directive, s *scope) error {
	t, err := l.cfg.Vars.Compile(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "%v", err)
	}
	s.lc.Cluster.SessionKey = t
	return s.lc.mark(d, "websocket_session_key")
}

// apiWriteArg reads api's "write=on|off".
func apiWriteArg(d *conf.Directive, s *scope) error {
	if len(d.Args) == 0 {
		return nil
	}
	switch {
	case d.Name == "api" && d.Args[0] == "write=on":
		s.lc.Cluster.APIWrite = true
		s.lc.Cluster.apiFile, s.lc.Cluster.apiLine = d.File, d.Line
	case d.Args[0] == "write=off":
	default:
		return conf.Errorf(d, "invalid parameter \"%s\"", d.Args[0])
	}
	return nil
}

// checkCluster refuses "api write=on" in a location that anyone may
// reach (allow/deny rules, its own or inherited, that deny someone,
// auth_basic, auth_request or "ssl_verify_client on" must restrict it),
// and warns of websocket_session_key and sync zones without a
// cluster_store, where they have no effect.
func (l *loader) checkCluster() error {
	var err error
	sessions := false
	for _, srv := range l.cfg.HTTP.Servers {
		srv.Walk(func(loc *Location) {
			c := loc.Conf.Cluster
			sessions = sessions || c.SessionKey != nil
			if err != nil || !c.APIWrite || restricted(loc.Conf) {
				return
			}
			err = &conf.Error{File: c.apiFile, Line: c.apiLine, Msg: "\"api write=on\" needs an access restriction: allow and deny rules (here or inherited) that deny someone, auth_basic, auth_request or \"ssl_verify_client on\""}
		})
	}
	if l.cfg.Cluster == nil && sessions {
		l.cfg.Warnings = append(l.cfg.Warnings, "\"websocket_session_key\" has no effect without \"cluster_store\"")
	}
	return err
}

func restricted(lc *LocConf) bool {
	if lc.Auth.Restricts() || lc.SSL.VerifyClient == "on" {
		return true
	}
	for _, r := range lc.Access {
		if !r.Allow {
			return true
		}
	}
	return false
}
