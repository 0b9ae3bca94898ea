// Command aggregator keeps `name -> number of products` exact in ClickHouse
// (table product_counts, view products_agg). Run one or more; they share
// the partitions through their own consumer group. SIGTERM or SIGINT writes
// what is held, commits, leaves the group and exits 0.
package main

import (
	"context"
	"os"

	"skuflow/aggregator"
	"skuflow/internal/service"
	"skuflow/schemas"
)

func main() {
	service.Main("aggregator", os.Args[1:], func(ctx context.Context, env service.Env) error {
		return aggregator.New(env.Config, schemas.Products, env.Conn, env.Log).Run(ctx)
	})
}
