package watcher

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// openInput opens a claimed link only if it resolves to a regular file
// inside the inbox, however the link gets there, and the file the producer
// reads (readPath) is the one checked, even if the link is swapped after.
func TestOpenInputStaysInside(t *testing.T) {
	inbox, outside := t.TempDir(), t.TempDir()
	w, err := New(Options{Dir: inbox})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write := func(p, body string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(to, name string) {
		t.Helper()
		if err := os.Symlink(to, filepath.Join(inbox, ProcessingDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(outside, "secret"), "secret")
	write(filepath.Join(inbox, ".inside"), "inside")
	if err := os.Symlink(outside, filepath.Join(inbox, ".dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(inbox, ".hop")); err != nil {
		t.Fatal(err)
	}
	link(filepath.Join(outside, "secret"), "absolute")
	link("../"+filepath.Base(outside)+"/secret", "relative")
	link(".dir/secret", "through-a-folder-link")
	link(".hop", "through-a-link")
	link("/proc/self/environ", "environ")
	link(".", "the-inbox")
	link(filepath.Join(inbox, ".inside"), "inside-absolute")
	link(".inside", "inside-relative")

	for _, name := range []string{"absolute", "relative", "through-a-folder-link", "through-a-link", "environ", "the-inbox"} {
		f, _, err := w.openInput(name)
		if err == nil {
			f.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		var out *OutsideError
		if name != "the-inbox" && !errors.As(err, &out) {
			t.Errorf("%s: %v, want an OutsideError", name, err)
		}
	}
	for _, name := range []string{"inside-absolute", "inside-relative"} {
		f, rel, err := w.openInput(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// The file is swapped for a link outside after the check: the
		// producer still reads the file that was checked.
		p := filepath.Join(inbox, ".inside")
		if err := os.Rename(p, p+".checked"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(outside, "secret"), p); err != nil {
			t.Fatal(err)
		}
		r, err := os.Open(w.readPath(f, rel))
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".checked", p); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		f.Close()
		if string(got) != "inside" {
			t.Errorf("%s: the producer would read %q", name, got)
		}
	}
}
