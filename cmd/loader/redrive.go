package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"skuflow/internal/cli"
	"skuflow/jobs"
	"skuflow/producer"
	"skuflow/schemas"
)

// maxUnfitShown bounds the records a command names that it could not
// write or re-drive; all are counted.
const maxUnfitShown = 20

// writeRaw is `loader errors JOB --raw`: every record job rejected, as it
// was, on stdout (see producer.RawWriter).
func writeRaw(ctx context.Context, r *jobReader, job *jobs.Job, stdio stdio) error {
	s, _ := r.jobType(job) // a type no longer declared: none is identified by place
	rw, err := producer.NewRawWriter(stdio.out, job, s != nil && s.Identity)
	if err != nil {
		return err
	}
	if err := producer.WriteRejected(ctx, r.store, job, rw); err != nil {
		return r.storeErr(err)
	}
	what := "NDJSON, one record a line"
	if job.Format == string(producer.FormatCSV) {
		what = "CSV rows after the header line"
	}
	fmt.Fprintf(stdio.err, "%s rejected records of job %s written as %s\n", cli.Count(rw.Written), job.ID, what)
	if len(rw.Unfit) > 0 {
		reportUnfit(stdio, "not written", rw.Unfit)
		return errReported
	}
	return nil
}

func reportUnfit(stdio stdio, what string, unfit []producer.Unfit) {
	fmt.Fprintf(stdio.err, "%s rejected records %s:\n", cli.Count(int64(len(unfit))), what)
	for _, u := range unfit[:min(len(unfit), maxUnfitShown)] {
		fmt.Fprintf(stdio.err, "  %s\n", u)
	}
	if len(unfit) > maxUnfitShown {
		fmt.Fprintf(stdio.err, "  (%d more)\n", len(unfit)-maxUnfitShown)
	}
}

func runRedrive(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("redrive", "[flags] JOB", stdio.err)
	bind := jobFlags(fs)
	asJSON := fs.Bool("json", false, "print a machine-readable summary on stdout")
	wait := fs.Bool("wait", false, "after producing, wait until the processor and the aggregator have every record in ClickHouse")
	waitTimeout := fs.Duration("wait-timeout", 0, "give up waiting after this long (0: wait as long as it takes)")
	force := fs.Bool("force", false, "push the records even if a job loaded the same content already")
	tmp := fs.String("tmp-dir", "", "where the records are written while they are pushed (default: the system's temporary folder)")
	id, r, err := openJob(fs, bind, args, stdio)
	if err != nil {
		return err
	}
	defer r.Close()
	old, err := r.store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			return err
		}
		return r.storeErr(err)
	}
	// The current declaration of the job's type: a rule relaxed or a
	// column added since the push is what a re-drive is for.
	s, err := r.jobType(old)
	if err != nil {
		return fmt.Errorf("job %s: %w", old.ID, err)
	}
	if err := r.loaded(ctx, s, old); err != nil {
		return err
	}

	cfg := r.cfg.For(s)
	log := clientLog(stdio.err, cfg.Log)
	c, err := producer.Connect(ctx, cfg, s, log)
	if err != nil {
		return err
	}
	defer c.Close()
	opts := c.Options("redrive "+old.ID, log)
	shown := 0
	opts.OnReject = func(rj producer.Rejection) {
		if shown < cfg.Loader.ShowErrors && !*asJSON {
			fmt.Fprintf(stdio.err, "rejected again %s\n", rj)
		}
		shown++
	}
	pusher := producer.NewPusher(c.Kafka, opts)
	res, err := pusher.Redrive(ctx, old, *tmp, producer.PushOptions{Force: *force})
	var (
		dup      *producer.DuplicateError
		redriven *producer.RedrivenError
	)
	switch {
	case errors.Is(err, producer.ErrNothingToRedrive):
		fmt.Fprintln(stdio.err, err)
		return nil
	case errors.As(err, &redriven), errors.As(err, &dup):
		// Nothing was pushed: the records are loaded, or on their way.
		return err
	case err != nil && res == nil:
		return err
	case err != nil:
		if !*asJSON {
			fmt.Fprintf(stdio.err, "re-drive of job %s failed: %v\n", old.ID, err)
			fmt.Fprintln(stdio.err, summaryLine(res))
		}
		return errReported
	}
	if hidden := shown - cfg.Loader.ShowErrors; hidden > 0 && !*asJSON {
		fmt.Fprintf(stdio.err, "(%s more rejected again not shown; 'loader errors %s' lists them)\n", cli.Count(int64(hidden)), res.ID)
	}
	if !*asJSON {
		fmt.Fprintln(stdio.err, summaryLine(res))
		fmt.Fprintf(stdio.err, "job %s re-drives job %s\n", res.ID, old.ID)
	}
	var waited *waitResult
	if *wait {
		waited = waitLoaded(ctx, c.Kafka, cfg, s, []*jobs.Job{&res.Job}, *waitTimeout, !*asJSON, stdio)
		if waited.Error == "" {
			if err := c.Jobs.MarkDone(ctx, &res.Job); err != nil {
				fmt.Fprintf(stdio.err, "job %s is loaded, but recording it as done failed: %v\n", res.ID, err)
			}
		}
	}
	if *asJSON {
		summary := map[string]any{"ok": waited == nil || waited.Error == "", "result": res}
		if waited != nil {
			summary["wait"] = waited
		}
		if err := writeJSON(stdio.out, summary); err != nil {
			return err
		}
	}
	if waited != nil && waited.Error != "" {
		return errReported
	}
	return nil
}

// loaded refuses to re-drive job j before the processor has had all of
// its records: until then it may still set some aside, and those would
// be left out of the re-drive.
func (r *jobReader) loaded(ctx context.Context, s *schemas.Schema, j *jobs.Job) error {
	switch {
	case j.State == jobs.Done:
		return nil
	case j.State == jobs.Producing && !j.Stalled(time.Now()):
		return fmt.Errorf("job %s is still producing: re-drive it once 'loader status %s' says it is done", j.ID, j.ID)
	case len(j.EndOffsets) == 0:
		return nil // nothing of it reached the topic
	}
	c, err := r.committed(ctx, s, j.Topic)
	if err != nil {
		return fmt.Errorf("job %s: cannot tell whether the processor has all its records: %w", j.ID, err)
	}
	p := c.Progress(j.EndOffsets)
	if jobs.Passed(p) {
		return nil
	}
	var parts []string
	for _, g := range p {
		parts = append(parts, fmt.Sprintf("%s %s records behind", g.Group, cli.Count(g.Behind)))
	}
	return fmt.Errorf("job %s is still loading (%s): the processor may still set some of its records aside; "+
		"re-drive it once 'loader status %s' says it is done", j.ID, strings.Join(parts, ", "), j.ID)
}
