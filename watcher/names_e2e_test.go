package watcher_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"skuflow/internal/testenv"
)

// renameIn writes body under a hidden name in the inbox and renames it to
// name, as a careful user would.
func renameIn(t *testing.T, inbox, name, body string) {
	t.Helper()
	tmp := filepath.Join(inbox, ".incoming")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a rename a tick after the last write
	if err := os.Rename(tmp, filepath.Join(inbox, name)); err != nil {
		t.Fatal(err)
	}
}

// hiddenIn lists the hidden names in dir.
func hiddenIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// A file whose name is as long as the system allows (253 bytes here) is
// loaded and filed like any other, twice under the same name.
func TestWatchLongName(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, inboxEnv...)

	name := strings.Repeat("n", 246) + ".ndjson"
	renameIn(t, inbox, name, `{"sku":"long-1","name":"long"}`+"\n")
	waitFiled(t, inbox, 1, time.Minute)
	renameIn(t, inbox, name, `{"sku":"long-2","name":"long"}`+"\n")
	waitFiled(t, inbox, 2, time.Minute)

	done := names(t, filepath.Join(inbox, "done"))
	var files, companions int
	for _, n := range done {
		if strings.HasSuffix(n, ".job.json") {
			companions++
		} else {
			files++
		}
	}
	if files != 2 || companions != 2 {
		t.Errorf("done/ holds %v, want both files each with its job; log:\n%s", done, w.Log(30))
	}
	if _, err := os.Stat(filepath.Join(inbox, "done", name)); err != nil {
		t.Errorf("the first file is not in done/ under its name: %v", err)
	}
	if left := append(names(t, filepath.Join(inbox, "processing")), hiddenIn(t, filepath.Join(inbox, "processing"))...); len(left) != 0 {
		t.Errorf("processing/ still holds %v", left)
	}
	s.WaitCount(t, "SELECT count() FROM skuflow.products FINAL WHERE sku IN ('long-1', 'long-2')", 2, time.Minute)
}

// A file whose modification time is in the future (a clock ahead on the
// machine that wrote it) is taken once it stops changing, not never.
func TestWatchFutureModTime(t *testing.T) {
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	inbox := t.TempDir()
	w := s.Watcher(t, inbox, inboxEnv...)

	p := filepath.Join(inbox, "future.ndjson")
	if err := os.WriteFile(p, []byte(`{"sku":"future-1","name":"f"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	waitFiled(t, inbox, 1, 30*time.Second)
	if _, err := os.Stat(filepath.Join(inbox, "done", "future.ndjson")); err != nil {
		t.Errorf("not done: %v; log:\n%s", err, w.Log(20))
	}
}

// The inbox's disk is full when the watcher writes a file's note: the file
// is not at fault, so it stays in processing/ and is tried again, saying
// why, and loads once there is room.
func TestWatchNoSpaceForNote(t *testing.T) {
	inbox := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", inbox).CombinedOutput(); err != nil {
		t.Skipf("this test needs to mount a small tmpfs (as root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", inbox).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", inbox, err, out)
		}
	})
	s := testenv.NewStack(t)
	s.Service(t, "processor")
	s.Service(t, "aggregator")
	w := s.Watcher(t, inbox, inboxEnv...)

	// The input is written, then the disk filled to the last byte, then
	// the input renamed in: claiming it needs no room, its note does.
	in := filepath.Join(inbox, ".in")
	if err := os.WriteFile(in, []byte(`{"sku":"full-1","name":"full"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(inbox, ".filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	if err := os.Rename(in, filepath.Join(inbox, "full.ndjson")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if got := names(t, filepath.Join(inbox, "failed")); len(got) != 0 {
		t.Fatalf("failed/ holds %v: a full disk is not the file's fault", got)
	}
	if !w.LogContains("no space left on device") {
		t.Errorf("the log does not say why the file waits:\n%s", w.Log(20))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFiled(t, inbox, 1, time.Minute)
	if _, err := os.Stat(filepath.Join(inbox, "done", "full.ndjson")); err != nil {
		t.Errorf("not done once there was room: %v; failed %v; log:\n%s", err, names(t, filepath.Join(inbox, "failed")), w.Log(30))
	}
}
