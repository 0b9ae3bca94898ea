package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"skuflow/internal/cli"
	"skuflow/internal/synth"
)

func runGen(_ context.Context, args []string, stdio stdio) error {
	fs := newFlags("gen", "[flags]", stdio.err)
	var (
		products synth.Options
		events   synth.EventOptions
		plays    synth.PlayOptions
	)
	typ := fs.String("type", "products", "record type: products, events or plays")
	rows := fs.Int64("rows", 1000, "rows to write")
	format := fs.String("format", "", "json, ndjson or csv (default: from --out's extension, else ndjson; csv for plays)")
	seed := fs.Uint64("seed", 1, "random seed; the same seed writes the same file")
	dupRate := fs.Float64("dup-rate", 0, "share of rows repeating an earlier record unchanged (products: sku; events: id and ts)")
	fs.Float64Var(&products.RenameRate, "rename-rate", 0, "products: share of rows repeating an earlier sku with a new name")
	fs.IntVar(&products.Names, "names", 0, "products: distinct names to draw from (default rows/10, at least 100)")
	fs.Float64Var(&events.UpdateRate, "update-rate", 0, "events: share of rows repeating an earlier id and ts with new data")
	fs.IntVar(&plays.Songs, "songs", 0, "plays: distinct songs (default rows/20, at least 10)")
	fs.IntVar(&plays.Days, "days", 0, "plays: distinct consecutive dates (default 7)")
	out := fs.StringP("out", "o", "-", "file to write (.gz or .zst compresses), - for stdout")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (write to a file with --out)", fs.Arg(0))}
	}
	if err := checkGenFlags(fs.Changed, *typ); err != nil {
		return usageError{err}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(*out, ".gz"), ".zst")
	if *format == "" {
		// Plays come as CSV exports; the other types as NDJSON streams.
		*format = "ndjson"
		if *typ == "plays" {
			*format = "csv"
		}
		for _, f := range []string{"json", "ndjson", "csv"} {
			if strings.HasSuffix(base, "."+f) {
				*format = f
			}
		}
	}

	// write writes the chosen type and says what it wrote: its stats, and a
	// phrase for the summary line.
	var write func(w io.Writer) (stats any, wrote string, err error)
	switch *typ {
	case "products":
		products.Rows, products.Format, products.Seed, products.DupRate = *rows, *format, *seed, *dupRate
		write = func(w io.Writer) (any, string, error) {
			st, err := synth.Write(w, products)
			return st, fmt.Sprintf("%s rows (%s distinct skus, %s repeated, %s renamed), %s",
				cli.Count(st.Rows), cli.Count(st.Skus), cli.Count(st.Dups), cli.Count(st.Renames), cli.Size(st.Bytes)), err
		}
	case "events":
		events.Rows, events.Format, events.Seed, events.DupRate = *rows, *format, *seed, *dupRate
		write = func(w io.Writer) (any, string, error) {
			st, err := synth.WriteEvents(w, events)
			return st, fmt.Sprintf("%s events (%s distinct id and ts keys, %s repeated, %s updated), %s",
				cli.Count(st.Rows), cli.Count(st.Keys), cli.Count(st.Dups), cli.Count(st.Updates), cli.Size(st.Bytes)), err
		}
	case "plays":
		plays.Rows, plays.Format, plays.Seed = *rows, *format, *seed
		write = func(w io.Writer) (any, string, error) {
			st, err := synth.WritePlays(w, plays)
			return st, fmt.Sprintf("%s play rows (%s song and date groups, %s plays in all), %s",
				cli.Count(st.Rows), cli.Count(st.Groups), cli.Count(st.Plays), cli.Size(st.Bytes)), err
		}
	}

	var w io.Writer = stdio.out
	var closers []func() error
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		w = f
		closers = append(closers, f.Close)
	}
	switch {
	case strings.HasSuffix(*out, ".gz"):
		zw := gzip.NewWriter(w)
		w = zw
		closers = append([]func() error{zw.Close}, closers...)
	case strings.HasSuffix(*out, ".zst"):
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return err
		}
		w = zw
		closers = append([]func() error{zw.Close}, closers...)
	}
	st, wrote, err := write(w)
	for _, c := range closers {
		if cerr := c(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	if *asJSON {
		return json.NewEncoder(stdio.err).Encode(st)
	}
	fmt.Fprintf(stdio.err, "wrote %s, to %s\n", wrote, *out)
	return nil
}

// checkGenFlags refuses an unknown type, and a flag given for a type that
// does not read it: ignoring --rename-rate on events, say, would quietly
// write another file than the one asked for.
func checkGenFlags(changed func(name string) bool, typ string) error {
	// The flags each type reads beyond the common ones (--rows, --format,
	// --seed, --out, --json).
	var reads []string
	switch typ {
	case "products":
		reads = []string{"dup-rate", "rename-rate", "names"}
	case "events":
		reads = []string{"dup-rate", "update-rate"}
	case "plays":
		reads = []string{"songs", "days"}
	default:
		return fmt.Errorf("unknown --type %q: want products, events or plays", typ)
	}
	for _, flag := range []string{"dup-rate", "rename-rate", "names", "update-rate", "songs", "days"} {
		if changed(flag) && !slices.Contains(reads, flag) {
			return fmt.Errorf("--%s does not apply to --type %s", flag, typ)
		}
	}
	return nil
}
