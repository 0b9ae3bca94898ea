// Command loader is skuflow's user-facing tool: it pushes record files to
// the keyed topic and generates synthetic ones.
//
//	loader push [flags] PATH...   stream files, folders, - (stdin) or URLs to Kafka
//	loader watch DIR              push every file that lands in DIR
//	loader jobs                   list recent jobs
//	loader status JOB             one job and its progress
//	loader errors JOB             the records a job rejected (--raw: as they were)
//	loader redrive JOB            push a job's rejected records again, as a new job
//	loader sql  "SELECT ..."      query ClickHouse: an aligned table, or TSV with --tsv
//	loader prune --older-than D   drop old months of ingest_jobs and ingest_errors
//	loader gen  [flags]           write a synthetic file of products, events or plays
//	loader token create NAME      a new token for the HTTP API, and its entry for api.tokens
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

// exitUsage is the exit code for a command line that cannot run.
const exitUsage = 2

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, stdio stdio) error
}

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

func commands() []command {
	return []command{
		{"push", "[flags] PATH...", "stream files, folders, - (stdin) or http(s) URLs to the topic", runPush},
		{"watch", "[flags] DIR", "push every file that lands in DIR; file it in DIR/done or DIR/failed", runWatch},
		{"jobs", "[flags]", "list recent jobs: what was pushed, and how far it got", runJobs},
		{"status", "[flags] JOB", "show one job and its progress through processor and aggregator", runStatus},
		{"errors", "[flags] JOB", "print the records a job rejected, with line and reason (--raw: as they were)", runErrors},
		{"redrive", "[flags] JOB", "push a job's rejected records again, as a new job, validated by the current configuration", runRedrive},
		{"export", "[flags] TYPE|AGGREGATE", "write the current rows (one per key) or an aggregate as Parquet, NDJSON or CSV files", runExport},
		{"sql", `"SELECT ..."`, "run a query against ClickHouse and print the result", runSQL},
		{"check", "[flags]", "compare every aggregate with the same count or sum over its type's rows FINAL; exit 1 if one differs", runCheck},
		{"prune", "--older-than D", "drop the months of ingest_jobs and ingest_errors older than D (90d)", runPrune},
		{"gen", "[flags]", "write a synthetic file of products, events or plays (--type)", runGen},
		{"token", "create NAME", "make a bearer token for the API (--scope read,write): shown once, with its api.tokens entry", runToken},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{os.Stdin, os.Stdout, os.Stderr})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, io stdio) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(io.out)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], io)
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, pflag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(io.err, "loader %s: %v\n", c.name, err)
			return exitUsage
		case errors.Is(err, errReported):
			return 1
		default:
			fmt.Fprintf(io.err, "loader %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(io.err, "loader: unknown command %q\n\n", args[0])
	usage(io.err)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "loader moves record files into ClickHouse through Kafka.")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  loader %-6s %-16s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'loader COMMAND --help' for a command's flags. Configuration comes from")
	fmt.Fprintln(w, "skuflow.yaml (or --config / $SKUFLOW_CONFIG), SKUFLOW_* variables and flags.")
}

// usageError is a command line that cannot run; it exits with exitUsage.
type usageError struct{ error }

// errReported means the command has told the user what went wrong already.
var errReported = errors.New("reported")

// newFlags returns a flag set whose usage names the command.
func newFlags(name, args string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: loader %s %s\n\nFlags:\n%s", name, args, fs.FlagUsages())
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	return nil
}
