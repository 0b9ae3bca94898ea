package main

import (
	"context"
	"errors"
	"fmt"

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
	fs.Int("parallel", def.Watch.Parallel, "push at most this many files at once")
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
	log := logging.New(stdio.err, cfg.Log, "watcher")
	c, err := connect(ctx, cfg, clientLog(stdio.err, cfg.Log))
	if err != nil {
		return err
	}
	defer c.close()
	cl, store := c.cl, c.store
	w, err := watcher.New(watcher.Options{
		Dir: fs.Arg(0),
		Pusher: producer.NewPusher(cl, producer.Options{
			Schema:             schemas.Products,
			Topic:              cfg.Kafka.Topic,
			MaxRecordBytes:     int(cfg.Loader.MaxRecordBytes),
			MaxValueBytes:      int(cfg.Loader.BatchMaxBytes) - 512,
			ZstdMaxWindow:      int64(cfg.Loader.ZstdMaxWindow),
			Jobs:               store,
			Origin:             "watch " + fs.Arg(0),
			Log:                log,
			Partitioner:        c.part,
			TopicID:            c.topicID,
			TopicCheckInterval: cfg.Kafka.TopicCheckInterval,
		}),
		Jobs:         store,
		Kafka:        cl,
		Groups:       []string{cfg.Processor.Group, cfg.Aggregator.Group},
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
	log.Info("started", "dir", fs.Arg(0), "quiet_period", cfg.Watch.QuietPeriod, "parallel", cfg.Watch.Parallel)
	err = w.Run(ctx)
	log.Info("stopped")
	if err != nil {
		return fmt.Errorf("watch %s: %w", fs.Arg(0), err)
	}
	return nil
}
