// Package status renders what wsgate reports about itself: Prometheus
// metrics, an nginx-Plus-like JSON document and a self-contained live
// dashboard. The server feeds events to a Metrics as they happen and
// supplies a Source whose Snapshot is read at scrape time; the package knows
// nothing of listeners, connections or the server's types, only the
// upstream package's PeerState, so that it can be tested and benchmarked
// alone and the server stays free to count however it likes.
//
// Metrics exposed by Metrics.WritePrometheus:
//
//	wsgate_build_info{version}                               gauge, always 1
//	wsgate_start_time_seconds                                gauge, unix time
//	wsgate_last_reload_timestamp_seconds                     gauge, unix time, 0 before any reload
//	wsgate_connections{state="active|reading|writing|waiting"} gauge
//	wsgate_connections_accepted_total                        counter
//	wsgate_connections_handled_total                         counter
//	wsgate_http_requests_total                               counter
//	wsgate_tunnels_active                                    gauge, open WebSocket tunnels
//	wsgate_handshakes_total{result="upgraded|rejected|failed"} counter
//	wsgate_tunnel_bytes_total{direction="client_to_backend|backend_to_client"} counter
//	wsgate_websocket_messages_total{direction}               counter
//	wsgate_tunnel_close_total{code,closed_by}                counter, code "none" when no close frame passed
//	wsgate_tunnel_duration_seconds                           histogram, 1s to 1 week
//	wsgate_upstream_peer_tunnels{upstream,peer}              gauge, requests and tunnels in progress
//	wsgate_upstream_peer_up{upstream,peer}                   gauge, 1 when the peer may be chosen
//	wsgate_upstream_peer_healthy{upstream,peer}              gauge, active health checks
//	wsgate_upstream_peer_fails{upstream,peer}                gauge, nginx's max_fails counter
//	wsgate_upstream_peer_requests_total{upstream,peer}       counter, times chosen
//	wsgate_upstream_peer_failures_total{upstream,peer}       counter
//	wsgate_upstream_peer_tunnels_closed_total{upstream,peer} counter
//	wsgate_upstream_response_seconds{upstream,peer}          histogram, time to the response head
//	wsgate_limit_rejections_total{zone,kind="req|conn"}      counter
//	wsgate_reloads_total{result="ok|failed"}                 counter
//	wsgate_websocket_location_*{location,upstream,...}       per-location WebSocket counts, see wsmetrics.go
//	go_* and process_*                                       the client library's runtime and process collectors
//
// The peer label is the peer's resolved address (PeerState.Addr), the only
// name that tells apart the addresses one configured name resolves to.
package status
