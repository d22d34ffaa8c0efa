// Package upstream holds wsgate's upstream pools: the peers of each upstream
// block, nginx's balancing methods over them (smooth weighted round robin,
// ip_hash, hash [consistent], least_conn, random [two]) with nginx's exact
// selection order, and the state that one place owns per peer: open
// connections and tunnels, passive failures (max_fails within fail_timeout),
// max_conns, slow start and active health checks (plain HTTP or a real
// WebSocket handshake). State survives reloads for peers that stay. It must
// not know about configuration files, request parsing or the server: the
// config layer builds an Upstream from typed values, and the proxy asks an
// Attempt for peers and reports back through Peer.Done.
package upstream
