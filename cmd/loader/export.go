package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"skuflow/config"
	"skuflow/export"
	"skuflow/internal/cli"
	"skuflow/internal/clickhouse"
)

func runExport(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("export", "[flags] TYPE|AGGREGATE", stdio.err)
	def := config.Default()
	fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	format := fs.String("format", "parquet", "file format: parquet, ndjson or csv")
	out := fs.String("out", "", "file to write, - for stdout (default NAME.FORMAT; with --incremental, the folder of the parts)")
	where := fs.String("where", "", "SQL condition on the current rows, e.g. \"name = 'x'\"")
	split := fs.Int64("split-rows", 0, "start a new file every this many rows (NAME-00001.parquet, ...)")
	incremental := fs.String("incremental", "", "state file: write only the keys changed since the export that last used it, as a new part in --out")
	compression := fs.String("compression", "zstd", "Parquet compression: zstd, snappy or none")
	rowGroup := fs.Int("row-group-rows", export.DefaultRowGroupRows, "rows of a Parquet row group")
	asJSON := fs.Bool("json", false, "print the summary as JSON (on stdout; on stderr with --out -)")
	noProgress := fs.Bool("no-progress", false, "show no progress bar")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("give one record type or aggregate to export: loader export products --out products.parquet")}
	}
	f := export.Format(*format)
	if !slices.Contains(export.Formats, f) {
		return usageError{fmt.Errorf("--format %q: one of %v", *format, export.Formats)}
	}
	if !slices.Contains(export.Compressions, *compression) {
		return usageError{fmt.Errorf("--compression %q: one of %v", *compression, export.Compressions)}
	}
	if *split < 0 || *rowGroup <= 0 {
		return usageError{errors.New("--split-rows and --row-group-rows must be positive")}
	}
	file, _ := fs.GetString("config")
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: map[string]string{
		"clickhouse": "clickhouse.addr", "database": "clickhouse.database",
	}})
	if err != nil {
		return err
	}
	src, err := exportSource(&cfg, fs.Arg(0))
	if err != nil {
		return usageError{err}
	}

	path := *out
	switch {
	case *incremental != "" && (path == "" || path == "-"):
		return usageError{errors.New("--incremental writes parts into a folder: give it with --out DIR")}
	case path == "":
		path = src.Name + f.Ext()
	case path == "-" && *split > 0:
		return usageError{errors.New("--split-rows writes several files: give --out a path, not -")}
	case path == "-" && f.Binary() && cli.IsTerminal(stdio.out):
		return usageError{errors.New("Parquet is binary: give --out a file, or send stdout to a file or a pipe")}
	}

	conn, err := clickhouse.OpenDatabase(cfg.ClickHouse, cfg.ClickHouse.Database)
	if err != nil {
		return err
	}
	defer conn.Close()

	var written atomic.Int64
	stopBar := func() {}
	o := export.Options{Format: f, Compression: *compression, RowGroupRows: *rowGroup, SplitRows: *split,
		Where: strings.TrimSpace(*where), Progress: func(n int64) { written.Store(n) }}
	if !*noProgress && cli.IsTerminal(stdio.err) {
		total, _ := export.Estimate(ctx, conn, src)
		bar := cli.StartBar(stdio.err, 200*time.Millisecond, func(elapsed time.Duration) string {
			n := written.Load()
			line := fmt.Sprintf("exporting %s: %s rows, %s rows/s", src.Name, cli.Count(n), cli.Count(int64(float64(n)/max(elapsed.Seconds(), 1e-3))))
			if total > 0 && o.Where == "" && *incremental == "" {
				line = cli.Gauge(n, total, 30) + " " + line + fmt.Sprintf(" (of at most %s)", cli.Count(total))
			}
			return line
		})
		stopBar = bar.Stop
	}

	var res *export.Result
	var st *export.State
	if *incremental != "" {
		res, st, err = export.Incremental(ctx, conn, src, o, *incremental, path)
	} else {
		dest := export.ToFile(path, *split > 0)
		if path == "-" {
			dest = export.Output{W: stdio.out}
		}
		res, err = export.Export(ctx, conn, src, o, dest)
	}
	stopBar()
	if err != nil {
		return fmt.Errorf("export %s: %w", src.Name, err)
	}
	// The data has stdout when it is written there: the summary goes to
	// stderr then, JSON or not.
	summary := stdio.err
	if path != "-" {
		summary = stdio.out
	}
	if *asJSON {
		return writeJSON(summary, exportSummary{Result: res, State: st})
	}
	fmt.Fprintf(summary, "exported %s rows of %s in %.2f s (%s rows/s)\n", cli.Count(res.Rows), src.Name, res.Seconds,
		cli.Count(int64(float64(res.Rows)/max(res.Seconds, 1e-3))))
	for _, fl := range res.Files {
		if fl.Path != "-" {
			fmt.Fprintf(summary, "  %s: %s rows, %s\n", fl.Path, cli.Count(fl.Rows), cli.Size(fl.Bytes))
		}
	}
	if st != nil && res.Rows == 0 {
		fmt.Fprintf(summary, "  nothing changed since part %d: no part written\n", st.Parts)
	}
	return nil
}

// exportSummary is what `export --json` prints.
type exportSummary struct {
	*export.Result
	State *export.State `json:"state,omitempty"`
}

// exportSource finds name among the record types and their aggregates.
func exportSource(cfg *config.Config, name string) (export.Source, error) {
	var names []string
	for _, s := range cfg.Schemas() {
		if s.Name == name {
			return export.TypeSource(cfg.ClickHouse.Database, s), nil
		}
		names = append(names, s.Name)
		for i := range s.Aggregates {
			a := &s.Aggregates[i]
			if a.Name == name {
				return export.AggregateSource(cfg.ClickHouse.Database, s, a), nil
			}
			names = append(names, a.Name)
		}
	}
	return export.Source{}, fmt.Errorf("no record type or aggregate %q: there are %s", name, strings.Join(names, ", "))
}
