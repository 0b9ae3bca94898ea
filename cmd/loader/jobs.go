package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"skuflow/config"
	"skuflow/internal/cli"
	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/internal/logging"
	"skuflow/jobs"
	"skuflow/schemas"
)

// jobFlags adds the flags of the commands that read jobs: where ClickHouse
// and the topic are.
func jobFlags(fs *pflag.FlagSet) map[string]string {
	def := config.Default()
	fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	fs.StringSlice("brokers", def.Kafka.Brokers, "Kafka brokers, host:port (for the consumer groups' progress)")
	return map[string]string{"clickhouse": "clickhouse.addr", "database": "clickhouse.database", "brokers": "kafka.brokers"}
}

// jobReader is what the job commands read from: the job store, and the
// consumer groups' committed offsets.
type jobReader struct {
	cfg   config.Config
	store *jobs.Store
	conn  clickhouse.Conn
	cl    *kgo.Client
}

func openJobReader(fs *pflag.FlagSet, bind map[string]string, stderr io.Writer) (*jobReader, error) {
	file, _ := fs.GetString("config")
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: bind})
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return nil, err
	}
	logCfg := cfg.Log
	logCfg.Level = "error"
	cl, err := kafka.NewClient(cfg.Kafka, logging.New(stderr, logCfg, "loader"))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &jobReader{cfg: cfg, store: jobs.NewStore(conn, cfg.ClickHouse.Database), conn: conn, cl: cl}, nil
}

// openJob parses the command line of a command about one job, and opens
// what it reads from.
func openJob(fs *pflag.FlagSet, bind map[string]string, args []string, stdio stdio) (string, *jobReader, error) {
	if err := parse(fs, args); err != nil {
		return "", nil, err
	}
	if fs.NArg() != 1 {
		return "", nil, usageError{errors.New("name one job ('loader jobs' lists them)")}
	}
	id := fs.Arg(0)
	if err := jobs.CheckID(id); err != nil {
		return "", nil, usageError{err}
	}
	r, err := openJobReader(fs, bind, stdio.err)
	return id, r, err
}

func (r *jobReader) Close() {
	r.cl.Close()
	r.conn.Close()
}

// jobType returns the record type of job j (products for a job of a
// release before types), or an error when the configuration no longer
// declares it.
func (r *jobReader) jobType(j *jobs.Job) (*schemas.Schema, error) {
	name := j.Type
	if name == "" {
		name = config.BuiltinType
	}
	return r.cfg.Schema(name)
}

// committed reads the offsets of the groups that load jobs of type s on
// topic, or says why it cannot: without them a produced job's progress is
// unknown, but its row still shows.
func (r *jobReader) committed(ctx context.Context, s *schemas.Schema, topic string) (*jobs.Committed, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Kafka.DialTimeout+5*time.Second)
	defer cancel()
	c, err := jobs.FetchCommitted(ctx, r.cl, r.cfg.For(s).LoadGroups(s), topic)
	if err != nil {
		return nil, fmt.Errorf("Kafka at %v: %w", r.cfg.Kafka.Brokers, err)
	}
	return c, nil
}

func (r *jobReader) storeErr(err error) error {
	return fmt.Errorf("ClickHouse at %s: %w", r.cfg.ClickHouse.Addr, err)
}

// jobStatus is a job with its progress through the consumer groups.
type jobStatus struct {
	*jobs.Job
	Progress []jobs.GroupProgress `json:"progress,omitempty"`
	Stalled  bool                 `json:"stalled,omitempty"`
	schema   *schemas.Schema      // the job's type, when the configuration has it
}

func runJobs(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("jobs", "[flags]", stdio.err)
	bind := jobFlags(fs)
	limit := fs.Int("limit", 20, "how many jobs to list, newest first")
	asJSON := fs.Bool("json", false, "print the jobs as a JSON array")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("jobs takes no arguments; 'loader status JOB' shows one")}
	}
	r, err := openJobReader(fs, bind, stdio.err)
	if err != nil {
		return err
	}
	defer r.Close()
	list, err := r.store.Recent(ctx, max(*limit, 1))
	if err != nil {
		return r.storeErr(err)
	}
	statuses, err := r.settle(ctx, list)
	if err != nil {
		fmt.Fprintf(stdio.err, "loader jobs: %v; states of produced jobs may be behind\n", err)
	}
	if *asJSON {
		return writeJSON(stdio.out, statuses)
	}
	header := []string{"JOB", "TYPE", "STATE", "SOURCE", "FORMAT", "READ", "PRODUCED", "REJECTED", "STARTED", "TOOK"}
	rows := make([][]string, 0, len(statuses))
	for _, s := range statuses {
		rows = append(rows, []string{s.ID, typeText(s.Job), stateText(s), s.Source, formatText(s.Job), cli.Count(s.Read), cli.Count(s.Produced),
			cli.Count(s.Rejected), s.Started.Local().Format("2006-01-02 15:04:05"), took(s.Job)})
	}
	return cli.WriteTable(stdio.out, header, rows, 50)
}

