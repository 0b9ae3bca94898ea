package watcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A subfolder of the inbox that is a symbolic link is refused at start-up,
// naming it: the watcher would write through it to wherever it leads.
func TestNewRefusesLinkedFolders(t *testing.T) {
	for _, sub := range []string{ProcessingDir, DoneDir, FailedDir} {
		t.Run(sub, func(t *testing.T) {
			inbox, elsewhere := t.TempDir(), t.TempDir()
			if err := os.Symlink(elsewhere, filepath.Join(inbox, sub)); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{Dir: inbox})
			if err == nil {
				t.Fatalf("New accepted %s/ as a link to %s", sub, elsewhere)
			}
			if !strings.Contains(err.Error(), sub) {
				t.Errorf("the error does not name the folder %s: %v", sub, err)
			}
		})
	}
}

// The lock file is not created or opened through a planted link.
func TestLockRefusesLink(t *testing.T) {
	inbox, elsewhere := t.TempDir(), t.TempDir()
	target := filepath.Join(elsewhere, "created-through-the-link")
	if err := os.Symlink(target, filepath.Join(inbox, lockName)); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockDir(inbox)
	if err == nil {
		unlock()
	}
	if _, serr := os.Lstat(target); serr == nil {
		t.Fatalf("lockDir created %s through the link (err %v)", target, err)
	}
	if err == nil {
		t.Fatal("lockDir accepted a lock file that is a link")
	}
}
