package wsdeflate

import (
	"errors"
	"strconv"
	"strings"
)

// Name is the extension token of RFC 7692.
const Name = "permessage-deflate"

// Window bits that RFC 7692 allows (section 7.1.2).
const (
	MinWindowBits = 8
	MaxWindowBits = 15
)

// Options are the operator's settings for an offloaded leg.
type Options struct {
	// ContextTakeover lets both sides keep their compression context
	// between messages, when the peer allows it. Off, wsgate asks for
	// no_context_takeover both ways and keeps no memory between messages.
	ContextTakeover bool
	// WindowBits (MinWindowBits..MaxWindowBits; 0 means 15) bounds the
	// LZ77 window of wsgate's compressor and, when the peer lets wsgate
	// choose, of the peer's.
	WindowBits int
}

func (o Options) bits() int {
	if o.WindowBits == 0 {
		return MaxWindowBits
	}
	return o.WindowBits
}

// Params are the negotiated settings of a wrapped leg, from wsgate's point
// of view: Out is wsgate's compressor (messages written to the leg), In the
// peer's (messages read from it).
type Params struct {
	OutTakeover, InTakeover bool
	OutBits, InBits         int
}

// Memory is what a wrapped connection holds between messages: the history
// of each side that keeps its context. Zero without context takeover.
func (p Params) Memory() int {
	n := 0
	if p.OutTakeover {
		n += historyLen(p.OutBits)
	}
	if p.InTakeover {
		n += 1 << p.InBits
	}
	return n
}

// historyLen is how much of its past messages wsgate's compressor keeps
// as the dictionary of the next one: half the window (so that a piece and
// its dictionary fit in it), at most what the stateless compressor uses.
func historyLen(bits int) int {
	return min(1<<(bits-1), maxDict)
}

// maxDict is the longest dictionary the stateless compressor uses.
const maxDict = 8 << 10

// offer is one parsed extension element of a Sec-WebSocket-Extensions value.
type offer struct {
	name   string
	params map[string]string // a parameter without value maps to ""
	bad    bool              // a parameter given twice, or malformed
}

// parseExtensions splits a Sec-WebSocket-Extensions value (or the values
// of several such headers joined by commas) into its elements.
func parseExtensions(v string) []offer {
	var out []offer
	for _, e := range strings.Split(v, ",") {
		parts := strings.Split(e, ";")
		name := strings.TrimSpace(parts[0])
		if name == "" {
			continue
		}
		o := offer{name: strings.ToLower(name), params: map[string]string{}}
		for _, p := range parts[1:] {
			k, val, _ := strings.Cut(p, "=")
			k = strings.ToLower(strings.TrimSpace(k))
			val = strings.Trim(strings.TrimSpace(val), `"`)
			if _, dup := o.params[k]; dup || k == "" {
				o.bad = true
			}
			o.params[k] = val
		}
		out = append(out, o)
	}
	return out
}

// windowBits reads a window bits value; "" (allowed where empty means "any")
// gives dflt.
func windowBits(v string, dflt int) (int, bool) {
	if v == "" {
		return dflt, dflt != 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < MinWindowBits || n > MaxWindowBits || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	return n, true
}

// Negotiate answers a client's Sec-WebSocket-Extensions offer as a server:
// it accepts the first permessage-deflate offer it can honour and returns
// the response element for the 101 and the leg's Params. ok is false when
// the client offers no acceptable permessage-deflate.
func Negotiate(clientOffer string, o Options) (response string, p Params, ok bool) {
	for _, of := range parseExtensions(clientOffer) {
		if of.name != Name || of.bad {
			continue
		}
		if r, p, ok := answer(of, o); ok {
			return r, p, true
		}
	}
	return "", Params{}, false
}

func answer(of offer, o Options) (string, Params, bool) {
	p := Params{OutBits: o.bits(), InBits: MaxWindowBits}
	resp := []string{Name}
	for k, v := range of.params {
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
			if v != "" {
				return "", p, false
			}
		case "server_max_window_bits":
			b, ok := windowBits(v, 0)
			if !ok {
				return "", p, false
			}
			p.OutBits = min(p.OutBits, b)
		case "client_max_window_bits":
			b, ok := windowBits(v, MaxWindowBits)
			if !ok {
				return "", p, false
			}
			// The client lets wsgate bound its window.
			p.InBits = min(b, o.bits())
			resp = append(resp, "client_max_window_bits="+strconv.Itoa(p.InBits))
		default:
			return "", p, false // unknown parameter: decline this offer
		}
	}
	_, serverNo := of.params["server_no_context_takeover"]
	_, clientNo := of.params["client_no_context_takeover"]
	p.OutTakeover = o.ContextTakeover && !serverNo
	p.InTakeover = o.ContextTakeover && !clientNo
	if !p.OutTakeover {
		resp = append(resp, "server_no_context_takeover")
	}
	if !p.InTakeover {
		resp = append(resp, "client_no_context_takeover")
	}
	if p.OutBits < MaxWindowBits {
		resp = append(resp, "server_max_window_bits="+strconv.Itoa(p.OutBits))
	}
	return strings.Join(resp, "; "), p, true
}

// Offer is the Sec-WebSocket-Extensions value wsgate sends a backend as a
// client.
func Offer(o Options) string {
	s := Name + "; client_max_window_bits"
	if !o.ContextTakeover {
		s += "; server_no_context_takeover; client_no_context_takeover"
	}
	if b := o.bits(); b < MaxWindowBits {
		s += "; server_max_window_bits=" + strconv.Itoa(b)
	}
	return s
}

// ErrResponse is a backend's Sec-WebSocket-Extensions answer that does not
// answer Offer.
var ErrResponse = errors.New("upstream sent invalid \"Sec-WebSocket-Extensions\" header")

// Accept reads a backend's answer to Offer. ok is false when the backend
// declined permessage-deflate; an answer that Offer did not allow is an
// error, and the handshake fails.
func Accept(response string, o Options) (p Params, ok bool, err error) {
	exts := parseExtensions(response)
	if len(exts) == 0 {
		return Params{}, false, nil
	}
	if len(exts) > 1 || exts[0].name != Name || exts[0].bad {
		return Params{}, false, ErrResponse
	}
	// A backend that keeps its context though asked not to is served
	// correctly, at the memory cost of its history.
	p = Params{OutTakeover: o.ContextTakeover, InTakeover: true, OutBits: o.bits(), InBits: MaxWindowBits}
	for k, v := range exts[0].params {
		switch k {
		case "server_no_context_takeover", "client_no_context_takeover":
			if v != "" {
				return Params{}, false, ErrResponse
			}
			if k == "server_no_context_takeover" {
				p.InTakeover = false
			} else {
				p.OutTakeover = false
			}
		case "server_max_window_bits":
			b, ok := windowBits(v, 0)
			if !ok || b > o.bits() {
				return Params{}, false, ErrResponse
			}
			p.InBits = b
		case "client_max_window_bits":
			b, ok := windowBits(v, 0)
			if !ok {
				return Params{}, false, ErrResponse
			}
			p.OutBits = min(p.OutBits, b)
		default:
			return Params{}, false, ErrResponse
		}
	}
	return p, true, nil
}
