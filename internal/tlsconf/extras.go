package tlsconf

import (
	cryptosha256 "crypto/sha256"
	"crypto/tls"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
)

// Directives Go's TLS implements differently or not at all: ssl_dhparam
// (checked only), ssl_conf_command (mapped or refused) and
// ssl_session_ticket_key.

// checkDHParam checks that path holds PEM DH parameters, as nginx would
// load them. Go has no finite-field DHE, so they are not used.
func checkDHParam(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ssl_dhparam: cannot open %q: %w", path, err)
	}
	var b *pem.Block
	for rest := data; ; {
		if b, rest = pem.Decode(rest); b == nil || b.Type == "DH PARAMETERS" || b.Type == "X9.42 DH PARAMETERS" {
			break
		}
	}
	if b == nil {
		return fmt.Errorf("ssl_dhparam: no PEM DH PARAMETERS block in %q", path)
	}
	var params struct {
		P, G *big.Int
		Rest asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.Unmarshal(b.Bytes, &params); err != nil || params.P == nil || params.P.Sign() <= 0 {
		return fmt.Errorf("ssl_dhparam: invalid DH parameters in %q", path)
	}
	return nil
}

// applyConfCommands maps ssl_conf_command settings onto o, or refuses
// the first Go cannot honour, naming why. Names are OpenSSL's
// SSL_CONF_cmd names, case-sensitive as there.
func applyConfCommands(o *Options, minV, maxV *uint16) error {
	for _, cmd := range o.ConfCommands {
		name, value := cmd[0], cmd[1]
		switch name {
		case "MinProtocol", "MaxProtocol":
			v, ok := protocolByName(value)
			if !ok {
				return fmt.Errorf("ssl_conf_command %s: unknown protocol %q", name, value)
			}
			if name == "MinProtocol" {
				*minV = max(*minV, v)
			} else {
				*maxV = min(*maxV, v)
			}
			if *minV > *maxV {
				return fmt.Errorf("ssl_conf_command %s %s leaves no protocol enabled with ssl_protocols", name, value)
			}
		case "CipherString":
			o.Ciphers = value
		case "Groups", "Curves":
			o.ECDHCurve = value
		case "Options":
			if err := confOptions(o, value); err != nil {
				return err
			}
		case "Ciphersuites":
			return errors.New("ssl_conf_command Ciphersuites is not supported: Go's TLS 1.3 cipher suites cannot be chosen (all three are always offered, AES-GCM or ChaCha20 first depending on hardware)")
		case "SignatureAlgorithms", "ClientSignatureAlgorithms":
			return fmt.Errorf("ssl_conf_command %s is not supported: Go's TLS chooses signature algorithms itself", name)
		default:
			return fmt.Errorf("ssl_conf_command %s is not supported: Go's TLS has no equivalent setting", name)
		}
	}
	return nil
}

// confOptions maps the Options command: a comma-separated list, each
// option optionally prefixed with '-' to clear it.
func confOptions(o *Options, value string) error {
	for _, opt := range strings.Split(value, ",") {
		opt = strings.TrimSpace(opt)
		clear := strings.HasPrefix(opt, "-")
		switch strings.TrimPrefix(opt, "-") {
		case "ServerPreference", "PrioritizeChaCha", "NoRenegotiation", "NoResumptionOnRenegotiation", "UnsafeLegacyRenegotiation", "Compression", "EncryptThenMac", "NoCompression":
			// Go orders suites itself, never renegotiates and never compresses.
		case "SessionTicket":
			o.DisableSessionTickets = clear
		case "NoTicket":
			o.DisableSessionTickets = !clear
		default:
			return fmt.Errorf("ssl_conf_command Options %s is not supported by Go's TLS", opt)
		}
	}
	return nil
}

func protocolByName(name string) (uint16, bool) {
	for _, p := range protocolVersions {
		if p.name == name {
			return p.v, true
		}
	}
	return 0, false
}

// readTicketKeys reads ssl_session_ticket_key files (48 or 80 bytes, as
// nginx). Go derives its own keys from 32 bytes: they are the SHA-256 of
// the file, so every process given the same files agrees.
func readTicketKeys(paths []string) ([][32]byte, error) {
	var keys [][32]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("ssl_session_ticket_key: cannot open %q: %w", p, err)
		}
		if len(data) != 48 && len(data) != 80 {
			return nil, fmt.Errorf("ssl_session_ticket_key: %q must be 48 or 80 bytes, not %d", p, len(data))
		}
		keys = append(keys, cryptosha256.Sum256(data))
	}
	return keys, nil
}

// rejectConfig serves ssl_reject_handshake: with no certificate at all,
// crypto/tls ends every handshake with an unrecognized_name alert.
func rejectConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}
