// Package acme obtains and renews certificates from an ACME (RFC 8555)
// certificate authority for the acme_issuer and acme_certificate
// directives, as nginx's ngx_http_acme_module does.
//
// A Manager lives as long as the process, across reloads: each
// configuration asks it for the certificates it names (Cert), which are
// obtained in the background and served as soon as they arrive, then
// renewed before they expire, with ACME Renewal Information where the CA
// offers it. The challenges (http-01 and tls-alpn-01) are answered by the
// server's own listeners through HTTP01 and ALPNConfig.
//
// The protocol work is done by golang.org/x/crypto/acme; renewal
// information (RFC 9773) is read here, as that package does not.
//
// State layout, version 1, in an issuer's state_path (created 0700; every
// file is written whole under a temporary name, then renamed):
//
//	version           "1": the layout's version; a directory with another
//	                  version is refused rather than misread
//	account.key       the account's private key, PKCS#8 PEM, 0600 (not
//	                  written when account_key names a file)
//	account.url       the account's URL at the CA, one line
//	<cert>.crt        a certificate chain, PEM, leaf first, 0600
//	<cert>.key        its private key, PKCS#8 PEM, 0600
//
// where <cert> is the certificate's first identifier, "-", and the first
// eight hex digits of the SHA-256 of its identifiers and key type, so
// that two acme_certificate lines with different names or keys never
// share files.
package acme
