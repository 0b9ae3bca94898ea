package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"slices"
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
	maxRows := fs.Int("max-rows", 1000, "show at most this many rows in the table (--tsv prints every row)")
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
	if *tsv {
		// Rows are written as they arrive: memory does not grow with the
		// result.
		out := bufio.NewWriterSize(stdio.out, 64<<10)
		write := func(r []string) error { return cli.WriteTSVRow(out, r) }
		if err := clickhouse.StreamText(ctx, conn, query, write, write); err != nil {
			_ = out.Flush()
			return fmt.Errorf("ClickHouse at %s: %w", cfg.ClickHouse.Addr, err)
		}
		return out.Flush()
	}
	// The table is aligned, so it is held: only its first rows.
	limit := max(*maxRows, 1)
	var header []string
	var rows [][]string
	more := errors.New("more rows than shown")
	err = clickhouse.StreamText(ctx, conn, query,
		func(h []string) error { header = slices.Clone(h); return nil },
		func(r []string) error {
			if len(rows) == limit {
				return more
			}
			rows = append(rows, slices.Clone(r))
			return nil
		})
	switch {
	case errors.Is(err, more):
		return cli.WriteTableNote(stdio.out, header, rows, max(*width, 4), fmt.Sprintf(
			"(showing the first %s rows; there are more: --tsv prints them all, --max-rows shows more)", cli.Count(int64(limit))))
	case err != nil:
		return fmt.Errorf("ClickHouse at %s: %w", cfg.ClickHouse.Addr, err)
	}
	return cli.WriteTable(stdio.out, header, rows, max(*width, 4))
}
