package config

import (
	"strings"
	"testing"
	"time"
)

func TestStickyLearn(t *testing.T) {
	cfg, err := load(t, `events {}
http {
    upstream u {
        sticky learn create=$upstream_cookie_sid create=$upstream_http_x_sid lookup=$cookie_sid zone=sess:1m timeout=1h header sync;
        server 127.0.0.1:9000;
    }
    upstream v { sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=other:64k; server 127.0.0.1:9001; }
}`)
	if err != nil {
		t.Fatal(err)
	}
	sl := cfg.HTTP.Upstreams[0].StickyLearn
	if sl == nil || len(sl.Create) != 2 || len(sl.Lookup) != 1 || sl.Zone != "sess" || sl.Size != 1<<20 ||
		sl.Timeout != time.Hour || !sl.Header || !sl.Sync {
		t.Fatalf("sticky learn %+v", sl)
	}
	if d := cfg.HTTP.Upstreams[1].StickyLearn; d.Timeout != 10*time.Minute || d.Header || d.Sync || d.Size != 64<<10 {
		t.Fatalf("defaults %+v", d)
	}
	const ok = "create=$upstream_cookie_a lookup=$cookie_a zone=z:1m"
	for src, want := range map[string]string{
		"sticky learn lookup=$cookie_a zone=z:1m;":                          `"create" parameter is missing`,
		"sticky learn create=$upstream_cookie_a zone=z:1m;":                 `"lookup" parameter is missing`,
		"sticky learn create=$upstream_cookie_a lookup=$cookie_a;":          `"zone" parameter is missing`,
		"sticky learn create=a lookup=$cookie_a zone=z:1m;":                 `invalid parameter "create=a"`,
		"sticky learn create=$nope_x_ lookup=$cookie_a zone=z:1m;":          `unknown "nope_x_" variable`,
		"sticky learn " + ok + " zone=y:1m;":                                `duplicate parameter "zone=y:1m"`,
		"sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=z;":   `invalid zone size "zone=z"`,
		"sticky learn create=$upstream_cookie_a lookup=$cookie_a zone=z:1;": `zone "z" is too small`,
		"sticky learn " + ok + " timeout=0;":                                `invalid parameter "timeout=0"`,
		"sticky learn " + ok + " timeout=x;":                                `invalid parameter "timeout=x"`,
		"sticky learn " + ok + " header=1;":                                 `invalid parameter "header=1"`,
		"sticky learn " + ok + " other;":                                    `invalid parameter "other"`,
		"sticky learn " + ok + "; sticky cookie s;":                         `"sticky" directive is duplicate`,
		"sticky cookie s; sticky learn " + ok + ";":                         `"sticky" directive is duplicate`,
		"sticky learn " + ok + "; websocket_rebalance;":                     `"websocket_rebalance" cannot be used with ip_hash, hash or sticky`,
	} {
		_, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; "+src+" } }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	_, err = load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; sticky learn "+ok+"; } upstream v { server 127.0.0.1:9000; sticky learn "+ok+"; } }")
	if err == nil || !strings.Contains(err.Error(), `duplicate zone "z"`) {
		t.Errorf("zone shared by two upstreams: %v", err)
	}
}

func TestNTLM(t *testing.T) {
	cfg, err := load(t, "events {}\nhttp { upstream u { server 127.0.0.1:9000; keepalive 4; ntlm; } upstream v { server 127.0.0.1:9001; } }")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HTTP.Upstreams[0].NTLM || cfg.HTTP.Upstreams[1].NTLM {
		t.Fatalf("ntlm: %v %v", cfg.HTTP.Upstreams[0].NTLM, cfg.HTTP.Upstreams[1].NTLM)
	}
	for src, want := range map[string]string{
		"upstream u { server 127.0.0.1:9000; ntlm; }":                           `"ntlm" needs "keepalive" in upstream "u"`,
		"upstream u { server 127.0.0.1:9000; keepalive 1; ntlm; ntlm; }":        `"ntlm" directive is duplicate`,
		"upstream u { server 127.0.0.1:9000; keepalive 1; ntlm on; }":           `invalid number of arguments in "ntlm"`,
		"upstream u { server 127.0.0.1:9000; } server { location / { ntlm; } }": `"ntlm" directive is not allowed here`,
	} {
		_, err := load(t, "events {}\nhttp { "+src+" }")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}
