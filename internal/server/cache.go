package server

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wsgate/wsgate/internal/backend"
	"github.com/wsgate/wsgate/internal/cache"
	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/errlog"
	"github.com/wsgate/wsgate/internal/http1"
	"github.com/wsgate/wsgate/internal/vars"
)

// proxy_cache. A proxied request with a cache goes through these steps:
// cacheLookup (before a peer is chosen) serves a fresh entry, or a stale
// one another request is updating, or purges; otherwise it takes the
// key's lock and proxy() asks the backend with cacheRequest's method and
// headers. relayOrStore then stores a response the rules allow (the body
// goes to the client and to the cache file together), answers from the
// stale entry (a 304 to revalidation, a status proxy_cache_use_stale
// names), or relays as without a cache; cacheGiveUp serves a stale entry
// when no backend answered. cacheEnd releases the lock.

// The $upstream_cache_status values.
const (
	cacheMiss        = "MISS"
	cacheBypass      = "BYPASS"
	cacheExpired     = "EXPIRED"
	cacheStale       = "STALE"
	cacheUpdating    = "UPDATING"
	cacheRevalidated = "REVALIDATED"
	cacheHit         = "HIT"
)

// cacheState is one request's way through proxy_cache.
type cacheState struct {
	zone        *cache.Zone
	key         string
	main, hash  string      // file names: of the key, of the request's variant
	stale       *cache.Hit  // an expired entry: revalidated, or served when the backend fails
	lease       cache.Lease // this request's hold on the key's lock
	store       bool        // the response may be stored
	convertHead bool        // a HEAD goes to the backend as GET
	background  bool        // a background update: its request started it and took the lock for it
	keepRange   bool        // proxy_cache_max_range_offset: the range goes to the backend, nothing is stored
}

// openCaches acquires the zones of every proxy_cache_path.
func openCaches(h *config.HTTP) (map[*config.CachePath]*cache.Zone, error) {
	zs := map[*config.CachePath]*cache.Zone{}
	for _, cp := range h.CachePaths {
		z, err := cache.Acquire(cache.Params{Dir: cp.Path, Levels: cp.Levels, MaxKeys: int(cp.ZoneSize / config.EntryBytes),
			Inactive: cp.Inactive, MaxSize: cp.MaxSize, MinFree: cp.MinFree,
			ManagerFiles: cp.ManagerFiles, ManagerSleep: cp.ManagerSleep, ManagerThreshold: cp.ManagerThreshold,
			LoaderFiles: cp.LoaderFiles, LoaderSleep: cp.LoaderSleep, LoaderThreshold: cp.LoaderThreshold})
		if err != nil {
			closeCaches(zs)
			return nil, &config.PosError{File: cp.File, Line: cp.Line, Err: err}
		}
		zs[cp] = z
	}
	return zs, nil
}

func closeCaches(zs map[*config.CachePath]*cache.Zone) {
	for _, z := range zs {
		z.Release()
	}
}

// predicate is nginx's test of proxy_cache_bypass, proxy_no_cache and
// proxy_cache_purge: true when any value is neither empty nor "0".
func predicate(list []*vars.Template, vc *vars.Ctx) bool {
	for _, t := range list {
		if v := t.Eval(vc); v != "" && v != "0" {
			return true
		}
	}
	return false
}

// cacheLookup runs before a peer is chosen. done says the request was
// answered (from the cache, or a purge); otherwise x.cache is set when
// the cache takes part.
func (x *exchange) cacheLookup() (done, keep bool) {
	cc := &x.lc.Cache
	if cc.Path == nil || x.upgrade() {
		return false, false // a WebSocket handshake is never cached
	}
	z := x.rt.caches[cc.Path]
	key := x.cacheKey()
	main := cache.Hash(key, "")
	if len(cc.Purge) > 0 && predicate(cc.Purge, x.vc) {
		return true, x.cachePurge(z, key)
	}
	if !slices.Contains(cc.Methods, x.req.Method) {
		return false, false
	}
	var bg *cacheState
	if x.cache != nil && x.cache.background {
		bg = x.cache
	}
	far := farRange(x.req.Header.Get("Range"), cc.MaxRangeOffset)
	cs := &cacheState{zone: z, key: key, main: main, hash: main, store: !far, keepRange: far,
		convertHead: x.req.Method == "HEAD" && cc.ConvertHead}
	if vary := z.Vary(main); vary != "" {
		cs.hash = cache.Hash(key, cache.Variant(vary, x.reqHeader))
	}
	x.cache = cs
	if bg != nil {
		x.vc.UpstreamCache, cs.lease = cacheExpired, bg.lease
		return false, false
	}
	if predicate(cc.Bypass, x.vc) {
		x.vc.UpstreamCache = cacheBypass
		return false, false
	}
	return x.cacheOpen(cs)
}

