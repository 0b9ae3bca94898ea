package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/cli"
	"skuflow/internal/logging"
	"skuflow/internal/metrics"
	"skuflow/jobs"
	"skuflow/producer"
	"skuflow/schemas"
)

// kafkaFlags adds the flags every Kafka-facing command shares and returns
// their bindings to configuration keys.
func kafkaFlags(fs interface {
	String(string, string, string) *string
	StringSlice(string, []string, string) *[]string
	Int(string, int, string) *int
}) map[string]string {
	def := config.Default()
	fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.StringSlice("brokers", def.Kafka.Brokers, "Kafka brokers, host:port")
	fs.String("topic", def.Kafka.Topic, "topic to produce to")
	fs.Int("partitions", def.Kafka.Partitions, "partitions the topic must have (it is created with them if missing)")
	return map[string]string{"brokers": "kafka.brokers", "topic": "kafka.topic", "partitions": "kafka.partitions"}
}

func runPush(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("push", "[flags] PATH...", stdio.err)
	bind := kafkaFlags(fs)
	typeName := fs.String("type", config.BuiltinType, "record type of the records (products, or one the configuration declares under types:)")
	format := fs.String("format", "", "input format: json, ndjson or csv (default: from the name, then the first bytes)")
	asJSON := fs.Bool("json", false, "print a machine-readable summary on stdout")
	noProgress := fs.Bool("no-progress", false, "show no progress: no bar on a terminal, no progress lines elsewhere")
	progressEvery := fs.Duration("progress-interval", 10*time.Second, "when stderr is not a terminal (a CI log, a journal), log a progress line this often (0: never)")
	wait := fs.Bool("wait", false, "after producing, wait until the processor and the aggregator have every record in ClickHouse")
	waitTimeout := fs.Duration("wait-timeout", 0, "give up waiting after this long (0: wait as long as it takes)")
	force := fs.Bool("force", false, "push a file even if an earlier job loaded the same content")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the push to this file (go tool pprof reads it)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("name at least one file, folder, URL or - for stdin")}
	}
	forced, err := producer.ParseFormat(*format)
	if err != nil {
		return usageError{err}
	}
	file, _ := fs.GetString("config")
	cfg, s, err := loadForType(fs, file, bind, *typeName)
	if err != nil {
		return err
	}
	sources, err := producer.Sources(fs.Args(), stdio.in)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}

	log := clientLog(stdio.err, cfg.Log)
	c, err := producer.Connect(ctx, cfg, s, log)
	if err != nil {
		return err
	}
	defer c.Close()
	cl, store := c.Kafka, c.Jobs

	// Progress lines go out at the configured level, unlike the client's.
	plog := logging.New(stdio.err, cfg.Log, "loader")
	shown := 0
	opts := c.Options("push", log)
	opts.Format = forced
	opts.OnReject = func(r producer.Rejection) {
		if shown < cfg.Loader.ShowErrors {
			fmt.Fprintf(stdio.err, "%srejected %s\n", overBar(stdio.err), r)
		}
		shown++
	}
	pusher := producer.NewPusher(cl, opts)

	var (
		results   []*producer.Result
		refusedBy []*jobs.Job
		failed    bool
	)
	for _, src := range sources {
		prog := new(producer.Progress)
		var bar *cli.Bar
		stopLog := func() {}
		if !*noProgress {
			// A bar on a terminal; elsewhere a line now and then.
			bar = cli.StartBar(stdio.err, 200*time.Millisecond, progressLine(src, prog))
			if !cli.IsTerminal(stdio.err) && *progressEvery > 0 {
				stopLog = logProgress(plog, *progressEvery, src, prog)
			}
		}
		res, err := pusher.Push(ctx, src, producer.PushOptions{Progress: prog, Force: *force})
		stopLog()
		if bar != nil {
			bar.Stop()
		}
		results = append(results, res)
		var dup *producer.DuplicateError
		switch {
		case errors.As(err, &dup):
			// Not a failure: the content is loaded, or on its way. Waiting
			// waits for the job that loads it.
			refusedBy = append(refusedBy, dup.Earlier)
			fmt.Fprintln(stdio.err, err)
		case err != nil:
			failed = true
			if !*asJSON {
				fmt.Fprintf(stdio.err, "push %s failed: %v\n", src.Name, err)
			}
			fallthrough
		default:
			if !*asJSON {
				fmt.Fprintln(stdio.err, summaryLine(res))
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	var waited *waitResult
	if *wait && !failed {
		var pushed []*jobs.Job
		for _, r := range results {
			if r.State == jobs.Produced {
				pushed = append(pushed, &r.Job)
			}
		}
		for _, j := range refusedBy {
			if j.State == jobs.Produced {
				pushed = append(pushed, j)
			}
		}
		waited = waitLoaded(ctx, cl, cfg, s, pushed, *waitTimeout, !*noProgress && !*asJSON, stdio)
		failed = waited.Error != ""
		if !failed {
			for _, j := range pushed {
				if err := store.MarkDone(ctx, j); err != nil {
					fmt.Fprintf(stdio.err, "job %s is loaded, but recording it as done failed: %v\n", j.ID, err)
				}
			}
		}
	}
	if hidden := shown - cfg.Loader.ShowErrors; hidden > 0 && !*asJSON {
		fmt.Fprintf(stdio.err, "(%s more rejected records not shown; loader.show_errors is %d)\n", cli.Count(int64(hidden)), cfg.Loader.ShowErrors)
	}
	if *asJSON {
		enc := json.NewEncoder(stdio.out)
		enc.SetIndent("", "  ")
		summary := map[string]any{"ok": !failed, "results": results, "peak_rss_bytes": metrics.PeakRSS(), "cpu_seconds": metrics.CPUSeconds()}
		if waited != nil {
			summary["wait"] = waited
		}
		if err := enc.Encode(summary); err != nil {
			return err
		}
	}
	if failed {
		return errReported
	}
	return nil
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// clientLog is the log of the Kafka client library: its own lines matter
// only when something is wrong.
func clientLog(w io.Writer, c config.Log) *slog.Logger {
	if c.Level == "debug" || c.Level == "info" {
		c.Level = "warn"
	}
	return logging.New(w, c, "loader")
}

func progressLine(src producer.Source, p *producer.Progress) func(time.Duration) string {
	return func(elapsed time.Duration) string {
		raw := p.RawBytes()
		rate := float64(raw) / 1e6 / max(elapsed.Seconds(), 1e-9)
		line := fmt.Sprintf("%s %s", src.Name, cli.Gauge(raw, src.Size, 30))
		if src.Size > 0 {
			line += fmt.Sprintf(" %s/%s", cli.Size(raw), cli.Size(src.Size))
			if rate > 0 && raw < src.Size {
				eta := time.Duration(float64(src.Size-raw) / (rate * 1e6) * float64(time.Second))
				line += " ETA " + eta.Round(time.Second).String()
			}
		} else {
			line += " " + cli.Size(raw)
		}
		return fmt.Sprintf("%s  %.1f MB/s  %s records  %s rejected", line, rate, cli.Count(p.Produced.Load()), cli.Count(p.Rejected.Load()))
	}
}

// overBar starts a line that is printed while a bar may be drawn: on a
// terminal it clears the bar's line first; elsewhere it is nothing.
func overBar(w io.Writer) string {
	if cli.IsTerminal(w) {
		return "\r\033[K"
	}
	return ""
}

// logProgress logs a push's progress every interval until stop is
// called, so that a long push shows life where no bar is drawn.
func logProgress(log *slog.Logger, every time.Duration, src producer.Source, p *producer.Progress) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				log.Info("progress", progressArgs(src, p.Read.Load(), p.Produced.Load(), p.Rejected.Load(), p.RawBytes(), time.Since(start))...)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// progressArgs are the attributes of a progress line: the records read,
// produced and rejected so far, the input's rate in MB/s since the start,
// and, when its size is known, the percentage read.
func progressArgs(src producer.Source, read, produced, rejected, raw int64, elapsed time.Duration) []any {
	args := []any{"source", src.Name, "read", read, "produced", produced, "rejected", rejected,
		"mb_per_s", math.Round(float64(raw)/1e6/max(elapsed.Seconds(), 1e-9)*10) / 10}
	if src.Size > 0 {
		args = append(args, "percent", math.Round(float64(min(raw, src.Size))/float64(src.Size)*1000)/10)
	}
	return append(args, "elapsed", elapsed.Round(time.Second))
}

func summaryLine(r *producer.Result) string {
	format := string(r.Format)
	if r.Compression != "" {
		format += "+" + r.Compression
	}
	return fmt.Sprintf("%s (%s): %s read, %s produced, %s rejected in %s (%.1f MB/s), job %s",
		r.Source, format, cli.Count(r.Read), cli.Count(r.Produced), cli.Count(r.Rejected),
		r.Duration.Round(time.Millisecond), r.MBPerSecond, r.ID)
}

// waitResult says how waiting for the consumer groups ended.
type waitResult struct {
	Groups  []string `json:"groups"`
	Seconds float64  `json:"seconds"`
	Error   string   `json:"error,omitempty"`
}

// stallHint is how long waiting may see no progress before the loader says
// what might be wrong.
const stallHint = 30 * time.Second

// waitLoaded waits until the consumer groups have committed past every
// partition's last offset of the pushes (invariant 4).
func waitLoaded(ctx context.Context, cl *kgo.Client, cfg config.Config, s *schemas.Schema, pushed []*jobs.Job, timeout time.Duration, bar bool, stdio stdio) *waitResult {
	ends := map[int32]int64{}
	for _, r := range pushed {
		for p, o := range r.EndOffsets {
			ends[p] = max(ends[p], o)
		}
	}
	// Both groups: when --wait returns, the table and its aggregates
	// (products and products_agg) are current.
	groups := cfg.LoadGroups(s)
	res := &waitResult{Groups: groups}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	start := time.Now()
	var (
		total, left  atomic.Int64
		lastProgress = time.Now()
		hinted       bool
	)
	total.Store(-1)
	var b *cli.Bar
	if bar {
		b = cli.StartBar(stdio.err, 200*time.Millisecond, func(time.Duration) string {
			t, l := total.Load(), left.Load()
			return fmt.Sprintf("waiting for %v %s %s records to go", groups, cli.Gauge(t-l, t, 30), cli.Count(l))
		})
	}
	topicID := ""
	if len(pushed) > 0 {
		topicID = pushed[0].TopicID
	}
	err := jobs.Wait(ctx, cl, groups, cfg.Kafka.Topic, topicID, ends, 200*time.Millisecond, func(n int64) {
		if total.Load() < 0 {
			total.Store(n)
		}
		if n != left.Load() {
			lastProgress = time.Now()
		}
		left.Store(n)
		if !hinted && n > 0 && time.Since(lastProgress) > stallHint {
			hinted = true
			fmt.Fprintf(stdio.err, "%sno progress for %s with %s records to go: are a processor and an aggregator running (groups %v)? ('make up' starts both)\n",
				overBar(stdio.err), stallHint, cli.Count(n), groups)
		}
	})
	if b != nil {
		b.Stop()
	}
	res.Seconds = time.Since(start).Seconds()
	if err != nil && errors.Is(err, context.DeadlineExceeded) && timeout > 0 && total.Load() >= 0 {
		// Only the wait ended: the job goes on.
		err = fmt.Errorf("gave up after %s (--wait-timeout) with %s records still to go; they stay on the topic and load once the groups catch up ('loader status' follows the job)",
			timeout, cli.Count(left.Load()))
	}
	if err != nil {
		res.Error = fmt.Sprintf("waiting for %v: %v", groups, err)
		fmt.Fprintln(stdio.err, res.Error)
		return res
	}
	fmt.Fprintf(stdio.err, "loaded: %s every record (waited %s)\n", holders(s), time.Since(start).Round(time.Millisecond))
	return res
}

// holders says what a loaded job of type s is in: "products and
// products_agg hold", "events holds".
func holders(s *schemas.Schema) string {
	names := []string{s.Name}
	for _, a := range s.Aggregates {
		names = append(names, a.Name)
	}
	if len(names) == 1 {
		return names[0] + " holds"
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1] + " hold"
}

// loadForType loads the configuration for pushing records of the type
// called name: kafka.topic is the type's topic (config.Config.For).
// --topic names products' topic; another type's is in its declaration.
func loadForType(fs *pflag.FlagSet, file string, bind map[string]string, name string) (config.Config, *schemas.Schema, error) {
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: bind})
	if err != nil {
		return cfg, nil, err
	}
	s, err := cfg.Schema(name)
	if err != nil {
		return cfg, nil, usageError{fmt.Errorf("--type: %w", err)}
	}
	if f := fs.Lookup("topic"); f != nil && f.Changed && s.Name != config.BuiltinType {
		return cfg, nil, usageError{fmt.Errorf("--topic names products' topic; type %s's is %q, set in its declaration (types.%s.topic)", s.Name, s.Topic, s.Name)}
	}
	return cfg.For(s), s, nil
}
