// Package selfsigned makes the throwaway ECDSA P-256 certificate the harness
// serves wss with, and the TLS test servers of its tests. It knows nothing of
// the proxies that load the files, nor of any real certificate authority:
// clients of the harness skip verification by design.
package selfsigned
