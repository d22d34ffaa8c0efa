package server

import (
	"time"

	"github.com/wsgate/wsgate/internal/config"
	"github.com/wsgate/wsgate/internal/http1"
)

// emptyGif is the 43-byte transparent 1x1 GIF nginx's empty_gif sends.
const emptyGif = "GIF89a\x01\x00\x01\x00\x80\x01\x00\x00\x00\x00\xff\xff\xff" +
	"!\xf9\x04\x01\x00\x00\x01\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02L\x01\x00;"

// emptyGifModified is the Last-Modified nginx gives it (Unix time 23349600).
var emptyGifModified = time.Unix(23349600, 0).UTC()

// serveEmptyGif answers GET and HEAD with the GIF (304 when
// If-Modified-Since says the client has it), anything else with 405.
func (x *exchange) serveEmptyGif() bool {
	if x.req.Method != "GET" && x.req.Method != "HEAD" {
		return x.errorPage(405)
	}
	lm := emptyGifModified.Format(http1TimeFormat)
	hdr := http1.Header{{Name: "Content-Type", Value: "image/gif"}, {Name: "Last-Modified", Value: lm}}
	if ims := x.req.Header.Get("If-Modified-Since"); ims != "" && x.lc.Files.IfModifiedSince != config.IMSOff {
		t, err := time.Parse(http1TimeFormat, ims)
		if err == nil && (t.Equal(emptyGifModified) || x.lc.Files.IfModifiedSince == config.IMSBefore && t.After(emptyGifModified)) {
			return x.respond(304, hdr[1:], "") // a 304 has no Content-Type, as nginx
		}
	}
	return x.respond(200, hdr, emptyGif)
}
