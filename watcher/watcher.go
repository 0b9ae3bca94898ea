// Package watcher turns a folder into an inbox: every file that lands in it
// is pushed as a job and moved, with what became of it, to done/ or
// failed/.
//
// A file is claimed by moving it to processing/, with a hidden note of its
// job id beside it, before anything is produced. A watcher that is killed
// finds its claims there on restart: a job that was produced is waited for,
// any other is pushed again from the start. Pushing again is exact, since
// the table keeps the last write per key and the aggregator counts keys,
// not records.
package watcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/internal/kafka"
	"skuflow/internal/retry"
	"skuflow/jobs"
	"skuflow/producer"
)

// The folders inside the inbox.
const (
	ProcessingDir = "processing"
	DoneDir       = "done"
	FailedDir     = "failed"
)

// What the watcher writes beside a file it files: its job in done/, why it
// failed in failed/.
const (
	doneCompanion   = ".job.json"
	failedCompanion = ".error.txt"
)

// Options configure a Watcher.
type Options struct {
	// Dir is the inbox.
	Dir    string
	Pusher *producer.Pusher
	Jobs   *jobs.Store
	// Kafka reads the consumer groups' committed offsets on Topic: a file
	// is done when every one of Groups has passed its job's end.
	Kafka  *kgo.Client
	Groups []string
	Topic  string
	// QuietPeriod is how long a file must go unchanged before it is taken,
	// unless it was renamed into the folder.
	QuietPeriod  time.Duration
	PollInterval time.Duration
	// Parallel bounds the files pushed at once.
	Parallel int
	Log      *slog.Logger
	// Type is the record type of the inbox's files, the type label of
	// its metrics; empty: no metrics are kept.
	Type string
}

// Watcher is a running inbox.
type Watcher struct {
	o     Options
	slots chan struct{}
	// stop ends Run with a reason (a changed topic).
	stop context.CancelCauseFunc
	// root is the inbox: every path the watcher opens, writes or renames
	// is resolved inside it.
	root *os.Root
	// abs and real name the inbox as given (made absolute) and with its
	// links resolved, to tell whether a link's target is inside it.
	abs, real string
	// writeData writes a note's bytes; tests make it fail.
	writeData func(f *os.File, data []byte) error
	// backoff paces retries of the watcher's own writes.
	backoff retry.Backoff
	// ctx is Run's: retries of filing a file stop with it.
	ctx context.Context

	mu       sync.Mutex
	seen     map[string]*seenFile     // files in the inbox, by name
	renamed  map[string]bool          // names created, not written since: see movedSinceWritten
	inflight map[string]chan struct{} // content digests being pushed
	// unclaimed holds names that could not be taken yet, said once.
	unclaimed map[string]bool
	wg        sync.WaitGroup

	// counted is what the last count of each subfolder found (see
	// countFolders); only scan uses it.
	counted map[string]folderCount
}

// fileState is what a scan saw of a file, to tell when it stops changing.
type fileState struct {
	size    int64
	modTime time.Time
}

// seenFile is a file in the inbox as scans saw it.
type seenFile struct {
	state fileState
	// since is when scans first saw state, by this machine's clock: a
	// modification time in the future (a writer's clock ahead) must not
	// keep a file waiting forever.
	since      time.Time
	toldFuture bool
}

