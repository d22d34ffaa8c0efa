// Package e2e runs the real wsgate binary against real backends on
// loopback, with real WebSocket clients: the checks that an operator would
// make by hand, automated. Helpers build the binary once, start it with a
// config on free ports, and stop it when a test ends.
package e2e
