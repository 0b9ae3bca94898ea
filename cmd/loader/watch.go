package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"skuflow/config"
	"skuflow/internal/logging"
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
	bind["quiet-period"], bind["parallel"] = "watch.quiet_period", "watch.parallel"
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
	types := cfg.Schemas()
	if len(*only) > 0 {
		types = types[:0]
		for _, name := range *only {
			s, err := cfg.Schema(name)
			if err != nil {
				return usageError{fmt.Errorf("--types: %w", err)}
			}
			types = append(types, s)
		}
	}
	log := logging.New(stdio.err, cfg.Log, "watcher")

	// One inbox per type: DIR for products, DIR/TYPE for another type,
	// each with its own processing/, done/ and failed/. The products
	// inbox leaves the other types' folders alone (it takes files only).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errs := make(chan error, len(types))
	for _, s := range types {
		dir := fs.Arg(0)
		if s.Name != config.BuiltinType {
			dir = filepath.Join(dir, s.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("inbox of type %s: %w", s.Name, err)
			}
		}
		go func() {
			err := watchType(ctx, cfg.For(s), s, dir, log.With("type", s.Name), stdio)
			if err != nil {
				cancel(err)
			}
			errs <- err
		}()
	}
	log.Info("started", "dir", fs.Arg(0), "types", len(types), "quiet_period", cfg.Watch.QuietPeriod, "parallel", cfg.Watch.Parallel)
	var first error
	for range types {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	log.Info("stopped")
	return first
}

// watchType pushes the files of dir as records of type s until ctx ends.
func watchType(ctx context.Context, cfg config.Config, s *schemas.Schema, dir string, log *slog.Logger, stdio stdio) error {
	c, err := connect(ctx, cfg, s, clientLog(stdio.err, cfg.Log))
	if err != nil {
		return err
	}
	defer c.close()
	cl, store := c.cl, c.store
	w, err := watcher.New(watcher.Options{
		Dir: dir,
		Pusher: producer.NewPusher(cl, producer.Options{
			Schema:             s,
			Topic:              cfg.Kafka.Topic,
			MaxRecordBytes:     int(cfg.Loader.MaxRecordBytes),
			MaxValueBytes:      int(cfg.Loader.BatchMaxBytes) - 512,
			ZstdMaxWindow:      int64(cfg.Loader.ZstdMaxWindow),
			Jobs:               store,
			Origin:             "watch " + dir,
			Log:                log,
			Partitioner:        c.part,
			TopicID:            c.topicID,
			TopicCheckInterval: cfg.Kafka.TopicCheckInterval,
		}),
		Jobs:         store,
		Kafka:        cl,
		Groups:       waitGroups(cfg, s),
		Topic:        cfg.Kafka.Topic,
		QuietPeriod:  cfg.Watch.QuietPeriod,
		PollInterval: cfg.Watch.PollInterval,
		Parallel:     cfg.Watch.Parallel,
		Log:          log,
	})
	if err != nil {
		return err
	}
	defer w.Close()
	log.Info("watching", "dir", dir, "topic", cfg.Kafka.Topic)
	if err := w.Run(ctx); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	return nil
}
