package config

import (
	"time"

	"github.com/wsgate/wsgate/internal/conf"
)

// DefaultUpgradeDrainPeriod is websocket_upgrade_drain_period's default.
const DefaultUpgradeDrainPeriod = 5 * time.Minute

func dUpgradeDrainPeriod(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseDuration(d.Args[0])
	if err != nil {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	l.cfg.UpgradeDrainPeriod = v
	return nil
}

// UpgradeDrain is the drain period of a binary upgrade: the directive's
// value, or its default.
func (c *Config) UpgradeDrain() time.Duration {
	if c.UpgradeDrainPeriod > 0 {
		return c.UpgradeDrainPeriod
	}
	return DefaultUpgradeDrainPeriod
}
