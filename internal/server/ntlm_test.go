package server

import "testing"

func TestNTLMAuth(t *testing.T) {
	for v, want := range map[string]bool{
		"NTLM TlRMTVNTUAABAAAA": true,
		"ntlm TlRMTVNTUAABAAAA": true,
		"Negotiate YIIG":        true,
		"NTLM":                  true,
		"Basic dXNlcjpwYXNz":    false,
		"NTLMv2 x":              false,
		"":                      false,
		"Bearer NTLM":           false,
	} {
		if got := ntlmAuth(v); got != want {
			t.Errorf("ntlmAuth(%q) = %v, want %v", v, got, want)
		}
	}
}