// farRange reports whether a Range header asks for bytes from max on, or
// from the end: proxy_cache_max_range_offset then sends a miss to the
// backend with its Range, and stores nothing (nginx's check after the
// lookup; a hit is served from the entry).
func farRange(r string, max int64) bool {
	spec, ok := strings.CutPrefix(r, "bytes=")
	if max < 0 || !ok {
		return false
	}
	spec = strings.TrimLeft(spec, " ")
	if strings.HasPrefix(spec, "-") {
		return true
	}
	end := strings.IndexFunc(spec, func(c rune) bool { return c < '0' || c > '9' })
	if end < 0 {
		end = len(spec)
	}
	start, err := strconv.ParseInt(spec[:end], 10, 64)
	return err == nil && start >= max
}

// cacheOpen looks the key up and serves what may be served.
func (x *exchange) cacheOpen(cs *cacheState) (done, keep bool) {
	cc := &x.lc.Cache
	hit, state, uses := cs.zone.Lookup(cs.hash, cs.main, cs.key)
	switch state {
	case cache.Fresh:
		return true, x.serveCached(hit, cacheHit)
	case cache.Stale:
		updating := cc.UseStale&config.StaleUpdating != 0 || hit.Meta.StaleUpdating(time.Now().Unix())
		if updating && cs.zone.Updating(cs.hash, cc.LockAge) {
			return true, x.serveCached(hit, cacheUpdating)
		}
		if updating && cc.BackgroundUpdate && !x.sub {
			if lease, _ := cs.zone.Lock(cs.hash, false, 0, cc.LockAge); lease.Held() {
				go x.backgroundUpdate(lease).serverPhases()
				return true, x.serveCached(hit, cacheStale)
			}
		}
		x.vc.UpstreamCache = cacheExpired
		cs.stale = hit
	default:
		x.vc.UpstreamCache = cacheMiss
		if uses < cc.MinUses {
			cs.store = false
			return false, false
		}
	}
	return x.cacheLock(cs, state == cache.Miss)
}

// cacheLock takes the key's lock for the request that goes to the
// backend. proxy_cache_lock holds back requests for a new element only;
// an expired one is marked as updating for proxy_cache_use_stale. A
// request that waited is answered with what the lock's holder stored.
func (x *exchange) cacheLock(cs *cacheState, miss bool) (done, keep bool) {
	cc := &x.lc.Cache
	wait := cc.Lock && miss
	lease, updating := cs.zone.Lock(cs.hash, wait, cc.LockTimeout, cc.LockAge)
	cs.lease = lease
	if lease.Held() || !updating || !wait {
		return false, false
	}
	// Another request held the lock: its answer may be in place now, as
	// the variant its Vary names.
	if vary := cs.zone.Vary(cs.main); vary != "" {
		cs.hash = cache.Hash(cs.key, cache.Variant(vary, x.reqHeader))
	}
	if hit, state, _ := cs.zone.Lookup(cs.hash, cs.main, cs.key); state == cache.Fresh {
		cs.closeStale()
		return true, x.serveCached(hit, cacheHit)
	} else if hit != nil {
		hit.Close()
	}
	// It stored nothing: the lock passes on; after proxy_cache_lock_timeout
	// the request is passed on, and its answer not stored.
	cs.lease, _ = cs.zone.Lock(cs.hash, false, 0, cc.LockAge)
	cs.store = cs.lease.Held()
	return false, false
}

