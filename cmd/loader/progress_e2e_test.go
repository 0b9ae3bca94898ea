package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A push whose stderr is not a terminal draws no bar but logs a progress
// line at intervals, with the records so far, while --json keeps its
// summary on stdout. The push reads stdin, which the test holds open, so
// the push is still running when the lines are looked for.
func TestPushLogsProgressWhenNotOnATerminal(t *testing.T) {
	st := testenv.NewStack(t)
	// With its format named, the reader takes records as they come.
	cmd := loaderCmd(t, st.Env, "push", "--json", "--format", "ndjson", "--progress-interval", "200ms", "-")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitLine := func(counts string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !strings.Contains(stderr.String(), counts) {
			if time.Now().After(deadline) {
				in.Close()
				t.Fatalf("no progress line with %s after a minute; stderr:\n%s", counts, stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for i := range 3 {
		fmt.Fprintf(in, `{"sku":"progress-%d","name":"n"}`+"\n", i)
	}
	fmt.Fprintln(in, `{"name":"no sku"}`)
	waitLine("read=4 produced=3 rejected=1")
	fmt.Fprintln(in, `{"sku":"progress-3","name":"n"}`)
	waitLine("read=5 produced=4 rejected=1")
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("push: %v\n%s", err, stderr.String())
	}
	var line string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "msg=progress") {
			line = l
		}
	}
	for _, want := range []string{"level=INFO", "source=-", "mb_per_s=", "elapsed="} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q has no %s", line, want)
		}
	}
	if strings.Contains(line, "percent=") {
		t.Errorf("progress line %q gives a percentage of an input of unknown size", line)
	}
	if strings.Contains(stderr.String(), "\033[") {
		t.Errorf("terminal codes in a stderr that is no terminal:\n%q", stderr.String())
	}
	var sum pushSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || !sum.OK || len(sum.Results) != 1 || sum.Results[0].Produced != 4 || sum.Results[0].Rejected != 1 {
		t.Fatalf("summary %s: %v", stdout.String(), err)
	}
}
