package e2e

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffCharsetRecode compares charset_map recoding with nginx: a
// koi8-r file served as UTF-8, a UTF-8 file served as koi8-r (unmapped
// characters as numeric references, an invalid byte, a sequence the body
// ends inside, dropped as nginx drops it), a proxied koi8-r answer under override_charset with a
// multi-byte sequence split across two writes, a compressed answer left
// alone, a HEAD, and a map between two single-byte charsets.
func TestDiffCharsetRecode(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"k.html":   "<p>\xc1\xc2\xd7 x\xff</p>\n",
		"u.html":   "<p>абв ж \U0001F600 end</p>\n",
		"bad.html": "<p>\xff end</p>",
		"t.html":   "tail \xd0",
		"w.html":   "<p>\xc1\xc2</p>",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/koi":
			w.Header().Set("Content-Type", "text/html; charset=koi8-r")
			io.WriteString(w, "proxied \xc1\xc2\xd7")
		case "/utf":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, "split \xd0")
			w.(http.Flusher).Flush()
			io.WriteString(w, "\xb0 done") // а, cut in two writes
		case "/gz":
			w.Header().Set("Content-Type", "text/html; charset=koi8-r")
			w.Header().Set("Content-Encoding", "gzip")
			z := gzip.NewWriter(w)
			io.WriteString(z, "\xc1\xc2")
			z.Close()
		}
	}))
	t.Cleanup(bk.Close)
	backend := strings.TrimPrefix(bk.URL, "http://")
	p := startPair(t, diffConf{Root: root, HTTP: `
types { text/html html; }
charset_map koi8-r utf-8 { C1 D0B0; C2 D0B1; D7 D0B2; }
charset_map koi8-r windows-1251 { C1 E0; C2 E1; }
server {
    listen 127.0.0.1:{{PORT}};
    location /koi/ { alias {{ROOT}}/; source_charset koi8-r; charset utf-8; }
    location /u2k/ { alias {{ROOT}}/; source_charset utf-8; charset koi8-r; }
    location /win/ { alias {{ROOT}}/; source_charset koi8-r; charset windows-1251; }
    location /back/ { alias {{ROOT}}/; source_charset windows-1251; charset koi8-r; }
    location /po/ { override_charset on; charset utf-8; proxy_pass http://` + backend + `/; }
    location /pk/ { override_charset on; charset koi8-r; proxy_pass http://` + backend + `/; }
}`})
	for _, path := range []string{"/koi/k.html", "/u2k/u.html", "/u2k/t.html", "/win/w.html", "/back/w.html", "/po/koi", "/po/gz", "/pk/utf"} {
		p.compare(t, modGet(path, ""))
	}
	p.compare(t, strings.Replace(modGet("/koi/k.html", ""), "GET", "HEAD", 1))
	r := sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/koi/k.html", ""), "{{HOST}}", p.wsgate))
	if string(r.Body) != "<p>абв x?</p>\n" || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("wsgate: %q %q", r.Header.Get("Content-Type"), r.Body)
	}
	// An invalid UTF-8 byte becomes '?'; nginx also swallows the byte
	// after it (here the space), wsgate keeps it.
	r = sendRaw(t, p.wsgate, strings.ReplaceAll(modGet("/u2k/bad.html", ""), "{{HOST}}", p.wsgate))
	if string(r.Body) != "<p>? end</p>" {
		t.Errorf("wsgate, an invalid byte: %q", r.Body)
	}
}