// backgroundUpdate is a subrequest that fetches an expired entry anew,
// its answer stored and dropped (proxy_cache_background_update), while
// the request that made it is answered from the stale entry. It holds the
// lock its request took, and releases it at its end.
func (x *exchange) backgroundUpdate(lease cache.Lease) *exchange {
	c := &conn{srv: x.conn.srv, c: sinkConn{}, id: x.conn.id, tls: x.conn.tls, ssl: x.conn.ssl,
		bw: bufio.NewWriter(io.Discard), remote: x.conn.remote, local: x.conn.local, bind: x.conn.bind, proxyAddr: x.conn.proxyAddr}
	s := &exchange{conn: c, rt: x.rt, req: cloneRequest(x.req, 0), srv: x.srv, close: true, sub: true, cache: &cacheState{background: true, lease: lease}}
	s.vc = new(vars.Ctx)
	s.vc.Reset(x.rt.cfg.Vars)
	s.fillVars(nil)
	s.vc.Path, s.vc.Args = strings.Clone(x.vc.Path), strings.Clone(x.vc.Args)
	s.internal, s.vc.URIChanged = true, true
	s.uriChanges = maxURIChanges + 1
	s.phased = true
	return s
}

// cacheKey is proxy_cache_key, by default $scheme$proxy_host$request_uri.
func (x *exchange) cacheKey() string {
	if k := x.lc.Cache.Key; k != nil {
		return k.Eval(x.vc)
	}
	return x.vc.Scheme + x.vc.ProxyHost + x.req.RequestURI
}

// reqHeader is the request's values of a header, joined, for Vary.
func (x *exchange) reqHeader(name string) string { return x.req.Header.Join(name, ",") }

// cachePurge answers a request proxy_cache_purge selects: 204 when the
// key (or, for a key ending in "*", any key it starts) had an entry, else
// 404.
func (x *exchange) cachePurge(z *cache.Zone, key string) bool {
	var found bool
	if prefix, wild := strings.CutSuffix(key, "*"); wild {
		found = z.PurgePrefix(prefix)
	} else {
		found = z.Purge(cache.Hash(key, ""))
	}
	if found {
		return x.respond(204, nil, "")
	}
	return x.errorPage(404)
}

// cacheRequest is the method and the client request whose headers go to
// the backend: with a cache, the client's conditional and range headers
// are not passed, and an expired entry is revalidated with its own
// validators under proxy_cache_revalidate.
func (x *exchange) cacheRequest(method string) (string, *http1.Request) {
	cs := x.cache
	if cs == nil {
		return method, x.req
	}
	if cs.convertHead && method == "HEAD" {
		method = "GET"
	}
	r := *x.req
	r.Header = make(http1.Header, 0, len(x.req.Header)+2)
	for _, f := range x.req.Header {
		switch strings.ToLower(f.Name) {
		case "if-modified-since", "if-unmodified-since", "if-none-match", "if-match":
			continue
		case "range", "if-range":
			if !cs.keepRange {
				continue
			}
		}
		r.Header = append(r.Header, f)
	}
	if st := cs.stale; st != nil && x.lc.Cache.Revalidate {
		if lm := st.Meta.LastModified; lm != "" {
			r.Header = append(r.Header, http1.Field{Name: "If-Modified-Since", Value: lm})
		}
		if et := st.Meta.ETag; et != "" {
			r.Header = append(r.Header, http1.Field{Name: "If-None-Match", Value: et})
		}
	}
	return method, &r
}

// cacheEnd releases what the cache part of the request holds.
func (x *exchange) cacheEnd() {
	cs := x.cache
	if cs == nil {
		return
	}
	if cs.lease.Held() {
		cs.zone.Unlock(cs.lease) // the key's: a variant stored may have another file name
		cs.lease = cache.Lease{}
	}
	cs.closeStale()
	x.cache = nil
}

func (cs *cacheState) closeStale() {
	if cs.stale != nil {
		cs.stale.Close()
		cs.stale = nil
	}
}

