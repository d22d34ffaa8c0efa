// Package tunnel relays bytes between a client and a backend once an HTTP
// upgrade has succeeded. It passes WebSocket frames through untouched while
// tracking their boundaries, so that wsgate can close a tunnel with a proper
// close frame (shutdown, drain, idle timeout, protocol violation), and it
// holds no buffer while a tunnel is idle. It knows nothing of HTTP, of
// configuration, of upstream selection or of the registry of live tunnels:
// the caller hands it two connections and is told, once, how they ended.
package tunnel
