package regex

import "testing"

// BenchmarkEngines compares one match on each engine: an RE2 pattern and
// Nextcloud's negative look-ahead, which runs backtracking.
func BenchmarkEngines(b *testing.B) {
	for name, p := range map[string]string{
		"re2":       `^/(?:build|tests|config|lib|3rdparty|templates|data)(?:$|/)`,
		"lookahead": `^/(?!index|remote|public|cron|core\/ajax\/update|status|ocs\/v[12]|updater\/.+|oc[ms]-provider\/.+|.+\/richdocumentscode\/proxy)`,
	} {
		re, err := Compile(p, false)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := re.FindStringSubmatch("/apps/files/ajax/list.php"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
