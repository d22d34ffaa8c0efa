package config

import (
	"strings"
	"testing"
)

// TestCharsetMap: charset_map blocks are read before the lines that use
// them, and refuse what nginx refuses.
func TestCharsetMap(t *testing.T) {
	cfg, err := load(t, `http {
    server { location / { source_charset koi8-r; charset utf-8; } location /w { charset koi8-r; source_charset windows-1251; } }
    charset_map koi8-r utf-8 { C1 D0B0; }
    charset_map koi8-r windows-1251 { C1 E0; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.CharsetMaps) != 2 {
		t.Fatalf("%d maps", len(cfg.CharsetMaps))
	}
	cases := map[string]string{
		`http { charset_map koi8-r utf-8 { C1 D0; } }`:                                                 `invalid value "D0"`,
		`http { charset_map koi8-r utf-8 { C1; } }`:                                                    `invalid parameter number`,
		`http { charset_map koi8-r utf-8 { } charset_map utf-8 koi8-r { } }`:                           `duplicate "charset_map"`,
		`http { charset_map utf-8 koi8-r { } }`:                                                        `must be written from the single-byte charset`,
		`http { charset_map koi8-r utf-8 { } server { charset utf-8; source_charset windows-1251; } }`: `no "charset_map" between the charsets "windows-1251" and "utf-8"`,
	}
	for src, want := range cases {
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error with %q", src, err, want)
		}
	}
}
