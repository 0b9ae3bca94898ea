// Command processor loads the keyed topic into ClickHouse. Run as many as
// the topic has partitions; they share the work through one consumer group.
// SIGTERM or SIGINT flushes, commits, leaves the group and exits 0.
// --pprof ADDR serves Go's profiler on a loopback address.
package main

import (
	"context"
	"os"

	"skuflow/internal/service"
	"skuflow/processor"
	"skuflow/schemas"
)

func main() {
	service.Main("processor", os.Args[1:], func(ctx context.Context, env service.Env) error {
		return processor.New(processor.Options{Config: env.Config, Schema: schemas.Products, Conn: env.Conn, Log: env.Log}).Run(ctx)
	})
}
