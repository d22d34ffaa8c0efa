package upstream

import (
	"encoding/binary"
	"hash/crc32"
	"strings"
)

// pointsPerWeight is nginx's number of ring points per unit of weight.
const pointsPerWeight = 160

type chashPoint struct {
	hash   uint32
	server int32
}

// buildRing places each primary peer on the ketama ring the way nginx does
// (Cache::Memcached::Fast compatible), so that the same key reaches the
// same server name under wsgate and nginx. Points belong to the server
// name as written: the addresses one name resolves to share its points.
func (u *Upstream) buildRing() {
	servers := map[string]int32{}
	n := 0
	for _, p := range u.primary.peers {
		n += p.cfg.Weight * pointsPerWeight
	}
	pts := make([]chashPoint, 0, n)
	var le [4]byte
	for _, p := range u.primary.peers {
		id, ok := servers[p.cfg.Name]
		if !ok {
			id = int32(len(servers))
			servers[p.cfg.Name] = id
		}
		p.server = id
		host, port := splitServer(p.cfg.Name)
		base := crc32.Update(0, crc32.IEEETable, []byte(host))
		base = crc32.Update(base, crc32.IEEETable, []byte{0})
		base = crc32.Update(base, crc32.IEEETable, []byte(port))
		var prev uint32
		for range p.cfg.Weight * pointsPerWeight {
			binary.LittleEndian.PutUint32(le[:], prev)
			h := crc32.Update(base, crc32.IEEETable, le[:])
			pts = append(pts, chashPoint{h, id})
			prev = h
		}
	}
	sortPoints(pts)
	// Drop repeated hashes, keeping the first, as nginx does.
	out := pts[:0]
	for i, pt := range pts {
		if i == 0 || pt.hash != out[len(out)-1].hash {
			out = append(out, pt)
		}
	}
	u.points = out
}

// splitServer splits "host:port" as nginx's ring does: "unix:" paths have
// no port, and the port is the run of digits after the last colon.
func splitServer(s string) (host, port string) {
	if len(s) >= 5 && strings.EqualFold(s[:5], "unix:") {
		return s[5:], ""
	}
	for j := len(s) - 1; j >= 0; j-- {
		c := s[j]
		if c == ':' {
			return s[:j], s[j+1:]
		}
		if c < '0' || c > '9' {
			break
		}
	}
	return s, ""
}

// findPoint returns the index of the first point whose hash is >= h, or
// len(pts) when there is none (the caller wraps around).
func findPoint(pts []chashPoint, h uint32) int {
	i, j := 0, len(pts)
	for i < j {
		k := (i + j) / 2
		switch {
		case h > pts[k].hash:
			i = k + 1
		case h < pts[k].hash:
			j = k
		default:
			return k
		}
	}
	return i
}
