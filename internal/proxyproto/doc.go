// Package proxyproto reads the PROXY protocol header (versions 1 and 2)
// that an L4 load balancer puts in front of a connection, so that the
// server learns the real client address. It only parses; the server
// decides whether the sender is trusted.
package proxyproto
