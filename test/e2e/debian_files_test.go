package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Debian's nginx package (installed by .ci/run) ships a configuration tree
// in /etc/nginx; these tests read its files in place.

const debianConf = "/etc/nginx/nginx.conf"

func needDebianTree(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(debianConf)
	if err != nil {
		t.Fatalf("Debian's nginx package is needed (apt-get install nginx): %v", err)
	}
	return string(b)
}

// TestDebianSnippets: the snippets Debian ships for sites load under
// wsgate -t as under nginx -t (snakeoil.conf's certificate, included as a
// site enables it): both pass, or, without Debian's ssl-cert package, both
// fail for the missing certificate.
func TestDebianSnippets(t *testing.T) {
	needDebianTree(t)
	_, err := os.Stat("/etc/ssl/private/ssl-cert-snakeoil.key")
	haveCert := err == nil
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	conf := "pid {{DIR}}/logs/x.pid;\nerror_log {{DIR}}/logs/error.log;\nevents {}\nhttp {\naccess_log off;\n" +
		"include /etc/nginx/mime.types;\nserver {\nlisten 127.0.0.1:1 ssl;\ninclude /etc/nginx/snippets/snakeoil.conf;\nroot /var/www/html;\n}\n}\n"
	ngOut, ngOK := runTest(t, nginx, strings.Replace(conf, "x.pid", "nginx.pid", 1))
	wsOut, wsOK := runTest(t, binary, strings.Replace(conf, "x.pid", "wsgate.pid", 1))
	if ngOK != haveCert || wsOK != haveCert {
		t.Errorf("-t with snippets/snakeoil.conf (certificate present: %v): nginx passed %v, wsgate %v\nnginx: %s\nwsgate: %s", haveCert, ngOK, wsOK, ngOut, wsOut)
	}
}
