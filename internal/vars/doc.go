// Package vars compiles nginx-style strings with variables ("$host",
// "${http_upgrade}", map results, `set` targets) into templates once, at
// load time, and evaluates them against a per-request Ctx lazily, at most
// once per variable per request. It knows nothing of configuration files or
// sockets: the server fills a Ctx, the config layer compiles templates.
package vars
