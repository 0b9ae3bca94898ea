package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"skuflow/producer"
)

// A progress line says the counts, the rate, and the percentage read only
// when the input's size is known.
func TestProgressArgs(t *testing.T) {
	for _, c := range []struct {
		name                          string
		size                          int64
		read, produced, rejected, raw int64
		elapsed                       time.Duration
		want                          string
	}{
		{"file", 200e6, 1_000_000, 999_990, 10, 50e6, 10 * time.Second,
			"msg=progress source=file read=1000000 produced=999990 rejected=10 mb_per_s=5 percent=25 elapsed=10s"},
		{"stdin", -1, 3, 2, 1, 1234, 20*time.Second + 400*time.Millisecond,
			"msg=progress source=stdin read=3 produced=2 rejected=1 mb_per_s=0 elapsed=20s"},
		// A compressed input's stored size, read past by the last block's
		// framing, is never more than 100%.
		{"file.gz", 1000, 7, 7, 0, 1001, 3 * time.Second,
			"msg=progress source=file.gz read=7 produced=7 rejected=0 mb_per_s=0 percent=100 elapsed=3s"},
		{"slow", 3e6, 0, 0, 0, 1e6, 10 * time.Second,
			"msg=progress source=slow read=0 produced=0 rejected=0 mb_per_s=0.1 percent=33.3 elapsed=10s"},
	} {
		var b bytes.Buffer
		log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
				return slog.Attr{}
			}
			return a
		}}))
		log.Info("progress", progressArgs(producer.Source{Name: c.name, Size: c.size}, c.read, c.produced, c.rejected, c.raw, c.elapsed)...)
		if got := strings.TrimSpace(b.String()); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}
