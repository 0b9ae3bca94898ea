package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/logging"
	"skuflow/internal/metrics"
	"skuflow/producer"
	"skuflow/schemas"
	"skuflow/watcher"
)

func runWatch(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("watch", "[flags] DIR", stdio.err)
	bind := kafkaFlags(fs)
	def := config.Default()
	fs.Duration("quiet-period", def.Watch.QuietPeriod, "take a file once it has not changed for this long (at once if renamed in)")
	fs.Int("parallel", def.Watch.Parallel, "push at most this many files at once (per record type)")
	only := fs.StringSlice("types", nil, "record types to watch for, comma-separated (default: every type)")
	fs.String("metrics-addr", def.Watch.MetricsAddr, "serve /metrics, /healthz and /readyz on this address (empty: none; port 0 picks one, logged)")
	bind["quiet-period"], bind["parallel"], bind["metrics-addr"] = "watch.quiet_period", "watch.parallel", "watch.metrics_addr"
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("name the folder to watch")}
	}
	file, _ := fs.GetString("config")
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: bind})
	if err != nil {
		return err
	}
	types, err := cfg.Select(*only)
	if err != nil {
		return usageError{fmt.Errorf("--types: %w", err)}
	}
	log := logging.New(stdio.err, cfg.Log, "watcher")
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := serveMetrics(ctx, cfg, log); err != nil {
		return err
	}

	// One inbox per type: DIR for products, DIR/TYPE for another type,
	// each with its own processing/, done/ and failed/. The products
	// inbox leaves the other types' folders alone (it takes files only).
	// Every inbox is ready (connected, its folders made) before the
	// watcher says it started.
	var inboxes []*inbox
	defer func() {
		for _, in := range inboxes {
			in.close()
		}
	}()
	for _, s := range types {
		dir := fs.Arg(0)
		if s.Name != config.BuiltinType {
			dir = filepath.Join(dir, s.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("inbox of type %s: %w", s.Name, err)
			}
		}
		in, err := openInbox(ctx, cfg.For(s), s, dir, log.With("type", s.Name), stdio)
		if err != nil {
			return err
		}
		inboxes = append(inboxes, in)
	}
	log.Info("started", "dir", fs.Arg(0), "types", len(types), "quiet_period", cfg.Watch.QuietPeriod, "parallel", cfg.Watch.Parallel)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make(chan error, len(inboxes))
	for _, in := range inboxes {
		go func() {
			err := in.w.Run(ctx)
			if err != nil {
				err = fmt.Errorf("watch %s: %w", in.dir, err)
				cancel(err)
			}
			errs <- err
		}()
	}
	var first error
	for range inboxes {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	log.Info("stopped")
	return first
}

// inbox is the watcher of one type's folder, with what it pushes through.
type inbox struct {
	dir   string
	w     *watcher.Watcher
	close func()
}

// openInbox prepares the watcher of dir, whose files are records of type s.
func openInbox(ctx context.Context, cfg config.Config, s *schemas.Schema, dir string, log *slog.Logger, stdio stdio) (*inbox, error) {
	c, err := producer.Connect(ctx, cfg, s, clientLog(stdio.err, cfg.Log))
	if err != nil {
		return nil, err
	}
	cl, store := c.Kafka, c.Jobs
	w, err := watcher.New(watcher.Options{
		Dir:          dir,
		Pusher:       producer.NewPusher(cl, c.Options("watch "+dir, log)),
		Jobs:         store,
		Kafka:        cl,
		Groups:       cfg.LoadGroups(s),
		Topic:        cfg.Kafka.Topic,
		QuietPeriod:  cfg.Watch.QuietPeriod,
		PollInterval: cfg.Watch.PollInterval,
		Parallel:     cfg.Watch.Parallel,
		Log:          log,
		Type:         s.Name,
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	log.Info("watching", "dir", dir, "topic", cfg.Kafka.Topic)
	return &inbox{dir: dir, w: w, close: func() { w.Close(); c.Close() }}, nil
}

// serveMetrics serves the watcher's metrics on watch.metrics_addr, if set:
// it is ready while ClickHouse, which keeps the jobs, answers. It is up
// before the inboxes connect, so that /readyz says why they wait.
func serveMetrics(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if cfg.Watch.MetricsAddr == "" {
		return nil
	}
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	metrics.Register(watcher.Metrics()...)
	addr, err := metrics.Serve(ctx, cfg.Watch.MetricsAddr, conn.Ping, log)
	if err != nil {
		return fmt.Errorf("watch.metrics_addr: %w (another watcher on this machine? give each its own --metrics-addr, or empty for none)", err)
	}
	log.Info("metrics listening", "addr", "http://"+addr+"/metrics")
	return nil
}
