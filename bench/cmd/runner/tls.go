package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/wsgate/wsgate/bench/internal/selfsigned"
)

// tlsFiles are the run's certificate files: nginx and wsgate read cert and
// key, HAProxy wants both in one PEM.
type tlsFiles struct {
	cert, key, combined string
	resume              bool   // the load client keeps session tickets
	proto               string // load.ProtoH2 or ProtoH3: the proxies serve WebSocket tunnels over it
}

// writeCert generates the run's ECDSA P-256 certificate for 127.0.0.1 and
// localhost into dir.
func writeCert(dir string) (*tlsFiles, error) {
	return writeCertKind(dir, selfsigned.ECDSA)
}

// writeCertKind is writeCert with the key kind chosen (selfsigned.ECDSA or
// selfsigned.RSA); files of different kinds do not overwrite each other.
func writeCertKind(dir, kind string) (*tlsFiles, error) {
	c, k, err := selfsigned.GenerateKind([]string{"127.0.0.1", "localhost"}, time.Now(), kind)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if kind != selfsigned.ECDSA {
		prefix = kind + "-"
	}
	tf := &tlsFiles{
		cert:     filepath.Join(dir, prefix+"cert.pem"),
		key:      filepath.Join(dir, prefix+"key.pem"),
		combined: filepath.Join(dir, prefix+"combined.pem"),
	}
	for path, b := range map[string][]byte{tf.cert: c, tf.key: k, tf.combined: append(append([]byte(nil), c...), k...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	}
	return tf, nil
}

// describeTLS names what a handshake negotiated, for the report.
func describeTLS(cs tls.ConnectionState) string {
	s := fmt.Sprintf("%s, %s, %s", tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite), cs.CurveID)
	if cs.NegotiatedProtocol != "" {
		s += ", ALPN " + cs.NegotiatedProtocol
	} else {
		s += ", no ALPN"
	}
	return s
}
