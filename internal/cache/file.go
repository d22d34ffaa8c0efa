package cache

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/wsgate/wsgate/internal/http1"
)

// Version is the format of the cache files this build writes and reads.
// A file of another version is never read as a response: it is a miss,
// and the loader removes it.
const Version = 1

// The file layout, all integers big-endian:
//
//	0  "WSGC"                 magic
//	4  uint32                 Version
//	8  int64                  valid until, Unix seconds (rewritten in place on revalidation)
//	16 int64                  stored at, Unix seconds
//	24 uint32                 length n of the metadata that follows
//	28 n bytes                metadata: key, vary, variant, status, reason, ETag, Last-Modified,
//	                          stale-while-revalidate, stale-if-error, header fields
//	28+n                      the body, to the end of the file
const (
	magic      = "WSGC"
	offValid   = 8
	fixedHead  = 28
	maxMetaLen = 1 << 20
)

// ErrVersion is returned for a file written in another format.
var ErrVersion = errors.New("cache file of another version")

// errFormat is returned for a file that is not a cache file or is cut
// short.
var errFormat = errors.New("not a valid cache file")

// Meta describes a stored response.
type Meta struct {
	Key          string // the cache key, as proxy_cache_key made it
	Vary         string // the backend's Vary header; "" without one
	Variant      string // the request's values of the Vary headers, as Variant formats them
	ValidUntil   int64  // Unix seconds; the entry is fresh while ValidUntil >= now
	Date         int64  // Unix seconds when it was stored
	Status       int
	Reason       string
	ETag         string // for revalidation; only for 200 and 206
	LastModified string // for revalidation; only for 200 and 206
	// StaleWhileRevalidate and StaleIfError are the Cache-Control
	// extensions' seconds past ValidUntil during which the entry may be
	// served while it is updated, or when the backend fails.
	StaleWhileRevalidate, StaleIfError int64
	Header                             http1.Header
}

// Hash is the file name of a key: the hex MD5 of the key (as nginx), or
// of the key and a variant of it.
func Hash(key, variant string) string {
	h := md5.New()
	io.WriteString(h, key)
	if variant != "" {
		h.Write([]byte{0})
		io.WriteString(h, variant)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pathOf is the file of hash under dir with levels, as nginx names it:
// each level takes its characters from the end of the hash.
func pathOf(dir string, levels []int, hash string) string {
	parts := []string{dir}
	end := len(hash)
	for _, n := range levels {
		parts = append(parts, hash[end-n:end])
		end -= n
	}
	return filepath.Join(append(parts, hash)...)
}

// encodeHead is the fixed head and the metadata of m.
func encodeHead(m *Meta) []byte {
	var meta []byte
	str := func(s string) {
		meta = binary.AppendUvarint(meta, uint64(len(s)))
		meta = append(meta, s...)
	}
	str(m.Key)
	str(m.Vary)
	str(m.Variant)
	meta = binary.AppendUvarint(meta, uint64(m.Status))
	str(m.Reason)
	str(m.ETag)
	str(m.LastModified)
	meta = binary.AppendUvarint(meta, uint64(m.StaleWhileRevalidate))
	meta = binary.AppendUvarint(meta, uint64(m.StaleIfError))
	meta = binary.AppendUvarint(meta, uint64(len(m.Header)))
	for _, f := range m.Header {
		str(f.Name)
		str(f.Value)
	}
	b := make([]byte, fixedHead, fixedHead+len(meta))
	copy(b, magic)
	binary.BigEndian.PutUint32(b[4:], Version)
	binary.BigEndian.PutUint64(b[offValid:], uint64(m.ValidUntil))
	binary.BigEndian.PutUint64(b[16:], uint64(m.Date))
	binary.BigEndian.PutUint32(b[24:], uint32(len(meta)))
	return append(b, meta...)
}

// bufPool holds the buffers a lookup reads the start of a file into: the
// head and, for a small body, the whole body in one read.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 16<<10)
	return &b
}}

// readHead reads the head of a cache file from r, reading the file's
// start into buf, and returns its metadata, the offset of the body and
// the body bytes read with the head (a part of buf). It returns ErrVersion
// for a file of another version and errFormat for anything else that is
// not a whole head.
func readHead(r io.ReaderAt, buf []byte) (*Meta, int64, []byte, error) {
	n, err := r.ReadAt(buf, 0)
	if (err != nil && err != io.EOF) || n < fixedHead || string(buf[:4]) != magic {
		return nil, 0, nil, errFormat
	}
	if binary.BigEndian.Uint32(buf[4:]) != Version {
		return nil, 0, nil, ErrVersion
	}
	ml := binary.BigEndian.Uint32(buf[24:])
	if ml > maxMetaLen {
		return nil, 0, nil, errFormat
	}
	end := fixedHead + int(ml)
	var meta, prefix []byte
	if end <= n {
		meta, prefix = buf[fixedHead:end], buf[end:n]
	} else {
		meta = make([]byte, ml)
		if _, err := r.ReadAt(meta, fixedHead); err != nil {
			return nil, 0, nil, errFormat
		}
	}
	m := &Meta{ValidUntil: int64(binary.BigEndian.Uint64(buf[offValid:])), Date: int64(binary.BigEndian.Uint64(buf[16:]))}
	d := decoder{b: meta}
	m.Key, m.Vary, m.Variant = d.str(), d.str(), d.str()
	m.Status = int(d.num())
	m.Reason, m.ETag, m.LastModified = d.str(), d.str(), d.str()
	m.StaleWhileRevalidate, m.StaleIfError = int64(d.num()), int64(d.num())
	nf := d.num()
	if nf > uint64(len(meta)) {
		return nil, 0, nil, errFormat
	}
	m.Header = make(http1.Header, 0, nf)
	for range nf {
		m.Header = append(m.Header, http1.Field{Name: d.str(), Value: d.str()})
	}
	if d.bad || len(d.b) != 0 {
		return nil, 0, nil, errFormat
	}
	return m, int64(end), prefix, nil
}

// decoder reads the metadata; bad is set once anything is out of bounds.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) num() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.num()
	if n > uint64(len(d.b)) {
		d.bad = true
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// readFile opens the cache file at path and reads its head into buf.
func readFile(path string, buf []byte) (*os.File, *Meta, int64, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	m, off, prefix, err := readHead(f, buf)
	if err != nil {
		f.Close()
		return nil, nil, 0, nil, err
	}
	return f, m, off, prefix, nil
}
