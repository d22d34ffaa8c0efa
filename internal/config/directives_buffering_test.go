package config

import (
	"strings"
	"testing"
)

// TestBufferingConfig: the buffering and store directives load and inherit;
// the derived sizes follow nginx's defaults; what nginx refuses when it
// merges a location is refused with its message.
func TestBufferingConfig(t *testing.T) {
	cfg, err := load(t, `http {
    proxy_temp_path /var/tmp/p 1 2;
    proxy_buffers 4 16k;
    server {
        location /i { }
        location /o { proxy_max_temp_file_size 0; proxy_busy_buffers_size 32k; proxy_temp_file_write_size 64k;
            proxy_store $uri.saved; proxy_store_access group:rw all:r; }
        location /s { proxy_store on; }
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	ps := cfg.HTTP.Servers[0].Locations.Prefixes
	i, o, s := ps[0].Conf.ProxyBuf, ps[1].Conf.ProxyBuf, ps[2].Conf.ProxyBuf
	if i.TempPath != "/var/tmp/p" || len(i.TempLevels) != 2 || i.TempLevels[1] != 2 || i.MaxTempFile != 1<<30 ||
		i.BusySize != 32<<10 || i.TempWriteSize != 32<<10 || i.Stores() || i.StoreAccess != 0o600 {
		t.Errorf("/i: %+v", i)
	}
	if o.MaxTempFile != 0 || o.BusySize != 32<<10 || o.TempWriteSize != 64<<10 || o.Store == nil || o.StoreOn || o.StoreAccess != 0o664 {
		t.Errorf("/o: %+v", o)
	}
	if !s.StoreOn || !s.Stores() {
		t.Errorf("/s: %+v", s)
	}
	for conf, want := range map[string]string{
		"proxy_buffers 1 4k;":                                `there must be at least 2 "proxy_buffers"`,
		"proxy_busy_buffers_size 2k;":                        `"proxy_busy_buffers_size" must be equal to or greater than`,
		"proxy_busy_buffers_size 64k;":                       `"proxy_busy_buffers_size" must be less than the size of all "proxy_buffers" minus one buffer`,
		"proxy_temp_file_write_size 1k;":                     `"proxy_temp_file_write_size" must be equal to or greater than`,
		"proxy_max_temp_file_size 1k;":                       `"proxy_max_temp_file_size" must be equal to zero`,
		"proxy_max_temp_file_size lots;":                     `"proxy_max_temp_file_size" directive invalid value`,
		"proxy_temp_path /t 3;":                              `invalid value "3" in "proxy_temp_path" directive`,
		"proxy_store_access user:x;":                         `invalid value "user:x" in "proxy_store_access" directive`,
		"proxy_store_access everyone:r;":                     `invalid value "everyone:r"`,
		"proxy_store on; proxy_store off;":                   `"proxy_store" directive is duplicate`,
		"proxy_temp_path /a; proxy_temp_path /b;":            `"proxy_temp_path" directive is duplicate`,
		"proxy_busy_buffers_size 8k; proxy_buffer_size 16k;": `"proxy_busy_buffers_size" must be equal to or greater than`,
	} {
		_, err := load(t, "http { server { location / { "+conf+" } } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", conf, err, want)
		}
	}
}
