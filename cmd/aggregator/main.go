// Command aggregator keeps `name -> number of products` exact in ClickHouse
// (table product_counts, view products_agg). Run one or more; they share
// the partitions through their own consumer group. SIGTERM or SIGINT writes
// what is held, commits, leaves the group and exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"skuflow/aggregator"
	"skuflow/config"
	"skuflow/internal/clickhouse"
	"skuflow/internal/logging"
	"skuflow/schemas"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "aggregator:", err)
		os.Exit(1)
	}
}

func run() error {
	def := config.Default()
	fs := pflag.NewFlagSet("aggregator", pflag.ContinueOnError)
	file := fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.StringSlice("brokers", def.Kafka.Brokers, "Kafka brokers, host:port")
	fs.String("topic", def.Kafka.Topic, "topic to read")
	fs.Int("partitions", def.Kafka.Partitions, "partitions the topic must have")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
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
	log := logging.New(os.Stderr, cfg.Log, "aggregator")
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return aggregator.New(cfg, schemas.Products, conn, log).Run(ctx)
}
