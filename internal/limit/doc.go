// Package limit holds the state behind nginx's limit_req and limit_conn: zones
// of per-key leaky buckets (milli-request arithmetic, burst, delay=, nodelay,
// dry run, several rules per location checked in nginx's order) and zones of
// per-key connection counts, each bounded by the zone size nginx would be
// given (one entry per EntrySize bytes), sharded by key hash so that
// concurrent requests rarely share a lock, and carried across reloads by a
// Registry. It must not know about HTTP, configuration files or the server:
// keys arrive already evaluated, as bytes, and decisions go back as values
// that the caller turns into statuses, delays and log lines.
package limit
