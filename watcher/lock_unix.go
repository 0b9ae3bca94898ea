//go:build unix

package watcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockName is the file in the inbox a running watcher holds locked.
const lockName = ".skuflow-watch.lock"

// lockDir makes sure one watcher at a time owns the folder: two would each
// take up the other's claims as abandoned.
func lockDir(dir string) (unlock func(), err error) {
	// O_NOFOLLOW: a link planted under the lock's name must not make the
	// watcher create or open a file elsewhere.
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("inbox lock %s is a symbolic link; the watcher opens nothing through links: remove it", filepath.Join(dir, lockName))
		}
		return nil, fmt.Errorf("inbox lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("inbox %s is watched by another process already (lock %s): %w", dir, lockName, err)
	}
	return func() { f.Close() }, nil
}
