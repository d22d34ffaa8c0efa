package config

import (
	"strings"
	"testing"
	"time"
)

func TestQueueDirective(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    upstream a { server 127.0.0.1:9000 max_conns=2; queue 10 timeout=5s; }
    upstream b { server 127.0.0.1:9001; queue 3; }
    upstream c { server 127.0.0.1:9002; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.HTTP.Upstreams
	if u[0].Queue != 10 || u[0].QueueTimeout != 5*time.Second || u[1].Queue != 3 || u[1].QueueTimeout != time.Minute || u[2].Queue != 0 {
		t.Fatalf("queues %d/%v %d/%v %d", u[0].Queue, u[0].QueueTimeout, u[1].Queue, u[1].QueueTimeout, u[2].Queue)
	}
	for src, want := range map[string]string{
		`queue 0;`:              `invalid value "0" in "queue" directive`,
		`queue x;`:              `invalid value "x" in "queue" directive`,
		`queue 1 timeout=0;`:    `invalid parameter "timeout=0"`,
		`queue 1 wait=1s;`:      `invalid parameter "wait=1s"`,
		`queue 1; queue 2;`:     `"queue" directive is duplicate`,
		`queue 1 timeout=1s 2;`: `invalid number of arguments in "queue" directive`,
	} {
		_, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; "+src+" } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	if _, err := load(t, "events {}\nhttp { server { queue 1; } }"); err == nil || !strings.Contains(err.Error(), `"queue" directive is not allowed here`) {
		t.Errorf("queue in server: %v", err)
	}
}

func TestLeastTimeDirective(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    upstream a { least_time header; server 127.0.0.1:9000; server 127.0.0.1:9001 backup; }
    upstream b { least_time last_byte inflight; server 127.0.0.1:9002; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.HTTP.Upstreams[0], cfg.HTTP.Upstreams[1]
	if a.Method != "least_time" || a.LeastTimeLastByte || b.Method != "least_time" || !b.LeastTimeLastByte {
		t.Fatalf("a %s %v, b %s %v", a.Method, a.LeastTimeLastByte, b.Method, b.LeastTimeLastByte)
	}
	for src, want := range map[string]string{
		`least_time first_byte;`:      `invalid parameter "first_byte"`,
		`least_time header always;`:   `invalid parameter "always"`,
		`least_time header; ip_hash;`: `load balancing method redefined`,
	} {
		_, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; "+src+" } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

func TestDrainParameter(t *testing.T) {
	cfg, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; server 127.0.0.1:9001 drain; } }")
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.HTTP.Upstreams[0].Servers; s[0].Drain || !s[1].Drain {
		t.Fatalf("servers %+v", s)
	}
}

func TestStickyRoute(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    upstream u { sticky route $cookie_route $arg_route; server 127.0.0.1:9000 route=a; server 127.0.0.1:9001 route=b; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.HTTP.Upstreams[0]
	if len(u.StickyRoute) != 2 || u.Sticky != nil || u.Servers[0].Route != "a" || u.Servers[1].Route != "b" {
		t.Fatalf("upstream %+v", u)
	}
	for src, want := range map[string]string{
		`sticky route $cookie_r; sticky cookie s;`: `"sticky" directive is duplicate`,
		`sticky cookie s; sticky route $cookie_r;`: `"sticky" directive is duplicate`,
		`sticky route $nope_x_;`:                   `unknown "nope_x_" variable`,
	} {
		_, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; "+src+" } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	if _, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000 route=; } }"); err == nil || !strings.Contains(err.Error(), `invalid parameter "route="`) {
		t.Errorf("empty route: %v", err)
	}
}