// relayOrStore answers with the backend's response resp: stored first
// when the rules allow, or replaced by the stale entry (a 304 to a
// revalidation, a status proxy_cache_use_stale names), else relayed.
func (x *exchange) relayOrStore(bc *backend.Conn, resp *http1.Response) (keep, drained bool) {
	cs := x.cache
	if cs == nil {
		return x.relayResponse(bc, resp)
	}
	if st := cs.stale; st != nil {
		if resp.Status == 304 && x.lc.Cache.Revalidate {
			if until, ok := cache.Validity(st.Meta.Status, resp.Header, time.Now(), x.cacheRules()); ok {
				cs.zone.Revalidated(cs.hash, until)
			}
			cs.stale = nil
			return x.serveCached(st, cacheRevalidated), !resp.BodyAllowed
		}
		if useStale(x.lc.Cache.UseStale, resp.Status) {
			cs.stale = nil
			return x.serveCached(st, cacheStale), false
		}
	}
	if until, ok := x.storable(resp); ok && x.accelRedirectURI(resp) == "" {
		return x.storeAndServe(bc, resp, until) // a redirecting answer is followed, not stored, as nginx
	}
	keep, drained = x.relayResponse(bc, resp)
	if cs.convertHead && x.req.Method == "HEAD" {
		drained = false // the body of the GET was not read
	}
	return keep, drained
}

// useStale reports whether proxy_cache_use_stale serves a stale entry in
// place of a response with status.
func useStale(mask uint16, status int) bool {
	bit := config.NextStatus(status)
	return bit != 0 && mask&bit != 0
}

// storable decides whether resp is stored, and until when it is fresh.
func (x *exchange) storable(resp *http1.Response) (int64, bool) {
	cs, cc := x.cache, &x.lc.Cache
	if !cs.store || !x.buffers(resp.Header) || resp.Status == 206 || resp.Status < 200 || x.intercepts(resp.Status) {
		return 0, false
	}
	if predicate(cc.NoCache, x.vc) {
		return 0, false
	}
	return cache.Validity(resp.Status, resp.Header, time.Now(), x.cacheRules())
}

// buffers reports whether the answer with header h is buffered, the
// condition of storing it: proxy_buffering, unless the backend's
// X-Accel-Buffering says otherwise.
func (x *exchange) buffers(h http1.Header) bool {
	if x.lc.ProxyRest.IgnoreHeaders&config.IgnoreXAccelBuffering == 0 {
		switch v := h.Get("X-Accel-Buffering"); {
		case strings.EqualFold(v, "no"):
			return false
		case strings.EqualFold(v, "yes"):
			return true
		}
	}
	return x.lc.Buffering
}

// cacheRules are the location's storage rules besides the response's
// headers.
func (x *exchange) cacheRules() cache.Rules {
	ign := x.lc.ProxyRest.IgnoreHeaders
	valid := x.lc.Cache.Valid
	return cache.Rules{
		IgnoreXAccelExpires: ign&config.IgnoreXAccelExpires != 0,
		IgnoreCacheControl:  ign&config.IgnoreCacheControl != 0,
		IgnoreExpires:       ign&config.IgnoreExpires != 0,
		IgnoreSetCookie:     ign&config.IgnoreSetCookie != 0,
		IgnoreVary:          ign&config.IgnoreVary != 0,
		Valid: func(status int) time.Duration {
			for _, v := range valid {
				if v.Codes == nil || slices.Contains(v.Codes, status) {
					return v.Time
				}
			}
			return 0
		},
	}
}

