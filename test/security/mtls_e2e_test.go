package security_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"skuflow/internal/testenv"
)

// Mutual TLS: a broker with broker.tls.client_ca_file and a ClickHouse
// whose secure port verifies clients strictly take only clients whose
// certificate their CA signed. The loader, the processor and the
// aggregator with kafka.tls and clickhouse.tls cert_file and key_file load
// a file exactly, and kcat (librdkafka's TLS, nobody's here) reads the
// topic with the same certificate. Without a certificate, or with one
// another CA signed, each command stops within seconds saying which server
// refused it and why, and kcat is refused too.
func TestMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the broker, ClickHouse and the services")
	}
	certs := testenv.MakeCerts(t)
	client := []string{
		"SKUFLOW_KAFKA_TLS_ENABLED=true",
		"SKUFLOW_KAFKA_TLS_CA_FILE=" + certs.CA,
		"SKUFLOW_KAFKA_TLS_CERT_FILE=" + certs.ClientCert,
		"SKUFLOW_KAFKA_TLS_KEY_FILE=" + certs.ClientKey,
	}
	broker := testenv.Broker(t, testenv.BrokerEnv(append([]string{
		"SKUFLOW_BROKER_TLS_ENABLED=true",
		"SKUFLOW_BROKER_TLS_CERT_FILE=" + certs.ServerCert,
		"SKUFLOW_BROKER_TLS_KEY_FILE=" + certs.ServerKey,
		"SKUFLOW_BROKER_TLS_CLIENT_CA_FILE=" + certs.CA,
	}, client...)...))
	ch, tlsAddr := testenv.MutualTLSClickHouse(t, certs, "skuflow", chSecret)
	env := append([]string{
		"SKUFLOW_KAFKA_BROKERS=" + broker.Addr,
		"SKUFLOW_CLICKHOUSE_ADDR=" + tlsAddr,
		"SKUFLOW_CLICKHOUSE_USERNAME=skuflow",
		"SKUFLOW_CLICKHOUSE_PASSWORD=" + chSecret,
		"SKUFLOW_CLICKHOUSE_TLS_ENABLED=true",
		"SKUFLOW_CLICKHOUSE_TLS_CA_FILE=" + certs.CA,
		"SKUFLOW_CLICKHOUSE_TLS_CERT_FILE=" + certs.ClientCert,
		"SKUFLOW_CLICKHOUSE_TLS_KEY_FILE=" + certs.ClientKey,
		"SKUFLOW_PROCESSOR_FLUSH_INTERVAL=200ms",
		"SKUFLOW_AGGREGATOR_FLUSH_INTERVAL=200ms",
		"SKUFLOW_PROCESSOR_METRICS_ADDR=127.0.0.1:0",
		"SKUFLOW_AGGREGATOR_METRICS_ADDR=127.0.0.1:0",
	}, client...)
	s := &secured{Stack: &testenv.Stack{CH: ch, Broker: broker, Env: env}, certs: certs, tlsAddr: tlsAddr}

	s.Service(t, "processor")
	s.Service(t, "aggregator")
	file := testenv.Gen(t, t.TempDir(), "products.ndjson", "--rows", "5000", "--seed", "31", "--dup-rate", "0.1", "--rename-rate", "0.05")
	if out, stderr, err := s.Loader(t, "push", "--wait", "--wait-timeout", "2m", "--no-progress", file); err != nil {
		t.Fatalf("push with a client certificate: %v\n%s\n%s", err, out, stderr)
	}
	want := testenv.LastWrites(t, file)
	s.CheckFinal(t, want)
	s.CheckAgg(t, testenv.NameCounts(want))

	kcat := func(args ...string) (string, error) {
		cmd := exec.Command(testenv.Kcat(t), append([]string{"-b", broker.Addr, "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + certs.CA}, args...)...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		return o.String() + e.String(), err
	}
	got, err := kcat("-X", "ssl.certificate.location="+certs.ClientCert, "-X", "ssl.key.location="+certs.ClientKey,
		"-C", "-t", "products", "-e", "-q", "-f", "%k\n")
	if err != nil {
		t.Fatalf("kcat with the client certificate: %v\n%s", err, got)
	}
	if n := strings.Count(got, "\n"); n != 5000 {
		t.Fatalf("kcat with the client certificate read %d records, want the 5,000 pushed:\n%s", n, lastLines(got, 5))
	}
	if out, err := kcat("-L", "-m", "5"); err == nil || strings.Contains(out, `topic "products"`) {
		t.Fatalf("kcat without a client certificate: %v\n%s", err, out)
	}

	s.refusals(t, file, []refusal{
		{"kafka without a client certificate", []string{"SKUFLOW_KAFKA_TLS_CERT_FILE=", "SKUFLOW_KAFKA_TLS_KEY_FILE="},
			[]string{"the broker requires a client certificate, and kafka.tls.cert_file and key_file are not set", broker.Addr}},
		{"kafka with a certificate another CA signed", []string{"SKUFLOW_KAFKA_TLS_CERT_FILE=" + certs.OtherClientCert, "SKUFLOW_KAFKA_TLS_KEY_FILE=" + certs.OtherClientKey},
			[]string{"the broker refused the client certificate " + certs.OtherClientCert, broker.Addr}},
		{"clickhouse without a client certificate", []string{"SKUFLOW_CLICKHOUSE_TLS_CERT_FILE=", "SKUFLOW_CLICKHOUSE_TLS_KEY_FILE="},
			[]string{"it requires a client certificate, and clickhouse.tls.cert_file and key_file are not set", tlsAddr}},
		{"clickhouse with a certificate another CA signed", []string{"SKUFLOW_CLICKHOUSE_TLS_CERT_FILE=" + certs.OtherClientCert, "SKUFLOW_CLICKHOUSE_TLS_KEY_FILE=" + certs.OtherClientKey},
			[]string{"it refused the client certificate " + certs.OtherClientCert, tlsAddr}},
	})
}
