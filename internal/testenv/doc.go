// Package testenv starts the real services of skuflow's stack for
// integration tests: a ClickHouse server (Debian's clickhouse-server, run
// with deploy/clickhouse/config.xml) and the embedded Kafka broker
// (cmd/broker), each as a separate process on free loopback ports with its
// data in t.TempDir().
//
// A test gets a running service from ClickHouse(t) or Broker(t); t.Cleanup
// stops it, and prints the tail of its log when the test failed. Stop, Kill
// and Start restart a service on the same port and data, for outage and
// crash tests.
//
// Missing programs fail the test rather than skip it: an integration test
// that silently does not run proves nothing. `make deps` (deploy/stack.sh
// install) installs clickhouse-server, clickhouse-client and kcat.
//
// SKUFLOW_BIN names a folder of prebuilt binaries (the repository's bin/
// after `make build`); without it BuildBinary runs `go build` once per test
// process.
package testenv
