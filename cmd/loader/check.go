package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"skuflow/config"
	"skuflow/internal/cli"
	"skuflow/internal/clickhouse"
	"skuflow/internal/kafka"
	"skuflow/schemas"
)

// runCheck compares every declared aggregate with its definition over the
// type's rows FINAL (invariant 3) and says, for each, that it is exact or
// which groups differ; with differences it exits 1. How far the consumer
// groups are behind is said beside it: records still on their way make
// differences that are not faults.
func runCheck(ctx context.Context, args []string, stdio stdio) error {
	fs := newFlags("check", "[flags]", stdio.err)
	def := config.Default()
	fs.String("config", "", "configuration file (default $SKUFLOW_CONFIG or ./skuflow.yaml)")
	fs.String("brokers", strings.Join(def.Kafka.Brokers, ","), "Kafka brokers, comma-separated")
	fs.String("clickhouse", def.ClickHouse.Addr, "ClickHouse native address, host:port")
	fs.String("database", def.ClickHouse.Database, "ClickHouse database")
	typeName := fs.String("type", "", "check this record type's aggregates only (default: every type's)")
	show := fs.Int("show", 20, "list at most this many differing groups per aggregate (0: all)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("check takes no arguments (--type names one type)")}
	}
	file, _ := fs.GetString("config")
	cfg, err := config.Load(config.Options{File: file, Flags: fs, Bind: map[string]string{
		"brokers": "kafka.brokers", "clickhouse": "clickhouse.addr", "database": "clickhouse.database",
	}})
	if err != nil {
		return err
	}
	types := cfg.Schemas()
	if *typeName != "" {
		s, err := cfg.Schema(*typeName)
		if err != nil {
			return usageError{fmt.Errorf("--type: %w", err)}
		}
		types = []*schemas.Schema{s}
	}
	conn, err := clickhouse.Open(cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer conn.Close()
	cl, err := kafka.NewClient(cfg.Kafka, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	db := cfg.ClickHouse.Database
	checked, differ := 0, 0
	for _, s := range types {
		if len(s.Aggregates) == 0 {
			continue
		}
		tc := cfg.For(s)
		lag := lagNote(ctx, adm, tc.Kafka.Topic, tc.LoadGroups(s))
		for i := range s.Aggregates {
			a := &s.Aggregates[i]
			checked++
			var groups uint64
			if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s", clickhouse.Table(db, a.Name))).Scan(&groups); err != nil {
				return fmt.Errorf("ClickHouse at %s: %s: %w", cfg.ClickHouse.Addr, a.Name, err)
			}
			var n uint64
			if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM (%s)", clickhouse.AggregateDiff(db, s, a, 0))).Scan(&n); err != nil {
				return fmt.Errorf("ClickHouse at %s: compare %s with %s FINAL: %w", cfg.ClickHouse.Addr, a.Name, s.Name, err)
			}
			if n == 0 {
				fmt.Fprintf(stdio.out, "%s: exact: %s groups, each as %s FINAL says%s\n", a.Name, cli.Count(int64(groups)), s.Name, lag)
				continue
			}
			differ++
			fmt.Fprintf(stdio.out, "%s: %s of its groups differ from %s FINAL%s:\n", a.Name, cli.Count(int64(n)), s.Name, lag)
			rows, err := conn.Query(ctx, clickhouse.AggregateDiff(db, s, a, *show))
			if err != nil {
				return fmt.Errorf("ClickHouse at %s: %s: %w", cfg.ClickHouse.Addr, a.Name, err)
			}
			for rows.Next() {
				keys := make([]string, len(a.By))
				var view, final int64
				dest := make([]any, 0, len(keys)+2)
				for i := range keys {
					dest = append(dest, &keys[i])
				}
				if err := rows.Scan(append(dest, &view, &final)...); err != nil {
					rows.Close()
					return err
				}
				for i, b := range a.By {
					keys[i] = fmt.Sprintf("%s=%q", b, keys[i])
				}
				fmt.Fprintf(stdio.out, "  %s: %s %d, %s FINAL %d\n", strings.Join(keys, " "), a.Name, view, s.Name, final)
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return err
			}
			if *show > 0 && n > uint64(*show) {
				fmt.Fprintf(stdio.out, "  ... and %s more (--show)\n", cli.Count(int64(n)-int64(*show)))
			}
		}
	}
	if checked == 0 {
		fmt.Fprintln(stdio.out, "no aggregate is declared: nothing to check")
	}
	if differ > 0 {
		return errReported
	}
	return nil
}

// lagNote says how many records the type's groups have still to take, if
// any: a difference may be records on their way. An unreachable Kafka is
// said too; the comparison stands on its own.
func lagNote(ctx context.Context, adm *kadm.Client, topic string, groups []string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Sprintf(" (how far the consumer groups are is unknown: %v)", err)
	}
	var behind []string
	for _, g := range groups {
		n, err := kafka.Behind(ctx, adm, topic, g, ends)
		if err != nil {
			return fmt.Sprintf(" (how far group %s is is unknown: %v)", g, err)
		}
		if n > 0 {
			behind = append(behind, fmt.Sprintf("%s is %s records behind", g, cli.Count(n)))
		}
	}
	if len(behind) == 0 {
		return ""
	}
	return " (" + strings.Join(behind, ", ") + ": records on their way may be the difference)"
}
