package cli

import "testing"

func TestCount(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1234: "-1,234"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestGauge(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		want        string
	}{
		{0, 10, "[..........]   0%"},
		{5, 10, "[#####.....]  50%"},
		{10, 10, "[##########] 100%"},
		{20, 10, "[##########] 100%"},
		{1, 0, ""},
	} {
		if got := Gauge(c.done, c.total, 10); got != c.want {
			t.Errorf("Gauge(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
}