// storeAndServe relays resp to the client while its body goes to the
// cache file too; the file takes the key's place once the body is whole.
// A client that leaves does not stop the store, as nginx.
func (x *exchange) storeAndServe(bc *backend.Conn, resp *http1.Response, until int64) (keep, drained bool) {
	cs := x.cache
	m := x.cacheMeta(resp, until)
	if vary := m.Vary; vary != "" && x.lc.ProxyRest.IgnoreHeaders&config.IgnoreVary == 0 {
		m.Variant = cache.Variant(vary, x.reqHeader)
		cs.hash = cache.Hash(cs.key, m.Variant)
	} else {
		m.Vary = ""
	}
	w, err := cs.zone.Create(cs.hash, cs.main, m)
	if err != nil {
		x.logRequest(errlog.Crit, "", "cache file could not be created: %v", err)
		return x.relayResponse(bc, resp)
	}
	x.upstreamOut.relayStart = time.Now()
	src := &readErr{r: &deadlineReader{r: resp.Body(bc.Reader()), c: bc.Net(), d: x.lc.ReadTimeout, n: &x.upstreamOut.bodyRead}}
	ok, answered := x.sendStoring(resp, m, src, w)
	x.responseRead()
	if answered {
		w.Abort() // as nginx, which ends the backend's answer with the 416
		return ok, false
	}
	drained = src.err == nil
	switch {
	case src.err != nil:
		w.Abort()
		x.logRequest(errlog.Error, bc.Addr(), "%s while reading upstream", describe(src.err, "recv()"))
	case w.Err() != nil:
		w.Abort()
		x.logRequest(errlog.Crit, "", "cache file could not be written: %v", w.Err())
	default:
		// In place before the end of the answer leaves: the client's next
		// request finds it.
		if err := w.Commit(until); err != nil {
			x.logRequest(errlog.Crit, "", "cache file could not be stored: %v", err)
		}
	}
	err = x.conn.bw.Flush()
	x.done()
	return ok && err == nil && !x.close, drained
}

// sendStoring answers with resp's head (or a 304 to a conditional request
// its validators satisfy) and copies the body from src to the client and
// to w; once the client is gone, to w alone. The end of the answer stays
// in the client buffer for the caller to flush. ok is false when writing
// to the client failed; answered reports a 416 for an unsatisfiable range,
// already sent and logged (ok: the connection may be kept), the body left
// unread and not to be stored.
func (x *exchange) sendStoring(resp *http1.Response, m *cache.Meta, src io.Reader, w io.Writer) (ok, answered bool) {
	code := resp.Status
	x.accel(resp.Header) // before the head: X-Accel-Charset and X-Accel-Limit-Rate shape it
	hdr := x.responseHeader(resp)
	if code == 200 && notModified(x.req.Header, m) {
		code, hdr = 304, notModifiedHeader(hdr)
	}
	noBody := x.req.Method == "HEAD" || code == 204 || code == 304
	length, chunked := x.storedFraming(code, noBody, resp.ContentLength)
	hdr, length, chunked = x.filters(code, hdr, length, chunked)
	code, hdr, length, cuts, _ := x.cachedRange(code, hdr, length, resp.Header, 1)
	if code == 416 {
		return x.errorPage(416), true
	}
	x.cut = nil
	if len(cuts) == 1 {
		x.cut = &cuts[0]
	}
	head := x.head(code, hdr, length, chunked)
	x.conn.bw.Write(head)
	x.sent += int64(len(head))
	var err error
	if !noBody {
		var n int64
		n, err = x.copyStored(io.TeeReader(src, w), chunked)
		x.bodySent += n
		x.sent += n
	}
	io.Copy(w, src) // the rest, when the client did not take it all
	return err == nil, false
}

// storedFraming is how an answer stored or being stored is delimited:
// by its length when the backend gave one, else chunked (to the end of
// the connection for HTTP/1.0), as nginx; a 304 and a HEAD without a
// length carry none.
func (x *exchange) storedFraming(code int, noBody bool, length int64) (int64, bool) {
	switch {
	case code == 304 || noBody && length < 0:
		return -2, false
	case length < 0 && x.req.Major == 1 && x.req.Minor >= 1 && x.lc.ChunkedTransferEncoding:
		return -1, true
	}
	return length, false
}

// readErr keeps the error of the reader it wraps, to tell a failed backend
// from a failed client.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// notModifiedHeader is the header of a 304 the cache makes of a 200's:
// without its Content-Type and Content-Encoding, as nginx.
func notModifiedHeader(hdr http1.Header) http1.Header {
	return slices.DeleteFunc(hdr, func(f http1.Field) bool {
		return strings.EqualFold(f.Name, "Content-Type") || strings.EqualFold(f.Name, "Content-Encoding")
	})
}

