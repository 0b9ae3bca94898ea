package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// DuckDB runs each statement in one in-memory DuckDB (npm's
// @duckdb/node-api through deploy/duckdb/query.mjs, which `make deps`
// installs) and returns each one's rows, as DuckDB writes them in JSON:
// column name to value, with big integers as strings. The test fails if
// DuckDB is not installed or a statement fails.
func DuckDB(t testing.TB, statements ...string) [][]map[string]any {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "deploy", "duckdb")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("DuckDB is not installed in %s: run 'make deps' (deploy/stack.sh install)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("DuckDB needs Node.js: node is not on the PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "query.mjs")}, statements...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("duckdb: %v\n%s", err, stderr.String())
	}
	var out [][]map[string]any
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	for sc.Scan() {
		var rows []map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rows); err != nil {
			t.Fatalf("duckdb: %v in %.200q", err, sc.Text())
		}
		out = append(out, rows)
	}
	if len(out) != len(statements) {
		t.Fatalf("duckdb answered %d of %d statements\n%s", len(out), len(statements), stderr.String())
	}
	return out
}
