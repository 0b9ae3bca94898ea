// Command aggregator keeps every declared aggregate exact in ClickHouse:
// products' `name -> number of products` (table product_counts, view
// products_agg) and the aggregates of the configured types, each type on
// its own topic with its own consumer group (or those --types names that
// have aggregates). Run one or more; they share the partitions. SIGTERM or
// SIGINT writes what is held, commits, leaves the groups and exits 0.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"skuflow/aggregator"
	"skuflow/config"
	"skuflow/internal/service"
	"skuflow/schemas"
)

func main() {
	service.Main("aggregator", os.Args[1:], func(ctx context.Context, env service.Env) error {
		var types []*schemas.Schema
		for _, s := range env.Types {
			if len(s.Aggregates) > 0 {
				types = append(types, s)
			} else {
				env.Log.Info("type has no aggregates; nothing to keep", "type", s.Name)
			}
		}
		if len(types) == 0 {
			return fmt.Errorf("none of the types served has an aggregate")
		}
		return service.EachType(ctx, env, types, func(ctx context.Context, cfg config.Config, s *schemas.Schema, log *slog.Logger) error {
			return aggregator.New(cfg, s, env.Conn, log).Run(ctx)
		})
	})
}