// cacheMeta is what is stored of resp: its head without the hop-by-hop
// fields (Content-Length stays: it says the answer had a length), and its
// validators for a 200 or 206.
func (x *exchange) cacheMeta(resp *http1.Response, until int64) *cache.Meta {
	now := time.Now().Unix()
	m := &cache.Meta{Key: x.cache.key, Vary: cache.VaryOf(resp.Header), ValidUntil: until, Date: now,
		Status: resp.Status, Reason: resp.Reason}
	for _, f := range resp.Header {
		switch strings.ToLower(f.Name) {
		case "transfer-encoding", "connection", "keep-alive":
			continue
		}
		m.Header = append(m.Header, f)
	}
	if resp.Status == 200 || resp.Status == 206 {
		m.ETag, m.LastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	}
	m.StaleWhileRevalidate, m.StaleIfError = cache.StaleExtensions(resp.Header, x.cacheRules())
	return m
}

// cacheGiveUp serves the stale entry when no backend answered, or the
// last answer held for proxy_next_upstream is not to be sent, and
// proxy_cache_use_stale names the failure or the entry's stale-if-error
// still runs.
func (x *exchange) cacheGiveUp(p *pass) (done, keep bool) {
	cs := x.cache
	if cs == nil || cs.stale == nil {
		return false, false
	}
	st := cs.stale
	if x.lc.Cache.UseStale&failure(p) == 0 && !st.Meta.StaleError(time.Now().Unix()) {
		return false, false
	}
	if h := p.last; h != nil {
		h.bc.Release(false)
		p.last = nil
	}
	cs.stale = nil
	return true, x.serveCached(st, cacheStale)
}

// failure is the proxy_next_upstream condition of the pass's last
// failure: the held answer's status, a timeout, an invalid head, or an
// error (no live peer among them).
func failure(p *pass) uint16 {
	var se *http1.StatusError
	switch {
	case p.last != nil:
		return config.NextStatus(p.last.resp.Status)
	case p.err == nil:
		return config.NextError
	case isTimeout(p.err):
		return config.NextTimeout
	case errors.As(p.err, &se):
		return config.NextInvalidHeader
	}
	return config.NextError
}

// serveCached answers from a cache entry, with 304 to a conditional
// request its validators satisfy, and closes it.
func (x *exchange) serveCached(h *cache.Hit, status string) bool {
	defer h.Close()
	x.vc.UpstreamCache = status
	m := h.Meta
	x.vc.UpstreamHeader = m.Header
	resp := &http1.Response{Status: m.Status, Reason: m.Reason, Header: m.Header, ContentLength: h.Size, BodyAllowed: true}
	code := resp.Status
	x.accel(m.Header)
	hdr := x.responseHeader(resp)
	if code == 200 && notModified(x.req.Header, m) {
		code, hdr = 304, notModifiedHeader(hdr)
	}
	noBody := x.req.Method == "HEAD" || code == 204 || code == 304
	known := int64(-1)
	if m.Header.Has("Content-Length") {
		known = h.Size
	}
	length, chunked := x.storedFraming(code, noBody, known)
	hdr, length, chunked = x.filters(code, hdr, length, chunked)
	x.cut = nil
	code, hdr, length, cuts, tail := x.cachedRange(code, hdr, length, m.Header, 0)
	if code == 416 {
		return x.errorPage(416)
	}
	head := x.head(code, hdr, length, chunked)
	var err error
	if b, whole := h.Bytes(); cuts != nil && !noBody {
		x.conn.bw.Write(head)
		x.sent += int64(len(head))
		err = x.writeCuts(h, cuts, tail)
	} else if whole && !noBody && !chunked && !x.bodyFiltered() {
		err = x.writeWhole(head, b)
	} else {
		x.conn.bw.Write(head)
		x.sent += int64(len(head))
		if !noBody {
			var n int64
			n, err = x.copyStored(h.Body(), chunked)
			x.bodySent += n
			x.sent += n
		}
	}
	if ferr := x.conn.bw.Flush(); err == nil {
		err = ferr
	}
	x.done()
	return err == nil && !x.close
}

