// Package tlsconf turns nginx's ssl_* settings of one server{} block into a
// crypto/tls configuration for wsgate's TLS listeners: it loads and checks
// certificate pairs (choosing between RSA and ECDSA per client), maps
// ssl_protocols, OpenSSL ssl_ciphers expressions and ssl_ecdh_curve onto
// what crypto/tls can express (TLS 1.3 suites and TLS 1.2 suite order are
// fixed by Go; ssl_prefer_server_ciphers has no effect), implements
// ssl_session_cache and ssl_session_tickets with Go's session hooks, and
// keeps OCSP staples fresh in the background without ever delaying a
// handshake. It takes plain Go values and must not know about
// configuration files, directives' positions, listeners or the server.
package tlsconf
