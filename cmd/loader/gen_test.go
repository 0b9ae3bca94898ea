package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// gen runs `loader gen` in-process and returns what it wrote to stderr.
func gen(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runGen(context.Background(), args, stdio{out: &stdout, err: &stderr})
	return stderr.String(), err
}

// genStats runs gen with --json and decodes the stats it prints.
func genStats(t *testing.T, args ...string) map[string]int64 {
	t.Helper()
	out, err := gen(t, append(args, "--json")...)
	if err != nil {
		t.Fatalf("gen %v: %v", args, err)
	}
	var st map[string]int64
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("gen %v --json printed %q: %v", args, out, err)
	}
	return st
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestGenProducts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.ndjson")
	st := genStats(t, "--rows", "500", "--dup-rate", "0.1", "--rename-rate", "0.1", "--out", path)
	skus := map[string]bool{}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		var p struct{ Sku string }
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("line %d: %v", lines+1, err)
		}
		skus[p.Sku] = true
		lines++
	}
	if int64(lines) != st["rows"] || st["rows"] != 500 || int64(len(skus)) != st["distinct_skus"] {
		t.Fatalf("file has %d rows and %d skus, stats %v", lines, len(skus), st)
	}
}

func TestGenEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.json")
	st := genStats(t, "--type", "events", "--rows", "800", "--dup-rate", "0.1", "--update-rate", "0.1", "--out", path)
	var file struct {
		Records []struct{ ID, Data, TS string }
	}
	if err := json.Unmarshal(readFile(t, path), &file); err != nil {
		t.Fatalf("events file: %v", err)
	}
	keys := map[[2]string]bool{}
	for _, r := range file.Records {
		keys[[2]string{r.ID, r.TS}] = true
	}
	if int64(len(file.Records)) != st["rows"] || st["rows"] != 800 || int64(len(keys)) != st["distinct_keys"] ||
		st["repeated_rows"] == 0 || st["updated_rows"] == 0 {
		t.Fatalf("file has %d rows and %d keys, stats %v", len(file.Records), len(keys), st)
	}
}

func TestGenPlays(t *testing.T) {
	// No extension: plays default to CSV.
	path := filepath.Join(t.TempDir(), "plays")
	st := genStats(t, "--type", "plays", "--rows", "900", "--songs", "20", "--days", "3", "--out", path)
	rows, err := csv.NewReader(bytes.NewReader(readFile(t, path))).ReadAll()
	if err != nil {
		t.Fatalf("plays file: %v", err)
	}
	if strings.Join(rows[0], ",") != "song,date,plays" {
		t.Fatalf("header %v", rows[0])
	}
	groups := map[[2]string]bool{}
	var total int64
	for _, r := range rows[1:] {
		n, err := strconv.ParseInt(r[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		groups[[2]string{r[0], r[1]}] = true
	}
	if int64(len(rows)-1) != st["rows"] || st["rows"] != 900 || int64(len(groups)) != st["distinct_groups"] ||
		st["distinct_groups"] != 60 || total != st["total_plays"] {
		t.Fatalf("file has %d rows, %d groups, %d plays; stats %v", len(rows)-1, len(groups), total, st)
	}

	// Without --json, one line says what was written.
	out, err := gen(t, "--type", "plays", "--rows", "900", "--out", filepath.Join(t.TempDir(), "p.csv"))
	if err != nil || !strings.HasPrefix(out, "wrote 900 play rows (") || !strings.Contains(out, "plays in all") {
		t.Fatalf("summary %q, %v", out, err)
	}
}

func TestGenRejectsFlagsOfOtherTypes(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "events", "--rename-rate", "0.1"}, "--rename-rate does not apply to --type events"},
		{[]string{"--type", "events", "--names", "5"}, "--names does not apply to --type events"},
		{[]string{"--type", "plays", "--dup-rate", "0.1"}, "--dup-rate does not apply to --type plays"},
		{[]string{"--songs", "5"}, "--songs does not apply to --type products"},
		{[]string{"--update-rate", "0.1"}, "--update-rate does not apply to --type products"},
		{[]string{"--type", "products", "--days", "3"}, "--days does not apply to --type products"},
		{[]string{"--type", "orders"}, `unknown --type "orders"`},
	} {
		out := filepath.Join(t.TempDir(), "x.ndjson")
		_, err := gen(t, append(c.args, "--out", out)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gen %v: %v, want a usage error saying %q", c.args, err, c.want)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("gen %v wrote %s despite the usage error", c.args, out)
		}
	}
}
