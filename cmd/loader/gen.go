package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"skuflow/internal/cli"
	"skuflow/internal/synth"
)

func runGen(_ context.Context, args []string, stdio stdio) error {
	fs := newFlags("gen", "[flags]", stdio.err)
	var o synth.Options
	fs.Int64Var(&o.Rows, "rows", 1000, "rows to write")
	fs.StringVar(&o.Format, "format", "", "json, ndjson or csv (default: from --out's extension, else ndjson)")
	fs.Float64Var(&o.DupRate, "dup-rate", 0, "share of rows repeating an earlier sku unchanged")
	fs.Float64Var(&o.RenameRate, "rename-rate", 0, "share of rows repeating an earlier sku with a new name")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed; the same seed writes the same file")
	fs.IntVar(&o.Names, "names", 0, "distinct names to draw from (default rows/10, at least 100)")
	out := fs.StringP("out", "o", "-", "file to write (.gz or .zst compresses), - for stdout")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (write to a file with --out)", fs.Arg(0))}
	}
	base := strings.TrimSuffix(strings.TrimSuffix(*out, ".gz"), ".zst")
	if o.Format == "" {
		o.Format = "ndjson"
		for _, f := range []string{"json", "ndjson", "csv"} {
			if strings.HasSuffix(base, "."+f) {
				o.Format = f
			}
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
	st, err := synth.Write(w, o)
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
	fmt.Fprintf(stdio.err, "wrote %s rows (%s distinct skus, %s repeated, %s renamed), %s, to %s\n",
		cli.Count(st.Rows), cli.Count(st.Skus), cli.Count(st.Dups), cli.Count(st.Renames), cli.Size(st.Bytes), *out)
	return nil
}