// cachedRange is nginx's range filter on an answer from the cache or being
// stored: its ranges are allowed when the backend's answer had an
// Accept-Ranges (which is then dropped) or under proxy_force_ranges, up to
// max (0: max_ranges; 1 for an answer being stored, nginx's single_range).
func (x *exchange) cachedRange(code int, hdr http1.Header, length int64, stored http1.Header, max int) (int, http1.Header, int64, []byteCut, string) {
	if !stored.Has("Accept-Ranges") && !x.lc.ProxyRest.ForceRanges {
		return code, hdr, length, nil, ""
	}
	hdr.Del("Accept-Ranges")
	if code != 200 || x.sub {
		return code, hdr, length, nil, ""
	}
	return x.rangeFilter(hdr, length, max)
}

// writeCuts writes the ranges cuts of a stored body, each after its
// multipart head, then tail.
func (x *exchange) writeCuts(h *cache.Hit, cuts []byteCut, tail string) error {
	bw := x.conn.bw
	for _, c := range cuts {
		bw.WriteString(c.head)
		n, err := io.Copy(bw, h.Section(c.start, c.end))
		x.bodySent += int64(len(c.head)) + n
		x.sent += int64(len(c.head)) + n
		if err != nil {
			x.close = true
			return err
		}
	}
	_, err := bw.WriteString(tail)
	x.bodySent += int64(len(tail))
	x.sent += int64(len(tail))
	return err
}

// wholePool holds the buffers writeWhole joins a head and a body in.
var wholePool = sync.Pool{New: func() any {
	b := make([]byte, 0, 32<<10)
	return &b
}}

// writeWhole sends a head and a body read whole in one write when they do
// not fit the client buffer together: a stored answer that is small
// costs one system call, as nginx's writev.
func (x *exchange) writeWhole(head, body []byte) error {
	bw := x.conn.bw
	x.sent += int64(len(head) + len(body))
	x.bodySent += int64(len(body))
	if len(head)+len(body) <= bw.Available() || len(head)+len(body) > 32<<10 {
		bw.Write(head)
		_, err := bw.Write(body)
		return err
	}
	wb := wholePool.Get().(*[]byte)
	out := append(append((*wb)[:0], head...), body...)
	_, err := bw.Write(out) // an empty buffer passes a large write straight on
	*wb = out[:0]
	wholePool.Put(wb)
	return err
}

// copyStored copies a stored body through the body filters, cut to x.cut
// when set.
func (x *exchange) copyStored(src io.Reader, chunked bool) (int64, error) {
	var dst io.Writer = x.conn.bw
	var cw *chunkedBody
	if chunked {
		cw = newChunkedBody(x.conn.bw)
		dst = cw
	}
	dst, z := x.gzipBody(dst)
	if x.cut != nil {
		dst = &cutWriter{w: dst, cut: *x.cut}
	}
	n, err := io.Copy(dst, src)
	if c, ok := dst.(*cutWriter); ok {
		n = c.n // the range of the body the client got
	}
	if z != nil {
		n, err = x.gzipEnd(z, err)
	}
	if err != nil {
		x.close = true
		return bodyBytes(cw, n), err
	}
	if cw != nil {
		err = x.endChunked(cw)
	}
	return bodyBytes(cw, n), err
}

// notModified is nginx's not_modified filter for a cached 200: the
// client's If-None-Match (weak comparison) and If-Modified-Since (the
// same second as Last-Modified) must both hold where sent.
func notModified(h http1.Header, m *cache.Meta) bool {
	ims, inm := h.Get("If-Modified-Since"), h.Get("If-None-Match")
	if ims == "" && inm == "" {
		return false
	}
	if ims != "" {
		t, err := http.ParseTime(ims)
		lm, err2 := http.ParseTime(m.LastModified)
		if err != nil || err2 != nil || !t.Equal(lm) {
			return false
		}
	}
	return inm == "" || etagMatches(inm, m.ETag)
}

// etagMatches is If-None-Match's weak comparison against etag.
func etagMatches(list, etag string) bool {
	if strings.TrimSpace(list) == "*" {
		return etag != ""
	}
	if etag == "" {
		return false
	}
	etag = strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(list, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == etag {
			return true
		}
	}
	return false
}
