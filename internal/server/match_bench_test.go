package server

import "testing"

// BenchmarkFindLocation is the location search on the request's hot
// path, with regexes that all run on RE2 (as before the backtracking
// engine existed), tried in file order.
func BenchmarkFindLocation(b *testing.B) {
	cfg := loadConf(&testing.T{}, `http { server {
        location / { return 200 root; }
        location ^~ /static/ { return 200 static; }
        location ~ ^/(?:build|tests|config|lib|3rdparty|templates|data)(?:$|/) { return 404; }
        location ~* \.(?:css|js|svg|gif|png|jpg)$ { return 200 asset; }
        location ~ ^/api/v(\d+)/(?<rest>.*)$ { return 200 api; }
        location ~ \.php(?:$|/) { return 200 php; }
    } }`)
	root := cfg.HTTP.Servers[0].Locations
	for _, path := range []string{"/index.php/apps/files", "/api/v2/users/42", "/some/page", "/static/app.js"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if loc, _, _ := findLocation(root, path); loc == nil {
					b.Fatal("no location")
				}
			}
		})
	}
}
