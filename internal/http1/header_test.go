package http1

import (
	"slices"
	"testing"
)

func TestHeader(t *testing.T) {
	h := Header{{"Host", "a"}, {"Connection", "keep-alive, Upgrade"}, {"X-A", "1"}, {"x-a", "2"}, {"Connection", " close "}}
	if h.Get("HOST") != "a" || h.Get("x-A") != "1" || h.Get("missing") != "" {
		t.Errorf("Get")
	}
	if !h.Has("x-a") || h.Has("x-b") {
		t.Errorf("Has")
	}
	if got := slices.Collect(h.Values("X-A")); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("Values = %v", got)
	}
	for _, tc := range []struct {
		name, token string
		want        bool
	}{
		{"connection", "upgrade", true},
		{"Connection", "KEEP-ALIVE", true},
		{"Connection", "close", true},
		{"Connection", "keep", false},
		{"Connection", "alive, upgrade", false},
		{"Upgrade", "websocket", false},
	} {
		if got := h.HasToken(tc.name, tc.token); got != tc.want {
			t.Errorf("HasToken(%q, %q) = %v", tc.name, tc.token, got)
		}
	}
	h.Del("X-A")
	if h.Has("x-a") || len(h) != 3 || h[2].Value != " close " {
		t.Errorf("Del: %v", h)
	}
	h.Set("connection", "Upgrade")
	if len(h) != 2 || h[1] != (Field{"Connection", "Upgrade"}) {
		t.Errorf("Set existing: %v", h)
	}
	h.Set("Upgrade", "websocket")
	h.Add("X-B", "1")
	if got := string(h.AppendTo(nil)); got != "Host: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-B: 1\r\n" {
		t.Errorf("AppendTo = %q", got)
	}
}

func TestEqualFoldIsASCII(t *testing.T) {
	if equalFold("\u212a", "k") || equalFold("Kelvin", "\u212aelvin") {
		t.Error("Unicode folding used")
	}
}

func TestStatusLines(t *testing.T) {
	tests := []struct {
		code   int
		reason string
		want   string
	}{
		{101, "", "HTTP/1.1 101 Switching Protocols\r\n"},
		{301, "", "HTTP/1.1 301 Moved Permanently\r\n"},
		{302, "", "HTTP/1.1 302 Moved Temporarily\r\n"},
		{400, "", "HTTP/1.1 400 Bad Request\r\n"},
		{403, "", "HTTP/1.1 403 Forbidden\r\n"},
		{404, "", "HTTP/1.1 404 Not Found\r\n"},
		{405, "", "HTTP/1.1 405 Not Allowed\r\n"},
		{408, "", "HTTP/1.1 408 Request Time-out\r\n"},
		{413, "", "HTTP/1.1 413 Request Entity Too Large\r\n"},
		{414, "", "HTTP/1.1 414 Request-URI Too Large\r\n"},
		{429, "", "HTTP/1.1 429 Too Many Requests\r\n"},
		{500, "", "HTTP/1.1 500 Internal Server Error\r\n"},
		{501, "", "HTTP/1.1 501 Not Implemented\r\n"},
		{502, "", "HTTP/1.1 502 Bad Gateway\r\n"},
		{503, "", "HTTP/1.1 503 Service Temporarily Unavailable\r\n"},
		{504, "", "HTTP/1.1 504 Gateway Time-out\r\n"},
		{505, "", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
		{418, "", "HTTP/1.1 418 \r\n"},
		{499, "", "HTTP/1.1 499 \r\n"},
		{101, "Web Socket Protocol Handshake", "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"},
	}
	for _, tt := range tests {
		if got := string(AppendStatusLine(nil, tt.code, tt.reason)); got != tt.want {
			t.Errorf("%d: %q, want %q", tt.code, got, tt.want)
		}
	}
}

func TestErrorsUseNginxPhrases(t *testing.T) {
	for _, e := range []*StatusError{errInvalidMethod, errInvalidVersion, errUnknownTE, errTrace, errURITooLong, errRespTooBig} {
		if e.Reason != StatusText(e.Status) {
			t.Errorf("%d: reason %q, nginx says %q", e.Status, e.Reason, StatusText(e.Status))
		}
	}
	if errHeaderTooLarge.Status != 400 || errHeaderTooLarge.Reason != "Request Header Or Cookie Too Large" {
		t.Errorf("header too large: %+v", errHeaderTooLarge)
	}
}
