package config

import "github.com/wsgate/wsgate/internal/conf"

// The directive of nginx's ngx_http_empty_gif_module: the location's
// content handler answers with a 1x1 transparent GIF.
var emptyGifDirectives = map[string]dirSpec{
	"empty_gif": {ctx: cLocation, min: 0, max: 0, fn: func(l *loader, d *conf.Directive, s *scope) error {
		s.lc.EmptyGif = true
		return nil
	}},
}
