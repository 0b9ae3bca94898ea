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
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kfake"

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
	fs.Bool("sasl", def.Broker.SASL, "require SASL: kafka.sasl's mechanism, user and password (from the\n"+
		"configuration or SKUFLOW_KAFKA_SASL_*) are the broker's one user")
	fs.Bool("tls", def.Broker.TLS.Enabled, "speak TLS only, with broker.tls.cert_file and key_file")
	fs.String("tls-cert", def.Broker.TLS.CertFile, "the broker's TLS certificate (PEM)")
	fs.String("tls-key", def.Broker.TLS.KeyFile, "the key of --tls-cert (PEM)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := config.Load(config.Options{File: *file, Flags: fs, Bind: map[string]string{
		"port": "broker.port", "data-dir": "broker.data_dir",
		"topic": "kafka.topic", "partitions": "kafka.partitions",
		"sasl": "broker.sasl", "tls": "broker.tls.enabled", "tls-cert": "broker.tls.cert_file", "tls-key": "broker.tls.key_file",
	}})
	if err != nil {
		return err
	}
	log := logging.New(os.Stderr, cfg.Log, "broker")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := []kfake.Opt{
		kfake.Ports(cfg.Broker.Port),
		kfake.DataDir(cfg.Broker.DataDir),
		kfake.ClusterID("skuflow-local"),
		kfake.WithLogger(kfakeLogger{log}),
		kfake.GroupMinSessionTimeout(time.Second),
	}
	secure, err := security(cfg)
	if err != nil {
		return err
	}
	opts = append(opts, secure...)
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("start broker on 127.0.0.1:%d with data in %s: %w", cfg.Broker.Port, cfg.Broker.DataDir, err)
	}
	// Close persists the cluster's state; it must run on every way out.
	defer func() {
		cluster.Close()
		// kfake saved its SASL users (a PLAIN password as it is): the
		// configuration seeds them on every start, so none is kept.
		_ = os.Remove(filepath.Join(cfg.Broker.DataDir, "sasl.json"))
		log.Info("stopped")
	}()

	kc := cfg.Kafka
	kc.Brokers = cluster.ListenAddrs()
	cl, err := kafka.NewClient(kc, nil)
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
	log.Info("ready", "addr", kc.Brokers[0], "topic", kc.Topic, "partitions", kc.Partitions, "data_dir", cfg.Broker.DataDir,
		"tls", cfg.Broker.TLS.Enabled, "sasl", saslSummary(cfg))
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

// security returns the options that make the broker require SASL and
// TLS, as broker.sasl and broker.tls say. The SASL user is kafka.sasl's
// (a superuser), so the clients of the same configuration log in. kfake
// keeps SASL users in its data folder and would bring back an earlier
// password on restart; the configuration is the truth, so that file is
// removed first.
func security(cfg config.Config) ([]kfake.Opt, error) {
	var opts []kfake.Opt
	if err := os.Remove(filepath.Join(cfg.Broker.DataDir, "sasl.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("forget the SASL users of an earlier run: %w", err)
	}
	if cfg.Broker.SASL {
		s := cfg.Kafka.SASL
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(strings.ToUpper(s.Mechanism), s.Username, string(s.Password)))
	}
	tlsCfg, err := cfg.Broker.TLS.ServerConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, kfake.TLS(tlsCfg))
	}
	return opts, nil
}

// saslSummary says what the broker requires, for its log: never a password.
func saslSummary(cfg config.Config) string {
	if !cfg.Broker.SASL {
		return "off"
	}
	return strings.ToUpper(cfg.Kafka.SASL.Mechanism) + " user " + cfg.Kafka.SASL.Username
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
