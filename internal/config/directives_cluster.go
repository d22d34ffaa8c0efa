package config

import (
	"strings"
	"time"

	"github.com/wsgate/wsgate/internal/cluster"
	"github.com/wsgate/wsgate/internal/conf"
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
	"cluster_store": {ctx: cMain | cHTTP, min: 1, max: 3, fn: dClusterStore},
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

// redactParam hides the value of a parameter that looks like a secret.
func redactParam(a string) string {
	if k, _, ok := strings.Cut(a, "="); ok && strings.Contains(strings.ToLower(k), "pass") {
		return k + "=xxxxx"
	}
	return a
}
