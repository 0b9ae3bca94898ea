package testenv

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"skuflow/config"
	"skuflow/internal/kafka"
)

// BrokerProcess is the embedded Kafka broker (cmd/broker) of one test,
// running as its own process.
type BrokerProcess struct {
	// Addr is the broker's address, "127.0.0.1:port".
	Addr string
	// Dir holds the broker's data (Dir/data) and its log (Dir/broker.log).
	Dir        string
	Topic      string
	Partitions int

	proc *process
	args []string // more flags (BrokerArgs)
	env  []string // more environment (BrokerEnv)
}

// BrokerOption changes what Broker starts.
type BrokerOption func(*BrokerProcess)

// Topic names the topic the broker creates; the default is "products".
func Topic(name string) BrokerOption { return func(b *BrokerProcess) { b.Topic = name } }

// Partitions sets the topic's partition count; the default is 6, as in
// config.Default().
func Partitions(n int) BrokerOption { return func(b *BrokerProcess) { b.Partitions = n } }

// BrokerArgs adds flags to the broker's command line.
func BrokerArgs(args ...string) BrokerOption {
	return func(b *BrokerProcess) { b.args = append(b.args, args...) }
}

// BrokerEnv adds KEY=VALUE pairs to the broker's environment (SKUFLOW_*
// included: a secured broker reads its user's password from there).
func BrokerEnv(env ...string) BrokerOption {
	return func(b *BrokerProcess) { b.env = append(b.env, env...) }
}

// readyLine is what cmd/broker logs (slog text) once it serves and the topic
// exists.
const readyLine = "msg=ready"

// Broker builds and starts cmd/broker on a free port with its data in a
// temporary folder, waits until it has created the topic, and stops it when
// t ends.
func Broker(t testing.TB, opts ...BrokerOption) *BrokerProcess {
	t.Helper()
	bin := BuildBinary(t, "broker")
	dir := t.TempDir()
	port := FreePort(t)
	b := &BrokerProcess{
		Addr:       net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:        dir,
		Topic:      "products",
		Partitions: 6,
	}
	for _, o := range opts {
		o(b)
	}
	b.proc = &process{
		name: "broker",
		path: bin,
		args: []string{
			"--port", strconv.Itoa(port),
			"--data-dir", filepath.Join(dir, "data"),
			"--topic", b.Topic,
			"--partitions", strconv.Itoa(b.Partitions),
		},
		// No skuflow.yaml there, and childEnv drops SKUFLOW_*: the flags
		// and config.Default() are all the broker reads.
		dir:     dir,
		env:     childEnv(b.env...),
		logPath: filepath.Join(dir, "broker.log"),
	}
	b.proc.args = append(b.proc.args, b.args...)
	b.proc.cleanup(t)
	b.Start(t)
	return b
}

// Start starts the broker again on the same port and data after Stop or
// Kill, and waits for its ready line.
func (b *BrokerProcess) Start(t testing.TB) {
	t.Helper()
	began := time.Now()
	off, err := b.proc.start()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ready := func() bool { return b.proc.logContains(off, readyLine) }
	if err := b.proc.waitFor(startTimeout, ready); err != nil {
		b.proc.fail(t, err)
	}
	t.Logf("broker: pid %d ready on %s after %s", b.Pid(), b.Addr, time.Since(began).Round(time.Millisecond))
}

// Stop stops the broker with SIGTERM, which persists its state, and waits
// for it to exit. The test fails if it had to be killed.
func (b *BrokerProcess) Stop(t testing.TB) {
	t.Helper()
	if b.proc.stop(syscall.SIGTERM, stopGrace) {
		t.Errorf("testenv: broker did not stop within %s of SIGTERM and was killed", stopGrace)
	}
}

// Kill kills the broker with SIGKILL, as a crash would, and waits for it to
// exit.
func (b *BrokerProcess) Kill(t testing.TB) {
	t.Helper()
	b.proc.stop(syscall.SIGKILL, stopGrace)
}

// AddPartitions adds n partitions to the broker's topic (of a broker
// without TLS or SASL), as an operator who breaks invariant 2 would.
func (b *BrokerProcess) AddPartitions(t testing.TB, n int) {
	t.Helper()
	cl, err := kafka.NewClient(config.Kafka{Brokers: []string{b.Addr}, DialTimeout: 5 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreatePartitions(ctx, n, b.Topic); err != nil {
		t.Fatalf("add %d partitions to %s: %v", n, b.Topic, err)
	}
}

// Pid returns the broker's process id, or 0 while it is stopped.
func (b *BrokerProcess) Pid() int { return b.proc.pid() }