// New checks the folder and prepares its subfolders; Close releases it.
func New(o Options) (*Watcher, error) {
	st, err := os.Stat(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("inbox %s is not a folder", o.Dir)
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	root, err := os.OpenRoot(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	if err := openSubfolders(root); err != nil {
		root.Close()
		return nil, err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{
		o:         o,
		slots:     make(chan struct{}, max(o.Parallel, 1)),
		root:      root,
		abs:       abs,
		real:      real,
		writeData: writeAll,
		backoff:   retry.Default,
		ctx:       context.Background(),
		seen:      map[string]*seenFile{},
		renamed:   map[string]bool{},
		unclaimed: map[string]bool{},
		inflight:  map[string]chan struct{}{},
		counted:   map[string]folderCount{},
	}
	w.startMetrics()
	return w, nil
}

// Close releases the inbox.
func (w *Watcher) Close() error { return w.root.Close() }

// Run watches the folder until ctx ends. Files being pushed then are left in
// processing/ and pushed again by the next Run.
func (w *Watcher) Run(ctx context.Context) error {
	unlock, err := lockDir(w.o.Dir)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, w.stop = context.WithCancelCause(ctx)
	defer w.stop(nil)
	w.ctx = ctx
	wake := make(chan struct{}, 1)
	stopNotify := notify(w.o.Dir, func(name string, op fsnotify.Op) {
		// A rename into the folder and a file created in it are both
		// Create; a write after it means the file is still being written.
		if ignored(name) {
			return // never taken: remembering it would only grow the map
		}
		created := op.Has(fsnotify.Create)
		w.mu.Lock()
		switch {
		case created:
			w.renamed[name] = true
		case op.Has(fsnotify.Write) || op.Has(fsnotify.Remove) || op.Has(fsnotify.Rename):
			delete(w.renamed, name)
		}
		w.mu.Unlock()
		if created {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}, w.o.Log)
	defer stopNotify()

	if err := w.resume(ctx); err != nil {
		return err
	}
	t := time.NewTicker(w.o.PollInterval)
	defer t.Stop()
	for {
		if err := w.scan(ctx); err != nil {
			w.o.Log.Error("scan the inbox", "dir", w.o.Dir, "err", err)
		}
		select {
		case <-ctx.Done():
			w.wg.Wait()
			if cause := context.Cause(ctx); errors.Is(cause, kafka.ErrTopicRecreated) || errors.Is(cause, kafka.ErrPartitionCount) {
				return cause
			}
			return nil
		case <-t.C:
		case <-wake:
		}
	}
}

// resume takes up the claims a previous run left in processing/.
func (w *Watcher) resume(ctx context.Context) error {
	entries, err := fs.ReadDir(w.root.FS(), ProcessingDir)
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	for _, e := range entries {
		if ignored(e.Name()) || !(e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0) {
			continue
		}
		name := e.Name()
		id, _ := w.root.ReadFile(w.notePath(name))
		w.o.Log.Info("resuming a file claimed before a restart", "file", name, "job", strings.TrimSpace(string(id)))
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.process(ctx, name, strings.TrimSpace(string(id)))
		}()
	}
	return nil
}

// scan looks at the inbox and claims the files that are complete, oldest
// first, while a push slot is free.
func (w *Watcher) scan(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil // stopping: take nothing new
	}
	entries, err := fs.ReadDir(w.root.FS(), ".")
	if err != nil {
		return err
	}
	now := time.Now()
	type ready struct {
		name string
		mod  time.Time
	}
	var todo []ready
	w.mu.Lock()
	present := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if ignored(name) || !(e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0) {
			continue
		}
		// A symbolic link is taken for the file it points to, if that is
		// a file inside the inbox; any other link is taken at once, to be
		// filed in failed/ unread, saying why.
		info, err := e.Info()
		if err == nil && e.Type()&fs.ModeSymlink != 0 {
			var rel string
			if rel, err = w.target(name); err == nil {
				info, err = w.root.Stat(rel)
			}
			if err != nil || !info.Mode().IsRegular() {
				present[name] = true
				todo = append(todo, ready{name, now})
				continue
			}
		}
		if err != nil {
			continue // gone since the listing
		}
		present[name] = true
		cur := fileState{size: info.Size(), modTime: info.ModTime()}
		sf := w.seen[name]
		unchanged := sf != nil && sf.state == cur
		if sf == nil {
			sf = &seenFile{}
			w.seen[name] = sf
		}
		if !unchanged {
			sf.state, sf.since = cur, now
		}
		if cur.modTime.After(now.Add(w.o.QuietPeriod)) && !sf.toldFuture {
			sf.toldFuture = true
			w.o.Log.Warn("the file's modification time is in the future (the writer's clock is ahead?); it is taken once unchanged for the quiet period by this machine's clock",
				"file", name, "mod_time", cur.modTime, "quiet_period", w.o.QuietPeriod)
		}
		// Complete: renamed in, or unchanged since the last look and not
		// written to for the quiet period (by its modification time, or
		// by what the scans saw).
		quiet := now.Sub(cur.modTime) >= w.o.QuietPeriod || now.Sub(sf.since) >= w.o.QuietPeriod
		if w.renamed[name] && movedSinceWritten(info) || unchanged && quiet {
			todo = append(todo, ready{name, cur.modTime})
		}
	}
	for name := range w.seen {
		if !present[name] {
			delete(w.seen, name)
			delete(w.renamed, name)
			delete(w.unclaimed, name)
		}
	}
	w.mu.Unlock()
	waiting := len(present)
	defer func() { w.countFolders(waiting) }()

	slices.SortFunc(todo, func(a, b ready) int {
		if c := a.mod.Compare(b.mod); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for _, f := range todo {
		select {
		case w.slots <- struct{}{}:
		default:
			return nil // all slots busy: the rest wait for a later scan
		}
		if err := w.claim(f.name); err != nil {
			<-w.slots
			// Said once per file, not at every scan while it waits.
			w.mu.Lock()
			said := w.unclaimed[f.name]
			w.unclaimed[f.name] = true
			w.mu.Unlock()
			if !said {
				w.o.Log.Warn("cannot take a file yet; will try again", "file", f.name, "err", err)
			}
			continue
		}
		waiting--
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.process(ctx, f.name, "")
		}()
	}
	return nil
}

// claim moves a file from the inbox into processing/.
func (w *Watcher) claim(name string) error {
	dst := path.Join(ProcessingDir, name)
	if _, err := w.root.Lstat(dst); err == nil {
		return fmt.Errorf("a file named %s is still being processed", name)
	}
	if err := w.root.Rename(name, dst); err != nil {
		return err
	}
	w.mu.Lock()
	delete(w.seen, name)
	delete(w.renamed, name)
	delete(w.unclaimed, name)
	w.mu.Unlock()
	return nil
}

// process pushes a claimed file as a job and files it in done/ or failed/.
// It holds a push slot, which it gives back once the file is produced:
// waiting for the consumer groups costs nothing. earlier is the job a
// previous run recorded for the file, if any.
func (w *Watcher) process(ctx context.Context, name, earlier string) {
	release := sync.OnceFunc(func() { <-w.slots })
	defer release()
	log := w.o.Log.With("file", name)

	var (
		job *jobs.Job
		err error
	)
	// When Kafka or ClickHouse fails, the file is not at fault: keep it
	// and push it again once they answer.
	for attempt := 1; ; attempt++ {
		job, err = w.push(ctx, name, earlier, log)
		if !errors.Is(err, producer.ErrUnavailable) || ctx.Err() != nil {
			break
		}
		wait := retry.Default.Wait(attempt)
		log.Warn("push failed for want of Kafka or ClickHouse; the file will be pushed again", "job", job.ID, "err", err, "attempt", attempt, "wait", wait)
		earlier = job.ID
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	release()
	if ctx.Err() != nil {
		// Stopping (SIGTERM): not the file's fault. It stays in
		// processing/ and the next run pushes it again.
		log.Info("stopped; the file stays in processing/ and is pushed again on restart")
		return
	}
	if errors.Is(err, kafka.ErrTopicRecreated) || errors.Is(err, kafka.ErrPartitionCount) {
		// Not the file's fault, and not an outage to wait out: the
		// watcher stops with the reason, as the services do.
		log.Error("the topic changed; the watcher stops, and the file stays in processing/ for the next run", "err", err)
		w.stop(err)
		return
	}
	var dup *producer.DuplicateError
	switch {
	case errors.As(err, &dup):
		log.Warn("refused: an earlier job loaded the same content", "earlier_job", dup.Earlier.ID)
		w.fail(name, err.Error()+"\n", log)
		return
	case err != nil:
		log.Error("job failed", "job", job.ID, "err", err)
		msg := err.Error() + "\n"
		if job.ID != "" {
			msg = fmt.Sprintf("job %s failed: %s\nloader status %s and loader errors %s say more.\n", job.ID, err, job.ID, job.ID)
		}
		w.fail(name, msg, log)
		return
	}
	if job.State == jobs.Produced {
		log.Info("produced; waiting until processor and aggregator have it", "job", job.ID,
			"records", job.Produced, "rejected", job.Rejected)
		// Errors here are the broker's or ClickHouse's, and pass: keep
		// trying. If the watcher stops first, the file stays in
		// processing/ with its note and the next run waits again.
		err := retry.Forever(ctx, retry.Default, log, "wait for the consumer groups", func(err error) bool { return !errors.Is(err, jobs.ErrTopicRecreated) },
			func(ctx context.Context) error {
				return jobs.Wait(ctx, w.o.Kafka, w.o.Groups, w.o.Topic, job.TopicID, job.EndOffsets, 500*time.Millisecond, nil)
			})
		if errors.Is(err, jobs.ErrTopicRecreated) {
			// Its records may be gone with the old topic: the job failed,
			// and the file goes to failed/ saying so, to be dropped again.
			job.State, job.Error, job.FinishedAt = jobs.Failed, err.Error(), time.Now()
			if serr := w.o.Jobs.Save(ctx, job); serr != nil {
				log.Warn("record the job as failed", "job", job.ID, "err", serr)
			}
			w.fail(name, fmt.Sprintf("job %s failed: %s\n", job.ID, err), log)
			return
		}
		if err == nil {
			err = retry.Forever(ctx, retry.Default, log, "record the job as done", func(error) bool { return true },
				func(ctx context.Context) error { return w.o.Jobs.MarkDone(ctx, job) })
		}
		if err != nil {
			return
		}
	}
	w.done(name, job, log)
}

// push runs the job of a claimed file, or picks up the one a previous run
// started: a produced or done job is not pushed again.
func (w *Watcher) push(ctx context.Context, name, earlier string, log *slog.Logger) (*jobs.Job, error) {
	if earlier != "" {
		var j *jobs.Job
		err := retry.Forever(ctx, retry.Default, log, "read job "+earlier, func(err error) bool { return !errors.Is(err, jobs.ErrNotFound) },
			func(ctx context.Context) (err error) {
				j, err = w.o.Jobs.Get(ctx, earlier)
				return err
			})
		switch {
		case err == nil && j.Blocks():
			return j, nil
		case err == nil && j.State == jobs.Producing:
			// Its loader was killed mid-file; this run pushes it again.
			j.State, j.Error, j.FinishedAt = jobs.Failed, "interrupted: the watcher stopped while pushing; the file is pushed again", time.Now()
			if err := w.o.Jobs.Save(ctx, j); err != nil {
				log.Warn("record the interrupted job as failed", "job", j.ID, "err", err)
			}
		case err != nil && !errors.Is(err, jobs.ErrNotFound):
			return &jobs.Job{}, err
		}
	}
	// Read only what resolves to a file inside the inbox, through the
	// descriptor that was checked.
	f, rel, err := w.openInput(name)
	if err != nil {
		return &jobs.Job{}, err
	}
	defer f.Close()
	input := w.readPath(f, rel)
	sha, err := producer.HashFile(ctx, input)
	if err != nil {
		return &jobs.Job{}, fmt.Errorf("%s: %w", name, err)
	}
	// The same content twice in the inbox: the second waits for the first,
	// then finds it loaded and is refused.
	unlock, err := w.lockContent(ctx, sha)
	if err != nil {
		return &jobs.Job{}, err
	}
	defer unlock()

	id := jobs.NewID(time.Now())
	// The note is the watcher's own: failing to write it (a full disk)
	// is never the file's fault. keep retries until it works or the
	// watcher stops.
	if err := w.keep(ctx, log, ProcessingDir, noteName(name), []byte(id+"\n")); err != nil {
		return &jobs.Job{}, fmt.Errorf("note the job of %s: %w", name, err)
	}
	src, err := producer.FileSource(input, filepath.Join(w.o.Dir, name))
	if err != nil {
		return &jobs.Job{}, err
	}
	log.Info("pushing", "job", id, "size_bytes", src.Size)
	res, err := w.o.Pusher.Push(ctx, src, producer.PushOptions{Job: id, SHA256: sha})
	w.countPush(res)
	return &res.Job, err
}

// lockContent waits until no other file with the same digest is being
// pushed, then holds the digest until unlock.
func (w *Watcher) lockContent(ctx context.Context, sha string) (unlock func(), err error) {
	for {
		w.mu.Lock()
		busy, ok := w.inflight[sha]
		if !ok {
			ch := make(chan struct{})
			w.inflight[sha] = ch
			w.mu.Unlock()
			return func() {
				w.mu.Lock()
				delete(w.inflight, sha)
				w.mu.Unlock()
				close(ch)
			}, nil
		}
		w.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// done files a loaded file in done/ with its job beside it.
func (w *Watcher) done(name string, job *jobs.Job, log *slog.Logger) {
	body, err := json.MarshalIndent(job, "", "  ")
	if err != nil {
		log.Error("encode the job", "err", err)
		return
	}
	dst, err := w.file(name, DoneDir, doneCompanion, append(body, '\n'), job.ID, log)
	if err != nil {
		log.Error("move the file to done/", "err", err)
		return
	}
	log.Info("done", "job", job.ID, "records", job.Produced, "rejected", job.Rejected, "moved_to", dst)
}

// fail files a file in failed/ with why in a text file beside it.
func (w *Watcher) fail(name, reason string, log *slog.Logger) {
	dst, err := w.file(name, FailedDir, failedCompanion, []byte(reason), time.Now().UTC().Format("20060102T150405Z"), log)
	if err != nil {
		log.Error("move the file to failed/", "err", err)
		return
	}
	log.Info("moved to failed/", "moved_to", dst)
}

// file moves a claimed file to dir, writing its companion (name+suffix)
// first; a name taken there already gets tag in front. Names too long with
// the tag or the suffix are shortened (see fit). Failing to write is the
// environment's fault (a full disk): it is retried until the watcher
// stops, and the file stays in processing/ meanwhile.
func (w *Watcher) file(name, dir, suffix string, companion []byte, tag string, log *slog.Logger) (string, error) {
	dstName := name
	if _, err := w.root.Lstat(path.Join(dir, dstName)); err == nil {
		dstName = fit(tag+"-"+name, 0)
	}
	if err := w.keep(w.ctx, log, dir, fit(dstName, len(suffix))+suffix, companion); err != nil {
		return "", err
	}
	err := retry.Forever(w.ctx, w.backoff, log, "move the file to "+dir+"/; it stays in processing/ meanwhile",
		func(err error) bool { return !errors.Is(err, fs.ErrNotExist) },
		func(context.Context) error {
			return w.root.Rename(path.Join(ProcessingDir, name), path.Join(dir, dstName))
		})
	if err != nil {
		return "", err
	}
	dst := filepath.Join(w.o.Dir, dir, dstName)
	if err := w.root.Remove(w.notePath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("remove the job note", "note", w.notePath(name), "err", err)
	}
	return dst, nil
}

// notePath is the hidden file in processing/ that holds a claim's job id,
// relative to the inbox.
func (w *Watcher) notePath(name string) string {
	return path.Join(ProcessingDir, noteName(name))
}

// noteName is the name of a claim's note in processing/: the file's name,
// shortened if need be, hidden and marked.
func noteName(name string) string { return "." + fit(name, len("..job")) + ".job" }

// ignored reports whether a name is hidden or looks like a file still being
// written under a temporary name.
func ignored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "~") || strings.HasSuffix(name, "~") {
		return true
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".filepart":
		return true
	}
	return false
}
