// Command processor loads the keyed topic into ClickHouse. Run as many as
// the topic has partitions; they share the work through one consumer group.
// SIGTERM or SIGINT flushes, commits, leaves the group and exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/logging"
	"skuflow/processor"
	"skuflow/schemas"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "processor:", err)
		os.Exit(1)
	}
}

func run() error {
	def := config.Default()
	fs := pflag.NewFlagSet("processor", pflag.ContinueOnError)
	file := fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.StringSlice("brokers", def.Kafka.Brokers, "Kafka brokers, host:port")
	fs.String("topic", def.Kafka.Topic, "topic to load")
	fs.Int("partitions", def.Kafka.Partitions, "partitions the topic must have")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	pprofAddr := fs.String("pprof", "", "serve Go's profiler (net/http/pprof, under /debug/pprof/) on this loopback\n"+
		"address, such as 127.0.0.1:6060 or :6060 (which means 127.0.0.1); off when empty")
	if err := fs.Parse(os.Args[1:]); err != nil {
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
	log := logging.New(os.Stderr, cfg.Log, "processor")
	if *pprofAddr != "" {
		addr, err := servePprof(*pprofAddr)
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
	return processor.New(processor.Options{Config: cfg, Schema: schemas.Products, Conn: conn, Log: log}).Run(ctx)
}

// servePprof serves the profiler on addr, which must be a loopback address:
// profiles show record contents and cost CPU, so they are never offered to
// the network. It returns the address it listens on.
func servePprof(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--pprof %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("--pprof %q: the profiler listens on loopback addresses only (127.0.0.1, ::1, localhost)", addr)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return "", fmt.Errorf("--pprof: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return "", fmt.Errorf("--pprof %q: %s is not a loopback address", addr, ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }() // lives as long as the process
	return ln.Addr().String(), nil
}