// settle brings produced jobs up to date with the groups' offsets.
func (r *jobReader) settle(ctx context.Context, list []*jobs.Job) ([]jobStatus, error) {
	out := make([]jobStatus, len(list))
	// The groups' offsets, read once per type and topic.
	read := map[string]*jobs.Committed{}
	var cerr error
	now := time.Now()
	for i, j := range list {
		out[i] = jobStatus{Job: j, Stalled: j.Stalled(now)}
		s, err := r.jobType(j)
		if err == nil {
			out[i].schema = s
		}
		if j.State != jobs.Produced || cerr != nil {
			continue
		}
		if err != nil {
			continue // a type no longer declared: its row shows as it is
		}
		c := read[s.Name+"\x00"+j.Topic]
		if c == nil {
			if c, cerr = r.committed(ctx, s, j.Topic); cerr != nil {
				continue
			}
			read[s.Name+"\x00"+j.Topic] = c
		}
		p, err := r.store.Settle(ctx, c, j)
		if err != nil {
			return out, r.storeErr(err)
		}
		out[i].Progress = p
	}
	return out, cerr
}

func stateText(s jobStatus) string {
	switch {
	case s.Stalled:
		return "producing (stalled)"
	case s.State == jobs.Produced && len(s.Progress) > 0:
		return "produced (loading)"
	}
	return string(s.State)
}

// typeText is the job's record type: products for a job from before types.
func typeText(j *jobs.Job) string {
	if j.Type == "" {
		return config.BuiltinType
	}
	return j.Type
}

func formatText(j *jobs.Job) string {
	if j.Compression != "" {
		return j.Format + "+" + j.Compression
	}
	return j.Format
}

// took is how long the job has taken so far, or took in all.
func took(j *jobs.Job) string {
	switch {
	case j.State == jobs.Done && j.LoadSeconds > 0:
		return (time.Duration(j.LoadSeconds * float64(time.Second))).Round(time.Millisecond).String()
	case j.ProduceSeconds > 0:
		return (time.Duration(j.ProduceSeconds * float64(time.Second))).Round(time.Millisecond).String()
	}
	return ""
}

func runStatus(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("status", "[flags] JOB", stdio.err)
	bind := jobFlags(fs)
	asJSON := fs.Bool("json", false, "print the job as JSON")
	wait := fs.Bool("wait", false, "wait until the job is done (or failed) before answering")
	id, r, err := openJob(fs, bind, args, stdio)
	if err != nil {
		return err
	}
	defer r.Close()
	var s jobStatus
	for {
		j, err := r.store.Get(ctx, id)
		if err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return err
			}
			return r.storeErr(err)
		}
		list, err := r.settle(ctx, []*jobs.Job{j})
		s = list[0]
		if err != nil {
			// The row shows all the same, without progress.
			if *asJSON {
				_ = writeJSON(stdio.out, s)
			} else {
				writeStatus(stdio.out, s)
			}
			return err
		}
		if !*wait || s.State == jobs.Done || s.State == jobs.Failed || s.Stalled {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if *asJSON {
		if err := writeJSON(stdio.out, s); err != nil {
			return err
		}
	} else {
		writeStatus(stdio.out, s)
	}
	if s.State == jobs.Failed {
		return errReported
	}
	return nil
}

