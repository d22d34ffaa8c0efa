package config

import (
	"strings"
	"testing"
	"time"
)

func TestUpgradeDrainPeriod(t *testing.T) {
	for src, want := range map[string]time.Duration{"": DefaultUpgradeDrainPeriod, "websocket_upgrade_drain_period 30s;": 30 * time.Second} {
		cfg, err := load(t, src+" http { }")
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := cfg.UpgradeDrain(); got != want {
			t.Errorf("%q: %v, want %v", src, got, want)
		}
	}
	for src, want := range map[string]string{
		"websocket_upgrade_drain_period soon;":                                  `"websocket_upgrade_drain_period" directive invalid value`,
		"websocket_upgrade_drain_period 1s; websocket_upgrade_drain_period 2s;": `"websocket_upgrade_drain_period" directive is duplicate`,
		"http { websocket_upgrade_drain_period 1s; }":                           `"websocket_upgrade_drain_period" directive is not allowed here`,
	} {
		if _, err := load(t, src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}
