package watcher

import "testing"

func TestIgnored(t *testing.T) {
	for name, want := range map[string]bool{
		"products.csv":        false,
		"products.ndjson.gz":  false,
		"p":                   false,
		".products.csv":       true,
		".skuflow-watch.lock": true,
		"products.csv.tmp":    true,
		"upload.PART":         true,
		"x.partial":           true,
		"x.crdownload":        true,
		"x.swp":               true,
		"products.csv~":       true,
		"~$products.csv":      true,
	} {
		if got := ignored(name); got != want {
			t.Errorf("ignored(%q) = %v, want %v", name, got, want)
		}
	}
}
