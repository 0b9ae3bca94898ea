package watcher

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"skuflow/internal/retry"
)

// The inbox is written by whoever drops files in it, so the watcher trusts
// no name in it: every file operation goes through an os.Root on the inbox,
// which never resolves a path to somewhere outside it, and every file the
// watcher writes is created afresh (O_EXCL, under a random name) and then
// renamed into place, so a link planted under a name the watcher writes is
// replaced, never written through.

// openSubfolders creates the inbox's subfolders, and refuses one that is a
// symbolic link or not a folder.
func openSubfolders(root *os.Root) error {
	for _, d := range []string{ProcessingDir, DoneDir, FailedDir} {
		if err := root.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("inbox: create %s/: %w", d, err)
		}
		st, err := root.Lstat(d)
		if err != nil {
			return fmt.Errorf("inbox: %s/: %w", d, err)
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			to, _ := root.Readlink(d)
			return fmt.Errorf("inbox %s: %s/ is a symbolic link (to %s); the watcher writes nothing through links: make %s/ a plain folder", root.Name(), d, to, d)
		case !st.IsDir():
			return fmt.Errorf("inbox %s: %s/ is not a folder", root.Name(), d)
		}
	}
	return nil
}

// writeFile writes data as dir/name in the inbox: to a new file with a
// random name beside it, then renamed over name. A crash never leaves half
// a file, and a link planted at either name is not followed.
func (w *Watcher) writeFile(dir, name string, data []byte) error {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never fails
	tmp := path.Join(dir, ".skuflow-"+hex.EncodeToString(rnd[:])+".tmp")
	f, err := w.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = w.writeData(f, data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.root.Rename(tmp, path.Join(dir, name))
	}
	if err != nil {
		_ = w.root.Remove(tmp)
		return fmt.Errorf("write %s: %w", path.Join(dir, name), err)
	}
	return nil
}

// writeAll is how writeFile writes its data; tests replace it to make the
// disk look full.
func writeAll(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}

// OutsideError is the reason a link in the inbox is filed in failed/
// unread: where it leads is outside the inbox.
type OutsideError struct {
	Name string // the link, as named in the inbox
	To   string // where it resolves, as far as can be told
}

func (e *OutsideError) Error() string {
	return fmt.Sprintf("%s resolves to %s, outside the inbox: not read", e.Name, e.To)
}

// target returns what the entry at p (relative to the inbox) stands for,
// relative to the inbox: p itself unless it is a symbolic link. A link is
// read as it was made in the inbox, also once it is moved to processing/: a
// relative target from the inbox folder, an absolute one only if it names
// a place inside the inbox. Links inside the target are resolved by the
// os.Root, which refuses those that leave the inbox.
func (w *Watcher) target(p string) (string, error) {
	st, err := w.root.Lstat(p)
	if err != nil {
		return "", err
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		return p, nil
	}
	to, err := w.root.Readlink(p)
	if err != nil {
		return "", err
	}
	rel, ok := filepath.Clean(to), true
	if filepath.IsAbs(to) {
		rel, ok = w.within(to)
	}
	if !ok || rel == ".." || strings.HasPrefix(rel, "../") {
		if !filepath.IsAbs(to) {
			to = filepath.Join(w.abs, to)
		}
		return "", &OutsideError{Name: path.Base(p), To: resolved(to)}
	}
	return filepath.ToSlash(rel), nil
}

// within returns abs relative to the inbox, if it names a place inside it
// (as the inbox was named, or as its own links resolve).
func (w *Watcher) within(abs string) (string, bool) {
	for _, base := range []string{w.abs, w.real} {
		if rel, err := filepath.Rel(base, abs); err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return rel, true
		}
	}
	return "", false
}

// resolved is where p leads, for messages: p itself when that cannot be
// told.
func resolved(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// openInput opens a claimed file for reading, and only if what it resolves
// to is a regular file inside the inbox. The file is read through the
// returned descriptor (see readPath), so a link swapped in after this check
// is never followed.
func (w *Watcher) openInput(name string) (f *os.File, rel string, err error) {
	rel, err = w.target(path.Join(ProcessingDir, name))
	if err != nil {
		return nil, "", err
	}
	// O_NONBLOCK: a FIFO swapped in must not hang the open.
	f, err = w.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if to := resolved(filepath.Join(w.abs, rel)); !w.inside(to) {
			return nil, "", &OutsideError{Name: name, To: to}
		}
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s)", name, st.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, "", err
	}
	return f, rel, nil
}

// inside reports whether an absolute path is the inbox or inside it.
func (w *Watcher) inside(abs string) bool {
	_, ok := w.within(abs)
	return ok || abs == w.abs || abs == w.real
}

// keep writes a file of the watcher's own (a note, a companion), retrying
// with backoff until it works or ctx ends. Failing to write it, for a full
// disk (ENOSPC, EDQUOT) or any other reason, is never the fault of the file
// it is about: that file stays where it is meanwhile, and each failure is
// logged with its reason.
func (w *Watcher) keep(ctx context.Context, log *slog.Logger, dir, name string, data []byte) error {
	return retry.Forever(ctx, w.backoff, log, "write "+path.Join(dir, name)+" (the file it is about is not at fault and waits)",
		func(error) bool { return true },
		func(context.Context) error { return w.writeFile(dir, name, data) })
}

// maxName is the longest name, in bytes, that common file systems take.
const maxName = 255

// fit returns name if extra more bytes still make a legal name; else name
// shortened: its start, a hash of the whole name (so that two long names
// stay apart) and its extension, extra bytes short of maxName.
func fit(name string, extra int) string {
	if len(name)+extra <= maxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	mark := "~" + hex.EncodeToString(sum[:8])
	ext := filepath.Ext(name)
	if len(ext) > 16 {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	keep := max(min(maxName-extra-len(mark)-len(ext), len(stem)), 0)
	for keep > 0 && keep < len(stem) && !utf8.RuneStart(stem[keep]) {
		keep-- // do not cut a character in two
	}
	return stem[:keep] + mark + ext
}
