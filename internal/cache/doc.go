// Package cache is the on-disk HTTP cache of proxy_cache_path: one file per
// key (or per variant of a key under Vary) in nginx's levels layout, an
// in-memory index of the keys with their uses and validity, the lock that
// lets one request fill a key while others wait, a loader that indexes the
// files found at start and a manager that removes inactive entries and
// keeps the cache within max_size and min_free. What is worth storing and
// for how long is the caller's decision (see Policy).
package cache
