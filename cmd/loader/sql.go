package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"skuflow/config"
	"skuflow/internal/cli"
	"skuflow/internal/clickhouse"
)

func runSQL(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("sql", `[flags] "SELECT ..."`, stdio.err)
	def := config.Default()
	fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	tsv := fs.Bool("tsv", false, "print tab-separated values with a header line, for scripts")
	width := fs.Int("width", 60, "cut values longer than this in the table (not in --tsv)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New(`give one query, quoted: loader sql "SELECT count() FROM skuflow.products_final"`)}
	}
	file, _ := fs.GetString("config")
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: map[string]string{
		"clickhouse": "clickhouse.addr", "database": "clickhouse.database",
	}})
	if err != nil {
		return err
	}
	// Unqualified table names resolve in the configured database.
	conn, err := clickhouse.OpenDatabase(cfg.ClickHouse, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	defer conn.Close()
	query := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(fs.Arg(0)), ";"))
	header, rows, err := clickhouse.QueryText(ctx, conn, query)
	if err != nil {
		return fmt.Errorf("ClickHouse at %s: %w", cfg.ClickHouse.Addr, err)
	}
	if *tsv {
		return cli.WriteTSV(stdio.out, header, rows)
	}
	return cli.WriteTable(stdio.out, header, rows, max(*width, 4))
}
