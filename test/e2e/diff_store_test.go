package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDiffProxyStore: proxy_store saves a 200 answer's body under the name
// it gives (with variables) or, with `on`, under root, as nginx: the same
// files with the same content, modes (proxy_store_access, and directories
// made with search rights where they may be read) and, from the answer's
// Last-Modified, times; other statuses are not stored, and no temporary
// file is left behind.
func TestDiffProxyStore(t *testing.T) {
	b := scriptBackend(t)
	p := startPair(t, diffConf{HTTP: `
server {
    listen 127.0.0.1:{{PORT}};
    location /s/ { proxy_pass http://` + b + `; proxy_store {{DIR}}/store$uri; proxy_store_access user:rw group:r all:r; }
    location /on/ { proxy_pass http://` + b + `; proxy_store on; root {{DIR}}/html; }
}`})
	lm := "Last-Modified:Wed, 21 Oct 2015 07:28:00 GMT"
	for _, req := range []string{
		proxyGet("/s/a/b.txt?" + scripted(lm)),
		proxyGet("/s/missing.txt?status=404"),
		proxyGet("/on/x/y.txt"),
	} {
		p.compareHeaders(t, req)
	}
	// A server may rename the file into place just after the client has
	// the answer.
	for _, f := range []string{"store/s/a/b.txt", "html/on/x/y.txt"} {
		waitFor(t, 10*time.Second, f+" stored by both", func() bool {
			_, ngErr := os.Stat(filepath.Join(p.ng.dir, f))
			_, wsErr := os.Stat(filepath.Join(p.gate.dir, f))
			return ngErr == nil && wsErr == nil
		})
	}
	for _, f := range []string{"store/s/a/b.txt", "html/on/x/y.txt", "store/s", "store/s/a", "html/on/x"} {
		ng, ngErr := os.Stat(filepath.Join(p.ng.dir, f))
		ws, wsErr := os.Stat(filepath.Join(p.gate.dir, f))
		if ngErr != nil || wsErr != nil {
			t.Errorf("%s: nginx %v, wsgate %v", f, ngErr, wsErr)
			continue
		}
		if ng.Mode() != ws.Mode() || ng.Size() != ws.Size() {
			t.Errorf("%s: nginx %v %d bytes, wsgate %v %d bytes", f, ng.Mode(), ng.Size(), ws.Mode(), ws.Size())
		}
		if ng.Mode().IsRegular() {
			nb, _ := os.ReadFile(filepath.Join(p.ng.dir, f))
			wb, _ := os.ReadFile(filepath.Join(p.gate.dir, f))
			if p.neutral(string(nb), p.nginx) != p.neutral(string(wb), p.wsgate) {
				t.Errorf("%s: nginx stored %q, wsgate %q", f, nb, wb)
			}
		}
	}
	want, _ := time.Parse(time.RFC1123, "Wed, 21 Oct 2015 07:28:00 GMT")
	for name, dir := range map[string]string{"nginx": p.ng.dir, "wsgate": p.gate.dir} {
		st, err := os.Stat(filepath.Join(dir, "store/s/a/b.txt"))
		if err == nil && !st.ModTime().Equal(want) {
			t.Errorf("%s: stored file's time %v, want the answer's Last-Modified", name, st.ModTime())
		}
		if _, err := os.Stat(filepath.Join(dir, "store/s/missing.txt")); err == nil {
			t.Errorf("%s stored a 404", name)
		}
	}
	if left := filesUnder(filepath.Join(p.gate.dir, "proxy_temp")); len(left) > 0 {
		t.Errorf("wsgate left temporary files: %q", left)
	}
	stopNoRace(t, p.gate)
}
