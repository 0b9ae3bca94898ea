package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// loader sql --tsv writes rows as they arrive: 3,000,000 rows go through
// with the loader's peak RSS far below what holding them would take
// (about 512 MiB before), and the first rows of an endless query come out
// at once.
func TestSQLStreamsTSV(t *testing.T) {
	ch := testenv.ClickHouse(t)
	ch.Query(t, "CREATE DATABASE skuflow") // the default database of loader sql

	cmd := loaderCmd(t, nil, "sql", "--clickhouse", ch.TCPAddr, "--tsv",
		"SELECT number, toString(number) AS s FROM system.numbers LIMIT 3000000")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	peakKiB := samplePeak(cmd.Process.Pid)
	lines, last := 0, ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines++
		last = sc.Text()
	}
	peak := peakKiB() >> 10 // KiB to MiB
	if err := cmd.Wait(); err != nil {
		t.Fatalf("loader sql --tsv: %v\n%s", err, stderr.String())
	}
	if lines != 3000001 || last != "2999999\t2999999" {
		t.Fatalf("%d lines, last %q; want a header and 3,000,000 rows", lines, last)
	}
	t.Logf("peak RSS of loader sql --tsv over 3,000,000 rows: %d MiB", peak)
	if peak > 100 {
		t.Fatalf("peak RSS %d MiB: the rows are held, not streamed", peak)
	}

	// An endless query: the first rows come out while it runs.
	cmd = loaderCmd(t, nil, "sql", "--clickhouse", ch.TCPAddr, "--tsv", "SELECT number FROM system.numbers")
	stdout, err = cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		var got []string
		for range 3 {
			line, _ := r.ReadString('\n')
			got = append(got, line)
		}
		first <- strings.Join(got, "")
		_, _ = io.Copy(io.Discard, r)
	}()
	select {
	case got := <-first:
		if got != "number\n0\n1\n" {
			t.Fatalf("first lines %q", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no row of an endless query after 20 s: rows are not written as they arrive")
	}
}

// The table view is for people: it shows the first 1,000 rows, says so,
// and says how to get them all.
func TestSQLTableShowsFirstRows(t *testing.T) {
	ch := testenv.ClickHouse(t)
	ch.Query(t, "CREATE DATABASE skuflow") // the default database of loader sql
	out, stderr, code := loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "SELECT number FROM system.numbers LIMIT 5000")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1003 || lines[2] != "0" || lines[1001] != "999" {
		t.Fatalf("%d lines, want header, rule, 1,000 rows and a note:\n%s", len(lines), abbreviate(out))
	}
	if want := "(showing the first 1,000 rows; there are more: --tsv prints them all, --max-rows shows more)"; lines[1002] != want {
		t.Fatalf("note %q, want %q", lines[1002], want)
	}
	// Fewer rows than the bound: all of them, counted as before.
	out, _, code = loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "--max-rows", "10", "SELECT number FROM system.numbers LIMIT 10")
	if code != 0 || !strings.HasSuffix(out, "9\n(10 rows)\n") {
		t.Fatalf("10 rows with --max-rows 10: exit %d, %q", code, abbreviate(out))
	}
	// An endless query in the table view ends after the rows it shows.
	out, stderr, code = loader(t, nil, "sql", "--clickhouse", ch.TCPAddr, "--max-rows", "3", "SELECT number FROM system.numbers")
	if code != 0 || out != "number\n------\n0\n1\n2\n(showing the first 3 rows; there are more: --tsv prints them all, --max-rows shows more)\n" {
		t.Fatalf("endless query, --max-rows 3: exit %d, %q %s", code, abbreviate(out), stderr)
	}
}

func abbreviate(s string) string {
	if len(s) > 300 {
		return s[:150] + " ... " + s[len(s)-150:]
	}
	return s
}

// samplePeak follows the peak resident set of process pid (VmHWM) every
// 5 ms until the returned function is called, which returns it in KiB.
// It reads the child's own high-water mark while it runs: wait4's
// ru_maxrss also counts the test process's memory, which the child shares
// between fork and exec (a large test binary failed a test with 599 MiB).
// Call it before waiting for the process: after, it is gone.
func samplePeak(pid int) (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kb := vmHWM(pid); kb > peak.Load() {
				peak.Store(kb)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(done)
		<-sampled
		return peak.Load()
	}
}

// vmHWM returns a process's peak resident set in KiB, or 0 once it is gone.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
