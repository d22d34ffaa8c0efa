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

// TestDebianModulesEnabled: a tree laid out as Debian's, whose
// modules-enabled loads a module wsgate does not have (nginx-light's echo
// module), passes -t with a warning naming it, as long as no directive of
// the module is used.
func TestDebianModulesEnabled(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "modules-enabled"), 0o755)
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	mod := filepath.Join(dir, "modules-enabled", "50-mod-http-echo.conf")
	if err := os.WriteFile(mod, []byte("load_module modules/ngx_http_echo_module.so;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nginx.conf")
	conf := "include " + filepath.Join(dir, "modules-enabled") + "/*.conf;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:1; location / { return 204; } } }\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "-t", "-p", dir, "-c", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("-t: %v\n%s", err, out)
	}
	if want := `[warn] "load_module" of "modules/ngx_http_echo_module.so" ignored: wsgate loads no dynamic modules and does not implement ngx_http_echo_module; its directives are refused in ` + mod + ":1"; !strings.Contains(string(out), want) {
		t.Errorf("-t said:\n%s\nwant %s", out, want)
	}
}
