package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRelativeConfUnderPrefix: as nginx, a relative -c names a file under
// the prefix given with -p, not under the working directory.
func TestRelativeConfUnderPrefix(t *testing.T) {
	prefix := t.TempDir()
	if err := os.MkdirAll(filepath.Join(prefix, "conf"), 0o755); err != nil || os.Mkdir(filepath.Join(prefix, "logs"), 0o755) != nil {
		t.Fatal(err)
	}
	conf := "error_log stderr;\nevents {}\nhttp { server { listen 127.0.0.1:1; location / { return 200; } } }\n"
	if err := os.WriteFile(filepath.Join(prefix, "conf", "wsgate.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-t", "-p", prefix, "-c", "conf/wsgate.conf")
	cmd.Dir = t.TempDir() // the working directory has no conf/ folder
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("-t with a relative -c under -p: %v\n%s", err, out)
	}
	want := filepath.Join(prefix, "conf", "wsgate.conf")
	if !strings.Contains(string(out), want+" test is successful") {
		t.Errorf("output does not name %s:\n%s", want, out)
	}
}

// TestConfigErrorsHelp: a directive of a module wsgate refuses names the
// module, and a typo gets a suggestion, each with file and line.
func TestConfigErrorsHelp(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ line, want string }{
		{"fastcgi_pass 127.0.0.1:9000;", `"fastcgi_pass" belongs to nginx's ngx_http_fastcgi_module, which wsgate does not implement in %s:3`},
		{"proxy_set_headr Host $host;", `unknown directive "proxy_set_headr", did you mean "proxy_set_header"? in %s:3`},
	} {
		path := filepath.Join(dir, "wsgate.conf")
		conf := "events {}\nhttp { server { listen 127.0.0.1:1;\n location / { " + tt.line + " }\n} }\n"
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, "-t", "-c", path).CombinedOutput()
		if err == nil {
			t.Fatalf("-t accepted %q", tt.line)
		}
		if want := strings.Replace(tt.want, "%s", path, 1); !strings.Contains(string(out), want) {
			t.Errorf("-t on %q said:\n%s\nwant %s", tt.line, out, want)
		}
	}
}
