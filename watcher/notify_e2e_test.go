package watcher_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// With a quiet period of an hour, only the file system's events can make a
// file complete: a file renamed in is taken at once, a file written in place
// waits.
func TestWatchRenamedInTakenAtOnce(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, "SKUFLOW_WATCH_QUIET_PERIOD=1h", "SKUFLOW_WATCH_POLL_INTERVAL=100ms")

	if err := os.WriteFile(filepath.Join(inbox, "in-place.ndjson"), []byte(`{"sku":"p-1","name":"p"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	renameIn(t, inbox, "renamed.ndjson", `{"sku":"r-1","name":"r"}`+"\n")
	waitFiled(t, inbox, 1, 30*time.Second)
	if _, err := os.Stat(filepath.Join(inbox, "done", "renamed.ndjson")); err != nil {
		t.Fatalf("the renamed file is not done: %v; log:\n%s", err, w.Log(20))
	}
	time.Sleep(time.Second)
	if _, err := os.Stat(filepath.Join(inbox, "in-place.ndjson")); err != nil {
		t.Errorf("the file written in place was taken before its quiet period: %v", err)
	}
}
