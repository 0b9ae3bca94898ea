// Command processor loads the keyed topics into ClickHouse: every record
// type's topic into its table, or those --types names. Run as many as the
// topics have partitions; they share the work through one consumer group
// per type. SIGTERM or SIGINT flushes, commits, leaves the groups and exits 0.
// --pprof ADDR serves Go's profiler on a loopback address.
package main

import (
	"context"
	"log/slog"
	"os"

	"skuflow/config"
	"skuflow/internal/service"
	"skuflow/processor"
	"skuflow/schemas"
)

func main() {
	service.Main("processor", os.Args[1:], func(ctx context.Context, env service.Env) error {
		return service.EachType(ctx, env, env.Types, func(ctx context.Context, cfg config.Config, s *schemas.Schema, log *slog.Logger) error {
			return processor.New(processor.Options{Config: cfg, Schema: s, Conn: env.Conn, Log: log}).Run(ctx)
		})
	})
}
