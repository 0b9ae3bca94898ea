package main_test

import (
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// loader check compares every aggregate with the same count or sum over
// its type's rows FINAL: exact after real pushes (a count and a sum), and
// a partial result written behind the aggregator's back is found, named
// by its group, with exit 1.
func TestCheckAggregates(t *testing.T) {
	st, _ := typesStack(t, "processor", "aggregator")
	dir := t.TempDir()
	pushType(t, st, "products", testenv.Gen(t, dir, "p.ndjson", "--rows", "20000", "--rename-rate", "0.2", "--dup-rate", "0.1", "--names", "500"))
	pushType(t, st, "plays", testenv.Gen(t, dir, "plays.csv", "--type", "plays", "--rows", "5000", "--songs", "40"))

	out, stderr, code := run(t, st.Env, nil, "check")
	if code != 0 || !strings.Contains(out, "products_agg: exact: ") || !strings.Contains(out, "plays_by_song_date: exact: ") {
		t.Fatalf("check after the pushes: exit %d\n%s\n%s", code, out, stderr)
	}
	if out, _, code := run(t, st.Env, nil, "check", "--type", "events"); code != 0 || !strings.Contains(out, "no aggregate is declared") {
		t.Fatalf("check --type events: exit %d\n%s", code, out)
	}

	// A count nobody's records make, and one more for a real name.
	name := st.CH.Query(t, "SELECT name FROM skuflow.products_agg ORDER BY name LIMIT 1")
	st.CH.Query(t, "INSERT INTO skuflow.product_counts (partition, name, count, version) VALUES "+
		"(0, 'bogus \"one\"', 3, 18446744073709551615), (5, '"+strings.ReplaceAll(name, "'", `\'`)+"', 1000000, 18446744073709551615)")
	out, stderr, code = run(t, st.Env, nil, "check", "--type", "products")
	if code != 1 || !strings.Contains(out, "products_agg: 2 of its groups differ from products FINAL") ||
		!strings.Contains(out, `name="bogus \"one\"": products_agg 3, products FINAL 0`) {
		t.Fatalf("check after a count written behind the aggregator: exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out, "plays") {
		t.Fatalf("check --type products checked plays:\n%s", out)
	}
	// One shown, the other counted.
	if out, _, code := run(t, st.Env, nil, "check", "--type", "products", "--show", "1"); code != 1 ||
		strings.Count(out, ": products_agg ") != 1 || !strings.Contains(out, "... and 1 more (--show)") {
		t.Fatalf("check --show 1: exit %d\n%s", code, out)
	}
	t.Logf("loader check:\n%s", out)
}
