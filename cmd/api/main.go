// Command api is skuflow's HTTP door and operations page: uploads, single
// records, jobs, stored rows and a live feed, for every record type (or
// those --types names), on api.addr (loopback unless tokens are set), with
// its Prometheus metrics at /metrics there.
// SIGTERM stops taking requests, lets uploads in flight finish for
// api.shutdown_timeout, then fails their jobs with the reason.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"skuflow/api"
	"skuflow/internal/kafka"
	"skuflow/internal/metrics"
	"skuflow/internal/service"
	"skuflow/jobs"
	"skuflow/producer"
)

func main() {
	service.Main("api", os.Args[1:], func(ctx context.Context, env service.Env) error {
		cfg := env.Config
		types := map[string]*api.Type{}
		var store *jobs.Store
		for _, s := range env.Types {
			tc := cfg.For(s)
			c, err := producer.Connect(ctx, tc, s, env.Log.With("type", s.Name))
			if err != nil {
				return fmt.Errorf("type %s: %w", s.Name, err)
			}
			defer c.Close()
			store = c.Jobs
			topic := tc.Kafka.Topic
			types[s.Name] = &api.Type{
				Schema: s,
				Config: tc,
				Pusher: producer.NewPusher(c.Kafka, c.Options("api", env.Log.With("type", s.Name))),
				Ready: func(ctx context.Context) error {
					_, err := kafka.Describe(ctx, c.Kafka, topic)
					return err
				},
				Committed: func(ctx context.Context, topic string) (*jobs.Committed, error) {
					return jobs.FetchCommitted(ctx, c.Kafka, tc.LoadGroups(s), topic)
				},
			}
		}
		srv := api.New(api.Options{Config: cfg, Types: types, Conn: env.Conn, Jobs: store, Log: env.Log})
		// Served at /metrics on api.addr, beside /healthz and /readyz.
		metrics.Register(srv.Metrics()...)
		if n, err := srv.SweepSpool(); err != nil {
			return err
		} else if n > 0 {
			env.Log.Warn("removed uploads an earlier run left in the spool", "files", n, "dir", cfg.API.SpoolDir)
		}
		a := cfg.API
		hs := &http.Server{
			Handler:           srv.Handler(),
			ReadHeaderTimeout: a.ReadHeaderTimeout,
			IdleTimeout:       a.IdleTimeout,
		}
		ln, err := net.Listen("tcp", a.Addr)
		if err != nil {
			return fmt.Errorf("api.addr: %w", err)
		}
		env.Log.Info("started", "addr", "http://"+ln.Addr().String(), "types", len(types), "tokens", len(a.Tokens))
		served := make(chan error, 1)
		go func() { served <- hs.Serve(ln) }()
		select {
		case err := <-served:
			return err
		case <-ctx.Done():
		}
		stop, cancel := context.WithTimeout(context.Background(), a.ShutdownTimeout)
		defer cancel()
		// No new requests; uploads being received finish, then the pushes
		// they started, until the timeout.
		if err := hs.Shutdown(stop); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			env.Log.Warn("shutdown", "err", err)
		}
		srv.Shutdown(stop)
		env.Log.Info("stopped")
		return nil
	})
}
