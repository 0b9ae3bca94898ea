// Package service is the main of skuflow's long-running services
// (processor, aggregator): the flags they share, configuration, the logger,
// the ClickHouse connection, the optional profiler, and the signals that
// stop them. A service's own main only names itself and what it runs.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/logging"
	"skuflow/internal/metrics"
	"skuflow/schemas"
)

// Env is what a service runs with.
type Env struct {
	Config config.Config
	Log    *slog.Logger
	Conn   clickhouse.Conn
	// Types are the record types the service serves: every type, or
	// those --types names.
	Types []*schemas.Schema
}

// metricsAddr is where service name serves its metrics ("" for none).
func metricsAddr(cfg config.Config, name string) string {
	switch name {
	case "processor":
		return cfg.Processor.MetricsAddr
	case "aggregator":
		return cfg.Aggregator.MetricsAddr
	}
	return ""
}

// EachType runs run once for each of the types, each with its own
// configuration (config.Config.For: its topic and consumer groups) and a
// logger saying its type, all at once. The first to fail stops the
// others; EachType returns when all have, with that first error.
func EachType(ctx context.Context, env Env, types []*schemas.Schema, run func(ctx context.Context, cfg config.Config, s *schemas.Schema, log *slog.Logger) error) error {
	if len(types) == 0 {
		return errors.New("no record type to serve")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(types))
	for _, s := range types {
		go func() {
			err := run(ctx, env.Config.For(s), s, env.Log.With("type", s.Name))
			if err != nil {
				err = fmt.Errorf("type %s: %w", s.Name, err)
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range types {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Main parses args, loads the configuration, and calls run with a context
// that SIGINT and SIGTERM cancel. The service is expected to return nil
// once it has stopped cleanly. Errors are printed and make the exit code 1.
func Main(name string, args []string, run func(ctx context.Context, env Env) error) {
	if err := main(name, args, run); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func main(name string, args []string, run func(ctx context.Context, env Env) error) error {
	def := config.Default()
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	file := fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.StringSlice("brokers", def.Kafka.Brokers, "Kafka brokers, host:port")
	fs.String("topic", def.Kafka.Topic, "topic to read")
	fs.Int("partitions", def.Kafka.Partitions, "partitions the topic must have")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	only := fs.StringSlice("types", nil, "record types to serve, comma-separated (default: every type: products and those the configuration declares)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof, under /debug/pprof/) on this loopback\n"+
		"address, e.g. 127.0.0.1:6060 (off when empty)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := config.Load(config.Options{File: *file, Flags: fs, Bind: map[string]string{
		"brokers": "kafka.brokers", "topic": "kafka.topic", "partitions": "kafka.partitions",
		"clickhouse": "clickhouse.addr", "database": "clickhouse.database",
	}})
	if err != nil {
		return err
	}
	types, err := cfg.Select(*only)
	if err != nil {
		return fmt.Errorf("--types: %w", err)
	}
	log := logging.New(os.Stderr, cfg.Log, name)
	if *pprofAddr != "" {
		addr, err := ServeProfiler(*pprofAddr)
		if err != nil {
			return err
		}
		log.Info("profiler listening", "addr", "http://"+addr+"/debug/pprof/")
	}
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if addr := metricsAddr(cfg, name); addr != "" {
		// Up before the service's own start, which may wait for
		// ClickHouse: /readyz says why it is not ready meanwhile.
		got, err := metrics.Serve(ctx, addr, conn.Ping, log)
		if err != nil {
			return err
		}
		log.Info("metrics listening", "addr", "http://"+got+"/metrics")
	}
	err = run(ctx, Env{Config: cfg, Log: log, Conn: conn, Types: types})
	var certErr *clickhouse.CertError
	if clickhouse.IsAuthError(err) && !errors.As(err, &certErr) {
		// The server's refusal names the user, not the server.
		return fmt.Errorf("ClickHouse at %s refused the login: %w", cfg.ClickHouse.Addr, err)
	}
	return err
}
