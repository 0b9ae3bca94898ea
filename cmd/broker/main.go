// Command broker runs the local stack's Kafka broker: franz-go's kfake, one
// node on a fixed loopback port, persisting topics and group offsets under a
// data folder so that both survive a restart. It creates the configured topic
// (compacted, with the configured partitions) and serves until SIGINT or
// SIGTERM; SIGUSR1 compacts the topics at once. Clients reach it over TCP like any Kafka broker.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/kafka"
	"skuflow/internal/logging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "broker:", err)
		os.Exit(1)
	}
}

func run() error {
	def := config.Default()
	fs := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	file := fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.Int("port", def.Broker.Port, "loopback port to listen on")
	fs.String("data-dir", def.Broker.DataDir, "folder for topics and group offsets")
	fs.String("topic", def.Kafka.Topic, "topic to create")
	fs.Int("partitions", def.Kafka.Partitions, "partitions of the topic")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := config.Load(config.Options{File: *file, Flags: fs, Bind: map[string]string{
		"port": "broker.port", "data-dir": "broker.data_dir",
		"topic": "kafka.topic", "partitions": "kafka.partitions",
	}})
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, cfg.Log, "broker")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cluster, err := kfake.NewCluster(
		kfake.Ports(cfg.Broker.Port),
		kfake.DataDir(cfg.Broker.DataDir),
		kfake.ClusterID("skuflow-local"),
		kfake.WithLogger(kfakeLogger{log}),
		kfake.GroupMinSessionTimeout(time.Second),
	)
	if err != nil {
		return fmt.Errorf("start broker on 127.0.0.1:%d with data in %s: %w", cfg.Broker.Port, cfg.Broker.DataDir, err)
	}
	// Close persists the cluster's state; it must run on every way out.
	defer func() {
		cluster.Close()
		log.Info("stopped")
	}()

	kc := cfg.Kafka
	kc.Brokers = cluster.ListenAddrs()
	cl, err := kgo.NewClient(kafka.ClientOptions(kc, nil)...)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = kafka.EnsureTopic(setup, cl, kc)
	cancel()
	cl.Close()
	if err != nil {
		return err
	}
	log.Info("ready", "addr", kc.Brokers[0], "topic", kc.Topic, "partitions", kc.Partitions, "data_dir", cfg.Broker.DataDir)
	// SIGUSR1 compacts the compacted topics now, as Kafka's log cleaner
	// would in its own time: drills test the services against it.
	compact := make(chan os.Signal, 1)
	signal.Notify(compact, syscall.SIGUSR1)
	defer signal.Stop(compact)
	for {
		select {
		case <-compact:
			cluster.Compact()
			log.Info("compacted")
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping")
	return nil
}

// kfakeLogger sends kfake's log lines to slog.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lv slog.Level
	switch level {
	case kfake.LogLevelError:
		lv = slog.LevelError
	case kfake.LogLevelWarn:
		lv = slog.LevelWarn
	case kfake.LogLevelInfo:
		lv = slog.LevelInfo
	default:
		lv = slog.LevelDebug
	}
	l.log.Log(context.Background(), lv, fmt.Sprintf(msg, args...))
}
