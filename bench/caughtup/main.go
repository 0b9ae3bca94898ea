// Command caughtup waits until a consumer group has committed every record
// of a topic: for each partition, its committed offset reaches the end
// offset as it was when caughtup started. The bench uses it to time a
// service alone on a filled topic, whatever build the service is of (it
// asks the broker, not the service or the job store).
//
//	caughtup -brokers 127.0.0.1:9092 -topic products -group bench-processor
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"skuflow/config"
	"skuflow/internal/kafka"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "the broker addresses, comma separated")
	topic := flag.String("topic", "", "the topic")
	group := flag.String("group", "", "the consumer group")
	timeout := flag.Duration("timeout", 30*time.Minute, "how long to wait at most")
	flag.Parse()
	if *topic == "" || *group == "" {
		fmt.Fprintln(os.Stderr, "caughtup: -topic and -group are needed")
		os.Exit(2)
	}
	if err := wait(*brokers, *topic, *group, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "caughtup:", err)
		os.Exit(1)
	}
}

func wait(brokers, topic, group string, timeout time.Duration) error {
	// The project's configuration (skuflow.yaml, SKUFLOW_*) says how to
	// reach a secured broker; -brokers says which.
	cfg, err := config.Load(config.Options{})
	if err != nil {
		return err
	}
	cfg.Kafka.Brokers = strings.Split(brokers, ",")
	cl, err := kafka.NewClient(cfg.Kafka, nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	if err := ends.Error(); err != nil {
		return fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	for {
		behind, err := kafka.Behind(ctx, adm, topic, group, ends)
		if err == nil && behind == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("group %s not caught up with %s after %s (last error: %v)", group, topic, timeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
