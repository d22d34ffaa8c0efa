package server

import (
	"testing"

	"github.com/wsgate/wsgate/internal/config"
)

func TestKeepaliveDisabled(t *testing.T) {
	const (
		msie6    = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
		msie6sv1 = "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
		msie5    = "Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)"
		msie7    = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"
		safari   = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15"
		chrome   = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
	)
	m6, sf := config.KeepaliveDisableMSIE6, config.KeepaliveDisableSafari
	tests := []struct {
		mask   uint8
		method string
		ua     string
		want   bool
	}{
		{m6, "POST", msie6, true},
		{m6, "GET", msie6, false}, // msie6 is about POST bodies only
		{m6, "POST", msie6sv1, false},
		{m6, "POST", msie5, true},
		{m6, "POST", msie7, false},
		{m6, "POST", "MSIE 6", false},
		{0, "POST", msie6, false},
		{sf, "GET", safari, true},
		{sf, "GET", chrome, false},
		{m6, "GET", safari, false},
		{m6 | sf, "POST", msie6, true},
	}
	for _, tt := range tests {
		if got := keepaliveDisabled(tt.mask, tt.method, tt.ua); got != tt.want {
			t.Errorf("mask %b %s %q: %v, want %v", tt.mask, tt.method, tt.ua, got, tt.want)
		}
	}
}
