package config

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wsgate/wsgate/internal/conf"
)

// Readers of the websocket_* directives that need more than a duration.

func wsSize(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseSize(d.Args[0])
	if err != nil || v == 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	if d.Name == "websocket_max_frame_size" {
		s.lc.WS.MaxFrameSize = v
	} else {
		s.lc.WS.MaxMessageSize = v
	}
	return s.lc.mark(d, d.Name)
}

// dMessageRate reads `websocket_message_rate N/s|N/m [burst=M] [client|both]`.
func dMessageRate(l *loader, d *conf.Directive, s *scope) error {
	v := d.Args[0]
	per := 1.0
	switch {
	case strings.HasSuffix(v, "/s"):
		v = v[:len(v)-2]
	case strings.HasSuffix(v, "/m"):
		v, per = v[:len(v)-2], 60
	default:
		return conf.Errorf(d, "invalid rate \"%s\"", d.Args[0])
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		return conf.Errorf(d, "invalid rate \"%s\"", d.Args[0])
	}
	s.lc.WS.MessageRate = n / per
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "burst="):
			b, err := strconv.Atoi(a[len("burst="):])
			if err != nil || b < 0 {
				return conf.Errorf(d, "invalid burst \"%s\"", a)
			}
			s.lc.WS.MessageBurst = b
		case a == "client":
			s.lc.WS.RateBoth = false
		case a == "both":
			s.lc.WS.RateBoth = true
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	return s.lc.mark(d, d.Name)
}

// dOrigins reads `websocket_allowed_origins origin ...`: exact origins
// ("https://app.example.com"), wildcards ("*.example.com" or
// "https://*.example.com") and "null", which must be named to be allowed.
func dOrigins(l *loader, d *conf.Directive, s *scope) error {
	for _, o := range d.Args {
		lo := strings.ToLower(o)
		host := lo
		if i := strings.Index(lo, "://"); i >= 0 {
			host = lo[i+3:]
		}
		if lo != "null" && (host == "" || strings.ContainsAny(host, "/?#") || strings.Count(host, "*") > 1 || (strings.Contains(host, "*") && !strings.HasPrefix(host, "*."))) {
			return conf.Errorf(d, "invalid origin \"%s\"", o)
		}
		s.lc.WS.Origins = append(s.lc.WS.Origins, lo)
	}
	return s.lc.mark(d, d.Name)
}

func dSubprotocols(l *loader, d *conf.Directive, s *scope) error {
	for _, p := range d.Args {
		if !validHeaderName(p) {
			return conf.Errorf(d, "invalid subprotocol \"%s\"", p)
		}
	}
	s.lc.WS.Subprotocols = append([]string(nil), d.Args...)
	return s.lc.mark(d, d.Name)
}

// dValidate reads `websocket_validate off|strict`: what a tracked tunnel
// judges of the frames it relays.
func dValidate(l *loader, d *conf.Directive, s *scope) error {
	switch d.Args[0] {
	case "off":
		s.lc.WS.Strict = false
	case "strict":
		s.lc.WS.Strict = true
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"off\" or \"strict\"", d.Args[0], d.Name)
	}
	return s.lc.mark(d, d.Name)
}

// dMaxSession reads `websocket_max_session_time TIME [jitter=TIME]
// [code=N]`: a tunnel lives at most TIME, less a random part of jitter
// (at most TIME), and is closed with code N (1001 by default; 1000, 1001,
// 1008, 1011-1014 or 3000-4999).
func dMaxSession(l *loader, d *conf.Directive, s *scope) error {
	v, err := ParseDuration(d.Args[0])
	if err != nil || v <= 0 {
		return conf.Errorf(d, "\"%s\" directive invalid value \"%s\"", d.Name, d.Args[0])
	}
	ws := &s.lc.WS
	ws.MaxSession, ws.SessionJitter, ws.SessionCode = v, 0, 0
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "jitter="):
			j, err := ParseDuration(a[len("jitter="):])
			if err != nil || j > v {
				return conf.Errorf(d, "invalid jitter \"%s\": a time of at most \"%s\"", a, d.Args[0])
			}
			ws.SessionJitter = j
		case strings.HasPrefix(a, "code="):
			c, err := strconv.Atoi(a[len("code="):])
			if err != nil || !sessionCode(c) {
				return conf.Errorf(d, "invalid close code \"%s\": 1000, 1001, 1008, 1011-1014 or 3000-4999", a)
			}
			ws.SessionCode = uint16(c)
		default:
			return conf.Errorf(d, "invalid parameter \"%s\"", a)
		}
	}
	return s.lc.mark(d, d.Name)
}

func sessionCode(c int) bool {
	return c == 1000 || c == 1001 || c == 1008 || (c >= 1011 && c <= 1014) || (c >= 3000 && c <= 4999)
}

// dCompression reads `websocket_compression on|backend|off`: the leg
// (the client's, or the backend's) whose permessage-deflate wsgate does.
func dCompression(l *loader, d *conf.Directive, s *scope) error {
	c := &s.lc.WS.Compression
	switch d.Args[0] {
	case "off":
		c.Mode = ""
	case "on", "backend":
		c.Mode = d.Args[0]
	default:
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be \"on\", \"backend\" or \"off\"", d.Args[0], d.Name)
	}
	c.File, c.Line = d.File, d.Line
	return s.lc.mark(d, d.Name)
}

// dCompressionBits reads `websocket_compression_window_bits N`, 8 to 15.
func dCompressionBits(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 8 || n > 15 {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be 8 to 15", d.Args[0], d.Name)
	}
	s.lc.WS.Compression.WindowBits = n
	return s.lc.mark(d, d.Name)
}

// dCompressionLevel reads `websocket_compression_level N`, 0 to 9.
func dCompressionLevel(l *loader, d *conf.Directive, s *scope) error {
	n, err := strconv.Atoi(d.Args[0])
	if err != nil || n < 0 || n > 9 {
		return conf.Errorf(d, "invalid value \"%s\" in \"%s\" directive, it must be 0 to 9", d.Args[0], d.Name)
	}
	s.lc.WS.Compression.Level = n
	return s.lc.mark(d, d.Name)
}

// checkCompression refuses compression offload where frames are not
// tracked: offload works on frames.
func checkCompression(lc *LocConf) error {
	c := &lc.WS.Compression
	if c.Mode == "" || lc.WebSocketFrames {
		return nil
	}
	return &conf.Error{File: c.File, Line: c.Line, Msg: "\"websocket_compression\" cannot be used with \"websocket_frames off\""}
}

// dCapturePath reads `websocket_capture_path DIR`: where captures started
// through the api write their files (relative to the prefix).
func dCapturePath(l *loader, d *conf.Directive, s *scope) error {
	dir := d.Args[0]
	if dir == "" {
		return conf.Errorf(d, "\"%s\" directive invalid value", d.Name)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(l.cfg.Prefix, dir)
	}
	s.lc.WS.CapturePath = dir
	return s.lc.mark(d, d.Name)
}
