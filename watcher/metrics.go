package watcher

import (
	"io/fs"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"skuflow/internal/metrics"
	"skuflow/jobs"
	"skuflow/producer"
)

// Metrics are the collectors a watcher updates, for metrics.Register.
func Metrics() []prometheus.Collector {
	return []prometheus.Collector{metrics.InboxFiles, metrics.PushDuration, metrics.RecordsProduced, metrics.RecordsRejected}
}

// The folder label of metrics.InboxFiles for the inbox itself; the others
// are the subfolders' names.
const waitingFolder = "waiting"

// recountEvery bounds how long a subfolder's count is kept while its
// modification time stays the same (see countFolders).
const recountEvery = time.Minute

// folderCount is what a count of a subfolder found.
type folderCount struct {
	mod time.Time // the folder's modification time then
	at  time.Time // when it was counted
	n   int
}

// startMetrics gives every series of the inbox's type a value from the
// start, so that a rate over them has data before the first file.
func (w *Watcher) startMetrics() {
	if w.o.Type == "" {
		return
	}
	metrics.RecordsProduced.WithLabelValues(w.o.Type)
	for _, stage := range []string{"decode", "validate"} {
		metrics.RecordsRejected.WithLabelValues(w.o.Type, stage)
	}
	metrics.PushDuration.WithLabelValues(w.o.Type)
}

// countFolders sets the inbox's gauges at the end of a scan: waiting is
// what it left in the inbox. The subfolders are listed again only when
// their modification time (which every name added or removed moves) has
// changed, so that a done/ of many thousand files costs a stat per scan;
// a count taken within a moment of that time is not trusted (a coarse
// clock may not have moved since), nor one older than recountEvery.
func (w *Watcher) countFolders(waiting int) {
	if w.o.Type == "" {
		return
	}
	metrics.InboxFiles.WithLabelValues(w.o.Type, waitingFolder).Set(float64(waiting))
	now := time.Now()
	for _, dir := range []string{ProcessingDir, DoneDir, FailedDir} {
		st, err := w.root.Stat(dir)
		if err != nil {
			continue
		}
		c, ok := w.counted[dir]
		if ok && st.ModTime().Equal(c.mod) && c.at.Sub(c.mod) > 2*time.Second && now.Sub(c.at) < recountEvery {
			continue
		}
		entries, err := fs.ReadDir(w.root.FS(), dir)
		if err != nil {
			continue
		}
		n := 0
		for _, e := range entries {
			if filed(dir, e) {
				n++
			}
		}
		w.counted[dir] = folderCount{mod: st.ModTime(), at: now, n: n}
		metrics.InboxFiles.WithLabelValues(w.o.Type, dir).Set(float64(n))
	}
}

// filed reports whether e is a file the watcher put in dir, not a job
// note or a companion it wrote beside one.
func filed(dir string, e fs.DirEntry) bool {
	if e.IsDir() || ignored(e.Name()) {
		return false
	}
	switch dir {
	case DoneDir:
		return !strings.HasSuffix(e.Name(), doneCompanion)
	case FailedDir:
		return !strings.HasSuffix(e.Name(), failedCompanion)
	}
	return true
}

// countPush adds what a push did to the type's metrics: the records it
// produced (those of a push that failed midway too: they are on the
// topic), those it rejected by stage, and, for one that produced its
// whole file, its duration.
func (w *Watcher) countPush(res *producer.Result) {
	if w.o.Type == "" || res == nil {
		return
	}
	metrics.RecordsProduced.WithLabelValues(w.o.Type).Add(float64(res.Produced))
	for stage, n := range res.RejectedByStage {
		metrics.RecordsRejected.WithLabelValues(w.o.Type, stage).Add(float64(n))
	}
	if res.State == jobs.Produced {
		metrics.PushDuration.WithLabelValues(w.o.Type).Observe(res.Duration.Seconds())
	}
}
