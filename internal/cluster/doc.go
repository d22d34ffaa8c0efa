// Package cluster lets several wsgate instances act as one through a Redis
// store (or any server speaking the same commands, such as Valkey): shared
// limit_req buckets, evaluated by an atomic server-side script, and shared
// limit_conn counts, kept as one lease key per instance that expires a few
// seconds after the instance dies.
//
// Every call to the store is bounded by the configured timeout. When a call
// fails the store is marked down, the failure is logged once, and callers
// fall back to local state sized to this instance's share until a
// background heartbeat finds the store again; the instance then writes its
// live connection counts back before it trusts the store.
//
// All keys carry the hash tag {wsgate}, so that every multi-key script runs
// on one shard of a Redis Cluster.
package cluster