// writeStatus prints one job for a person.
func writeStatus(w io.Writer, s jobStatus) {
	j := s.Job
	line := func(k, format string, args ...any) { fmt.Fprintf(w, "%-10s %s\n", k, fmt.Sprintf(format, args...)) }
	line("job", "%s", j.ID)
	size := "size unknown"
	if j.Size >= 0 {
		size = cli.Size(j.Size)
	}
	line("source", "%s (%s, %s, from %s)", j.Source, formatText(j), size, j.Origin)
	line("type", "%s (topic %s)", typeText(j), j.Topic)
	if j.RedriveOf != "" {
		line("redrive", "of job %s: its rejected records, pushed again", j.RedriveOf)
	}
	for _, by := range j.RedrivenBy {
		line("redriven", "by job %s ('loader status %s')", by, by)
	}
	if j.SHA256 != "" {
		line("sha256", "%s", j.SHA256)
	}
	switch {
	case s.Stalled:
		line("state", "producing, but not heard from since %s: the loader most likely stopped; push the file again",
			j.Updated.Local().Format("15:04:05"))
	case j.State == jobs.Produced && len(s.Progress) == 0:
		line("state", "produced; how far processor and aggregator are is unknown")
	case j.State == jobs.Produced:
		var parts []string
		for _, g := range s.Progress {
			parts = append(parts, fmt.Sprintf("%s %s records behind", g.Group, cli.Count(g.Behind)))
		}
		line("state", "produced; loading into ClickHouse (%s)", strings.Join(parts, ", "))
	case j.State == jobs.Done:
		what := typeText(j) + " holds"
		if s.schema != nil {
			what = holders(s.schema)
		}
		line("state", "done: %s every record of the job", what)
	default:
		line("state", "%s", j.State)
	}
	rejected := cli.Count(j.Rejected) + " rejected"
	if j.Rejected > 0 {
		rejected += " ('loader errors " + j.ID + "' lists them)"
	}
	line("records", "%s read, %s produced, %s", cli.Count(j.Read), cli.Count(j.Produced), rejected)
	line("started", "%s", j.Started.Local().Format("2006-01-02 15:04:05"))
	if !j.ProducedAt.IsZero() {
		line("produced", "%s (in %.3f s)", j.ProducedAt.Local().Format("2006-01-02 15:04:05"), j.ProduceSeconds)
	}
	if j.State == jobs.Done {
		line("done", "%s (%.3f s after the start)", j.FinishedAt.Local().Format("2006-01-02 15:04:05"), j.LoadSeconds)
	}
	if len(j.EndOffsets) > 0 {
		parts := make([]int32, 0, len(j.EndOffsets))
		for p := range j.EndOffsets {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(a, b int) bool { return parts[a] < parts[b] })
		var ends []string
		for _, p := range parts {
			ends = append(ends, fmt.Sprintf("%d:%d", p, j.EndOffsets[p]))
		}
		line("ends", "%s (partition:last offset on %s)", strings.Join(ends, " "), j.Topic)
	}
	if j.Error != "" {
		line("error", "%s", j.Error)
	}
}

func runErrors(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("errors", "[flags] JOB", stdio.err)
	bind := jobFlags(fs)
	asJSON := fs.Bool("json", false, "print the rows as a JSON array, with the raw records as stored")
	limit := fs.Int("limit", 100, "print at most this many")
	raw := fs.Bool("raw", false, "write every rejected record as it was: the CSV header line and rows of a CSV job, else NDJSON (the input of 'loader redrive')")
	id, r, err := openJob(fs, bind, args, stdio)
	if err != nil {
		return err
	}
	defer r.Close()
	job, err := r.store.Get(ctx, id)
	if err != nil {
		if errors.Is(err, jobs.ErrNotFound) {
			return err
		}
		return r.storeErr(err)
	}
	if *raw {
		if *asJSON {
			return usageError{errors.New("--raw and --json: choose one")}
		}
		return writeRaw(ctx, r, job, stdio)
	}
	rows, total, err := r.store.Errors(ctx, id, max(*limit, 1))
	if err != nil {
		return r.storeErr(err)
	}
	if *asJSON {
		out := make([]jobs.Rejected, len(rows))
		for i, e := range rows {
			out[i] = jobs.RejectedOf(e)
		}
		return writeJSON(stdio.out, out)
	}
	for _, e := range rows {
		where := fmt.Sprintf("%s:%d", e.Source, e.Line)
		if e.Topic != "" {
			where += fmt.Sprintf(" (%s partition %d offset %d)", e.Topic, e.Partition, e.Offset)
		}
		fmt.Fprintf(stdio.out, "%s: %s: %s\n    %s\n", where, e.Stage, e.Reason, shorten(string(e.Raw), 200))
	}
	fmt.Fprintf(stdio.err, "%s of %s rejected records of job %s (type %s)\n", cli.Count(int64(len(rows))), cli.Count(total), id, typeText(job))
	return nil
}

// shorten cuts s to about n bytes for a terminal, on a rune boundary, and
// shows control characters escaped.
func shorten(s string, n int) string {
	q := fmt.Sprintf("%q", s)
	q = q[1 : len(q)-1]
	if len(q) <= n {
		return q
	}
	cut := n
	for cut > 0 && q[cut]&0xC0 == 0x80 {
		cut--
	}
	return q[:cut] + fmt.Sprintf("... (%d bytes)", len(s))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
