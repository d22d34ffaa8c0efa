package tlsconf

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func names(ids []uint16) []string {
	var out []string
	for _, id := range ids {
		for _, s := range suiteTable {
			if s.id == id {
				out = append(out, s.openssl)
			}
		}
	}
	return out
}

func TestParseCiphers(t *testing.T) {
	high := []string{
		"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
		"ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
		"ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
		"AES256-GCM-SHA384", "AES128-GCM-SHA256", "AES128-SHA256", "AES256-SHA", "AES128-SHA",
	}
	tests := []struct {
		expr    string
		want    []string // in order; nil with wantErr
		wantErr string
	}{
		{
			expr: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384",
			want: []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
		},
		{expr: "HIGH:!aNULL:!MD5", want: high},
		{expr: "", want: high},
		{expr: "high", want: high},
		{expr: "HIGH:MEDIUM", want: append(slices.Clone(high), "ECDHE-RSA-DES-CBC3-SHA", "DES-CBC3-SHA", "ECDHE-ECDSA-RC4-SHA", "ECDHE-RSA-RC4-SHA", "RC4-SHA")},
		{expr: "DEFAULT:!3DES", want: high},
		{expr: "ALL:!HIGH", want: []string{"ECDHE-RSA-DES-CBC3-SHA", "DES-CBC3-SHA"}},
		{expr: "RC4-SHA", want: []string{"RC4-SHA"}},
		{expr: "ECDHE+AESGCM", want: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{expr: "EECDH+CHACHA20 EDH+AESGCM", want: []string{"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}},
		{expr: "AESGCM+aRSA:!kRSA", want: []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"}},
		{expr: "CHACHA20,AES256+kRSA", want: []string{"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305", "AES256-GCM-SHA384", "AES256-SHA"}},
		// '-' removes for now, '!' for good.
		{expr: "AESGCM+ECDHE:-ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256", want: []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"}},
		{expr: "AESGCM+ECDHE:!ECDSA:ECDHE-ECDSA-AES128-GCM-SHA256", want: []string{"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"}},
		// '+' moves to the end.
		{expr: "AESGCM+ECDHE:+AES256", want: []string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"}},
		// OpenSSL names Go lacks and TLS 1.3 names select nothing.
		{expr: "DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256", want: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
		{expr: "ECDHE-RSA-AES128-GCM-SHA256:@STRENGTH:@SECLEVEL=2", want: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
		{expr: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", want: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
		{expr: "HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!SRP:!CAMELLIA:!KRB5-DES-CBC3-SHA", want: high},

		{expr: "!ALL", wantErr: "no ciphers left"},
		{expr: "HIGH:!HIGH", wantErr: "no ciphers left"},
		{expr: "DHE-RSA-AES128-GCM-SHA256", wantErr: "no ciphers left"},
		// Unknown names are skipped, whole elements at a time, as OpenSSL does.
		{expr: "HIGH:ECDHE-RSA-AES128-GCM-SHA257", want: high},
		{expr: "ECDHE+AESGMC:AES128-SHA", want: []string{"AES128-SHA"}},
		{expr: "FOO:BAR", wantErr: "no ciphers left"},
		{expr: "ECDHE+AESGCM:@SECLEVEL=3:AES128-SHA", want: []string{"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA"}},
		{expr: "HIGH:@FOO", wantErr: `unsupported command "@FOO"`},
		{expr: "HIGH:!", wantErr: "empty element"},
		{expr: "HIGH:@SECLEVEL=9", wantErr: `unsupported command "@SECLEVEL=9"`},
	}
	for _, tt := range tests {
		ids, err := ParseCiphers(tt.expr)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCiphers(%q) = %v, %v; want error containing %q", tt.expr, names(ids), err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCiphers(%q): %v", tt.expr, err)
			continue
		}
		if got := names(ids); !slices.Equal(got, tt.want) {
			t.Errorf("ParseCiphers(%q)\n got  %v\n want %v", tt.expr, got, tt.want)
		}
	}
}

// TestSuiteTableComplete: every TLS 1.0-1.2 suite crypto/tls has is
// reachable by an OpenSSL name.
func TestSuiteTableComplete(t *testing.T) {
	have := map[uint16]bool{}
	for _, s := range suiteTable {
		if have[s.id] {
			t.Errorf("%s listed twice", s.openssl)
		}
		have[s.id] = true
	}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(s.SupportedVersions, tls.VersionTLS13) && !have[s.ID] {
			t.Errorf("%s has no OpenSSL name", s.Name)
		}
	}
}

func BenchmarkParseCiphers(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCiphers("ECDHE+AESGCM:ECDHE+CHACHA20:HIGH:!aNULL:!MD5:!kRSA"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCipherNotes: what -t says about skipped names, suites Go lacks and
// security levels.
func TestCipherNotes(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{"HIGH:FOO-BAR", `unknown cipher "FOO-BAR" skipped`},
		{"DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", "Go's TLS lacks DHE-RSA-AES128-GCM-SHA256; TLS 1.2 and below will negotiate only ECDHE-RSA-AES128-GCM-SHA256"},
		{"HIGH:@SECLEVEL=2", "@SECLEVEL=2 is mapped only partly"},
	} {
		_, notes, err := ParseCipherString(tt.expr)
		if err != nil || !strings.Contains(strings.Join(notes, "\n"), tt.want) {
			t.Errorf("ParseCipherString(%q): notes %q, %v; want one containing %q", tt.expr, notes, err, tt.want)
		}
	}
	if _, notes, _ := ParseCipherString("HIGH:!aNULL:!MD5"); len(notes) != 0 {
		t.Errorf("nginx's default string has notes: %q", notes)
	}
}
