package watcher

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"skuflow/internal/retry"
)

// Every name the watcher makes from a file's name is legal, however long
// the file's name, and two long names make two names.
func TestFitNames(t *testing.T) {
	long := strings.Repeat("n", 246) + ".ndjson"
	utf := strings.Repeat("é", 126) + ".csv" // 256 bytes, cut between bytes of a rune would be invalid
	for _, name := range []string{"p.csv", long, long[:250] + "x.ndjson", utf[:255-4] + ".csv", strings.Repeat("z", 255)} {
		for _, made := range []string{noteName(name), fit(name, len(".job.json")) + ".job.json", fit("20261130T042122Z-c7fa77be0c53-"+name, 0)} {
			if len(made) > maxName || !utf8.ValidString(made) {
				t.Errorf("from %d bytes %q: made %d bytes %q", len(name), name, len(made), made)
			}
		}
	}
	if noteName("p.csv") != ".p.csv.job" {
		t.Errorf("a short name's note is %q", noteName("p.csv"))
	}
	a, b := long, strings.Repeat("n", 245)+"m.ndjson"
	if noteName(a) == noteName(b) {
		t.Errorf("two long names share the note %q", noteName(a))
	}
	if got := fit(a, 10); !strings.HasSuffix(got, ".ndjson") || !strings.HasPrefix(got, "nnnn") {
		t.Errorf("fit lost the name's start or extension: %q", got)
	}
}

// A full disk (ENOSPC, EDQUOT) while the watcher writes its own file is
// retried, with a log line saying why, until the write works.
func TestKeepRetriesWhileDiskFull(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		t.Run(errno.Error(), func(t *testing.T) {
			inbox := t.TempDir()
			var logged bytes.Buffer
			w, err := New(Options{Dir: inbox, Log: slog.New(slog.NewTextHandler(&logged, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.backoff = retry.Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond}
			fails := 3
			w.writeData = func(f *os.File, data []byte) error {
				if fails > 0 {
					fails--
					return &os.PathError{Op: "write", Path: f.Name(), Err: errno}
				}
				return writeAll(f, data)
			}
			if err := w.keep(context.Background(), w.o.Log, ProcessingDir, ".x.job", []byte("id\n")); err != nil {
				t.Fatalf("keep gave up: %v", err)
			}
			if got, err := os.ReadFile(filepath.Join(inbox, ProcessingDir, ".x.job")); err != nil || string(got) != "id\n" {
				t.Fatalf("the note holds %q (%v)", got, err)
			}
			if n := strings.Count(logged.String(), errno.Error()); n != 3 {
				t.Errorf("%d log lines name %q, want 3:\n%s", n, errno.Error(), logged.String())
			}
			entries, _ := os.ReadDir(filepath.Join(inbox, ProcessingDir))
			if len(entries) != 1 {
				t.Errorf("processing/ holds %d entries, want the note alone (temporary files left behind?)", len(entries))
			}

			// Stopping the watcher ends the retries, with the error.
			w.writeData = func(f *os.File, data []byte) error { return errno }
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := w.keep(ctx, w.o.Log, ProcessingDir, ".y.job", []byte("id\n")); !errors.Is(err, errno) {
				t.Errorf("keep after the watcher stopped returned %v, want %v", err, errno)
			}
		})
	}
}
