// Command latency measures how soon one record is in ClickHouse, on a
// running stack (processor and aggregator up and caught up), two ways:
//
//   - push: `loader push --wait` of a file of one record, from the command's
//     start to its exit (the loader returns once both consumer groups have
//     committed past the record);
//   - api:  POST /v1/records/products of one record, from the request to
//     the record visible in `products FINAL` (asked over ClickHouse's HTTP
//     interface every 2 ms).
//
// Runs are -pause apart, so that each record comes to a quiet pipeline as
// a user's one record does. Records that follow one another closer than
// the services' flush_interval/10 (100 ms) are written that far apart
// (consume.EagerDue): with the API, the same runs are also made back to
// back ("api_back_to_back"), which measures that spacing.
//
// Each record is new (its own sku), so no push is refused as a repeat. It
// prints the durations and their p50 and p99 as JSON.
//
//	latency -loader bin/loader -api http://127.0.0.1:18080 -clickhouse http://127.0.0.1:18123 -runs 20
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	loader := flag.String("loader", "bin/loader", "the loader binary")
	api := flag.String("api", "", "the API's base URL (empty: no API runs)")
	chHTTP := flag.String("clickhouse", "http://127.0.0.1:18123", "ClickHouse's HTTP interface")
	db := flag.String("database", "skuflow", "the database")
	runs := flag.Int("runs", 20, "records per way")
	dir := flag.String("dir", os.TempDir(), "where the one-record files are written")
	pause := flag.Duration("pause", 300*time.Millisecond, "the quiet time before each run")
	flag.Parse()
	out := map[string]any{}
	push, err := pushes(*loader, *dir, *runs, *pause)
	if err != nil {
		fail(err)
	}
	out["push"] = summary(push)
	if *api != "" {
		for way, p := range map[string]time.Duration{"api": *pause, "api_back_to_back": 0} {
			posts, err := posts(*api, *chHTTP, *db, *runs, p)
			if err != nil {
				fail(err)
			}
			out[way] = summary(posts)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "latency:", err)
	os.Exit(1)
}

// sku is a new sku for run i.
func sku(way string, i int) string {
	return fmt.Sprintf("latency-%s-%d-%d", way, time.Now().UnixNano(), i)
}

func record(s string) []byte {
	b, _ := json.Marshal(map[string]string{"sku": s, "name": "latency probe", "description": "one record, timed"})
	return b
}

func pushes(loader, dir string, runs int, pause time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	for i := range runs {
		time.Sleep(pause)
		f := filepath.Join(dir, fmt.Sprintf("latency-%d.ndjson", i))
		if err := os.WriteFile(f, append(record(sku("push", i)), '\n'), 0o644); err != nil {
			return nil, err
		}
		start := time.Now()
		cmd := exec.Command(loader, "push", "--wait", "--no-progress", f)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("push %s: %v: %s", f, err, stderr.String())
		}
		out = append(out, time.Since(start))
		_ = os.Remove(f)
	}
	return out, nil
}

func posts(api, chHTTP, db string, runs int, pause time.Duration) ([]time.Duration, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	var out []time.Duration
	for i := range runs {
		time.Sleep(pause)
		s := sku("api", i)
		start := time.Now()
		resp, err := client.Post(strings.TrimSuffix(api, "/")+"/v1/records/products", "application/json", bytes.NewReader(record(s)))
		if err != nil {
			return nil, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("POST /v1/records/products: %s: %s", resp.Status, body)
		}
		if err := visible(client, chHTTP, db, s, time.Minute); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// visible waits until sku is in products FINAL (a lookup by the sorting
// key: one granule read).
func visible(client *http.Client, chHTTP, db, sku string, timeout time.Duration) error {
	q := url.Values{"query": {fmt.Sprintf("SELECT count() FROM %s.products FINAL WHERE sku = '%s'", db, sku)}}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, chHTTP+"/?"+q.Encode(), nil)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.TrimSpace(string(b)) == "1" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not in products FINAL after %s", sku, timeout)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func summary(ds []time.Duration) map[string]any {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d.Microseconds()) / 1000
	}
	sorted := slices.Clone(ms)
	slices.Sort(sorted)
	// Nearest rank: p99 of 20 runs is the slowest.
	rank := func(p float64) float64 {
		i := int(float64(len(sorted))*p+0.999999) - 1
		return sorted[max(min(i, len(sorted)-1), 0)]
	}
	return map[string]any{"runs_ms": ms, "p50_ms": rank(0.50), "p99_ms": rank(0.99)}
}
