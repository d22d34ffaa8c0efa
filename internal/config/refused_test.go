package config

import (
	"strings"
	"testing"
)

func TestRefusedAndTypos(t *testing.T) {
	tests := []struct{ src, want string }{
		{"http { server { location / { fastcgi_pass 127.0.0.1:9000; } } }", `"fastcgi_pass" belongs to nginx's ngx_http_fastcgi_module, which wsgate does not implement in `},
		{"http { server { location / { uwsgi_pass 127.0.0.1:9000; } } }", `ngx_http_uwsgi_module`},
		{"stream { }", `"stream" belongs to nginx's ngx_stream_core_module`},
		{"mail { }", `ngx_mail_core_module`},
		{"http { server { location / { js_content f; } } }", `ngx_http_js_module`},
		{"http { server { location / { grpc_pass 127.0.0.1:1; } } }", `ngx_http_grpc_module`},
		{"http { server { location / { image_filter resize 1 1; } } }", `ngx_http_image_filter_module`},
		{"http { server { location / { dav_methods PUT; } } }", `ngx_http_dav_module`},
		{"http { server { location / { mp4; } } }", `ngx_http_mp4_module`},
		{"http { server { location / { proxy_set_headr A b; } } }", `unknown directive "proxy_set_headr", did you mean "proxy_set_header"? in `},
		{"http { server { lisen 80; } }", `did you mean "listen"?`},
		{"http { server { location / { frobnicate on; } } }", `unknown directive "frobnicate" in `},
		{"http { types_hash_max_size big; }", `"types_hash_max_size" directive invalid value`},
		{"http { server { aio_write maybe; } }", `it must be "on" or "off"`},
		{"http { server_names_hash_bucket_size 64; server { server_names_hash_bucket_size 64; } }", `"server_names_hash_bucket_size" directive is not allowed here`},
	}
	for _, tt := range tests {
		_, err := load(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.src, err, tt.want)
		}
	}
}

// TestNoEffectDirectivesLoad loads the lines a distribution's nginx.conf and
// common application configs carry for tuning nginx's own mechanisms.
func TestNoEffectDirectivesLoad(t *testing.T) {
	src := `
lock_file /run/lock/x;
timer_resolution 100ms;
thread_pool default threads=32 max_queue=65536;
master_process on;
debug_points abort;
events { accept_mutex_delay 500ms; worker_aio_requests 32; }
http {
    types_hash_max_size 2048;
    types_hash_bucket_size 64;
    server_names_hash_bucket_size 64;
    server_names_hash_max_size 512;
    variables_hash_max_size 1024;
    map_hash_bucket_size 128;
    proxy_headers_hash_max_size 1024;
    fastcgi_temp_path /tmp/f 1 2;
    uwsgi_temp_path /tmp/u;
    scgi_temp_path /tmp/s;
    open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 30s;
    open_file_cache_min_uses 2;
    open_file_cache_errors on;
    server {
        listen 127.0.0.1:1;
        aio threads;
        directio 4m;
        directio_alignment 512;
        output_buffers 2 32k;
        postpone_output 1460;
        sendfile_max_chunk 512k;
        read_ahead 0;
        location / { return 200; }
    }
}`
	if _, err := load(t, src); err != nil {
		t.Fatal(err)
	}
}
