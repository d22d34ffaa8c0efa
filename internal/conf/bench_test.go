package conf

import (
	"io"
	"os"
	"testing"
)

func BenchmarkParseProduction(b *testing.B) {
	src, err := os.ReadFile("testdata/seed/14-complete-production.conf")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseWith("bench.conf", src, Options{}, noFiles); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDumpProduction(b *testing.B) {
	src, err := os.ReadFile("testdata/seed/14-complete-production.conf")
	if err != nil {
		b.Fatal(err)
	}
	ds, err := parseWith("bench.conf", src, Options{}, noFiles)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Dump(io.Discard, ds); err != nil {
			b.Fatal(err)
		}
	}
}
