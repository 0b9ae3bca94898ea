package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"skuflow/config"
	"skuflow/internal/cli"
	"skuflow/internal/clickhouse"
	"skuflow/jobs"
)

func runPrune(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("prune", "--older-than DURATION [flags]", stdio.err)
	def := config.Default()
	fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	olderThan := fs.String("older-than", "", "drop the months of ingest_jobs and ingest_errors that ended longer ago than this: 90d, 2160h")
	dryRun := fs.Bool("dry-run", false, "say what would be dropped, drop nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("prune takes no arguments")}
	}
	if *olderThan == "" {
		return usageError{errors.New("say how old what is dropped must be: --older-than 90d")}
	}
	age, err := parseAge(*olderThan)
	if err != nil {
		return usageError{err}
	}
	file, _ := fs.GetString("config")
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: map[string]string{
		"clickhouse": "clickhouse.addr", "database": "clickhouse.database",
	}})
	if err != nil {
		return err
	}
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	before := time.Now().Add(-age)
	dropped, kept, err := jobs.NewStore(conn, cfg.ClickHouse.Database).OnCluster(cfg.ClickHouse.Cluster).Prune(ctx, before, *dryRun)
	verb := "dropped"
	if *dryRun {
		verb = "would drop"
	}
	for _, m := range dropped {
		fmt.Fprintf(stdio.out, "%s: %s %s (%s)\n", m.Table, verb, m.Start.Format("2006-01"), rowCount(m.Rows))
	}
	if len(dropped) == 0 && err == nil {
		fmt.Fprintf(stdio.out, "nothing to drop: no month of ingest_jobs or ingest_errors ended before %s\n", before.Local().Format("2006-01-02 15:04"))
	}
	for _, table := range []string{clickhouse.JobsTable, clickhouse.ErrorsTable} {
		var months []string
		var rows int64
		for _, m := range kept {
			if m.Table == table {
				months, rows = append(months, m.Start.Format("2006-01")), rows+m.Rows
			}
		}
		if len(months) > 0 {
			fmt.Fprintf(stdio.out, "%s: kept %s (%s)\n", table, strings.Join(months, ", "), rowCount(rows))
		}
	}
	if err != nil {
		return fmt.Errorf("ClickHouse at %s: %w", cfg.ClickHouse.Addr, err)
	}
	return nil
}

func rowCount(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return cli.Count(n) + " rows"
}

// parseAge reads a duration as Go writes them (2160h, 90m) or in days
// (90d).
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--older-than %q: want a duration such as 90d or 2160h", s)
	}
	return d, nil
}
